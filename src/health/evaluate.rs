//! Facts about the backups and the boot setup → findings (pure): what `lifeboat health`
//! prints, one line each, and its exit status.

use serde::Serialize;

use crate::drill::record::{age_text, Record};
use crate::spec::Health;

/// How bad a finding is; the exit status is the worst one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn exit_code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Warn => 1,
            Level::Fail => 2,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// What it is about: `usb @home`, `restic`, `drill`, `esp-sync`, `boot-order`, `fill BACKUP`.
    pub what: String,
    pub text: String,
}

impl Finding {
    pub fn line(&self) -> String {
        format!("{} {}: {}", self.level.tag(), self.what, self.text)
    }
}

/// The newest point of a subvolume somewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub subvol: String,
    pub time: i64,
    pub name: String,
}

/// Whether our boot entries lead BootOrder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOrder {
    /// No efivarfs (not booted in UEFI mode, or not Linux's firmware interface).
    Unknown(String),
    Known {
        /// Our entries' ids.
        ours: Vec<u16>,
        order: Vec<u16>,
    },
}

/// A filesystem's used and total bytes, or why they are unknown.
pub type Fill = Result<(u64, u64), String>;

/// Everything `health` looked at.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: i64,
    /// The spec's subvolumes that should have points.
    pub subvols: Vec<String>,
    /// The backup drive's newest points, or why they could not be read.
    pub usb: Result<Vec<Newest>, String>,
    /// `None`: no restic in the spec. Else the newest snapshot's time (none: `Ok(None)`).
    pub restic: Option<Result<Option<(String, i64)>, String>>,
    /// The last drill of this host, if any.
    pub last_drill: Option<Record>,
    /// `None`: fewer than two ESPs. Else the esp-sync plan's length, or why it is unknown.
    pub esp_sync: Option<Result<usize, String>>,
    pub boot_order: BootOrder,
    /// Per filesystem: used and total bytes, or why unknown.
    pub fill: Vec<(String, Fill)>,
}

const DAY: i64 = 86_400;

