//! The disks as `lifeboat disks` and the menu print them: one row per disk with the serial
//! as the spec's match rules see it.

use super::{MachineDisks, Table};
use crate::spec::human;

/// The rows, or a sentence when there is no disk at all.
pub fn render(found: &MachineDisks) -> String {
    let disks = &found.disks;
    if disks.is_empty() && found.unreadable.is_empty() {
        return "No disks found in /sys/block.\n".into();
    }
    let mut out = format!(
        "{:<14} {:<6} {:>10}  {:<24} {:<22} {:<20} contents\n",
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
        out.push_str(&format!(
            "{:<14} {:<6} {:>10}  {:<24} {:<22} {:<20} {contents}{busy}\n",
            d.path.display(),
            d.bus.name(),
            human(d.size),
            d.serial.as_deref().unwrap_or("-"),
            d.wwn.as_deref().unwrap_or("-"),
            d.model.as_deref().unwrap_or("-"),
        ));
    }
    for (path, why) in &found.unreadable {
        out.push_str(&format!("{:<14} unreadable: {why}\n", path.display()));
    }
    out
}
