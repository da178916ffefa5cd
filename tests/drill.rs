//! `lifeboat drill` against a backup drive on a loop device that holds a small bootable
//! Atlantis: disk1 provisioned by lifeboat, ESP1 with the rescue stick's systemd-boot,
//! Debian kernel and initramfs (plus a second initramfs whose /init mounts LINPOOL
//! subvol=@rootTW by UUID), a busybox @rootTW whose init prints the sha256 of /home, and
//! @home; `lifeboat backup-boot` copies /boot and the ESPs into Atlantis-meta; btrbk-style
//! snapshots are sent to LINBKUP with `btrfs send | btrfs receive`. disk1 is then detached:
//! the drill has only the backup drive.
//!
//! Three drills: the newest points (boots, prints the sum the host computed from the
//! snapshot); the older points, whose @rootTW has no /sbin/init (fails with the console's
//! tail); a damaged raw stream on the drive (fails before booting, naming the point).
//! Before and after each, the host's block devices other than loop devices, our backup
//! drive image and the host's UEFI variables (where it has them) are unchanged, and no loop
//! device is left over the drill's image.
//!
//! The kernel, initramfs and systemd-boot come from the rescue image
//! (target/images/lifeboat-rescue.img, made by `cargo xtask image`; `cargo xtask test`
//! builds it before the cargo tests). Without it the test fails and says so.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use common::{fingerprint, lifeboat, run, send_receive, write, Image, Loop, Mount};

const DISK0: u64 = 512_000_000_000;
const DISK1: u64 = 2_000_000_000_000;
const USB: u64 = 4_500_000_000_000;

fn rescue_image() -> PathBuf {
    let path = std::env::var_os("LIFEBOAT_RESCUE_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/images/lifeboat-rescue.img")
        });
    assert!(
        path.is_file(),
        "{} is missing: the drill boots the rescue image's kernel; run `cargo xtask image` \
         (cargo xtask test builds it before this phase)",
        path.display()
    );
    path
}

struct StickFiles {
    loader: Vec<u8>,
    vmlinuz: Vec<u8>,
    initrd: Vec<u8>,
    busybox: Vec<u8>,
}

