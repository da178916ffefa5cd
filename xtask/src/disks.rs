//! The bench and demo "machine": three sparse image files of Atlantis' real sizes on loop
//! devices, disk0 carrying a factory-like Windows layout. Guards detach every loop device
//! (by its own name) and unmount every mount on all exit paths, errors and Ctrl-C included.
//!
//! The host kernel has no GPT parser: after a table is written, partitions exist only once
//! they are added with BLKPG (`partx -a`), and detaching a loop device does not remove
//! them, so the guards delete them (`partx -d`) first.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{run_quiet, target_dir};

/// Sizes of the real disks, in bytes, as their makers count them.
pub const DISK0_BYTES: u64 = 512_000_000_000;
pub const DISK1_BYTES: u64 = 2_000_000_000_000;
pub const USB_BYTES: u64 = 4_500_000_000_000;

const MIB: u64 = 1024 * 1024;

/// A byte size rounded up to whole MiB, the granularity partitions are aligned to.
pub const fn mib_ceil(bytes: u64) -> u64 {
    bytes.div_ceil(MIB)
}

#[derive(Debug, Clone, Copy)]
pub enum Size {
    Mib(u64),
    Rest,
}

#[derive(Debug, Clone, Copy)]
pub enum Fs {
    Vfat,
    Ext4,
    Swap,
    Ntfs,
    /// With the subvolumes to create at the top level.
    Btrfs(&'static [&'static str]),
}

impl Fs {
    /// What `blkid` reports as TYPE.
    pub fn blkid_type(self) -> &'static str {
        match self {
            Fs::Vfat => "vfat",
            Fs::Ext4 => "ext4",
            Fs::Swap => "swap",
            Fs::Ntfs => "ntfs",
            Fs::Btrfs(_) => "btrfs",
        }
    }
}

/// One GPT partition and what goes in it, as plain tools would make it.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    pub name: &'static str,
    pub size: Size,
    /// sgdisk's short type code (ef00, 8300, …).
    pub typecode: &'static str,
    pub fs: Fs,
    pub label: Option<&'static str>,
}

pub const LINPOOL_SUBVOLUMES: &[&str] = &[
    "@rootTW",
    "@rootF41",
    "@rootNobara",
    "@home",
    "@snapshots",
    "Atlantis-meta",
];

/// configs/atlantis.toml's disk1, as plain tools make it.
pub const ATLANTIS_DISK1: &[Part] = &[
    Part {
        name: "ESP1",
        size: Size::Mib(512),
        typecode: "ef00",
        fs: Fs::Vfat,
        label: Some("ESP1"),
    },
    Part {
        name: "boot",
        size: Size::Mib(1024),
        typecode: "8300",
        fs: Fs::Ext4,
        label: Some("BOOT"),
    },
    Part {
        name: "swap",
        size: Size::Mib(64 * 1024),
        typecode: "8200",
        fs: Fs::Swap,
        label: Some("SWAP"),
    },
    Part {
        name: "LINPOOL",
        size: Size::Rest,
        typecode: "8300",
        fs: Fs::Btrfs(LINPOOL_SUBVOLUMES),
        label: Some("LINPOOL"),
    },
];

/// What disk0 looks like when the machine leaves the factory.
pub const FACTORY_DISK0: &[Part] = &[
    Part {
        name: "EFI system partition",
        size: Size::Mib(512),
        typecode: "ef00",
        fs: Fs::Vfat,
        label: Some("ESP0"),
    },
    Part {
        name: "Basic data partition",
        size: Size::Rest,
        typecode: "0700",
        fs: Fs::Ntfs,
        label: None,
    },
];

/// sgdisk arguments that write a fresh GPT with `layout`, partitions on 1 MiB boundaries.
pub fn sgdisk_args(layout: &[Part]) -> Vec<String> {
    let mut args = vec!["-o".to_owned(), "-a".to_owned(), "2048".to_owned()];
    for (i, part) in layout.iter().enumerate() {
        let n = i + 1;
        let end = match part.size {
            Size::Mib(mib) => format!("+{mib}M"),
            Size::Rest => "0".to_owned(),
        };
        args.extend([
            "-n".to_owned(),
            format!("{n}:0:{end}"),
            "-t".to_owned(),
            format!("{n}:{}", part.typecode),
            "-c".to_owned(),
            format!("{n}:{}", part.name),
            // A random unique GUID, as an installer would give it.
            "-u".to_owned(),
            format!("{n}:R"),
        ]);
    }
    args
}

