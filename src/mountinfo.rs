//! /proc/self/mountinfo: what is mounted where. The one parser of that file; every question
//! lifeboat asks of it (is this device in use, what filesystem is at this path, is something
//! mounted inside it, which mounts did a killed run leave) goes through here.
//!
//! The kernel writes a mount point's bytes as they are, except space, tab, newline and
//! backslash, which it writes as octal escapes (`\040`, `\011`, `\012`, `\134`). A path is
//! any bytes: often UTF-8 (`/mnt/Sauvegardes été`), sometimes not (a Latin-1 name on a USB
//! stick). [`read`] keeps such bytes as octal escapes too, so the text is always valid UTF-8
//! and [`unescape`] gives back the exact bytes of every path.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Where the running process's mount table is.
pub const PATH: &str = "/proc/self/mountinfo";

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mount ID, unique among the current mounts.
    pub id: u64,
    /// Mount ID of the mount this one sits on.
    pub parent: u64,
    /// st_dev of the filesystem (Btrfs reports an anonymous device number, major 0).
    pub major: u64,
    pub minor: u64,
    /// Where it is mounted, byte for byte.
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The mount source (a device node for block filesystems); lossy where not UTF-8.
    pub source: String,
}

/// The running process's mountinfo as text. Reading it as a `String` would fail outright on
/// one mount point that is not UTF-8 and so hide every mount; here such bytes become octal
/// escapes that [`unescape`] turns back into the same bytes.
pub fn read() -> std::io::Result<String> {
    std::fs::read(PATH).map(text_of)
}

/// Bytes of mountinfo as text: valid UTF-8 as it is, every other byte as `\ooo`.
pub fn text_of(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut out = String::with_capacity(bytes.len() + 16);
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(valid) => {
                        out.push_str(valid);
                        break;
                    }
                    Err(e) => {
                        let (valid, after) = rest.split_at(e.valid_up_to());
                        // valid_up_to() promises these bytes are UTF-8.
                        out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                        let bad = e.error_len().unwrap_or(after.len());
                        for b in &after[..bad] {
                            out.push_str(&format!("\\{b:03o}"));
                        }
                        rest = &after[bad..];
                    }
                }
            }
            out
        }
    }
}

/// Every well-formed line of `text`; a line that is not is skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(line).collect()
}

fn line(l: &str) -> Option<Mount> {
    // Optional fields (shared:N, master:N) sit between field 6 and the " - " separator.
    let (left, right) = l.split_once(" - ")?;
    let mut f = left.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let (major, minor) = f.next()?.split_once(':')?;
    let _root = f.next()?;
    let mount_point = f.next()?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let source = r.next()?;
    Some(Mount {
        id,
        parent,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
        fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
    })
}

