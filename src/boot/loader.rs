//! The boot loader on the ESPs: systemd-boot, as the rescue system carries it (Debian's
//! systemd-boot-efi). It finds Windows Boot Manager on the same ESP by itself and reads the
//! distributions' loader entries from /loader/entries.

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

/// Put the loader on the ESP mounted at `esp` (written beside and renamed into place when
/// missing or different) and a loader.conf when there is none. True when anything changed.
pub fn install(esp: &Path, loader: &[u8]) -> io::Result<bool> {
    let mut changed = false;
    let target = esp.join(ON_ESP);
    if fs::read(&target).ok().as_deref() != Some(loader) {
        write_renamed(&target, loader)?;
        changed = true;
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
        assert!(install(esp.path(), b"sd-boot").unwrap());
        assert_eq!(fs::read(esp.path().join(ON_ESP)).unwrap(), b"sd-boot");
        assert_eq!(
            fs::read_to_string(esp.path().join("loader/loader.conf")).unwrap(),
            "timeout 0\n"
        );
        assert!(
            !install(esp.path(), b"sd-boot").unwrap(),
            "the same loader again"
        );
        assert!(install(esp.path(), b"sd-boot v2").unwrap());
        assert_eq!(ON_ESP_UEFI.replace('\\', "/")[1..], *ON_ESP);
    }
}
