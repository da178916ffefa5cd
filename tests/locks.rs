//! Two runs on the same disks: every writing command holds flock(LOCK_EX) on each whole
//! disk it writes, so a second run is refused in one sentence naming the first, and writes
//! nothing. Loop devices over sparse images of the real sizes; what is on the disks is
//! judged by sgdisk, blkid and fingerprints of the image files.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{fingerprint, run, Image, Loop};
use nix::fcntl::{Flock, FlockArg};

const DISK0: u64 = 512_000_000_000;
const DISK1: u64 = 2_000_000_000_000;
const USB: u64 = 4_500_000_000_000;

struct Machine {
    _dir: tempfile::TempDir,
    disk0: Loop,
    disk1: Loop,
    usb: Loop,
    images: Vec<std::path::PathBuf>,
}

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let i0 = Image::sparse(dir.path(), "disk0.img", DISK0);
        let i1 = Image::sparse(dir.path(), "disk1.img", DISK1);
        let iu = Image::sparse(dir.path(), "usb.img", USB);
        Machine {
            disk0: common::factory_windows(&i0.path),
            disk1: Loop::attach(&i1.path),
            usb: Loop::attach(&iu.path),
            images: vec![i0.path, i1.path, iu.path],
            _dir: dir,
        }
    }

    /// `lifeboat CMD configs/atlantis.toml --disk …(all three) EXTRA…`, not yet started.
    fn cmd(&self, cmd: &str, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        c.arg(cmd).arg(common::spec_path());
        for (id, l) in [
            ("disk0", &self.disk0),
            ("disk1", &self.disk1),
            ("usb", &self.usb),
        ] {
            c.arg("--disk").arg(format!("{id}={}", l.path()));
        }
        c.args(extra)
            .env(
                "LIFEBOAT_LOG_DIR",
                std::env::temp_dir().join("lifeboat-test-logs"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn fingerprints(&self) -> Vec<String> {
        self.images.iter().map(|p| fingerprint(p)).collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stderr without the pointer to the run log.
fn sentences(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("lifeboat: log:"))
        .map(str::to_owned)
        .collect()
}

/// The lock another writer (udev, systemd-repart, another lifeboat) would hold.
fn hold(dev: &Path) -> Flock<File> {
    let file = File::open(dev).unwrap();
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap_or_else(|e| panic!("flock {}: {e}", dev.display()))
}

/// flock(1), an independent tool, can take the disk's lock (nobody holds it any more).
fn lock_is_free(dev: &Path) -> bool {
    Command::new("flock")
        .args(["--nonblock", "--exclusive"])
        .arg(dev)
        .arg("true")
        .status()
        .unwrap()
        .success()
}

#[test]
fn every_writing_command_refuses_a_disk_another_process_holds() {
    let m = Machine::new();
    let before = m.fingerprints();
    let me = std::process::id();

    let cases: [(&str, &Loop, &str, Vec<&str>); 5] = [
        ("disk1", &m.disk1, "provision", vec!["--yes"]),
        (
            "disk1",
            &m.disk1,
            "restore",
            vec!["--from", "usb", "--latest", "--yes"],
        ),
        ("disk1", &m.disk1, "backup-boot", vec![]),
        ("disk1", &m.disk1, "boot-entries", vec!["--yes"]),
        (
            "usb",
            &m.usb,
            "stage",
            vec!["--host", "WIN-DESKTOP", "--to", "WINBKUP", "--yes"],
        ),
    ];
    for (id, disk, cmd, extra) in cases {
        let held = hold(&disk.dev);
        let out = m.cmd(cmd, &extra).output().unwrap();
        drop(held);
        let err = sentences(&out);
        assert!(
            !out.status.success(),
            "{cmd} ran while {id} was locked:\n{}",
            text(&out.stdout)
        );
        let expected = format!(
            "lifeboat: {id} ({}) is locked by another program (pid {me}: ",
            disk.path()
        );
        assert_eq!(err.len(), 1, "{cmd}: one sentence expected:\n{err:?}");
        assert!(
            err[0].starts_with(&expected)
                && err[0].ends_with("wait for it to finish, then run this again"),
            "{cmd}: {}\nexpected: {expected}…",
            err[0]
        );
        assert_eq!(
            m.fingerprints(),
            before,
            "{cmd} wrote while {id} was locked"
        );
    }
    assert!(lock_is_free(&m.disk1.dev) && lock_is_free(&m.usb.dev));
}

#[test]
fn two_provisions_at_once_exactly_one_writes() {
    let m = Machine::new();
    let a = m.cmd("provision", &["--yes"]).spawn().unwrap();
    let b = m.cmd("provision", &["--yes"]).spawn().unwrap();
    let pids = [a.id(), b.id()];
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let wrote: Vec<usize> = (0..2)
        .filter(|&i| outs[i].status.success() && !text(&outs[i].stdout).contains("Nothing to do"))
        .collect();
    let show = |i: usize| {
        format!(
            "run {i} (pid {}): {}\nstdout:\n{}\nstderr:\n{}",
            pids[i],
            outs[i].status,
            text(&outs[i].stdout),
            text(&outs[i].stderr)
        )
    };
    assert_eq!(
        wrote.len(),
        1,
        "exactly one run must write:\n{}\n{}",
        show(0),
        show(1)
    );
    let (winner, other) = (wrote[0], 1 - wrote[0]);
    // The other one found the disks locked (or, started late, found nothing to do).
    if !outs[other].status.success() {
        let err = sentences(&outs[other]);
        assert_eq!(err.len(), 1, "{}", show(other));
        assert!(
            err[0].contains(&format!(
                "is being written by another lifeboat run (pid {}: lifeboat provision ",
                pids[winner]
            )),
            "{}",
            show(other)
        );
    }

    // One consistent GPT per disk, the partitions the spec asks for.
    for (disk, types) in [
        (&m.disk1, &["vfat", "ext4", "swap", "btrfs"][..]),
        (&m.usb, &["ntfs", "ext4", "btrfs"][..]),
    ] {
        let verify = run(&["sgdisk", "-v", disk.path()]);
        assert!(verify.contains("No problems found"), "{verify}");
        for (i, want) in types.iter().enumerate() {
            let node = format!("{}p{}", disk.path(), i + 1);
            let kv = run(&["blkid", "-p", "-o", "export", &node]);
            assert!(
                kv.lines().any(|l| l == format!("TYPE={want}")),
                "{node}: {kv}"
            );
        }
    }
    assert!(lock_is_free(&m.disk1.dev) && lock_is_free(&m.usb.dev));
    let again = m.cmd("provision", &["--yes"]).output().unwrap();
    assert!(
        text(&again.stdout).contains("Nothing to do"),
        "after the race the machine is not finished:\n{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
}

/// `provision --wipe` runs wipefs on the whole disk it holds locked; with util-linux asked to
/// lock devices too (LOCK_BLOCK_DEVICE=1), wipefs would wait for lifeboat's own lock forever.
#[test]
fn wiping_a_disk_under_its_own_lock_does_not_wait_for_itself() {
    let m = Machine::new();
    run(&["sgdisk", "-n", "1:0:+1G", "-c", "1:foreign", m.disk1.path()]);
    let mut child = m
        .cmd(
            "provision",
            &["--only", "disk1", "--wipe", "disk1", "--yes"],
        )
        .env("LOCK_BLOCK_DEVICE", "1")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "provision --wipe still running after 120 s:\n{}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let verify = run(&["sgdisk", "-v", m.disk1.path()]);
    assert!(verify.contains("No problems found"), "{verify}");
    let p = run(&["sgdisk", "-p", m.disk1.path()]);
    assert!(!p.contains("foreign") && p.contains("LINPOOL"), "{p}");
}
