//! `lifeboat health SPEC`: is the machine's backup healthy? The facts are gathered here
//! (read-only: the backup drive and the pool mounted read-only, the ESPs read in-process,
//! the firmware's variables read, drills.jsonl read); [`evaluate`] turns them into
//! findings (pure).

pub mod evaluate;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::apply::mount::Mount;
use crate::drill::record;
use crate::plan::Binding;
use crate::restore::{self as r, inventory};
use crate::spec::Spec;
use evaluate::{BootOrder, Facts, Finding, Newest};

/// What `health` reads besides the spec.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--disk ID=DEVICE`.
    pub disks: Vec<(String, PathBuf)>,
    /// drills.jsonl.
    pub drills: PathBuf,
}

/// Gather the facts and evaluate them.
pub fn run(spec: &Spec, opts: &Options) -> Result<Vec<Finding>> {
    let facts = gather(spec, opts)?;
    Ok(evaluate::evaluate(&facts, &spec.health))
}

pub fn gather(spec: &Spec, opts: &Options) -> Result<Facts> {
    let now = crate::restore::run::now();
    let subvols: Vec<String> = r::pool(spec)
        .map(|p| {
            p.part
                .subvolumes
                .iter()
                .map(|s| s.name.clone())
                .filter(|n| n != crate::restore::plan::SNAPSHOTS)
                .collect()
        })
        .unwrap_or_default();
    // Every disk the rules find; none is required (a missing one is a finding).
    let bindings =
        crate::machine::bind_disks(spec, &opts.disks, &[], crate::machine::Scan::AllDisks)?;
    let mut fill = Vec::new();
    let backup_name = r::backup_name(spec);

    let usb = match r::backup_drive::backup_partition(spec, &bindings) {
        Err(e) => Err(format!("{e:#}")),
        Ok(node) => match Mount::read_only(&node, "btrfs", Some("subvolid=5")) {
            Err(e) => Err(format!("mounting {backup_name} read-only: {e}")),
            Ok(m) => {
                let inv = inventory::scan(m.path(), &spec.backup_dirs(), &spec.machine.host, now);
                fill.push((backup_name.clone(), usage(m.path())));
                let _ = m.close();
                inv.map_err(|e| e.to_string()).map(|inv| {
                    inv.subvols
                        .iter()
                        .filter_map(|g| {
                            g.points.first().map(|p| Newest {
                                subvol: g.subvol.clone(),
                                time: p.time,
                                name: p.path.clone(),
                            })
                        })
                        .collect()
                })
            }
        },
    };
    if usb.is_err() {
        fill.push((
            backup_name.clone(),
            Err("the backup drive was not read".into()),
        ));
    }

    let restic = spec.restic.as_ref().map(|rs| {
        let restic = crate::restic::spec::restic_for(spec).map_err(|e| format!("{e:#}"))?;
        let snaps = restic.snapshots().map_err(|e| e.to_string())?;
        Ok(snaps
            .iter()
            .filter(|s| {
                s.host == spec.machine.host && rs.tag.as_ref().is_none_or(|t| s.tags.contains(t))
            })
            .max_by_key(|s| s.time)
            .map(|s| (s.short_id.clone(), s.time)))
    });

    let last_drill = std::fs::read_to_string(&opts.drills).ok().and_then(|text| {
        record::read_all(&text)
            .0
            .into_iter()
            .filter(|d| d.host == spec.machine.host)
            .max_by_key(|d| d.time)
    });

    let esps = r::esps(spec);
    let esp_sync = (esps.len() >= 2).then(|| {
        let tree = |i: usize| -> Result<crate::boot::sync_plan::Tree, String> {
            let (esp, name) = &esps[i];
            let b =
                binding(&bindings, &esp.disk.id).ok_or(format!("{} was not found", esp.disk.id))?;
            crate::boot::on_disk::esp_tree(&b.device, esp.number)
                .ok_or(format!("{name} cannot be read as FAT"))
        };
        let (from, to) = (tree(0)?, tree(1)?);
        Ok(crate::boot::sync_plan::plan(&from, &to).len())
    });

    let boot_order = boot_order(spec);

    if let Some(pool) = r::pool(spec) {
        let name = pool
            .part
            .label
            .clone()
            .unwrap_or_else(|| pool.part.name.clone());
        let used = match binding(&bindings, &pool.disk.id) {
            None => Err(format!("{} was not found", pool.disk.id)),
            Some(b) => {
                let node = b.partition_node(pool.number);
                match Mount::read_only(&node, "btrfs", Some("subvolid=5")) {
                    Err(e) => Err(format!("mounting it read-only: {e}")),
                    Ok(m) => {
                        let u = usage(m.path());
                        let _ = m.close();
                        u
                    }
                }
            }
        };
        fill.push((name, used));
    }

    Ok(Facts {
        now,
        subvols,
        usb,
        restic,
        last_drill,
        esp_sync,
        boot_order,
        fill,
    })
}

fn binding<'a>(bindings: &'a [Binding], id: &str) -> Option<&'a Binding> {
    crate::plan::bind::bound(bindings, id)
}

fn usage(path: &Path) -> Result<(u64, u64), String> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| e.to_string())?;
    let size = s.blocks() as u64 * s.fragment_size() as u64;
    let free = s.blocks_free() as u64 * s.fragment_size() as u64;
    Ok((size.saturating_sub(free), size))
}

fn boot_order(spec: &Spec) -> BootOrder {
    let mountinfo = crate::mountinfo::read().unwrap_or_default();
    let fw = match crate::boot::efivars::Firmware::open(&mountinfo) {
        Ok(fw) => fw,
        Err(e) => return BootOrder::Unknown(e.to_string()),
    };
    match fw.boot_entries() {
        Err(e) => BootOrder::Unknown(e.to_string()),
        Ok((existing, order)) => BootOrder::Known {
            ours: existing
                .iter()
                .filter(|e| {
                    e.entry
                        .as_ref()
                        .is_some_and(|b| crate::boot::entries::is_ours(&spec.machine.name, b))
                })
                .map(|e| e.id)
                .collect(),
            order,
        },
    }
}

/// The findings as lines, and as JSON.
pub fn render(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("{}\n", f.line())).collect()
}
