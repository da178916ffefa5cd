//! `cargo xtask bench restore-usb`: `lifeboat restore --from usb` against a bare `btrfs send
//! | btrfs receive` of the same snapshot, side by side in one run.
//!
//! Set-up, for each data set ([`DataSet`], both by default) in a lab of its own: disk0
//! (factory layout), disk1 (2 TB) and usb (4.5 TB) on sparse loop devices, disk1 and usb
//! provisioned by lifeboat; @home filled with the set on a pool mounted
//! `compress=zstd:1`, snapshotted btrbk-style and sent to LINBKUP (mounted so too). Each
//! round blanks disk1 twice: once for `lifeboat restore … --subvol @home --yes`
//! (provisioning, preflight, the receive through lifeboat's progress pipe, the writable
//! snapshot, checks), once for the baseline doing the same work with plain tools
//! (`lifeboat provision`, `btrfs send | btrfs receive` into the pool mounted as Atlantis
//! mounts it, `btrfs subvolume snapshot`). Page caches are dropped before each side;
//! which side goes first alternates. Nothing is asserted; the MB/s of each side, the ratio
//! of the medians against the set's target, the device limit and a breakdown of
//! lifeboat's median run (from its run log) are printed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use xshell::{cmd, Shell};

use super::breakdown;
pub(super) use super::data::Data;
use super::data::{DataSet, Xorshift};
use super::provision::median;
use super::verdict;
use crate::disks::{Lab, Mount};
use crate::flags::BenchRestoreUsb;
use crate::{deps, interrupt, lifeboat_bin, require_root, run_quiet};

/// lifeboat against the bare pipeline (the ratio of rates), per data set: compressed
/// extents sent as they are should pay off where there are some. A stream file holds
/// what `btrfs send -f` wrote, decompressed, and both sides compress it again: the
/// stream form has the plain target on both sets.
const INCOMPRESSIBLE_TARGET: f64 = 1.05;
const COMPRESSIBLE_TARGET: f64 = 1.3;
/// How Atlantis mounts its pools (configs/atlantis.toml, LINPOOL's mount_options); the
/// source pool and LINBKUP are mounted so when the data is written and backed up, and the
/// baseline receives into a pool mounted so.
pub(super) const POOL_OPTIONS: &[&str] = &["compress=zstd:1", "noatime"];
/// lifeboat's rate against the slower of the two devices' raw rates.
const LIMIT_TARGET: f64 = 0.6;
/// Bytes read from the backup device against the stream's bytes (`--streams`).
const READ_TARGET: f64 = 1.05;
const POINT: &str = "@home.20261120T0300";
/// The stream file of `POINT` on LINBKUP (`--streams`).
const STREAM: &str = "raw-snapshots/atlantis/@home.20261120T0300.btrfs";
/// A scratch place on disk1 for its raw write rate, in MiB from the start: inside the swap
/// partition's place (blank between rounds; the restore's provisioning writes only
/// mkswap's header there).
const SCRATCH_WRITE_MIB: u64 = 2048;
/// A file on CUSHION (the backup drive's unused partition) for the drive's raw read rate.
const SCRATCH_READ: &str = "bench-read-rate.bin";

pub fn restore_usb(sh: &Shell, flags: &BenchRestoreUsb) -> Result<()> {
    require_root("bench restore-usb")?;
    deps::ensure(sh)?;
    let bin = lifeboat_bin::build(sh)?;
    if flags.side_by_side {
        return super::side_by_side::bench(sh, &bin, flags);
    }
    let sets = match flags.set {
        Some(set) => vec![set],
        None => vec![DataSet::Incompressible, DataSet::Compressible],
    };
    let mut reports = Vec::new();
    for set in sets {
        let text = one_set(sh, &bin, flags, set)?;
        print!("{text}");
        reports.push(text);
    }
    if reports.len() > 1 {
        println!("\nall data sets, the same run:");
        for text in &reports {
            print!("{text}");
        }
    }
    Ok(())
}

