//! `cargo xtask bench scale`: how a restore grows with the data (0.5, 2, 8 GiB), with the
//! number of files (10 k, 100 k, 1 M small files), and how `inventory` and `restore
//! --dry-run` grow with the number of restore points on the drive (10, 100, 1,000), each
//! row with its cost per unit, so that a superlinear step shows.
//!
//! One lab for all rows. The data of each row is written into a subvolume on LINBKUP
//! itself (mounted as Atlantis mounts its pools), snapshotted into a directory lifeboat
//! does not look in, and sent to LINBKUP/atlantis/ as the only @home point; each round
//! blanks disk1, drops the caches and times `lifeboat restore --from usb --latest
//! --subvol @home --yes`, whose result is checked, then the same transfer with plain
//! tools ([`bare_transfer`]). The points are an incremental chain,
//! btrbk-style, made the same way one small change at a time.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::data::{write_mixed, write_small, Data};
use super::provision::median;
use super::restore_usb::{drop_caches, run_breakdown, verify};
use super::verdict;
use crate::disks::{Lab, Mount};
use crate::flags::BenchScale;
use crate::{deps, interrupt, lifeboat_bin, require_root, run_quiet};

/// The most the per-unit cost may grow between the smallest and the largest row.
const SPREAD_TARGET: f64 = 1.5;
/// `inventory` of 1,000 points, at most.
const INVENTORY_TARGET_S: f64 = 1.0;
const INVENTORY_TARGET_POINTS: u64 = 1000;
/// LINBKUP's mount options here: Atlantis' and `discard`, so that what a row deletes
/// leaves the sparse image file.
const USB_OPTIONS: &[&str] = &["compress=zstd:1", "noatime", "discard"];
/// Where the source subvolume and its snapshots live on LINBKUP: not a directory the spec
/// names, so the inventory passes over them.
const SRC: &str = "scale-src";
const SNAPS: &str = "scale-snaps";
const POINTS_DIR: &str = "atlantis";

/// The rows: MiB, files, points.
fn rows(quick: bool) -> ([u64; 3], [u64; 3], [u64; 3]) {
    if quick {
        ([64, 256, 1024], [1_000, 10_000, 100_000], [10, 100, 1000])
    } else {
        (
            [512, 2048, 8192],
            [10_000, 100_000, 1_000_000],
            [10, 100, 1000],
        )
    }
}

pub fn scale(sh: &Shell, flags: &BenchScale) -> Result<()> {
    require_root("bench scale")?;
    deps::ensure(sh)?;
    let bin = lifeboat_bin::build(sh)?;
    let (sizes, counts, points) = rows(flags.quick);
    println!(
        "bench scale{}: disk0 512 GB (factory layout), disk1 2 TB, usb 4.5 TB; {} round(s) a row",
        if flags.quick { " --quick" } else { "" },
        flags.rounds
    );
    let lab = Lab::create(sh, "bench-scale")?;
    // Outside the lab, which goes at the end: the run logs say where the time went.
    let log_dir = crate::target_dir().join("bench").join("scale-logs");
    if log_dir.exists() {
        std::fs::remove_dir_all(&log_dir)
            .with_context(|| format!("removing the last run's {}", log_dir.display()))?;
    }
    let bindings = lab.bindings();
    super::restore_usb::provision_lab(sh, &bin, &bindings, &log_dir)?;
    let restore = |what: &str, write: &dyn Fn(&Path) -> Result<Data>| -> Result<Row> {
        let data = back_up(sh, &lab, write)?;
        let mut row = Row::default();
        for round in 0..flags.rounds {
            interrupt::check()?;
            lab.disk1.reset_blank(sh)?;
            drop_caches(sh)?;
            let logs = log_dir.join(format!("{what}-{round}"));
            let args = lifeboat_bin::args(
                "restore",
                &bindings,
                &["--from", "usb", "--latest", "--subvol", "@home", "--yes"],
            );
            let (_, took) = lifeboat_bin::run_captured(sh, &bin, &args, &logs)?;
            verify(sh, &lab, &data, "lifeboat restore")?;
            let transfer = run_breakdown(&logs)?.phases[2];
            row.whole.push(took);
            row.transfer.push(Duration::from_secs_f64(transfer));
            row.bare
                .push(bare_transfer(sh, &bin, &lab, &bindings, &logs, &data)?);
        }
        row.bytes = data.bytes;
        row.files = data.files;
        println!(
            "  {what}: {} files, {:.2} GiB: restore {:.1} s (transfer {:.1} s); bare transfer {:.1} s",
            data.files,
            gib(data.bytes),
            secs(median(&row.whole)),
            secs(median(&row.transfer)),
            secs(median(&row.bare))
        );
        Ok(row)
    };
    let mut by_size = Vec::new();
    for mib in sizes {
        let row = restore(&format!("{mib} MiB"), &|dir| write_mixed(dir, mib))?;
        by_size.push(row);
    }
    let mut by_files = Vec::new();
    for n in counts {
        let row = restore(&format!("{n} files"), &|dir| write_small(dir, n))?;
        by_files.push(row);
    }
    lab.disk1.reset_blank(sh)?;
    let by_points = grow_points(sh, &bin, &lab, &bindings, &log_dir, &points, flags.rounds)?;
    lab.close()?;

    let mut out = String::from("\nbench scale (medians):\n");
    out += &unit_table(
        "restore by data size",
        "GiB",
        &by_size
            .iter()
            .map(|r| (gib(r.bytes), r))
            .collect::<Vec<_>>(),
        "s/GiB",
        1.0,
    );
    out += &unit_table(
        "restore by file count",
        "files",
        &by_files
            .iter()
            .map(|r| (r.files as f64, r))
            .collect::<Vec<_>>(),
        "us/file",
        1e6,
    );
    out += &points_table(&by_points);
    print!("{out}");
    Ok(())
}

