//! What `lifeboat plan` and `provision` must not write over, on loop devices over sparse
//! images of the real sizes: filesystems left behind by a zapped partition table, disks
//! used through a loop device at an offset, read-only devices; and a disk bound through a
//! symlink (as /dev/disk/by-id names them). Every check asks an independent tool: sgdisk,
//! blkid, e2fsck, the mounted filesystem's bytes, fingerprints of the images.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fingerprint, lifeboat, run, spec_path, Image, Loop, Mount};

const USB: u64 = 4_500_000_000_000;
const MIB: u64 = 1 << 20;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn lifeboat_ok(args: &[&str]) -> String {
    let out = lifeboat(args);
    assert!(
        out.status.success(),
        "lifeboat {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Fails with one sentence on stderr containing each of `expect`; returns it.
fn lifeboat_refuses(args: &[&str], expect: &[&str]) -> String {
    let out = lifeboat(args);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "lifeboat {args:?} should fail; stdout:\n{}",
        text(&out.stdout)
    );
    for e in expect {
        assert!(
            err.contains(e),
            "stderr of lifeboat {args:?}:\n{err}\nexpected: {e}"
        );
    }
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("lifeboat: log:"))
        .collect();
    assert_eq!(lines.len(), 1, "one sentence expected, got:\n{err}");
    lines[0].to_owned()
}

/// sgdisk -p rows: (number, first sector, name).
fn sgdisk_rows(dev: &Path) -> Vec<(u32, u64, String)> {
    run(&["sgdisk", "-p", dev.to_str().unwrap()])
        .lines()
        .skip_while(|l| !l.starts_with("Number"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            Some((f[0].parse().ok()?, f[1].parse().ok()?, f[6..].join(" ")))
        })
        .collect()
}

/// blkid's low-level probe at an offset of a device (or of a partition node at 0):
/// KEY → value.
fn blkid_at(dev: &str, offset: u64) -> Vec<(String, String)> {
    let out = Command::new("blkid")
        .args(["-p", "-o", "export", "-O", &offset.to_string(), dev])
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn tag(kv: &[(String, String)], key: &str) -> String {
    kv.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A loop device attached with extra `losetup` options (`-r`, `-o OFFSET`); detached on
/// drop.
struct LoopWith {
    dev: PathBuf,
}

impl LoopWith {
    fn attach(options: &[&str], backing: &Path) -> LoopWith {
        let mut argv = vec!["losetup", "--find", "--show"];
        argv.extend_from_slice(options);
        argv.push(backing.to_str().unwrap());
        LoopWith {
            dev: PathBuf::from(run(&argv).trim()),
        }
    }

    fn path(&self) -> &str {
        self.dev.to_str().unwrap()
    }
}

impl Drop for LoopWith {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// `mount -o loop,offset=…,sizelimit=… DEVICE DIR`, the way people look into a partition
/// of a disk image; unmounted on drop (which detaches the loop device mount made).
struct LoopMount {
    dir: Option<tempfile::TempDir>,
}

impl LoopMount {
    fn new(device: &str, offset: u64, size: u64) -> LoopMount {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-test-mnt-")
            .tempdir()
            .unwrap();
        run(&[
            "mount",
            "-o",
            &format!("loop,offset={offset},sizelimit={size}"),
            device,
            dir.path().to_str().unwrap(),
        ]);
        LoopMount { dir: Some(dir) }
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let ok = Command::new("umount")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                let _ = dir.close();
            } else {
                eprintln!("umount {} failed; leaving it", dir.path().display());
                let _ = dir.keep();
            }
        }
    }
}

/// `blockdev --setro` on a device; `--setrw` again on drop.
struct ReadOnly<'a>(&'a str);

impl<'a> ReadOnly<'a> {
    fn set(dev: &'a str) -> ReadOnly<'a> {
        run(&["blockdev", "--setro", dev]);
        ReadOnly(dev)
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        let _ = Command::new("blockdev").args(["--setrw", self.0]).status();
    }
}

/// The usb disk of the spec, blank, on a loop device over a 4.5 TB sparse image.
struct Usb {
    dir: tempfile::TempDir,
    image: PathBuf,
    lo: Loop,
}

impl Usb {
    fn new() -> Usb {
        let dir = tempfile::tempdir().unwrap();
        let image = Image::sparse(dir.path(), "usb.img", USB).path;
        let lo = Loop::attach(&image);
        Usb { dir, image, lo }
    }

    fn dev(&self) -> &str {
        self.lo.path()
    }

