//! `cargo xtask bench restore-usb`: `lifeboat restore --from usb` against a bare `btrfs send
//! | btrfs receive` of the same snapshot, side by side in one run.
//!
//! Set-up: disk0 (factory layout), disk1 (2 TB) and usb (4.5 TB) on sparse loop devices,
//! disk1 and usb provisioned by lifeboat; @home filled with mixed data (many small files
//! and large ones, incompressible), snapshotted btrbk-style and sent to LINBKUP. Each round
//! blanks disk1 twice: once for `lifeboat restore … --subvol @home --yes` (provisioning,
//! preflight, the receive through lifeboat's progress pipe, the writable snapshot, checks),
//! once for the baseline doing the same work with plain tools (`lifeboat provision`,
//! `btrfs send | btrfs receive`, `btrfs subvolume snapshot`). Page caches are dropped
//! before each side; which side goes first alternates. Nothing is asserted; the MB/s of
//! each side, the ratio of the medians and the target (≥ 0.9) are printed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use xshell::{cmd, Shell};

use super::provision::median;
use crate::disks::{Lab, Mount};
use crate::flags::BenchRestore;
use crate::{deps, interrupt, lifeboat_bin, require_root, run_quiet};

const RATIO_TARGET: f64 = 0.9;
const POINT: &str = "@home.20261120T0300";

pub fn restore_usb(sh: &Shell, flags: &BenchRestore) -> Result<()> {
    require_root("bench restore-usb")?;
    deps::ensure(sh)?;
    let bin = lifeboat_bin::build(sh)?;
    println!("bench restore-usb: disk0 512 GB (factory layout), disk1 2 TB, usb 4.5 TB");
    let lab = Lab::create(sh, "bench-restore")?;
    let log_dir = lab.dir().join("logs");
    let bindings = lab.bindings();
    lifeboat_bin::run_captured(
        sh,
        &bin,
        &lifeboat_bin::args(
            "provision",
            &bindings,
            &["--only", "disk1", "--only", "usb", "--yes"],
        ),
        &log_dir,
    )?;
    let data = fill_and_back_up(sh, &lab, flags.mib)?;
    println!(
        "  @home: {} files, {:.2} GiB, snapshot {POINT} sent to LINBKUP",
        data.files,
        data.bytes as f64 / (1u64 << 30) as f64
    );

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
            let (_, took) = lifeboat_bin::run_captured(sh, &bin, &args, &log_dir)?;
            verify(sh, &lab, &data, "lifeboat restore")?;
            Ok(took)
        },
        &mut || {
            let took = baseline(sh, &bin, &lab, &bindings, &log_dir)?;
            verify(sh, &lab, &data, "the baseline")?;
            Ok(took)
        },
    )?;
    lab.disk1.reset_blank(sh)?;
    lab.close()?;
    print!(
        "{}",
        report(
            "bare btrfs send | receive, with lifeboat provision and the snapshot",
            data.bytes,
            &ours,
            &base
        )
    );
    Ok(())
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

pub(super) struct Data {
    pub(super) files: u64,
    pub(super) bytes: u64,
    /// A large file and its bytes, to check a restored tree by content.
    pub(super) sample: (String, Vec<u8>),
}

/// Fill @home with `mib` MiB of incompressible data (a fifth in small files), snapshot it
/// read-only and send it to LINBKUP/atlantis/.
fn fill_and_back_up(sh: &Shell, lab: &Lab, mib: u64) -> Result<Data> {
    let pool = Mount::new(sh, &lab.disk1.part(4), &lab.dir().join("pool"), &[])?;
    let home = pool.path().join("@home");
    let data = write_mixed(&home, mib)?;
    let snaps = pool.path().join("@snapshots");
    let snap = snaps.join(POINT);
    run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {home} {snap}"))?;
    let usb = Mount::new(sh, &lab.usb.part(3), &lab.dir().join("linbkup"), &[])?;
    let into = usb.path().join("atlantis");
    std::fs::create_dir_all(&into)?;
    send_receive(sh, &snap, &into)?;
    usb.unmount()?;
    pool.unmount()?;
    Ok(data)
}

