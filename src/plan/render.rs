//! The plan as people read it before they confirm.

use std::fmt::Write;

use crate::spec::human;

use super::{Action, DiskPlan, PartRef, Plan};

impl Plan {
    /// The plan as text: each disk, what is known of it, and its numbered steps.
    pub fn render(&self) -> String {
        let mut out = self.render_disks();
        if self.is_empty() {
            let _ = writeln!(
                out,
                "Nothing to do: every selected disk already matches the spec."
            );
        } else {
            let n = self.action_count();
            let _ = writeln!(
                out,
                "{n} step{} on {}.",
                if n == 1 { "" } else { "s" },
                self.disks
                    .iter()
                    .filter(|d| !d.actions.is_empty())
                    .map(|d| format!("{} ({})", d.id, d.device.display()))
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
        }
        out
    }
}

impl Plan {
    /// Each disk and its steps, without the closing line (for a caller that has more steps
    /// to show before it sums up).
    pub fn render_disks(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Plan for {}", self.spec.display());
        for d in &self.disks {
            render_disk(&mut out, d);
        }
        let _ = writeln!(out);
        out
    }
}

fn render_disk(out: &mut String, d: &DiskPlan) {
    let _ = writeln!(out);
    let serial = d
        .serial
        .as_deref()
        .map(|s| format!(", serial {s}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} ({}{serial})",
        d.id,
        d.device.display(),
        human(d.size)
    );
    for n in &d.notes {
        let _ = writeln!(out, "  - {n}");
    }
    if d.actions.is_empty() && !d.preserved {
        let _ = writeln!(out, "  nothing to do");
    }
    for (i, a) in d.actions.iter().enumerate() {
        let _ = write!(out, "  {:>2}. ", i + 1);
        render_action(out, a);
    }
}

fn node(p: &PartRef) -> String {
    format!("partition {} \"{}\"", p.number, p.name)
}

impl Action {
    /// One line saying what this step does, for the plan and for progress.
    pub fn describe(&self) -> String {
        match self {
            Action::WipeDisk { device } => format!(
                "erase every partition table and filesystem signature on {}",
                device.display()
            ),
            Action::CreateGpt {
                device,
                sector_size,
                disk_guid,
                partitions,
            } => format!(
                "write a new GPT with {} partitions on {} (disk GUID {disk_guid}, {sector_size}-byte sectors)",
                partitions.len(),
                device.display()
            ),
            Action::RegisterPartitions { device, .. } => format!(
                "tell the kernel about the partitions already on {}",
                device.display()
            ),
            Action::LuksFormat {
                partition,
                key_file,
                passphrase,
                ..
            } => {
                let key = match (key_file, passphrase) {
                    (Some(k), true) => format!(
                        "key file {}, and a passphrase asked for now in a second key slot",
                        k.display()
                    ),
                    (Some(k), false) => format!("key file {}", k.display()),
                    (None, _) => "a passphrase asked for now".into(),
                };
                format!("create a LUKS2 container in {} ({key})", node(partition))
            }
            Action::Mkfs {
                partition,
                fs,
                label,
                in_luks,
                uuid,
            } => {
                let uuid = uuid
                    .as_ref()
                    .map(|u| format!(" with UUID {u}"))
                    .unwrap_or_default();
                let label = label
                    .as_ref()
                    .map(|l| format!(" labelled \"{l}\""))
                    .unwrap_or_default();
                let inside = if *in_luks {
                    " inside its LUKS container"
                } else {
                    ""
                };
                format!(
                    "make {fs}{label}{uuid} on {} ({}){inside}",
                    node(partition),
                    human(partition.size)
                )
            }
            Action::CreateSubvolume {
                partition, name, ..
            } => format!("create subvolume {name} in {}", node(partition)),
            Action::EnableQuotas { partition, .. } => {
                format!("enable Btrfs quotas on {}", node(partition))
            }
        }
    }
}

fn render_action(out: &mut String, a: &Action) {
    let _ = writeln!(out, "{}", a.describe());
    if let Action::CreateGpt {
        sector_size,
        partitions,
        ..
    } = a
    {
        let _ = writeln!(
            out,
            "        {:>2}  {:>12}  {:>12}  {:>10}  {:<20}  {:<36}  name",
            "#", "start", "end", "size", "type", "partition GUID"
        );
        for p in partitions {
            let start = p.first_lba * sector_size;
            let end = (p.last_lba + 1) * sector_size;
            let _ = writeln!(
                out,
                "        {:>2}  {:>12}  {:>12}  {:>10}  {:<20}  {:<36}  {}",
                p.number,
                human(start),
                human(end),
                human(end - start),
                p.part_type.to_string(),
                p.part_guid,
                p.name
            );
        }
    }
}
