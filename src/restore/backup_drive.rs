//! The backup drive of a spec (its `role = "backup"` partition), found among the bound
//! disks.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::plan::Binding;
use crate::probe::Table;
use crate::spec::Spec;

/// The device node of the spec's `role = "backup"` partition, checked to hold a Btrfs
/// filesystem (with the spec's label, when it gives one) now.
pub fn backup_partition(spec: &Spec, bindings: &[Binding]) -> Result<PathBuf> {
    let Some(super::SpecPart { disk, number, part }) = super::backup_part(spec) else {
        bail!(
            "{} names no partition with role = \"backup\": lifeboat looks for the backups there \
             (add role = \"backup\" to the backup drive's Btrfs partition)",
            spec.file.display()
        );
    };
    let name = super::backup_name(spec);
    let Some(binding) = crate::plan::bind::bound(bindings, &disk.id) else {
        bail!(
            "the backup drive ({}, partition {number} {name}) was not found: plug it in, \
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
        Some(fs)
            if fs.fstype == "btrfs"
                && part
                    .label
                    .as_ref()
                    .is_none_or(|l| fs.label.as_ref() == Some(l)) =>
        {
            Ok(crate::blockdev::partition_node(
                &binding.device.path,
                number,
            ))
        }
        other => bail!(
            "partition {number} of {} ({}) should be the Btrfs backup filesystem {name} \
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
