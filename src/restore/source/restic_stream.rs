//! `restore --from restic-stream`: raw `btrfs send` stream files kept in the restic
//! repository (`…/raw-snapshots/<host>/…`, the block-level path of the backup design). The
//! chains are chosen and received exactly as from the backup drive; the bytes come from
//! `restic dump`, which checks every blob it reads against its hash.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::Source as RestoreSource;
use crate::restic::snapshots::Snapshot;
use crate::restic::Restic;
use crate::restore::inventory::{self, Point};
use crate::restore::receive::{plan_lines, receive_all, Opened};
use crate::restore::record::Record;
use crate::restore::restic_streams;
use crate::restore::select::{self, Chain, When};
use crate::restore::Options;
use crate::restore::{points, stream, stream_open};
use crate::single_component::SingleComponent;
use crate::spec::{human, Spec};

pub struct StreamSource {
    restic: Restic,
    snapshot: Snapshot,
    chains: Vec<Chain>,
    /// (path in the snapshot, the subvolume name its stream makes).
    names: Vec<(String, SingleComponent)>,
    sizes: Vec<(String, u64)>,
}

impl StreamSource {
    pub fn open(
        spec: &Spec,
        spec_subvols: &[String],
        args: &Options,
        when: When,
        now: i64,
    ) -> Result<StreamSource> {
        let restic = crate::restic::spec::restic_for(spec)?;
        let host = &spec.machine.host;
        let tag = spec.restic_tag();
        println!("\nPreflight (nothing is written yet):");
        let snaps = restic.snapshots()?;
        let candidates: Vec<&Snapshot> = match &args.snapshot {
            Some(id) => snaps
                .iter()
                .filter(|s| s.id.starts_with(id.as_str()))
                .collect(),
            None => snaps
                .iter()
                .filter(|s| &s.host == host && crate::restic::select::tagged(s, tag))
                .collect(),
        };
        // The newest snapshot that holds stream files of this host.
        let mut found = None;
        for s in candidates {
            let listing = restic.ls(&s.id, &|n| restic_streams::point(n, host).is_some())?;
            let points = restic_streams::points(&listing, host);
            if !points.is_empty() {
                found = Some((s.clone(), points));
                break;
            }
        }
        let Some((snapshot, mut points)) = found else {
            bail!(
                "no restic snapshot of host {host}{} holds stream files under \
                 raw-snapshots/{host}/",
                tag.map(|t| format!(" tagged {t}")).unwrap_or_default()
            );
        };
        println!(
            "  snapshot {} ({}): {} stream files",
            snapshot.short_id,
            points::format_time(snapshot.time),
            points.len()
        );
        let mut names = Vec::new();
        for p in &mut points {
            match head(&restic, &snapshot.id, p) {
                Ok(h) => {
                    p.uuid = Some(h.uuid);
                    p.parent_uuid = h.parent.map(|(u, _)| u);
                    names.push((p.path.clone(), h.name));
                }
                Err(note) => p.note = Some(note),
            }
        }
        inventory::link_parents(&mut points);
        let inv = inventory::group(vec![format!("raw-snapshots/{host}")], points, now);
        let wanted: Vec<String> = if args.subvols.is_empty() {
            let (with, without): (Vec<String>, Vec<String>) = spec_subvols
                .iter()
                .cloned()
                .partition(|s| inv.subvols.iter().any(|g| &g.subvol == s));
            for s in &without {
                println!("  {s}: no stream file in the snapshot; it stays as provisioning makes it (empty)");
            }
            with
        } else {
            args.subvols.clone()
        };
        if wanted.is_empty() {
            bail!("the stream files in restic are of no subvolume of the spec");
        }
        let chains = select::select(&inv, &wanted, when, spec.meta_subvolume())?;
        let refused = chains.iter().flat_map(|c| &c.points).find_map(|p| {
            let note = p.note.as_deref()?.strip_prefix("refused: ")?;
            Some((p, note))
        });
        if let Some((p, why)) = refused {
            bail!(
                "{}: {why}; lifeboat refuses this backup, nothing was written \
                 (docs/restore.md: what lifeboat refuses)",
                p.path
            );
        }
        let mut sizes = Vec::new();
        for p in chains.iter().flat_map(|c| &c.points) {
            let size = p.size.unwrap_or(0);
            println!(
                "  {}: {}{}",
                p.path,
                human(size),
                if p.compressed { " (zstd)" } else { "" }
            );
            sizes.push((p.path.clone(), size));
        }
        Ok(StreamSource {
            restic,
            snapshot,
            chains,
            names,
            sizes,
        })
    }
}

/// The first command of a stream file in restic: `restic dump` stopped after the head.
/// The error is the point's note: `refused: …` (a hostile subvolume name, not passed over
/// like a damaged stream) or `unreadable: …`.
fn head(restic: &Restic, id: &str, p: &Point) -> Result<stream::StreamHead, String> {
    read_head(restic, id, p)
        .map_err(|e| format!("unreadable: {e}"))?
        .map_err(|e| match e {
            stream::StreamError::Name(..) => format!("refused: {e}"),
            e => format!("unreadable: {e}"),
        })
}

fn read_head(
    restic: &Restic,
    id: &str,
    p: &Point,
) -> Result<Result<stream::StreamHead, stream::StreamError>, String> {
    let cmd = restic.dump(id, &p.path);
    let mut running = cmd
        .spawn(crate::exec::Pipe::Stdout)
        .map_err(|e| e.to_string())?;
    let out = running.child.stdout.take().ok_or("no stdout")?;
    let read = stream_open::decoded(out)
        .and_then(|reader| stream_open::read_head(reader, stream::HEAD_BYTES as u64));
    running.kill();
    let bytes = read.map_err(|e| e.to_string())?;
    Ok(stream::head(&bytes))
}

impl RestoreSource for StreamSource {
    fn name(&self) -> String {
        format!(
            "the stream files in restic {} (snapshot {})",
            self.restic.profile.repository(),
            self.snapshot.short_id
        )
    }

    fn subvols(&self) -> Vec<String> {
        self.chains.iter().map(|c| c.subvol.clone()).collect()
    }

    fn bytes(&self) -> u64 {
        self.sizes.iter().map(|(_, s)| s).sum()
    }

    fn record(&self) -> Option<Record> {
        // The meta subvolume, if it is among the streams, cannot be looked into before it is
        // received: the filesystems get new UUIDs and the roots' fstab is rewritten.
        None
    }

    fn not_carried(&self) -> Vec<String> {
        vec![super::NOT_BY_SEND.to_owned()]
    }

    fn plan_lines(&self, top: Option<&Path>, stamp: &str) -> Result<String> {
        plan_lines(&self.chains, top, stamp)
    }

    fn restore(&self, top: &Path, stamp: &str, receives: Option<usize>) -> Result<()> {
        let id = self.snapshot.id.as_str();
        let open = |p: &Point| {
            let name = self
                .names
                .iter()
                .find(|(path, _)| *path == p.path)
                .map(|(_, n)| n.clone())
                .ok_or_else(|| anyhow!("{}: its head could not be read", p.path))?;
            let cmd = self.restic.dump(id, &p.path);
            Ok((Opened::Program(cmd), name))
        };
        let lanes = self.side_by_side(receives);
        receive_all(top, &self.chains, stamp, &self.sizes, &open, lanes)
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
