//! Which restic snapshot each mapped path is restored from (pure): the spec's
//! `[restic.paths]` (backed-up path → subvolume), the snapshots of this host with the
//! spec's tag, and `--snapshot ID`, `--at TIME` or `--latest`.

use serde::Serialize;

use super::snapshots::Snapshot;
use crate::restore::points::{self, Epoch};

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the spec has no [restic.paths]: say which backed-up path goes into which subvolume")]
    NoPaths,
    #[error("no snapshot of host {host} tagged {tag} holds {path} (for {subvol}){when}")]
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

/// Whether `path` is `root` or below it.
fn within(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `paths`: (backed-up path, subvolume), from the spec. `subvols`: only these (all when
/// empty). Snapshots newest first (as [`super::snapshots::parse`] gives them).
pub fn select(
    snaps: &[Snapshot],
    paths: &[(String, String)],
    subvols: &[String],
    host: &str,
    tag: &str,
    pick: &Pick,
) -> Result<Vec<Planned>, SelectError> {
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
    let mut out = Vec::new();
    for (path, subvol) in paths {
        if !subvols.is_empty() && !subvols.contains(subvol) {
            continue;
        }
        let holds = |s: &&Snapshot| s.paths.iter().any(|p| within(path, p));
        let chosen = match (fixed, pick) {
            (Some(s), _) => Some(s).filter(holds),
            (None, Pick::At(t)) => snaps
                .iter()
                .filter(|s| s.host == host && s.tags.iter().any(|x| x == tag) && s.time <= *t)
                .find(holds),
            (None, _) => snaps
                .iter()
                .filter(|s| s.host == host && s.tags.iter().any(|x| x == tag))
                .find(holds),
        };
        let Some(snapshot) = chosen else {
            return Err(SelectError::Missing {
                host: host.into(),
                tag: tag.into(),
                path: path.clone(),
                subvol: subvol.clone(),
                when: match pick {
                    Pick::At(t) => format!(" at or before {}", points::format_time(*t)),
                    Pick::Id(id) => format!(" (in snapshot {id})"),
                    Pick::Latest => String::new(),
                },
            });
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
    // Atlantis-meta (the boot backup) first, as from the USB drive.
    out.sort_by_key(|p| p.subvol != crate::restore::META);
    Ok(out)
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
        let got = select(&snaps(), &paths(), &[], "atlantis", "LINUX", &Pick::Latest).unwrap();
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

    #[test]
    fn at_an_id_and_the_refusals() {
        let home = ["@home".to_owned()];
        let got = select(
            &snaps(),
            &paths(),
            &home,
            "atlantis",
            "LINUX",
            &Pick::At(150),
        )
        .unwrap();
        assert_eq!(got[0].snapshot.id, "aa11");
        let got = select(
            &snaps(),
            &paths(),
            &home,
            "atlantis",
            "LINUX",
            &Pick::Id("aa".into()),
        )
        .unwrap();
        assert_eq!(got[0].snapshot.id, "aa11");
        let err = select(
            &snaps(),
            &paths(),
            &[],
            "atlantis",
            "LINUX",
            &Pick::Id("bb".into()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no snapshot of host atlantis tagged LINUX holds / (for @rootTW) (in snapshot bb)"
        );
        let err = select(&snaps(), &paths(), &[], "atlantis", "LINUX", &Pick::At(50)).unwrap_err();
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
                "LINUX",
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
                "LINUX",
                &Pick::Latest
            ),
            Err(SelectError::NotMapped("@rootF41".into()))
        );
        assert_eq!(
            select(&snaps(), &[], &[], "atlantis", "LINUX", &Pick::Latest),
            Err(SelectError::NoPaths)
        );
    }
}
