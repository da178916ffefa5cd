//! The provisioning decision for each bound disk: what the spec wants, what the probe
//! found, and the actions between the two. Existing data is never destroyed unless the
//! user allowed it for that disk.

use crate::probe::{Device, Filesystem, Gpt, Table};
use crate::spec::{human, Disk, Encryption, FsKind, Partition, Spec};

use super::bind::{unknown, Binding, BoundBy};
use super::layout::layout;
use super::{Action, DiskPlan, PartRef, Plan, PlanError, PlannedPartition};

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `--only ID`: write just these disks. Empty: every disk that is not preserved.
    pub only: Vec<String>,
    /// `--wipe ID`: existing tables and filesystems on these disks may be replaced.
    pub wipe: Vec<String>,
}

impl Scope {
    /// The disks that will be written; checks the ids against the spec.
    pub fn targets(&self, spec: &Spec) -> Result<Vec<String>, PlanError> {
        for id in &self.wipe {
            let disk = spec.disk(id).ok_or_else(|| unknown(spec, id, "--wipe"))?;
            if disk.preserve {
                return Err(PlanError::Preserved { id: id.clone() });
            }
        }
        if self.only.is_empty() {
            return Ok(spec
                .disks
                .iter()
                .filter(|d| !d.preserve)
                .map(|d| d.id.clone())
                .collect());
        }
        for id in &self.only {
            let disk = spec.disk(id).ok_or_else(|| unknown(spec, id, "--only"))?;
            if disk.preserve {
                return Err(PlanError::Preserved { id: id.clone() });
            }
        }
        Ok(self.only.clone())
    }
}

/// Make the provisioning plan. `new_guid` supplies partition and disk GUIDs (random in
/// real runs, fixed in tests), so this function stays pure.
pub fn plan(
    spec: &Spec,
    bindings: &[Binding],
    scope: &Scope,
    new_guid: &mut dyn FnMut() -> String,
) -> Result<Plan, PlanError> {
    let targets = scope.targets(spec)?;
    let mut disks = Vec::new();
    for b in bindings {
        let disk = spec
            .disk(&b.id)
            .ok_or_else(|| unknown(spec, &b.id, "--disk"))?;
        let mut dp = DiskPlan {
            id: b.id.clone(),
            device: b.device.path.clone(),
            size: b.device.size,
            serial: b.device.serial.clone(),
            preserved: disk.preserve,
            notes: Vec::new(),
            actions: Vec::new(),
        };
        if b.how != BoundBy::Matched {
            let by = match b.how {
                BoundBy::Picked => "picked at the prompt",
                _ => "bound with --disk",
            };
            if let (Some(want), Some(have)) = (&disk.match_rules.serial, &b.device.serial) {
                if !want.eq_ignore_ascii_case(have) {
                    dp.notes.push(format!(
                        "{by} although its serial {have} is not the spec's {want}"
                    ));
                }
            }
            if !super::bind::size_fits(disk, b.device.size) {
                dp.notes.push(format!(
                    "{by} although its size {} is not {} (the spec's match \
                     rules): taken as a replacement disk; the \"rest\" partition gets what \
                     this disk has",
                    crate::spec::human(b.device.size),
                    super::bind::size_rule(disk).unwrap_or_default()
                ));
            }
        }
        if disk.preserve {
            dp.notes.push("preserved: never written".into());
            dp.notes.extend(describe_preserved(disk, &b.device));
        } else if !targets.contains(&b.id) {
            dp.notes.push("not selected (--only): left as it is".into());
        } else {
            let wipe = disk.wipe || scope.wipe.contains(&b.id);
            plan_disk(disk, &b.device, wipe, new_guid, &mut dp)?;
        }
        disks.push(dp);
    }
    Ok(Plan {
        spec: spec.file.clone(),
        disks,
    })
}

