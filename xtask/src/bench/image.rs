//! `cargo xtask bench image`: the rescue image's size, a cold build (empty download cache),
//! a warm rebuild, whether builds from the same inputs are byte-identical, and how long
//! the image takes to boot to the menu under QEMU (TCG), with Secure Boot off and on
//! (rounds alternate), split into firmware (OVMF, shim and GRUB reading the kernel and
//! initramfs off the stick) and kernel + init.

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

    // Secure Boot off and on, alternating, so that a busy machine weighs on both alike.
    let mut wall = [Vec::new(), Vec::new()];
    let mut kernel = [Vec::new(), Vec::new()];
    let plain = qemu::Scenario::load(&project_root(), "boot")?;
    let mut secure = plain.clone();
    secure.secure_boot = true;
    secure.name = "boot-secure".into();
    let options = qemu::Options::default();
    for round in 1..=flags.rounds {
        for (i, scenario) in [&plain, &secure].into_iter().enumerate() {
            println!(
                "\n== bench image: boot {round} of {}, Secure Boot {}",
                flags.rounds,
                if i == 0 { "off" } else { "on" }
            );
            let outcome = qemu::run_scenario(sh, scenario, &warm_image, &options)?;
            let ready = outcome
                .menu_ready
                .context("the boot scenario passed without the menu's marker line")?;
            wall[i].push(ready);
            if let Some(up) = outcome.menu_uptime {
                kernel[i].push(Duration::from_secs_f64(up));
            }
        }
    }

    let last = builds.last().context("no build")?;
    let same = builds
        .iter()
        .all(|b| b.sha256 == last.sha256 && b.iso_sha256 == last.iso_sha256);
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
        "  {:<44} {:>8.1} MiB  {:>6} MiB  {}",
        "hybrid ISO size",
        mib(last.iso_size),
        SIZE_TARGET_MIB,
        met(mib(last.iso_size) <= SIZE_TARGET_MIB)
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
        "reproducible (same inputs, same bytes; image and ISO)",
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
    if let (Some(off), Some(on)) = (median(&wall[0]), median(&wall[1])) {
        println!(
            "  {:<44} {:>12}  {:>10}  met",
            "boot to menu (median), Secure Boot", "off / on", "target"
        );
        println!(
            "  {:<44} {:>5.1} / {:<4.1} s  {:>8} s  {}",
            "  QEMU start → menu",
            secs(off),
            secs(on),
            BOOT_TARGET_S,
            met(secs(off).max(secs(on)) <= BOOT_TARGET_S)
        );
        if let (Some(k_off), Some(k_on)) = (median(&kernel[0]), median(&kernel[1])) {
            println!(
                "  {:<44} {:>5.1} / {:<4.1} s",
                "  of which kernel + init (guest uptime)",
                secs(k_off),
                secs(k_on)
            );
            println!(
                "  {:<44} {:>5.1} / {:<4.1} s",
                "  of which firmware, shim, GRUB, the stick",
                (secs(off) - secs(k_off)).max(0.0),
                (secs(on) - secs(k_on)).max(0.0)
            );
        }
    }
    Ok(())
}
