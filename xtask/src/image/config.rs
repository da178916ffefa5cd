//! `images/rescue.toml`: what goes into the rescue image. Read and checked here; the
//! rest of the builder takes it as given.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rescue {
    pub image: Image,
    pub sources: BTreeMap<String, Source>,
    pub kernel: Kernel,
    pub boot: Boot,
    pub packages: Vec<PackageSet>,
    pub exclude: Exclude,
    pub rootfs: Rootfs,
    #[serde(default)]
    pub firmware: Vec<Firmware>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub file: String,
    pub max_size_mib: u64,
    pub free_mib: u64,
    pub label: String,
    pub fat_volume_id: u32,
    pub disk_guid: String,
    pub esp_guid: String,
    pub source_date_epoch: u64,
    pub cmdline: String,
    pub zstd_level: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Debian suites, fetched through this machine's own apt archives (see host_apt.rs).
    pub suites: Vec<String>,
    #[serde(default = "main_component")]
    pub components: Vec<String>,
}

fn main_component() -> Vec<String> {
    vec!["main".to_owned()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub source: String,
    pub package: String,
    pub modules: Vec<String>,
    /// Whole subtrees of the kernel's modules, shipped (not loaded): the init loads what
    /// the machine's devices ask for by modalias.
    #[serde(default)]
    pub trees: Vec<Tree>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// Reported with the size it adds.
    pub name: String,
    /// Relative to lib/modules/<version>/kernel/: a directory or one module file.
    pub paths: Vec<String>,
    /// Parts of those paths left out (same form).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// Firmware files from a Debian package, copied into the live root's /lib/firmware.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firmware {
    pub source: String,
    pub package: String,
    /// Relative to the package's lib/firmware/: directories or files.
    pub paths: Vec<String>,
}

/// The boot chain on the stick's ESP: signed loaders copied out of Debian packages, and
/// where the second stage reads its configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    pub source: String,
    pub files: Vec<BootFile>,
    /// Where on the ESP the builder writes grub.cfg.
    pub config: String,
    pub netboot: NetbootLoader,
    /// The signed chain for the machines' ESPs, into the live root.
    pub machine: Vec<MachineLoader>,
}

/// A signed loader the live root carries for lifeboat to install on a machine's ESPs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineLoader {
    pub source: String,
    pub package: String,
    /// Path inside the package.
    pub from: String,
    /// Path in the live root.
    pub to: String,
}

/// The second stage of the netboot directory: GRUB's network build, served under the name
/// shim fetches (`grubx64.efi`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetbootLoader {
    pub package: String,
    pub from: String,
    /// Where (relative to the TFTP directory) that GRUB reads grub.cfg.
    pub config: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootFile {
    pub package: String,
    /// Path inside the package.
    pub from: String,
    /// Path on the ESP.
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSet {
    pub source: String,
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclude {
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    pub overlay: String,
}

impl Rescue {
    pub fn load(path: &Path) -> Result<Rescue> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Rescue::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Rescue> {
        let rescue: Rescue = toml::from_str(text)?;
        rescue.check()?;
        Ok(rescue)
    }

    fn check(&self) -> Result<()> {
        let known = |what: &str, source: &str| -> Result<()> {
            if !self.sources.contains_key(source) {
                bail!(
                    "{what} names source `{source}`, which is not one of [sources.*] ({})",
                    self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(())
        };
        known("[kernel]", &self.kernel.source)?;
        known("[boot]", &self.boot.source)?;
        if !self
            .boot
            .files
            .iter()
            .any(|f| f.to.eq_ignore_ascii_case("EFI/BOOT/BOOTX64.EFI"))
        {
            bail!("[boot] files must put a loader at EFI/BOOT/BOOTX64.EFI (the removable-media path firmware starts)");
        }
        for set in &self.packages {
            known("[[packages]]", &set.source)?;
        }
        for fw in &self.firmware {
            known("[[firmware]]", &fw.source)?;
        }
        for tree in &self.kernel.trees {
            if tree.paths.is_empty() {
                bail!("[[kernel.trees]] `{}` names no paths", tree.name);
            }
            for p in tree.paths.iter().chain(&tree.exclude) {
                if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
                    bail!(
                        "[[kernel.trees]] `{}`: `{p}` must be a path under lib/modules/<version>/kernel/",
                        tree.name
                    );
                }
            }
        }
        if self.packages.is_empty() || self.packages[0].names.is_empty() {
            bail!("the first [[packages]] set must name the packages of the live root");
        }
        for (name, source) in &self.sources {
            if source.suites.is_empty() {
                bail!("[sources.{name}] has no `suites`");
            }
        }
        if self.image.label.is_empty() || self.image.label.len() > 11 {
            bail!("image.label must be 1 to 11 characters (a FAT label)");
        }
        if !(1..=19).contains(&self.image.zstd_level) {
            // Above 19 zstd uses windows the kernel's initramfs decompressor may refuse.
            bail!("image.zstd_level must be 1 to 19");
        }
        if self.image.max_size_mib < 40 {
            bail!("image.max_size_mib must be at least 40 (FAT32 needs 33 MiB)");
        }
        for guid in [&self.image.disk_guid, &self.image.esp_guid] {
            let hex: String = guid.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("`{guid}` is not a GUID");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_definition_loads() {
        let path = crate::project_root().join("images/rescue.toml");
        let rescue = Rescue::load(&path).unwrap();
        assert_eq!(rescue.packages[0].source, "bookworm");
        assert!(rescue.image.max_size_mib <= 128);
        assert!(rescue.kernel.modules.iter().any(|m| m == "virtio_blk"));
        assert!(rescue
            .packages
            .iter()
            .any(|s| s.source == "trixie" && s.names.iter().any(|n| n == "restic")));
    }

    #[test]
    fn mistakes_are_named() {
        let path = crate::project_root().join("images/rescue.toml");
        let good = std::fs::read_to_string(path).unwrap();
        let bad_source = good.replace("source = \"trixie\"", "source = \"sid\"");
        let err = format!("{:#}", Rescue::parse(&bad_source).unwrap_err());
        assert!(err.contains("source `sid`"), "{err}");
        let unknown_key = good.replace("zstd_level", "zstd_levle");
        assert!(Rescue::parse(&unknown_key).is_err());
        let bad_level = good.replace("zstd_level = 12", "zstd_level = 22");
        assert!(Rescue::parse(&bad_level).is_err());
    }
}
