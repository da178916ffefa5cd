//! The write lock on a whole disk: every command that writes a disk holds `flock(LOCK_EX)`
//! on the disk's node in /dev for as long as it runs, so two runs can never write the same
//! disk at once (one would plan on what the other is half-way through rewriting).
//!
//! It is the convention of udev and systemd-repart: the lock is on the whole disk, never a
//! partition, and taken on the kernel's own node (`/dev/sdb`), because flock locks belong to
//! an inode and a second node for the same disk would not see them. A flock dies with the
//! process that holds it, so a killed run leaves no stale lock behind. The other run is named
//! from /proc/locks (the holder's pid) and /proc/PID/cmdline, not from a file of our own that
//! could outlive it.
//!
//! Locks are counted per process: a command that calls another one (provision runs esp-sync
//! and boot-entries) takes the same disk again without waiting for itself.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::blockdev;

/// How long a lock held shared (udev holds `LOCK_SH` while it looks at a disk) is waited
/// for. An exclusive holder is another writer and is refused at once.
const SHARED_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} ({}) is {}; wait for it to finish, then run this again", device.display(), describe(holder))]
    Busy {
        what: String,
        device: PathBuf,
        holder: Option<Holder>,
    },
    #[error("{what} ({}): cannot take its write lock: {source}", device.display())]
    Io {
        what: String,
        device: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Blockdev(#[from] blockdev::BlockdevError),
}

/// Another process holding a disk's lock, as /proc tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command line (`lifeboat provision /etc/lifeboat/spec.toml --yes`), when readable.
    pub command: Option<String>,
}

fn describe(holder: &Option<Holder>) -> String {
    let Some(h) = holder else {
        return "locked by another process (/proc/locks does not say which)".into();
    };
    let Some(command) = &h.command else {
        return format!("locked by another process, pid {}", h.pid);
    };
    let program = command.split(' ').next().unwrap_or_default();
    let who = if program == "lifeboat" {
        "being written by another lifeboat run"
    } else {
        "locked by another program"
    };
    format!("{who} (pid {}: {command})", h.pid)
}

/// The flock holders of one inode in /proc/locks (`1: FLOCK  ADVISORY  WRITE 1234
/// 00:05:345 0 EOF`; the device in hex, the inode in decimal): (pid, exclusive). Waiters
/// (`1: -> FLOCK …`) hold nothing and are left out.
pub fn holders(proc_locks: &str, dev: (u64, u64), ino: u64) -> Vec<(u32, bool)> {
    let want = format!("{:02x}:{:02x}:{ino}", dev.0, dev.1);
    proc_locks
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().skip(1);
            let (kind, _, mode, pid, file) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if kind != "FLOCK" || file != want {
                return None;
            }
            Some((pid.parse().ok()?, mode == "WRITE"))
        })
        .collect()
}

