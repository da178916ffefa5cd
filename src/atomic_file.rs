//! Files that are either whole or absent: written under `NAME.lifeboat-partial`, flushed,
//! renamed over NAME. The suffix is one constant, so every reader (esp-sync's extras, a
//! restore's leftovers, stage, backup-boot) recognises what an interrupted run left.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Suffix of what is still being written; a leftover one is an interrupted run's.
pub const PARTIAL_SUFFIX: &str = ".lifeboat-partial";

/// `path` with [`PARTIAL_SUFFIX`] appended (`@home` → `@home.lifeboat-partial`).
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

/// Write beside `path` and rename into place (creating its directory): a crash or a full
/// filesystem never leaves a half-written file under the real name.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = partial_path(path);
    let result = fs::write(&tmp, bytes)
        .and_then(|()| fs::File::open(&tmp)?.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_whole_and_no_partial_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.conf");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!partial_path(&path).exists());
        assert_eq!(
            partial_path(Path::new("/x/@home")),
            Path::new("/x/@home.lifeboat-partial")
        );
    }

    #[test]
    fn a_failed_write_leaves_neither_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the partial file was written.
        let path = dir.path().join("taken");
        fs::create_dir_all(path.join("inside")).unwrap();
        assert!(write(&path, b"x").is_err());
        assert!(!partial_path(&path).exists());
    }
}
