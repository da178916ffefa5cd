//! What provisioning does once the disks are written (pure): an /etc/fstab into each root
//! subvolume, the loader onto the first ESP that is there (systemd-boot, or the signed chain
//! when the firmware enforces Secure Boot: see [`Chain`]), the other ESPs mirrored from it,
//! and the UEFI boot entries pointing at that loader. Each step is planned from what is on the disks, like the
//! provisioning plan's own steps: a root without /etc/fstab, an ESP without the loader, an
//! ESP that is not a mirror, entries the firmware lacks. So a run that was killed half-way
//! is finished by the next one, and a finished machine plans nothing. What cannot be done
//! here and now becomes a notice that names the command doing it later, never a silent gap.

use super::efivars::SecureBoot;
pub use super::loader::Chain;
use crate::spec::{PartType, Spec};

/// What is known about the machine when the setup is planned.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Spec disks bound to a device: (id, the device is a loop device).
    pub present: Vec<(String, bool)>,
    /// This system carries the loader the firmware needs ([`Facts::chain`]'s files).
    pub loader_available: bool,
    /// What the firmware's `SecureBoot` variable says.
    pub secure_boot: SecureBoot,
    /// efivarfs is mounted: the firmware's boot variables can be written.
    pub efivarfs: bool,
    pub on_disk: OnDisk,
}

impl Facts {
    /// The loader this machine's firmware starts.
    pub fn chain(&self) -> Chain {
        Chain::for_firmware(self.secure_boot)
    }
}

/// A partition by spec disk id and 1-based number.
pub type Slot = (String, u32);

/// What the setup's steps would make that is already on the disks. Whatever the
/// provisioning plan is about to make anew counts as not there yet (its filesystem as
/// there, empty).
#[derive(Debug, Clone, Default)]
pub struct OnDisk {
    /// Partitions holding the spec's filesystem, now or once the provisioning plan ran.
    pub filesystems: Vec<Slot>,
    /// Root subvolumes that have an /etc/fstab.
    pub fstabs: Vec<String>,
    /// ESPs holding this system's loader for the firmware ([`Facts::chain`], every file with
    /// the same bytes) and a loader.conf.
    pub loaders: Vec<Slot>,
    /// ESPs whose whole tree is already that of the first ESP (esp-sync would change
    /// nothing).
    pub mirrors: Vec<Slot>,
    /// The firmware has our boot entries, first in BootOrder (boot-entries would change
    /// nothing).
    pub entries: bool,
}

/// A partition of the spec, by disk and 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAt {
    pub disk: String,
    pub number: u32,
    /// The label, else the partition name (`ESP0`, `POOL`).
    pub name: String,
}

impl PartAt {
    fn slot(&self) -> Slot {
        (self.disk.clone(), self.number)
    }
}

impl std::fmt::Display for PartAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} partition {})", self.name, self.disk, self.number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write /etc/fstab into each of these root subvolumes of the pool (an fstab already
    /// there is the installed system's and is kept).
    Fstab { pool: PartAt, roots: Vec<String> },
    /// Put the loader (and a loader.conf, if missing) on this ESP.
    Loader { esp: PartAt, chain: Chain },
    /// Make `to` a mirror of `from` (esp-sync).
    Mirror { from: PartAt, to: PartAt },
    /// One boot entry per ESP, first in BootOrder (boot-entries), starting `chain`.
    Entries { chain: Chain },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Fstab { pool, roots } => format!(
                "write /etc/fstab into {} on {pool} (where it has none)",
                roots.join(", ")
            ),
            Step::Loader {
                esp,
                chain: Chain::SystemdBoot,
            } => {
                format!("install systemd-boot as {} on {esp}", super::loader::ON_ESP)
            }
            Step::Loader {
                esp,
                chain: Chain::Signed,
            } => format!(
                "install the signed boot chain for Secure Boot as {} on {esp} (Debian's \
                 Microsoft-signed shim, which starts Debian's signed systemd-boot beside it)",
                Chain::Signed.on_esp()
            ),
            Step::Mirror { from, to } => format!("mirror {from} onto {to} (esp-sync)"),
            Step::Entries {
                chain: Chain::SystemdBoot,
            } => {
                "write the UEFI boot entries for the ESPs, first in BootOrder (boot-entries)".into()
            }
            Step::Entries {
                chain: Chain::Signed,
            } => format!(
                "write the UEFI boot entries for the ESPs, first in BootOrder, starting {} \
                 (boot-entries; also one per distribution's own shim on each ESP)",
                Chain::Signed.entry_path()
            ),
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

