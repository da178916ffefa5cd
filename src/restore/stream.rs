//! The first command of a `btrfs send` stream (pure): which subvolume it makes, its UUID,
//! and for an incremental stream the parent it needs. Enough to build parent chains of raw
//! stream files without reading them whole; `btrfs receive --dump` checks whole streams.
//!
//! Layout (btrfs send format, versions 1 to 3 share it): the magic `btrfs-stream\0`, a u32
//! version, then commands: u32 payload length, u16 command, u32 CRC, then attributes
//! (u16 type, u16 length, data). The first command is SUBVOL (1) or SNAPSHOT (2).

use serde::Serialize;
use uuid::Uuid;

use crate::single_component::{NameError, SingleComponent};

const MAGIC: &[u8] = b"btrfs-stream\0";
const CMD_SUBVOL: u16 = 1;
const CMD_SNAPSHOT: u16 = 2;
const ATTR_UUID: u16 = 1;
const ATTR_CTRANSID: u16 = 2;
const ATTR_PATH: u16 = 15;
const ATTR_CLONE_UUID: u16 = 20;
const ATTR_CLONE_CTRANSID: u16 = 21;

/// How many bytes of a stream [`head`] needs at most.
pub const HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamHead {
    pub version: u32,
    /// The subvolume's name as it will be received: one path component, since lifeboat
    /// joins it onto the receive directory.
    pub name: SingleComponent,
    /// The UUID of the sent subvolume: the received one gets it as received_uuid.
    pub uuid: Uuid,
    pub ctransid: u64,
    /// Incremental streams: the UUID (and ctransid) of the parent that must be there.
    pub parent: Option<(Uuid, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("not a btrfs send stream (no `btrfs-stream` magic)")]
    Magic,
    #[error("the stream ends inside its first command")]
    Truncated,
    #[error("the stream's first command is {0}, not a subvolume or snapshot")]
    FirstCommand(u16),
    #[error("the stream's first command lacks its {0}")]
    Missing(&'static str),
    /// Worded as [`super::stream_check`] words it: the whole-stream check says the same.
    #[error(
        "command 1 ({0}) names its subvolume \"{1}\", which {2}: a subvolume name must be \
         one path component"
    )]
    Name(&'static str, String, NameError),
}

