//! `lifeboat disks --json` and `lifeboat plan` read real devices made by independent tools
//! (sgdisk, sfdisk, mkfs, mkswap), and see what uses them.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, Image, Loop, Mount};

fn lifeboat(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The probe of one device, as `lifeboat disks --json` prints it.
fn probed(dev: &Path) -> serde_json::Value {
    let (ok, out, err) = lifeboat(&["disks", "--json"]);
    assert!(ok, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == dev.to_str().unwrap())
        .cloned()
        .unwrap_or_else(|| panic!("{} not listed:\n{out}", dev.display()))
}

#[test]
fn gpt_filesystems_and_subvolumes_as_sgdisk_made_them() {
    let dir = tempfile::tempdir().unwrap();
    let img = Image::sparse(dir.path(), "d.img", 2_000_000_000_000);
    let lo = Loop::attach(&img.path);
    let d = lo.path();
    run(&[
        "sgdisk",
        "-n",
        "1:0:+512M",
        "-t",
        "1:ef00",
        "-c",
        "1:ESP",
        "-n",
        "2:0:+1G",
        "-t",
        "2:8300",
        "-c",
        "2:boot",
        "-n",
        "3:0:+10G",
        "-t",
        "3:8300",
        "-c",
        "3:pool",
        "-n",
        "4:0:+1G",
        "-t",
        "4:8300",
        "-c",
        "4:raw",
        d,
    ]);
    run(&["partx", "-a", d]);
    run(&["mkfs.vfat", "-F", "32", "-n", "ESPX", &format!("{d}p1")]);
    run(&["mkfs.ext4", "-F", "-q", "-L", "BOOTX", &format!("{d}p2")]);
    run(&["mkfs.btrfs", "-f", "-q", "-L", "POOLX", &format!("{d}p3")]);
    {
        let m = Mount::new(Path::new(&format!("{d}p3")), "btrfs");
        for sv in ["@a", "@b"] {
            run(&[
                "btrfs",
                "subvolume",
                "create",
                m.path().join(sv).to_str().unwrap(),
            ]);
        }
    }
    // The kernel forgets the partitions: the probe must read them from the disk itself.
    run(&["partx", "-d", d]);

    let p = probed(&lo.dev);
    assert_eq!(p["size"], 2_000_000_000_000u64);
    assert_eq!(p["sector_size"], 512);
    assert_eq!(p["table"]["kind"], "gpt");
    let parts = p["table"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    let info3 = run(&["sgdisk", "-i3", d]);
    assert!(
        info3.contains(&format!("First sector: {} ", parts[2]["first_lba"])),
        "{info3}"
    );
    assert!(
        info3.contains(&format!("Last sector: {} ", parts[2]["last_lba"])),
        "{info3}"
    );
    assert!(info3.contains(&format!(
        "Partition unique GUID: {}",
        parts[2]["part_guid"].as_str().unwrap()
    )));
    assert_eq!(
        parts[0]["type_guid"],
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    );
    assert_eq!(parts[0]["fs"]["fstype"], "vfat");
    assert_eq!(parts[0]["fs"]["label"], "ESPX");
    assert_eq!(parts[1]["fs"]["fstype"], "ext4");
    assert_eq!(parts[1]["name"], "boot");
    assert_eq!(parts[2]["fs"]["label"], "POOLX");
    assert_eq!(parts[2]["subvolumes"], serde_json::json!(["@a", "@b"]));
    assert!(parts[3]["fs"].is_null());
    assert_eq!(p["busy"], serde_json::json!([]));
}

#[test]
fn mbr_whole_disk_fs_and_blank() {
    let dir = tempfile::tempdir().unwrap();
    let a = Image::sparse(dir.path(), "a.img", 10 << 30);
    let b = Image::sparse(dir.path(), "b.img", 10 << 30);
    let c = Image::sparse(dir.path(), "c.img", 10 << 30);
    let (la, lb, lc) = (
        Loop::attach(&a.path),
        Loop::attach(&b.path),
        Loop::attach(&c.path),
    );
    let sfdisk = Command::new("sh")
        .arg("-c")
        .arg(format!("echo ',1G,83' | sfdisk -q {}", la.path()))
        .status()
        .unwrap();
    assert!(sfdisk.success());
    run(&["mkfs.ext4", "-F", "-q", "-L", "WHOLE", lb.path()]);
    let pa = probed(&la.dev);
    assert_eq!(
        pa["table"],
        serde_json::json!({"kind": "other", "name": "dos"})
    );
    let pb = probed(&lb.dev);
    assert_eq!(pb["table"]["kind"], "none");
    assert_eq!(pb["whole_disk_fs"]["fstype"], "ext4");
    assert_eq!(pb["whole_disk_fs"]["label"], "WHOLE");
    let pc = probed(&lc.dev);
    assert_eq!(pc["table"]["kind"], "none");
    assert!(pc["whole_disk_fs"].is_null());
}

#[test]
fn mounts_and_swap_make_a_disk_busy() {
    let dir = tempfile::tempdir().unwrap();
    let img = Image::sparse(dir.path(), "d.img", 20 << 30);
    let lo = Loop::attach(&img.path);
    let d = lo.path();
    run(&[
        "sgdisk", "-n", "1:0:+1G", "-n", "2:0:+1G", "-n", "3:0:+1G", d,
    ]);
    run(&["partx", "-a", d]);
    run(&["mkfs.btrfs", "-f", "-q", &format!("{d}p1")]);
    run(&["mkswap", &format!("{d}p2")]);
    assert_eq!(probed(&lo.dev)["busy"], serde_json::json!([]));

    let m = Mount::new(Path::new(&format!("{d}p1")), "btrfs");
    run(&["swapon", &format!("{d}p2")]);
    let busy = probed(&lo.dev)["busy"].clone();
    let _ = Command::new("swapoff").arg(format!("{d}p2")).status();
    drop(m);
    let busy: Vec<String> = serde_json::from_value(busy).unwrap();
    assert!(
        busy.iter()
            .any(|b| b.starts_with(&format!("{d}p1 is mounted at "))),
        "{busy:?}"
    );
    assert!(
        busy.contains(&format!("{d}p2 is in use as swap")),
        "{busy:?}"
    );
    assert_eq!(probed(&lo.dev)["busy"], serde_json::json!([]));
}

#[test]
fn a_partition_is_not_a_disk() {
    let dir = tempfile::tempdir().unwrap();
    let img = Image::sparse(dir.path(), "d.img", 20 << 30);
    let lo = Loop::attach(&img.path);
    run(&["sgdisk", "-n", "1:0:+1G", lo.path()]);
    run(&["partx", "-a", lo.path()]);
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml");
    let (ok, _, err) = lifeboat(&[
        "plan",
        spec.to_str().unwrap(),
        "--disk",
        &format!("disk1={}p1", lo.path()),
    ]);
    assert!(!ok);
    assert!(
        err.contains("is a partition, not a whole disk; name the disk it is on"),
        "{err}"
    );
}
