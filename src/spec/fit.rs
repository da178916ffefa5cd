//! Whether a disk's partitions fit on a device: the one piece of GPT arithmetic that both the
//! spec's check of `match.min_size` (spec/validate.rs) and the layout of a real device
//! (plan/layout.rs) use, so the two cannot disagree about a disk's sector size.

use super::SizeSpec;

/// Partitions start and (for `rest`) end on 1 MiB boundaries.
pub const ALIGN_BYTES: u64 = 1 << 20;
/// A GPT partition entry array always holds 128 entries of 128 bytes.
pub const ENTRY_ARRAY_BYTES: u64 = 128 * 128;
/// The sector sizes a disk of the spec may have (`queue/logical_block_size`).
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];

/// The usable LBA range of a GPT disk (first, last inclusive).
pub fn usable_lbas(size: u64, sector: u64) -> (u64, u64) {
    let entries = ENTRY_ARRAY_BYTES.div_ceil(sector);
    let total = size / sector;
    (2 + entries, total.saturating_sub(2 + entries))
}

/// The 1 MiB alignment in LBAs of `sector` bytes.
pub fn align_lbas(sector: u64) -> u64 {
    (ALIGN_BYTES / sector).max(1)
}

/// The smallest device (in LBAs of `sector` bytes) that partitions of these sizes fit on,
/// counting a `rest` partition as 1 MiB: the primary table, each partition aligned, the
/// backup table. The last partition's end is counted aligned too, which a layout of a last
/// partition of odd size does not need: up to 1 MiB too much, never too little. `None` when
/// it does not fit in 64 bits.
pub fn needed_lbas(sizes: impl IntoIterator<Item = SizeSpec>, sector: u64) -> Option<u64> {
    let align = align_lbas(sector);
    let (first_usable, _) = usable_lbas(u64::MAX / 2, sector);
    let mut next = first_usable.checked_next_multiple_of(align)?;
    for size in sizes {
        let lbas = match size {
            SizeSpec::Bytes(b) => b.div_ceil(sector),
            SizeSpec::Rest => align,
        };
        next = next.checked_add(lbas)?.checked_next_multiple_of(align)?;
    }
    let tail = 1 + ENTRY_ARRAY_BYTES.div_ceil(sector);
    next.checked_add(tail)
}

/// The smallest device size, in whole MiB, that partitions of these sizes fit on whatever
/// the disk's sector size: what a spec's `match.min_size` must allow. Saturates.
pub fn min_device_bytes(sizes: impl IntoIterator<Item = SizeSpec> + Clone) -> u64 {
    SECTOR_SIZES
        .iter()
        .map(|&sector| {
            needed_lbas(sizes.clone(), sector)
                .and_then(|lbas| lbas.checked_mul(sector))
                .and_then(|bytes| bytes.checked_next_multiple_of(ALIGN_BYTES))
                .unwrap_or(u64::MAX)
        })
        .max()
        .unwrap_or(u64::MAX)
}
