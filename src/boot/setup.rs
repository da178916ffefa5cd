//! What provisioning does once the disks are written (pure): an /etc/fstab into each root
//! subvolume, systemd-boot onto the first ESP that is there, the other ESPs mirrored from
//! it, and the UEFI boot entries. What cannot be done here and now becomes a notice that
//! names the command doing it later, never a silent gap.

use crate::spec::{Encryption, PartType, Spec};

/// What is known about the machine when the plan is made.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Spec disks the provisioning plan writes to.
    pub written: Vec<String>,
    /// Spec disks bound to a device: (id, the device is a loop device).
    pub present: Vec<(String, bool)>,
    /// This system carries systemd-boot ([`super::loader::SYSTEMD_BOOT`]).
    pub loader_available: bool,
    /// efivarfs is mounted: the firmware's boot variables can be written.
    pub efivarfs: bool,
}

/// A partition of the spec, by disk and 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAt {
    pub disk: String,
    pub number: u32,
    /// The label, else the partition name (`ESP0`, `LINPOOL`).
    pub name: String,
}

impl std::fmt::Display for PartAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} partition {})", self.name, self.disk, self.number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write /etc/fstab into each of these root subvolumes of the pool that exists and has
    /// none yet (an fstab already there is the installed system's and is kept).
    Fstab { pool: PartAt, roots: Vec<String> },
    /// Put systemd-boot (and a loader.conf, if missing) on this ESP.
    Loader { esp: PartAt },
    /// Make `to` a mirror of `from` (esp-sync).
    Mirror { from: PartAt, to: PartAt },
    /// One boot entry per ESP, first in BootOrder (boot-entries).
    Entries,
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Fstab { pool, roots } => format!(
                "write /etc/fstab into {} on {pool} (where it has none)",
                roots.join(", ")
            ),
            Step::Loader { esp } => {
                format!("install systemd-boot as {} on {esp}", super::loader::ON_ESP)
            }
            Step::Mirror { from, to } => format!("mirror {from} onto {to} (esp-sync)"),
            Step::Entries => {
                "write the UEFI boot entries for the ESPs, first in BootOrder (boot-entries)".into()
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setup {
    pub steps: Vec<Step>,
    pub notices: Vec<String>,
}

impl Setup {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.notices.is_empty()
    }
}

/// The boot setup that follows a provisioning run which wrote `facts.written`. Nothing
/// when no disk holding an ESP or a root subvolume was written (`--only usb`).
pub fn plan(spec: &Spec, facts: &Facts) -> Setup {
    let mut setup = Setup::default();
    let holds_boot = |id: &str| {
        spec.disk(id).is_some_and(|d| {
            d.partitions
                .iter()
                .any(|p| p.part_type == PartType::Esp || p.subvolumes.iter().any(|s| s.root))
        })
    };
    if !facts.written.iter().any(|id| holds_boot(id)) {
        return setup;
    }
    let present = |id: &str| facts.present.iter().find(|(p, _)| p == id);

    // The root subvolumes' fstab.
    for disk in &spec.disks {
        for (i, part) in disk.partitions.iter().enumerate() {
            let roots: Vec<String> = part
                .subvolumes
                .iter()
                .filter(|s| s.root)
                .map(|s| s.name.clone())
                .collect();
            if roots.is_empty() {
                continue;
            }
            let at = part_at(&disk.id, i, part);
            if part.encrypt == Encryption::Luks2 {
                setup.notices.push(format!(
                    "{at} is encrypted: write each root's /etc/fstab and /etc/crypttab yourself \
                     (`lifeboat fstab` prints the fstab)"
                ));
            } else if present(&disk.id).is_none() {
                setup.notices.push(format!(
                    "{} was not found: no /etc/fstab is written into {}",
                    disk.id,
                    roots.join(", ")
                ));
            } else {
                setup.steps.push(Step::Fstab { pool: at, roots });
            }
        }
    }

    // The ESPs, the preserved disk's (ESP0) first.
    let mut disks: Vec<_> = spec.disks.iter().collect();
    disks.sort_by_key(|d| !d.preserve);
    let mut esps = Vec::new();
    for disk in disks {
        for (i, part) in disk.partitions.iter().enumerate() {
            if part.part_type == PartType::Esp {
                esps.push((part_at(&disk.id, i, part), present(&disk.id)));
            }
        }
    }
    let mut here: Vec<(PartAt, bool)> = Vec::new();
    for (esp, found) in esps {
        match found {
            Some((_, is_loop)) => here.push((esp, *is_loop)),
            None => setup.notices.push(format!(
                "{} was not found: {esp} gets no loader; run `lifeboat esp-sync` and \
                 `lifeboat boot-entries` once it is back",
                esp.disk
            )),
        }
    }
    let Some((first, _)) = here.first() else {
        return setup;
    };
    if facts.loader_available {
        setup.steps.push(Step::Loader { esp: first.clone() });
        for (other, _) in &here[1..] {
            setup.steps.push(Step::Mirror {
                from: first.clone(),
                to: other.clone(),
            });
        }
    } else {
        setup.notices.push(format!(
            "this system has no systemd-boot ({}): the ESPs get no loader; install it on \
             {first} yourself, then run `lifeboat esp-sync`",
            super::loader::SYSTEMD_BOOT
        ));
    }

    // The firmware's entries: only for real disks, all of them there, on a UEFI boot.
    if !facts.efivarfs {
        setup.notices.push(
            "no efivarfs (not booted through UEFI): no boot entries are written; run \
             `lifeboat boot-entries` from a UEFI boot"
                .into(),
        );
    } else if let Some((esp, _)) = here.iter().find(|(_, is_loop)| *is_loop) {
        setup.notices.push(format!(
            "{esp} is on a loop device, which the firmware cannot boot: no boot entries are \
             written"
        ));
    } else if here.len() < spec_esp_count(spec) {
        setup.notices.push(
            "not every ESP is there: no boot entries are written; run `lifeboat boot-entries` \
             when they are"
                .into(),
        );
    } else {
        setup.steps.push(Step::Entries);
    }
    setup
}

