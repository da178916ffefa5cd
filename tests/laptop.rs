//! configs/examples/laptop.toml, a machine that is not Atlantis: one disk (ESP, /boot,
//! swap, a LUKS2 Btrfs pool with names of its own) and a USB backup drive labelled LARKBK
//! whose partition has `role = "backup"`, with `@lark-meta` as its `role = "meta"`
//! subvolume. The LUKS spec is planned on loop devices (this host has no device-mapper, so
//! it cannot be provisioned here); a variant without `encrypt` is provisioned, backed up
//! btrbk-style to LARKBK, listed by `lifeboat inventory`, blanked and restored — and
//! restored again onto replacement disks of other sizes. What is checked comes from sgdisk,
//! blkid, `btrfs subvolume list` and the files themselves.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    attrs, diff, fingerprint, lifeboat, manifest, run, send_receive, write, Image, Loop, Mount,
};

const NVME: u64 = 1_000_000_000_000;
const USB: u64 = 2_000_000_000_000;

fn laptop() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/examples/laptop.toml")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> String {
    let t = text(out);
    assert!(out.status.success(), "{t}");
    t
}

fn blkid(node: &str, tag: &str) -> String {
    run(&["blkid", "-p", "-o", "value", "-s", tag, node])
        .trim()
        .to_owned()
}

fn part(dev: &Loop, n: u32) -> String {
    format!("{}p{n}", dev.dev.display())
}