/// Writes `layout` onto `disk` with sgdisk, tells the kernel about the partitions and makes
/// every file system (and Btrfs subvolume, mounting under `scratch`).
pub fn lay_out(sh: &Shell, disk: &LoopDisk, layout: &[Part], scratch: &Path) -> Result<()> {
    let args = sgdisk_args(layout);
    let dev = disk.dev();
    run_quiet(cmd!(sh, "sgdisk {args...} {dev}"))?;
    disk.add_partitions(sh)?;
    for (i, part) in layout.iter().enumerate() {
        make_fs(sh, &disk.part(i + 1), part, scratch)?;
    }
    Ok(())
}

fn make_fs(sh: &Shell, dev: &Path, part: &Part, scratch: &Path) -> Result<()> {
    let label: Vec<&str> = part.label.into_iter().collect();
    match part.fs {
        Fs::Vfat => {
            let label = label.iter().flat_map(|l| ["-n", *l]);
            run_quiet(cmd!(sh, "mkfs.vfat -F 32 {label...} {dev}"))?;
        }
        Fs::Ext4 => {
            let label = label.iter().flat_map(|l| ["-L", *l]);
            run_quiet(cmd!(sh, "mkfs.ext4 -F -q {label...} {dev}"))?;
        }
        Fs::Swap => {
            let label = label.iter().flat_map(|l| ["-L", *l]);
            run_quiet(cmd!(sh, "mkswap {label...} {dev}"))?;
        }
        Fs::Ntfs => {
            let label = label.iter().flat_map(|l| ["-L", *l]);
            run_quiet(cmd!(sh, "mkfs.ntfs -Q -F -q {label...} {dev}"))?;
        }
        Fs::Btrfs(subvolumes) => {
            let label_args = label.iter().flat_map(|l| ["-L", *l]);
            run_quiet(cmd!(sh, "mkfs.btrfs -f -q {label_args...} {dev}"))?;
            if !subvolumes.is_empty() {
                let mnt = Mount::new(sh, dev, &scratch.join("mnt"), &[])?;
                for name in subvolumes {
                    let path = mnt.path().join(name);
                    run_quiet(cmd!(sh, "btrfs subvolume create {path}"))?;
                }
                mnt.unmount()?;
            }
        }
    }
    Ok(())
}

/// The three disks, attached, with disk0 in its factory state.
pub struct Lab {
    // Field order is drop order: the loop devices go before their directory.
    pub disk0: LoopDisk,
    pub disk1: LoopDisk,
    pub usb: LoopDisk,
    dir: ScratchDir,
}

