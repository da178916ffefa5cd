//! `lifeboat timers install|remove ROOT`: the systemd units that keep the backup honest,
//! in a distro root: a daily health check, a monthly drill, `backup-boot` before btrbk
//! runs, each with `OnFailure=` to an alert unit that runs the spec's `[alerts] command`.
//! The units' text and the changes are planned purely ([`units`], [`plan`]); [`apply`]
//! writes or removes exactly those files and links.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where units go inside the root.
pub const UNIT_DIR: &str = "etc/systemd/system";

/// What the units run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The lifeboat binary, as the installed system sees it.
    pub lifeboat: PathBuf,
    /// The spec, as the installed system sees it.
    pub spec: PathBuf,
}

/// One file or link of the installation, relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    File {
        path: PathBuf,
        text: String,
    },
    /// An enablement link (`*.wants/NAME` → the unit's absolute path in the root).
    Link {
        path: PathBuf,
        target: PathBuf,
    },
}

impl Item {
    pub fn path(&self) -> &Path {
        match self {
            Item::File { path, .. } | Item::Link { path, .. } => path,
        }
    }
}

/// The alert unit's name for a failed unit (`%n` is the failed unit's full name).
const ON_FAILURE: &str = "OnFailure=lifeboat-alert@%n.service";

/// Every unit and link, in the order they are written.
pub fn units(s: &Settings) -> Vec<Item> {
    let lb = s.lifeboat.display();
    let spec = s.spec.display();
    let unit = |name: &str, text: String| Item::File {
        path: Path::new(UNIT_DIR).join(name),
        text,
    };
    let link = |wants: &str, name: &str| Item::Link {
        path: Path::new(UNIT_DIR).join(wants).join(name),
        target: Path::new("/").join(UNIT_DIR).join(name),
    };
    vec![
        unit(
            "lifeboat-alert@.service",
            format!(
                "# Installed by `lifeboat timers install`; `lifeboat timers remove` removes it.\n\
                 [Unit]\n\
                 Description=lifeboat: alert about the failed unit %i\n\n\
                 [Service]\n\
                 Type=oneshot\n\
                 ExecStart={lb} alert {spec} %i\n"
            ),
        ),
        unit(
            "lifeboat-health.service",
            format!(
                "# Installed by `lifeboat timers install`.\n\
                 [Unit]\n\
                 Description=lifeboat: is the backup healthy?\n\
                 {ON_FAILURE}\n\n\
                 [Service]\n\
                 Type=oneshot\n\
                 # 1 is warnings only (they are in the journal); 2 is a failure and alerts.\n\
                 SuccessExitStatus=1\n\
                 ExecStart={lb} health {spec}\n"
            ),
        ),
        unit(
            "lifeboat-health.timer",
            "# Installed by `lifeboat timers install`.\n\
             [Unit]\n\
             Description=lifeboat: daily health check of the backup\n\n\
             [Timer]\n\
             OnCalendar=daily\n\
             RandomizedDelaySec=1h\n\
             Persistent=true\n\n\
             [Install]\n\
             WantedBy=timers.target\n"
                .to_owned(),
        ),
        unit(
            "lifeboat-drill.service",
            format!(
                "# Installed by `lifeboat timers install`.\n\
                 [Unit]\n\
                 Description=lifeboat: restore drill (restore the newest backup, boot it in QEMU)\n\
                 {ON_FAILURE}\n\n\
                 [Service]\n\
                 Type=oneshot\n\
                 TimeoutStartSec=6h\n\
                 Nice=10\n\
                 IOSchedulingClass=idle\n\
                 ExecStart={lb} drill {spec}\n"
            ),
        ),
        unit(
            "lifeboat-drill.timer",
            "# Installed by `lifeboat timers install`.\n\
             [Unit]\n\
             Description=lifeboat: monthly restore drill\n\n\
             [Timer]\n\
             OnCalendar=monthly\n\
             RandomizedDelaySec=6h\n\
             Persistent=true\n\n\
             [Install]\n\
             WantedBy=timers.target\n"
                .to_owned(),
        ),
        unit(
            "lifeboat-backup-boot.service",
            format!(
                "# Installed by `lifeboat timers install`.\n\
                 [Unit]\n\
                 Description=lifeboat: copy /boot and the ESPs into the meta subvolume before the backup\n\
                 Before=btrbk.service\n\
                 {ON_FAILURE}\n\n\
                 [Service]\n\
                 Type=oneshot\n\
                 ExecStart={lb} backup-boot {spec}\n\n\
                 [Install]\n\
                 WantedBy=btrbk.service\n"
            ),
        ),
        link("timers.target.wants", "lifeboat-health.timer"),
        link("timers.target.wants", "lifeboat-drill.timer"),
        link("btrbk.service.wants", "lifeboat-backup-boot.service"),
    ]
}

/// What an item needs, given what is at its path now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Write(Item),
    Unchanged(Item),
    Remove(PathBuf),
}

/// What is at a path now: the file's text, the link's target, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtPath {
    Missing,
    File(String),
    Link(PathBuf),
    Other,
}

/// Install: each item written unless it is there already, as it should be.
pub fn plan(items: &[Item], found: &dyn Fn(&Path) -> AtPath) -> Vec<Change> {
    items
        .iter()
        .map(|item| {
            let same = match (item, found(item.path())) {
                (Item::File { text, .. }, AtPath::File(now)) => *text == now,
                (Item::Link { target, .. }, AtPath::Link(now)) => *target == now,
                _ => false,
            };
            if same {
                Change::Unchanged(item.clone())
            } else {
                Change::Write(item.clone())
            }
        })
        .collect()
}

