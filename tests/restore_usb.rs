//! `lifeboat restore --from usb` on loop devices: disk1 (2 TB) and the usb drive (4.5 TB)
//! provisioned by lifeboat; @home filled with many small files, large ones, hard links,
//! xattrs and a sparse file; btrbk-style snapshots sent to LINBKUP with real `btrfs send |
//! btrfs receive` (full, then incremental), @rootF41 as a chain of raw stream files (zstd
//! full + plain incremental). disk1 is then blanked and restored. What is checked comes
//! from independent tools and from the trees themselves: blkid, `btrfs subvolume list`,
//! `btrfs property`, getfattr, and a manifest of every file (type, mode, owner, size,
//! sha256, hard-link group, allocated blocks of the sparse file).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{diff, fingerprint, lifeboat, manifest, run, send_receive, write, Image, Loop, Mount};

const DISK0: u64 = 512_000_000_000;
const DISK1: u64 = 2_000_000_000_000;
const USB: u64 = 4_500_000_000_000;

/// In @rootF41: 880 kB of text (see `machine`).
const COMPRESSIBLE: &str = "@rootF41/usr/share/doc/changes.txt";

fn spec() -> String {
    common::spec_path().display().to_string()
}

/// `btrfs property get -ts PATH ro`: `ro=true` or `ro=false`.
fn ro(path: &Path) -> String {
    run(&[
        "btrfs",
        "property",
        "get",
        "-ts",
        path.to_str().unwrap(),
        "ro",
    ])
    .trim()
    .to_owned()
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

/// Deterministic bytes (no RNG crate needed).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// @home's first state: small files, large ones, hard links, xattrs, a sparse file.
fn fill_home(home: &Path) {
    for i in 0..300u64 {
        write(
            &home.join(format!("alice/notes/{:02}/n{i}.txt", i % 17)),
            &bytes(i, 100 + (i as usize * 37) % 3000),
        );
    }
    for i in 0..3u64 {
        write(
            &home.join(format!("alice/media/big{i}.bin")),
            &bytes(1000 + i, 4 << 20),
        );
    }
    // Big enough that a receive takes long enough to be interrupted.
    write(&home.join("alice/media/huge.bin"), &bytes(7, 96 << 20));
    fs::hard_link(
        home.join("alice/media/big0.bin"),
        home.join("alice/big0-link.bin"),
    )
    .unwrap();
    std::os::unix::fs::symlink("media/big1.bin", home.join("alice/big1-symlink")).unwrap();
    run(&[
        "setfattr",
        "-n",
        "user.origin",
        "-v",
        "atlantis",
        home.join("alice/notes/01/n1.txt").to_str().unwrap(),
    ]);
    let sparse = fs::File::create(home.join("alice/sparse.img")).unwrap();
    sparse.set_len(1 << 30).unwrap();
    drop(sparse);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(home.join("alice/sparse.img"))
        .unwrap();
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(512 << 20)).unwrap();
    f.write_all(b"middle of nowhere").unwrap();
    drop(f);
    fs::set_permissions(home.join("alice"), fs::Permissions::from_mode(0o750)).unwrap();
    run(&[
        "chown",
        "-R",
        "1000:1000",
        home.join("alice").to_str().unwrap(),
    ]);
}

fn root_fs(root: &Path, user: &str) {
    write(
        &root.join("etc/passwd"),
        format!("root:x:0:0:root:/root:/bin/sh\n{user}:x:1000:1000::/home/{user}:/bin/sh\n")
            .as_bytes(),
    );
    write(&root.join("usr/bin/hello"), &bytes(42, 50_000));
}

fn subvol(args: &[&str], paths: &[&Path]) {
    let mut argv: Vec<&str> = vec!["btrfs", "subvolume"];
    argv.extend(args);
    argv.extend(paths.iter().map(|p| p.to_str().unwrap()));
    run(&argv);
}

