//! Opening the spec's LUKS2 containers that exist on the disks: for `lifeboat unlock`, for
//! a restore into an encrypted pool, for writing the roots' fstab and crypttab. A container
//! is opened as lifeboat's mapping (`/dev/mapper/lifeboat-<partition>`); one that is open
//! already (an earlier `lifeboat unlock`) is used as it is and left open.

use std::path::{Path, PathBuf};

use crate::apply::KeySource;
use crate::blockdev;
use crate::cryptsetup::{self, CryptError, Key};
use crate::plan::{Binding, PartRef};
use crate::spec::{Encryption, Partition, Spec};

#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("partition {number} \"{name}\" of {disk} is not encrypted in the spec")]
    NotEncrypted {
        disk: String,
        number: u32,
        name: String,
    },
    #[error("no key for the LUKS container in partition {number} \"{name}\" of {disk}: {why}")]
    NoKey {
        disk: String,
        number: u32,
        name: String,
        why: String,
    },
    #[error("{disk} was not found: its LUKS container cannot be opened")]
    DiskMissing { disk: String },
    #[error(transparent)]
    Crypt(#[from] CryptError),
}

/// An opened container; [`Opened::close`] closes it only when this run opened it.
#[derive(Debug)]
pub struct Opened {
    pub name: String,
    pub device: PathBuf,
    ours: bool,
}

impl Opened {
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// Whether this run opened it (rather than finding it open).
    pub fn opened_here(&self) -> bool {
        self.ours
    }

    /// Close it when this run opened it (whatever is mounted from it must be unmounted).
    pub fn close(mut self) -> Result<(), CryptError> {
        if std::mem::take(&mut self.ours) {
            cryptsetup::close(&self.name)?;
        }
        Ok(())
    }

    /// Leave it open after this run (`lifeboat unlock`).
    pub fn keep(mut self) -> PathBuf {
        self.ours = false;
        self.device.clone()
    }
}

/// A run that stops early closes what it opened (errors are not reported here: the run
/// is failing already).
impl Drop for Opened {
    fn drop(&mut self) {
        if self.ours {
            let _ = cryptsetup::close(&self.name);
        }
    }
}

/// The key that opens `part`'s container: its key file when the spec names one that
/// exists here, else a passphrase from `keys` (a person typing it, or stdin).
pub fn key_for(
    disk_id: &str,
    part: &Partition,
    partition: &PartRef,
    keys: &mut dyn KeySource,
) -> Result<Key, UnlockError> {
    if let Some(f) = &part.key_file {
        match Key::file(f) {
            Ok(key) => return Ok(key),
            // Without the file, only a passphrase slot can still open it.
            Err(err) if !part.passphrase => return Err(err.into()),
            Err(_) => {}
        }
    }
    keys.passphrase(partition)
        .map(Key::Passphrase)
        .map_err(|why| UnlockError::NoKey {
            disk: disk_id.to_owned(),
            number: partition.number,
            name: partition.name.clone(),
            why,
        })
}

/// Open the container in partition `number` (1-based) of the disk at `disk_dev`.
pub fn open(
    disk_id: &str,
    disk_dev: &Path,
    number: u32,
    part: &Partition,
    keys: &mut dyn KeySource,
) -> Result<Opened, UnlockError> {
    if part.encrypt != Encryption::Luks2 {
        return Err(UnlockError::NotEncrypted {
            disk: disk_id.to_owned(),
            number,
            name: part.name.clone(),
        });
    }
    let node = blockdev::partition_node(disk_dev, number);
    let name = cryptsetup::mapper_name(&node);
    let device = cryptsetup::mapper_path(&name);
    if cryptsetup::is_open(&name) {
        return Ok(Opened {
            name,
            device,
            ours: false,
        });
    }
    if !cryptsetup::is_luks(&node)? {
        return Err(CryptError::NotLuks { device: node }.into());
    }
    let partition = PartRef {
        disk: disk_dev.to_owned(),
        number,
        start: 0,
        size: 0,
        name: part.name.clone(),
    };
    let key = key_for(disk_id, part, &partition, keys)?;
    cryptsetup::open(&node, &name, &key)?;
    Ok(Opened {
        name,
        device,
        ours: true,
    })
}

/// `lifeboat unlock` and the menu's entry: bind the disks (`--disk` first), open every
/// encrypted partition of the spec, and say where each one is open.
pub fn run(spec: &Spec, disks: &[(String, PathBuf)]) -> anyhow::Result<()> {
    let bindings = crate::machine::bind_disks(spec, disks, &[], crate::machine::Scan::AllDisks)?;
    let opened = open_all(spec, &bindings, &mut crate::ui::Prompted)?;
    if opened.is_empty() {
        anyhow::bail!(
            "{} has no partition with encrypt = \"luks2\": nothing to unlock",
            spec.file.display()
        );
    }
    for (disk, number, o) in opened {
        let how = if o.opened_here() {
            "opened"
        } else {
            "open already"
        };
        println!("{disk} partition {number}: {how} as {}", o.keep().display());
    }
    Ok(())
}

/// Every encrypted partition of the spec on the bound disks, opened; stops at the first
/// that fails (those opened before it stay open: `lifeboat unlock` is asked to open them).
pub fn open_all(
    spec: &Spec,
    bindings: &[Binding],
    keys: &mut dyn KeySource,
) -> Result<Vec<(String, u32, Opened)>, UnlockError> {
    let mut out = Vec::new();
    for disk in &spec.disks {
        for (i, part) in disk.partitions.iter().enumerate() {
            if part.encrypt != Encryption::Luks2 {
                continue;
            }
            let Some(b) = bindings.iter().find(|b| b.id == disk.id) else {
                return Err(UnlockError::DiskMissing {
                    disk: disk.id.clone(),
                });
            };
            let number = i as u32 + 1;
            let opened = open(&disk.id, &b.device.path, number, part, keys)?;
            out.push((disk.id.clone(), number, opened));
        }
    }
    Ok(out)
}
