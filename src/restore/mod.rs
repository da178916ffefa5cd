//! Restoring the machine from its backups, the whole engine: [`run()`] carries one restore
//! out from [`Options`]. Where the subvolumes come from ([`source`]: the backup drive,
//! restic, stream files in restic, behind one trait); which restore points exist
//! ([`points`] by name, [`inventory`] on the backup drive, [`restic_streams`] in restic),
//! which of them a restore uses ([`select`]), what it does on the target pool ([`plan`]),
//! the options the pool is mounted with meanwhile ([`pool_options`]), receiving them
//! ([`receive`] through the send | receive pipe with its progress, [`pipe`]), the record
//! of the filesystems' UUIDs ([`record`]), /boot and the ESPs ([`boot`], file trees copied
//! by [`tree`]), the checks afterwards ([`report`], pure parts in [`verify`]), the
//! pool's early writeback while it is written ([`writeback`]) and the points received but
//! not yet seen on its disk ([`unwritten`]).

pub mod backup_drive;
pub mod boot;
pub mod inventory;
pub mod lanes;
pub mod listing;
pub mod options;
pub mod pipe;
pub mod plan;
pub mod points;
pub mod pool_options;
pub mod preflight;
pub mod receive;
pub mod record;
pub mod report;
pub mod restic_streams;
pub mod room;
pub mod run;
pub mod select;
pub mod source;
pub mod stream;
pub mod stream_check;
pub mod stream_open;
pub mod tree;
pub mod unwritten;
pub mod verify;
pub mod writeback;

pub use options::Options;
pub use run::run;

/// A partition of the spec, found by what it holds.
#[derive(Debug, Clone, Copy)]
pub struct SpecPart<'a> {
    pub disk: &'a crate::spec::Disk,
    /// 1-based.
    pub number: u32,
    pub part: &'a crate::spec::Partition,
}

/// The spec's partitions, each with its disk and number.
pub fn spec_parts(spec: &crate::spec::Spec) -> impl Iterator<Item = SpecPart<'_>> {
    spec.disks.iter().flat_map(|disk| {
        disk.partitions
            .iter()
            .enumerate()
            .map(move |(i, part)| SpecPart {
                disk,
                number: i as u32 + 1,
                part,
            })
    })
}

/// The Btrfs pool that holds the root subvolumes (e.g. POOL).
pub fn pool(spec: &crate::spec::Spec) -> Option<SpecPart<'_>> {
    spec_parts(spec).find(|p| p.part.subvolumes.iter().any(|s| s.root))
}

/// The partition with `role = "backup"` (e.g. BACKUP on the USB drive): the btrbk and
/// snapper targets and the raw streams are there.
pub fn backup_part(spec: &crate::spec::Spec) -> Option<SpecPart<'_>> {
    spec_parts(spec).find(|p| p.part.role == Some(crate::spec::PartRole::Backup))
}

/// How messages name the backup partition: its label, else its GPT name.
pub fn backup_name(spec: &crate::spec::Spec) -> String {
    backup_part(spec).map_or_else(
        || "the backup partition".to_owned(),
        |p| p.part.label.clone().unwrap_or_else(|| p.part.name.clone()),
    )
}

/// The subvolume with `role = "meta"` (the boot backup and the filesystem record), or a
/// sentence saying the spec names none.
pub fn meta_subvolume(spec: &crate::spec::Spec) -> anyhow::Result<&str> {
    spec.meta_subvolume().ok_or_else(|| {
        anyhow::anyhow!(
            "{} names no subvolume with role = \"meta\": the boot backup and the filesystem \
             record live there (add role = \"meta\" to one subvolume of the pool)",
            spec.file.display()
        )
    })
}

/// The partition mounted at /boot, if the spec has one.
pub fn boot_partition(spec: &crate::spec::Spec) -> Option<SpecPart<'_>> {
    spec_parts(spec).find(|p| p.part.mount.as_deref() == Some("/boot"))
}

/// The ESPs, and the name their copy has in the boot backup (the label, else the name).
pub fn esps(spec: &crate::spec::Spec) -> Vec<(SpecPart<'_>, String)> {
    spec_parts(spec)
        .filter(|p| p.part.part_type == crate::spec::PartType::Esp)
        .map(|p| {
            let name = p.part.label.clone().unwrap_or_else(|| p.part.name.clone());
            (p, name)
        })
        .collect()
}
