//! The drill's record: one JSON line per drill in `drills.jsonl` (what `lifeboat health`
//! reads back), and where that file is.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Where lifeboat keeps its state unless `LIFEBOAT_STATE_DIR` says otherwise.
pub const STATE_DIR: &str = "/var/lib/lifeboat";
pub const RECORD_FILE: &str = "drills.jsonl";

/// How many console lines a failed drill keeps.
pub const TAIL_LINES: usize = 30;

/// One drill, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the drill started (Unix time, UTC).
    pub time: i64,
    pub spec: String,
    pub host: String,
    /// `usb`, `restic`, `restic-stream`.
    pub from: String,
    /// `booted` or `failed`.
    pub verdict: String,
    /// Where it ended: `restore` (nothing was booted), `boot`, or `booted`.
    pub stage: String,
    /// Why it failed, one sentence; the marker line that proved the boot otherwise.
    pub reason: String,
    pub points: Vec<PointAge>,
    pub bytes: u64,
    pub mb_per_s: f64,
    pub restore_secs: f64,
    pub boot_secs: Option<f64>,
    pub accel: String,
    /// The console's last lines when the boot did not prove itself.
    pub console_tail: Vec<String>,
    /// The work directory, when it was kept (`--keep`).
    pub kept: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointAge {
    pub subvol: String,
    pub point: String,
    /// When the point was taken (Unix time), when known.
    pub time: Option<i64>,
    /// Seconds between the point and the drill.
    pub age_secs: Option<i64>,
}

impl Record {
    pub fn booted(&self) -> bool {
        self.verdict == "booted"
    }
}

/// `--record FILE`, else `$LIFEBOAT_STATE_DIR/drills.jsonl`, else
/// `/var/lib/lifeboat/drills.jsonl`.
pub fn path(explicit: Option<&Path>, state_dir: Option<&std::ffi::OsStr>) -> PathBuf {
    match (explicit, state_dir) {
        (Some(p), _) => p.to_owned(),
        (None, Some(d)) if !d.is_empty() => Path::new(d).join(RECORD_FILE),
        _ => Path::new(STATE_DIR).join(RECORD_FILE),
    }
}

/// Append the record as one line (the directory is made when missing).
pub fn append(file: &Path, record: &Record) -> Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut line = serde_json::to_string(record).context("encoding the drill's record")?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", file.display()))
}

/// Every record of the file that can be read, oldest first; lines that are not a record
/// are counted (a torn last line of a killed writer must not hide the others).
pub fn read_all(text: &str) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) => bad += 1,
        }
    }
    (out, bad)
}

/// A person's summary of a record, a few lines.
pub fn render(r: &Record) -> String {
    let mut out = String::new();
    let verdict = if r.booted() { "BOOTED" } else { "FAILED" };
    out.push_str(&format!(
        "Drill {verdict} ({} from {}): {}\n",
        r.host, r.from, r.reason
    ));
    for p in &r.points {
        let age = p
            .age_secs
            .map(|a| format!(", {} old", age_text(a)))
            .unwrap_or_default();
        out.push_str(&format!("  {}: {}{age}\n", p.subvol, p.point));
    }
    out.push_str(&format!(
        "  restore: {:.1} s, {} ({:.1} MB/s)\n",
        r.restore_secs,
        crate::spec::human(r.bytes),
        r.mb_per_s
    ));
    if let Some(b) = r.boot_secs {
        out.push_str(&format!("  boot: {b:.1} s under {}\n", r.accel));
    }
    if !r.console_tail.is_empty() {
        out.push_str("  console (last lines):\n");
        for l in &r.console_tail {
            out.push_str(&format!("    | {l}\n"));
        }
    }
    if let Some(k) = &r.kept {
        out.push_str(&format!("  kept: {k}\n"));
    }
    out
}

/// `3 d 4 h`, `5 h 2 min`, `40 s`.
pub fn age_text(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Record {
        Record {
            time: 1_795_150_000,
            spec: "configs/atlantis.toml".into(),
            host: "atlantis".into(),
            from: "usb".into(),
            verdict: "failed".into(),
            stage: "boot".into(),
            reason: "the console showed no expected line within 60 s".into(),
            points: vec![PointAge {
                subvol: "@home".into(),
                point: "atlantis/@home.20261120T0300".into(),
                time: Some(1_795_143_600),
                age_secs: Some(6400),
            }],
            bytes: 6 << 20,
            mb_per_s: 3.2,
            restore_secs: 2.0,
            boot_secs: Some(60.0),
            accel: "tcg".into(),
            console_tail: vec!["BdsDxe: failed to load".into()],
            kept: None,
        }
    }

    #[test]
    fn the_record_file_is_chosen_by_flag_then_state_dir() {
        use std::ffi::OsStr;
        assert_eq!(
            path(Some(Path::new("/t/r.jsonl")), Some(OsStr::new("/s"))),
            Path::new("/t/r.jsonl")
        );
        assert_eq!(
            path(None, Some(OsStr::new("/s"))),
            Path::new("/s/drills.jsonl")
        );
        assert_eq!(
            path(None, None),
            Path::new("/var/lib/lifeboat/drills.jsonl")
        );
        assert_eq!(
            path(None, Some(OsStr::new(""))),
            Path::new("/var/lib/lifeboat/drills.jsonl")
        );
    }

    #[test]
    fn records_are_appended_and_read_back_past_a_torn_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("state/drills.jsonl");
        let mut a = sample();
        append(&f, &a).unwrap();
        a.verdict = "booted".into();
        append(&f, &a).unwrap();
        let mut text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 2);
        text.push_str("{\"time\": 12");
        let (all, bad) = read_all(&text);
        assert_eq!((all.len(), bad), (2, 1));
        assert!(!all[0].booted() && all[1].booted());
        assert_eq!(all[1], a);
    }

    #[test]
    fn the_summary_names_points_times_and_the_console() {
        let text = render(&sample());
        assert!(
            text.starts_with("Drill FAILED (atlantis from usb): the console showed"),
            "{text}"
        );
        assert!(
            text.contains("@home: atlantis/@home.20261120T0300, 1 h 46 min old"),
            "{text}"
        );
        assert!(text.contains("boot: 60.0 s under tcg"), "{text}");
        assert!(text.contains("    | BdsDxe: failed to load"), "{text}");
    }
}
