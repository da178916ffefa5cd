//! Where the subvolumes of a restore come from, behind one trait: the backup drive
//! ([`usb`]), the restic repository ([`restic`]), raw send streams kept in restic
//! ([`restic_stream`]).

use std::path::Path;

use anyhow::Result;

use super::record::{Record, BOOT_DIR, RECORD_FILE};

pub mod restic;
pub mod restic_stream;
pub mod usb;

/// Which source, as `--from` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Usb,
    Restic,
    ResticStream,
}

/// Where the subvolumes come from: the backup drive, or restic.
pub trait Source {
    /// For messages: the backup partition's label (e.g. `BACKUP`), `restic s3:…`.
    fn name(&self) -> String;
    /// The subvolumes it restores, in order.
    fn subvols(&self) -> Vec<String>;
    /// About how many bytes it writes into the pool.
    fn bytes(&self) -> u64;
    /// The filesystem record from the backup's meta subvolume, if it can be read now.
    fn record(&self) -> Option<Record>;
    /// The plan's lines for the pool mounted (read-only) at `top`, or for a pool about to
    /// be made (`None`).
    fn plan_lines(&self, top: Option<&Path>, stamp: &str) -> Result<String>;
    /// Restore into the pool mounted (top level, read-write) at `top`; `receives` is
    /// `--receives` (how many subvolumes side by side), where the source receives streams.
    fn restore(&self, top: &Path, stamp: &str, receives: Option<usize>) -> Result<()>;
    /// How many subvolumes it restores at a time for `--receives` (`asked`), and why: the
    /// plan says it, and [`Source::restore`] keeps to it.
    fn side_by_side(&self, asked: Option<usize>) -> (usize, String) {
        // A source that is not a local disk: its reads do not seek against each other.
        crate::restore::receive::side_by_side(asked, None)
    }
    fn close(self: Box<Self>) -> Result<()>;
    /// How many of its points are stream files (whose preflight
    /// [`crate::restore::preflight`] decides).
    fn streams(&self) -> usize {
        0
    }
    /// The subvolumes with data in the pool mounted (read-only) at `top` that the restore
    /// would move aside.
    fn replaced(&self, _top: &Path, _stamp: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Read every stream file whole before anything is written (the plan says when).
    fn check_streams_whole(&mut self) -> Result<()> {
        Ok(())
    }
    /// What a root needs that this source does not bring back, one sentence each, for the
    /// plan and the end of the restore.
    fn not_carried(&self) -> Vec<String> {
        Vec::new()
    }
    /// The points it restores from, per subvolume (for a drill's record).
    fn points(&self) -> Vec<UsedPoint> {
        Vec::new()
    }
}

/// One restore point a restore used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsedPoint {
    pub subvol: String,
    /// Its name where the source keeps it (a path on the drive, a snapshot id).
    pub point: String,
    /// When it was taken (Unix time), when known.
    pub time: Option<i64>,
}

/// btrfs send/receive (the backup drive, raw streams) carries SELinux labels, file
/// capabilities, ACLs, every other xattr, hard links and holes, but no inode flags: the
/// send stream has no command for them, and the received backup lost them already.
pub const NOT_BY_SEND: &str = "not carried by btrfs send/receive: the immutable and \
    append-only attributes (chattr +i, chattr +a); no restored file has them: set them again \
    where the system needs them";

/// The filesystem record in `text` (read from `from`, in the meta subvolume `meta`),
/// reported in the preflight.
pub fn record_from(text: &str, from: &str, meta: &str) -> Option<Record> {
    match Record::parse(text) {
        Ok(rec) => {
            println!(
                "  {meta}/{BOOT_DIR}/{RECORD_FILE}: {} filesystems recorded on {}",
                rec.filesystems.len(),
                rec.written
            );
            Some(rec)
        }
        Err(e) => {
            println!("  {from} cannot be read ({e}); new UUIDs");
            None
        }
    }
}
