//! The initramfs: a newc cpio of the staging root, written with the `cpio` crate and
//! compressed with zstd. Reproducible: entries sorted by path, every mtime the same,
//! owner root, inode numbers by position.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cpio::newc::Builder;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

pub struct Initramfs {
    pub compressed: Vec<u8>,
    pub raw_len: u64,
    pub entries: usize,
}

/// Every path under `root`, relative, sorted bytewise (parents before children).
pub fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                stack.push(child.clone());
            }
            out.push(child);
        }
    }
    out.sort();
    Ok(out)
}

pub fn build(root: &Path, mtime: u64, level: i32) -> Result<Initramfs> {
    let mtime = u32::try_from(mtime).context("SOURCE_DATE_EPOCH does not fit a cpio header")?;
    if !root.join("dev").is_dir() {
        bail!("{} has no dev/ directory for /dev/console", root.display());
    }
    let mut paths = walk(root)?;
    // The kernel opens /dev/console for init before anything mounts devtmpfs.
    let console = PathBuf::from("dev/console");
    if !paths.contains(&console) {
        paths.push(console.clone());
        paths.sort();
    }
    let mut raw = CountingWriter::new(zstd::stream::Encoder::new(Vec::new(), level)?);
    for (i, rel) in paths.iter().enumerate() {
        let name = rel
            .to_str()
            .with_context(|| format!("{} is not UTF-8", rel.display()))?;
        let header = Builder::new(name)
            .ino(i as u32 + 1)
            .uid(0)
            .gid(0)
            .mtime(mtime)
            .nlink(1);
        if *rel == console && !root.join(rel).exists() {
            let w = header
                .mode(S_IFCHR | 0o600)
                .rdev_major(5)
                .rdev_minor(1)
                .write(&mut raw, 0);
            w.finish()?;
            continue;
        }
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).with_context(|| format!("{}", path.display()))?;
        let perm = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        let (mode, body) = if ft.is_dir() {
            (S_IFDIR | perm, Vec::new())
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            (
                S_IFLNK | 0o777,
                target.into_os_string().into_encoded_bytes(),
            )
        } else if ft.is_file() {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            (S_IFREG | perm, bytes)
        } else {
            bail!(
                "{} is neither a file, a directory nor a symlink (mode {:o})",
                path.display(),
                meta.mode()
            );
        };
        let size = u32::try_from(body.len()).context("a file over 4 GiB")?;
        let mut w = header.mode(mode).write(&mut raw, size);
        w.write_all(&body)?;
        w.finish()?;
    }
    cpio::newc::trailer(&mut raw)?;
    let raw_len = raw.count;
    let compressed = raw.inner.finish()?;
    Ok(Initramfs {
        compressed,
        raw_len,
        entries: paths.len(),
    })
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W> CountingWriter<W> {
    fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("dev")).unwrap();
        fs::create_dir_all(dir.join("etc/x")).unwrap();
        fs::write(dir.join("init"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.join("init"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("etc/x/a"), "a").unwrap();
        symlink("busybox", dir.join("bin/sh")).unwrap();
    }

    #[test]
    fn the_archive_is_sorted_reproducible_and_readable() {
        let base = std::env::temp_dir().join(format!("xtask-initramfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        tree(&base.join("one"));
        tree(&base.join("two"));
        // Different mtimes on disk must not matter.
        let a = build(&base.join("one"), 1_767_225_600, 3).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs::write(base.join("two/etc/x/a"), "a").unwrap();
        let b = build(&base.join("two"), 1_767_225_600, 3).unwrap();
        assert_eq!(a.compressed, b.compressed);

        let raw = zstd::decode_all(&a.compressed[..]).unwrap();
        assert_eq!(raw.len() as u64, a.raw_len);
        let mut names = Vec::new();
        let mut rest = &raw[..];
        loop {
            let r = cpio::NewcReader::new(rest).unwrap();
            if r.entry().is_trailer() {
                break;
            }
            let e = r.entry();
            names.push((e.name().to_owned(), e.mode(), e.mtime()));
            rest = r.finish().unwrap();
        }
        let only: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(
            only,
            [
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "etc",
                "etc/x",
                "etc/x/a",
                "init"
            ]
        );
        assert_eq!(names[1].1, S_IFLNK | 0o777);
        assert_eq!(names[3].1, S_IFCHR | 0o600);
        assert_eq!(names[7].1, S_IFREG | 0o755);
        assert!(names.iter().all(|n| n.2 == 1_767_225_600));
        fs::remove_dir_all(&base).unwrap();
    }
}
