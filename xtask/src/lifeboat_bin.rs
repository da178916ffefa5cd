//! Building and running the `lifeboat` binary for the bench and the demo.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::target_dir;

pub const SPEC: &str = "configs/atlantis.toml";

/// `cargo build --release` of the lifeboat package; the path of the binary.
pub fn build(sh: &Shell) -> Result<PathBuf> {
    if cmd!(
        sh,
        "cargo build --release --package lifeboat --bin lifeboat"
    )
    .run()
    .is_err()
    {
        bail!("could not build lifeboat with `cargo build --release` (cargo's errors are above)");
    }
    let bin = target_dir().join("release").join("lifeboat");
    if !bin.is_file() {
        bail!("cargo built lifeboat but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// Runs `lifeboat ARGS…` with its output captured; its run log goes under `log_dir`
/// rather than /var/log. Returns stdout and the wall time. On failure the error is one
/// sentence: the subcommand, the exit status and lifeboat's first line on stderr.
pub fn run_captured(
    sh: &Shell,
    bin: &Path,
    args: &[String],
    log_dir: &Path,
) -> Result<(String, Duration)> {
    let start = Instant::now();
    let out = cmd!(sh, "{bin} {args...}")
        .env("LIFEBOAT_LOG_DIR", log_dir)
        .quiet()
        .ignore_status()
        .output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("nothing on stderr");
        bail!(
            "lifeboat {} failed ({}): {said}",
            subcommand(args),
            out.status
        );
    }
    Ok((String::from_utf8_lossy(&out.stdout).into_owned(), elapsed))
}

/// Runs `lifeboat ARGS…` with its output on the terminal.
pub fn run_shown(sh: &Shell, bin: &Path, args: &[String], log_dir: &Path) -> Result<()> {
    let ran = cmd!(sh, "{bin} {args...}")
        .env("LIFEBOAT_LOG_DIR", log_dir)
        .run();
    if ran.is_err() {
        bail!(
            "lifeboat {} failed (its message is above)",
            subcommand(args)
        );
    }
    Ok(())
}

/// `[SUBCOMMAND, SPEC, --disk ID=DEVICE…, extra…]`.
pub fn args(subcommand: &str, bindings: &[String], extra: &[&str]) -> Vec<String> {
    let mut args = vec![subcommand.to_owned(), SPEC.to_owned()];
    args.extend(bindings.iter().cloned());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn subcommand(args: &[String]) -> &str {
    args.first().map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_one_sentence_with_the_first_stderr_line() {
        let sh = Shell::new().unwrap();
        let dir = std::env::temp_dir();
        let args = [
            "-c".to_owned(),
            "echo '  '>&2; echo 'no disk' >&2; echo log >&2; exit 3".to_owned(),
        ];
        let err = run_captured(&sh, Path::new("/bin/sh"), &args, &dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lifeboat -c failed (exit status: 3): no disk"
        );
        let args = ["-c".to_owned(), "echo planned".to_owned()];
        let (out, _) = run_captured(&sh, Path::new("/bin/sh"), &args, &dir).unwrap();
        assert_eq!(out, "planned\n");
    }
}
