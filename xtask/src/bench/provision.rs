//! `cargo xtask bench provision`: lifeboat against the same work done with plain tools.
//!
//! Each round resets disk1 and usb to blank, then times `lifeboat plan` and `lifeboat
//! provision --yes` on the real-size loop devices, and (after another reset) the baseline:
//! sgdisk, partx, mkfs.*, btrfs subvolume create. Which side goes first alternates, so a
//! drift in the machine (page cache, the host) hits both. Plain text; nothing is asserted.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use xshell::{cmd, Shell};

use crate::disks::{
    lay_out, mib_ceil, Fs, Lab, LoopDisk, Mount, Part, Size, ATLANTIS_DISK1 as DISK1, FACTORY_DISK0,
};
use crate::flags::BenchProvision;
use crate::{deps, interrupt, lifeboat_bin, require_root, run_quiet};

const PLAN_TARGET_MS: f64 = 50.0;
const RATIO_TARGET: f64 = 1.2;
const BASELINE_HINT: &str =
    "`cargo xtask bench provision --baseline-only` times the baseline without lifeboat";

/// configs/atlantis.toml's usb; decimal sizes rounded up to whole MiB.
const USB: &[Part] = &[
    Part {
        name: "WINBKUP",
        size: Size::Mib(mib_ceil(1_000_000_000_000)),
        typecode: "0700",
        fs: Fs::Ntfs,
        label: Some("WINBKUP"),
    },
    Part {
        name: "CUSHION",
        size: Size::Mib(mib_ceil(500_000_000_000)),
        typecode: "8300",
        fs: Fs::Ext4,
        label: Some("CUSHION"),
    },
    Part {
        name: "LINBKUP",
        size: Size::Rest,
        typecode: "8300",
        fs: Fs::Btrfs(&[]),
        label: Some("LINBKUP"),
    },
];

#[derive(Default)]
struct Timings {
    plan: Vec<Duration>,
    provision: Vec<Duration>,
    baseline: Vec<Duration>,
}

pub fn provision(sh: &Shell, flags: &BenchProvision) -> Result<()> {
    require_root("bench provision")?;
    deps::ensure(sh)?;
    let bin = if flags.baseline_only {
        None
    } else {
        Some(lifeboat_bin::build(sh).map_err(|err| anyhow!("{err:#}; {BASELINE_HINT}"))?)
    };

    println!("bench provision: setting up disk0 512 GB (factory layout), disk1 2 TB, usb 4.5 TB");
    let lab = Lab::create(sh, "bench")?;
    for disk in lab.disks() {
        println!(
            "  {:<6} {}  {}",
            disk.id,
            disk.dev().display(),
            disk.image.display()
        );
    }
    let log_dir = lab.dir().join("logs");
    let bindings = lab.bindings();

    let mut timings = Timings::default();
    for round in 0..flags.rounds {
        let ours_first = round % 2 == 0;
        let mut line = format!("round {}/{}:", round + 1, flags.rounds);
        for ours in [ours_first, !ours_first] {
            interrupt::check()?;
            match (ours, &bin) {
                (true, Some(bin)) => {
                    reset(sh, &lab)?;
                    let (plan, provision) = time_lifeboat(sh, bin, &bindings, &log_dir)?;
                    verify(sh, &lab, "lifeboat provision")?;
                    line += &format!(
                        "  plan {:.1} ms, provision {:.2} s",
                        ms(plan),
                        provision.as_secs_f64()
                    );
                    timings.plan.push(plan);
                    timings.provision.push(provision);
                }
                (true, None) => {}
                (false, _) => {
                    reset(sh, &lab)?;
                    let baseline = time_baseline(sh, &lab)?;
                    verify(sh, &lab, "the baseline")?;
                    line += &format!("  baseline {:.2} s", baseline.as_secs_f64());
                    timings.baseline.push(baseline);
                }
            }
        }
        println!("{line}");
    }
    reset(sh, &lab)?;
    lab.close()?;
    print!("{}", report(&timings, flags.rounds));
    Ok(())
}

fn reset(sh: &Shell, lab: &Lab) -> Result<()> {
    lab.disk1.reset_blank(sh)?;
    lab.usb.reset_blank(sh)
}

