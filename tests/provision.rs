//! `lifeboat plan` and `lifeboat provision` on loop devices over sparse images of the real
//! sizes (512 GB, 2 TB, 4.5 TB). Every check asks an independent tool: sgdisk, blkid,
//! fsck.vfat, e2fsck, btrfs, and content fingerprints of the images.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{fingerprint, run, Image, Loop, Mount};

const DISK0: u64 = 512_000_000_000;
const DISK1: u64 = 2_000_000_000_000;
const USB: u64 = 4_500_000_000_000;

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml")
}

fn lifeboat<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> Output {
    let log_dir = std::env::temp_dir().join("lifeboat-test-logs");
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env("LIFEBOAT_LOG_DIR", log_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run lifeboat")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Succeeds, or fails the test showing what lifeboat said.
fn lifeboat_ok<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = lifeboat(args);
    assert!(
        out.status.success(),
        "lifeboat {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Fails with one sentence on stderr containing `expect`.
fn lifeboat_refuses<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S], expect: &str) {
    let out = lifeboat(args);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "lifeboat {args:?} should fail; stdout:\n{}",
        text(&out.stdout)
    );
    assert!(
        err.contains(expect),
        "stderr of lifeboat {args:?}:\n{err}\nexpected: {expect}"
    );
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("lifeboat: log:"))
        .collect();
    assert_eq!(lines.len(), 1, "one sentence expected, got:\n{err}");
}

/// The three Atlantis disks: disk0 with a factory layout made by sgdisk/mkfs (ESP + NTFS),
/// disk1 and usb blank.
struct Machine {
    _dir: tempfile::TempDir,
    disk0: Loop,
    disk1: Loop,
    usb: Loop,
    images: [PathBuf; 3],
}

impl Machine {
    fn new() -> Machine {
        Machine::with_disk1_sectors(512)
    }

    /// disk1 with this logical sector size (4096: a 4Kn disk).
    fn with_disk1_sectors(sector_size: u32) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let i0 = Image::sparse(dir.path(), "disk0.img", DISK0);
        let i1 = Image::sparse(dir.path(), "disk1.img", DISK1);
        let iu = Image::sparse(dir.path(), "usb.img", USB);
        let disk0 = common::factory_windows(&i0.path);
        Machine {
            disk0,
            disk1: Loop::attach_with_sectors(&i1.path, sector_size),
            usb: Loop::attach(&iu.path),
            images: [i0.path.clone(), i1.path.clone(), iu.path.clone()],
            _dir: dir,
        }
    }

    /// `lifeboat CMD configs/atlantis.toml --disk disk0=… --disk disk1=… --disk usb=… EXTRA…`
    fn cmd(&self, cmd: &str, extra: &[&str]) -> Vec<String> {
        let mut v = vec![cmd.to_owned(), spec_path().display().to_string()];
        v.extend(self.bind_args());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn bind_args(&self) -> Vec<String> {
        vec![
            "--disk".into(),
            format!("disk0={}", self.disk0.dev.display()),
            "--disk".into(),
            format!("disk1={}", self.disk1.dev.display()),
            "--disk".into(),
            format!("usb={}", self.usb.dev.display()),
        ]
    }

    fn fingerprints(&self) -> Vec<String> {
        self.images.iter().map(|p| fingerprint(p)).collect()
    }
}

fn node(dev: &Path, n: u32) -> String {
    format!("{}p{n}", dev.display())
}

/// blkid's view of a partition: (TYPE, LABEL).
fn blkid(node: &str) -> (String, String) {
    let out = run(&["blkid", "-p", "-o", "export", node]);
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_owned()
    };
    (get("TYPE"), get("LABEL"))
}

