//! The checks after a restore, and the one repair they may call for. Each restored root is
//! looked at ([`look`], read-only), judged ([`check`], pure: does it mount, does its
//! /etc/fstab name only filesystems that exist, does its /etc/crypttab name the pool's
//! LUKS container on disk, is UID 1000 one user in every root), an
//! fstab that names missing filesystems is rewritten from the spec ([`repair_fstab`], the
//! only write), and the report's lines are made ([`render`], pure).

use std::path::Path;

use anyhow::Result;

use super::{verify, SpecPart};
use crate::apply::mount::Mount;
use crate::blockdev;
use crate::boot::fstab::{self, FstabError};
use crate::machine::device_of;
use crate::plan::Binding;
use crate::spec::Spec;

/// What a restored root holds, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    /// Why it did not mount.
    pub mount_error: Option<String>,
    pub fstab: Option<String>,
    pub crypttab: Option<String>,
    pub passwd: Option<String>,
}

/// What a root's /etc/crypttab says about the pool's LUKS container on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrypttabState {
    /// No /etc/crypttab (or one without entries).
    Absent,
    /// It names the container on disk (its UUID).
    NamesThePool(String),
    /// It names these `UUID=…` containers, none of them the pool's (`Some(UUID)`, the one on
    /// disk), or the pool is not encrypted (`None`).
    Other {
        named: Vec<String>,
        on_disk: Option<String>,
    },
}

/// What a root's /etc/fstab says about the filesystems that exist now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FstabState {
    Absent,
    /// Every UUID it names exists; how many it names.
    AllPresent(usize),
    /// `UUID=…` / `PARTUUID=…` sources that exist on no disk: it needs [`repair_fstab`].
    Missing(Vec<String>),
}

/// The verdict on one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    pub mount_error: Option<String>,
    pub fstab: FstabState,
    pub crypttab: CrypttabState,
    /// The user with UID 1000.
    pub main_user: Option<String>,
}

/// What [`repair_fstab`] did with a root's fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Rewritten from the spec; the old one is `etc/fstab.before-restore`.
    Rewritten,
    /// The spec's fstab could not be made (why).
    Impossible(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
    pub failed: Vec<String>,
}

/// The `UUID=` sources of an /etc/crypttab's entries (its second field), lower case.
pub fn crypttab_uuids(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|source| source.strip_prefix("UUID="))
        .map(|u| u.trim_matches('"').to_lowercase())
        .collect()
}

/// A root's crypttab against the pool's container on disk (`container`, its LUKS UUID
/// when the pool is encrypted).
pub fn check_crypttab(crypttab: Option<&str>, container: Option<&str>) -> CrypttabState {
    let named = crypttab.map(crypttab_uuids).unwrap_or_default();
    if crypttab.is_none() || (named.is_empty() && container.is_none()) {
        return CrypttabState::Absent;
    }
    let on_disk = container.map(str::to_lowercase);
    match &on_disk {
        Some(uuid) if named.contains(uuid) => CrypttabState::NamesThePool(uuid.clone()),
        _ => CrypttabState::Other { named, on_disk },
    }
}

/// The checks of `look`ed-at roots against the filesystem ids (partition GUIDs and
/// filesystem UUIDs, lower case) found on the disks and the pool's LUKS container
/// (`container`: its UUID, when the pool is encrypted).
pub fn check(seen: &[Seen], ids: &[String], container: Option<&str>) -> Vec<Finding> {
    seen.iter()
        .map(|s| {
            let fstab = match &s.fstab {
                None => FstabState::Absent,
                Some(text) => {
                    let named = verify::fstab_ids(text);
                    let missing: Vec<String> = named
                        .iter()
                        .filter(|(_, v)| !ids.contains(&v.to_lowercase()))
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    if missing.is_empty() {
                        FstabState::AllPresent(named.len())
                    } else {
                        FstabState::Missing(missing)
                    }
                }
            };
            Finding {
                name: s.name.clone(),
                mount_error: s.mount_error.clone(),
                fstab,
                crypttab: check_crypttab(s.crypttab.as_deref(), container),
                main_user: s
                    .passwd
                    .as_deref()
                    .and_then(|p| verify::user_with_uid(p, 1000)),
            }
        })
        .collect()
}

impl Finding {
    /// Its fstab names filesystems that do not exist, or its crypttab a container that is
    /// not the pool's: both are rewritten from the spec ([`repair_fstab`]).
    pub fn needs_repair(&self) -> bool {
        self.mount_error.is_none()
            && (matches!(self.fstab, FstabState::Missing(_))
                || matches!(
                    self.crypttab,
                    CrypttabState::Other {
                        on_disk: Some(_),
                        ..
                    }
                ))
    }
}

