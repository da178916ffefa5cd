//! `cargo xtask bench image`: the rescue image's size, a cold build (empty download cache),
//! a warm rebuild, whether builds from the same inputs are byte-identical, and how long
//! the image takes to boot to the menu under QEMU (TCG), split into firmware (OVMF, and
//! systemd-boot reading the kernel and initramfs off the stick) and kernel + init.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};
use xshell::Shell;

use super::provision::median;
use crate::flags::BenchImage;
use crate::{image, project_root, qemu, target_dir};

const SIZE_TARGET_MIB: f64 = 128.0;
const WARM_TARGET_S: f64 = 30.0;
const BOOT_TARGET_S: f64 = 15.0;

pub fn image(sh: &Shell, flags: &BenchImage) -> Result<()> {
    let dir = target_dir()
        .join("bench")
        .join(format!("image-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run(sh, flags, &dir);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn run(sh: &Shell, flags: &BenchImage, dir: &std::path::Path) -> Result<()> {
    let mut builds = Vec::new();
    let cold = if flags.no_cold {
        None
    } else {
        println!(
            "\n== bench image: cold build (fresh download cache in {})",
            dir.display()
        );
        let report = image::build(
            sh,
            &image::Options {
                output: Some(dir.join("cold.img")),
                cache: Some(dir.join("cache")),
                ..Default::default()
            },
        )?;
        let elapsed = report.elapsed;
        builds.push(report);
        Some(elapsed)
    };
    println!("\n== bench image: build with the usual cache (warms it when needed)");
    builds.push(image::build(
        sh,
        &image::Options {
            output: Some(dir.join("first.img")),
            ..Default::default()
        },
    )?);
    println!("\n== bench image: warm rebuild");
    let warm = image::build(
        sh,
        &image::Options {
            output: Some(dir.join("warm.img")),
            ..Default::default()
        },
    )?;
    let warm_image = warm.path.clone();
    builds.push(warm);

    let mut wall = Vec::new();
    let mut kernel = Vec::new();
    let scenario = qemu::Scenario::load(&project_root(), "boot")?;
    let options = qemu::Options::default();
    for round in 1..=flags.rounds {
        println!("\n== bench image: boot {round} of {}", flags.rounds);
        let outcome = qemu::run_scenario(sh, &scenario, &warm_image, &options)?;
        let ready = outcome
            .menu_ready
            .context("the boot scenario passed without the menu's marker line")?;
        wall.push(ready);
        if let Some(up) = outcome.menu_uptime {
            kernel.push(Duration::from_secs_f64(up));
        }
    }

    let last = builds.last().context("no build")?;
    let same = builds.iter().all(|b| b.sha256 == last.sha256);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let secs = |d: Duration| d.as_secs_f64();
    let met = |ok: bool| if ok { "yes" } else { "NO" };
    println!("\nbench image ({} boot rounds)", flags.rounds);
    println!("  {:<44} {:>12}  {:>10}  met", "", "value", "target");
    let size = mib(last.size);
    println!(
        "  {:<44} {:>8.1} MiB  {:>6} MiB  {}",
        "image size",
        size,
        SIZE_TARGET_MIB,
        met(size <= SIZE_TARGET_MIB)
    );
    println!(
        "  {:<44} {:>8.1} MiB  ({:.1} MiB uncompressed)",
        "initramfs, zstd",
        mib(last.initrd_compressed),
        mib(last.initrd_raw)
    );
    match cold {
        Some(c) => println!(
            "  {:<44} {:>10.1} s  (downloads included; the static lifeboat is cargo's cached build)",
            "cold build (empty package cache)",
            secs(c)
        ),
        None => println!("  {:<44} {:>12}", "cold build", "skipped (--no-cold)"),
    }
    let w = secs(last.elapsed);
    println!(
        "  {:<44} {:>10.1} s  {:>8} s  {}",
        "warm rebuild",
        w,
        WARM_TARGET_S,
        met(w <= WARM_TARGET_S)
    );
    println!(
        "  {:<44} {:>12}  {} builds, sha256 {}",
        "reproducible (same inputs, same bytes)",
        if same { "yes" } else { "NO" },
        builds.len(),
        if same {
            last.sha256.clone()
        } else {
            builds
                .iter()
                .map(|b| b.sha256[..12].to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        }
    );
    if let Some(m) = median(&wall) {
        let min = wall.iter().min().copied().unwrap_or(m);
        println!(
            "  {:<44} {:>10.1} s  {:>8} s  {}  (min {:.1} s)",
            "boot to menu, QEMU start → menu (median)",
            secs(m),
            BOOT_TARGET_S,
            met(secs(m) <= BOOT_TARGET_S),
            secs(min)
        );
        if let Some(k) = median(&kernel) {
            println!(
                "  {:<44} {:>10.1} s",
                "  of which kernel + init (guest uptime)",
                secs(k)
            );
            println!(
                "  {:<44} {:>10.1} s",
                "  of which firmware, loader, loading the stick",
                (secs(m) - secs(k)).max(0.0)
            );
        }
    }
    Ok(())
}
