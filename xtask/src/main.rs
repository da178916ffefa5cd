//! `cargo xtask …`: the project's own automation, in Rust with `xshell`, so that it runs
//! wherever cargo runs and nothing rots in shell scripts. See `cargo xtask help`.

mod bench;
mod demo;
mod deps;
mod disks;
mod docgen;
mod flags;
mod image;
mod interrupt;
mod lifeboat_bin;
mod qemu;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use xshell::{Cmd, Shell};

use crate::flags::Xtask;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let task = Xtask::parse(std::env::args().skip(1)).unwrap_or_else(|e| e.exit());
    interrupt::install()?;
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match task {
        Xtask::Help(text) => {
            print!("{text}");
            Ok(())
        }
        Xtask::Deps => deps::ensure(&sh),
        Xtask::Test => test::run(&sh),
        Xtask::BenchProvision(args) => bench::provision(&sh, &args),
        Xtask::BenchImage(args) => bench::image(&sh, &args),
        Xtask::BenchRestoreUsb(args) => bench::restore_usb(&sh, &args),
        Xtask::BenchRestoreRestic(args) => bench::restore_restic(&sh, &args),
        Xtask::BenchScale(args) => bench::scale(&sh, &args),
        Xtask::Demo(args) => demo::run(&sh, &args),
        Xtask::Image(options) => image::run(&sh, &options),
        Xtask::Qemu(options) => qemu::run(&sh, &options),
        Xtask::Docgen(args) => docgen::run(&args),
    }
}

/// The workspace root: xtask lives one level below it.
pub(crate) fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` like cargo does.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// The effective uid, from /proc (no libc call, so no `unsafe`).
pub(crate) fn euid() -> Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    parse_euid(&status).context("no Uid line in /proc/self/status")
}

fn parse_euid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    // Real, effective, saved, filesystem.
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn require_root(task: &str) -> Result<()> {
    if euid()? != 0 {
        bail!("`cargo xtask {task}` needs root because it creates loop devices and formats them; run it as root");
    }
    Ok(())
}

/// Runs `cmd` without echoing it or letting its chatter through; on failure the error
/// carries the command line and what the program wrote to stderr. Returns stdout.
pub(crate) fn run_quiet(cmd: Cmd<'_>) -> Result<String> {
    let shown = cmd.to_string();
    let out = cmd.quiet().ignore_status().output()?;
    if !out.status.success() {
        interrupt::check().with_context(|| format!("while running `{shown}`"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The last lines: tools warn first and state the error at the end.
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = lines[lines.len().saturating_sub(3)..].join(" / ");
        match out.status.code() {
            Some(code) => bail!("`{shown}` failed with exit status {code}: {said}"),
            None => bail!("`{shown}` was killed by a signal: {said}"),
        }
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euid_is_the_second_uid_field() {
        let status = "Name:\tcat\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n";
        assert_eq!(parse_euid(status), Some(0));
        assert_eq!(parse_euid("Name:\tcat\n"), None);
    }

    #[test]
    fn run_quiet_reports_stderr() {
        let sh = Shell::new().unwrap();
        let err = run_quiet(xshell::cmd!(sh, "ls /nonexistent-xtask-path")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ls /nonexistent-xtask-path"), "{msg}");
        assert!(msg.contains("No such file"), "{msg}");
        assert_eq!(run_quiet(xshell::cmd!(sh, "echo hi")).unwrap(), "hi\n");
    }
}
