//! The kernel's view of a block device: its name in sysfs, the partitions it knows, and the
//! two ioctls that change that view (BLKRRPART, BLKPG). Nothing here writes to a disk.
//!
//! Why both ioctls: the rescue image's kernel parses GPT on BLKRRPART; the kernels of our
//! build and CI machines have no GPT parser, so each partition is added with BLKPG, which
//! is what `partx -a` does. Doing both works everywhere.

// The ioctls need `unsafe`; each call is one line with its argument built just before.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A partition as the kernel knows it (sysfs), which may differ from the on-disk table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelPartition {
    pub number: u32,
    /// In bytes from the start of the disk.
    pub start: u64,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BlockdevError {
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{} is not a block device", path.display())]
    NotBlock { path: PathBuf },
    #[error("{}: telling the kernel about partition {number} failed: {errno}", path.display())]
    Blkpg {
        path: PathBuf,
        number: u32,
        errno: nix::Error,
    },
    #[error("{} did not appear within {} s after the kernel was told about it", node.display(), WAIT.as_secs())]
    NoNode { node: PathBuf },
}

const WAIT: Duration = Duration::from_secs(5);

const BLKPG_ADD_PARTITION: libc::c_int = 1;
const BLKPG_DEL_PARTITION: libc::c_int = 2;

/// `struct blkpg_partition` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgPartition {
    start: libc::c_longlong,
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [libc::c_char; 64],
    volname: [libc::c_char; 64],
}

/// `struct blkpg_ioctl_arg` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

nix::ioctl_none!(blkrrpart, 0x12, 95);
// BLKSSZGET is _IO(0x12, 104) but writes an int through its argument.
nix::ioctl_read_bad!(blksszget, 0x1268, libc::c_int);
nix::ioctl_none!(blkflsbuf, 0x12, 97);
nix::ioctl_write_ptr_bad!(blkpg, 0x1269, BlkpgIoctlArg);

/// major:minor of a block device node.
pub fn dev_numbers(path: &Path) -> Result<(u64, u64), BlockdevError> {
    let st = nix::sys::stat::stat(path).map_err(|e| BlockdevError::Io {
        path: path.to_owned(),
        what: "stat",
        source: e.into(),
    })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFBLK {
        return Err(BlockdevError::NotBlock {
            path: path.to_owned(),
        });
    }
    Ok((
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    ))
}

/// The kernel's name for a device node (`/dev/loop0` → `loop0`, symlinks resolved).
pub fn kernel_name(path: &Path) -> Result<String, BlockdevError> {
    let (major, minor) = dev_numbers(path)?;
    let link = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let target = std::fs::read_link(&link).map_err(|source| BlockdevError::Io {
        path: link.clone(),
        what: "reading the sysfs link",
        source,
    })?;
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or(BlockdevError::NotBlock {
            path: path.to_owned(),
        })
}

/// The kernel name of the whole disk that holds device `major:minor` (itself, or the disk
/// a partition is on); `None` for a device number that is no block device (tmpfs, FUSE).
pub fn whole_disk_of(major: u64, minor: u64) -> Option<String> {
    let link = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let target = std::fs::canonicalize(&link).ok()?;
    let disk = if link.join("partition").exists() {
        target.parent()?
    } else {
        &target
    };
    disk.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Whether the disk that holds the device node `path` says it spins
/// (`queue/rotational`); `None` when that cannot be read. Loop devices and some virtual
/// disks say 1 whatever is beneath them.
pub fn spins(path: &Path) -> Option<bool> {
    let (major, minor) = dev_numbers(path).ok()?;
    let disk = whole_disk_of(major, minor)?;
    let flag = std::fs::read_to_string(sysfs_dir(&disk).join("queue/rotational")).ok()?;
    Some(flag.trim() == "1")
}

/// The sysfs directory of a block device by kernel name.
pub fn sysfs_dir(name: &str) -> PathBuf {
    Path::new("/sys/class/block").join(name)
}

/// Partitions the kernel knows on a whole disk, by number.
pub fn kernel_partitions(name: &str) -> Vec<KernelPartition> {
    let dir = sysfs_dir(name);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let read = |f: &str| -> Option<u64> {
            std::fs::read_to_string(p.join(f)).ok()?.trim().parse().ok()
        };
        if let (Some(number), Some(start), Some(size)) =
            (read("partition"), read("start"), read("size"))
        {
            out.push(KernelPartition {
                number: number as u32,
                // sysfs counts 512-byte sectors whatever the logical block size.
                start: start * 512,
                size: size * 512,
            });
        }
    }
    out.sort_by_key(|k| k.number);
    out
}

/// `/dev/sda` + 1 → `/dev/sda1`; `/dev/loop0`, `/dev/nvme0n1` + 1 → `…p1`.
pub fn partition_node(disk: &Path, number: u32) -> PathBuf {
    let s = disk.to_string_lossy();
    if s.ends_with(|c: char| c.is_ascii_digit()) {
        PathBuf::from(format!("{s}p{number}"))
    } else {
        PathBuf::from(format!("{s}{number}"))
    }
}

