//! What a restore will do on the target pool (pure): the chosen chains (see [`super::select`])
//! and what the pool holds now → which points to receive into `@snapshots`, and how each
//! subvolume gets its canonical, writable name.
//!
//! Interruption safety: `btrfs receive` marks a subvolume complete only at its very end (it
//! sets the received UUID and makes it read-only), so a point under `@snapshots` counts as
//! received only with both; a re-run skips those and deletes an incomplete one before
//! receiving it again. Both marks are no proof after a power cut when the point's data had
//! not reached the disk: a point that [`super::unwritten`] lists is received again too. The
//! canonical subvolume (`@home`) is a snapshot of a complete point, made in one step, so it
//! never holds a partial restore.

use serde::Serialize;
use uuid::Uuid;

use super::inventory::Point;
use super::select::{target_name, Chain};

/// The directory (in the pool's top level) that holds received points.
pub const SNAPSHOTS: &str = "@snapshots";

/// What a canonical subvolume (`@home`) is on the target pool now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "parent")]
pub enum CanonicalState {
    Absent,
    /// Holds nothing (as provisioning leaves it).
    Empty,
    /// Has data; its parent UUID (a snapshot's origin) when it has one.
    HasData(Option<Uuid>),
}

/// What the target pool holds now.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Complete received points directly under `@snapshots` (read-only, with a received
    /// UUID): name and UUID.
    pub received: Vec<(String, Uuid)>,
    /// Names under `@snapshots` whose receive an interrupted run started and did not see
    /// written to the disk ([`super::unwritten`]): not complete, whatever their marks.
    pub unwritten: Vec<String>,
    /// The canonical subvolumes by name; missing ones are [`CanonicalState::Absent`].
    pub canonical: Vec<(String, CanonicalState)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receive {
    pub point: Point,
    /// Its name under `@snapshots`.
    pub name: String,
    /// For an incremental stream: the name (under `@snapshots`) of the point it builds on.
    pub on: Option<String>,
    /// Already there from an earlier run.
    pub done: bool,
    /// There with the marks of a complete point, from a run interrupted before the point
    /// was on the disk: deleted and received again.
    pub again: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action", content = "to")]
pub enum Canonical {
    /// Already a snapshot of the chosen point: nothing to do.
    Keep,
    /// Snapshot the chosen point under the canonical name.
    Create,
    /// Delete the empty subvolume provisioning made, then snapshot.
    ReplaceEmpty,
    /// Rename the subvolume that has data to this name (nothing is deleted), then snapshot.
    MoveAside(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubvolPlan {
    pub subvol: String,
    pub receives: Vec<Receive>,
    /// The name under `@snapshots` of the point the subvolume becomes.
    pub from: String,
    pub canonical: Canonical,
}

impl SubvolPlan {
    pub fn is_done(&self) -> bool {
        self.canonical == Canonical::Keep && self.receives.iter().all(|r| r.done)
    }
}

/// `stamp` names what is moved aside (`@home.before-restore-20261125T1200`).
pub fn plan(chains: &[Chain], target: &Target, stamp: &str) -> Vec<SubvolPlan> {
    let unwritten = |name: &str| target.unwritten.iter().any(|n| n == name);
    let marked = |name: &str| target.received.iter().any(|(n, _)| n == name);
    let uuid_of = |name: &str| {
        target
            .received
            .iter()
            .find(|(n, _)| n == name && !unwritten(n))
            .map(|(_, u)| *u)
    };
    chains
        .iter()
        .map(|chain| {
            let names: Vec<String> = chain.points.iter().map(target_name).collect();
            let receives = chain
                .points
                .iter()
                .zip(&names)
                .enumerate()
                .map(|(i, (point, name))| Receive {
                    point: point.clone(),
                    name: name.clone(),
                    on: (i > 0).then(|| names[i - 1].clone()),
                    done: uuid_of(name).is_some(),
                    again: marked(name) && unwritten(name),
                })
                .collect();
            let from = names.last().cloned().unwrap_or_default();
            let found = target
                .canonical
                .iter()
                .find(|(n, _)| *n == chain.subvol)
                .map(|(_, f)| f.clone())
                .unwrap_or(CanonicalState::Absent);
            let canonical = match found {
                CanonicalState::Absent => Canonical::Create,
                CanonicalState::Empty => Canonical::ReplaceEmpty,
                CanonicalState::HasData(parent) if parent.is_some() && parent == uuid_of(&from) => {
                    Canonical::Keep
                }
                CanonicalState::HasData(_) => {
                    Canonical::MoveAside(format!("{}.before-restore-{stamp}", chain.subvol))
                }
            };
            SubvolPlan {
                subvol: chain.subvol.clone(),
                receives,
                from,
                canonical,
            }
        })
        .collect()
}

/// The plan as the lines printed before the confirmation.
pub fn render(plans: &[SubvolPlan]) -> String {
    let mut out = String::new();
    for p in plans {
        out.push_str(&format!("  {}:\n", p.subvol));
        for r in &p.receives {
            let how = match (&r.on, r.point.kind) {
                (Some(on), _) => format!("incremental on {on}"),
                (None, super::inventory::Kind::Stream) => "full stream".to_owned(),
                (None, _) => "btrfs send, whole".to_owned(),
            };
            let again = if r.again {
                " again (an interrupted run received it and did not see it on the disk)"
            } else {
                ""
            };
            out.push_str(&format!(
                "    {} receive {} ({}, {how}) as {SNAPSHOTS}/{}{again}\n",
                if r.done { "done:" } else { "-" },
                r.point.path,
                super::points::format_time(r.point.time),
                r.name
            ));
        }
        let line = match &p.canonical {
            Canonical::Keep => {
                format!("done: {} is a snapshot of {SNAPSHOTS}/{}", p.subvol, p.from)
            }
            Canonical::Create => format!(
                "- snapshot {SNAPSHOTS}/{} as {}, writable",
                p.from, p.subvol
            ),
            Canonical::ReplaceEmpty => format!(
                "- replace the empty {} with a writable snapshot of {SNAPSHOTS}/{}",
                p.subvol, p.from
            ),
            Canonical::MoveAside(to) => format!(
                "- rename the existing {} to {to} (kept), then snapshot {SNAPSHOTS}/{} as {}",
                p.subvol, p.from, p.subvol
            ),
        };
        out.push_str(&format!("    {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::inventory::Kind;

    fn point(kind: Kind, path: &str) -> Point {
        Point::named("@home", kind, 0, path)
    }

    fn chain() -> Vec<Chain> {
        vec![Chain {
            subvol: "@home".into(),
            points: vec![
                point(Kind::Stream, "raw/@home.20261119T0300.btrfs.zst"),
                point(Kind::Stream, "raw/@home.20261120T0300.btrfs"),
            ],
        }]
    }

    fn u(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn a_fresh_pool_receives_the_chain_and_replaces_the_empty_subvolume() {
        let target = Target {
            received: vec![],
            unwritten: vec![],
            canonical: vec![("@home".into(), CanonicalState::Empty)],
        };
        let p = &plan(&chain(), &target, "S")[0];
        let names: Vec<(&str, Option<&str>, bool)> = p
            .receives
            .iter()
            .map(|r| (r.name.as_str(), r.on.as_deref(), r.done))
            .collect();
        assert_eq!(
            names,
            [
                ("@home.20261119T0300", None, false),
                ("@home.20261120T0300", Some("@home.20261119T0300"), false)
            ]
        );
        assert_eq!(p.from, "@home.20261120T0300");
        assert_eq!(p.canonical, Canonical::ReplaceEmpty);
        assert!(!p.is_done());
        let text = render(std::slice::from_ref(p));
        assert!(
            text.contains("- receive raw/@home.20261120T0300.btrfs (1970-01-01 00:00:00 UTC, incremental on @home.20261119T0300) as @snapshots/@home.20261120T0300"),
            "{text}"
        );
    }

    #[test]
    fn a_rerun_skips_what_is_complete_and_keeps_the_finished_subvolume() {
        // Interrupted after the first receive: it is skipped, the second is not.
        let target = Target {
            received: vec![("@home.20261119T0300".into(), u(1))],
            unwritten: vec![],
            canonical: vec![("@home".into(), CanonicalState::Empty)],
        };
        let p = &plan(&chain(), &target, "S")[0];
        assert_eq!(
            p.receives.iter().map(|r| r.done).collect::<Vec<_>>(),
            [true, false]
        );
        // Finished: @home is a snapshot of the chosen point.
        let target = Target {
            received: vec![
                ("@home.20261119T0300".into(), u(1)),
                ("@home.20261120T0300".into(), u(2)),
            ],
            unwritten: vec![],
            canonical: vec![("@home".into(), CanonicalState::HasData(Some(u(2))))],
        };
        let p = &plan(&chain(), &target, "S")[0];
        assert!(p.is_done());
    }

    #[test]
    fn a_point_not_seen_on_the_disk_is_received_again_whatever_its_marks() {
        // A power cut after the second receive ended, before its sync: both points carry
        // the marks, the journal names the second.
        let target = Target {
            received: vec![
                ("@home.20261119T0300".into(), u(1)),
                ("@home.20261120T0300".into(), u(2)),
            ],
            unwritten: vec!["@home.20261120T0300".into(), "@rootTW.20261120T0300".into()],
            canonical: vec![("@home".into(), CanonicalState::Empty)],
        };
        let p = &plan(&chain(), &target, "S")[0];
        assert_eq!(
            p.receives
                .iter()
                .map(|r| (r.done, r.again))
                .collect::<Vec<_>>(),
            [(true, false), (false, true)]
        );
        assert_eq!(p.canonical, Canonical::ReplaceEmpty);
        let text = render(std::slice::from_ref(p));
        assert!(
            text.contains("as @snapshots/@home.20261120T0300 again (an interrupted run received it and did not see it on the disk)"),
            "{text}"
        );
        assert!(
            text.contains("done: receive raw/@home.20261119T0300.btrfs.zst"),
            "{text}"
        );
        // Listed but not there (cut before the receive began): a plain receive.
        let target = Target {
            unwritten: vec!["@home.20261120T0300".into()],
            ..Target::default()
        };
        let p = &plan(&chain(), &target, "S")[0];
        assert!(p.receives.iter().all(|r| !r.done && !r.again));
        // A canonical subvolume made from a point the journal still names (no run leaves
        // this: the name goes out before the snapshot is made): kept aside, not deleted.
        let target = Target {
            received: vec![("@home.20261120T0300".into(), u(2))],
            unwritten: vec!["@home.20261120T0300".into()],
            canonical: vec![("@home".into(), CanonicalState::HasData(Some(u(2))))],
        };
        let p = &plan(&chain(), &target, "S")[0];
        assert!(
            matches!(p.canonical, Canonical::MoveAside(_)),
            "{:?}",
            p.canonical
        );
    }

    #[test]
    fn data_in_the_way_is_moved_aside_never_deleted() {
        let target = Target {
            received: vec![("@home.20261120T0300".into(), u(2))],
            unwritten: vec![],
            canonical: vec![("@home".into(), CanonicalState::HasData(Some(u(9))))],
        };
        let p = &plan(&chain(), &target, "20261125T1200")[0];
        assert_eq!(
            p.canonical,
            Canonical::MoveAside("@home.before-restore-20261125T1200".into())
        );
        let target = Target::default();
        assert_eq!(plan(&chain(), &target, "S")[0].canonical, Canonical::Create);
    }
}
