//! Every command of a `btrfs send` stream checked before `btrfs receive` sees it (pure): a
//! stream on the backup drive or in restic is data from outside, and `btrfs receive` does
//! what it says. It joins each path onto the subvolume's directory and follows symlinks
//! while doing so, so a stream could climb out with `..`, or make a symlink to a host
//! directory and write through it. [`StreamCheck`] is fed the bytes as they pass (in any
//! chunks) and refuses:
//!
//! - a subvolume name that is not one path component ([`crate::single_component`]);
//! - a path that is absolute, has a `..` (or an empty or `.`) component, or holds a NUL;
//! - a path that goes through a symlink the stream made (or renamed or hard-linked into
//!   place), and a command that follows one (writing, truncating, chmod …); a symlink's
//!   target may be anything, it is only never followed;
//! - commands before the subvolume's, a second subvolume, anything after the end, and
//!   commands or attributes it does not know (so that no path goes unchecked).
//!
//! The framing follows btrfs-progs `common/send-stream.c` (versions 1 to 3): commands are
//! cut by their length exactly as `btrfs receive` cuts them; within one, the last copy of
//! an attribute is the one receive uses, so a repeated attribute is refused. CRCs are left
//! to `btrfs receive`, which rejects a command whose CRC is wrong.
//!
//! A write's data is its command's last attribute (from version 2 on it has no length and
//! runs to the end), and nothing in it is a path: once the attributes before it are in, the
//! command is judged and the data goes by unparsed. [`StreamCheck::unseen`] says how much
//! of it is still to come, so that [`super::pipe`] can splice it from pipe to pipe.
//!
//! Symlinks inside the parent of an incremental stream are not known here; `btrfs receive
//! --chroot` keeps whatever they point at inside the receive directory.

use std::collections::BTreeMap;
use std::fmt;

use crate::single_component::{self, NameError};

const MAGIC: &[u8] = b"btrfs-stream\0";
const STREAM_HEADER: usize = MAGIC.len() + 4;
const CMD_HEADER: usize = 10;
/// Far above the largest command a kernel sends (v2: 16 KiB + 128 KiB compressed); a
/// stream claiming more is not one, and would make receive allocate what it says.
const CMD_MAX: usize = 16 << 20;
const MAX_VERSION: u32 = 3;

const A_UUID: u16 = 1;
const A_PATH: u16 = 15;
const A_PATH_TO: u16 = 16;
const A_PATH_LINK: u16 = 17;
const A_DATA: u16 = 19;
const A_CLONE_UUID: u16 = 20;
const A_CLONE_PATH: u16 = 22;
const A_MAX: u16 = 35;

/// The commands, by number, as `btrfs receive --dump` names them.
const NAMES: [&str; 27] = [
    "unspec",
    "subvol",
    "snapshot",
    "mkfile",
    "mkdir",
    "mknod",
    "mkfifo",
    "mksock",
    "symlink",
    "rename",
    "link",
    "unlink",
    "rmdir",
    "set_xattr",
    "remove_xattr",
    "write",
    "clone",
    "truncate",
    "chmod",
    "chown",
    "utimes",
    "end",
    "update_extent",
    "fallocate",
    "fileattr",
    "encoded_write",
    "enable_verity",
];

fn name_of(cmd: u16) -> &'static str {
    NAMES.get(cmd as usize).copied().unwrap_or("unknown")
}