/// The laptop spec without LUKS, next to the images (what this host can provision).
fn plain_spec(dir: &Path) -> PathBuf {
    let text = fs::read_to_string(laptop()).unwrap();
    let plain: String = text
        .lines()
        .filter(|l| !l.starts_with("encrypt =") && !l.starts_with("key_file ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(plain, text, "the laptop spec has encrypt/key_file lines");
    let path = dir.join("lark.toml");
    fs::write(&path, plain).unwrap();
    path
}

struct Laptop {
    dir: tempfile::TempDir,
    spec: PathBuf,
    usb: Loop,
    usb_img: PathBuf,
    home: std::collections::BTreeMap<String, String>,
    root: std::collections::BTreeMap<String, String>,
    kernel: Vec<u8>,
    /// The recorded UUIDs, by partition number.
    uuids: Vec<(u32, String)>,
    /// getfattr and getfacl of every file of @debian's point.
    attrs: String,
}

impl Laptop {
    fn bind(&self, nvme: &Loop) -> [String; 2] {
        [
            format!("nvme={}", nvme.dev.display()),
            format!("backup={}", self.usb.dev.display()),
        ]
    }

    fn run(&self, cmd: &str, nvme: &Loop, extra: &[&str]) -> Output {
        let spec = self.spec.display().to_string();
        let [n, u] = self.bind(nvme);
        let mut args = vec![cmd, spec.as_str(), "--disk", &n, "--disk", &u];
        args.extend_from_slice(extra);
        lifeboat(&args)
    }
}

/// Provision the plain variant on `nvme` and the backup drive, fill the pool, send its
/// snapshots to LARKBK/lark/ as btrbk does.
fn laptop_backed_up(nvme_img: &Path, nvme: &Loop, dir: tempfile::TempDir) -> Laptop {
    let spec = plain_spec(dir.path());
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let usb = Loop::attach(&usb_img);
    let mut l = Laptop {
        spec,
        usb,
        usb_img,
        dir,
        home: Default::default(),
        root: Default::default(),
        kernel: b"lark kernel image".repeat(1000),
        uuids: Vec::new(),
        attrs: String::new(),
    };
    ok(&l.run("provision", nvme, &["--yes"]));
    let _ = nvme_img;

    let pool = Mount::new(Path::new(&part(nvme, 4)), "btrfs");
    let p = pool.path();
    write(
        &p.join("@debian/etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nwren:x:1000:1000::/home/wren:/bin/sh\n",
    );
    write(
        &p.join("@debian/usr/bin/tool"),
        &b"\x7fELF tool".repeat(5000),
    );
    attrs::fill(&p.join("@debian"));
    write(&p.join("@home/wren/notes.txt"), b"lark notes");
    write(&p.join("@home/wren/big.bin"), &vec![7u8; 3 << 20]);
    // Incompressible, so that a pool of 150 MiB cannot take the restore.
    write(&p.join("@home/wren/photos.bin"), &noise(160 << 20));
    write(&p.join("@lark-meta/boot/boot/vmlinuz-6.12-lark"), &l.kernel);
    // The filesystem record as `lifeboat backup-boot` writes it (backup-boot needs vfat for
    // the ESP, which this host lacks), from what blkid says.
    let mut record = String::from("written = \"2026-11-20 03:00:00 UTC\"\n");
    for (n, fstype) in [(1, "vfat"), (2, "ext4"), (3, "swap"), (4, "btrfs")] {
        let node = part(nvme, n);
        let uuid = blkid(&node, "UUID");
        let guid = blkid(&node, "PART_ENTRY_UUID").to_uppercase();
        record.push_str(&format!(
            "\n[[filesystem]]\ndisk = \"nvme\"\nnumber = {n}\nfstype = \"{fstype}\"\nuuid = \"{uuid}\"\npart_guid = \"{guid}\"\n"
        ));
        l.uuids.push((n, uuid));
    }
    write(
        &p.join("@lark-meta/boot/filesystems.toml"),
        record.as_bytes(),
    );
    let snaps = p.join("@snapshots");
    let snap = |from: &str| {
        let to = snaps.join(format!("{from}.20261120T0300"));
        run(&[
            "btrfs",
            "subvolume",
            "snapshot",
            "-r",
            p.join(from).to_str().unwrap(),
            to.to_str().unwrap(),
        ]);
        to
    };
    let (root, home, meta) = (snap("@debian"), snap("@home"), snap("@lark-meta"));
    l.root = manifest(&root);
    l.attrs = attrs::listing(&root, &l.root);
    let flags = attrs::lsattr(&root);
    assert_eq!(
        attrs::flag_letters(&flags),
        ["i", "a"],
        "the fixture's flags: {flags}"
    );
    l.home = manifest(&home);
    {
        let bk = Mount::new(Path::new(&part(&l.usb, 1)), "btrfs");
        let host = bk.path().join("lark");
        fs::create_dir_all(&host).unwrap();
        for s in [&root, &home, &meta] {
            send_receive(s, None, &host);
        }
    }
    drop(pool);
    l
}

/// Deterministic incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn size_of(node: &str) -> u64 {
    run(&["blockdev", "--getsize64", node])
        .trim()
        .parse()
        .unwrap()
}

/// Blank a disk image: partitions forgotten by the kernel, every byte zero.
fn blank(image: &Path, dev: &Loop, size: u64) {
    let _ = std::process::Command::new("partx")
        .arg("-d")
        .arg(&dev.dev)
        .output();
    let f = fs::OpenOptions::new().write(true).open(image).unwrap();
    f.set_len(0).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    run(&["blockdev", "--flushbufs", dev.path()]);
}

/// What a restore onto `nvme` must leave: the subvolumes, the files, the kernel in /boot.
fn assert_restored(l: &Laptop, nvme: &Loop) {
    for (n, uuid) in &l.uuids {
        assert_eq!(
            &blkid(&part(nvme, *n), "UUID"),
            uuid,
            "partition {n}'s UUID"
        );
    }
    let pool = Mount::new(Path::new(&part(nvme, 4)), "btrfs");
    let p = pool.path();
    let list = run(&["btrfs", "subvolume", "list", p.to_str().unwrap()]);
    for name in [
        "path @debian\n",
        "path @home\n",
        "path @lark-meta\n",
        "path @snapshots/@home.20261120T0300\n",
    ] {
        assert!(list.contains(name), "{name} missing in\n{list}");
    }
    let d = diff(&l.home, &manifest(&p.join("@home")));
    assert!(d.is_empty(), "@home differs from its point: {d:#?}");
    let d = diff(&l.root, &manifest(&p.join("@debian")));
    assert!(d.is_empty(), "@debian differs from its point: {d:#?}");
    // SELinux labels, capabilities, ACLs (the manifest covers hard links and contents).
    let after = attrs::listing(&p.join("@debian"), &l.root);
    for want in [
        "security.capability=",
        "security.selinux=\"system_u:object_r:shadow_t:s0\"",
        "default:user:1000:rwx",
        "user:1000:rw",
    ] {
        assert!(after.contains(want), "{want} not in\n{after}");
    }
    assert_eq!(after, l.attrs, "@debian's attributes differ from its point");
    let disk = fs::metadata(p.join("@debian/var/lib/disk.img")).unwrap();
    assert_eq!(disk.len(), 256 << 20);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&disk) * 512 < 1 << 20,
        "disk.img stayed sparse"
    );
    // btrfs send/receive carries no inode flags: the restore said so, and lsattr shows
    // them gone.
    let flags = attrs::lsattr(&p.join("@debian"));
    assert_eq!(attrs::flag_letters(&flags), ["", ""], "{flags}");
    drop(pool);
    let boot = Mount::new(Path::new(&part(nvme, 2)), "ext4");
    assert_eq!(
        fs::read(boot.path().join("vmlinuz-6.12-lark")).unwrap(),
        l.kernel,
        "/boot came back from @lark-meta/boot"
    );
}

