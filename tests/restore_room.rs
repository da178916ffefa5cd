//! The room check of `lifeboat restore` counts what Btrfs keeps for itself. On a pool of
//! about 300 MiB (the Atlantis spec with the swap taking the rest of the 2 TB disk), a
//! backup of 235 MiB is less than the partition but more than Btrfs holds of files on it:
//! the restore must refuse before it writes anything (disk1's bytes unchanged), instead of
//! provisioning and stopping with ENOSPC halfway. A backup of 120 MiB (@home) on the same
//! pool restores (`btrfs subvolume list` shows it, its file's sha256 matches).

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::{fingerprint, lifeboat, run, send_receive, Image, Loop, Mount};
use sha2::{Digest, Sha256};

const DISK0: u64 = 512_000_000_000;
const DISK1: u64 = 2_000_000_000_000;
const USB: u64 = 4_500_000_000_000;
const MIB: usize = 1 << 20;

/// `len` bytes of /dev/urandom: incompressible, as media files are.
fn random(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut out)
        .unwrap();
    out
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_restore_that_fits_the_partition_but_not_btrfs_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let spec: PathBuf = dir.path().join("small-pool.toml");
    let atlantis = fs::read_to_string(common::spec_path()).unwrap();
    let small = atlantis
        .replace("size = \"64GiB\"", "size = \"1905500MiB\"")
        .replace("min_size = \"1900GB\"", "min_size = \"2000GB\"");
    assert_ne!(
        small, atlantis,
        "the swap line of configs/atlantis.toml moved"
    );
    fs::write(&spec, small).unwrap();
    let spec = spec.to_str().unwrap();

    let disk0_img = Image::sparse(dir.path(), "disk0.img", DISK0).path;
    let disk0 = common::factory_windows(&disk0_img);
    let disk1_img = Image::sparse(dir.path(), "disk1.img", DISK1).path;
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let disk1 = Loop::attach(&disk1_img);
    let usb = Loop::attach(&usb_img);
    let d0 = format!("disk0={}", disk0.dev.display());
    let d1 = format!("disk1={}", disk1.dev.display());
    let u = format!("usb={}", usb.dev.display());
    let out = lifeboat(&[
        "provision",
        spec,
        "--only",
        "disk1",
        "--only",
        "usb",
        "--disk",
        &d0,
        "--disk",
        &d1,
        "--disk",
        &u,
        "--yes",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let node = |n: u32| format!("{}p{n}", disk1.dev.display());
    let pool_bytes: u64 = run(&["blockdev", "--getsize64", &node(4)])
        .trim()
        .parse()
        .unwrap();
    assert!(
        (250 << 20..350 << 20).contains(&pool_bytes),
        "pool of {pool_bytes} bytes"
    );

    // @rootF41 with 235 MiB, @home with 120 MiB: made on LINBKUP itself (the small pool
    // cannot hold both), snapshotted read-only and sent into the host's directory there.
    let big = random(235 * MIB);
    let fits = random(120 * MIB);
    {
        let linbkup = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
        let l = linbkup.path();
        let host = l.join("atlantis");
        fs::create_dir_all(&host).unwrap();
        fs::create_dir_all(l.join("scratch")).unwrap();
        let point = |subvol: &str, file: &str, bytes: &[u8]| {
            let live = l.join("scratch").join(subvol);
            run(&["btrfs", "subvolume", "create", live.to_str().unwrap()]);
            fs::write(live.join(file), bytes).unwrap();
            let snap = l.join("scratch").join(format!("{subvol}.20261120T0300"));
            run(&[
                "btrfs",
                "subvolume",
                "snapshot",
                "-r",
                live.to_str().unwrap(),
                snap.to_str().unwrap(),
            ]);
            send_receive(&snap, None, &host);
        };
        point("@rootF41", "big.img", &big);
        point("@home", "media.bin", &fits);
    }

    // disk1 dies: a blank disk of the same size takes its place.
    let _ = std::process::Command::new("partx")
        .arg("-d")
        .arg(&disk1.dev)
        .output();
    {
        let f = fs::OpenOptions::new().write(true).open(&disk1_img).unwrap();
        f.set_len(0).unwrap();
        f.set_len(DISK1).unwrap();
    }
    run(&["blockdev", "--flushbufs", disk1.path()]);
    let blank = fingerprint(&disk1_img);

    let restore = |subvol: &str| {
        lifeboat(&[
            "restore", spec, "--from", "usb", "--latest", "--subvol", subvol, "--disk", &d0,
            "--disk", &d1, "--disk", &u, "--yes",
        ])
    };
    let out = restore("@rootF41");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "the restore went ahead:\n{}",
        text(&out)
    );
    assert!(said.contains("not enough room"), "{said}");
    assert!(said.contains("restore fewer subvolumes"), "{said}");
    assert!(
        !said.contains("running the same command again"),
        "a re-run cannot make room: {said}"
    );
    assert_eq!(
        fingerprint(&disk1_img),
        blank,
        "disk1 was written before the refusal"
    );

    let out = restore("@home");
    assert!(out.status.success(), "{}", text(&out));
    let pool = Mount::new(Path::new(&node(4)), "btrfs");
    let list = run(&["btrfs", "subvolume", "list", pool.path().to_str().unwrap()]);
    assert!(list.lines().any(|l| l.ends_with(" path @home")), "{list}");
    let restored = fs::read(pool.path().join("@home/media.bin")).unwrap();
    assert_eq!(sha256(&restored), sha256(&fits));
}
