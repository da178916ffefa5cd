//! The kernel and its modules: which module files the live root needs (the listed ones and
//! everything modules.dep says they need), copied into the staging root, then `depmod`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::run_quiet;

/// What a kernel package holds, once extracted.
pub struct Kernel {
    /// `6.1.0-28-amd64`.
    pub version: String,
    pub vmlinuz: PathBuf,
    /// `<extracted>/lib/modules/<version>`.
    pub modules_dir: PathBuf,
    pub config: String,
}

impl Kernel {
    /// Find the kernel in an extracted package. Debian's packages leave modules.dep to
    /// their postinst, so depmod makes it here.
    pub fn find(sh: &Shell, extracted: &Path) -> Result<Kernel> {
        let boot = extracted.join("boot");
        let entries = fs::read_dir(&boot)
            .with_context(|| format!("the kernel package has no {}", boot.display()))?;
        let mut version = None;
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(v) = name.strip_prefix("vmlinuz-") {
                if version.replace(v.to_owned()).is_some() {
                    bail!("the kernel package holds more than one vmlinuz-*");
                }
            }
        }
        let version = version.context("the kernel package holds no /boot/vmlinuz-*")?;
        let config_path = boot.join(format!("config-{version}"));
        let config = fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let modules_dir = lib_modules(extracted).join(&version);
        if !modules_dir.join("modules.builtin").is_file() {
            bail!("the kernel package has no modules.builtin for {version}");
        }
        if !modules_dir.join("modules.dep").is_file() {
            let base = extracted;
            run_quiet(cmd!(sh, "depmod -b {base} {version}"))
                .context("running depmod on the kernel package's modules")?;
        }
        Ok(Kernel {
            vmlinuz: boot.join(format!("vmlinuz-{version}")),
            version,
            modules_dir,
            config,
        })
    }

    pub fn has_config(&self, option: &str) -> bool {
        let want = format!("{option}=y");
        self.config.lines().any(|l| l.trim() == want)
    }

    /// Copy the module files `wanted` needs into `root`'s /lib/modules/<version>/ and
    /// run depmod there. Returns the module names init should load (built-in ones left out).
    pub fn install_modules(
        &self,
        sh: &Shell,
        wanted: &[String],
        root: &Path,
    ) -> Result<Vec<String>> {
        let read = |name: &str| -> Result<String> {
            let p = self.modules_dir.join(name);
            fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let dep = parse_modules_dep(&read("modules.dep")?);
        let builtin = parse_builtin(&read("modules.builtin")?);
        let (files, load) = closure(wanted, &dep, &builtin, &self.version)?;
        let dest = root.join("lib/modules").join(&self.version);
        for rel in &files {
            let to = dest.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            fs::copy(self.modules_dir.join(rel), &to)
                .with_context(|| format!("copying module {rel}"))?;
        }
        for meta in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            let from = self.modules_dir.join(meta);
            if from.is_file() {
                fs::copy(&from, dest.join(meta)).with_context(|| format!("copying {meta}"))?;
            }
        }
        let (base, version) = (root, &self.version);
        run_quiet(cmd!(sh, "depmod -b {base} {version}"))
            .context("running depmod on the live root's modules")?;
        Ok(load)
    }
}

/// Debian 12 keeps modules in /lib, later releases in /usr/lib.
fn lib_modules(root: &Path) -> PathBuf {
    let usr = root.join("usr/lib/modules");
    if usr.is_dir() {
        usr
    } else {
        root.join("lib/modules")
    }
}

/// `kernel/fs/btrfs/btrfs.ko` → `btrfs`; dashes and underscores are the same to modprobe.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// modules.dep: `path: dep-path dep-path …` → name → (path, dependency paths).
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(path, deps)| {
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            (module_name(path), (path.to_owned(), deps))
        })
        .collect()
}

pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

/// The module files to ship (wanted modules and their dependencies) and the wanted names
/// that are modules (not built in), in the order given. A name that is neither is an error.
pub fn closure(
    wanted: &[String],
    dep: &BTreeMap<String, (String, Vec<String>)>,
    builtin: &BTreeSet<String>,
    version: &str,
) -> Result<(BTreeSet<String>, Vec<String>)> {
    let mut files = BTreeSet::new();
    let mut load = Vec::new();
    for want in wanted {
        let name = module_name(want);
        match dep.get(&name) {
            Some((path, deps)) => {
                files.insert(path.clone());
                // modules.dep lists the whole transitive closure on each line.
                files.extend(deps.iter().cloned());
                load.push(name);
            }
            None if builtin.contains(&name) => {}
            None => bail!(
                "kernel module `{want}` does not exist for kernel {version} (neither a module file nor built in; images/rescue.toml)"
            ),
        }
    }
    Ok((files, load))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/btrfs/btrfs.ko: kernel/crypto/xor.ko kernel/lib/raid6/raid6_pq.ko kernel/lib/libcrc32c.ko
kernel/crypto/xor.ko:
kernel/lib/raid6/raid6_pq.ko:
kernel/lib/libcrc32c.ko:
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/scsi_mod.ko:
";

    #[test]
    fn the_closure_follows_modules_dep() {
        let dep = parse_modules_dep(DEP);
        let builtin = parse_builtin("kernel/fs/efivarfs/efivarfs.ko\n");
        let wanted = ["usb-storage".to_owned(), "efivarfs".into(), "btrfs".into()];
        let (files, load) = closure(&wanted, &dep, &builtin, "6.1").unwrap();
        assert_eq!(load, ["usb_storage", "btrfs"]);
        assert_eq!(files.len(), 6);
        assert!(files.contains("kernel/lib/raid6/raid6_pq.ko"));
        assert!(files.contains("kernel/drivers/scsi/scsi_mod.ko"));
    }

    #[test]
    fn an_unknown_module_is_named() {
        let dep = parse_modules_dep(DEP);
        let err = closure(&["no_such_mod".into()], &dep, &BTreeSet::new(), "6.1").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`no_such_mod`") && msg.contains("6.1"),
            "{msg}"
        );
    }

    #[test]
    fn compressed_module_names() {
        assert_eq!(module_name("kernel/fs/vfat.ko.xz"), "vfat");
        assert_eq!(module_name("kernel/x/nls_cp437.ko.zst"), "nls_cp437");
    }
}
