//! A tiny bootable "Atlantis" on disk1, for the bare-metal-usb scenario: laid out as
//! configs/atlantis.toml says (sgdisk, mkfs on a loop device over a sparse raw file of the
//! real size), with
//!
//! - ESP1: systemd-boot (the rescue stick's), a loader entry that starts the rescue
//!   stick's Debian kernel with the stick's initramfs plus a small second one whose `/init`
//!   mounts LINPOOL `subvol=@rootTW` by UUID (`root=UUID=… rootflags=subvol=@rootTW` on the
//!   command line) and switches to it;
//! - @rootTW: a busybox root whose `/sbin/init` mounts /home as its /etc/fstab says (by
//!   UUID), prints `ATLANTIS-HOME-SHA256 <sha256 of "sha256sum ./path" lines>` and the user
//!   with UID 1000, then powers off (printing the harness's LIFEBOAT-RUN-EXIT 0 marker);
//! - @home: files of alice (UID 1000): many small ones, a large one, a hard link, a
//!   symlink, an xattr, a sparse file; two read-only btrbk-style snapshots in @snapshots
//!   (`@home.20261119T0300`, then a change, `@home.20261120T0300`);
//! - /boot: a kernel copy, as distributions keep it.
//!
//! The sha256 the restored system must print is computed here, on the host, from the
//! newest snapshot, with the same line format the guest's `sha256sum` writes.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

use crate::disks::{lay_out, LoopDisk, Mount, ATLANTIS_DISK1};
use crate::image::disk::find_esp;
use crate::{require_root, run_quiet};

pub struct Fixture {
    /// The qcow2 image of disk1, to be the run's base.
    pub disk1: PathBuf,
    /// What the restored system must print after ATLANTIS-HOME-SHA256.
    pub home_sha256: String,
}

/// Fixed times for files and FAT entries (2026-11-20 03:00 UTC).
const MTIME: u64 = 1_795_143_600;

