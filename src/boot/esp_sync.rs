//! Mirroring ESP0 onto ESP1 on real directories: listing a tree, the guards against the
//! classic disasters, and carrying out a [`sync_plan`](super::sync_plan) plan. A file is
//! written under a temporary name and renamed over its real name only once complete and
//! flushed, so a full ESP or a pulled plug never leaves a half-written loader behind.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sync_plan::{Node, SyncAction, Tree};
use crate::mountinfo::{fstype_at, mount_inside};

/// Suffix of files being written; a leftover one (after a crash) is an extra that the next
/// sync removes.
pub const TEMP_SUFFIX: &str = crate::atomic_file::PARTIAL_SUFFIX;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{side} {path} is not a mount point; mount the ESP there first (a sync into a plain directory would fill the root filesystem, or copy nothing)", path = path.display())]
    NotMounted { side: &'static str, path: PathBuf },
    #[error("{side} {path} holds {fstype}, not FAT: that is not an ESP", path = path.display())]
    NotFat {
        side: &'static str,
        path: PathBuf,
        fstype: String,
    },
    #[error("source {} is empty: refusing to mirror nothing onto {} (that would delete its loaders)", from.display(), to.display())]
    EmptySource { from: PathBuf, to: PathBuf },
    #[error("source {} has no EFI/ directory, so it holds no loaders: refusing to mirror it onto {}", from.display(), to.display())]
    NoEfiDir { from: PathBuf, to: PathBuf },
    #[error("source {} and destination {} are the same filesystem", from.display(), to.display())]
    SameFilesystem { from: PathBuf, to: PathBuf },
    #[error("{inner_side} {} lies inside {outer_side} {}: {why}; mount the two ESPs on directories apart from each other", inner.display(), outer.display())]
    Nested {
        inner_side: &'static str,
        inner: PathBuf,
        outer_side: &'static str,
        outer: PathBuf,
        why: &'static str,
    },
    #[error("{} is a mount point inside {}: esp-sync never walks or deletes across a mount point; unmount it first", mount.display(), root.display())]
    MountInside { mount: PathBuf, root: PathBuf },
    #[error("the destination ESP is full: {} ({}) does not fit; nothing is left half-written, files copied before it are in place", path.display(), crate::spec::human(*len))]
    Full { path: PathBuf, len: u64 },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SyncError {
    let path = path.to_owned();
    move |source| SyncError::Io { what, path, source }
}

/// Both sides must be mounted FAT filesystems, different ones, neither inside the other,
/// and the source must look like an ESP (not empty, an EFI/ directory in any letter case).
pub fn check(from: &Path, to: &Path, mountinfo: &str) -> Result<(), SyncError> {
    let canonical = |p: &Path| fs::canonicalize(p).map_err(io("cannot open", p));
    apart(from, &canonical(from)?, to, &canonical(to)?)?;
    for (side, path) in [("source", from), ("destination", to)] {
        let canonical = canonical(path)?;
        match fstype_at(mountinfo, &canonical).as_deref() {
            None => {
                return Err(SyncError::NotMounted {
                    side,
                    path: path.to_owned(),
                })
            }
            Some(t) if t != "vfat" && t != "msdos" => {
                return Err(SyncError::NotFat {
                    side,
                    path: path.to_owned(),
                    fstype: t.to_owned(),
                })
            }
            Some(_) => {}
        }
        if let Some(mount) = mount_inside(mountinfo, &canonical) {
            return Err(SyncError::MountInside {
                mount,
                root: path.to_owned(),
            });
        }
    }
    let dev = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.dev())
            .map_err(io("cannot open", p))
    };
    if dev(from)? == dev(to)? {
        return Err(SyncError::SameFilesystem {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }
    let names: Vec<String> = fs::read_dir(from)
        .map_err(io("cannot read", from))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Err(SyncError::EmptySource {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }
    let has_efi = names.iter().any(|n| n.eq_ignore_ascii_case("EFI"))
        && fs::read_dir(from)
            .map_err(io("cannot read", from))?
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name().eq_ignore_ascii_case("EFI") && e.file_type().is_ok_and(|t| t.is_dir())
            });
    if !has_efi {
        return Err(SyncError::NoEfiDir {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }
    Ok(())
}

/// Neither side may lie inside the other (by their canonical paths `*_real`): a mirror into
/// its own source deletes the source, a source around its destination copies the
/// destination into itself. The same path twice is the same-filesystem guard's to refuse.
pub fn apart(from: &Path, from_real: &Path, to: &Path, to_real: &Path) -> Result<(), SyncError> {
    if from_real == to_real {
        return Ok(());
    }
    let nested = |inner_side, inner: &Path, outer_side, outer: &Path, why| SyncError::Nested {
        inner_side,
        inner: inner.to_owned(),
        outer_side,
        outer: outer.to_owned(),
        why,
    };
    if from_real.starts_with(to_real) {
        return Err(nested(
            "source",
            from,
            "destination",
            to,
            "mirroring would delete the source",
        ));
    }
    if to_real.starts_with(from_real) {
        return Err(nested(
            "destination",
            to,
            "source",
            from,
            "the mirror would copy the destination into itself",
        ));
    }
    Ok(())
}

/// Every file and directory under `root`, files with their SHA-256. Symlinks cannot exist
/// on FAT; anything that is neither file nor directory is skipped. Another filesystem
/// mounted anywhere inside is refused: its files are not the ESP's to copy or delete.
pub fn list(root: &Path) -> Result<Tree, SyncError> {
    let mut tree = Tree::new();
    walk(root, device_of(root)?, &mut tree)?;
    Ok(tree)
}

/// The filesystem `path` is on (st_dev).
fn device_of(path: &Path) -> Result<u64, SyncError> {
    Ok(fs::metadata(path).map_err(io("cannot open", path))?.dev())
}

/// `path` (not followed if a link) is on the filesystem `dev` of the tree at `root`.
fn on_filesystem(path: &Path, root: &Path, dev: u64) -> Result<fs::Metadata, SyncError> {
    let meta = fs::symlink_metadata(path).map_err(io("cannot read", path))?;
    if meta.dev() != dev {
        return Err(SyncError::MountInside {
            mount: path.to_owned(),
            root: root.to_owned(),
        });
    }
    Ok(meta)
}

fn walk(root: &Path, dev: u64, tree: &mut Tree) -> Result<(), SyncError> {
    // Symlinks are not followed (they are neither files nor directories here), and a
    // directory is checked before anything in it is read.
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.map_err(|e| walk_error(e, root))?;
        let path = entry.path();
        let Ok(inside) = path.strip_prefix(root) else {
            continue;
        };
        let rel = inside.to_path_buf();
        // The entry's own type and filesystem: a mount point reads as a directory of the
        // filesystem mounted on it.
        let kind = on_filesystem(path, root, dev)?.file_type();
        if kind.is_dir() {
            tree.insert(rel, Node::Dir);
        } else if kind.is_file() {
            let (len, sha256) = hash(path)?;
            tree.insert(rel, Node::File { len, sha256 });
        }
    }
    Ok(())
}

fn walk_error(e: walkdir::Error, dir: &Path) -> SyncError {
    let path = e.path().unwrap_or(dir).to_owned();
    let source = e
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("a directory loop"));
    io("cannot read", &path)(source)
}

