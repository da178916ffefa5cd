//! The drill's own loop devices: attached with `losetup` over its image files, marked
//! autoclear and partscan, and held open for the drill's lifetime. When the drill dies
//! however it dies (SIGKILL included), its descriptor closes and the kernel detaches the
//! loop device once nothing else holds it (a mount left behind by a killed run is undone
//! by the next lifeboat run, `apply::mount::release_stale`, and then the device goes too);
//! partscan makes the kernel drop the partitions the drill added with BLKPG when it does.

// LOOP_GET_STATUS64/LOOP_SET_STATUS64 need `unsafe`; one call each, on a struct built
// just before.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exec::Cmd;

const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_PARTSCAN: u32 = 8;

/// `struct loop_info64` from <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

nix::ioctl_write_ptr_bad!(loop_set_status64, 0x4C04, LoopInfo64);
nix::ioctl_read_bad!(loop_get_status64, 0x4C05, LoopInfo64);

/// A loop device the drill attached; detached (partitions first) when dropped.
#[derive(Debug)]
pub struct LoopImage {
    pub dev: PathBuf,
    pub image: PathBuf,
    /// Held open so that the kernel's autoclear waits for the drill.
    held: Option<File>,
}

impl LoopImage {
    /// Attach `image` to a free loop device.
    pub fn attach(image: &Path) -> Result<LoopImage> {
        let out = Cmd::new("losetup")
            .args(["--find", "--show", "--sector-size", "512"])
            .arg(image)
            .read()
            .with_context(|| format!("attaching {} to a loop device", image.display()))?;
        let dev = PathBuf::from(out.trim());
        let mut this = LoopImage {
            dev,
            image: image.to_owned(),
            held: None,
        };
        let held =
            File::open(&this.dev).with_context(|| format!("opening {}", this.dev.display()))?;
        set_flags(&held, LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN)
            .with_context(|| format!("marking {} autoclear", this.dev.display()))?;
        this.held = Some(held);
        Ok(this)
    }

    /// Whether `path` is this loop device (or one of its partitions).
    pub fn holds(&self, path: &Path) -> bool {
        let (Ok(mine), Ok(other)) = (
            crate::blockdev::kernel_name(&self.dev),
            crate::blockdev::kernel_name(path),
        ) else {
            return false;
        };
        other == mine
            || other
                .strip_prefix(&mine)
                .is_some_and(|r| r.starts_with('p'))
    }

    /// Flush and detach now (the image file is then what QEMU boots).
    pub fn detach(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let _ = Cmd::new("blockdev").arg("--flushbufs").arg(&self.dev).run();
        // Partitions added with BLKPG would otherwise outlive the binding.
        let _ = Cmd::new("partx").arg("-d").arg(&self.dev).run();
        drop(held);
        // Autoclear may have detached it already when the last holder closed.
        match Cmd::new("losetup").arg("-d").arg(&self.dev).run() {
            Ok(_) => Ok(()),
            Err(_) if !still_bound(&self.dev, &self.image) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("detaching {}", self.dev.display())),
        }
    }
}

impl Drop for LoopImage {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            eprintln!("warning: {e:#}");
        }
    }
}

/// Whether the loop device is still bound to `image`.
fn still_bound(dev: &Path, image: &Path) -> bool {
    let Ok(name) = crate::blockdev::kernel_name(dev) else {
        return false;
    };
    let backing = crate::blockdev::sysfs_dir(&name).join("loop/backing_file");
    std::fs::read_to_string(backing).is_ok_and(|b| Path::new(b.trim()) == image)
}

fn set_flags(file: &File, flags: u32) -> std::io::Result<()> {
    // SAFETY: LoopInfo64 is plain old data; all-zero is a valid value of it.
    let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel fills `info`, a correctly sized loop_info64.
    unsafe { loop_get_status64(file.as_raw_fd(), &mut info) }.map_err(std::io::Error::from)?;
    info.lo_flags |= flags;
    // SAFETY: `info` is the kernel's own status with two settable flags added.
    unsafe { loop_set_status64(file.as_raw_fd(), &info) }.map_err(std::io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_info64_has_the_kernels_size() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    }

    #[test]
    fn a_closed_drill_leaves_no_loop_device() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("disk.img");
        File::create(&img).unwrap().set_len(64 << 20).unwrap();
        let l = LoopImage::attach(&img).unwrap();
        let dev = l.dev.clone();
        let flags = std::fs::read_to_string(
            crate::blockdev::sysfs_dir(&crate::blockdev::kernel_name(&dev).unwrap())
                .join("loop/autoclear"),
        )
        .unwrap();
        assert_eq!(flags.trim(), "1");
        assert!(still_bound(&dev, &img));
        l.detach().unwrap();
        assert!(!still_bound(&dev, &img));
    }
}
