//! The plan as a value: what will be done to which device, in order.

use serde::Serialize;
use std::path::PathBuf;

use crate::spec::{FsKind, PartType};

/// The whole plan: one entry per disk of the spec that was bound to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub spec: PathBuf,
    pub disks: Vec<DiskPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskPlan {
    /// Spec disk id (`disk1`).
    pub id: String,
    pub device: PathBuf,
    pub size: u64,
    pub serial: Option<String>,
    /// Preserved disks are listed (so the user sees they are recognised) but get no actions.
    pub preserved: bool,
    /// Facts the user should read before confirming (what will be destroyed, what is kept).
    pub notes: Vec<String>,
    pub actions: Vec<Action>,
}

/// A partition that the plan lays out, with its exact place on the disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    pub number: u32,
    pub name: String,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub part_type: PartType,
    /// Type GUID, upper case.
    pub type_guid: String,
    /// Unique partition GUID, upper case; chosen by the plan so that what is shown is
    /// what is written.
    pub part_guid: String,
}

/// A partition that an action works on, with everything needed to find it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartRef {
    /// The whole disk.
    pub disk: PathBuf,
    pub number: u32,
    /// Bytes from the start of the disk.
    pub start: u64,
    pub size: u64,
    /// GPT name, for messages.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Erase every signature (partition tables, filesystems) on the whole device.
    WipeDisk { device: PathBuf },
    /// Write a protective MBR and a new GPT holding exactly these partitions, then tell
    /// the kernel about them.
    CreateGpt {
        device: PathBuf,
        sector_size: u64,
        disk_guid: String,
        partitions: Vec<PlannedPartition>,
    },
    /// Tell the kernel about the partitions already in the on-disk GPT.
    RegisterPartitions {
        device: PathBuf,
        partitions: Vec<PartRef>,
    },
    /// Create a LUKS2 container in the partition.
    LuksFormat {
        partition: PartRef,
        key_file: Option<PathBuf>,
        /// With `key_file`: also a passphrase (asked for twice) in a second key slot.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        passphrase: bool,
        /// The container's UUID (a restore recreating the recorded one, so that the
        /// restored roots' crypttab finds it); a new one when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uuid: Option<String>,
    },
    /// Create a filesystem. `in_luks` means inside the partition's opened LUKS container.
    Mkfs {
        partition: PartRef,
        fs: FsKind,
        label: Option<String>,
        in_luks: bool,
        /// The filesystem UUID to give it (a restore recreating the recorded one); a new
        /// one when `None`.
        #[serde(skip_serializing_if = "Option::is_none")]
        uuid: Option<String>,
    },
    /// Create a top-level Btrfs subvolume.
    CreateSubvolume {
        partition: PartRef,
        name: String,
        in_luks: bool,
    },
    /// Turn on Btrfs quotas (only when the spec asks).
    EnableQuotas { partition: PartRef, in_luks: bool },
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.disks.iter().all(|d| d.actions.is_empty())
    }

    pub fn action_count(&self) -> usize {
        self.disks.iter().map(|d| d.actions.len()).sum()
    }
}

impl Action {
    /// The action's name as in the JSON plan (`create-gpt`, `mkfs`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::WipeDisk { .. } => "wipe-disk",
            Action::CreateGpt { .. } => "create-gpt",
            Action::RegisterPartitions { .. } => "register-partitions",
            Action::LuksFormat { .. } => "luks-format",
            Action::Mkfs { .. } => "mkfs",
            Action::CreateSubvolume { .. } => "create-subvolume",
            Action::EnableQuotas { .. } => "enable-quotas",
        }
    }
}
