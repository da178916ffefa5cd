//! /boot and the ESPs restored from the boot backup in the `role = "meta"` subvolume (`lifeboat
//! backup-boot` wrote it): file trees copied onto the filesystems provisioning made.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::record::BOOT_DIR;
use super::{self as r, tree, SpecPart};
use crate::apply::mount::Mount;
use crate::blockdev;
use crate::machine::device_of;
use crate::plan::{Binding, Plan};
use crate::spec::{human, Spec};

/// /boot and the ESPs on the disks provisioning wrote, from `<meta>/boot` (e.g.
/// myhost-meta/boot). Returns notes for the report.
pub fn restore(spec: &Spec, bindings: &[Binding], top: &Path, prov: &Plan) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let Some(meta) = spec.meta_subvolume() else {
        notes.push(
            "the spec names no subvolume with role = \"meta\" (the boot backup): /boot and the \
             ESPs were not restored"
                .to_owned(),
        );
        return Ok(notes);
    };
    let backup = top.join(meta).join(BOOT_DIR);
    if !backup.is_dir() {
        notes.push(format!(
            "{meta} has no {BOOT_DIR}/ (run `lifeboat backup-boot` on the machine): /boot and \
             the ESPs were not restored"
        ));
        return Ok(notes);
    }
    println!("\n/boot and the ESPs from {meta}/{BOOT_DIR}");
    let written: Vec<&str> = prov
        .disks
        .iter()
        .filter(|d| !d.actions.is_empty())
        .map(|d| d.id.as_str())
        .collect();
    let node = |p: &SpecPart| -> Result<PathBuf> {
        Ok(blockdev::partition_node(
            &device_of(bindings, &p.disk.id)?,
            p.number,
        ))
    };
    if let Some(boot) = r::boot_partition(spec) {
        let from = backup.join("boot");
        if from.is_dir() && bindings.iter().any(|b| b.id == boot.disk.id) {
            let fs = boot.part.fs.map(|f| f.blkid_type()).unwrap_or("ext4");
            let m = Mount::new(&node(&boot)?, fs).context("mounting /boot")?;
            let copied = tree::copy(&from, m.path()).context("restoring /boot")?;
            m.close()?;
            println!("  /boot: {} files, {}", copied.files, human(copied.bytes));
        }
    }
    let esps = r::esps(spec);
    // Firmware that enforces Secure Boot refuses the unsigned systemd-boot a backup made
    // with it off may hold: the signed chain goes onto each restored ESP beside it, and the
    // boot entries (written next, `--loader auto`) point at its shim.
    let secure_boot =
        crate::boot::efivars::SecureBoot::read(Path::new(crate::boot::efivars::EFIVARS));
    let chain = crate::boot::loader::Chain::for_firmware(secure_boot);
    let signed = match chain {
        crate::boot::loader::Chain::Signed => chain.read(),
        crate::boot::loader::Chain::SystemdBoot => Some(Vec::new()),
    };
    if signed.is_none() {
        notes.push(format!(
            "Secure Boot is on and this system has no signed boot chain ({}): the restored \
             ESPs keep only what the backup holds",
            crate::boot::loader::SIGNED_DIR
        ));
    }
    let extra = signed.unwrap_or_default();
    for (esp, name) in &esps {
        if !written.contains(&esp.disk.id.as_str()) {
            notes.push(format!(
                "{name} on {} was not written by this restore; it keeps what it has",
                esp.disk.id
            ));
            continue;
        }
        // Its own copy, else any ESP's copy (the ESPs are mirrors of each other).
        let from = std::iter::once(name.clone())
            .chain(esps.iter().map(|(_, n)| n.clone()))
            .map(|n| backup.join("esp").join(n))
            .find(|p| p.is_dir());
        let Some(from) = from else {
            notes.push(format!(
                "the boot backup has no copy of an ESP: {name} stays empty"
            ));
            continue;
        };
        let copied = copy_to_fat_with(&from, &node(esp)?, &extra)
            .with_context(|| format!("restoring {name}"))?;
        println!(
            "  {name}: {} files, {} (from esp/{})",
            copied.files,
            human(copied.bytes),
            from.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(notes)
}

/// A boot backup's ESP copy written into the FAT on `node` in-process (lamfat), without
/// mounting it: no vfat module is needed (the drill's host has none), and the rescue
/// system writes its ESPs the same way provisioning formats them. Regular files only (FAT
/// holds no symlinks; they are counted as skipped); every entry gets the newest
/// modification time of the copy.
pub fn copy_to_fat(from: &Path, node: &Path) -> Result<tree::Copied> {
    copy_to_fat_with(from, node, &[])
}

/// [`copy_to_fat`], with `extra` files (path on the ESP, bytes) written over the copy's.
pub fn copy_to_fat_with(
    from: &Path,
    node: &Path,
    extra: &[(&str, Vec<u8>)],
) -> Result<tree::Copied> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut done = tree::Copied::default();
    let mut newest = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = from.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = rel.join(e.file_name());
            let meta = std::fs::symlink_metadata(e.path())
                .with_context(|| format!("reading {}", e.path().display()))?;
            if meta.is_dir() {
                stack.push(child);
            } else if meta.is_file() {
                let bytes = std::fs::read(e.path())
                    .with_context(|| format!("reading {}", e.path().display()))?;
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                newest = newest.max(mtime);
                done.files += 1;
                done.bytes += bytes.len() as u64;
                let Some(path) = child.to_str() else {
                    anyhow::bail!(
                        "{} is not UTF-8: a FAT name cannot hold it",
                        e.path().display()
                    );
                };
                files.push((path.to_owned(), bytes));
            } else {
                done.skipped += 1;
            }
        }
    }
    for (path, bytes) in extra {
        match files.iter_mut().find(|(p, _)| p.eq_ignore_ascii_case(path)) {
            Some(file) => file.1 = bytes.clone(),
            None => files.push(((*path).to_owned(), bytes.clone())),
        }
    }
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(node)
        .with_context(|| format!("opening {}", node.display()))?;
    let len = std::io::Seek::seek(&mut dev, std::io::SeekFrom::End(0))
        .with_context(|| format!("reading the size of {}", node.display()))?;
    crate::apply::fat::write_files(&mut dev, 0, len, &files, newest)
        .with_context(|| format!("writing FAT on {}", node.display()))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Cmd;

    #[test]
    fn an_esp_copy_lands_in_the_fat_and_fsck_accepts_it() {
        let d = tempfile::tempdir().unwrap();
        let from = d.path().join("esp");
        std::fs::create_dir_all(from.join("EFI/BOOT")).unwrap();
        std::fs::create_dir_all(from.join("loader/entries")).unwrap();
        std::fs::write(from.join("EFI/BOOT/BOOTX64.EFI"), vec![0x4d; 70_000]).unwrap();
        std::fs::write(from.join("loader/entries/tw.conf"), "title TW\n").unwrap();
        std::os::unix::fs::symlink("tw.conf", from.join("loader/entries/link.conf")).unwrap();
        let img = d.path().join("esp.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        crate::apply::fat::format_fat32_path(&img, "ESP1", 0x1234_5678).unwrap();
        let done = copy_to_fat(&from, &img).unwrap();
        assert_eq!((done.files, done.bytes, done.skipped), (2, 70_009, 1));
        let listed = Cmd::new("mdir")
            .args(["-/", "-b", "-i"])
            .arg(&img)
            .arg("::")
            .read()
            .unwrap();
        assert!(listed.contains("::/EFI/BOOT/BOOTX64.EFI"), "{listed}");
        assert!(listed.contains("::/loader/entries/tw.conf"), "{listed}");
        let back = Cmd::new("mtype")
            .args(["-i"])
            .arg(&img)
            .arg("::/loader/entries/tw.conf")
            .read()
            .unwrap();
        assert_eq!(back, "title TW\n");
        Cmd::new("fsck.vfat").args(["-n"]).arg(&img).run().unwrap();
    }

    #[test]
    fn the_signed_chain_goes_onto_a_restored_esp_beside_the_backup() {
        // Secure Boot on at restore time: the backup's files, and the chain's over them.
        let d = tempfile::tempdir().unwrap();
        let from = d.path().join("esp");
        std::fs::create_dir_all(from.join("EFI/systemd")).unwrap();
        std::fs::write(from.join("EFI/systemd/systemd-bootx64.efi"), b"sd-boot").unwrap();
        std::fs::create_dir_all(from.join("EFI/lifeboat")).unwrap();
        std::fs::write(from.join("EFI/lifeboat/SHIMX64.EFI"), b"old shim").unwrap();
        let img = d.path().join("esp.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        crate::apply::fat::format_fat32_path(&img, "ESP1", 0x1234_5678).unwrap();
        let extra: Vec<(&str, Vec<u8>)> = crate::boot::loader::Chain::Signed
            .files()
            .iter()
            .map(|(_, to)| (*to, to.as_bytes().to_vec()))
            .collect();
        copy_to_fat_with(&from, &img, &extra).unwrap();
        let read = |path: &str| {
            Cmd::new("mtype")
                .args(["-i"])
                .arg(&img)
                .arg(format!("::/{path}"))
                .read()
                .unwrap()
        };
        for (to, bytes) in &extra {
            assert_eq!(read(to).as_bytes(), bytes.as_slice(), "{to}");
        }
        assert_eq!(read("EFI/systemd/systemd-bootx64.efi"), "sd-boot");
        Cmd::new("fsck.vfat").args(["-n"]).arg(&img).run().unwrap();
    }
}
