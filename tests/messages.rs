//! What lifeboat says when its input or its environment is wrong: a password inside
//! RESTIC_REPOSITORY never printed or logged, a run log that cannot be written where it was
//! asked for, a spec that is a device or a directory or far too big, and each cause of an
//! error said once.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{spec_path, Image, Loop};

const DISK1: u64 = 2_000_000_000_000;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// lifeboat with PATH and these variables only.
fn lifeboat(vars: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run lifeboat")
}

/// The lines of stderr other than the pointer to the log.
fn said(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("lifeboat: log:"))
        .map(str::to_owned)
        .collect()
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_password_in_restic_repository_is_never_printed_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("restic.pw");
    std::fs::write(&password_file, "correct horse battery\n").unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret = "Rest-Server-Pw-4711";
    let port = closed_port();
    let repo = format!("rest:http://atlantis:{secret}@127.0.0.1:{port}/");
    let shown = format!("rest:http://atlantis:***@127.0.0.1:{port}/");
    // The spec's [restic] files are not there; the environment names the repository.
    let spec = dir.path().join("atlantis.toml");
    std::fs::write(
        &spec,
        std::fs::read_to_string(spec_path()).unwrap().replace(
            "/etc/lifeboat/",
            &format!("{}/absent-", dir.path().display()),
        ),
    )
    .unwrap();
    let logs = dir.path().join("logs");
    let cache = dir.path().join("cache");
    let disk1 = Loop::attach(&Image::sparse(dir.path(), "disk1.img", DISK1).path);
    let repo_os = PathBuf::from(&repo);
    let vars: Vec<(&str, &Path)> = vec![
        ("RESTIC_REPOSITORY", &repo_os),
        ("RESTIC_PASSWORD_FILE", &password_file),
        ("RESTIC_CACHE_DIR", &cache),
        ("LIFEBOAT_LOG_DIR", &logs),
        // One retry, so that the "trying again" line is shown too.
        ("LIFEBOAT_RESTIC_BACKOFF", Path::new("0.1")),
    ];
    let spec = spec.to_str().unwrap();
    let bind = format!("disk1={}", disk1.path());
    for args in [
        vec!["inventory", spec, "--from", "restic"],
        vec![
            "restore", spec, "--from", "restic", "--latest", "--disk", &bind,
        ],
    ] {
        let out = lifeboat(&vars, &args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail:\n{err}");
        assert!(
            !err.contains(secret),
            "{args:?} printed the password:\n{err}"
        );
        // The repository is named, as restic shows it.
        assert!(
            err.lines().filter(|l| l.contains(&shown)).count() >= 2,
            "the retry and the error name {shown}; {args:?}:\n{err}"
        );
    }
    let log: Vec<PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(log.len(), 1, "the restore's run log: {log:?}");
    let log = std::fs::read_to_string(&log[0]).unwrap();
    assert!(!log.contains(secret), "the log has the password:\n{log}");
    assert!(
        log.contains("$ restic snapshots")
            && log
                .lines()
                .any(|l| l.contains("error: ") && l.contains(&shown)),
        "{log}"
    );
}

/// A provision that writes nothing (`--dry-run`) with the log directory given.
fn dry_run(dir: &Path, log_dir: &Path, tmp: &Path) -> Output {
    let usb = Loop::attach(&Image::sparse(dir, "usb.img", 4_500_000_000_000).path);
    let spec = spec_path();
    lifeboat(
        &[("LIFEBOAT_LOG_DIR", log_dir), ("TMPDIR", tmp)],
        &[
            "provision",
            spec.to_str().unwrap(),
            "--disk",
            &format!("usb={}", usb.path()),
            "--only",
            "usb",
            "--dry-run",
        ],
    )
}

#[test]
fn an_unwritable_log_dir_is_warned_about_and_the_log_goes_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    // Under a regular file: no directory can be made there, not even by root.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let log_dir = file.join("logs");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    let out = dry_run(dir.path(), &log_dir, &tmp);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = said(&out);
    assert_eq!(lines.len(), 1, "one warning expected: {lines:?}");
    let w = &lines[0];
    assert!(
        w.starts_with(&format!(
            "lifeboat: warning: cannot write the run log in {} (LIFEBOAT_LOG_DIR): Not a directory",
            log_dir.display()
        )),
        "{w}"
    );
    let moved = w
        .rsplit_once("it goes to ")
        .map(|(_, p)| PathBuf::from(p.trim_end_matches(" instead")))
        .unwrap_or_else(|| panic!("no new place in: {w}"));
    assert!(moved.starts_with(tmp.join("lifeboat")), "{w}");
    let log = std::fs::read_to_string(&moved).unwrap();
    assert!(
        log.contains("provision, started") && log.contains("$ blkid"),
        "{log}"
    );

    // Nowhere to write at all: said once, and the run still goes on.
    let out = dry_run(dir.path(), &log_dir, &file.join("tmp"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = said(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("lifeboat: warning: no run log for this run: cannot write in")
            && lines[0].ends_with("going on without one"),
        "{lines:?}"
    );
}

/// `lifeboat check PATH`, killed if it has not finished within 10 s.
fn check_within(path: &Path) -> (bool, Vec<String>, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("check")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lifeboat check {} still reading after 10 s", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), said(&out), started.elapsed())
}

#[test]
fn a_spec_that_is_a_device_a_directory_or_huge_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, lines, took) = check_within(Path::new("/dev/urandom"));
    assert!(!ok && took < Duration::from_secs(5));
    assert_eq!(
        lines,
        ["lifeboat: /dev/urandom is a character device, not a spec: a spec is a TOML file (like configs/examples/laptop.toml)"]
    );

    let big = dir.path().join("big.toml");
    let mut text = String::from("[machine]\nname = \"x\"\nhost = \"x\"\n");
    while text.len() <= 2 << 20 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&big, &text).unwrap();
    let (ok, lines, _) = check_within(&big);
    assert!(!ok);
    assert_eq!(
        lines,
        [format!(
            "lifeboat: {} is {} bytes, too big for a spec (at most 1048576): is it the right file?",
            big.display(),
            text.len()
        )]
    );
}

#[test]
fn each_cause_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, lines, _) = check_within(dir.path());
    assert!(!ok);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("is a directory, not a spec"), "{lines:?}");

    let missing = dir.path().join("atlantis.toml");
    let (ok, lines, _) = check_within(&missing);
    assert!(!ok);
    assert_eq!(
        lines,
        [format!(
            "lifeboat: cannot read spec {}: No such file or directory (os error 2)",
            missing.display()
        )]
    );

    // An error of the probe, under its context ("probing … for disk1").
    let spec = spec_path();
    let out = lifeboat(
        &[("LIFEBOAT_LOG_DIR", &dir.path().join("logs"))],
        &[
            "plan",
            spec.to_str().unwrap(),
            "--disk",
            &format!("disk1={}", missing.display()),
        ],
    );
    let lines = said(&out);
    assert!(!out.status.success());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        lines[0].matches("No such file or directory").count(),
        1,
        "{lines:?}"
    );
}