    fn bind(&self) -> String {
        format!("usb={}", self.dev())
    }
}

fn spec() -> String {
    spec_path().display().to_string()
}

#[test]
fn filesystems_behind_a_zapped_table_need_wipe() {
    let usb = Usb::new();
    let (spec, bind) = (spec(), usb.bind());
    let d = usb.dev().to_owned();
    lifeboat_ok(&[
        "provision",
        &spec,
        "--disk",
        &bind,
        "--only",
        "usb",
        "--yes",
    ]);
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    {
        let m = Mount::new(Path::new(&format!("{d}p2")), "ext4");
        common::write(&m.path().join("photos/2026/beach.jpg"), &photo);
    }
    let rows = sgdisk_rows(&usb.lo.dev);
    assert_eq!(rows[1].2, "CUSHION");
    let cushion = rows[1].1 * 512;
    assert_eq!(cushion % MIB, 0);
    let cushion_len = (rows[2].1 - rows[1].1) * 512;
    let uuid_before = tag(&blkid_at(&format!("{d}p2"), 0), "UUID");

    // Someone "cleans" the drive: the table goes, and the kernel forgets its partitions
    // (as after a reboot). The filesystems are all still there.
    run(&["sgdisk", "--zap-all", &d]);
    run(&["partx", "-d", &d]);
    assert_eq!(tag(&blkid_at(&d, 0), "PTTYPE"), "", "the table is gone");
    let found = blkid_at(&d, cushion);
    assert_eq!(tag(&found, "TYPE"), "ext4");
    assert_eq!(tag(&found, "LABEL"), "CUSHION");
    let before = fingerprint(&usb.image);
    // `lifeboat disks` says what is left where partitioning tools put partitions.
    let disks: serde_json::Value =
        serde_json::from_str(&lifeboat_ok(&["disks", "--json"])).unwrap();
    let me = disks
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == d.as_str())
        .unwrap();
    assert_eq!(me["orphans"][0]["offset"], MIB);
    assert_eq!(me["orphans"][0]["fs"]["label"], "WINBKUP");

    let cushion_found = format!(
        "a ext4 filesystem labelled \"CUSHION\" at {} MiB",
        cushion / MIB
    );
    let expect = [
        "usb (",
        "already holds filesystems that no partition table lists",
        "a ntfs filesystem labelled \"WINBKUP\" at 1 MiB",
        cushion_found.as_str(),
        "a btrfs filesystem labelled \"LINBKUP\"",
        "pass --wipe usb",
    ];
    lifeboat_refuses(&["plan", &spec, "--disk", &bind, "--only", "usb"], &expect);
    lifeboat_refuses(
        &[
            "provision",
            &spec,
            "--disk",
            &bind,
            "--only",
            "usb",
            "--yes",
        ],
        &expect,
    );
    assert_eq!(fingerprint(&usb.image), before, "a refused run wrote");
    let still = blkid_at(&d, cushion);
    assert_eq!(tag(&still, "UUID"), uuid_before);
    {
        // The ext4 is intact: e2fsck and the photo's bytes, through a read-only loop
        // device at its offset.
        let ro = LoopWith::attach(
            &[
                "-r",
                "-o",
                &cushion.to_string(),
                "--sizelimit",
                &cushion_len.to_string(),
            ],
            &usb.image,
        );
        run(&["e2fsck", "-f", "-n", ro.path()]);
        let dir = tempfile::tempdir().unwrap();
        run(&[
            "mount",
            "-t",
            "ext4",
            "-o",
            "ro,noload",
            ro.path(),
            dir.path().to_str().unwrap(),
        ]);
        let read = std::fs::read(dir.path().join("photos/2026/beach.jpg"));
        run(&["umount", dir.path().to_str().unwrap()]);
        assert!(read.unwrap() == photo, "the photo changed");
    }

    // With --wipe the plan says what it destroys, and provisioning goes ahead.
    let plan = lifeboat_ok(&[
        "plan", &spec, "--disk", &bind, "--only", "usb", "--wipe", "usb",
    ]);
    assert!(
        plan.contains("DESTROYS filesystems that no partition table lists")
            && plan.contains(&cushion_found),
        "{plan}"
    );
    lifeboat_ok(&[
        "provision",
        &spec,
        "--disk",
        &bind,
        "--only",
        "usb",
        "--wipe",
        "usb",
        "--yes",
    ]);
    let names: Vec<String> = sgdisk_rows(&usb.lo.dev).into_iter().map(|r| r.2).collect();
    assert_eq!(names, ["WINBKUP", "CUSHION", "LINBKUP"]);
    let new = blkid_at(&format!("{d}p2"), 0);
    assert_eq!(tag(&new, "LABEL"), "CUSHION");
    assert_ne!(tag(&new, "UUID"), uuid_before, "CUSHION was not remade");
}

