//! The QEMU command line of a scenario machine (pure). A q35 PC with OVMF, the rescue stick
//! on USB (as people boot it), the scenario's disks on their buses (virtio unless they say)
//! with their serial numbers, no network unless the scenario has an S3 server or a NIC
//! (then user-mode networking with `restrict=on` and QEMU's DHCP: the guest reaches nothing
//! but [`S3_GUEST`], forwarded to that server on 127.0.0.1), the serial console on stdout.
//! Always TCG: /dev/kvm hangs QEMU here.

use std::path::Path;

use super::scenario::Bus;
pub use super::scenario::Medium;

pub const QEMU: &str = "qemu-system-x86_64";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// Debian's Secure Boot build of OVMF (SMM, so the guest cannot write the key databases
/// behind the firmware's back) and its variable store with Microsoft's keys enrolled and
/// Secure Boot enforcing: firmware as PCs ship.
pub const OVMF_CODE_SECBOOT: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
pub const OVMF_VARS_MS: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
/// Where the guest finds the scenario's S3 server (`http://10.0.2.100/`).
pub const S3_GUEST: &str = "10.0.2.100:80";
/// The same over TLS (`https://10.0.2.100/`).
pub const S3_GUEST_TLS: &str = "10.0.2.100:443";

/// The serial number the stick shows the guest.
pub const STICK_SERIAL: &str = "LIFEBOAT-STICK";

pub struct Machine<'a> {
    /// A per-run copy of OVMF_VARS: the firmware writes boot variables into it.
    pub vars: &'a Path,
    /// A per-run copy of the rescue image (raw, or the ISO); `None`: the stick is pulled.
    pub stick: Option<&'a Path>,
    /// How the stick is attached: USB, or a CD drive for the ISO.
    pub medium: Medium,
    /// A netboot directory served over QEMU's TFTP: the machine boots from the network.
    pub tftp: Option<&'a Path>,
    /// In the order the guest should see them.
    pub disks: Vec<Drive<'a>>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// The port on 127.0.0.1 of the scenario's S3 server, if it has one.
    pub s3_port: Option<u16>,
    /// The NIC model when the scenario names one (else virtio-net-pci, with S3 only).
    pub nic: Option<&'a str>,
    /// The S3 server speaks TLS: forwarded from port 443.
    pub s3_tls: bool,
    /// QEMU's human monitor on this Unix socket (for plugging disks in), else none.
    pub monitor: Option<&'a Path>,
    /// Secure Boot firmware ([`OVMF_CODE_SECBOOT`]); `vars` is then a copy of
    /// [`OVMF_VARS_MS`].
    pub secure_boot: bool,
}

/// The variable store a machine's per-run copy starts from.
pub fn vars_template(secure_boot: bool) -> &'static str {
    if secure_boot {
        OVMF_VARS_MS
    } else {
        OVMF_VARS
    }
}

/// One of the scenario's disks.
pub struct Drive<'a> {
    pub id: &'a str,
    pub file: &'a Path,
    pub serial: &'a str,
    /// 512, or 4096 for a 4Kn disk (logical and physical).
    pub block_size: u32,
    pub bus: Bus,
    /// Only its drive is there at power-on; [`plug_command`] attaches it.
    pub hotplug: bool,
}

/// The monitor command that plugs a hotplug drive into the xHCI controller.
pub fn plug_command(d: &Drive<'_>) -> String {
    format!(
        "device_add usb-storage,bus=xhci.0,drive=disk-{},serial={},id=plug-{}",
        d.id, d.serial, d.id
    )
}

