//! One restore, start to end: preflight of the source, the size estimate, the plan
//! (provisioning of the Linux disk with the recorded UUIDs, then what each subvolume
//! gets), confirmation, provisioning, the receives, /boot and the ESPs, boot entries, the
//! checks with their fstab repair, and the report. The choices are made by the pure code
//! in [`crate::restore`] ([`select`](super::select), [`plan`](super::plan), the restic
//! plan in [`source::restic`](super::source::restic), [`report`](super::report::check)); this
//! file carries them out in order.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::plan::SNAPSHOTS;
use super::record::{BOOT_DIR, RECORD_FILE};
use super::source::restic::ResticSource;
use super::source::restic_stream::StreamSource;
use super::source::usb::UsbSource;
use super::source::{Kind, Source, UsedPoint};
use super::Options;
use super::{self as r, preflight, report, room, SpecPart};
use crate::apply::mount::Mount;
use crate::apply::{self};
use crate::blockdev;
use crate::disklock::DiskLocks;
use crate::machine::{self, Machine};
use crate::plan::{self, Action, Binding, Plan, Scope};
use crate::spec::{human, Encryption, Spec};
use crate::{runlog, ui, unlock};

/// What a finished restore did (for a drill's record).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `BACKUP`, `restic s3:…`.
    pub source: String,
    pub subvols: Vec<String>,
    pub points: Vec<UsedPoint>,
    /// The source's size of the chosen points (what was received into the pool).
    pub bytes: u64,
    /// Recorded filesystem UUIDs replaced by new ones (old, new), see
    /// [`Options::new_uuid_when_taken`].
    pub renamed: Vec<(String, String)>,
}

