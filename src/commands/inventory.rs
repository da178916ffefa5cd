//! `lifeboat inventory SPEC`: the restore points on the backup drive, read-only.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::apply::mount::Mount;
use crate::cli::InventoryArgs;
use crate::plan::Binding;
use crate::probe::Table;
use crate::restore::inventory::{self, Inventory, Kind};
use crate::restore::points;
use crate::restore::BACKUP_LABEL;
use crate::spec::Spec;

pub fn inventory(args: &InventoryArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let bindings = super::bind_disks(&spec, &args.disks, &[], true)?;
    let node = backup_partition(&spec, &bindings)?;
    let top = Mount::read_only(&node, "btrfs", Some("subvolid=5"))
        .with_context(|| format!("mounting the backup drive {BACKUP_LABEL} read-only"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let dirs = spec.backup_dirs();
    let found = inventory::scan(top.path(), &dirs, &spec.machine.host, now);
    top.close()?;
    let found =
        found.with_context(|| format!("reading the restore points on {}", node.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", render(&found, &node, now));
    }
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

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

fn render(inv: &Inventory, node: &std::path::Path, now: i64) -> String {
    let mut out = format!(
        "Backup drive {BACKUP_LABEL} ({}), looked in: {}\n",
        node.display(),
        inv.looked_in
            .iter()
            .map(|d| if d.is_empty() {
                "/".to_owned()
            } else {
                format!("{d}/")
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    for sv in &inv.subvols {
        out.push_str(&format!(
            "\n{} — {} point{}\n",
            sv.subvol,
            sv.points.len(),
            if sv.points.len() == 1 { "" } else { "s" }
        ));
        for p in &sv.points {
            let kind = match p.kind {
                Kind::Btrbk => "btrbk",
                Kind::Snapper => "snapper",
                Kind::Stream if p.compressed => "stream.zst",
                Kind::Stream => "stream",
            };
            out.push_str(&format!(
                "  {}  {:>9} old  {kind:<10}  {}",
                points::format_time(p.time),
                points::format_age(p.time, now),
                p.path
            ));
            if let Some(size) = p.size {
                out.push_str(&format!("  {}", crate::spec::human(size)));
            }
            match &p.parent {
                Some(parent) => out.push_str(&format!("  (from {parent})")),
                None if p.parent_uuid.is_none() => out.push_str("  (full)"),
                None => {}
            }
            if let Some(note) = &p.note {
                out.push_str(&format!("  [{note}]"));
            }
            out.push('\n');
        }
    }
    out
}
