//! The backup drive (LINBKUP) of a spec, found among the bound disks.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::BACKUP_LABEL;
use crate::plan::Binding;
use crate::probe::Table;
use crate::spec::Spec;

/// The device node of the spec's partition labelled LINBKUP, checked to hold that
/// filesystem now.
pub fn backup_partition(spec: &Spec, bindings: &[Binding]) -> Result<PathBuf> {
    let Some((disk, number)) = spec.disks.iter().find_map(|d| {
        d.partitions
            .iter()
            .position(|p| p.label.as_deref() == Some(BACKUP_LABEL))
            .map(|i| (d, i as u32 + 1))
    }) else {
        bail!(
            "{} has no partition labelled {BACKUP_LABEL}: lifeboat looks for the backups there",
            spec.file.display()
        );
    };
    let Some(binding) = bindings.iter().find(|b| b.id == disk.id) else {
        bail!(
            "the backup drive ({}, partition {number} {BACKUP_LABEL}) was not found: plug it in, \
             or name it with --disk {}=/dev/…",
            disk.id,
            disk.id
        );
    };
    let fs = match &binding.device.table {
        Table::Gpt(g) => g
            .partitions
            .iter()
            .find(|p| p.number == number)
            .and_then(|p| p.fs.clone()),
        _ => None,
    };
    match fs {
        Some(fs) if fs.fstype == "btrfs" && fs.label.as_deref() == Some(BACKUP_LABEL) => Ok(
            crate::blockdev::partition_node(&binding.device.path, number),
        ),
        other => bail!(
            "partition {number} of {} ({}) should be the Btrfs backup filesystem {BACKUP_LABEL} \
             but holds {}",
            disk.id,
            binding.device.path.display(),
            other.map_or("nothing".to_owned(), |f| format!(
                "{} labelled {}",
                f.fstype,
                f.label.unwrap_or_else(|| "(none)".into())
            ))
        ),
    }
}
