//! A QEMU scenario: data in tests/qemu/NAME.toml, read and checked here (pure, no I/O
//! beyond reading the file). What a scenario can say is documented in tests/qemu/README.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::qemu::console::Expect;

/// In `expect`: the sha256 the fixture Atlantis' @home must show (see fixture.rs).
pub const HOME_SHA256: &str = "{home_sha256}";

/// The name the S3 server's certificate is for, when `s3_tls` (the guest puts it into
/// /etc/hosts: QEMU's DNS answers nothing with restrict=on).
pub const S3_TLS_HOST: &str = "s3.lifeboat.test";

/// Where scenarios live, relative to the project root.
pub const DIR: &str = "tests/qemu";

/// A scenario as checked: its machine and one or more boots of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Console text that fails the scenario wherever it appears, in any boot.
    pub forbid: Vec<String>,
    pub memory_mib: u32,
    pub disks: Vec<Disk>,
    /// Buckets of an S3 server the guest reaches at http://10.0.2.100/ (none: no network).
    pub s3_buckets: Vec<String>,
    /// Firmware with Secure Boot enforcing and Microsoft's keys enrolled, as PCs ship.
    pub secure_boot: bool,
    /// The guest's NIC model (QEMU's name: `e1000e`, `virtio-net-pci`) on user networking
    /// with DHCP; without it the guest has a NIC only when there are `s3_buckets`.
    pub nic: Option<String>,
    /// The S3 server speaks HTTPS only, with a certificate for [`S3_TLS_HOST`] from a CA
    /// made for the run; the stick carries the CA as `lifeboat/s3-ca.pem`.
    pub s3_tls: bool,
    /// The stick carries the encrypted laptop fixture's files (xtask/src/qemu/luks_fixture.rs)
    /// under `lifeboat/fixture/`, the key among them made for the run.
    pub luks_fixture: bool,
    /// Boots of the same machine, one after another: disks and firmware variables (boot
    /// entries, BootOrder) carry over from one to the next.
    pub boots: Vec<Boot>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    /// This boot, from QEMU's start to its end, may take this long.
    pub timeout_secs: u64,
    /// A script for the stick's `lifeboat/run`: the guest runs it with `sh -e` instead of
    /// the menu and powers off.
    #[serde(default)]
    pub run: Option<String>,
    /// Console lines expected in this order; each is found in a line, whitespace runs
    /// counting as one space. An entry that is a list: those lines in any order.
    pub expect: Vec<Expect>,
    /// Whether the rescue stick is plugged in (and the firmware tries it first).
    #[serde(default = "yes")]
    pub stick: bool,
    /// Disks (by id) taken out before this boot and replaced by a new blank disk of the
    /// same size and serial: a dead disk swapped.
    #[serde(default)]
    pub replace: Vec<String>,
    /// Disks taken out before this boot and replaced by a new blank disk of another size
    /// and serial: the dead disk's replacement as it is bought, which the spec's match
    /// rules do not find.
    #[serde(default)]
    pub replace_with: Vec<Replacement>,
    /// Which first-stage loader the stick carries as EFI/BOOT/BOOTX64.EFI.
    #[serde(default)]
    pub stick_loader: StickLoader,
    /// The firmware must refuse to start the stick: the boot ends once every `expect` line
    /// (the firmware's) has appeared, and fails if the rescue system starts.
    #[serde(default)]
    pub refused: bool,
    /// Console text that fails this boot (besides the scenario's `forbid`).
    #[serde(default)]
    pub forbid: Vec<String>,
    /// What the rescue system boots from when `stick` is true.
    #[serde(default)]
    pub medium: Medium,
}