#[test]
fn the_laptop_spec_with_luks_is_planned_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nvme_img = Image::sparse(dir.path(), "nvme.img", NVME).path;
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let (nvme, usb) = (Loop::attach(&nvme_img), Loop::attach(&usb_img));
    let before = (fingerprint(&nvme_img), fingerprint(&usb_img));
    let spec = laptop().display().to_string();
    let (n, u) = (
        format!("nvme={}", nvme.dev.display()),
        format!("backup={}", usb.dev.display()),
    );
    let t = ok(&lifeboat(&["plan", &spec, "--disk", &n, "--disk", &u]));
    assert!(
        t.contains(
            "create a LUKS2 container in partition 4 \"cryptpool\" (key file /etc/lifeboat/larkpool.key)"
        ),
        "{t}"
    );
    assert!(
        t.contains("make Btrfs labelled \"LARKPOOL\"") && t.contains("inside its LUKS container"),
        "{t}"
    );
    assert!(t.contains("make Btrfs labelled \"LARKBK\""), "{t}");
    assert!(t.contains("create subvolume @lark-meta"), "{t}");
    assert_eq!(
        (fingerprint(&nvme_img), fingerprint(&usb_img)),
        before,
        "plan wrote"
    );
}

#[test]
fn the_laptop_is_provisioned_inventoried_and_restored_from_its_own_backup_drive() {
    let dir = tempfile::tempdir().unwrap();
    let nvme_img = Image::sparse(dir.path(), "nvme.img", NVME).path;
    let nvme = Loop::attach(&nvme_img);
    let l = laptop_backed_up(&nvme_img, &nvme, dir);

    // What independent tools see of the provisioning.
    let gpt = run(&["sgdisk", "-p", nvme.path()]);
    for name in ["EFI system partition", "boot", "swap", "cryptpool"] {
        assert!(gpt.contains(name), "{name} not in\n{gpt}");
    }
    assert_eq!(blkid(&part(&nvme, 4), "LABEL"), "LARKPOOL");
    assert_eq!(blkid(&part(&l.usb, 1), "LABEL"), "LARKBK");
    assert_eq!(blkid(&part(&l.usb, 1), "TYPE"), "btrfs");

    // inventory finds the backups on the role = "backup" partition, not on a LINBKUP.
    let inv = ok(&l.run("inventory", &nvme, &[]));
    assert!(inv.contains("Backup drive LARKBK"), "{inv}");
    for point in [
        "lark/@home.20261120T0300",
        "lark/@debian.20261120T0300",
        "lark/@lark-meta.20261120T0300",
    ] {
        assert!(inv.contains(point), "{point} not in\n{inv}");
    }

    // The disk dies; the same disk, blank, is restored.
    blank(&nvme_img, &nvme, NVME);
    let t = ok(&l.run("restore", &nvme, &["--from", "usb", "--latest", "--yes"]));
    assert!(
        t.contains("Restored @lark-meta, @debian, @home from LARKBK"),
        "{t}"
    );
    assert!(t.contains("/boot and the ESPs from @lark-meta/boot"), "{t}");
    assert!(
        t.contains(
            "Note: not carried by btrfs send/receive: the immutable and append-only attributes (chattr +i, chattr +a)"
        ),
        "{t}"
    );
    assert_restored(&l, &nvme);
    let _ = (&l.usb_img, l.dir.path());
}

