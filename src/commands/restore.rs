//! `lifeboat restore SPEC --from usb`: preflight, plan, confirmation, provisioning of the
//! Linux disk, the receives, /boot and the ESPs, fstab, boot entries, checks. The choices
//! are made by the pure code in [`crate::restore`]; this file carries them out.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::apply::mount::Mount;
use crate::apply::{self};
use crate::blockdev;
use crate::boot::fstab;
use crate::cli::{BootEntriesArgs, RestoreArgs, DEFAULT_LOADER};
use crate::exec::Cmd;
use crate::plan::{self, Action, Binding, Plan, Scope};
use crate::restore::inventory::{self, Kind};
use crate::restore::pipe::{self, Source};
use crate::restore::plan::{Canonical, Found, SubvolPlan, Target, SNAPSHOTS};
use crate::restore::record::{Record, BOOT_DIR, RECORD_FILE};
use crate::restore::select::{self, Chain, When};
use crate::restore::{self as r, points, tree, verify, SpecPart, BACKUP_LABEL, META};
use crate::spec::{human, Encryption, Spec};
use crate::{runlog, ui};

pub fn restore(args: &RestoreArgs) -> Result<()> {
    let log = runlog::start("restore").ok();
    let spec = Spec::load(&args.spec)?;
    let when = match &args.at {
        Some(text) => When::At(points::parse_at(text).with_context(|| {
            format!(
                "--at \"{text}\" is not a time: write 2026-11-20, '2026-11-20 03:00' or \
                 20261120T0300 (UTC)"
            )
        })?),
        None => When::Latest,
    };
    let Some(pool) = r::pool(&spec) else {
        bail!(
            "{} has no Btrfs pool with root subvolumes to restore into",
            spec.file.display()
        );
    };
    if pool.part.encrypt == Encryption::Luks2 {
        bail!(
            "the pool {} is encrypted (luks2): restoring into an encrypted pool is not supported \
             yet; docs/restore.md shows the steps by hand",
            pool.part.name
        );
    }
    // Which subvolumes: the spec's (except the snapshot container), or those asked for.
    let spec_subvols: Vec<String> = pool
        .part
        .subvolumes
        .iter()
        .map(|s| s.name.clone())
        .filter(|n| n != SNAPSHOTS)
        .collect();
    for asked in &args.subvols {
        if !spec_subvols.contains(asked) {
            bail!(
                "--subvol {asked}: the pool {} in {} has no such subvolume (it has {})",
                pool.part.name,
                spec.file.display(),
                spec_subvols.join(", ")
            );
        }
    }
    let target_disk = pool.disk.id.clone();
    let backup_disk = spec
        .disks
        .iter()
        .find(|d| {
            d.partitions
                .iter()
                .any(|p| p.label.as_deref() == Some(BACKUP_LABEL))
        })
        .map(|d| d.id.clone());
    let mut required = vec![target_disk.clone()];
    required.extend(backup_disk.clone());
    let bindings = super::bind_disks(&spec, &args.disks, &required, false)?;

    // Never the backup drive, never a preserved disk, never the same device twice.
    if pool.disk.preserve {
        bail!("{target_disk} is marked preserve in the spec: a restore would have to write it");
    }
    let target_dev = device_of(&bindings, &target_disk)?;
    for b in bindings.iter().filter(|b| b.id != target_disk) {
        if same_device(&b.device.path, &target_dev)? {
            bail!(
                "{} and {target_disk} are the same device ({}): refusing to restore onto it",
                b.id,
                target_dev.display()
            );
        }
    }

    // The backup drive, read-only for the whole run.
    let usb_node = super::inventory::backup_partition(&spec, &bindings)?;
    let usb = Mount::read_only(&usb_node, "btrfs", Some("subvolid=5"))
        .with_context(|| format!("mounting the backup drive {BACKUP_LABEL} read-only"))?;
    let now = now();
    let dirs = spec.backup_dirs();
    let inv = inventory::scan(usb.path(), &dirs, &spec.machine.host, now)
        .with_context(|| format!("reading the restore points on {}", usb_node.display()))?;
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }

    let wanted: Vec<String> = if args.subvols.is_empty() {
        let with_points: Vec<String> = spec_subvols
            .iter()
            .filter(|s| inv.subvols.iter().any(|g| &g.subvol == *s))
            .cloned()
            .collect();
        for s in spec_subvols.iter().filter(|s| !with_points.contains(s)) {
            println!("{s}: no restore points on the backup drive; it stays as provisioning makes it (empty)");
        }
        for g in inv
            .subvols
            .iter()
            .filter(|g| !spec_subvols.contains(&g.subvol))
        {
            println!("{}: not a subvolume of the spec; not restored", g.subvol);
        }
        if with_points.is_empty() {
            bail!("the backup drive holds no restore points for any subvolume of the spec");
        }
        with_points
    } else {
        args.subvols.clone()
    };
    let chains = select::select(&inv, &wanted, when, META)?;

    println!("\nPreflight (nothing is written yet):");
    let estimate = preflight(usb.path(), &chains)?;
    let record = read_record(usb.path(), &chains);

    // Provisioning of the Linux disk, with the recorded UUIDs.
    let scope = Scope {
        only: vec![target_disk.clone()],
        wipe: args.wipe.clone(),
    };
    let mut prov = plan::plan(&spec, &bindings, &scope, &mut || {
        uuid::Uuid::new_v4().to_string().to_uppercase()
    })?;
    let taken = match &record {
        Some(rec) => rec.apply_to(&mut prov),
        None => Vec::new(),
    };
    let pool_size = pool_size(&prov, &bindings, &pool)?;
    if estimate.bytes > pool_size {
        bail!(
            "the chosen points hold about {} but the pool {} has {}: not enough room",
            human(estimate.bytes),
            pool.part.name,
            human(pool_size)
        );
    }
    println!(
        "  about {} to receive into {} ({})",
        human(estimate.bytes),
        pool.part.name,
        human(pool_size)
    );

    // What the pool holds now (nothing when it is about to be made).
    let pool_node = blockdev::partition_node(&target_dev, pool.number);
    let fresh_pool = makes_pool(&prov, pool.number);
    let target = if fresh_pool {
        Target {
            received: vec![],
            canonical: chains
                .iter()
                .map(|c| (c.subvol.clone(), Found::Empty))
                .collect(),
        }
    } else {
        let top = Mount::read_only(&pool_node, "btrfs", Some("subvolid=5"))
            .context("mounting the pool to see what it holds")?;
        let t = probe_target(top.path(), &chains);
        top.close()?;
        t?
    };
    let stamp = stamp(now);
    let plans = r::plan::plan(&chains, &target, &stamp);

    println!("\nRestore plan");
    if prov.is_empty() {
        println!("  {target_disk}: provisioned already; restoring into its pool");
    } else {
        print!("{}", prov.render());
        match &record {
            Some(_) => println!(
                "  The filesystems get their recorded UUIDs ({META}/{BOOT_DIR}/{RECORD_FILE}): {}",
                taken.len()
            ),
            None => println!(
                "  No {RECORD_FILE} in the backup: new UUIDs; each root's /etc/fstab is rewritten"
            ),
        }
    }
    println!("\nThen, from {BACKUP_LABEL} into {}:", pool.part.name);
    print!("{}", r::plan::render(&plans));
    println!("\nThen: /boot and the ESPs of {target_disk} from {META}/{BOOT_DIR}, fstab checked, boot entries, checks.");
    if args.dry_run {
        usb.close()?;
        return Ok(());
    }
    if !prov.is_empty() {
        super::provision::confirm(&prov, args.yes)?;
    } else {
        super::confirm_changes(args.yes, "Restore into this pool?")?;
    }

    // Provision.
    if !prov.is_empty() {
        println!("\nProvisioning {target_disk}");
        let mut steps = ui::Steps::new(prov.action_count());
        let result = apply::apply(&prov, &mut steps, &mut super::provision::Prompted);
        steps.finish();
        result.context("provisioning stopped; running the same restore again finishes the rest")?;
    }

    // Receive.
    let top = Mount::with_options(&pool_node, "btrfs", Some("subvolid=5"))
        .context("mounting the pool")?;
    let received = receive_all(usb.path(), top.path(), &chains, &stamp, estimate.per_point)
        .context("the restore stopped; running the same command again keeps what is complete and finishes the rest");
    let boot = received.and_then(|()| restore_boot(&spec, &args.disks, top.path(), &prov));
    let closed = top.close();
    let usb_closed = usb.close();
    let boot_lines = boot?;
    closed?;
    usb_closed?;

    // Boot entries, then the checks.
    let mut notes = boot_lines;
    let efivarfs = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            crate::boot::esp_sync::mount_fstype(&m, Path::new(crate::boot::efivars::EFIVARS))
                == Some("efivarfs")
        })
        .unwrap_or(false);
    if efivarfs {
        println!("\nBoot entries");
        super::boot_entries(&BootEntriesArgs {
            spec: args.spec.clone(),
            disks: args.disks.clone(),
            loader: DEFAULT_LOADER.to_owned(),
            dry_run: false,
            yes: true,
        })
        .context("writing the boot entries")?;
    } else {
        notes.push(
            "efivarfs is not mounted (not booted in UEFI mode): no boot entries were written; \
             run `lifeboat boot-entries` from the rescue system booted in UEFI mode"
                .into(),
        );
    }
    let restored: Vec<String> = chains.iter().map(|c| c.subvol.clone()).collect();
    let report = check(&spec, &args.disks, &pool, &restored)?;
    println!("\nChecks");
    for line in &report.lines {
        println!("  {line}");
    }
    if !notes.is_empty() {
        println!("\nNotes");
        for n in &notes {
            println!("  - {n}");
        }
    }
    if let Some(path) = log {
        println!("Log: {}", path.display());
    }
    if !report.failed.is_empty() {
        bail!(
            "the restore finished but {} check{} failed: {}",
            report.failed.len(),
            if report.failed.len() == 1 { "" } else { "s" },
            report.failed.join("; ")
        );
    }
    println!(
        "\nRestored {} from {BACKUP_LABEL}. Remove the rescue USB and reboot.",
        restored.join(", ")
    );
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `20261125T1200`, for names of things moved aside.
fn stamp(t: i64) -> String {
    let (y, mo, d, h, mi, _) = runlog::civil(t.max(0) as u64);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}")
}