/// A new blank disk in place of scenario disk `id` (same bus and sector size).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    pub id: String,
    pub bytes: u64,
    pub serial: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Medium {
    /// The raw image on a USB stick.
    #[default]
    Usb,
    /// The hybrid ISO in a virtual CD drive (AHCI, first in the boot order).
    Cdrom,
    /// The hybrid ISO written to a USB stick as it is (`dd`).
    IsoUsb,
    /// No stick: the firmware boots from the network, the netboot directory served by
    /// QEMU's TFTP; `run` becomes that directory's lifeboat/run.
    Netboot,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StickLoader {
    /// The image's Microsoft-signed shim.
    #[default]
    Signed,
    /// The same shim with its signature cut off.
    Unsigned,
}

/// What shows that the rescue system started; a `refused` boot fails on it.
pub const STARTED: &[&str] = &["LIFEBOAT-RUN-START", "LIFEBOAT-MENU-READY"];

impl Boot {
    /// The menu runs until it is stopped: such a boot ends once everything expected has
    /// appeared. Every other boot must end with its run script's LIFEBOAT-RUN-EXIT 0.
    pub fn is_menu(&self) -> bool {
        self.stick && self.run.is_none() && !self.refused
    }

    /// Every expected line, entries that are lists flattened.
    pub fn lines(&self) -> impl Iterator<Item = &String> {
        self.expect.iter().flat_map(Expect::lines)
    }

    /// Whether the boot ends as soon as every expected line has appeared.
    pub fn ends_when_expected(&self) -> bool {
        self.is_menu() || self.refused
    }
}

fn yes() -> bool {
    true
}

/// The file's shape: one boot described at the top level, or `[[boot]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: String,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    run: Option<String>,
    #[serde(default)]
    expect: Option<Vec<Expect>>,
    #[serde(default)]
    forbid: Vec<String>,
    #[serde(default = "default_memory")]
    memory_mib: u32,
    #[serde(default, rename = "disk")]
    disks: Vec<Disk>,
    #[serde(default, rename = "boot")]
    boots: Vec<Boot>,
    #[serde(default)]
    s3_buckets: Vec<String>,
    #[serde(default)]
    secure_boot: bool,
    #[serde(default)]
    nic: Option<String>,
    #[serde(default)]
    s3_tls: bool,
    #[serde(default)]
    luks_fixture: bool,
}

fn default_memory() -> u32 {
    1536
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// The spec's disk id, also the file name of the disk image.
    pub id: String,
    /// Size in bytes, as disk makers count (512 GB = 512_000_000_000).
    pub bytes: u64,
    /// What the guest sees in /sys/block/*/serial; the spec matches on it.
    pub serial: String,
    #[serde(default)]
    pub content: Content,
    /// The guest must leave this disk byte-identical (checked with `qemu-img compare`).
    #[serde(default)]
    pub unchanged: bool,
    /// These partitions (GPT numbers of the base image) must stay byte-identical: the
    /// guest may write elsewhere on the disk (files on the factory ESP), never here.
    #[serde(default)]
    pub unchanged_partitions: Vec<u32>,
    /// The logical (and physical) sector size the guest sees: 512, or 4096 for a 4Kn disk.
    #[serde(default = "default_block_size")]
    pub logical_block_size: u32,
    /// Where the disk is attached (see [`Bus`]).
    #[serde(default)]
    pub bus: Bus,
    /// Not there at power-on: plugged in (QEMU monitor `device_add`) when the guest prints
    /// `LIFEBOAT-PLUG <id>`. USB mass storage only.
    #[serde(default)]
    pub hotplug: bool,
}

/// The controller a scenario disk hangs on; each gives the guest the serial its own way
/// (virtio-blk's serial, the NVMe controller's, ATA IDENTIFY, SCSI VPD page 0x80, the USB
/// descriptor).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Bus {
    #[default]
    Virtio,
    /// An NVMe controller of its own.
    Nvme,
    /// A port of an AHCI controller (`ide-hd`).
    Sata,
    /// A drive behind a MegaRAID SAS HBA (`megasas-gen2`, the guest's megaraid_sas).
    Scsi,
    /// USB mass storage, bulk-only (`usb-storage`).
    UsbStorage,
    /// USB attached SCSI (`usb-uas`); the SCSI disk behind the bridge gets another serial,
    /// as many bridges report the disk's own.
    UsbUas,
}

fn default_block_size() -> u32 {
    512
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// All zeros.
    #[default]
    Blank,
    /// A factory disk: GPT, a 512 MiB FAT32 ESP labelled ESP0 and an NTFS "Windows".
    FactoryWindows,
    /// disk1 of a small bootable Atlantis (xtask/src/qemu/fixture.rs), made for each run
    /// from the rescue image's kernel; expectations may name `{home_sha256}`.
    AtlantisFixture,
}

