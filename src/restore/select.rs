//! Which restore points a restore uses (pure): per subvolume the newest point (or the newest
//! at or before `--at`), with the chain of points that must be received before it.
//!
//! A received subvolume on the backup drive (btrbk, snapper) is whole: it is sent in full
//! and needs nothing else. A raw stream file may be incremental: its parent must be
//! received first, and that parent's parent, down to a full stream or a subvolume.

use serde::Serialize;

use super::inventory::{Inventory, Kind, Point};
use super::points::{self, Epoch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Latest,
    /// The newest point taken at or before this time.
    At(Epoch),
}

/// What to restore of one subvolume: `points[0]` is whole, each later one is an
/// incremental stream on the one before; the last is the point asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub subvol: String,
    pub points: Vec<Point>,
}

impl Chain {
    pub fn chosen(&self) -> &Point {
        self.points.last().expect("a chain has at least one point")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "there are no restore points for {subvol} on the backup drive (it has points for: {have})"
    )]
    NoPoints { subvol: String, have: String },
    #[error("{subvol} has no restore point at or before {at}; its oldest is from {oldest}")]
    NothingBefore {
        subvol: String,
        at: String,
        oldest: String,
    },
    #[error("{point} cannot be restored: {why}")]
    Broken { point: String, why: String },
    #[error("the backup drive holds no restore points at all")]
    Empty,
}