fn blkid(node: &str, tag: &str) -> String {
    run(&["blkid", "-p", "-o", "value", "-s", tag, node])
        .trim()
        .to_owned()
}

struct Machine {
    _dir: tempfile::TempDir,
    disk0_img: PathBuf,
    disk1_img: PathBuf,
    usb_img: PathBuf,
    disk0: Loop,
    disk1: Loop,
    usb: Loop,
    /// Manifests of @home at its two points and of @rootF41 at its newest.
    home1: BTreeMap<String, String>,
    home2: BTreeMap<String, String>,
    f41: BTreeMap<String, String>,
    uuids: Vec<(String, String)>,
    boot_file: Vec<u8>,
}

impl Machine {
    /// `lifeboat restore SPEC --from usb --disk …(all three) EXTRA…`
    fn restore(&self, extra: &[&str]) -> std::process::Output {
        let (spec, d0, d1, u) = (spec(), self.disk0_arg(), self.disk1_arg(), self.usb_arg());
        let mut args = vec!["restore", &spec, "--from", "usb"];
        args.extend_from_slice(&["--disk", &d0, "--disk", &d1, "--disk", &u]);
        args.extend_from_slice(extra);
        lifeboat(&args)
    }

    fn disk0_arg(&self) -> String {
        format!("disk0={}", self.disk0.dev.display())
    }
    fn disk1_arg(&self) -> String {
        format!("disk1={}", self.disk1.dev.display())
    }
    fn usb_arg(&self) -> String {
        format!("usb={}", self.usb.dev.display())
    }
    fn p(&self, n: u32) -> String {
        format!("{}p{n}", self.disk1.dev.display())
    }
}