impl Content {
    pub fn name(self) -> &'static str {
        match self {
            Content::Blank => "blank",
            Content::FactoryWindows => "factory-windows",
            Content::AtlantisFixture => "atlantis-fixture",
        }
    }
}

impl Scenario {
    pub fn path(root: &Path, name: &str) -> PathBuf {
        root.join(DIR).join(format!("{name}.toml"))
    }

    /// Reads and checks `tests/qemu/NAME.toml`.
    pub fn load(root: &Path, name: &str) -> Result<Scenario> {
        let path = Scenario::path(root, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let known = names(root).unwrap_or_default().join(", ");
                bail!(
                    "no scenario `{name}`: {} does not exist (scenarios: {known})",
                    path.display()
                )
            }
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", path.display()));
            }
        };
        Scenario::parse(name, &text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(name: &str, text: &str) -> Result<Scenario> {
        let file: File = toml::from_str(text)?;
        let top_level = file.timeout_secs.is_some() || file.run.is_some() || file.expect.is_some();
        let boots = match (top_level, file.boots.is_empty()) {
            (true, false) => bail!(
                "give either timeout_secs/run/expect at the top level (one boot) or [[boot]] tables, not both"
            ),
            (_, false) => file.boots,
            (_, true) => vec![Boot {
                timeout_secs: file.timeout_secs.context("timeout_secs is missing")?,
                run: file.run,
                expect: file.expect.context("`expect` is missing")?,
                stick: true,
                replace: vec![],
                replace_with: vec![],
                stick_loader: StickLoader::Signed,
                refused: false,
                forbid: vec![],
                medium: Medium::Usb,
            }],
        };
        let scenario = Scenario {
            name: name.to_owned(),
            description: file.description,
            forbid: file.forbid,
            memory_mib: file.memory_mib,
            disks: file.disks,
            s3_buckets: file.s3_buckets,
            secure_boot: file.secure_boot,
            nic: file.nic,
            s3_tls: file.s3_tls,
            luks_fixture: file.luks_fixture,
            boots,
        };
        scenario.check()?;
        Ok(scenario)
    }

    fn check(&self) -> Result<()> {
        for (n, boot) in self.boots.iter().enumerate() {
            let which = if self.boots.len() == 1 {
                String::new()
            } else {
                format!("boot {}: ", n + 1)
            };
            if boot.timeout_secs == 0 {
                bail!("{which}timeout_secs must be at least 1");
            }
            if boot.expect.is_empty() {
                bail!("{which}`expect` is empty: a boot that expects nothing cannot fail");
            }
            if let Some(blank) = boot.lines().find(|e| e.trim().is_empty()) {
                bail!("{which}`expect` entries must not be blank (found {blank:?})");
            }
            if boot.expect.iter().any(|e| e.lines().is_empty()) {
                bail!("{which}an `expect` entry is an empty list: it would wait for nothing");
            }
            for id in &boot.replace {
                if !self.disks.iter().any(|d| &d.id == id) {
                    bail!("{which}`replace` names `{id}`, which is not a disk of the scenario");
                }
            }
            for new in &boot.replace_with {
                let Some(old) = self.disks.iter().find(|d| d.id == new.id) else {
                    bail!(
                        "{which}`replace_with` names `{}`, which is not a disk of the scenario",
                        new.id
                    );
                };
                if boot.replace.contains(&new.id) {
                    bail!(
                        "{which}`{}` is in both `replace` and `replace_with`",
                        new.id
                    );
                }
                check_serial(&format!("{which}`replace_with` `{}`", new.id), &new.serial)?;
                if let Some(other) = self
                    .disks
                    .iter()
                    .find(|d| d.id != new.id && d.serial == new.serial)
                {
                    bail!(
                        "{which}`replace_with` `{}`: serial `{}` is disk `{}`'s",
                        new.id,
                        new.serial,
                        other.id
                    );
                }
                if new.bytes < 64 << 20 || new.bytes % u64::from(old.logical_block_size) != 0 {
                    bail!(
                        "{which}`replace_with` `{}`: bytes = {} must be a multiple of {} and at least 64 MiB",
                        new.id,
                        new.bytes,
                        old.logical_block_size
                    );
                }
            }
            let fixture = self
                .disks
                .iter()
                .any(|d| d.content == Content::AtlantisFixture);
            if !fixture && boot.lines().any(|e| e.contains(HOME_SHA256)) {
                bail!("{which}`expect` names {HOME_SHA256} but no disk has content = \"atlantis-fixture\"");
            }
            if boot.refused && !boot.stick {
                bail!("{which}`refused` needs the stick: it is the stick the firmware must refuse");
            }
            if boot.stick_loader != StickLoader::Signed && !boot.stick {
                bail!("{which}`stick_loader` needs the stick");
            }
            if matches!(boot.medium, Medium::Cdrom | Medium::IsoUsb)
                && (boot.run.is_some() || boot.stick_loader != StickLoader::Signed)
            {
                bail!(
                    "{which}`run` and `stick_loader` need medium = \"usb\": the ISO is read-only"
                );
            }
            if boot.medium == Medium::Netboot && boot.stick_loader != StickLoader::Signed {
                bail!("{which}`stick_loader` needs medium = \"usb\"");
            }
            if let Some(blank) = boot.forbid.iter().find(|e| e.trim().is_empty()) {
                bail!("{which}`forbid` entries must not be blank (found {blank:?})");
            }
            for e in boot.lines() {
                if e.contains(crate::qemu::console::CAPTURE_OPEN) {
                    match crate::qemu::console::placeholder(e) {
                        Some((_, name, after))
                            if !name.is_empty()
                                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                && !after.contains(crate::qemu::console::CAPTURE_OPEN) => {}
                        _ => bail!(
                            "{which}`expect` entry {e:?}: write one {{sha256:NAME}} per line, NAME letters, digits or `_`"
                        ),
                    }
                }
            }
            if n == 0 && !boot.stick {
                bail!("boot 1 has no stick: nothing would be on the disks to boot");
            }
        }
        if self.luks_fixture
            && !self
                .boots
                .iter()
                .any(|b| b.stick && b.medium == Medium::Usb && b.run.is_some())
        {
            bail!("luks_fixture needs a boot from the USB stick with a `run` script: the fixture's files are on the stick for it");
        }
        if self.s3_tls && self.s3_buckets.is_empty() {
            bail!("s3_tls needs s3_buckets: there is no S3 server to speak TLS");
        }
        if let Some(nic) = &self.nic {
            if nic.is_empty() || !nic.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                bail!("nic `{nic}` must be a QEMU NIC model name (e1000e, virtio-net-pci)");
            }
        }
        if let Some(blank) = self.forbid.iter().find(|e| e.trim().is_empty()) {
            bail!("`forbid` entries must not be blank (found {blank:?})");
        }
        let mut ids = BTreeSet::new();
        let mut serials = BTreeSet::new();
        for disk in &self.disks {
            if disk.id.is_empty()
                || !disk
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("disk id `{}` must be letters, digits, `-` or `_`", disk.id);
            }
            if !ids.insert(&disk.id) {
                bail!("disk `{}` is listed twice", disk.id);
            }
            check_serial(&format!("disk `{}`", disk.id), &disk.serial)?;
            if !serials.insert(&disk.serial) {
                bail!("disk `{}`: serial `{}` is used twice", disk.id, disk.serial);
            }
            if disk.hotplug && disk.bus != Bus::UsbStorage {
                bail!(
                    "disk `{}`: hotplug needs bus = \"usb-storage\" (a drive plugged into USB)",
                    disk.id
                );
            }
            if disk.unchanged && !disk.unchanged_partitions.is_empty() {
                bail!(
                    "disk `{}`: `unchanged` covers the whole disk; drop `unchanged_partitions` or set unchanged = false",
                    disk.id
                );
            }
            if !disk.unchanged_partitions.is_empty() && disk.content == Content::Blank {
                bail!(
                    "disk `{}`: a blank disk has no partitions to keep unchanged",
                    disk.id
                );
            }
            if disk.bytes < 64 << 20 || disk.bytes % 512 != 0 {
                bail!(
                    "disk `{}`: bytes = {} must be a multiple of 512 and at least 64 MiB",
                    disk.id,
                    disk.bytes
                );
            }
            match disk.logical_block_size {
                512 => {}
                4096 if disk.content == Content::Blank => {}
                4096 => bail!(
                    "disk `{}`: logical_block_size = 4096 needs content = \"blank\" (the other contents are laid out in 512-byte sectors)",
                    disk.id
                ),
                other => bail!(
                    "disk `{}`: logical_block_size = {other} must be 512 or 4096",
                    disk.id
                ),
            }
            if disk.bytes % u64::from(disk.logical_block_size) != 0 {
                bail!(
                    "disk `{}`: bytes = {} must be a multiple of its logical_block_size {}",
                    disk.id,
                    disk.bytes,
                    disk.logical_block_size
                );
            }
        }
        Ok(())
    }
}

