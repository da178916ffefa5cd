//! The hybrid ISO beside the raw image: an ISO 9660 tree with the kernel, the initramfs and
//! GRUB's configuration, and a small FAT (the El Torito UEFI boot image, also appended as
//! a GPT partition so that the same file `dd`'d to a stick boots) holding only the signed
//! loaders. GRUB, started from either, finds the ISO 9660 volume by its UUID.
//!
//! The FAT is small because El Torito counts a no-emulation image in 16 bits of 512-byte
//! sectors: past 32 MiB firmware sees a truncated FAT (OVMF then finds no loader on the
//! CD), so the kernel and initramfs cannot live in it as they do on the stick.

use std::fs::{self, OpenOptions};
use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::run_quiet;

const MIB: u64 = 1 << 20;
/// Label of the boot image's FAT: not the stick's, so that the init, which looks for the
/// LIFEBOAT label, finds the ISO 9660 volume with the kernel's files on a dd'd stick.
pub const EFI_LABEL: &str = "LIFEBOATEFI";

/// `2026-01-01T00:00:00Z` as xorriso's 16 digits (`YYYYMMDDhhmmsscc`); GRUB shows the
/// same date as the volume's UUID, `2026-01-01-00-00-00-00`.
pub fn volume_date(epoch: u64) -> (String, String) {
    let (y, m, d, h, mi, s) = lifeboat::time::civil(epoch);
    (
        format!("{y:04}{m:02}{d:02}{h:02}{mi:02}{s:02}00"),
        format!("{y:04}-{m:02}-{d:02}-{h:02}-{mi:02}-{s:02}-00"),
    )
}

/// GRUB's configuration on the ISO: the files are on the ISO 9660 volume, wherever GRUB
/// itself was loaded from (the CD's boot image or the stick's appended partition).
pub fn grub_cfg(cmdline: &str, uuid: &str) -> String {
    format!(
        "# The lifeboat rescue ISO (written by `cargo xtask image`; docs/rescue-image.md).\n\
         set timeout=0\n\
         set default=0\n\
         search --no-floppy --fs-uuid --set=root {uuid}\n\
         menuentry \"lifeboat rescue\" {{\n\
         \tlinux /vmlinuz {cmdline}\n\
         \tinitrd /initrd.img\n\
         }}\n"
    )
}

pub struct Inputs<'a> {
    /// (path on the FAT, bytes): the signed loaders.
    pub loaders: &'a [(String, Vec<u8>)],
    /// Where grubx64.efi reads its configuration (`EFI/debian/grub.cfg`).
    pub config: &'a str,
    pub cmdline: &'a str,
    pub vmlinuz: &'a [u8],
    pub initrd: &'a [u8],
    pub label: &'a str,
    pub volume_id: u32,
    pub epoch: u64,
}

/// Writes the ISO to `out` (through a temporary name), using `work` for the tree.
pub fn write(sh: &Shell, out: &Path, work: &Path, inputs: &Inputs<'_>) -> Result<()> {
    let (date, uuid) = volume_date(inputs.epoch);
    let cfg = grub_cfg(inputs.cmdline, &uuid);
    if work.exists() {
        fs::remove_dir_all(work).with_context(|| format!("removing {}", work.display()))?;
    }
    let tree = work.join("tree");
    let put = |rel: &str, bytes: &[u8]| -> Result<()> {
        let path = tree.join(rel);
        fs::create_dir_all(path.parent().unwrap_or(&tree))?;
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    put(inputs.config, cfg.as_bytes())?;
    put("vmlinuz", inputs.vmlinuz)?;
    put("initrd.img", inputs.initrd)?;
    // The ISO's directory records carry each file's mtime: the same for all, as in the
    // initramfs and on the FAT.
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(inputs.epoch);
    for rel in std::iter::once(std::path::PathBuf::new()).chain(super::initramfs::walk(&tree)?) {
        let path = tree.join(&rel);
        fs::File::open(&path)
            .and_then(|f| f.set_modified(when))
            .with_context(|| format!("dating {}", path.display()))?;
    }

    let mut files: Vec<(String, Vec<u8>)> = inputs.loaders.to_vec();
    files.push((inputs.config.to_owned(), cfg.into_bytes()));
    let efi = work.join("efi.img");
    efi_fat(sh, &efi, &files, inputs.volume_id, inputs.epoch)?;

    let dir = out.parent().unwrap_or(Path::new("."));
    // A fresh checkout has no target/images/ yet, and xorriso will not make it.
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = out
        .file_name()
        .with_context(|| format!("{} names no file", out.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let _ = fs::remove_file(&tmp);
    let (label, epoch) = (inputs.label, inputs.epoch.to_string());
    // SOURCE_DATE_EPOCH makes xorriso fix every date and derive its GPT GUIDs from it.
    let made = run_quiet(
        cmd!(
            sh,
            "xorriso -as mkisofs -o {tmp} -V {label} -r -J
                --modification-date={date}
                -append_partition 2 0xef {efi} -appended_part_as_gpt
                -e --interval:appended_partition_2:all:: -no-emul-boot
                {tree}"
        )
        .env("SOURCE_DATE_EPOCH", &epoch),
    );
    if let Err(e) = made {
        let _ = fs::remove_file(&tmp);
        return Err(e.context("writing the ISO with xorriso"));
    }
    fs::rename(&tmp, out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    Ok(())
}

/// The El Torito boot image: a FAT (12 or 16, by size) holding `files`, checked by
/// fsck.vfat.
fn efi_fat(
    sh: &Shell,
    path: &Path,
    files: &[(String, Vec<u8>)],
    volume_id: u32,
    mtime: u64,
) -> Result<()> {
    let content: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let len = (content + content / 20 + MIB).div_ceil(MIB) * MIB;
    if len > 32 * MIB {
        bail!(
            "the ISO's boot image would be {} MiB; El Torito allows 32",
            len / MIB
        );
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_len(len)?;
    let mut label = [b' '; 11];
    label[..EFI_LABEL.len()].copy_from_slice(EFI_LABEL.as_bytes());
    let options = lamfat::FormatVolumeOptions::new()
        .volume_id(volume_id)
        .volume_label(label);
    lamfat::format_volume(&mut lamfat::StdIoWrapper::new(&mut file), options)
        .map_err(|e| anyhow::anyhow!("formatting the ISO's boot image: {e:?}"))?;
    lifeboat::apply::fat::write_files(&mut file, 0, len, files, mtime)
        .context("writing the loaders into the ISO's boot image")?;
    drop(file);
    run_quiet(cmd!(sh, "fsck.vfat -n {path}")).context("checking the ISO's boot image")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_date_is_the_epoch_in_utc() {
        assert_eq!(
            volume_date(1_767_225_600),
            (
                "2026010100000000".to_owned(),
                "2026-01-01-00-00-00-00".to_owned()
            )
        );
        // 2024-02-29T13:45:07Z: a leap day, hours, minutes and seconds.
        assert_eq!(volume_date(1_709_214_307).1, "2024-02-29-13-45-07-00");
        assert_eq!(volume_date(0).0, "1970010100000000");
    }

    #[test]
    fn the_iso_configuration_finds_the_volume_by_uuid() {
        let cfg = grub_cfg("console=ttyS0", "2026-01-01-00-00-00-00");
        assert!(cfg.contains("search --no-floppy --fs-uuid --set=root 2026-01-01-00-00-00-00\n"));
        assert!(cfg.contains("\tlinux /vmlinuz console=ttyS0\n"));
    }
}
