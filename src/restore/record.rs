//! The record of the machine's filesystems that `lifeboat backup-boot` keeps beside the copy
//! of /boot and the ESPs (`<meta>/boot/filesystems.toml`, e.g. in myhost-meta).
//!
//! A restore recreates each filesystem with its recorded UUID (and each partition with its
//! recorded GUID), so that what the restored system names by UUID — /etc/fstab, the
//! loader entries' `root=UUID=…`, an initramfs's built-in root — finds its filesystem
//! without any file being rewritten. Without a record, new UUIDs are made and each root's
//! fstab is rewritten from the spec.

use serde::{Deserialize, Serialize};

use crate::plan::{Action, Plan};

/// Where the boot backup lives inside the `role = "meta"` subvolume (e.g. myhost-meta).
pub const BOOT_DIR: &str = "boot";
/// In [`BOOT_DIR`]: the filesystem record.
pub const RECORD_FILE: &str = "filesystems.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When it was written (UTC, `2026-11-20 03:00:00 UTC`).
    pub written: String,
    #[serde(default, rename = "filesystem")]
    pub filesystems: Vec<Recorded>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The spec's disk id and 1-based partition number.
    pub disk: String,
    pub number: u32,
    pub fstype: String,
    pub label: Option<String>,
    /// As blkid prints it (`ABCD-1234` for FAT).
    pub uuid: String,
    /// The GPT unique partition GUID, upper case.
    pub part_guid: Option<String>,
    /// The filesystem inside the partition's LUKS2 container (the partition itself has
    /// its own entry, `crypto_LUKS` with the container's UUID, which the roots' crypttab
    /// and fstab name).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_luks: bool,
}

impl Record {
    pub fn to_toml(&self) -> String {
        format!(
            "# Written by `lifeboat backup-boot`: the UUIDs a restore gives the filesystems again.\n{}",
            toml::to_string(self).unwrap_or_default()
        )
    }

    pub fn parse(text: &str) -> Result<Record, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn find(&self, disk: &str, number: u32) -> Option<&Recorded> {
        self.find_in(disk, number, false)
    }

    fn find_in(&self, disk: &str, number: u32, in_luks: bool) -> Option<&Recorded> {
        self.filesystems
            .iter()
            .find(|r| r.disk == disk && r.number == number && r.in_luks == in_luks)
    }