/// The chains for `subvols` (every subvolume with points when empty), in the order given,
/// except that `meta` (e.g. myhost-meta, which holds the boot backup) comes first.
pub fn select(
    inv: &Inventory,
    subvols: &[String],
    when: When,
    meta: Option<&str>,
) -> Result<Vec<Chain>, SelectError> {
    if inv.subvols.is_empty() {
        return Err(SelectError::Empty);
    }
    let mut wanted: Vec<String> = if subvols.is_empty() {
        inv.subvols.iter().map(|s| s.subvol.clone()).collect()
    } else {
        subvols.to_vec()
    };
    wanted.sort_by_key(|s| Some(s.as_str()) != meta);
    let have = || {
        inv.subvols
            .iter()
            .map(|s| s.subvol.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all: Vec<&Point> = inv.subvols.iter().flat_map(|s| &s.points).collect();
    wanted
        .iter()
        .map(|subvol| {
            let group = inv
                .subvols
                .iter()
                .find(|s| &s.subvol == subvol)
                .ok_or_else(|| SelectError::NoPoints {
                    subvol: subvol.clone(),
                    have: have(),
                })?;
            // Newest first already; among points of one time a received subvolume comes
            // before a stream (Kind's order), so it is preferred.
            let usable = |p: &&Point| {
                !p.note
                    .as_deref()
                    .is_some_and(|n| n.starts_with("unreadable"))
            };
            let chosen = match when {
                When::Latest => group.points.iter().find(usable),
                When::At(t) => group.points.iter().filter(|p| p.time <= t).find(usable),
            }
            .ok_or_else(|| SelectError::NothingBefore {
                subvol: subvol.clone(),
                at: match when {
                    When::At(t) => points::format_time(t),
                    When::Latest => "now".into(),
                },
                oldest: group
                    .points
                    .last()
                    .map(|p| points::format_time(p.time))
                    .unwrap_or_default(),
            })?;
            Ok(Chain {
                subvol: subvol.clone(),
                points: chain(chosen, &all)?,
            })
        })
        .collect()
}

/// The point and, for an incremental stream, its parents down to a whole one; oldest first.
fn chain(chosen: &Point, all: &[&Point]) -> Result<Vec<Point>, SelectError> {
    let mut out = vec![chosen.clone()];
    let mut at = chosen;
    while at.kind == Kind::Stream && at.parent_uuid.is_some() {
        let broken = |why: String| SelectError::Broken {
            point: chosen.path.clone(),
            why,
        };
        if let Some(note) = at.note.as_deref().filter(|n| n.starts_with("unreadable")) {
            return Err(broken(format!("{} is {note}", at.path)));
        }
        let Some(parent_path) = &at.parent else {
            return Err(broken(format!(
                "{} is incremental on {}, which is not on the backup drive",
                at.path,
                at.parent_uuid.map(|u| u.to_string()).unwrap_or_default()
            )));
        };
        let parent = all
            .iter()
            .find(|p| &p.path == parent_path)
            .ok_or_else(|| broken(format!("its parent {parent_path} is missing")))?;
        if out.iter().any(|p| p.path == parent.path) || out.len() > 10_000 {
            return Err(broken("its parent chain loops".into()));
        }
        out.push((*parent).clone());
        at = parent;
    }
    out.reverse();
    Ok(out)
}

/// The name a point gets under `@snapshots` on the restored pool: the btrbk name (for
/// streams without `.btrfs[.zst]`); snapper's `snapshot` becomes `<subvol>.snapper-<N>`.
pub fn target_name(point: &Point) -> String {
    let base = point.path.rsplit('/').next().unwrap_or(&point.path);
    match point.kind {
        Kind::Btrbk => base.to_owned(),
        Kind::Stream => base
            .trim_end_matches(".zst")
            .trim_end_matches(".btrfs")
            .to_owned(),
        Kind::Snapper => format!("{}.snapper-{}", point.subvol, point.seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::inventory::SubvolPoints;
    use uuid::Uuid;

    fn u(n: u8) -> Option<Uuid> {
        Some(Uuid::from_bytes([n; 16]))
    }

    fn point(subvol: &str, kind: Kind, time: Epoch, path: &str) -> Point {
        Point::named(subvol, kind, time, path)
    }

    /// @home: btrbk points at 100 and 200, a stream chain full(300) ← incr(400);
    /// Atlantis-meta at 150.
    fn inventory() -> Inventory {
        let mut full = point("@home", Kind::Stream, 300, "raw/@home.3.btrfs.zst");
        full.uuid = u(3);
        let mut incr = point("@home", Kind::Stream, 400, "raw/@home.4.btrfs");
        incr.uuid = u(4);
        incr.parent_uuid = u(3);
        incr.parent = Some(full.path.clone());
        Inventory {
            looked_in: vec![],
            subvols: vec![
                SubvolPoints {
                    subvol: "@home".into(),
                    points: vec![
                        incr,
                        full,
                        point("@home", Kind::Btrbk, 200, "atlantis/@home.2"),
                        point("@home", Kind::Btrbk, 100, "atlantis/@home.1"),
                    ],
                },
                SubvolPoints {
                    subvol: "Atlantis-meta".into(),
                    points: vec![point(
                        "Atlantis-meta",
                        Kind::Btrbk,
                        150,
                        "atlantis/Atlantis-meta.1",
                    )],
                },
            ],
            warnings: vec![],
        }
    }

    fn paths(c: &Chain) -> Vec<&str> {
        c.points.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn latest_follows_the_stream_chain_and_meta_comes_first() {
        let chains = select(&inventory(), &[], When::Latest, Some("Atlantis-meta")).unwrap();
        assert_eq!(chains[0].subvol, "Atlantis-meta");
        assert_eq!(chains[1].subvol, "@home");
        assert_eq!(
            paths(&chains[1]),
            ["raw/@home.3.btrfs.zst", "raw/@home.4.btrfs"]
        );
        assert_eq!(chains[1].chosen().time, 400);
    }

    #[test]
    fn at_picks_the_newest_point_not_after_it() {
        let home = ["@home".to_owned()];
        let chains = select(&inventory(), &home, When::At(250), Some("Atlantis-meta")).unwrap();
        assert_eq!(paths(&chains[0]), ["atlantis/@home.2"]);
        let chains = select(&inventory(), &home, When::At(200), Some("Atlantis-meta")).unwrap();
        assert_eq!(paths(&chains[0]), ["atlantis/@home.2"]);
        let err = select(&inventory(), &home, When::At(99), Some("Atlantis-meta")).unwrap_err();
        assert!(matches!(err, SelectError::NothingBefore { .. }), "{err}");
        assert!(err.to_string().contains("1970-01-01 00:01:40 UTC"), "{err}");
    }

    #[test]
    fn a_missing_parent_or_an_unknown_subvolume_is_an_error() {
        let mut inv = inventory();
        inv.subvols[0].points[0].parent = None;
        let err = select(&inv, &[], When::Latest, Some("Atlantis-meta")).unwrap_err();
        assert!(
            err.to_string()
                .contains("raw/@home.4.btrfs is incremental on 03030303"),
            "{err}"
        );
        let err = select(&inventory(), &["@rootF41".into()], When::Latest, Some("m")).unwrap_err();
        assert!(
            err.to_string()
                .contains("no restore points for @rootF41 on the backup drive (it has points for: @home, Atlantis-meta)"),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_stream_is_passed_over() {
        let mut inv = inventory();
        inv.subvols[0].points[0].note = Some("unreadable: crc".into());
        let chains = select(&inv, &["@home".into()], When::Latest, Some("m")).unwrap();
        assert_eq!(paths(&chains[0]), ["raw/@home.3.btrfs.zst"]);
    }

    #[test]
    fn names_under_snapshots() {
        let mut snap = point(
            "@rootTW",
            Kind::Snapper,
            1,
            "atlantis/@rootTW/.snapshots/12/snapshot",
        );
        snap.seq = 12;
        assert_eq!(target_name(&snap), "@rootTW.snapper-12");
        let s = point(
            "@home",
            Kind::Stream,
            1,
            "raw-snapshots/atlantis/@home.20261120T0300.btrfs.zst",
        );
        assert_eq!(target_name(&s), "@home.20261120T0300");
        let b = point("@home", Kind::Btrbk, 1, "atlantis/@home.20261120T0300_1");
        assert_eq!(target_name(&b), "@home.20261120T0300_1");
    }
}
