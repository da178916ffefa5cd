//! A filesystem mounted for the duration of some work, on a private temporary directory.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("cannot make a mount point: {0}")]
    Dir(std::io::Error),
    #[error("cannot mount {} ({fstype}) at {}: {errno}", device.display(), at.display())]
    Mount {
        device: PathBuf,
        fstype: String,
        at: PathBuf,
        errno: nix::Error,
    },
    #[error("{0}")]
    Program(String),
    #[error("cannot unmount {}: {errno}; it stays mounted there", at.display())]
    Unmount { at: PathBuf, errno: nix::Error },
}

/// Mount points are `$TMPDIR/lifeboat-mnt-<pid>-XXXXXX`: the pid tells a later run whether
/// the process that made it is gone (see [`release_stale`]).
const PREFIX: &str = "lifeboat-mnt-";

/// Unmount the mounts that a lifeboat process which no longer runs left behind (killed
/// mid-way: its drop handlers never ran), so that a re-run finds the disks free. Mounts of
/// a lifeboat still running are left alone. Returns the mount points released.
pub fn release_stale() -> Vec<PathBuf> {
    let Ok(mountinfo) = crate::mountinfo::read() else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = ours(&mountinfo)
        .into_iter()
        .filter(|(_, pid)| {
            *pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        })
        .map(|(at, _)| at)
        .collect();
    stale.sort();
    stale.dedup();
    // Deepest first, so nested mounts come off before their parents.
    stale.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    stale
        .into_iter()
        .filter(|at| {
            crate::runlog::line(&format!("umount {} (left by a killed run)", at.display()));
            let ok = umount2(at.as_path(), MntFlags::empty()).is_ok();
            if ok {
                let _ = std::fs::remove_dir(at);
            }
            ok
        })
        .collect()
}

/// The mount points in mountinfo that a lifeboat process made, with its pid.
fn ours(mountinfo: &str) -> Vec<(PathBuf, u32)> {
    crate::mountinfo::parse(mountinfo)
        .into_iter()
        .map(|m| m.mount_point)
        .filter_map(|at| {
            let name = at.file_name().unwrap_or_default().to_string_lossy();
            let pid = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())?;
            Some((at, pid))
        })
        .collect()
}

/// Unmounted on drop; [`Mount::close`] reports an unmount failure instead of hiding it.
#[derive(Debug)]
pub struct Mount {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Mount {
    pub fn new(device: &Path, fstype: &str) -> Result<Mount, MountError> {
        Mount::with_options(device, fstype, None)
    }

    /// With filesystem options (`subvolid=5`).
    pub fn with_options(
        device: &Path,
        fstype: &str,
        options: Option<&str>,
    ) -> Result<Mount, MountError> {
        Mount::attach(device, fstype, options, MsFlags::MS_NOATIME)
    }

    /// Through a mount program (`ntfs-3g`, a FUSE filesystem the kernel cannot mount by
    /// itself); unmounted like any other.
    pub fn with_program(device: &Path, program: &str) -> Result<Mount, MountError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(MountError::Dir)?;
        let path = dir.path().to_owned();
        crate::exec::Cmd::new(program)
            .arg(device)
            .arg(&path)
            .run()
            .map_err(|e| MountError::Program(e.to_string()))?;
        Ok(Mount {
            dir: Some(dir),
            path,
        })
    }

    /// Read-only: nothing on the device can change through this mount.
    pub fn read_only(
        device: &Path,
        fstype: &str,
        options: Option<&str>,
    ) -> Result<Mount, MountError> {
        Mount::attach(
            device,
            fstype,
            options,
            MsFlags::MS_NOATIME | MsFlags::MS_RDONLY,
        )
    }

    fn attach(
        device: &Path,
        fstype: &str,
        options: Option<&str>,
        flags: MsFlags,
    ) -> Result<Mount, MountError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(MountError::Dir)?;
        let path = dir.path().to_owned();
        let ro = if flags.contains(MsFlags::MS_RDONLY) {
            " -r"
        } else {
            ""
        };
        crate::runlog::line(&format!(
            "mount{ro} -t {fstype}{} {} {}",
            options.map(|o| format!(" -o {o}")).unwrap_or_default(),
            device.display(),
            path.display()
        ));
        mount(Some(device), &path, Some(fstype), flags, options).map_err(|errno| {
            MountError::Mount {
                device: device.to_owned(),
                fstype: fstype.to_owned(),
                at: path.clone(),
                errno,
            }
        })?;
        Ok(Mount {
            dir: Some(dir),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmount now and remove the mount point.
    pub fn close(mut self) -> Result<(), MountError> {
        self.unmount()
    }

    fn unmount(&mut self) -> Result<(), MountError> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        crate::runlog::line(&format!("umount {}", self.path.display()));
        match umount2(&self.path, MntFlags::empty()) {
            Ok(()) => {
                let _ = dir.close();
                Ok(())
            }
            Err(errno) => {
                // Never delete a directory that still has a filesystem mounted on it.
                let _ = dir.keep();
                Err(MountError::Unmount {
                    at: self.path.clone(),
                    errno,
                })
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("lifeboat: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_of_lifeboat_runs() {
        let info = "36 35 7:4 / /tmp/lifeboat-mnt-4242-Xy12 rw - btrfs /dev/loop0p4 rw\n\
                    37 35 7:4 / /mnt/lifeboat-mnt-x rw - btrfs /dev/loop0p4 rw\n\
                    38 35 8:1 / /boot rw - ext4 /dev/sda1 rw\n";
        assert_eq!(
            ours(info),
            [(PathBuf::from("/tmp/lifeboat-mnt-4242-Xy12"), 4242)]
        );
    }

    /// A TMPDIR with a space: the kernel writes `\040`, and the mount point to release is
    /// the real path.
    #[test]
    fn mount_points_under_an_escaped_directory() {
        let info =
            "36 35 7:4 / /tmp/my\\040dir/lifeboat-mnt-4242-Xy12 rw - btrfs /dev/loop0p4 rw\n";
        assert_eq!(
            ours(info),
            [(PathBuf::from("/tmp/my dir/lifeboat-mnt-4242-Xy12"), 4242)]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_mountinfo_text(text in "\\PC{0,200}", pid in 1u32..4_000_000, tail in "[^ /\\n]{0,12}") {
            let _ = ours(&text);
            let line = format!("1 2 7:4 / /tmp/{PREFIX}{pid}-{tail} rw - btrfs /dev/x rw\n{text}");
            let found = ours(&line);
            proptest::prop_assert_eq!(found.first().map(|(_, p)| *p), Some(pid));
        }
    }
}
