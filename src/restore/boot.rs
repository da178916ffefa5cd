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
/// Atlantis-meta/boot). Returns notes for the report.
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
        let m = Mount::new(&node(esp)?, "vfat").with_context(|| format!("mounting {name}"))?;
        let copied = tree::copy(&from, m.path()).with_context(|| format!("restoring {name}"));
        m.close()?;
        let copied = copied?;
        println!(
            "  {name}: {} files, {} (from esp/{})",
            copied.files,
            human(copied.bytes),
            from.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(notes)
}
