//! `cargo xtask test`: every test phase in order: tidy, the rescue image (before the cargo
//! tests: tests/drill.rs boots the restored fixture with its kernel and systemd-boot), cargo
//! test, and every QEMU scenario in tests/qemu/ booted from that image.

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::{deps, image, interrupt, qemu, require_root};

struct Phase {
    name: &'static str,
    what: &'static str,
    run: fn(&Shell) -> Result<()>,
}

const PHASES: &[Phase] = &[
    Phase {
        name: "tidy",
        what: "cargo fmt --check and clippy with warnings as errors",
        run: tidy,
    },
    Phase {
        name: "image",
        what: "cargo xtask image: the rescue USB image from images/rescue.toml (tests/drill.rs boots its kernel)",
        run: build_image,
    },
    Phase {
        name: "cargo-test",
        what: "unit tests and integration tests on loop devices",
        run: cargo_test,
    },
    Phase {
        name: "qemu",
        what: "every scenario in tests/qemu/, booted from that image under OVMF",
        run: qemu_scenarios,
    },
];

pub fn run(sh: &Shell) -> Result<()> {
    require_root("test")?;
    deps::ensure(sh)?;
    for (n, phase) in PHASES.iter().enumerate() {
        interrupt::check()?;
        println!(
            "\n== phase {}/{}: {} ({})",
            n + 1,
            PHASES.len(),
            phase.name,
            phase.what
        );
        (phase.run)(sh).with_context(|| format!("test phase {} failed", phase.name))?;
    }
    println!("\nall {} test phases passed", PHASES.len());
    Ok(())
}

fn tidy(sh: &Shell) -> Result<()> {
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
    Ok(())
}

fn cargo_test(sh: &Shell) -> Result<()> {
    let image = image::default_output()?;
    cmd!(sh, "cargo test --workspace")
        .env("LIFEBOAT_RESCUE_IMAGE", image)
        .run()?;
    Ok(())
}

fn build_image(sh: &Shell) -> Result<()> {
    let report = image::build(sh, &image::Options::default())?;
    image::print_report(&report);
    image::verify::checked(sh, &report.path)
}

fn qemu_scenarios(sh: &Shell) -> Result<()> {
    let options = qemu::Options {
        image: Some(image::default_output()?),
        ..Default::default()
    };
    qemu::run(sh, &options)
}
