//! Copying a directory tree between filesystems, for the boot backup (/boot and the ESPs
//! into the meta subvolume, e.g. myhost-meta, and back). Regular files, directories and symlinks; modes and
//! modification times are kept where the destination can hold them (FAT cannot hold
//! modes or symlinks: a symlink is then skipped and counted).

use std::fs::{self, File, FileTimes};
use std::io;
use std::path::Path;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
    /// Symlinks the destination could not hold.
    pub skipped: u64,
}

/// Copy everything inside `from` into `to` (created if missing), replacing files of the
/// same name; nothing in `to` is deleted.
pub fn copy(from: &Path, to: &Path) -> io::Result<Copied> {
    let mut done = Copied::default();
    fs::create_dir_all(to).map_err(|e| at(to, e))?;
    // Directories get their mode and mtime once everything inside them is written (which
    // changes their mtime), the deepest first.
    let mut dirs = Vec::new();
    // Symlinks are copied as links, never followed (`from` itself may be one).
    for entry in walkdir::WalkDir::new(from).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(from).to_owned();
            let source = e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("a directory loop"));
            at(&path, source)
        })?;
        let src = entry.path();
        let Ok(rel) = src.strip_prefix(from) else {
            continue;
        };
        let dst = to.join(rel);
        let meta = fs::symlink_metadata(src).map_err(|e| at(src, e))?;
        if meta.is_dir() {
            fs::create_dir_all(&dst).map_err(|e| at(&dst, e))?;
            dirs.push((dst, meta));
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(src).map_err(|e| at(src, e))?;
            let _ = fs::remove_file(&dst);
            if std::os::unix::fs::symlink(&target, &dst).is_err() {
                done.skipped += 1;
            }
        } else if meta.is_file() {
            let mut input = File::open(src).map_err(|e| at(src, e))?;
            let mut output = File::create(&dst).map_err(|e| at(&dst, e))?;
            done.bytes += io::copy(&mut input, &mut output).map_err(|e| at(&dst, e))?;
            output.sync_all().map_err(|e| at(&dst, e))?;
            drop(output);
            keep_attributes(&dst, &meta);
            done.files += 1;
        }
    }
    for (dst, meta) in dirs.iter().rev() {
        keep_attributes(dst, meta);
    }
    Ok(done)
}

/// Mode and mtime, where the filesystem takes them (FAT refuses most modes: fine).
fn keep_attributes(path: &Path, meta: &fs::Metadata) {
    let _ = fs::set_permissions(path, meta.permissions());
    if let (Ok(modified), Ok(file)) = (meta.modified(), File::options().write(true).open(path)) {
        let _ = file.set_times(FileTimes::new().set_modified(modified));
    }
    if meta.is_dir() {
        if let (Ok(modified), Ok(dir)) = (meta.modified(), File::open(path)) {
            let _ = dir.set_times(FileTimes::new().set_modified(modified));
        }
    }
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_symlinks_and_modes_without_deleting() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::create_dir_all(a.path().join("loader/entries")).unwrap();
        fs::write(a.path().join("loader/entries/tw.conf"), "title TW\n").unwrap();
        fs::write(a.path().join("vmlinuz-6.1"), vec![7u8; 100_000]).unwrap();
        fs::set_permissions(
            a.path().join("vmlinuz-6.1"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("vmlinuz-6.1", a.path().join("vmlinuz")).unwrap();
        fs::write(b.path().join("extra"), "kept").unwrap();
        let done = copy(a.path(), b.path()).unwrap();
        assert_eq!(
            done,
            Copied {
                files: 2,
                bytes: 100_000 + 9,
                skipped: 0
            }
        );
        assert_eq!(
            fs::read(b.path().join("vmlinuz-6.1")).unwrap(),
            vec![7u8; 100_000]
        );
        let mode = fs::metadata(b.path().join("vmlinuz-6.1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_link(b.path().join("vmlinuz")).unwrap(),
            Path::new("vmlinuz-6.1")
        );
        assert_eq!(fs::read_to_string(b.path().join("extra")).unwrap(), "kept");
    }

    #[test]
    fn a_symlink_to_a_directory_is_copied_as_a_link_and_directories_keep_their_mtime() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("big"), vec![1u8; 4096]).unwrap();
        fs::create_dir_all(a.path().join("efi/boot")).unwrap();
        fs::write(a.path().join("efi/boot/bootx64.efi"), "pe").unwrap();
        std::os::unix::fs::symlink(outside.path(), a.path().join("efi/elsewhere")).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for dir in ["efi/boot", "efi"] {
            File::open(a.path().join(dir))
                .unwrap()
                .set_times(FileTimes::new().set_modified(old))
                .unwrap();
        }
        let done = copy(a.path(), b.path()).unwrap();
        assert_eq!((done.files, done.bytes), (1, 2), "{done:?}");
        assert_eq!(
            fs::read_link(b.path().join("efi/elsewhere")).unwrap(),
            outside.path()
        );
        for dir in ["efi/boot", "efi"] {
            let copied = fs::metadata(b.path().join(dir))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(copied, old, "{dir}");
        }
    }
}