fn part_at(disk: &str, index: usize, part: &crate::spec::Partition) -> PartAt {
    PartAt {
        disk: disk.to_owned(),
        number: index as u32 + 1,
        name: part.label.clone().unwrap_or_else(|| part.name.clone()),
    }
}

fn spec_esp_count(spec: &Spec) -> usize {
    spec.disks
        .iter()
        .flat_map(|d| &d.partitions)
        .filter(|p| p.part_type == PartType::Esp)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn atlantis() -> Spec {
        Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml")).unwrap()
    }

    fn facts(written: &[&str], present: &[&str]) -> Facts {
        Facts {
            written: written.iter().map(|s| s.to_string()).collect(),
            present: present.iter().map(|s| (s.to_string(), false)).collect(),
            loader_available: true,
            efivarfs: true,
        }
    }

    fn esp(n: u8) -> PartAt {
        PartAt {
            disk: format!("disk{n}"),
            number: 1,
            name: format!("ESP{n}"),
        }
    }

    #[test]
    fn a_whole_machine_gets_fstabs_loader_mirror_and_entries() {
        let setup = plan(
            &atlantis(),
            &facts(&["disk1", "usb"], &["disk0", "disk1", "usb"]),
        );
        assert_eq!(setup.notices, Vec::<String>::new());
        assert_eq!(
            setup.steps,
            [
                Step::Fstab {
                    pool: PartAt {
                        disk: "disk1".into(),
                        number: 4,
                        name: "LINPOOL".into()
                    },
                    roots: vec!["@rootTW".into(), "@rootF41".into(), "@rootNobara".into()],
                },
                Step::Loader { esp: esp(0) },
                Step::Mirror {
                    from: esp(0),
                    to: esp(1)
                },
                Step::Entries,
            ]
        );
        assert_eq!(
            setup.steps[2].describe(),
            "mirror ESP0 (disk0 partition 1) onto ESP1 (disk1 partition 1) (esp-sync)"
        );
    }

    #[test]
    fn only_the_backup_drive_needs_no_boot_setup() {
        assert!(plan(&atlantis(), &facts(&["usb"], &["disk0", "disk1", "usb"])).is_empty());
    }

    #[test]
    fn without_disk0_the_loader_goes_on_esp1_and_entries_wait() {
        let setup = plan(&atlantis(), &facts(&["disk1"], &["disk1", "usb"]));
        assert!(setup.steps.contains(&Step::Loader { esp: esp(1) }));
        assert!(!setup.steps.iter().any(|s| matches!(s, Step::Mirror { .. })));
        assert!(!setup.steps.contains(&Step::Entries));
        assert_eq!(setup.notices.len(), 2, "{:?}", setup.notices);
        assert!(setup.notices[0].starts_with("disk0 was not found: ESP0 (disk0 partition 1)"));
        assert!(setup.notices[1].starts_with("not every ESP is there"));
    }

    #[test]
    fn loop_devices_no_efivarfs_and_no_loader_are_notices() {
        let mut f = facts(&["disk1"], &["disk0", "disk1"]);
        f.present[1].1 = true;
        let setup = plan(&atlantis(), &f);
        assert!(!setup.steps.contains(&Step::Entries));
        assert!(setup.notices[0].contains("ESP1 (disk1 partition 1) is on a loop device"));

        f.efivarfs = false;
        f.loader_available = false;
        let setup = plan(&atlantis(), &f);
        assert_eq!(setup.steps.len(), 1, "only the fstab: {:?}", setup.steps);
        assert!(setup.notices[0].starts_with("this system has no systemd-boot"));
        assert!(setup.notices[1].starts_with("no efivarfs"));
    }

    #[test]
    fn an_encrypted_pool_gets_a_notice_instead_of_fstabs() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml"),
        )
        .unwrap()
        .replace(
            "quotas = false\n",
            "quotas = false\nencrypt = \"luks2\"\nkey_file = \"/k\"\n",
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("luks.toml");
        std::fs::write(&path, text).unwrap();
        let spec = Spec::load(&path).unwrap();
        let setup = plan(&spec, &facts(&["disk1"], &["disk0", "disk1"]));
        assert!(!setup.steps.iter().any(|s| matches!(s, Step::Fstab { .. })));
        assert!(setup.notices[0].contains("LINPOOL (disk1 partition 4) is encrypted"));
    }
}
