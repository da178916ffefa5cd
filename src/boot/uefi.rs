//! The spec's UEFI boot entries written through efivarfs: the ESPs as the disks show them
//! ([`spec_esps`]; under Secure Boot also the distributions' own shims on them,
//! [`wanted`]), the firmware's entries read, the changes planned by [`entries::plan`],
//! shown, confirmed and written ([`write()`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use uuid::Uuid;

use super::efivars::{Firmware, SecureBoot, EFIVARS};
use super::entries::{self, Esp};
use crate::machine::{self, Machine};
use crate::plan::Binding;
use crate::probe::Table;
use crate::runlog;
use crate::spec::{Disk, PartType, Partition, Spec};
use crate::ui::Confirmation;

/// The spec's disks with an ESP, the preserved disk's first.
fn esp_disks(spec: &Spec) -> Vec<&Disk> {
    spec.disks_esp_first()
        .into_iter()
        .filter(|d| d.partitions.iter().any(|p| p.part_type == PartType::Esp))
        .collect()
}

/// The ids of the disks that carry the spec's ESPs: a boot entry needs them bound.
pub fn esp_disk_ids(spec: &Spec) -> Vec<String> {
    esp_disks(spec).iter().map(|d| d.id.clone()).collect()
}

/// Each ESP partition of the spec (the preserved disk's first) with its disk, that disk's
/// binding and its partition number.
fn bound_esps<'a>(
    spec: &'a Spec,
    bindings: &'a [Binding],
) -> Result<Vec<(&'a Disk, &'a Binding, u32, &'a Partition)>> {
    let mut out = Vec::new();
    for disk in esp_disks(spec) {
        let binding = bindings
            .iter()
            .find(|b| b.id == disk.id)
            .with_context(|| format!("disk {} was not found", disk.id))?;
        for (i, part) in disk.partitions.iter().enumerate() {
            if part.part_type == PartType::Esp {
                out.push((disk, binding, i as u32 + 1, part));
            }
        }
    }
    Ok(out)
}

/// Each ESP of the spec (the preserved disk's first), as its disk shows it now, with the
/// partition's device node.
pub fn spec_esps(spec: &Spec, bindings: &[Binding], loader: &str) -> Result<Vec<(Esp, PathBuf)>> {
    let mut out = Vec::new();
    for (disk, binding, number, part) in bound_esps(spec, bindings)? {
        let Table::Gpt(gpt) = &binding.device.table else {
            bail!(
                "{} ({}) has no GPT: its ESP \"{}\" is not there; provision it first",
                disk.id,
                binding.device.path.display(),
                part.name
            );
        };
        let Some(p) = gpt.partitions.iter().find(|p| p.number == number) else {
            bail!(
                "{} ({}) has no partition {number} for its ESP \"{}\"; provision it first",
                disk.id,
                binding.device.path.display(),
                part.name
            );
        };
        let label = part.label.clone().unwrap_or_else(|| part.name.clone());
        out.push((
            Esp {
                description: format!("{} {label} ({})", spec.machine.name, disk.id),
                number,
                first_lba: p.first_lba,
                sectors: p.last_lba + 1 - p.first_lba,
                part_guid: Uuid::parse_str(&p.part_guid)
                    .with_context(|| format!("partition GUID {} of {}", p.part_guid, disk.id))?,
                loader: loader.to_owned(),
            },
            binding.partition_node(number),
        ));
    }
    Ok(out)
}

/// The entries the firmware should have: one per ESP of the spec starting `loader`, and
/// when Secure Boot is on, after them, one per distribution's own shim on each ESP (read
/// in-process from the disk, nothing mounted).
pub fn wanted(
    spec: &Spec,
    bindings: &[Binding],
    loader: &str,
    secure_boot: SecureBoot,
) -> Result<Vec<Esp>> {
    let ours: Vec<Esp> = spec_esps(spec, bindings, loader)?
        .into_iter()
        .map(|(esp, _)| esp)
        .collect();
    if secure_boot != SecureBoot::On {
        return Ok(ours);
    }
    let mut files = Vec::new();
    for (_, binding, number, _) in bound_esps(spec, bindings)? {
        let tree = super::on_disk::esp_tree(&binding.device, number);
        files.push(tree.map(|t| t.into_keys().collect()).unwrap_or_default());
    }
    Ok(entries::with_distro_shims(&ours, &files))
}

