//! Who a disk is, from sysfs alone (the rescue system has no udev): the bus it hangs on,
//! its serial number, WWN and model, read where udev's `ID_SERIAL_SHORT` and `ID_WWN`
//! come from on each bus.
//!
//! Every function takes the sysfs root (`/sys` on a machine, a fixture tree in tests).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::parse;

/// The bus a disk hangs on, as `lifeboat disks` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Nvme,
    /// libata: SATA (and PATA) disks behind AHCI and other ATA controllers.
    Sata,
    /// A SAS transport (an `end_device-` in the path): SAS HBAs in IT mode.
    Sas,
    /// USB mass storage, BOT or UAS.
    Usb,
    Virtio,
    /// SD and eMMC.
    Mmc,
    /// Any other SCSI host: RAID controllers' logical drives, parallel SCSI, iSCSI.
    Scsi,
    Loop,
    /// Nothing the above recognises (a RAM disk, a network block device).
    Other,
}

impl Bus {
    pub fn name(self) -> &'static str {
        match self {
            Bus::Nvme => "nvme",
            Bus::Sata => "sata",
            Bus::Sas => "sas",
            Bus::Usb => "usb",
            Bus::Virtio => "virtio",
            Bus::Mmc => "mmc",
            Bus::Scsi => "scsi",
            Bus::Loop => "loop",
            Bus::Other => "other",
        }
    }
}

impl std::fmt::Display for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub bus: Bus,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
}