/// The findings, in a fixed order: points on the drive, restic, the drill, the ESPs,
/// BootOrder, fill levels.
pub fn evaluate(f: &Facts, t: &Health) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |level, what: &str, text: String| {
        out.push(Finding {
            level,
            what: what.to_owned(),
            text,
        })
    };
    let usb_max = i64::from(t.usb_max_age_days) * DAY;
    match &f.usb {
        Err(why) => push(
            Level::Fail,
            "usb",
            format!("the backup drive's points cannot be read: {why}"),
        ),
        Ok(newest) => {
            for s in &f.subvols {
                let what = format!("usb {s}");
                match newest.iter().find(|n| &n.subvol == s) {
                    None => push(
                        Level::Fail,
                        &what,
                        "no restore point on the backup drive".into(),
                    ),
                    Some(n) => {
                        let age = f.now - n.time;
                        let text = format!("newest point {} old ({})", age_text(age), n.name);
                        if age > usb_max {
                            push(
                                Level::Fail,
                                &what,
                                format!("{text}: older than {} days", t.usb_max_age_days),
                            );
                        } else {
                            push(Level::Ok, &what, text);
                        }
                    }
                }
            }
        }
    }
    match &f.restic {
        None => {}
        Some(Err(why)) => push(
            Level::Warn,
            "restic",
            format!("snapshots cannot be listed: {why}"),
        ),
        Some(Ok(None)) => push(Level::Fail, "restic", "no snapshot of this host".into()),
        Some(Ok(Some((id, time)))) => {
            let age = f.now - time;
            let text = format!("newest snapshot {id} {} old", age_text(age));
            if age > i64::from(t.restic_max_age_days) * DAY {
                push(
                    Level::Warn,
                    "restic",
                    format!("{text}: older than {} days", t.restic_max_age_days),
                );
            } else {
                push(Level::Ok, "restic", text);
            }
        }
    }
    match &f.last_drill {
        None => push(
            Level::Warn,
            "drill",
            "no drill recorded yet: run `lifeboat drill`".into(),
        ),
        Some(r) => {
            let age = f.now - r.time;
            let when = format!("{} ago", age_text(age));
            if !r.booted() {
                push(
                    Level::Fail,
                    "drill",
                    format!("the last drill ({when}) failed: {}", r.reason),
                );
            } else if age > i64::from(t.drill_max_age_days) * DAY {
                push(
                    Level::Warn,
                    "drill",
                    format!(
                        "the last drill booted, {when}: older than {} days",
                        t.drill_max_age_days
                    ),
                );
            } else {
                push(Level::Ok, "drill", format!("the last drill booted, {when}"));
            }
        }
    }
    match &f.esp_sync {
        None => {}
        Some(Err(why)) => push(Level::Warn, "esp-sync", format!("unknown: {why}")),
        Some(Ok(0)) => push(Level::Ok, "esp-sync", "ESP1 is a mirror of ESP0".into()),
        Some(Ok(n)) => push(
            Level::Warn,
            "esp-sync",
            format!(
                "ESP1 differs from ESP0 in {n} place{}: run `lifeboat esp-sync`",
                if *n == 1 { "" } else { "s" }
            ),
        ),
    }
    match &f.boot_order {
        BootOrder::Unknown(why) => push(Level::Ok, "boot-order", format!("unknown ({why})")),
        BootOrder::Known { ours, order } => {
            let leads = !ours.is_empty()
                && order.len() >= ours.len()
                && order[..ours.len()].iter().all(|id| ours.contains(id));
            let shown = crate::boot::entries::order_text(order);
            if ours.is_empty() {
                push(
                    Level::Warn,
                    "boot-order",
                    "no boot entry of ours: run `lifeboat boot-entries`".into(),
                );
            } else if leads {
                push(
                    Level::Ok,
                    "boot-order",
                    format!("our entries lead BootOrder ({shown})"),
                );
            } else {
                push(
                    Level::Warn,
                    "boot-order",
                    format!(
                        "our entries do not lead BootOrder ({shown}): run `lifeboat boot-entries`"
                    ),
                );
            }
        }
    }
    for (name, fill) in &f.fill {
        let what = format!("fill {name}");
        match fill {
            Err(why) => push(Level::Warn, &what, format!("unknown: {why}")),
            Ok((used, size)) => {
                let pct = if *size == 0 {
                    0
                } else {
                    used.saturating_mul(100) / size
                };
                let text = format!(
                    "{pct} % used ({} of {})",
                    crate::spec::human(*used),
                    crate::spec::human(*size)
                );
                if pct >= u64::from(t.fill_max_percent) {
                    push(
                        Level::Warn,
                        &what,
                        format!("{text}: at or above {} %", t.fill_max_percent),
                    );
                } else {
                    push(Level::Ok, &what, text);
                }
            }
        }
    }
    out
}