/// The boot setup that the disks still need.
pub fn plan(spec: &Spec, facts: &Facts) -> Setup {
    let mut setup = Setup::default();
    let found = &facts.on_disk;
    let present = |id: &str| facts.present.iter().find(|(p, _)| p == id);
    let made = |at: &PartAt| found.filesystems.contains(&at.slot());

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
            let missing: Vec<String> = roots
                .iter()
                .filter(|r| !found.fstabs.contains(r))
                .cloned()
                .collect();
            // An encrypted pool is no different here: its roots get an fstab and a
            // crypttab, written through the opened container.
            if present(&disk.id).is_none() {
                setup.notices.push(format!(
                    "{} was not found: no /etc/fstab is written into {}",
                    disk.id,
                    roots.join(", ")
                ));
            } else if !made(&at) {
                setup.notices.push(format!(
                    "{at} is not made yet: no /etc/fstab is written into {}; provision {} first",
                    roots.join(", "),
                    disk.id
                ));
            } else if !missing.is_empty() {
                setup.steps.push(Step::Fstab {
                    pool: at,
                    roots: missing,
                });
            }
        }
    }

    // The ESPs, the preserved disk's (ESP0) first.
    let disks = spec.disks_esp_first();
    let mut esps = Vec::new();
    for disk in disks {
        for (i, part) in disk.partitions.iter().enumerate() {
            if part.part_type == PartType::Esp {
                esps.push((part_at(&disk.id, i, part), present(&disk.id)));
            }
        }
    }
    let mut here: Vec<(PartAt, bool)> = Vec::new();
    for (esp, bound) in esps {
        match bound {
            Some(_) if !made(&esp) => setup.notices.push(format!(
                "{esp} is not made yet: it gets no loader; provision {} first",
                esp.disk
            )),
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
    let chain = facts.chain();
    if facts.loader_available {
        let loader_missing = !found.loaders.contains(&first.slot());
        if loader_missing {
            setup.steps.push(Step::Loader {
                esp: first.clone(),
                chain,
            });
        }
        for (other, _) in &here[1..] {
            // A loader installed now changes the first ESP: every mirror is stale then.
            if loader_missing || !found.mirrors.contains(&other.slot()) {
                setup.steps.push(Step::Mirror {
                    from: first.clone(),
                    to: other.clone(),
                });
            }
        }
    } else if !found.loaders.contains(&first.slot()) {
        setup.notices.push(match chain {
            Chain::SystemdBoot => format!(
                "this system has no systemd-boot ({}): the ESPs get no loader; install it on \
                 {first} yourself, then run `lifeboat esp-sync`",
                super::loader::SYSTEMD_BOOT
            ),
            // Unsigned systemd-boot would be refused by this firmware: install nothing.
            Chain::Signed => format!(
                "Secure Boot is on and this system has no signed boot chain ({}): the ESPs get \
                 no loader (the firmware would refuse the unsigned systemd-boot); boot the \
                 rescue stick and provision again, or install shim on {first} yourself",
                super::loader::SIGNED_DIR
            ),
        });
    }

    // The firmware's entries: only for real disks, all of them there, on a UEFI boot.
    let no_signed_chain =
        chain == Chain::Signed && !facts.loader_available && !found.loaders.contains(&first.slot());
    if found.entries {
        // The firmware already boots our ESPs first: nothing to write.
    } else if !facts.efivarfs {
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
    } else if no_signed_chain {
        // An entry first in BootOrder for a shim that is not there would only push Windows
        // Boot Manager down.
        setup.notices.push(
            "no boot entries are written: there is no signed loader for them to start".into(),
        );
    } else if here.len() < spec_esp_count(spec) {
        setup.notices.push(
            "not every ESP is there: no boot entries are written; run `lifeboat boot-entries` \
             when they are"
                .into(),
        );
    } else {
        setup.steps.push(Step::Entries { chain });
    }
    setup
}

impl Step {
    /// The spec disk this step writes; `None` for the boot entries, which live in the
    /// firmware and name every ESP.
    fn writes(&self) -> Option<&str> {
        match self {
            Step::Fstab { pool, .. } => Some(&pool.disk),
            Step::Loader { esp, .. } => Some(&esp.disk),
            Step::Mirror { to, .. } => Some(&to.disk),
            Step::Entries { .. } => None,
        }
    }
}

/// The setup limited to the disks of `--only` (all of them when `only` is empty): a step
/// that writes another disk becomes a notice, and so do the boot entries when none of the
/// selected disks holds an ESP. `--only usb` on a machine whose disk1 is already set up
/// must not mirror a factory ESP0 over disk1's ESP1.
pub fn within(setup: Setup, spec: &Spec, only: &[String]) -> Setup {
    if only.is_empty() {
        return setup;
    }
    let selected = |id: &str| only.iter().any(|o| o == id);
    let esp_selected = spec
        .disks
        .iter()
        .any(|d| selected(&d.id) && d.partitions.iter().any(|p| p.part_type == PartType::Esp));
    let mut out = Setup {
        steps: Vec::new(),
        notices: setup.notices,
    };
    // The mirror copies the first ESP as the loader step leaves it, and the entries point at
    // the loaders: once a loader or mirror step is left out, the later ones are too (a
    // mirror of a factory ESP0 without our loader would empty ESP1 of its own).
    let mut esp_left_out = false;
    for step in setup.steps {
        let kept = match (&step, step.writes()) {
            (Step::Fstab { .. }, Some(disk)) => selected(disk),
            (Step::Mirror { .. } | Step::Entries { .. }, _) if esp_left_out => false,
            (_, Some(disk)) => selected(disk),
            (_, None) => esp_selected,
        };
        if !kept && matches!(step, Step::Loader { .. } | Step::Mirror { .. }) {
            esp_left_out = true;
        }
        if kept {
            out.steps.push(step);
        } else {
            out.notices.push(format!(
                "{}: not selected (--only {}); `lifeboat provision {}` without --only does it",
                step.describe(),
                only.join(" --only "),
                spec.file.display()
            ));
        }
    }
    out
}

/// Carry out `steps` in order through `run`, stopping at the first that fails: a later
/// step points at what an earlier one makes (the boot entries at the loader, the mirror at
/// the first ESP), so going on would leave the firmware booting first into a loader that
/// is not there. The re-run plans what is still missing and does it.
pub fn carry_out<E>(
    steps: &[Step],
    mut run: impl FnMut(&Step) -> Result<(), E>,
) -> Result<(), (Step, E)> {
    for step in steps {
        run(step).map_err(|e| (step.clone(), e))?;
    }
    Ok(())
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

    /// Bound disks, and the filesystems of the Atlantis spec there (or about to be made),
    /// nothing of the boot setup on them yet.
    fn facts(present: &[&str]) -> Facts {
        let mut filesystems = Vec::new();
        for id in present {
            match *id {
                "disk0" => filesystems.push(("disk0".to_owned(), 1)),
                "disk1" => filesystems.extend((1..=4).map(|n| ("disk1".to_owned(), n))),
                _ => {}
            }
        }
        Facts {
            present: present.iter().map(|s| (s.to_string(), false)).collect(),
            loader_available: true,
            secure_boot: SecureBoot::Off,
            efivarfs: true,
            on_disk: OnDisk {
                filesystems,
                ..OnDisk::default()
            },
        }
    }

    fn roots() -> Vec<String> {
        vec!["@rootTW".into(), "@rootF41".into(), "@rootNobara".into()]
    }

    #[test]
    fn only_the_selected_disks_get_boot_steps() {
        let spec = atlantis();
        // disk1 set up and booting; ESP0 on the factory disk without our loader.
        let mut f = facts(&["disk0", "disk1", "usb"]);
        f.on_disk.fstabs = roots();
        f.on_disk.loaders = vec![("disk1".to_owned(), 1)];
        let whole = plan(&spec, &f);
        assert!(
            whole
                .steps
                .iter()
                .any(|s| matches!(s, Step::Mirror { to, .. } if to.disk == "disk1")),
            "{whole:?}"
        );
        let usb = within(whole.clone(), &spec, &["usb".to_owned()]);
        assert!(usb.steps.is_empty(), "--only usb wrote boot steps: {usb:?}");
        assert!(usb
            .notices
            .iter()
            .any(|n| n.contains("mirror") && n.contains("not selected (--only usb)")));
        // --only disk1: ESP0's loader is not installed, so ESP0 is not mirrored onto ESP1.
        let disk1 = within(whole.clone(), &spec, &["disk1".to_owned()]);
        assert!(
            disk1.steps.iter().all(|s| matches!(s, Step::Fstab { .. })),
            "{disk1:?}"
        );
        let disk0 = within(whole.clone(), &spec, &["disk0".to_owned()]);
        assert!(disk0.steps.iter().all(|s| s.writes() != Some("disk1")));
        assert_eq!(within(whole.clone(), &spec, &[]), whole);
    }

    fn pool() -> PartAt {
        PartAt {
            disk: "disk1".into(),
            number: 4,
            name: "LINPOOL".into(),
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
        let setup = plan(&atlantis(), &facts(&["disk0", "disk1", "usb"]));
        assert_eq!(setup.notices, Vec::<String>::new());
        assert_eq!(
            setup.steps,
            [
                Step::Fstab {
                    pool: pool(),
                    roots: roots(),
                },
                Step::Loader {
                    esp: esp(0),
                    chain: Chain::SystemdBoot,
                },
                Step::Mirror {
                    from: esp(0),
                    to: esp(1)
                },
                Step::Entries {
                    chain: Chain::SystemdBoot,
                },
            ]
        );
        assert_eq!(
            setup.steps[2].describe(),
            "mirror ESP0 (disk0 partition 1) onto ESP1 (disk1 partition 1) (esp-sync)"
        );
    }

    fn finished() -> Facts {
        let mut f = facts(&["disk0", "disk1", "usb"]);
        f.on_disk.fstabs = roots();
        f.on_disk.loaders = vec![("disk0".into(), 1)];
        f.on_disk.mirrors = vec![("disk1".into(), 1)];
        f.on_disk.entries = true;
        f
    }

    #[test]
    fn a_finished_machine_needs_no_boot_setup() {
        assert!(plan(&atlantis(), &finished()).is_empty());
    }

    #[test]
    fn an_interrupted_run_leaves_just_what_is_missing() {
        // Killed before the boot setup began: the disks are done, nothing of it is there.
        let mut f = finished();
        f.on_disk.fstabs.clear();
        f.on_disk.loaders.clear();
        f.on_disk.mirrors.clear();
        f.on_disk.entries = false;
        assert_eq!(plan(&atlantis(), &f).steps.len(), 4);

        // Killed after the first root's fstab.
        let mut f = finished();
        f.on_disk.fstabs = vec!["@rootTW".into()];
        assert_eq!(
            plan(&atlantis(), &f).steps,
            [Step::Fstab {
                pool: pool(),
                roots: vec!["@rootF41".into(), "@rootNobara".into()],
            }]
        );

        // ESP1 no longer mirrors ESP0 (ESP0's loader was updated since).
        let mut f = finished();
        f.on_disk.mirrors.clear();
        assert_eq!(
            plan(&atlantis(), &f).steps,
            [Step::Mirror {
                from: esp(0),
                to: esp(1)
            }]
        );
    }

    #[test]
    fn a_missing_loader_is_installed_and_mirrored_again_even_with_entries_in_place() {
        // The entries were written once but the loader never arrived (an ESP the kernel
        // could not mount): the re-run must see it, and the mirror made before is stale.
        let mut f = finished();
        f.on_disk.loaders.clear();
        assert_eq!(
            plan(&atlantis(), &f).steps,
            [
                Step::Loader {
                    esp: esp(0),
                    chain: Chain::SystemdBoot,
                },
                Step::Mirror {
                    from: esp(0),
                    to: esp(1)
                }
            ]
        );
    }

    #[test]
    fn a_failed_step_stops_the_ones_after_it() {
        let steps = plan(&atlantis(), &facts(&["disk0", "disk1"])).steps;
        let mut ran = Vec::new();
        let result = carry_out(&steps, |step| {
            ran.push(step.clone());
            match step {
                Step::Loader { .. } => Err("cannot mount"),
                _ => Ok(()),
            }
        });
        assert_eq!(
            result,
            Err((
                Step::Loader {
                    esp: esp(0),
                    chain: Chain::SystemdBoot,
                },
                "cannot mount"
            ))
        );
        assert_eq!(ran.len(), 2, "fstab, then the loader: {ran:?}");
        assert!(!ran.iter().any(|s| matches!(s, Step::Entries { .. })));
        assert!(carry_out(&steps, |_| Ok::<(), ()>(())).is_ok());
    }

    #[test]
    fn filesystems_not_made_yet_get_notices_not_steps() {
        // `--only usb` on a blank disk1: neither the pool nor ESP1 exists.
        let mut f = facts(&["disk0", "disk1", "usb"]);
        f.on_disk.filesystems.retain(|(d, _)| d == "disk0");
        let setup = plan(&atlantis(), &f);
        assert!(
            !setup
                .steps
                .iter()
                .any(|s| matches!(s, Step::Fstab { .. } | Step::Entries { .. })),
            "{:?}",
            setup.steps
        );
        assert!(setup.notices[0].starts_with("LINPOOL (disk1 partition 4) is not made yet"));
        assert!(setup.notices[1].starts_with("ESP1 (disk1 partition 1) is not made yet"));
    }

    #[test]
    fn without_disk0_the_loader_goes_on_esp1_and_entries_wait() {
        let setup = plan(&atlantis(), &facts(&["disk1", "usb"]));
        assert!(setup.steps.contains(&Step::Loader {
            esp: esp(1),
            chain: Chain::SystemdBoot,
        }));
        assert!(!setup.steps.iter().any(|s| matches!(s, Step::Mirror { .. })));
        assert!(!setup
            .steps
            .iter()
            .any(|s| matches!(s, Step::Entries { .. })));
        assert_eq!(setup.notices.len(), 2, "{:?}", setup.notices);
        assert!(setup.notices[0].starts_with("disk0 was not found: ESP0 (disk0 partition 1)"));
        assert!(setup.notices[1].starts_with("not every ESP is there"));
    }

    #[test]
    fn loop_devices_no_efivarfs_and_no_loader_are_notices() {
        let mut f = facts(&["disk0", "disk1"]);
        f.present[1].1 = true;
        let setup = plan(&atlantis(), &f);
        assert!(!setup
            .steps
            .iter()
            .any(|s| matches!(s, Step::Entries { .. })));
        assert!(setup.notices[0].contains("ESP1 (disk1 partition 1) is on a loop device"));

        f.efivarfs = false;
        f.loader_available = false;
        let setup = plan(&atlantis(), &f);
        assert_eq!(setup.steps.len(), 1, "only the fstab: {:?}", setup.steps);
        assert!(setup.notices[0].starts_with("this system has no systemd-boot"));
        assert!(setup.notices[1].starts_with("no efivarfs"));
    }

    #[test]
    fn secure_boot_on_installs_the_signed_chain_and_points_the_entries_at_shim() {
        let mut f = facts(&["disk0", "disk1", "usb"]);
        f.secure_boot = SecureBoot::On;
        let setup = plan(&atlantis(), &f);
        assert_eq!(setup.notices, Vec::<String>::new());
        assert_eq!(
            setup.steps[1..],
            [
                Step::Loader {
                    esp: esp(0),
                    chain: Chain::Signed,
                },
                Step::Mirror {
                    from: esp(0),
                    to: esp(1)
                },
                Step::Entries {
                    chain: Chain::Signed
                },
            ]
        );
        assert_eq!(
            setup.steps[1].describe(),
            "install the signed boot chain for Secure Boot as EFI/lifeboat/shimx64.efi on ESP0 \
             (disk0 partition 1) (Debian's Microsoft-signed shim, which starts Debian's signed \
             systemd-boot beside it)"
        );
        assert!(setup.steps[3]
            .describe()
            .contains("starting \\EFI\\lifeboat\\shimx64.efi"));
        // Secure Boot off, or not known (no efivarfs): systemd-boot, as before.
        for state in [SecureBoot::Off, SecureBoot::Unknown] {
            f.secure_boot = state;
            let setup = plan(&atlantis(), &f);
            assert!(setup.steps.contains(&Step::Loader {
                esp: esp(0),
                chain: Chain::SystemdBoot
            }));
            assert!(!setup.steps.iter().any(|s| matches!(
                s,
                Step::Loader {
                    chain: Chain::Signed,
                    ..
                } | Step::Entries {
                    chain: Chain::Signed
                }
            )));
        }
    }

    #[test]
    fn an_esp_with_systemd_boot_gets_the_signed_chain_once_secure_boot_is_on() {
        // Provisioned with Secure Boot off; the firmware now enforces it. The probe found
        // no signed chain on ESP0 (its `loaders` are the firmware's chain's), and the
        // entries point at systemd-boot (`entries` false).
        let mut f = finished();
        f.secure_boot = SecureBoot::On;
        f.on_disk.loaders.clear();
        f.on_disk.entries = false;
        assert_eq!(
            plan(&atlantis(), &f).steps,
            [
                Step::Loader {
                    esp: esp(0),
                    chain: Chain::Signed
                },
                Step::Mirror {
                    from: esp(0),
                    to: esp(1)
                },
                Step::Entries {
                    chain: Chain::Signed
                },
            ]
        );
    }

    #[test]
    fn secure_boot_without_a_signed_chain_installs_nothing_unsigned() {
        let mut f = facts(&["disk0", "disk1"]);
        f.secure_boot = SecureBoot::On;
        f.loader_available = false;
        let setup = plan(&atlantis(), &f);
        assert!(
            setup.steps.iter().all(|s| matches!(s, Step::Fstab { .. })),
            "{:?}",
            setup.steps
        );
        assert!(setup.notices[0].starts_with("Secure Boot is on and this system has no signed"));
        assert!(setup.notices[1].contains("no signed loader"));
    }

    #[test]
    fn an_encrypted_pool_gets_its_fstabs_like_any_other() {
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
        let setup = plan(&spec, &facts(&["disk0", "disk1"]));
        assert!(setup.steps.iter().any(|s| matches!(s, Step::Fstab { .. })));
        assert!(!setup.notices.iter().any(|n| n.contains("encrypted")));
    }
}
