//! The restore drill: the newest (or chosen) points restored with the same engine as
//! `lifeboat restore` ([`crate::restore::run`]) onto a sparse image of the pool's disk in
//! a work directory, then booted alone in QEMU with OVMF; the serial console decides. The
//! drill writes nothing but its work directory and the loop device over its image: the
//! target is bound to that loop device, the backup drive is mounted read-only, the
//! firmware's variables are left alone. What it proves and what not: docs/drill.md.
//!
//! [`plan`] (pure): the image's size, what the drill changes on its own copy before it
//! boots it; [`loops`]: its loop devices; [`qemu`]: the command line and the verdict
//! (pure) and the runner; [`record`]: the JSON line in drills.jsonl.

pub mod loops;
pub mod plan;
pub mod qemu;
pub mod record;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::apply::fat;
use crate::restore::select::When;
use crate::restore::source::Kind;
use crate::restore::{self, backup_drive};
use crate::spec::Spec;
use loops::LoopImage;
use record::{PointAge, Record};

/// What a drill is asked to do, as plain values (the command line's `drill` flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub from: Kind,
    pub when: When,
    /// `--disk ID=DEVICE`: only the backup drive may be named.
    pub disks: Vec<(String, PathBuf)>,
    /// Made if missing; must be empty. Default: a new directory under /var/tmp.
    pub work_dir: Option<PathBuf>,
    /// Keep the work directory (the restored image, the console log).
    pub keep: bool,
    pub accel: qemu::Accel,
    pub memory_mib: u32,
}

