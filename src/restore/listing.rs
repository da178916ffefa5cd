//! The restore points a restore can use, listed for a person (read-only): btrbk, snapper
//! and stream points on the backup drive, or the restic repository's snapshots and the raw
//! send streams kept in them. `lifeboat inventory` and the rescue menu print these.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::inventory::{self, Inventory, Kind};
use super::points;
use super::restic_streams;
use crate::apply::mount::Mount;
use crate::spec::Spec;

/// The points on the backup drive (found by the spec's match rules, or `disks`), printed
/// as text or JSON; warnings go to stderr.
pub fn show_usb(spec: &Spec, disks: &[(String, PathBuf)], json: bool) -> Result<()> {
    let bindings = crate::machine::bind_disks(spec, disks, &[], crate::machine::Scan::AllDisks)?;
    let node = super::backup_drive::backup_partition(spec, &bindings)?;
    let top = Mount::read_only(&node, "btrfs", Some("subvolid=5")).with_context(|| {
        format!(
            "mounting the backup drive {} read-only",
            super::backup_name(spec)
        )
    })?;
    let now = crate::time::now();
    let dirs = spec.backup_dirs();
    let found = inventory::scan(top.path(), &dirs, &spec.machine.host, now);
    top.close()?;
    let found =
        found.with_context(|| format!("reading the restore points on {}", node.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", render(&found, &super::backup_name(spec), &node, now));
    }
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn render(inv: &Inventory, name: &str, node: &std::path::Path, now: i64) -> String {
    let mut out = format!(
        "Backup drive {name} ({}), looked in: {}\n",
        node.display(),
        inv.looked_in
            .iter()
            .map(|d| if d.is_empty() {
                "/".to_owned()
            } else {
                format!("{d}/")
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    for sv in &inv.subvols {
        out.push_str(&format!(
            "\n{} — {} point{}\n",
            sv.subvol,
            sv.points.len(),
            if sv.points.len() == 1 { "" } else { "s" }
        ));
        for p in &sv.points {
            let kind = match p.kind {
                Kind::Btrbk => "btrbk",
                Kind::Snapper => "snapper",
                Kind::Stream if p.compressed => "stream.zst",
                Kind::Stream => "stream",
            };
            out.push_str(&format!(
                "  {}  {:>9} old  {kind:<10}  {}",
                points::format_time(p.time),
                points::format_age(p.time, now),
                p.path
            ));
            if let Some(size) = p.size {
                out.push_str(&format!("  {}", crate::spec::human(size)));
            }
            match &p.parent {
                Some(parent) => out.push_str(&format!("  (from {parent})")),
                None if p.parent_uuid.is_none() => out.push_str("  (full)"),
                None => {}
            }
            if let Some(note) = &p.note {
                out.push_str(&format!("  [{note}]"));
            }
            out.push('\n');
        }
    }
    out
}

/// The restic repository's snapshots, per host, newest first.
pub fn show_restic(spec: &Spec, json: bool) -> Result<()> {
    let restic = crate::restic::spec::restic_for(spec)?;
    let snaps = restic.snapshots()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&snaps)?);
        return Ok(());
    }
    let now = crate::time::now();
    let tag = spec.restic_tag();
    print!(
        "{}",
        render_restic(&snaps, restic.profile.repository(), &spec.machine.host, now)
    );
    let ours = snaps
        .iter()
        .find(|s| s.host == spec.machine.host && crate::restic::select::tagged(s, tag));
    // Raw send streams kept in the newest snapshot of this machine (--from restic-stream).
    if let Some(s) = ours {
        let host = spec.machine.host.as_str();
        let listing = restic.ls(&s.id, &|n| restic_streams::point(n, host).is_some())?;
        let streams = restic_streams::points(&listing, host);
        if !streams.is_empty() {
            println!(
                "\nraw send streams in snapshot {} (lifeboat restore --from restic-stream):",
                s.short_id
            );
            for p in &streams {
                println!(
                    "  {}  {}  {}",
                    points::format_time(p.time),
                    p.path,
                    crate::spec::human(p.size.unwrap_or(0))
                );
            }
        }
    }
    match ours {
        None => eprintln!(
            "warning: no snapshot of host {}{} in the repository",
            spec.machine.host,
            tag.map(|t| format!(" tagged {t}")).unwrap_or_default()
        ),
        Some(s) if now - s.time > inventory::STALE_AFTER_SECS => eprintln!(
            "warning: the newest {}snapshot of {} is {} old ({}): are backups still running?",
            tag.map(|t| format!("{t} ")).unwrap_or_default(),
            spec.machine.host,
            points::format_age(s.time, now),
            points::format_time(s.time)
        ),
        Some(_) => {}
    }
    Ok(())
}

fn render_restic(
    snaps: &[crate::restic::snapshots::Snapshot],
    repo: &str,
    host: &str,
    now: i64,
) -> String {
    let mut out = format!("restic repository {repo}\n");
    let mut hosts: Vec<&str> = snaps.iter().map(|s| s.host.as_str()).collect();
    hosts.sort();
    hosts.dedup();
    // This machine first.
    hosts.sort_by_key(|h| *h != host);
    for h in hosts {
        let mine: Vec<_> = snaps.iter().filter(|s| s.host == h).collect();
        out.push_str(&format!(
            "\n{h}{} — {} snapshot{}\n",
            if h == host { " (this machine)" } else { "" },
            mine.len(),
            if mine.len() == 1 { "" } else { "s" }
        ));
        for s in mine {
            out.push_str(&format!(
                "  {}  {:>9} old  {}  [{}]  {}",
                points::format_time(s.time),
                points::format_age(s.time, now),
                s.short_id,
                s.tags.join(","),
                s.paths.join(", ")
            ));
            if let Some(size) = s.size {
                out.push_str(&format!("  {}", crate::spec::human(size)));
            }
            out.push('\n');
        }
    }
    if snaps.is_empty() {
        out.push_str("\n(no snapshots)\n");
    }
    out
}
