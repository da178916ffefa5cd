//! Where each partition of a spec disk goes on a device of a given size: 1 MiB alignment,
//! room for the primary and backup GPT, `rest` up to the last aligned sector.

pub use crate::spec::fit::usable_lbas;
use crate::spec::fit::{align_lbas, needed_lbas};
use crate::spec::{Disk, SizeSpec};

use super::PlannedPartition;

/// The smallest FAT32 in sectors of this size: 65525 clusters, and a cluster is at least one
/// sector (33 MiB with 512-byte sectors, 264 MiB with 4096-byte ones).
pub fn fat32_min_bytes(sector_size: u64) -> u64 {
    (33 << 20) * (sector_size / 512).max(1)
}

/// Lay out the spec's partitions on a device. Partition GUIDs come from `new_guid` so the
/// caller decides whether they are random (real runs) or fixed (tests).
/// When the layout does not fit, the error is the smallest device size (bytes) it fits on.
pub fn layout(
    disk: &Disk,
    device_size: u64,
    sector: u64,
    new_guid: &mut dyn FnMut() -> String,
) -> Result<Vec<PlannedPartition>, u64> {
    let align = align_lbas(sector);
    let (first_usable, last_usable) = usable_lbas(device_size, sector);
    let mut next = first_usable.next_multiple_of(align);
    let mut out = Vec::with_capacity(disk.partitions.len());
    let too_small = || {
        let sizes = disk.partitions.iter().map(|p| p.size);
        needed_lbas(sizes, sector).map_or(u64::MAX, |lbas| lbas.saturating_mul(sector))
    };
    for (i, p) in disk.partitions.iter().enumerate() {
        let (first, last) = match p.size {
            SizeSpec::Bytes(bytes) => {
                let lbas = bytes.div_ceil(sector);
                let last = next + lbas - 1;
                if last > last_usable {
                    return Err(too_small());
                }
                (next, last)
            }
            SizeSpec::Rest => {
                // Align the end too, so the partition is a whole number of MiB.
                let end = (last_usable + 1) / align * align;
                if end < next + align {
                    return Err(too_small());
                }
                (next, end - 1)
            }
        };
        out.push(PlannedPartition {
            number: i as u32 + 1,
            name: p.name.clone(),
            first_lba: first,
            last_lba: last,
            part_type: p.part_type,
            type_guid: p.part_type.guid().to_owned(),
            part_guid: new_guid(),
        });
        next = (last + 1).next_multiple_of(align);
    }
    Ok(out)
}

/// Where each partition of the spec would start on a device of this size, in bytes (none
/// when the layout does not fit): the places to look for filesystems an erased table left.
pub fn starts(disk: &Disk, device_size: u64, sector: u64) -> Vec<u64> {
    layout(disk, device_size, sector, &mut String::new)
        .map(|ps| ps.iter().map(|p| p.first_lba * sector).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::Spec;

    const MIB: u64 = 1 << 20;

    /// A one-disk spec with partitions of these byte sizes (and a last `rest` one), whose
    /// disk may be as small as `min_mib`.
    fn spec(sizes: &[u64], rest: bool, min_mib: u64) -> Result<Spec, String> {
        let mut t = format!(
            "[machine]\nname = \"T\"\nhost = \"t\"\n[[disk]]\nid = \"disk1\"\n\
             [disk.match]\nmin_size = \"{min_mib}MiB\"\n"
        );
        for (i, b) in sizes.iter().enumerate() {
            t.push_str(&format!(
                "[[disk.partition]]\nname = \"p{i}\"\nsize = {b}\n"
            ));
        }
        if rest {
            t.push_str("[[disk.partition]]\nname = \"last\"\nsize = \"rest\"\n");
        }
        Spec::parse(Path::new("t.toml"), &t).map_err(|e| e.to_string())
    }

    fn fits(disk: &Disk, bytes: u64, sector: u64) -> bool {
        layout(disk, bytes, sector, &mut String::new).is_ok()
    }

    /// The spec's check of min_size and the layout agree, for 4 KiB sectors too: 97MB, 4MB,
    /// 1MB and `rest` need 101 MiB (the spec check's own example).
    #[test]
    fn spec_check_and_layout_agree_with_4k_sectors() {
        let sizes = [97_000_000, 4_000_000, 1_000_000];
        let spec = spec(&sizes, true, 101).unwrap();
        let disk = &spec.disks[0];
        assert!(fits(disk, 101 * MIB, 4096));
        assert!(fits(disk, 101 * MIB, 512));
        assert!(spec_is_refused(&sizes, true, 100));
        assert!(!fits(disk, 100 * MIB, 4096));
    }

    fn spec_is_refused(sizes: &[u64], rest: bool, min_mib: u64) -> bool {
        spec(sizes, rest, min_mib).is_err_and(|e| e.contains("match.min_size"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any partition sizes: a min_size of whole MiB that the spec accepts fits the layout
        /// with 512-byte and with 4096-byte sectors, and one that it refuses does not fit
        /// when the last partition ends on a MiB (the check counts every partition's end
        /// aligned, so it refuses up to 1 MiB more than a last partition of odd size needs).
        #[test]
        fn spec_check_and_layout_agree(
            sizes in proptest::collection::vec(1u64..300 * MIB, 1..5),
            rest in proptest::bool::ANY,
            min_mib in 2u64..1600,
        ) {
            let layout_fits = |disk: &Disk| fits(disk, min_mib * MIB, 512) && fits(disk, min_mib * MIB, 4096);
            let aligned_end = rest || sizes.last().is_some_and(|b| b % MIB == 0);
            match spec(&sizes, rest, min_mib) {
                Ok(spec) => proptest::prop_assert!(layout_fits(&spec.disks[0])),
                Err(e) => {
                    proptest::prop_assert!(e.contains("match.min_size"), "{}", e);
                    // The same disk without the size rule, laid out on a disk of min_size.
                    let spec = spec(&sizes, rest, 1_000_000).unwrap();
                    proptest::prop_assert!(!aligned_end || !layout_fits(&spec.disks[0]));
                }
            }
        }
    }
}