/// Parse the head of a stream from its first bytes ([`HEAD_BYTES`] is always enough).
pub fn head(bytes: &[u8]) -> Result<StreamHead, StreamError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(StreamError::Magic)?;
    let u16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
    };
    let version = u32_at(rest, 0).ok_or(StreamError::Truncated)?;
    let cmd = rest.get(4..).ok_or(StreamError::Truncated)?;
    let len = u32_at(cmd, 0).ok_or(StreamError::Truncated)? as usize;
    let kind = u16_at(cmd, 4).ok_or(StreamError::Truncated)?;
    if kind != CMD_SUBVOL && kind != CMD_SNAPSHOT {
        return Err(StreamError::FirstCommand(kind));
    }
    let mut attrs = cmd.get(10..10 + len).ok_or(StreamError::Truncated)?;
    let (mut name, mut uuid, mut ctransid, mut clone_uuid, mut clone_ctransid) =
        (None, None, None, None, None);
    while !attrs.is_empty() {
        let ty = u16_at(attrs, 0).ok_or(StreamError::Truncated)?;
        let n = u16_at(attrs, 2).ok_or(StreamError::Truncated)? as usize;
        let data = attrs.get(4..4 + n).ok_or(StreamError::Truncated)?;
        let as_u64 = || data.try_into().ok().map(u64::from_le_bytes);
        match ty {
            ATTR_PATH => name = Some(data),
            ATTR_UUID => uuid = Uuid::from_slice(data).ok(),
            ATTR_CTRANSID => ctransid = as_u64(),
            ATTR_CLONE_UUID => clone_uuid = Uuid::from_slice(data).ok(),
            ATTR_CLONE_CTRANSID => clone_ctransid = as_u64(),
            _ => {}
        }
        attrs = &attrs[4 + n..];
    }
    let parent = if kind == CMD_SNAPSHOT {
        Some((
            clone_uuid.ok_or(StreamError::Missing("parent UUID"))?,
            clone_ctransid.ok_or(StreamError::Missing("parent ctransid"))?,
        ))
    } else {
        None
    };
    let raw = name.ok_or(StreamError::Missing("path"))?;
    let command = if kind == CMD_SNAPSHOT {
        "snapshot"
    } else {
        "subvol"
    };
    let refused = |why| {
        StreamError::Name(
            command,
            String::from_utf8_lossy(raw).escape_debug().to_string(),
            why,
        )
    };
    let name = std::str::from_utf8(raw).map_err(|_| refused(NameError::NotUtf8))?;
    let name = SingleComponent::new(name).map_err(refused)?;
    Ok(StreamHead {
        version,
        name,
        uuid: uuid.ok_or(StreamError::Missing("UUID"))?,
        ctransid: ctransid.ok_or(StreamError::Missing("ctransid"))?,
        parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_le_bytes().to_vec();
        v.extend((data.len() as u16).to_le_bytes());
        v.extend(data);
        v
    }

    fn stream(cmd: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let payload: Vec<u8> = attrs.concat();
        let mut v = MAGIC.to_vec();
        v.extend(1u32.to_le_bytes());
        v.extend((payload.len() as u32).to_le_bytes());
        v.extend(cmd.to_le_bytes());
        v.extend(0u32.to_le_bytes()); // CRC, not checked here
        v.extend(payload);
        v.extend([0u8; 10]); // the next command's header
        v
    }

    const U1: [u8; 16] = [1; 16];
    const U2: [u8; 16] = [2; 16];

    #[test]
    fn full_and_incremental_heads() {
        let full = stream(
            CMD_SUBVOL,
            &[
                attr(ATTR_PATH, b"@home.20261120T0300"),
                attr(ATTR_UUID, &U1),
                attr(ATTR_CTRANSID, &7u64.to_le_bytes()),
            ],
        );
        let h = head(&full).unwrap();
        assert_eq!(h.name.as_str(), "@home.20261120T0300");
        assert_eq!(h.uuid, Uuid::from_bytes(U1));
        assert_eq!((h.version, h.ctransid, h.parent), (1, 7, None));

        let incr = stream(
            CMD_SNAPSHOT,
            &[
                attr(ATTR_PATH, b"@home.20261121T0300"),
                attr(ATTR_UUID, &U2),
                attr(ATTR_CTRANSID, &9u64.to_le_bytes()),
                attr(ATTR_CLONE_UUID, &U1),
                attr(ATTR_CLONE_CTRANSID, &7u64.to_le_bytes()),
            ],
        );
        assert_eq!(head(&incr).unwrap().parent, Some((Uuid::from_bytes(U1), 7)));
    }

    #[test]
    fn broken_heads_are_named() {
        assert_eq!(head(b"tar archive"), Err(StreamError::Magic));
        let full = stream(CMD_SUBVOL, &[attr(ATTR_PATH, b"x"), attr(ATTR_UUID, &U1)]);
        assert_eq!(head(&full[..20]), Err(StreamError::Truncated));
        assert_eq!(head(&full), Err(StreamError::Missing("ctransid")));
        assert_eq!(head(&stream(3, &[])), Err(StreamError::FirstCommand(3)));
        let no_parent = stream(
            CMD_SNAPSHOT,
            &[
                attr(ATTR_PATH, b"x"),
                attr(ATTR_UUID, &U2),
                attr(ATTR_CTRANSID, &9u64.to_le_bytes()),
            ],
        );
        assert_eq!(head(&no_parent), Err(StreamError::Missing("parent UUID")));
        let absolute = stream(
            CMD_SUBVOL,
            &[
                attr(ATTR_PATH, b"/mnt/other/@home"),
                attr(ATTR_UUID, &U1),
                attr(ATTR_CTRANSID, &7u64.to_le_bytes()),
            ],
        );
        assert_eq!(
            head(&absolute),
            Err(StreamError::Name(
                "subvol",
                "/mnt/other/@home".into(),
                NameError::Slash
            ))
        );
    }
}
