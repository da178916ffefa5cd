//! The work behind each subcommand. The binary's `main` only parses and dispatches.

mod backup_boot;
mod boot_entries;
mod check;
mod disks;
mod esp_sync;
mod fstab;
mod inventory;
mod menu;
mod provision;
mod provision_boot;
mod restore;
mod restore_restic;
mod restore_restic_stream;
mod restore_usb;
mod stage;

pub use backup_boot::backup_boot;
pub use boot_entries::boot_entries;
pub use check::check;
pub use disks::disks;
pub use esp_sync::esp_sync;
pub use fstab::fstab;
pub use inventory::inventory;
pub use menu::menu;
pub use provision::{plan, provision};
pub use restore::restore;
pub use stage::stage;

/// restic with the spec's profile under the process environment.
fn restic_for(spec: &crate::spec::Spec) -> anyhow::Result<crate::restic::Restic> {
    let (env_file, password_file) = match &spec.restic {
        Some(r) => (r.env_file.as_deref(), r.password_file.as_deref()),
        None => (None, None),
    };
    // A profile the spec names but that is not there is fine when the environment has
    // the repository; a profile that is there must be private.
    let from_env = crate::restic::Profile::from_process();
    if let Some(f) = env_file.filter(|f| !f.exists()) {
        if !from_env.iter().any(|(k, _)| k == "RESTIC_REPOSITORY") {
            anyhow::bail!(
                "the provider profile {} named in the spec's [restic] env_file does not exist: \
                 copy a template from configs/providers/ there and fill it in (chmod 600), or set \
                 RESTIC_REPOSITORY and the AWS_* variables",
                f.display()
            );
        }
    }
    let env_file = env_file.filter(|f| f.exists());
    let password_file = password_file.filter(|f| f.exists());
    let profile = crate::restic::Profile::load(env_file, password_file, &from_env)?;
    Ok(crate::restic::Restic::new(profile))
}

/// After printed changes: `--yes`, or a yes typed at the terminal; without a terminal and
/// without `--yes`, nothing is written.
fn confirm_changes(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !crate::ui::interactive() {
        anyhow::bail!("not confirmed: pass --yes to apply these changes without a terminal");
    }
    if !crate::ui::confirm(question)? {
        anyhow::bail!("not confirmed; nothing written");
    }
    Ok(())
}

/// [`bind_disks`] for a command that writes the bound disks named in `write` (every bound
/// disk when `None`): they are locked against other runs for as long as the returned locks
/// live, and probed again under the lock.
fn bind_for_writing(
    spec: &crate::spec::Spec,
    disks: &[(String, std::path::PathBuf)],
    required: &[String],
    everything: bool,
    write: Option<&[String]>,
) -> anyhow::Result<(Vec<crate::plan::Binding>, crate::disklock::DiskLocks)> {
    let mut bindings = bind_disks(spec, disks, required, everything)?;
    let locks = crate::disklock::lock_bindings(&mut bindings, write)?;
    // Locking probed the disks again; that probe knows only the usual partition starts.
    look_for_orphans(spec, &mut bindings)?;
    Ok((bindings, locks))
}

/// Bind the spec's disks to devices: `--disk ID=DEVICE` first, then this machine's disks by
/// the spec's match rules. The machine's disks are listed when `everything` is asked for or
/// a disk in `required` is still unbound; a required disk that is not found is an error.
fn bind_disks(
    spec: &crate::spec::Spec,
    disks: &[(String, std::path::PathBuf)],
    required: &[String],
    everything: bool,
) -> anyhow::Result<Vec<crate::plan::Binding>> {
    use anyhow::Context;
    for at in crate::apply::mount::release_stale() {
        println!(
            "Unmounted {}: left mounted by a lifeboat run that was killed",
            at.display()
        );
    }
    let mut explicit = Vec::new();
    for (id, path) in disks {
        if spec.disk(id).is_none() {
            return Err(crate::plan::bind::unknown(spec, id, "--disk").into());
        }
        let device = crate::probe::device(path)
            .with_context(|| format!("probing {} for {id}", path.display()))?;
        explicit.push((id.clone(), device));
    }
    let unbound = required
        .iter()
        .any(|r| !explicit.iter().any(|(id, _)| id == r));
    let candidates = if everything || unbound {
        let found = crate::probe::all_disks().context("listing the disks of this machine")?;
        for (path, why) in &found.unreadable {
            crate::runlog::line(&format!("skipped {}: {why}", path.display()));
        }
        found.disks
    } else {
        Vec::new()
    };
    let mut bound = crate::plan::bind(spec, explicit, &candidates, required)?;
    look_for_orphans(spec, &mut bound)?;
    Ok(bound)
}

/// A disk that looks blank may hold filesystems whose table was erased: look where the
/// spec's partitions would go, so that the plan does not format over them unasked.
fn look_for_orphans(
    spec: &crate::spec::Spec,
    bindings: &mut [crate::plan::Binding],
) -> anyhow::Result<()> {
    use anyhow::Context;
    for b in bindings {
        if let Some(disk) = spec.disk(&b.id) {
            let starts = crate::plan::layout::starts(disk, b.device.size, b.device.sector_size);
            crate::probe::look_for_orphans(&mut b.device, &starts)
                .with_context(|| format!("probing {} for {}", b.device.path.display(), b.id))?;
        }
    }
    Ok(())
}
