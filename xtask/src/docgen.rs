//! `cargo xtask docgen`: lifeboat's man pages (`lifeboat.1`, one `lifeboat-<command>.1` per
//! subcommand) and its shell completions, generated from the clap definitions in
//! src/cli.rs, so that they say what `lifeboat --help` says and cannot drift. They are
//! build products, written under target/ and installed from there (README).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::flags::Docgen;

/// The shells whose completions are written, and the file each one reads.
const SHELLS: &[Shell] = &[Shell::Bash, Shell::Zsh, Shell::Fish];

pub fn run(args: &Docgen) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::target_dir().join("docgen"));
    let written = write(&out)?;
    for path in &written {
        println!("{}", path.display());
    }
    println!(
        "{} files in {} (install: see the README, \"Man pages and shell completions\")",
        written.len(),
        out.display()
    );
    Ok(())
}

/// Man pages into `out/man/`, completions into `out/completions/`; the files written.
pub fn write(out: &Path) -> Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        // Stale pages of a subcommand that is gone must not be installed.
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    let cmd = lifeboat::cli::Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing the man pages into {}", man.display()))?;
    for shell in SHELLS {
        clap_complete::generate_to(*shell, &mut cmd.clone(), "lifeboat", &completions)
            .with_context(|| format!("writing the {shell} completions"))?;
    }
    let mut written = Vec::new();
    for dir in [&man, &completions] {
        for entry in std::fs::read_dir(dir)? {
            written.push(entry?.path());
        }
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What groff and bash make of the generated files (not what we wrote into them).
    /// groff reads UTF-8 through preconv (`-k`), as `man` does.
    #[test]
    fn man_pages_render_and_bash_takes_the_completions() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let sub_pages = names.iter().filter(|n| n.starts_with("lifeboat-")).count();
        let commands = lifeboat::cli::Cli::command().get_subcommands().count();
        assert_eq!(sub_pages, commands, "{names:?}");
        for want in [
            "lifeboat.1",
            "lifeboat-restore.1",
            "lifeboat.bash",
            "_lifeboat",
            "lifeboat.fish",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }

        let page = dir.path().join("man/lifeboat-restore.1");
        let out = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww"])
            .arg(&page)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.trim().is_empty(),
            "{warnings}"
        );
        assert!(
            text.contains("lifeboat-restore") && text.contains("--from"),
            "{text}"
        );

        // bash sources the file and then knows how to complete `lifeboat`.
        let out = Command::new("bash")
            .args(["-c", "source \"$1\" && complete -p lifeboat", "bash"])
            .arg(dir.path().join("completions/lifeboat.bash"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("lifeboat"));
    }
}
