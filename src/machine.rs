//! The spec's disks bound to the devices of this machine: `--disk ID=DEVICE` first, then
//! the spec's match rules against the disks sysfs lists. Each call probes every disk it
//! looks at once; a command that needs the disks again after it wrote them probes again.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::disklock::DiskLocks;
use crate::plan::{Binding, PlanError};
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
/// live, and probed again under the lock. A disk to be written that the spec's rules do not
/// find (the dead disk) may be replaced: the disks that could take its place are listed and
/// the person types the serial of one (on the terminal, or a line on stdin); nothing typed
/// leaves the error that lists them and names `--disk`.
pub fn bind_for_writing(
    spec: &Spec,
    disks: &[(String, PathBuf)],
    required: &[String],
    scan: Scan,
    write: Option<&[String]>,
) -> Result<(Vec<Binding>, DiskLocks)> {
    let mut named = disks.to_vec();
    let mut picked: Vec<String> = Vec::new();
    // Each round binds one more disk by hand or ends, so this stops.
    let mut bindings = loop {
        let err = match bind_disks(spec, &named, required, scan) {
            Ok(bindings) => break bindings,
            Err(err) => err,
        };
        let Some(PlanError::NoMatch { id, devices, .. }) = err.downcast_ref::<PlanError>() else {
            return Err(err);
        };
        // Only a disk this run writes may be a blank stranger (never the backup drive).
        let writes = write.is_none_or(|ids| ids.contains(id));
        if !writes || devices.is_empty() || picked.contains(id) {
            return Err(err);
        }
        let Some(typed) = crate::ui::pick_replacement(spec, id, devices)? else {
            return Err(err);
        };
        let device = crate::plan::bind::pick(id, devices, &typed)?;
        crate::runlog::line(&format!(
            "{id}: picked {} by typing its serial",
            crate::plan::bind::describe_device(&device)
        ));
        named.push((id.clone(), device.path.clone()));
        picked.push(id.clone());
    };
    for b in bindings.iter_mut().filter(|b| picked.contains(&b.id)) {
        b.how = crate::plan::BoundBy::Picked;
    }
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

/// The command line's `--disk` bindings plus the disks picked at the prompt: what a later
/// probe of the same run must be given, so that it finds the picked replacement again (the
/// spec's rules still do not, and it is no longer blank).
pub fn named_disks(disks: &[(String, PathBuf)], bindings: &[Binding]) -> Vec<(String, PathBuf)> {
    let mut named = disks.to_vec();
    for b in bindings
        .iter()
        .filter(|b| b.how == crate::plan::BoundBy::Picked)
    {
        if !named.iter().any(|(id, _)| *id == b.id) {
            named.push((b.id.clone(), b.device.path.clone()));
        }
    }
    named
}

/// The device bound to disk `id`.
pub fn device_of(bindings: &[Binding], id: &str) -> Result<PathBuf> {
    crate::plan::bind::bound(bindings, id)
        .map(|b| b.device.path.clone())
        .with_context(|| format!("{id} was not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testutil::blank_device;
    use crate::plan::BoundBy;

    /// A later probe of the same run is given the picked disk, or it would not find it.
    #[test]
    fn the_picked_disk_is_named_for_the_next_probe() {
        let bound = |id: &str, name: &str, how| Binding {
            id: id.into(),
            device: blank_device(name, 3_000_000_000_000),
            how,
        };
        let given = vec![("usb".to_owned(), PathBuf::from("/dev/sdc"))];
        let bindings = [
            bound("disk0", "nvme0n1", BoundBy::Matched),
            bound("disk1", "sdb", BoundBy::Picked),
            bound("usb", "sdc", BoundBy::Explicit),
        ];
        assert_eq!(
            named_disks(&given, &bindings),
            [
                ("usb".to_owned(), PathBuf::from("/dev/sdc")),
                ("disk1".to_owned(), PathBuf::from("/dev/sdb")),
            ]
        );
    }
}
