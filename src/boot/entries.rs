//! UEFI boot entries for the ESPs (pure): the load options lifeboat wants, and what to
//! write, delete and put in BootOrder given what the firmware has now. The bytes are
//! efivar's `BootEntry` (EFI_LOAD_OPTION with an HD(GPT) + File device path).
//!
//! Under Secure Boot, Debian's shim (which lifeboat's signed chain starts with) trusts only
//! Debian's kernels; Fedora's and openSUSE's are signed by their own keys, which only their
//! own shims carry. So each distribution's shim found on an ESP gets an entry of its own
//! ([`with_distro_shims`]), after lifeboat's, to pick in the firmware's boot menu.

use std::path::PathBuf;

use efivar::boot::{
    BootEntry, BootEntryAttributes, EFIHardDrive, EFIHardDriveType, FilePath, FilePathList,
};
use uuid::Uuid;

/// Descriptions of entries lifeboat made start with this, after the machine's name.
pub const OURS: &str = " ESP";

/// One ESP as the firmware must find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esp {
    /// "Myhost ESP0 (disk0)".
    pub description: String,
    pub number: u32,
    pub first_lba: u64,
    pub sectors: u64,
    pub part_guid: Uuid,
    /// The loader on that ESP as the firmware writes paths: `\EFI\systemd\systemd-bootx64.efi`.
    pub loader: String,
}

pub fn load_option(esp: &Esp) -> BootEntry {
    BootEntry {
        attributes: BootEntryAttributes::LOAD_OPTION_ACTIVE,
        description: esp.description.clone(),
        file_path_list: Some(FilePathList {
            file_path: FilePath {
                path: esp.loader.clone(),
            },
            hard_drive: EFIHardDrive {
                partition_number: esp.number,
                partition_start: esp.first_lba,
                partition_size: esp.sectors,
                partition_sig: esp.part_guid,
                // MBR-type 0x02: a GPT partition (UEFI spec, hard drive media device path).
                format: 0x02,
                sig_type: EFIHardDriveType::Gpt,
            },
        }),
        optional_data: Vec::new(),
    }
}

/// A Boot#### variable as found: parsed when efivar can (HD + File paths only).
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: u16,
    pub entry: Option<BootEntry>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    pub write: Vec<(u16, BootEntry)>,
    pub delete: Vec<u16>,
    /// The new BootOrder, when it changes.
    pub boot_order: Option<Vec<u16>>,
    /// Our entries, in the order they lead BootOrder.
    pub ours: Vec<u16>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.delete.is_empty() && self.boot_order.is_none()
    }
}

