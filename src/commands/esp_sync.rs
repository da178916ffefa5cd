//! `lifeboat esp-sync`: mirror ESP0 onto ESP1, after the guards and a printed plan.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::boot::{esp_sync, hook, sync_plan};
use crate::cli::EspSyncArgs;
use crate::disklock;
use crate::runlog;
use crate::spec::{PartType, Spec};

pub fn esp_sync(args: &EspSyncArgs) -> Result<()> {
    let (from, to) = endpoints(args)?;
    if let Some(root) = &args.install_hook {
        return install_hook(root, &from, &to);
    }
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    esp_sync::check(&from, &to, &mountinfo)?;
    let _lock = disklock::disk_of(&format!("the disk of {}", to.display()), &to)?;

    let source = esp_sync::list(&from)?;
    let dest = esp_sync::list(&to)?;
    let actions = sync_plan::plan(&source, &dest);
    if actions.is_empty() {
        println!(
            "{} already mirrors {}: nothing to do.",
            to.display(),
            from.display()
        );
        return Ok(());
    }
    println!(
        "Mirror {} onto {} ({} change{}):",
        from.display(),
        to.display(),
        actions.len(),
        if actions.len() == 1 { "" } else { "s" }
    );
    for a in &actions {
        println!("  {}", a.describe());
    }
    if args.dry_run {
        println!("Dry run: nothing written.");
        return Ok(());
    }
    super::confirm_changes(
        args.yes,
        &format!("Apply these changes to {}?", to.display()),
    )?;
    if runlog::path().is_none() {
        runlog::start("esp-sync").ok();
    }
    runlog::line(&format!("esp-sync {} -> {}", from.display(), to.display()));
    esp_sync::apply(&from, &to, &actions, |a| runlog::line(&a.describe()))?;
    println!("Done: {} is a mirror of {}.", to.display(), from.display());
    Ok(())
}

fn install_hook(root: &Path, from: &Path, to: &Path) -> Result<()> {
    let binary = std::fs::read("/proc/self/exe").context("reading this lifeboat binary")?;
    let outcome = hook::install(root, &binary, &hook::plugin(from, to))?;
    let plugin = root.join(hook::PLUGIN);
    match outcome {
        hook::Installed::AlreadyThere => println!(
            "{} and {} are already installed: nothing to do.",
            plugin.display(),
            root.join(hook::BINARY).display()
        ),
        _ => println!(
            "Installed {} (mirrors {} onto {} after each kernel update) and {}.",
            plugin.display(),
            from.display(),
            to.display(),
            root.join(hook::BINARY).display()
        ),
    }
    Ok(())
}

/// `--from`/`--to`, or the mount points of the spec's first two ESPs.
fn endpoints(args: &EspSyncArgs) -> Result<(PathBuf, PathBuf)> {
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        return Ok((from.clone(), to.clone()));
    }
    let spec = Spec::load(&args.spec)?;
    let esps = esp_mounts(&spec);
    let [first, second, ..] = esps.as_slice() else {
        bail!(
            "{} names {} ESP{} with a mount point; esp-sync needs two (or --from and --to)",
            args.spec.display(),
            esps.len(),
            if esps.len() == 1 { "" } else { "s" }
        );
    };
    Ok((
        args.from.clone().unwrap_or_else(|| first.clone()),
        args.to.clone().unwrap_or_else(|| second.clone()),
    ))
}

/// The ESPs' mount points, in spec order: ESP0 (the preserved disk's) first.
pub fn esp_mounts(spec: &Spec) -> Vec<PathBuf> {
    let mut disks: Vec<_> = spec.disks.iter().collect();
    disks.sort_by_key(|d| !d.preserve);
    disks
        .iter()
        .flat_map(|d| &d.partitions)
        .filter(|p| p.part_type == PartType::Esp)
        .filter_map(|p| p.mount.as_deref())
        .map(|m| Path::new(m).to_path_buf())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atlantis_spec_mirrors_boot_efi_onto_boot_efi2() {
        let spec = Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/atlantis.toml"))
            .unwrap();
        assert_eq!(
            esp_mounts(&spec),
            [PathBuf::from("/boot/efi"), PathBuf::from("/boot/efi2")]
        );
    }
}
