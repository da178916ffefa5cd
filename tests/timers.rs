//! `lifeboat timers install|remove ROOT` in a directory laid out as a distro root (its
//! systemd units copied from this host): the units pass `systemd-analyze verify --root`,
//! a second install changes nothing, the alert unit's command line delivers the findings to
//! the spec's [alerts] command, and remove leaves the root as it was.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{lifeboat, run};

const UNITS: &[&str] = &[
    "lifeboat-alert@.service",
    "lifeboat-health.service",
    "lifeboat-health.timer",
    "lifeboat-drill.service",
    "lifeboat-drill.timer",
    "lifeboat-backup-boot.service",
];

/// Every path under `dir` with its size, mode, mtime and inode (or link target).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let link = fs::read_link(&p)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.push(format!(
                "{} {} {:o} {} {} {link}",
                p.display(),
                m.len(),
                m.mode(),
                m.mtime_nsec(),
                m.ino()
            ));
        }
    }
    out.sort();
    out
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn units_verify_reinstall_is_a_no_op_alerts_carry_the_findings_and_remove_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    run(&[
        "cp",
        "-a",
        "/usr/lib/systemd/system",
        root.join("usr/lib/systemd").to_str().unwrap(),
    ]);
    // Someone else's unit, which must survive.
    fs::write(
        root.join("etc/systemd/system/other.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    let bin = root.join("usr/local/bin/lifeboat");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_lifeboat"), &bin).unwrap();

    // The spec with an alert command that writes down what it got.
    let got = dir.path().join("alert.txt");
    let script = dir.path().join("notify");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf 'args=%s\\n' \"$*\" > {g}\nprintf 'unit=%s host=%s\\n' \"$LIFEBOAT_UNIT\" \"$LIFEBOAT_HOST\" >> {g}\nprintf '%s' \"$LIFEBOAT_FINDINGS\" >> {g}\n",
            g = got.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let spec = dir.path().join("atlantis.toml");
    let mut text = fs::read_to_string(common::spec_path()).unwrap();
    text.push_str(&format!(
        "\n[alerts]\ncommand = [\"{}\", \"--to\", \"me\"]\n",
        script.display()
    ));
    fs::write(&spec, text).unwrap();

    let before = listing(&root);
    let install = |spec: &Path| {
        lifeboat(&[
            "timers",
            "install",
            root.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
            "--lifeboat",
            "/usr/local/bin/lifeboat",
        ])
    };
    let said = ok(&install(&spec));
    assert_eq!(said.matches("wrote ").count(), 9, "{said}");

    let paths: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/etc/systemd/system/{u}"))
        .collect();
    let verify = Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    for t in ["lifeboat-health.timer", "lifeboat-drill.timer"] {
        let link = root.join("etc/systemd/system/timers.target.wants").join(t);
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("/etc/systemd/system").join(t)
        );
    }

    // Again: nothing is touched (same inodes, same mtimes).
    let installed = listing(&root);
    let said = ok(&install(&spec));
    assert_eq!(said.matches("unchanged ").count(), 9, "{said}");
    assert!(!said.contains("wrote"), "{said}");
    assert_eq!(listing(&root), installed);

    // The alert unit's own command line, %i as systemd fills it for the failed health check.
    let unit = fs::read_to_string(root.join("etc/systemd/system/lifeboat-alert@.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap()
        .replace("%i", "lifeboat-health.service");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/lifeboat");
    let state = dir.path().join("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(
        state.join("drills.jsonl"),
        "{\"time\":1796000000,\"spec\":\"s\",\"host\":\"atlantis\",\"from\":\"usb\",\"verdict\":\"failed\",\
         \"stage\":\"restore\",\"reason\":\"the restore failed, nothing was booted: damaged\",\"points\":[],\
         \"bytes\":0,\"mb_per_s\":0.0,\"restore_secs\":1.0,\"boot_secs\":null,\"accel\":\"tcg\",\
         \"console_tail\":[],\"kept\":null}\n",
    )
    .unwrap();
    let out = Command::new(&bin)
        .args(&argv[1..])
        .env("LIFEBOAT_STATE_DIR", &state)
        .env("LIFEBOAT_LOG_DIR", state.join("logs"))
        .output()
        .unwrap();
    ok(&out);
    let alert = fs::read_to_string(&got).unwrap();
    assert!(
        alert.starts_with("args=--to me lifeboat-health.service atlantis\nunit=lifeboat-health.service host=atlantis\n"),
        "{alert}"
    );
    assert!(
        alert.contains("FAIL drill: the last drill (")
            && alert.contains("failed: the restore failed"),
        "{alert}"
    );
    assert!(
        alert.contains("FAIL usb: the backup drive's points cannot be read"),
        "{alert}"
    );

    // Remove: the root is as it was before the install.
    let said = ok(&lifeboat(&["timers", "remove", root.to_str().unwrap()]));
    assert_eq!(said.matches("removed ").count(), 9, "{said}");
    let mut now = listing(&root);
    let mut was = before.clone();
    // The unit directory's own mtime changes with its entries; its contents must not.
    let unit_dir = root.join("etc/systemd/system");
    let not_dir = |l: &String| !l.starts_with(&format!("{} ", unit_dir.display()));
    now.retain(not_dir);
    was.retain(not_dir);
    assert_eq!(now, was);
    let said = ok(&lifeboat(&["timers", "remove", root.to_str().unwrap()]));
    assert!(
        said.contains("nothing of lifeboat's timers is installed"),
        "{said}"
    );

    let out = lifeboat(&[
        "timers",
        "install",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not look like a system root"));
}