fn time_lifeboat(
    sh: &Shell,
    bin: &Path,
    bindings: &[String],
    log_dir: &Path,
) -> Result<(Duration, Duration)> {
    let run = |args: Vec<String>| {
        lifeboat_bin::run_captured(sh, bin, &args, log_dir)
            .map(|(_, took)| took)
            .map_err(|err| anyhow!("{err:#} (on the bench's blank disks); {BASELINE_HINT}"))
    };
    let plan = run(lifeboat_bin::args("plan", bindings, &[]))?;
    let provision = run(lifeboat_bin::args("provision", bindings, &["--yes"]))?;
    Ok((plan, provision))
}

fn time_baseline(sh: &Shell, lab: &Lab) -> Result<Duration> {
    let start = std::time::Instant::now();
    lay_out(sh, &lab.disk1, DISK1, lab.dir()).context("baseline on disk1")?;
    lay_out(sh, &lab.usb, USB, lab.dir()).context("baseline on usb")?;
    Ok(start.elapsed())
}

/// Both sides must leave the same thing behind, as blkid sees it, and disk0 untouched.
fn verify(sh: &Shell, lab: &Lab, who: &str) -> Result<()> {
    for (disk, layout) in [
        (&lab.disk0, FACTORY_DISK0),
        (&lab.disk1, DISK1),
        (&lab.usb, USB),
    ] {
        check_layout(sh, disk, layout, lab.dir()).with_context(|| format!("after {who}"))?;
    }
    Ok(())
}

fn check_layout(sh: &Shell, disk: &LoopDisk, layout: &[Part], scratch: &Path) -> Result<()> {
    let parts = disk.kernel_partitions()?;
    if parts.len() != layout.len() {
        bail!(
            "{} ({}) has {} partitions known to the kernel, the layout has {}",
            disk.id,
            disk.dev().display(),
            parts.len(),
            layout.len()
        );
    }
    for (dev, part) in parts.iter().zip(layout) {
        let export = run_quiet(cmd!(sh, "blkid -p -o export {dev}"))?;
        let field = |key: &str| {
            export
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("")
                .to_owned()
        };
        let (fs, label) = (field("TYPE"), field("LABEL"));
        if fs != part.fs.blkid_type() || label != part.label.unwrap_or("") {
            bail!(
                "{} holds {fs} labelled `{label}`, expected {} labelled `{}`",
                dev.display(),
                part.fs.blkid_type(),
                part.label.unwrap_or("")
            );
        }
        if let Fs::Btrfs(expected) = part.fs {
            check_subvolumes(sh, dev, expected, scratch)?;
        }
    }
    Ok(())
}

