//! Why a plan cannot be made: each a single sentence naming the disk and the device.

use std::path::PathBuf;

use crate::spec::human;

fn candidates_words(candidates: &[String]) -> String {
    if candidates.is_empty() {
        String::new()
    } else {
        format!("a replacement could be {}: ", candidates.join(" or "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown disk id \"{id}\" in {option}: {file} has {}", known.join(", "))]
    UnknownDisk {
        id: String,
        option: &'static str,
        file: String,
        known: Vec<String>,
    },
    #[error("{} is bound to both {first} and {second}; each disk of the spec needs its own device", device.display())]
    BoundTwice {
        device: PathBuf,
        first: String,
        second: String,
    },
    #[error("no disk matches {id} ({rules}); {}bind one with --disk {id}=/dev/… (`lifeboat disks` lists the disks and their serials)", candidates_words(candidates))]
    NoMatch {
        id: String,
        rules: String,
        /// Disks that could take its place: blank, not bound to another spec disk, not
        /// in use, big enough for its layout (`/dev/sdb (2.00 TB, serial X)`).
        candidates: Vec<String>,
        /// Those disks, for the person to pick one by its serial.
        devices: Vec<crate::probe::Device>,
    },
    #[error("\"{typed}\" is not the serial of a disk that could replace {id} (they are {}); nothing was written", candidates.join(", "))]
    NotACandidate {
        id: String,
        typed: String,
        candidates: Vec<String>,
    },
    #[error("{} disks match {id} ({rules}): {}; bind the right one with --disk {id}=/dev/…", devices.len(), devices.join(", "))]
    ManyMatches {
        id: String,
        rules: String,
        devices: Vec<String>,
    },
    #[error("{id} is preserved in the spec and is never partitioned or formatted")]
    Preserved { id: String },
    #[error("{id} has no rules to be found by (serial, wwn, min_size/max_size); bind it with --disk {id}=/dev/…")]
    NoRules { id: String },
    #[error("{id} ({}) is in use: {}; stop using it first", device.display(), reasons.join("; "))]
    Busy {
        id: String,
        device: PathBuf,
        reasons: Vec<String>,
    },
    #[error("{id} ({}) is too small: it has {} but the spec's partitions need at least {}", device.display(), human(*size), human(*needed))]
    TooSmall {
        id: String,
        device: PathBuf,
        size: u64,
        needed: u64,
    },
    #[error("{id} ({}) is read-only: the kernel refuses writes to it (a write-protect switch, `blockdev --setro`, or a loop device attached with `losetup -r`); make it writable (`blockdev --setrw {}`) or bind another device", device.display(), device.display())]
    ReadOnly { id: String, device: PathBuf },
    #[error("{id} ({}) has {sector_size}-byte sectors, and partition {number} \"{name}\" ({}) is too small for FAT32 in such sectors: it needs at least {}; make it bigger in the spec", device.display(), human(*size), human(*needed))]
    FatTooSmall {
        id: String,
        device: PathBuf,
        number: u32,
        name: String,
        size: u64,
        sector_size: u64,
        needed: u64,
    },
    #[error("{id} ({}) already holds {what}, which provisioning would destroy; to replace it, pass --wipe {id} (or set wipe = true for {id} in the spec) and confirm", device.display())]
    WouldDestroy {
        id: String,
        device: PathBuf,
        what: String,
    },
}
