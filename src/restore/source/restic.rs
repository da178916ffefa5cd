//! `restore --from restic`: the off-site restic repository as the source. Which
//! snapshot each mapped path comes from is chosen by [`crate::restic::select`]; each path
//! is restored by `restic restore --verify` into `<subvol>.lifeboat-partial`, a new
//! subvolume, which is renamed to the canonical name only when restic has finished. The
//! pool's top level keeps `.lifeboat-restored`, a line per finished subvolume, so a re-run
//! skips what is done.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use super::Source as RestoreSource;
use crate::btrfs;
use crate::restic::select::{self, Pick, Planned, Skipped};
use crate::restic::Restic;
use crate::restore::points;
use crate::restore::record::{Record, BOOT_DIR, RECORD_FILE};
use crate::restore::select::When;
use crate::restore::Options;
use crate::spec::{human, Spec};
use crate::ui;

/// In the pool's top level: which subvolumes a restic restore finished, from what.
const DONE_FILE: &str = ".lifeboat-restored";
/// Inside a partial subvolume: where restic writes (its paths are absolute).
const SCAFFOLD: &str = ".lifeboat-restic";

pub struct ResticSource {
    restic: Restic,
    planned: Vec<Planned>,
    /// Left out: no snapshot holds their path.
    skipped: Vec<Skipped>,
    /// The bytes each subvolume's restore writes, by subvolume.
    sizes: Vec<(String, u64)>,
    record: Option<Record>,
    /// This restic restores sparse files with holes (`restore --sparse`, not in 0.14).
    sparse: bool,
}

impl ResticSource {
    pub fn open(spec: &Spec, args: &Options, when: When) -> Result<ResticSource> {
        let Some(conf) = &spec.restic else {
            bail!(
                "{} has no [restic] section: it says where the repository is and which backed-up \
                 path goes into which subvolume (docs/spec.md)",
                spec.file.display()
            );
        };
        let restic = crate::restic::spec::restic_for(spec)?;
        let pick = match (&args.snapshot, when) {
            (Some(id), _) => Pick::Id(id.clone()),
            (None, When::At(t)) => Pick::At(t),
            (None, When::Latest) => Pick::Latest,
        };
        println!("\nPreflight (nothing is written yet):");
        let snaps = restic.snapshots()?;
        println!(
            "  {}: {} snapshots",
            restic.profile.repository(),
            snaps.len()
        );
        let paths: Vec<(String, String)> = conf
            .paths
            .iter()
            .map(|(path, subvol)| (path.clone(), subvol.get_ref().clone()))
            .collect();
        let chosen = select::select(
            &snaps,
            &paths,
            &args.subvols,
            &spec.machine.host,
            conf.tag.as_deref(),
            spec.meta_subvolume(),
            &pick,
        )?;
        for s in &chosen.skipped {
            println!("  {s}");
        }
        let planned = chosen.planned;
        let mut sizes = Vec::new();
        for p in &planned {
            let s = &p.snapshot;
            // Another run of restic reads the snapshot's trees: only when the size restic
            // 0.17+ recorded is not that of this restore.
            let size = match p.recorded_size() {
                Some(size) => size,
                None => restic.restore_size(&s.id, &p.path, &p.exclude)?,
            };
            let without = if p.exclude.is_empty() {
                String::new()
            } else {
                format!(" without {}", p.exclude.join(", "))
            };
            println!(
                "  {}: {}{without} of snapshot {} of {} ({}): {}",
                p.subvol,
                p.path,
                s.short_id,
                s.host,
                points::format_time(s.time),
                human(size)
            );
            sizes.push((p.subvol.clone(), size));
        }
        let record = spec
            .meta_subvolume()
            .and_then(|meta| read_record(&restic, &planned, meta));
        let sparse = restic.restores_sparse();
        Ok(ResticSource {
            sparse,
            restic,
            planned,
            skipped: chosen.skipped,
            sizes,
            record,
        })
    }
}

