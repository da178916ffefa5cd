//! The spec's disks bound to the devices of this machine: `--disk ID=DEVICE` first, then
//! the spec's match rules against the disks sysfs lists. Each call probes every disk it
//! looks at once; a command that needs the disks again after it wrote them probes again.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::disklock::DiskLocks;
use crate::plan::Binding;
use crate::probe::Device;
use crate::spec::Spec;

/// The bindings, and every disk of the machine when they were listed (for questions about
/// the whole machine: is a partition of ours still on some disk?).
#[derive(Debug)]
pub struct Machine {
    pub bindings: Vec<Binding>,
    /// Empty when the machine's disks were not listed.
    pub listed: Vec<Device>,
}

/// How far binding looks beyond the disks named with `--disk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// List every disk of the machine, so each disk of the spec that its match rules find
    /// is bound (commands that report on or write the whole machine).
    AllDisks,
    /// List the machine's disks only when a disk in `required` is not bound by `--disk`
    /// (commands that need just those; with every one named, no other disk is probed).
    WhenRequiredUnbound,
}

/// Bind the spec's disks to devices: `--disk ID=DEVICE` first, then this machine's disks by
/// the spec's match rules, as far as `scan` says; a required disk that is not found is an
/// error.
pub fn bind_disks(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    required: &[String],
    scan: Scan,
) -> Result<Vec<Binding>> {
    Ok(probe(spec, disks, required, scan)?.bindings)
}

/// [`bind_disks`], keeping the listed disks. A `--disk` device that is also listed is
/// probed once.
pub fn probe(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    required: &[String],
    scan: Scan,
) -> Result<Machine> {
    for at in crate::apply::mount::release_stale() {
        println!(
            "Unmounted {}: left mounted by a lifeboat run that was killed",
            at.display()
        );
    }
    for (id, _) in disks {
        if spec.disk(id).is_none() {
            return Err(crate::plan::bind::unknown(spec, id, "--disk").into());
        }
    }
    let list = || -> Result<Vec<Device>> {
        let found = crate::probe::all_disks().context("listing the disks of this machine")?;
        for (path, why) in &found.unreadable {
            crate::runlog::line(&format!("skipped {}: {why}", path.display()));
        }
        Ok(found.disks)
    };
    let mut listed = if scan == Scan::AllDisks {
        list()?
    } else {
        Vec::new()
    };
    let mut explicit = Vec::new();
    for (id, path) in disks {
        let known = crate::blockdev::kernel_name(path)
            .ok()
            .and_then(|name| listed.iter().find(|d| d.kernel_name == name));
        let device = match known {
            Some(d) => d.clone(),
            None => crate::probe::device(path)
                .with_context(|| format!("probing {} for {id}", path.display()))?,
        };
        explicit.push((id.clone(), device));
    }
    let unbound = required
        .iter()
        .any(|r| !explicit.iter().any(|(id, _)| id == r));
    if scan == Scan::WhenRequiredUnbound && unbound {
        listed = list()?;
    }
    let mut bindings = crate::plan::bind(spec, explicit, &listed, required)?;
    look_for_orphans(spec, &mut bindings)?;
    Ok(Machine { bindings, listed })
}

/// [`bind_disks`] for a command that writes the bound disks named in `write` (every bound
/// disk when `None`): they are locked against other runs for as long as the returned locks
/// live, and probed again under the lock.
pub fn bind_for_writing(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    required: &[String],
    scan: Scan,
    write: Option<&[String]>,
) -> Result<(Vec<Binding>, DiskLocks)> {
    let mut bindings = bind_disks(spec, disks, required, scan)?;
    let locks = lock(spec, &mut bindings, write)?;
    Ok((bindings, locks))
}

/// Lock the bound disks named in `write` (every bound disk when `None`) and probe them
/// again under the lock (what was read before may have been another run's half-written
/// table).
pub fn lock(spec: &Spec, bindings: &mut [Binding], write: Option<&[String]>) -> Result<DiskLocks> {
    let mut locks = DiskLocks::default();
    let named = |b: &Binding| write.is_none_or(|ids| ids.contains(&b.id));
    for b in bindings.iter().filter(|b| named(b)) {
        locks.take(&b.id, &b.device.path)?;
    }
    for b in bindings.iter_mut().filter(|b| named(b)) {
        b.device = crate::probe::device(&b.device.path)
            .with_context(|| format!("probing {} for {}", b.device.path.display(), b.id))?;
    }
    // That probe knows only the usual partition starts.
    look_for_orphans(spec, bindings)?;
    Ok(locks)
}

/// A disk that looks blank may hold filesystems whose table was erased: look where the
/// spec's partitions would go, so that the plan does not format over them unasked.
fn look_for_orphans(spec: &Spec, bindings: &mut [Binding]) -> Result<()> {
    for b in bindings {
        if let Some(disk) = spec.disk(&b.id) {
            let starts = crate::plan::layout::starts(disk, b.device.size, b.device.sector_size);
            crate::probe::look_for_orphans(&mut b.device, &starts)
                .with_context(|| format!("probing {} for {}", b.device.path.display(), b.id))?;
        }
    }
    Ok(())
}

/// The device bound to disk `id`.
pub fn device_of(bindings: &[Binding], id: &str) -> Result<PathBuf> {
    crate::plan::bind::bound(bindings, id)
        .map(|b| b.device.path.clone())
        .with_context(|| format!("{id} was not found"))
}