fn check_subvolumes(sh: &Shell, dev: &Path, expected: &[&str], scratch: &Path) -> Result<()> {
    let mnt = Mount::new(sh, dev, &scratch.join("verify"), &["ro"])?;
    let path = mnt.path();
    let listing = run_quiet(cmd!(sh, "btrfs subvolume list {path}"))?;
    mnt.unmount()?;
    // Lines read "ID 256 gen 7 top level 5 path @home".
    let mut found: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_once(" path ").map(|(_, p)| p.trim()))
        .collect();
    let mut expected = expected.to_vec();
    found.sort_unstable();
    expected.sort_unstable();
    if found != expected {
        bail!(
            "{} has subvolumes [{}], expected [{}]",
            dev.display(),
            found.join(" "),
            expected.join(" ")
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(super) fn median(samples: &[Duration]) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

fn min(samples: &[Duration]) -> Option<Duration> {
    samples.iter().min().copied()
}

fn report(t: &Timings, rounds: u32) -> String {
    let mut out = format!(
        "\nbench provision: {rounds} round(s), disks 512 GB / 2 TB / 4.5 TB (sparse files on loop devices)\n\n"
    );
    out += &format!(
        "{:<20} {:>10} {:>10}   {:<8} {}\n",
        "", "median", "min", "target", "met"
    );
    let row = |name: &str, samples: &[Duration], scale: fn(Duration) -> f64, digits: usize| match (
        median(samples),
        min(samples),
    ) {
        (Some(med), Some(lo)) => {
            format!(
                "{name:<20} {:>10.digits$} {:>10.digits$}",
                scale(med),
                scale(lo)
            )
        }
        _ => format!("{name:<20} {:>10} {:>10}", "-", "-"),
    };
    let met = super::verdict;

    let plan_ok = median(&t.plan).map(|m| ms(m) <= PLAN_TARGET_MS);
    out += &row("plan (ms)", &t.plan, ms, 1);
    match plan_ok {
        Some(ok) => out += &format!("   <= {PLAN_TARGET_MS:<5} {}\n", met(ok)),
        None => out += "\n",
    }
    out += &row("provision (s)", &t.provision, |d| d.as_secs_f64(), 2);
    out += "\n";
    out += &row("baseline (s)", &t.baseline, |d| d.as_secs_f64(), 2);
    out += "\n";

    let ratio = |ours: Option<Duration>, theirs: Option<Duration>| {
        Some(ours?.as_secs_f64() / theirs?.as_secs_f64())
    };
    let ratio_med = ratio(median(&t.provision), median(&t.baseline));
    let ratio_min = ratio(min(&t.provision), min(&t.baseline));
    match (ratio_med, ratio_min) {
        (Some(med), Some(lo)) => {
            out += &format!(
                "{:<20} {med:>10.2} {lo:>10.2}   <= {RATIO_TARGET:<5} {}\n",
                "provision/baseline",
                met(med <= RATIO_TARGET)
            );
        }
        _ => out += &format!("{:<20} {:>10} {:>10}\n", "provision/baseline", "-", "-"),
    }
    out += "\n(targets are judged on the median; the baseline's two sgdisk runs each include \
            sgdisk's own pause of about 1 s after writing a table)\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: &[f64]) -> Vec<Duration> {
        secs.iter().map(|&x| Duration::from_secs_f64(x)).collect()
    }

    #[test]
    fn median_and_min() {
        assert_eq!(median(&s(&[3.0, 1.0, 2.0])), Some(Duration::from_secs(2)));
        assert_eq!(
            median(&s(&[4.0, 1.0, 2.0, 3.0])),
            Some(Duration::from_secs_f64(2.5))
        );
        assert_eq!(median(&[]), None);
        assert_eq!(min(&s(&[3.0, 1.0, 2.0])), Some(Duration::from_secs(1)));
    }

    #[test]
    fn report_judges_targets_on_the_median() {
        let t = Timings {
            plan: s(&[0.010, 0.200, 0.012]),
            provision: s(&[2.0, 2.6, 2.4]),
            baseline: s(&[2.0, 2.0, 2.0]),
        };
        let text = report(&t, 3);
        let plan = text.lines().find(|l| l.starts_with("plan (ms)")).unwrap();
        assert!(
            plan.contains("12.0") && plan.contains("10.0") && plan.ends_with(" met"),
            "{plan}"
        );
        let ratio = text
            .lines()
            .find(|l| l.starts_with("provision/baseline"))
            .unwrap();
        assert!(
            ratio.contains("1.20") && ratio.contains("1.00") && ratio.ends_with(" met"),
            "{ratio}"
        );

        let slow = Timings {
            provision: s(&[3.0]),
            baseline: s(&[2.0]),
            ..Timings::default()
        };
        let text = report(&slow, 1);
        let ratio = text
            .lines()
            .find(|l| l.starts_with("provision/baseline"))
            .unwrap();
        assert!(ratio.ends_with("missed"), "{ratio}");
        assert!(text
            .lines()
            .any(|l| l.starts_with("plan (ms)") && l.contains('-')));
    }

    #[test]
    fn layouts_fit_the_real_disks() {
        let fixed = |layout: &[Part]| -> u64 {
            layout
                .iter()
                .map(|p| match p.size {
                    Size::Mib(m) => m * 1024 * 1024,
                    Size::Rest => 0,
                })
                .sum()
        };
        assert!(fixed(DISK1) < crate::disks::DISK1_BYTES);
        assert!(fixed(USB) < crate::disks::USB_BYTES);
        assert_eq!(DISK1.len(), 4);
        assert_eq!(USB.len(), 3);
    }
}
