//! The boot loader on the ESPs: systemd-boot, as the rescue system carries it (Debian's
//! systemd-boot-efi). It finds Windows Boot Manager on the same ESP by itself and reads the
//! distributions' loader entries from /loader/entries.
//!
//! Firmware that enforces Secure Boot refuses that unsigned build, so there the ESPs get the
//! signed chain instead ([`Chain::Signed`]): Debian's Microsoft-signed shim, which starts
//! `grubx64.efi` from its own directory, and under that name Debian's signed systemd-boot,
//! which reads the same /loader/entries and has shim check the kernels it starts.

use std::fs;
use std::io;
use std::path::Path;

/// Where the loader is in the running (rescue) system.
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// Where it goes on an ESP, relative to its root; the boot entries point here. Not
/// `EFI/BOOT/BOOTX64.EFI`: on a factory ESP that is Windows' fallback loader.
pub const ON_ESP: &str = "EFI/systemd/systemd-bootx64.efi";
/// The same path as the firmware writes it.
pub const ON_ESP_UEFI: &str = "\\EFI\\systemd\\systemd-bootx64.efi";
pub const LOADER_CONF: &str = "loader/loader.conf";
const DEFAULT_CONF: &str = "timeout 5\neditor no\n";

/// Where the rescue image keeps the signed chain (images/rescue.toml, `[boot] machine`).
pub const SIGNED_DIR: &str = "/usr/lib/lifeboat/secure-boot";
/// Shim on an ESP, where the boot entries point under Secure Boot.
pub const SHIM_ON_ESP: &str = "EFI/lifeboat/shimx64.efi";
pub const SHIM_ON_ESP_UEFI: &str = "\\EFI\\lifeboat\\shimx64.efi";
/// The `--loader` value that picks the loader by the firmware's Secure Boot state.
pub const AUTO: &str = "auto";

/// Which loader goes on the ESPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Debian's unsigned systemd-boot at [`ON_ESP`].
    SystemdBoot,
    /// Shim, MokManager and the signed systemd-boot in `EFI/lifeboat/`.
    Signed,
}

impl Chain {
    /// The chain the firmware starts: the signed one only where Secure Boot is on. Off or
    /// unknown (no efivarfs) keeps systemd-boot, as before Secure Boot was looked at.
    pub fn for_firmware(secure_boot: super::efivars::SecureBoot) -> Chain {
        match secure_boot {
            super::efivars::SecureBoot::On => Chain::Signed,
            _ => Chain::SystemdBoot,
        }
    }

    /// (file in this system, path on the ESP), the file the entries start first.
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Chain::SystemdBoot => &[(SYSTEMD_BOOT, ON_ESP)],
            Chain::Signed => &[
                (
                    "/usr/lib/lifeboat/secure-boot/shimx64.efi",
                    "EFI/lifeboat/shimx64.efi",
                ),
                // Shim starts `grubx64.efi` beside itself, whatever loader that is.
                (
                    "/usr/lib/lifeboat/secure-boot/systemd-bootx64.efi",
                    "EFI/lifeboat/grubx64.efi",
                ),
                // What shim shows when a signature is refused: enroll a key or a hash.
                (
                    "/usr/lib/lifeboat/secure-boot/mmx64.efi",
                    "EFI/lifeboat/mmx64.efi",
                ),
            ],
        }
    }

    /// The first file as the firmware writes paths: where the boot entries point.
    pub fn entry_path(self) -> &'static str {
        match self {
            Chain::SystemdBoot => ON_ESP_UEFI,
            Chain::Signed => SHIM_ON_ESP_UEFI,
        }
    }

    /// Where the chain's first file lands on the ESP.
    pub fn on_esp(self) -> &'static str {
        self.files()[0].1
    }

    /// The chain's files as this system has them, (path on the ESP, bytes); `None` when
    /// one is missing.
    pub fn read(self) -> Option<Vec<(&'static str, Vec<u8>)>> {
        self.files()
            .iter()
            .map(|(from, to)| fs::read(from).ok().map(|b| (*to, b)))
            .collect()
    }
}

/// The loader path the boot entries point at for `--loader VALUE`: [`AUTO`] follows the
/// firmware's Secure Boot state, anything else is taken as it is.
pub fn entry_loader(value: &str, secure_boot: super::efivars::SecureBoot) -> String {
    if value == AUTO {
        Chain::for_firmware(secure_boot).entry_path().to_owned()
    } else {
        value.to_owned()
    }
}

