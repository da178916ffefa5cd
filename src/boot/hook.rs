//! The post-kernel-update hook: a kernel-install plugin (Fedora, openSUSE Tumbleweed and
//! every distribution that uses systemd's kernel-install) that mirrors ESP0 onto ESP1
//! after a kernel is added or removed, and the static lifeboat it runs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the plugin and the binary go inside the target root.
pub const PLUGIN: &str = "etc/kernel/install.d/20-sync-esp.install";
pub const BINARY: &str = "usr/local/sbin/lifeboat";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{} does not look like a system root (it has no etc/ directory)", root.display())]
    NotARoot { root: PathBuf },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The plugin's text. A failed sync does not fail the kernel update (the new kernel is
/// installed on ESP0 and boots); it says loudly that ESP1 is behind.
pub fn plugin(from: &Path, to: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Installed by `lifeboat esp-sync-hook`. kernel-install runs it as
#   20-sync-esp.install add|remove KERNEL_VERSION ENTRY_DIR [KERNEL_IMAGE INITRD...]
# after a kernel was added to or removed from the ESP. It mirrors {from} (ESP0) onto
# {to} (ESP1) so that the machine still boots when ESP0's disk dies.
case "$1" in
    add|remove) ;;
    *) exit 0 ;;
esac
if ! /{BINARY} esp-sync --from {from} --to {to} --yes; then
    echo "WARNING: {to} (ESP1) was not updated and is behind {from}; run: lifeboat esp-sync --from {from} --to {to}" >&2
fi
exit 0
"#,
        from = from.display(),
        to = to.display(),
    )
}

/// What installing did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    Fresh,
    Updated,
    AlreadyThere,
}

/// Write the plugin and `binary` (the running lifeboat) into `root`. Identical files are
/// left alone, so installing twice changes nothing.
pub fn install(root: &Path, binary: &[u8], plugin_text: &str) -> Result<Installed, HookError> {
    if !root.join("etc").is_dir() {
        return Err(HookError::NotARoot {
            root: root.to_owned(),
        });
    }
    let mut outcome = Vec::new();
    for (rel, bytes) in [(BINARY, binary), (PLUGIN, plugin_text.as_bytes())] {
        let path = root.join(rel);
        let io = |what: &'static str| {
            let path = path.clone();
            move |source| HookError::Io { what, path, source }
        };
        match fs::read(&path) {
            Ok(old) if old == bytes => {
                outcome.push(Installed::AlreadyThere);
                continue;
            }
            Ok(_) => outcome.push(Installed::Updated),
            Err(_) => outcome.push(Installed::Fresh),
        }
        let dir = path.parent().unwrap_or(root);
        fs::create_dir_all(dir).map_err(io("create the directory of"))?;
        // Through a temporary name: a running lifeboat binary cannot be overwritten in
        // place (ETXTBSY), and a half-written plugin must never run.
        let tmp = path.with_extension("lifeboat-new");
        fs::write(&tmp, bytes).map_err(io("write"))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).map_err(io("chmod"))?;
        fs::rename(&tmp, &path).map_err(io("rename into place"))?;
    }
    Ok(if outcome.iter().all(|o| *o == Installed::AlreadyThere) {
        Installed::AlreadyThere
    } else if outcome.contains(&Installed::Updated) {
        Installed::Updated
    } else {
        Installed::Fresh
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn install_twice_is_a_no_op_and_the_plugin_is_valid_sh() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        let text = plugin(Path::new("/boot/efi"), Path::new("/boot/efi2"));
        assert_eq!(
            install(root.path(), b"bin", &text).unwrap(),
            Installed::Fresh
        );
        let p = root.path().join(PLUGIN);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let mtime = fs::metadata(&p).unwrap().modified().unwrap();
        assert_eq!(
            install(root.path(), b"bin", &text).unwrap(),
            Installed::AlreadyThere
        );
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), mtime);
        assert_eq!(
            install(root.path(), b"bin2", &text).unwrap(),
            Installed::Updated
        );
        assert_eq!(fs::read(root.path().join(BINARY)).unwrap(), b"bin2");
        // sh -n: the syntax a shell reads, checked by a shell.
        let ok = Command::new("sh").arg("-n").arg(&p).status().unwrap();
        assert!(ok.success());
        assert!(text.contains("esp-sync --from /boot/efi --to /boot/efi2 --yes"));
        // Commands kernel-install does not run it for are ignored.
        let out = Command::new("sh").arg(&p).arg("inspect").output().unwrap();
        assert!(out.status.success() && out.stdout.is_empty());
    }

    #[test]
    fn a_directory_without_etc_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let err = install(root.path(), b"bin", "x").unwrap_err();
        assert!(err.to_string().contains("does not look like a system root"));
        assert!(
            fs::read_dir(root.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }
}