/// The report's lines and failures, after the repairs (by root name).
pub fn render(findings: &[Finding], repairs: &[(String, Repair)]) -> Report {
    let mut report = Report {
        lines: vec![],
        failed: vec![],
    };
    let mut main_user: Option<(&str, &str)> = None;
    for f in findings {
        let name = &f.name;
        if let Some(e) = &f.mount_error {
            report.lines.push(format!("{name}: does not mount: {e}"));
            report.failed.push(format!("{name} does not mount"));
            continue;
        }
        let mut line = format!("{name}: mounts");
        match &f.fstab {
            FstabState::AllPresent(n) => {
                line.push_str(&format!("; /etc/fstab: {n} UUIDs, all present"));
            }
            FstabState::Missing(missing) => {
                match repairs
                    .iter()
                    .find(|(root, _)| root == name)
                    .map(|(_, r)| r)
                {
                    Some(Repair::Rewritten) => line.push_str(&format!(
                        "; /etc/fstab named {} that do not exist: rewritten from the spec (the \
                         old one is etc/fstab.before-restore)",
                        missing.join(", ")
                    )),
                    Some(Repair::Impossible(e)) => {
                        line.push_str(&format!(
                            "; /etc/fstab names {}, which do not exist, and cannot be \
                             rewritten: {e}",
                            missing.join(", ")
                        ));
                        report
                            .failed
                            .push(format!("{name}'s /etc/fstab names missing filesystems"));
                    }
                    None => {
                        line.push_str(&format!(
                            "; /etc/fstab names {}, which do not exist",
                            missing.join(", ")
                        ));
                        report
                            .failed
                            .push(format!("{name}'s /etc/fstab names missing filesystems"));
                    }
                }
            }
            FstabState::Absent => {
                line.push_str("; no /etc/fstab");
                report.failed.push(format!("{name} has no /etc/fstab"));
            }
        }
        match &f.crypttab {
            CrypttabState::Absent => {}
            CrypttabState::NamesThePool(uuid) => line.push_str(&format!(
                "; /etc/crypttab names UUID={uuid}, the pool's LUKS container on disk"
            )),
            CrypttabState::Other {
                named,
                on_disk: None,
            } => line.push_str(&format!(
                "; /etc/crypttab names {} (the pool is not encrypted)",
                uuid_list(named)
            )),
            CrypttabState::Other {
                named,
                on_disk: Some(uuid),
            } => match repairs
                .iter()
                .find(|(root, _)| root == name)
                .map(|(_, r)| r)
            {
                Some(Repair::Rewritten) => line.push_str(&format!(
                    "; /etc/crypttab named {}, not the pool's LUKS container on disk \
                     (UUID={uuid}): it and /etc/fstab were rewritten from the spec (the old \
                     fstab is etc/fstab.before-restore)",
                    uuid_list(named)
                )),
                _ => {
                    line.push_str(&format!(
                        "; /etc/crypttab names {}, but the pool's LUKS container on disk is \
                     UUID={uuid}: this root would not find its pool at boot (name the \
                     container luks-{uuid} by UUID={uuid} in its /etc/crypttab and /etc/fstab)",
                        uuid_list(named)
                    ));
                    report.failed.push(format!(
                    "{name}'s /etc/crypttab does not name the pool's LUKS container UUID={uuid}"
                ));
                }
            },
        }
        match &f.main_user {
            Some(user) => {
                line.push_str(&format!("; UID 1000 is {user}"));
                match main_user {
                    Some((first, in_root)) if first != user => report.failed.push(format!(
                        "UID 1000 is {first} in {in_root} but {user} in {name}"
                    )),
                    Some(_) => {}
                    None => main_user = Some((user, name)),
                }
            }
            None => {
                line.push_str("; no user with UID 1000");
                report
                    .failed
                    .push(format!("{name} has no user with UID 1000"));
            }
        }
        report.lines.push(line);
    }
    if report.lines.is_empty() {
        report
            .lines
            .push("no root subvolume was restored: nothing to check".into());
    }
    report
}

