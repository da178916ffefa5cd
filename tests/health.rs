//! `lifeboat health` on a backup drive (a 4.5 TB sparse image on a loop device, LINBKUP made
//! by `lifeboat provision`) holding btrbk-named read-only snapshots: fresh, stale (8 days)
//! and missing points, and drills.jsonl with a failed or a booted last drill. Each finding
//! and the exit status (0 healthy, 1 warnings, 2 failures).

mod common;

use std::path::Path;

use common::{lifeboat, run, Image, Loop, Mount};

const USB: u64 = 4_500_000_000_000;
const DAY: i64 = 86_400;

fn now() -> i64 {
    lifeboat::restore::run::now()
}

/// A read-only snapshot named as btrbk names it, `age` seconds old.
fn point(host_dir: &Path, subvol: &str, age: i64) {
    let name = format!("{subvol}.{}", lifeboat::restore::run::stamp(now() - age));
    let tmp = host_dir.join(format!("{name}.tmp"));
    run(&["btrfs", "subvolume", "create", tmp.to_str().unwrap()]);
    std::fs::write(tmp.join("file"), subvol).unwrap();
    run(&[
        "btrfs",
        "subvolume",
        "snapshot",
        "-r",
        tmp.to_str().unwrap(),
        host_dir.join(&name).to_str().unwrap(),
    ]);
    run(&["btrfs", "subvolume", "delete", tmp.to_str().unwrap()]);
}

fn drill_record(file: &Path, verdict: &str, age: i64) {
    let rec = serde_json::json!({
        "time": now() - age, "spec": "atlantis.toml", "host": "atlantis", "from": "usb",
        "verdict": verdict, "stage": "boot",
        "reason": if verdict == "booted" { "the console showed \"login:\"" } else { "the boot failed: \"Kernel panic - not syncing\"" },
        "points": [], "bytes": 1, "mb_per_s": 1.0, "restore_secs": 1.0, "boot_secs": 20.0,
        "accel": "tcg", "console_tail": [], "kept": null
    });
    let mut text = std::fs::read_to_string(file).unwrap_or_default();
    text.push_str(&format!("{rec}\n"));
    std::fs::write(file, text).unwrap();
}

fn health(spec: &Path, usb: &Loop, state: &Path) -> (i32, String) {
    let bind = format!("usb={}", usb.dev.display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["health", spec.to_str().unwrap(), "--disk", &bind])
        .env("LIFEBOAT_STATE_DIR", state)
        .env("LIFEBOAT_LOG_DIR", state.join("logs"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn fresh_stale_and_missing_points_and_the_last_drill() {
    let dir = tempfile::tempdir().unwrap();
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let usb = Loop::attach(&usb_img);
    let spec = common::spec_path();
    let bind = format!("usb={}", usb.dev.display());
    let out = lifeboat(&[
        "provision",
        spec.to_str().unwrap(),
        "--only",
        "usb",
        "--disk",
        &bind,
        "--yes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    {
        let bk = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
        let host = bk.path().join("atlantis");
        std::fs::create_dir_all(&host).unwrap();
        point(&host, "@home", 3600);
        point(&host, "@rootTW", 8 * DAY);
        point(&host, "@rootF41", 2 * DAY);
    }
    drill_record(&state.join("drills.jsonl"), "booted", 20 * DAY);
    drill_record(&state.join("drills.jsonl"), "failed", DAY);

    let (code, text) = health(&spec, &usb, &state);
    assert_eq!(code, 2, "{text}");
    let has = |line: &str| text.lines().any(|l| l.starts_with(line));
    assert!(
        has("OK   usb @home: newest point 1 h 0 min old (atlantis/@home."),
        "{text}"
    );
    assert!(has("OK   usb @rootF41: newest point 2 d 0 h old"), "{text}");
    assert!(has("FAIL usb @rootTW: newest point 8 d 0 h old"), "{text}");
    assert!(text.contains("): older than 7 days"), "{text}");
    assert!(
        has("FAIL usb Atlantis-meta: no restore point on the backup drive"),
        "{text}"
    );
    assert!(
        has("FAIL drill: the last drill (1 d 0 h ago) failed: the boot failed"),
        "{text}"
    );
    assert!(has("OK   fill LINBKUP: 0 % used"), "{text}");
    assert!(
        has("WARN fill LINPOOL: unknown: disk1 was not found"),
        "{text}"
    );

    // Everything fresh, the last drill booted: only what cannot be seen here warns.
    {
        let bk = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
        let host = bk.path().join("atlantis");
        for s in ["@rootTW", "@rootNobara", "Atlantis-meta"] {
            point(&host, s, 600);
        }
    }
    drill_record(&state.join("drills.jsonl"), "booted", 3600);
    let (code, text) = health(&spec, &usb, &state);
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        has_line(&text, "OK   drill: the last drill booted, 1 h 0 min ago"),
        "{text}"
    );
    assert!(
        has_line(&text, "OK   usb @rootTW: newest point 10 min old"),
        "{text}"
    );
    assert_eq!(code, 1, "{text}");
}

fn has_line(text: &str, start: &str) -> bool {
    text.lines().any(|l| l.starts_with(start))
}