fn hash(path: &Path) -> Result<(u64, [u8; 32]), SyncError> {
    let mut file = File::open(path).map_err(io("cannot read", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize().into()))
}

/// Carry out `actions` from `from` into `to`, telling `done` after each; then flush the
/// destination filesystem. Whatever is read, written or removed must still be on the two
/// filesystems that were listed: a mount made since is refused before it is touched.
pub fn apply(
    from: &Path,
    to: &Path,
    actions: &[SyncAction],
    mut done: impl FnMut(&SyncAction),
) -> Result<(), SyncError> {
    let (from_dev, to_dev) = (device_of(from)?, device_of(to)?);
    let parent_on_dest = |target: &Path| match target.parent() {
        Some(parent) => on_filesystem(parent, to, to_dev).map(|_| ()),
        None => Ok(()),
    };
    for action in actions {
        match action {
            SyncAction::Remove { path, .. } => {
                let target = to.join(path);
                parent_on_dest(&target)?;
                remove_tree(&target, to, to_dev)?;
            }
            SyncAction::MakeDir { path } => {
                let target = to.join(path);
                parent_on_dest(&target)?;
                fs::create_dir(&target).map_err(io("cannot create", &target))?;
            }
            SyncAction::Copy { path, len, .. } => {
                let (src, dest) = (from.join(path), to.join(path));
                on_filesystem(&src, from, from_dev)?;
                parent_on_dest(&dest)?;
                copy(&src, &dest, *len)?
            }
        }
        done(action);
    }
    let root = File::open(to).map_err(io("cannot open", to))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&root)).map_err(|e| SyncError::Io {
        what: "cannot flush",
        path: to.to_owned(),
        source: e.into(),
    })?;
    Ok(())
}

/// Remove a file or a directory with everything in it, after making sure all of it is on
/// the filesystem `dev` of the tree at `root` (so a refusal removes nothing).
fn remove_tree(path: &Path, root: &Path, dev: u64) -> Result<(), SyncError> {
    fn entries(dir: &Path) -> Result<Vec<PathBuf>, SyncError> {
        fs::read_dir(dir)
            .map_err(io("cannot read", dir))?
            .map(|e| e.map(|e| e.path()).map_err(io("cannot read", dir)))
            .collect()
    }
    fn check(path: &Path, root: &Path, dev: u64) -> Result<(), SyncError> {
        // Only a real directory is walked: walkdir would follow a symlink given as its root.
        if on_filesystem(path, root, dev)?.is_dir() {
            for entry in walkdir::WalkDir::new(path).min_depth(1) {
                let entry = entry.map_err(|e| walk_error(e, path))?;
                on_filesystem(entry.path(), root, dev)?;
            }
        }
        Ok(())
    }
    fn remove(path: &Path) -> Result<(), SyncError> {
        if fs::symlink_metadata(path)
            .map_err(io("cannot remove", path))?
            .is_dir()
        {
            for entry in entries(path)? {
                remove(&entry)?;
            }
            fs::remove_dir(path).map_err(io("cannot remove", path))
        } else {
            fs::remove_file(path).map_err(io("cannot remove", path))
        }
    }
    check(path, root, dev)?;
    remove(path)
}