fn device_of(bindings: &[Binding], id: &str) -> Result<PathBuf> {
    bindings
        .iter()
        .find(|b| b.id == id)
        .map(|b| b.device.path.clone())
        .with_context(|| format!("{id} was not found"))
}

fn same_device(a: &Path, b: &Path) -> Result<bool> {
    Ok(blockdev::dev_numbers(a)? == blockdev::dev_numbers(b)?)
}

/// How much will be received, in all and per point (by path on the backup drive).
struct Estimate {
    bytes: u64,
    per_point: Vec<(String, u64)>,
}

/// Every point readable, every stream whole (`btrfs receive --dump` reads it to the end and
/// checks each command's CRC), every subvolume read-only (so it can be sent).
fn preflight(usb: &Path, chains: &[Chain]) -> Result<Estimate> {
    let mut est = Estimate {
        bytes: 0,
        per_point: vec![],
    };
    for chain in chains {
        for p in &chain.points {
            let path = usb.join(&p.path);
            let size = match p.kind {
                Kind::Stream => {
                    let mut bar = ui::Bytes::new(&format!("checking {}", p.path), p.size);
                    let dump = Cmd::new("btrfs").args(["receive", "--dump"]);
                    let checked = pipe::stream(
                        Source::File {
                            path: &path,
                            compressed: p.compressed,
                        },
                        &dump,
                        &mut |b| bar.set(b),
                    );
                    bar.finish();
                    let t = checked.with_context(|| {
                        format!("{} is damaged or unreadable; nothing was written", p.path)
                    })?;
                    println!("  {}: stream whole ({})", p.path, human(t.bytes));
                    t.bytes
                }
                Kind::Btrbk | Kind::Snapper => {
                    let show = Cmd::new("btrfs")
                        .args(["subvolume", "show"])
                        .arg(&path)
                        .read()
                        .with_context(|| {
                            format!("{} cannot be read; nothing was written", p.path)
                        })?;
                    let readonly = show
                        .lines()
                        .any(|l| l.trim().starts_with("Flags:") && l.contains("readonly"));
                    if !readonly {
                        bail!(
                            "{} is not read-only, so it cannot be sent (a snapshot that is \
                             still being written?); nothing was written",
                            p.path
                        );
                    }
                    // A walk over every file: on a large home it takes a while, so say so.
                    println!(
                        "  {}: read-only subvolume; measuring it for the ETA …",
                        p.path
                    );
                    let bytes = allocated(&path);
                    println!("    about {}", human(bytes));
                    bytes
                }
            };
            est.bytes += size;
            est.per_point.push((p.path.clone(), size));
        }
    }
    Ok(est)
}

