//! Where each partition of a spec disk goes on a device of a given size: 1 MiB alignment,
//! room for the primary and backup GPT, `rest` up to the last aligned sector.

use crate::spec::{Disk, SizeSpec};

use super::PlannedPartition;

const ALIGN_BYTES: u64 = 1 << 20;
/// A GPT partition entry array always holds 128 entries of 128 bytes.
const ENTRY_ARRAY_BYTES: u64 = 128 * 128;

/// The smallest FAT32 in sectors of this size: 65525 clusters, and a cluster is at least one
/// sector (33 MiB with 512-byte sectors, 264 MiB with 4096-byte ones).
pub fn fat32_min_bytes(sector_size: u64) -> u64 {
    (33 << 20) * (sector_size / 512).max(1)
}

/// The usable LBA range of a GPT disk (first, last inclusive).
pub fn usable_lbas(size: u64, sector: u64) -> (u64, u64) {
    let entries = ENTRY_ARRAY_BYTES.div_ceil(sector);
    let total = size / sector;
    (2 + entries, total.saturating_sub(2 + entries))
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
    let align = (ALIGN_BYTES / sector).max(1);
    let (first_usable, last_usable) = usable_lbas(device_size, sector);
    let mut next = first_usable.next_multiple_of(align);
    let mut out = Vec::with_capacity(disk.partitions.len());
    let too_small = |needed_lbas: u64| needed_lbas.saturating_mul(sector);
    for (i, p) in disk.partitions.iter().enumerate() {
        let (first, last) = match p.size {
            SizeSpec::Bytes(bytes) => {
                let lbas = bytes.div_ceil(sector);
                let last = next + lbas - 1;
                if last > last_usable {
                    return Err(too_small(needed_lbas(disk, sector, align)));
                }
                (next, last)
            }
            SizeSpec::Rest => {
                // Align the end too, so the partition is a whole number of MiB.
                let end = (last_usable + 1) / align * align;
                if end < next + align {
                    return Err(too_small(needed_lbas(disk, sector, align)));
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

/// The smallest device (in LBAs) the layout fits on, counting a `rest` partition as 1 MiB.
fn needed_lbas(disk: &Disk, sector: u64, align: u64) -> u64 {
    let (first_usable, _) = usable_lbas(u64::MAX / 2, sector);
    let mut next = first_usable.next_multiple_of(align);
    for p in &disk.partitions {
        let lbas = match p.size {
            SizeSpec::Bytes(b) => b.div_ceil(sector),
            SizeSpec::Rest => align,
        };
        next = (next + lbas).next_multiple_of(align);
    }
    let tail = 1 + ENTRY_ARRAY_BYTES.div_ceil(sector);
    next + tail
}

/// Where each partition of the spec would start on a device of this size, in bytes (none
/// when the layout does not fit): the places to look for filesystems an erased table left.
pub fn starts(disk: &Disk, device_size: u64, sector: u64) -> Vec<u64> {
    layout(disk, device_size, sector, &mut String::new)
        .map(|ps| ps.iter().map(|p| p.first_lba * sector).collect())
        .unwrap_or_default()
}
