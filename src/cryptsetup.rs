//! cryptsetup, the one place lifeboat runs it: LUKS2 containers made, opened, closed,
//! asked for their UUID and version, given a second key. Keys travel on stdin
//! (`--key-file -`) or in a key file, never on a command line (other users can read
//! /proc/*/cmdline) and never in the run log ([`Cmd`] logs the arguments, not stdin).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::exec::{Cmd, ExecError};

/// cryptsetup's exit status for "no key available with this passphrase" (cryptsetup(8),
/// RETURN CODES: 2 means "no permission (bad passphrase)").
const EXIT_BAD_KEY: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("the key does not open the LUKS container in {}: nothing was written", device.display())]
    BadKey { device: PathBuf },
    #[error("{} holds no LUKS container", device.display())]
    NotLuks { device: PathBuf },
    #[error("the key file {} cannot be read: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
    #[error("cryptsetup luksDump of {} shows no `Version:` line", device.display())]
    NoVersion { device: PathBuf },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// The key of a container: a file (read whole, as cryptsetup does), or a passphrase (its
/// bytes without a trailing newline, as a person types it at an initramfs prompt).
#[derive(Clone)]
pub enum Key {
    File(PathBuf),
    Passphrase(String),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::File(p) => write!(f, "Key::File({})", p.display()),
            Key::Passphrase(_) => f.write_str("Key::Passphrase(***)"),
        }
    }
}

impl Key {
    /// A key file that exists and can be read; the error names it.
    pub fn file(path: &Path) -> Result<Key, CryptError> {
        std::fs::File::open(path).map_err(|e| CryptError::KeyFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Key::File(path.to_owned()))
    }

    /// `cmd` with this key as its `--key-file` (a passphrase on stdin).
    fn give(&self, cmd: Cmd) -> Cmd {
        match self {
            Key::File(f) => cmd.arg("--key-file").arg(f),
            Key::Passphrase(p) => cmd
                .args(["--key-file", "-"])
                .stdin(p.as_bytes().to_vec())
                .secret(p.clone()),
        }
    }
}

/// The device-mapper name lifeboat gives a partition's container while it works on it.
pub fn mapper_name(node: &Path) -> String {
    let base = node
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("lifeboat-{base}")
}

/// The name an installed system's crypttab gives the container: `luks-<UUID>`, the name
/// systemd-cryptsetup and dracut use when they make one up themselves.
pub fn system_name(luks_uuid: &str) -> String {
    format!("luks-{}", luks_uuid.to_lowercase())
}

pub fn mapper_path(name: &str) -> PathBuf {
    Path::new("/dev/mapper").join(name)
}

/// Whether the mapping `name` exists now.
pub fn is_open(name: &str) -> bool {
    mapper_path(name).exists()
}

fn format_cmd(node: &Path, key: &Key, uuid: Option<&str>) -> Cmd {
    let mut cmd = Cmd::new("cryptsetup").args(["luksFormat", "--type", "luks2", "--batch-mode"]);
    if let Some(u) = uuid {
        cmd = cmd.arg("--uuid").arg(u);
    }
    key.give(cmd).arg(node)
}

/// Make a LUKS2 container in `node` (with `uuid`, a recorded one, when given).
pub fn format(node: &Path, key: &Key, uuid: Option<&str>) -> Result<(), CryptError> {
    format_cmd(node, key, uuid).run()?;
    Ok(())
}

fn open_cmd(node: &Path, name: &str, key: &Key, test_only: bool) -> Cmd {
    open_cmd_with(node, name, key, test_only, false)
}

fn open_cmd_with(node: &Path, name: &str, key: &Key, test_only: bool, read_only: bool) -> Cmd {
    let cmd = Cmd::new("cryptsetup").args(["open", "--type", "luks2"]);
    let cmd = if read_only {
        cmd.arg("--readonly")
    } else {
        cmd
    };
    let cmd = if test_only {
        cmd.arg("--test-passphrase")
    } else {
        cmd
    };
    let cmd = key.give(cmd).arg(node);
    if test_only {
        cmd
    } else {
        cmd.arg(name)
    }
}

/// Run an open-like command; a wrong key becomes [`CryptError::BadKey`].
fn run_keyed(cmd: Cmd, node: &Path) -> Result<(), CryptError> {
    let out = cmd.output()?;
    match out.code {
        Some(0) => Ok(()),
        Some(EXIT_BAD_KEY) => Err(CryptError::BadKey {
            device: node.to_owned(),
        }),
        _ => Err(cmd.failed(&out).into()),
    }
}

/// Open the container in `node` as /dev/mapper/`name`. The key is tried first on its
/// own, so that a wrong one is said as such whatever else would fail (a missing
/// device-mapper says something else entirely).
pub fn open(node: &Path, name: &str, key: &Key) -> Result<(), CryptError> {
    if !is_luks(node)? {
        return Err(CryptError::NotLuks {
            device: node.to_owned(),
        });
    }
    check_key(node, key)?;
    run_keyed(open_cmd(node, name, key, false), node)
}

