//! Guards and helpers for integration tests on loop devices. Every loop device and mount a
//! test makes is undone by its own name when the guard drops, also when the test fails.
#![allow(dead_code)]

pub mod attrs;
pub mod s3;
pub mod send_stream;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{lseek, Whence};
use sha2::{Digest, Sha256};

/// Run a program; panic with its stderr if it fails. Returns stdout.
pub fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// configs/atlantis.toml of this checkout.
pub fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml")
}

/// The lifeboat binary under test, stdin closed, its run log in a temporary directory.
pub fn lifeboat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env(
            "LIFEBOAT_LOG_DIR",
            std::env::temp_dir().join("lifeboat-test-logs"),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run lifeboat")
}

/// `btrfs send [-p parent] snap | btrfs receive dir`, as btrbk does it.
pub fn send_receive(snap: &Path, parent: Option<&Path>, into: &Path) {
    use std::process::Stdio;
    let mut send = Command::new("btrfs");
    send.args(["send", "-q"]);
    if let Some(p) = parent {
        send.arg("-p").arg(p);
    }
    let mut sender = send.arg(snap).stdout(Stdio::piped()).spawn().unwrap();
    let status = Command::new("btrfs")
        .args(["receive", "-q"])
        .arg(into)
        .stdin(sender.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(sender.wait().unwrap().success() && status.success());
}

/// Write a file, making its directories.
pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every entry under `dir`: path → description. Hard links share a group (the first path
/// with that inode); content by sha256; xattrs from getfattr.
pub fn manifest(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let m = fs::symlink_metadata(&path).unwrap();
            let owner = format!(
                "{:o} {}:{}",
                m.permissions().mode() & 0o7777,
                m.uid(),
                m.gid()
            );
            let what = if m.is_dir() {
                stack.push(path.clone());
                format!("dir {owner}")
            } else if m.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else {
                let group = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
                let mut h = Sha256::new();
                h.update(fs::read(&path).unwrap());
                format!(
                    "file {owner} {} {:x} links={} group={group}",
                    m.len(),
                    h.finalize(),
                    m.nlink()
                )
            };
            out.insert(rel, what);
        }
    }
    let xattrs = Command::new("getfattr")
        .args(["-R", "-d", "-m", "-", "-h", "."])
        .current_dir(dir)
        .output()
        .unwrap();
    out.insert(
        "(xattrs)".into(),
        String::from_utf8_lossy(&xattrs.stdout).into_owned(),
    );
    out
}

pub fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            Some(w) if w == v => {}
            Some(w) => d.push(format!("{k}: {v} != {w}")),
            None => d.push(format!("{k}: only in the first")),
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        d.push(format!("{k}: only in the second"));
    }
    d
}

/// A sparse image file: real sizes cost nothing until written.
pub struct Image {
    pub path: PathBuf,
}

impl Image {
    pub fn sparse(dir: &Path, name: &str, size: u64) -> Image {
        let path = dir.join(name);
        File::create(&path).unwrap().set_len(size).unwrap();
        Image { path }
    }
}

/// A loop device over an image; detached (with its partitions) on drop.
pub struct Loop {
    pub dev: PathBuf,
}

impl Loop {
    pub fn attach(image: &Path) -> Loop {
        Loop::attach_with_sectors(image, 512)
    }

    /// With this logical sector size (`losetup -b 4096`: a 4Kn disk).
    pub fn attach_with_sectors(image: &Path, sector_size: u32) -> Loop {
        let out = run(&[
            "losetup",
            "--find",
            "--show",
            "--sector-size",
            &sector_size.to_string(),
            image.to_str().unwrap(),
        ]);
        let dev = PathBuf::from(out.trim());
        // A loop device detached without `partx -d` leaves its partitions behind in the
        // kernel; the next image on that device must not inherit them.
        let _ = Command::new("partx").arg("-d").arg(&dev).output();
        Loop { dev }
    }

    pub fn path(&self) -> &str {
        self.dev.to_str().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Partitions added with BLKPG outlive the loop binding unless removed first.
        let _ = Command::new("partx").arg("-d").arg(&self.dev).output();
        match Command::new("losetup").arg("-d").arg(&self.dev).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "losetup -d {} failed: {}",
                self.dev.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("losetup -d {}: {e}", self.dev.display()),
        }
    }
}

