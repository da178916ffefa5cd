//! The netboot directory beside the image: what a TFTP server hands a PC that boots from
//! the network (UEFI PXE), so that a shop provisions many machines from one server. The
//! same signed chain: the firmware fetches shim (the DHCP boot file), shim fetches
//! `grubx64.efi` from the same directory, GRUB fetches its configuration, the kernel and
//! the initramfs. The rescue system then asks the same server for `lifeboat/run`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The DHCP boot file: shim, at the top of the TFTP directory.
pub const BOOT_FILE: &str = "bootx64.efi";

/// What the kernel command line says when the rescue system came over the network (and
/// from which server, as GRUB knew it).
pub const NETBOOT_PARAM: &str = "lifeboat.boot=tftp:";

/// GRUB's configuration over TFTP: the files are beside it on the server.
/// `$net_default_server` is the server GRUB loaded from; the init falls back to the DHCP
/// lease's next-server when it is empty.
pub fn grub_cfg(cmdline: &str) -> String {
    format!(
        "# The lifeboat netboot directory (written by `cargo xtask image`; docs/rescue-image.md).\n\
         set timeout=0\n\
         set default=0\n\
         menuentry \"lifeboat rescue\" {{\n\
         \tlinux /vmlinuz {cmdline} {NETBOOT_PARAM}$net_default_server\n\
         \tinitrd /initrd.img\n\
         }}\n"
    )
}

pub const README: &str = "\
lifeboat netboot directory
==========================

Serve this directory over TFTP and give `bootx64.efi` as the DHCP boot file, e.g. with
dnsmasq:

    dnsmasq --port=0 --enable-tftp --tftp-root=/srv/lifeboat-netboot \\
            --dhcp-range=192.168.1.0,proxy --pxe-service=x86-64_EFI,lifeboat,bootx64.efi

A PC set to boot from the network (UEFI, Secure Boot on or off) starts the rescue system.
Put a script at lifeboat/run here to have every machine run it instead of the menu
(LIFEBOAT-RUN-START, the script with sh -e, LIFEBOAT-RUN-EXIT <status>, power off).
";

/// The directory's files: (path relative to it, bytes). `loaders` are the stick's (shim,
/// MokManager; its grubx64.efi is replaced by `netgrub`, the network build).
pub fn files(
    loaders: &[(String, Vec<u8>)],
    netgrub: &[u8],
    config: &str,
    cmdline: &str,
    vmlinuz: &[u8],
    initrd: &[u8],
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (path, bytes) in loaders {
        // shim and its helpers sit together at the top: shim fetches grubx64.efi from the
        // directory of the boot file.
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.eq_ignore_ascii_case("BOOTX64.EFI") {
            out.push((BOOT_FILE.to_owned(), bytes.clone()));
        } else if name.eq_ignore_ascii_case("grubx64.efi") {
            out.push((name.to_owned(), netgrub.to_vec()));
        } else {
            out.push((name.to_owned(), bytes.clone()));
        }
    }
    out.push((config.to_owned(), grub_cfg(cmdline).into_bytes()));
    out.push(("vmlinuz".to_owned(), vmlinuz.to_vec()));
    out.push(("initrd.img".to_owned(), initrd.to_vec()));
    out.push(("README.txt".to_owned(), README.as_bytes().to_vec()));
    out
}

/// Where the netboot directory of an image goes: `lifeboat-rescue.img` →
/// `lifeboat-rescue-netboot/`.
pub fn dir_for(image: &Path) -> PathBuf {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lifeboat".into());
    image
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{stem}-netboot"))
}

/// Write `files` as the directory `out`, replacing what was there only once complete.
pub fn write(out: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let parent = out.parent().unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .with_context(|| format!("{} names no directory", out.display()))?;
    let tmp = parent.join(format!(".{}.tmp", name.to_string_lossy()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    for (rel, bytes) in files {
        let path = tmp.join(rel);
        fs::create_dir_all(path.parent().unwrap_or(&tmp))
            .with_context(|| format!("creating {}", tmp.display()))?;
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("removing the old {}", out.display()))?;
    }
    fs::rename(&tmp, out)
        .with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
}

/// Copy a netboot directory (for a per-run copy the harness adds `lifeboat/run` to).
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    for rel in super::initramfs::walk(from)
        .with_context(|| format!("no netboot directory at {}", from.display()))?
    {
        let (src, dst) = (from.join(&rel), to.join(&rel));
        if src.is_dir() {
            fs::create_dir_all(&dst)?;
        } else {
            fs::create_dir_all(dst.parent().unwrap_or(to))?;
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_is_the_boot_file_and_grub_sits_beside_it() {
        let loaders = vec![
            ("EFI/BOOT/BOOTX64.EFI".to_owned(), b"shim".to_vec()),
            ("EFI/BOOT/grubx64.efi".to_owned(), b"grub".to_vec()),
        ];
        let f = files(
            &loaders,
            b"netgrub",
            "grub/grub.cfg",
            "console=ttyS0",
            b"k",
            b"i",
        );
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "bootx64.efi",
                "grubx64.efi",
                "grub/grub.cfg",
                "vmlinuz",
                "initrd.img",
                "README.txt"
            ]
        );
        assert_eq!(f[0].1, b"shim");
        assert_eq!(f[1].1, b"netgrub");
        let cfg = String::from_utf8(f[2].1.clone()).unwrap();
        assert!(
            cfg.contains("linux /vmlinuz console=ttyS0 lifeboat.boot=tftp:$net_default_server\n")
        );
        assert_eq!(
            dir_for(Path::new("/t/lifeboat-rescue.img")),
            Path::new("/t/lifeboat-rescue-netboot")
        );
    }
}
