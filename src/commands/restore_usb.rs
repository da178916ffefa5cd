//! `lifeboat restore --from usb`: the backup drive (LINBKUP) as the source. Points are
//! chosen by [`crate::restore::select`], planned by [`crate::restore::plan`], checked
//! whole before anything is written, and received through lifeboat's progress pipe.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::restore::Source as RestoreSource;
use crate::apply::mount::Mount;
use crate::exec::Cmd;
use crate::plan::Binding;
use crate::restore::inventory::{self, Kind, Point};
use crate::restore::pipe::{self, Source};
use crate::restore::plan::{Canonical, Found, SubvolPlan, Target, SNAPSHOTS};
use crate::restore::record::{Record, BOOT_DIR, RECORD_FILE};
use crate::restore::select::{self, Chain, When};
use crate::restore::{self as r, BACKUP_LABEL, META};
use crate::single_component::SingleComponent;
use crate::spec::{human, Spec};
use crate::ui;

pub(super) struct UsbSource {
    usb: Mount,
    chains: Vec<Chain>,
    estimate: Estimate,
    record: Option<Record>,
}

impl UsbSource {
    /// Mount the backup drive read-only, choose the points, check them.
    pub(super) fn open(
        spec: &Spec,
        bindings: &[Binding],
        spec_subvols: &[String],
        asked: &[String],
        when: When,
        now: i64,
    ) -> Result<UsbSource> {
        let usb_node = super::inventory::backup_partition(spec, bindings)?;
        let usb = Mount::read_only(&usb_node, "btrfs", Some("subvolid=5"))
            .with_context(|| format!("mounting the backup drive {BACKUP_LABEL} read-only"))?;
        let inv = inventory::scan(usb.path(), &spec.backup_dirs(), &spec.machine.host, now)
            .with_context(|| format!("reading the restore points on {}", usb_node.display()))?;
        for w in &inv.warnings {
            eprintln!("warning: {w}");
        }
        let wanted: Vec<String> = if asked.is_empty() {
            let with_points: Vec<String> = spec_subvols
                .iter()
                .filter(|s| inv.subvols.iter().any(|g| &g.subvol == *s))
                .cloned()
                .collect();
            for s in spec_subvols.iter().filter(|s| !with_points.contains(s)) {
                println!("{s}: no restore points on the backup drive; it stays as provisioning makes it (empty)");
            }
            for g in inv
                .subvols
                .iter()
                .filter(|g| !spec_subvols.contains(&g.subvol))
            {
                println!("{}: not a subvolume of the spec; not restored", g.subvol);
            }
            if with_points.is_empty() {
                bail!("the backup drive holds no restore points for any subvolume of the spec");
            }
            with_points
        } else {
            asked.to_vec()
        };
        let chains = select::select(&inv, &wanted, when, META)?;
        println!("\nPreflight (nothing is written yet):");
        let estimate = preflight(usb.path(), &chains)?;
        let record = read_record(usb.path(), &chains);
        Ok(UsbSource {
            usb,
            chains,
            estimate,
            record,
        })
    }
}

impl RestoreSource for UsbSource {
    fn name(&self) -> String {
        BACKUP_LABEL.to_owned()
    }

    fn subvols(&self) -> Vec<String> {
        self.chains.iter().map(|c| c.subvol.clone()).collect()
    }

    fn bytes(&self) -> u64 {
        self.estimate.bytes
    }

    fn record(&self) -> Option<Record> {
        self.record.clone()
    }

    fn plan_lines(&self, top: Option<&Path>, stamp: &str) -> Result<String> {
        plan_lines(&self.chains, top, stamp)
    }

    fn restore(&self, top: &Path, stamp: &str) -> Result<()> {
        let usb = self.usb.path();
        receive_all(top, &self.chains, stamp, &self.estimate.per_point, &|p| {
            on_drive(usb, p)
        })
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.usb.close()?)
    }
}

/// How much will be received, in all and per point (by path on the backup drive).
struct Estimate {
    bytes: u64,
    per_point: Vec<(String, u64)>,
}

/// Every point readable, every stream whole (`btrfs receive --dump` reads it to the end and
/// checks each command's CRC), every subvolume read-only (so it can be sent).
fn preflight(usb: &Path, chains: &[Chain]) -> Result<Estimate> {
    let mut est = Estimate {
        bytes: 0,
        per_point: vec![],
    };
    for chain in chains {
        for p in &chain.points {
            let path = usb.join(&p.path);
            let size = match p.kind {
                Kind::Stream => {
                    let mut bar = ui::Bytes::new(&format!("checking {}", p.path), p.size);
                    let dump = Cmd::new("btrfs").args(["receive", "--dump"]);
                    let checked = pipe::stream(
                        Source::File {
                            path: &path,
                            compressed: p.compressed,
                        },
                        &dump,
                        &mut |b| bar.set(b),
                    );
                    bar.finish();
                    if let Err(pipe::PipeError::Refused(why)) = &checked {
                        bail!(
                            "{}: {why}; lifeboat refuses this backup, nothing was written \
                             (docs/restore.md: what lifeboat refuses)",
                            p.path
                        );
                    }
                    let t = checked.with_context(|| {
                        format!("{} is damaged or unreadable; nothing was written", p.path)
                    })?;
                    println!("  {}: stream whole ({})", p.path, human(t.bytes));
                    t.bytes
                }
                Kind::Btrbk | Kind::Snapper => {
                    let show = Cmd::new("btrfs")
                        .args(["subvolume", "show"])
                        .arg(&path)
                        .read()
                        .with_context(|| {
                            format!("{} cannot be read; nothing was written", p.path)
                        })?;
                    let readonly = show
                        .lines()
                        .any(|l| l.trim().starts_with("Flags:") && l.contains("readonly"));
                    if !readonly {
                        bail!(
                            "{} is not read-only, so it cannot be sent (a snapshot that is \
                             still being written?); nothing was written",
                            p.path
                        );
                    }
                    // A walk over every file: on a large home it takes a while, so say so.
                    println!(
                        "  {}: read-only subvolume; measuring it for the ETA …",
                        p.path
                    );
                    let bytes = allocated(&path);
                    println!("    about {}", human(bytes));
                    bytes
                }
            };
            est.bytes += size;
            est.per_point.push((p.path.clone(), size));
        }
    }
    Ok(est)
}

