//! An /etc/fstab for one root subvolume of the spec (pure): which filesystem goes where,
//! by UUID, with the spec's mount options. The UUIDs come from the probed disks. A
//! filesystem inside LUKS2 is named by its container's UUID (`/dev/mapper/luks-<UUID>`),
//! and the root gets an /etc/crypttab that opens each container under that name
//! ([`super::crypttab`]): both stay valid as long as the container keeps its UUID.

use std::fmt::Write as _;

use crate::plan::Binding;
use crate::probe::{Device, Table};
use crate::spec::{Encryption, FsKind, Spec};

/// What the probe found in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionFs {
    pub fstype: String,
    pub uuid: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FstabError {
    #[error("`{root}` is not a root subvolume of the spec (roots: {roots})")]
    NotARoot { root: String, roots: String },
    #[error(
        "disk {disk} was not found, but partition \"{partition}\" on it has mount point {mount}"
    )]
    DiskMissing {
        disk: String,
        partition: String,
        mount: String,
    },
    #[error("partition {number} \"{partition}\" of {disk} should hold {want} but holds {found}: provision it first")]
    Mismatch {
        disk: String,
        number: u32,
        partition: String,
        want: String,
        found: String,
    },
}

/// An /etc/fstab and, when a filesystem it names is inside LUKS2, an /etc/crypttab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tabs {
    pub fstab: String,
    pub crypttab: Option<String>,
}

/// The fstab text. `found(disk, number)` is what is in partition `number` (1-based, spec
/// order) of that disk; `None` for a disk that was not found. Partitions on a disk holding
/// neither the root pool nor an ESP (the USB backup drive) get `nofail`: the machine must
/// boot without it.
pub fn render(
    spec: &Spec,
    root: &str,
    found: &dyn Fn(&str, u32) -> Option<Option<PartitionFs>>,
) -> Result<String, FstabError> {
    render_tabs(spec, root, found).map(|t| t.fstab)
}