/// The kernel and the initramfs from the stick's ESP (found by sfdisk, read with mtools),
/// busybox and systemd-boot out of that initramfs.
fn stick_files(stick: &Path) -> StickFiles {
    let table: serde_json::Value =
        serde_json::from_str(&run(&["sfdisk", "--json", stick.to_str().unwrap()])).unwrap();
    let esp = &table["partitiontable"]["partitions"][0];
    let offset = esp["start"].as_u64().unwrap() * 512;
    let read = |path: &str| -> Vec<u8> {
        let out = std::process::Command::new("mtype")
            .args([
                "-i",
                &format!("{}@@{offset}", stick.display()),
                &format!("::/{path}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mtype {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let initrd = read("initrd.img");
    let busybox = from_initrd(&initrd, "bin/busybox");
    // systemd-boot as provisioning installs it (the stick itself may boot through shim).
    let loader = from_initrd(
        &initrd,
        lifeboat::boot::loader::SYSTEMD_BOOT.trim_start_matches('/'),
    );
    StickFiles {
        loader,
        vmlinuz: read("vmlinuz"),
        initrd,
        busybox,
    }
}

/// Entries of a newc archive: (name, mode, bytes).
fn newc_entries(bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let hex = |b: &[u8]| u32::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 110 <= bytes.len() {
        let h = &bytes[at..at + 110];
        assert_eq!(&h[..6], b"070701", "not a newc archive at {at}");
        let mode = hex(&h[14..22]);
        let size = hex(&h[54..62]) as usize;
        let namesize = hex(&h[94..102]) as usize;
        let name_at = at + 110;
        let name = String::from_utf8_lossy(&bytes[name_at..name_at + namesize - 1]).into_owned();
        let data_at = (name_at + namesize).next_multiple_of(4);
        let data = bytes[data_at..data_at + size].to_vec();
        at = (data_at + size).next_multiple_of(4);
        if name == "TRAILER!!!" {
            break;
        }
        out.push((name, mode, data));
    }
    out
}

fn from_initrd(initrd: &[u8], path: &str) -> Vec<u8> {
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(initrd)
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    let entries = newc_entries(&raw);
    let mut wanted = path.to_owned();
    for _ in 0..3 {
        let (_, mode, data) = entries
            .iter()
            .find(|(n, _, _)| *n == wanted)
            .unwrap_or_else(|| panic!("the stick's initramfs has no {wanted}"));
        if mode & 0o170_000 != 0o120_000 {
            return data.clone();
        }
        let target = String::from_utf8_lossy(data).into_owned();
        wanted = match target.strip_prefix('/') {
            Some(abs) => abs.to_owned(),
            None => Path::new(&wanted)
                .parent()
                .unwrap()
                .join(target)
                .display()
                .to_string(),
        };
    }
    panic!("{path} in the stick's initramfs is a chain of symlinks")
}

/// A zstd-compressed newc archive with one executable file, `init` (the kernel finds a
/// compressed archive anywhere after the first one; an uncompressed one only aligned).
fn init_archive(script: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let header = |out: &mut Vec<u8>, name: &str, mode: u32, size: usize, ino: u32| {
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            1_795_143_600,
            size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    };
    header(&mut out, "init", 0o100_755, script.len(), 1);
    out.extend_from_slice(script.as_bytes());
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    header(&mut out, "TRAILER!!!", 0, 0, 0);
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    zstd::encode_all(&out[..], 3).unwrap()
}

/// The initramfs' init: find LINPOOL by the UUID on the command line, mount @rootTW,
/// switch to it.
const INITRD_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "ATLANTIS-INITRAMFS"
for mod in virtio_pci virtio_blk btrfs; do modprobe -q "$mod"; done
root=$(sed -n 's/.*root=UUID=\([^ ]*\).*/\1/p' /proc/cmdline)
flags=$(sed -n 's/.*rootflags=\([^ ]*\).*/\1/p' /proc/cmdline)
dev=""
tries=0
while [ -z "$dev" ] && [ "$tries" -lt 50 ]; do
    dev=$(blkid -c /dev/null -l -o device -t UUID="$root" 2>/dev/null)
    [ -z "$dev" ] && { tries=$((tries + 1)); sleep 0.2; }
done
mkdir -p /newroot
if [ -z "$dev" ] || ! mount -t btrfs -o "$flags" "$dev" /newroot; then
    echo "ATLANTIS-ROOT not found: UUID=$root"
    poweroff -f
fi
echo "ATLANTIS-ROOT $dev $flags"
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
"#;

/// The restored root's init: /home mounted as /etc/fstab says, its sum printed.
const ROOT_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo "ATLANTIS-BOOTED $(cat /etc/hostname)"
home=$(awk '$2=="/home"{print $1}' /etc/fstab)
opts=$(awk '$2=="/home"{print $4}' /etc/fstab)
dev=$(findfs "$home" 2>/dev/null)
if [ -n "$dev" ] && mount -t btrfs -o "$opts" "$dev" /home; then
    sum=$(cd /home && find . -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
    echo "ATLANTIS-HOME-SHA256 $sum"
else
    echo "ATLANTIS-HOME not mounted ($home, device '$dev')"
fi
sync
poweroff -f
"#;

/// `cd DIR && find . -type f | sort | xargs sha256sum | sha256sum`, computed here.
fn tree_sha256(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            let child = rel.join(e.file_name());
            if t.is_dir() {
                stack.push(child);
            } else if t.is_file() {
                files.push(format!("./{}", child.display()));
            }
        }
    }
    files.sort();
    let mut lines = String::new();
    for f in &files {
        let h = Sha256::digest(fs::read(dir.join(&f[2..])).unwrap());
        lines.push_str(&format!("{h:x}  {f}\n"));
    }
    format!("{:x}", Sha256::digest(lines.as_bytes()))
}

fn blkid(node: &str, tag: &str) -> String {
    run(&["blkid", "-p", "-o", "value", "-s", tag, node])
        .trim()
        .to_owned()
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    write(path, bytes);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn snapshot(from: &Path, to: &Path) {
    run(&[
        "btrfs",
        "subvolume",
        "snapshot",
        "-r",
        from.to_str().unwrap(),
        to.to_str().unwrap(),
    ]);
}

struct Drive {
    dir: tempfile::TempDir,
    spec: PathBuf,
    usb_img: PathBuf,
    usb: Loop,
    /// The sum the restored system must print (from the newest @home snapshot).
    home_sha256: String,
    /// A send stream of @rootF41, kept off the drive until a drill needs it damaged.
    f41_stream: PathBuf,
}

/// Provision disk1 and the usb drive, fill Atlantis, back it up as btrbk does, and keep
/// only the backup drive.
fn drive() -> Drive {
    let stick = stick_files(&rescue_image());
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("atlantis.toml");
    let mut text = fs::read_to_string(common::spec_path()).unwrap();
    text.push_str("\n[drill]\nexpect = \"ATLANTIS-HOME-SHA256\"\ntimeout_secs = 400\n");
    fs::write(&spec, text).unwrap();
    let disk0_img = Image::sparse(dir.path(), "disk0.img", DISK0).path;
    let disk0 = common::factory_windows(&disk0_img);
    let disk1_img = Image::sparse(dir.path(), "disk1.img", DISK1).path;
    let usb_img = Image::sparse(dir.path(), "usb.img", USB).path;
    let disk1 = Loop::attach(&disk1_img);
    let usb = Loop::attach(&usb_img);
    let binds = [
        format!("disk0={}", disk0.dev.display()),
        format!("disk1={}", disk1.dev.display()),
        format!("usb={}", usb.dev.display()),
    ];
    let spec_s = spec.to_str().unwrap();
    let mut args = vec![
        "provision",
        spec_s,
        "--only",
        "disk1",
        "--only",
        "usb",
        "--yes",
    ];
    for b in &binds {
        args.extend(["--disk", b.as_str()]);
    }
    ok(&lifeboat(&args));
    let node = |n: u32| format!("{}p{n}", disk1.dev.display());
    let (esp, boot, pool_uuid) = (
        blkid(&node(1), "UUID"),
        blkid(&node(2), "UUID"),
        blkid(&node(4), "UUID"),
    );

    // ESP1 as a machine has it: systemd-boot where its boot entry points (no fallback
    // loader: the drill's firmware has no boot entries), an entry without a serial
    // console (the drill adds one to its copy).
    let entry = format!(
        "title Atlantis\nlinux /atlantis/vmlinuz\ninitrd /atlantis/initrd-rescue.img\n\
         initrd /atlantis/initrd-atlantis.img\n\
         options root=UUID={pool_uuid} rootflags=subvol=@rootTW panic=5 loglevel=4\n"
    );
    let files = vec![
        (
            "EFI/systemd/systemd-bootx64.efi".to_owned(),
            stick.loader.clone(),
        ),
        (
            "loader/loader.conf".to_owned(),
            b"timeout 0\ndefault atlantis.conf\n".to_vec(),
        ),
        (
            "loader/entries/atlantis.conf".to_owned(),
            entry.into_bytes(),
        ),
        ("atlantis/vmlinuz".to_owned(), stick.vmlinuz.clone()),
        (
            "atlantis/initrd-rescue.img".to_owned(),
            stick.initrd.clone(),
        ),
        (
            "atlantis/initrd-atlantis.img".to_owned(),
            init_archive(INITRD_INIT),
        ),
    ];
    {
        let mut dev = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(node(1))
            .unwrap();
        let len = std::io::Seek::seek(&mut dev, std::io::SeekFrom::End(0)).unwrap();
        lifeboat::apply::fat::write_files(&mut dev, 0, len, &files, 1_795_143_600).unwrap();
    }
    {
        let b = Mount::new(Path::new(&node(2)), "ext4");
        write(&b.path().join("vmlinuz-6.1-atlantis"), &stick.vmlinuz);
    }

    let pool = Mount::new(Path::new(&node(4)), "btrfs");
    let p = pool.path();
    let root = p.join("@rootTW");
    write_mode(&root.join("bin/busybox"), &stick.busybox, 0o755);
    write(&root.join("etc/hostname"), b"atlantis\n");
    write(
        &root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
    );
    write(
        &root.join("etc/fstab"),
        format!(
            "UUID={pool_uuid} / btrfs subvol=@rootTW 0 0\n\
             UUID={pool_uuid} /home btrfs subvol=@home 0 0\n\
             UUID={pool_uuid} /.snapshots btrfs subvol=@snapshots 0 0\n\
             UUID={boot} /boot ext4 defaults 0 2\n\
             UUID={esp} /boot/efi2 vfat umask=0077,nofail 0 2\n"
        )
        .as_bytes(),
    );
    for d in ["proc", "sys", "dev", "home", "boot", "tmp", "run", "sbin"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let home = p.join("@home");
    for i in 0..40u32 {
        write(
            &home.join(format!("alice/notes/n{i}.txt")),
            format!("note {i}\n").repeat(1 + i as usize * 13).as_bytes(),
        );
    }
    write(&home.join("alice/media/big.bin"), &vec![0x5a; 3 << 20]);
    run(&[
        "chown",
        "-R",
        "1000:1000",
        home.join("alice").to_str().unwrap(),
    ]);
    drop(pool);

    let mut bb = vec!["backup-boot", spec_s];
    for b in &binds {
        bb.extend(["--disk", b.as_str()]);
    }
    let said = ok(&lifeboat(&bb));
    assert!(said.contains("ESP1 (disk1 partition 1): 6 files"), "{said}");

    let pool = Mount::new(Path::new(&node(4)), "btrfs");
    let p = pool.path();
    let snaps = p.join("@snapshots");
    // The 19th: a root without /sbin/init (it cannot boot).
    for s in ["@rootTW", "@home", "Atlantis-meta"] {
        snapshot(&p.join(s), &snaps.join(format!("{s}.20261119T0300")));
    }
    write_mode(&p.join("@rootTW/sbin/init"), ROOT_INIT.as_bytes(), 0o755);
    write(
        &p.join("@home/alice/notes/n0.txt"),
        b"changed on the 20th\n",
    );
    write(&p.join("@home/alice/new-on-the-20th.txt"), b"new\n");
    for s in ["@rootTW", "@home", "Atlantis-meta"] {
        snapshot(&p.join(s), &snaps.join(format!("{s}.20261120T0300")));
    }
    let home_sha256 = tree_sha256(&snaps.join("@home.20261120T0300"));
    write(&p.join("@rootF41/usr/bin/tool"), &vec![0x42; 300_000]);
    let f41 = snaps.join("@rootF41.20261120T0300");
    snapshot(&p.join("@rootF41"), &f41);
    let f41_stream = dir.path().join("@rootF41.20261120T0300.btrfs");
    run(&[
        "btrfs",
        "send",
        "-q",
        "-f",
        f41_stream.to_str().unwrap(),
        f41.to_str().unwrap(),
    ]);
    {
        let bk = Mount::new(Path::new(&format!("{}p3", usb.dev.display())), "btrfs");
        let host = bk.path().join("atlantis");
        fs::create_dir_all(&host).unwrap();
        for s in ["@rootTW", "@home", "Atlantis-meta"] {
            let older = snaps.join(format!("{s}.20261119T0300"));
            let newer = snaps.join(format!("{s}.20261120T0300"));
            send_receive(&older, None, &host);
            send_receive(&newer, Some(&older), &host);
        }
    }
    drop(pool);
    drop(disk1);
    drop(disk0);
    Drive {
        dir,
        spec,
        usb_img,
        usb,
        home_sha256,
        f41_stream,
    }
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

/// The host's block devices other than loop devices (other tests come and go with theirs),
/// and our backup drive's own line.
fn host_disks(usb: &Loop) -> String {
    let all = run(&["lsblk", "-b", "-n", "-r", "-o", "NAME,SIZE,TYPE"]);
    let usb_name = usb.dev.file_name().unwrap().to_string_lossy().into_owned();
    all.lines()
        .filter(|l| !l.starts_with("loop") || l.split(' ').next() == Some(usb_name.as_str()))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A read-only mount, undone on drop.
struct ReadOnly(tempfile::TempDir);

impl ReadOnly {
    fn mount(dev: &str) -> ReadOnly {
        let dir = tempfile::tempdir().unwrap();
        run(&[
            "mount",
            "-t",
            "btrfs",
            "-o",
            "ro",
            dev,
            dir.path().to_str().unwrap(),
        ]);
        ReadOnly(dir)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// The host's UEFI variables (name and sha256 of each), where it has them.
fn efivars() -> Vec<String> {
    let Ok(dir) = fs::read_dir("/sys/firmware/efi/efivars") else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .flatten()
        .map(|e| {
            let bytes = fs::read(e.path()).unwrap_or_default();
            format!(
                "{} {:x}",
                e.file_name().to_string_lossy(),
                Sha256::digest(&bytes)
            )
        })
        .collect();
    out.sort();
    out
}

/// Loop devices whose backing file is under `dir`.
fn loops_under(dir: &Path) -> Vec<String> {
    run(&["losetup", "-a", "-n", "-O", "NAME,BACK-FILE"])
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

struct Drilled {
    out: std::process::Output,
    text: String,
    records: Vec<serde_json::Value>,
    work: PathBuf,
}

fn drill(d: &Drive, name: &str, extra: &[&str]) -> Drilled {
    let before = (host_disks(&d.usb), fingerprint(&d.usb_img), efivars());
    let work = d.dir.path().join(format!("work-{name}"));
    let record = d.dir.path().join("state/drills.jsonl");
    let usb = format!("usb={}", d.usb.dev.display());
    let mut args = vec![
        "drill",
        d.spec.to_str().unwrap(),
        "--disk",
        &usb,
        "--record",
        record.to_str().unwrap(),
        "--work-dir",
        work.to_str().unwrap(),
        "--keep",
        "--json",
    ];
    args.extend_from_slice(extra);
    let started = std::time::Instant::now();
    let out = lifeboat(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "drill {name}: {:.1} s\n{text}",
        started.elapsed().as_secs_f64()
    );
    let after = (host_disks(&d.usb), fingerprint(&d.usb_img), efivars());
    assert_eq!(
        before.0, after.0,
        "the host's block devices changed during drill {name}"
    );
    assert_eq!(
        before.1, after.1,
        "drill {name} changed a byte of the backup drive"
    );
    assert_eq!(
        loops_under(&work),
        Vec::<String>::new(),
        "drill {name} left a loop device"
    );
    let records = fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Drilled {
        out,
        text,
        records,
        work,
    }
}

#[test]
fn drills_boot_the_newest_points_and_fail_on_a_broken_root_and_a_damaged_stream() {
    let d = drive();

    // The newest points: restored, booted, the guest's sum is the host's.
    let r = drill(&d, "latest", &[]);
    assert!(r.out.status.success(), "{}", r.text);
    let console = fs::read_to_string(r.work.join("console.log")).unwrap();
    let want = format!("ATLANTIS-HOME-SHA256 {}", d.home_sha256);
    assert!(
        console.contains(&want),
        "{want} not on the console:\n{console}"
    );
    assert_eq!(r.records.len(), 1);
    let rec = &r.records[0];
    assert_eq!(rec["verdict"], "booted", "{rec}");
    assert_eq!(rec["stage"], "booted");
    assert!(rec["reason"].as_str().unwrap().contains(&want), "{rec}");
    let points: Vec<&str> = rec["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["point"].as_str().unwrap())
        .collect();
    for p in [
        "atlantis/@home.20261120T0300",
        "atlantis/@rootTW.20261120T0300",
        "atlantis/Atlantis-meta.20261120T0300",
    ] {
        assert!(points.contains(&p), "{p} not in {points:?}");
    }
    assert!(rec["points"][0]["age_secs"].as_i64().unwrap() > 0);
    assert!(rec["restore_secs"].as_f64().unwrap() > 0.0);
    assert!(rec["boot_secs"].as_f64().unwrap() > 0.0);
    assert!(rec["bytes"].as_u64().unwrap() > 3 << 20, "{rec}");
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&r.out.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(&last, rec, "--json prints the record that was appended");
    // Only the drill's copy got the serial console; the loader entry on it says so.
    let img = r.work.join("disk1.img");
    let table: serde_json::Value =
        serde_json::from_str(&run(&["sfdisk", "--json", img.to_str().unwrap()])).unwrap();
    let start = table["partitiontable"]["partitions"][0]["start"]
        .as_u64()
        .unwrap()
        * 512;
    let entry = run(&[
        "mtype",
        "-i",
        &format!("{}@@{start}", img.display()),
        "::/loader/entries/atlantis.conf",
    ]);
    assert!(entry.contains("console=ttyS0,115200"), "{entry}");
    fs::remove_dir_all(&r.work).unwrap();

    // On the working machine: its own disk1 is there with the pool mounted, so the recorded
    // Btrfs UUID is taken; the drill's copy gets a new one and still boots.
    {
        let disk1_img = d.dir.path().join("disk1.img");
        let before = fingerprint(&disk1_img);
        let disk1 = Loop::attach(&disk1_img);
        run(&["partx", "-a", disk1.path()]);
        let pool = ReadOnly::mount(&format!("{}p4", disk1.path()));
        let r = drill(&d, "working-machine", &[]);
        assert!(r.out.status.success(), "{}", r.text);
        assert!(
            r.text.contains("is on a device of this machine already"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("@rootTW/etc/fstab: the pool's new UUID"),
            "{}",
            r.text
        );
        let console = fs::read_to_string(r.work.join("console.log")).unwrap();
        assert!(
            console.contains(&want),
            "{want} not on the console:\n{console}"
        );
        drop(pool);
        drop(disk1);
        assert_eq!(
            fingerprint(&disk1_img),
            before,
            "the machine's own disk1 changed"
        );
        fs::remove_dir_all(&r.work).unwrap();
    }

    // The 19th: @rootTW has no init; the boot fails and the record keeps the console.
    let r = drill(&d, "broken-root", &["--at", "20261119T0300"]);
    assert!(!r.out.status.success(), "{}", r.text);
    assert!(r.text.contains("lifeboat: the drill failed:"), "{}", r.text);
    let rec = &r.records[2];
    assert_eq!(rec["verdict"], "failed", "{rec}");
    assert_eq!(rec["stage"], "boot", "{rec}");
    assert!(
        rec["reason"].as_str().unwrap().contains("Kernel panic"),
        "{rec}"
    );
    let tail: Vec<&str> = rec["console_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        tail.iter().any(|l| l.contains("ATLANTIS-ROOT")),
        "{tail:#?}"
    );
    assert!(
        !tail.iter().any(|l| l.contains("ATLANTIS-HOME-SHA256")),
        "{tail:#?}"
    );
    fs::remove_dir_all(&r.work).unwrap();

    // Killed while the restored system boots: QEMU dies with it, no loop device stays.
    let work = d.dir.path().join("work-killed");
    let usb = format!("usb={}", d.usb.dev.display());
    let record = d.dir.path().join("state/drills.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["drill", d.spec.to_str().unwrap(), "--disk", &usb, "--keep"])
        .arg("--work-dir")
        .arg(&work)
        .arg("--record")
        .arg(&record)
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let console = work.join("console.log");
    let started = std::time::Instant::now();
    while fs::metadata(&console).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed().as_secs() < 300,
            "the killed drill never booted"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let qemu_of_work = || -> Vec<String> {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("qemu-system") && c.contains(work.to_str().unwrap()))
            .collect()
    };
    assert_eq!(qemu_of_work().len(), 1, "QEMU runs the killed drill's disk");
    child.kill().unwrap();
    child.wait().unwrap();
    let started = std::time::Instant::now();
    while !qemu_of_work().is_empty() {
        assert!(
            started.elapsed().as_secs() < 10,
            "QEMU outlived the drill: {:?}",
            qemu_of_work()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        loops_under(&work),
        Vec::<String>::new(),
        "the killed drill left a loop device"
    );
    assert_eq!(
        fs::read_to_string(&record).unwrap().lines().count(),
        3,
        "a killed drill records nothing"
    );
    fs::remove_dir_all(&work).unwrap();

    // A damaged raw stream on the drive: refused in the preflight, nothing booted.
    {
        let bk = Mount::new(Path::new(&format!("{}p3", d.usb.dev.display())), "btrfs");
        let raw = bk.path().join("raw-snapshots/atlantis");
        fs::create_dir_all(&raw).unwrap();
        let file = raw.join("@rootF41.20261120T0300.btrfs");
        let mut bytes = fs::read(&d.f41_stream).unwrap();
        let at = bytes.len() * 3 / 4;
        for b in &mut bytes[at..at + 64] {
            *b ^= 0xff;
        }
        fs::write(&file, bytes).unwrap();
    }
    let r = drill(&d, "damaged-stream", &[]);
    assert!(!r.out.status.success(), "{}", r.text);
    let rec = &r.records[3];
    assert_eq!(rec["verdict"], "failed", "{rec}");
    assert_eq!(rec["stage"], "restore", "{rec}");
    assert!(rec["boot_secs"].is_null(), "{rec}");
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("@rootF41.20261120T0300"),
        "{rec}"
    );
    assert!(!r.work.join("console.log").exists());
    fs::remove_dir_all(&r.work).unwrap();
}

/// restic with these variables only.
fn restic(vars: &[(&str, String)], args: &[&str]) {
    let mut cmd = std::process::Command::new("restic");
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env(
            "RESTIC_CACHE_DIR",
            std::env::temp_dir().join("lifeboat-test-restic-cache"),
        );
    for (k, v) in vars {
        cmd.env(k, v);
    }
    ok(&cmd.output().unwrap());
}

#[test]
fn a_drill_from_restic_on_s3_boots() {
    let d = drive();
    let s3 = common::s3::S3::start("atlantis");
    let repo = s3.repository("atlantis", "restic-repo");
    let env_file = d.dir.path().join("restic.env");
    let pw_file = d.dir.path().join("restic.pw");
    common::s3::private_file(
        &env_file,
        &format!(
            "RESTIC_REPOSITORY={repo}\nAWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            common::s3::ACCESS_KEY,
            common::s3::SECRET_KEY
        ),
    );
    common::s3::private_file(&pw_file, "drill-password\n");
    let vars = vec![
        ("RESTIC_REPOSITORY", repo.clone()),
        ("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY.to_owned()),
        ("RESTIC_PASSWORD_FILE", pw_file.display().to_string()),
    ];
    let mut tries = 0;
    loop {
        let mut cmd = std::process::Command::new("restic");
        cmd.arg("init")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap());
        for (k, v) in &vars {
            cmd.env(k, v);
        }
        if cmd.output().unwrap().status.success() {
            break;
        }
        tries += 1;
        assert!(tries < 60, "restic init never worked:\n{}", s3.log());
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // restic backs up the newest points (as the machine's own restic would back up the
    // subvolumes); the spec maps those paths. Then the backup drive is gone.
    let mut spec_text = fs::read_to_string(&d.spec).unwrap();
    {
        let bk = Mount::new(Path::new(&format!("{}p3", d.usb.dev.display())), "btrfs");
        let at = |s: &str| {
            bk.path()
                .join(format!("atlantis/{s}.20261120T0300"))
                .display()
                .to_string()
        };
        let (root, home, meta) = (at("@rootTW"), at("@home"), at("Atlantis-meta"));
        spec_text = spec_text
            .replace("/etc/lifeboat/restic.env", env_file.to_str().unwrap())
            .replace("/etc/lifeboat/restic.pw", pw_file.to_str().unwrap())
            .replace("\"/\" = \"@rootTW\"", &format!("\"{root}\" = \"@rootTW\""))
            .replace("\"/home\" = \"@home\"", &format!("\"{home}\" = \"@home\""))
            .replace(
                "\"/mnt/Atlantis-meta\" = \"Atlantis-meta\"",
                &format!("\"{meta}\" = \"Atlantis-meta\""),
            );
        restic(
            &vars,
            &[
                "backup", "-q", "--host", "atlantis", "--tag", "LINUX", &root, &home, &meta,
            ],
        );
    }
    fs::write(&d.spec, spec_text).unwrap();
    let Drive {
        dir,
        usb,
        home_sha256,
        spec,
        ..
    } = d;
    drop(usb);

    let work = dir.path().join("work-restic");
    let record = dir.path().join("state/drills.jsonl");
    let out = lifeboat(&[
        "drill",
        spec.to_str().unwrap(),
        "--from",
        "restic",
        "--work-dir",
        work.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
        "--keep",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    let console = fs::read_to_string(work.join("console.log")).unwrap();
    let want = format!("ATLANTIS-HOME-SHA256 {home_sha256}");
    assert!(
        console.contains(&want),
        "{want} not on the console:\n{console}"
    );
    let rec: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&record).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(rec["from"], "restic");
    assert_eq!(rec["verdict"], "booted");
    assert!(
        rec["points"].as_array().unwrap().iter().any(
            |p| p["subvol"] == "@home" && p["point"].as_str().unwrap().starts_with("snapshot ")
        ),
        "{rec}"
    );
    assert_eq!(loops_under(&work), Vec::<String>::new());
    fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_drill_binds_only_the_backup_drive() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = common::spec_path();
    let out = lifeboat(&[
        "drill",
        spec.to_str().unwrap(),
        "--disk",
        "disk1=/dev/loop-not-used",
        "--work-dir",
        work.to_str().unwrap(),
        "--record",
        dir.path().join("drills.jsonl").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().next().unwrap_or_default(),
        "lifeboat: --disk disk1=/dev/loop-not-used: a drill binds only the backup drive (usb, \
         with --from usb); disk1 is restored into the drill's own image",
        "{err}"
    );
    assert!(!work.exists(), "nothing is made for a refused drill");
    assert!(!dir.path().join("drills.jsonl").exists());
}