/// Bytes the files under `dir` occupy (an estimate of the stream's size, for the ETA).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            }
            total += meta.blocks() * 512;
        }
    }
    total
}

/// The filesystem record in the chosen Atlantis-meta point, when that point is a subvolume
/// on the drive (a stream cannot be looked into before it is received).
fn read_record(usb: &Path, chains: &[Chain]) -> Option<Record> {
    let meta = chains.iter().find(|c| c.subvol == META)?;
    let point = meta.chosen();
    if point.kind == Kind::Stream {
        println!("  {META} comes from a stream: the filesystems get new UUIDs");
        return None;
    }
    let path = usb.join(&point.path).join(BOOT_DIR).join(RECORD_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    match Record::parse(&text) {
        Ok(rec) => {
            println!(
                "  {META}/{BOOT_DIR}/{RECORD_FILE}: {} filesystems recorded on {}",
                rec.filesystems.len(),
                rec.written
            );
            Some(rec)
        }
        Err(e) => {
            println!(
                "  {RECORD_FILE} in {} cannot be read ({e}); new UUIDs",
                point.path
            );
            None
        }
    }
}

/// Whether the provisioning plan makes the pool's filesystem.
fn makes_pool(prov: &Plan, number: u32) -> bool {
    prov.disks
        .iter()
        .flat_map(|d| &d.actions)
        .any(|a| matches!(a, Action::Mkfs { partition, .. } if partition.number == number))
}

/// The pool partition's size: as planned, or as it is on the disk.
fn pool_size(prov: &Plan, bindings: &[Binding], pool: &SpecPart) -> Result<u64> {
    for a in prov.disks.iter().flat_map(|d| &d.actions) {
        if let Action::Mkfs { partition, .. } = a {
            if partition.number == pool.number {
                return Ok(partition.size);
            }
        }
    }
    let b = bindings
        .iter()
        .find(|b| b.id == pool.disk.id)
        .context("the pool's disk is not bound")?;
    let part = b
        .device
        .gpt()
        .and_then(|g| g.partitions.iter().find(|p| p.number == pool.number))
        .context("the pool's partition is not on the disk")?;
    Ok((part.last_lba + 1 - part.first_lba) * b.device.sector_size)
}

/// What the pool mounted (top level) at `top` holds: received points and canonical ones.
fn probe_target(top: &Path, chains: &[Chain]) -> Result<Target> {
    let list = |readonly: bool| -> Result<Vec<inventory::SubvolRow>> {
        let mut cmd = Cmd::new("btrfs").args(["subvolume", "list", "-u", "-q", "-R"]);
        if readonly {
            cmd = cmd.arg("-r");
        }
        Ok(inventory::parse_subvolume_list(&cmd.arg(top).read()?))
    };
    let rows = list(false)?;
    let prefix = format!("{SNAPSHOTS}/");
    // Complete: read-only, with a received UUID (btrfs receive sets both at its end).
    let received = list(true)?
        .into_iter()
        .filter(|row| row.received_uuid.is_some())
        .filter_map(|row| {
            let name = row.path.strip_prefix(&prefix)?;
            (!name.contains('/')).then_some((name.to_owned(), row.uuid?))
        })
        .collect();
    let canonical = chains
        .iter()
        .map(|c| {
            let found = match rows.iter().find(|row| row.path == c.subvol) {
                None => Found::Absent,
                Some(row) => {
                    let empty = std::fs::read_dir(top.join(&c.subvol))
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false);
                    if empty {
                        Found::Empty
                    } else {
                        Found::HasData(row.parent_uuid)
                    }
                }
            };
            (c.subvol.clone(), found)
        })
        .collect();
    Ok(Target {
        received,
        canonical,
    })
}