/// restic stores and restores xattrs (SELinux labels, file capabilities, POSIX ACLs) and
/// hard links, but no inode flags.
const NOT_BY_RESTIC: &str = "not carried by restic: the immutable and append-only attributes \
    (chattr +i, chattr +a); no restored file has them: set them again where the system needs them";

/// restic before `restore --sparse` writes every hole.
const NOT_SPARSE: &str = "not carried by this restic (its restore has no --sparse): sparse \
    files; their holes are written as zeros and take room (restic 0.16 or newer keeps them)";

/// `restic dump` of the filesystem record in the meta subvolume `name` (e.g. myhost-meta).
fn read_record(restic: &Restic, planned: &[Planned], name: &str) -> Option<Record> {
    let meta = planned.iter().find(|p| p.subvol == name)?;
    let file = format!(
        "{}/{BOOT_DIR}/{RECORD_FILE}",
        meta.path.trim_end_matches('/')
    );
    match restic.dump_text(&meta.snapshot.id, &file) {
        Ok(text) => super::record_from(&text, &file, name),
        Err(_) => {
            println!(
                "  no {file} in snapshot {}: new UUIDs",
                meta.snapshot.short_id
            );
            None
        }
    }
}

/// `@home restic:<id>:<path>`: the line a finished subvolume gets in [`DONE_FILE`].
fn done_line(p: &Planned) -> String {
    format!("{} restic:{}:{}", p.subvol, p.snapshot.id, p.path)
}

fn is_done(top: &Path, p: &Planned) -> bool {
    std::fs::read_to_string(top.join(DONE_FILE)).is_ok_and(|t| t.lines().any(|l| l == done_line(p)))
        && top.join(&p.subvol).is_dir()
}

fn has_data(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// What the pool holds under a subvolume's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Absent,
    Empty,
    HasData,
}

fn held(at: &Path) -> Held {
    if has_data(at) {
        Held::HasData
    } else if at.is_dir() {
        Held::Empty
    } else {
        Held::Absent
    }
}

/// What a restic restore does with one subvolume, decided once from what the pool holds:
/// the printed plan and the restore carry out the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Restored by an earlier run (its line is in `.lifeboat-restored`).
    Done,
    /// `restic restore` into `<subvol>.lifeboat-partial`, then put in its place.
    Restore(Place),
}

/// How the restored subvolume takes its canonical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The subvolume there holds data: renamed to this name (kept).
    MoveAside(String),
    /// The subvolume there is empty: deleted.
    ReplaceEmpty,
    /// Nothing there: renamed.
    Create,
}

/// The step for a subvolume: `done` by an earlier run, else placed by what the pool holds.
pub fn step(subvol: &str, done: bool, held: Held, stamp: &str) -> Step {
    if done {
        return Step::Done;
    }
    Step::Restore(match held {
        Held::HasData => Place::MoveAside(format!("{subvol}.before-restore-{stamp}")),
        Held::Empty => Place::ReplaceEmpty,
        Held::Absent => Place::Create,
    })
}

/// The plan's lines for `planned` and its steps.
pub fn render(planned: &[Planned], steps: &[Step]) -> String {
    let mut out = String::new();
    for (p, step) in planned.iter().zip(steps) {
        out.push_str(&format!("  {}:\n", p.subvol));
        let place = match step {
            Step::Done => {
                out.push_str(&format!(
                    "    done: restored from {} {} by an earlier run\n",
                    p.snapshot.short_id, p.path
                ));
                continue;
            }
            Step::Restore(place) => place,
        };
        let skip = if p.exclude.is_empty() {
            String::new()
        } else {
            format!(" without {}", p.exclude.join(", "))
        };
        out.push_str(&format!(
            "    - restic restore {} of snapshot {} ({}){skip} into {}.lifeboat-partial, verified\n",
            p.path,
            p.snapshot.short_id,
            points::format_time(p.snapshot.time),
            p.subvol
        ));
        let line = match place {
            Place::MoveAside(aside) => format!(
                "- rename the existing {0} to {aside} (kept), then the restored one to {0}",
                p.subvol
            ),
            Place::ReplaceEmpty => {
                format!("- replace the empty {0} with the restored one", p.subvol)
            }
            Place::Create => format!("- rename the restored one to {}", p.subvol),
        };
        out.push_str(&format!("    {line}\n"));
    }
    out
}

