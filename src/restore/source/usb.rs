//! `restore --from usb`: the backup drive (its `role = "backup"` partition) as the source. Points are
//! chosen by [`crate::restore::select`], planned by [`crate::restore::plan`], checked
//! whole before anything is written, and received through lifeboat's progress pipe.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Source;
use crate::apply::mount::Mount;
use crate::btrfs;
use crate::plan::Binding;
use crate::restore::inventory::{self, Kind, Point};
use crate::restore::pipe::{self, StreamOrigin};
use crate::restore::preflight;
use crate::restore::receive::{self, plan_lines, receive_all, replaced, Opened};
use crate::restore::record::{Record, BOOT_DIR, RECORD_FILE};
use crate::restore::select::{self, Chain, When};
use crate::restore::{self as r};
use crate::single_component::SingleComponent;
use crate::spec::{human, Spec};
use crate::ui;

pub struct UsbSource {
    /// The backup partition's label (e.g. BACKUP), for messages.
    name: String,
    usb: Mount,
    chains: Vec<Chain>,
    estimate: Estimate,
    record: Option<Record>,
    /// Whether the backup drive says it spins.
    spins: Option<bool>,
}

impl UsbSource {
    /// Mount the backup drive read-only, choose the points, check them.
    pub fn open(
        spec: &Spec,
        bindings: &[Binding],
        spec_subvols: &[String],
        asked: &[String],
        when: When,
        now: i64,
    ) -> Result<UsbSource> {
        let usb_node = r::backup_drive::backup_partition(spec, bindings)?;
        let name = r::backup_name(spec);
        let usb = Mount::read_only(&usb_node, "btrfs", Some("subvolid=5"))
            .with_context(|| format!("mounting the backup drive {name} read-only"))?;
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
        let meta = spec.meta_subvolume();
        let chains = select::select(&inv, &wanted, when, meta)?;
        println!("\nPreflight (nothing is written yet):");
        let estimate = preflight(usb.path(), &chains)?;
        let record = meta.and_then(|meta| read_record(usb.path(), &chains, meta));
        Ok(UsbSource {
            name,
            usb,
            chains,
            estimate,
            record,
            spins: crate::blockdev::spins(&usb_node),
        })
    }
}

impl Source for UsbSource {
    fn name(&self) -> String {
        self.name.clone()
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

    fn not_carried(&self) -> Vec<String> {
        vec![super::NOT_BY_SEND.to_owned()]
    }

    fn plan_lines(&self, top: Option<&Path>, stamp: &str) -> Result<String> {
        plan_lines(&self.chains, top, stamp)
    }

    fn side_by_side(&self, asked: Option<usize>) -> (usize, String) {
        receive::side_by_side(asked, self.spins)
    }

    fn streams(&self) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.points)
            .filter(|p| p.kind == Kind::Stream)
            .count()
    }

    fn replaced(&self, top: &Path, stamp: &str) -> Result<Vec<String>> {
        replaced(&self.chains, top, stamp)
    }

    fn check_streams_whole(&mut self) -> Result<()> {
        check_whole(self.usb.path(), &mut self.estimate)
    }

    fn restore(&self, top: &Path, stamp: &str, receives: Option<usize>) -> Result<()> {
        let usb = self.usb.path();
        let lanes = self.side_by_side(receives);
        receive_all(
            top,
            &self.chains,
            stamp,
            &self.estimate.per_point,
            &|p| on_drive(usb, p),
            lanes,
        )
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.usb.close()?)
    }

    fn points(&self) -> Vec<super::UsedPoint> {
        self.chains
            .iter()
            .map(|c| super::UsedPoint {
                subvol: c.subvol.clone(),
                point: c.chosen().path.clone(),
                time: Some(c.chosen().time),
            })
            .collect()
    }
}

/// How much will be received, in all and per point (by path on the backup drive).
struct Estimate {
    bytes: u64,
    per_point: Vec<(String, u64)>,
    /// Stream points not yet read through `btrfs receive --dump` (which checks the CRCs).
    unread: Vec<Point>,
}