/// virtio-blk passes at most 20 bytes of serial to the guest.
fn check_serial(what: &str, serial: &str) -> Result<()> {
    if serial.is_empty() || serial.len() > 20 || !serial.is_ascii() {
        bail!("{what}: serial `{serial}` must be 1 to 20 ASCII characters");
    }
    Ok(())
}

/// Every scenario's name (tests/qemu/*.toml), sorted.
pub fn names(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
description = "d"
timeout_secs = 60
expect = ["A", "B"]
[[disk]]
id = "disk0"
bytes = 512_000_000_000
serial = "ATLANTIS-DISK0"
content = "factory-windows"
unchanged = true
[[disk]]
id = "disk1"
bytes = 2_000_000_000_000
serial = "ATLANTIS-DISK1"
"#;

    #[test]
    fn a_scenario_parses_with_defaults() {
        let s = Scenario::parse("x", GOOD).unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.boots.len(), 1);
        assert_eq!(s.boots[0].run, None);
        assert!(s.boots[0].is_menu());
        assert_eq!(s.memory_mib, 1536);
        assert_eq!(s.disks[0].content, Content::FactoryWindows);
        assert!(s.disks[0].unchanged);
        assert_eq!(s.disks[1].content, Content::Blank);
        assert!(!s.disks[1].unchanged);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                GOOD.replace("timeout_secs = 60", "timeout_secs = 0"),
                "timeout_secs",
            ),
            (
                GOOD.replace(r#"expect = ["A", "B"]"#, "expect = []"),
                "cannot fail",
            ),
            (
                format!("{GOOD}[[boot]]\ntimeout_secs = 5\nexpect = [\"x\"]\n"),
                "not both",
            ),
            (
                GOOD.replace(r#"expect = ["A", "B"]"#, ""),
                "`expect` is missing",
            ),
            (
                GOOD.replace(r#"expect = ["A", "B"]"#, r#"expect = [" "]"#),
                "blank",
            ),
            (
                GOOD.replace("ATLANTIS-DISK1", "ATLANTIS-DISK0"),
                "used twice",
            ),
            (GOOD.replace("\"disk1\"", "\"disk0\""), "listed twice"),
            (
                GOOD.replace("ATLANTIS-DISK1", "A-SERIAL-THAT-IS-TOO-LONG"),
                "20 ASCII",
            ),
            (GOOD.replace("2_000_000_000_000", "1000"), "at least 64 MiB"),
            (
                GOOD.replace("factory-windows", "factory-linux"),
                "factory-linux",
            ),
            (
                GOOD.replace("unchanged = true", "unchanged = true\nsize = 3"),
                "size",
            ),
            (
                GOOD.replace(
                    "unchanged = true",
                    "unchanged = true\nunchanged_partitions = [2]",
                ),
                "covers the whole disk",
            ),
            (
                GOOD.replace(
                    "serial = \"ATLANTIS-DISK1\"",
                    "serial = \"ATLANTIS-DISK1\"\nunchanged_partitions = [1]",
                ),
                "blank disk has no partitions",
            ),
            (
                GOOD.replace(
                    "serial = \"ATLANTIS-DISK1\"",
                    "serial = \"ATLANTIS-DISK1\"\nlogical_block_size = 1024",
                ),
                "logical_block_size = 1024 must be 512 or 4096",
            ),
            (
                GOOD.replace(
                    "unchanged = true",
                    "unchanged = true\nlogical_block_size = 4096",
                ),
                "logical_block_size = 4096 needs content = \"blank\"",
            ),
            (
                GOOD.replace(r#"expect = ["A", "B"]"#, r#"expect = ["A {sha256:home"]"#),
                "one {sha256:NAME} per line",
            ),
            (
                GOOD.replace(r#"expect = ["A", "B"]"#, r#"expect = ["A {sha256:}"]"#),
                "one {sha256:NAME} per line",
            ),
            (
                GOOD.replace(
                    r#"expect = ["A", "B"]"#,
                    r#"expect = ["{sha256:a} {sha256:b}"]"#,
                ),
                "one {sha256:NAME} per line",
            ),
            (
                format!("luks_fixture = true\n{GOOD}"),
                "luks_fixture needs a boot from the USB stick with a `run` script",
            ),
        ];
        for (text, said) in cases {
            let err = format!("{:#}", Scenario::parse("x", &text).unwrap_err());
            assert!(err.contains(said), "{said}: {err}");
        }
    }

    #[test]
    fn a_refused_boot_ends_at_the_firmware_and_needs_the_stick() {
        let text = r#"
description = "d"
secure_boot = true
[[boot]]
timeout_secs = 60
stick_loader = "unsigned"
refused = true
expect = ["Access Denied"]
forbid = ["Welcome to GRUB"]
[[boot]]
timeout_secs = 60
run = "true"
expect = ["x"]
"#;
        let s = Scenario::parse("x", text).unwrap();
        assert!(s.secure_boot);
        assert_eq!(s.boots[0].stick_loader, StickLoader::Unsigned);
        assert!(s.boots[0].ends_when_expected() && !s.boots[0].is_menu());
        assert_eq!(s.boots[0].medium, Medium::Usb);
        let cd = text.replacen("refused = true", "refused = true\nmedium = \"cdrom\"", 1);
        let err = Scenario::parse("x", &cd).unwrap_err().to_string();
        assert!(err.contains("the ISO is read-only"), "{err}");
        assert_eq!(s.boots[0].forbid, ["Welcome to GRUB"]);
        assert_eq!(s.boots[1].stick_loader, StickLoader::Signed);
        assert!(!s.boots[1].ends_when_expected());
        assert!(!Scenario::parse("x", GOOD).unwrap().secure_boot);
        let pulled = text.replacen("refused = true", "refused = true\nstick = false", 1);
        let err = Scenario::parse("x", &pulled).unwrap_err().to_string();
        assert!(err.contains("`refused` needs the stick"), "{err}");
        let typo = text.replace("\"unsigned\"", "\"unsinged\"");
        assert!(Scenario::parse("x", &typo).is_err());
    }

    #[test]
    fn buses_and_the_nic() {
        let text = format!(
            "{GOOD}bus = \"usb-uas\"\n[[disk]]\nid = \"d2\"\nbytes = 1_000_000_000\nserial = \"S2\"\nbus = \"nvme\"\n"
        );
        let s = Scenario::parse("x", &format!("nic = \"e1000e\"\n{text}")).unwrap();
        assert_eq!(s.disks[0].bus, Bus::Virtio);
        assert_eq!(s.disks[1].bus, Bus::UsbUas);
        assert_eq!(s.disks[2].bus, Bus::Nvme);
        assert_eq!(s.nic.as_deref(), Some("e1000e"));
        assert!(Scenario::parse("x", &text.replace("nvme", "firewire")).is_err());
        let err = format!(
            "{:#}",
            Scenario::parse("x", &format!("nic = \"e1000e,x=1\"\n{text}")).unwrap_err()
        );
        assert!(err.contains("NIC model"), "{err}");
        let plugged = text.replace("bus = \"nvme\"", "bus = \"usb-storage\"\nhotplug = true");
        assert!(Scenario::parse("x", &plugged).unwrap().disks[2].hotplug);
        let err = format!(
            "{:#}",
            Scenario::parse("x", &text.replace("bus = \"nvme\"", "hotplug = true")).unwrap_err()
        );
        assert!(err.contains("hotplug needs bus"), "{err}");
    }

    #[test]
    fn several_boots_of_one_machine() {
        let text = r#"
description = "d"
[[boot]]
timeout_secs = 60
run = "echo hi"
expect = ["hi"]
[[boot]]
timeout_secs = 30
stick = false
expect = ["BOOTED FROM ESP0"]
"#;
        let s = Scenario::parse("x", text).unwrap();
        assert_eq!(s.boots.len(), 2);
        assert!(s.boots[0].stick && !s.boots[0].is_menu());
        assert!(!s.boots[1].stick && !s.boots[1].is_menu());
        let first_without_stick =
            text.replacen("timeout_secs = 60", "timeout_secs = 60\nstick = false", 1);
        let err = Scenario::parse("x", &first_without_stick)
            .unwrap_err()
            .to_string();
        assert!(err.contains("boot 1 has no stick"), "{err}");
    }

    #[test]
    fn replaced_disks_and_the_fixture_checksum_are_checked() {
        let text = r#"
description = "d"
[[boot]]
timeout_secs = 60
run = "true"
expect = ["x"]
[[boot]]
timeout_secs = 60
replace = ["disk1"]
stick = false
expect = ["ATLANTIS-HOME-SHA256 {home_sha256}"]
[[disk]]
id = "disk1"
bytes = 2_000_000_000_000
serial = "S1"
content = "atlantis-fixture"
"#;
        let s = Scenario::parse("x", text).unwrap();
        assert_eq!(s.boots[1].replace, ["disk1"]);
        assert_eq!(s.disks[0].content, Content::AtlantisFixture);
        let err = format!(
            "{:#}",
            Scenario::parse(
                "x",
                &text.replace("replace = [\"disk1\"]", "replace = [\"usb\"]")
            )
            .unwrap_err()
        );
        assert!(err.contains("`replace` names `usb`"), "{err}");
        let err = format!(
            "{:#}",
            Scenario::parse("x", &text.replace("content = \"atlantis-fixture\"", "")).unwrap_err()
        );
        assert!(err.contains("names {home_sha256} but no disk"), "{err}");
    }

    #[test]
    fn a_replacement_of_another_size_and_serial_is_checked() {
        let text = r#"
description = "d"
[[boot]]
timeout_secs = 60
run = "true"
expect = ["x"]
[[boot]]
timeout_secs = 60
replace_with = [{ id = "disk1", bytes = 3_000_000_000_000, serial = "NEW-3TB" }]
run = "true"
expect = ["y"]
[[disk]]
id = "disk1"
bytes = 2_000_000_000_000
serial = "S1"
[[disk]]
id = "usb"
bytes = 4_000_000_000_000
serial = "S2"
"#;
        let s = Scenario::parse("x", text).unwrap();
        assert_eq!(
            s.boots[1].replace_with,
            [Replacement {
                id: "disk1".into(),
                bytes: 3_000_000_000_000,
                serial: "NEW-3TB".into()
            }]
        );
        let line = r#"{ id = "disk1", bytes = 3_000_000_000_000, serial = "NEW-3TB" }"#;
        for (wrong, says) in [
            (
                r#"{ id = "disk9", bytes = 3_000_000_000_000, serial = "NEW-3TB" }"#,
                "names `disk9`, which is not a disk",
            ),
            (
                r#"{ id = "disk1", bytes = 3_000_000_000_000, serial = "S2" }"#,
                "serial `S2` is disk `usb`'s",
            ),
            (
                r#"{ id = "disk1", bytes = 3_000_000_000_000, serial = "A-SERIAL-THAT-IS-TOO-LONG" }"#,
                "1 to 20 ASCII",
            ),
            (
                r#"{ id = "disk1", bytes = 1000, serial = "NEW-3TB" }"#,
                "at least 64 MiB",
            ),
            (
                r#"{ id = "disk1", bytes = 3_000_000_000_001, serial = "NEW-3TB" }"#,
                "a multiple of 512",
            ),
        ] {
            let err = format!(
                "{:#}",
                Scenario::parse("x", &text.replace(line, wrong)).unwrap_err()
            );
            assert!(err.contains(says), "{wrong}: {err}");
        }
        let both = text.replace("replace_with =", "replace = [\"disk1\"]\nreplace_with =");
        let err = format!("{:#}", Scenario::parse("x", &both).unwrap_err());
        assert!(
            err.contains("in both `replace` and `replace_with`"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_scenarios_parse() {
        let root = crate::project_root();
        let names = names(&root).unwrap();
        assert!(names.contains(&"boot".to_owned()), "{names:?}");
        assert!(names.contains(&"provision".to_owned()), "{names:?}");
        for name in names {
            Scenario::load(&root, &name).unwrap();
        }
        let err = Scenario::load(&root, "no-such").unwrap_err().to_string();
        assert!(
            err.contains("no scenario `no-such`") && err.contains("boot"),
            "{err}"
        );
    }
}
