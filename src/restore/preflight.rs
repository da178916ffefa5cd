//! How much of each stream file the preflight reads before anything is written.
//!
//! Every stream is checked command by command while it flows into `btrfs receive`
//! ([`super::stream_check`] in [`super::pipe`]), it is received under `@snapshots`, and it
//! only counts as a restore point once `btrfs receive` finished it (read-only, with a
//! received UUID; see [`super::plan`]). So a stream that turns out hostile or damaged
//! half-way leaves nothing that a restore or a re-run would use. What a whole-stream read
//! before writing still protects is what is on the target: when provisioning would destroy
//! data there, or the restore would move a subvolume with data aside, a damaged backup must
//! be found before that, and the preflight reads every stream whole (`btrfs receive
//! --dump`, which also checks each command's CRC). On a blank or just-provisioned target it
//! does not: the backup drive is read once, during the receive ([`Streams::WhileReceived`]).
//!
//! Either way the preflight reads each stream's first [`HEAD_CHECK`] bytes through the same
//! check (a small stream, such as a hand-made one, is thereby checked whole), and chain
//! completeness, heads and room stay where they were (selection, inventory, room).

use std::io::Read;
use std::path::Path;

use super::pipe::{self, PipeError};
use super::stream_check::StreamCheck;
use crate::plan::{Action, Plan};

/// Bytes of each stream checked in the preflight whatever the target holds: enough for
/// every small stream to be checked whole, little beside a large one (read again from the
/// page cache by the receive).
pub const HEAD_CHECK: u64 = 16 << 20;

/// Whether the preflight reads the stream files whole, and why (a line of the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streams {
    Whole(String),
    WhileReceived(String),
}

impl Streams {
    pub fn is_whole(&self) -> bool {
        matches!(self, Streams::Whole(_))
    }

    /// The plan's line.
    pub fn line(&self) -> String {
        match self {
            Streams::Whole(why) => format!(
                "Stream files: read whole before anything is written ({why}): checked above"
            ),
            Streams::WhileReceived(why) => format!(
                "Stream files: checked as they are received ({why}); a stream becomes a \
                 restore point only when it was received whole"
            ),
        }
    }
}

/// The disks (ids) whose provisioning plan destroys what they hold.
pub fn destroys(prov: &Plan) -> Vec<String> {
    prov.disks
        .iter()
        .filter(|d| {
            d.actions
                .iter()
                .any(|a| matches!(a, Action::WipeDisk { .. }))
                || d.notes.iter().any(|n| n.starts_with("DESTROYS"))
        })
        .map(|d| d.id.clone())
        .collect()
}

/// The decision: `destroyed` disks (see [`destroys`]) and the subvolumes with data the
/// restore would move aside (`replaced`).
pub fn streams(destroyed: &[String], replaced: &[String]) -> Streams {
    if !destroyed.is_empty() {
        return Streams::Whole(format!(
            "provisioning destroys what {} holds",
            destroyed.join(", ")
        ));
    }
    if !replaced.is_empty() {
        return Streams::Whole(format!(
            "{} holds data the restore moves aside",
            replaced.join(", ")
        ));
    }
    Streams::WhileReceived("the target holds nothing the restore replaces".into())
}

/// What the head check of one stream found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Stream bytes read (decompressed).
    pub bytes: u64,
    /// The stream ended within [`HEAD_CHECK`], its end command included: checked whole.
    pub whole: bool,
}

/// Check the first [`HEAD_CHECK`] bytes of the stream file at `path` (plain or zstd)
/// with [`StreamCheck`].
pub fn check_head(path: &Path) -> Result<Head, PipeError> {
    let reader = pipe::open_file(path)?;
    check_reader(reader.take(HEAD_CHECK), &path.display().to_string())
}

/// The stream's size in a zstd file at `path`, when its first frame says (zstd writes it
/// when it knew the input's size): for the room check and the ETA.
pub fn zstd_content_size(path: &Path) -> Option<u64> {
    let mut head = [0u8; 18];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    zstd::zstd_safe::get_frame_content_size(&head[..n]).ok()?
}