/// What is wrong with a stream, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based count of commands; 0 for the stream's header.
    pub command: u64,
    /// The command's name (`symlink`), as `btrfs receive --dump` calls it.
    pub name: &'static str,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NotAStream,
    Version(u32),
    TooLong(usize),
    Unknown,
    BadAttribute(u16),
    Repeated(u16),
    Missing(&'static str),
    BeforeSubvolume,
    SecondSubvolume,
    AfterEnd,
    SubvolumeName(String, NameError),
    Absolute(String),
    ClimbsOut(String),
    NotPlain(String),
    Nul(String),
    /// A path that goes through the symlink (at `link`) that command `made` made.
    Through {
        path: String,
        link: String,
        made: u64,
    },
    /// A command that follows the symlink at `path` (made by command `made`).
    Follows {
        path: String,
        made: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.command == 0 {
            return write!(f, "{}", self.problem);
        }
        write!(
            f,
            "command {} ({}) {}",
            self.command, self.name, self.problem
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAStream => write!(f, "is not a btrfs send stream (no magic)"),
            Problem::Version(v) => write!(
                f,
                "says stream version {v}; lifeboat knows versions 1 to {MAX_VERSION}"
            ),
            Problem::TooLong(n) => write!(f, "claims {n} bytes, more than any send stream has"),
            Problem::Unknown => write!(f, "is not a command lifeboat knows"),
            Problem::BadAttribute(a) => write!(f, "has a malformed attribute {a}"),
            Problem::Repeated(a) => write!(f, "gives attribute {a} twice"),
            Problem::Missing(what) => write!(f, "lacks its {what}"),
            Problem::BeforeSubvolume => write!(f, "comes before the stream's subvolume"),
            Problem::SecondSubvolume => {
                write!(f, "starts a second subvolume; a stream file holds one")
            }
            Problem::AfterEnd => write!(f, "comes after the stream's end"),
            Problem::SubvolumeName(name, why) => write!(
                f,
                "names its subvolume \"{}\", which {why}: a subvolume name must be one path \
                 component",
                name.escape_debug()
            ),
            Problem::Absolute(p) => write!(
                f,
                "uses an absolute path, outside the subvolume: {}",
                p.escape_debug()
            ),
            Problem::ClimbsOut(p) => {
                write!(f, "climbs out of the subvolume: {}", p.escape_debug())
            }
            Problem::NotPlain(p) => write!(
                f,
                "uses a path with an empty or . component, which btrfs send never writes: {}",
                p.escape_debug()
            ),
            Problem::Nul(p) => write!(f, "uses a path with a NUL byte: {}", p.escape_debug()),
            Problem::Through { path, link, made } => write!(
                f,
                "goes through the symlink {} that command {made} made: {}",
                link.escape_debug(),
                path.escape_debug()
            ),
            Problem::Follows { path, made } => write!(
                f,
                "would follow the symlink {} that command {made} made",
                path.escape_debug()
            ),
        }
    }
}

/// How a command treats the last component of a path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// `creat`, `open`, `truncate`, `chmod`: a symlink there is followed.
    Followed,
    /// `mkdir`, `rename`, `unlink`, `lchown`, `lsetxattr`, `utimensat(NOFOLLOW)` …
    NotFollowed,
}

/// The state of one stream's check; feed it every byte, in order.
#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Bytes of a header or command not yet complete.
    pending: Vec<u8>,
    /// The rest of a judged write's data: bytes that are passed, not parsed.
    unseen: u64,
    version: Option<u32>,
    commands: u64,
    /// The UUID of the subvolume being received, once its command was seen.
    subvol: Option<Vec<u8>>,
    ended: bool,
    /// Symlinks the stream made, by their current path, with the command that made them.
    symlinks: BTreeMap<Vec<u8>, u64>,
}

impl StreamCheck {
    pub fn new() -> StreamCheck {
        StreamCheck::default()
    }

    /// Whether the stream's end command was seen. `btrfs receive` treats an end of input at
    /// a command boundary as the end of the stream and marks the subvolume complete, so a
    /// stream cut short there must never be handed an EOF.
    pub fn complete(&self) -> bool {
        self.ended && self.pending.is_empty() && self.unseen == 0
    }

    /// How many of the next bytes are the data of a write whose command was already judged:
    /// they may reach `btrfs receive` without being fed ([`StreamCheck::passed`]). `feed`
    /// skips them as well.
    pub fn unseen(&self) -> u64 {
        self.unseen
    }

    /// `n` of the [`StreamCheck::unseen`] bytes went by without being fed.
    pub fn passed(&mut self, n: u64) {
        debug_assert!(n <= self.unseen, "{n} > {}", self.unseen);
        self.unseen -= n.min(self.unseen);
    }

    /// Check the next bytes of the stream. An error is final: the command it names and
    /// everything after it must not reach `btrfs receive`.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Refusal> {
        while !data.is_empty() {
            if self.unseen > 0 {
                let skip = self.unseen.min(data.len() as u64);
                self.unseen -= skip;
                data = &data[skip as usize..];
                continue;
            }
            if self.pending.is_empty() {
                // The common case: whole commands inside the chunk, checked in place.
                if let Some(n) = self.unit_len(data)? {
                    if data.len() >= n {
                        self.unit(&data[..n])?;
                        data = &data[n..];
                        continue;
                    }
                    if let Some(head) = self.data_at(data, n) {
                        self.unit(&data[..head])?;
                        self.unseen = (n - head) as u64;
                        data = &data[head..];
                        continue;
                    }
                }
            }
            let need = self.unit_len(&self.pending)?.unwrap_or(CMD_HEADER);
            let take = (need - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if let Some(n) = self.unit_len(&self.pending)? {
                if n == self.pending.len() {
                    let unit = std::mem::take(&mut self.pending);
                    self.unit(&unit)?;
                } else if let Some(head) = self.data_at(&self.pending, n) {
                    let unit = std::mem::take(&mut self.pending);
                    self.unit(&unit[..head])?;
                    self.unseen = (n - unit.len()) as u64;
                }
            }
        }
        Ok(())
    }