    /// Give the plan's new filesystems and partitions their recorded UUIDs and GUIDs where
    /// the filesystem type matches. Returns what was taken over, one line each.
    pub fn apply_to(&self, plan: &mut Plan) -> Vec<String> {
        let mut taken = Vec::new();
        for disk in &mut plan.disks {
            for action in &mut disk.actions {
                match action {
                    Action::LuksFormat {
                        partition, uuid, ..
                    } => {
                        if let Some(r) = self
                            .find(&disk.id, partition.number)
                            .filter(|r| r.fstype == "crypto_LUKS")
                        {
                            *uuid = Some(r.uuid.clone());
                            taken.push(format!(
                                "{} partition {} (LUKS2 container): UUID {}",
                                disk.id, partition.number, r.uuid
                            ));
                        }
                    }
                    Action::Mkfs {
                        partition,
                        fs,
                        uuid,
                        in_luks,
                        ..
                    } => {
                        if let Some(r) = self
                            .find_in(&disk.id, partition.number, *in_luks)
                            .filter(|r| r.fstype == fs.blkid_type())
                        {
                            *uuid = Some(r.uuid.clone());
                            taken.push(format!(
                                "{} partition {} ({}): filesystem UUID {}",
                                disk.id, partition.number, r.fstype, r.uuid
                            ));
                        }
                    }
                    Action::CreateGpt { partitions, .. } => {
                        for p in partitions.iter_mut() {
                            if let Some(guid) = self
                                .find(&disk.id, p.number)
                                .and_then(|r| r.part_guid.clone())
                            {
                                p.part_guid = guid.to_uppercase();
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        taken
    }
}

/// `text` with each old UUID replaced by its new one (either case); `None` when none occurs.
pub fn rename_uuids(text: &str, renamed: &[(String, String)]) -> Option<String> {
    let mut out = text.to_owned();
    for (old, new) in renamed {
        for variant in [old.to_lowercase(), old.to_uppercase()] {
            out = out.replace(&variant, new);
        }
    }
    (out != text).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testutil;

    #[test]
    fn renamed_uuids_are_replaced_in_any_case() {
        let r = vec![("abcd-ef".to_owned(), "1234-56".to_owned())];
        assert_eq!(
            rename_uuids("root=UUID=abcd-ef x UUID=ABCD-EF\n", &r).unwrap(),
            "root=UUID=1234-56 x UUID=1234-56\n"
        );
        assert_eq!(rename_uuids("nothing\n", &r), None);
    }

    #[test]
    fn the_record_reads_back_and_its_uuids_go_into_a_fresh_plan() {
        let record = Record {
            written: "2026-11-20 03:00:00 UTC".into(),
            filesystems: vec![
                Recorded {
                    disk: "disk1".into(),
                    number: 4,
                    fstype: "btrfs".into(),
                    label: Some("LINPOOL".into()),
                    uuid: "0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e".into(),
                    part_guid: Some("8d4c1d1e-0000-4000-8000-000000000004".into()),
                    in_luks: false,
                },
                Recorded {
                    disk: "disk1".into(),
                    number: 1,
                    fstype: "vfat".into(),
                    label: Some("ESP1".into()),
                    uuid: "ABCD-1234".into(),
                    part_guid: None,
                    in_luks: false,
                },
                // The type changed since: not taken over.
                Recorded {
                    disk: "disk1".into(),
                    number: 2,
                    fstype: "xfs".into(),
                    label: None,
                    uuid: "x".into(),
                    part_guid: None,
                    in_luks: false,
                },
            ],
        };
        let back = Record::parse(&record.to_toml()).unwrap();
        assert_eq!(back, record);

        let spec = testutil::spec();
        let disk1 = testutil::blank_device("/dev/vdb", 2_000_000_000_000);
        let bindings = vec![crate::plan::Binding {
            id: "disk1".into(),
            device: disk1,
            how: crate::plan::BoundBy::Explicit,
        }];
        let scope = crate::plan::Scope {
            only: vec!["disk1".into()],
            wipe: vec![],
        };
        let mut plan =
            crate::plan::plan(&spec, &bindings, &scope, &mut testutil::counter()).unwrap();
        let taken = back.apply_to(&mut plan);
        assert_eq!(taken.len(), 2, "{taken:?}");
        let uuids: Vec<(u32, Option<&str>)> = plan.disks[0]
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Mkfs {
                    partition, uuid, ..
                } => Some((partition.number, uuid.as_deref())),
                _ => None,
            })
            .collect();
        assert_eq!(
            uuids,
            [
                (1, Some("ABCD-1234")),
                (2, None),
                (3, None),
                (4, Some("0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e"))
            ]
        );
        let Action::CreateGpt { partitions, .. } = &plan.disks[0].actions[0] else {
            panic!("{:?}", plan.disks[0].actions[0]);
        };
        assert_eq!(
            partitions[3].part_guid,
            "8D4C1D1E-0000-4000-8000-000000000004"
        );
    }

    #[test]
    fn an_encrypted_pool_gets_its_container_and_inner_uuids_back() {
        let text = "written = \"2026-11-20 03:00:00 UTC\"\n\
            [[filesystem]]\ndisk = \"disk1\"\nnumber = 4\nfstype = \"crypto_LUKS\"\n\
            uuid = \"11111111-2222-4333-8444-555555555555\"\n\
            [[filesystem]]\ndisk = \"disk1\"\nnumber = 4\nfstype = \"btrfs\"\n\
            label = \"LINPOOL\"\nuuid = \"0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e\"\nin_luks = true\n";
        let record = Record::parse(text).unwrap();
        assert_eq!(Record::parse(&record.to_toml()).unwrap(), record);

        let mut spec = testutil::spec();
        let pool = &mut spec.disks[1].partitions[3];
        pool.encrypt = crate::spec::Encryption::Luks2;
        pool.key_file = Some("/root/k".into());
        let disk1 = testutil::blank_device("/dev/vdb", 2_000_000_000_000);
        let bindings = vec![crate::plan::Binding {
            id: "disk1".into(),
            device: disk1,
            how: crate::plan::BoundBy::Explicit,
        }];
        let scope = crate::plan::Scope {
            only: vec!["disk1".into()],
            wipe: vec![],
        };
        let mut plan =
            crate::plan::plan(&spec, &bindings, &scope, &mut testutil::counter()).unwrap();
        let taken = record.apply_to(&mut plan);
        assert_eq!(taken.len(), 2, "{taken:?}");
        let luks = plan.disks[0].actions.iter().find_map(|a| match a {
            Action::LuksFormat { uuid, .. } => Some(uuid.clone()),
            _ => None,
        });
        assert_eq!(
            luks,
            Some(Some("11111111-2222-4333-8444-555555555555".into()))
        );
        let inner = plan.disks[0].actions.iter().find_map(|a| match a {
            Action::Mkfs {
                partition,
                uuid,
                in_luks: true,
                ..
            } if partition.number == 4 => Some(uuid.clone()),
            _ => None,
        });
        assert_eq!(
            inner,
            Some(Some("0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e".into()))
        );
    }
}
