//! `lifeboat disks`: what the spec's match rules can see.

use anyhow::{Context, Result};

use crate::cli::DisksArgs;
use crate::probe::{self, Table};
use crate::spec::human;

pub fn disks(args: &DisksArgs) -> Result<()> {
    let found = probe::all_disks().context("listing the disks of this machine")?;
    let disks = &found.disks;
    if args.json {
        println!("{}", serde_json::to_string_pretty(disks)?);
        return Ok(());
    }
    println!(
        "Secure Boot: {}",
        crate::boot::efivars::SecureBoot::read(std::path::Path::new(crate::boot::efivars::EFIVARS))
    );
    if disks.is_empty() && found.unreadable.is_empty() {
        println!("No disks found in /sys/block.");
        return Ok(());
    }
    println!(
        "{:<14} {:<6} {:>10}  {:<24} {:<22} {:<20} contents",
        "device", "bus", "size", "serial", "wwn", "model"
    );
    for d in disks {
        let contents = match &d.table {
            Table::Gpt(g) => format!("GPT, {} partitions", g.partitions.len()),
            Table::Other { name } => format!("{name} table"),
            Table::None => d
                .whole_disk_fs
                .as_ref()
                .map(|f| f.fstype.clone())
                .unwrap_or_else(|| "blank".into()),
        };
        // A zapped table: say what is still there.
        let contents = match d.orphans.as_slice() {
            [] => contents,
            found => format!(
                "{contents}, but {} with no partition",
                found
                    .iter()
                    .map(|o| format!("{} at {} MiB", o.fs.fstype, o.offset >> 20))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let busy = if d.busy.is_empty() { "" } else { ", in use" };
        println!(
            "{:<14} {:<6} {:>10}  {:<24} {:<22} {:<20} {contents}{busy}",
            d.path.display(),
            d.bus.name(),
            human(d.size),
            d.serial.as_deref().unwrap_or("-"),
            d.wwn.as_deref().unwrap_or("-"),
            d.model.as_deref().unwrap_or("-"),
        );
    }
    for (path, why) in &found.unreadable {
        println!("{:<14} unreadable: {why}", path.display());
    }
    Ok(())
}