    /// Where the data starts in `buf`, the start of a write or encoded write `n` bytes
    /// long, once every attribute before it is in `buf` and the data is the command's last
    /// attribute (as the kernel sends it): the bytes before it are then the whole of what
    /// the command says about paths. `None` leaves the command to be judged whole.
    fn data_at(&self, buf: &[u8], n: usize) -> Option<usize> {
        let version = self.version?;
        let cmd = buf.get(4..6).map(|c| u16::from_le_bytes([c[0], c[1]]))?;
        // write, encoded_write
        if cmd != 15 && cmd != 25 {
            return None;
        }
        let u16_at = |at: usize| {
            buf.get(at..at + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        let mut at = CMD_HEADER;
        while at < n {
            let ty = u16_at(at)?;
            if ty == A_DATA {
                if version >= 2 {
                    return (at + 2 <= n).then_some(at);
                }
                // Version 1: DATA has a length; only a last one is passed unparsed.
                return (at + 4 + u16_at(at + 2)? as usize == n).then_some(at);
            }
            at += 4 + u16_at(at + 2)? as usize;
        }
        None
    }

    /// How long the unit that starts `buf` is: the stream header, or a command once its
    /// header is there.
    fn unit_len(&self, buf: &[u8]) -> Result<Option<usize>, Refusal> {
        if self.version.is_none() {
            return Ok(Some(STREAM_HEADER));
        }
        let Some(len) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > CMD_MAX {
            let cmd = buf
                .get(4..6)
                .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
            return Err(self.refuse_at(self.commands + 1, cmd, Problem::TooLong(len)));
        }
        Ok(Some(CMD_HEADER + len))
    }

    fn refuse_at(&self, command: u64, cmd: u16, problem: Problem) -> Refusal {
        Refusal {
            command,
            name: name_of(cmd),
            problem,
        }
    }

    fn unit(&mut self, unit: &[u8]) -> Result<(), Refusal> {
        let Some(version) = self.version else {
            let refuse = |problem| Refusal {
                command: 0,
                name: "",
                problem,
            };
            let rest = unit
                .strip_prefix(MAGIC)
                .ok_or(refuse(Problem::NotAStream))?;
            let version = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if version == 0 || version > MAX_VERSION {
                return Err(refuse(Problem::Version(version)));
            }
            self.version = Some(version);
            return Ok(());
        };
        self.commands += 1;
        let cmd = u16::from_le_bytes([unit[4], unit[5]]);
        let n = self.commands;
        let refuse = |problem| Refusal {
            command: n,
            name: name_of(cmd),
            problem,
        };
        let attrs = attributes(&unit[CMD_HEADER..], version).map_err(refuse)?;
        self.command(cmd, &attrs).map_err(refuse)
    }

    fn command(&mut self, cmd: u16, attrs: &Attrs) -> Result<(), Problem> {
        if self.ended {
            return Err(Problem::AfterEnd);
        }
        if !(1..NAMES.len() as u16).contains(&cmd) {
            return Err(Problem::Unknown);
        }
        let first = cmd == 1 || cmd == 2;
        match (&self.subvol, first) {
            (None, false) => return Err(Problem::BeforeSubvolume),
            (Some(_), true) => return Err(Problem::SecondSubvolume),
            _ => {}
        }
        use Last::*;
        match cmd {
            // subvol, snapshot
            1 | 2 => {
                let name = attrs.get(A_PATH).ok_or(Problem::Missing("path"))?;
                let checked = std::str::from_utf8(name)
                    .map_err(|_| NameError::NotUtf8)
                    .and_then(single_component::check);
                if let Err(why) = checked {
                    return Err(Problem::SubvolumeName(lossy(name), why));
                }
                let uuid = attrs.get(A_UUID).ok_or(Problem::Missing("UUID"))?;
                self.subvol = Some(uuid.to_vec());
            }
            // mkfile
            3 => {
                self.path(attrs, A_PATH, Followed)?;
            }
            // mkdir, mknod, mkfifo, mksock
            4..=7 => {
                let path = self.path(attrs, A_PATH, NotFollowed)?;
                self.symlinks.remove(&path);
            }
            // symlink: its target (PATH_LINK) may be anything; it is never followed.
            8 => {
                let path = self.path(attrs, A_PATH, NotFollowed)?;
                self.symlinks.insert(path, self.commands);
            }
            // rename
            9 => {
                let from = self.path(attrs, A_PATH, NotFollowed)?;
                let to = self.path(attrs, A_PATH_TO, NotFollowed)?;
                self.moved(&from, &to);
            }
            // link: a hard link to a symlink is a symlink too.
            10 => {
                let path = self.path(attrs, A_PATH, NotFollowed)?;
                let target = self.path(attrs, A_PATH_LINK, NotFollowed)?;
                match self.symlinks.get(&target).copied() {
                    Some(made) => self.symlinks.insert(path, made),
                    None => self.symlinks.remove(&path),
                };
            }
            // unlink, rmdir
            11 | 12 => {
                let path = self.path(attrs, A_PATH, NotFollowed)?;
                self.forget(&path);
            }
            // set_xattr, remove_xattr (l*xattr), chown (lchown), utimes (no follow),
            // update_extent (receive only logs it)
            13 | 14 | 19 | 20 | 22 => {
                self.path(attrs, A_PATH, NotFollowed)?;
            }
            // write, truncate, chmod, fallocate, fileattr, encoded_write, enable_verity
            15 | 17 | 18 | 23..=26 => {
                self.path(attrs, A_PATH, Followed)?;
            }
            // clone: into PATH, from CLONE_PATH in the subvolume CLONE_UUID names.
            16 => {
                self.path(attrs, A_PATH, Followed)?;
                let from = attrs
                    .get(A_CLONE_PATH)
                    .ok_or(Problem::Missing("clone path"))?;
                let own = attrs.get(A_CLONE_UUID).map(<[u8]>::to_vec) == self.subvol;
                if own {
                    self.check_path(from, Followed)?;
                } else {
                    // Another subvolume of the target pool; its symlinks are not known
                    // here, and btrfs clones only within one filesystem.
                    plain(from)?;
                }
            }
            // end
            21 => self.ended = true,
            _ => return Err(Problem::Unknown),
        }
        Ok(())
    }

    /// The checked, required path attribute `attr`. Paths are bytes, as receive takes
    /// them: two names that differ only in bytes that are not UTF-8 stay apart.
    fn path(&self, attrs: &Attrs, attr: u16, last: Last) -> Result<Vec<u8>, Problem> {
        let path = attrs.get(attr).ok_or(Problem::Missing(match attr {
            A_PATH_TO => "new path",
            A_PATH_LINK => "link target",
            _ => "path",
        }))?;
        self.check_path(path, last)?;
        Ok(path.to_vec())
    }

    fn check_path(&self, path: &[u8], last: Last) -> Result<(), Problem> {
        plain(path)?;
        if path.is_empty() {
            return Ok(());
        }
        // Every directory on the way, then the path itself when it is followed.
        for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let dir = &path[..i];
            if let Some(made) = self.symlinks.get(dir) {
                return Err(Problem::Through {
                    path: lossy(path),
                    link: lossy(dir),
                    made: *made,
                });
            }
        }
        if last == Last::Followed {
            if let Some(made) = self.symlinks.get(path) {
                return Err(Problem::Follows {
                    path: lossy(path),
                    made: *made,
                });
            }
        }
        Ok(())
    }

    /// A rename moves the symlink at `from`, or those under the directory `from`; what was
    /// at `to` is replaced.
    fn moved(&mut self, from: &[u8], to: &[u8]) {
        self.forget(to);
        for path in self.at_or_under(from) {
            if let Some(made) = self.symlinks.remove(&path) {
                let mut moved = to.to_vec();
                moved.extend_from_slice(&path[from.len()..]);
                self.symlinks.insert(moved, made);
            }
        }
    }

    fn forget(&mut self, path: &[u8]) {
        for p in self.at_or_under(path) {
            self.symlinks.remove(&p);
        }
    }

    /// The symlinks at `dir` or inside it: a range of the ordered map (`dir/` up to
    /// `dir0`, '0' being the byte after '/'), since a full stream renames every new inode
    /// once and a scan of all symlinks each time would not keep up.
    fn at_or_under(&self, dir: &[u8]) -> Vec<Vec<u8>> {
        let (mut lo, mut hi) = (dir.to_vec(), dir.to_vec());
        lo.push(b'/');
        hi.push(b'/' + 1);
        let exact = self.symlinks.contains_key(dir).then(|| dir.to_vec());
        exact
            .into_iter()
            .chain(self.symlinks.range(lo..hi).map(|(p, _)| p.clone()))
            .collect()
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A relative path of plain components: not absolute, no `..`, `.` or empty component, no
/// NUL (receive would cut the path there). The empty path is the subvolume itself.
fn plain(path: &[u8]) -> Result<(), Problem> {
    if path.contains(&0) {
        return Err(Problem::Nul(lossy(path)));
    }
    if path.is_empty() {
        return Ok(());
    }
    if path.first() == Some(&b'/') {
        return Err(Problem::Absolute(lossy(path)));
    }
    let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    if parts.contains(&&b".."[..]) {
        return Err(Problem::ClimbsOut(lossy(path)));
    }
    if parts.iter().any(|p| p.is_empty() || *p == b".") {
        return Err(Problem::NotPlain(lossy(path)));
    }
    Ok(())
}

/// A command's attributes by type.
struct Attrs<'a>(Vec<(u16, &'a [u8])>);

impl<'a> Attrs<'a> {
    fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.0.iter().find(|(t, _)| *t == ty).map(|(_, d)| *d)
    }
}

