//! The end of `lifeboat provision`: the boot setup that [`setup::plan`] makes from what is
//! on the disks (fstab into the roots, the loader on the ESPs: systemd-boot, or the signed
//! chain under Secure Boot; the mirror, the boot entries), carried out in order and stopped
//! at the first step that fails, so that no boot entry is written for a loader that did not
//! arrive.

use std::path::Path;

use anyhow::{Context, Result};

use crate::apply::mount::Mount;
use crate::blockdev;
use crate::boot::setup::{self, Facts, PartAt, Setup, Step};
use crate::boot::{efivars, fstab, loader, on_disk, uefi};
use crate::plan::{Action, Binding, Plan};
use crate::runlog;
use crate::spec::{PartType, Spec};
use crate::ui::Confirmation;

/// What the disks (with `pending` still to be carried out) and this system tell about the
/// boot setup.
pub fn facts(spec: &Spec, bindings: &[Binding], pending: &Plan) -> Facts {
    let mountinfo = crate::mountinfo::read().unwrap_or_default();
    let present: Vec<(String, bool)> = bindings
        .iter()
        .map(|b| (b.id.clone(), b.device.kernel_name.starts_with("loop")))
        .collect();
    let efivarfs = crate::mountinfo::fstype_at(&mountinfo, Path::new(efivars::EFIVARS)).as_deref()
        == Some("efivarfs");
    let secure_boot = if efivarfs {
        efivars::SecureBoot::read(Path::new(efivars::EFIVARS))
    } else {
        efivars::SecureBoot::Unknown
    };
    let chain = loader::Chain::for_firmware(secure_boot);
    let loader = chain.read();
    let mut on_disk = on_disk::probe(spec, bindings, pending, loader.as_deref());
    // The firmware is asked only where entries could be written at all, and not for a disk
    // that gets a new table (its ESP's partition GUID changes, so no entry matches yet).
    let esp_disks: Vec<&str> = spec
        .disks
        .iter()
        .filter(|d| d.partitions.iter().any(|p| p.part_type == PartType::Esp))
        .map(|d| d.id.as_str())
        .collect();
    let new_table = pending.disks.iter().any(|d| {
        esp_disks.contains(&d.id.as_str())
            && d.actions
                .iter()
                .any(|a| matches!(a, Action::CreateGpt { .. } | Action::WipeDisk { .. }))
    });
    let all_real = esp_disks
        .iter()
        .all(|id| present.iter().any(|(p, is_loop)| p == id && !is_loop));
    if efivarfs && all_real && !new_table {
        on_disk.entries = uefi::firmware_current(spec, bindings, chain.entry_path());
    }
    Facts {
        present,
        loader_available: loader.is_some(),
        secure_boot,
        efivarfs,
        on_disk,
    }
}

/// The setup as the plan's last lines, shown before the confirmation.
pub fn render(setup: &Setup) -> String {
    let mut out = String::new();
    if !setup.steps.is_empty() {
        out.push_str("\nThen, so that the machine boots:\n");
        for step in &setup.steps {
            out.push_str(&format!("  - {}\n", step.describe()));
        }
    }
    if !setup.notices.is_empty() {
        out.push_str("\nNot done by this run:\n");
        for notice in &setup.notices {
            out.push_str(&format!("  - {notice}\n"));
        }
    }
    out
}

/// Plan the boot setup again from the disks as they are now and carry it out. Re-probing
/// here is the one extra look the steps really need: provisioning just made the tables,
/// filesystems and subvolumes that the setup works on, and the probe made before it saw
/// none of them. Stops at the first step that fails, with one sentence naming it.
pub fn run(spec: &Spec, disks: &[(String, std::path::PathBuf)], only: &[String]) -> Result<()> {
    crate::apply::pause_at("pause-before:boot-setup");
    let bindings = crate::machine::bind_disks(spec, disks, &[], crate::machine::Scan::AllDisks)?;
    let done = Plan {
        spec: spec.file.clone(),
        disks: Vec::new(),
    };
    let setup = setup::within(
        setup::plan(spec, &facts(spec, &bindings, &done)),
        spec,
        only,
    );
    let result = setup::carry_out(&setup.steps, |step| {
        println!("\nBoot setup: {}", step.describe());
        runlog::line(&format!("boot setup: {}", step.describe()));
        let result = match step {
            Step::Fstab { pool, roots } => write_fstabs(spec, &bindings, pool, roots),
            Step::Loader { esp, chain } => install_loader(&bindings, esp, *chain),
            Step::Mirror { from, to } => mirror(&bindings, from, to),
            Step::Entries { chain } => {
                uefi::write_for(spec, disks, chain.entry_path(), Confirmation::Yes)
            }
        };
        if let Err(err) = &result {
            runlog::line(&format!("failed: {}", crate::ui::error_sentence(err)));
        }
        result
    });
    if let Err((step, err)) = result {
        let later = setup.steps.iter().skip_while(|s| **s != step).count() - 1;
        anyhow::bail!(
            "the boot setup stopped at \"{}\": {}{}; running the same command again \
             retries it",
            step.describe(),
            crate::ui::error_sentence(&err),
            match later {
                0 => String::new(),
                1 => " (the step after it was not done)".to_owned(),
                n => format!(" (the {n} steps after it were not done)"),
            }
        );
    }
    Ok(())
}