fn check_reader(mut reader: impl Read, what: &str) -> Result<Head, PipeError> {
    let mut check = StreamCheck::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(PipeError::Read {
                    what: what.to_owned(),
                    source,
                })
            }
        };
        check.feed(&buf[..n]).map_err(PipeError::Refused)?;
        bytes += n as u64;
    }
    if bytes < HEAD_CHECK && !check.complete() {
        return Err(PipeError::Truncated {
            what: what.to_owned(),
            bytes,
        });
    }
    Ok(Head {
        bytes,
        whole: check.complete(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DiskPlan;

    fn disk(id: &str, notes: &[&str], wipe: bool) -> DiskPlan {
        DiskPlan {
            id: id.into(),
            device: format!("/dev/{id}").into(),
            size: 1 << 40,
            serial: None,
            preserved: false,
            notes: notes.iter().map(|n| n.to_string()).collect(),
            actions: if wipe {
                vec![Action::WipeDisk {
                    device: format!("/dev/{id}").into(),
                }]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn the_whole_read_is_kept_where_the_target_holds_what_the_restore_replaces() {
        let plan = |disks| Plan {
            spec: "atlantis.toml".into(),
            disks,
        };
        // Blank disk: an empty GPT replaced is not data destroyed.
        let blank = plan(vec![disk(
            "disk1",
            &["replaces an empty GPT (no partitions in it)"],
            false,
        )]);
        assert_eq!(destroys(&blank), Vec::<String>::new());
        assert!(!streams(&destroys(&blank), &[]).is_whole());
        let wiped = plan(vec![disk(
            "disk1",
            &["DESTROYS a GPT with 2 partitions"],
            true,
        )]);
        assert_eq!(destroys(&wiped), vec!["disk1".to_string()]);
        let s = streams(&destroys(&wiped), &[]);
        assert_eq!(
            s,
            Streams::Whole("provisioning destroys what disk1 holds".into())
        );
        let other_fs = plan(vec![disk(
            "disk1",
            &["DESTROYS a ext4 filesystem in partition 4 (LINPOOL)"],
            false,
        )]);
        assert!(streams(&destroys(&other_fs), &[]).is_whole());
        // Provisioned already: only a subvolume with data matters.
        let done = plan(vec![]);
        let s = streams(&destroys(&done), &["@home".into()]);
        assert_eq!(
            s,
            Streams::Whole("@home holds data the restore moves aside".into())
        );
        let s = streams(&destroys(&done), &[]);
        assert!(s
            .line()
            .starts_with("Stream files: checked as they are received"));
    }

    /// A command: its number and its attributes (type, value).
    type Command = (u16, Vec<(u16, Vec<u8>)>);

    fn stream(commands: &[Command]) -> Vec<u8> {
        let mut out = b"btrfs-stream\0".to_vec();
        out.extend(1u32.to_le_bytes());
        for (cmd, attrs) in commands {
            let mut payload = Vec::new();
            for (ty, v) in attrs {
                payload.extend(ty.to_le_bytes());
                payload.extend((v.len() as u16).to_le_bytes());
                payload.extend(v);
            }
            out.extend((payload.len() as u32).to_le_bytes());
            out.extend(cmd.to_le_bytes());
            out.extend(0u32.to_le_bytes());
            out.extend(payload);
        }
        out
    }

    fn subvol() -> Command {
        (
            1,
            vec![
                (15, b"@home.20261121T0300".to_vec()),
                (1, vec![7; 16]),
                (2, 1u64.to_le_bytes().to_vec()),
            ],
        )
    }

    #[test]
    fn the_head_check_refuses_early_and_reads_no_further_than_its_budget() {
        // Small and whole.
        let s = stream(&[subvol(), (21, vec![])]);
        let h = check_reader(&s[..], "s").unwrap();
        assert_eq!(
            h,
            Head {
                bytes: s.len() as u64,
                whole: true
            }
        );
        // Small and cut short: incomplete.
        let cut = stream(&[subvol()]);
        assert!(matches!(
            check_reader(&cut[..], "s"),
            Err(PipeError::Truncated { .. })
        ));
        // A path that climbs out, early: refused.
        let bad = stream(&[
            subvol(),
            (
                3,
                vec![(15, b"../x".to_vec()), (3, 5u64.to_le_bytes().to_vec())],
            ),
            (21, vec![]),
        ]);
        assert!(matches!(
            check_reader(&bad[..], "s"),
            Err(PipeError::Refused(_))
        ));
        // Large: only the budget is read, and that is not an error.
        let mut big = stream(&[subvol()]);
        let write = (
            15u16,
            vec![
                (15u16, b"f".to_vec()),
                (18u16, 0u64.to_le_bytes().to_vec()),
                (19u16, vec![0u8; 60_000]),
            ],
        );
        let mkfile = (
            3u16,
            vec![(15u16, b"f".to_vec()), (3u16, 5u64.to_le_bytes().to_vec())],
        );
        big.extend(&stream(&[mkfile])[17..]);
        while (big.len() as u64) < HEAD_CHECK * 2 {
            big.extend(&stream(std::slice::from_ref(&write))[17..]);
        }
        let h = check_reader((&big[..]).take(HEAD_CHECK), "s").unwrap();
        assert_eq!(
            h,
            Head {
                bytes: HEAD_CHECK,
                whole: false
            }
        );
    }
}