/// Write `dest` through a temporary file beside it, flushed, then renamed over it.
fn copy(src: &Path, dest: &Path, len: u64) -> Result<(), SyncError> {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    let tmp = dest.with_file_name(name);
    let result = (|| -> Result<(), SyncError> {
        let mut input = File::open(src).map_err(io("cannot read", src))?;
        let mut output = File::create(&tmp).map_err(io("cannot create", &tmp))?;
        let full = |e: io::Error| {
            if e.raw_os_error() == Some(nix::libc::ENOSPC) {
                SyncError::Full {
                    path: dest.to_owned(),
                    len,
                }
            } else {
                SyncError::Io {
                    what: "cannot write",
                    path: tmp.clone(),
                    source: e,
                }
            }
        };
        io::copy(&mut input, &mut output).map_err(full)?;
        output.flush().map_err(full)?;
        output.sync_all().map_err(full)?;
        Ok(())
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err);
    }
    fs::rename(&tmp, dest).map_err(io("cannot rename into place", dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_side_may_lie_inside_the_other() {
        let check = |from: &str, to: &str| {
            apart(
                Path::new(from),
                Path::new(from),
                Path::new(to),
                Path::new(to),
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            check("/mnt/esp1/nested", "/mnt/esp1").unwrap_err(),
            "source /mnt/esp1/nested lies inside destination /mnt/esp1: mirroring would \
             delete the source; mount the two ESPs on directories apart from each other"
        );
        assert!(check("/boot/efi", "/boot/efi/EFI/x")
            .unwrap_err()
            .starts_with("destination /boot/efi/EFI/x lies inside source /boot/efi: "));
        // Siblings, a common prefix of letters but not of components, the same path (the
        // same-filesystem guard's case).
        assert!(check("/boot/efi", "/boot/efi2").is_ok());
        assert!(check("/boot/efi2", "/boot/efi").is_ok());
        assert!(check("/mnt/a", "/mnt/b").is_ok());
        assert!(check("/mnt/a", "/mnt/a").is_ok());
    }

    /// A tmpfs mounted on a directory; unmounted when dropped.
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        fn at(dir: &Path) -> Tmpfs {
            fs::create_dir_all(dir).unwrap();
            nix::mount::mount(
                Some("tmpfs"),
                dir,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
            Tmpfs(dir.to_owned())
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = nix::mount::umount(&self.0);
        }
    }

    #[test]
    fn another_filesystem_inside_is_neither_listed_nor_deleted() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        fs::create_dir_all(from.path().join("EFI/BOOT")).unwrap();
        fs::write(from.path().join("EFI/BOOT/BOOTX64.EFI"), b"loader").unwrap();
        let inside = to.path().join("EFI/extra");
        let mounted = Tmpfs::at(&inside);
        fs::write(inside.join("keep.bin"), b"not the ESP's").unwrap();

        let err = list(to.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} is a mount point inside {}: esp-sync never walks or deletes across a \
                 mount point; unmount it first",
                inside.display(),
                to.path().display()
            )
        );
        // Inside the source too: its files are not the ESP's to copy.
        let in_source = Tmpfs::at(&from.path().join("EFI/extra"));
        assert!(matches!(
            list(from.path()),
            Err(SyncError::MountInside { .. })
        ));
        drop(in_source);

        // Mounted after the listing: applying the plan removes nothing across it.
        let actions = [SyncAction::Remove {
            path: PathBuf::from("EFI"),
            dir: true,
        }];
        let err = apply(from.path(), to.path(), &actions, |_| {}).unwrap_err();
        assert!(matches!(err, SyncError::MountInside { .. }), "{err}");
        assert_eq!(fs::read(inside.join("keep.bin")).unwrap(), b"not the ESP's");
        drop(mounted);
        assert!(to.path().join("EFI/extra").is_dir());
    }

    #[test]
    fn listing_and_copying_a_real_tree() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        fs::create_dir_all(from.path().join("EFI/BOOT")).unwrap();
        fs::write(from.path().join("EFI/BOOT/BOOTX64.EFI"), b"loader").unwrap();
        fs::write(to.path().join("stale"), b"x").unwrap();
        let actions =
            super::super::sync_plan::plan(&list(from.path()).unwrap(), &list(to.path()).unwrap());
        let mut seen = 0;
        apply(from.path(), to.path(), &actions, |_| seen += 1).unwrap();
        assert_eq!(seen, actions.len());
        assert_eq!(list(from.path()).unwrap(), list(to.path()).unwrap());
        assert_eq!(
            fs::read(to.path().join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
            b"loader"
        );
    }
}
