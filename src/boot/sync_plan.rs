//! What mirroring one ESP onto the other takes (pure): two listings in, ordered actions
//! out, with `rsync -a --delete` semantics. Files compare by content (length and SHA-256),
//! never by timestamp: FAT keeps times in local time at 2 s resolution, so times would
//! make every file look changed or, worse, hide a change.

use std::path::{Path, PathBuf};

// The listings compared: a mounted ESP's (esp_sync) and a FAT image's (apply::fat).
pub use crate::file_tree::{Node, Tree};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum SyncAction {
    /// A file or directory the destination has and the source has not (or has as the
    /// other kind). Directories go with everything in them; deepest first.
    Remove {
        path: PathBuf,
        dir: bool,
    },
    MakeDir {
        path: PathBuf,
    },
    /// A file that is new or whose content differs.
    Copy {
        path: PathBuf,
        len: u64,
        new: bool,
    },
}

impl SyncAction {
    pub fn path(&self) -> &Path {
        match self {
            SyncAction::Remove { path, .. }
            | SyncAction::MakeDir { path }
            | SyncAction::Copy { path, .. } => path,
        }
    }

    /// One line for people: `+ EFI/BOOT/BOOTX64.EFI (1.2 MiB)`.
    pub fn describe(&self) -> String {
        match self {
            SyncAction::Remove { path, dir: true } => {
                format!("- {}/ (and what is in it)", path.display())
            }
            SyncAction::Remove { path, dir: false } => format!("- {}", path.display()),
            SyncAction::MakeDir { path } => format!("+ {}/", path.display()),
            SyncAction::Copy { path, len, new } => format!(
                "{} {} ({})",
                if *new { "+" } else { "~" },
                path.display(),
                crate::spec::human(*len)
            ),
        }
    }
}

/// The actions that make `dest` hold exactly what `source` holds. Removals come first (so
/// a full ESP gets its space back before anything is copied), then directories, parents
/// before children, then files.
pub fn plan(source: &Tree, dest: &Tree) -> Vec<SyncAction> {
    let mut removals: Vec<(PathBuf, bool)> = Vec::new();
    for (path, node) in dest {
        // Something inside a directory that goes anyway needs no action of its own.
        if removals.iter().any(|(r, dir)| *dir && path.starts_with(r)) {
            continue;
        }
        let keep = matches!(
            (node, source.get(path)),
            (Node::Dir, Some(Node::Dir)) | (Node::File { .. }, Some(Node::File { .. }))
        );
        if !keep {
            removals.push((path.clone(), *node == Node::Dir));
        }
    }
    // Deepest first: BTreeMap order puts parents before children, so reverse it.
    removals.reverse();
    let removed = |p: &Path| removals.iter().any(|(r, _)| p.starts_with(r));

    let mut actions: Vec<SyncAction> = removals
        .iter()
        .map(|(path, dir)| SyncAction::Remove {
            path: path.clone(),
            dir: *dir,
        })
        .collect();
    for (path, node) in source {
        if *node == Node::Dir && (removed(path) || !dest.contains_key(path)) {
            actions.push(SyncAction::MakeDir { path: path.clone() });
        }
    }
    for (path, node) in source {
        let Node::File { len, sha256 } = node else {
            continue;
        };
        let there = if removed(path) { None } else { dest.get(path) };
        match there {
            Some(Node::File { len: l, sha256: s }) if l == len && s == sha256 => {}
            Some(_) => actions.push(SyncAction::Copy {
                path: path.clone(),
                len: *len,
                new: false,
            }),
            None => actions.push(SyncAction::Copy {
                path: path.clone(),
                len: *len,
                new: true,
            }),
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8, len: u64) -> Node {
        Node::File {
            len,
            sha256: [n; 32],
        }
    }

    fn tree(entries: &[(&str, Node)]) -> Tree {
        entries
            .iter()
            .map(|(p, n)| (PathBuf::from(p), n.clone()))
            .collect()
    }

    fn lines(actions: &[SyncAction]) -> Vec<String> {
        actions.iter().map(SyncAction::describe).collect()
    }

    #[test]
    fn identical_trees_need_nothing() {
        let t = tree(&[
            ("EFI", Node::Dir),
            ("EFI/BOOT", Node::Dir),
            ("EFI/BOOT/BOOTX64.EFI", file(1, 10)),
        ]);
        assert!(plan(&t, &t).is_empty());
    }

    #[test]
    fn an_empty_destination_gets_everything_parents_first() {
        let s = tree(&[
            ("EFI", Node::Dir),
            ("EFI/BOOT", Node::Dir),
            ("EFI/BOOT/BOOTX64.EFI", file(1, 2048)),
            ("loader.conf", file(2, 5)),
        ]);
        assert_eq!(
            lines(&plan(&s, &Tree::new())),
            [
                "+ EFI/",
                "+ EFI/BOOT/",
                "+ EFI/BOOT/BOOTX64.EFI (2.05 KB)",
                "+ loader.conf (5 B)"
            ]
        );
    }

    #[test]
    fn changed_content_is_copied_and_same_content_is_not() {
        let s = tree(&[("a", file(1, 10)), ("b", file(2, 10)), ("c", file(3, 10))]);
        // b: same length, other bytes; c: other length.
        let d = tree(&[("a", file(1, 10)), ("b", file(9, 10)), ("c", file(3, 11))]);
        assert_eq!(lines(&plan(&s, &d)), ["~ b (10 B)", "~ c (10 B)"]);
    }

    #[test]
    fn extras_are_removed_first_deepest_first_and_once() {
        let s = tree(&[("EFI", Node::Dir), ("EFI/x", file(1, 1))]);
        let d = tree(&[
            ("EFI", Node::Dir),
            ("EFI/old", Node::Dir),
            ("EFI/old/deep", Node::Dir),
            ("EFI/old/deep/f", file(5, 1)),
            ("EFI/stale.efi", file(6, 1)),
            ("zz", file(7, 1)),
        ]);
        assert_eq!(
            lines(&plan(&s, &d)),
            [
                "- zz",
                "- EFI/stale.efi",
                "- EFI/old/ (and what is in it)",
                "+ EFI/x (1 B)"
            ]
        );
    }

    #[test]
    fn a_file_replaced_by_a_directory_and_back() {
        let s = tree(&[("a", Node::Dir), ("a/inner", file(1, 1)), ("b", file(2, 1))]);
        let d = tree(&[("a", file(3, 1)), ("b", Node::Dir), ("b/x", file(4, 1))]);
        assert_eq!(
            lines(&plan(&s, &d)),
            [
                "- b/ (and what is in it)",
                "- a",
                "+ a/",
                "+ a/inner (1 B)",
                "+ b (1 B)"
            ]
        );
    }
}
