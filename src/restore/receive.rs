//! Receiving chosen points into the pool: what the pool holds now (`probe_target`),
//! the plan against it (`plan_lines`), each point received into `@snapshots` through
//! lifeboat's progress pipe after an interrupted run's leftover is cleared
//! (`clear_incomplete`), each named in [`super::unwritten`] until it is on the disk, then
//! the writable snapshot under the canonical name (`canonical`). Shared by the backup drive
//! and the stream files kept in restic.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::inventory::{self, Point};
use super::pipe::{self, StreamOrigin};
use super::plan::{Canonical, CanonicalState, SubvolPlan, Target, SNAPSHOTS};
use super::select::Chain;
use super::unwritten::{self, Journal};
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
    let unwritten = unwritten::read(top)
        .with_context(|| format!("reading {} in {}", unwritten::FILE, top.display()))?;
    Ok(Target {
        received,
        unwritten,
        canonical,
    })
}

/// The plan of receiving `chains` into the pool mounted at `top` (or one about to be made).
pub(super) fn plan_lines(chains: &[Chain], top: Option<&Path>, stamp: &str) -> Result<String> {
    let target = match top {
        None => Target {
            received: vec![],
            unwritten: vec![],
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

/// How many subvolumes to receive side by side, and why (pure): `asked` (`--receives`),
/// else two, or one when the backup drive spins (`spins`, `None` for a source that is not a
/// local disk). Independent subvolumes received side by side use both cores (a receive is
/// bound by the CPU on fast disks); on one spinning disk two reads at once seek.
pub(super) fn side_by_side(asked: Option<usize>, spins: Option<bool>) -> (usize, String) {
    match (asked, spins) {
        (Some(n), _) => (n.max(1), "as --receives asks".to_owned()),
        (None, Some(true)) => (
            1,
            "the backup drive is a spinning disk, where two reads at once would seek \
             (--receives 2 to try)"
                .to_owned(),
        ),
        (None, Some(false)) => (
            2,
            "the backup drive does not spin (--receives 1 for one at a time)".to_owned(),
        ),
        (None, None) => (2, "--receives 1 for one at a time".to_owned()),
    }
}

/// The plan's line on how many of the `count` subvolumes are restored at a time, for
/// `lanes` from [`side_by_side`] (pure; none for a single subvolume). What the restore
/// does may be fewer at a time: subvolumes complete already are skipped.
pub(super) fn lanes_plan_line(lanes: &(usize, String), count: usize) -> Option<String> {
    let (n, why) = lanes;
    match (*n).min(count).max(1) {
        _ if count < 2 => None,
        1 => Some(format!("one subvolume at a time: {why}")),
        n => Some(format!("up to {n} subvolumes at a time: {why}")),
    }
}

/// Where a point's bytes come from, for [`receive_all`]; called from more than one thread
/// when subvolumes are received side by side.
pub(super) type Open<'a> = dyn Fn(&Point) -> Result<(Opened, SingleComponent)> + Sync + 'a;

/// Receive every point not yet complete, then give each subvolume its canonical name.
/// `open` says where a point's bytes come from; `lanes` (from [`side_by_side`]) how many
/// subvolumes are received at a time, each subvolume's chain in its order.
pub(super) fn receive_all(
    top: &Path,
    chains: &[Chain],
    stamp: &str,
    sizes: &[(String, u64)],
    open: &Open,
    lanes: (usize, String),
) -> Result<()> {
    let snapshots = top.join(SNAPSHOTS);
    std::fs::create_dir_all(&snapshots).context("making @snapshots")?;
    // The plan again, now against the pool as it really is after provisioning.
    let target = probe_target(top, chains)?;
    let plans = r::plan::plan(chains, &target, stamp);
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
    let to_receive = plans.iter().filter(|p| !p.is_done()).count();
    let lanes_n = lanes.0.min(to_receive).max(1);
    if to_receive > 1 {
        let line = match lanes_n {
            1 => format!("receiving one subvolume at a time: {}", lanes.1),
            n => format!("receiving {n} subvolumes at a time: {}", lanes.1),
        };
        println!("{line}");
        crate::runlog::line(&line);
    }
    let journal = Journal::new(top, target.unwritten);
    let out = ui::Shared::new();
    if lanes_n == 1 {
        for p in &plans {
            out.line(&format!("\n{}", p.subvol));
            receive_subvol(top, p, sizes, open, &journal, &out)?;
        }
        return Ok(());
    }
    let todo: Vec<&SubvolPlan> = plans.iter().collect();
    r::lanes::run(lanes_n, todo, &|p| {
        receive_subvol(top, p, sizes, open, &journal, &out)
    })
}

/// One subvolume: its points not yet complete received in order, then its canonical name.
fn receive_subvol(
    top: &Path,
    p: &SubvolPlan,
    sizes: &[(String, u64)],
    open: &Open,
    journal: &Journal,
    out: &ui::Shared,
) -> Result<()> {
    let snapshots = top.join(SNAPSHOTS);
    let journal_error = || format!("writing {} in {}", unwritten::FILE, top.display());
    if p.is_done() {
        out.line(&format!(
            "  already restored ({} from {SNAPSHOTS}/{})",
            p.subvol, p.from
        ));
        return Ok(());
    }
    for rcv in &p.receives {
        if rcv.done {
            out.line(&format!(
                "  {SNAPSHOTS}/{}: received by an earlier run",
                rcv.name
            ));
            continue;
        }
        let (opened, incoming) = open(&rcv.point)?;
        let source = opened.source();
        let arriving = snapshots.join(&incoming);
        clear_incomplete(top, &arriving, &incoming, journal.lists(&incoming), out)?;
        journal.begin(&incoming).with_context(journal_error)?;
        let total = sizes
            .iter()
            .find(|(path, _)| *path == rcv.point.path)
            .map(|(_, s)| *s);
        let mut bar = out.bytes(&rcv.name, total);
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
        // `btrfs receive` commits the received UUID but leaves the files' data in memory.
        // The point is on the disk before anything builds on it (the next incremental,
        // the writable snapshot) and before the journal lets it count as complete for a
        // re-run; its rate below is the disk's, not the page cache's.
        let flush = Instant::now();
        btrfs::sync(&snapshots)
            .with_context(|| format!("writing the received {SNAPSHOTS}/{incoming} to the disk"))?;
        let t = pipe::Transfer {
            secs: t.secs + flush.elapsed().as_secs_f64(),
            ..t
        };
        if incoming != rcv.name {
            // Within one directory: a read-only subvolume cannot change directories.
            std::fs::rename(&arriving, snapshots.join(&rcv.name)).with_context(|| {
                format!(
                    "renaming the received {SNAPSHOTS}/{incoming} to {}",
                    rcv.name
                )
            })?;
        }
        journal.end(&incoming).with_context(journal_error)?;
        out.line(&format!(
            "  {SNAPSHOTS}/{}: {} in {:.1} s ({}/s), on the disk",
            rcv.name,
            human(t.bytes),
            t.secs,
            human(t.rate() as u64)
        ));
    }
    canonical(top, p, out)
}

/// A subvolume where a point is about to be received: left by an interrupted receive (not
/// read-only or without a received UUID), or with both marks and `unwritten` (named in
/// the journal by a run cut short before the point was on the disk), it is deleted; with
/// both marks and not named, it is complete and in the way.
fn clear_incomplete(
    top: &Path,
    at: &Path,
    name: &str,
    unwritten: bool,
    out: &ui::Shared,
) -> Result<()> {
    if !at.exists() {
        return Ok(());
    }
    let show = btrfs::show(at)
        .with_context(|| format!("{SNAPSHOTS}/{name} is in the way and is not a subvolume"))?;
    if show.readonly && show.received && unwritten {
        out.line(&format!(
            "  removing {SNAPSHOTS}/{name}: an interrupted run received it and did not see it \
             written to the disk"
        ));
        btrfs::delete(at)?;
        return Ok(());
    }
    if show.readonly && show.received {
        bail!(
            "{SNAPSHOTS}/{name} already holds a received subvolume that is not the one chosen; \
             move it away (it is in {})",
            top.display()
        );
    }
    out.line(&format!(
        "  removing the incomplete {SNAPSHOTS}/{name} left by an interrupted run"
    ));
    btrfs::delete(at)?;
    Ok(())
}

fn canonical(top: &Path, p: &SubvolPlan, out: &ui::Shared) -> Result<()> {
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
            out.line(&format!("  the {} that was there is now {to}", p.subvol));
        }
    }
    btrfs::snapshot(&from, &at)?;
    out.line(&format!(
        "  {}: writable snapshot of {SNAPSHOTS}/{}",
        p.subvol, p.from
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_says_how_many_at_a_time_only_where_there_is_a_choice() {
        assert_eq!(lanes_plan_line(&side_by_side(None, Some(true)), 1), None);
        let one = lanes_plan_line(&side_by_side(None, Some(true)), 4).unwrap();
        assert!(one.starts_with("one subvolume at a time: the backup drive is a spinning disk"));
        let two = lanes_plan_line(&side_by_side(None, Some(false)), 4).unwrap();
        assert!(two.starts_with("up to 2 subvolumes at a time: "), "{two}");
        let asked = lanes_plan_line(&side_by_side(Some(8), None), 3).unwrap();
        assert_eq!(asked, "up to 3 subvolumes at a time: as --receives asks");
    }

    #[test]
    fn two_subvolumes_side_by_side_unless_the_backup_drive_spins_or_asked() {
        assert_eq!(side_by_side(None, Some(false)).0, 2);
        assert_eq!(side_by_side(None, None).0, 2);
        let (n, why) = side_by_side(None, Some(true));
        assert_eq!(n, 1);
        assert!(why.contains("spinning disk"), "{why}");
        assert_eq!(side_by_side(Some(3), Some(true)).0, 3);
        assert_eq!(side_by_side(Some(1), Some(false)).0, 1);
        assert_eq!(side_by_side(Some(0), None).0, 1);
    }
}