#[derive(Default)]
struct Row {
    bytes: u64,
    files: u64,
    whole: Vec<Duration>,
    transfer: Vec<Duration>,
    /// [`bare_transfer`]'s.
    bare: Vec<Duration>,
}

/// The row's point received onto a blank, provisioned disk1 with plain tools: `btrfs
/// send --proto 2 --compressed-data | btrfs receive` into @snapshots, then `btrfs
/// filesystem sync`, the commands of lifeboat's transfer phase without lifeboat between
/// them. Timed from the send to the end of the sync, checked like lifeboat's restore: what
/// of a row's growth is the kernel's and the disks', not lifeboat's.
fn bare_transfer(
    sh: &Shell,
    bin: &Path,
    lab: &Lab,
    bindings: &[String],
    logs: &Path,
    data: &Data,
) -> Result<Duration> {
    lab.disk1.reset_blank(sh)?;
    lifeboat_bin::run_captured(
        sh,
        bin,
        &lifeboat_bin::args("provision", bindings, &["--only", "disk1", "--yes"]),
        logs,
    )?;
    drop_caches(sh)?;
    let usb = Mount::new(sh, &lab.usb.part(3), &lab.dir().join("linbkup"), &["ro"])?;
    let pool = Mount::new(
        sh,
        &lab.disk1.part(4),
        &lab.dir().join("pool"),
        super::restore_usb::POOL_OPTIONS,
    )?;
    let point = usb.path().join(POINTS_DIR).join(point_name(0));
    let snaps = pool.path().join("@snapshots");
    let (from, into) = (point.display().to_string(), snaps.display().to_string());
    let script = "btrfs send -q --proto 2 --compressed-data \"$1\" | btrfs receive -q \"$2\" \
                  && btrfs filesystem sync \"$2\"";
    let start = std::time::Instant::now();
    run_quiet(cmd!(sh, "bash -o pipefail -c {script} bare {from} {into}"))?;
    let took = start.elapsed();
    let home = pool.path().join("@home");
    let received = snaps.join(point_name(0));
    run_quiet(cmd!(sh, "btrfs subvolume delete {home}"))?;
    run_quiet(cmd!(sh, "btrfs subvolume snapshot {received} {home}"))?;
    pool.unmount()?;
    usb.unmount()?;
    verify(sh, lab, data, "the bare send | receive")?;
    Ok(took)
}