/// sgdisk -p rows: (number, start, end, code, name).
fn sgdisk_rows(dev: &Path) -> Vec<(u32, u64, u64, String, String)> {
    let out = run(&["sgdisk", "-p", dev.to_str().unwrap()]);
    out.lines()
        .skip_while(|l| !l.starts_with("Number"))
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            let name = f[6..].join(" ");
            Some((
                f[0].parse().ok()?,
                f[1].parse().ok()?,
                f[2].parse().ok()?,
                f[5].to_owned(),
                name,
            ))
        })
        .collect()
}

fn subvolumes(node: &str) -> Vec<String> {
    let m = Mount::new(Path::new(node), "btrfs");
    let out = run(&["btrfs", "subvolume", "list", m.path().to_str().unwrap()]);
    out.lines()
        .filter_map(|l| l.split(" path ").nth(1).map(str::to_owned))
        .collect()
}

/// Everything the spec asks for, as independent tools see it.
fn assert_atlantis(m: &Machine) {
    let d1 = sgdisk_rows(&m.disk1.dev);
    let names: Vec<(&str, &str)> = d1.iter().map(|r| (r.3.as_str(), r.4.as_str())).collect();
    assert_eq!(
        names,
        [
            ("EF00", "ESP1"),
            ("8300", "boot"),
            ("8200", "swap"),
            ("8300", "LINPOOL")
        ]
    );
    assert_eq!(d1[0].1, 2048, "ESP1 starts at 1 MiB");
    assert_eq!(d1[0].2 - d1[0].1 + 1, 1_048_576, "ESP1 is 512 MiB");
    assert_eq!(d1[2].2 - d1[2].1 + 1, 134_217_728, "swap is 64 GiB");
    for r in &d1 {
        assert_eq!(r.1 % 2048, 0, "partition {} is 1 MiB aligned", r.0);
    }
    let usb = sgdisk_rows(&m.usb.dev);
    let names: Vec<(&str, &str)> = usb.iter().map(|r| (r.3.as_str(), r.4.as_str())).collect();
    assert_eq!(
        names,
        [
            ("0700", "WINBKUP"),
            ("8300", "CUSHION"),
            ("8300", "LINBKUP")
        ]
    );
    assert_eq!(
        (usb[0].2 - usb[0].1 + 1) * 512,
        1_000_000_000_000,
        "WINBKUP is 1 TB"
    );
    for dev in [&m.disk1.dev, &m.usb.dev] {
        let v = run(&["sgdisk", "-v", dev.to_str().unwrap()]);
        assert!(
            v.contains("No problems found"),
            "sgdisk -v {}:\n{v}",
            dev.display()
        );
    }

    let d = &m.disk1.dev;
    assert_eq!(blkid(&node(d, 1)), ("vfat".into(), "ESP1".into()));
    assert_eq!(blkid(&node(d, 2)), ("ext4".into(), "BOOT".into()));
    assert_eq!(blkid(&node(d, 3)), ("swap".into(), "SWAP".into()));
    assert_eq!(blkid(&node(d, 4)), ("btrfs".into(), "LINPOOL".into()));
    let u = &m.usb.dev;
    let uuid = |n: &str| run(&["blkid", "-p", "-s", "UUID", "-o", "value", n]);
    assert_ne!(
        uuid(&node(u, 1)),
        uuid(&node(&m.disk0.dev, 2)),
        "two NTFS with one UUID"
    );
    assert_eq!(blkid(&node(u, 1)), ("ntfs".into(), "WINBKUP".into()));
    assert_eq!(blkid(&node(u, 2)), ("ext4".into(), "CUSHION".into()));
    assert_eq!(blkid(&node(u, 3)), ("btrfs".into(), "LINBKUP".into()));

    let fsck = run(&["fsck.vfat", "-n", &node(d, 1)]);
    assert!(
        !fsck.contains("differ") && !fsck.contains("Free cluster summary wrong"),
        "{fsck}"
    );
    run(&["e2fsck", "-f", "-n", &node(d, 2)]);
    run(&["e2fsck", "-f", "-n", &node(u, 2)]);
    run(&["btrfs", "check", "--readonly", &node(d, 4)]);
    let mut sv = subvolumes(&node(d, 4));
    sv.sort();
    assert_eq!(
        sv,
        [
            "@home",
            "@rootF41",
            "@rootNobara",
            "@rootTW",
            "@snapshots",
            "Atlantis-meta"
        ]
    );
    // Quotas are off unless the spec asks.
    let m4 = Mount::new(Path::new(&node(d, 4)), "btrfs");
    let q = Command::new("btrfs")
        .args(["qgroup", "show"])
        .arg(m4.path())
        .output()
        .unwrap();
    assert!(!q.status.success(), "quotas should be off on LINPOOL");
}