fn uuid_list(named: &[String]) -> String {
    if named.is_empty() {
        "no container by UUID".to_owned()
    } else {
        named
            .iter()
            .map(|u| format!("UUID={u}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The filesystem ids on the bound disks: partition GUIDs and filesystem UUIDs, lower case.
pub fn ids(bindings: &[Binding]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for b in bindings {
        if let Some(g) = b.device.gpt() {
            for p in &g.partitions {
                ids.push(p.part_guid.to_lowercase());
                if let Some(u) = p.fs.as_ref().and_then(|f| f.uuid.clone()) {
                    ids.push(u.to_lowercase());
                }
            }
        }
    }
    ids
}

/// Each root subvolume of the pool (partition `node`) that was restored, mounted read-only
/// and read.
pub fn look(node: &Path, pool: &SpecPart, restored: &[String]) -> Result<Vec<Seen>> {
    let mut seen = Vec::new();
    let roots = pool
        .part
        .subvolumes
        .iter()
        .filter(|s| s.root && restored.contains(&s.name));
    for root in roots {
        let name = root.name.clone();
        let m = match Mount::read_only(node, "btrfs", Some(&format!("subvol={name}"))) {
            Ok(m) => m,
            Err(e) => {
                seen.push(Seen {
                    name,
                    mount_error: Some(e.to_string()),
                    fstab: None,
                    crypttab: None,
                    passwd: None,
                });
                continue;
            }
        };
        let fstab = std::fs::read_to_string(m.path().join("etc/fstab")).ok();
        let crypttab = std::fs::read_to_string(m.path().join("etc/crypttab")).ok();
        let passwd = std::fs::read_to_string(m.path().join("etc/passwd")).ok();
        m.close()?;
        seen.push(Seen {
            name,
            mount_error: None,
            fstab,
            crypttab,
            passwd,
        });
    }
    Ok(seen)
}

/// The repair step: `root`'s /etc/fstab rewritten from the spec with the UUIDs on the disks
/// now; the old one kept as `etc/fstab.before-restore`. `Ok(Err)` when the spec's fstab
/// cannot be made (nothing is written then).
pub fn repair_fstab(
    spec: &Spec,
    bindings: &[Binding],
    node: &Path,
    root: &str,
) -> Result<Result<(), FstabError>> {
    let new = match fstab::render_tabs(spec, root, &fstab::lookup(bindings)) {
        Ok(new) => new,
        Err(e) => return Ok(Err(e)),
    };
    let m = Mount::with_options(node, "btrfs", Some(&format!("subvol={root}")))?;
    let fstab_path = m.path().join("etc/fstab");
    let crypttab_path = m.path().join("etc/crypttab");
    let written = std::fs::rename(&fstab_path, m.path().join("etc/fstab.before-restore"))
        .map_err(anyhow::Error::from)
        .and_then(|()| match &new.crypttab {
            Some(text) => crate::atomic_file::write(&crypttab_path, text.as_bytes())
                .map_err(anyhow::Error::from),
            None => Ok(()),
        })
        .and_then(|()| {
            crate::atomic_file::write(&fstab_path, new.fstab.as_bytes())
                .map_err(anyhow::Error::from)
        });
    m.close()?;
    written?;
    Ok(Ok(()))
}

/// Every restored root mounts and names in its fstab only filesystems that exist (else
/// the fstab is repaired: rewritten from the spec); UID 1000 is one user in every root.
pub fn check_and_repair(
    spec: &Spec,
    bindings: &[Binding],
    pool: &SpecPart,
    opened: Option<&Path>,
    restored: &[String],
) -> Result<Report> {
    // An encrypted pool is read through its opened container.
    let partition = blockdev::partition_node(&device_of(bindings, &pool.disk.id)?, pool.number);
    let (node, container) = match opened {
        Some(dev) => (dev.to_owned(), Some(crate::cryptsetup::uuid(&partition)?)),
        None => (partition, None),
    };
    let findings = check(
        &look(&node, pool, restored)?,
        &ids(bindings),
        container.as_deref(),
    );
    let mut repairs = Vec::new();
    for f in &findings {
        if f.needs_repair() {
            let outcome = match repair_fstab(spec, bindings, &node, &f.name)? {
                Ok(()) => Repair::Rewritten,
                Err(e) => Repair::Impossible(e.to_string()),
            };
            repairs.push((f.name.clone(), outcome));
        }
    }
    Ok(render(&findings, &repairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";

    fn seen(name: &str, fstab: Option<&str>, passwd: &str) -> Seen {
        Seen {
            name: name.into(),
            mount_error: None,
            fstab: fstab.map(str::to_owned),
            crypttab: None,
            passwd: Some(passwd.into()),
        }
    }

    #[test]
    fn the_check_asks_for_a_repair_only_of_an_fstab_naming_missing_filesystems() {
        let ids = vec!["aaaa".to_owned(), "bbbb".to_owned()];
        let found = check(
            &[
                seen("@rootTW", Some("UUID=AAAA / btrfs defaults 0 0\n"), PASSWD),
                seen(
                    "@rootF41",
                    Some("UUID=aaaa / btrfs defaults 0 0\nUUID=cccc /boot ext4 defaults 0 2\n"),
                    PASSWD,
                ),
                seen("@rootNobara", None, PASSWD),
            ],
            &ids,
            None,
        );
        assert_eq!(found[0].fstab, FstabState::AllPresent(1));
        assert_eq!(
            found[1].fstab,
            FstabState::Missing(vec!["UUID=cccc".into()])
        );
        assert_eq!(found[2].fstab, FstabState::Absent);
        assert_eq!(found[0].main_user.as_deref(), Some("alice"));
    }

    #[test]
    fn the_report_says_what_the_repair_did_and_fails_what_it_could_not_fix() {
        let findings = check(
            &[
                seen("@rootTW", Some("UUID=cccc / btrfs defaults 0 0\n"), PASSWD),
                seen("@rootF41", Some("UUID=dddd / btrfs defaults 0 0\n"), PASSWD),
            ],
            &[],
            None,
        );
        let report = render(
            &findings,
            &[
                ("@rootTW".into(), Repair::Rewritten),
                ("@rootF41".into(), Repair::Impossible("no such disk".into())),
            ],
        );
        assert!(
            report.lines[0].contains("rewritten from the spec"),
            "{report:?}"
        );
        assert!(report.lines[1].contains("cannot be rewritten: no such disk"));
        assert_eq!(
            report.failed,
            ["@rootF41's /etc/fstab names missing filesystems"]
        );
        // Not repaired at all (the check alone): a failure, nothing claimed.
        let unrepaired = render(&findings, &[]);
        assert_eq!(unrepaired.failed.len(), 2);
        assert!(!unrepaired.lines[0].contains("rewritten"));
    }

    #[test]
    fn uid_1000_must_be_one_user_and_a_root_that_does_not_mount_fails() {
        let bob = "bob:x:1000:1000::/home/bob:/bin/sh\n";
        let mut broken = seen("@rootNobara", None, PASSWD);
        broken.mount_error = Some("wrong fs type".into());
        let findings = check(
            &[
                seen("@rootTW", Some(""), PASSWD),
                seen("@rootF41", Some(""), bob),
                broken,
            ],
            &[],
            None,
        );
        let report = render(&findings, &[]);
        assert_eq!(
            report.failed,
            [
                "UID 1000 is alice in @rootTW but bob in @rootF41",
                "@rootNobara does not mount"
            ]
        );
        assert_eq!(
            report.lines[2],
            "@rootNobara: does not mount: wrong fs type"
        );
        assert_eq!(
            render(&[], &[]).lines,
            ["no root subvolume was restored: nothing to check"]
        );
    }

    #[test]
    fn the_report_names_the_container_the_crypttab_names_and_fails_another() {
        let pool = "0b7d5e7e-2c53-4d35-9a7a-4d1f8c1f0a11";
        let old = "5d1c9c55-8a0e-4f0e-b2f7-61f3c0e8a6d2";
        let tab = |uuid: &str| {
            format!(
                "# <name> <device> <key file> <options>\nluks-{uuid}  UUID={}  none  luks\n",
                uuid.to_uppercase()
            )
        };
        let mut good = seen("@debian", Some(""), PASSWD);
        good.crypttab = Some(tab(pool));
        let mut stale = seen("@rootF41", Some(""), PASSWD);
        stale.crypttab = Some(tab(old));
        let plain = seen("@rootTW", Some(""), PASSWD);
        let findings = check(&[good.clone(), stale, plain], &[], Some(pool));
        assert_eq!(
            findings[0].crypttab,
            CrypttabState::NamesThePool(pool.into())
        );
        assert_eq!(findings[2].crypttab, CrypttabState::Absent);
        let report = render(&findings, &[]);
        assert!(
            report.lines[0].contains(&format!(
                "/etc/crypttab names UUID={pool}, the pool's LUKS container on disk"
            )),
            "{report:?}"
        );
        assert!(
            report.lines[1].contains(&format!(
            "/etc/crypttab names UUID={old}, but the pool's LUKS container on disk is UUID={pool}"
        )),
            "{report:?}"
        );
        assert!(!report.lines[2].contains("crypttab"));
        assert_eq!(
            report.failed,
            [format!(
                "@rootF41's /etc/crypttab does not name the pool's LUKS container UUID={pool}"
            )]
        );
        // A stale crypttab asks for the repair; rewritten, it is no failure.
        assert!(!findings[0].needs_repair());
        assert!(findings[1].needs_repair());
        let repaired = render(&findings, &[("@rootF41".into(), Repair::Rewritten)]);
        assert!(repaired.failed.is_empty(), "{repaired:?}");
        assert!(repaired.lines[1].contains("it and /etc/fstab were rewritten from the spec"));
        // A pool without LUKS: the crypttab is only reported.
        let unencrypted = render(&check(&[good], &[], None), &[]);
        assert!(unencrypted.failed.is_empty());
        assert!(unencrypted.lines[0].contains("(the pool is not encrypted)"));
    }
}