pub fn argv(m: &Machine<'_>) -> Vec<String> {
    let mut a: Vec<String> = [
        "-machine",
        if m.secure_boot { "q35,smm=on" } else { "q35" },
        "-accel",
        "tcg,thread=multi",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
    ]
    .map(str::to_owned)
    .to_vec();
    a.push("-monitor".into());
    a.push(match m.monitor {
        Some(sock) => format!("unix:{},server=on,wait=off", sock.display()),
        None => "none".into(),
    });
    // `cmd:` starts one nc per guest connection; a `tcp:` chardev would be a single
    // stream that every connection of the guest (restic opens several) shares.
    let guestfwd = m.s3_port.map(|port| {
        format!(
            ",guestfwd=tcp:{}-cmd:nc -N 127.0.0.1 {port}",
            if m.s3_tls { S3_GUEST_TLS } else { S3_GUEST }
        )
    });
    let model = m.nic.unwrap_or("virtio-net-pci");
    if let Some(dir) = m.tftp {
        // QEMU's own DHCP and TFTP serve the netboot directory; the NIC comes first in the
        // boot order, and without QEMU's iPXE option ROM (unsigned: Secure Boot firmware
        // refuses it) OVMF's own PXE client boots.
        a.extend([
            "-netdev".into(),
            format!(
                "user,id=net0,restrict=on,tftp={},bootfile={}{}",
                dir.display(),
                crate::image::netboot::BOOT_FILE,
                guestfwd.unwrap_or_default()
            ),
            "-device".into(),
            format!("{model},netdev=net0,bootindex=0,romfile="),
        ]);
    } else {
        a.push("-nic".into());
        a.push(match (guestfwd, m.nic) {
            (Some(fwd), _) => format!("user,model={model},restrict=on{fwd}"),
            (None, Some(_)) => format!("user,model={model},restrict=on"),
            (None, None) => "none".into(),
        });
    }
    a.extend(["-m".into(), m.memory_mib.to_string()]);
    a.extend(["-smp".into(), m.cpus.to_string()]);
    if m.secure_boot {
        // Only code running in SMM may write the flash: the variable store's keys hold.
        a.extend([
            "-global".into(),
            "driver=cfi.pflash01,property=secure,value=on".into(),
        ]);
    }
    let code = if m.secure_boot {
        OVMF_CODE_SECBOOT
    } else {
        OVMF_CODE
    };
    a.extend([
        "-drive".into(),
        format!("if=pflash,format=raw,unit=0,readonly=on,file={code}"),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", m.vars.display()),
    ]);
    a.extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
    if let (Some(iso), Medium::Cdrom) = (m.stick, m.medium) {
        a.extend([
            "-drive".into(),
            format!(
                "if=none,id=stick,format=raw,media=cdrom,readonly=on,file={}",
                iso.display()
            ),
            "-device".into(),
            "ide-cd,bus=ide.2,drive=stick,bootindex=0".into(),
        ]);
    } else if let Some(stick) = m.stick {
        a.extend([
            "-drive".into(),
            format!("if=none,id=stick,format=raw,file={}", stick.display()),
            "-device".into(),
            format!("usb-storage,bus=xhci.0,drive=stick,bootindex=0,serial={STICK_SERIAL}"),
        ]);
    }
    // One controller of each kind the disks need; the stick's xhci serves USB disks too.
    if m.disks.iter().any(|d| d.bus == Bus::Sata) {
        a.extend(["-device".into(), "ahci,id=ahci".into()]);
    }
    if m.disks.iter().any(|d| d.bus == Bus::Scsi) {
        a.extend(["-device".into(), "megasas-gen2,id=hba".into()]);
    }
    let mut sata_port = 0;
    for d in &m.disks {
        let sectors = match d.block_size {
            512 => String::new(),
            n => format!(",logical_block_size={n},physical_block_size={n}"),
        };
        let (id, serial) = (d.id, d.serial);
        a.extend([
            "-drive".into(),
            format!(
                "if=none,id=disk-{id},format=qcow2,file={}",
                d.file.display()
            ),
        ]);
        if d.hotplug {
            continue;
        }
        let drive = format!("drive=disk-{id},serial={serial}{sectors}");
        let devices = match d.bus {
            Bus::Virtio => vec![format!("virtio-blk-pci,{drive}")],
            Bus::Nvme => vec![format!("nvme,id=nvme-{id},{drive}")],
            Bus::Sata => {
                sata_port += 1;
                vec![format!("ide-hd,bus=ahci.{},{drive}", sata_port - 1)]
            }
            Bus::Scsi => vec![format!("scsi-hd,bus=hba.0,{drive}")],
            Bus::UsbStorage => vec![format!("usb-storage,bus=xhci.0,{drive}")],
            // The bridge's USB serial is the disk's; the SCSI disk behind it answers VPD
            // page 0x80 with another, as many real bridges pass the inner disk's through.
            Bus::UsbUas => vec![
                format!("usb-uas,bus=xhci.0,id=uas-{id},serial={serial}"),
                format!(
                    "scsi-hd,bus=uas-{id}.0,scsi-id=0,lun=0,drive=disk-{id},serial=VPD-{}{sectors}",
                    &serial[..serial.len().min(16)]
                ),
            ],
        };
        for dev in devices {
            a.extend(["-device".into(), dev]);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive<'a>(id: &'a str, file: &'a str, serial: &'a str, block_size: u32) -> Drive<'a> {
        Drive {
            id,
            file: Path::new(file),
            serial,
            block_size,
            bus: Bus::Virtio,
            hotplug: false,
        }
    }

    #[test]
    fn a_4kn_disk_has_4096_byte_sectors_logical_and_physical() {
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: None,
            disks: vec![drive("disk1", "/run/disk1.qcow2", "ATLANTIS-DISK1", 4096)],
            memory_mib: 1024,
            cpus: 1,
            s3_port: None,
            secure_boot: false,
            medium: Medium::Usb,
            tftp: None,
            nic: None,
            s3_tls: false,
            monitor: None,
        });
        assert!(a.contains(
            &"virtio-blk-pci,drive=disk-disk1,serial=ATLANTIS-DISK1,logical_block_size=4096,physical_block_size=4096"
                .to_owned()
        ));
    }

    #[test]
    fn the_machine_is_tcg_with_ovmf_and_serial_disks() {
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: Some(Path::new("/run/stick.img")),
            disks: vec![
                drive("disk0", "/run/disk0.qcow2", "ATLANTIS-DISK0", 512),
                drive("usb", "/run/usb.qcow2", "ATLANTIS-USB", 512),
            ],
            memory_mib: 1536,
            cpus: 2,
            s3_port: None,
            secure_boot: false,
            medium: Medium::Usb,
            tftp: None,
            nic: None,
            s3_tls: false,
            monitor: None,
        });
        let line = a.join(" ");
        assert!(line.contains("-accel tcg,thread=multi"), "{line}");
        assert!(!line.contains("kvm"), "{line}");
        assert!(line.contains("-nic none"), "{line}");
        assert!(line.contains("-m 1536 -smp 2"), "{line}");
        assert!(line.contains(&format!("readonly=on,file={OVMF_CODE}")));
        assert!(line.contains("unit=1,file=/run/vars.fd"));
        assert!(line.contains("usb-storage,bus=xhci.0,drive=stick,bootindex=0"));
        let disk0 = a
            .iter()
            .position(|x| x.contains("serial=ATLANTIS-DISK0"))
            .unwrap();
        let usb = a
            .iter()
            .position(|x| x.contains("serial=ATLANTIS-USB"))
            .unwrap();
        assert!(disk0 < usb, "disks keep the scenario's order");
        assert!(a.contains(&"if=none,id=disk-usb,format=qcow2,file=/run/usb.qcow2".to_owned()));
        assert!(
            !line.contains("block_size"),
            "512-byte disks keep QEMU's default"
        );
        // Every option is its own argument: nothing for a shell to split.
        assert!(a.iter().all(|x| !x.starts_with(' ') && !x.ends_with(' ')));
    }

    #[test]
    fn with_s3_the_guest_reaches_only_the_forwarded_server_on_localhost() {
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: None,
            disks: vec![],
            memory_mib: 1024,
            cpus: 1,
            s3_port: Some(41234),
            secure_boot: false,
            medium: Medium::Usb,
            tftp: None,
            nic: None,
            s3_tls: false,
            monitor: None,
        });
        let nic = a.iter().position(|x| x == "-nic").unwrap();
        assert_eq!(
            a[nic + 1],
            "user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:nc -N 127.0.0.1 41234"
        );
        assert_eq!(a.iter().filter(|x| *x == "-nic").count(), 1);
    }

    #[test]
    fn a_pulled_stick_leaves_the_firmware_the_disks() {
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: None,
            disks: vec![drive("disk1", "/run/disk1.qcow2", "ATLANTIS-DISK1", 512)],
            memory_mib: 1024,
            cpus: 2,
            s3_port: None,
            secure_boot: false,
            medium: Medium::Usb,
            tftp: None,
            nic: None,
            s3_tls: false,
            monitor: None,
        })
        .join(" ");
        assert!(!a.contains("usb-storage") && !a.contains("id=stick"), "{a}");
        assert!(a.contains("serial=ATLANTIS-DISK1"), "{a}");
        assert!(!a.contains("smm=on") && !a.contains("secboot"), "{a}");
    }

    #[test]
    fn secure_boot_firmware_has_smm_and_a_locked_flash() {
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: Some(Path::new("/run/stick.img")),
            disks: vec![],
            memory_mib: 1536,
            cpus: 1,
            s3_port: None,
            secure_boot: true,
            medium: Medium::Usb,
            tftp: None,
            nic: None,
            s3_tls: false,
            monitor: None,
        });
        let line = a.join(" ");
        assert!(line.contains("-machine q35,smm=on "), "{line}");
        assert!(line.contains("-accel tcg"), "{line}");
        assert!(
            line.contains("-global driver=cfi.pflash01,property=secure,value=on"),
            "{line}"
        );
        assert!(line.contains(&format!("readonly=on,file={OVMF_CODE_SECBOOT}")));
        assert!(!line.contains(&format!("file={OVMF_CODE} ")));
        assert_eq!(vars_template(true), OVMF_VARS_MS);
        let cd = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: Some(Path::new("/run/stick.iso")),
            disks: vec![],
            memory_mib: 1536,
            cpus: 1,
            s3_port: None,
            secure_boot: true,
            medium: Medium::Cdrom,
            tftp: None,
            nic: None,
            s3_tls: false,
            monitor: None,
        })
        .join(" ");
        assert!(
            cd.contains("media=cdrom,readonly=on,file=/run/stick.iso"),
            "{cd}"
        );
        assert!(
            cd.contains("ide-cd,bus=ide.2,drive=stick,bootindex=0"),
            "{cd}"
        );
        assert!(!cd.contains("usb-storage"), "{cd}");
        let net = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: None,
            disks: vec![],
            memory_mib: 1536,
            cpus: 1,
            s3_port: None,
            secure_boot: true,
            medium: Medium::Netboot,
            tftp: Some(Path::new("/run/netboot")),
            nic: None,
            s3_tls: false,
            monitor: None,
        });
        let netdev = net.iter().position(|x| x == "-netdev").unwrap();
        assert_eq!(
            net[netdev + 1],
            "user,id=net0,restrict=on,tftp=/run/netboot,bootfile=bootx64.efi"
        );
        assert!(net.contains(&"virtio-net-pci,netdev=net0,bootindex=0,romfile=".to_owned()));
        assert!(!net.contains(&"-nic".to_owned()));
        assert_eq!(vars_template(false), OVMF_VARS);
    }

    #[test]
    fn disks_on_every_bus_each_with_its_serial() {
        let on = |id, serial, bus| Drive {
            bus,
            ..drive(id, "/run/d.qcow2", serial, 512)
        };
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: None,
            disks: vec![
                on("n", "SN-NVME", Bus::Nvme),
                on("s", "SN-SATA", Bus::Sata),
                on("t", "SN-SATA2", Bus::Sata),
                on("h", "SN-HBA", Bus::Scsi),
                on("u", "SN-USB", Bus::UsbStorage),
                on("a", "SN-UAS", Bus::UsbUas),
            ],
            memory_mib: 1024,
            cpus: 1,
            s3_port: None,
            nic: Some("e1000e"),
            s3_tls: false,
            monitor: None,
            secure_boot: false,
            medium: Medium::Usb,
            tftp: None,
        });
        let has = |x: &str| a.iter().any(|y| y == x);
        assert!(has("nvme,id=nvme-n,drive=disk-n,serial=SN-NVME"), "{a:?}");
        assert!(has("ahci,id=ahci"));
        assert!(has("ide-hd,bus=ahci.0,drive=disk-s,serial=SN-SATA"));
        assert!(has("ide-hd,bus=ahci.1,drive=disk-t,serial=SN-SATA2"));
        assert!(has("megasas-gen2,id=hba"));
        assert!(has("scsi-hd,bus=hba.0,drive=disk-h,serial=SN-HBA"));
        assert!(has("usb-storage,bus=xhci.0,drive=disk-u,serial=SN-USB"));
        assert!(has("usb-uas,bus=xhci.0,id=uas-a,serial=SN-UAS"));
        assert!(has(
            "scsi-hd,bus=uas-a.0,scsi-id=0,lun=0,drive=disk-a,serial=VPD-SN-UAS"
        ));
        assert_eq!(a.iter().filter(|x| *x == "-nic").count(), 1);
        assert!(has("user,model=e1000e,restrict=on"), "{a:?}");
        assert!(!a.iter().any(|x| x.contains("guestfwd")));
    }

    #[test]
    fn a_hotplug_drive_waits_for_the_monitor() {
        let late = Drive {
            bus: Bus::UsbStorage,
            hotplug: true,
            ..drive("late", "/run/late.qcow2", "SN-LATE", 512)
        };
        assert_eq!(
            plug_command(&late),
            "device_add usb-storage,bus=xhci.0,drive=disk-late,serial=SN-LATE,id=plug-late"
        );
        let a = argv(&Machine {
            vars: Path::new("/run/vars.fd"),
            stick: None,
            disks: vec![late],
            memory_mib: 1024,
            cpus: 1,
            s3_port: None,
            nic: None,
            s3_tls: false,
            monitor: Some(Path::new("/run/monitor.sock")),
            secure_boot: false,
            medium: Medium::Usb,
            tftp: None,
        });
        assert!(a.contains(&"if=none,id=disk-late,format=qcow2,file=/run/late.qcow2".to_owned()));
        assert!(!a.iter().any(|x| x.contains("drive=disk-late")), "{a:?}");
        let m = a.iter().position(|x| x == "-monitor").unwrap();
        assert_eq!(a[m + 1], "unix:/run/monitor.sock,server=on,wait=off");
    }
}
