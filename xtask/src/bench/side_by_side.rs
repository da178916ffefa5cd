//! `cargo xtask bench restore-usb --side-by-side`: two subvolumes received side by side
//! against one at a time, both by lifeboat, in one run.
//!
//! Set-up as `bench restore-usb`: disk1 and the USB disk provisioned by lifeboat, then
//! @home and Atlantis-meta each filled with half of N MiB of the incompressible set (on the
//! pool mounted `compress=zstd:1`), snapshotted and sent to LINBKUP. Each round blanks
//! disk1 and times `lifeboat restore --from usb --latest --subvol @home --subvol
//! Atlantis-meta --yes --receives 2`, then the same with `--receives 1`; which goes first
//! alternates, page caches are dropped before each, both results are checked.

use std::path::Path;

use anyhow::Result;
use xshell::{cmd, Shell};

use super::data::{Data, DataSet};
use super::restore_usb::{alternate, report, send_receive, verify_subvol, POOL_OPTIONS};
use crate::disks::{Lab, Mount};
use crate::flags::BenchRestoreUsb;
use crate::{lifeboat_bin, run_quiet};

/// Two lanes against one (the ratio of rates): worth its default where it passes this.
const TARGET: f64 = 1.05;
const SUBVOLS: [&str; 2] = ["@home", "Atlantis-meta"];
const STAMP: &str = "20261120T0300";

pub fn bench(sh: &Shell, bin: &Path, flags: &BenchRestoreUsb) -> Result<()> {
    println!(
        "\nbench restore-usb --side-by-side: {} and {}, {} MiB of incompressible data each",
        SUBVOLS[0],
        SUBVOLS[1],
        flags.mib / 2
    );
    let lab = Lab::create(sh, "bench-side-by-side")?;
    let log_dir = lab.dir().join("logs");
    let bindings = lab.bindings();
    super::restore_usb::provision_lab(sh, bin, &bindings, &log_dir)?;
    let pool = Mount::new(
        sh,
        &lab.disk1.part(4),
        &lab.dir().join("pool"),
        POOL_OPTIONS,
    )?;
    let usb = Mount::new(
        sh,
        &lab.usb.part(3),
        &lab.dir().join("linbkup"),
        POOL_OPTIONS,
    )?;
    let into = usb.path().join("atlantis");
    std::fs::create_dir_all(&into)?;
    let mut data = Vec::new();
    for subvol in SUBVOLS {
        let dir = pool.path().join(subvol);
        data.push(DataSet::Incompressible.write(&dir, (flags.mib / 2).max(1))?);
        let snap = pool
            .path()
            .join("@snapshots")
            .join(format!("{subvol}.{STAMP}"));
        run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {dir} {snap}"))?;
        send_receive(sh, &snap, &into)?;
    }
    usb.unmount()?;
    pool.unmount()?;
    let bytes: u64 = data.iter().map(|d| d.bytes).sum();
    let both = Data {
        files: data.iter().map(|d| d.files).sum(),
        bytes,
        sample: data[0].sample.clone(),
        zstd1_bytes: data.iter().map(|d| d.zstd1_bytes).sum(),
    };

    let restore = |lanes: &str| -> Result<std::time::Duration> {
        let mut extra = vec!["--from", "usb", "--latest"];
        for s in SUBVOLS {
            extra.extend(["--subvol", s]);
        }
        extra.extend(["--yes", "--receives", lanes]);
        let args = lifeboat_bin::args("restore", &bindings, &extra);
        let (_, took) = lifeboat_bin::run_captured(sh, bin, &args, &log_dir)?;
        for (subvol, d) in SUBVOLS.iter().zip(&data) {
            verify_subvol(sh, &lab, subvol, d, &format!("--receives {lanes}"))?;
        }
        Ok(took)
    };
    println!("  rounds: \"lifeboat\" is --receives 2, \"baseline\" is --receives 1");
    let (two, one) = alternate(
        sh,
        &lab,
        &both,
        flags.rounds,
        &mut || restore("2"),
        &mut || restore("1"),
    )?;
    lab.disk1.reset_blank(sh)?;
    lab.close()?;
    println!("\nlifeboat restore: --receives 2, the two subvolumes side by side");
    print!(
        "{}",
        report(
            "lifeboat restore --receives 1, one subvolume at a time",
            bytes,
            &two,
            &one,
            TARGET,
        )
    );
    Ok(())
}
