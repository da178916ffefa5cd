//! Receiving chosen points into the pool: what the pool holds now (`probe_target`),
//! the plan against it (`plan_lines`), each point received into `@snapshots` through
//! lifeboat's progress pipe after an interrupted run's leftover is cleared
//! (`clear_incomplete`), then the writable snapshot under the canonical name
//! (`canonical`). Shared by the backup drive and the stream files kept in restic.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::inventory::{self, Point};
use super::pipe::{self, StreamOrigin};
use super::plan::{Canonical, CanonicalState, SubvolPlan, Target, SNAPSHOTS};
use super::select::Chain;
use crate::btrfs;
use crate::exec::Cmd;
use crate::restore as r;
use crate::single_component::SingleComponent;
use crate::spec::human;
use crate::ui;

/// What the pool mounted (top level) at `top` holds: received points and canonical ones.
fn probe_target(top: &Path, chains: &[Chain]) -> Result<Target> {
    let list = |readonly: bool| -> Result<Vec<inventory::SubvolRow>> {
        Ok(inventory::parse_subvolume_list(&btrfs::list(
            top, readonly,
        )?))
    };
    let rows = list(false)?;
    let prefix = format!("{SNAPSHOTS}/");
    // Complete: read-only, with a received UUID (btrfs receive sets both at its end).
    let received = list(true)?
        .into_iter()
        .filter(|row| row.received_uuid.is_some())
        .filter_map(|row| {
            let name = row.path.strip_prefix(&prefix)?;
            (!name.contains('/')).then_some((name.to_owned(), row.uuid?))
        })
        .collect();
    let canonical = chains
        .iter()
        .map(|c| {
            let found = match rows.iter().find(|row| row.path == c.subvol) {
                None => CanonicalState::Absent,
                Some(row) => {
                    let empty = std::fs::read_dir(top.join(&c.subvol))
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false);
                    if empty {
                        CanonicalState::Empty
                    } else {
                        CanonicalState::HasData(row.parent_uuid)
                    }
                }
            };
            (c.subvol.clone(), found)
        })
        .collect();
    Ok(Target {
        received,
        canonical,
    })
}

/// The plan of receiving `chains` into the pool mounted at `top` (or one about to be made).
pub(super) fn plan_lines(chains: &[Chain], top: Option<&Path>, stamp: &str) -> Result<String> {
    let target = match top {
        None => Target {
            received: vec![],
            canonical: chains
                .iter()
                .map(|c| (c.subvol.clone(), CanonicalState::Empty))
                .collect(),
        },
        Some(top) => probe_target(top, chains)?,
    };
    Ok(r::plan::render(&r::plan::plan(chains, &target, stamp)))
}

/// The subvolumes with data in the pool mounted at `top` that receiving `chains` would move
/// aside.
pub(super) fn replaced(chains: &[Chain], top: &Path, stamp: &str) -> Result<Vec<String>> {
    let plans = r::plan::plan(chains, &probe_target(top, chains)?, stamp);
    Ok(plans
        .into_iter()
        .filter(|p| matches!(p.canonical, Canonical::MoveAside(_)))
        .map(|p| p.subvol)
        .collect())
}

/// Where a point's bytes come from, owned (a [`StreamOrigin`] borrows from it).
pub(super) enum Opened {
    Subvolume(PathBuf),
    File(PathBuf),
    Program(Cmd),
}

impl Opened {
    fn source(&self) -> StreamOrigin<'_> {
        match self {
            Opened::Subvolume(p) => StreamOrigin::Subvolume(p),
            Opened::File(p) => StreamOrigin::File(p),
            Opened::Program(cmd) => StreamOrigin::Program(cmd),
        }
    }
}

