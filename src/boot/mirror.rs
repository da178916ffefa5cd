//! `lifeboat esp-sync` as a library call: ESP0 mirrored onto ESP1 after the guards
//! ([`esp_sync::check`]) and a printed plan ([`sync_plan::plan`]); the kernel-update hook
//! that runs it; the spec's ESP mount points.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{esp_sync, hook, sync_plan};
use crate::runlog;
use crate::spec::{PartType, Spec};
use crate::ui::Confirmation;

/// Mirror the ESP mounted at `from` onto the one mounted at `to`: prints the changes,
/// writes them after a confirmation (or `Confirmation::Yes`), unless it is a dry run.
pub fn run(from: &Path, to: &Path, go: Confirmation) -> Result<()> {
    let mountinfo = crate::mountinfo::read().context("reading /proc/self/mountinfo")?;
    esp_sync::check(from, to, &mountinfo)?;
    let _lock = crate::disklock::disk_of(&format!("the disk of {}", to.display()), to)?;

    let source = esp_sync::list(from)?;
    let dest = esp_sync::list(to)?;
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
    if go.dry_run() {
        println!("Dry run: nothing written.");
        return Ok(());
    }
    crate::ui::confirm_changes(go, &format!("Apply these changes to {}?", to.display()))?;
    if runlog::path().is_none() {
        runlog::start("esp-sync").ok();
    }
    runlog::line(&format!("esp-sync {} -> {}", from.display(), to.display()));
    esp_sync::apply(from, to, &actions, |a| runlog::line(&a.describe()))?;
    println!("Done: {} is a mirror of {}.", to.display(), from.display());
    Ok(())
}

/// Install the kernel-update hook under `root` that mirrors `from` onto `to`.
pub fn install_hook(root: &Path, from: &Path, to: &Path) -> Result<()> {
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

/// The ESPs' mount points, in spec order: ESP0 (the preserved disk's) first.
pub fn esp_mounts(spec: &Spec) -> Vec<PathBuf> {
    spec.disks_esp_first()
        .into_iter()
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