/// Run one drill. An error is a drill that could not start (bad input, no room, no backup
/// drive): nothing was restored and nothing is recorded. A restore or boot that fails is a
/// record whose verdict is `failed`.
pub fn run(spec: &Spec, opts: &Options) -> Result<Record> {
    let Some(pool) = restore::pool(spec) else {
        bail!(
            "{} has no Btrfs pool with root subvolumes: there is nothing a drill could boot",
            spec.file.display()
        );
    };
    let target = pool.disk.id.clone();
    let backup_disk = backup_disk(spec);
    for (id, dev) in &opts.disks {
        if Some(id) != backup_disk.as_ref() || opts.from != Kind::Usb {
            bail!(
                "--disk {id}={}: a drill binds only the backup drive{}; {target} is restored \
                 into the drill's own image",
                dev.display(),
                backup_disk
                    .as_ref()
                    .map(|b| format!(" ({b}, with --from usb)"))
                    .unwrap_or_default()
            );
        }
    }
    let started = restore::run::now();

    // The backup drive, found before anything is made.
    let mut bindings: Vec<(String, PathBuf)> = Vec::new();
    if opts.from == Kind::Usb {
        let Some(usb) = backup_disk.clone() else {
            bail!(
                "{} names no partition with role = \"backup\": a drill --from usb reads the \
                 backups there (add role = \"backup\" to the backup drive's Btrfs partition)",
                spec.file.display()
            );
        };
        let bound = crate::machine::bind_disks(
            spec,
            &opts.disks,
            std::slice::from_ref(&usb),
            crate::machine::Scan::WhenRequiredUnbound,
        )?;
        backup_drive::backup_partition(spec, &bound)?;
        bindings.push((usb.clone(), crate::machine::device_of(&bound, &usb)?));
    }

    let work = WorkDir::make(opts.work_dir.as_deref(), started, opts.keep)?;
    let image = work.path.join(format!("{target}.img"));
    let size = plan::image_size(pool.disk);
    File::create(&image)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("making the sparse image {}", image.display()))?;
    let disk = LoopImage::attach(&image)?;
    for (id, dev) in &bindings {
        if disk.holds(dev) {
            bail!(
                "{id} was found on the drill's own loop device {}: refusing",
                dev.display()
            );
        }
    }
    bindings.insert(0, (target.clone(), disk.dev.clone()));
    let free = nix::sys::statvfs::statvfs(&work.path)
        .map(|s| s.blocks_available() * s.fragment_size())
        .with_context(|| format!("reading the free space of {}", work.path.display()))?;
    println!(
        "Drill: {target} restored into {} ({}, sparse) on {}",
        image.display(),
        crate::spec::human(size),
        disk.dev.display()
    );

    let restore_opts = restore::Options {
        from: opts.from,
        when: opts.when,
        snapshot: None,
        subvols: Vec::new(),
        disks: bindings,
        wipe: Vec::new(),
        // The target is the drill's own image: there is nothing of anyone's to confirm.
        confirmation: crate::ui::Confirmation::Yes,
        firmware: false,
        room: Some((work.path.clone(), free)),
        new_uuid_when_taken: true,
        receives: None,
    };
    let clock = Instant::now();
    let restored = restore::run(spec, &restore_opts);
    let restore_secs = clock.elapsed().as_secs_f64();
    let mut rec = Record {
        time: started,
        spec: spec.file.display().to_string(),
        host: spec.machine.host.clone(),
        from: kind_name(opts.from).into(),
        verdict: "failed".into(),
        stage: "restore".into(),
        reason: String::new(),
        points: Vec::new(),
        bytes: 0,
        mb_per_s: 0.0,
        restore_secs,
        boot_secs: None,
        accel: opts.accel.name().into(),
        console_tail: Vec::new(),
        kept: opts.keep.then(|| work.path.display().to_string()),
    };
    let outcome = match restored {
        Ok(Some(o)) => o,
        Ok(None) => bail!("the drill's restore stopped before it wrote anything"),
        Err(e) => {
            rec.reason = format!("the restore failed, nothing was booted: {e:#}");
            return Ok(rec);
        }
    };
    rec.points = outcome
        .points
        .iter()
        .map(|p| PointAge {
            subvol: p.subvol.clone(),
            point: p.point.clone(),
            time: p.time,
            age_secs: p.time.map(|t| started - t),
        })
        .collect();
    rec.bytes = outcome.bytes;
    rec.mb_per_s = if restore_secs > 0.0 {
        outcome.bytes as f64 / restore_secs / 1e6
    } else {
        0.0
    };

    // Only the drill's copy is adjusted: a serial console, the firmware's fallback loader.
    for (esp, name) in restore::esps(spec)
        .into_iter()
        .filter(|(e, _)| e.disk.id == target)
    {
        let node = crate::blockdev::partition_node(&disk.dev, esp.number);
        match adjust_esp(&node, &outcome.renamed) {
            Ok(changed) => {
                for c in changed {
                    println!("  drill copy, {name}: {c}");
                }
            }
            Err(e) => println!("  drill copy, {name}: not adjusted ({e:#})"),
        }
    }
    disk.detach()?;

    println!(
        "\nBooting the restored {target} in QEMU ({}, OVMF), waiting up to {} s for: {}",
        opts.accel.name(),
        spec.drill.timeout_secs,
        spec.drill.expect.join(" | ")
    );
    let machine = qemu::Machine {
        accel: opts.accel,
        vars: work.path.join("OVMF_VARS.fd"),
        disk: image.clone(),
        console: work.path.join("console.log"),
        memory_mib: opts.memory_mib,
    };
    let boot = qemu::boot(
        &machine,
        &spec.drill.expect,
        Duration::from_secs(spec.drill.timeout_secs),
    )?;
    rec.stage = "boot".into();
    rec.boot_secs = Some(boot.secs);
    match &boot.verdict {
        qemu::Verdict::Booted { line } => {
            rec.verdict = "booted".into();
            rec.stage = "booted".into();
            rec.reason = format!("the console showed \"{line}\"");
        }
        other => {
            rec.reason = match other {
                qemu::Verdict::Failed { line } => format!("the boot failed: \"{line}\""),
                qemu::Verdict::Stopped { status } => {
                    format!("the guest stopped without an expected line ({status})")
                }
                qemu::Verdict::TimedOut { secs } => {
                    format!("the console showed no expected line within {secs} s")
                }
                qemu::Verdict::Booted { .. } => String::new(),
            };
            let failure = match other {
                qemu::Verdict::Failed { line } => Some(line.as_str()),
                _ => None,
            };
            rec.console_tail = qemu::tail_to(&boot.console, failure, record::TAIL_LINES);
        }
    }
    Ok(rec)
}