/// The whole bench for one data set, in its own lab; returns the report.
fn one_set(sh: &Shell, bin: &Path, flags: &BenchRestoreUsb, set: DataSet) -> Result<String> {
    println!(
        "\nbench restore-usb, {} data: disk0 512 GB (factory layout), disk1 2 TB, usb 4.5 TB",
        set.name()
    );
    let lab = Lab::create(sh, &format!("bench-restore-{}", set.name()))?;
    let log_dir = lab.dir().join("logs");
    let bindings = lab.bindings();
    provision_lab(sh, bin, &bindings, &log_dir)?;
    let data = fill_and_back_up(sh, &lab, set, flags.mib, flags.streams)?;
    println!(
        "  @home: {} files, {:.2} GiB ({:.0} % of it as zstd:1 stores it), snapshot {POINT} \
         sent to LINBKUP{}",
        data.files,
        data.bytes as f64 / (1u64 << 30) as f64,
        100.0 * data.zstd1_bytes as f64 / data.bytes.max(1) as f64,
        if flags.streams {
            format!(" as the stream file {STREAM}")
        } else {
            String::new()
        }
    );
    let stream_bytes = if flags.streams {
        let usb = Mount::new(sh, &lab.usb.part(3), &lab.dir().join("linbkup"), &["ro"])?;
        let len = std::fs::metadata(usb.path().join(STREAM))?.len();
        usb.unmount()?;
        Some(len)
    } else {
        None
    };
    put_read_scratch(sh, &lab, data.bytes)?;
    let usb_dev = lab.usb.dev().to_path_buf();
    let (mut read_ours, mut read_base) = (Vec::new(), Vec::new());
    // Each lifeboat run's log and wall time, for the breakdown.
    let mut runs: Vec<(PathBuf, Duration)> = Vec::new();

    let (ours, base) = alternate(
        sh,
        &lab,
        &data,
        flags.rounds,
        &mut || {
            let args = lifeboat_bin::args(
                "restore",
                &bindings,
                &["--from", "usb", "--latest", "--subvol", "@home", "--yes"],
            );
            let logs = log_dir.join(format!("restore-{}", runs.len() + 1));
            let before = sectors_read(&usb_dev)?;
            let (_, took) = lifeboat_bin::run_captured(sh, bin, &args, &logs)?;
            read_ours.push((sectors_read(&usb_dev)? - before) * 512);
            verify(sh, &lab, &data, "lifeboat restore")?;
            runs.push((logs, took));
            Ok(took)
        },
        &mut || {
            let before = sectors_read(&usb_dev)?;
            let took = baseline(sh, bin, &lab, &bindings, &log_dir, flags.streams)?;
            read_base.push((sectors_read(&usb_dev)? - before) * 512);
            verify(sh, &lab, &data, "the baseline")?;
            Ok(took)
        },
    )?;
    // The devices' own rates, the same number of bytes, in the same run.
    let (mut write, mut read) = (Vec::new(), Vec::new());
    for _ in 0..flags.rounds {
        interrupt::check()?;
        lab.disk1.reset_blank(sh)?;
        drop_caches(sh)?;
        write.push(raw_write(sh, &lab, data.bytes)?);
        drop_caches(sh)?;
        read.push(raw_read(sh, &lab, data.bytes)?);
    }
    let breakdown = median_breakdown(&runs)?;
    lab.disk1.reset_blank(sh)?;
    lab.close()?;
    let target = match set {
        DataSet::Compressible if !flags.streams => COMPRESSIBLE_TARGET,
        _ => INCOMPRESSIBLE_TARGET,
    };
    let mut out = format!("\n{} data set:", set.name());
    out += &report(
        if flags.streams {
            "bare btrfs receive -f of the stream file, with lifeboat provision and the snapshot"
        } else {
            "bare btrfs send | receive, with lifeboat provision and the snapshot"
        },
        data.bytes,
        &ours,
        &base,
        target,
    );
    out += &limit_report(
        data.bytes,
        &ours,
        &write,
        &read,
        (set == DataSet::Incompressible).then_some(LIMIT_TARGET),
    );
    if let Some(stream) = stream_bytes {
        out += &read_report(stream, &read_ours, &read_base);
    }
    out += &breakdown;
    Ok(out)
}

/// `lifeboat provision --only disk1 --only usb --yes` of a bench's lab: the blank pool and
/// backup drive every restore bench starts from.
pub(super) fn provision_lab(
    sh: &Shell,
    bin: &Path,
    bindings: &[String],
    log_dir: &Path,
) -> Result<()> {
    lifeboat_bin::run_captured(
        sh,
        bin,
        &lifeboat_bin::args(
            "provision",
            bindings,
            &["--only", "disk1", "--only", "usb", "--yes"],
        ),
        log_dir,
    )?;
    Ok(())
}

