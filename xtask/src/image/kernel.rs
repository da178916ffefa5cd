//! The kernel and its modules: which module files the live root needs (the listed ones,
//! everything modules.dep says they need, and their soft dependencies), copied into the
//! staging root, then `depmod`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::config::Tree;
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

    /// Copy the module files `wanted` and the `trees` need into `root`'s
    /// /lib/modules/<version>/ and run depmod there. Returns the module names init should
    /// load (built-in ones left out) and what each tree added.
    pub fn install_modules(
        &self,
        sh: &Shell,
        wanted: &[String],
        trees: &[Tree],
        root: &Path,
    ) -> Result<Installed> {
        let read = |name: &str| -> Result<String> {
            let p = self.modules_dir.join(name);
            fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let dep = parse_modules_dep(&read("modules.dep")?);
        let builtin = parse_builtin(&read("modules.builtin")?);
        let soft = Soft {
            deps: parse_softdep(&read("modules.softdep")?),
            aliases: parse_alias(&read("modules.alias")?),
        };
        let (mut files, load) = closure(wanted, &dep, &builtin, &soft, &self.version)?;
        let mut added = Vec::new();
        for tree in trees {
            let members = tree_members(&dep, tree);
            if members.is_empty() {
                bail!(
                    "[[kernel.trees]] `{}` holds no module of kernel {} (images/rescue.toml)",
                    tree.name,
                    self.version
                );
            }
            let (more, _) = closure(&members, &dep, &builtin, &soft, &self.version)?;
            let new: Vec<&String> = more.iter().filter(|f| !files.contains(*f)).collect();
            let mut bytes = 0;
            for rel in &new {
                let p = self.modules_dir.join(rel);
                bytes += fs::metadata(&p)
                    .with_context(|| format!("reading {}", p.display()))?
                    .len();
            }
            added.push(TreeAdded {
                name: tree.name.clone(),
                modules: new.len(),
                bytes,
            });
            files.extend(more);
        }
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
        Ok(Installed {
            load,
            modules: files.len(),
            trees: added,
        })
    }
}

pub struct Installed {
    /// Loaded by init at boot, in this order.
    pub load: Vec<String>,
    /// Module files shipped in all.
    pub modules: usize,
    pub trees: Vec<TreeAdded>,
}

/// What one of images/rescue.toml's trees added beyond the listed modules and the trees
/// before it.
pub struct TreeAdded {
    pub name: String,
    pub modules: usize,
    /// Uncompressed; the initramfs is zstd.
    pub bytes: u64,
}

/// The modules (by name) whose files lie under one of the tree's paths and under none of
/// its exclusions.
pub fn tree_members(dep: &BTreeMap<String, (String, Vec<String>)>, tree: &Tree) -> Vec<String> {
    let under = |rel: &str, p: &str| {
        let p = p.trim_end_matches('/');
        rel == p || rel.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
    };
    dep.iter()
        .filter(|(_, (path, _))| {
            let rel = path.strip_prefix("kernel/").unwrap_or(path);
            tree.paths.iter().any(|p| under(rel, p)) && !tree.exclude.iter().any(|p| under(rel, p))
        })
        .map(|(name, _)| name.clone())
        .collect()
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

/// Soft dependencies: modules a module needs at run time without linking against them,
/// named by module or by alias (btrfs → `crypto-crc32c` → crc32c_generic). Without them a
/// module can fail to load: libcrc32c refuses to start when no crc32c implementation is
/// there, and with it btrfs.
#[derive(Default)]
pub struct Soft {
    /// module → the names its `pre:` and `post:` soft dependencies give.
    pub deps: BTreeMap<String, Vec<String>>,
    /// alias → modules (plain aliases only; device patterns are of no use here).
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// modules.softdep: `softdep btrfs pre: crypto-crc32c sha256 post: x`.
pub fn parse_softdep(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("softdep") {
            continue;
        }
        let Some(module) = words.next() else { continue };
        let names = words.filter(|w| !w.ends_with(':')).map(str::to_owned);
        out.entry(module_name(module)).or_default().extend(names);
    }
    out
}

/// modules.alias: `alias crypto-crc32c crc32c_generic`.
pub fn parse_alias(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("alias"), Some(alias), Some(module)) =
            (words.next(), words.next(), words.next())
        {
            if !alias.contains(['*', '?', '[']) {
                out.entry(alias.to_owned())
                    .or_default()
                    .push(module_name(module));
            }
        }
    }
    out
}