/// `write` into a fresh LINBKUP/scale-src, snapshotted and sent as the one @home point.
fn back_up(sh: &Shell, lab: &Lab, write: &dyn Fn(&Path) -> Result<Data>) -> Result<Data> {
    let usb = Mount::new(
        sh,
        &lab.usb.part(3),
        &lab.dir().join("linbkup"),
        USB_OPTIONS,
    )?;
    clear(sh, usb.path())?;
    let src = usb.path().join(SRC);
    run_quiet(cmd!(sh, "btrfs subvolume create {src}"))?;
    let data = write(&src).context("writing the row's data")?;
    let snaps = usb.path().join(SNAPS);
    std::fs::create_dir_all(&snaps)?;
    let snap = snaps.join(point_name(0));
    run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {src} {snap}"))?;
    send(sh, &snap, None, &usb.path().join(POINTS_DIR))?;
    // The received point is a copy of its own: the source goes, and with `discard` its
    // blocks go from the sparse image too (8 GiB rows on a shared disk).
    run_quiet(cmd!(sh, "btrfs subvolume delete -c {snap} {src}"))?;
    let top = usb.path();
    run_quiet(cmd!(sh, "btrfs subvolume sync {top}"))?;
    usb.unmount()?;
    Ok(data)
}

/// Every subvolume of an earlier row, deleted and cleaned up (so that the cleaner does
/// not run during the next row's timing).
fn clear(sh: &Shell, top: &Path) -> Result<()> {
    let mut gone = Vec::new();
    for dir in [POINTS_DIR, SNAPS] {
        let Ok(entries) = std::fs::read_dir(top.join(dir)) else {
            continue;
        };
        for e in entries {
            gone.push(e?.path());
        }
    }
    let src = top.join(SRC);
    if src.exists() {
        gone.push(src);
    }
    for chunk in gone.chunks(256) {
        run_quiet(cmd!(sh, "btrfs subvolume delete -c {chunk...}"))?;
    }
    run_quiet(cmd!(sh, "btrfs subvolume sync {top}"))?;
    std::fs::create_dir_all(top.join(POINTS_DIR))?;
    Ok(())
}

/// `btrfs send [-p PARENT] SNAP | btrfs receive INTO`.
fn send(sh: &Shell, snap: &Path, parent: Option<&Path>, into: &Path) -> Result<()> {
    let (snap, into) = (snap.display().to_string(), into.display().to_string());
    let parent = parent.map(|p| p.display().to_string()).unwrap_or_default();
    let script = "if [ -n \"$3\" ]; then p=(-p \"$3\"); else p=(); fi; \
                  btrfs send -q \"${p[@]}\" \"$1\" | btrfs receive -q \"$2\"";
    run_quiet(cmd!(
        sh,
        "bash -o pipefail -c {script} send {snap} {into} {parent}"
    ))?;
    Ok(())
}

/// `@home.YYYYMMDDTHHMM`, an hour apart for each `i`, btrbk's names.
fn point_name(i: u64) -> String {
    let (y, m, d, hh, mm, _) = lifeboat::time::civil(1_795_000_000 / 3600 * 3600 + i * 3600);
    format!("@home.{y:04}{m:02}{d:02}T{hh:02}{mm:02}")
}

struct PointsRow {
    points: u64,
    inventory: Duration,
    dry_run: Duration,
}

