//! What is on the disks now: sysfs facts (size, serial, WWN), the GPT, filesystem
//! signatures, Btrfs subvolumes, and whether anything is using the device.
//!
//! Probing never writes to a disk. It may tell the kernel about partitions that are in
//! the on-disk GPT but unknown to it (BLKPG add, as `partx -a` does), so that their
//! contents can be read; that changes no byte on the disk.

mod device;
pub mod gpt_table;
mod identity;
mod parse;
pub mod table;

// The kernel's partitions are blockdev's answer; a probed disk carries them.
pub use crate::blockdev::KernelPartition;
pub use device::{all_disks, device, look_for_orphans, MachineDisks};
pub use identity::{identity, Bus, Identity};

use serde::Serialize;
use std::path::PathBuf;

/// One whole block device as found now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// `/dev/loop0`, `/dev/sdb`, `/dev/nvme0n1`: the kernel's node, whatever path (a
    /// /dev/disk/by-id symlink) named it, so that partition nodes can be named from it.
    pub path: PathBuf,
    /// The kernel's name (`loop0`, `sdb`).
    pub kernel_name: String,
    /// Size in bytes.
    pub size: u64,
    /// Logical sector size in bytes (512 or 4096).
    pub sector_size: u64,
    /// What it hangs on (`lifeboat disks` shows it; the serial is read accordingly).
    pub bus: Bus,
    /// As udev's ID_SERIAL_SHORT: see [`identity`] for where each bus keeps it.
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    pub table: Table,
    /// A filesystem or other signature on the whole device (no partition table).
    pub whole_disk_fs: Option<Filesystem>,
    /// Filesystems found where no partition table points: the table was zapped or its
    /// partitions deleted, the data is still there. Looked for only on a disk that
    /// otherwise looks blank (no table, an empty GPT), at the offsets where partitions
    /// usually start and where the spec's partitions would start.
    pub orphans: Vec<Orphan>,
    /// Why the device cannot be written now, one sentence each: mounted partitions,
    /// active swap, holders (device-mapper, md), loop devices over it.
    pub busy: Vec<String>,
    /// The kernel refuses writes to it (a write-protect switch, `blockdev --setro`, a
    /// loop device attached read-only).
    pub read_only: bool,
    /// Partitions the kernel knows about (may differ from the on-disk table).
    pub kernel_partitions: Vec<KernelPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Table {
    /// No partition table at all.
    None,
    Gpt(Gpt),
    /// Some other table (an MBR with partitions): named as blkid names it (`dos`).
    Other {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpt {
    /// Disk GUID, upper case.
    pub disk_guid: String,
    pub partitions: Vec<Part>,
}

/// One partition of an on-disk GPT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// 1-based partition number (its slot in the table).
    pub number: u32,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    /// Type GUID, upper case.
    pub type_guid: String,
    /// Unique partition GUID, upper case.
    pub part_guid: String,
    /// GPT partition name.
    pub name: String,
    /// Filesystem signature inside the partition, if any.
    pub fs: Option<Filesystem>,
    /// Top-level subvolume names when `fs` is Btrfs and they could be read.
    pub subvolumes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// As blkid says: `vfat`, `ext4`, `btrfs`, `ntfs`, `swap`, `crypto_LUKS`, …
    pub fstype: String,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

/// A filesystem signature that no partition table accounts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    /// In bytes from the start of the disk.
    pub offset: u64,
    pub fs: Filesystem,
}

impl Device {
    pub fn gpt(&self) -> Option<&Gpt> {
        match &self.table {
            Table::Gpt(g) => Some(g),
            _ => None,
        }
    }

    /// No table with partitions and no filesystem on the whole disk: what a new disk
    /// looks like, and also one whose table was zapped (see [`Device::orphans`]).
    pub fn looks_blank(&self) -> bool {
        self.whole_disk_fs.is_none()
            && match &self.table {
                Table::None => true,
                Table::Gpt(g) => g.partitions.is_empty(),
                Table::Other { .. } => false,
            }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
}
