//! The end of `lifeboat provision`: carry out the boot setup that [`setup::plan`] made
//! (fstab into the roots, systemd-boot on the ESPs, the mirror, the boot entries). Each step
//! runs even when an earlier one failed; the failures are reported together at the end.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::apply::mount::Mount;
use crate::blockdev;
use crate::boot::setup::{self, Facts, PartAt, Setup, Step};
use crate::boot::{efivars, esp_sync, fstab, loader};
use crate::cli::{BootEntriesArgs, EspSyncArgs, Selection, DEFAULT_LOADER};
use crate::plan::{Binding, Plan};
use crate::runlog;
use crate::spec::Spec;

/// What the plan and this system tell about the boot setup.
pub fn facts(plan: &Plan) -> Facts {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    Facts {
        written: plan
            .disks
            .iter()
            .filter(|d| !d.actions.is_empty())
            .map(|d| d.id.clone())
            .collect(),
        present: plan
            .disks
            .iter()
            .map(|d| {
                let is_loop =
                    blockdev::kernel_name(&d.device).is_ok_and(|name| name.starts_with("loop"));
                (d.id.clone(), is_loop)
            })
            .collect(),
        loader_available: Path::new(loader::SYSTEMD_BOOT).is_file(),
        efivarfs: esp_sync::mount_fstype(&mountinfo, Path::new(efivars::EFIVARS))
            == Some("efivarfs"),
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

/// Carry out the steps, on the disks as they are after provisioning.
pub fn run(spec: &Spec, sel: &Selection, setup: &Setup) -> Result<()> {
    if setup.steps.is_empty() {
        return Ok(());
    }
    let bindings = super::bind_disks(spec, &sel.disks, &[], true)?;
    let mut failed = Vec::new();
    for step in &setup.steps {
        println!("\nBoot setup: {}", step.describe());
        runlog::line(&format!("boot setup: {}", step.describe()));
        let result = match step {
            Step::Fstab { pool, roots } => write_fstabs(spec, &bindings, pool, roots),
            Step::Loader { esp } => install_loader(&bindings, esp),
            Step::Mirror { from, to } => mirror(spec, &bindings, from, to),
            Step::Entries => super::boot_entries(&BootEntriesArgs {
                spec: sel.spec.clone(),
                disks: sel.disks.clone(),
                loader: DEFAULT_LOADER.to_owned(),
                dry_run: false,
                yes: true,
            }),
        };
        if let Err(err) = result {
            let said = crate::ui::error_sentence(&err);
            println!("  failed: {said}");
            runlog::line(&format!("failed: {said}"));
            failed.push(step.describe());
        }
    }
    if !failed.is_empty() {
        bail!(
            "the disks are provisioned, but {} of the boot setup failed ({}); the messages \
             above say why",
            if failed.len() == 1 {
                "one step".to_owned()
            } else {
                format!("{} steps", failed.len())
            },
            failed.join("; ")
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
    let lookup = super::fstab::lookup(bindings);
    let pool_mount = Mount::with_options(&node(bindings, pool)?, "btrfs", Some("subvolid=5"))?;
    for root in roots {
        let dir = pool_mount.path().join(root);
        let target = dir.join("etc/fstab");
        if !dir.is_dir() {
            println!("  {root}: no such subvolume, skipped");
        } else if target.exists() {
            println!("  {root}: has an /etc/fstab already, kept");
        } else {
            let text = fstab::render(spec, root, &lookup)?;
            loader::write_renamed(&target, text.as_bytes())
                .with_context(|| format!("writing {root}/etc/fstab"))?;
            println!("  {root}: /etc/fstab written");
        }
    }
    pool_mount.close()?;
    Ok(())
}

fn install_loader(bindings: &[Binding], esp: &PartAt) -> Result<()> {
    let bytes = std::fs::read(loader::SYSTEMD_BOOT)
        .with_context(|| format!("reading {}", loader::SYSTEMD_BOOT))?;
    let mounted = Mount::new(&node(bindings, esp)?, "vfat")?;
    let changed = loader::install(mounted.path(), &bytes)
        .with_context(|| format!("installing systemd-boot on {esp}"))?;
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

fn mirror(spec: &Spec, bindings: &[Binding], from: &PartAt, to: &PartAt) -> Result<()> {
    let source = Mount::new(&node(bindings, from)?, "vfat")?;
    let dest = Mount::new(&node(bindings, to)?, "vfat")?;
    let result = super::esp_sync(&EspSyncArgs {
        from: Some(source.path().to_owned()),
        to: Some(dest.path().to_owned()),
        spec: spec.file.clone(),
        dry_run: false,
        yes: true,
        install_hook: None,
    });
    dest.close()?;
    source.close()?;
    result
}

/// The setup for this plan (see [`setup::plan`]).
pub fn plan(spec: &Spec, plan: &Plan) -> Setup {
    setup::plan(spec, &facts(plan))
}
