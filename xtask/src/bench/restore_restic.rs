//! `cargo xtask bench restore-restic`: `lifeboat restore --from restic` against a bare
//! `restic restore` of the same snapshot, side by side in one run.
//!
//! Set-up: disk0 (factory layout) and disk1 (2 TB) on sparse loop devices; N MiB of mixed
//! incompressible data (a fifth in small files) backed up with restic into a local
//! repository. Each round blanks disk1 and times `lifeboat restore … --from restic
//! --latest --subvol @home --yes` (provisioning, preflight, `restic restore --verify` into a
//! partial subvolume with lifeboat's progress, the rename, checks), then blanks it again
//! and times the same work with plain tools: `lifeboat provision`, `restic restore
//! --verify` of the same snapshot into the pool, the move into @home. Page caches are
//! dropped before each side; which goes first alternates. Both results are checked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::data::write_mixed;
use super::restore_usb::{alternate, report, verify};
use crate::disks::{Lab, Mount};
use crate::flags::BenchRestore as Flags;
use crate::{deps, lifeboat_bin, require_root, run_quiet};

/// lifeboat against the bare `restic restore --verify` (the ratio of rates).
const RATIO_TARGET: f64 = 1.05;

pub fn restore_restic(sh: &Shell, flags: &Flags) -> Result<()> {
    require_root("bench restore-restic")?;
    deps::ensure(sh)?;
    let bin = lifeboat_bin::build(sh)?;
    // Both sides run the restic of the rescue image (with snapshot summaries, 0.17+), not
    // the build machine's.
    let restic_bin = crate::image::restic_binary(sh)?;
    let path = std::env::var("PATH").unwrap_or_default();
    let restic_dir = restic_bin.parent().context("restic's directory")?;
    sh.set_var("PATH", format!("{}:{path}", restic_dir.display()));
    let version = cmd!(sh, "restic version").quiet().read()?;
    println!("bench restore-restic: {}", version.trim());
    println!("bench restore-restic: disk0 512 GB (factory layout), disk1 2 TB, a local restic repository");
    let lab = Lab::create(sh, "bench-restic")?;
    let dir = lab.dir().to_path_buf();
    // Outside the lab, which goes at the end: the run logs say where the time went.
    let log_dir = crate::target_dir()
        .join("bench")
        .join("restore-restic-logs");
    let repo = dir.join("restic-repo");
    let password = dir.join("restic.pw");
    let profile = dir.join("restic.env");
    private(&password, "bench password\n")?;
    private(&profile, &format!("RESTIC_REPOSITORY={}\n", repo.display()))?;
    let src = dir.join("src/home");
    let data = write_mixed(&src, flags.mib).context("writing the data to back up")?;
    let envs = [
        ("RESTIC_REPOSITORY", repo.display().to_string()),
        ("RESTIC_PASSWORD_FILE", password.display().to_string()),
        (
            "RESTIC_CACHE_DIR",
            dir.join("restic-cache").display().to_string(),
        ),
    ];
    let restic = |args: &[&str]| -> Result<String> {
        let mut c = cmd!(sh, "restic {args...}").quiet();
        for (k, v) in &envs {
            c = c.env(k, v);
        }
        Ok(c.read()?)
    };
    restic(&["init", "-q"])?;
    let src_text = src.display().to_string();
    restic(&[
        "backup", "-q", "--host", "atlantis", "--tag", "LINUX", &src_text,
    ])?;
    let spec = dir.join("atlantis.toml");
    let text = std::fs::read_to_string(crate::project_root().join(lifeboat_bin::SPEC))?
        .replace("/etc/lifeboat/restic.env", &profile.display().to_string())
        .replace("/etc/lifeboat/restic.pw", &password.display().to_string())
        .replace(
            "\"/home\" = \"@home\"",
            &format!("\"{src_text}\" = \"@home\""),
        );
    std::fs::write(&spec, text)?;
    println!(
        "  @home: {} files, {:.2} GiB backed up into {}",
        data.files,
        data.bytes as f64 / (1u64 << 30) as f64,
        repo.display()
    );
    let bindings = vec![
        "--disk".to_owned(),
        format!("disk0={}", lab.disk0.dev().display()),
        "--disk".to_owned(),
        format!("disk1={}", lab.disk1.dev().display()),
    ];
    let spec_arg = spec.display().to_string();

    let (ours, base) = alternate(
        sh,
        &lab,
        &data,
        flags.rounds,
        &mut || {
            let mut args = vec!["restore".to_owned(), spec_arg.clone()];
            args.extend(bindings.iter().cloned());
            args.extend(
                ["--from", "restic", "--latest", "--subvol", "@home", "--yes"].map(String::from),
            );
            let (_, took) = lifeboat_bin::run_captured(sh, &bin, &args, &log_dir)?;
            verify(sh, &lab, &data, "lifeboat restore --from restic")?;
            Ok(took)
        },
        &mut || {
            let took = baseline(
                sh, &bin, &lab, &spec_arg, &bindings, &log_dir, &restic, &src_text,
            )?;
            verify(sh, &lab, &data, "the baseline")?;
            Ok(took)
        },
    )?;
    lab.disk1.reset_blank(sh)?;
    lab.close()?;
    print!(
        "{}",
        report(
            "bare restic restore --verify, with lifeboat provision and the move into @home",
            data.bytes,
            &ours,
            &base,
            RATIO_TARGET,
        )
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn baseline(
    sh: &Shell,
    bin: &Path,
    lab: &Lab,
    spec: &str,
    bindings: &[String],
    log_dir: &Path,
    restic: &dyn Fn(&[&str]) -> Result<String>,
    src: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let mut args = vec!["provision".to_owned(), spec.to_owned()];
    args.extend(bindings.iter().cloned());
    args.extend(["--only", "disk1", "--yes"].map(String::from));
    lifeboat_bin::run_captured(sh, bin, &args, log_dir)?;
    let pool = Mount::new(sh, &lab.disk1.part(4), &lab.dir().join("pool"), &[])?;
    // Inside @home: a rename cannot leave a subvolume.
    let home = pool.path().join("@home");
    let target: PathBuf = home.join(".restore");
    let target_text = target.display().to_string();
    restic(&[
        "restore",
        "latest",
        "--target",
        &target_text,
        "--include",
        src,
        "--verify",
    ])?;
    let restored = target.join(src.trim_start_matches('/'));
    for entry in std::fs::read_dir(&restored).context("reading what restic restored")? {
        let entry = entry?;
        std::fs::rename(entry.path(), home.join(entry.file_name()))
            .with_context(|| format!("moving {} into @home", entry.path().display()))?;
    }
    std::fs::remove_dir_all(&target)?;
    pool.unmount()?;
    run_quiet(cmd!(sh, "sync"))?;
    Ok(start.elapsed())
}

fn private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}
