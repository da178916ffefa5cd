//! `lifeboat stage SPEC --host WIN-DESKTOP --to WINIMAGES`: the newest matching file of
//! another host's restic snapshot (a Veeam `.vbk`, a phone's TWRP image) copied onto a
//! partition of the USB drive, where that system's own recovery tools can read it.

use std::convert::Infallible;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::apply::mount::Mount;
use crate::cli::StageArgs;
use crate::progress_copy::{self, Stopped};
use crate::restic::snapshots::{self, rfc3339, Node};
use crate::restore::points;
use crate::spec::{human, FsKind, Spec};
use crate::ui;

/// Where staged files go on the target partition: `lifeboat-staged/<host>/`.
pub const STAGED_DIR: &str = "lifeboat-staged";

/// `*` and `?` against a whole file name.
pub fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

pub fn stage(args: &StageArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let Some((disk, number, part)) = spec.disks.iter().find_map(|d| {
        d.partitions
            .iter()
            .position(|p| p.label.as_deref() == Some(args.to.as_str()))
            .map(|i| (d, i as u32 + 1, &d.partitions[i]))
    }) else {
        bail!(
            "{} has no partition labelled {}",
            spec.file.display(),
            args.to
        );
    };
    let write = std::slice::from_ref(&disk.id);
    let (bindings, _locks) = crate::machine::bind_for_writing(
        &spec,
        &args.disks,
        write,
        crate::machine::Scan::WhenRequiredUnbound,
        Some(write),
    )?;
    let restic = crate::restic::spec::restic_for(&spec)?;
    let snaps = restic.snapshots()?;
    let snapshot = match &args.snapshot {
        Some(id) => snaps.iter().find(|s| s.id.starts_with(id.as_str())),
        None => snaps.iter().find(|s| s.host == args.host),
    };
    let Some(snapshot) = snapshot else {
        let mut hosts: Vec<&str> = snaps.iter().map(|s| s.host.as_str()).collect();
        hosts.sort();
        hosts.dedup();
        bail!(
            "no restic snapshot of host {} (the repository has: {})",
            args.host,
            hosts.join(", ")
        );
    };
    let file = restic
        .ls(&snapshot.id, &|n| {
            n.kind == "file" && glob(&args.pattern, &n.name)
        })?
        .into_iter()
        .max_by_key(|n| n.mtime.as_deref().and_then(rfc3339).unwrap_or(0));
    let Some(file) = file else {
        bail!(
            "snapshot {} of {} holds no file named {}",
            snapshot.short_id,
            snapshot.host,
            args.pattern
        );
    };
    let size = file.size.unwrap_or(0);

    let node = crate::plan::bind::bound(&bindings, &disk.id)
        .context("the target disk is not bound")?
        .partition_node(number);
    let mounted = match part.fs {
        Some(FsKind::Ntfs) => Mount::with_program(&node, "ntfs-3g"),
        Some(fs) => Mount::new(&node, fs.blkid_type()),
        None => bail!("partition {} has no filesystem in the spec", args.to),
    }
    .with_context(|| format!("mounting {} ({})", args.to, node.display()))?;
    let result = copy(args, &restic, snapshot, &file, size, mounted.path());
    let closed = mounted.close();
    result?;
    closed?;
    Ok(())
}

fn copy(
    args: &StageArgs,
    restic: &crate::restic::Restic,
    snapshot: &snapshots::Snapshot,
    file: &Node,
    size: u64,
    at: &Path,
) -> Result<()> {
    let free = nix::sys::statvfs::statvfs(at)
        .map(|s| s.blocks_available() * s.fragment_size())
        .context("reading the free space")?;
    let dir = at.join(STAGED_DIR).join(&args.host);
    let dest = dir.join(&file.name);
    println!(
        "Copy {} ({}, {}) from restic snapshot {} of {} ({}) to {}/{STAGED_DIR}/{}/{} ({} free)",
        file.path,
        human(size),
        file.mtime.as_deref().unwrap_or("?"),
        snapshot.short_id,
        snapshot.host,
        points::format_time(snapshot.time),
        args.to,
        args.host,
        file.name,
        human(free)
    );
    if size > free {
        bail!(
            "{} needs {} but {} has {} free; nothing was written",
            file.name,
            human(size),
            args.to,
            human(free)
        );
    }
    let go = ui::Confirmation::from(&args.confirm);
    if go.dry_run() {
        return Ok(());
    }
    crate::ui::confirm_changes(go, "Copy it?")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
    let partial = crate::atomic_file::partial_path(&dir.join(&file.name));
    let mut out = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut running = restic
        .dump(&snapshot.id, &file.path)
        .spawn(crate::exec::Pipe::Stdout)?;
    let mut input = running.child.stdout.take().context("restic's stdout")?;
    let mut bar = ui::Bytes::new(&file.name, Some(size));
    let (done, end): (u64, Result<(), Stopped<Infallible>>) =
        progress_copy::copy(&mut input, &mut out, &mut |_| Ok(()), &mut |b| bar.set(b));
    let copied: Result<()> = match end {
        Ok(()) => Ok(()),
        Err(Stopped::Refused(nothing)) => match nothing {},
        Err(Stopped::Write(e)) => Err(anyhow!("writing {}: {e}", partial.display())),
        Err(Stopped::Read(e)) => Err(anyhow!("reading from restic: {e}")),
    };
    bar.finish();
    drop(input);
    let finished = running.finish();
    copied?;
    finished.context("restic dump")?;
    if done != size {
        bail!(
            "restic gave {done} bytes of {} but the snapshot says {size}; the partial copy is {}",
            file.name,
            partial.display()
        );
    }
    out.sync_all()?;
    drop(out);
    std::fs::rename(&partial, &dest)?;
    println!(
        "Staged: {} ({})",
        dest.strip_prefix(at).unwrap_or(&dest).display(),
        human(done)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.vbk", "desktop-2026-11-20.vbk"));
        assert!(!glob("*.vbk", "desktop.vib"));
        assert!(glob("data?.win", "data1.win"));
        assert!(glob("*", "anything"));
        assert!(!glob("a*c", "ab"));
    }
}