/// /proc/PID/cmdline (NUL-separated) as one line, the program by its file name.
pub fn command_line(raw: &[u8]) -> Option<String> {
    let mut args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let program = args.next()?;
    let program = Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(program);
    Some(
        std::iter::once(program)
            .chain(args)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

struct Held {
    /// The whole disk's device number.
    rdev: u64,
    count: usize,
    _lock: Flock<File>,
}

static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<Held>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Write locks on whole disks, released when dropped (and by the kernel if the process
/// dies).
#[derive(Debug, Default)]
#[must_use = "the disks are unlocked when this is dropped"]
pub struct DiskLocks {
    rdevs: Vec<u64>,
}

impl DiskLocks {
    /// Lock the whole disk at `device` (a disk node), for `what` in messages (`disk1`).
    /// On an error the disks this value locked so far stay locked until it is dropped.
    pub fn take(&mut self, what: &str, device: &Path) -> Result<(), LockError> {
        let (major, minor) = blockdev::dev_numbers(device)?;
        let rdev = nix::sys::stat::makedev(major, minor);
        if self.rdevs.contains(&rdev) {
            return Ok(());
        }
        let mut all = held();
        if let Some(h) = all.iter_mut().find(|h| h.rdev == rdev) {
            h.count += 1;
            self.rdevs.push(rdev);
            return Ok(());
        }
        let node = kernel_node(device, rdev);
        let lock = acquire(what, &node)?;
        all.push(Held {
            rdev,
            count: 1,
            _lock: lock,
        });
        self.rdevs.push(rdev);
        crate::runlog::line(&format!("locked {what} ({})", node.display()));
        Ok(())
    }

    /// Lock the disk that holds the filesystem `path` is on (esp-sync's destination). A
    /// filesystem on no block device has no disk to lock.
    pub fn take_disk_of(&mut self, what: &str, path: &Path) -> Result<(), LockError> {
        let dev = std::fs::metadata(path)
            .map_err(|source| LockError::Io {
                what: what.to_owned(),
                device: path.to_owned(),
                source,
            })?
            .dev();
        let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        match blockdev::whole_disk_of(major, minor) {
            Some(name) => self.take(what, &Path::new("/dev").join(name)),
            None => {
                crate::runlog::line(&format!(
                    "{what}: {} is on no block device ({major}:{minor}); no disk to lock",
                    path.display()
                ));
                Ok(())
            }
        }
    }
}

impl Drop for DiskLocks {
    fn drop(&mut self) {
        let mut all = held();
        for rdev in self.rdevs.drain(..) {
            if let Some(i) = all.iter().position(|h| h.rdev == rdev) {
                all[i].count -= 1;
                if all[i].count == 0 {
                    all.remove(i);
                }
            }
        }
    }
}

/// Run `f` (a change to the kernel's view of the disk, such as telling it about a
/// partition) unless another process holds the disk's write lock: under a shared lock, as
/// udev does while it probes, so that a writer waits for it. `None` when the disk is being
/// written by someone else.
pub fn unless_written<T>(device: &Path, f: impl FnOnce() -> T) -> Option<T> {
    let (major, minor) = blockdev::dev_numbers(device).ok()?;
    let rdev = nix::sys::stat::makedev(major, minor);
    if held().iter().any(|h| h.rdev == rdev) {
        return Some(f());
    }
    let file = File::open(kernel_node(device, rdev)).ok()?;
    let _shared = Flock::lock(file, FlockArg::LockSharedNonblock).ok()?;
    Some(f())
}

/// The lock on the disk that holds the filesystem `path` is on; see [`DiskLocks::take_disk_of`].
pub fn disk_of(what: &str, path: &Path) -> Result<DiskLocks, LockError> {
    let mut locks = DiskLocks::default();
    locks.take_disk_of(what, path)?;
    Ok(locks)
}

/// The kernel's own node for the disk (`/dev/loop3`), which is the inode everybody locks;
/// the path given when there is no such node.
fn kernel_node(device: &Path, rdev: u64) -> PathBuf {
    use std::os::unix::fs::FileTypeExt;
    blockdev::kernel_name(device)
        .ok()
        .map(|name| Path::new("/dev").join(name))
        .filter(|node| {
            std::fs::metadata(node)
                .is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == rdev)
        })
        .unwrap_or_else(|| device.to_owned())
}

/// `LOCK_EX|LOCK_NB` on `node`, opened read-only (enough for flock, and no `O_EXCL`, which
/// would conflict with mounted partitions).
fn acquire(what: &str, node: &Path) -> Result<Flock<File>, LockError> {
    let io = |source| LockError::Io {
        what: what.to_owned(),
        device: node.to_owned(),
        source,
    };
    let deadline = Instant::now() + SHARED_WAIT;
    let mut file = File::open(node).map_err(io)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            Err((_, errno)) => return Err(io(errno.into())),
        }
        let meta = std::fs::metadata(node).map_err(io)?;
        let dev = (
            nix::sys::stat::major(meta.dev()),
            nix::sys::stat::minor(meta.dev()),
        );
        let found = holders(
            &std::fs::read_to_string("/proc/locks").unwrap_or_default(),
            dev,
            meta.ino(),
        );
        let writer = found.iter().find(|(_, exclusive)| *exclusive);
        if writer.is_some() || Instant::now() > deadline {
            let pid = writer.or(found.first()).map(|(pid, _)| *pid);
            return Err(LockError::Busy {
                what: what.to_owned(),
                device: node.to_owned(),
                holder: pid.map(|pid| Holder {
                    pid,
                    command: std::fs::read(format!("/proc/{pid}/cmdline"))
                        .ok()
                        .and_then(|raw| command_line(&raw)),
                }),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "\
1: FLOCK  ADVISORY  WRITE 14236 00:05:612 0 EOF
2: POSIX  ADVISORY  WRITE 900 00:05:612 0 EOF
3: FLOCK  ADVISORY  READ 12902 fe:00:10133507 0 EOF
3: -> FLOCK  ADVISORY  WRITE 777 00:05:612 0 EOF
4: FLOCK  ADVISORY  READ 55 00:05:613 0 EOF
5: FLOCK  ADVISORY  READ 56 103:01:612 0 EOF
";

    #[test]
    fn holders_of_one_inode_from_proc_locks() {
        // POSIX locks do not conflict with flock; a waiter holds nothing.
        assert_eq!(holders(LOCKS, (0, 5), 612), [(14236, true)]);
        assert_eq!(holders(LOCKS, (0, 5), 613), [(55, false)]);
        // The device numbers are hex.
        assert_eq!(holders(LOCKS, (0xfe, 0), 10133507), [(12902, false)]);
        assert_eq!(holders(LOCKS, (0x103, 1), 612), [(56, false)]);
        assert!(holders(LOCKS, (0, 6), 612).is_empty());
        assert!(holders("", (0, 5), 612).is_empty());
    }

    #[test]
    fn command_lines_read_as_typed() {
        assert_eq!(
            command_line(b"/usr/local/bin/lifeboat\0provision\0atlantis.toml\0--yes\0").as_deref(),
            Some("lifeboat provision atlantis.toml --yes")
        );
        assert_eq!(command_line(b""), None);
    }

    #[test]
    fn the_refusal_names_the_other_run() {
        let busy = |holder| {
            LockError::Busy {
                what: "disk1".into(),
                device: "/dev/loop3".into(),
                holder,
            }
            .to_string()
        };
        assert_eq!(
            busy(Some(Holder {
                pid: 1234,
                command: Some("lifeboat provision atlantis.toml --yes".into())
            })),
            "disk1 (/dev/loop3) is being written by another lifeboat run (pid 1234: lifeboat \
             provision atlantis.toml --yes); wait for it to finish, then run this again"
        );
        assert_eq!(
            busy(Some(Holder {
                pid: 99,
                command: Some("systemd-repart --dry-run=no".into())
            })),
            "disk1 (/dev/loop3) is locked by another program (pid 99: systemd-repart \
             --dry-run=no); wait for it to finish, then run this again"
        );
        assert!(busy(None).contains("locked by another process"));
    }
}