/// The module files to ship (wanted modules, their dependencies and soft dependencies) and
/// the wanted names that are modules (not built in), in the order given. A wanted name
/// that is neither is an error; a soft dependency that is neither is built in or optional.
pub fn closure(
    wanted: &[String],
    dep: &BTreeMap<String, (String, Vec<String>)>,
    builtin: &BTreeSet<String>,
    soft: &Soft,
    version: &str,
) -> Result<(BTreeSet<String>, Vec<String>)> {
    let mut files = BTreeSet::new();
    let mut load = Vec::new();
    let mut todo: Vec<String> = Vec::new();
    for want in wanted {
        let name = module_name(want);
        if dep.contains_key(&name) {
            todo.push(name.clone());
            load.push(name);
        } else if !builtin.contains(&name) {
            bail!(
                "kernel module `{want}` does not exist for kernel {version} (neither a module file nor built in; images/rescue.toml)"
            );
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some((path, deps)) = dep.get(&name) else {
            continue;
        };
        files.insert(path.clone());
        // modules.dep lists the whole transitive closure on each line; their soft
        // dependencies still need a look.
        for d in deps {
            files.insert(d.clone());
            todo.push(module_name(d));
        }
        for wanted in soft.deps.get(&name).into_iter().flatten() {
            let as_module = module_name(wanted);
            if dep.contains_key(&as_module) {
                todo.push(as_module);
            } else if let Some(modules) = soft.aliases.get(wanted.as_str()) {
                todo.extend(modules.iter().cloned());
            }
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
        let (files, load) = closure(&wanted, &dep, &builtin, &Soft::default(), "6.1").unwrap();
        assert_eq!(load, ["usb_storage", "btrfs"]);
        assert_eq!(files.len(), 6);
        assert!(files.contains("kernel/lib/raid6/raid6_pq.ko"));
        assert!(files.contains("kernel/drivers/scsi/scsi_mod.ko"));
    }

    #[test]
    fn an_unknown_module_is_named() {
        let dep = parse_modules_dep(DEP);
        let err = closure(
            &["no_such_mod".into()],
            &dep,
            &BTreeSet::new(),
            &Soft::default(),
            "6.1",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`no_such_mod`") && msg.contains("6.1"),
            "{msg}"
        );
    }

    /// Debian 6.1's lines: btrfs needs crc32c through libcrc32c's soft dependency, which
    /// names an alias; sha256 is built in.
    #[test]
    fn soft_dependencies_come_along() {
        let dep = parse_modules_dep(&format!(
            "{DEP}kernel/arch/x86/crypto/crc32c-intel.ko:\nkernel/crypto/crc32c_generic.ko:\nkernel/crypto/xxhash_generic.ko:\n"
        ));
        let soft = Soft {
            deps: parse_softdep(
                "# Soft dependencies extracted from modules themselves.\n\
                 softdep btrfs pre: sha256 xxhash64 post: crypto-crc32c\n\
                 softdep libcrc32c pre: crc32c\n",
            ),
            aliases: parse_alias(
                "alias crc32c crc32c_generic\nalias crc32c crc32c-intel\n\
                 alias xxhash64 xxhash_generic\nalias pci:v00008086d* e1000e\n",
            ),
        };
        assert_eq!(soft.aliases.len(), 2, "device patterns are left out");
        let builtin = parse_builtin("kernel/crypto/sha256_generic.ko\n");
        let (files, load) = closure(&["btrfs".into()], &dep, &builtin, &soft, "6.1").unwrap();
        assert_eq!(load, ["btrfs"]);
        for f in [
            "kernel/lib/libcrc32c.ko",
            "kernel/crypto/crc32c_generic.ko",
            "kernel/arch/x86/crypto/crc32c-intel.ko",
            "kernel/crypto/xxhash_generic.ko",
        ] {
            assert!(files.contains(f), "{f} missing from {files:?}");
        }
        assert!(!files.iter().any(|f| f.contains("usb")));
    }

    #[test]
    fn a_tree_is_its_paths_less_its_exclusions() {
        let dep = parse_modules_dep(&format!(
            "{DEP}kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko\n\
             kernel/drivers/scsi/qla2xxx/qla2xxx.ko: kernel/drivers/scsi/scsi_transport_fc.ko\n\
             kernel/drivers/scsi/scsi_transport_fc.ko:\n\
             kernel/drivers/scsiother.ko:\n\
             kernel/drivers/pci/controller/vmd.ko:\n\
             kernel/drivers/pci/controller/pci-hyperv.ko:\n"
        ));
        let tree = Tree {
            name: "storage".into(),
            paths: vec![
                "drivers/scsi/".into(),
                "drivers/pci/controller/vmd.ko".into(),
            ],
            exclude: vec!["drivers/scsi/qla2xxx".into()],
        };
        assert_eq!(
            tree_members(&dep, &tree),
            ["scsi_mod", "scsi_transport_fc", "sd_mod", "vmd"]
        );
        // What a tree pulls in from outside itself comes along.
        let (files, _) = closure(
            &tree_members(&dep, &tree),
            &dep,
            &BTreeSet::new(),
            &Soft::default(),
            "6.1",
        )
        .unwrap();
        assert!(!files
            .iter()
            .any(|f| f.contains("qla2xxx") || f.contains("hyperv")));
        assert_eq!(files.len(), 4);
    }

    #[test]
    fn compressed_module_names() {
        assert_eq!(module_name("kernel/fs/vfat.ko.xz"), "vfat");
        assert_eq!(module_name("kernel/x/nls_cp437.ko.zst"), "nls_cp437");
    }
}