/// [`render`], with the crypttab its LUKS2 containers need.
pub fn render_tabs(
    spec: &Spec,
    root: &str,
    found: &dyn Fn(&str, u32) -> Option<Option<PartitionFs>>,
) -> Result<Tabs, FstabError> {
    let roots: Vec<&str> = spec
        .disks
        .iter()
        .flat_map(|d| &d.partitions)
        .flat_map(|p| &p.subvolumes)
        .filter(|s| s.root)
        .map(|s| s.name.as_str())
        .collect();
    if !roots.contains(&root) {
        return Err(FstabError::NotARoot {
            root: root.to_owned(),
            roots: roots.join(", "),
        });
    }
    let mut lines: Vec<[String; 6]> = Vec::new();
    let mut root_line = None;
    let mut left_out: Vec<String> = Vec::new();
    let mut containers: Vec<super::crypttab::Container> = Vec::new();
    for disk in &spec.disks {
        let essential = disk.partitions.iter().any(|p| {
            p.part_type == crate::spec::PartType::Esp || p.subvolumes.iter().any(|s| s.name == root)
        });
        for (i, part) in disk.partitions.iter().enumerate() {
            let number = i as u32 + 1;
            let Some(fs) = part.fs else { continue };
            let wanted_here = fs == FsKind::Swap
                || part.mount.is_some()
                || part
                    .subvolumes
                    .iter()
                    .any(|s| s.mount.is_some() || s.name == root);
            if !wanted_here {
                continue;
            }
            let luks = part.encrypt == Encryption::Luks2;
            // What blkid sees in the partition: the container, or the filesystem itself.
            let want = if luks { "crypto_LUKS" } else { fs.blkid_type() };
            let mount_of = || {
                part.mount
                    .clone()
                    .or_else(|| part.subvolumes.iter().find_map(|s| s.mount.clone()))
                    .unwrap_or_else(|| "swap".into())
            };
            let problem = match found(&disk.id, number) {
                None => Err(FstabError::DiskMissing {
                    disk: disk.id.clone(),
                    partition: part.name.clone(),
                    mount: mount_of(),
                }),
                Some(Some(PartitionFs {
                    fstype,
                    uuid: Some(uuid),
                })) if fstype == want => Ok(uuid),
                Some(other) => Err(FstabError::Mismatch {
                    disk: disk.id.clone(),
                    number,
                    partition: part.name.clone(),
                    want: want.to_owned(),
                    found: other.map_or("nothing".to_owned(), |f| f.fstype),
                }),
            };
            let uuid = match problem {
                Ok(uuid) => uuid,
                // The machine boots without the backup drive: its lines wait, said so.
                Err(err) if !essential => {
                    left_out.push(format!("# {} left out: {err}", mount_of()));
                    continue;
                }
                Err(err) => return Err(err),
            };
            let spec_opts = |extra: &[String]| -> String {
                let mut opts: Vec<String> = extra.to_vec();
                opts.extend(part.mount_options.iter().cloned());
                if !essential && !opts.iter().any(|o| o == "nofail") {
                    opts.push("nofail".into());
                }
                if opts.is_empty() {
                    "defaults".into()
                } else {
                    opts.join(",")
                }
            };
            let source = if luks {
                let name = crate::cryptsetup::system_name(&uuid);
                containers.push(super::crypttab::Container {
                    name: name.clone(),
                    uuid: uuid.clone(),
                    essential,
                });
                format!("/dev/mapper/{name}")
            } else {
                format!("UUID={uuid}")
            };
            match fs {
                FsKind::Swap => lines.push([
                    source,
                    "none".into(),
                    "swap".into(),
                    spec_opts(&[]),
                    "0".into(),
                    "0".into(),
                ]),
                FsKind::Btrfs => {
                    if let Some(mount) = &part.mount {
                        lines.push([
                            source.clone(),
                            mount.clone(),
                            "btrfs".into(),
                            spec_opts(&[]),
                            "0".into(),
                            "0".into(),
                        ]);
                    }
                    for sv in &part.subvolumes {
                        let mut extra = vec![format!("subvol={}", sv.name)];
                        extra.extend(sv.mount_options.iter().cloned());
                        let line = |mount: &str| {
                            [
                                source.clone(),
                                mount.to_owned(),
                                "btrfs".into(),
                                spec_opts(&extra),
                                "0".into(),
                                "0".into(),
                            ]
                        };
                        if sv.name == root {
                            root_line = Some(line("/"));
                        } else if let Some(mount) = &sv.mount {
                            lines.push(line(mount));
                        }
                    }
                }
                _ => {
                    let pass = if fs == FsKind::Ntfs { "0" } else { "2" };
                    lines.push([
                        source,
                        part.mount.clone().unwrap_or_default(),
                        fs.blkid_type().into(),
                        spec_opts(&[]),
                        "0".into(),
                        pass.into(),
                    ]);
                }
            }
        }
    }
    // The root first; then parents before children (/boot before /boot/efi), swap last.
    lines.sort_by(|a, b| a[1].cmp(&b[1]));
    if let Some(line) = root_line {
        lines.insert(0, line);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "# /etc/fstab of {root} on {}, written by lifeboat from the machine spec.\n\
         # <file system> <mount point> <type> <options> <dump> <pass>\n",
        spec.machine.name
    );
    for l in &lines {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {} {}",
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            l[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
    for line in &left_out {
        let _ = writeln!(out, "{line}");
    }
    let crypttab =
        (!containers.is_empty()).then(|| super::crypttab::render(spec, root, &containers));
    Ok(Tabs {
        fstab: out,
        crypttab,
    })
}

/// What is in partition `number` of the disk bound to `id`, for [`render`].
pub fn lookup(bindings: &[Binding]) -> impl Fn(&str, u32) -> Option<Option<PartitionFs>> + '_ {
    move |id, number| {
        let binding = crate::plan::bind::bound(bindings, id)?;
        Some(partition(&binding.device, number))
    }
}

fn partition(device: &Device, number: u32) -> Option<PartitionFs> {
    let Table::Gpt(gpt) = &device.table else {
        return None;
    };
    let fs = gpt
        .partitions
        .iter()
        .find(|p| p.number == number)?
        .fs
        .as_ref()?;
    Some(PartitionFs {
        fstype: fs.fstype.clone(),
        uuid: fs.uuid.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn atlantis() -> Spec {
        Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml")).unwrap()
    }

    /// Every partition holds what the spec says, with a UUID naming disk and number.
    fn provisioned(disk: &str, n: u32) -> Option<Option<PartitionFs>> {
        let spec = atlantis();
        let part = &spec.disk(disk)?.partitions[n as usize - 1];
        Some(Some(PartitionFs {
            fstype: part.fs?.blkid_type().to_owned(),
            uuid: Some(format!("{disk}-p{n}")),
        }))
    }

    #[test]
    fn atlantis_fstab_for_tumbleweed() {
        let text = render(&atlantis(), "@rootTW", &provisioned).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        let expected: Vec<Vec<&str>> = [
            "UUID=disk1-p4 / btrfs subvol=@rootTW,compress=zstd:1,noatime 0 0",
            "UUID=disk1-p4 /.snapshots btrfs subvol=@snapshots,compress=zstd:1,noatime 0 0",
            "UUID=disk1-p2 /boot ext4 defaults 0 2",
            "UUID=disk0-p1 /boot/efi vfat defaults 0 2",
            "UUID=disk1-p1 /boot/efi2 vfat umask=0077,nofail 0 2",
            "UUID=disk1-p4 /home btrfs subvol=@home,compress=zstd:1,noatime 0 0",
            "UUID=disk1-p4 /mnt/Atlantis-meta btrfs subvol=Atlantis-meta,compress=zstd:1,noatime 0 0",
            "UUID=usb-p2 /mnt/cushion ext4 nofail 0 2",
            "UUID=usb-p3 /mnt/linbkup btrfs nofail 0 0",
            "UUID=disk1-p3 none swap defaults 0 0",
        ]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
        assert_eq!(rows, expected, "{text}");
        assert!(
            !text.contains("@rootF41"),
            "other roots are not mounted: {text}"
        );
    }

    fn laptop() -> Spec {
        Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/examples/laptop.toml"))
            .unwrap()
    }

    /// The laptop as blkid sees it once provisioned: the pool partition holds a LUKS
    /// container, the rest what the spec says.
    fn laptop_provisioned(disk: &str, n: u32) -> Option<Option<PartitionFs>> {
        let spec = laptop();
        let part = &spec.disk(disk)?.partitions[n as usize - 1];
        let fstype = if part.encrypt == Encryption::Luks2 {
            "crypto_LUKS"
        } else {
            part.fs?.blkid_type()
        };
        Some(Some(PartitionFs {
            fstype: fstype.to_owned(),
            uuid: Some(format!("{disk}-p{n}")),
        }))
    }

    #[test]
    fn an_encrypted_pool_is_named_by_its_container_and_gets_a_crypttab() {
        let tabs = render_tabs(&laptop(), "@debian", &laptop_provisioned).unwrap();
        let rows: Vec<Vec<&str>> = tabs
            .fstab
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        let expected: Vec<Vec<&str>> = [
            "/dev/mapper/luks-nvme-p4 / btrfs subvol=@debian,compress=zstd:3,noatime 0 0",
            "/dev/mapper/luks-nvme-p4 /.snapshots btrfs subvol=@snapshots,compress=zstd:3,noatime 0 0",
            "UUID=nvme-p2 /boot ext4 defaults 0 2",
            "UUID=nvme-p1 /boot/efi vfat umask=0077 0 2",
            "/dev/mapper/luks-nvme-p4 /home btrfs subvol=@home,compress=zstd:3,noatime 0 0",
            "UUID=backup-p1 /mnt/backup btrfs nofail 0 0",
            "/dev/mapper/luks-nvme-p4 /srv/lark-meta btrfs subvol=@lark-meta,compress=zstd:3,noatime 0 0",
            "UUID=nvme-p3 none swap defaults 0 0",
        ]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
        assert_eq!(rows, expected, "{}", tabs.fstab);
        let crypttab = tabs.crypttab.expect("a crypttab");
        let rows: Vec<Vec<&str>> = crypttab
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            vec![vec!["luks-nvme-p4", "UUID=nvme-p4", "none", "luks"]],
            "{crypttab}"
        );

        // A pool that is not a container yet is refused like any other mismatch.
        let plain = |d: &str, n: u32| {
            if (d, n) == ("nvme", 4) {
                Some(Some(PartitionFs {
                    fstype: "btrfs".into(),
                    uuid: Some("x".into()),
                }))
            } else {
                laptop_provisioned(d, n)
            }
        };
        assert_eq!(
            render(&laptop(), "@debian", &plain).unwrap_err().to_string(),
            "partition 4 \"cryptpool\" of nvme should hold crypto_LUKS but holds btrfs: provision it first"
        );
        // Atlantis has no container: no crypttab.
        assert_eq!(
            render_tabs(&atlantis(), "@rootTW", &provisioned)
                .unwrap()
                .crypttab,
            None
        );
    }

    #[test]
    fn refusals_name_the_partition() {
        let spec = atlantis();
        let err = render(&spec, "@home", &provisioned).unwrap_err();
        assert!(
            err.to_string().contains("@rootTW, @rootF41, @rootNobara"),
            "{err}"
        );

        // The backup drive's partitions are not needed to boot: left out, with a comment.
        let no_usb = |d: &str, n: u32| if d == "usb" { None } else { provisioned(d, n) };
        let text = render(&spec, "@rootTW", &no_usb).unwrap();
        assert!(!text.contains("UUID=usb"), "{text}");
        assert!(
            text.contains(
                "# /mnt/cushion left out: disk usb was not found, but partition \"CUSHION\""
            ),
            "{text}"
        );
        let blank_usb = |d: &str, n: u32| {
            if d == "usb" {
                Some(None)
            } else {
                provisioned(d, n)
            }
        };
        let text = render(&spec, "@rootTW", &blank_usb).unwrap();
        assert!(
            text.contains("# /mnt/linbkup left out: partition 3 \"LINBKUP\" of usb should hold btrfs but holds nothing"),
            "{text}"
        );

        let blank_boot = |d: &str, n: u32| {
            if (d, n) == ("disk1", 2) {
                Some(None)
            } else {
                provisioned(d, n)
            }
        };
        let err = render(&spec, "@rootTW", &blank_boot)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "partition 2 \"boot\" of disk1 should hold ext4 but holds nothing: provision it first"
        );
    }
}
