//! Signatures the Secure Boot chain depends on, checked at build time: each EFI binary
//! carries an Authenticode certificate table (who signed it is `sbverify --list`'s to say,
//! see tests), and each kernel module still ends in its appended signature.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// What the kernel's module loader looks for at the end of a signed module.
pub const MODULE_SIG_MARKER: &[u8] = b"~Module signature appended~\n";

fn u32_at(pe: &[u8], at: usize) -> Result<u32> {
    let b = pe.get(at..at + 4).context("truncated PE header")?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Where the PE/COFF security data directory entry (index 4) lies in the file, if the
/// header has one.
fn security_entry(pe: &[u8]) -> Result<Option<usize>> {
    let u16_at = |at: usize| -> Result<u16> {
        let b = pe.get(at..at + 2).context("truncated PE header")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| u32_at(pe, at);
    if pe.get(0..2) != Some(b"MZ") {
        bail!("not a PE/COFF binary (no MZ header)");
    }
    let nt = u32_at(0x3c)? as usize;
    if pe.get(nt..nt + 4) != Some(b"PE\0\0") {
        bail!("not a PE/COFF binary (no PE signature)");
    }
    let optional = nt + 4 + 20;
    // Data directories follow the optional header's fixed part: 96 bytes in PE32, 112 in
    // PE32+ (EFI binaries on x86-64).
    let dirs = match u16_at(optional)? {
        0x10b => optional + 96,
        0x20b => optional + 112,
        magic => bail!("unknown PE optional header magic {magic:#x}"),
    };
    if u32_at(dirs - 4)? < 5 {
        return Ok(None);
    }
    Ok(Some(dirs + 4 * 8))
}

/// (file offset, size) of the certificate table, or `None` when the binary has none.
pub fn certificate_table(pe: &[u8]) -> Result<Option<(usize, usize)>> {
    let Some(entry) = security_entry(pe)? else {
        return Ok(None);
    };
    let (offset, size) = (u32_at(pe, entry)? as usize, u32_at(pe, entry + 4)? as usize);
    if size == 0 {
        return Ok(None);
    }
    if offset.checked_add(size).is_none_or(|end| end > pe.len()) {
        bail!("the certificate table ({size} bytes at {offset}) lies beyond the file");
    }
    Ok(Some((offset, size)))
}

/// Refuses a binary without an Authenticode signature: firmware with Secure Boot on would
/// refuse it at boot, on the user's PC rather than here.
pub fn check_pe_signed(pe: &[u8]) -> Result<()> {
    match certificate_table(pe)? {
        Some(_) => Ok(()),
        None => bail!("carries no Authenticode signature: Secure Boot firmware would refuse it"),
    }
}

/// The same binary without its signature (the certificate table cut off and its directory
/// entry zeroed): what an unsigned build of it looks like to firmware.
pub fn strip_signature(pe: &[u8]) -> Result<Vec<u8>> {
    let (offset, _) = certificate_table(pe)?.context("the binary is not signed")?;
    let entry = security_entry(pe)?.context("the binary has no security directory")?;
    let mut out = pe[..offset].to_vec();
    out[entry..entry + 8].fill(0);
    Ok(out)
}

/// Every module file under `dir` (a /lib/modules/<version> tree) must end in its
/// signature. Returns how many there are.
pub fn check_modules_signed(dir: &Path) -> Result<usize> {
    let mut count = 0;
    let mut unsigned = Vec::new();
    for rel in super::initramfs::walk(dir)? {
        let name = rel.to_string_lossy();
        if name.ends_with(".ko") {
            let path = dir.join(&rel);
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            count += 1;
            if !bytes.ends_with(MODULE_SIG_MARKER) {
                unsigned.push(name.into_owned());
            }
        } else if name.contains(".ko.") {
            bail!(
                "kernel module {name} is compressed: the build can check signatures only on plain .ko files"
            );
        }
    }
    if !unsigned.is_empty() {
        bail!(
            "{} kernel module(s) carry no signature, and a kernel under Secure Boot lockdown refuses them: {}",
            unsigned.len(),
            unsigned.join(", ")
        );
    }
    if count == 0 {
        bail!("{} holds no kernel modules", dir.display());
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ header: MZ, e_lfanew, PE, COFF header, optional header with 16
    /// data directories, and `cert` bytes of certificate table at the end.
    fn pe(cert: usize) -> Vec<u8> {
        let nt = 0x80;
        let optional = nt + 24;
        let dirs = optional + 112;
        let body = dirs + 16 * 8;
        let mut b = vec![0u8; body + 64 + cert];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&(nt as u32).to_le_bytes());
        b[nt..nt + 4].copy_from_slice(b"PE\0\0");
        b[optional..optional + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        b[dirs - 4..dirs].copy_from_slice(&16u32.to_le_bytes());
        if cert > 0 {
            let at = (body + 64) as u32;
            b[dirs + 32..dirs + 36].copy_from_slice(&at.to_le_bytes());
            b[dirs + 36..dirs + 40].copy_from_slice(&(cert as u32).to_le_bytes());
        }
        b
    }

    #[test]
    fn signed_and_unsigned_binaries_are_told_apart() {
        let signed = pe(100);
        assert!(check_pe_signed(&signed).is_ok());
        let plain = pe(0);
        let err = check_pe_signed(&plain).unwrap_err().to_string();
        assert!(err.contains("no Authenticode signature"), "{err}");
        let stripped = strip_signature(&signed).unwrap();
        assert_eq!(stripped.len(), signed.len() - 100);
        assert_eq!(certificate_table(&stripped).unwrap(), None);
        assert!(check_pe_signed(b"#!/bin/sh\n").is_err());
        let mut beyond = pe(100);
        beyond.truncate(beyond.len() - 1);
        assert!(certificate_table(&beyond).is_err());
    }

    #[test]
    fn a_module_without_its_signature_is_named() {
        let dir = std::env::temp_dir().join(format!("xtask-modsig-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("kernel/fs")).unwrap();
        let mut signed = b"\x7fELF...".to_vec();
        signed.extend_from_slice(MODULE_SIG_MARKER);
        fs::write(dir.join("kernel/fs/vfat.ko"), &signed).unwrap();
        fs::write(dir.join("modules.dep"), "kernel/fs/vfat.ko:\n").unwrap();
        assert_eq!(check_modules_signed(&dir).unwrap(), 1);
        fs::write(dir.join("kernel/fs/btrfs.ko"), b"\x7fELF stripped").unwrap();
        let err = check_modules_signed(&dir).unwrap_err().to_string();
        assert!(
            err.contains("kernel/fs/btrfs.ko") && !err.contains("vfat"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
