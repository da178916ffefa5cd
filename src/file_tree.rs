//! A directory tree as a value, compared by content: what `esp-sync` lists on a mounted ESP,
//! what is read from a FAT image in-process (`apply::fat::tree`), and what
//! `boot::sync_plan` compares.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One entry of a directory tree, by its path relative to the tree's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { len: u64, sha256: [u8; 32] },
}

/// A whole tree: relative path → entry (the root itself is not listed).
pub type Tree = BTreeMap<PathBuf, Node>;