/// Every point readable, every stream's head checked ([`preflight::check_head`], which
/// checks a small stream whole), every subvolume read-only (so it can be sent).
fn preflight(usb: &Path, chains: &[Chain]) -> Result<Estimate> {
    let mut est = Estimate {
        bytes: 0,
        per_point: vec![],
        unread: vec![],
    };
    for chain in chains {
        for p in &chain.points {
            let path = usb.join(&p.path);
            let size = match p.kind {
                Kind::Stream => {
                    let head =
                        preflight::check_head(&path).map_err(|e| refused_or_damaged(&p.path, e))?;
                    // The head check has no CRCs: a whole read (below) still reads it.
                    est.unread.push(p.clone());
                    if head.whole {
                        println!("  {}: stream whole ({})", p.path, human(head.bytes));
                        head.bytes
                    } else {
                        let on_drive = p.size.unwrap_or(head.bytes);
                        let size = if p.compressed {
                            preflight::zstd_content_size(&path).unwrap_or(on_drive)
                        } else {
                            on_drive
                        };
                        println!(
                            "  {}: stream of {}{}, its first {} checked",
                            p.path,
                            human(size),
                            if p.compressed { " (zstd)" } else { "" },
                            human(preflight::HEAD_CHECK)
                        );
                        size
                    }
                }
                Kind::Btrbk | Kind::Snapper => {
                    let show = btrfs::show(&path).with_context(|| {
                        format!("{} cannot be read; nothing was written", p.path)
                    })?;
                    if !show.readonly {
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

/// The preflight's error for a stream that did not pass.
fn refused_or_damaged(path: &str, err: pipe::PipeError) -> anyhow::Error {
    match err {
        pipe::PipeError::Refused(why) => anyhow::anyhow!(
            "{path}: {why}; lifeboat refuses this backup, nothing was written \
             (docs/restore.md: what lifeboat refuses)"
        ),
        err => anyhow::Error::new(err).context(format!(
            "{path} is damaged or unreadable; nothing was written"
        )),
    }
}

/// Read every stream whole through `btrfs receive --dump` (to the end, each command's
/// CRC); their sizes become exact.
fn check_whole(usb: &Path, est: &mut Estimate) -> Result<()> {
    for p in std::mem::take(&mut est.unread) {
        let path = usb.join(&p.path);
        let mut bar = ui::Bytes::new(&format!("checking {}", p.path), p.size);
        let dump = btrfs::dump();
        let checked = pipe::stream(StreamOrigin::File(&path), &dump, &mut |b| bar.set(b));
        bar.finish();
        let t = checked.map_err(|e| refused_or_damaged(&p.path, e))?;
        println!("  {}: stream whole ({})", p.path, human(t.bytes));
        if let Some((_, size)) = est.per_point.iter_mut().find(|(at, _)| *at == p.path) {
            est.bytes = est.bytes - *size + t.bytes;
            *size = t.bytes;
        }
    }
    Ok(())
}

/// Bytes the files under `dir` occupy (an estimate of the stream's size, for the ETA).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // Symlinks are counted as themselves, not followed; unreadable parts are left out.
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|meta| meta.blocks() * 512)
        .sum()
}

/// The filesystem record in the chosen point of the meta subvolume `name` (e.g.
/// myhost-meta), when that point is a subvolume on the drive (a stream cannot be looked
/// into before it is received).
fn read_record(usb: &Path, chains: &[Chain], name: &str) -> Option<Record> {
    let meta = chains.iter().find(|c| c.subvol == name)?;
    let point = meta.chosen();
    if point.kind == Kind::Stream {
        println!("  {name} comes from a stream: the filesystems get new UUIDs");
        return None;
    }
    let path = usb.join(&point.path).join(BOOT_DIR).join(RECORD_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    super::record_from(
        &text,
        &format!("{}/{BOOT_DIR}/{RECORD_FILE}", point.path),
        name,
    )
}

/// A point on the backup drive mounted at `usb`: its bytes, and the name `btrfs receive`
/// gives what it makes.
fn on_drive(usb: &Path, point: &Point) -> Result<(Opened, SingleComponent)> {
    let src = usb.join(&point.path);
    Ok(match point.kind {
        Kind::Stream => {
            let name = inventory::read_head(&src)
                .map_err(|e| anyhow::anyhow!("{}: {e}", point.path))?
                .name;
            (Opened::File(src), name)
        }
        Kind::Btrbk | Kind::Snapper => {
            let base = point.path.rsplit('/').next().unwrap_or_default();
            let name = SingleComponent::new(base)
                .map_err(|why| anyhow::anyhow!("{}: the name {base:?} {why}", point.path))?;
            (Opened::Subvolume(src), name)
        }
    })
}