/// An fstab for `root` names each filesystem by the UUID blkid sees on it.
fn assert_fstab(m: &Machine, root: &str, fstab: &str) {
    let uuid = |dev: &Path, n: u32| {
        run(&["blkid", "-p", "-o", "value", "-s", "UUID", &node(dev, n)])
            .trim()
            .to_owned()
    };
    let pool = uuid(&m.disk1.dev, 4);
    let rows: Vec<Vec<&str>> = fstab
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let row = |mount: &str| {
        rows.iter()
            .find(|r| r[1] == mount)
            .unwrap_or_else(|| panic!("no {mount} in\n{fstab}"))
            .clone()
    };
    assert_eq!(row("/")[0], format!("UUID={pool}"), "{fstab}");
    assert!(
        row("/")[3].starts_with(&format!("subvol={root},")),
        "{fstab}"
    );
    assert_eq!(row("/home")[0], format!("UUID={pool}"));
    assert_eq!(row("/boot")[0], format!("UUID={}", uuid(&m.disk1.dev, 2)));
    assert_eq!(
        row("/boot/efi")[0],
        format!("UUID={}", uuid(&m.disk0.dev, 1))
    );
    assert_eq!(
        row("/boot/efi2")[0],
        format!("UUID={}", uuid(&m.disk1.dev, 1))
    );
    assert!(row("/boot/efi2")[3].contains("nofail"));
    assert_eq!(row("none")[0], format!("UUID={}", uuid(&m.disk1.dev, 3)));
    assert_eq!(
        row("/mnt/cushion")[0],
        format!("UUID={}", uuid(&m.usb.dev, 2))
    );
    for other in ["@rootTW", "@rootF41", "@rootNobara"] {
        assert!(other == root || !fstab.contains(other), "{fstab}");
    }
}

