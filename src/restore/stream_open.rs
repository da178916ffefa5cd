//! A `btrfs send` stream as it was written, from a file or a program's output that holds
//! it plain or zstd-compressed, and the first bytes of one.
//!
//! The stream's own first bytes decide, not its name: zstd frames start with a fixed magic
//! and a btrfs stream with `btrfs-stream\0`, so a `.btrfs.zst` file decompressed by hand
//! (or a compressed one missing its suffix) still reads as what it is.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;

/// The first four bytes of every zstd frame (RFC 8878, 3.1.1).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A stream as its first bytes tell it.
pub enum Sniffed<'a, R> {
    /// Plain: `head` (the bytes read to tell) goes in front of the rest of `rest`, which
    /// can then be spliced as it is.
    Plain { head: Vec<u8>, rest: R },
    /// zstd-compressed: the decompressed stream.
    Compressed(Box<dyn Read + 'a>),
}

/// Tell whether `reader` holds a zstd frame. Fewer than four bytes (an empty file
/// included) are a plain stream.
pub fn sniff<'a, R: Read + 'a>(mut reader: R) -> io::Result<Sniffed<'a, R>> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < magic.len() {
        match reader.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    if n == magic.len() && magic == ZSTD_MAGIC {
        // The sniffed bytes go back in front of the rest.
        let whole = Cursor::new(magic).chain(reader);
        return Ok(Sniffed::Compressed(Box::new(
            zstd::stream::read::Decoder::new(whole)?,
        )));
    }
    Ok(Sniffed::Plain {
        head: magic[..n].to_vec(),
        rest: reader,
    })
}

/// The stream in `reader`, decompressed when it starts with a zstd frame.
pub fn decoded<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match sniff(reader)? {
        Sniffed::Plain { head, rest } => Box::new(Cursor::new(head).chain(rest)),
        Sniffed::Compressed(r) => r,
    })
}

/// The stream in the file at `path`, plain or zstd.
pub fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    decoded(File::open(path)?)
}

/// Up to `limit` bytes from the start of `reader` (fewer when the stream is shorter).
pub fn read_head(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(limit.min(1 << 20) as usize);
    reader.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_bytes() -> Vec<u8> {
        let mut s = b"btrfs-stream\0".to_vec();
        s.extend((0..200_000u32).map(|i| (i % 251) as u8));
        s
    }

    fn all(reader: impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoded(reader)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_plain_stream_reads_as_it_is() {
        let s = stream_bytes();
        assert_eq!(all(&s[..]).unwrap(), s);
        // Shorter than the magic: still every byte.
        assert_eq!(all(&b"bt"[..]).unwrap(), b"bt");
    }

    #[test]
    fn a_zstd_stream_is_decompressed() {
        let s = stream_bytes();
        let z = zstd::encode_all(&s[..], 3).unwrap();
        assert_eq!(&z[..4], &ZSTD_MAGIC);
        assert_eq!(all(&z[..]).unwrap(), s);
        assert_eq!(
            read_head(decoded(&z[..]).unwrap(), 13).unwrap(),
            b"btrfs-stream\0"
        );
    }

    #[test]
    fn a_truncated_zstd_stream_is_an_error_not_a_short_stream() {
        let s = stream_bytes();
        let z = zstd::encode_all(&s[..], 3).unwrap();
        let err = all(&z[..z.len() / 2]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    #[test]
    fn an_empty_file_is_an_empty_stream() {
        let dir = std::env::temp_dir().join(format!("lifeboat-stream-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.btrfs.zst");
        std::fs::write(&path, b"").unwrap();
        let mut out = Vec::new();
        open(&path).unwrap().read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(read_head(open(&path).unwrap(), 64).unwrap(), b"");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