/// The breakdown of the one lifeboat run that logged into `dir`.
pub(super) fn run_breakdown(dir: &Path) -> Result<breakdown::Breakdown> {
    let log = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("restore-"))
        })
        .with_context(|| format!("lifeboat restore left no run log in {}", dir.display()))?;
    let text =
        std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
    breakdown::parse(&text).with_context(|| format!("{} has no transfer in it", log.display()))
}

/// The breakdown of the lifeboat run whose time is the median's, from its run log.
fn median_breakdown(runs: &[(PathBuf, Duration)]) -> Result<String> {
    let times: Vec<Duration> = runs.iter().map(|(_, t)| *t).collect();
    let Some(mid) = median(&times) else {
        return Ok(String::new());
    };
    let Some((dir, wall)) = runs.iter().min_by_key(|(_, t)| t.abs_diff(mid)) else {
        return Ok(String::new());
    };
    let b = run_breakdown(dir)?;
    Ok(format!(
        "  where lifeboat's time went (the run nearest the median, {:.1} s, from its run log):\n{}",
        wall.as_secs_f64(),
        breakdown::table(&b, *wall)
    ))
}

/// Sectors (512 bytes) read from the whole device so far, from /sys/block/<dev>/stat
/// (its third field).
fn sectors_read(dev: &Path) -> Result<u64> {
    let name = dev
        .file_name()
        .and_then(|n| n.to_str())
        .context("a device without a name")?;
    let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat"))
        .with_context(|| format!("reading /sys/block/{name}/stat"))?;
    stat.split_whitespace()
        .nth(2)
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("/sys/block/{name}/stat has no sectors-read field: {stat}"))
}

/// `bytes` written to disk1 with O_DIRECT at [`SCRATCH_WRITE_MIB`], flushed.
fn raw_write(sh: &Shell, lab: &Lab, bytes: u64) -> Result<Duration> {
    let dev = lab.disk1.dev();
    let count = bytes.div_ceil(1 << 20).to_string();
    let seek = SCRATCH_WRITE_MIB.to_string();
    let start = Instant::now();
    run_quiet(cmd!(
        sh,
        "dd if=/dev/zero of={dev} bs=1M count={count} seek={seek} oflag=direct conv=fsync status=none"
    ))?;
    Ok(start.elapsed())
}

/// A file of `bytes` incompressible bytes on CUSHION, for [`raw_read`].
fn put_read_scratch(sh: &Shell, lab: &Lab, bytes: u64) -> Result<()> {
    let m = Mount::new(sh, &lab.usb.part(2), &lab.dir().join("cushion"), &[])?;
    let path = m.path().join(SCRATCH_READ);
    let mut f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
    let mut buf = Vec::new();
    let mut left = bytes.div_ceil(1 << 20) << 20;
    while left > 0 {
        rng.fill(&mut buf, 1 << 20);
        f.write_all(&buf)?;
        left -= 1 << 20;
    }
    f.sync_all()?;
    drop(f);
    m.unmount()
}

/// The scratch file on CUSHION read with O_DIRECT: the backup device's raw read rate.
fn raw_read(sh: &Shell, lab: &Lab, bytes: u64) -> Result<Duration> {
    let m = Mount::new(sh, &lab.usb.part(2), &lab.dir().join("cushion"), &["ro"])?;
    let path = m.path().join(SCRATCH_READ);
    let count = bytes.div_ceil(1 << 20).to_string();
    let start = Instant::now();
    run_quiet(cmd!(
        sh,
        "dd if={path} of=/dev/null bs=1M count={count} iflag=direct status=none"
    ))?;
    let took = start.elapsed();
    m.unmount()?;
    Ok(took)
}

/// lifeboat's rate as a fraction of the slower device's raw rate (medians).
fn limit_report(
    bytes: u64,
    ours: &[Duration],
    write: &[Duration],
    read: &[Duration],
    target: Option<f64>,
) -> String {
    let (Some(o), Some(w), Some(r)) = (median(ours), median(write), median(read)) else {
        return String::new();
    };
    let limit = mbs(bytes, w).min(mbs(bytes, r));
    let fraction = mbs(bytes, o) / limit;
    format!(
        "  device limit: disk1 raw O_DIRECT write {:.0} MB/s, backup device raw O_DIRECT read \
         {:.0} MB/s (medians of {}, same bytes)\n  \
         lifeboat at {:.2} of the lower {}\n",
        mbs(bytes, w),
        mbs(bytes, r),
        write.len(),
        fraction,
        match target {
            Some(t) => format!("(target >= {t}): {}", verdict(fraction >= t)),
            None => "(no target for this set: fewer bytes reach the disk)".to_owned(),
        }
    )
}

