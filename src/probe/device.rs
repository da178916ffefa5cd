//! Probing one device, or every disk of the machine.

use std::path::{Path, PathBuf};

use crate::apply::gpt_table;
use crate::blockdev::{self, sysfs_dir};
use crate::exec::Cmd;

use super::parse::{self, blkid_export};
use super::{Device, KernelPartition, Part, ProbeError, Table};

/// Everything the planner needs to know about one whole disk.
pub fn device(path: &Path) -> Result<Device, ProbeError> {
    let name = blockdev::kernel_name(path).map_err(|e| ProbeError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let sys = sysfs_dir(&name);
    if sys.join("partition").exists() {
        return Err(ProbeError::Invalid {
            path: path.to_owned(),
            message: "is a partition, not a whole disk; name the disk it is on".into(),
        });
    }
    let size = read_u64(&sys.join("size"))? * 512;
    let sector_size = read_u64(&sys.join("queue/logical_block_size")).unwrap_or(512);
    let attr = |rel: &str| -> Option<String> {
        std::fs::read_to_string(sys.join(rel))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let serial = attr("serial")
        .or_else(|| attr("device/serial"))
        .or_else(|| {
            std::fs::read(sys.join("device/vpd_pg80"))
                .ok()
                .and_then(|b| parse::vpd_pg80(&b))
        });
    let wwn = attr("wwid").or_else(|| attr("device/wwid"));
    let model = attr("device/model");

    // Blocks read through the disk before a partition was written since may be cached.
    blockdev::drop_cache(path).map_err(|e| ProbeError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut whole_disk_fs = None;
    let table = match gpt_table::read(path, sector_size).map_err(|e| ProbeError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })? {
        Some(gpt) => Table::Gpt(gpt),
        None => {
            let kv = blkid(path, None)?;
            match parse::pttype(&kv) {
                Some(t) if t == "gpt" => Table::Other {
                    name: "damaged GPT".into(),
                },
                Some(t) => Table::Other { name: t },
                None => {
                    whole_disk_fs = parse::filesystem(&kv);
                    Table::None
                }
            }
        }
    };
    let mut table = table;
    if let Table::Gpt(gpt) = &mut table {
        for p in &mut gpt.partitions {
            let start = p.first_lba * sector_size;
            let len = (p.last_lba - p.first_lba + 1) * sector_size;
            p.fs = parse::filesystem(&blkid(path, Some((start, len)))?);
            if p.fs.as_ref().is_some_and(|f| f.fstype == "btrfs") {
                p.subvolumes = subvolumes(path, &name, p, start, len);
            }
        }
    }
    let kernel_partitions = blockdev::kernel_partitions(&name);
    let busy = busy(&name)?;
    Ok(Device {
        path: path.to_owned(),
        kernel_name: name,
        size,
        sector_size,
        serial,
        wwn,
        model,
        table,
        whole_disk_fs,
        busy,
        kernel_partitions,
    })
}

/// The machine's disks: those that could be probed, and those that could not (with why).
#[derive(Debug, Default)]
pub struct Found {
    pub disks: Vec<Device>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Every whole disk of this machine (not RAM disks, device-mapper, md, CD drives, or
/// unused loop devices), by kernel name. A disk that cannot be read does not hide the
/// others.
pub fn all_disks() -> Result<Found, ProbeError> {
    let dir = Path::new("/sys/block");
    let entries = std::fs::read_dir(dir).map_err(|source| ProbeError::Io {
        path: dir.to_owned(),
        what: "listing",
        source,
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["ram", "zram", "dm-", "md", "sr", "fd", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .filter(|n| !n.starts_with("loop") || dir.join(n).join("loop/backing_file").exists())
        .collect();
    names.sort();
    let mut out = Found::default();
    for n in names {
        if read_u64(&dir.join(&n).join("size")).unwrap_or(0) == 0 {
            continue; // an empty card reader or a detached device
        }
        let path = PathBuf::from("/dev").join(&n);
        match device(&path) {
            Ok(d) => out.disks.push(d),
            Err(e) => out.unreadable.push((path, e.to_string())),
        }
    }
    Ok(out)
}

fn read_u64(path: &Path) -> Result<u64, ProbeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProbeError::Io {
        path: path.to_owned(),
        what: "reading",
        source,
    })?;
    text.trim().parse().map_err(|_| ProbeError::Invalid {
        path: path.to_owned(),
        message: format!("expected a number, found \"{}\"", text.trim()),
    })
}

/// blkid's low-level probe of the whole device or of a byte range of it. Works without
/// partition nodes, so it sees partitions the kernel was never told about.
fn blkid(path: &Path, range: Option<(u64, u64)>) -> Result<Vec<(String, String)>, ProbeError> {
    let mut cmd = Cmd::new("blkid").args(["-p", "-o", "export"]);
    if let Some((offset, len)) = range {
        cmd = cmd
            .arg("--offset")
            .arg(offset.to_string())
            .arg("--size")
            .arg(len.to_string());
    }
    let cmd = cmd.arg(path);
    let out = cmd.output()?;
    match out.code {
        Some(0) => Ok(blkid_export(&out.stdout)),
        // 2: nothing recognised.
        Some(2) => Ok(Vec::new()),
        _ => Err(cmd.failed(&out).into()),
    }
}

/// Top-level subvolumes of a Btrfs partition, read from its root tree without mounting.
/// The partition needs a node: if the kernel does not know it yet, it is told (BLKPG add;
/// no byte on the disk changes). `None` when they cannot be read.
fn subvolumes(disk: &Path, name: &str, p: &Part, start: u64, size: u64) -> Option<Vec<String>> {
    let known = blockdev::kernel_partitions(name);
    let mine = KernelPartition {
        number: p.number,
        start,
        size,
    };
    if !known.contains(&mine) {
        if known.iter().any(|k| k.number == p.number) {
            return None; // the kernel has another partition under that number
        }
        let mut wanted = known.clone();
        wanted.push(mine);
        // Never under a run that is rewriting this disk's partitions.
        crate::disklock::unless_written(disk, || blockdev::sync_partitions(disk, &wanted))?.ok()?;
    }
    let node = blockdev::partition_node(disk, p.number);
    let dump = Cmd::new("btrfs")
        .args(["inspect-internal", "dump-tree", "-t", "root"])
        .arg(&node)
        .read()
        .ok()?;
    Some(parse::top_level_subvolumes(&dump))
}

/// Why the disk can't be written now: mounts, swap, holders — of it or its partitions.
fn busy(name: &str) -> Result<Vec<String>, ProbeError> {
    let mut nodes: Vec<(String, (u64, u64))> = Vec::new();
    let mut names = vec![name.to_owned()];
    if let Ok(entries) = std::fs::read_dir(sysfs_dir(name)) {
        for e in entries.flatten() {
            if e.path().join("partition").exists() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    for n in &names {
        let dev = std::fs::read_to_string(sysfs_dir(n).join("dev")).unwrap_or_default();
        if let Some((a, b)) = dev.trim().split_once(':') {
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                nodes.push((format!("/dev/{n}"), (a, b)));
            }
        }
    }
    let numbers_of = |source: &str| -> Option<(u64, u64)> {
        source
            .starts_with('/')
            .then(|| blockdev::dev_numbers(Path::new(source)).ok())
            .flatten()
    };
    let mut reasons = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in parse::mountinfo(&mountinfo) {
        // Btrfs reports an anonymous device number; its source names the real one.
        let by_source = numbers_of(&m.source);
        if let Some((node, _)) = nodes
            .iter()
            .find(|(_, nums)| *nums == (m.major, m.minor) || Some(*nums) == by_source)
        {
            reasons.push(format!("{node} is mounted at {}", m.mount_point));
        }
    }
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    for s in parse::swaps(&swaps) {
        if let Some((node, _)) = nodes.iter().find(|(_, nums)| Some(*nums) == numbers_of(&s)) {
            reasons.push(format!("{node} is in use as swap"));
        }
    }
    for n in &names {
        if let Ok(entries) = std::fs::read_dir(sysfs_dir(n).join("holders")) {
            for h in entries.flatten() {
                reasons.push(format!(
                    "/dev/{n} is held by {} (device-mapper, LVM or RAID)",
                    h.file_name().to_string_lossy()
                ));
            }
        }
    }
    reasons.dedup();
    Ok(reasons)
}