/// Put the loader's files on the ESP mounted at `esp` (each written beside and renamed into
/// place when missing or different) and a loader.conf when there is none. True when
/// anything changed.
pub fn install(esp: &Path, files: &[(&str, Vec<u8>)]) -> io::Result<bool> {
    let mut changed = false;
    // The file the entries point at last: a crash half-way leaves no shim that starts a
    // missing second stage.
    for (on_esp, bytes) in files.iter().rev() {
        let target = esp.join(on_esp);
        if fs::read(&target).ok().as_deref() != Some(bytes.as_slice()) {
            write_renamed(&target, bytes)?;
            changed = true;
        }
    }
    let conf = esp.join(LOADER_CONF);
    if !conf.exists() {
        write_renamed(&conf, DEFAULT_CONF.as_bytes())?;
        changed = true;
    }
    Ok(changed)
}

/// Write beside `path` and rename into place: [`crate::atomic_file::write`].
pub use crate::atomic_file::write as write_renamed;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_and_keeps_an_existing_loader_conf() {
        let esp = tempfile::tempdir().unwrap();
        fs::create_dir_all(esp.path().join("loader")).unwrap();
        fs::write(esp.path().join("loader/loader.conf"), "timeout 0\n").unwrap();
        let sd = |b: &[u8]| vec![(ON_ESP, b.to_vec())];
        assert!(install(esp.path(), &sd(b"sd-boot")).unwrap());
        assert_eq!(fs::read(esp.path().join(ON_ESP)).unwrap(), b"sd-boot");
        assert_eq!(
            fs::read_to_string(esp.path().join("loader/loader.conf")).unwrap(),
            "timeout 0\n"
        );
        assert!(
            !install(esp.path(), &sd(b"sd-boot")).unwrap(),
            "the same loader again"
        );
        assert!(install(esp.path(), &sd(b"sd-boot v2")).unwrap());
        assert_eq!(ON_ESP_UEFI.replace('\\', "/")[1..], *ON_ESP);
    }

    #[test]
    fn secure_boot_picks_the_signed_chain_and_its_entry_path() {
        use super::super::efivars::SecureBoot;
        assert_eq!(Chain::for_firmware(SecureBoot::On), Chain::Signed);
        assert_eq!(Chain::for_firmware(SecureBoot::Off), Chain::SystemdBoot);
        assert_eq!(Chain::for_firmware(SecureBoot::Unknown), Chain::SystemdBoot);
        for chain in [Chain::Signed, Chain::SystemdBoot] {
            assert_eq!(chain.entry_path().replace('\\', "/")[1..], *chain.on_esp());
            for (from, _) in chain.files() {
                assert!(from.starts_with(SIGNED_DIR) || *from == SYSTEMD_BOOT);
            }
        }
        assert_eq!(Chain::Signed.on_esp(), SHIM_ON_ESP);
        // Shim (15.x, Debian's) starts the second stage by this name from its directory.
        assert_eq!(Chain::Signed.files()[1].1, "EFI/lifeboat/grubx64.efi");
        assert_eq!(entry_loader(AUTO, SecureBoot::On), SHIM_ON_ESP_UEFI);
        assert_eq!(entry_loader(AUTO, SecureBoot::Off), ON_ESP_UEFI);
        assert_eq!(entry_loader("\\EFI\\x.efi", SecureBoot::On), "\\EFI\\x.efi");
    }

    /// The rescue image puts the chain where lifeboat reads it (images/rescue.toml).
    #[test]
    fn the_image_carries_the_signed_chain_where_it_is_read() {
        let text =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("images/rescue.toml"))
                .unwrap();
        let image: toml::Value = toml::from_str(&text).unwrap();
        let carried: Vec<String> = image["boot"]["machine"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("/{}", f["to"].as_str().unwrap()))
            .collect();
        let read: Vec<String> = Chain::Signed
            .files()
            .iter()
            .map(|(from, _)| from.to_string())
            .collect();
        for from in &read {
            assert!(
                carried.contains(from),
                "{from} is not in the image: {carried:?}"
            );
        }
        assert_eq!(carried.len(), read.len());
    }

    #[test]
    fn the_signed_chain_goes_on_whole_with_the_shim_last() {
        let esp = tempfile::tempdir().unwrap();
        let files: Vec<(&str, Vec<u8>)> = Chain::Signed
            .files()
            .iter()
            .map(|(_, to)| (*to, to.as_bytes().to_vec()))
            .collect();
        assert!(install(esp.path(), &files).unwrap());
        for (to, bytes) in &files {
            assert_eq!(&fs::read(esp.path().join(to)).unwrap(), bytes);
        }
        assert!(esp.path().join(LOADER_CONF).is_file());
        assert!(!install(esp.path(), &files).unwrap());
    }
}