/// A chain of incremental @home points grown to each count in `counts`; at each, `rounds`
/// timings of `lifeboat inventory` and `lifeboat restore --latest --dry-run`.
fn grow_points(
    sh: &Shell,
    bin: &Path,
    lab: &Lab,
    bindings: &[String],
    log_dir: &Path,
    counts: &[u64],
    rounds: u32,
) -> Result<Vec<PointsRow>> {
    let usb = Mount::new(
        sh,
        &lab.usb.part(3),
        &lab.dir().join("linbkup"),
        USB_OPTIONS,
    )?;
    clear(sh, usb.path())?;
    let src = usb.path().join(SRC);
    run_quiet(cmd!(sh, "btrfs subvolume create {src}"))?;
    let snaps = usb.path().join(SNAPS);
    std::fs::create_dir_all(&snaps)?;
    let into = usb.path().join(POINTS_DIR);
    let mut made = 0u64;
    let mut out = Vec::new();
    for &count in counts {
        while made < count {
            interrupt::check()?;
            std::fs::write(src.join(format!("change{made}")), made.to_le_bytes())?;
            let snap = snaps.join(point_name(made));
            run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {src} {snap}"))?;
            let parent = made.checked_sub(1).map(|p| snaps.join(point_name(p)));
            send(sh, &snap, parent.as_deref(), &into)?;
            made += 1;
        }
        run_quiet(cmd!(sh, "sync"))?;
        let (mut inventory, mut dry_run) = (Vec::new(), Vec::new());
        let logs = log_dir.join(format!("{count}-points"));
        for _ in 0..rounds {
            let args = lifeboat_bin::args("inventory", bindings, &[]);
            let (listed, took) = lifeboat_bin::run_captured(sh, bin, &args, &logs)?;
            // A fast inventory that missed the points would be no figure at all.
            if !listed.contains(&format!("@home — {count} points")) {
                bail!("lifeboat inventory does not list the {count} @home points made:\n{listed}");
            }
            inventory.push(took);
            let args = lifeboat_bin::args(
                "restore",
                bindings,
                &[
                    "--from",
                    "usb",
                    "--latest",
                    "--subvol",
                    "@home",
                    "--dry-run",
                ],
            );
            dry_run.push(lifeboat_bin::run_captured(sh, bin, &args, &logs)?.1);
        }
        let row = PointsRow {
            points: count,
            inventory: median(&inventory).unwrap_or_default(),
            dry_run: median(&dry_run).unwrap_or_default(),
        };
        println!(
            "  {count} points: inventory {:.2} s, restore --dry-run {:.2} s",
            secs(Some(row.inventory)),
            secs(Some(row.dry_run))
        );
        out.push(row);
    }
    usb.unmount()?;
    Ok(out)
}

/// A table of `rows` (units, row) with the whole restore's, the transfer's and the bare
/// transfer's cost per unit, and the spread of the transfer's cost against
/// [`SPREAD_TARGET`]: the fixed costs (provisioning, probes) weigh on the smallest row and
/// say nothing about growth. The bare transfer's spread, beside it, is the growth the
/// kernel and the disks bring without lifeboat.
fn unit_table(title: &str, unit: &str, rows: &[(f64, &Row)], per: &str, scale: f64) -> String {
    let mut out = format!(
        "\n{title}:\n  {unit:>10} {:>10} {per:>12} {:>11} {per:>12} {:>8} {per:>12}\n",
        "restore s", "transfer s", "bare s"
    );
    let (mut costs, mut bare_costs) = (Vec::new(), Vec::new());
    for (units, row) in rows {
        let (whole, transfer) = (secs(median(&row.whole)), secs(median(&row.transfer)));
        let bare = secs(median(&row.bare));
        let units = units.max(1e-9);
        costs.push(transfer / units * scale);
        bare_costs.push(bare / units * scale);
        out += &format!(
            "  {:>10} {whole:>10.2} {:>12.3} {transfer:>11.2} {:>12.3} {bare:>8.2} {:>12.3}\n",
            if unit == "GiB" {
                format!("{units:.2}")
            } else {
                format!("{units:.0}")
            },
            whole / units * scale,
            transfer / units * scale,
            bare / units * scale,
        );
    }
    out += &spread_line(&costs, &format!("transfer {per}"));
    if let (Some(first), Some(last)) = (bare_costs.first(), bare_costs.last()) {
        out += &format!(
            "  (bare send | receive and sync, {per}, largest row against smallest: {:.2}x; no target: the growth without lifeboat)\n",
            last.max(*first) / last.min(*first).max(1e-12)
        );
    }
    out
}

/// The largest row's cost against the smallest row's, judged.
fn spread_line(costs: &[f64], what: &str) -> String {
    let (Some(first), Some(last)) = (costs.first(), costs.last()) else {
        return String::new();
    };
    let spread = last.max(*first) / last.min(*first).max(1e-12);
    format!(
        "  {what}, largest row against smallest: {spread:.2}x (target <= {SPREAD_TARGET}): {}\n",
        verdict(spread <= SPREAD_TARGET)
    )
}

