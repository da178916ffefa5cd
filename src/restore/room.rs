//! Whether the data of a restore fits into the pool, counted the way Btrfs counts: a
//! partition of N bytes does not hold N bytes of files. A single-device Btrfs keeps its
//! metadata twice (DUP, the default since btrfs-progs 5.15) and its system chunks twice,
//! and the metadata grows with the data (extent items, checksums). Comparing the estimate
//! with the partition's size let a nearly full restore provision the disk and then stop
//! with ENOSPC halfway through the receive.
//!
//! Measured on this project's machines (btrfs-progs 6.2, `mkfs.btrfs` defaults, then
//! `btrfs filesystem usage -b`): a fresh filesystem's first metadata chunk is 32 MiB on
//! 300 MiB, 51 MiB on 1 GiB and 256 MiB (the most) from 4 GiB up; its system chunk 8 MiB;
//! both are kept twice. That leaves 219 MiB of file data on 300 MiB, 906 MiB on 1 GiB and
//! all but 528 MiB from 4 GiB up. [`usable`] takes the first chunk as a sixteenth of the
//! device within those bounds: never more room than Btrfs gives, at most 5 % less.

const MIB: u64 = 1 << 20;

/// The share of the data that its metadata takes, as a divisor: 1/50 (2 %) is what
/// ordinary trees need with room to spare (checksums alone are 4 bytes in 4 KiB).
const METADATA_DIVISOR: u64 = 50;

/// What Btrfs holds back beyond the chunks: the global reserve and the slack of the last
/// data chunk, so that "fits" means a receive finishes rather than ends at 99 %.
const MARGIN: u64 = 16 * MIB;

/// The two sides of the room check, for the plan and for a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// The estimate of the data plus the metadata it will need beyond the first chunk.
    pub needed: u64,
    /// What the pool can hold of file data.
    pub usable: u64,
}

impl Room {
    pub fn fits(&self) -> bool {
        self.needed <= self.usable
    }
}

/// The first metadata chunk of a fresh filesystem on `device` bytes.
fn first_metadata_chunk(device: u64) -> u64 {
    (device / 16).clamp(32 * MIB, 256 * MIB)
}

/// File data a freshly made single-device Btrfs of `device` bytes holds (metadata DUP).
pub fn usable(device: u64) -> u64 {
    let fixed = 2 * first_metadata_chunk(device) + 2 * 8 * MIB + MARGIN;
    device.saturating_sub(fixed)
}

/// `data` bytes into a pool about to be made on `device` bytes: the metadata beyond the
/// first chunk comes out of the same space, twice.
pub fn fresh(data: u64, device: u64) -> Room {
    let metadata = data / METADATA_DIVISOR;
    let beyond_first = metadata.saturating_sub(first_metadata_chunk(device));
    Room {
        needed: data.saturating_add(2 * beyond_first),
        usable: usable(device),
    }
}

/// `data` bytes into a pool that exists, with `available` bytes free as the filesystem
/// itself reports them (statvfs: Btrfs already takes its metadata ratio into account).
/// What the restore replaces stays (renamed aside, never deleted), so only the free space
/// counts; its new metadata is kept twice.
pub fn existing(data: u64, available: u64) -> Room {
    Room {
        needed: data.saturating_add(2 * (data / METADATA_DIVISOR)),
        usable: available.saturating_sub(MARGIN),
    }
}

/// What `statvfs` says is free for files on a mounted filesystem.
pub fn available_at(path: &std::path::Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// Whether an error is the filesystem running out of space (ENOSPC anywhere in the chain,
/// or in a program's stderr that the error carries).
pub fn is_out_of_space(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(libc::ENOSPC))
            || cause.to_string().contains("No space left on device")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The free space mkfs.btrfs 6.2 leaves, as `btrfs filesystem usage -b` reported it on
    /// fresh filesystems of these sizes (see the module comment).
    #[test]
    fn usable_room_matches_what_btrfs_reports_within_the_margin() {
        for (device, measured_free) in [
            (300 * MIB, 229_638_144u64),
            (1024 * MIB, 949_616_640),
            (4096 * MIB, 3_741_319_168),
            (20 * 1024 * MIB, 20_921_188_352),
        ] {
            let ours = usable(device);
            assert!(ours <= measured_free, "{device}: {ours} > {measured_free}");
            assert!(
                measured_free - ours <= (MARGIN + MIB).max(device / 20),
                "{device}: {ours} is more than the margin below {measured_free}"
            );
        }
    }

    #[test]
    fn a_nearly_full_pool_is_refused_and_a_half_full_one_fits() {
        // What the partition size alone let through: 230 MiB into 300 MiB.
        assert!(!fresh(230 * MIB, 300 * MIB).fits());
        assert!(fresh(150 * MIB, 300 * MIB).fits());
        // On a big pool the metadata of a big restore counts twice.
        let tb = 1_000_000 * MIB;
        let room = fresh(tb - 10_000 * MIB, tb);
        assert!(!room.fits(), "{room:?}");
        assert!(fresh(tb / 2, tb).fits());
    }

    #[test]
    fn an_existing_pool_counts_its_free_space() {
        assert!(existing(100 * MIB, 200 * MIB).fits());
        assert!(!existing(100 * MIB, 110 * MIB).fits());
        assert!(!existing(1, 0).fits());
    }

    #[test]
    fn enospc_is_recognised_in_the_chain_and_in_stderr() {
        let io = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("receiving @home");
        assert!(is_out_of_space(&io));
        let tool = anyhow::anyhow!(
            "btrfs receive failed: ERROR: writing to big.bin failed: No space left on device"
        );
        assert!(is_out_of_space(&tool.context("receiving")));
        assert!(!is_out_of_space(&anyhow::anyhow!("permission denied")));
    }
}