fn open(path: &Path) -> Result<File, BlockdevError> {
    File::open(path).map_err(|source| BlockdevError::Io {
        path: path.to_owned(),
        what: "open",
        source,
    })
}

fn blkpg_call(
    file: &File,
    path: &Path,
    op: libc::c_int,
    p: &KernelPartition,
) -> Result<(), BlockdevError> {
    let mut part = BlkpgPartition {
        start: p.start as libc::c_longlong,
        length: p.size as libc::c_longlong,
        pno: p.number as libc::c_int,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: `arg` points at a live, correctly laid out blkpg_partition for the call.
    unsafe { blkpg(file.as_raw_fd(), &arg) }
        .map(|_| ())
        .map_err(|errno| BlockdevError::Blkpg {
            path: path.to_owned(),
            number: p.number,
            errno,
        })
}

/// Write out everything cached for a disk and its partitions (mkfs programs do not all
/// fsync), so that success is reported only for what is on the disk.
pub fn flush(path: &Path) -> Result<(), BlockdevError> {
    let name = kernel_name(path)?;
    let mut nodes: Vec<PathBuf> = kernel_partitions(&name)
        .iter()
        .map(|p| partition_node(path, p.number))
        .collect();
    nodes.push(path.to_owned());
    for node in nodes {
        open(&node)?
            .sync_all()
            .map_err(|source| BlockdevError::Io {
                path: node.clone(),
                what: "flushing",
                source,
            })?;
    }
    Ok(())
}

/// The logical sector size of a block device (a whole disk, a partition, a LUKS mapping),
/// as the kernel enforces it for filesystems on it; 512 for a plain image file.
pub fn logical_sector_size(file: &File) -> Result<u64, std::io::Error> {
    use std::os::unix::fs::FileTypeExt;
    if !file.metadata()?.file_type().is_block_device() {
        return Ok(512);
    }
    let mut size: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int to the pointer, which points at `size`.
    unsafe { blksszget(file.as_raw_fd(), &mut size) }.map_err(std::io::Error::from)?;
    Ok(size as u64)
}

/// Drop what the page cache holds of the whole disk (BLKFLSBUF). A partition has a page
/// cache of its own, and while anybody holds the whole disk open (our write lock does, so
/// does udev) the kernel keeps the disk's: a block read through the disk before a
/// filesystem was made through the partition would still read as it was.
pub fn drop_cache(path: &Path) -> Result<(), BlockdevError> {
    let file = open(path)?;
    // SAFETY: BLKFLSBUF takes no argument.
    unsafe { blkflsbuf(file.as_raw_fd()) }
        .map(|_| ())
        .map_err(|errno| BlockdevError::Io {
            path: path.to_owned(),
            what: "dropping the page cache",
            source: errno.into(),
        })
}

/// Ask the kernel to re-read the partition table. Returns whether it accepted; a kernel
/// without a GPT parser, or a loop device without partition scanning, says no, and that
/// is expected.
pub fn reread_partitions(path: &Path) -> Result<bool, BlockdevError> {
    let file = open(path)?;
    // SAFETY: BLKRRPART takes no argument.
    Ok(unsafe { blkrrpart(file.as_raw_fd()) }.is_ok())
}

/// Make the kernel's partitions of `path` exactly `wanted`, then wait for their nodes.
pub fn sync_partitions(path: &Path, wanted: &[KernelPartition]) -> Result<(), BlockdevError> {
    let name = kernel_name(path)?;
    let _ = reread_partitions(path)?;
    let file = open(path)?;
    let have = kernel_partitions(&name);
    for h in &have {
        if !wanted.contains(h) {
            crate::runlog::line(&format!(
                "BLKPG del {} partition {}",
                path.display(),
                h.number
            ));
            blkpg_call(&file, path, BLKPG_DEL_PARTITION, h)?;
        }
    }
    for w in wanted {
        if !have.contains(w) {
            crate::runlog::line(&format!(
                "BLKPG add {} partition {} start {} size {}",
                path.display(),
                w.number,
                w.start,
                w.size
            ));
            blkpg_call(&file, path, BLKPG_ADD_PARTITION, w)?;
        }
    }
    for w in wanted {
        let node = partition_node(path, w.number);
        let deadline = Instant::now() + WAIT;
        while !node.exists() {
            if Instant::now() > deadline {
                return Err(BlockdevError::NoNode { node });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_nodes() {
        assert_eq!(
            partition_node(Path::new("/dev/sda"), 1),
            Path::new("/dev/sda1")
        );
        assert_eq!(
            partition_node(Path::new("/dev/loop3"), 2),
            Path::new("/dev/loop3p2")
        );
        assert_eq!(
            partition_node(Path::new("/dev/nvme0n1"), 4),
            Path::new("/dev/nvme0n1p4")
        );
        assert_eq!(
            partition_node(Path::new("/dev/vdb"), 3),
            Path::new("/dev/vdb3")
        );
    }

    #[test]
    fn a_regular_file_is_not_a_block_device() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            kernel_name(f.path()),
            Err(BlockdevError::NotBlock { .. })
        ));
    }
}
