//! `lifeboat backup-boot SPEC`: /boot and the ESPs copied into `<meta>/boot/` (the
//! `role = "meta"` subvolume, e.g. myhost-meta), with
//! the record of every filesystem's UUID, for btrbk and restic to carry.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::apply::mount::Mount;
use crate::cli::BackupBootArgs;
use crate::plan::Binding;
use crate::restore::record::{Record, Recorded, BOOT_DIR, RECORD_FILE};
use crate::restore::{self, tree, SpecPart};
use crate::runlog;
use crate::spec::Spec;

pub fn backup_boot(args: &BackupBootArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let Some(pool) = restore::pool(&spec) else {
        bail!(
            "{} has no Btrfs pool with root subvolumes",
            spec.file.display()
        );
    };
    let meta_name = restore::meta_subvolume(&spec)?;
    if !pool.part.subvolumes.iter().any(|s| s.name == meta_name) {
        bail!(
            "the pool {} in {} has no subvolume {meta_name} (role = \"meta\"): the boot backup \
             lives there",
            pool.part.name,
            spec.file.display()
        );
    }
    let (bindings, _locks) = crate::machine::bind_for_writing(
        &spec,
        &args.disks,
        std::slice::from_ref(&pool.disk.id),
        crate::machine::Scan::AllDisks,
        Some(std::slice::from_ref(&pool.disk.id)),
    )?;
    // An encrypted pool through its container (open already when the system runs from it).
    let opened = match pool.part.encrypt {
        crate::spec::Encryption::Luks2 => {
            let disk = crate::machine::device_of(&bindings, &pool.disk.id)?;
            Some(crate::unlock::open(
                &pool.disk.id,
                &disk,
                pool.number,
                pool.part,
                &mut crate::ui::Prompted,
            )?)
        }
        crate::spec::Encryption::None => None,
    };
    let pool_dev = match &opened {
        Some(o) => o.device().to_owned(),
        None => node(&bindings, &pool)?,
    };
    let top =
        Mount::with_options(&pool_dev, "btrfs", Some("subvolid=5")).context("mounting the pool")?;
    let meta = top.path().join(meta_name);
    if !meta.is_dir() {
        bail!("the pool has no {meta_name} subvolume yet (run lifeboat provision)");
    }
    let partial = crate::atomic_file::partial_path(&meta.join(BOOT_DIR));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).context("removing an unfinished boot backup")?;
    }
    let result = copy_all(&spec, &bindings, &partial);
    let done = result.and_then(|lines| {
        let target = meta.join(BOOT_DIR);
        let old = meta.join(format!("{BOOT_DIR}.lifeboat-old"));
        if target.exists() {
            std::fs::rename(&target, &old).context("moving the previous boot backup aside")?;
        }
        std::fs::rename(&partial, &target).context("putting the new boot backup in place")?;
        if old.exists() {
            std::fs::remove_dir_all(&old).context("removing the previous boot backup")?;
        }
        Ok((lines, target))
    });
    let closed = top.close();
    let (lines, target) = done?;
    closed?;
    if let Some(o) = opened {
        o.close()?;
    }
    println!("Boot backup in {meta_name}/{BOOT_DIR}/ of the pool:");
    for line in lines {
        println!("  {line}");
    }
    runlog::line(&format!("boot backup written to {}", target.display()));
    Ok(())
}

fn node(bindings: &[Binding], at: &SpecPart) -> Result<std::path::PathBuf> {
    let binding = crate::plan::bind::bound(bindings, &at.disk.id)
        .with_context(|| format!("{} was not found", at.disk.id))?;
    Ok(binding.partition_node(at.number))
}

/// A filesystem read-only, or (already mounted read-write elsewhere, which the kernel may
/// not let be mounted read-only a second time) as it is.
fn mount_for_reading(node: &Path, fstype: &str) -> Result<Mount> {
    Mount::read_only(node, fstype, None)
        .or_else(|_| Mount::new(node, fstype))
        .with_context(|| format!("mounting {}", node.display()))
}

fn read_esp(node: &Path, to: &Path) -> Result<(u64, u64)> {
    let mut dev =
        std::fs::File::open(node).with_context(|| format!("opening {}", node.display()))?;
    let len = std::io::Seek::seek(&mut dev, std::io::SeekFrom::End(0))?;
    Ok(crate::apply::fat::extract(&mut dev, 0, len, to)?)
}