impl Lab {
    /// Creates the images under target/bench/<purpose>-<pid>/ and attaches them with direct
    /// I/O (see [`Io::Direct`]).
    pub fn create(sh: &Shell, purpose: &str) -> Result<Lab> {
        let dir = ScratchDir::create(
            &target_dir()
                .join("bench")
                .join(format!("{purpose}-{}", std::process::id())),
        )?;
        let attach = |id, bytes| LoopDisk::attach_with(sh, id, bytes, dir.path(), Io::Direct);
        let disk0 = attach("disk0", DISK0_BYTES)?;
        let disk1 = attach("disk1", DISK1_BYTES)?;
        let usb = attach("usb", USB_BYTES)?;
        lay_out(sh, &disk0, FACTORY_DISK0, dir.path())
            .context("making the factory layout on disk0")?;
        Ok(Lab {
            disk0,
            disk1,
            usb,
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn disks(&self) -> [&LoopDisk; 3] {
        [&self.disk0, &self.disk1, &self.usb]
    }

    /// `--disk ID=DEVICE` for every disk, as `lifeboat plan` and `provision` take them.
    pub fn bindings(&self) -> Vec<String> {
        self.disks()
            .iter()
            .flat_map(|d| {
                [
                    "--disk".to_owned(),
                    format!("{}={}", d.id, d.dev().display()),
                ]
            })
            .collect()
    }

    /// Leaves devices and images in place (for `demo --keep`).
    pub fn keep(mut self) {
        self.disk0.dev = None;
        self.disk1.dev = None;
        self.usb.dev = None;
        self.dir.keep = true;
    }

    /// Detaches everything and removes the images, reporting the first failure.
    pub fn close(mut self) -> Result<()> {
        let mut result = Ok(());
        for disk in [&mut self.disk0, &mut self.disk1, &mut self.usb] {
            let detached = disk.detach();
            if result.is_ok() {
                result = detached;
            }
        }
        if result.is_err() {
            // An image still attached stays where the user can find it.
            self.dir.keep = true;
        }
        result
    }
}

/// How a loop device reaches its image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// Through the host's page cache (losetup's default).
    Cached,
    /// Past it (`losetup --direct-io=on`), as a real disk has no second cache beneath
    /// the filesystem's. The benches' lab: with cached loop devices the host caches the
    /// image files too, and `bench scale` measured the transfer of 8 GiB at 2.1 times the
    /// cost per GiB of 0.5 GiB's (84 s against 2.5 s: the host's writeback of the images
    /// grew, not the restore); with direct I/O the loop devices write about 1 GB/s here
    /// (`dd oflag=direct`, 2 GiB in 2.0 s, 2.6 s cached) and the 8 GiB transfer took 42 s.
    Direct,
}

/// A sparse image file attached to a loop device, detached on drop.
pub struct LoopDisk {
    pub id: &'static str,
    pub bytes: u64,
    pub image: PathBuf,
    dev: Option<PathBuf>,
}

impl LoopDisk {
    /// Creates `dir/ID.img`, sparse, `bytes` long, and attaches it through the page cache.
    pub fn attach(sh: &Shell, id: &'static str, bytes: u64, dir: &Path) -> Result<LoopDisk> {
        LoopDisk::attach_with(sh, id, bytes, dir, Io::Cached)
    }

    /// Creates `dir/ID.img`, sparse, `bytes` long, and attaches it as `io` says.
    pub fn attach_with(
        sh: &Shell,
        id: &'static str,
        bytes: u64,
        dir: &Path,
        io: Io,
    ) -> Result<LoopDisk> {
        let image = dir.join(format!("{id}.img"));
        let file = File::create(&image).with_context(|| format!("creating {}", image.display()))?;
        file.set_len(bytes)
            .with_context(|| format!("making {} {bytes} bytes long", image.display()))?;
        drop(file);
        let direct = match io {
            Io::Cached => "--direct-io=off",
            Io::Direct => "--direct-io=on",
        };
        let dev = run_quiet(cmd!(sh, "losetup --find --show {direct} {image}"))?;
        let dev = dev.trim();
        // Guard first, so that whatever losetup attached is detached on the error below.
        let disk = LoopDisk {
            id,
            bytes,
            image,
            dev: Some(PathBuf::from(dev)),
        };
        if !dev.starts_with("/dev/loop") {
            bail!("losetup printed `{dev}` instead of a loop device");
        }
        if io == Io::Direct {
            // losetup falls back to the page cache where the image's filesystem has no
            // O_DIRECT, and says so only on stderr.
            let name = dev.trim_start_matches("/dev/");
            let dio =
                std::fs::read_to_string(format!("/sys/block/{name}/loop/dio")).unwrap_or_default();
            if dio.trim() != "1" {
                bail!(
                    "{dev} could not be attached with direct I/O (/sys/block/{name}/loop/dio is {:?}): \
                     the filesystem holding {} has no O_DIRECT",
                    dio.trim(),
                    disk.image.display()
                );
            }
        }
        Ok(disk)
    }

    pub fn dev(&self) -> &Path {
        self.dev.as_deref().unwrap_or(Path::new("/dev/null"))
    }

    /// The device node of partition `n` (1-based).
    pub fn part(&self, n: usize) -> PathBuf {
        PathBuf::from(format!("{}p{n}", self.dev().display()))
    }

    /// The partitions the kernel knows of, in order, from sysfs.
    pub fn kernel_partitions(&self) -> Result<Vec<PathBuf>> {
        let name = self
            .dev()
            .file_name()
            .and_then(|n| n.to_str())
            .context("loop device path has no name")?;
        let sys = Path::new("/sys/class/block").join(name);
        let mut numbers: Vec<usize> = std::fs::read_dir(&sys)
            .with_context(|| format!("reading {}", sys.display()))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let entry = entry.file_name();
                entry
                    .to_str()?
                    .strip_prefix(name)?
                    .strip_prefix('p')?
                    .parse()
                    .ok()
            })
            .collect();
        numbers.sort_unstable();
        Ok(numbers.into_iter().map(|n| self.part(n)).collect())
    }

    /// `partx -a`: the BLKPG_ADD_PARTITION step the host kernel needs.
    pub fn add_partitions(&self, sh: &Shell) -> Result<()> {
        let dev = self.dev();
        run_quiet(cmd!(sh, "partx -a {dev}"))?;
        Ok(())
    }

