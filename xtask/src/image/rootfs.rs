//! The live root's staging directory: packages extracted with dpkg-deb, trimmed, the
//! rootfs/ overlay on top, lifeboat and its configs, and what package scripts would have
//! made (the CA bundle, /bin/sh).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::run_quiet;

/// Paths no one reads on a rescue stick.
const STRIP: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/bash-completion",
    "usr/share/zsh",
    // glibc's iconv converters (8 MB): nothing on the stick converts character sets
    // through iconv; ntfs-3g has its own UTF-16 code.
    "usr/lib/x86_64-linux-gnu/gconv",
];

/// Extract each .deb into `dest` (made empty first).
pub fn extract(sh: &Shell, debs: &[PathBuf], dest: &Path) -> Result<()> {
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    for deb in debs {
        run_quiet(cmd!(sh, "dpkg-deb -x {deb} {dest}"))
            .with_context(|| format!("extracting {}", deb.display()))?;
    }
    Ok(())
}

pub fn strip(root: &Path) -> Result<()> {
    for rel in STRIP {
        let path = root.join(rel);
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Copy `from` over `to`, recursively, keeping permission bits and symlinks.
pub fn overlay(from: &Path, to: &Path) -> Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_dir() {
            fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
            overlay(&src, &dst)?;
        } else if ft.is_symlink() {
            let _ = fs::remove_file(&dst);
            symlink(fs::read_link(&src)?, &dst)
                .with_context(|| format!("linking {}", dst.display()))?;
        } else {
            let _ = fs::remove_file(&dst);
            fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// What dpkg's maintainer scripts would have done, and the mount points init needs.
pub fn fixups(root: &Path) -> Result<()> {
    for dir in [
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
        "mnt",
        "etc/ssl/certs",
    ] {
        let path = root.join(dir);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    // update-ca-certificates (ca-certificates' postinst) concatenates the certificates.
    let certs = root.join("usr/share/ca-certificates");
    if certs.is_dir() {
        let mut files = Vec::new();
        collect_crt(&certs, &mut files)?;
        files.sort();
        let mut bundle = Vec::new();
        for f in &files {
            bundle.extend(fs::read(f).with_context(|| format!("reading {}", f.display()))?);
            if !bundle.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
        fs::write(root.join("etc/ssl/certs/ca-certificates.crt"), bundle)
            .context("writing the CA bundle")?;
    }
    // busybox-static ships only /bin/busybox; init's `busybox --install -s` adds the
    // rest, but /bin/sh must exist before (scripts, `lifeboat menu`'s shell).
    let sh = root.join("bin/sh");
    if fs::symlink_metadata(&sh).is_err() {
        symlink("busybox", &sh).context("linking /bin/sh to busybox")?;
    }
    Ok(())
}

fn collect_crt(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_crt(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "crt") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixups_make_the_bundle_and_sh() {
        let root = std::env::temp_dir().join(format!("xtask-rootfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("usr/share/ca-certificates/mozilla")).unwrap();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("usr/share/ca-certificates/mozilla/B.crt"), "b").unwrap();
        fs::write(root.join("usr/share/ca-certificates/mozilla/A.crt"), "a\n").unwrap();
        fixups(&root).unwrap();
        let bundle = fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
        assert_eq!(bundle, "a\nb\n");
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert!(root.join("dev").is_dir());
        fs::remove_dir_all(&root).unwrap();
    }
}