#[test]
fn a_disk_bound_through_a_symlink_is_provisioned_and_stays_done() {
    let usb = Usb::new();
    let by_id = usb.dir.path().join("by-id");
    std::fs::create_dir(&by_id).unwrap();
    let link = by_id.join("usb-WD_Elements_25A3_575834314441-0:0");
    std::os::unix::fs::symlink(&usb.lo.dev, &link).unwrap();
    let bind = format!("usb={}", link.display());
    let spec = spec();

    let out = lifeboat_ok(&[
        "provision",
        &spec,
        "--disk",
        &bind,
        "--only",
        "usb",
        "--yes",
    ]);
    assert!(out.contains("Done: 4 steps on usb"), "{out}");
    let names: Vec<String> = sgdisk_rows(&usb.lo.dev).into_iter().map(|r| r.2).collect();
    assert_eq!(names, ["WINBKUP", "CUSHION", "LINBKUP"]);
    let v = run(&["sgdisk", "-v", usb.dev()]);
    assert!(v.contains("No problems found"), "{v}");
    for (n, fs, label) in [
        (1, "ntfs", "WINBKUP"),
        (2, "ext4", "CUSHION"),
        (3, "btrfs", "LINBKUP"),
    ] {
        let kv = blkid_at(&format!("{}p{n}", usb.dev()), 0);
        assert_eq!(
            (tag(&kv, "TYPE"), tag(&kv, "LABEL")),
            (fs.into(), label.into())
        );
    }

    let after = fingerprint(&usb.image);
    let plan = lifeboat_ok(&["plan", &spec, "--disk", &bind, "--only", "usb"]);
    assert!(plan.contains("Nothing to do"), "{plan}");
    let again = lifeboat_ok(&[
        "provision",
        &spec,
        "--disk",
        &bind,
        "--only",
        "usb",
        "--yes",
    ]);
    assert!(again.contains("Nothing to do"), "{again}");
    assert_eq!(fingerprint(&usb.image), after, "the re-run wrote");
}

#[test]
fn a_filesystem_mounted_through_an_offset_loop_device_makes_the_disk_busy() {
    let usb = Usb::new();
    let (spec, bind) = (spec(), usb.bind());
    let plan = [
        "plan", &spec, "--disk", &bind, "--only", "usb", "--wipe", "usb",
    ];

    // A loop device over the same image file, at 1 MiB, with a mounted ext4 in it.
    {
        let inner = LoopWith::attach(&["-o", "1048576", "--sizelimit", "1073741824"], &usb.image);
        run(&["mkfs.ext4", "-F", "-q", inner.path()]);
        let m = Mount::new(&inner.dev, "ext4");
        lifeboat_refuses(
            &plan,
            &[&format!(
                "usb ({}) is in use: {} is mounted at {} (a loop device over {}, the image file of {} at offset 1048576); stop using it first",
                usb.dev(),
                inner.path(),
                m.path().display(),
                usb.image.display(),
                usb.dev()
            )],
        );
    }
    // `mount -o loop,offset=` straight on the disk.
    {
        let m = LoopMount::new(usb.dev(), MIB, 1 << 30);
        let source = run(&["findmnt", "-n", "-o", "SOURCE", m.path().to_str().unwrap()]);
        lifeboat_refuses(
            &plan,
            &[&format!(
                "{} is mounted at {} (a loop device over {} at offset 1048576)",
                source.trim(),
                m.path().display(),
                usb.dev()
            )],
        );
    }
    // Unmounted (and the loop devices gone), the same plan is made.
    let out = lifeboat_ok(&plan);
    assert!(
        out.contains("DESTROYS a filesystem that no partition table lists")
            && out.contains("a ext4 filesystem at 1 MiB"),
        "{out}"
    );
}

#[test]
fn a_read_only_device_is_refused_before_anything_is_written() {
    let usb = Usb::new();
    let (spec, bind) = (spec(), usb.bind());
    let before = fingerprint(&usb.image);
    let provision = [
        "provision",
        &spec,
        "--disk",
        &bind,
        "--only",
        "usb",
        "--yes",
    ];
    let said = format!("usb ({}) is read-only", usb.dev());
    {
        let _ro = ReadOnly::set(usb.dev());
        let line = lifeboat_refuses(&provision, &[&said, "blockdev --setrw"]);
        assert!(!line.contains("running the same command again"), "{line}");
    }
    // Attached read-only from the start (`losetup -r`), another drive.
    {
        let image = Image::sparse(usb.dir.path(), "usb2.img", USB).path;
        let ro = LoopWith::attach(&["-r"], &image);
        let line = lifeboat_refuses(
            &[
                "provision",
                &spec,
                "--disk",
                &format!("usb={}", ro.path()),
                "--only",
                "usb",
                "--yes",
            ],
            &[&format!("usb ({}) is read-only", ro.path())],
        );
        assert!(!line.contains("running the same command again"), "{line}");
        assert_eq!(tag(&blkid_at(ro.path(), 0), "PTTYPE"), "");
    }
    assert_eq!(fingerprint(&usb.image), before, "a refused run wrote");
    assert_eq!(
        tag(&blkid_at(usb.dev(), 0), "PTTYPE"),
        "",
        "a table was written"
    );

    // Writable again, the same command provisions it.
    lifeboat_ok(&provision);
    assert_eq!(sgdisk_rows(&usb.lo.dev).len(), 3);
}