/// `mib` MiB of incompressible data under `dir`: a fifth in small files (512 B to 32 KiB
/// in 512 directories), the rest in files of up to 256 MiB.
pub(super) fn write_mixed(dir: &Path, mib: u64) -> Result<Data> {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let total = mib << 20;
    let small_budget = total / 5;
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::new();
    while bytes < small_budget {
        let len = 512 + (rng.next() % (32 << 10)) as usize;
        rng.fill(&mut buf, len);
        let sub = dir.join(format!("alice/small/{:03}", files % 512));
        write(&sub.join(format!("f{files}")), &buf)?;
        files += 1;
        bytes += len as u64;
    }
    let mut sample = None;
    let mut n = 0;
    while bytes < total {
        let len = ((total - bytes).min(256 << 20)) as usize;
        rng.fill(&mut buf, len);
        let rel = format!("alice/large/big{n}.bin");
        write(&dir.join(&rel), &buf)?;
        if sample.is_none() {
            sample = Some((rel, buf.clone()));
        }
        files += 1;
        bytes += len as u64;
        n += 1;
    }
    Ok(Data {
        files,
        bytes,
        sample: sample.context("no large file was written")?,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
    File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))
}

/// `btrfs send SNAP | btrfs receive DIR`, the two programs joined by a pipe.
fn send_receive(sh: &Shell, snap: &Path, into: &Path) -> Result<()> {
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
) -> Result<Duration> {
    let start = Instant::now();
    lifeboat_bin::run_captured(
        sh,
        bin,
        &lifeboat_bin::args("provision", bindings, &["--only", "disk1", "--yes"]),
        log_dir,
    )?;
    let usb = Mount::new(sh, &lab.usb.part(3), &lab.dir().join("linbkup"), &["ro"])?;
    let pool = Mount::new(sh, &lab.disk1.part(4), &lab.dir().join("pool"), &[])?;
    let snaps = pool.path().join("@snapshots");
    send_receive(sh, &usb.path().join("atlantis").join(POINT), &snaps)?;
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
    let pool = Mount::new(sh, &lab.disk1.part(4), &lab.dir().join("pool"), &["ro"])?;
    let home = pool.path().join("@home");
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
            "after {who}, @home holds {files} files and {bytes} bytes (expected {} and {}){}",
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

pub(super) fn report(what: &str, bytes: u64, ours: &[Duration], base: &[Duration]) -> String {
    let (Some(o), Some(b)) = (median(ours), median(base)) else {
        return "no rounds ran\n".into();
    };
    let ratio = mbs(bytes, o) / mbs(bytes, b);
    format!(
        "\nrestore of {:.2} GiB, median of {} rounds:\n  \
         lifeboat restore      {:>7.1} s  {:>6.0} MB/s\n  \
         baseline              {:>7.1} s  {:>6.0} MB/s  ({what})\n  \
         ratio {:.2} (target >= {RATIO_TARGET}): {}\n",
        bytes as f64 / (1u64 << 30) as f64,
        ours.len(),
        secs(o),
        mbs(bytes, o),
        secs(b),
        mbs(bytes, b),
        ratio,
        if ratio >= RATIO_TARGET {
            "met"
        } else {
            "NOT met"
        }
    )
}

/// Incompressible bytes, fast and without a crate.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) {
        buf.clear();
        buf.reserve(len);
        while buf.len() < len {
            let word = self.next().to_le_bytes();
            let take = (len - buf.len()).min(8);
            buf.extend_from_slice(&word[..take]);
        }
    }
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
        );
        assert!(text.contains("ratio 0.95 (target >= 0.9): met"), "{text}");
        let text = report("x", 2 << 30, &s(&[20.0]), &s(&[10.0]));
        assert!(
            text.contains("ratio 0.50 (target >= 0.9): NOT met"),
            "{text}"
        );
    }
}
