//! The serde model of a machine spec: what the TOML file says, before validation.
//!
//! Fields that validation may complain about are wrapped in `Spanned` so an error can
//! point at `file:line:col`.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::size::SizeSpec;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub machine: Machine,
    #[serde(rename = "disk", default)]
    pub disks: Vec<DiskSpec>,
    #[serde(default)]
    pub restic: Option<ResticSpec>,
    #[serde(default)]
    pub drill: Option<DrillFile>,
    #[serde(default)]
    pub health: Option<HealthFile>,
    #[serde(default)]
    pub alerts: Option<AlertsFile>,
}

/// `[alerts]`: the user's own command that a failed timer unit runs (mail, an SMS gateway,
/// a webhook).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    /// The program (absolute path) and its first arguments; lifeboat adds the failed unit
    /// and the host, and passes the findings in LIFEBOAT_FINDINGS.
    pub command: Spanned<Vec<String>>,
}

/// `[health]`: the thresholds of `lifeboat health`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    #[serde(default)]
    pub usb_max_age_days: Option<Spanned<i64>>,
    #[serde(default)]
    pub restic_max_age_days: Option<Spanned<i64>>,
    #[serde(default)]
    pub drill_max_age_days: Option<Spanned<i64>>,
    #[serde(default)]
    pub fill_max_percent: Option<Spanned<i64>>,
}

/// `[drill]`: what `lifeboat drill` waits for on the restored system's serial console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillFile {
    /// A line the console must show (a substring of it) for the system to count as booted.
    #[serde(default)]
    pub expect: Option<Spanned<String>>,
    /// How long the boot may take, in seconds.
    #[serde(default)]
    pub timeout_secs: Option<Spanned<i64>>,
}

/// Where the off-site restic repository is and what of the machine it holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResticSpec {
    /// The provider profile (a copy of configs/providers/*.env with the real values):
    /// RESTIC_REPOSITORY and the S3 credentials. The process environment overrides it.
    #[serde(default)]
    pub env_file: Option<std::path::PathBuf>,
    /// The repository password, one line, readable by root only (RESTIC_PASSWORD_FILE
    /// in the environment overrides it).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    /// The tag of this machine's Linux snapshots; without it, snapshots are not told
    /// apart by tag (only by host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Backed-up path → the subvolume it is restored into (`"/home" = "@home"`).
    #[serde(default)]
    pub paths: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// Human name of the machine ("Myhost").
    pub name: String,
    /// Host name used by backups (btrbk directories, restic `--host`).
    pub host: String,
    /// More directories on the backup drive (relative to the top of the
    /// `role = "backup"` partition) holding
    /// btrbk or snapper points, looked in besides `<host>/` and the top level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_dirs: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Stable id used on the command line (`--disk disk1=/dev/sdb`).
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A preserved disk is never partitioned or formatted; its partitions are only
    /// described so that other steps (ESP sync, boot entries) can find them.
    #[serde(default)]
    pub preserve: bool,
    /// Allow provisioning to replace an existing partition table or filesystems on
    /// this disk (still asks for confirmation).
    #[serde(default)]
    pub wipe: Option<Spanned<bool>>,
    #[serde(rename = "match", default)]
    pub match_rules: MatchRules,
    #[serde(rename = "partition", default)]
    pub partitions: Vec<PartitionSpec>,
}