#[test]
fn provision_the_whole_machine_then_nothing_to_do() {
    let m = Machine::new();
    let before = m.fingerprints();

    let plan = lifeboat_ok(&m.cmd("plan", &[]));
    for name in [
        "ESP1",
        "boot",
        "swap",
        "LINPOOL",
        "WINBKUP",
        "CUSHION",
        "LINBKUP",
        "@rootTW",
        "@rootF41",
        "@rootNobara",
        "@home",
        "@snapshots",
        "Atlantis-meta",
    ] {
        assert!(plan.contains(name), "plan lacks {name}:\n{plan}");
    }
    assert!(plan.contains("preserved"), "{plan}");
    assert_eq!(m.fingerprints(), before, "plan wrote to a disk");

    let json = lifeboat_ok(&m.cmd("plan", &["--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["disks"][1]["actions"][0]["action"], "create-gpt");

    let fstab_args = |root: &str| {
        let mut v = vec!["fstab".to_owned(), spec_path().display().to_string()];
        v.extend(["--root".to_owned(), root.to_owned()]);
        v.extend(m.bind_args());
        v
    };
    lifeboat_refuses(
        &fstab_args("@rootTW"),
        "partition 1 \"ESP1\" of disk1 should hold vfat but holds nothing: provision it first",
    );

    let provisioned = lifeboat_ok(&m.cmd("provision", &["--yes"]));
    assert_atlantis(&m);
    assert_fstab(&m, "@rootF41", &lifeboat_ok(&fstab_args("@rootF41")));
    // Provisioning wrote each root's fstab; the ESPs are on loop devices, which no firmware
    // boots, so the boot entries are left out and said so.
    assert!(
        provisioned.contains("is on a loop device, which the firmware cannot boot")
            || provisioned.contains("no efivarfs"),
        "{provisioned}"
    );
    {
        let pool = Mount::new(Path::new(&node(&m.disk1.dev, 4)), "btrfs");
        for root in ["@rootTW", "@rootF41", "@rootNobara"] {
            let written = std::fs::read_to_string(pool.path().join(root).join("etc/fstab"))
                .unwrap_or_else(|e| panic!("{root}/etc/fstab: {e}\n{provisioned}"));
            assert_fstab(&m, root, &written);
        }
        assert!(!pool.path().join("@home/etc").exists(), "fstab in @home");
    }
    let after = m.fingerprints();
    assert_eq!(after[0], before[0], "disk0 (preserved) changed");
    assert_ne!(after[1], before[1]);

    let again = lifeboat_ok(&m.cmd("provision", &["--yes"]));
    assert!(again.contains("Nothing to do"), "{again}");
    assert_eq!(
        m.fingerprints(),
        after,
        "a second provision wrote something"
    );
}

#[test]
fn interrupted_provision_converges_without_redoing() {
    let m = Machine::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(m.cmd("provision", &["--yes", "--only", "disk1"]))
        .env("LIFEBOAT_FAILPOINT", "pause-after:mkfs")
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stderr).lines() {
        if line.unwrap().contains("failpoint pause-after:mkfs reached") {
            reached = true;
            break;
        }
    }
    assert!(reached, "provision ended before the failpoint");
    child.kill().unwrap(); // SIGKILL: no cleanup code of ours runs
    child.wait().unwrap();

    // As if the rescue system rebooted: the kernel forgets the partitions.
    let d1 = m.disk1.dev.to_str().unwrap().to_owned();
    run(&["partx", "-d", &d1]);
    let rows = sgdisk_rows(&m.disk1.dev);
    assert_eq!(rows.len(), 4, "the table was written before the kill");
    let guid_before = run(&["sgdisk", "-p", &d1]);
    run(&["partx", "-a", &d1]);
    let (t1, _) = blkid(&node(&m.disk1.dev, 1));
    assert_eq!(t1, "vfat");
    let (t2, _) = blkid(&node(&m.disk1.dev, 2));
    assert_eq!(t2, "", "only the ESP was made before the kill");
    let esp_uuid = run(&[
        "blkid",
        "-p",
        "-s",
        "UUID",
        "-o",
        "value",
        &node(&m.disk1.dev, 1),
    ]);
    run(&["partx", "-d", &d1]);

    let out = lifeboat_ok(&m.cmd("provision", &["--yes", "--only", "disk1"]));
    assert!(
        !out.contains("write a new GPT"),
        "re-run rewrote the table:\n{out}"
    );
    assert!(!out.contains("make FAT32"), "re-run remade the ESP:\n{out}");
    assert!(out.contains("make ext4"), "{out}");
    assert_eq!(run(&["sgdisk", "-p", &d1]), guid_before, "table changed");
    assert_eq!(
        run(&[
            "blkid",
            "-p",
            "-s",
            "UUID",
            "-o",
            "value",
            &node(&m.disk1.dev, 1)
        ]),
        esp_uuid,
        "ESP was reformatted"
    );
    let again = lifeboat_ok(&m.cmd("plan", &["--only", "disk1"]));
    assert!(again.contains("Nothing to do"), "{again}");
}

#[test]
fn a_4kn_disk_gets_a_gpt_and_fat_in_4096_byte_sectors() {
    let m = Machine::with_disk1_sectors(4096);
    let d1 = m.disk1.dev.to_str().unwrap().to_owned();
    lifeboat_ok(&m.cmd("provision", &["--yes"]));

    // sgdisk reads the table through the device's 4096-byte sectors: 1 MiB is LBA 256.
    let p = run(&["sgdisk", "-p", &d1]);
    assert!(p.contains("Sector size (logical/physical): 4096/"), "{p}");
    // 128 entries of 128 bytes fill LBAs 2..5 only when a sector is 4096 bytes.
    assert!(
        p.contains("Main partition table begins at sector 2 and ends at sector 5"),
        "{p}"
    );
    let v = run(&["sgdisk", "-v", &d1]);
    assert!(v.contains("No problems found"), "{v}");
    let rows = sgdisk_rows(&m.disk1.dev);
    assert_eq!(rows.len(), 4, "{p}");
    assert_eq!((rows[0].1, rows[0].2), (256, 256 + (512 << 20) / 4096 - 1));

    // The FAT's boot sector: bytes per sector (BPB offset 11) must be the device's, or
    // the kernel refuses to mount it ("logical sector size too small for device").
    let esp = node(&m.disk1.dev, 1);
    let boot = {
        use std::io::Read;
        let mut b = vec![0u8; 512];
        std::fs::File::open(&esp)
            .unwrap()
            .read_exact(&mut b)
            .unwrap();
        b
    };
    assert_eq!(u16::from_le_bytes([boot[11], boot[12]]), 4096);
    assert_eq!(&boot[82..90], b"FAT32   ");
    let fsck = run(&["fsck.vfat", "-n", "-v", &esp]);
    assert!(fsck.contains("4096 bytes per logical sector"), "{fsck}");
    assert_eq!(blkid(&esp), ("vfat".to_owned(), "ESP1".to_owned()));
    let (t4, l4) = blkid(&node(&m.disk1.dev, 4));
    assert_eq!((t4.as_str(), l4.as_str()), ("btrfs", "LINPOOL"));

    let again = lifeboat_ok(&m.cmd("plan", &[]));
    assert!(again.contains("Nothing to do"), "{again}");
}

/// Each root's /etc/fstab as the disks hold it (None where there is none).
fn fstabs_on_disk(m: &Machine) -> Vec<Option<String>> {
    let pool = Mount::new(Path::new(&node(&m.disk1.dev, 4)), "btrfs");
    ["@rootTW", "@rootF41", "@rootNobara"]
        .iter()
        .map(|r| std::fs::read_to_string(pool.path().join(r).join("etc/fstab")).ok())
        .collect()
}

#[test]
fn a_run_killed_before_the_boot_setup_is_finished_by_the_next() {
    let m = Machine::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(m.cmd("provision", &["--yes"]))
        .env("LIFEBOAT_FAILPOINT", "pause-before:boot-setup")
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reached = BufReader::new(stderr).lines().any(|line| {
        line.unwrap()
            .contains("failpoint pause-before:boot-setup reached")
    });
    assert!(reached, "provision ended before the failpoint");
    child.kill().unwrap(); // SIGKILL: no cleanup code of ours runs
    child.wait().unwrap();
    assert_eq!(
        fstabs_on_disk(&m),
        [None, None, None],
        "killed before any fstab"
    );

    // Every disk matches the spec, but the roots have no fstab: the plan says so.
    let plan = lifeboat_ok(&m.cmd("plan", &[]));
    assert!(!plan.contains("Nothing to do"), "{plan}");
    assert!(
        plan.contains("write /etc/fstab into @rootTW, @rootF41, @rootNobara on LINPOOL"),
        "{plan}"
    );
    let before = m.fingerprints();
    let out = lifeboat_ok(&m.cmd("provision", &["--yes"]));
    assert!(!out.contains("make "), "the disks were made again:\n{out}");
    for (root, fstab) in ["@rootTW", "@rootF41", "@rootNobara"]
        .iter()
        .zip(fstabs_on_disk(&m))
    {
        let fstab = fstab.unwrap_or_else(|| panic!("{root} has no /etc/fstab:\n{out}"));
        assert_fstab(&m, root, &fstab);
    }
    let after = m.fingerprints();
    assert_eq!(after[0], before[0], "disk0 (preserved) changed");
    assert_eq!(after[2], before[2], "the backup drive changed");
    let again = lifeboat_ok(&m.cmd("plan", &[]));
    assert!(again.contains("Nothing to do"), "{again}");
}

#[test]
fn a_root_that_lost_its_fstab_gets_it_back() {
    let m = Machine::new();
    lifeboat_ok(&m.cmd("provision", &["--yes"]));
    let kept = fstabs_on_disk(&m);
    {
        let pool = Mount::new(Path::new(&node(&m.disk1.dev, 4)), "btrfs");
        std::fs::remove_file(pool.path().join("@rootF41/etc/fstab")).unwrap();
    }
    let plan = lifeboat_ok(&m.cmd("plan", &[]));
    assert!(
        plan.contains("write /etc/fstab into @rootF41 on LINPOOL (disk1 partition 4)"),
        "{plan}"
    );
    lifeboat_ok(&m.cmd("provision", &["--yes"]));
    let back = fstabs_on_disk(&m);
    assert_eq!(back, kept, "the same fstab again, the others untouched");
    assert_fstab(&m, "@rootF41", back[1].as_deref().unwrap());

    // A step that cannot be done stops the run: one sentence, non-zero, the next run
    // still plans it.
    {
        let pool = Mount::new(Path::new(&node(&m.disk1.dev, 4)), "btrfs");
        let etc = pool.path().join("@rootF41/etc");
        std::fs::remove_dir_all(&etc).unwrap();
        std::fs::write(&etc, b"not a directory").unwrap();
    }
    lifeboat_refuses(
        &m.cmd("provision", &["--yes"]),
        "the boot setup stopped at \"write /etc/fstab into @rootF41 on LINPOOL (disk1 partition 4) (where it has none)\"",
    );
    let plan = lifeboat_ok(&m.cmd("plan", &[]));
    assert!(plan.contains("write /etc/fstab into @rootF41 on"), "{plan}");
}

/// A spec file of our own next to the images, for the cases configs/atlantis.toml can't show.
fn write_spec(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn refusals_write_nothing() {
    let m = Machine::new();
    let before = m.fingerprints();
    let d1 = format!("disk1={}", m.disk1.dev.display());
    let usb = format!("usb={}", m.usb.dev.display());
    let spec = spec_path().display().to_string();

    // Spec errors carry file:line:col.
    let bad = write_spec(
        m._dir.path(),
        "two-rest.toml",
        "[machine]\nname = \"x\"\nhost = \"x\"\n\n[[disk]]\nid = \"disk1\"\n\n[[disk.partition]]\nname = \"a\"\nsize = \"rest\"\nfs = \"ext4\"\n\n[[disk.partition]]\nname = \"b\"\nsize = \"rest\"\nfs = \"ext4\"\n",
    );
    let out = lifeboat(&["provision", &bad, "--disk", &d1, "--yes"]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("two-rest.toml:15:"), "{err}");

    lifeboat_refuses(
        &["provision", &spec, "--disk", "disk1=/dev/null", "--yes"],
        "lifeboat: probing /dev/null for disk1: /dev/null: /dev/null is not a block device",
    );
    lifeboat_refuses(
        &[
            "provision",
            &spec,
            "--disk",
            &d1.replace("disk1", "disk9"),
            "--yes",
        ],
        "unknown disk id \"disk9\" in --disk",
    );
    // A blank 4.5 TB disk given as disk1: a size outside the match rules does not refuse
    // a disk named by hand (it may be the replacement of a dead disk); the plan says so.
    // (A drive that holds anything is still refused without --wipe:
    // foreign_data_needs_wipe_and_in_use_disks_are_refused.)
    let plan = lifeboat(&[
        "plan",
        &spec,
        "--disk",
        &format!("disk1={}", m.usb.dev.display()),
        "--only",
        "disk1",
    ]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stdout).contains(
            "its size 4.50 TB is not between 1.90 TB and 2.10 TB (the spec's match rules): taken as a replacement disk"
        ),
        "{}",
        text(&plan.stdout)
    );
    lifeboat_refuses(
        &[
            "provision",
            &spec,
            "--disk",
            &d1,
            "--only",
            "disk0",
            "--yes",
        ],
        "disk0 is preserved in the spec and is never partitioned or formatted",
    );
    lifeboat_refuses(
        &["provision", &spec, "--disk", &d1, "--disk", &usb],
        "refusing to write without confirmation",
    );
    // A disk that is too small for the layout (no size range in this spec).
    let small_img = Image::sparse(m._dir.path(), "small.img", 60_000_000_000);
    let small = Loop::attach(&small_img.path);
    let small_fp = fingerprint(&small_img.path);
    let nomatch = write_spec(
        m._dir.path(),
        "nomatch.toml",
        &std::fs::read_to_string(spec_path())
            .unwrap()
            .replace("min_size = \"1900GB\"", "")
            .replace("max_size = \"2100GB\"", ""),
    );
    lifeboat_refuses(
        &[
            "provision",
            &nomatch,
            "--disk",
            &format!("disk1={}", small.dev.display()),
            "--only",
            "disk1",
            "--yes",
        ],
        "is too small: it has 60.00 GB but the spec's partitions need at least",
    );
    assert_eq!(fingerprint(&small_img.path), small_fp);
    assert_eq!(
        m.fingerprints(),
        before,
        "a refused command wrote to a disk"
    );
}

#[test]
fn foreign_data_needs_wipe_and_in_use_disks_are_refused() {
    let m = Machine::new();
    let spec = spec_path().display().to_string();
    let u = m.usb.dev.to_str().unwrap().to_owned();
    // Someone else's data on the backup drive.
    run(&["sgdisk", "-n", "1:0:+100G", "-c", "1:Photos", &u]);
    run(&["partx", "-a", &u]);
    run(&["mkfs.ext4", "-F", "-q", "-L", "PHOTOS", &format!("{u}p1")]);
    let before = m.fingerprints();
    let usb = format!("usb={u}");
    lifeboat_refuses(
        &["provision", &spec, "--disk", &usb, "--only", "usb", "--yes"],
        "already holds a GPT with 1 partition that differs from the spec (#1 \"Photos\" a ext4 filesystem labelled \"PHOTOS\"), which provisioning would destroy; to replace it, pass --wipe usb",
    );
    assert_eq!(m.fingerprints(), before);

    // Mounted: refused even with --wipe. (Mounting ext4 writes to it, so no fingerprint.)
    {
        let _mounted = Mount::new(Path::new(&format!("{u}p1")), "ext4");
        lifeboat_refuses(
            &[
                "provision",
                &spec,
                "--disk",
                &usb,
                "--only",
                "usb",
                "--wipe",
                "usb",
                "--yes",
            ],
            &format!("usb ({u}) is in use: {u}p1 is mounted at"),
        );
    }
    let names: Vec<String> = sgdisk_rows(&m.usb.dev).into_iter().map(|r| r.4).collect();
    assert_eq!(names, ["Photos"], "the refused run changed the table");

    // With --wipe it is replaced by the spec's layout.
    let out = lifeboat_ok(&[
        "provision",
        &spec,
        "--disk",
        &usb,
        "--only",
        "usb",
        "--wipe",
        "usb",
        "--yes",
    ]);
    assert!(out.contains("DESTROYS a GPT with 1 partition"), "{out}");
    let names: Vec<String> = sgdisk_rows(&m.usb.dev).into_iter().map(|r| r.4).collect();
    assert_eq!(names, ["WINBKUP", "CUSHION", "LINBKUP"]);
    assert_eq!(
        blkid(&node(&m.usb.dev, 1)),
        ("ntfs".into(), "WINBKUP".into())
    );
    assert_eq!(
        blkid(&node(&m.usb.dev, 2)),
        ("ext4".into(), "CUSHION".into())
    );
}