/// Whether the firmware already has our entries for the ESPs of the bound disks (starting
/// `loader`), first in BootOrder (boot-entries would change nothing). False when it cannot
/// be read.
pub fn firmware_current(spec: &Spec, bindings: &[Binding], loader: &str) -> bool {
    let current = || -> Result<bool> {
        let wanted = wanted(spec, bindings, loader, SecureBoot::read(Path::new(EFIVARS)))?;
        let mountinfo = crate::mountinfo::read()?;
        let (existing, order) = Firmware::open(&mountinfo)?.boot_entries()?;
        // Only ours are compared here: a stale entry of ours elsewhere is boot-entries' to
        // tidy, and does not stop these from booting.
        Ok(entries::plan(&spec.machine.name, &wanted, &existing, &order, &|_| true).is_empty())
    };
    current().unwrap_or(false)
}

/// Probe the machine, then [`write()`].
pub fn write_for(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    loader: &str,
    go: Confirmation,
) -> Result<()> {
    // Listed, not only bound: an entry of ours is kept while any disk still has its ESP.
    let mut machine = machine::probe(
        spec,
        disks,
        &esp_disk_ids(spec),
        crate::machine::Scan::AllDisks,
    )?;
    // Locked while the entries that name their partitions are written.
    let _locks = machine::lock(spec, &mut machine.bindings, Some(&esp_disk_ids(spec)))?;
    write(spec, &machine, loader, go)
}

/// One boot entry per ESP of the spec, first in BootOrder, on the disks as `machine`
/// found them (probed after the last write to their partition tables). `loader` is the
/// path the entries start, or [`super::loader::AUTO`]: the signed chain's shim when Secure
/// Boot is on, else systemd-boot. Prints the changes; writes them after a confirmation (or
/// `Confirmation::Yes`), unless it is a dry run.
pub fn write(spec: &Spec, machine: &Machine, loader: &str, go: Confirmation) -> Result<()> {
    let secure_boot = SecureBoot::read(Path::new(EFIVARS));
    let loader = super::loader::entry_loader(loader, secure_boot);
    let wanted = wanted(spec, &machine.bindings, &loader, secure_boot)?;
    let mountinfo = crate::mountinfo::read().context("reading /proc/self/mountinfo")?;
    let firmware = match Firmware::open(&mountinfo) {
        Ok(f) => f,
        Err(err) if go.dry_run() => {
            println!("Would make these entries (the firmware's own cannot be read: {err}):");
            for (n, esp) in wanted.iter().enumerate() {
                println!(
                    "  {}",
                    entries::describe(n as u16, &entries::load_option(esp))
                );
            }
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    let (existing, order) = firmware.boot_entries()?;
    // A partition of ours is present when some disk of this machine still has it.
    let disks = machine
        .listed
        .iter()
        .chain(machine.bindings.iter().map(|b| &b.device));
    let present = |guid: &Uuid| {
        disks.clone().any(|d| match &d.table {
            Table::Gpt(g) => g
                .partitions
                .iter()
                .any(|p| Uuid::parse_str(&p.part_guid).is_ok_and(|u| u == *guid)),
            _ => false,
        })
    };
    let changes = entries::plan(&spec.machine.name, &wanted, &existing, &order, &present);
    if changes.is_empty() {
        println!(
            "The firmware already boots {} first: nothing to do.",
            describe_ours(&changes.ours)
        );
        return Ok(());
    }
    println!("UEFI boot variables to change:");
    for id in &changes.delete {
        let old = existing
            .iter()
            .find(|e| e.id == *id)
            .and_then(|e| e.entry.as_ref());
        match old {
            Some(entry) => println!("  delete {}", entries::describe(*id, entry)),
            None => println!("  delete Boot{id:04X}"),
        }
    }
    for (id, entry) in &changes.write {
        println!("  write  {}", entries::describe(*id, entry));
    }
    if let Some(new) = &changes.boot_order {
        println!(
            "  BootOrder {} -> {}",
            if order.is_empty() {
                "(unset)".to_owned()
            } else {
                entries::order_text(&order)
            },
            entries::order_text(new)
        );
    }
    if go.dry_run() {
        println!("Dry run: nothing written.");
        return Ok(());
    }
    crate::ui::confirm_changes(go, "Write these UEFI variables?")?;
    if runlog::path().is_none() {
        runlog::start("boot-entries").ok();
    }
    let mut firmware = firmware;
    firmware.apply(&changes)?;
    println!(
        "Done: the firmware boots {} first.",
        describe_ours(&changes.ours)
    );
    Ok(())
}

fn describe_ours(ours: &[u16]) -> String {
    ours.iter()
        .map(|id| format!("Boot{id:04X}"))
        .collect::<Vec<_>>()
        .join(", then ")
}