/// The worst level (Ok when there are no findings).
pub fn worst(findings: &[Finding]) -> Level {
    findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000;

    fn facts() -> Facts {
        Facts {
            now: NOW,
            subvols: vec!["@home".into(), "@rootTW".into()],
            usb: Ok(vec![
                Newest {
                    subvol: "@home".into(),
                    time: NOW - 3600,
                    name: "atlantis/@home.x".into(),
                },
                Newest {
                    subvol: "@rootTW".into(),
                    time: NOW - 2 * DAY,
                    name: "atlantis/@rootTW.x".into(),
                },
            ]),
            restic: None,
            last_drill: None,
            esp_sync: Some(Ok(0)),
            boot_order: BootOrder::Known {
                ours: vec![1, 2],
                order: vec![2, 1, 0],
            },
            fill: vec![("LINBKUP".into(), Ok((50, 100)))],
        }
    }

    fn drill(booted: bool, age: i64) -> Record {
        Record {
            time: NOW - age,
            spec: "s".into(),
            host: "atlantis".into(),
            from: "usb".into(),
            verdict: if booted { "booted" } else { "failed" }.into(),
            stage: "boot".into(),
            reason: "the boot failed: \"Kernel panic\"".into(),
            points: vec![],
            bytes: 0,
            mb_per_s: 0.0,
            restore_secs: 1.0,
            boot_secs: Some(2.0),
            accel: "tcg".into(),
            console_tail: vec![],
            kept: None,
        }
    }

    fn lines(f: &Facts) -> Vec<String> {
        evaluate(f, &Health::default())
            .iter()
            .map(Finding::line)
            .collect()
    }

    #[test]
    fn fresh_points_a_recent_drill_synced_esps_are_healthy() {
        let mut f = facts();
        f.last_drill = Some(drill(true, 3 * DAY));
        let found = evaluate(&f, &Health::default());
        assert_eq!(worst(&found), Level::Ok, "{found:#?}");
        assert_eq!(
            lines(&f),
            vec![
                "OK   usb @home: newest point 1 h 0 min old (atlantis/@home.x)",
                "OK   usb @rootTW: newest point 2 d 0 h old (atlantis/@rootTW.x)",
                "OK   drill: the last drill booted, 3 d 0 h ago",
                "OK   esp-sync: ESP1 is a mirror of ESP0",
                "OK   boot-order: our entries lead BootOrder (0002,0001,0000)",
                "OK   fill LINBKUP: 50 % used (50 B of 100 B)",
            ]
        );
    }

    #[test]
    fn a_stale_or_missing_point_fails() {
        let mut f = facts();
        f.last_drill = Some(drill(true, DAY));
        if let Ok(n) = &mut f.usb {
            n[1].time = NOW - 8 * DAY;
            n.remove(0);
        }
        let found = evaluate(&f, &Health::default());
        assert_eq!(worst(&found), Level::Fail);
        assert_eq!(
            found[0].line(),
            "FAIL usb @home: no restore point on the backup drive"
        );
        assert_eq!(
            found[1].line(),
            "FAIL usb @rootTW: newest point 8 d 0 h old (atlantis/@rootTW.x): older than 7 days"
        );
        let t = Health {
            usb_max_age_days: 9,
            ..Health::default()
        };
        assert_eq!(evaluate(&f, &t)[1].level, Level::Ok);
    }

    #[test]
    fn the_last_drill_decides_its_finding() {
        let mut f = facts();
        f.last_drill = Some(drill(false, DAY));
        let found = evaluate(&f, &Health::default());
        assert_eq!(found[2].level, Level::Fail);
        assert!(
            found[2].text.contains("failed: the boot failed"),
            "{:?}",
            found[2]
        );
        f.last_drill = Some(drill(true, 40 * DAY));
        assert_eq!(evaluate(&f, &Health::default())[2].level, Level::Warn);
        f.last_drill = None;
        assert_eq!(evaluate(&f, &Health::default())[2].level, Level::Warn);
    }

    #[test]
    fn esps_out_of_sync_boot_order_and_fill_warn() {
        let mut f = facts();
        f.last_drill = Some(drill(true, DAY));
        f.esp_sync = Some(Ok(3));
        f.boot_order = BootOrder::Known {
            ours: vec![1, 2],
            order: vec![0, 1, 2],
        };
        f.fill = vec![("LINPOOL".into(), Ok((85, 100)))];
        let found = evaluate(&f, &Health::default());
        assert_eq!(worst(&found), Level::Warn);
        assert_eq!(
            found[3].line(),
            "WARN esp-sync: ESP1 differs from ESP0 in 3 places: run `lifeboat esp-sync`"
        );
        assert!(found[4]
            .line()
            .starts_with("WARN boot-order: our entries do not lead"));
        assert!(
            found[5].line().ends_with("at or above 85 %"),
            "{}",
            found[5].line()
        );
        f.boot_order = BootOrder::Unknown("no efivarfs".into());
        assert_eq!(
            evaluate(&f, &Health::default())[4].line(),
            "OK   boot-order: unknown (no efivarfs)"
        );
    }

    #[test]
    fn restic_is_judged_only_when_configured() {
        let mut f = facts();
        f.last_drill = Some(drill(true, DAY));
        f.restic = Some(Ok(Some(("abcd1234".into(), NOW - 4 * DAY))));
        let found = evaluate(&f, &Health::default());
        assert_eq!(
            found[2].line(),
            "WARN restic: newest snapshot abcd1234 4 d 0 h old: older than 3 days"
        );
        f.restic = Some(Ok(None));
        assert_eq!(evaluate(&f, &Health::default())[2].level, Level::Fail);
        f.restic = Some(Err("no password".into()));
        assert_eq!(evaluate(&f, &Health::default())[2].level, Level::Warn);
    }

    #[test]
    fn an_unreadable_drive_fails() {
        let mut f = facts();
        f.usb = Err("usb was not found".into());
        let found = evaluate(&f, &Health::default());
        assert_eq!(
            found[0].line(),
            "FAIL usb: the backup drive's points cannot be read: usb was not found"
        );
        assert_eq!(Level::Fail.exit_code(), 2);
    }
}
