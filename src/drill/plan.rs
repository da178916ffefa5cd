//! What a drill makes before it restores, and what it changes on its own copy before it
//! boots it (pure).

use crate::spec::{Disk, MatchRules};

/// The drill's disk images are 512-byte-sector disks: what QEMU's virtio disk shows.
pub const SECTOR: u64 = 512;

/// Room a "rest" partition gets when the spec gives no size for its disk.
const REST_ROOM: u64 = 8 << 30;

/// The size of the image that stands in for `disk`: the real size the match rules describe
/// (the middle of min_size..max_size, whole MiB), else the smallest the layout fits on with
/// some room for its "rest" partitions. Never smaller than the layout.
pub fn image_size(disk: &Disk) -> u64 {
    let fits = match crate::plan::layout::layout(disk, 0, SECTOR, &mut String::new) {
        Ok(_) => 0,
        Err(min) => min,
    };
    let rests = disk
        .partitions
        .iter()
        .filter(|p| p.size == crate::spec::SizeSpec::Rest)
        .count() as u64;
    let wanted = by_rules(&disk.match_rules).unwrap_or(fits + rests * REST_ROOM);
    let mib = 1u64 << 20;
    wanted.max(fits).max(1).div_ceil(mib) * mib
}

fn by_rules(rules: &MatchRules) -> Option<u64> {
    match (rules.min_size, rules.max_size) {
        (Some(min), Some(max)) => Some(min / 2 + max / 2),
        (Some(min), None) => Some(min),
        (None, Some(max)) => Some(max),
        (None, None) => None,
    }
}

/// A loader entry as the drill boots it: `console=ttyS0,115200` added to its options (the
/// drill reads the serial console), unless it names a serial console already. `None`: the
/// entry is fine as it is.
pub fn with_serial_console(entry: &str) -> Option<String> {
    if entry
        .split_whitespace()
        .any(|w| w.starts_with("console=ttyS"))
    {
        return None;
    }
    let mut out = String::with_capacity(entry.len() + 24);
    let mut added = false;
    for line in entry.lines() {
        let trimmed = line.trim_start();
        if !added && (trimmed.starts_with("options ") || trimmed == "options") {
            out.push_str(line.trim_end());
            out.push_str(" console=ttyS0,115200");
            added = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !added {
        out.push_str("options console=ttyS0,115200\n");
    }
    Some(out)
}

pub use crate::restore::record::rename_uuids;

/// The firmware's fallback loader path. The drill's firmware has no boot entries of the
/// machine (its variables are a fresh copy), so it starts what is there.
pub const FALLBACK_LOADER: &str = "EFI/BOOT/BOOTX64.EFI";

/// Loaders the machine's boot entries start, in the order the drill tries them when the
/// ESP has no fallback loader.
pub const KNOWN_LOADERS: &[&str] = &["EFI/systemd/systemd-bootx64.efi"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn atlantis() -> Spec {
        Spec::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/atlantis.toml"
        )))
        .unwrap()
    }

    #[test]
    fn atlantis_disk1_is_two_terabytes() {
        let spec = atlantis();
        let size = image_size(spec.disk("disk1").unwrap());
        assert_eq!(size, 2_000_000_000_000u64.div_ceil(1 << 20) * (1 << 20));
        assert_eq!(size % (1 << 20), 0);
    }

    #[test]
    fn a_disk_without_size_rules_gets_its_layout_and_room() {
        let mut spec = atlantis();
        let disk = spec.disks.iter_mut().find(|d| d.id == "disk1").unwrap();
        disk.match_rules.min_size = None;
        disk.match_rules.max_size = None;
        let size = image_size(disk);
        // 512 MiB + 1 GiB + 64 GiB fixed, 8 GiB for the pool, and the GPT's room.
        let fixed: u64 = (512 << 20) + (1 << 30) + (64 << 30);
        assert!(size >= fixed + (8 << 30), "{size}");
        assert!(size < fixed + (8 << 30) + (16 << 20), "{size}");
        assert!(crate::plan::layout::layout(disk, size, SECTOR, &mut String::new).is_ok());
    }

    #[test]
    fn a_too_small_rule_still_fits_the_layout() {
        let mut spec = atlantis();
        let disk = spec.disks.iter_mut().find(|d| d.id == "disk1").unwrap();
        disk.match_rules.min_size = Some(1 << 30);
        disk.match_rules.max_size = None;
        let size = image_size(disk);
        assert!(crate::plan::layout::layout(disk, size, SECTOR, &mut String::new).is_ok());
    }

    #[test]
    fn the_serial_console_is_added_once() {
        let entry = "title TW\nlinux /vmlinuz\noptions root=UUID=x quiet\n";
        assert_eq!(
            with_serial_console(entry).unwrap(),
            "title TW\nlinux /vmlinuz\noptions root=UUID=x quiet console=ttyS0,115200\n"
        );
        assert_eq!(
            with_serial_console("options root=UUID=x console=ttyS0,115200\n"),
            None
        );
        assert_eq!(
            with_serial_console("title T\nlinux /k\n").unwrap(),
            "title T\nlinux /k\noptions console=ttyS0,115200\n"
        );
    }
}
