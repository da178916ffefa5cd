//! The checks after a restore, and the one repair they may call for. Each restored root is
//! looked at ([`look`], read-only), judged ([`check`], pure: does it mount, does its
//! /etc/fstab name only filesystems that exist, is UID 1000 one user in every root), an
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
    pub passwd: Option<String>,
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

/// The checks of `look`ed-at roots against the filesystem ids (partition GUIDs and
/// filesystem UUIDs, lower case) found on the disks.
pub fn check(seen: &[Seen], ids: &[String]) -> Vec<Finding> {
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
                main_user: s
                    .passwd
                    .as_deref()
                    .and_then(|p| verify::user_with_uid(p, 1000)),
            }
        })
        .collect()
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
                    passwd: None,
                });
                continue;
            }
        };
        let fstab = std::fs::read_to_string(m.path().join("etc/fstab")).ok();
        let passwd = std::fs::read_to_string(m.path().join("etc/passwd")).ok();
        m.close()?;
        seen.push(Seen {
            name,
            mount_error: None,
            fstab,
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
    let node = match opened {
        Some(dev) => dev.to_owned(),
        None => blockdev::partition_node(&device_of(bindings, &pool.disk.id)?, pool.number),
    };
    let findings = check(&look(&node, pool, restored)?, &ids(bindings));
    let mut repairs = Vec::new();
    for f in &findings {
        if matches!(f.fstab, FstabState::Missing(_)) && f.mount_error.is_none() {
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
}