/// The bytes an octal-escaped field stands for. Worked on bytes, so an escape next to a
/// multi-byte character cannot cut it; a backslash that starts no valid escape stays.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let Some(&[b'\\', x, y, z]) = b.get(i..i + 4) {
            let octal = |c: u8| (b'0'..=b'7').contains(&c).then(|| u32::from(c - b'0'));
            if let (Some(x), Some(y), Some(z)) = (octal(x), octal(y), octal(z)) {
                if let Ok(n) = u8::try_from(x * 64 + y * 8 + z) {
                    out.push(n);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The filesystem type mounted exactly at `path` (the last mount there wins, as it hides
/// the ones below).
pub fn fstype_at(mountinfo: &str, path: &Path) -> Option<String> {
    parse(mountinfo)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path)
        .map(|m| m.fstype)
}

/// A mount point inside the mount at `path` (the top one there): one whose parent is that
/// mount. A bind mount of a filesystem into itself counts too, which st_dev cannot tell;
/// mounts hidden under the one at `path` do not.
pub fn mount_inside(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    let mounts = parse(mountinfo);
    let top = mounts.iter().rev().find(|m| m.mount_point == path)?;
    mounts
        .iter()
        .find(|m| m.parent == top.id && m.mount_point != path)
        .map(|m| m.mount_point.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    const MOUNTINFO: &str = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 22 8:1 / /boot/efi rw,relatime shared:5 - vfat /dev/sda1 rw,fmask=0077
31 22 8:17 / /boot/efi2 rw,relatime shared:6 - vfat /dev/sdb1 rw
32 22 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw
33 31 0:41 / /boot/efi2 rw - tmpfs tmpfs rw
34 30 0:42 / /boot/efi/EFI/extra rw - tmpfs tmpfs rw
";

    #[test]
    fn fixture_lines() {
        let m = parse(include_str!("../tests/fixtures/mountinfo.txt"));
        assert_eq!(m.len(), 4);
        assert_eq!((m[2].major, m[2].minor), (7, 1));
        assert_eq!(m[2].mount_point, Path::new("/mnt/my disk"));
        assert_eq!(m[2].source, "/dev/loop0p2");
        assert_eq!(m[3].major, 0, "btrfs reports an anonymous device number");
        assert_eq!(m[3].source, "/dev/loop0p4");
        assert_eq!((m[3].id, m[3].parent), (90, 22));
        assert_eq!(m[3].fstype, "btrfs");
    }

    #[test]
    fn the_filesystem_at_a_path() {
        let at = |p: &str| fstype_at(MOUNTINFO, Path::new(p));
        assert_eq!(at("/boot/efi").as_deref(), Some("vfat"));
        assert_eq!(at("/").as_deref(), Some("ext4"));
        assert_eq!(at("/mnt/with space").as_deref(), Some("tmpfs"));
        assert_eq!(at("/boot"), None);
        // Mounted over: the top mount is what a path shows.
        assert_eq!(at("/boot/efi2").as_deref(), Some("tmpfs"));
    }

    #[test]
    fn mount_points_inside_a_mount() {
        let inside = |p: &str| mount_inside(MOUNTINFO, Path::new(p));
        assert_eq!(
            inside("/boot/efi"),
            Some(PathBuf::from("/boot/efi/EFI/extra"))
        );
        // The tmpfs over /boot/efi2 hides nothing mounted inside it.
        assert_eq!(inside("/boot/efi2"), None);
        assert_eq!(inside("/mnt/with space"), None);
        assert_eq!(inside("/"), Some(PathBuf::from("/boot/efi")));
        assert_eq!(inside("/nowhere"), None);
    }

    /// Each of the four escapes the kernel writes, and a backslash in a name.
    #[test]
    fn octal_escapes() {
        let line = "36 35 7:4 / /mnt/a\\040b\\011c\\012d\\134040 rw - ext4 /dev/loop0p2 rw\n";
        let m = parse(line);
        assert_eq!(m[0].mount_point, Path::new("/mnt/a b\tc\nd\\040"));
    }

    #[test]
    fn escapes_beside_multibyte_characters() {
        assert_eq!(unescape("/mnt/\\ü"), "/mnt/\\ü".as_bytes());
        assert_eq!(unescape("/mnt/été\\0402"), "/mnt/été 2".as_bytes());
        assert_eq!(unescape("\\777"), b"\\777");
        let m = parse("36 35 7:4 / /mnt/Sauvegardes\\040été rw - ext4 /dev/sdc1 rw\n");
        assert_eq!(m[0].mount_point, Path::new("/mnt/Sauvegardes été"));
    }

    /// A mount point that is not UTF-8 (Latin-1 `café`) neither hides the other mounts nor
    /// loses its own bytes.
    #[test]
    fn a_mount_point_that_is_not_utf8() {
        let mut bytes = b"36 35 8:33 / /media/caf".to_vec();
        bytes.push(0xE9);
        bytes.extend_from_slice(b" rw - vfat /dev/sdc1 rw\n");
        bytes.extend_from_slice(b"37 35 7:1 / /mnt/x rw - ext4 /dev/loop0p2 rw\n");
        let m = parse(&text_of(bytes));
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point.as_os_str().as_bytes(), b"/media/caf\xE9");
        assert_eq!(m[1].source, "/dev/loop0p2");
    }

    /// What the kernel writes for a mount point: space, tab, newline and backslash in octal.
    fn escape(path: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &c in path {
            match c {
                b' ' | b'\t' | b'\n' | b'\\' => {
                    out.extend_from_slice(format!("\\{c:03o}").as_bytes())
                }
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text or bytes: an answer, never a panic.
        #[test]
        fn any_input_parses_or_is_skipped(text in "\\PC{0,200}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&text);
            let _ = fstype_at(&text, Path::new("/"));
            let _ = mount_inside(&text, Path::new("/"));
            let _ = unescape(&text);
            let text = text_of(bytes);
            let _ = parse(&text);
        }

        /// A mount point of any bytes, as the kernel escapes it, reads back as those bytes.
        #[test]
        fn mount_points_read_back(tail in proptest::collection::vec(1u8..=255, 0..40), major in 0u64..4096, minor in 0u64..1_048_576) {
            let mut point = b"/".to_vec();
            point.extend(tail);
            let mut line = format!("36 35 {major}:{minor} / ").into_bytes();
            line.extend(escape(&point));
            line.extend_from_slice(b" rw,relatime shared:1 - btrfs /dev/loop0p4 rw\n");
            let m = parse(&text_of(line));
            proptest::prop_assert_eq!(m.len(), 1);
            proptest::prop_assert_eq!(m[0].mount_point.as_os_str().as_bytes(), &point[..]);
            proptest::prop_assert_eq!((m[0].major, m[0].minor), (major, minor));
        }
    }
}
