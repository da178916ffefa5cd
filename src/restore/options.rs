//! What a restore is asked to do.

use std::path::PathBuf;

use super::select::When;
use super::source::Kind;

/// What a restore is asked to do, as plain values (the command line's `restore` flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub from: Kind,
    /// The newest points, or the newest at or before a time.
    pub when: When,
    /// A restic snapshot id (prefix): `--from restic` or `restic-stream` only.
    pub snapshot: Option<String>,
    /// Only these subvolumes (all of the spec's when empty).
    pub subvols: Vec<String>,
    /// `--disk ID=DEVICE`.
    pub disks: Vec<(String, PathBuf)>,
    /// `--wipe ID`: disks whose foreign contents provisioning may replace.
    pub wipe: Vec<String>,
    /// Ask, `--yes` or `--dry-run`.
    pub confirmation: crate::ui::Confirmation,
    /// Write the boot entries into the firmware's UEFI variables (when efivarfs is
    /// mounted). Off for a drill: its disk is an image, the host's firmware is not its.
    pub firmware: bool,
    /// Where the target's bytes really go and how much room that has, when it is less than
    /// the pool (a drill's sparse image in its work directory): the estimate must fit.
    pub room: Option<(std::path::PathBuf, u64)>,
    /// A recorded Btrfs UUID that a device of this machine already has is replaced by a new
    /// one (a drill on the working machine, whose own pool has it: mkfs.btrfs refuses a
    /// non-unique UUID and the kernel would not mount a second one). The replacements are
    /// in [`super::run::Outcome::renamed`].
    pub new_uuid_when_taken: bool,
    /// `--receives N`: how many subvolumes are received side by side (`None`: two, one
    /// from a backup drive that spins).
    pub receives: Option<usize>,
}