/// Provision, fill, back up to LINBKUP, blank disk1.
fn machine() -> Machine {
    let dir = tempfile::tempdir().unwrap();
    let disk0_img = Image::sparse(dir.path(), "disk0.img", DISK0).path;
    let disk0 = common::factory_windows(&disk0_img);
    let disk1_img = Image::sparse(dir.path(), "disk1.img", DISK1).path;
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let disk1 = Loop::attach(&disk1_img);
    let usb = Loop::attach(&usb_img);
    let (d0, d1, u) = (
        format!("disk0={}", disk0.dev.display()),
        format!("disk1={}", disk1.dev.display()),
        format!("usb={}", usb.dev.display()),
    );
    ok(&lifeboat(&[
        "provision",
        &spec(),
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
    ]));
    let node = |n: u32| format!("{}p{n}", disk1.dev.display());

    let pool = Mount::new(Path::new(&node(4)), "btrfs");
    let p = pool.path();
    root_fs(&p.join("@rootTW"), "alice");
    root_fs(&p.join("@rootF41"), "alice");
    // Text that compresses, written uncompressed here (this mount has no compress option).
    // It reaches the target pool as plain writes (a raw stream file from `btrfs send`
    // without --compressed-data): only the restore's mount with the spec's compress=zstd:1
    // makes the kernel compress it.
    let changes: String = (0..16_000)
        .map(|i| format!("{i:05} fedora 41: package updated, nothing else changed\n"))
        .collect();
    write(&p.join(COMPRESSIBLE), changes.as_bytes());
    fill_home(&p.join("@home"));
    let boot_file = bytes(99, 300_000);
    {
        let boot = Mount::new(Path::new(&node(2)), "ext4");
        write(&boot.path().join("vmlinuz-6.1.0-atlantis"), &boot_file);
    }
    // The boot backup as `lifeboat backup-boot` leaves it. (backup-boot itself needs vfat
    // for the ESPs, which this host kernel lacks: the QEMU scenario runs it.) The record
    // is written from what blkid says.
    let mut uuids = Vec::new();
    let mut record = String::from("written = \"2026-11-20 03:00:00 UTC\"\n");
    for (n, fstype) in [(1, "vfat"), (2, "ext4"), (3, "swap"), (4, "btrfs")] {
        let uuid = blkid(&node(n), "UUID");
        let guid = blkid(&node(n), "PART_ENTRY_UUID").to_uppercase();
        record.push_str(&format!(
            "\n[[filesystem]]\ndisk = \"disk1\"\nnumber = {n}\nfstype = \"{fstype}\"\nuuid = \"{uuid}\"\npart_guid = \"{guid}\"\n"
        ));
        uuids.push((node(n), uuid));
    }
    write(
        &p.join("Atlantis-meta/boot/filesystems.toml"),
        record.as_bytes(),
    );
    write(
        &p.join("Atlantis-meta/boot/boot/vmlinuz-6.1.0-atlantis"),
        &boot_file,
    );

    // btrbk's snapshots, then its send/receive to LINBKUP.
    let snaps = p.join("@snapshots");
    let snap = |from: &str, name: &str| {
        let to = snaps.join(name);
        subvol(&["snapshot", "-r"], &[&p.join(from), &to]);
        to
    };
    let h1 = snap("@home", "@home.20261119T0300");
    let home1 = manifest(&h1);
    write(
        &p.join("@home/alice/notes/00/n0.txt"),
        b"changed on tuesday",
    );
    fs::remove_file(p.join("@home/alice/media/big2.bin")).unwrap();
    write(&p.join("@home/alice/new.txt"), b"new on tuesday");
    run(&[
        "chown",
        "1000:1000",
        p.join("@home/alice/new.txt").to_str().unwrap(),
    ]);
    let h2 = snap("@home", "@home.20261120T0300");
    let home2 = manifest(&h2);
    let tw = snap("@rootTW", "@rootTW.20261120T0300");
    let meta = snap("Atlantis-meta", "Atlantis-meta.20261120T0300");
    let f1 = snap("@rootF41", "@rootF41.20261119T0300");
    write(&p.join("@rootF41/etc/motd"), b"fedora tuesday");
    let f2 = snap("@rootF41", "@rootF41.20261120T0300");
    let f41 = manifest(&f2);

    let linbkup = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
    let host = linbkup.path().join("atlantis");
    fs::create_dir_all(&host).unwrap();
    send_receive(&h1, None, &host);
    send_receive(&h2, Some(&h1), &host);
    send_receive(&tw, None, &host);
    send_receive(&meta, None, &host);
    let raw = linbkup.path().join("raw-snapshots/atlantis");
    fs::create_dir_all(&raw).unwrap();
    let full = raw.join("@rootF41.20261119T0300.btrfs");
    run(&[
        "btrfs",
        "send",
        "-q",
        "-f",
        full.to_str().unwrap(),
        f1.to_str().unwrap(),
    ]);
    run(&["zstd", "-q", "--rm", full.to_str().unwrap()]);
    let incr = raw.join("@rootF41.20261120T0300.btrfs");
    run(&[
        "btrfs",
        "send",
        "-q",
        "-p",
        f1.to_str().unwrap(),
        "-f",
        incr.to_str().unwrap(),
        f2.to_str().unwrap(),
    ]);
    drop(linbkup);
    drop(pool);

    common::blank(&disk1_img, DISK1, &disk1);
    Machine {
        _dir: dir,
        disk0_img,
        disk1_img,
        usb_img,
        disk0,
        disk1,
        usb,
        home1,
        home2,
        f41,
        uuids,
        boot_file,
    }
}