/// Receive every point not yet complete, then give each subvolume its canonical name.
fn receive_all(
    usb: &Path,
    top: &Path,
    chains: &[Chain],
    stamp: &str,
    sizes: Vec<(String, u64)>,
) -> Result<()> {
    let snapshots = top.join(SNAPSHOTS);
    std::fs::create_dir_all(&snapshots).context("making @snapshots")?;
    // The plan again, now against the pool as it really is after provisioning.
    let plans = r::plan::plan(chains, &probe_target(top, chains)?, stamp);
    for p in &plans {
        println!("\n{}", p.subvol);
        if p.is_done() {
            println!(
                "  already restored ({} from {SNAPSHOTS}/{})",
                p.subvol, p.from
            );
            continue;
        }
        for rcv in &p.receives {
            if rcv.done {
                println!("  {SNAPSHOTS}/{}: received by an earlier run", rcv.name);
                continue;
            }
            let src = usb.join(&rcv.point.path);
            let (source, incoming) = match rcv.point.kind {
                Kind::Stream => (
                    Source::File {
                        path: &src,
                        compressed: rcv.point.compressed,
                    },
                    inventory::read_head(&src, rcv.point.compressed)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", rcv.point.path))?
                        .name,
                ),
                Kind::Btrbk | Kind::Snapper => (
                    Source::Subvolume(&src),
                    src.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                ),
            };
            let arriving = snapshots.join(&incoming);
            clear_incomplete(top, &arriving, &incoming)?;
            let total = sizes
                .iter()
                .find(|(path, _)| *path == rcv.point.path)
                .map(|(_, s)| *s);
            let mut bar = ui::Bytes::new(&rcv.name, total);
            let sink = Cmd::new("btrfs").args(["receive", "-q"]).arg(&snapshots);
            let moved = pipe::stream(source, &sink, &mut |b| bar.set(b));
            bar.finish();
            let t = moved.with_context(|| format!("receiving {}", rcv.point.path))?;
            if incoming != rcv.name {
                // Within one directory: a read-only subvolume cannot change directories.
                std::fs::rename(&arriving, snapshots.join(&rcv.name)).with_context(|| {
                    format!(
                        "renaming the received {SNAPSHOTS}/{incoming} to {}",
                        rcv.name
                    )
                })?;
            }
            println!(
                "  {SNAPSHOTS}/{}: {} in {:.1} s ({}/s)",
                rcv.name,
                human(t.bytes),
                t.secs,
                human(t.rate() as u64)
            );
        }
        canonical(top, p)?;
    }
    Ok(())
}

