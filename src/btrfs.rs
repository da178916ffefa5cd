//! The `btrfs` program: every call lifeboat makes of it goes through here, so what is run
//! against a filesystem can be read in one place. Streams (`send`, `receive`, `receive
//! --dump`) are returned as commands for [`crate::restore::pipe`] to connect.

use std::path::Path;

use crate::exec::{Cmd, ExecError};

/// What `btrfs subvolume show` says about a subvolume, as far as a restore asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub readonly: bool,
    /// It has a received UUID: `btrfs receive` made it and finished.
    pub received: bool,
}

/// `btrfs subvolume show PATH`. Fails when `path` is not a subvolume.
pub fn show(path: &Path) -> Result<Shown, ExecError> {
    let text = Cmd::new("btrfs")
        .args(["subvolume", "show"])
        .arg(path)
        .read()?;
    Ok(parse_show(&text))
}

/// The flags in `btrfs subvolume show`'s output.
pub fn parse_show(text: &str) -> Shown {
    Shown {
        readonly: text
            .lines()
            .any(|l| l.trim().starts_with("Flags:") && l.contains("readonly")),
        received: text
            .lines()
            .any(|l| l.trim().starts_with("Received UUID:") && !l.trim().ends_with('-')),
    }
}

/// `btrfs subvolume list -u -q -R [-r] TOP`: every subvolume below the filesystem mounted
/// (top level) at `top`, or only the read-only ones. Parsed by
/// [`crate::restore::inventory::parse_subvolume_list`].
pub fn list(top: &Path, readonly_only: bool) -> Result<String, ExecError> {
    let mut cmd = Cmd::new("btrfs").args(["subvolume", "list", "-u", "-q", "-R"]);
    if readonly_only {
        cmd = cmd.arg("-r");
    }
    cmd.arg(top).read()
}

/// `btrfs subvolume create PATH`.
pub fn create(path: &Path) -> Result<(), ExecError> {
    Cmd::new("btrfs")
        .args(["subvolume", "create"])
        .arg(path)
        .run()
        .map(drop)
}

/// `btrfs subvolume delete PATH`.
pub fn delete(path: &Path) -> Result<(), ExecError> {
    Cmd::new("btrfs")
        .args(["subvolume", "delete"])
        .arg(path)
        .run()
        .map(drop)
}

/// `btrfs filesystem sync PATH`: the data the filesystem holds in memory written to its
/// disk and the transaction committed.
pub fn sync(path: &Path) -> Result<(), ExecError> {
    Cmd::new("btrfs")
        .args(["filesystem", "sync"])
        .arg(path)
        .run()
        .map(drop)
}

/// `btrfs subvolume snapshot FROM TO`: a writable snapshot.
pub fn snapshot(from: &Path, to: &Path) -> Result<(), ExecError> {
    Cmd::new("btrfs")
        .args(["subvolume", "snapshot"])
        .arg(from)
        .arg(to)
        .run()
        .map(drop)
}

/// `btrfs quota enable PATH`.
pub fn quota_enable(path: &Path) -> Result<(), ExecError> {
    Cmd::new("btrfs")
        .args(["quota", "enable"])
        .arg(path)
        .run()
        .map(drop)
}

/// `btrfs send -q PATH`: the stream of a read-only subvolume on stdout. Where the kernel
/// and btrfs-progs can ([`send_v2`]), with `--proto 2 --compressed-data`: compressed
/// extents travel as they are on disk (fewer bytes through the pipe, no decompression on
/// the sender and no recompression on the receiver, which writes them encoded).
pub fn send(path: &Path) -> Cmd {
    let cmd = Cmd::new("btrfs").args(["send", "-q"]);
    let cmd = if send_v2().is_ok() {
        cmd.args(["--proto", "2", "--compressed-data"])
    } else {
        cmd
    };
    cmd.arg(path)
}

/// Whether `btrfs send --proto 2 --compressed-data` can be used here: a kernel of 6.0 or
/// later (send stream version 2) and a btrfs program that has the option. `Err` says why
/// not, for the note a restore prints. Asked once per run.
pub fn send_v2() -> Result<(), String> {
    static ANSWER: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_err(|e| format!("the kernel's release cannot be read ({e})"))?;
            let help = Cmd::new("btrfs")
                .args(["send", "--help"])
                .read()
                .unwrap_or_default();
            send_v2_from(release.trim(), &help)
        })
        .clone()
}

/// [`send_v2`]'s decision from the kernel release (`6.1.0-27-amd64`) and `btrfs send
/// --help`.
fn send_v2_from(release: &str, help: &str) -> Result<(), String> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if major < 6 {
        return Err(format!(
            "kernel {release} sends stream version 1 only (version 2 needs 6.0)"
        ));
    }
    if !help.contains("--compressed-data") {
        return Err("this btrfs program has no `send --compressed-data`".into());
    }
    Ok(())
}

/// `btrfs receive -q --chroot DIR`: a stream on stdin becomes a subvolume in `dir`,
/// confined to it: `--chroot` makes `dir` the receiver's `/`, so whatever a path or symlink
/// in the stream says, it cannot reach the rest of the system. (Parents and clone sources
/// are still found: receive opens the filesystem's top before it changes root.)
pub fn receive(dir: &Path) -> Cmd {
    Cmd::new("btrfs")
        .args(["receive", "-q", "--chroot"])
        .arg(dir)
}

/// `btrfs receive --dump`: reads a stream on stdin to its end, checking each command's
/// CRC, and writes nothing.
pub fn dump() -> Cmd {
    Cmd::new("btrfs").args(["receive", "--dump"])
}

/// `btrfs inspect-internal dump-tree -t root NODE`: the root tree of an unmounted
/// filesystem, read without mounting it.
pub fn dump_root_tree(node: &Path) -> Result<String, ExecError> {
    Cmd::new("btrfs")
        .args(["inspect-internal", "dump-tree", "-t", "root"])
        .arg(node)
        .read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_v2_needs_kernel_6_and_the_option() {
        let help = "    --proto N   use protocol version N\n    --compressed-data   send data …";
        assert_eq!(send_v2_from("6.1.0-27-amd64", help), Ok(()));
        assert_eq!(send_v2_from("6.18.44-fc-v1045", help), Ok(()));
        assert!(send_v2_from("5.15.0-91-generic", help)
            .unwrap_err()
            .contains("kernel 5.15.0-91-generic"));
        assert!(send_v2_from("6.1.0", "    --proto N")
            .unwrap_err()
            .contains("--compressed-data"));
        assert!(send_v2_from("", help).is_err());
    }

    #[test]
    fn show_reads_the_readonly_flag_and_the_received_uuid() {
        let received = "@home.20261120T0300\n\tName: \t\t\t@home.20261120T0300\n\
            \tUUID: \t\t\t1b6b0d44-5a7e-4f43-9d59-4b6c2d1a0c11\n\
            \tParent UUID: \t\t-\n\
            \tReceived UUID: \t\t9f3c3c9e-2f0a-4a57-a9f8-3a3f9e0f2b1d\n\
            \tFlags: \t\t\treadonly\n";
        assert_eq!(
            parse_show(received),
            Shown {
                readonly: true,
                received: true
            }
        );
        let interrupted = "x\n\tReceived UUID: \t\t-\n\tFlags: \t\t\t-\n";
        assert_eq!(
            parse_show(interrupted),
            Shown {
                readonly: false,
                received: false
            }
        );
    }
}
