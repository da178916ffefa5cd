//! The planner, tested whole on made-up disks: fresh, finished, half-finished, too small,
//! foreign, busy.

use crate::probe::{Device, Filesystem, Gpt, KernelPartition, Orphan, Part, Table};
use crate::spec::FsKind;

use super::testutil::{blank_device, counter, spec};
use super::*;

const TB2: u64 = 2_000_000_000_000;
const TB45: u64 = 4_500_000_000_000;

fn bound(id: &str, dev: Device) -> Binding {
    Binding {
        id: id.into(),
        device: dev,
        how: BoundBy::Explicit,
    }
}

fn plan_for(bindings: &[Binding], scope: &Scope) -> Result<Plan, PlanError> {
    plan(&spec(), bindings, scope, &mut counter())
}

fn disk_plan<'a>(p: &'a Plan, id: &str) -> &'a DiskPlan {
    p.disks.iter().find(|d| d.id == id).unwrap()
}

/// What a probe would see after `apply` carried out `dp` on `dev`.
fn finished(dev: &Device, dp: &DiskPlan) -> Device {
    let mut dev = dev.clone();
    let mut gpt = dev.gpt().cloned().unwrap_or(Gpt {
        disk_guid: String::new(),
        partitions: vec![],
    });
    for a in &dp.actions {
        match a {
            Action::WipeDisk { .. } => {
                gpt.partitions.clear();
                dev.whole_disk_fs = None;
                dev.table = Table::None;
            }
            Action::CreateGpt {
                disk_guid,
                partitions,
                ..
            } => {
                gpt.disk_guid = disk_guid.clone();
                gpt.partitions = partitions
                    .iter()
                    .map(|p| Part {
                        number: p.number,
                        first_lba: p.first_lba,
                        last_lba: p.last_lba,
                        type_guid: p.type_guid.clone(),
                        part_guid: p.part_guid.clone(),
                        name: p.name.clone(),
                        fs: None,
                        subvolumes: None,
                    })
                    .collect();
            }
            Action::Mkfs {
                partition,
                fs,
                label,
                ..
            } => {
                let p = gpt
                    .partitions
                    .iter_mut()
                    .find(|p| p.number == partition.number)
                    .unwrap();
                p.fs = Some(Filesystem {
                    fstype: fs.blkid_type().into(),
                    label: label.clone(),
                    uuid: Some("u".into()),
                });
                p.subvolumes = (*fs == FsKind::Btrfs).then(Vec::new);
            }
            Action::CreateSubvolume {
                partition, name, ..
            } => {
                let p = gpt
                    .partitions
                    .iter_mut()
                    .find(|p| p.number == partition.number)
                    .unwrap();
                p.subvolumes.get_or_insert_with(Vec::new).push(name.clone());
            }
            Action::RegisterPartitions { .. }
            | Action::LuksFormat { .. }
            | Action::EnableQuotas { .. } => {}
        }
    }
    dev.kernel_partitions = gpt
        .partitions
        .iter()
        .map(|p| KernelPartition {
            number: p.number,
            start: p.first_lba * dev.sector_size,
            size: (p.last_lba - p.first_lba + 1) * dev.sector_size,
        })
        .collect();
    dev.table = Table::Gpt(gpt);
    dev
}

fn fresh() -> (Device, Device) {
    (blank_device("loop1", TB2), blank_device("loop2", TB45))
}