/// A subvolume where a point is about to be received: left by an interrupted receive (not
/// read-only or without a received UUID) it is deleted; complete, it is in the way.
fn clear_incomplete(top: &Path, at: &Path, name: &str) -> Result<()> {
    if !at.exists() {
        return Ok(());
    }
    let show = Cmd::new("btrfs")
        .args(["subvolume", "show"])
        .arg(at)
        .read()
        .with_context(|| format!("{SNAPSHOTS}/{name} is in the way and is not a subvolume"))?;
    let readonly = show
        .lines()
        .any(|l| l.trim().starts_with("Flags:") && l.contains("readonly"));
    let received = show
        .lines()
        .any(|l| l.trim().starts_with("Received UUID:") && !l.trim().ends_with('-'));
    if readonly && received {
        bail!(
            "{SNAPSHOTS}/{name} already holds a received subvolume that is not the one chosen; \
             move it away (it is in {})",
            top.display()
        );
    }
    println!("  removing the incomplete {SNAPSHOTS}/{name} left by an interrupted run");
    Cmd::new("btrfs")
        .args(["subvolume", "delete"])
        .arg(at)
        .run()?;
    Ok(())
}

fn canonical(top: &Path, p: &SubvolPlan) -> Result<()> {
    let at = top.join(&p.subvol);
    let from = top.join(SNAPSHOTS).join(&p.from);
    match &p.canonical {
        Canonical::Keep => return Ok(()),
        Canonical::Create => {}
        Canonical::ReplaceEmpty => {
            Cmd::new("btrfs")
                .args(["subvolume", "delete"])
                .arg(&at)
                .run()?;
        }
        Canonical::MoveAside(to) => {
            std::fs::rename(&at, top.join(to))
                .with_context(|| format!("renaming {} to {to}", p.subvol))?;
            println!("  the {} that was there is now {to}", p.subvol);
        }
    }
    Cmd::new("btrfs")
        .args(["subvolume", "snapshot"])
        .arg(&from)
        .arg(&at)
        .run()?;
    println!(
        "  {}: writable snapshot of {SNAPSHOTS}/{}",
        p.subvol, p.from
    );
    Ok(())
}

