//! What the boot setup finds on the disks ([`OnDisk`] for [`super::setup::plan`]): which
//! filesystems are there, which roots have an /etc/fstab, which ESPs hold the loader and
//! mirror the first. Reads only: the pool is mounted read-only without log replay, the
//! ESPs are read in-process from the disk's bytes (no vfat module needed, nothing mounted).
//! Whatever the pending provisioning plan is about to make anew counts as not there yet.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::apply::{fat, mount::Mount};
use crate::blockdev;
use crate::plan::{Action, Binding, Plan};
use crate::probe::Device;
use crate::spec::{Encryption, PartType, Spec};

use super::setup::{OnDisk, Slot};
use super::sync_plan::{self, Node, Tree};

/// What the pending plan makes anew: whole disks, partitions, and root subvolumes.
#[derive(Default)]
struct Pending {
    disks: BTreeSet<String>,
    partitions: BTreeSet<Slot>,
    subvolumes: BTreeSet<String>,
}

impl Pending {
    fn of(plan: &Plan) -> Pending {
        let mut p = Pending::default();
        for d in &plan.disks {
            for a in &d.actions {
                match a {
                    Action::WipeDisk { .. } | Action::CreateGpt { .. } => {
                        p.disks.insert(d.id.clone());
                    }
                    Action::LuksFormat { partition, .. } | Action::Mkfs { partition, .. } => {
                        p.partitions.insert((d.id.clone(), partition.number));
                    }
                    Action::CreateSubvolume { name, .. } => {
                        p.subvolumes.insert(name.clone());
                    }
                    Action::RegisterPartitions { .. } | Action::EnableQuotas { .. } => {}
                }
            }
        }
        p
    }

    fn makes(&self, slot: &Slot) -> bool {
        self.disks.contains(&slot.0) || self.partitions.contains(slot)
    }
}

/// Look at the bound disks as they are, with `pending` still to be carried out (an empty
/// plan when it already was). `loader` is this system's loader for the firmware (its
/// files: path on the ESP, bytes), when it has one. `entries` is left false: the firmware is
/// the caller's to ask.
pub fn probe(
    spec: &Spec,
    bindings: &[Binding],
    pending: &Plan,
    loader: Option<&[(&str, Vec<u8>)]>,
) -> OnDisk {
    let pending = Pending::of(pending);
    let mut out = OnDisk::default();
    let loader_sha: Option<Vec<(&str, [u8; 32])>> = loader.map(|files| {
        files
            .iter()
            .map(|(path, b)| (*path, Sha256::digest(b).into()))
            .collect()
    });
    let disks = spec.disks_esp_first();
    let mut first_esp: Option<Option<Tree>> = None;
    for disk in disks {
        let Some(binding) = bindings.iter().find(|b| b.id == disk.id) else {
            continue;
        };
        let dev = &binding.device;
        for (i, part) in disk.partitions.iter().enumerate() {
            let Some(fs) = part.fs else { continue };
            let slot: Slot = (disk.id.clone(), i as u32 + 1);
            let fresh = pending.makes(&slot);
            let found = found_fs(dev, slot.1);
            let want = if part.encrypt == Encryption::Luks2 {
                "crypto_LUKS"
            } else {
                fs.blkid_type()
            };
            if fresh || found.as_deref() == Some(want) {
                out.filesystems.push(slot.clone());
            }
            let luks = part.encrypt == Encryption::Luks2;
            if fresh || found.as_deref() != Some(want) {
                if part.part_type == PartType::Esp && fresh && first_esp.is_none() {
                    // A new first ESP: nothing is on it yet, so nothing mirrors it.
                    first_esp = Some(None);
                }
                continue;
            }
            let roots: Vec<&str> = part
                .subvolumes
                .iter()
                .filter(|s| s.root && !pending.subvolumes.contains(&s.name))
                .map(|s| s.name.as_str())
                .collect();
            if !roots.is_empty() && luks {
                out.fstabs
                    .extend(roots_with_fstab_in_luks(dev, slot.1, part, &roots));
            } else if !roots.is_empty() {
                let node = blockdev::partition_node(&dev.path, slot.1);
                out.fstabs.extend(roots_with_fstab(&node, &roots));
            }
            if luks {
                continue;
            }
            if part.part_type == PartType::Esp {
                let tree = esp_tree(dev, slot.1);
                if let (Some(tree), Some(sha)) = (&tree, loader_sha.as_deref()) {
                    if holds_loader(tree, sha) {
                        out.loaders.push(slot.clone());
                    }
                }
                match &first_esp {
                    None => first_esp = Some(tree),
                    Some(Some(first)) => {
                        if tree
                            .as_ref()
                            .is_some_and(|t| sync_plan::plan(first, t).is_empty())
                        {
                            out.mirrors.push(slot.clone());
                        }
                    }
                    Some(None) => {}
                }
            }
        }
    }
    out
}

/// The blkid type of partition `number` as the disk's probe found it.
fn found_fs(dev: &Device, number: u32) -> Option<String> {
    dev.gpt()?
        .partitions
        .iter()
        .find(|p| p.number == number)?
        .fs
        .as_ref()
        .map(|f| f.fstype.clone())
}