/// How the disk is recognised from sysfs when it is not bound with `--disk`.
/// Every rule that is given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRules {
    #[serde(default)]
    pub serial: Option<Spanned<String>>,
    #[serde(default)]
    pub wwn: Option<Spanned<String>>,
    #[serde(default)]
    pub min_size: Option<Spanned<SizeSpec>>,
    #[serde(default)]
    pub max_size: Option<Spanned<SizeSpec>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// GPT partition name (PARTLABEL).
    pub name: Spanned<String>,
    /// `"512MiB"`, `"64GiB"`, `"1TB"`, … or `"rest"` for the remainder of the disk.
    pub size: Spanned<SizeSpec>,
    /// GPT partition type; defaults from `fs` and `encrypt` (swap → swap, ntfs and vfat →
    /// msdata, luks2 → luks, else linux).
    #[serde(rename = "type", default)]
    pub part_type: Option<Spanned<PartType>>,
    /// Filesystem to create; absent means leave the partition raw.
    #[serde(default)]
    pub fs: Option<Spanned<FsKind>>,
    /// Filesystem label.
    #[serde(default)]
    pub label: Option<Spanned<String>>,
    /// Where the installed system mounts it (documentation, fstab).
    #[serde(default)]
    pub mount: Option<Spanned<String>>,
    #[serde(default)]
    pub mount_options: Vec<Spanned<String>>,
    /// `"luks2"` puts the filesystem inside a LUKS2 container.
    #[serde(default)]
    pub encrypt: Option<Spanned<Encryption>>,
    /// Key file for the LUKS container; without it the key is asked for.
    #[serde(default)]
    pub key_file: Option<Spanned<String>>,
    /// With `key_file`: a passphrase, typed twice at the console, goes into a second key
    /// slot (what a person types at boot; the key file stays for the rescue system).
    #[serde(default)]
    pub passphrase: Option<Spanned<bool>>,
    /// Btrfs only: enable quotas (off by default).
    #[serde(default)]
    pub quotas: Option<Spanned<bool>>,
    /// `"backup"`: this partition holds the backups (the btrbk/snapper target).
    #[serde(default)]
    pub role: Option<Spanned<PartRole>>,
    #[serde(rename = "subvolume", default)]
    pub subvolumes: Vec<SubvolumeSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubvolumeSpec {
    pub name: Spanned<String>,
    /// Mount point in the installed systems. Root subvolumes (`root = true`) are all
    /// mounted at `/` by their own distro and need no `mount`.
    #[serde(default)]
    pub mount: Option<Spanned<String>>,
    /// This subvolume is the `/` of one distro.
    #[serde(default)]
    pub root: bool,
    /// Which distro lives in a root subvolume (documentation).
    #[serde(default)]
    pub distro: Option<String>,
    /// Not every backup has it; a restore does not fail when it is missing.
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub mount_options: Vec<Spanned<String>>,
    /// `"meta"`: this subvolume carries the boot backup and the filesystem record.
    #[serde(default)]
    pub role: Option<Spanned<SubvolRole>>,
}

/// What a partition is for, beyond its filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartRole {
    /// The Btrfs filesystem the backups are sent to (btrbk, snapper, raw streams).
    Backup,
}

/// What a subvolume is for, beyond its mount point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubvolRole {
    /// Holds the boot backup (`boot/`) and the filesystem record; restored first.
    Meta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Vfat,
    Ext4,
    Btrfs,
    Ntfs,
    Swap,
}

impl FsKind {
    /// The TYPE blkid reports for this filesystem.
    pub fn blkid_type(self) -> &'static str {
        match self {
            FsKind::Vfat => "vfat",
            FsKind::Ext4 => "ext4",
            FsKind::Btrfs => "btrfs",
            FsKind::Ntfs => "ntfs",
            FsKind::Swap => "swap",
        }
    }
}

impl std::fmt::Display for FsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsKind::Vfat => "FAT32",
            FsKind::Ext4 => "ext4",
            FsKind::Btrfs => "Btrfs",
            FsKind::Ntfs => "NTFS",
            FsKind::Swap => "swap",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartType {
    /// EFI System Partition.
    Esp,
    /// Linux filesystem data.
    Linux,
    /// Linux swap.
    Swap,
    /// Microsoft basic data (NTFS, exFAT shared with Windows).
    Msdata,
    /// Linux LUKS container.
    Luks,
}

impl PartType {
    /// The GPT partition type GUID (upper case, as sgdisk prints it).
    pub fn guid(self) -> &'static str {
        match self {
            PartType::Esp => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            PartType::Linux => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            PartType::Swap => "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
            PartType::Msdata => "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
            PartType::Luks => "CA7D7CCB-63ED-4C53-861C-1742536059CC",
        }
    }

    pub fn from_guid(guid: &str) -> Option<PartType> {
        [
            PartType::Esp,
            PartType::Linux,
            PartType::Swap,
            PartType::Msdata,
            PartType::Luks,
        ]
        .into_iter()
        .find(|t| t.guid().eq_ignore_ascii_case(guid))
    }
}

impl std::fmt::Display for PartType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PartType::Esp => "EFI System",
            PartType::Linux => "Linux filesystem",
            PartType::Swap => "Linux swap",
            PartType::Msdata => "Microsoft basic data",
            PartType::Luks => "Linux LUKS",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    None,
    Luks2,
}
