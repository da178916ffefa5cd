//! The firmware's boot variables through efivarfs, with the `efivar` crate: reading
//! Boot#### and BootOrder, and carrying out an [`entries`](super::entries) plan.
//!
//! Two things efivar 2.0 leaves to its caller: it panics when no efivarfs is mounted
//! (checked here first), and efivarfs marks existing variables immutable, so rewriting or
//! deleting one needs `chattr -i` first (kept as a program: the ioctl would need `unsafe`).

use std::path::{Path, PathBuf};

use efivar::boot::BootEntry;
use efivar::efi::Variable;
use efivar::VarManager;

use super::entries::{Changes, Existing};
use crate::exec::{Cmd, ExecError};

pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// EFI_GLOBAL_VARIABLE: the vendor GUID of Boot#### and BootOrder.
const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

#[derive(Debug, thiserror::Error)]
pub enum EfiError {
    #[error("no UEFI variables here: this system was booted in BIOS mode, or efivarfs is not mounted at {EFIVARS} (mount -t efivarfs efivarfs {EFIVARS}); nothing changed")]
    NoEfivarfs,
    #[error("cannot {what} the UEFI variable {name}: {source}")]
    Var {
        what: &'static str,
        name: String,
        source: efivar::Error,
    },
    #[error("cannot make {} writable: {source}", path.display())]
    Immutable { path: PathBuf, source: ExecError },
}

/// Whether the firmware enforces Secure Boot, as its `SecureBoot` variable says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecureBoot {
    On,
    Off,
    /// No such variable: booted in BIOS mode, or efivarfs is not mounted.
    #[default]
    Unknown,
}

impl std::fmt::Display for SecureBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecureBoot::On => "on",
            SecureBoot::Off => "off",
            SecureBoot::Unknown => "unknown (not booted by UEFI)",
        })
    }
}

impl SecureBoot {
    /// The bytes of efivarfs' file: 4 bytes of attributes, then 1 (on) or 0 (off).
    pub fn parse(file: Option<&[u8]>) -> SecureBoot {
        match file {
            Some([_, _, _, _, 1, ..]) => SecureBoot::On,
            Some([_, _, _, _, 0, ..]) => SecureBoot::Off,
            _ => SecureBoot::Unknown,
        }
    }

    /// This system's state, read from efivarfs at `efivars` (normally [`EFIVARS`]).
    /// Read as a file rather than through efivar: that crate panics without efivarfs.
    pub fn read(efivars: &Path) -> SecureBoot {
        let file = std::fs::read(efivars.join(format!("SecureBoot-{GLOBAL}"))).ok();
        SecureBoot::parse(file.as_deref())
    }
}

pub struct Firmware {
    vars: Box<dyn VarManager>,
}

impl Firmware {
    /// The running system's variables; `mountinfo` is /proc/self/mountinfo.
    pub fn open(mountinfo: &str) -> Result<Firmware, EfiError> {
        if crate::mountinfo::fstype_at(mountinfo, Path::new(EFIVARS)).as_deref() != Some("efivarfs")
        {
            return Err(EfiError::NoEfivarfs);
        }
        Ok(Firmware {
            vars: efivar::system(),
        })
    }

    /// Every Boot#### (parsed when efivar can) and BootOrder (empty when unset).
    pub fn boot_entries(&self) -> Result<(Vec<Existing>, Vec<u16>), EfiError> {
        let all = self.vars.get_all_vars().map_err(|source| EfiError::Var {
            what: "list",
            name: "*".into(),
            source,
        })?;
        // Vendors' look-alikes (Lenovo's lBoot####) are neither read nor ever rewritten.
        let mut ids: Vec<u16> = all
            .filter_map(|v| super::entries::boot_option_id(v.name(), v.vendor().is_efi()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let existing = ids
            .into_iter()
            .map(|id| Existing {
                id,
                entry: BootEntry::read(
                    self.vars.as_ref(),
                    &Variable::new(&format!("Boot{id:04X}")),
                )
                .ok(),
            })
            .collect();
        let order = self.vars.get_boot_order().unwrap_or_default();
        Ok((existing, order))
    }

    /// Deletions, then entries, then BootOrder: a failure half-way leaves every entry
    /// BootOrder names in place.
    pub fn apply(&mut self, changes: &Changes) -> Result<(), EfiError> {
        for id in &changes.delete {
            let name = format!("Boot{id:04X}");
            writable(&name)?;
            self.vars
                .delete(&Variable::new(&name))
                .map_err(|source| EfiError::Var {
                    what: "delete",
                    name,
                    source,
                })?;
        }
        for (id, entry) in &changes.write {
            let name = format!("Boot{id:04X}");
            writable(&name)?;
            self.vars
                .add_boot_entry(*id, entry.clone())
                .map_err(|source| EfiError::Var {
                    what: "write",
                    name,
                    source,
                })?;
        }
        if let Some(order) = &changes.boot_order {
            writable("BootOrder")?;
            self.vars
                .set_boot_order(order.clone())
                .map_err(|source| EfiError::Var {
                    what: "write",
                    name: "BootOrder".into(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// efivarfs files are immutable unless told otherwise; a new variable has no file yet.
fn writable(name: &str) -> Result<(), EfiError> {
    let path = Path::new(EFIVARS).join(format!("{name}-{GLOBAL}"));
    if path.exists() {
        Cmd::new("chattr")
            .arg("-i")
            .arg(&path)
            .run()
            .map_err(|source| EfiError::Immutable { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_boot_variable_is_read_as_the_firmware_writes_it() {
        // Attributes BS|RT (0x06), then the value.
        assert_eq!(SecureBoot::parse(Some(&[6, 0, 0, 0, 1])), SecureBoot::On);
        assert_eq!(SecureBoot::parse(Some(&[6, 0, 0, 0, 0])), SecureBoot::Off);
        assert_eq!(SecureBoot::parse(Some(&[6, 0, 0, 0])), SecureBoot::Unknown);
        assert_eq!(SecureBoot::parse(None), SecureBoot::Unknown);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SecureBoot::read(dir.path()), SecureBoot::Unknown);
        assert_eq!(
            SecureBoot::Unknown.to_string(),
            "unknown (not booted by UEFI)"
        );
        std::fs::write(
            dir.path().join(format!("SecureBoot-{GLOBAL}")),
            [6, 0, 0, 0, 1],
        )
        .unwrap();
        assert_eq!(SecureBoot::read(dir.path()), SecureBoot::On);
    }

    #[test]
    fn without_efivarfs_nothing_is_touched() {
        let mountinfo = "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n";
        let err = Firmware::open(mountinfo).err().unwrap();
        assert!(
            err.to_string().starts_with("no UEFI variables here"),
            "{err}"
        );
    }
}
