//! Which device is which spec disk: explicit `--disk ID=DEVICE` bindings first, then the
//! spec's match rules (serial, WWN, size range) against the disks sysfs lists.

use crate::probe::Device;
use crate::spec::{human, Disk, Spec};

use super::PlanError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub id: String,
    pub device: Device,
    pub how: BoundBy,
}

impl Binding {
    /// The device node of partition `number` of the bound disk (`/dev/nvme1n1p4`,
    /// `/dev/sda4`): the one answer to "which node is partition N of disk X".
    pub fn partition_node(&self, number: u32) -> std::path::PathBuf {
        crate::blockdev::partition_node(&self.device.path, number)
    }
}

/// The binding of the spec's disk `id`, if that disk is bound.
pub fn bound<'a>(bindings: &'a [Binding], id: &str) -> Option<&'a Binding> {
    bindings.iter().find(|b| b.id == id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundBy {
    /// `--disk ID=DEVICE` on the command line.
    Explicit,
    /// Found by the spec's match rules.
    Matched,
    /// Not found by the rules: the person typed the serial of one of the replacements
    /// offered (see [`pick`]).
    Picked,
}

/// Bind spec disks to devices. Disks in `required` must be found; others are bound when
/// exactly one device matches them (so the plan can show them), and left out otherwise.
pub fn bind(
    spec: &Spec,
    explicit: Vec<(String, Device)>,
    candidates: &[Device],
    required: &[String],
) -> Result<Vec<Binding>, PlanError> {
    let mut bound: Vec<Binding> = Vec::new();
    for (id, device) in explicit {
        spec.disk(&id).ok_or_else(|| unknown(spec, &id, "--disk"))?;
        if let Some(other) = bound
            .iter()
            .find(|b| b.device.kernel_name == device.kernel_name)
        {
            return Err(PlanError::BoundTwice {
                device: device.path.clone(),
                first: other.id.clone(),
                second: id,
            });
        }
        if bound.iter().any(|b| b.id == id) {
            return Err(PlanError::BoundTwice {
                device: device.path.clone(),
                first: id.clone(),
                second: id,
            });
        }
        // The match rules find the disk; a device named by hand is taken even when its
        // size is outside them (a replacement disk): the layout decides whether it fits,
        // and the plan says that it is a replacement.
        bound.push(Binding {
            id,
            device,
            how: BoundBy::Explicit,
        });
    }
    for disk in &spec.disks {
        if bound.iter().any(|b| b.id == disk.id) {
            continue;
        }
        let needed = required.contains(&disk.id);
        let rules = describe_rules(disk);
        if rules.is_empty() {
            if needed {
                return Err(PlanError::NoRules {
                    id: disk.id.clone(),
                });
            }
            continue;
        }
        let free: Vec<&Device> = candidates
            .iter()
            .filter(|c| !bound.iter().any(|b| b.device.kernel_name == c.kernel_name))
            .filter(|c| matches(disk, c))
            .collect();
        match free.as_slice() {
            [one] => bound.push(Binding {
                id: disk.id.clone(),
                device: (*one).clone(),
                how: BoundBy::Matched,
            }),
            [] if needed => {
                let devices = replacements(disk, candidates, &bound);
                return Err(PlanError::NoMatch {
                    id: disk.id.clone(),
                    rules,
                    candidates: devices.iter().map(describe_device).collect(),
                    devices,
                });
            }
            [_, _, ..] if needed => {
                return Err(PlanError::ManyMatches {
                    id: disk.id.clone(),
                    rules,
                    devices: free.iter().map(|d| d.path.display().to_string()).collect(),
                })
            }
            _ => {}
        }
    }
    // Present them in spec order.
    bound.sort_by_key(|b| spec.disks.iter().position(|d| d.id == b.id));
    Ok(bound)
}

/// Devices that could replace `disk` when nothing matches it: blank, in use by nothing,
/// not bound to another spec disk, and big enough for its layout (the boot stick is mounted,
/// so it is never among them).
fn replacements(disk: &Disk, candidates: &[Device], bound: &[Binding]) -> Vec<Device> {
    candidates
        .iter()
        .filter(|c| !bound.iter().any(|b| b.device.kernel_name == c.kernel_name))
        .filter(|c| c.busy.is_empty() && c.looks_blank() && c.orphans.is_empty())
        .filter(|c| super::layout::layout(disk, c.size, c.sector_size, &mut String::new).is_ok())
        .cloned()
        .collect()
}

/// `/dev/sdc (4.00 TB, serial NEW-4TB)`: a disk as the person can tell it from the others.
pub fn describe_device(c: &Device) -> String {
    let serial = c
        .serial
        .as_deref()
        .map(|s| format!(", serial {s}"))
        .unwrap_or_default();
    format!("{} ({}{serial})", c.path.display(), human(c.size))
}

/// The replacement for spec disk `id` whose serial the person typed, among those offered
/// (`devices`, from [`PlanError::NoMatch`]). Serials compare as the match rules do: case
/// and surrounding blanks aside. A serial that is not among them is refused (a typo must
/// not pick another disk).
pub fn pick(id: &str, devices: &[Device], typed: &str) -> Result<Device, PlanError> {
    let typed = typed.trim();
    devices
        .iter()
        .find(|d| {
            d.serial
                .as_deref()
                .is_some_and(|s| s.trim().eq_ignore_ascii_case(typed))
        })
        .cloned()
        .ok_or_else(|| PlanError::NotACandidate {
            id: id.to_owned(),
            typed: typed.to_owned(),
            candidates: devices.iter().map(describe_device).collect(),
        })
}

pub fn unknown(spec: &Spec, id: &str, option: &'static str) -> PlanError {
    PlanError::UnknownDisk {
        id: id.to_owned(),
        option,
        file: spec.file.display().to_string(),
        known: spec.disks.iter().map(|d| d.id.clone()).collect(),
    }
}

/// Every rule the spec gives must hold.
pub fn matches(disk: &Disk, device: &Device) -> bool {
    let rules = &disk.match_rules;
    if rules.serial.is_none()
        && rules.wwn.is_none()
        && rules.min_size.is_none()
        && rules.max_size.is_none()
    {
        return false;
    }
    let serial_ok = match (&rules.serial, &device.serial) {
        (None, _) => true,
        (Some(want), Some(have)) => want.trim().eq_ignore_ascii_case(have.trim()),
        (Some(_), None) => false,
    };
    let wwn_ok = match (&rules.wwn, &device.wwn) {
        (None, _) => true,
        (Some(want), Some(have)) => normalize_wwn(want) == normalize_wwn(have),
        (Some(_), None) => false,
    };
    serial_ok && wwn_ok && size_fits(disk, device.size)
}

pub(super) fn size_fits(disk: &Disk, size: u64) -> bool {
    let r = &disk.match_rules;
    r.min_size.is_none_or(|min| size >= min) && r.max_size.is_none_or(|max| size <= max)
}

/// WWNs are written `naa.5002538e…`, `0x5002538e…`, `eui.…` or bare hex depending on the
/// tool; compare the hex digits.
fn normalize_wwn(w: &str) -> String {
    let w = w.trim().to_ascii_lowercase();
    let w = ["naa.", "eui.", "t10.", "0x"]
        .iter()
        .find_map(|p| w.strip_prefix(p))
        .unwrap_or(&w);
    w.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

pub(super) fn size_rule(disk: &Disk) -> Option<String> {
    let r = &disk.match_rules;
    match (r.min_size, r.max_size) {
        (Some(a), Some(b)) => Some(format!("between {} and {}", human(a), human(b))),
        (Some(a), None) => Some(format!("at least {}", human(a))),
        (None, Some(b)) => Some(format!("at most {}", human(b))),
        (None, None) => None,
    }
}

/// "serial X, size between A and B" for messages.
pub fn describe_rules(disk: &Disk) -> String {
    let r = &disk.match_rules;
    let mut parts = Vec::new();
    if let Some(s) = &r.serial {
        parts.push(format!("serial {s}"));
    }
    if let Some(w) = &r.wwn {
        parts.push(format!("wwn {w}"));
    }
    if let Some(s) = size_rule(disk) {
        parts.push(format!("size {s}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testutil::{blank_device, spec};

    #[test]
    fn explicit_bindings_win_and_keep_spec_order() {
        let spec = spec();
        let b = bind(
            &spec,
            vec![
                ("usb".into(), blank_device("loop2", 4_500_000_000_000)),
                ("disk1".into(), blank_device("loop1", 2_000_000_000_000)),
            ],
            &[],
            &["disk1".into(), "usb".into()],
        )
        .unwrap();
        let ids: Vec<_> = b.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["disk1", "usb"]);
        assert!(b.iter().all(|b| b.how == BoundBy::Explicit));
    }

    #[test]
    fn unknown_id_lists_known_ones() {
        let err = bind(
            &spec(),
            vec![("disk9".into(), blank_device("loop1", 2_000_000_000_000))],
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown disk id \"disk9\" in --disk: configs/atlantis.toml has disk0, disk1, usb"
        );
    }

    #[test]
    fn same_device_twice_is_refused() {
        let err = bind(
            &spec(),
            vec![
                ("disk1".into(), blank_device("loop1", 2_000_000_000_000)),
                ("usb".into(), blank_device("loop1", 2_000_000_000_000)),
            ],
            &[],
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, PlanError::BoundTwice { .. }), "{err}");
    }

    #[test]
    fn explicit_device_outside_size_range_is_bound_as_a_replacement() {
        // A 4 TB replacement for the 2 TB disk1, named by hand: the match rules do not
        // forbid it (the plan notes it; the layout decides whether it fits).
        let b = bind(
            &spec(),
            vec![("disk1".into(), blank_device("loop2", 4_000_000_000_000))],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(b[0].id, "disk1");
        assert_eq!(b[0].how, BoundBy::Explicit);
        // Found by the rules, it would not be.
        assert!(!matches(spec().disk("disk1").unwrap(), &b[0].device));
    }

    #[test]
    fn matches_by_serial_and_size() {
        let spec = spec();
        let mut d1 = blank_device("sdb", 2_000_398_934_016);
        d1.serial = Some("ATLANTIS-DISK1".into());
        let mut other = blank_device("sdc", 2_000_398_934_016);
        other.serial = Some("SOMETHING-ELSE".into());
        let b = bind(
            &spec,
            vec![],
            &[other.clone(), d1.clone()],
            &["disk1".into()],
        )
        .unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].device.kernel_name, "sdb");
        assert_eq!(b[0].how, BoundBy::Matched);

        let err = bind(&spec, vec![], &[other], &["disk1".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no disk matches disk1 (serial ATLANTIS-DISK1, size between 1.90 TB and 2.10 TB); a replacement could be /dev/sdc (2.00 TB, serial SOMETHING-ELSE): bind one with --disk disk1=/dev/… (`lifeboat disks` lists the disks and their serials)"
        );
    }

    /// The dead disk's replacement: only blank disks that are free and big enough for the
    /// layout are offered, whatever their serial and size range.
    #[test]
    fn no_match_offers_blank_free_disks_that_fit() {
        let spec = spec();
        let mut bigger = blank_device("sdc", 4_000_000_000_000);
        bigger.serial = Some("NEW-4TB".into());
        let tiny = blank_device("sdd", 8_000_000_000);
        let mut busy = blank_device("sde", 3_000_000_000_000);
        busy.busy = vec!["mounted at /run/lifeboat/boot".into()];
        let mut used = blank_device("sdf", 3_000_000_000_000);
        used.whole_disk_fs = Some(crate::probe::Filesystem {
            fstype: "ext4".into(),
            label: None,
            uuid: None,
        });
        let err = bind(
            &spec,
            vec![],
            &[bigger, tiny, busy, used],
            &["disk1".into()],
        )
        .unwrap_err();
        let PlanError::NoMatch { candidates, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(candidates, &["/dev/sdc (4.00 TB, serial NEW-4TB)"]);
    }

    /// The person types the serial of one of the disks offered: that disk is taken, case
    /// and blanks aside; a serial that is not among them (a typo, the dead disk's, a disk
    /// that is not offered) is refused in one sentence naming what was typed and the
    /// candidates.
    #[test]
    fn a_typed_serial_picks_one_of_the_replacements_offered() {
        let spec = spec();
        let mut bigger = blank_device("vdb", 3_000_000_000_000);
        bigger.serial = Some("NEW-3TB".into());
        let mut smaller = blank_device("vdc", 1_000_000_000_000);
        smaller.serial = Some("NEW-1TB".into());
        let no_serial = blank_device("vdd", 2_000_000_000_000);
        let mut mounted = blank_device("vde", 3_000_000_000_000);
        mounted.serial = Some("THE-STICK".into());
        mounted.busy = vec!["mounted at /run/lifeboat/boot".into()];
        let err = bind(
            &spec,
            vec![],
            &[bigger, smaller, no_serial, mounted],
            &["disk1".into()],
        )
        .unwrap_err();
        let PlanError::NoMatch { id, devices, .. } = &err else {
            panic!("{err}")
        };
        let names: Vec<_> = devices.iter().map(|d| d.kernel_name.as_str()).collect();
        assert_eq!(names, ["vdb", "vdc", "vdd"]);

        assert_eq!(pick(id, devices, "NEW-3TB").unwrap().kernel_name, "vdb");
        assert_eq!(pick(id, devices, " new-1tb\n").unwrap().kernel_name, "vdc");
        for wrong in ["NEW-3T", "ATLANTIS-DISK1", "THE-STICK", ""] {
            let err = pick(id, devices, wrong).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "\"{wrong}\" is not the serial of a disk that could replace disk1 (they are \
                     /dev/vdb (3.00 TB, serial NEW-3TB), /dev/vdc (1.00 TB, serial NEW-1TB), \
                     /dev/vdd (2.00 TB)); nothing was written"
                )
            );
        }
    }

    /// The picked disk bound by hand, as the machine layer does after the pick: the other
    /// disks are still found by their rules.
    #[test]
    fn the_picked_disk_is_bound_and_the_others_still_match() {
        let spec = spec();
        let mut new = blank_device("vdb", 3_000_000_000_000);
        new.serial = Some("NEW-3TB".into());
        let mut usb = blank_device("vdc", 4_500_000_000_000);
        usb.serial = Some("ATLANTIS-USB".into());
        let listed = [new.clone(), usb];
        let required = ["disk1".to_owned(), "usb".to_owned()];
        let err = bind(&spec, vec![], &listed, &required).unwrap_err();
        let PlanError::NoMatch { devices, .. } = &err else {
            panic!("{err}")
        };
        let picked = pick("disk1", devices, "NEW-3TB").unwrap();
        let b = bind(&spec, vec![("disk1".into(), picked)], &listed, &required).unwrap();
        let got: Vec<_> = b
            .iter()
            .map(|b| (b.id.as_str(), b.device.kernel_name.as_str(), b.how))
            .collect();
        assert_eq!(
            got,
            [
                ("disk1", "vdb", BoundBy::Explicit),
                ("usb", "vdc", BoundBy::Matched)
            ]
        );
    }

    #[test]
    fn right_serial_wrong_size_does_not_match() {
        let mut d = blank_device("sdb", 500_000_000_000);
        d.serial = Some("ATLANTIS-DISK1".into());
        assert!(!matches(spec().disk("disk1").unwrap(), &d));
    }

    #[test]
    fn two_matches_are_named() {
        let mut spec = spec();
        spec.disks[1].match_rules.serial = None;
        let a = blank_device("sdb", 2_000_000_000_000);
        let b = blank_device("sdc", 2_000_000_000_000);
        let err = bind(&spec, vec![], &[a, b], &["disk1".into()]).unwrap_err();
        assert!(
            err.to_string().starts_with("2 disks match disk1")
                && err.to_string().contains("/dev/sdb, /dev/sdc"),
            "{err}"
        );
    }

    #[test]
    fn wwn_forms_compare_equal() {
        assert_eq!(
            normalize_wwn("naa.5002538E40A1B2C3"),
            normalize_wwn("0x5002538e40a1b2c3")
        );
    }

    #[test]
    fn optional_disks_are_bound_only_when_unambiguous() {
        let spec = spec();
        let mut d0 = blank_device("nvme0n1", 512_110_190_592);
        d0.serial = Some("ATLANTIS-DISK0".into());
        let b = bind(&spec, vec![], &[d0], &[]).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].id, "disk0");
        assert!(bind(&spec, vec![], &[], &[]).unwrap().is_empty());
    }
}
