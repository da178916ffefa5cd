//! The per-run log file: every command line lifeboat runs and every step it announces,
//! so that a run can be reconstructed afterwards. Its path is printed at the end of a run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

static LOG: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);
/// When the log started: each line says how many seconds after it (what took long).
static STARTED: Mutex<Option<std::time::Instant>> = Mutex::new(None);

/// Start logging this run to a new file in `dir` (created if needed), named after the
/// command and the time. Returns the file's path.
pub fn start_in(dir: &Path, command: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = utc_stamp(secs);
    let (path, file) = create_unique(dir, command, &stamp)?;
    if let Ok(mut log) = LOG.lock() {
        *log = Some((path.clone(), file));
    }
    if let Ok(mut started) = STARTED.lock() {
        *started = Some(std::time::Instant::now());
    }
    line(&format!(
        "lifeboat {} {command}, started {stamp} UTC",
        env!("CARGO_PKG_VERSION")
    ));
    Ok(path)
}

/// A new file `COMMAND-STAMP.log` in `dir`, or `COMMAND-STAMP-N.log` when that is taken.
/// Two runs started in the same second (two provisions racing for one disk lock) ask for
/// the same name: create_new decides which gets it, and the other takes the next.
fn create_unique(dir: &Path, command: &str, stamp: &str) -> std::io::Result<(PathBuf, File)> {
    let mut n = 1;
    loop {
        let path = match n {
            1 => dir.join(format!("{command}-{stamp}.log")),
            n => dir.join(format!("{command}-{stamp}-{n}.log")),
        };
        match OpenOptions::new().create_new(true).append(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The default place for run logs: `$LIFEBOAT_LOG_DIR`, else /var/log/lifeboat, else the
/// temp dir (the live image's /var may be read-only).
///
/// A log that cannot be written where it was asked for never stops a rescue: a
/// LIFEBOAT_LOG_DIR that cannot be written gets a warning on stderr and the log goes to
/// the temp dir; when no log can be written at all, a warning says so and the run goes on.
pub fn start(command: &str) -> std::io::Result<PathBuf> {
    let fallback = std::env::temp_dir().join("lifeboat");
    let asked = std::env::var_os("LIFEBOAT_LOG_DIR").map(PathBuf::from);
    let first = asked
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/log/lifeboat"));
    let e = match start_in(&first, command) {
        Ok(path) => return Ok(path),
        Err(e) => e,
    };
    match start_in(&fallback, command) {
        Ok(path) => {
            if asked.is_some() {
                eprintln!(
                    "lifeboat: warning: cannot write the run log in {} (LIFEBOAT_LOG_DIR): {e}; \
                     it goes to {} instead",
                    first.display(),
                    path.display()
                );
            }
            Ok(path)
        }
        Err(e2) => {
            eprintln!(
                "lifeboat: warning: no run log for this run: cannot write in {} ({e}) nor in {} \
                 ({e2}); going on without one",
                first.display(),
                fallback.display()
            );
            Err(e2)
        }
    }
}

/// The current log file, if a run log was started.
pub fn path() -> Option<PathBuf> {
    LOG.lock().ok()?.as_ref().map(|(p, _)| p.clone())
}

/// Append one line (no-op when no log was started).
pub fn line(text: &str) {
    let secs = STARTED
        .lock()
        .ok()
        .and_then(|s| s.map(|t| t.elapsed().as_secs_f64()))
        .unwrap_or(0.0);
    if let Ok(mut log) = LOG.lock() {
        if let Some((_, file)) = log.as_mut() {
            let _ = writeln!(file, "[{secs:8.3}] {text}");
        }
    }
}

/// `YYYYMMDDTHHMMSS` for a Unix time, without a date crate.
fn utc_stamp(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(secs);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}")
}

/// (year, month, day, hour, minute, second) in UTC for a Unix time.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m as u32,
        d as u32,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps() {
        assert_eq!(super::utc_stamp(0), "19700101T000000");
        // 2026-11-24 18:20:59 UTC
        assert_eq!(super::utc_stamp(1_795_544_459), "20261124T182059");
    }

    #[test]
    fn runs_started_in_the_same_second_get_their_own_logs() {
        let dir = std::env::temp_dir().join(format!("lifeboat-runlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (dir, barrier) = (dir.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    super::create_unique(&dir, "provision", "20261202T032430").map(|(path, _)| path)
                })
            })
            .collect();
        let mut paths: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().unwrap().expect("every run gets a log"))
            .collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 8, "{paths:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
