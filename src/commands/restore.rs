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
use crate::cli::{BootEntriesArgs, RestoreArgs, RestoreFrom, DEFAULT_LOADER};

use super::restore_restic::ResticSource;
use super::restore_restic_stream::StreamSource;
use super::restore_usb::UsbSource;
use crate::plan::{self, Action, Binding, Plan, Scope};
use crate::restore::plan::SNAPSHOTS;
use crate::restore::record::{Record, BOOT_DIR, RECORD_FILE};
use crate::restore::select::When;
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
    if args.from == RestoreFrom::Usb {
        required.extend(backup_disk.clone());
    }
    let (bindings, _locks) = super::bind_for_writing(
        &spec,
        &args.disks,
        &required,
        false,
        Some(std::slice::from_ref(&target_disk)),
    )?;

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

    if args.snapshot.is_some() && args.from == RestoreFrom::Usb {
        bail!("--snapshot names a restic snapshot: it goes with --from restic or restic-stream");
    }
    let now = now();
    let stamp = stamp(now);
    let source: Box<dyn Source> = match args.from {
        RestoreFrom::Usb => Box::new(UsbSource::open(
            &spec,
            &bindings,
            &spec_subvols,
            &args.subvols,
            when,
            now,
        )?),
        RestoreFrom::Restic => Box::new(ResticSource::open(&spec, args, when)?),
        RestoreFrom::ResticStream => {
            Box::new(StreamSource::open(&spec, &spec_subvols, args, when, now)?)
        }
    };
    let record = source.record();
    let estimate = source.bytes();

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
    if estimate > pool_size {
        source.close()?;
        bail!(
            "the chosen points hold about {} but the pool {} has {}: not enough room",
            human(estimate),
            pool.part.name,
            human(pool_size)
        );
    }
    println!(
        "  about {} to restore into {} ({})",
        human(estimate),
        pool.part.name,
        human(pool_size)
    );

    // What the pool holds now (nothing when it is about to be made).
    let pool_node = blockdev::partition_node(&target_dev, pool.number);
    let fresh_pool = makes_pool(&prov, pool.number);
    let plan_lines = if fresh_pool {
        source.plan_lines(None, &stamp)
    } else {
        let top = Mount::read_only(&pool_node, "btrfs", Some("subvolid=5"))
            .context("mounting the pool to see what it holds")?;
        let lines = source.plan_lines(Some(top.path()), &stamp);
        top.close()?;
        lines
    }?;

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
    println!("\nThen, from {} into {}:", source.name(), pool.part.name);
    print!("{plan_lines}");
    println!("\nThen: /boot and the ESPs of {target_disk} from {META}/{BOOT_DIR}, fstab checked, boot entries, checks.");
    if args.dry_run {
        return source.close();
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
    let restored = source.restore(top.path(), &stamp).context(
        "the restore stopped; running the same command again keeps what is complete and finishes the rest",
    );
    let boot = restored.and_then(|()| restore_boot(&spec, &args.disks, top.path(), &prov));
    let closed = top.close();
    let name = source.name();
    let subvols = source.subvols();
    let source_closed = source.close();
    let boot_lines = boot?;
    closed?;
    source_closed?;

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
    let report = check(&spec, &args.disks, &pool, &subvols)?;
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
        "\nRestored {} from {name}. Remove the rescue USB and reboot.",
        subvols.join(", ")
    );
    Ok(())
}

/// Where the subvolumes come from: the backup drive, or restic.
pub(super) trait Source {
    /// For messages: `LINBKUP`, `restic s3:…`.
    fn name(&self) -> String;
    /// The subvolumes it restores, in order.
    fn subvols(&self) -> Vec<String>;
    /// About how many bytes it writes into the pool.
    fn bytes(&self) -> u64;
    /// The filesystem record from the backup's Atlantis-meta, if it can be read now.
    fn record(&self) -> Option<Record>;
    /// The plan's lines for the pool mounted (read-only) at `top`, or for a pool about to
    /// be made (`None`).
    fn plan_lines(&self, top: Option<&Path>, stamp: &str) -> Result<String>;
    /// Restore into the pool mounted (top level, read-write) at `top`.
    fn restore(&self, top: &Path, stamp: &str) -> Result<()>;
    fn close(self: Box<Self>) -> Result<()>;
}

/// The filesystem record in `text` (read from `from`), reported in the preflight.
pub(super) fn record_from(text: &str, from: &str) -> Option<Record> {
    match Record::parse(text) {
        Ok(rec) => {
            println!(
                "  {META}/{BOOT_DIR}/{RECORD_FILE}: {} filesystems recorded on {}",
                rec.filesystems.len(),
                rec.written
            );
            Some(rec)
        }
        Err(e) => {
            println!("  {from} cannot be read ({e}); new UUIDs");
            None
        }
    }
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `20261125T1200`, for names of things moved aside.
pub(super) fn stamp(t: i64) -> String {
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