/// /boot and the ESPs on the disks provisioning wrote, from Atlantis-meta/boot. Returns
/// notes for the report.
fn restore_boot(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    top: &Path,
    prov: &Plan,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let backup = top.join(META).join(BOOT_DIR);
    if !backup.is_dir() {
        notes.push(format!(
            "{META} has no {BOOT_DIR}/ (run `lifeboat backup-boot` on the machine): /boot and \
             the ESPs were not restored"
        ));
        return Ok(notes);
    }
    println!("\n/boot and the ESPs from {META}/{BOOT_DIR}");
    let bindings = super::bind_disks(spec, disks, &[], true)?;
    let written: Vec<&str> = prov
        .disks
        .iter()
        .filter(|d| !d.actions.is_empty())
        .map(|d| d.id.as_str())
        .collect();
    let node = |p: &SpecPart| -> Result<PathBuf> {
        Ok(blockdev::partition_node(
            &device_of(&bindings, &p.disk.id)?,
            p.number,
        ))
    };
    if let Some(boot) = r::boot_partition(spec) {
        let from = backup.join("boot");
        if from.is_dir() && bindings.iter().any(|b| b.id == boot.disk.id) {
            let fs = boot.part.fs.map(|f| f.blkid_type()).unwrap_or("ext4");
            let m = Mount::new(&node(&boot)?, fs).context("mounting /boot")?;
            let copied = tree::copy(&from, m.path()).context("restoring /boot")?;
            m.close()?;
            println!("  /boot: {} files, {}", copied.files, human(copied.bytes));
        }
    }
    let esps = r::esps(spec);
    for (esp, name) in &esps {
        if !written.contains(&esp.disk.id.as_str()) {
            notes.push(format!(
                "{name} on {} was not written by this restore; it keeps what it has",
                esp.disk.id
            ));
            continue;
        }
        // Its own copy, else any ESP's copy (the ESPs are mirrors of each other).
        let from = std::iter::once(name.clone())
            .chain(esps.iter().map(|(_, n)| n.clone()))
            .map(|n| backup.join("esp").join(n))
            .find(|p| p.is_dir());
        let Some(from) = from else {
            notes.push(format!(
                "the boot backup has no copy of an ESP: {name} stays empty"
            ));
            continue;
        };
        let m = Mount::new(&node(esp)?, "vfat").with_context(|| format!("mounting {name}"))?;
        let copied = tree::copy(&from, m.path()).with_context(|| format!("restoring {name}"));
        m.close()?;
        let copied = copied?;
        println!(
            "  {name}: {} files, {} (from esp/{})",
            copied.files,
            human(copied.bytes),
            from.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(notes)
}

struct Report {
    lines: Vec<String>,
    failed: Vec<String>,
}

/// Every restored root mounts and names in its fstab only filesystems that exist (else
/// the fstab is rewritten from the spec); UID 1000 is one user in every root.
fn check(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    pool: &SpecPart,
    restored: &[String],
) -> Result<Report> {
    let bindings = super::bind_disks(spec, disks, std::slice::from_ref(&pool.disk.id), true)?;
    let mut ids: Vec<String> = Vec::new();
    for b in &bindings {
        if let Some(g) = b.device.gpt() {
            for p in &g.partitions {
                ids.push(p.part_guid.to_lowercase());
                if let Some(u) = p.fs.as_ref().and_then(|f| f.uuid.clone()) {
                    ids.push(u.to_lowercase());
                }
            }
        }
    }
    let node = blockdev::partition_node(&device_of(&bindings, &pool.disk.id)?, pool.number);
    let mut report = Report {
        lines: vec![],
        failed: vec![],
    };
    let mut main_user: Option<(String, String)> = None;
    let roots = pool
        .part
        .subvolumes
        .iter()
        .filter(|s| s.root && restored.contains(&s.name));
    for root in roots {
        let name = &root.name;
        let m = match Mount::with_options(&node, "btrfs", Some(&format!("subvol={name}"))) {
            Ok(m) => m,
            Err(e) => {
                report.lines.push(format!("{name}: does not mount: {e}"));
                report.failed.push(format!("{name} does not mount"));
                continue;
            }
        };
        let mut line = format!("{name}: mounts");
        let fstab_path = m.path().join("etc/fstab");
        match std::fs::read_to_string(&fstab_path) {
            Ok(text) => {
                let named = verify::fstab_ids(&text);
                let missing: Vec<String> = named
                    .iter()
                    .filter(|(_, v)| !ids.contains(&v.to_lowercase()))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                if missing.is_empty() {
                    line.push_str(&format!("; /etc/fstab: {} UUIDs, all present", named.len()));
                } else {
                    let lookup = super::fstab::lookup(&bindings);
                    match fstab::render(spec, name, &lookup) {
                        Ok(new) => {
                            std::fs::rename(
                                &fstab_path,
                                m.path().join("etc/fstab.before-restore"),
                            )?;
                            crate::boot::loader::write_renamed(&fstab_path, new.as_bytes())?;
                            line.push_str(&format!(
                                "; /etc/fstab named {} that do not exist: rewritten from the \
                                 spec (the old one is etc/fstab.before-restore)",
                                missing.join(", ")
                            ));
                        }
                        Err(e) => {
                            line.push_str(&format!(
                                "; /etc/fstab names {}, which do not exist, and cannot be \
                                 rewritten: {e}",
                                missing.join(", ")
                            ));
                            report
                                .failed
                                .push(format!("{name}'s /etc/fstab names missing filesystems"));
                        }
                    }
                }
            }
            Err(_) => {
                line.push_str("; no /etc/fstab");
                report.failed.push(format!("{name} has no /etc/fstab"));
            }
        }
        match std::fs::read_to_string(m.path().join("etc/passwd"))
            .ok()
            .and_then(|p| verify::user_with_uid(&p, 1000))
        {
            Some(user) => {
                line.push_str(&format!("; UID 1000 is {user}"));
                match &main_user {
                    Some((first, in_root)) if *first != user => report.failed.push(format!(
                        "UID 1000 is {first} in {in_root} but {user} in {name}"
                    )),
                    Some(_) => {}
                    None => main_user = Some((user, name.clone())),
                }
            }
            None => {
                line.push_str("; no user with UID 1000");
                report
                    .failed
                    .push(format!("{name} has no user with UID 1000"));
            }
        }
        m.close()?;
        report.lines.push(line);
    }
    if report.lines.is_empty() {
        report
            .lines
            .push("no root subvolume was restored: nothing to check".into());
    }
    Ok(report)
}