/// The attributes of a command's payload, framed as btrfs-progs frames them: from version
/// 2 on, DATA has no length and runs to the end of the command.
fn attributes(mut payload: &[u8], version: u32) -> Result<Attrs<'_>, Problem> {
    let mut out: Vec<(u16, &[u8])> = Vec::new();
    while !payload.is_empty() {
        let ty = payload
            .get(..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or(Problem::BadAttribute(0))?;
        if ty == 0 || ty > A_MAX {
            return Err(Problem::BadAttribute(ty));
        }
        if out.iter().any(|(t, _)| *t == ty) {
            return Err(Problem::Repeated(ty));
        }
        let (data, rest) = if version >= 2 && ty == A_DATA {
            (&payload[2..], &payload[payload.len()..])
        } else {
            let len = payload
                .get(2..4)
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
                .ok_or(Problem::BadAttribute(ty))?;
            let data = payload.get(4..4 + len).ok_or(Problem::BadAttribute(ty))?;
            (data, &payload[4 + len..])
        };
        out.push((ty, data));
        payload = rest;
    }
    Ok(Attrs(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream built command by command (CRCs zero: this check leaves them to receive).
    struct Stream(Vec<u8>);

    impl Stream {
        fn new() -> Stream {
            let mut v = MAGIC.to_vec();
            v.extend(1u32.to_le_bytes());
            Stream(v)
        }
        fn cmd(mut self, cmd: u16, attrs: &[(u16, &[u8])]) -> Stream {
            let mut payload = Vec::new();
            for (ty, data) in attrs {
                payload.extend(ty.to_le_bytes());
                payload.extend((data.len() as u16).to_le_bytes());
                payload.extend(*data);
            }
            self.0.extend((payload.len() as u32).to_le_bytes());
            self.0.extend(cmd.to_le_bytes());
            self.0.extend(0u32.to_le_bytes());
            self.0.extend(payload);
            self
        }
        fn subvol(self, name: &str) -> Stream {
            self.cmd(
                1,
                &[(A_PATH, name.as_bytes()), (A_UUID, &[7; 16]), (2, &[0; 8])],
            )
        }
        fn path(self, cmd: u16, path: &str) -> Stream {
            self.cmd(cmd, &[(A_PATH, path.as_bytes())])
        }
        fn two(self, cmd: u16, path: &str, other_ty: u16, other: &str) -> Stream {
            self.cmd(
                cmd,
                &[(A_PATH, path.as_bytes()), (other_ty, other.as_bytes())],
            )
        }
        fn end(self) -> Stream {
            self.cmd(21, &[])
        }
    }

    fn check(s: &Stream) -> Result<(), Refusal> {
        let mut c = StreamCheck::new();
        c.feed(&s.0)
    }

    /// Every split of the stream into two chunks gives the same answer as one chunk.
    fn check_split(s: &Stream) -> Result<(), Refusal> {
        let whole = check(s);
        for at in 0..=s.0.len() {
            let mut c = StreamCheck::new();
            let split = c.feed(&s.0[..at]).and_then(|()| c.feed(&s.0[at..]));
            assert_eq!(split, whole, "split at {at}");
        }
        whole
    }

    fn problem(s: &Stream) -> (u64, &'static str, Problem) {
        let r = check_split(s).unwrap_err();
        (r.command, r.name, r.problem)
    }

    #[test]
    fn what_btrfs_send_writes_passes() {
        // As the kernel sends it: temporary names renamed into place, a symlink to /etc,
        // a directory with a symlink inside renamed, the root's utimes with an empty path.
        let s = Stream::new()
            .subvol("@home.20261120T0300")
            .path(4, "o257-5-0")
            .two(9, "o257-5-0", A_PATH_TO, "alice")
            .two(8, "o258-5-0", A_PATH_LINK, "/etc/passwd")
            .two(9, "o258-5-0", A_PATH_TO, "alice/passwd-link")
            .two(8, "o259-5-0", A_PATH_LINK, "../../../../etc")
            .two(9, "o259-5-0", A_PATH_TO, "alice/etc")
            .path(3, "alice/notes.txt")
            .two(15, "alice/notes.txt", A_DATA, "hello")
            .path(19, "alice/etc")
            .path(20, "alice/passwd-link")
            .two(9, "alice", A_PATH_TO, "bob")
            .path(20, "");
        assert_eq!(check_split(&s), Ok(()));
        assert_eq!(check_split(&s.end()), Ok(()));
    }

    #[test]
    fn paths_that_leave_the_subvolume() {
        let s = || Stream::new().subvol("@home.20261120T0300");
        assert_eq!(
            problem(&s().path(3, "../../etc/cron.d/x")),
            (2, "mkfile", Problem::ClimbsOut("../../etc/cron.d/x".into()))
        );
        assert_eq!(
            problem(&s().path(4, "a/../../x")),
            (2, "mkdir", Problem::ClimbsOut("a/../../x".into()))
        );
        assert_eq!(
            problem(&s().two(8, "../../etc", A_PATH_LINK, "x")),
            (2, "symlink", Problem::ClimbsOut("../../etc".into()))
        );
        assert_eq!(
            problem(&s().two(9, "a", A_PATH_TO, "/etc/passwd")),
            (2, "rename", Problem::Absolute("/etc/passwd".into()))
        );
        assert_eq!(
            problem(&s().two(10, "a", A_PATH_LINK, "../../etc/shadow")),
            (2, "link", Problem::ClimbsOut("../../etc/shadow".into()))
        );
        assert_eq!(
            problem(&s().path(3, "a/./b")).2,
            Problem::NotPlain("a/./b".into())
        );
        assert_eq!(
            problem(&s().path(3, "a//b")).2,
            Problem::NotPlain("a//b".into())
        );
        assert_eq!(
            problem(&s().path(3, "a/")).2,
            Problem::NotPlain("a/".into())
        );
        assert_eq!(
            problem(&s().path(3, "..\0x")).2,
            Problem::Nul("..\0x".into())
        );
        let clone = s().cmd(
            16,
            &[
                (A_PATH, b"a"),
                (A_CLONE_UUID, &[9; 16]),
                (A_CLONE_PATH, b"../../x"),
            ],
        );
        assert_eq!(problem(&clone).2, Problem::ClimbsOut("../../x".into()));
    }

    #[test]
    fn symlinks_are_never_followed() {
        let s = || {
            Stream::new()
                .subvol("@home.20261120T0300")
                .two(8, "evil", A_PATH_LINK, "/tmp/outside")
        };
        let through = |path: &str, link: &str, made| Problem::Through {
            path: path.into(),
            link: link.into(),
            made,
        };
        assert_eq!(
            problem(&s().path(3, "evil/owned")),
            (3, "mkfile", through("evil/owned", "evil", 2))
        );
        assert_eq!(
            problem(&s().path(4, "evil/a")),
            (3, "mkdir", through("evil/a", "evil", 2))
        );
        // Writing to the symlink itself writes its target.
        assert_eq!(
            problem(&s().two(15, "evil", A_DATA, "x")),
            (
                3,
                "write",
                Problem::Follows {
                    path: "evil".into(),
                    made: 2
                }
            )
        );
        assert_eq!(problem(&s().path(3, "evil")).1, "mkfile");
        assert_eq!(problem(&s().path(18, "evil")).1, "chmod");
        // Renamed, or inside a renamed directory, it is still a symlink.
        assert_eq!(
            problem(&s().two(9, "evil", A_PATH_TO, "d").path(3, "d/x")).2,
            through("d/x", "d", 2)
        );
        let nested = Stream::new()
            .subvol("s")
            .path(4, "a")
            .two(8, "a/l", A_PATH_LINK, "/")
            .two(9, "a", A_PATH_TO, "b")
            .path(4, "b/l/x");
        assert_eq!(problem(&nested).2, through("b/l/x", "b/l", 3));
        // A hard link to it too.
        assert_eq!(
            problem(&s().two(10, "h", A_PATH_LINK, "evil").path(3, "h/x")).2,
            through("h/x", "h", 2)
        );
        // Not once it is gone, or replaced by a directory.
        assert_eq!(
            check_split(&s().path(11, "evil").path(4, "evil").path(3, "evil/x")),
            Ok(())
        );
        assert_eq!(
            check_split(
                &s().path(4, "d")
                    .two(9, "d", A_PATH_TO, "evil")
                    .path(3, "evil/x")
            ),
            Ok(())
        );
        // Its own metadata is fine: lchown, utimes, xattrs do not follow.
        assert_eq!(check_split(&s().path(19, "evil").path(20, "evil")), Ok(()));
        // A clone from the stream's own subvolume follows the source path.
        let clone = s().cmd(
            16,
            &[
                (A_PATH, b"f"),
                (A_CLONE_UUID, &[7; 16]),
                (A_CLONE_PATH, b"evil/shadow"),
            ],
        );
        assert_eq!(problem(&clone).2, through("evil/shadow", "evil", 2));
    }

    #[test]
    fn a_rename_moves_what_is_inside_only() {
        let s = Stream::new()
            .subvol("s")
            .path(4, "a")
            .two(8, "a/l", A_PATH_LINK, "/")
            .two(8, "ab", A_PATH_LINK, "/")
            .two(8, "a.l", A_PATH_LINK, "/")
            .two(9, "a", A_PATH_TO, "z");
        let at = |path: &str| problem(&Stream(s.0.clone()).path(3, path)).2;
        assert!(matches!(at("z/l/x"), Problem::Through { made: 3, .. }));
        assert!(matches!(at("ab/x"), Problem::Through { made: 4, .. }));
        assert!(matches!(at("a.l/x"), Problem::Through { made: 5, .. }));
        assert_eq!(check(&Stream(s.0.clone()).path(3, "a/l/x")), Ok(()));
    }

    #[test]
    fn a_large_stream_is_checked_in_one_pass() {
        // As a full stream of a root: every inode made under a temporary name, renamed
        // into place; many of them symlinks.
        let mut s = Stream::new().subvol("s").path(4, "usr");
        for i in 0..20_000 {
            let tmp = format!("o{}-5-0", 300 + i);
            s = s.two(8, &tmp, A_PATH_LINK, "../lib/x").two(
                9,
                &tmp,
                A_PATH_TO,
                &format!("usr/l{i}"),
            );
        }
        let started = std::time::Instant::now();
        assert_eq!(check(&s), Ok(()));
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    }

    #[test]
    fn names_that_are_not_utf8_stay_apart() {
        // Read as lossy UTF-8 both would be "\u{fffd}": making the directory must not
        // forget the symlink.
        let s = Stream::new()
            .subvol("s")
            .cmd(8, &[(A_PATH, b"\xff"), (A_PATH_LINK, b"/etc")])
            .cmd(4, &[(A_PATH, b"\xfe")])
            .cmd(3, &[(A_PATH, b"\xff/x")]);
        assert_eq!(problem(&s).0, 4);
        assert_eq!(
            problem(&Stream::new().cmd(1, &[(A_PATH, b"\xff"), (A_UUID, &[1; 16])])).2,
            Problem::SubvolumeName("\u{fffd}".into(), NameError::NotUtf8)
        );
    }

    #[test]
    fn subvolume_names_and_command_order() {
        assert_eq!(
            problem(&Stream::new().subvol("/mnt/other/@home")),
            (
                1,
                "subvol",
                Problem::SubvolumeName("/mnt/other/@home".into(), NameError::Slash)
            )
        );
        assert_eq!(
            problem(&Stream::new().subvol("..")).2,
            Problem::SubvolumeName("..".into(), NameError::Dot)
        );
        assert_eq!(
            problem(&Stream::new().path(3, "tmp/x")),
            (1, "mkfile", Problem::BeforeSubvolume)
        );
        assert_eq!(
            problem(&Stream::new().subvol("a").subvol("b")),
            (2, "subvol", Problem::SecondSubvolume)
        );
        assert_eq!(
            problem(&Stream::new().subvol("a").end().path(3, "x")),
            (3, "mkfile", Problem::AfterEnd)
        );
        assert_eq!(
            problem(&Stream::new().subvol("a").path(99, "x")),
            (2, "unknown", Problem::Unknown)
        );
        assert_eq!(
            problem(
                &Stream::new()
                    .subvol("a")
                    .cmd(3, &[(A_PATH, b"x"), (A_PATH, b"../y")])
            )
            .2,
            Problem::Repeated(A_PATH)
        );
        let mut bad = Stream::new().subvol("a");
        bad.0[0] = b'x';
        assert_eq!(
            check(&bad).unwrap_err().to_string(),
            "is not a btrfs send stream (no magic)"
        );
    }

    #[test]
    fn version_2_data_runs_to_the_end_of_its_command() {
        let mut s = MAGIC.to_vec();
        s.extend(2u32.to_le_bytes());
        let mut stream = Stream(s).subvol("a").path(3, "f");
        // write: PATH, then DATA without a length; the data holds what would look like
        // attributes if it were parsed as such.
        let mut payload = Vec::new();
        payload.extend(A_PATH.to_le_bytes());
        payload.extend(1u16.to_le_bytes());
        payload.extend(b"f");
        payload.extend(A_DATA.to_le_bytes());
        payload.extend(A_PATH.to_le_bytes());
        payload.extend(5u16.to_le_bytes());
        payload.extend(b"../..");
        stream.0.extend((payload.len() as u32).to_le_bytes());
        stream.0.extend(15u16.to_le_bytes());
        stream.0.extend(0u32.to_le_bytes());
        stream.0.extend(payload);
        assert_eq!(check_split(&stream), Ok(()));
    }

    /// A version 2 stream: subvolume, then a write of `data` to `path`, then the end.
    fn v2_write(path: &str, data: &[u8]) -> (Vec<u8>, usize) {
        let mut s = MAGIC.to_vec();
        s.extend(2u32.to_le_bytes());
        let mut stream = Stream(s).subvol("a").path(3, "f");
        let mut payload = Vec::new();
        payload.extend(A_PATH.to_le_bytes());
        payload.extend((path.len() as u16).to_le_bytes());
        payload.extend(path.as_bytes());
        payload.extend(A_DATA.to_le_bytes());
        stream
            .0
            .extend(((payload.len() + data.len()) as u32).to_le_bytes());
        stream.0.extend(15u16.to_le_bytes());
        stream.0.extend(0u32.to_le_bytes());
        stream.0.extend(payload);
        let data_at = stream.0.len();
        stream.0.extend(data);
        (stream.end().0, data_at)
    }

    #[test]
    fn a_write_is_judged_before_its_data_and_the_data_goes_by_unseen() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
        let (stream, data_at) = v2_write("f", &data);
        let mut c = StreamCheck::new();
        c.feed(&stream[..data_at]).unwrap();
        assert_eq!(c.unseen(), data.len() as u64);
        c.passed(60_000);
        assert_eq!(c.unseen(), 40_000);
        assert!(!c.complete());
        // Fed instead of passed, the rest of the data is skipped, not parsed.
        c.feed(&stream[data_at + 60_000..]).unwrap();
        assert_eq!(c.unseen(), 0);
        assert!(c.complete());

        // The head alone is enough to refuse; the data never has to come.
        let (evil, data_at) = v2_write("../../etc/passwd", &data);
        let mut c = StreamCheck::new();
        let refusal = c.feed(&evil[..data_at]).unwrap_err();
        assert_eq!((refusal.command, refusal.name), (3, "write"));
        assert_eq!(
            refusal.problem,
            Problem::ClimbsOut("../../etc/passwd".into())
        );

        // Cut short inside the data, the stream is not complete.
        let mut c = StreamCheck::new();
        c.feed(&stream[..data_at + 10]).unwrap();
        assert!(!c.complete());
    }

    #[test]
    fn version_1_data_is_unseen_only_when_it_is_last() {
        let last = Stream::new()
            .subvol("a")
            .cmd(15, &[(A_PATH, b"f"), (18, &[0; 8]), (A_DATA, &[9; 5000])]);
        let mut c = StreamCheck::new();
        c.feed(&last.0[..last.0.len() - 4000]).unwrap();
        assert_eq!(c.unseen(), 4000);

        // Anything after the data could be a second path: the command is judged whole.
        let not_last = Stream::new().subvol("a").cmd(
            15,
            &[(A_PATH, b"f"), (A_DATA, &[9; 5000]), (A_PATH, b"../x")],
        );
        let mut c = StreamCheck::new();
        c.feed(&not_last.0[..not_last.0.len() - 10]).unwrap();
        assert_eq!(c.unseen(), 0);
        assert_eq!(problem(&not_last), (2, "write", Problem::Repeated(A_PATH)));
    }

    #[test]
    fn messages_name_the_command() {
        let s = Stream::new()
            .subvol("@home.20261120T1200")
            .path(4, "a")
            .two(8, "../../etc", A_PATH_LINK, "x");
        assert_eq!(
            check(&s).unwrap_err().to_string(),
            "command 3 (symlink) climbs out of the subvolume: ../../etc"
        );
        let s = Stream::new()
            .subvol("s")
            .two(8, "evil", A_PATH_LINK, "/tmp/x")
            .path(3, "evil/owned");
        assert_eq!(
            check(&s).unwrap_err().to_string(),
            "command 3 (mkfile) goes through the symlink evil that command 2 made: evil/owned"
        );
    }
}
