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
        Content::AtlantisFixture => {
            anyhow::bail!("the fixture Atlantis is made for each run (qemu/fixture.rs), not cached")
        }
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

/// Where GPT partition `number` of the qcow2 image `image` is: (byte offset, byte length).
/// The table is read with `qemu-img dd` and parsed here (header at LBA 1, entries as the
/// header says): a disk the harness made itself, so 512-byte sectors.
pub fn partition_range(sh: &Shell, image: &Path, number: u32) -> Result<(u64, u64)> {
    let dir = tempfile::tempdir()?;
    let head = dir.path().join("head.raw");
    let of = format!("of={}", head.display());
    let input = format!("if={}", image.display());
    run_quiet(cmd!(
        sh,
        "qemu-img dd -f qcow2 -O raw bs=512 count=34 {input} {of}"
    ))?;
    let bytes = fs::read(&head)?;
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    anyhow::ensure!(
        bytes.len() == 34 * 512 && &bytes[512..520] == b"EFI PART",
        "{} has no GPT",
        image.display()
    );
    let (entries, count, size) = (le64(512 + 72), le32(512 + 80), le32(512 + 84));
    let at = (entries * 512 + (u64::from(number) - 1) * u64::from(size)) as usize;
    anyhow::ensure!(
        number >= 1 && number <= count && at + 48 <= bytes.len(),
        "{} has no partition entry {number} in the first 34 sectors",
        image.display()
    );
    let (first, last) = (le64(at + 32), le64(at + 40));
    anyhow::ensure!(
        bytes[at..at + 16].iter().any(|b| *b != 0) && last >= first,
        "{} has no partition {number}",
        image.display()
    );
    Ok((first * 512, (last + 1 - first) * 512))
}

/// [`identical`] for one byte range: the overlay's own clusters (`qemu-img map`, depth 0:
/// what the guest wrote) that overlap the range are read from both images with `qemu-img
/// dd` and compared; everything else of the range is the base's by construction.
/// (`qemu-img compare --image-opts` over a raw driver with offset/size was tried first: it
/// reported mismatches at offset 0 of ranges whose bytes `qemu-io read` shows equal.)
pub fn range_identical(sh: &Shell, run: &Path, base: &Path, range: (u64, u64)) -> Result<bool> {
    #[derive(serde::Deserialize)]
    struct Extent {
        start: u64,
        length: u64,
        depth: u32,
    }
    let map = cmd!(sh, "qemu-img map --output=json -f qcow2 {run}")
        .quiet()
        .read()?;
    let extents: Vec<Extent> = serde_json::from_str(&map).context("reading qemu-img map's JSON")?;
    let dir = tempfile::tempdir()?;
    let (lo, hi) = (range.0, range.0 + range.1);
    for e in extents.iter().filter(|e| e.depth == 0) {
        let (from, to) = (e.start.max(lo), (e.start + e.length).min(hi));
        if from >= to {
            continue;
        }
        // The raw driver with offset/size reads just this piece (`qemu-img dd` refuses to
        // skip into a qcow2 here: "cannot skip to specified offset").
        let read = |image: &Path, name: &str| -> Result<Vec<u8>> {
            let out = dir.path().join(name);
            let opts = format!(
                "driver=raw,offset={from},size={},file.driver=qcow2,file.file.filename={}",
                to - from,
                image.display()
            );
            run_quiet(cmd!(
                sh,
                "qemu-img convert --image-opts {opts} -O raw {out}"
            ))?;
            Ok(fs::read(&out)?)
        };
        if read(run, "run.raw")? != read(base, "base.raw")? {
            return Ok(false);
        }
    }
    Ok(true)
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

    /// A GPT with partitions 1 (LBA 2048..4095) and 2 (4096..8191) written by sgdisk: a
    /// write into partition 1 leaves partition 2's range identical and not partition 1's.
    #[test]
    fn partition_ranges_are_compared_alone() {
        let sh = Shell::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let base = dir.path().join("base.qcow2");
        let run = dir.path().join("run.qcow2");
        fs::File::create(&raw).unwrap().set_len(8 << 20).unwrap();
        run_quiet(cmd!(sh, "sgdisk -n 1:2048:4095 -n 2:4096:8191 {raw}")).unwrap();
        run_quiet(cmd!(sh, "qemu-img convert -f raw -O qcow2 {raw} {base}")).unwrap();
        assert_eq!(partition_range(&sh, &base, 1).unwrap(), (1 << 20, 1 << 20));
        assert_eq!(partition_range(&sh, &base, 2).unwrap(), (2 << 20, 2 << 20));
        let err = partition_range(&sh, &base, 3).unwrap_err().to_string();
        assert!(err.contains("no partition 3"), "{err}");
        overlay(&sh, &base, &run).unwrap();
        run_quiet(cmd!(
            sh,
            "qemu-io -f qcow2 -c 'write -P 0x11 1536k 4k' {run}"
        ))
        .unwrap();
        let p1 = partition_range(&sh, &base, 1).unwrap();
        let p2 = partition_range(&sh, &base, 2).unwrap();
        assert!(!range_identical(&sh, &run, &base, p1).unwrap());
        assert!(range_identical(&sh, &run, &base, p2).unwrap());
    }
}