/// Remove: every item that is there, links first.
pub fn plan_remove(items: &[Item], found: &dyn Fn(&Path) -> AtPath) -> Vec<Change> {
    let mut out: Vec<Change> = items
        .iter()
        .filter(|i| found(i.path()) != AtPath::Missing)
        .map(|i| Change::Remove(i.path().to_owned()))
        .collect();
    out.sort_by_key(|c| match c {
        Change::Remove(p) => !p
            .parent()
            .is_some_and(|d| d.to_string_lossy().ends_with(".wants")),
        _ => true,
    });
    out
}

/// Refuse a root that is not one.
pub fn check_root(root: &Path) -> Result<()> {
    if !root.join("etc").is_dir() {
        bail!(
            "{} does not look like a system root (it has no etc/): give the directory a distro is \
             installed in, / for this system",
            root.display()
        );
    }
    Ok(())
}

pub fn look(root: &Path, rel: &Path) -> AtPath {
    let p = root.join(rel);
    match std::fs::symlink_metadata(&p) {
        Err(_) => AtPath::Missing,
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::read_link(&p).map_or(AtPath::Other, AtPath::Link)
        }
        Ok(m) if m.is_file() => std::fs::read_to_string(&p).map_or(AtPath::Other, AtPath::File),
        Ok(_) => AtPath::Other,
    }
}

/// Carry the changes out under `root`; returns one line per change.
pub fn apply(root: &Path, changes: &[Change]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for c in changes {
        match c {
            Change::Unchanged(item) => lines.push(format!("unchanged {}", item.path().display())),
            Change::Write(item) => {
                let at = root.join(item.path());
                if let Some(dir) = at.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.is_dir() => bail!(
                        "{} is a directory: lifeboat will not replace it",
                        at.display()
                    ),
                    Ok(_) => std::fs::remove_file(&at)
                        .with_context(|| format!("replacing {}", at.display()))?,
                    Err(_) => {}
                }
                match item {
                    Item::File { text, .. } => std::fs::write(&at, text),
                    Item::Link { target, .. } => std::os::unix::fs::symlink(target, &at),
                }
                .with_context(|| format!("writing {}", at.display()))?;
                lines.push(format!("wrote     {}", item.path().display()));
            }
            Change::Remove(rel) => {
                let at = root.join(rel);
                std::fs::remove_file(&at).with_context(|| format!("removing {}", at.display()))?;
                lines.push(format!("removed   {}", rel.display()));
                // An empty *.wants directory of ours goes too.
                if let Some(dir) = at.parent() {
                    if dir.to_string_lossy().ends_with(".wants") {
                        let _ = std::fs::remove_dir(dir);
                    }
                }
            }
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            lifeboat: "/usr/local/bin/lifeboat".into(),
            spec: "/etc/lifeboat/atlantis.toml".into(),
        }
    }

    fn text_of<'a>(items: &'a [Item], name: &str) -> &'a str {
        items
            .iter()
            .find_map(|i| match i {
                Item::File { path, text } if path.ends_with(name) => Some(text.as_str()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn every_service_alerts_on_failure_and_timers_catch_up() {
        let items = units(&settings());
        for s in [
            "lifeboat-health.service",
            "lifeboat-drill.service",
            "lifeboat-backup-boot.service",
        ] {
            assert!(
                text_of(&items, s).contains("\nOnFailure=lifeboat-alert@%n.service\n"),
                "{s}"
            );
        }
        for t in ["lifeboat-health.timer", "lifeboat-drill.timer"] {
            assert!(text_of(&items, t).contains("\nPersistent=true\n"), "{t}");
        }
        assert!(text_of(&items, "lifeboat-drill.timer").contains("OnCalendar=monthly"));
        assert!(text_of(&items, "lifeboat-health.timer").contains("OnCalendar=daily"));
        assert!(text_of(&items, "lifeboat-alert@.service")
            .contains("ExecStart=/usr/local/bin/lifeboat alert /etc/lifeboat/atlantis.toml %i\n"));
        assert!(!text_of(&items, "lifeboat-alert@.service").contains("OnFailure"));
        let bb = text_of(&items, "lifeboat-backup-boot.service");
        assert!(bb.contains("Before=btrbk.service") && bb.contains("WantedBy=btrbk.service"));
    }

    #[test]
    fn a_second_install_changes_nothing_and_remove_takes_links_first() {
        let items = units(&settings());
        let all_there = |p: &Path| -> AtPath {
            match items.iter().find(|i| i.path() == p).unwrap() {
                Item::File { text, .. } => AtPath::File(text.clone()),
                Item::Link { target, .. } => AtPath::Link(target.clone()),
            }
        };
        assert!(plan(&items, &all_there)
            .iter()
            .all(|c| matches!(c, Change::Unchanged(_))));
        let first = plan(&items, &|_| AtPath::Missing);
        assert!(first.iter().all(|c| matches!(c, Change::Write(_))));
        let edited = |p: &Path| {
            if p.ends_with("lifeboat-health.timer") && !p.to_string_lossy().contains(".wants") {
                AtPath::File("edited".into())
            } else {
                all_there(p)
            }
        };
        let writes: Vec<_> = plan(&items, &edited)
            .into_iter()
            .filter(|c| matches!(c, Change::Write(_)))
            .collect();
        assert_eq!(writes.len(), 1);
        let removes = plan_remove(&items, &all_there);
        assert_eq!(removes.len(), items.len());
        assert!(
            matches!(&removes[0], Change::Remove(p) if p.to_string_lossy().contains(".wants/"))
        );
        assert!(plan_remove(&items, &|_| AtPath::Missing).is_empty());
    }
}