/// Receive every point not yet complete, then give each subvolume its canonical name.
/// `open` says where a point's bytes come from.
pub(super) fn receive_all(
    top: &Path,
    chains: &[Chain],
    stamp: &str,
    sizes: &[(String, u64)],
    open: &dyn Fn(&Point) -> Result<(Opened, SingleComponent)>,
) -> Result<()> {
    let snapshots = top.join(SNAPSHOTS);
    std::fs::create_dir_all(&snapshots).context("making @snapshots")?;
    // The plan again, now against the pool as it really is after provisioning.
    let plans = r::plan::plan(chains, &probe_target(top, chains)?, stamp);
    let sends = plans
        .iter()
        .flat_map(|p| &p.receives)
        .any(|r| !r.done && r.point.kind != inventory::Kind::Stream);
    if sends {
        match btrfs::send_v2() {
            Ok(()) => println!(
                "btrfs send: compressed extents are sent as they are (--proto 2 --compressed-data)"
            ),
            Err(why) => {
                println!("btrfs send: protocol 1, compressed extents are sent decompressed ({why})")
            }
        }
    }
    for p in &plans {
        println!("\n{}", p.subvol);
        if p.is_done() {
            println!(
                "  already restored ({} from {SNAPSHOTS}/{})",
                p.subvol, p.from
            );
            continue;
        }
        for rcv in &p.receives {
            if rcv.done {
                println!("  {SNAPSHOTS}/{}: received by an earlier run", rcv.name);
                continue;
            }
            let (opened, incoming) = open(&rcv.point)?;
            let source = opened.source();
            let arriving = snapshots.join(&incoming);
            clear_incomplete(top, &arriving, &incoming)?;
            let total = sizes
                .iter()
                .find(|(path, _)| *path == rcv.point.path)
                .map(|(_, s)| *s);
            let mut bar = ui::Bytes::new(&rcv.name, total);
            let sink = btrfs::receive(&snapshots);
            let moved = pipe::stream(source, &sink, &mut |b| bar.set(b));
            bar.finish();
            if let Err(pipe::PipeError::Refused(why)) = &moved {
                bail!(
                    "{}: {why}; lifeboat refuses this backup and stopped the receive before \
                     that command (move the file away, docs/restore.md: what lifeboat refuses)",
                    rcv.point.path
                );
            }
            let t = moved.with_context(|| format!("receiving {}", rcv.point.path))?;
            if incoming != rcv.name {
                // Within one directory: a read-only subvolume cannot change directories.
                std::fs::rename(&arriving, snapshots.join(&rcv.name)).with_context(|| {
                    format!(
                        "renaming the received {SNAPSHOTS}/{incoming} to {}",
                        rcv.name
                    )
                })?;
            }
            println!(
                "  {SNAPSHOTS}/{}: {} in {:.1} s ({}/s)",
                rcv.name,
                human(t.bytes),
                t.secs,
                human(t.rate() as u64)
            );
        }
        canonical(top, p)?;
    }
    Ok(())
}

/// A subvolume where a point is about to be received: left by an interrupted receive (not
/// read-only or without a received UUID) it is deleted; complete, it is in the way.
fn clear_incomplete(top: &Path, at: &Path, name: &str) -> Result<()> {
    if !at.exists() {
        return Ok(());
    }
    let show = btrfs::show(at)
        .with_context(|| format!("{SNAPSHOTS}/{name} is in the way and is not a subvolume"))?;
    if show.readonly && show.received {
        bail!(
            "{SNAPSHOTS}/{name} already holds a received subvolume that is not the one chosen; \
             move it away (it is in {})",
            top.display()
        );
    }
    println!("  removing the incomplete {SNAPSHOTS}/{name} left by an interrupted run");
    btrfs::delete(at)?;
    Ok(())
}

fn canonical(top: &Path, p: &SubvolPlan) -> Result<()> {
    let at = top.join(&p.subvol);
    let from = top.join(SNAPSHOTS).join(&p.from);
    match &p.canonical {
        Canonical::Keep => return Ok(()),
        Canonical::Create => {}
        Canonical::ReplaceEmpty => {
            btrfs::delete(&at)?;
        }
        Canonical::MoveAside(to) => {
            std::fs::rename(&at, top.join(to))
                .with_context(|| format!("renaming {} to {to}", p.subvol))?;
            println!("  the {} that was there is now {to}", p.subvol);
        }
    }
    btrfs::snapshot(&from, &at)?;
    println!(
        "  {}: writable snapshot of {SNAPSHOTS}/{}",
        p.subvol, p.from
    );
    Ok(())
}
