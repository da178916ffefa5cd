//! `lifeboat boot-entries SPEC`: one UEFI boot entry per ESP of the spec, first in
//! BootOrder, written through efivarfs after the changes are shown.

use anyhow::{bail, Context, Result};
use uuid::Uuid;

use crate::boot::efivars::Firmware;
use crate::boot::entries::{self, Esp};
use crate::cli::BootEntriesArgs;
use crate::disklock::DiskLocks;
use crate::probe::{self, Table};
use crate::runlog;
use crate::spec::{PartType, Spec};

pub fn boot_entries(args: &BootEntriesArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let (esps, _locks) = esps(&spec, &args.disks, &args.loader, true)?;
    let wanted: Vec<Esp> = esps.into_iter().map(|(esp, _)| esp).collect();
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let firmware = match Firmware::open(&mountinfo) {
        Ok(f) => f,
        Err(err) if args.dry_run => {
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
    let found = probe::all_disks().context("listing the disks of this machine")?;
    let present = |guid: &Uuid| {
        found.disks.iter().any(|d| match &d.table {
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
    if args.dry_run {
        println!("Dry run: nothing written.");
        return Ok(());
    }
    super::confirm_changes(args.yes, "Write these UEFI variables?")?;
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

/// Each ESP of the spec (the preserved disk's first), as its disk shows it now, with the
/// partition's device node.
pub fn spec_esps(
    spec: &Spec,
    bound: &[(String, std::path::PathBuf)],
    loader: &str,
) -> Result<Vec<(Esp, std::path::PathBuf)>> {
    Ok(esps(spec, bound, loader, false)?.0)
}

/// [`spec_esps`]; with `lock`, their disks locked against other runs while the entries that
/// name their partitions are written.
fn esps(
    spec: &Spec,
    bound: &[(String, std::path::PathBuf)],
    loader: &str,
    lock: bool,
) -> Result<(Vec<(Esp, std::path::PathBuf)>, DiskLocks)> {
    let mut disks: Vec<_> = spec
        .disks
        .iter()
        .filter(|d| d.partitions.iter().any(|p| p.part_type == PartType::Esp))
        .collect();
    disks.sort_by_key(|d| !d.preserve);
    let required: Vec<String> = disks.iter().map(|d| d.id.clone()).collect();
    let (bindings, locks) = if lock {
        super::bind_for_writing(spec, bound, &required, false, Some(&required))?
    } else {
        let bindings = super::bind_disks(spec, bound, &required, false)?;
        (bindings, DiskLocks::default())
    };
    Ok((esps_of(spec, &bindings, loader)?, locks))
}

/// Whether the firmware already has our entry for each ESP of the bound disks, first in
/// BootOrder (boot-entries would change nothing). False when it cannot be read.
pub fn firmware_current(spec: &Spec, bindings: &[crate::plan::Binding]) -> bool {
    let current = || -> Result<bool> {
        let wanted: Vec<Esp> = esps_of(spec, bindings, crate::cli::DEFAULT_LOADER)?
            .into_iter()
            .map(|(esp, _)| esp)
            .collect();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let (existing, order) = Firmware::open(&mountinfo)?.boot_entries()?;
        // Only ours are compared here: a stale entry of ours elsewhere is boot-entries' to
        // tidy, and does not stop these from booting.
        Ok(entries::plan(&spec.machine.name, &wanted, &existing, &order, &|_| true).is_empty())
    };
    current().unwrap_or(false)
}

/// Each ESP of the spec (the preserved disk's first) on these bound disks, with the
/// partition's device node.
fn esps_of(
    spec: &Spec,
    bindings: &[crate::plan::Binding],
    loader: &str,
) -> Result<Vec<(Esp, std::path::PathBuf)>> {
    let mut disks: Vec<_> = spec
        .disks
        .iter()
        .filter(|d| d.partitions.iter().any(|p| p.part_type == PartType::Esp))
        .collect();
    disks.sort_by_key(|d| !d.preserve);
    let mut out = Vec::new();
    for disk in disks {
        let binding = bindings
            .iter()
            .find(|b| b.id == disk.id)
            .with_context(|| format!("disk {} was not found", disk.id))?;
        for (i, part) in disk.partitions.iter().enumerate() {
            if part.part_type != PartType::Esp {
                continue;
            }
            let number = i as u32 + 1;
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
                    part_guid: Uuid::parse_str(&p.part_guid).with_context(|| {
                        format!("partition GUID {} of {}", p.part_guid, disk.id)
                    })?,
                    loader: loader.to_owned(),
                },
                crate::blockdev::partition_node(&binding.device.path, number),
            ));
        }
    }
    Ok(out)
}