impl ResticSource {
    /// The step of each planned subvolume for the pool mounted at `top`, or for a pool
    /// about to be made (`None`: provisioning makes each subvolume, empty).
    fn plan(&self, top: Option<&Path>, stamp: &str) -> Vec<Step> {
        self.planned
            .iter()
            .map(|p| match top {
                None => step(&p.subvol, false, Held::Empty, stamp),
                Some(top) => step(
                    &p.subvol,
                    is_done(top, p),
                    held(&top.join(&p.subvol)),
                    stamp,
                ),
            })
            .collect()
    }
}

impl RestoreSource for ResticSource {
    fn name(&self) -> String {
        format!("restic {}", self.restic.profile.repository())
    }

    fn subvols(&self) -> Vec<String> {
        self.planned.iter().map(|p| p.subvol.clone()).collect()
    }

    fn bytes(&self) -> u64 {
        self.sizes.iter().map(|(_, s)| s).sum()
    }

    fn record(&self) -> Option<Record> {
        self.record.clone()
    }

    fn not_carried(&self) -> Vec<String> {
        let mut out = vec![NOT_BY_RESTIC.to_owned()];
        if !self.sparse {
            out.push(NOT_SPARSE.to_owned());
        }
        out
    }

    fn points(&self) -> Vec<super::UsedPoint> {
        self.planned
            .iter()
            .map(|p| super::UsedPoint {
                subvol: p.subvol.clone(),
                point: format!("snapshot {} {}", p.snapshot.short_id, p.path),
                time: Some(p.snapshot.time),
            })
            .collect()
    }

    fn plan_lines(&self, top: Option<&Path>, stamp: &str) -> Result<String> {
        // What no snapshot holds is left out; the rest as planned.
        let mut out: String = self.skipped.iter().map(|s| format!("  {s}\n")).collect();
        out.push_str(&render(&self.planned, &self.plan(top, stamp)));
        Ok(out)
    }