fn copy_all(spec: &Spec, bindings: &[Binding], into: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    if let Some(boot) = restore::boot_partition(spec) {
        if bindings.iter().any(|b| b.id == boot.disk.id) {
            let fs = boot.part.fs.map(|f| f.blkid_type()).unwrap_or("ext4");
            let m = mount_for_reading(&node(bindings, &boot)?, fs)?;
            let copied = tree::copy(m.path(), &into.join("boot")).context("copying /boot")?;
            m.close()?;
            lines.push(format!(
                "/boot ({} partition {}): {} files, {}",
                boot.disk.id,
                boot.number,
                copied.files,
                crate::spec::human(copied.bytes)
            ));
        }
    }
    for (esp, name) in restore::esps(spec) {
        if !bindings.iter().any(|b| b.id == esp.disk.id) {
            lines.push(format!("{name}: {} not found, not copied", esp.disk.id));
            continue;
        }
        // Read in-process, like the restore writes it: no vfat mount needed.
        let at = node(bindings, &esp)?;
        let (files, bytes) = read_esp(&at, &into.join("esp").join(&name))
            .with_context(|| format!("copying {name} ({})", at.display()))?;
        lines.push(format!(
            "{name} ({} partition {}): {files} files, {}",
            esp.disk.id,
            esp.number,
            crate::spec::human(bytes)
        ));
    }
    let record = record(spec, bindings);
    lines.push(format!(
        "{RECORD_FILE}: the UUIDs of {} filesystems",
        record.filesystems.len()
    ));
    std::fs::write(into.join(RECORD_FILE), record.to_toml())
        .with_context(|| format!("writing {RECORD_FILE}"))?;
    Ok(lines)
}

fn found_node(bindings: &[Binding], part: &restore::SpecPart) -> Option<std::path::PathBuf> {
    let b = bindings.iter().find(|b| b.id == part.disk.id)?;
    Some(crate::blockdev::partition_node(&b.device.path, part.number))
}

/// (type, UUID, label) of the filesystem in the open container with LUKS UUID `uuid`:
/// opened as `luks-<UUID>` by the installed system, or as lifeboat's mapping.
fn inner_fs(
    uuid: &str,
    node: &Option<std::path::PathBuf>,
) -> Option<(String, String, Option<String>)> {
    use crate::cryptsetup;
    let mut names = vec![cryptsetup::system_name(uuid)];
    if let Some(n) = node {
        names.push(cryptsetup::mapper_name(n));
    }
    let dev = names
        .iter()
        .map(|n| cryptsetup::mapper_path(n))
        .find(|p| p.exists())?;
    let value = |tag: &str| {
        crate::exec::Cmd::new("blkid")
            .args(["-c", "/dev/null", "-o", "value", "-s", tag])
            .arg(&dev)
            .read()
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Some((value("TYPE")?, value("UUID")?, value("LABEL")))
}

/// Every filesystem of the spec's disks as probed now.
pub fn record(spec: &Spec, bindings: &[Binding]) -> Record {
    let now = crate::time::now();
    let mut filesystems = Vec::new();
    for part in restore::spec_parts(spec) {
        let Some(gpt) =
            crate::plan::bind::bound(bindings, &part.disk.id).and_then(|b| b.device.gpt())
        else {
            continue;
        };
        let Some(found) = gpt.partitions.iter().find(|p| p.number == part.number) else {
            continue;
        };
        let Some(fs) = &found.fs else { continue };
        let Some(uuid) = &fs.uuid else { continue };
        filesystems.push(Recorded {
            disk: part.disk.id.clone(),
            number: part.number,
            fstype: fs.fstype.clone(),
            label: fs.label.clone(),
            uuid: uuid.clone(),
            part_guid: Some(found.part_guid.clone()),
            in_luks: false,
        });
        // The filesystem inside an open container (the running system's, or lifeboat's
        // mapping): a restore gives it its UUID again, so root=UUID= in the loader
        // entries stays valid.
        if fs.fstype == "crypto_LUKS" {
            if let Some(inner) = inner_fs(uuid, &found_node(bindings, &part)) {
                filesystems.push(Recorded {
                    disk: part.disk.id.clone(),
                    number: part.number,
                    fstype: inner.0,
                    label: inner.2,
                    uuid: inner.1,
                    part_guid: None,
                    in_luks: true,
                });
            }
        }
    }
    Record {
        written: restore::points::format_time(now),
        filesystems,
    }
}
