//! The points a restore has started to receive and not yet seen written to the disk, kept
//! in `.lifeboat-receiving` in the pool's top level, one name under `@snapshots` a line.
//!
//! `btrfs receive` marks a point complete (read-only, with a received UUID) in a
//! transaction it commits at its end, while the files' data may still be in memory: after
//! a power cut a point can carry both marks and lack data. So a name is written here, and
//! flushed, before its receive starts, and taken out only after the point was synced
//! (`btrfs filesystem sync`) and has its final name. Btrfs commits a rename together with
//! the rest of its transaction, and the receive's own commit comes after this file's: a
//! point whose marks survived a power cut has its line here too, unless it was synced. A
//! re-run treats a point named here as incomplete: it is deleted and received again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// In the pool's top level, beside `@snapshots`.
pub const FILE: &str = ".lifeboat-receiving";

/// The names in the file (pure): one a line, blank lines ignored.
fn parse(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The names listed in the pool mounted (top level) at `top`; none without the file.
pub fn read(top: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(top.join(FILE)) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The file of one pool, shared by the subvolumes received side by side.
#[derive(Debug)]
pub struct Journal {
    top: PathBuf,
    names: Mutex<Vec<String>>,
}

impl Journal {
    /// The pool mounted (top level) at `top`, with the names an interrupted run left
    /// (what [`read`] found there).
    pub fn new(top: &Path, listed: Vec<String>) -> Journal {
        Journal {
            top: top.to_path_buf(),
            names: Mutex::new(listed),
        }
    }

    /// Whether `name` is listed: before this run begins it, an interrupted run left it.
    pub fn lists(&self, name: &str) -> bool {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().any(|n| n == name)
    }

    /// `name` is about to be received into `@snapshots`: on the disk before this returns.
    pub fn begin(&self, name: &str) -> io::Result<()> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        self.store(&names)
    }

    /// `name` was received, synced, and has its final name.
    pub fn end(&self, name: &str) -> io::Result<()> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.retain(|n| n != name);
        self.store(&names)
    }

    fn store(&self, names: &[String]) -> io::Result<()> {
        let path = self.top.join(FILE);
        if names.is_empty() {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        } else {
            let text: String = names.iter().map(|n| format!("{n}\n")).collect();
            crate::atomic_file::write(&path, text.as_bytes())?;
        }
        // The rename (or the removal) on the disk too, not only the file's bytes.
        fs::File::open(&self.top)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lines_and_blank_lines_are_ignored() {
        assert_eq!(
            parse("@home.20261120T0300\n\n  @rootTW.20261120T0300 \n"),
            ["@home.20261120T0300", "@rootTW.20261120T0300"]
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn a_name_is_listed_from_begin_to_end_and_the_file_goes_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path();
        fs::write(top.join(FILE), "@rootTW.20261120T0300\n").unwrap();
        let j = Journal::new(top, read(top).unwrap());
        assert!(j.lists("@rootTW.20261120T0300"));
        assert!(!j.lists("@home.20261120T0300"));
        j.begin("@home.20261120T0300").unwrap();
        j.begin("@home.20261120T0300").unwrap();
        assert_eq!(
            read(top).unwrap(),
            ["@rootTW.20261120T0300", "@home.20261120T0300"]
        );
        j.end("@rootTW.20261120T0300").unwrap();
        assert_eq!(read(top).unwrap(), ["@home.20261120T0300"]);
        j.end("@home.20261120T0300").unwrap();
        assert!(!top.join(FILE).exists());
        assert!(read(top).unwrap().is_empty());
        j.end("@home.20261120T0300").unwrap();
    }
}