    fn restore(&self, top: &Path, stamp: &str, receives: Option<usize>) -> Result<()> {
        // The plan again, now against the pool as it really is after provisioning.
        let steps = self.plan(Some(top), stamp);
        let out = ui::Shared::new();
        let mut todo = Vec::new();
        for (p, step) in self.planned.iter().zip(&steps) {
            match step {
                Step::Done => out.line(&format!(
                    "\n{}\n  already restored from {} {}",
                    p.subvol, p.snapshot.short_id, p.path
                )),
                Step::Restore(place) => todo.push((p, place)),
            }
        }
        // Two restic restores at once keep both cores busy (restic's own workers wait on
        // the repository and the disk in turn): 15 % less time for two paths here.
        let (lanes, why) = self.side_by_side(receives);
        let lanes = lanes.min(todo.len()).max(1);
        let done_file = std::sync::Mutex::new(());
        if lanes == 1 {
            for (p, place) in todo {
                out.line(&format!("\n{}", p.subvol));
                let total = self.size_of(&p.subvol);
                let mut bar = out.bytes(&p.subvol, total);
                let before = used(top);
                let restored = self.restore_one(p, place, top, &out, &done_file, &mut || {
                    bar.set(used(top).saturating_sub(before))
                });
                bar.finish();
                restored?;
            }
            return Ok(());
        }
        let line = format!("restoring {lanes} subvolumes at a time: {why}");
        out.line(&line);
        crate::runlog::line(&line);
        // One bar for all: what restic writes shows only as the pool's growth.
        let names: Vec<&str> = todo.iter().map(|(p, _)| p.subvol.as_str()).collect();
        let total = todo
            .iter()
            .map(|(p, _)| self.size_of(&p.subvol))
            .sum::<Option<u64>>();
        let bar = std::sync::Mutex::new(out.bytes(&names.join(" + "), total));
        let before = used(top);
        let tick = || {
            if let Ok(mut bar) = bar.lock() {
                bar.set(used(top).saturating_sub(before));
            }
        };
        let result = crate::restore::lanes::run(lanes, todo, &|(p, place)| {
            self.restore_one(p, place, top, &out, &done_file, &mut || tick())
        });
        if let Ok(bar) = bar.lock() {
            bar.finish();
        }
        result
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl ResticSource {
    fn size_of(&self, subvol: &str) -> Option<u64> {
        self.sizes
            .iter()
            .find(|(s, _)| s == subvol)
            .map(|(_, s)| *s)
    }

    /// One subvolume: `restic restore … --verify` into `<subvol>.lifeboat-partial` (an
    /// interrupted run's is made anew), the restored tree put in place, the partial
    /// subvolume renamed to the canonical name and the line in [`DONE_FILE`] (under
    /// `done_file`: lanes append to it in turn). `tick` is called while restic runs
    /// (restic 0.14 prints no restore progress of its own).
    fn restore_one(
        &self,
        p: &Planned,
        place: &Place,
        top: &Path,
        out: &ui::Shared,
        done_file: &std::sync::Mutex<()>,
        tick: &mut dyn FnMut(),
    ) -> Result<()> {
        let partial = crate::atomic_file::partial_path(&top.join(&p.subvol));
        if partial.exists() {
            out.line(&format!(
                "  removing the incomplete {} left by an interrupted run",
                partial.file_name().unwrap_or_default().to_string_lossy()
            ));
            btrfs::delete(&partial)?;
        }
        btrfs::create(&partial)?;
        let started = Instant::now();
        self.restic
            .restore(
                &p.snapshot.id,
                &p.path,
                &p.exclude,
                &partial.join(SCAFFOLD),
                self.sparse,
                tick,
            )
            .with_context(|| format!("restic restore of {}", p.path))?;
        settle(p, &partial)?;
        // On the disk before it takes the canonical name and its line in DONE_FILE, which
        // make it complete for a re-run: after a power cut it is whole or partial.
        btrfs::sync(&partial)
            .with_context(|| format!("writing the restored {} to the disk", p.subvol))?;
        let took = started.elapsed();
        let at = top.join(&p.subvol);
        match place {
            Place::MoveAside(aside) => {
                std::fs::rename(&at, top.join(aside))
                    .with_context(|| format!("renaming {} to {aside}", p.subvol))?;
                out.line(&format!("  the {} that was there is now {aside}", p.subvol));
            }
            Place::ReplaceEmpty => btrfs::delete(&at)?,
            Place::Create => {}
        }
        std::fs::rename(&partial, &at)
            .with_context(|| format!("renaming the restored subvolume to {}", p.subvol))?;
        {
            let _turn = done_file
                .lock()
                .map_err(|_| anyhow!("a restore lane panicked"))?;
            let mut done = std::fs::read_to_string(top.join(DONE_FILE)).unwrap_or_default();
            done.push_str(&done_line(p));
            done.push('\n');
            crate::atomic_file::write(&top.join(DONE_FILE), done.as_bytes())?;
        }
        out.line(&format!(
            "  {}: {} of snapshot {} in {:.1} s, verified",
            p.subvol,
            p.path,
            p.snapshot.short_id,
            took.as_secs_f64()
        ));
        Ok(())
    }
}

/// The bytes in use in the filesystem at `top`.
fn used(top: &Path) -> u64 {
    nix::sys::statvfs::statvfs(top)
        .map(|s| (s.blocks() - s.blocks_free()) * s.fragment_size())
        .unwrap_or(0)
}

/// Move what restic wrote under `.lifeboat-restic/<path>/` to the subvolume's top, take
/// over that directory's owner and mode, and drop nested paths of other subvolumes.
fn settle(p: &Planned, partial: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let scaffold = partial.join(SCAFFOLD);
    let from: PathBuf = scaffold.join(p.path.trim_start_matches('/'));
    if !from.is_dir() {
        bail!(
            "restic restored nothing at {} (is {} in snapshot {}?)",
            from.display(),
            p.path,
            p.snapshot.short_id
        );
    }
    for entry in std::fs::read_dir(&from)? {
        let entry = entry?;
        std::fs::rename(entry.path(), partial.join(entry.file_name()))
            .with_context(|| format!("moving {} into place", entry.path().display()))?;
    }
    let meta = std::fs::metadata(&from)?;
    std::fs::set_permissions(partial, meta.permissions())?;
    std::os::unix::fs::chown(partial, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::remove_dir_all(&scaffold)?;
    if p.path != "/" {
        for nested in &p.exclude {
            if let Some(rel) = nested.strip_prefix(p.path.as_str()) {
                // Its contents belong to another subvolume; the directory stays, as the
                // mount point it is.
                let inside = partial.join(rel.trim_start_matches('/'));
                if inside.is_dir() {
                    for entry in std::fs::read_dir(&inside)? {
                        let path = entry?.path();
                        if path.is_dir() && !path.is_symlink() {
                            std::fs::remove_dir_all(&path)?;
                        } else {
                            std::fs::remove_file(&path)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restic::snapshots::Snapshot;

    fn planned(subvol: &str, path: &str) -> Planned {
        Planned {
            subvol: subvol.into(),
            path: path.into(),
            snapshot: Snapshot {
                id: "4f9c0a7e".repeat(8),
                short_id: "4f9c0a7e".into(),
                time: 1_764_000_000,
                host: "atlantis".into(),
                tags: vec!["LINUX".into()],
                paths: vec![path.into()],
                size: None,
                files: None,
            },
            exclude: vec![],
        }
    }

    #[test]
    fn the_step_follows_what_the_pool_holds() {
        let stamp = "20261125T1200";
        assert_eq!(
            step("@home", false, Held::HasData, stamp),
            Step::Restore(Place::MoveAside(
                "@home.before-restore-20261125T1200".into()
            ))
        );
        assert_eq!(
            step("@home", false, Held::Empty, stamp),
            Step::Restore(Place::ReplaceEmpty)
        );
        assert_eq!(
            step("@home", false, Held::Absent, stamp),
            Step::Restore(Place::Create)
        );
        // Done wins over what is there: the earlier run's result is kept.
        assert_eq!(step("@home", true, Held::HasData, stamp), Step::Done);
    }

    #[test]
    fn the_printed_plan_says_what_the_restore_does() {
        let planned = [
            planned("@home", "/home"),
            planned("@rootTW", "/"),
            planned("Atlantis-meta", "/meta"),
            planned("@rootF41", "/f41"),
        ];
        let steps = [
            Step::Restore(Place::MoveAside("@home.before-restore-X".into())),
            Step::Restore(Place::ReplaceEmpty),
            Step::Restore(Place::Create),
            Step::Done,
        ];
        let text = render(&planned, &steps);
        assert!(text.contains(
            "    - rename the existing @home to @home.before-restore-X (kept), then the restored one to @home\n"
        ), "{text}");
        assert!(text.contains("    - replace the empty @rootTW with the restored one\n"));
        assert!(text.contains("    - rename the restored one to Atlantis-meta\n"));
        assert!(
            text.contains("  @rootF41:\n    done: restored from 4f9c0a7e /f41 by an earlier run\n")
        );
        assert_eq!(text.matches("restic restore").count(), 3);
    }
}