/// Restore the machine of `spec` as `args` says. Disks are probed twice: once to plan,
/// and once after the receives (provisioning rewrote the partition table and made the
/// filesystems, so their GUIDs and UUIDs are new) for /boot and the ESPs, the boot entries
/// and the checks.
pub fn run(spec: &Spec, args: &Options) -> Result<Option<Outcome>> {
    let when = args.when;
    let Some(pool) = r::pool(spec) else {
        bail!(
            "{} has no Btrfs pool with root subvolumes to restore into",
            spec.file.display()
        );
    };
    let luks = pool.part.encrypt == Encryption::Luks2;
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
    let backup_disk = r::backup_part(spec).map(|p| p.disk.id.clone());
    let mut required = vec![target_disk.clone()];
    if args.from == Kind::Usb {
        required.extend(backup_disk.clone());
    }
    let (bindings, _locks) = machine::bind_for_writing(
        spec,
        &args.disks,
        &required,
        crate::machine::Scan::WhenRequiredUnbound,
        Some(std::slice::from_ref(&target_disk)),
    )?;

    // Never the backup drive, never a preserved disk, never the same device twice.
    if pool.disk.preserve {
        bail!("{target_disk} is marked preserve in the spec: a restore would have to write it");
    }
    let target_dev = machine::device_of(&bindings, &target_disk)?;
    for b in bindings.iter().filter(|b| b.id != target_disk) {
        if same_device(&b.device.path, &target_dev)? {
            bail!(
                "{} and {target_disk} are the same device ({}): refusing to restore onto it",
                b.id,
                target_dev.display()
            );
        }
    }

    if args.snapshot.is_some() && args.from == Kind::Usb {
        bail!("--snapshot names a restic snapshot: it goes with --from restic or restic-stream");
    }
    let now = now();
    let stamp = stamp(now);
    let mut source: Box<dyn Source> = match args.from {
        Kind::Usb => Box::new(UsbSource::open(
            spec,
            &bindings,
            &spec_subvols,
            &args.subvols,
            when,
            now,
        )?),
        Kind::Restic => Box::new(ResticSource::open(spec, args, when)?),
        Kind::ResticStream => Box::new(StreamSource::open(spec, &spec_subvols, args, when, now)?),
    };
    let record = source.record();
    let estimate = source.bytes();

    // Provisioning of the Linux disk, with the recorded UUIDs.
    let scope = Scope {
        only: vec![target_disk.clone()],
        wipe: args.wipe.clone(),
    };
    let mut prov = plan::plan(spec, &bindings, &scope, &mut || {
        uuid::Uuid::new_v4().to_string().to_uppercase()
    })?;
    let taken = match &record {
        Some(rec) => rec.apply_to(&mut prov),
        None => Vec::new(),
    };
    let renamed = if args.new_uuid_when_taken {
        renew_taken_btrfs_uuids(&mut prov)
    } else {
        Vec::new()
    };
    for (old, new) in &renamed {
        println!(
            "  the recorded Btrfs UUID {old} is on a device of this machine already: {new} instead"
        );
    }
    let pool_size = pool_size(&prov, &bindings, &pool)?;

    // What the pool holds now (nothing when it is about to be made), and the room in it.
    let pool_node = blockdev::partition_node(&target_dev, pool.number);
    let fresh_pool = makes_pool(&prov, pool.number);
    // An encrypted pool that exists is opened now (its key asked for before anything is
    // written: a wrong key stops here); a new one after provisioning made it.
    let mut pool_open = if luks && !fresh_pool {
        Some(unlock::open(
            &target_disk,
            &target_dev,
            pool.number,
            pool.part,
            &mut ui::Prompted,
        )?)
    } else {
        None
    };
    let pool_dev = |open: &Option<unlock::Opened>| {
        open.as_ref()
            .map_or_else(|| pool_node.clone(), |o| o.device().to_owned())
    };
    let (room, plan_lines, replaced) = if fresh_pool {
        (
            room::fresh(estimate, pool_size),
            source.plan_lines(None, &stamp),
            Ok(Vec::new()),
        )
    } else {
        let top = Mount::read_only(&pool_dev(&pool_open), "btrfs", Some("subvolid=5"))
            .context("mounting the pool to see what it holds")?;
        let available = room::available_at(top.path())
            .with_context(|| format!("reading the free space of {}", pool_node.display()))?;
        let lines = source.plan_lines(Some(top.path()), &stamp);
        let replaced = source.replaced(top.path(), &stamp);
        top.close()?;
        (room::existing(estimate, available), lines, replaced)
    };
    let plan_lines = plan_lines?;
    // Read the backup once where nothing on the target is at stake (preflight.rs).
    let streams = preflight::streams(&preflight::destroys(&prov), &replaced?);
    if source.streams() > 0 && streams.is_whole() {
        source.check_streams_whole()?;
    }
    if !room.fits() {
        source.close()?;
        bail!(
            "not enough room: the chosen points hold about {} and need about {} with Btrfs's \
             metadata, but the pool {} ({}{}) holds about {} of files; restore fewer \
             subvolumes (--subvol) or onto a bigger disk",
            human(estimate),
            human(room.needed),
            pool.part.name,
            human(pool_size),
            if fresh_pool { "" } else { ", as it is now" },
            human(room.usable)
        );
    }
    if let Some((dir, free)) = &args.room {
        if room.needed > *free {
            source.close()?;
            bail!(
                "not enough room: the chosen points need about {} but {} has only {} free",
                human(room.needed),
                dir.display(),
                human(*free)
            );
        }
    }
    println!(
        "  about {} to restore into {} ({}, about {} of it for files)",
        human(estimate),
        pool.part.name,
        human(pool_size),
        human(room.usable)
    );

    println!("\nRestore plan");
    if prov.is_empty() {
        println!("  {target_disk}: provisioned already; restoring into its pool");
    } else {
        print!("{}", prov.render());
        match &record {
            Some(_) => println!(
                "  The filesystems get their recorded UUIDs ({}/{BOOT_DIR}/{RECORD_FILE}): {}",
                spec.meta_subvolume().unwrap_or_default(),
                taken.len()
            ),
            None => println!(
                "  No {RECORD_FILE} in the backup: new UUIDs; each root's /etc/fstab is rewritten"
            ),
        }
    }
    println!("\nThen, from {} into {}:", source.name(), pool.part.name);
    print!("{plan_lines}");
    let lanes = source.side_by_side(args.receives);
    if let Some(line) = r::receive::lanes_plan_line(&lanes, source.subvols().len()) {
        println!("  {line}");
    }
    if source.streams() > 0 {
        println!("  {}", streams.line());
    }
    for line in source.not_carried() {
        println!("  {line}");
    }
    match spec.meta_subvolume() {
        Some(meta) => println!("\nThen: /boot and the ESPs of {target_disk} from {meta}/{BOOT_DIR}, fstab checked, boot entries, checks."),
        None => println!("\nThen: fstab checked, boot entries, checks (no role = \"meta\" subvolume: /boot and the ESPs are not restored)."),
    }
    if args.confirmation.dry_run() {
        return source.close().map(|()| None);
    }
    if !prov.is_empty() {
        ui::confirm_plan(&prov, args.confirmation)?;
    } else {
        ui::confirm_changes(args.confirmation, "Restore into this pool?")?;
    }

    // Provision.
    if !prov.is_empty() {
        println!("\nProvisioning {target_disk}");
        let mut steps = ui::Steps::new(prov.action_count());
        let result = apply::apply(&prov, &mut steps, &mut ui::Prompted);
        steps.finish();
        result.context("provisioning stopped; running the same restore again finishes the rest")?;
    }

    if luks && pool_open.is_none() {
        pool_open = Some(unlock::open(
            &target_disk,
            &target_dev,
            pool.number,
            pool.part,
            &mut ui::Prompted,
        )?);
    }
    let pool_device = pool_dev(&pool_open);

    // Receive.
    let receiving = r::pool_options::for_receiving(pool.part);
    let top = Mount::with_options(&pool_device, "btrfs", Some(&receiving))
        .with_context(|| format!("mounting the pool with {receiving}"))?;
    let writeback = match r::writeback::cap(&pool_device) {
        Ok(capped) => {
            println!("{}", capped.line());
            crate::runlog::line(&capped.line());
            Some(capped)
        }
        Err(why) => {
            let line = format!("writeback: the kernel's defaults ({why})");
            println!("{line}");
            crate::runlog::line(&line);
            None
        }
    };
    let restored = source
        .restore(top.path(), &stamp, args.receives)
        .map_err(|err| {
            if room::is_out_of_space(&err) {
                // A re-run would fill the pool the same way: say what would help instead.
                err.context(format!(
                "the pool {} filled up during the restore (the estimate was about {}); running \
                 it again cannot finish: restore fewer subvolumes (--subvol) or onto a bigger disk",
                pool.part.name,
                human(estimate)
            ))
            } else {
                err.context(
                    "the restore stopped; running the same command again keeps what is complete \
                 and finishes the rest",
                )
            }
        });
    // The roots' fstabs follow a Btrfs UUID that had to be replaced (before the checks).
    let restored = restored.and_then(|()| {
        for line in rename_in_roots(&pool, top.path(), &renamed)? {
            println!("  {line}");
        }
        Ok(())
    });
    let efivarfs = crate::mountinfo::read()
        .map(|m| {
            crate::mountinfo::fstype_at(&m, Path::new(crate::boot::efivars::EFIVARS)).as_deref()
                == Some("efivarfs")
        })
        .unwrap_or(false);
    let after = restored
        .and_then(|()| probe_again(spec, args, &bindings, &pool, args.firmware && efivarfs));
    let boot = after.and_then(|(after, esp_locks)| {
        let notes = super::boot::restore(spec, &after.bindings, top.path(), &prov)?;
        Ok((after, esp_locks, notes))
    });
    drop(writeback);
    let closed = top.close();
    let name = source.name();
    let not_carried = source.not_carried();
    let subvols = source.subvols();
    let points = source.points();
    let source_closed = source.close();
    let (after, _esp_locks, boot_lines) = boot?;
    closed?;
    source_closed?;

    // Boot entries, then the checks.
    let mut notes = boot_lines;
    if !args.firmware {
        notes.push(
            "the firmware's boot entries were left alone (this restore is not for this machine's \
             firmware)"
                .into(),
        );
    } else if efivarfs {
        println!("\nBoot entries");
        crate::boot::uefi::write(
            spec,
            &after,
            crate::boot::loader::AUTO,
            ui::Confirmation::Yes,
        )
        .context("writing the boot entries")?;
    } else {
        notes.push(
            "efivarfs is not mounted (not booted in UEFI mode): no boot entries were written; \
             run `lifeboat boot-entries` from the rescue system booted in UEFI mode"
                .into(),
        );
    }
    let report = report::check_and_repair(
        spec,
        &after.bindings,
        &pool,
        pool_open.as_ref().map(|o| o.device()),
        &subvols,
    )?;
    if let Some(o) = pool_open {
        o.close()
            .context("closing the pool's LUKS container after the restore")?;
    }
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
    if let Some(path) = runlog::path() {
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
    for line in &not_carried {
        println!("Note: {line}.");
    }
    println!(
        "\nRestored {} from {name}. Remove the rescue USB and reboot.",
        subvols.join(", ")
    );
    Ok(Some(Outcome {
        source: name,
        subvols,
        points,
        bytes: estimate,
        renamed,
    }))
}

/// The second probe (see [`run`]), with the machine's disks listed so that the boot entries
/// can tell an entry of ours whose ESP is gone. When boot entries will be written, the ESPs'
/// disks are locked first (the entries name their partitions), so that this probe reads
/// them under the lock; one the first probe did not bind is locked and probed once more.
fn probe_again(
    spec: &Spec,
    args: &Options,
    bindings: &[Binding],
    pool: &SpecPart,
    efivarfs: bool,
) -> Result<(Machine, Vec<DiskLocks>)> {
    let esp_disks = if efivarfs {
        crate::boot::uefi::esp_disk_ids(spec)
    } else {
        Vec::new()
    };
    let mut locks = DiskLocks::default();
    for b in bindings.iter().filter(|b| esp_disks.contains(&b.id)) {
        locks.take(&b.id, &b.device.path)?;
    }
    let named = machine::named_disks(&args.disks, bindings);
    let mut after = machine::probe(
        spec,
        &named,
        std::slice::from_ref(&pool.disk.id),
        crate::machine::Scan::AllDisks,
    )?;
    let unlocked: Vec<String> = esp_disks
        .into_iter()
        .filter(|id| !bindings.iter().any(|b| b.id == *id))
        .collect();
    let late = if unlocked.is_empty() {
        DiskLocks::default()
    } else {
        machine::lock(spec, &mut after.bindings, Some(&unlocked))?
    };
    Ok((after, vec![locks, late]))
}

pub fn now() -> i64 {
    crate::time::now()
}

/// `20261125T1200`, for names of things moved aside.
pub fn stamp(t: i64) -> String {
    crate::time::minute_stamp(t)
}

fn same_device(a: &Path, b: &Path) -> Result<bool> {
    Ok(blockdev::dev_numbers(a)? == blockdev::dev_numbers(b)?)
}

/// Each root subvolume's /etc/fstab (under the pool's top at `top`) with the replaced
/// UUIDs; returns a line per file changed.
fn rename_in_roots(
    pool: &SpecPart,
    top: &Path,
    renamed: &[(String, String)],
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    if renamed.is_empty() {
        return Ok(lines);
    }
    for root in pool.part.subvolumes.iter().filter(|s| s.root) {
        let fstab = top.join(&root.name).join("etc/fstab");
        let Ok(text) = std::fs::read_to_string(&fstab) else {
            continue;
        };
        if let Some(new) = super::record::rename_uuids(&text, renamed) {
            std::fs::write(&fstab, new).with_context(|| format!("writing {}", fstab.display()))?;
            lines.push(format!("{}/etc/fstab: the pool's new UUID", root.name));
        }
    }
    Ok(lines)
}

/// Give every Btrfs the plan would make with a UUID some device here has already
/// (`blkid -U`) a new UUID; returns (old, new) for each.
fn renew_taken_btrfs_uuids(prov: &mut Plan) -> Vec<(String, String)> {
    let mut renamed = Vec::new();
    for action in prov.disks.iter_mut().flat_map(|d| d.actions.iter_mut()) {
        if let Action::Mkfs {
            fs: crate::spec::FsKind::Btrfs,
            uuid: Some(uuid),
            ..
        } = action
        {
            let taken = crate::exec::Cmd::new("blkid")
                .args(["-c", "/dev/null", "-U"])
                .arg(uuid.as_str())
                .read()
                .is_ok_and(|dev| !dev.trim().is_empty());
            if taken {
                let new = uuid::Uuid::new_v4().to_string();
                renamed.push((uuid.clone(), new.clone()));
                *uuid = new;
            }
        }
    }
    renamed
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
    let b = crate::plan::bind::bound(bindings, &pool.disk.id)
        .context("the pool's disk is not bound")?;
    let part = b
        .device
        .gpt()
        .and_then(|g| g.partitions.iter().find(|p| p.number == pool.number))
        .context("the pool's partition is not on the disk")?;
    Ok((part.last_lba + 1 - part.first_lba) * b.device.sector_size)
}