/// The id of a firmware variable that is a boot option: exactly `Boot####` (four upper-case
/// hex digits, as the UEFI spec writes them) under the EFI global variable GUID. Vendors'
/// look-alikes (Lenovo's `lBoot####`, a `Boot0001` under a vendor GUID) are not boot options
/// and lifeboat never reads, rewrites or deletes them.
pub fn boot_option_id(name: &str, global_guid: bool) -> Option<u16> {
    let hex = name.strip_prefix("Boot")?;
    if !global_guid
        || hex.len() != 4
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

/// Directories under `EFI/` that hold no distribution's own loader.
const NOT_DISTROS: [&str; 4] = ["boot", "lifeboat", "systemd", "microsoft"];

/// Each distribution's shim among an ESP's files (paths relative to its root): one per
/// `EFI/<distro>/` directory, `shimx64.efi` there, else `shim.efi`, else the first other
/// `shim*.efi` by name. (distro directory, path as the firmware writes it), by directory.
pub fn distro_shims(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut found: std::collections::BTreeMap<String, Vec<(u8, String)>> = Default::default();
    for path in files {
        let parts: Vec<String> = path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let [efi, dir, file] = parts.as_slice() else {
            continue;
        };
        let lower = file.to_ascii_lowercase();
        if !efi.eq_ignore_ascii_case("EFI")
            || NOT_DISTROS.iter().any(|n| dir.eq_ignore_ascii_case(n))
            || !lower.starts_with("shim")
            || !lower.ends_with(".efi")
        {
            continue;
        }
        let rank = match lower.as_str() {
            "shimx64.efi" => 0,
            "shim.efi" => 1,
            _ => 2,
        };
        found
            .entry(dir.clone())
            .or_default()
            .push((rank, format!("\\EFI\\{dir}\\{file}")));
    }
    found
        .into_iter()
        .filter_map(|(dir, mut shims)| {
            shims.sort();
            shims.into_iter().next().map(|(_, path)| (dir, path))
        })
        .collect()
}

/// lifeboat's entry for each ESP (in `ours`' order), then for each distribution's shim
/// (`files[i]` are the files of `ours[i]`'s ESP) one entry per ESP that has it, ESP0 first:
/// `Myhost ESP0 (disk0) fedora`.
pub fn with_distro_shims(ours: &[Esp], files: &[Vec<PathBuf>]) -> Vec<Esp> {
    let per_esp: Vec<Vec<(String, String)>> = files.iter().map(|f| distro_shims(f)).collect();
    let mut distros: Vec<&String> = per_esp.iter().flatten().map(|(d, _)| d).collect();
    distros.sort();
    distros.dedup();
    let mut out = ours.to_vec();
    for distro in distros {
        for (esp, shims) in ours.iter().zip(&per_esp) {
            if let Some((_, path)) = shims.iter().find(|(d, _)| d == distro) {
                out.push(Esp {
                    description: format!("{} {distro}", esp.description),
                    loader: path.clone(),
                    ..esp.clone()
                });
            }
        }
    }
    out
}

/// Whether `entry` is one lifeboat made for machine `machine`.
pub fn is_ours(machine: &str, entry: &BootEntry) -> bool {
    entry
        .description
        .strip_prefix(machine)
        .is_some_and(|rest| rest.starts_with(OURS))
}

/// What to change so that each ESP has exactly one entry and they lead BootOrder, in the
/// order given, followed by every other entry in its old order. An entry of ours whose
/// partition is gone (`present` says no), that duplicates another, or that is no longer
/// wanted on a partition that still is (a distribution's shim removed since) is deleted;
/// entries that are not ours are never touched.
pub fn plan(
    machine: &str,
    wanted: &[Esp],
    existing: &[Existing],
    boot_order: &[u16],
    present: &dyn Fn(&Uuid) -> bool,
) -> Changes {
    let mut changes = Changes::default();
    let mut used: Vec<u16> = existing.iter().map(|e| e.id).collect();
    let mut claimed: Vec<u16> = Vec::new();
    for esp in wanted {
        let want = load_option(esp);
        // Ours already, byte for byte; else one of ours with the same description.
        let same = existing
            .iter()
            .filter(|e| !claimed.contains(&e.id))
            .find(|e| e.entry.as_ref() == Some(&want));
        let named = || {
            existing
                .iter()
                .filter(|e| !claimed.contains(&e.id))
                .find(|e| {
                    e.entry
                        .as_ref()
                        .is_some_and(|b| b.description == want.description)
                })
        };
        let id = match same.map(|e| e.id) {
            Some(id) => id,
            None => {
                let id = match named() {
                    Some(e) => e.id,
                    None => {
                        let free = (0u16..=0xFFFF)
                            .find(|n| !used.contains(n))
                            .unwrap_or(0xFFFF);
                        used.push(free);
                        free
                    }
                };
                changes.write.push((id, want));
                id
            }
        };
        claimed.push(id);
        changes.ours.push(id);
    }
    for e in existing {
        let Some(entry) = &e.entry else { continue };
        if claimed.contains(&e.id) || !is_ours(machine, entry) {
            continue;
        }
        let gone = entry
            .file_path_list
            .as_ref()
            .is_none_or(|f| !present(&f.hard_drive.partition_sig));
        let duplicate = wanted.iter().any(|w| w.description == entry.description);
        let unwanted = entry.file_path_list.as_ref().is_some_and(|f| {
            wanted
                .iter()
                .any(|w| w.part_guid == f.hard_drive.partition_sig)
        });
        if gone || duplicate || unwanted {
            changes.delete.push(e.id);
        }
    }
    let mut order = changes.ours.clone();
    for id in boot_order {
        if !order.contains(id) && !changes.delete.contains(id) {
            order.push(*id);
        }
    }
    if order != boot_order {
        changes.boot_order = Some(order);
    }
    changes
}

/// `Boot0003 "Myhost ESP1 (disk1)" HD(1,GPT,…,0x800,0x100000)/File(\EFI\BOOT\BOOTX64.EFI)`.
pub fn describe(id: u16, entry: &BootEntry) -> String {
    match &entry.file_path_list {
        Some(f) => format!(
            "Boot{id:04X} \"{}\" HD({},GPT,{},{:#x},{:#x})/File({})",
            entry.description,
            f.hard_drive.partition_number,
            f.hard_drive.partition_sig,
            f.hard_drive.partition_start,
            f.hard_drive.partition_size,
            f.file_path.path
        ),
        None => format!("Boot{id:04X} \"{}\"", entry.description),
    }
}

pub fn order_text(order: &[u16]) -> String {
    order
        .iter()
        .map(|id| format!("{id:04X}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp(n: u8, part: u32) -> Esp {
        Esp {
            description: format!("Atlantis ESP{n} (disk{n})"),
            number: part,
            first_lba: 2048,
            sectors: 1_048_576,
            part_guid: Uuid::from_u128(0x1000 + n as u128),
            loader: "\\EFI\\BOOT\\BOOTX64.EFI".into(),
        }
    }

    fn windows() -> BootEntry {
        let mut e = load_option(&esp(9, 1));
        e.description = "Windows Boot Manager".into();
        e.file_path_list.as_mut().unwrap().file_path.path =
            "\\EFI\\Microsoft\\Boot\\bootmgfw.efi".into();
        e
    }

    fn all_present(_: &Uuid) -> bool {
        true
    }

    /// The bytes of an EFI_LOAD_OPTION as the UEFI spec lays them out (and as
    /// `efibootmgr -c -d /dev/vda -p 1 -L "Atlantis ESP0 (disk0)" -l '\EFI\BOOT\BOOTX64.EFI'`
    /// writes them): attributes, path list length, UTF-16 description, HD node, File
    /// node, End node.
    #[test]
    fn the_load_option_bytes_follow_the_uefi_spec() {
        let mut e = esp(0, 1);
        e.part_guid = Uuid::parse_str("4c725557-af48-4aa4-a791-c6e5ab0edb56").unwrap();
        let bytes = load_option(&e).to_bytes();
        let mut want: Vec<u8> = vec![1, 0, 0, 0]; // LOAD_OPTION_ACTIVE
        let file: Vec<u8> = "\\EFI\\BOOT\\BOOTX64.EFI\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let path_len = 42 + 4 + file.len() + 4;
        want.extend((path_len as u16).to_le_bytes());
        want.extend(
            "Atlantis ESP0 (disk0)\0"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        // HD: type 4 (media), subtype 1, length 42.
        want.extend([4, 1, 42, 0]);
        want.extend(1u32.to_le_bytes());
        want.extend(2048u64.to_le_bytes());
        want.extend(1_048_576u64.to_le_bytes());
        // The GUID in its mixed-endian on-disk form.
        want.extend([
            0x57, 0x55, 0x72, 0x4c, 0x48, 0xaf, 0xa4, 0x4a, 0xa7, 0x91, 0xc6, 0xe5, 0xab, 0x0e,
            0xdb, 0x56,
        ]);
        want.extend([0x02, 0x02]);
        // File: type 4, subtype 4.
        want.extend([4, 4]);
        want.extend(((4 + file.len()) as u16).to_le_bytes());
        want.extend(&file);
        // End of entire device path.
        want.extend([0x7f, 0xff, 4, 0]);
        assert_eq!(bytes, want);
        assert_eq!(
            BootEntry::parse(bytes).unwrap(),
            load_option(&e),
            "round trip"
        );
    }

    #[test]
    fn first_run_adds_both_and_puts_them_first() {
        let existing = [
            Existing { id: 0, entry: None }, // "UiApp", a firmware path efivar cannot parse
            Existing {
                id: 1,
                entry: Some(windows()),
            },
        ];
        let c = plan(
            "Atlantis",
            &[esp(0, 1), esp(1, 1)],
            &existing,
            &[1, 0],
            &all_present,
        );
        assert_eq!(c.write.iter().map(|w| w.0).collect::<Vec<_>>(), [2, 3]);
        assert!(c.delete.is_empty());
        assert_eq!(c.boot_order, Some(vec![2, 3, 1, 0]));
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let existing = [
            Existing {
                id: 1,
                entry: Some(windows()),
            },
            Existing {
                id: 2,
                entry: Some(load_option(&esp(0, 1))),
            },
            Existing {
                id: 3,
                entry: Some(load_option(&esp(1, 1))),
            },
        ];
        let c = plan(
            "Atlantis",
            &[esp(0, 1), esp(1, 1)],
            &existing,
            &[2, 3, 1],
            &all_present,
        );
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(c.ours, [2, 3]);
    }

    #[test]
    fn a_replaced_disk_rewrites_its_entry_in_place_and_reorders() {
        // disk1 was replaced: new partition GUID; BootOrder had been changed by hand.
        let old1 = load_option(&esp(1, 1));
        let mut new1 = esp(1, 1);
        new1.part_guid = Uuid::from_u128(0xbeef);
        let existing = [
            Existing {
                id: 1,
                entry: Some(windows()),
            },
            Existing {
                id: 2,
                entry: Some(load_option(&esp(0, 1))),
            },
            Existing {
                id: 5,
                entry: Some(old1),
            },
        ];
        let c = plan(
            "Atlantis",
            &[esp(0, 1), new1.clone()],
            &existing,
            &[1, 2, 5],
            &|u| *u != Uuid::from_u128(0x1001),
        );
        assert_eq!(c.write, vec![(5, load_option(&new1))]);
        assert!(c.delete.is_empty());
        assert_eq!(c.boot_order, Some(vec![2, 5, 1]));
    }

    #[test]
    fn stale_and_duplicate_entries_of_ours_go_others_stay() {
        let mut stale = load_option(&esp(2, 3));
        stale.description = "Atlantis ESP2 (disk2)".into();
        let foreign_gone = {
            let mut w = windows();
            w.file_path_list.as_mut().unwrap().hard_drive.partition_sig = Uuid::from_u128(7);
            w
        };
        let existing = [
            Existing {
                id: 1,
                entry: Some(foreign_gone),
            },
            Existing {
                id: 2,
                entry: Some(load_option(&esp(0, 1))),
            },
            Existing {
                id: 3,
                entry: Some(load_option(&esp(0, 1))),
            }, // a duplicate
            Existing {
                id: 4,
                entry: Some(load_option(&esp(1, 1))),
            },
            Existing {
                id: 6,
                entry: Some(stale),
            },
        ];
        let present = |u: &Uuid| *u != Uuid::from_u128(7) && *u != Uuid::from_u128(0x1002);
        let c = plan(
            "Atlantis",
            &[esp(0, 1), esp(1, 1)],
            &existing,
            &[6, 3, 2, 4, 1],
            &present,
        );
        assert!(c.write.is_empty());
        assert_eq!(c.delete, [3, 6]);
        assert_eq!(c.boot_order, Some(vec![2, 4, 1]));
        assert!(!is_ours("Atlantis", &windows()));
    }

    #[test]
    fn only_boot_options_under_the_global_guid_are_read() {
        assert_eq!(boot_option_id("Boot0001", true), Some(1));
        assert_eq!(boot_option_id("Boot00AF", true), Some(0xAF));
        // Lenovo keeps lBoot#### under its own GUID; a Boot#### under a vendor GUID is
        // that vendor's too.
        assert_eq!(boot_option_id("lBoot0001", false), None);
        assert_eq!(boot_option_id("lBoot0001", true), None);
        assert_eq!(boot_option_id("Boot0001", false), None);
        for odd in [
            "BootOrder",
            "BootNext",
            "Boot00af",
            "Boot+001",
            "Boot001",
            "Boot00010",
        ] {
            assert_eq!(boot_option_id(odd, true), None, "{odd}");
        }
    }

    #[test]
    fn a_vendor_entry_that_looks_like_ours_is_never_rewritten() {
        // The firmware's own entry for the same partition and path, under the vendor's
        // description (what a Lenovo's setup makes from our ESP): ours is added beside it.
        let mut vendor = load_option(&esp(0, 1));
        vendor.description = "Lenovo Atlantis ESP0 (disk0)".into();
        let existing = [Existing {
            id: 7,
            entry: Some(vendor),
        }];
        let c = plan("Atlantis", &[esp(0, 1)], &existing, &[7], &all_present);
        assert!(c.delete.is_empty(), "{c:?}");
        assert_eq!(c.write.len(), 1);
        assert_ne!(c.write[0].0, 7);
        assert_eq!(c.boot_order, Some(vec![c.write[0].0, 7]));
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn each_distributions_shim_gets_an_entry_on_each_esp_esp0_first() {
        let esp0 = paths(&[
            "EFI/BOOT/BOOTX64.EFI",
            "EFI/lifeboat/shimx64.efi",
            "EFI/Microsoft/Boot/bootmgfw.efi",
            "EFI/fedora/shim.efi",
            "EFI/fedora/shimx64.efi",
            "EFI/fedora/shimx64-fedora.efi",
            "EFI/fedora/grubx64.efi",
            "EFI/opensuse/shim.efi",
            "EFI/opensuse/grub.efi",
            "EFI/debian/grubx64.efi",
            "EFI/fedora/x/shimx64.efi",
        ]);
        let esp1 = paths(&["EFI/fedora/shimx64.efi", "EFI/lifeboat/shimx64.efi"]);
        assert_eq!(
            distro_shims(&esp0),
            [
                ("fedora".to_owned(), "\\EFI\\fedora\\shimx64.efi".to_owned()),
                (
                    "opensuse".to_owned(),
                    "\\EFI\\opensuse\\shim.efi".to_owned()
                ),
            ]
        );
        let ours = [esp(0, 1), esp(1, 1)];
        let all = with_distro_shims(&ours, &[esp0, esp1]);
        let described: Vec<(&str, &str, Uuid)> = all
            .iter()
            .map(|e| (e.description.as_str(), e.loader.as_str(), e.part_guid))
            .collect();
        assert_eq!(
            described,
            [
                (
                    "Atlantis ESP0 (disk0)",
                    "\\EFI\\BOOT\\BOOTX64.EFI",
                    esp(0, 1).part_guid
                ),
                (
                    "Atlantis ESP1 (disk1)",
                    "\\EFI\\BOOT\\BOOTX64.EFI",
                    esp(1, 1).part_guid
                ),
                (
                    "Atlantis ESP0 (disk0) fedora",
                    "\\EFI\\fedora\\shimx64.efi",
                    esp(0, 1).part_guid
                ),
                (
                    "Atlantis ESP1 (disk1) fedora",
                    "\\EFI\\fedora\\shimx64.efi",
                    esp(1, 1).part_guid
                ),
                (
                    "Atlantis ESP0 (disk0) opensuse",
                    "\\EFI\\opensuse\\shim.efi",
                    esp(0, 1).part_guid
                ),
            ]
        );
        // Written after ours, in that order, ahead of Windows; a second run changes nothing.
        let existing = [Existing {
            id: 1,
            entry: Some(windows()),
        }];
        let c = plan("Atlantis", &all, &existing, &[1], &all_present);
        assert_eq!(c.write.len(), 5);
        assert_eq!(c.boot_order, Some(vec![0, 2, 3, 4, 5, 1]));
        let mut now: Vec<Existing> = existing.to_vec();
        now.extend(c.write.iter().map(|(id, e)| Existing {
            id: *id,
            entry: Some(e.clone()),
        }));
        let order = c.boot_order.clone().unwrap();
        assert!(plan("Atlantis", &all, &now, &order, &all_present).is_empty());
        // openSUSE removed from ESP0: its entry of ours goes, Windows stays.
        let c = plan("Atlantis", &all[..4], &now, &order, &all_present);
        assert!(c.write.is_empty());
        assert_eq!(c.delete, [5]);
        assert_eq!(c.boot_order, Some(vec![0, 2, 3, 4, 1]));
    }
}