    /// Back to a blank disk: no signatures in the partitions, no partitions in the kernel,
    /// no partition table (primary or backup) on the disk; then everything flushed so the
    /// next timed step does not pay for this one's writes.
    pub fn reset_blank(&self, sh: &Shell) -> Result<()> {
        let dev = self.dev();
        let parts = self.kernel_partitions()?;
        for part in &parts {
            run_quiet(cmd!(sh, "wipefs -a -q {part}"))?;
        }
        if !parts.is_empty() {
            run_quiet(cmd!(sh, "partx -d {dev}"))?;
        }
        run_quiet(cmd!(sh, "wipefs -a -q {dev}"))?;
        run_quiet(cmd!(sh, "sync"))?;
        // blkid exits 2 when it finds nothing at all: the proof the disk is blank.
        let probe = cmd!(sh, "blkid -p {dev}")
            .quiet()
            .ignore_status()
            .output()?;
        if probe.status.code() != Some(2) {
            bail!(
                "{} ({}) is not blank after wipefs: blkid sees {}",
                self.id,
                dev.display(),
                String::from_utf8_lossy(&probe.stdout).trim()
            );
        }
        Ok(())
    }

    /// Detaches now, reporting a failure (drop only prints it).
    pub fn close(mut self) -> Result<()> {
        self.detach()
    }

    fn detach(&mut self) -> Result<()> {
        let Some(dev) = self.dev.clone() else {
            return Ok(());
        };
        let sh = Shell::new()?;
        if !self.kernel_partitions()?.is_empty() {
            run_quiet(cmd!(sh, "partx -d {dev}"))?;
        }
        run_quiet(cmd!(sh, "losetup -d {dev}"))?;
        self.dev = None;
        Ok(())
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        if let Some(dev) = self.dev.clone() {
            if let Err(err) = self.detach() {
                eprintln!(
                    "xtask: could not detach {} ({}): {err:#}; detach it with `partx -d {0}; losetup -d {0}`",
                    dev.display(),
                    self.id
                );
            }
        }
    }
}

/// A mount under a scratch directory, unmounted on drop.
pub struct Mount {
    dir: PathBuf,
    mounted: bool,
}

impl Mount {
    pub fn new(sh: &Shell, dev: &Path, dir: &Path, options: &[&str]) -> Result<Mount> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let options = options.iter().flat_map(|o| ["-o", o]);
        run_quiet(cmd!(sh, "mount {options...} {dev} {dir}"))?;
        Ok(Mount {
            dir: dir.to_path_buf(),
            mounted: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn unmount(mut self) -> Result<()> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<()> {
        if self.mounted {
            let sh = Shell::new()?;
            let dir = &self.dir;
            run_quiet(cmd!(sh, "umount {dir}"))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(err) = self.unmount_inner() {
            eprintln!("xtask: could not unmount {}: {err:#}", self.dir.display());
        }
    }
}

/// A directory of our own, removed on drop unless something in it is still in use.
struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    fn create(path: &Path) -> Result<ScratchDir> {
        if path.exists() {
            bail!(
                "{} already exists; remove it (a leftover of an earlier run)",
                path.display()
            );
        }
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir {
            path: path.to_path_buf(),
            keep: false,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Never recurse into a mount that could not be unmounted.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let dir = self.path.to_string_lossy().into_owned();
            let inside = format!("{dir}/");
            let busy = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|m| m == dir || m.starts_with(&inside));
            if busy {
                eprintln!("xtask: leaving {dir} in place: something is still mounted in it");
                return;
            }
        }
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            eprintln!("xtask: could not remove {}: {err}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_mib() {
        assert_eq!(mib_ceil(MIB), 1);
        assert_eq!(mib_ceil(MIB + 1), 2);
        assert_eq!(mib_ceil(1_000_000_000_000), 953_675);
    }

    #[test]
    fn sgdisk_gets_one_argument_per_field() {
        let args = sgdisk_args(FACTORY_DISK0);
        let expect = [
            "-o",
            "-a",
            "2048",
            "-n",
            "1:0:+512M",
            "-t",
            "1:ef00",
            "-c",
            "1:EFI system partition",
            "-u",
            "1:R",
            "-n",
            "2:0:0",
            "-t",
            "2:0700",
            "-c",
            "2:Basic data partition",
            "-u",
            "2:R",
        ];
        assert_eq!(args, expect);
    }
}
