//! Which restic snapshot each mapped path is restored from (pure): the spec's
//! `[restic.paths]` (backed-up path → subvolume), the snapshots of this host with the
//! spec's tag, and `--snapshot ID`, `--at TIME` or `--latest`.

use serde::Serialize;

use super::snapshots::{within, Snapshot};
use crate::time::{self, Epoch};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    Latest,
    At(Epoch),
    /// A snapshot id or its prefix (restic's short id).
    Id(String),
}

/// One subvolume to restore: the path inside `snapshot` whose contents become it, and the
/// other mapped paths below it that belong to other subvolumes (left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub subvol: String,
    pub path: String,
    pub snapshot: Snapshot,
    pub exclude: Vec<String>,
}

/// A mapped path that no snapshot holds, left out of the restore (its subvolume stays as
/// provisioning makes it), as a subvolume without points on the backup drive is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub subvol: String,
    pub path: String,
    /// `no snapshot holds /`, `snapshot ab12cd34 does not hold /`.
    pub why: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}; it stays as provisioning makes it (empty)",
            self.subvol, self.why
        )
    }
}

/// What a restore from restic does: the subvolumes restored, and those left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selection {
    pub planned: Vec<Planned>,
    pub skipped: Vec<Skipped>,
}

impl Planned {
    /// The size restic 0.17+ recorded for the snapshot, when it is the size of this restore:
    /// the snapshot holds this one path and nothing is left out of it. Otherwise the files
    /// under the path have to be counted.
    pub fn recorded_size(&self) -> Option<u64> {
        let only = self.snapshot.paths.len() == 1 && self.snapshot.paths[0] == self.path;
        self.snapshot
            .size
            .filter(|_| only && self.exclude.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "no snapshot of host {host}{tag} holds any path of the spec's [restic.paths] \
         ({paths}){when}: nothing to restore"
    )]
    Nothing {
        host: String,
        tag: String,
        paths: String,
        when: String,
    },
    #[error("the spec has no [restic.paths]: say which backed-up path goes into which subvolume")]
    NoPaths,
    #[error("no snapshot of host {host}{tag} holds {path} (for {subvol}){when}")]
    Missing {
        host: String,
        tag: String,
        path: String,
        subvol: String,
        when: String,
    },
    #[error("no snapshot has an id starting with {0}")]
    UnknownId(String),
    #[error("{0} is the beginning of more than one snapshot id: give more of it")]
    AmbiguousId(String),
    #[error("--subvol {0} is not in the spec's [restic.paths]")]
    NotMapped(String),
}

/// Whether a snapshot carries the spec's tag (every snapshot does when the spec names none).
pub fn tagged(s: &Snapshot, tag: Option<&str>) -> bool {
    tag.is_none_or(|t| s.tags.iter().any(|x| x == t))
}

/// " tagged X" for messages, or nothing when the spec names no tag.
fn tagged_words(tag: Option<&str>) -> String {
    tag.map(|t| format!(" tagged {t}")).unwrap_or_default()
}

