//! The scenario machine's disks: qcow2 files of the real sizes. Each content kind is made
//! once into a base image under target/qemu/cache/; every run gets a copy-on-write overlay
//! of it, so a run never changes the base and `qemu-img compare` can tell what the guest
//! wrote.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::scenario::Content;
use crate::disks::{lay_out, LoopDisk, FACTORY_DISK0};
use crate::{require_root, run_quiet, target_dir};

/// Bumped when what a content kind holds changes, so old bases are not reused.
const BASE_VERSION: u32 = 1;

pub fn cache_dir() -> PathBuf {
    target_dir().join("qemu").join("cache")
}

/// The base image for `content` at `bytes`, made if missing.
pub fn base(sh: &Shell, content: Content, bytes: u64) -> Result<PathBuf> {
    let dir = cache_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}-{bytes}-v{BASE_VERSION}.qcow2", content.name()));
    if path.exists() {
        return Ok(path);
    }
    // Built under a temporary name: an interrupted build never looks finished.
    let tmp = dir.join(format!(".{}.tmp", content.name()));
    let _ = fs::remove_file(&tmp);
    match content {
        Content::Blank => {
            let size = bytes.to_string();
            run_quiet(cmd!(sh, "qemu-img create -q -f qcow2 {tmp} {size}"))?;
        }
        Content::FactoryWindows => factory_windows(sh, &dir, &tmp, bytes)
            .context("making the factory Windows disk (GPT, ESP0, NTFS)")?,
    }
    fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(path)
}

/// sgdisk and mkfs on a loop device over a sparse raw file, then converted to qcow2
/// (qemu-img copies only the written parts).
fn factory_windows(sh: &Shell, dir: &Path, out: &Path, bytes: u64) -> Result<()> {
    require_root("qemu` (first run, to make the factory disk0 on a loop device)")?;
    let work = dir.join(".factory-work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let disk = LoopDisk::attach(sh, "disk0", bytes, &work)?;
        lay_out(sh, &disk, FACTORY_DISK0, &work)?;
        let raw = disk.image.clone();
        disk.close()?;
        run_quiet(cmd!(sh, "qemu-img convert -f raw -O qcow2 {raw} {out}"))?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// A copy-on-write overlay of `base` for one run.
pub fn overlay(sh: &Shell, base: &Path, out: &Path) -> Result<()> {
    let _ = fs::remove_file(out);
    run_quiet(cmd!(
        sh,
        "qemu-img create -q -f qcow2 -F qcow2 -b {base} {out}"
    ))?;
    Ok(())
}

/// Whether the guest-visible contents of `run` and `base` are the same, as qemu-img
/// compare sees them (exit 0 identical, 1 different, 2 error).
pub fn identical(sh: &Shell, run: &Path, base: &Path) -> Result<bool> {
    let out = cmd!(sh, "qemu-img compare -f qcow2 -F qcow2 {run} {base}")
        .quiet()
        .ignore_status()
        .output()?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => anyhow::bail!(
            "qemu-img compare {} {} failed: {}",
            run.display(),
            base.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unchanged-disk check must be able to fail: one guest-visible write to an
    /// overlay (through qemu-io, as a guest would write) makes it differ from its base.
    #[test]
    fn compare_sees_a_write_to_the_overlay() {
        let sh = Shell::new().unwrap();
        let dir = std::env::temp_dir().join(format!("xtask-media-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let base = dir.join("base.qcow2");
        let run = dir.join("run.qcow2");
        run_quiet(cmd!(sh, "qemu-img create -q -f qcow2 {base} 1G")).unwrap();
        run_quiet(cmd!(sh, "qemu-io -f qcow2 -c 'write -P 0x5a 1M 4k' {base}")).unwrap();
        overlay(&sh, &base, &run).unwrap();
        assert!(identical(&sh, &run, &base).unwrap());
        // Writing what is already there is no change.
        run_quiet(cmd!(sh, "qemu-io -f qcow2 -c 'write -P 0x5a 1M 4k' {run}")).unwrap();
        assert!(identical(&sh, &run, &base).unwrap());
        run_quiet(cmd!(sh, "qemu-io -f qcow2 -c 'write -P 0x00 1M 512' {run}")).unwrap();
        assert!(!identical(&sh, &run, &base).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