fn plan_disk(
    disk: &Disk,
    dev: &Device,
    wipe: bool,
    new_guid: &mut dyn FnMut() -> String,
    dp: &mut DiskPlan,
) -> Result<(), PlanError> {
    if !dev.busy.is_empty() {
        return Err(PlanError::Busy {
            id: disk.id.clone(),
            device: dev.path.clone(),
            reasons: dev.busy.clone(),
        });
    }
    let wanted = layout(disk, dev.size, dev.sector_size, new_guid).map_err(|needed| {
        PlanError::TooSmall {
            id: disk.id.clone(),
            device: dev.path.clone(),
            size: dev.size,
            needed,
        }
    })?;
    let refuse = |what: String| PlanError::WouldDestroy {
        id: disk.id.clone(),
        device: dev.path.clone(),
        what,
    };

    // Keep the table when it already is the spec's layout; otherwise write a new one,
    // which is only allowed over a blank disk or with the user's leave to wipe. A disk
    // that only looks blank (its table zapped, its filesystems still there) is not blank.
    let blank = dev.looks_blank() && dev.orphans.is_empty();
    let existing = match &dev.table {
        Table::Gpt(gpt) if same_layout(gpt, &wanted) => Some(gpt),
        Table::Gpt(_) if blank => {
            dp.notes
                .push("replaces an empty GPT (no partitions in it)".into());
            None
        }
        Table::None if blank => None,
        _ => {
            let what = describe_contents(dev);
            if !wipe {
                return Err(refuse(what));
            }
            dp.notes.push(format!("DESTROYS {what}"));
            dp.actions.push(Action::WipeDisk {
                device: dev.path.clone(),
            });
            None
        }
    };

    let partitions: Vec<(PartRef, &Partition, Option<&crate::probe::Part>)> = wanted
        .iter()
        .zip(&disk.partitions)
        .map(|(pp, spec_part)| {
            let probed = existing.and_then(|g| g.partitions.iter().find(|p| p.number == pp.number));
            (part_ref(dev, pp), spec_part, probed)
        })
        .collect();

    let mut fs_actions = Vec::new();
    for (pref, spec_part, probed) in &partitions {
        let have = probed.and_then(|p| p.fs.as_ref());
        let Some(fs) = spec_part.fs else {
            continue;
        };
        let in_luks = spec_part.encrypt == Encryption::Luks2;
        match fs_state(spec_part, fs, have) {
            FsState::Done => {
                if in_luks {
                    dp.notes.push(format!(
                        "partition {} ({}) is a LUKS container already; its contents are not checked without the key",
                        pref.number, pref.name
                    ));
                    continue;
                }
                let present = probed
                    .and_then(|p| p.subvolumes.clone())
                    .unwrap_or_default();
                for sv in &spec_part.subvolumes {
                    if !present.contains(&sv.name) {
                        fs_actions.push(Action::CreateSubvolume {
                            partition: pref.clone(),
                            name: sv.name.clone(),
                            in_luks,
                        });
                    }
                }
            }
            state @ (FsState::Missing | FsState::Other(_)) => {
                if let FsState::Other(found) = state {
                    let what = format!("{found} in partition {} ({})", pref.number, pref.name);
                    if !wipe {
                        return Err(refuse(what));
                    }
                    dp.notes.push(format!("DESTROYS {what}"));
                }
                let fat_floor = super::layout::fat32_min_bytes(dev.sector_size);
                if fs == FsKind::Vfat && pref.size < fat_floor {
                    return Err(PlanError::FatTooSmall {
                        id: disk.id.clone(),
                        device: dev.path.clone(),
                        number: pref.number,
                        name: pref.name.clone(),
                        size: pref.size,
                        sector_size: dev.sector_size,
                        needed: fat_floor,
                    });
                }
                if in_luks {
                    fs_actions.push(Action::LuksFormat {
                        partition: pref.clone(),
                        key_file: spec_part.key_file.clone(),
                        passphrase: spec_part.passphrase,
                        uuid: None,
                    });
                }
                fs_actions.push(Action::Mkfs {
                    partition: pref.clone(),
                    fs,
                    label: spec_part.label.clone(),
                    in_luks,
                    uuid: None,
                });
                for sv in &spec_part.subvolumes {
                    fs_actions.push(Action::CreateSubvolume {
                        partition: pref.clone(),
                        name: sv.name.clone(),
                        in_luks,
                    });
                }
                if fs == FsKind::Btrfs && spec_part.quotas {
                    fs_actions.push(Action::EnableQuotas {
                        partition: pref.clone(),
                        in_luks,
                    });
                }
            }
        }
    }

    match existing {
        None => dp.actions.push(Action::CreateGpt {
            device: dev.path.clone(),
            sector_size: dev.sector_size,
            disk_guid: new_guid(),
            partitions: wanted.clone(),
        }),
        Some(_) if !fs_actions.is_empty() && !kernel_knows(dev, &partitions) => {
            dp.actions.push(Action::RegisterPartitions {
                device: dev.path.clone(),
                partitions: partitions.iter().map(|(r, _, _)| r.clone()).collect(),
            })
        }
        Some(_) => {}
    }
    dp.actions.extend(fs_actions);
    if dev.read_only && !dp.actions.is_empty() {
        return Err(PlanError::ReadOnly {
            id: disk.id.clone(),
            device: dev.path.clone(),
        });
    }
    Ok(())
}

enum FsState {
    /// The right filesystem with the right label is there.
    Done,
    /// Nothing recognisable: a fresh partition.
    Missing,
    /// Something else, described for the user.
    Other(String),
}

fn fs_state(spec_part: &Partition, fs: FsKind, have: Option<&Filesystem>) -> FsState {
    let Some(have) = have else {
        return FsState::Missing;
    };
    let want_type = if spec_part.encrypt == Encryption::Luks2 {
        "crypto_LUKS"
    } else {
        fs.blkid_type()
    };
    let label_ok = spec_part.encrypt == Encryption::Luks2
        || match (&spec_part.label, &have.label) {
            (None, _) => true,
            // FAT stores labels upper case.
            (Some(want), Some(got)) if fs == FsKind::Vfat => want.eq_ignore_ascii_case(got),
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        };
    if have.fstype == want_type && label_ok {
        FsState::Done
    } else {
        FsState::Other(describe_fs(have))
    }
}