/// Bytes read from the backup device per restore against the stream file's size.
fn read_report(stream: u64, ours: &[u64], base: &[u64]) -> String {
    let worst = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let ratio = worst(ours) as f64 / stream.max(1) as f64;
    format!(
        "  read from the backup device per restore (most of {} rounds): lifeboat {:.1} MB, \
         baseline {:.1} MB, the stream file {:.1} MB\n  \
         lifeboat read {:.3}x the stream (target <= {READ_TARGET}): {}\n",
        ours.len(),
        worst(ours) as f64 / 1e6,
        worst(base) as f64 / 1e6,
        stream as f64 / 1e6,
        ratio,
        verdict(ratio <= READ_TARGET)
    )
}

/// `rounds` rounds of both sides on a blank disk1 and cold caches, the side that goes
/// first alternating; a line per round. Returns (ours, baseline) times.
pub(super) fn alternate(
    sh: &Shell,
    lab: &Lab,
    data: &Data,
    rounds: u32,
    ours: &mut dyn FnMut() -> Result<Duration>,
    base: &mut dyn FnMut() -> Result<Duration>,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut o, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut line = format!("round {}/{rounds}:", round + 1);
        let ours_first = round % 2 == 0;
        for our_turn in [ours_first, !ours_first] {
            interrupt::check()?;
            lab.disk1.reset_blank(sh)?;
            drop_caches(sh)?;
            let took = if our_turn { ours()? } else { base()? };
            line += &format!(
                "  {} {:.1} s ({:.0} MB/s)",
                if our_turn { "lifeboat" } else { "baseline" },
                secs(took),
                mbs(data.bytes, took)
            );
            if our_turn { &mut o } else { &mut b }.push(took);
        }
        println!("{line}");
    }
    Ok((o, b))
}

/// Fill @home with `mib` MiB of `set`, snapshot it read-only and send it to
/// LINBKUP/atlantis/ (or, with `streams`, into a stream file [`STREAM`]). Both pools are
/// mounted as Atlantis mounts them, so compressible data lands compressed on both; the
/// stream file is written without compression, so that the bytes read back are the
/// stream's.
fn fill_and_back_up(sh: &Shell, lab: &Lab, set: DataSet, mib: u64, streams: bool) -> Result<Data> {
    let pool = Mount::new(
        sh,
        &lab.disk1.part(4),
        &lab.dir().join("pool"),
        POOL_OPTIONS,
    )?;
    let home = pool.path().join("@home");
    let data = set.write(&home, mib)?;
    let snaps = pool.path().join("@snapshots");
    let snap = snaps.join(POINT);
    run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {home} {snap}"))?;
    let usb_options = if streams { &[][..] } else { POOL_OPTIONS };
    let usb = Mount::new(
        sh,
        &lab.usb.part(3),
        &lab.dir().join("linbkup"),
        usb_options,
    )?;
    if streams {
        let file = usb.path().join(STREAM);
        std::fs::create_dir_all(file.parent().unwrap_or(usb.path()))?;
        run_quiet(cmd!(sh, "btrfs send -q -f {file} {snap}"))?;
    } else {
        let into = usb.path().join("atlantis");
        std::fs::create_dir_all(&into)?;
        send_receive(sh, &snap, &into)?;
    }
    usb.unmount()?;
    pool.unmount()?;
    Ok(data)
}

/// `btrfs send SNAP | btrfs receive DIR`, the two programs joined by a pipe.
pub(super) fn send_receive(sh: &Shell, snap: &Path, into: &Path) -> Result<()> {
    let (snap, into) = (snap.display().to_string(), into.display().to_string());
    let script = "btrfs send -q \"$1\" | btrfs receive -q \"$2\"";
    run_quiet(cmd!(
        sh,
        "bash -o pipefail -c {script} send-receive {snap} {into}"
    ))?;
    Ok(())
}