fn points_table(rows: &[PointsRow]) -> String {
    let mut out = format!(
        "\ninventory and restore --dry-run by restore points:\n  {:>8} {:>12} {:>14} {:>12} {:>14}\n",
        "points", "inventory s", "ms/point", "dry-run s", "ms/point"
    );
    for r in rows {
        let n = r.points.max(1) as f64;
        let (inv, dry) = (r.inventory.as_secs_f64(), r.dry_run.as_secs_f64());
        out += &format!(
            "  {:>8} {inv:>12.3} {:>14.3} {dry:>12.3} {:>14.3}\n",
            r.points,
            inv / n * 1e3,
            dry / n * 1e3
        );
    }
    match rows.iter().find(|r| r.points == INVENTORY_TARGET_POINTS) {
        Some(r) => {
            out += &format!(
                "  inventory of {INVENTORY_TARGET_POINTS} points {:.3} s (target <= {INVENTORY_TARGET_S} s): {}\n",
                r.inventory.as_secs_f64(),
                verdict(r.inventory.as_secs_f64() <= INVENTORY_TARGET_S)
            );
        }
        None => {
            out += &format!(
                "  (no row of {INVENTORY_TARGET_POINTS} points: the target is not judged)\n"
            )
        }
    }
    let costs: Vec<f64> = rows
        .iter()
        .map(|r| r.dry_run.as_secs_f64() / r.points.max(1) as f64)
        .collect();
    let inv: Vec<f64> = rows
        .iter()
        .map(|r| r.inventory.as_secs_f64() / r.points.max(1) as f64)
        .collect();
    let grows = |c: &[f64]| match (c.first(), c.last()) {
        (Some(a), Some(b)) if a > &0.0 => b / a,
        _ => 0.0,
    };
    out += &format!(
        "  (ms/point falls as the points grow while fixed costs dominate; a superlinear step \
         shows as a rise: largest row's ms/point against the smallest's: inventory {:.2}x, \
         dry-run {:.2}x)\n",
        grows(&inv),
        grows(&costs)
    );
    out
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_names_are_btrbk_names_an_hour_apart_in_order() {
        let names: Vec<String> = (0..1000).map(point_name).collect();
        assert!(names[0].starts_with("@home.2026"), "{}", names[0]);
        assert_eq!(names[0].len(), "@home.20261120T0300".len());
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, names);
    }

    #[test]
    fn the_spread_is_judged_on_the_transfer_cost() {
        let row = |bytes: u64, whole: f64, transfer: f64| Row {
            bytes,
            files: 0,
            whole: vec![Duration::from_secs_f64(whole)],
            transfer: vec![Duration::from_secs_f64(transfer)],
            bare: vec![Duration::from_secs_f64(
                transfer / 2.0 * bytes as f64 / (1u64 << 30) as f64,
            )],
        };
        let (a, b) = (row(1 << 30, 5.0, 2.0), row(8 << 30, 20.0, 16.0));
        let text = unit_table("t", "GiB", &[(1.0, &a), (8.0, &b)], "s/GiB", 1.0);
        assert!(text.contains("1.00x (target <= 1.5): met"), "{text}");
        // The bare transfer's spread is shown (here 8.00x), never judged.
        assert!(
            text.contains("largest row against smallest: 8.00x; no target"),
            "{text}"
        );
        let c = row(8 << 30, 40.0, 32.0);
        let text = unit_table("t", "GiB", &[(1.0, &a), (8.0, &c)], "s/GiB", 1.0);
        assert!(text.contains("2.00x (target <= 1.5): missed"), "{text}");
    }

    #[test]
    fn inventory_is_judged_at_a_thousand_points_only() {
        let r = |points, inv: f64| PointsRow {
            points,
            inventory: Duration::from_secs_f64(inv),
            dry_run: Duration::from_secs_f64(inv),
        };
        let text = points_table(&[r(10, 0.1), r(1000, 1.2)]);
        assert!(text.contains("1.200 s (target <= 1 s): missed"), "{text}");
        let text = points_table(&[r(10, 0.1), r(100, 0.2)]);
        assert!(text.contains("the target is not judged"), "{text}");
    }
}