fn node(bindings: &[Binding], at: &PartAt) -> Result<std::path::PathBuf> {
    let binding = bindings
        .iter()
        .find(|b| b.id == at.disk)
        .with_context(|| format!("{} is no longer found", at.disk))?;
    Ok(blockdev::partition_node(&binding.device.path, at.number))
}

fn write_fstabs(spec: &Spec, bindings: &[Binding], pool: &PartAt, roots: &[String]) -> Result<()> {
    let lookup = fstab::lookup(bindings);
    let part = spec
        .disk(&pool.disk)
        .and_then(|d| d.partitions.get(pool.number as usize - 1))
        .with_context(|| format!("{} has no partition {}", pool.disk, pool.number))?;
    // An encrypted pool is written through its opened container.
    let opened = if part.encrypt == crate::spec::Encryption::Luks2 {
        let disk = bindings
            .iter()
            .find(|b| b.id == pool.disk)
            .map(|b| b.device.path.clone())
            .with_context(|| format!("{} is no longer found", pool.disk))?;
        Some(crate::unlock::open(
            &pool.disk,
            &disk,
            pool.number,
            part,
            &mut crate::ui::Prompted,
        )?)
    } else {
        None
    };
    let device = match &opened {
        Some(o) => o.device().to_owned(),
        None => node(bindings, pool)?,
    };
    let written = write_fstabs_into(spec, &lookup, &device, roots);
    if let Some(o) = opened {
        o.close()?;
    }
    written
}

fn write_fstabs_into(
    spec: &Spec,
    lookup: &dyn Fn(&str, u32) -> Option<Option<fstab::PartitionFs>>,
    device: &Path,
    roots: &[String],
) -> Result<()> {
    let pool_mount = Mount::with_options(device, "btrfs", Some("subvolid=5"))?;
    for root in roots {
        let dir = pool_mount.path().join(root);
        let target = dir.join("etc/fstab");
        if !dir.is_dir() {
            println!("  {root}: no such subvolume, skipped");
        } else if target.exists() {
            println!("  {root}: has an /etc/fstab already, kept");
        } else {
            let tabs = fstab::render_tabs(spec, root, lookup)?;
            // The crypttab first: an fstab naming a container nothing opens cannot boot.
            if let Some(crypttab) = &tabs.crypttab {
                loader::write_renamed(&dir.join("etc/crypttab"), crypttab.as_bytes())
                    .with_context(|| format!("writing {root}/etc/crypttab"))?;
                println!("  {root}: /etc/crypttab written");
            }
            loader::write_renamed(&target, tabs.fstab.as_bytes())
                .with_context(|| format!("writing {root}/etc/fstab"))?;
            println!("  {root}: /etc/fstab written");
        }
    }
    pool_mount.close()?;
    Ok(())
}

fn install_loader(bindings: &[Binding], esp: &PartAt, chain: loader::Chain) -> Result<()> {
    let mut files = Vec::new();
    for (from, to) in chain.files() {
        let bytes = std::fs::read(from).with_context(|| format!("reading {from}"))?;
        files.push((*to, bytes));
    }
    let mounted = Mount::new(&node(bindings, esp)?, "vfat")?;
    let changed = loader::install(mounted.path(), &files)
        .with_context(|| format!("installing {} on {esp}", chain.on_esp()))?;
    mounted.close()?;
    println!(
        "  {}",
        if changed {
            "installed"
        } else {
            "already there"
        }
    );
    Ok(())
}

fn mirror(bindings: &[Binding], from: &PartAt, to: &PartAt) -> Result<()> {
    let source = Mount::new(&node(bindings, from)?, "vfat")?;
    let dest = Mount::new(&node(bindings, to)?, "vfat")?;
    let result = crate::boot::mirror::run(source.path(), dest.path(), Confirmation::Yes);
    dest.close()?;
    source.close()?;
    result
}

/// The setup the disks of `only` (all when empty) need once `pending` is carried out (see
/// [`setup::plan`] and [`setup::within`]).
pub fn plan(spec: &Spec, bindings: &[Binding], pending: &Plan, only: &[String]) -> Setup {
    setup::within(
        setup::plan(spec, &facts(spec, bindings, pending)),
        spec,
        only,
    )
}
