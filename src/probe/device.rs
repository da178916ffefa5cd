//! Probing one device, or every disk of the machine.

use std::path::{Path, PathBuf};

use crate::blockdev::{self, sysfs_dir};
use crate::exec::Cmd;

use super::gpt_table;
use super::identity;
use super::parse::{self, blkid_export};
use super::{Device, KernelPartition, Orphan, Part, ProbeError, Table};

const MIB: u64 = 1 << 20;

/// The real sysfs; the identity lookup takes it as a parameter so that tests can give it
/// a fixture tree.
const SYS: &str = "/sys";

/// Where partitioning tools put partitions on disks like ours, looked at for filesystems
/// on a disk that looks blank: 1 MiB (every tool since 2010), a few more MiB (RAID and
/// flash alignments), and after the usual first partitions (a 100 MiB Windows ESP and its
/// 16 MiB MSR, ESPs of 256 MiB, 512 MiB, 1 GiB, 2 GiB). One blkid run each.
const USUAL_STARTS: [u64; 11] = [
    MIB,
    2 * MIB,
    4 * MIB,
    8 * MIB,
    16 * MIB,
    101 * MIB,
    117 * MIB,
    257 * MIB,
    513 * MIB,
    1025 * MIB,
    2049 * MIB,
];

/// Everything the planner needs to know about one whole disk.
pub fn device(path: &Path) -> Result<Device, ProbeError> {
    let name = blockdev::kernel_name(path).map_err(|e| ProbeError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let path = &kernel_node(path, &name);
    let sys = sysfs_dir(&name);
    if sys.join("partition").exists() {
        return Err(ProbeError::Invalid {
            path: path.to_owned(),
            message: "is a partition, not a whole disk; name the disk it is on".into(),
        });
    }
    let size = read_u64(&sys.join("size"))? * 512;
    let sector_size = read_u64(&sys.join("queue/logical_block_size")).unwrap_or(512);
    let id = identity::identity(Path::new(SYS), &name);

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
    let read_only = read_u64(&sys.join("ro"))? != 0;
    let mut dev = Device {
        path: path.to_owned(),
        kernel_name: name,
        size,
        sector_size,
        bus: id.bus,
        serial: id.serial,
        wwn: id.wwn,
        model: id.model,
        table,
        whole_disk_fs,
        orphans: Vec::new(),
        busy,
        read_only,
        kernel_partitions,
    };
    if dev.looks_blank() {
        dev.orphans = orphans_at(path, size, &USUAL_STARTS)?;
    }
    Ok(dev)
}

/// The kernel's own node for a device named by any path (a /dev/disk/by-id symlink, a
/// node made elsewhere): partition nodes are named after it (`nvme0n1` → `nvme0n1p1`).
fn kernel_node(given: &Path, name: &str) -> PathBuf {
    let node = Path::new("/dev").join(name);
    match (blockdev::dev_numbers(&node), blockdev::dev_numbers(given)) {
        (Ok(a), Ok(b)) if a == b => node,
        _ => std::fs::canonicalize(given).unwrap_or_else(|_| given.to_owned()),
    }
}

/// Look for filesystems at more offsets of a disk that looks blank (where the spec's
/// partitions would start), adding what is found to its orphans.
pub fn look_for_orphans(dev: &mut Device, offsets: &[u64]) -> Result<(), ProbeError> {
    if !dev.looks_blank() {
        return Ok(());
    }
    let new: Vec<u64> = offsets
        .iter()
        .copied()
        .filter(|o| !USUAL_STARTS.contains(o) && !dev.orphans.iter().any(|f| f.offset == *o))
        .collect();
    let found = orphans_at(&dev.path, dev.size, &new)?;
    dev.orphans.extend(found);
    dev.orphans.sort_by_key(|o| o.offset);
    Ok(())
}

/// blkid's probe at each offset inside the disk.
fn orphans_at(path: &Path, size: u64, offsets: &[u64]) -> Result<Vec<Orphan>, ProbeError> {
    let mut out = Vec::new();
    for &offset in offsets.iter().filter(|o| **o > 0 && **o < size) {
        if let Some(fs) = parse::filesystem(&blkid(path, Some((offset, size - offset)))?) {
            out.push(Orphan { offset, fs });
        }
    }
    Ok(out)
}

/// The machine's disks: those that could be probed, and those that could not (with why).
#[derive(Debug, Default)]
pub struct MachineDisks {
    pub disks: Vec<Device>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Every whole disk of this machine (not RAM disks, device-mapper, md, CD drives, or
/// unused loop devices), by kernel name. A disk that cannot be read does not hide the
/// others.
pub fn all_disks() -> Result<MachineDisks, ProbeError> {
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
    let mut out = MachineDisks::default();
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
    let dump = crate::btrfs::dump_root_tree(&node).ok()?;
    Some(parse::top_level_subvolumes(&dump))
}

/// Why the disk can't be written now: mounts, swap, holders — of it or its partitions, or
/// of a loop device over it.
fn busy(name: &str) -> Result<Vec<String>, ProbeError> {
    let mut reasons = users(name);
    for l in loops_over(name) {
        let what = format!("a loop device over {} at offset {}", l.over, l.offset);
        let through = users(&l.name);
        if through.is_empty() {
            reasons.push(format!(
                "/dev/{} is {what} (`losetup -d /dev/{}` detaches it)",
                l.name, l.name
            ));
        }
        reasons.extend(through.into_iter().map(|r| format!("{r} ({what})")));
    }
    reasons.dedup();
    Ok(reasons)
}

/// The device and its partitions, as (node, major:minor).
fn nodes(name: &str) -> Vec<(String, (u64, u64))> {
    let mut names = vec![name.to_owned()];
    if let Ok(entries) = std::fs::read_dir(sysfs_dir(name)) {
        for e in entries.flatten() {
            if e.path().join("partition").exists() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mut nodes = Vec::new();
    for n in &names {
        let dev = std::fs::read_to_string(sysfs_dir(n).join("dev")).unwrap_or_default();
        if let Some((a, b)) = dev.trim().split_once(':') {
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                nodes.push((format!("/dev/{n}"), (a, b)));
            }
        }
    }
    nodes
}

/// Mounts, swap and holders of a device or its partitions, one sentence each.
fn users(name: &str) -> Vec<String> {
    let nodes = nodes(name);
    let numbers_of = |source: &str| -> Option<(u64, u64)> {
        source
            .starts_with('/')
            .then(|| blockdev::dev_numbers(Path::new(source)).ok())
            .flatten()
    };
    let mut reasons = Vec::new();
    let mountinfo = crate::mountinfo::read().unwrap_or_default();
    for m in crate::mountinfo::parse(&mountinfo) {
        // Btrfs reports an anonymous device number; its source names the real one.
        let by_source = numbers_of(&m.source);
        if let Some((node, _)) = nodes
            .iter()
            .find(|(_, nums)| *nums == (m.major, m.minor) || Some(*nums) == by_source)
        {
            reasons.push(format!("{node} is mounted at {}", m.mount_point.display()));
        }
    }
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    for s in parse::swaps(&swaps) {
        if let Some((node, _)) = nodes.iter().find(|(_, nums)| Some(*nums) == numbers_of(&s)) {
            reasons.push(format!("{node} is in use as swap"));
        }
    }
    for (node, _) in &nodes {
        let n = node.trim_start_matches("/dev/");
        if let Ok(entries) = std::fs::read_dir(sysfs_dir(n).join("holders")) {
            for h in entries.flatten() {
                reasons.push(format!(
                    "{node} is held by {} (device-mapper, LVM or RAID)",
                    h.file_name().to_string_lossy()
                ));
            }
        }
    }
    reasons
}

/// A loop device whose backing store overlaps a disk.
struct LoopOver {
    name: String,
    /// The disk's node or partition node, or the image file both are made from.
    over: String,
    offset: u64,
}

/// Loop devices (`mount -o loop,offset=…`, `losetup -o …`) over this disk or one of its
/// partitions, or — when the disk is a loop device itself — over the same image file. The
/// kernel lists none of them as holders, yet what is written under them corrupts what they
/// show.
fn loops_over(name: &str) -> Vec<LoopOver> {
    let mine = nodes(name);
    let backing = |n: &str| -> Option<String> {
        let text = std::fs::read_to_string(sysfs_dir(n).join("loop/backing_file")).ok()?;
        Some(text.trim_end_matches('\n').to_owned())
    };
    let file_id = |p: &str| -> Option<(u64, u64)> {
        let st = nix::sys::stat::stat(Path::new(p)).ok()?;
        (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((st.st_dev, st.st_ino))
    };
    let my_file = backing(name).and_then(|p| file_id(&p).map(|id| (p, id)));
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return out;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n == name || !n.starts_with("loop") {
            continue;
        }
        let Some(back) = backing(&n) else {
            continue;
        };
        let offset = std::fs::read_to_string(sysfs_dir(&n).join("loop/offset"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let over = if let Ok(nums) = blockdev::dev_numbers(Path::new(&back)) {
            mine.iter()
                .find(|(_, m)| *m == nums)
                .map(|(node, _)| node.clone())
        } else {
            my_file
                .as_ref()
                .filter(|(_, id)| file_id(&back) == Some(*id))
                .map(|(p, _)| format!("{p}, the image file of /dev/{name}"))
        };
        if let Some(over) = over {
            out.push(LoopOver {
                name: n,
                over,
                offset,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
