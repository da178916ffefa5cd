//! The built image's Secure Boot chain as independent tools see it: `sbverify --list`
//! (sbsigntool) on each EFI binary read back from the image's FAT, and every kernel module
//! in the initramfs still ending in its signature. Run by `cargo xtask test`'s image phase.

use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::signed::MODULE_SIG_MARKER;
use crate::run_quiet;

/// Who must have signed what. Microsoft's third-party UEFI CA is the one PCs trust for
/// anything that is not Windows; Debian's CA is the one built into Debian's shim.
pub const EXPECTED: &[(&str, &str)] = &[
    (
        "EFI/BOOT/BOOTX64.EFI",
        "CN=Microsoft Corporation UEFI CA 2011",
    ),
    ("EFI/BOOT/grubx64.efi", "CN=Debian Secure Boot CA"),
    ("EFI/BOOT/mmx64.efi", "CN=Debian Secure Boot CA"),
    ("vmlinuz", "CN=Debian Secure Boot CA"),
];

pub struct Chain {
    /// (path on the ESP, the signature issuers sbverify lists).
    pub signers: Vec<(String, Vec<String>)>,
    /// Kernel modules in the initramfs, all of them signed.
    pub modules: usize,
}

/// `sbverify --list` output → the issuers of each signature.
pub fn issuers(listing: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_issuers = false;
    for line in listing.lines() {
        if line.starts_with("image signature issuers:") {
            in_issuers = true;
        } else if let Some(name) = line.strip_prefix(" - ").filter(|_| in_issuers) {
            out.push(name.trim().to_owned());
        } else {
            in_issuers = false;
        }
    }
    out
}

pub fn chain(sh: &Shell, image: &Path) -> Result<Chain> {
    let tmp = tempfile::tempdir().context("a temporary directory for the EFI binaries")?;
    let mut signers = Vec::new();
    for (path, want) in EXPECTED {
        let bytes = super::read_esp_file(image, path)?;
        let file = tmp.path().join(path.replace('/', "_"));
        fs::write(&file, &bytes).with_context(|| format!("writing {}", file.display()))?;
        let listing = run_quiet(cmd!(sh, "sbverify --list {file}"))
            .with_context(|| format!("sbverify --list on the image's {path}"))?;
        let found = issuers(&listing);
        if !found.iter().any(|i| i.ends_with(want)) {
            bail!(
                "the image's {path} is not signed by {want}: sbverify lists {}",
                if found.is_empty() {
                    "no signature".to_owned()
                } else {
                    found.join("; ")
                }
            );
        }
        signers.push((path.to_string(), found));
    }
    let initrd = super::read_esp_file(image, "initrd.img")?;
    let modules = signed_modules(&initrd)?;
    Ok(Chain { signers, modules })
}

/// Every `.ko` in a zstd newc initramfs must end in the module signature marker; returns
/// how many there are.
pub fn signed_modules(initrd: &[u8]) -> Result<usize> {
    let mut input = zstd::stream::read::Decoder::new(initrd)?;
    let mut count = 0;
    let mut unsigned = Vec::new();
    loop {
        let mut entry = cpio::newc::Reader::new(input)?;
        if entry.entry().is_trailer() {
            break;
        }
        let name = entry.entry().name().to_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        input = entry.finish()?;
        if name.ends_with(".ko") {
            count += 1;
            if !bytes.ends_with(MODULE_SIG_MARKER) {
                unsigned.push(name);
            }
        }
    }
    if !unsigned.is_empty() {
        bail!(
            "kernel modules in the initramfs without a signature: {}",
            unsigned.join(", ")
        );
    }
    if count == 0 {
        bail!("the initramfs holds no kernel modules");
    }
    Ok(count)
}

/// The chain of `image` checked and printed, then the same check on a copy whose shim lost
/// its signature, which must fail: a check that cannot fail proves nothing.
pub fn checked(sh: &Shell, image: &Path) -> Result<()> {
    print(&chain(sh, image)?);
    let dir = tempfile::tempdir().context("a temporary directory for the unsigned copy")?;
    let copy = dir.path().join("unsigned.img");
    fs::copy(image, &copy).with_context(|| format!("copying {}", image.display()))?;
    super::unsign_loader(&copy, 0)?;
    match chain(sh, &copy) {
        Err(e) if format!("{e:#}").contains("BOOTX64.EFI is not signed") => {
            println!(
                "image: a copy with the shim's signature cut off fails this check, as it must"
            );
            Ok(())
        }
        Err(e) => Err(e.context("the unsigned copy failed the check for another reason")),
        Ok(_) => bail!("sbverify still finds a signature on the unsigned copy's BOOTX64.EFI"),
    }
}

pub fn print(chain: &Chain) {
    for (path, issuers) in &chain.signers {
        println!("image: {path} signed by {}", issuers.join(" + "));
    }
    println!(
        "image: {} kernel modules in the initramfs, each with its signature",
        chain.modules
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbverify_listings_give_their_issuers() {
        let shim = "signature 1\nimage signature issuers:\n - /C=US/ST=Washington/L=Redmond/O=Microsoft Corporation/CN=Microsoft Corporation UEFI CA 2011\nimage signature certificates:\n - subject: /C=US/O=Microsoft Corporation/CN=Microsoft Windows UEFI Driver Publisher\n   issuer:  /C=US/CN=Microsoft Corporation UEFI CA 2011\nsignature 2\nimage signature issuers:\n - /C=US/O=Microsoft Corporation/CN=Microsoft UEFI CA 2023\n";
        let found = issuers(shim);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].ends_with("CN=Microsoft Corporation UEFI CA 2011"));
        assert!(found[1].ends_with("CN=Microsoft UEFI CA 2023"));
        assert!(issuers("warning: gaps\nNo signature table present\n").is_empty());
    }

    fn initrd(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        for (name, body) in files {
            let mut w = cpio::newc::Builder::new(name)
                .mode(0o100_644)
                .write(&mut out, body.len() as u32);
            std::io::Write::write_all(&mut w, body).unwrap();
            w.finish().unwrap();
        }
        cpio::newc::trailer(&mut out).unwrap();
        out.finish().unwrap()
    }

    #[test]
    fn an_unsigned_module_in_the_initramfs_is_named() {
        let signed = [&b"\x7fELF"[..], MODULE_SIG_MARKER].concat();
        let good = initrd(&[("lib/modules/x/vfat.ko", &signed), ("init", b"#!/bin/sh")]);
        assert_eq!(signed_modules(&good).unwrap(), 1);
        let bad = initrd(&[
            ("lib/modules/x/vfat.ko", &signed),
            ("lib/modules/x/btrfs.ko", b"\x7fELF"),
        ]);
        let err = signed_modules(&bad).unwrap_err().to_string();
        assert!(err.contains("btrfs.ko") && !err.contains("vfat"), "{err}");
        assert!(signed_modules(&initrd(&[("init", b"x")])).is_err());
    }
}