/// The roots among `roots` whose /etc/fstab exists. None when the pool cannot be mounted
/// (the step is planned then, and its own mount says what is wrong).
fn roots_with_fstab(node: &Path, roots: &[&str]) -> Vec<String> {
    // Read-only and without replaying a crashed system's log tree: `plan` writes nothing.
    let Ok(pool) = Mount::read_only(node, "btrfs", Some("subvolid=5,rescue=nologreplay")) else {
        return Vec::new();
    };
    let have = roots
        .iter()
        .filter(|r| pool.path().join(r).join("etc/fstab").exists())
        .map(|r| r.to_string())
        .collect();
    let _ = pool.close();
    have
}

/// [`roots_with_fstab`] through the partition's LUKS container: lifeboat's mapping when it
/// is open (`lifeboat unlock`), else opened read-only with the spec's key file for the
/// look and closed again. Without either nothing is known, and the step is planned (it
/// asks for the key when it runs).
fn roots_with_fstab_in_luks(
    dev: &Device,
    number: u32,
    part: &crate::spec::Partition,
    roots: &[&str],
) -> Vec<String> {
    use crate::cryptsetup;
    let node = blockdev::partition_node(&dev.path, number);
    let name = cryptsetup::mapper_name(&node);
    if cryptsetup::is_open(&name) {
        return roots_with_fstab(&cryptsetup::mapper_path(&name), roots);
    }
    let Some(key) = part
        .key_file
        .as_deref()
        .and_then(|f| cryptsetup::Key::file(f).ok())
    else {
        return Vec::new();
    };
    let look = format!("{name}-look");
    if cryptsetup::open_read_only(&node, &look, &key).is_err() {
        return Vec::new();
    }
    let have = roots_with_fstab(&cryptsetup::mapper_path(&look), roots);
    let _ = cryptsetup::close(&look);
    have
}

/// The ESP's files, read from the disk's bytes at the partition's place.
pub fn esp_tree(dev: &Device, number: u32) -> Option<Tree> {
    let p = dev.gpt()?.partitions.iter().find(|p| p.number == number)?;
    let offset = p.first_lba * dev.sector_size;
    let len = (p.last_lba - p.first_lba + 1) * dev.sector_size;
    let mut file = File::open(&dev.path).ok()?;
    fat::tree(&mut file, offset, len).ok()
}

/// Every file of the loader with exactly these bytes where it belongs, and a loader.conf.
/// FAT names compare without case, as the firmware and the kernel look them up.
fn holds_loader(tree: &Tree, loader_sha: &[(&str, [u8; 32])]) -> bool {
    let find = |want: &str| {
        tree.iter()
            .find(|(path, _)| path_eq(path, want))
            .map(|(_, node)| node)
    };
    loader_sha
        .iter()
        .all(|(at, sha)| matches!(find(at), Some(Node::File { sha256, .. }) if sha256 == sha))
        && matches!(find(super::loader::LOADER_CONF), Some(Node::File { .. }))
}

fn path_eq(path: &Path, want: &str) -> bool {
    path.to_string_lossy().eq_ignore_ascii_case(want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(bytes: &[u8]) -> Node {
        Node::File {
            len: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }

    #[test]
    fn the_loader_counts_only_with_the_same_bytes_and_a_loader_conf() {
        let sha = [(
            super::super::loader::ON_ESP,
            Sha256::digest(b"sd-boot").into(),
        )];
        let mut tree = Tree::new();
        tree.insert(
            PathBuf::from("EFI/SYSTEMD/SYSTEMD-BOOTX64.EFI"),
            file(b"sd-boot"),
        );
        assert!(!holds_loader(&tree, &sha), "no loader.conf");
        tree.insert(PathBuf::from("loader/loader.conf"), file(b"timeout 5\n"));
        assert!(holds_loader(&tree, &sha));
        tree.insert(
            PathBuf::from("EFI/SYSTEMD/SYSTEMD-BOOTX64.EFI"),
            file(b"old"),
        );
        assert!(!holds_loader(&tree, &sha), "another version");
    }

    #[test]
    fn the_signed_chain_counts_only_whole() {
        let chain: Vec<(&str, [u8; 32])> = super::super::loader::Chain::Signed
            .files()
            .iter()
            .map(|(_, to)| (*to, Sha256::digest(to.as_bytes()).into()))
            .collect();
        let mut tree = Tree::new();
        tree.insert(PathBuf::from("loader/loader.conf"), file(b"timeout 5\n"));
        // systemd-boot alone (a machine provisioned with Secure Boot off) is not it.
        tree.insert(
            PathBuf::from(super::super::loader::ON_ESP),
            file(b"sd-boot"),
        );
        assert!(!holds_loader(&tree, &chain));
        for (to, _) in &chain[1..] {
            tree.insert(PathBuf::from(to.to_uppercase()), file(to.as_bytes()));
        }
        assert!(!holds_loader(&tree, &chain), "no shim");
        let shim = chain[0].0;
        tree.insert(PathBuf::from(shim), file(shim.as_bytes()));
        assert!(holds_loader(&tree, &chain));
    }
}