pub fn atlantis(sh: &Shell, stick: &Path, bytes: u64, dir: &Path) -> Result<Fixture> {
    require_root("qemu` (the fixture Atlantis is made on a loop device)")?;
    let work = dir.join("fixture-work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let out = dir.join("disk1-fixture.qcow2");
    let result = (|| -> Result<String> {
        let boot_files = from_stick(stick)?;
        let disk = LoopDisk::attach(sh, "disk1", bytes, &work)?;
        lay_out(sh, &disk, ATLANTIS_DISK1, &work)?;
        let uuid = |n: usize| -> Result<String> {
            let part = disk.part(n);
            Ok(run_quiet(cmd!(sh, "blkid -p -o value -s UUID {part}"))?
                .trim()
                .to_owned())
        };
        let (esp, boot, pool) = (uuid(1)?, uuid(2)?, uuid(4)?);
        let sum = fill_pool(
            sh,
            &disk.part(4),
            &work,
            &boot_files.busybox,
            &pool,
            &boot,
            &esp,
        )?;
        {
            let m = Mount::new(sh, &disk.part(2), &work.join("boot"), &[])?;
            write(
                &m.path().join("vmlinuz-6.1-atlantis"),
                &boot_files.vmlinuz,
                0o644,
            )?;
            m.unmount()?;
        }
        write_esp(&disk.part(1), &boot_files, &pool)?;
        let raw = disk.image.clone();
        disk.close()?;
        run_quiet(cmd!(sh, "qemu-img convert -f raw -O qcow2 {raw} {out}"))?;
        Ok(sum)
    })();
    let _ = fs::remove_dir_all(&work);
    let home_sha256 = result.context("making the fixture Atlantis on disk1")?;
    Ok(Fixture {
        disk1: out,
        home_sha256,
    })
}

struct BootFiles {
    loader: Vec<u8>,
    vmlinuz: Vec<u8>,
    initrd: Vec<u8>,
    busybox: Vec<u8>,
}

/// The kernel and the initramfs from the stick's ESP; busybox and systemd-boot (the one
/// provisioning installs on a machine's ESPs; the stick itself boots through shim and GRUB)
/// out of that initramfs.
fn from_stick(stick: &Path) -> Result<BootFiles> {
    let (offset, len) = find_esp(stick)?;
    let mut file = fs::File::open(stick)?;
    let mut read = |path: &str| {
        lifeboat::apply::fat::read_file(&mut file, offset, len, path)
            .with_context(|| format!("reading {path} from {}", stick.display()))
    };
    let vmlinuz = read("vmlinuz")?;
    let initrd = read("initrd.img")?;
    let busybox = from_initrd(&initrd, "bin/busybox")?;
    let loader = from_initrd(
        &initrd,
        lifeboat::boot::loader::SYSTEMD_BOOT.trim_start_matches('/'),
    )?;
    Ok(BootFiles {
        loader,
        vmlinuz,
        initrd,
        busybox,
    })
}

/// A file of the stick's initramfs, following a symlink.
fn from_initrd(initrd: &[u8], path: &str) -> Result<Vec<u8>> {
    let mut wanted = path.to_owned();
    // One symlink hop (a merged /usr keeps it in usr/bin).
    for _ in 0..2 {
        let mut input = zstd::stream::read::Decoder::new(initrd)?;
        loop {
            let mut entry = cpio::newc::Reader::new(input)?;
            if entry.entry().is_trailer() {
                bail!("the stick's initramfs has no {wanted}");
            }
            let name = entry.entry().name().to_owned();
            let mode = entry.entry().mode();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            input = entry.finish()?;
            if name == wanted {
                if mode & 0o170_000 == 0o120_000 {
                    let target = String::from_utf8_lossy(&bytes).into_owned();
                    wanted = match target.strip_prefix('/') {
                        Some(abs) => abs.to_owned(),
                        None => Path::new(&wanted)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(target)
                            .display()
                            .to_string(),
                    };
                    break;
                }
                return Ok(bytes);
            }
        }
    }
    bail!("{path} in the stick's initramfs is a chain of symlinks")
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
    fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The root's init: mount /home as /etc/fstab says, print the proof, power off.
const ROOT_INIT: &str = r#"#!/bin/busybox sh
# The fixture Atlantis' init (tests/qemu/bare-metal-usb.toml): a restored root that boots.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo "ATLANTIS-BOOTED $(cat /etc/hostname) root=$(awk '$2=="/"{print $1}' /proc/mounts)"
home=$(awk '$2=="/home"{print $1}' /etc/fstab)
opts=$(awk '$2=="/home"{print $4}' /etc/fstab)
uuid=${home#UUID=}
dev=$(findfs "$home" 2>/dev/null)
if [ -z "$dev" ]; then
    for d in /dev/vd*; do
        blkid "$d" | grep -q "UUID=\"$uuid\"" && dev=$d
    done
fi
if [ -n "$dev" ] && mount -t btrfs -o "$opts" "$dev" /home; then
    echo "ATLANTIS-HOME mounted from $dev ($home)"
    sum=$(cd /home && find . -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
    echo "ATLANTIS-HOME-SHA256 $sum"
    echo "ATLANTIS-UID1000 $(awk -F: '$3==1000{print $1}' /etc/passwd)"
    echo "LIFEBOAT-RUN-EXIT 0"
else
    echo "ATLANTIS-HOME not mounted ($home, device '$dev', options $opts)"
    blkid
    ls -l /dev/vd* /home
    echo "LIFEBOAT-RUN-EXIT 1"
fi
sync
poweroff -f
"#;

/// The initramfs' init (a second archive after the stick's, replacing its /init).
const INITRD_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "ATLANTIS-INITRAMFS"
for mod in virtio_pci virtio_blk btrfs; do modprobe -q "$mod"; done
root=$(sed -n 's/.*root=UUID=\([^ ]*\).*/\1/p' /proc/cmdline)
flags=$(sed -n 's/.*rootflags=\([^ ]*\).*/\1/p' /proc/cmdline)
dev=""
tries=0
while [ -z "$dev" ] && [ "$tries" -lt 50 ]; do
    dev=$(blkid -c /dev/null -l -o device -t UUID="$root" 2>/dev/null)
    [ -z "$dev" ] && { tries=$((tries + 1)); sleep 0.2; }
done
mkdir -p /newroot
if [ -z "$dev" ] || ! mount -t btrfs -o "$flags" "$dev" /newroot; then
    echo "ATLANTIS-ROOT not found: UUID=$root"
    echo "LIFEBOAT-RUN-EXIT 1"
    poweroff -f
fi
echo "ATLANTIS-ROOT $dev $flags"
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
"#;

/// @rootTW and @home with their snapshots; the sha256 of the newest @home snapshot.
fn fill_pool(
    sh: &Shell,
    node: &Path,
    work: &Path,
    busybox: &[u8],
    pool: &str,
    boot: &str,
    esp: &str,
) -> Result<String> {
    let m = Mount::new(sh, node, &work.join("pool"), &[])?;
    let p = m.path();
    let root = p.join("@rootTW");
    write(&root.join("bin/busybox"), busybox, 0o755)?;
    write(&root.join("sbin/init"), ROOT_INIT.as_bytes(), 0o755)?;
    write(&root.join("etc/hostname"), b"atlantis\n", 0o644)?;
    write(
        &root.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
        0o644,
    )?;
    write(
        &root.join("etc/group"),
        b"root:x:0:\nalice:x:1000:\n",
        0o644,
    )?;
    let fstab = format!(
        "# /etc/fstab of the fixture Atlantis (openSUSE Tumbleweed's root)\n\
         UUID={pool} / btrfs subvol=@rootTW 0 0\n\
         UUID={pool} /home btrfs subvol=@home 0 0\n\
         UUID={pool} /.snapshots btrfs subvol=@snapshots 0 0\n\
         UUID={boot} /boot ext4 defaults 0 2\n\
         UUID={esp} /boot/efi2 vfat umask=0077,nofail 0 2\n"
    );
    write(&root.join("etc/fstab"), fstab.as_bytes(), 0o644)?;
    for d in [
        "proc", "sys", "dev", "home", "boot", "tmp", "run", "mnt", "root",
    ] {
        fs::create_dir_all(root.join(d))?;
    }

    let home = p.join("@home");
    for i in 0..200u32 {
        let text = format!("note {i}\n").repeat(1 + (i as usize * 7) % 90);
        write(
            &home.join(format!("alice/notes/{:02}/n{i}.txt", i % 13)),
            text.as_bytes(),
            0o644,
        )?;
    }
    let mut big = Vec::with_capacity(6 << 20);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while big.len() < 6 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    write(&home.join("alice/media/video.bin"), &big, 0o600)?;
    fs::hard_link(
        home.join("alice/media/video.bin"),
        home.join("alice/video-link.bin"),
    )?;
    std::os::unix::fs::symlink("notes/00/n0.txt", home.join("alice/first-note"))?;
    let sparse = fs::File::create(home.join("alice/disk.img"))?;
    sparse.set_len(256 << 20)?;
    drop(sparse);
    let tagged = home.join("alice/notes/01/n1.txt");
    run_quiet(cmd!(sh, "setfattr -n user.origin -v atlantis {tagged}"))?;
    let alice = home.join("alice");
    run_quiet(cmd!(sh, "chown -R 1000:1000 {alice}"))?;

    let snaps = p.join("@snapshots");
    let older = snaps.join("@home.20261119T0300");
    run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {home} {older}"))?;
    write(
        &home.join("alice/notes/00/n0.txt"),
        b"changed on the 20th\n",
        0o644,
    )?;
    write(&home.join("alice/new-on-the-20th.txt"), b"new\n", 0o644)?;
    let newer = snaps.join("@home.20261120T0300");
    run_quiet(cmd!(sh, "btrfs subvolume snapshot -r {home} {newer}"))?;
    let sum = tree_sha256(&newer)?;
    m.unmount()?;
    Ok(sum)
}

/// `cd DIR && find . -type f | sort | xargs sha256sum | sha256sum`, computed here.
pub fn tree_sha256(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dir.join(&rel))? {
            let e = e?;
            let t = e.file_type()?;
            let child = rel.join(e.file_name());
            if t.is_dir() {
                stack.push(child);
            } else if t.is_file() {
                files.push(format!("./{}", child.display()));
            }
        }
    }
    files.sort();
    let mut lines = String::new();
    for f in &files {
        let mut h = Sha256::new();
        h.update(fs::read(dir.join(&f[2..]))?);
        lines.push_str(&format!("{:x}  {f}\n", h.finalize()));
    }
    let mut h = Sha256::new();
    h.update(lines.as_bytes());
    Ok(format!("{:x}", h.finalize()))
}

/// systemd-boot and the entry onto ESP1, through the provisioner's FAT writer.
fn write_esp(node: &Path, files: &BootFiles, pool: &str) -> Result<()> {
    let entry = format!(
        "title Atlantis (fixture)\nlinux /atlantis/vmlinuz\ninitrd /atlantis/initrd-rescue.img\n\
         initrd /atlantis/initrd-atlantis.img\n\
         options root=UUID={pool} rootflags=subvol=@rootTW console=ttyS0,115200 panic=10 loglevel=4\n"
    );
    let files = vec![
        ("EFI/BOOT/BOOTX64.EFI".to_owned(), files.loader.clone()),
        (
            "EFI/systemd/systemd-bootx64.efi".to_owned(),
            files.loader.clone(),
        ),
        (
            "loader/loader.conf".to_owned(),
            b"timeout 0\ndefault atlantis.conf\neditor no\n".to_vec(),
        ),
        (
            "loader/entries/atlantis.conf".to_owned(),
            entry.into_bytes(),
        ),
        ("atlantis/vmlinuz".to_owned(), files.vmlinuz.clone()),
        (
            "atlantis/initrd-rescue.img".to_owned(),
            files.initrd.clone(),
        ),
        ("atlantis/initrd-atlantis.img".to_owned(), init_cpio()?),
    ];
    let mut dev = fs::OpenOptions::new().read(true).write(true).open(node)?;
    let len = dev.seek_end()?;
    lifeboat::apply::fat::write_files(&mut dev, 0, len, &files, MTIME)
        .with_context(|| format!("writing ESP1 on {}", node.display()))?;
    Ok(())
}

trait SeekEnd {
    fn seek_end(&mut self) -> std::io::Result<u64>;
}

impl SeekEnd for fs::File {
    fn seek_end(&mut self) -> std::io::Result<u64> {
        use std::io::{Seek, SeekFrom};
        let len = self.seek(SeekFrom::End(0))?;
        self.seek(SeekFrom::Start(0))?;
        Ok(len)
    }
}

/// A newc archive with one file, `init`, zstd-compressed: after another archive the
/// kernel takes an uncompressed cpio only at a 4-byte aligned offset, which systemd-boot's
/// concatenation of initrds does not promise; compressed data it finds anywhere.
fn init_cpio() -> Result<Vec<u8>> {
    zstd_newc(&[("init", 0o100_755, INITRD_INIT.as_bytes())], MTIME as u32)
}

/// A zstd-compressed newc archive of `(name, mode, bytes)` entries, numbered from inode 1,
/// all stamped `mtime` (the same inputs give the same bytes).
pub(super) fn zstd_newc(entries: &[(&str, u32, &[u8])], mtime: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (ino, (name, mode, bytes)) in entries.iter().enumerate() {
        let mut w = cpio::newc::Builder::new(name)
            .mode(*mode)
            .mtime(mtime)
            .ino(ino as u32 + 1)
            .nlink(if mode & 0o040_000 != 0 { 2 } else { 1 })
            .write(&mut out, bytes.len() as u32);
        w.write_all(bytes)?;
        w.finish()?;
    }
    cpio::newc::trailer(&mut out)?;
    Ok(zstd::encode_all(&out[..], 3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_sum_is_what_sha256sum_lines_give() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a")).unwrap();
        fs::write(d.path().join("a/x"), b"x").unwrap();
        fs::write(d.path().join("b"), b"").unwrap();
        std::os::unix::fs::symlink("b", d.path().join("c")).unwrap();
        // sha256("x") and sha256(""), as `sha256sum` prints them, sorted by path.
        let lines = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  ./a/x\n\
                     e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  ./b\n";
        let mut h = Sha256::new();
        h.update(lines.as_bytes());
        assert_eq!(
            tree_sha256(d.path()).unwrap(),
            format!("{:x}", h.finalize())
        );
    }

    #[test]
    fn the_init_archive_is_one_executable_file() {
        let bytes = zstd::decode_all(&init_cpio().unwrap()[..]).unwrap();
        let entry = cpio::newc::Reader::new(&bytes[..]).unwrap();
        assert_eq!(entry.entry().name(), "init");
        assert_eq!(entry.entry().mode(), 0o100_755);
    }
}
