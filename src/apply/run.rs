//! Carrying out a plan: each action through the tool that does it best, announced before
//! it runs, stopped at the first failure with the step named.

use std::path::{Path, PathBuf};

use crate::blockdev;
use crate::exec::Cmd;
use crate::plan::{Action, PartRef, Plan};
use crate::probe::KernelPartition;
use crate::runlog;
use crate::spec::FsKind;

use super::luks::{self, Purpose};
use super::{fat, gpt_table, mount::Mount};
use crate::cryptsetup;

/// A step that failed: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("step {number} ({step}) failed")]
pub struct ApplyError {
    pub number: usize,
    pub step: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Told about each step as it starts and ends (progress bars, logs).
pub trait Progress {
    fn start(&mut self, number: usize, total: usize, disk: &str, what: &str);
    fn done(&mut self, number: usize);
}

/// Where LUKS passphrases come from when the spec names no key file (or asks for a
/// passphrase beside it).
pub trait KeySource {
    /// The passphrase of a container about to be made (asked for twice).
    fn new_passphrase(&mut self, partition: &PartRef) -> Result<String, String>;
    /// The passphrase of an existing container.
    fn passphrase(&mut self, partition: &PartRef) -> Result<String, String>;
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Carry out every action of `plan` in order.
pub fn apply(
    plan: &Plan,
    progress: &mut dyn Progress,
    keys: &mut dyn KeySource,
) -> Result<(), ApplyError> {
    let total = plan.action_count();
    let mut number = 0;
    let mut state = State::default();
    let failpoint = std::env::var("LIFEBOAT_FAILPOINT").ok();
    for disk in &plan.disks {
        for action in &disk.actions {
            number += 1;
            let what = action.describe();
            progress.start(number, total, &disk.id, &what);
            runlog::line(&format!("step {number}/{total} {}: {what}", disk.id));
            state.run(action, keys).map_err(|source| ApplyError {
                number,
                step: format!("{}: {what}", disk.id),
                source,
            })?;
            progress.done(number);
            pause_at_failpoint(failpoint.as_deref(), action);
        }
        if disk.actions.is_empty() {
            continue;
        }
        // Leave nothing of ours mounted between disks, and nothing unwritten.
        state
            .unmount()
            .and_then(|()| Ok(blockdev::flush(&disk.device)?))
            .map_err(|source| ApplyError {
                number,
                step: format!("{}: flush to disk", disk.id),
                source,
            })?;
    }
    state.close_luks().map_err(|source| ApplyError {
        number,
        step: "close LUKS containers".into(),
        source,
    })?;
    Ok(())
}

/// `LIFEBOAT_FAILPOINT=pause-after:KIND` stops the run right after the first action of
/// that kind (`create-gpt`, `mkfs`, …) and waits to be killed, so tests can interrupt a
/// provision at a known point and prove that a re-run converges.
fn pause_at_failpoint(failpoint: Option<&str>, action: &Action) {
    let Some(kind) = failpoint.and_then(|f| f.strip_prefix("pause-after:")) else {
        return;
    };
    if action.kind() == kind {
        eprintln!("lifeboat: failpoint pause-after:{kind} reached; waiting to be killed");
        runlog::line(&format!("failpoint pause-after:{kind} reached"));
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// `LIFEBOAT_FAILPOINT=pause-before:boot-setup` (or another point a caller names): stop
/// there and wait to be killed, like `pause-after:KIND`.
pub fn pause_at(point: &str) {
    if std::env::var("LIFEBOAT_FAILPOINT").is_ok_and(|f| f == point) {
        eprintln!("lifeboat: failpoint {point} reached; waiting to be killed");
        runlog::line(&format!("failpoint {point} reached"));
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

#[derive(Default)]
struct State {
    /// The Btrfs filesystem mounted for subvolume work, kept across consecutive actions.
    mounted: Option<(PathBuf, Mount)>,
    /// LUKS containers this run opened: (partition node, mapper name).
    opened: Vec<(PathBuf, String)>,
}

impl State {
    fn run(&mut self, action: &Action, keys: &mut dyn KeySource) -> Result<(), BoxError> {
        match action {
            Action::WipeDisk { device } => {
                self.unmount()?;
                blockdev::sync_partitions(device, &[])?;
                wipe_signatures(device)?;
            }
            Action::CreateGpt {
                device,
                sector_size,
                disk_guid,
                partitions,
            } => {
                self.unmount()?;
                // Forget the kernel's old partitions before their table goes away.
                blockdev::sync_partitions(device, &[])?;
                gpt_table::write(device, *sector_size, disk_guid, partitions)?;
                let wanted: Vec<KernelPartition> = partitions
                    .iter()
                    .map(|p| KernelPartition {
                        number: p.number,
                        start: p.first_lba * sector_size,
                        size: (p.last_lba - p.first_lba + 1) * sector_size,
                    })
                    .collect();
                blockdev::sync_partitions(device, &wanted)?;
            }
            Action::RegisterPartitions { device, partitions } => {
                let wanted: Vec<KernelPartition> = partitions
                    .iter()
                    .map(|p| KernelPartition {
                        number: p.number,
                        start: p.start,
                        size: p.size,
                    })
                    .collect();
                blockdev::sync_partitions(device, &wanted)?;
            }
            Action::LuksFormat {
                partition,
                key_file,
                passphrase,
                uuid,
            } => {
                let node = blockdev::partition_node(&partition.disk, partition.number);
                // Every key is at hand before anything is written.
                let key = luks::obtain(key_file.as_deref(), partition, keys, Purpose::New)?;
                let second = if *passphrase && key_file.is_some() {
                    Some(luks::passphrase(partition, keys, Purpose::New)?)
                } else {
                    None
                };
                wipe_signatures(&node)?;
                cryptsetup::format(&node, &key, uuid.as_deref())?;
                if let Some(second) = &second {
                    cryptsetup::add_key(&node, &key, second)?;
                }
                let name = cryptsetup::mapper_name(&node);
                cryptsetup::open(&node, &name, &key)?;
                self.opened.push((node, name));
            }
            Action::Mkfs {
                partition,
                fs,
                label,
                in_luks,
                uuid,
            } => {
                let target = self.target(partition, *in_luks, keys)?;
                self.unmount_if(&target)?;
                mkfs(&target, *fs, label.as_deref(), uuid.as_deref())?;
            }
            Action::CreateSubvolume {
                partition,
                name,
                in_luks,
            } => {
                let mnt = self.mount_btrfs(partition, *in_luks, keys)?;
                crate::btrfs::create(&mnt.join(name))?;
            }
            Action::EnableQuotas { partition, in_luks } => {
                let mnt = self.mount_btrfs(partition, *in_luks, keys)?;
                crate::btrfs::quota_enable(&mnt)?;
            }
        }
        Ok(())
    }

    /// The block device an action writes to: the partition, or its opened LUKS mapping.
    fn target(
        &mut self,
        partition: &PartRef,
        in_luks: bool,
        keys: &mut dyn KeySource,
    ) -> Result<PathBuf, BoxError> {
        let node = blockdev::partition_node(&partition.disk, partition.number);
        if !in_luks {
            return Ok(node);
        }
        if let Some((_, name)) = self.opened.iter().find(|(n, _)| *n == node) {
            return Ok(cryptsetup::mapper_path(name));
        }
        let name = cryptsetup::mapper_name(&node);
        let path = cryptsetup::mapper_path(&name);
        if cryptsetup::is_open(&name) {
            // Opened before this run (`lifeboat unlock`): used, and left open.
            return Ok(path);
        }
        let key = luks::obtain(None, partition, keys, Purpose::Existing)?;
        cryptsetup::open(&node, &name, &key)?;
        self.opened.push((node, name));
        Ok(path)
    }

    fn mount_btrfs(
        &mut self,
        partition: &PartRef,
        in_luks: bool,
        keys: &mut dyn KeySource,
    ) -> Result<PathBuf, BoxError> {
        let target = self.target(partition, in_luks, keys)?;
        if let Some((dev, m)) = &self.mounted {
            if *dev == target {
                return Ok(m.path().to_owned());
            }
        }
        self.unmount()?;
        // The top level, whatever default subvolume an installed system has set.
        let m = Mount::with_options(&target, "btrfs", Some("subvolid=5"))?;
        let path = m.path().to_owned();
        self.mounted = Some((target, m));
        Ok(path)
    }

    fn unmount_if(&mut self, device: &Path) -> Result<(), BoxError> {
        if self.mounted.as_ref().is_some_and(|(d, _)| d == device) {
            self.unmount()?;
        }
        Ok(())
    }

    fn unmount(&mut self) -> Result<(), BoxError> {
        if let Some((_, m)) = self.mounted.take() {
            m.close()?;
        }
        Ok(())
    }

    fn close_luks(&mut self) -> Result<(), BoxError> {
        self.unmount()?;
        for (_, name) in self.opened.drain(..) {
            cryptsetup::close(&name)?;
        }
        Ok(())
    }
}

/// Erase every signature blkid would find; old ones at other offsets would make blkid see
/// two filesystems in one partition.
fn wipe_signatures(device: &Path) -> Result<(), BoxError> {
    // --lock=no: this run holds the disk's lock itself (crate::disklock), and wipefs would
    // refuse it if LOCK_BLOCK_DEVICE in the environment asked wipefs to lock too.
    Cmd::new("wipefs")
        .args(["--all", "--quiet", "--lock=no"])
        .arg(device)
        .run()?;
    Ok(())
}

fn mkfs(
    target: &Path,
    fs: FsKind,
    label: Option<&str>,
    uuid: Option<&str>,
) -> Result<(), BoxError> {
    wipe_signatures(target)?;
    let label_args = |flag: &str| -> Vec<String> {
        label
            .map(|l| vec![flag.to_owned(), l.to_owned()])
            .unwrap_or_default()
    };
    let uuid_args = |flag: &str| -> Vec<String> {
        uuid.map(|u| vec![flag.to_owned(), u.to_owned()])
            .unwrap_or_default()
    };
    match fs {
        FsKind::Vfat => {
            fat::format_fat32_path(
                target,
                label.unwrap_or("NO NAME"),
                match uuid {
                    Some(text) => fat_volume_id(text)?,
                    None => uuid::Uuid::new_v4().as_u128() as u32,
                },
            )?;
            // FAT has no journal and no second opinion inside lifeboat: ask dosfstools.
            Cmd::new("fsck.vfat").arg("-n").arg(target).run()?;
        }
        FsKind::Ext4 => {
            Cmd::new("mkfs.ext4")
                .args(["-F", "-q"])
                .args(label_args("-L"))
                .args(uuid_args("-U"))
                .arg(target)
                .run()?;
        }
        FsKind::Btrfs => {
            Cmd::new("mkfs.btrfs")
                .args(["-f", "-q"])
                .args(label_args("-L"))
                .args(uuid_args("-U"))
                .arg(target)
                .run()?;
        }
        FsKind::Ntfs => {
            Cmd::new("mkfs.ntfs")
                .args(["--quick", "--force", "--quiet"])
                .args(label_args("--label"))
                .arg(target)
                .run()?;
            // mkfs.ntfs seeds its serial from the clock: two NTFS made in the same second
            // get the same UUID, which breaks mounting by UUID. Give it a random one.
            let serial = uuid::Uuid::new_v4().as_u64_pair().0;
            Cmd::new("ntfslabel")
                .arg(format!("--new-serial={serial:016X}"))
                .arg(target)
                .run()?;
        }
        FsKind::Swap => {
            Cmd::new("mkswap")
                .args(label_args("-L"))
                .args(uuid_args("-U"))
                .arg(target)
                .run()?;
        }
    }
    Ok(())
}

/// A FAT volume id as blkid prints it (`ABCD-1234`) → the 32-bit serial.
fn fat_volume_id(text: &str) -> Result<u32, BoxError> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    match u32::from_str_radix(&hex, 16) {
        Ok(id) if hex.len() == 8 => Ok(id),
        _ => Err(format!("\"{text}\" is not a FAT volume id (like ABCD-1234)").into()),
    }
}