fn backup_disk(spec: &Spec) -> Option<String> {
    restore::backup_part(spec).map(|p| p.disk.id.clone())
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Usb => "usb",
        Kind::Restic => "restic",
        Kind::ResticStream => "restic-stream",
    }
}

/// The loader entries of the ESP on `node` get a serial console, and the firmware's
/// fallback loader is put there when only a named loader is: the drill's firmware has
/// none of the machine's boot entries. In-process FAT (no vfat on the host). Returns what
/// was changed.
fn adjust_esp(node: &Path, renamed: &[(String, String)]) -> Result<Vec<String>> {
    let mut dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(node)
        .with_context(|| format!("opening {}", node.display()))?;
    let len = std::io::Seek::seek(&mut dev, std::io::SeekFrom::End(0))?;
    let tree = fat::tree(&mut dev, 0, len)?;
    let mut writes: Vec<(String, Vec<u8>)> = Vec::new();
    let mut changed = Vec::new();
    for path in tree.keys() {
        let p = path.to_string_lossy().into_owned();
        let is_entry = p.starts_with("loader/entries/") && p.ends_with(".conf");
        if !is_entry {
            continue;
        }
        let text = String::from_utf8_lossy(&fat::read_file(&mut dev, 0, len, &p)?).into_owned();
        let mut new = plan::with_serial_console(&text);
        if new.is_some() {
            changed.push(format!("{p}: console=ttyS0,115200 added"));
        }
        if let Some(renamed) = plan::rename_uuids(new.as_deref().unwrap_or(&text), renamed) {
            changed.push(format!("{p}: the pool's new UUID"));
            new = Some(renamed);
        }
        if let Some(new) = new {
            writes.push((p, new.into_bytes()));
        }
    }
    let has = |p: &str| {
        tree.keys()
            .any(|k| k.to_string_lossy().eq_ignore_ascii_case(p))
    };
    if !has(plan::FALLBACK_LOADER) {
        if let Some(loader) = plan::KNOWN_LOADERS.iter().find(|l| has(l)) {
            let bytes = fat::read_file(&mut dev, 0, len, loader)?;
            changed.push(format!("{} copied from {loader}", plan::FALLBACK_LOADER));
            writes.push((plan::FALLBACK_LOADER.to_owned(), bytes));
        }
    }
    if !writes.is_empty() {
        fat::write_files(&mut dev, 0, len, &writes, restore::run::now().max(0) as u64)?;
    }
    Ok(changed)
}

/// The drill's work directory: removed at the end unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
    /// Made by the drill (removed whole), else only emptied.
    created: bool,
}

impl WorkDir {
    fn make(asked: Option<&Path>, now: i64, keep: bool) -> Result<WorkDir> {
        let path = match asked {
            Some(p) => p.to_owned(),
            None => PathBuf::from(format!(
                "/var/tmp/lifeboat-drill-{}-{}",
                restore::run::stamp(now),
                std::process::id()
            )),
        };
        let created = !path.exists();
        std::fs::create_dir_all(&path)
            .with_context(|| format!("making the work directory {}", path.display()))?;
        let empty = std::fs::read_dir(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "the work directory {} is not empty: give a new or empty one with --work-dir, \
                 or remove what a kept drill left there",
                path.display()
            );
        }
        let path = path
            .canonicalize()
            .with_context(|| format!("resolving {}", path.display()))?;
        Ok(WorkDir {
            path,
            keep,
            created,
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.path);
        } else if let Ok(entries) = std::fs::read_dir(&self.path) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