/// `paths`: (backed-up path, subvolume), from the spec. `subvols`: only these (all when
/// empty). Snapshots newest first (as [`super::snapshots::parse`] gives them).
///
/// The rule of every source: a subvolume that was asked for (`subvols`) must be there; of
/// all the others, a path that no snapshot holds (none of this host and tag, or not the
/// snapshot named) is skipped and said so; only when nothing at all is left is it refused.
/// A path whose snapshots are all newer than `--at` is refused, as on the backup drive.
pub fn select(
    snaps: &[Snapshot],
    paths: &[(String, String)],
    subvols: &[String],
    host: &str,
    tag: Option<&str>,
    meta: Option<&str>,
    pick: &Pick,
) -> Result<Selection, SelectError> {
    if paths.is_empty() {
        return Err(SelectError::NoPaths);
    }
    for s in subvols {
        if !paths.iter().any(|(_, sv)| sv == s) {
            return Err(SelectError::NotMapped(s.clone()));
        }
    }
    let fixed = match pick {
        Pick::Id(prefix) => {
            let found: Vec<&Snapshot> = snaps
                .iter()
                .filter(|s| s.id.starts_with(prefix.as_str()))
                .collect();
            match found.as_slice() {
                [one] => Some(*one),
                [] => return Err(SelectError::UnknownId(prefix.clone())),
                _ => return Err(SelectError::AmbiguousId(prefix.clone())),
            }
        }
        _ => None,
    };
    let when = match pick {
        Pick::At(t) => format!(" at or before {}", time::format_time(*t)),
        Pick::Id(id) => format!(" (in snapshot {id})"),
        Pick::Latest => String::new(),
    };
    let ours = |s: &&Snapshot| s.host == host && tagged(s, tag);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (path, subvol) in paths {
        if !subvols.is_empty() && !subvols.contains(subvol) {
            continue;
        }
        let holds = |s: &&Snapshot| s.paths.iter().any(|p| within(path, p));
        let chosen = match (fixed, pick) {
            (Some(s), _) => Some(s).filter(holds),
            (None, Pick::At(t)) => snaps.iter().filter(|s| ours(s) && s.time <= *t).find(holds),
            (None, _) => snaps.iter().filter(ours).find(holds),
        };
        let Some(snapshot) = chosen else {
            let never = match fixed {
                Some(s) => Some(format!("snapshot {} does not hold {path}", s.short_id)),
                None => (!snaps.iter().filter(ours).any(|s| holds(&s)))
                    .then(|| format!("no snapshot holds {path}")),
            };
            match never {
                Some(why) if subvols.is_empty() => {
                    skipped.push(Skipped {
                        subvol: subvol.clone(),
                        path: path.clone(),
                        why,
                    });
                    continue;
                }
                _ => {
                    return Err(SelectError::Missing {
                        host: host.into(),
                        tag: tagged_words(tag),
                        path: path.clone(),
                        subvol: subvol.clone(),
                        when,
                    })
                }
            }
        };
        let exclude = paths
            .iter()
            .filter(|(other, _)| other != path && within(other, path))
            .map(|(other, _)| other.clone())
            .collect();
        out.push(Planned {
            subvol: subvol.clone(),
            path: path.clone(),
            snapshot: snapshot.clone(),
            exclude,
        });
    }
    if out.is_empty() {
        return Err(SelectError::Nothing {
            host: host.into(),
            tag: tagged_words(tag),
            paths: paths
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            when,
        });
    }
    // The meta subvolume (the boot backup) first, as from the USB drive.
    out.sort_by_key(|p| Some(p.subvol.as_str()) != meta);
    Ok(Selection {
        planned: out,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, time: Epoch, host: &str, tags: &[&str], paths: &[&str]) -> Snapshot {
        Snapshot {
            id: id.into(),
            short_id: id.chars().take(8).collect(),
            time,
            host: host.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            size: None,
            files: None,
        }
    }

    fn paths() -> Vec<(String, String)> {
        vec![
            ("/".into(), "@rootTW".into()),
            ("/home".into(), "@home".into()),
            ("/mnt/Atlantis-meta".into(), "Atlantis-meta".into()),
        ]
    }

    fn snaps() -> Vec<Snapshot> {
        vec![
            snap("cc33", 300, "WIN-DESKTOP", &[], &["C:\\Backups"]),
            snap("bb22", 200, "atlantis", &["LINUX"], &["/home"]),
            snap(
                "aa11",
                100,
                "atlantis",
                &["LINUX"],
                &["/", "/home", "/mnt/Atlantis-meta"],
            ),
        ]
    }

    #[test]
    fn newest_holding_each_path_with_nested_paths_left_out() {
        let got = select(
            &snaps(),
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Latest,
        )
        .unwrap()
        .planned;
        let summary: Vec<(&str, &str, &str, Vec<&str>)> = got
            .iter()
            .map(|p| {
                (
                    p.subvol.as_str(),
                    p.path.as_str(),
                    p.snapshot.id.as_str(),
                    p.exclude.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Atlantis-meta", "/mnt/Atlantis-meta", "aa11", vec![]),
                ("@rootTW", "/", "aa11", vec!["/home", "/mnt/Atlantis-meta"]),
                ("@home", "/home", "bb22", vec![]),
            ]
        );
    }

    /// The newest snapshots hold /home and Atlantis-meta but none holds /: @rootTW is left
    /// out and said so, the rest is restored (as from the backup drive).
    #[test]
    fn a_path_no_snapshot_holds_is_skipped_not_refused() {
        let snaps = vec![
            snap("bb22", 200, "atlantis", &["LINUX"], &["/home"]),
            snap("aa11", 100, "atlantis", &["LINUX"], &["/mnt/Atlantis-meta"]),
            snap("zz99", 300, "elsewhere", &["LINUX"], &["/"]),
        ];
        let got = select(
            &snaps,
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Latest,
        )
        .unwrap();
        let subvols: Vec<&str> = got.planned.iter().map(|p| p.subvol.as_str()).collect();
        assert_eq!(subvols, ["Atlantis-meta", "@home"]);
        let lines: Vec<String> = got.skipped.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            ["@rootTW: no snapshot holds /; it stays as provisioning makes it (empty)"]
        );
        // Asked for by name: refused, with the reason.
        let err = select(
            &snaps,
            &paths(),
            &["@rootTW".into()],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Latest,
        )
        .unwrap_err();
        assert!(matches!(err, SelectError::Missing { .. }), "{err}");
        // --at before every snapshot of a path that has some: refused, as on the drive.
        let err = select(
            &snaps,
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::At(150),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("holds /home (for @home) at or before"),
            "{err}"
        );
    }

    #[test]
    fn the_recorded_size_only_when_it_is_that_of_the_restore() {
        let mut snaps = snaps();
        for s in &mut snaps {
            s.size = Some(1000);
        }
        let got = select(
            &snaps,
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Latest,
        )
        .unwrap();
        let sizes: Vec<(&str, Option<u64>)> = got
            .planned
            .iter()
            .map(|p| (p.subvol.as_str(), p.recorded_size()))
            .collect();
        // @home's snapshot holds /home alone; the others hold more than their path, or
        // leave nested paths out.
        assert_eq!(
            sizes,
            [
                ("Atlantis-meta", None),
                ("@rootTW", None),
                ("@home", Some(1000))
            ]
        );
    }

    #[test]
    fn at_an_id_and_the_refusals() {
        let home = ["@home".to_owned()];
        let got = select(
            &snaps(),
            &paths(),
            &home,
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::At(150),
        )
        .unwrap()
        .planned;
        assert_eq!(got[0].snapshot.id, "aa11");
        let got = select(
            &snaps(),
            &paths(),
            &home,
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Id("aa".into()),
        )
        .unwrap()
        .planned;
        assert_eq!(got[0].snapshot.id, "aa11");
        // A snapshot of /home only: the other subvolumes are left out, and said so.
        let got = select(
            &snaps(),
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Id("bb".into()),
        )
        .unwrap();
        assert_eq!(got.planned.len(), 1);
        assert_eq!(got.planned[0].subvol, "@home");
        assert_eq!(
            got.skipped[0].to_string(),
            "@rootTW: snapshot bb22 does not hold /; it stays as provisioning makes it (empty)"
        );
        // …unless one of them was asked for.
        let err = select(
            &snaps(),
            &paths(),
            &["@rootTW".into()],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Id("bb".into()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no snapshot of host atlantis tagged LINUX holds / (for @rootTW) (in snapshot bb)"
        );
        // Nothing at all to restore: refused.
        let err = select(
            &snaps(),
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::Id("cc".into()),
        )
        .unwrap_err();
        assert!(
            matches!(err, SelectError::Nothing { .. })
                && err.to_string().contains("nothing to restore"),
            "{err}"
        );
        let err = select(
            &snaps(),
            &paths(),
            &[],
            "atlantis",
            Some("LINUX"),
            Some("Atlantis-meta"),
            &Pick::At(50),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("at or before 1970-01-01 00:00:50 UTC"),
            "{err}"
        );
        assert_eq!(
            select(
                &snaps(),
                &paths(),
                &[],
                "atlantis",
                Some("LINUX"),
                Some("Atlantis-meta"),
                &Pick::Id("zz".into())
            ),
            Err(SelectError::UnknownId("zz".into()))
        );
        assert_eq!(
            select(
                &snaps(),
                &paths(),
                &["@rootF41".into()],
                "atlantis",
                Some("LINUX"),
                Some("Atlantis-meta"),
                &Pick::Latest
            ),
            Err(SelectError::NotMapped("@rootF41".into()))
        );
        assert_eq!(
            select(
                &snaps(),
                &[],
                &[],
                "atlantis",
                Some("LINUX"),
                Some("Atlantis-meta"),
                &Pick::Latest
            ),
            Err(SelectError::NoPaths)
        );
    }
}