/// Bytes the files under `dir` occupy (an estimate of the stream's size, for the ETA).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            }
            total += meta.blocks() * 512;
        }
    }
    total
}

/// The filesystem record in the chosen Atlantis-meta point, when that point is a subvolume
/// on the drive (a stream cannot be looked into before it is received).
fn read_record(usb: &Path, chains: &[Chain]) -> Option<Record> {
    let meta = chains.iter().find(|c| c.subvol == META)?;
    let point = meta.chosen();
    if point.kind == Kind::Stream {
        println!("  {META} comes from a stream: the filesystems get new UUIDs");
        return None;
    }
    let path = usb.join(&point.path).join(BOOT_DIR).join(RECORD_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    super::restore::record_from(&text, &format!("{}/{BOOT_DIR}/{RECORD_FILE}", point.path))
}

/// What the pool mounted (top level) at `top` holds: received points and canonical ones.
fn probe_target(top: &Path, chains: &[Chain]) -> Result<Target> {
    let list = |readonly: bool| -> Result<Vec<inventory::SubvolRow>> {
        let mut cmd = Cmd::new("btrfs").args(["subvolume", "list", "-u", "-q", "-R"]);
        if readonly {
            cmd = cmd.arg("-r");
        }
        Ok(inventory::parse_subvolume_list(&cmd.arg(top).read()?))
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
                None => Found::Absent,
                Some(row) => {
                    let empty = std::fs::read_dir(top.join(&c.subvol))
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false);
                    if empty {
                        Found::Empty
                    } else {
                        Found::HasData(row.parent_uuid)
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
                .map(|c| (c.subvol.clone(), Found::Empty))
                .collect(),
        },
        Some(top) => probe_target(top, chains)?,
    };
    Ok(r::plan::render(&r::plan::plan(chains, &target, stamp)))
}

/// Where a point's bytes come from, owned (a [`Source`] borrows from it).
pub(super) enum Opened {
    Subvolume(PathBuf),
    File(PathBuf, bool),
    Program(Cmd, bool),
}

impl Opened {
    fn source(&self) -> Source<'_> {
        match self {
            Opened::Subvolume(p) => Source::Subvolume(p),
            Opened::File(p, compressed) => Source::File {
                path: p,
                compressed: *compressed,
            },
            Opened::Program(cmd, compressed) => Source::Program {
                cmd,
                compressed: *compressed,
            },
        }
    }
}

/// A point on the backup drive mounted at `usb`: its bytes, and the name `btrfs receive`
/// gives what it makes.
fn on_drive(usb: &Path, point: &Point) -> Result<(Opened, SingleComponent)> {
    let src = usb.join(&point.path);
    Ok(match point.kind {
        Kind::Stream => {
            let name = inventory::read_head(&src, point.compressed)
                .map_err(|e| anyhow::anyhow!("{}: {e}", point.path))?
                .name;
            (Opened::File(src, point.compressed), name)
        }
        Kind::Btrbk | Kind::Snapper => {
            let base = point.path.rsplit('/').next().unwrap_or_default();
            let name = SingleComponent::new(base)
                .map_err(|why| anyhow::anyhow!("{}: the name {base:?} {why}", point.path))?;
            (Opened::Subvolume(src), name)
        }
    })
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
            let sink = pipe::receive_into(&snapshots);
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
    let show = Cmd::new("btrfs")
        .args(["subvolume", "show"])
        .arg(at)
        .read()
        .with_context(|| format!("{SNAPSHOTS}/{name} is in the way and is not a subvolume"))?;
    let readonly = show
        .lines()
        .any(|l| l.trim().starts_with("Flags:") && l.contains("readonly"));
    let received = show
        .lines()
        .any(|l| l.trim().starts_with("Received UUID:") && !l.trim().ends_with('-'));
    if readonly && received {
        bail!(
            "{SNAPSHOTS}/{name} already holds a received subvolume that is not the one chosen; \
             move it away (it is in {})",
            top.display()
        );
    }
    println!("  removing the incomplete {SNAPSHOTS}/{name} left by an interrupted run");
    Cmd::new("btrfs")
        .args(["subvolume", "delete"])
        .arg(at)
        .run()?;
    Ok(())
}

fn canonical(top: &Path, p: &SubvolPlan) -> Result<()> {
    let at = top.join(&p.subvol);
    let from = top.join(SNAPSHOTS).join(&p.from);
    match &p.canonical {
        Canonical::Keep => return Ok(()),
        Canonical::Create => {}
        Canonical::ReplaceEmpty => {
            Cmd::new("btrfs")
                .args(["subvolume", "delete"])
                .arg(&at)
                .run()?;
        }
        Canonical::MoveAside(to) => {
            std::fs::rename(&at, top.join(to))
                .with_context(|| format!("renaming {} to {to}", p.subvol))?;
            println!("  the {} that was there is now {to}", p.subvol);
        }
    }
    Cmd::new("btrfs")
        .args(["subvolume", "snapshot"])
        .arg(&from)
        .arg(&at)
        .run()?;
    println!(
        "  {}: writable snapshot of {SNAPSHOTS}/{}",
        p.subvol, p.from
    );
    Ok(())
}