/// A filesystem mounted on a fresh temporary directory; unmounted on drop. The directory
/// is not removed if the unmount fails.
pub struct Mount {
    dir: Option<tempfile::TempDir>,
}

impl Mount {
    pub fn new(dev: &Path, fstype: &str) -> Mount {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-test-mnt-")
            .tempdir()
            .unwrap();
        run(&[
            "mount",
            "-t",
            fstype,
            dev.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ]);
        Mount { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let ok = Command::new("umount")
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                let _ = dir.close();
            } else {
                eprintln!(
                    "umount {} failed; leaving the directory",
                    dir.path().display()
                );
                let _ = dir.keep();
            }
        }
    }
}

/// disk0 as the factory leaves it, made by sgdisk, mkfs.vfat and mkfs.ntfs: a 512 MiB ESP
/// (FAT32, ESP0) and Windows (NTFS) on the rest. The loop device over `image`.
pub fn factory_windows(image: &Path) -> Loop {
    let disk0 = Loop::attach(image);
    let d0 = disk0.path().to_owned();
    run(&[
        "sgdisk",
        "-n",
        "1:0:+512M",
        "-t",
        "1:ef00",
        "-c",
        "1:EFI system partition",
        "-n",
        "2:0:0",
        "-t",
        "2:0700",
        "-c",
        "2:Basic data partition",
        &d0,
    ]);
    run(&["partx", "-a", &d0]);
    run(&["mkfs.vfat", "-F", "32", "-n", "ESP0", &format!("{d0}p1")]);
    run(&[
        "mkfs.ntfs",
        "-Q",
        "-F",
        "-q",
        "-L",
        "Windows",
        &format!("{d0}p2"),
    ]);
    disk0
}

/// A fingerprint of a sparse file's bytes: SHA-256 over (offset, block) for every 4 KiB
/// block that is not all zeros. Equal fingerprints mean byte-identical files; holes are
/// skipped with SEEK_DATA, so a mostly empty 4.5 TB image takes milliseconds. (Extent maps
/// are no fingerprint: reading unwritten extents through a loop device makes them show up
/// as data without any byte changing.)
pub fn fingerprint(path: &Path) -> String {
    let mut f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len() as i64;
    let mut h = Sha256::new();
    let mut pos = 0i64;
    let mut buf = vec![0u8; 1 << 20];
    while pos < len {
        let start = match lseek(f.as_raw_fd(), pos, Whence::SeekData) {
            Ok(s) => s,
            Err(nix::errno::Errno::ENXIO) => break, // no data after pos
            Err(e) => panic!("SEEK_DATA on {}: {e}", path.display()),
        };
        let end = lseek(f.as_raw_fd(), start, Whence::SeekHole).unwrap();
        f.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut at = start as u64;
        while at < end as u64 {
            let n = ((end as u64 - at) as usize).min(buf.len());
            f.read_exact(&mut buf[..n]).unwrap();
            for (i, block) in buf[..n].chunks(4096).enumerate() {
                if block.iter().any(|b| *b != 0) {
                    h.update((at + i as u64 * 4096).to_le_bytes());
                    h.update(block);
                }
            }
            at += n as u64;
        }
        pos = end;
    }
    format!("{:x}", h.finalize())
}

/// SHA-256 of `len` bytes at `offset` (for a partition inside an image).
pub fn sha256_range(path: &Path, offset: u64, len: u64) -> String {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        left -= n as u64;
    }
    format!("{:x}", h.finalize())
}

/// A dead disk replaced by a blank one of the same size: the image emptied (its kernel
/// partitions dropped first) and the loop device's cache flushed.
pub fn blank(image: &Path, size: u64, dev: &Loop) {
    let _ = Command::new("partx").arg("-d").arg(&dev.dev).output();
    let f = fs::OpenOptions::new().write(true).open(image).unwrap();
    f.set_len(0).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    run(&["blockdev", "--flushbufs", dev.path()]);
}