#[test]
fn fresh_disks_get_the_whole_atlantis_layout() {
    let (d1, usb) = fresh();
    let p = plan_for(&[bound("disk1", d1), bound("usb", usb)], &Scope::default()).unwrap();
    let disk1 = disk_plan(&p, "disk1");
    let Action::CreateGpt {
        partitions,
        sector_size,
        ..
    } = &disk1.actions[0]
    else {
        panic!("first action is {:?}", disk1.actions[0]);
    };
    assert_eq!(*sector_size, 512);
    let geometry: Vec<(u32, u64, u64, &str)> = partitions
        .iter()
        .map(|p| (p.number, p.first_lba, p.last_lba, p.name.as_str()))
        .collect();
    assert_eq!(
        geometry,
        [
            (1, 2048, 1_050_623, "ESP1"),
            (2, 1_050_624, 3_147_775, "boot"),
            (3, 3_147_776, 137_365_503, "swap"),
            (4, 137_365_504, 3_906_248_703, "LINPOOL"),
        ]
    );
    assert_eq!(
        partitions[0].type_guid,
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    );
    assert_eq!(
        partitions[2].type_guid,
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
    );
    let mkfs: Vec<(FsKind, Option<&str>)> = disk1
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Mkfs { fs, label, .. } => Some((*fs, label.as_deref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        mkfs,
        [
            (FsKind::Vfat, Some("ESP1")),
            (FsKind::Ext4, Some("BOOT")),
            (FsKind::Swap, Some("SWAP")),
            (FsKind::Btrfs, Some("LINPOOL")),
        ]
    );
    let subvols: Vec<&str> = disk1
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateSubvolume { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        subvols,
        [
            "@rootTW",
            "@rootF41",
            "@rootNobara",
            "@home",
            "@snapshots",
            "Atlantis-meta"
        ]
    );
    // Subvolumes come after the pool exists; quotas are off.
    assert!(!disk1
        .actions
        .iter()
        .any(|a| matches!(a, Action::EnableQuotas { .. })));

    let usb = disk_plan(&p, "usb");
    let Action::CreateGpt { partitions, .. } = &usb.actions[0] else {
        panic!()
    };
    assert_eq!(
        partitions[0].last_lba, 1_953_127_047,
        "WINBKUP is exactly 1 TB"
    );
    assert_eq!(
        partitions[1].first_lba, 1_953_128_448,
        "CUSHION starts 1 MiB aligned"
    );
    assert_eq!(usb.actions.len(), 4);
    assert!(p.render().contains("LINPOOL"));
}

#[test]
fn every_guid_in_the_plan_is_distinct() {
    let (d1, usb) = fresh();
    let p = plan_for(&[bound("disk1", d1), bound("usb", usb)], &Scope::default()).unwrap();
    let mut guids = Vec::new();
    for d in &p.disks {
        for a in &d.actions {
            if let Action::CreateGpt {
                disk_guid,
                partitions,
                ..
            } = a
            {
                guids.push(disk_guid.clone());
                guids.extend(partitions.iter().map(|p| p.part_guid.clone()));
            }
        }
    }
    let n = guids.len();
    guids.sort();
    guids.dedup();
    assert_eq!(guids.len(), n);
    assert_eq!(n, 9);
}

#[test]
fn finished_disks_plan_nothing() {
    let (d1, usb) = fresh();
    let first = plan_for(
        &[bound("disk1", d1.clone()), bound("usb", usb.clone())],
        &Scope::default(),
    )
    .unwrap();
    let d1 = finished(&d1, disk_plan(&first, "disk1"));
    let usb = finished(&usb, disk_plan(&first, "usb"));
    let again = plan_for(&[bound("disk1", d1), bound("usb", usb)], &Scope::default()).unwrap();
    assert!(again.is_empty(), "{}", again.render());
    assert!(again.render().contains("Nothing to do"));
}

#[test]
fn half_finished_disk_finishes_only_the_rest() {
    let (d1, _) = fresh();
    let first = plan_for(
        &[bound("disk1", d1.clone())],
        &Scope {
            only: vec!["disk1".into()],
            ..Scope::default()
        },
    )
    .unwrap();
    // Interrupted after the table, the ESP and /boot were written.
    let mut dp = disk_plan(&first, "disk1").clone();
    dp.actions.truncate(3);
    let mut half = finished(&d1, &dp);
    half.kernel_partitions.clear(); // a fresh boot of the rescue system: kernel saw no GPT
    let p = plan_for(
        &[bound("disk1", half)],
        &Scope {
            only: vec!["disk1".into()],
            ..Scope::default()
        },
    )
    .unwrap();
    let a = &disk_plan(&p, "disk1").actions;
    assert!(matches!(a[0], Action::RegisterPartitions { .. }), "{a:?}");
    assert!(matches!(
        a[1],
        Action::Mkfs {
            fs: FsKind::Swap,
            ..
        }
    ));
    assert!(matches!(
        a[2],
        Action::Mkfs {
            fs: FsKind::Btrfs,
            ..
        }
    ));
    assert_eq!(a.len(), 3 + 6);
    assert!(!a.iter().any(|a| matches!(a, Action::CreateGpt { .. })));
}

#[test]
fn missing_subvolumes_are_created_alone() {
    let (d1, _) = fresh();
    let scope = Scope {
        only: vec!["disk1".into()],
        ..Scope::default()
    };
    let first = plan_for(&[bound("disk1", d1.clone())], &scope).unwrap();
    let mut dp = disk_plan(&first, "disk1").clone();
    let n = dp.actions.len();
    dp.actions.truncate(n - 2); // the last two subvolumes were never made
    let p = plan_for(&[bound("disk1", finished(&d1, &dp))], &scope).unwrap();
    let names: Vec<_> = disk_plan(&p, "disk1")
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateSubvolume { name, .. } => name.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(names, ["@snapshots", "Atlantis-meta"]);
}

#[test]
fn too_small_disk_is_refused_with_sizes() {
    let small = blank_device("loop1", 60_000_000_000);
    let mut spec = spec();
    spec.disks[1].match_rules.min_size = None; // let the layout, not the range, decide
    let err = plan(
        &spec,
        &[bound("disk1", small)],
        &Scope::default(),
        &mut counter(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk1 (/dev/loop1) is too small: it has 60.00 GB but the spec's partitions need at least 70.33 GB"
    );
}

/// A replacement disk bigger than the spec's max_size, bound by hand: the same partitions,
/// the pool ("rest") takes the extra room, and the plan says it is a replacement.
#[test]
fn a_bigger_replacement_gets_the_bigger_pool() {
    let big = blank_device("loop1", 4_000_000_000_000);
    let p = plan_for(&[bound("disk1", big)], &Scope::default()).unwrap();
    let dp = disk_plan(&p, "disk1");
    assert!(
        dp.notes.iter().any(|n| n.contains(
            "its size 4.00 TB is not between 1.90 TB and 2.10 TB (the spec's match rules): taken as a replacement disk"
        )),
        "{:?}",
        dp.notes
    );
    let Some(Action::CreateGpt { partitions, .. }) = dp.actions.first() else {
        panic!("{:?}", dp.actions)
    };
    let pool = partitions.last().unwrap();
    assert_eq!(pool.name, "LINPOOL");
    let bytes = (pool.last_lba - pool.first_lba + 1) * 512;
    assert!(bytes > 3_900_000_000_000, "{bytes}");
}

/// A replacement picked at the prompt by its serial: the plan says so (not "--disk"), with
/// the serial and the size that the spec's rules did not accept; the layout is the same.
#[test]
fn a_picked_replacement_is_planned_and_said_to_be_picked() {
    let mut new = blank_device("vdc", 3_000_000_000_000);
    new.serial = Some("NEW-DISK1-3TB".into());
    let picked = Binding {
        id: "disk1".into(),
        device: new,
        how: BoundBy::Picked,
    };
    let p = plan_for(&[picked], &Scope::default()).unwrap();
    let dp = disk_plan(&p, "disk1");
    assert_eq!(
        dp.notes[..2],
        [
            "picked at the prompt although its serial NEW-DISK1-3TB is not the spec's ATLANTIS-DISK1",
            "picked at the prompt although its size 3.00 TB is not between 1.90 TB and 2.10 TB \
             (the spec's match rules): taken as a replacement disk; the \"rest\" partition gets \
             what this disk has"
        ]
    );
    let Some(Action::CreateGpt { partitions, .. }) = dp.actions.first() else {
        panic!("{:?}", dp.actions)
    };
    let pool = partitions.last().unwrap();
    assert!((pool.last_lba - pool.first_lba + 1) * 512 > 2_900_000_000_000);
}

/// Smaller than min_size but the layout fits: accepted; the pool is smaller.
#[test]
fn a_smaller_replacement_that_fits_is_accepted() {
    let small = blank_device("loop1", 500_000_000_000);
    let p = plan_for(&[bound("disk1", small)], &Scope::default()).unwrap();
    let dp = disk_plan(&p, "disk1");
    assert!(
        dp.notes
            .iter()
            .any(|n| n.contains("taken as a replacement disk")),
        "{:?}",
        dp.notes
    );
    let Some(Action::CreateGpt { partitions, .. }) = dp.actions.first() else {
        panic!("{:?}", dp.actions)
    };
    let pool = partitions.last().unwrap();
    let bytes = (pool.last_lba - pool.first_lba + 1) * 512;
    assert!(
        bytes > 400_000_000_000 && bytes < 500_000_000_000,
        "{bytes}"
    );
}

fn foreign_gpt(dev: &Device) -> Device {
    let mut dev = dev.clone();
    dev.table = Table::Gpt(Gpt {
        disk_guid: "X".into(),
        partitions: vec![Part {
            number: 1,
            first_lba: 2048,
            last_lba: 1_000_000,
            type_guid: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7".into(),
            part_guid: "Y".into(),
            name: "Photos".into(),
            fs: Some(Filesystem {
                fstype: "ntfs".into(),
                label: Some("PHOTOS".into()),
                uuid: None,
            }),
            subvolumes: None,
        }],
    });
    dev
}

#[test]
fn foreign_partitions_are_refused_without_wipe() {
    let (d1, _) = fresh();
    let err = plan_for(&[bound("disk1", foreign_gpt(&d1))], &Scope::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk1 (/dev/loop1) already holds a GPT with 1 partition that differs from the spec (#1 \"Photos\" a ntfs filesystem labelled \"PHOTOS\"), which provisioning would destroy; to replace it, pass --wipe disk1 (or set wipe = true for disk1 in the spec) and confirm"
    );
}

#[test]
fn wipe_replaces_foreign_partitions_and_says_so() {
    let (d1, _) = fresh();
    let scope = Scope {
        wipe: vec!["disk1".into()],
        ..Scope::default()
    };
    let p = plan_for(&[bound("disk1", foreign_gpt(&d1))], &scope).unwrap();
    let dp = disk_plan(&p, "disk1");
    assert!(matches!(dp.actions[0], Action::WipeDisk { .. }));
    assert!(matches!(dp.actions[1], Action::CreateGpt { .. }));
    assert!(dp
        .notes
        .iter()
        .any(|n| n.starts_with("DESTROYS a GPT with 1 partition")));
    assert!(p.render().contains("DESTROYS"));
}

#[test]
fn wrong_filesystem_in_right_table_is_refused() {
    let (d1, _) = fresh();
    let scope = Scope {
        only: vec!["disk1".into()],
        ..Scope::default()
    };
    let first = plan_for(&[bound("disk1", d1.clone())], &scope).unwrap();
    let mut done = finished(&d1, disk_plan(&first, "disk1"));
    if let Table::Gpt(g) = &mut done.table {
        g.partitions[1].fs = Some(Filesystem {
            fstype: "xfs".into(),
            label: Some("data".into()),
            uuid: None,
        });
    }
    let err = plan_for(&[bound("disk1", done.clone())], &scope).unwrap_err();
    assert!(
        err.to_string()
            .contains("already holds a xfs filesystem labelled \"data\" in partition 2 (boot)"),
        "{err}"
    );
    let wipe = Scope {
        only: vec!["disk1".into()],
        wipe: vec!["disk1".into()],
    };
    let p = plan_for(&[bound("disk1", done)], &wipe).unwrap();
    let a = &disk_plan(&p, "disk1").actions;
    assert_eq!(a.len(), 1);
    assert!(matches!(
        a[0],
        Action::Mkfs {
            fs: FsKind::Ext4,
            ..
        }
    ));
}

#[test]
fn mbr_and_whole_disk_filesystems_are_refused() {
    let (mut d1, _) = fresh();
    d1.table = Table::Other { name: "dos".into() };
    let err = plan_for(&[bound("disk1", d1.clone())], &Scope::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("already holds a dos partition table"),
        "{err}"
    );

    d1.table = Table::None;
    d1.whole_disk_fs = Some(Filesystem {
        fstype: "ext4".into(),
        label: None,
        uuid: None,
    });
    let err = plan_for(&[bound("disk1", d1)], &Scope::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("a ext4 filesystem on the whole disk"),
        "{err}"
    );
}

#[test]
fn an_empty_gpt_is_replaced_without_asking_to_wipe() {
    let (mut d1, _) = fresh();
    d1.table = Table::Gpt(Gpt {
        disk_guid: "X".into(),
        partitions: vec![],
    });
    let p = plan_for(&[bound("disk1", d1)], &Scope::default()).unwrap();
    assert!(matches!(
        disk_plan(&p, "disk1").actions[0],
        Action::CreateGpt { .. }
    ));
}

#[test]
fn busy_disk_is_refused() {
    let (mut d1, _) = fresh();
    d1.busy = vec!["/dev/loop1p2 is mounted at /mnt/x".into()];
    let err = plan_for(&[bound("disk1", d1)], &Scope::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk1 (/dev/loop1) is in use: /dev/loop1p2 is mounted at /mnt/x; stop using it first"
    );
}

#[test]
fn preserved_disk_is_never_planned() {
    let (d1, _) = fresh();
    let mut d0 = blank_device("loop0", 512_000_000_000);
    d0.table = Table::Gpt(Gpt {
        disk_guid: "X".into(),
        partitions: vec![Part {
            number: 1,
            first_lba: 2048,
            last_lba: 1_050_623,
            type_guid: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".into(),
            part_guid: "Y".into(),
            name: "EFI system partition".into(),
            fs: Some(Filesystem {
                fstype: "vfat".into(),
                label: Some("ESP0".into()),
                uuid: None,
            }),
            subvolumes: None,
        }],
    });
    let p = plan_for(&[bound("disk0", d0), bound("disk1", d1)], &Scope::default()).unwrap();
    let dp = disk_plan(&p, "disk0");
    assert!(dp.preserved && dp.actions.is_empty());
    assert!(
        dp.notes
            .iter()
            .any(|n| n.starts_with("found \"EFI system partition\": partition 1")),
        "{:?}",
        dp.notes
    );
    assert!(
        dp.notes
            .iter()
            .any(|n| n.starts_with("did not find \"Basic data partition\"")),
        "{:?}",
        dp.notes
    );

    let only0 = Scope {
        only: vec!["disk0".into()],
        ..Scope::default()
    };
    assert_eq!(
        plan_for(&[], &only0).unwrap_err().to_string(),
        "disk0 is preserved in the spec and is never partitioned or formatted"
    );
    let wipe0 = Scope {
        wipe: vec!["disk0".into()],
        ..Scope::default()
    };
    assert!(matches!(
        plan_for(&[], &wipe0),
        Err(PlanError::Preserved { .. })
    ));
}

#[test]
fn only_limits_the_disks_written() {
    let (d1, usb) = fresh();
    let scope = Scope {
        only: vec!["usb".into()],
        ..Scope::default()
    };
    let p = plan_for(&[bound("disk1", d1), bound("usb", usb)], &scope).unwrap();
    assert!(disk_plan(&p, "disk1").actions.is_empty());
    assert!(!disk_plan(&p, "usb").actions.is_empty());
    let bad = Scope {
        only: vec!["disk7".into()],
        ..Scope::default()
    };
    assert!(matches!(
        plan_for(&[], &bad),
        Err(PlanError::UnknownDisk {
            option: "--only",
            ..
        })
    ));
}

#[test]
fn luks_pool_is_formatted_then_filled() {
    let mut spec = spec();
    let pool = &mut spec.disks[1].partitions[3];
    pool.encrypt = crate::spec::Encryption::Luks2;
    pool.key_file = Some("/root/k".into());
    let (d1, _) = fresh();
    let p = plan(
        &spec,
        &[bound("disk1", d1)],
        &Scope {
            only: vec!["disk1".into()],
            ..Scope::default()
        },
        &mut counter(),
    )
    .unwrap();
    let a = &disk_plan(&p, "disk1").actions;
    let i = a
        .iter()
        .position(|a| matches!(a, Action::LuksFormat { .. }))
        .unwrap();
    assert!(matches!(
        &a[i + 1],
        Action::Mkfs {
            fs: FsKind::Btrfs,
            in_luks: true,
            ..
        }
    ));
    assert!(matches!(
        &a[i + 2],
        Action::CreateSubvolume { in_luks: true, .. }
    ));
}

#[test]
fn quotas_only_when_asked() {
    let mut spec = spec();
    spec.disks[1].partitions[3].quotas = true;
    let (d1, _) = fresh();
    let p = plan(
        &spec,
        &[bound("disk1", d1)],
        &Scope {
            only: vec!["disk1".into()],
            ..Scope::default()
        },
        &mut counter(),
    )
    .unwrap();
    assert!(matches!(
        disk_plan(&p, "disk1").actions.last(),
        Some(Action::EnableQuotas { .. })
    ));
}

#[test]
fn four_k_sectors_keep_mib_alignment() {
    let mut d1 = blank_device("nvme1n1", TB2);
    d1.sector_size = 4096;
    let p = plan_for(
        &[bound("disk1", d1)],
        &Scope {
            only: vec!["disk1".into()],
            ..Scope::default()
        },
    )
    .unwrap();
    let Action::CreateGpt { partitions, .. } = &disk_plan(&p, "disk1").actions[0] else {
        panic!()
    };
    assert_eq!(partitions[0].first_lba, 256);
    assert_eq!(partitions[0].last_lba, 256 + 131_072 - 1);
    for p in partitions {
        assert_eq!(p.first_lba % 256, 0, "{p:?}");
    }
}

#[test]
fn a_fat_too_small_for_4096_byte_sectors_is_refused_before_anything_is_written() {
    let text = include_str!("../../configs/atlantis.toml");
    // disk1's ESP (the second 512MiB in the file) at 100 MiB: FAT32 in 512-byte sectors.
    let at = text.match_indices("size = \"512MiB\"").nth(1).unwrap().0;
    let text = format!(
        "{}size = \"100MiB\"{}",
        &text[..at],
        &text[at + "size = \"512MiB\"".len()..]
    );
    let spec = crate::spec::Spec::parse(std::path::Path::new("small-esp.toml"), &text).unwrap();
    let scope = Scope {
        only: vec!["disk1".into()],
        ..Scope::default()
    };
    let d512 = blank_device("sdb", TB2);
    assert!(plan(&spec, &[bound("disk1", d512)], &scope, &mut counter()).is_ok());
    let mut d4k = blank_device("nvme1n1", TB2);
    d4k.sector_size = 4096;
    let err = plan(&spec, &[bound("disk1", d4k)], &scope, &mut counter()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk1 (/dev/nvme1n1) has 4096-byte sectors, and partition 1 \"ESP1\" (100 MiB) is too \
         small for FAT32 in such sectors: it needs at least 264 MiB; make it bigger in the spec"
    );
}

#[test]
fn plan_serialises_to_json() {
    let (d1, usb) = fresh();
    let p = plan_for(&[bound("disk1", d1), bound("usb", usb)], &Scope::default()).unwrap();
    let v: serde_json::Value = serde_json::to_value(&p).unwrap();
    assert_eq!(v["disks"][0]["actions"][0]["action"], "create-gpt");
    assert_eq!(
        v["disks"][0]["actions"][0]["partitions"][3]["name"],
        "LINPOOL"
    );
}

fn orphan(offset: u64, fstype: &str, label: &str) -> Orphan {
    Orphan {
        offset,
        fs: Filesystem {
            fstype: fstype.into(),
            label: Some(label.into()),
            uuid: None,
        },
    }
}

#[test]
fn filesystems_behind_an_erased_table_are_refused_without_wipe() {
    let (mut d1, _) = fresh();
    d1.orphans = vec![
        orphan(1 << 20, "vfat", "ESP1"),
        orphan(513 << 20, "ext4", "BOOT"),
    ];
    let err = plan_for(&[bound("disk1", d1.clone())], &Scope::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk1 (/dev/loop1) already holds filesystems that no partition table lists (was the table erased?): a vfat filesystem labelled \"ESP1\" at 1 MiB, a ext4 filesystem labelled \"BOOT\" at 513 MiB, which provisioning would destroy; to replace it, pass --wipe disk1 (or set wipe = true for disk1 in the spec) and confirm"
    );

    // An empty GPT over them is no better.
    let mut in_gpt = d1.clone();
    in_gpt.orphans.truncate(1);
    in_gpt.table = Table::Gpt(Gpt {
        disk_guid: "X".into(),
        partitions: vec![],
    });
    let err = plan_for(&[bound("disk1", in_gpt)], &Scope::default()).unwrap_err();
    assert!(
        err.to_string().contains(
            "already holds a filesystem that the disk's empty GPT does not list (was the table erased?): a vfat filesystem labelled \"ESP1\" at 1 MiB"
        ),
        "{err}"
    );

    // With leave to wipe: said, then the usual fresh layout.
    let scope = Scope {
        wipe: vec!["disk1".into()],
        ..Scope::default()
    };
    let p = plan_for(&[bound("disk1", d1)], &scope).unwrap();
    let dp = disk_plan(&p, "disk1");
    assert!(
        dp.notes[0].starts_with("DESTROYS filesystems that no partition table lists"),
        "{:?}",
        dp.notes
    );
    assert!(matches!(dp.actions[0], Action::WipeDisk { .. }));
    assert!(matches!(dp.actions[1], Action::CreateGpt { .. }));
}

#[test]
fn a_read_only_disk_is_refused_when_there_is_something_to_write() {
    let (mut d1, _) = fresh();
    d1.read_only = true;
    let err = plan_for(&[bound("disk1", d1.clone())], &Scope::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "disk1 (/dev/loop1) is read-only: the kernel refuses writes to it (a write-protect switch, `blockdev --setro`, or a loop device attached with `losetup -r`); make it writable (`blockdev --setrw /dev/loop1`) or bind another device"
    );
    // Finished already: nothing to write, nothing to refuse.
    d1.read_only = false;
    let p = plan_for(&[bound("disk1", d1.clone())], &Scope::default()).unwrap();
    let mut done = finished(&d1, disk_plan(&p, "disk1"));
    done.read_only = true;
    let again = plan_for(&[bound("disk1", done)], &Scope::default()).unwrap();
    assert!(again.is_empty(), "{}", again.render());
}

#[test]
fn partitions_start_where_the_plan_puts_them() {
    let spec = spec();
    let disk1 = spec.disk("disk1").unwrap();
    assert_eq!(
        layout::starts(disk1, TB2, 512),
        [1 << 20, 513 << 20, 1537 << 20, (1537 << 20) + (64 << 30)]
    );
    assert!(
        layout::starts(disk1, 1 << 30, 512).is_empty(),
        "does not fit"
    );
}