/// Open the container read-only (for looking, as `lifeboat plan` does).
pub fn open_read_only(node: &Path, name: &str, key: &Key) -> Result<(), CryptError> {
    run_keyed(open_cmd_with(node, name, key, false, true), node)
}

/// Whether `key` opens the container, without opening it.
pub fn check_key(node: &Path, key: &Key) -> Result<(), CryptError> {
    run_keyed(open_cmd(node, "", key, true), node)
}

pub fn close(name: &str) -> Result<(), CryptError> {
    Cmd::new("cryptsetup").arg("close").arg(name).run()?;
    Ok(())
}

/// `cryptsetup isLuks`: exit 0 when `node` holds a LUKS header.
pub fn is_luks(node: &Path) -> Result<bool, CryptError> {
    Ok(Cmd::new("cryptsetup")
        .arg("isLuks")
        .arg(node)
        .output()?
        .code
        == Some(0))
}

/// The container's UUID (`cryptsetup luksUUID`), lower case as blkid prints it.
pub fn uuid(node: &Path) -> Result<String, CryptError> {
    let out = Cmd::new("cryptsetup").arg("luksUUID").arg(node).read()?;
    Ok(out.trim().to_lowercase())
}

/// The LUKS version (1 or 2) from `cryptsetup luksDump`.
pub fn version(node: &Path) -> Result<u32, CryptError> {
    let dump = Cmd::new("cryptsetup").arg("luksDump").arg(node).read()?;
    parse_version(&dump).ok_or_else(|| CryptError::NoVersion {
        device: node.to_owned(),
    })
}

fn parse_version(dump: &str) -> Option<u32> {
    dump.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Add `new` as another key slot of the container that `existing` opens. At most one of
/// the two can travel on stdin; when both are passphrases, the existing one goes through
/// a private file (mode 0600, in /run, removed when done).
pub fn add_key(node: &Path, existing: &Key, new: &Key) -> Result<(), CryptError> {
    let base = Cmd::new("cryptsetup").args(["luksAddKey", "--batch-mode"]);
    let (cmd, _held) = match (existing, new) {
        (Key::Passphrase(old), Key::Passphrase(_)) => {
            let file = private_file(old.as_bytes()).map_err(|e| CryptError::KeyFile {
                path: PathBuf::from("/run"),
                reason: e.to_string(),
            })?;
            let cmd = add_key_cmd(base, &Key::File(file.path().to_owned()), node, new);
            (cmd, Some(file))
        }
        _ => (add_key_cmd(base, existing, node, new), None),
    };
    run_keyed(cmd, node)
}

fn add_key_cmd(base: Cmd, existing: &Key, node: &Path, new: &Key) -> Cmd {
    match new {
        // The new key as the positional key file "-": cryptsetup reads it from stdin.
        Key::Passphrase(p) => existing
            .give(base)
            .arg(node)
            .arg("-")
            .stdin(p.as_bytes().to_vec())
            .secret(p.clone()),
        Key::File(f) => existing.give(base).arg(node).arg(f),
    }
}

fn private_file(bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = if Path::new("/run").is_dir() {
        PathBuf::from("/run")
    } else {
        std::env::temp_dir()
    };
    // NamedTempFile is created 0600.
    let mut f = tempfile::NamedTempFile::new_in(dir)?;
    f.write_all(bytes)?;
    f.flush()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_never_reaches_the_command_line() {
        let key = Key::Passphrase("correct horse".into());
        let node = Path::new("/dev/vda4");
        for cmd in [
            format_cmd(node, &key, Some("0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e")),
            open_cmd(node, "lifeboat-vda4", &key, false),
            open_cmd(node, "", &key, true),
            add_key_cmd(
                Cmd::new("cryptsetup").arg("luksAddKey"),
                &Key::File("/k".into()),
                node,
                &key,
            ),
        ] {
            let line = cmd.to_string();
            assert!(!line.contains("horse"), "{line}");
            assert!(line.contains("/dev/vda4"), "{line}");
        }
        let line = format_cmd(node, &key, Some("0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e")).to_string();
        assert!(
            line.contains("luksFormat --type luks2 --batch-mode --uuid 0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e --key-file - /dev/vda4"),
            "{line}"
        );
        let line = open_cmd(node, "x", &Key::File("/etc/k".into()), false).to_string();
        assert!(
            line.ends_with("open --type luks2 --key-file /etc/k /dev/vda4 x"),
            "{line}"
        );
        assert!(format!("{key:?}").contains("***"));
    }

    #[test]
    fn the_version_comes_from_the_dump() {
        let dump = "LUKS header information\nVersion:       \t2\nEpoch:          3\n";
        assert_eq!(parse_version(dump), Some(2));
        assert_eq!(parse_version("nothing\n"), None);
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let err = Key::file(Path::new("/nonexistent/lark.key")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the key file /nonexistent/lark.key cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            mapper_name(Path::new("/dev/nvme0n1p4")),
            "lifeboat-nvme0n1p4"
        );
        assert_eq!(
            system_name("0B9E0EE4-3C33-4C36-9A4B-4C1F1B2A3D4E"),
            "luks-0b9e0ee4-3c33-4c36-9a4b-4c1f1b2a3d4e"
        );
    }
}