/// The laptop's disk dies and the new one has no serial of the spec and another size,
/// named with --disk: a bigger one gets the bigger pool, a smaller one is taken when the
/// layout and the backup's data fit and refused with the numbers otherwise (nothing
/// written then).
#[test]
fn restore_onto_bigger_and_smaller_replacement_disks() {
    let dir = tempfile::tempdir().unwrap();
    let nvme_img = Image::sparse(dir.path(), "nvme.img", NVME).path;
    let nvme = Loop::attach(&nvme_img);
    let l = laptop_backed_up(&nvme_img, &nvme, dir);
    drop(nvme);
    let restore = |disk: &Loop| l.run("restore", disk, &["--from", "usb", "--latest", "--yes"]);

    // Bigger: 2 TB for a spec that says at most 1.10 TB.
    let big_img = Image::sparse(l.dir.path(), "big.img", 2_000_000_000_000).path;
    let big = Loop::attach(&big_img);
    let t = ok(&restore(&big));
    assert!(
        t.contains("its size 2.00 TB is not between 900.00 GB and 1.10 TB (the spec's match rules): taken as a replacement disk"),
        "{t}"
    );
    assert!(
        size_of(&part(&big, 4)) > 1_900_000_000_000,
        "the pool takes the bigger disk"
    );
    assert_restored(&l, &big);
    drop(big);

    // Smaller than min_size, but the layout and the data fit: 300 GB.
    let small_img = Image::sparse(l.dir.path(), "small.img", 300_000_000_000).path;
    let small = Loop::attach(&small_img);
    let t = ok(&restore(&small));
    assert!(t.contains("taken as a replacement disk"), "{t}");
    let pool = size_of(&part(&small, 4));
    assert!(pool > 250_000_000_000 && pool < 300_000_000_000, "{pool}");
    assert_restored(&l, &small);
    drop(small);

    // The layout does not fit: refused with the sizes, nothing written.
    let tiny_img = Image::sparse(l.dir.path(), "tiny.img", 10_000_000_000).path;
    let tiny = Loop::attach(&tiny_img);
    let before = fingerprint(&tiny_img);
    let out = restore(&tiny);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("is too small: it has 10.00 GB but the spec's partitions need at least"),
        "{t}"
    );
    assert_eq!(fingerprint(&tiny_img), before, "a refused restore wrote");
    drop(tiny);

    // The layout fits but the pool (150 MiB) cannot take the backup's data.
    let layout = (512u64 + 1024 + 16 * 1024) << 20;
    let cramped_img = Image::sparse(l.dir.path(), "cramped.img", layout + (152 << 20)).path;
    let cramped = Loop::attach(&cramped_img);
    let before = fingerprint(&cramped_img);
    let out = restore(&cramped);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("not enough room") && t.contains("but the pool cryptpool (150 MiB)"),
        "{t}"
    );
    assert_eq!(fingerprint(&cramped_img), before, "a refused restore wrote");
}

/// `lifeboat unlock` with a key that does not open the pool's container: one sentence,
/// non-zero exit, the container's header unchanged. (The right key cannot be shown to open
/// it here: no device-mapper on this host; the QEMU scenario `luks` does that.)
#[test]
fn unlock_refuses_a_wrong_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let nvme_img = Image::sparse(dir.path(), "nvme.img", NVME).path;
    let nvme = Loop::attach(&nvme_img);
    let l = laptop_unfilled(&nvme, dir);
    // The pool's partition becomes a LUKS2 container, made by cryptsetup itself.
    let key = l.dir.path().join("right.key");
    fs::write(&key, b"the right key for lark's pool").unwrap();
    let pool = part(&nvme, 4);
    run(&[
        "cryptsetup",
        "luksFormat",
        "--type",
        "luks2",
        "--batch-mode",
        "--key-file",
        key.to_str().unwrap(),
        &pool,
    ]);
    let wrong = l.dir.path().join("wrong.key");
    fs::write(&wrong, b"not it").unwrap();
    let spec = l.dir.path().join("wrong.toml");
    fs::write(
        &spec,
        fs::read_to_string(laptop())
            .unwrap()
            .replace("/etc/lifeboat/larkpool.key", wrong.to_str().unwrap()),
    )
    .unwrap();
    let header = || run(&["sh", "-c", &format!("head -c 33554432 {pool} | sha256sum")]);
    let before = header();
    let [n, u] = l.bind(&nvme);
    let out = lifeboat(&["unlock", spec.to_str().unwrap(), "--disk", &n, "--disk", &u]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "lifeboat: the key does not open the LUKS container in {pool}: nothing was written\n"
        )
    );
    assert_eq!(header(), before, "a refused unlock changed the container");

    // A key file that is not there is named.
    let missing = l.dir.path().join("missing.toml");
    fs::write(
        &missing,
        fs::read_to_string(laptop())
            .unwrap()
            .replace("/etc/lifeboat/larkpool.key", "/nonexistent/lark.key"),
    )
    .unwrap();
    let out = lifeboat(&[
        "unlock",
        missing.to_str().unwrap(),
        "--disk",
        &n,
        "--disk",
        &u,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("lifeboat: the key file /nonexistent/lark.key cannot be read"),
        "{}",
        text(&out)
    );
}

/// The plain variant provisioned on `nvme` and a backup drive, nothing more.
fn laptop_unfilled(nvme: &Loop, dir: tempfile::TempDir) -> Laptop {
    let spec = plain_spec(dir.path());
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let usb = Loop::attach(&usb_img);
    let l = Laptop {
        spec,
        usb,
        usb_img,
        dir,
        home: Default::default(),
        root: Default::default(),
        kernel: Vec::new(),
        uuids: Vec::new(),
        attrs: String::new(),
    };
    ok(&l.run("provision", nvme, &["--yes"]));
    l
}
