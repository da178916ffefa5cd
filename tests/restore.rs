//! `lifeboat inventory` on a real backup drive: the usb disk provisioned by lifeboat on a
//! loop device (4.5 TB sparse), btrbk-style snapshots sent into LINBKUP with real `btrfs
//! send | btrfs receive` (a full one, then an incremental one), a snapper layout, and raw
//! stream files (plain and zstd). What inventory reports is checked against `btrfs
//! subvolume show` and `btrfs receive --dump`.

mod common;

use std::path::Path;

use common::{lifeboat, run, send_receive, spec_path, write, Image, Loop, Mount};

const USB: u64 = 4_500_000_000_000;

/// `uuid`, `parent_uuid`, `received_uuid` of a subvolume, as `btrfs subvolume show` says.
fn show(path: &Path) -> (String, String, String) {
    let text = run(&["btrfs", "subvolume", "show", path.to_str().unwrap()]);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    (
        field("UUID:"),
        field("Parent UUID:"),
        field("Received UUID:"),
    )
}

#[test]
fn inventory_lists_btrbk_snapper_and_stream_points_with_their_chains() {
    let dir = tempfile::tempdir().unwrap();
    let usb = Loop::attach(&Image::sparse(dir.path(), "usb.img", USB).path);
    let usb_arg = format!("usb={}", usb.dev.display());
    let spec = spec_path();
    let spec = spec.to_str().unwrap();

    // Before the drive is provisioned: one sentence naming the partition.
    let out = lifeboat(&["inventory", spec, "--disk", &usb_arg]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("partition 3 of usb") && err.contains("holds nothing"),
        "{err}"
    );

    let out = lifeboat(&[
        "provision",
        spec,
        "--only",
        "usb",
        "--disk",
        &usb_arg,
        "--yes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The machine's pool, small: @home with a snapshot per day.
    let pool_img = Image::sparse(dir.path(), "pool.img", 1 << 30);
    run(&[
        "mkfs.btrfs",
        "-q",
        "-L",
        "LINPOOL",
        pool_img.path.to_str().unwrap(),
    ]);
    let pool_loop = Loop::attach(&pool_img.path);
    let pool = Mount::new(&pool_loop.dev, "btrfs");
    let p = pool.path();
    run(&[
        "btrfs",
        "subvolume",
        "create",
        p.join("@home").to_str().unwrap(),
    ]);
    write(&p.join("@home/alice/notes.txt"), b"monday");
    let snap = |name: &str| {
        let to = p.join(name);
        run(&[
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            p.join("@home").to_str().unwrap(),
            to.to_str().unwrap(),
        ]);
        to
    };
    let s1 = snap("@home.20261119T0300");
    write(&p.join("@home/alice/notes.txt"), b"tuesday");
    let s2 = snap("@home.20261120T0300_1");
    write(&p.join("@home/alice/more.txt"), b"wednesday");
    let s3 = snap("@home.20261121T031500+0100");

    let linbkup = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
    let b = linbkup.path();
    let host = b.join("atlantis");
    std::fs::create_dir_all(&host).unwrap();
    send_receive(&s1, None, &host);
    send_receive(&s2, Some(&s1), &host);
    // snapper's layout: <subvol>/.snapshots/<N>/snapshot beside info.xml.
    let snapper = host.join("@rootTW/.snapshots/12");
    std::fs::create_dir_all(&snapper).unwrap();
    write(
        &snapper.join("info.xml"),
        b"<?xml version=\"1.0\"?>\n<snapshot>\n  <type>pre</type>\n  <num>12</num>\n  \
          <date>2026-11-21 02:00:00</date>\n  <description>zypper dup</description>\n</snapshot>\n",
    );
    run(&[
        "btrfs",
        "subvolume",
        "create",
        snapper.join("snapshot").to_str().unwrap(),
    ]);
    // Raw streams: the third snapshot incremental on the second, and a full one in zstd.
    let raw = b.join("raw-snapshots/atlantis");
    std::fs::create_dir_all(&raw).unwrap();
    let incr = raw.join("@home.20261121T031500+0100.btrfs");
    run(&[
        "btrfs",
        "send",
        "-q",
        "-p",
        s2.to_str().unwrap(),
        "-f",
        incr.to_str().unwrap(),
        s3.to_str().unwrap(),
    ]);
    let full = raw.join("@home.20261119T0300.btrfs");
    run(&[
        "btrfs",
        "send",
        "-q",
        "-f",
        full.to_str().unwrap(),
        s1.to_str().unwrap(),
    ]);
    run(&["zstd", "-q", "--rm", full.to_str().unwrap()]);
    std::fs::write(raw.join("README.txt"), "not a stream").unwrap();
    // A directory only a spec naming it in backup_dirs looks in.
    let archive = b.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    send_receive(&s1, None, &archive);

    // What independent tools say.
    let (r1_uuid, _, r1_received) = show(&host.join("@home.20261119T0300"));
    let (_, r2_parent, r2_received) = show(&host.join("@home.20261120T0300_1"));
    let (s1_uuid, _, _) = show(&s1);
    let (s2_uuid, _, _) = show(&s2);
    let (s3_uuid, _, _) = show(&s3);
    let incr_size = std::fs::metadata(&incr).unwrap().len();
    assert_eq!(r1_received, s1_uuid);
    assert_eq!(r2_received, s2_uuid);
    assert_eq!(r2_parent, r1_uuid, "receive made the second from the first");
    let dump = run(&["btrfs", "receive", "--dump", "-f", incr.to_str().unwrap()]);
    let first = dump.lines().next().unwrap();
    assert!(first.starts_with("snapshot"), "{first}");
    assert!(first.contains(&format!("parent_uuid={s2_uuid}")), "{first}");
    drop(linbkup);

    let out = lifeboat(&["inventory", spec, "--disk", &usb_arg, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subvols = inv["subvols"].as_array().unwrap();
    let names: Vec<&str> = subvols
        .iter()
        .map(|s| s["subvol"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["@home", "@rootTW"]);
    let home: Vec<&serde_json::Value> = subvols[0]["points"].as_array().unwrap().iter().collect();
    let summary: Vec<(&str, &str, Option<&str>)> = home
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap(),
                p["path"].as_str().unwrap(),
                p["parent"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            // 03:15 at +01:00 is 02:15 UTC on the 21st: newest.
            (
                "stream",
                "raw-snapshots/atlantis/@home.20261121T031500+0100.btrfs",
                Some("atlantis/@home.20261120T0300_1")
            ),
            (
                "btrbk",
                "atlantis/@home.20261120T0300_1",
                Some("atlantis/@home.20261119T0300")
            ),
            ("btrbk", "atlantis/@home.20261119T0300", None),
            (
                "stream",
                "raw-snapshots/atlantis/@home.20261119T0300.btrfs.zst",
                None
            ),
        ]
    );
    assert_eq!(home[0]["uuid"].as_str(), Some(s3_uuid.as_str()));
    assert_eq!(home[1]["received_uuid"].as_str(), Some(s2_uuid.as_str()));
    assert_eq!(home[1]["parent_uuid"].as_str(), Some(r1_uuid.as_str()));
    assert_eq!(home[3]["compressed"], true);
    assert!(home[3]["size"].as_u64().unwrap() > 0);
    assert_eq!(home[0]["size"].as_u64(), Some(incr_size));
    let tw = &subvols[1]["points"][0];
    assert_eq!(tw["kind"], "snapper");
    assert_eq!(tw["seq"], 12);
    assert_eq!(tw["note"], "zypper dup");
    // Taken in 2026-11; "now" is later than a week after: every subvolume is warned about.
    let err = String::from_utf8_lossy(&out.stderr);
    let now_is_late = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        > 1_795_143_600 + 8 * 86_400;
    assert_eq!(
        err.contains("warning: the newest point of @home"),
        now_is_late,
        "{err}"
    );

    // The text form, for people.
    let out = lifeboat(&["inventory", spec, "--disk", &usb_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("@home — 4 points"), "{text}");
    assert!(!text.contains("archive/"), "{text}");

    // A spec with backup_dirs = ["archive"] finds the point there too.
    let with_archive = dir.path().join("atlantis-archive.toml");
    let spec_text = std::fs::read_to_string(spec_path()).unwrap().replace(
        "host = \"atlantis\"\n",
        "host = \"atlantis\"\nbackup_dirs = [\"archive\"]\n",
    );
    assert!(spec_text.contains("backup_dirs"));
    std::fs::write(&with_archive, spec_text).unwrap();
    let out = lifeboat(&[
        "inventory",
        with_archive.to_str().unwrap(),
        "--disk",
        &usb_arg,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("@home — 5 points"), "{text}");
    assert!(text.contains("archive/@home.20261119T0300"), "{text}");
    assert!(text.contains("looked in: atlantis/, /, archive/"), "{text}");
    assert!(
        text.contains("2026-11-21 02:15:00 UTC")
            && text.contains("(from atlantis/@home.20261120T0300_1)"),
        "{text}"
    );
}

/// Names of the shape of a btrbk point with a multi-byte character where the digits are
/// (the byte offsets a time is read at fall inside it): not points, and no panic, neither
/// on the backup drive nor after `--at`.
#[test]
fn names_with_multibyte_characters_are_not_points() {
    const ODD: &str = "20261120T12345ü6789";
    let dir = tempfile::tempdir().unwrap();
    let usb = Loop::attach(&Image::sparse(dir.path(), "usb.img", USB).path);
    let usb_arg = format!("usb={}", usb.dev.display());
    let spec = spec_path();
    let spec = spec.to_str().unwrap();
    let out = lifeboat(&[
        "provision",
        spec,
        "--only",
        "usb",
        "--disk",
        &usb_arg,
        "--yes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let linbkup = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
        let b = linbkup.path();
        let host = b.join("atlantis");
        std::fs::create_dir_all(host.join("raw")).unwrap();
        for name in [format!("@home.{ODD}"), "@home.20261120T0300".into()] {
            run(&[
                "btrfs",
                "subvolume",
                "create",
                host.join(&name).to_str().unwrap(),
            ]);
        }
        let raw = b.join("raw-snapshots/atlantis");
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(raw.join(format!("@home.{ODD}.btrfs")), b"not a stream").unwrap();
    }

    let out = lifeboat(&["inventory", spec, "--disk", &usb_arg, "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let inv: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = inv["subvols"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap())
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["atlantis/@home.20261120T0300"]);

    let out = lifeboat(&["restore", spec, "--from", "usb", "--at", ODD]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("--at \"{ODD}\" is not a time")) && !err.contains("panicked"),
        "{err}"
    );
}