#[test]
fn bare_metal_restore_from_usb_latest_then_older_and_refusals() {
    let m = machine();

    let disk0_before = fingerprint(&m.disk0_img);
    // Dry run: the plan, nothing written.
    let before = fingerprint(&m.disk1_img);
    let text = ok(&m.restore(&["--latest", "--dry-run"]));
    assert!(text.contains("stream whole"), "{text}");
    assert!(
        text.contains("receive raw-snapshots/atlantis/@rootF41.20261120T0300.btrfs"),
        "{text}"
    );
    assert!(
        text.contains("The filesystems get their recorded UUIDs"),
        "{text}"
    );
    // The plan says how many subvolumes go at a time, and why (loop devices say they spin).
    assert!(
        text.contains("one subvolume at a time: the backup drive is a spinning disk"),
        "{text}"
    );
    assert_eq!(
        fingerprint(&m.disk1_img),
        before,
        "a dry run wrote to disk1"
    );

    // The restore, two subvolumes side by side (loop devices say they spin, so that is not
    // the default here).
    let text = ok(&m.restore(&["--latest", "--yes", "--receives", "2"]));
    assert!(
        text.contains("up to 2 subvolumes at a time: as --receives asks"),
        "{text}"
    );
    assert!(
        text.contains("receiving 2 subvolumes at a time: as --receives asks"),
        "{text}"
    );
    assert!(text.contains("UID 1000 is alice"), "{text}");
    assert!(
        text.contains("Restored Atlantis-meta, @rootTW, @rootF41, @home"),
        "{text}"
    );
    for (node, uuid) in &m.uuids {
        assert_eq!(
            &blkid(node, "UUID"),
            uuid,
            "{node} has its recorded UUID again"
        );
    }
    {
        let pool = Mount::new(Path::new(&m.p(4)), "btrfs");
        let p = pool.path();
        let list = run(&["btrfs", "subvolume", "list", p.to_str().unwrap()]);
        for name in [
            "path @home\n",
            "path @snapshots/@home.20261120T0300\n",
            "path @snapshots/@rootF41.20261119T0300\n",
            "path @snapshots/@rootF41.20261120T0300\n",
            "path @rootTW\n",
            "path Atlantis-meta\n",
        ] {
            assert!(list.contains(name), "{name} missing in\n{list}");
        }
        assert!(!list.contains(".lifeboat-partial"), "{list}");
        let d = diff(&m.home2, &manifest(&p.join("@home")));
        assert!(d.is_empty(), "@home differs from its newest point: {d:#?}");
        let d = diff(&m.f41, &manifest(&p.join("@rootF41")));
        assert!(
            d.is_empty(),
            "@rootF41 differs from its stream chain: {d:#?}"
        );
        // filefrag flags an extent that Btrfs stored compressed "encoded".
        let frags = run(&["filefrag", "-v", p.join(COMPRESSIBLE).to_str().unwrap()]);
        assert!(
            frags.contains("encoded"),
            "{COMPRESSIBLE} was restored uncompressed into a compress=zstd:1 pool:\n{frags}"
        );
        assert_eq!(ro(&p.join("@home")), "ro=false", "@home is writable");
        assert_eq!(
            ro(&p.join("@snapshots/@home.20261120T0300")),
            "ro=true",
            "the received point stays read-only"
        );
        let sparse = fs::metadata(p.join("@home/alice/sparse.img")).unwrap();
        assert_eq!(sparse.len(), 1 << 30);
        assert!(
            sparse.blocks() * 512 < 1 << 20,
            "the sparse file stayed sparse"
        );
        let fstab = fs::read_to_string(p.join("@rootTW/etc/fstab")).unwrap();
        assert!(fstab.contains(&m.uuids[3].1), "{fstab}");
        assert!(!p.join("@rootTW/etc/fstab.before-restore").exists());
    }
    {
        let boot = Mount::new(Path::new(&m.p(2)), "ext4");
        assert_eq!(
            fs::read(boot.path().join("vmlinuz-6.1.0-atlantis")).unwrap(),
            m.boot_file
        );
    }
    run(&["btrfs", "check", "--readonly", &m.p(4)]);
    run(&["e2fsck", "-fn", &m.p(2)]);

    // Again: everything is there, nothing is received twice.
    let text = ok(&m.restore(&["--latest", "--yes"]));
    assert!(
        text.contains("@home: already restored") || text.contains("already restored"),
        "{text}"
    );
    assert!(
        !text.contains("/s)"),
        "something was received again:\n{text}"
    );

    // An older point of @home: the current @home is kept under another name.
    let text = ok(&m.restore(&["--at", "2026-11-19", "--subvol", "@home", "--yes"]));
    assert!(
        text.contains("rename the existing @home to @home.before-restore-"),
        "{text}"
    );
    {
        let pool = Mount::new(Path::new(&m.p(4)), "btrfs");
        let p = pool.path();
        let d = diff(&m.home1, &manifest(&p.join("@home")));
        assert!(d.is_empty(), "@home differs from its older point: {d:#?}");
        let aside: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("@home.before-restore-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let d = diff(&m.home2, &manifest(&p.join(&aside[0])));
        assert!(d.is_empty(), "the @home moved aside changed: {d:#?}");
    }

    // A damaged stream: refused in preflight, nothing written.
    let linbkup = Mount::new(Path::new(&format!("{}p3", m.usb.dev.display())), "btrfs");
    let raw = linbkup.path().join("raw-snapshots/atlantis");
    let good = fs::read(raw.join("@rootF41.20261120T0300.btrfs")).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    fs::write(raw.join("@rootF41.20261121T0300.btrfs"), &bad).unwrap();
    drop(linbkup);
    let before = fingerprint(&m.disk1_img);
    let out = m.restore(&["--latest", "--subvol", "@rootF41", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("raw-snapshots/atlantis/@rootF41.20261121T0300.btrfs is damaged or unreadable; nothing was written"),
        "{err}"
    );
    assert_eq!(
        fingerprint(&m.disk1_img),
        before,
        "a refused restore wrote to disk1"
    );

    // A stream whose parent is not on the drive: refused, nothing written.
    let linbkup = Mount::new(Path::new(&format!("{}p3", m.usb.dev.display())), "btrfs");
    let raw = linbkup.path().join("raw-snapshots/atlantis");
    fs::remove_file(raw.join("@rootF41.20261121T0300.btrfs")).unwrap();
    fs::remove_file(raw.join("@rootF41.20261119T0300.btrfs.zst")).unwrap();
    drop(linbkup);
    let out = m.restore(&["--latest", "--subvol", "@rootF41", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("which is not on the backup drive"), "{err}");
    assert_eq!(
        fingerprint(&m.disk1_img),
        before,
        "a refused restore wrote to disk1"
    );
    assert_eq!(fingerprint(&m.disk0_img), disk0_before, "disk0 changed");
    drop(m.usb_img);
}

#[test]
fn an_interrupted_restore_converges_when_run_again() {
    let m = machine();
    let spec = spec();
    let (d0, d1, u) = (m.disk0_arg(), m.disk1_arg(), m.usb_arg());
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "restore", &spec, "--from", "usb", "--latest", "--disk", &d0, "--disk", &d1, "--disk",
            &u, "--yes",
        ])
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed_pid = child.id();
    // Kill it while @home is being received: the point's subvolume is there, not yet
    // read-only (btrfs receive marks it so at its end).
    let watch = tempfile::tempdir().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut killed_mid_receive = false;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let mounted = Command::new("mount")
            .args(["-o", "ro", "-t", "btrfs", &m.p(4)])
            .arg(watch.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if mounted {
            let busy = watch
                .path()
                .join("@snapshots/@home.20261120T0300/alice")
                .exists();
            run(&["umount", watch.path().to_str().unwrap()]);
            if busy {
                child.kill().unwrap();
                killed_mid_receive = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.wait();
    assert!(
        killed_mid_receive,
        "the restore was not caught receiving @home"
    );
    // Let the orphaned btrfs send/receive see the broken pipe and exit.
    std::thread::sleep(std::time::Duration::from_secs(2));
    {
        let pool = Mount::new(Path::new(&m.p(4)), "btrfs");
        let p = pool.path();
        assert_eq!(
            ro(&p.join("@snapshots/@home.20261120T0300")),
            "ro=false",
            "the interrupted receive is marked incomplete"
        );
        // The canonical @home is still the empty one provisioning made.
        assert_eq!(fs::read_dir(p.join("@home")).unwrap().count(), 0);
        // Named in the journal from before its receive began.
        let journal = fs::read_to_string(p.join(".lifeboat-receiving")).unwrap();
        assert!(
            journal.lines().any(|l| l == "@home.20261120T0300"),
            "{journal}"
        );
    }
    let text = ok(&m.restore(&["--latest", "--yes"]));
    // The killed run's mounts were released (by this run, or by a test running beside it).
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&format!("lifeboat-mnt-{killed_pid}-")),
        "{mountinfo}"
    );
    assert!(
        text.contains(
            "removing the incomplete @snapshots/@home.20261120T0300 left by an interrupted run"
        ),
        "{text}"
    );
    let pool = Mount::new(Path::new(&m.p(4)), "btrfs");
    let d = diff(&m.home2, &manifest(&pool.path().join("@home")));
    assert!(d.is_empty(), "@home after the re-run: {d:#?}");
    let d = diff(&m.f41, &manifest(&pool.path().join("@rootF41")));
    assert!(d.is_empty(), "@rootF41 after the re-run: {d:#?}");
    assert!(!pool.path().join(".lifeboat-receiving").exists());
}

/// `btrfs subvolume show PATH`: its UUID line.
fn uuid_of(path: &Path) -> String {
    let text = run(&["btrfs", "subvolume", "show", path.to_str().unwrap()]);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("UUID:"))
        .unwrap_or_else(|| panic!("no UUID in: {text}"))
        .trim()
        .to_owned()
}

#[test]
fn a_point_not_seen_on_the_disk_after_a_power_cut_is_received_again() {
    let m = machine();
    let text = ok(&m.restore(&["--latest", "--subvol", "@home", "--yes"]));
    assert!(text.contains("@snapshots/@home.20261120T0300: "), "{text}");
    let before = {
        let pool = Mount::new(Path::new(&m.p(4)), "btrfs");
        let p = pool.path();
        // What the restore leaves once a point is on the disk: no journal.
        assert!(!p.join(".lifeboat-receiving").exists());
        let snaps = p.join("@snapshots");
        let id = uuid_of(&snaps.join("@home.20261120T0300"));
        // The pool as a power cut leaves it after the newer point's receive ended and
        // before its sync returned: the point carries both marks, its name is still in
        // the journal, @home is the empty subvolume provisioning made.
        assert_eq!(ro(&snaps.join("@home.20261120T0300")), "ro=true");
        subvol(&["delete"], &[&p.join("@home")]);
        subvol(&["create"], &[&p.join("@home")]);
        write(&p.join(".lifeboat-receiving"), b"@home.20261120T0300\n");
        id
    };
    let text = ok(&m.restore(&["--latest", "--subvol", "@home", "--yes"]));
    assert!(
        text.contains(
            "as @snapshots/@home.20261120T0300 again (an interrupted run received it and did \
             not see it on the disk)"
        ),
        "the plan says so before the confirmation: {text}"
    );
    assert!(
        text.contains(
            "removing @snapshots/@home.20261120T0300: an interrupted run received it and did \
             not see it written to the disk"
        ),
        "{text}"
    );
    {
        let pool = Mount::new(Path::new(&m.p(4)), "btrfs");
        let p = pool.path();
        let snaps = p.join("@snapshots");
        assert_ne!(
            uuid_of(&snaps.join("@home.20261120T0300")),
            before,
            "the point named in the journal was received anew"
        );
        assert!(!p.join(".lifeboat-receiving").exists());
        let d = diff(&m.home2, &manifest(&p.join("@home")));
        assert!(d.is_empty(), "@home after the re-run: {d:#?}");
    }
    // Without a journal line a complete point is kept.
    let text = ok(&m.restore(&["--latest", "--subvol", "@home", "--yes"]));
    assert!(text.contains("already restored"), "{text}");
}