/// What `lifeboat restore --subvol @home` does, with plain tools.
fn baseline(
    sh: &Shell,
    bin: &Path,
    lab: &Lab,
    bindings: &[String],
    log_dir: &Path,
    streams: bool,
) -> Result<Duration> {
    let start = Instant::now();
    lifeboat_bin::run_captured(
        sh,
        bin,
        &lifeboat_bin::args("provision", bindings, &["--only", "disk1", "--yes"]),
        log_dir,
    )?;
    let usb = Mount::new(sh, &lab.usb.part(3), &lab.dir().join("linbkup"), &["ro"])?;
    let pool = Mount::new(
        sh,
        &lab.disk1.part(4),
        &lab.dir().join("pool"),
        POOL_OPTIONS,
    )?;
    let snaps = pool.path().join("@snapshots");
    if streams {
        let file = usb.path().join(STREAM);
        run_quiet(cmd!(sh, "btrfs receive -q -f {file} {snaps}"))?;
    } else {
        send_receive(sh, &usb.path().join("atlantis").join(POINT), &snaps)?;
    }
    let home = pool.path().join("@home");
    run_quiet(cmd!(sh, "btrfs subvolume delete {home}"))?;
    let point = snaps.join(POINT);
    run_quiet(cmd!(sh, "btrfs subvolume snapshot {point} {home}"))?;
    pool.unmount()?;
    usb.unmount()?;
    run_quiet(cmd!(sh, "sync"))?;
    Ok(start.elapsed())
}

/// The restored @home has every file, every byte (counted) and the sample's content.
pub(super) fn verify(sh: &Shell, lab: &Lab, data: &Data, who: &str) -> Result<()> {
    verify_subvol(sh, lab, "@home", data, who)
}

/// The restored `subvol` has every file, every byte (counted) and the sample's content.
pub(super) fn verify_subvol(
    sh: &Shell,
    lab: &Lab,
    subvol: &str,
    data: &Data,
    who: &str,
) -> Result<()> {
    let pool = Mount::new(sh, &lab.disk1.part(4), &lab.dir().join("pool"), &["ro"])?;
    let home = pool.path().join(subvol);
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = vec![home.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                files += 1;
                bytes += m.len();
            }
        }
    }
    let sample = std::fs::read(home.join(&data.sample.0))?;
    pool.unmount()?;
    if (files, bytes) != (data.files, data.bytes) || sample != data.sample.1 {
        bail!(
            "after {who}, {subvol} holds {files} files and {bytes} bytes (expected {} and {}){}",
            data.files,
            data.bytes,
            if sample != data.sample.1 {
                "; the sample file differs"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub(super) fn drop_caches(sh: &Shell) -> Result<()> {
    run_quiet(cmd!(sh, "sync"))?;
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .map_err(|e| anyhow!("dropping the page cache: {e}"))
}

pub(super) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(super) fn mbs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

pub(super) fn report(
    what: &str,
    bytes: u64,
    ours: &[Duration],
    base: &[Duration],
    target: f64,
) -> String {
    let (Some(o), Some(b)) = (median(ours), median(base)) else {
        return "no rounds ran\n".into();
    };
    let ratio = mbs(bytes, o) / mbs(bytes, b);
    format!(
        "\nrestore of {:.2} GiB, median of {} rounds:\n  \
         lifeboat restore      {:>7.1} s  {:>6.0} MB/s\n  \
         baseline              {:>7.1} s  {:>6.0} MB/s  ({what})\n  \
         ratio {:.2} (target >= {target}): {}\n",
        bytes as f64 / (1u64 << 30) as f64,
        ours.len(),
        secs(o),
        mbs(bytes, o),
        secs(b),
        mbs(bytes, b),
        ratio,
        verdict(ratio >= target)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_judges_the_ratio_of_medians() {
        let s = |v: &[f64]| {
            v.iter()
                .map(|x| Duration::from_secs_f64(*x))
                .collect::<Vec<_>>()
        };
        let text = report(
            "x",
            2 << 30,
            &s(&[10.0, 11.0, 12.0]),
            &s(&[10.0, 10.5, 30.0]),
            0.9,
        );
        assert!(text.contains("ratio 0.95 (target >= 0.9): met"), "{text}");
        let text = report("x", 2 << 30, &s(&[20.0]), &s(&[10.0]), 1.3);
        assert!(
            text.contains("ratio 0.50 (target >= 1.3): missed"),
            "{text}"
        );
    }
}