/// The identity of block device `name` under sysfs root `sys`. What sysfs does not have
/// stays `None`; nothing here fails.
pub fn identity(sys: &Path, name: &str) -> Identity {
    let block = sys.join("class/block").join(name);
    let attr = |dir: &Path, rel: &str| -> Option<String> {
        std::fs::read_to_string(dir.join(rel))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    // The chain of parent devices, nearest first, up to (not including) /sys/devices.
    let top = std::fs::canonicalize(sys.join("devices")).unwrap_or_else(|_| sys.join("devices"));
    let chain: Vec<PathBuf> = std::fs::canonicalize(block.join("device"))
        .map(|dev| {
            dev.ancestors()
                .take_while(|a| a.starts_with(&top) && *a != top)
                .map(Path::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // A USB device (not one of its interfaces) has a vendor id; the nearest one is the
    // drive or its bridge, hubs are further up.
    let usb_device = chain
        .iter()
        .find(|d| subsystem(d).as_deref() == Some("usb") && d.join("idVendor").exists());
    let bus = bus(name, &chain, usb_device.is_some());

    // USB drives: the USB descriptor's serial, for BOT and UAS alike. A UAS bridge
    // answers VPD page 0x80 too, sometimes with the serial of the disk behind it and
    // sometimes with its own; the descriptor is what udev's ID_SERIAL_SHORT and
    // /dev/disk/by-id name, and the same whichever driver binds.
    let serial = usb_device
        .and_then(|d| attr(d, "serial"))
        // virtio-blk; then NVMe and MMC controllers; then SCSI, SATA and SAS (libata
        // answers page 0x80 with the ATA serial).
        .or_else(|| attr(&block, "serial"))
        .or_else(|| attr(&block, "device/serial"))
        .or_else(|| {
            std::fs::read(block.join("device/vpd_pg80"))
                .ok()
                .and_then(|b| parse::vpd_pg80(&b))
        });
    // NVMe namespaces have `wwid` themselves, SCSI devices on their `device`. The t10
    // form pads vendor and model with runs of spaces.
    let wwn = attr(&block, "wwid")
        .or_else(|| attr(&block, "device/wwid"))
        .map(|w| normalize_space(&w));
    let model = attr(&block, "device/model").map(|m| normalize_space(&m));
    Identity {
        bus,
        serial,
        wwn,
        model,
    }
}

fn bus(name: &str, chain: &[PathBuf], usb: bool) -> Bus {
    let named = |prefix: &str| {
        chain.iter().any(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(prefix))
                .is_some_and(|rest| !rest.is_empty())
        })
    };
    let sub = |want: &str| chain.iter().any(|d| subsystem(d).as_deref() == Some(want));
    if usb {
        Bus::Usb
    } else if named("end_device-") {
        Bus::Sas
    } else if chain.iter().any(|d| is_ata_port(d)) {
        Bus::Sata
    } else if name.starts_with("nvme") || sub("nvme") {
        Bus::Nvme
    } else if sub("mmc") {
        Bus::Mmc
    } else if sub("virtio") {
        Bus::Virtio
    } else if sub("scsi") {
        Bus::Scsi
    } else if name.starts_with("loop") {
        Bus::Loop
    } else {
        Bus::Other
    }
}

/// libata puts an `ataN` device above each port's SCSI host.
fn is_ata_port(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("ata"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The name of the bus or class a sysfs device belongs to (its `subsystem` link's last
/// component).
fn subsystem(dir: &Path) -> Option<String> {
    let link = std::fs::read_link(dir.join("subsystem")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Runs of whitespace as one space, none at the ends.
fn normalize_space(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(case: &str, name: &str) -> Identity {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sysfs")
            .join(case);
        identity(&root, name)
    }

    #[test]
    fn nvme_serial_from_the_controller_and_wwid_of_the_namespace() {
        let id = fixture("nvme", "nvme0n1");
        assert_eq!(id.bus, Bus::Nvme);
        assert_eq!(id.serial.as_deref(), Some("S4EWNX0R123456A"));
        assert_eq!(id.wwn.as_deref(), Some("eui.0025388b91b4e5a1"));
        assert_eq!(id.model.as_deref(), Some("Samsung SSD 970 EVO Plus 1TB"));
    }

    #[test]
    fn sata_serial_from_vpd_page_80_and_the_t10_wwid_without_space_runs() {
        let id = fixture("sata", "sda");
        assert_eq!(id.bus, Bus::Sata);
        assert_eq!(id.serial.as_deref(), Some("WD-WCC4N7PL1234"));
        assert_eq!(
            id.wwn.as_deref(),
            Some("t10.ATA WDC WD20EZRZ-00Z5HB0 WD-WCC4N7PL1234")
        );
        assert_eq!(id.model.as_deref(), Some("WDC WD20EZRZ-00Z"));
    }

    #[test]
    fn usb_bot_serial_from_the_usb_device_up_the_tree() {
        // No vpd_pg80 (usb-storage skips VPD pages); the serial is two levels above
        // the interface, past the SCSI host.
        let id = fixture("usb-bot", "sdb");
        assert_eq!(id.bus, Bus::Usb);
        assert_eq!(id.serial.as_deref(), Some("NA8F1234"));
        assert_eq!(id.model.as_deref(), Some("Expansion Desk"));
    }

    #[test]
    fn uas_prefers_the_usb_descriptor_over_the_bridge_vpd_page() {
        let id = fixture("uas", "sdc");
        assert_eq!(id.bus, Bus::Usb);
        assert_eq!(id.serial.as_deref(), Some("0000000012AB"));
        assert_eq!(id.wwn.as_deref(), Some("naa.5000c500a1b2c3d4"));
    }

    #[test]
    fn virtio_serial_on_the_block_device() {
        let id = fixture("virtio", "vda");
        assert_eq!(id.bus, Bus::Virtio);
        assert_eq!(id.serial.as_deref(), Some("ATLANTIS-DISK0"));
        assert_eq!(id.wwn, None);
        assert_eq!(id.model, None);
    }

    #[test]
    fn sas_and_raid_hosts() {
        let id = fixture("sas", "sdd");
        assert_eq!(id.bus, Bus::Sas);
        assert_eq!(id.serial.as_deref(), Some("ZA1BC2DE"));
        let id = fixture("sas", "sde");
        assert_eq!(id.bus, Bus::Scsi, "a RAID controller's logical drive");
        assert_eq!(id.serial.as_deref(), Some("00a1b2c3d4e5f6"));
    }

    #[test]
    fn a_device_sysfs_does_not_know_has_no_identity() {
        let id = fixture("virtio", "sdz");
        assert_eq!(
            id,
            Identity {
                bus: Bus::Other,
                serial: None,
                wwn: None,
                model: None
            }
        );
    }
}