/// A GPT already is the spec's layout when every partition sits where the plan would put
/// it, with the same type and name. GUIDs are whatever the first run chose.
fn same_layout(gpt: &Gpt, wanted: &[PlannedPartition]) -> bool {
    gpt.partitions.len() == wanted.len()
        && wanted.iter().all(|w| {
            gpt.partitions.iter().any(|p| {
                p.number == w.number
                    && p.first_lba == w.first_lba
                    && p.last_lba == w.last_lba
                    && p.type_guid.eq_ignore_ascii_case(&w.type_guid)
                    && p.name == w.name
            })
        })
}

fn kernel_knows(
    dev: &Device,
    parts: &[(PartRef, &Partition, Option<&crate::probe::Part>)],
) -> bool {
    parts.iter().all(|(r, _, _)| {
        dev.kernel_partitions
            .iter()
            .any(|k| k.number == r.number && k.start == r.start && k.size == r.size)
    }) && dev.kernel_partitions.len() == parts.len()
}

fn part_ref(dev: &Device, p: &PlannedPartition) -> PartRef {
    PartRef {
        disk: dev.path.clone(),
        number: p.number,
        start: p.first_lba * dev.sector_size,
        size: (p.last_lba - p.first_lba + 1) * dev.sector_size,
        name: p.name.clone(),
    }
}

fn describe_fs(fs: &Filesystem) -> String {
    match &fs.label {
        Some(l) => format!("a {} filesystem labelled \"{l}\"", fs.fstype),
        None => format!("a {} filesystem", fs.fstype),
    }
}

/// What is on a disk, for the sentence that refuses to destroy it.
fn describe_contents(dev: &Device) -> String {
    if !dev.orphans.is_empty() {
        let found: Vec<String> = dev
            .orphans
            .iter()
            .map(|o| format!("{} at {}", describe_fs(&o.fs), offset_text(o.offset)))
            .collect();
        let what = if found.len() == 1 {
            "a filesystem"
        } else {
            "filesystems"
        };
        let table = match dev.table {
            Table::Gpt(_) => "the disk's empty GPT does not list",
            _ => "no partition table lists",
        };
        return format!(
            "{what} that {table} (was the table erased?): {}",
            found.join(", ")
        );
    }
    match &dev.table {
        Table::Gpt(g) => {
            let parts: Vec<String> = g
                .partitions
                .iter()
                .map(|p| {
                    let fs =
                        p.fs.as_ref()
                            .map(describe_fs)
                            .unwrap_or_else(|| "no filesystem".into());
                    if p.name.is_empty() {
                        format!("#{} {fs}", p.number)
                    } else {
                        format!("#{} \"{}\" {fs}", p.number, p.name)
                    }
                })
                .collect();
            format!(
                "a GPT with {} partition{} that differ{} from the spec ({})",
                g.partitions.len(),
                if g.partitions.len() == 1 { "" } else { "s" },
                if g.partitions.len() == 1 { "s" } else { "" },
                parts.join(", ")
            )
        }
        Table::Other { name } => format!("a {name} partition table"),
        Table::None => match &dev.whole_disk_fs {
            Some(fs) => format!("{} on the whole disk", describe_fs(fs)),
            None => "nothing".into(),
        },
    }
}

/// An offset as partitioning tools show it: MiB when it is a whole number of them.
fn offset_text(offset: u64) -> String {
    const MIB: u64 = 1 << 20;
    if offset.is_multiple_of(MIB) {
        format!("{} MiB", offset / MIB)
    } else {
        format!("byte {offset}")
    }
}

/// What the plan shows of a preserved disk: which of its spec partitions were found.
fn describe_preserved(disk: &Disk, dev: &Device) -> Vec<String> {
    let Some(gpt) = dev.gpt() else {
        return vec![format!(
            "has no GPT ({}); the spec expects {} partitions",
            describe_contents(dev),
            disk.partitions.len()
        )];
    };
    disk.partitions
        .iter()
        .map(|want| {
            let found = gpt.partitions.iter().find(|p| {
                p.type_guid.eq_ignore_ascii_case(want.part_type.guid())
                    && match (&want.label, p.fs.as_ref().and_then(|f| f.label.as_ref())) {
                        (Some(l), Some(have)) => l.eq_ignore_ascii_case(have),
                        (Some(_), None) => false,
                        (None, _) => true,
                    }
            });
            match found {
                Some(p) => format!(
                    "found \"{}\": partition {} ({}, {})",
                    want.name,
                    p.number,
                    p.fs.as_ref()
                        .map(describe_fs)
                        .unwrap_or_else(|| "no filesystem".into()),
                    human((p.last_lba - p.first_lba + 1) * dev.sector_size)
                ),
                None => format!("did not find \"{}\" ({})", want.name, want.part_type),
            }
        })
        .collect()
}
