//! The copy loop behind every progress bar of bytes (a stream into `btrfs receive`, a file
//! out of `restic dump`): read a chunk, let the caller look at it, write it, report how far.
//! `std::io::copy` would do the bytes but neither the look nor the count along the way.
//!
//! [`spliced`] is the same copy from a file or pipe into a pipe for a looker that needs to
//! see only part of the bytes (a send stream's commands, not its file data): what it does
//! not need moves with `splice(2)`, from pipe buffer to pipe buffer, without a copy through
//! this process (on a machine of two cores the restore's `btrfs receive` wants the core).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::SpliceFFlags;

/// The chunk size: with 1 MiB pipes, one read fills what one write empties.
pub const CHUNK: usize = 1 << 20;

/// Why a copy stopped before the end of its input.
#[derive(Debug)]
pub enum Stopped<E> {
    Read(io::Error),
    Write(io::Error),
    /// `inspect` refused a chunk; it was not written.
    Refused(E),
}

/// Copy `reader` to `writer` until the reader's end, passing each chunk to `inspect` before
/// it is written and the bytes written so far to `progress` after. Returns the bytes
/// written and how the copy ended (a chunk that fails is not counted).
pub fn copy<E>(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    inspect: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    progress: &mut dyn FnMut(u64),
) -> (u64, Result<(), Stopped<E>>) {
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return (bytes, Ok(())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (bytes, Err(Stopped::Read(e))),
        };
        if let Err(refusal) = inspect(&buf[..n]) {
            return (bytes, Err(Stopped::Refused(refusal)));
        }
        if let Err(e) = writer.write_all(&buf[..n]) {
            return (bytes, Err(Stopped::Write(e)));
        }
        bytes += n as u64;
        progress(bytes);
    }
}

/// What a [`spliced`] copy shows the bytes to.
pub trait Look {
    type Refusal;
    /// The next bytes; a refusal stops the copy before they are written.
    fn look(&mut self, chunk: &[u8]) -> Result<(), Self::Refusal>;
    /// How many of the next bytes need not be looked at.
    fn unseen(&self) -> u64;
    /// `n` of the unseen bytes went by.
    fn passed(&mut self, n: u64);
}

/// The first read after unseen bytes: enough for a write command's header and path, so
/// that little of its data passes through this process. Each read that ends with nothing
/// unseen doubles the next (up to [`CHUNK`]), for streams of small commands.
const FIRST_LOOK: usize = 512;

/// Copy `head` (bytes already read from `reader`, e.g. a magic number) and then `reader`
/// to `writer`, a pipe, until the reader's end: the bytes `look` asks to see are read and
/// shown to it before they are written, the rest is spliced. Returns what [`copy`] does.
pub fn spliced<R, W, L>(
    head: &[u8],
    reader: &mut R,
    writer: &mut W,
    look: &mut L,
    progress: &mut dyn FnMut(u64),
) -> (u64, Result<(), Stopped<L::Refusal>>)
where
    R: Read + AsFd,
    W: Write + AsFd,
    L: Look,
{
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    let mut want = FIRST_LOOK;
    let mut pending = head;
    loop {
        let unseen = look.unseen();
        if unseen > 0 && pending.is_empty() {
            let len = unseen.min(CHUNK as u64) as usize;
            let moved = nix::fcntl::splice(
                reader.as_fd(),
                None,
                writer.as_fd(),
                None,
                len,
                SpliceFFlags::SPLICE_F_MOVE,
            );
            let n = match moved {
                Ok(0) => return (bytes, Ok(())),
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE) => return (bytes, Err(Stopped::Write(Errno::EPIPE.into()))),
                // A reader splice cannot take (some FUSE files): through the buffer.
                Err(Errno::EINVAL) => match reader.read(&mut buf[..len]) {
                    Ok(0) => return (bytes, Ok(())),
                    Ok(n) => {
                        if let Err(e) = writer.write_all(&buf[..n]) {
                            return (bytes, Err(Stopped::Write(e)));
                        }
                        n
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return (bytes, Err(Stopped::Read(e))),
                },
                Err(e) => return (bytes, Err(Stopped::Read(e.into()))),
            };
            look.passed(n as u64);
            bytes += n as u64;
            progress(bytes);
            want = FIRST_LOOK;
            continue;
        }
        let chunk: &[u8] = if pending.is_empty() {
            match reader.read(&mut buf[..want]) {
                Ok(0) => return (bytes, Ok(())),
                Ok(n) => &buf[..n],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (bytes, Err(Stopped::Read(e))),
            }
        } else {
            std::mem::take(&mut pending)
        };
        if let Err(refusal) = look.look(chunk) {
            return (bytes, Err(Stopped::Refused(refusal)));
        }
        if let Err(e) = writer.write_all(chunk) {
            return (bytes, Err(Stopped::Write(e)));
        }
        bytes += chunk.len() as u64;
        progress(bytes);
        if look.unseen() == 0 {
            want = (want * 2).min(CHUNK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<u8> {
        (0..3 * CHUNK + 123).map(|i| (i % 253) as u8).collect()
    }

    #[test]
    fn copies_every_byte_and_reports_each_step() {
        let input = data();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        let (bytes, end) = copy::<()>(&mut &input[..], &mut out, &mut |_| Ok(()), &mut |b| {
            seen.push(b)
        });
        end.unwrap();
        assert_eq!(bytes, input.len() as u64);
        assert_eq!(out, input);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last(), Some(&bytes));
    }

    /// Frames of a 4-byte length and that many bytes it need not see.
    #[derive(Default)]
    struct Frames {
        len: Vec<u8>,
        unseen: u64,
        looked: u64,
        refuse: Option<u32>,
    }

    impl Look for Frames {
        type Refusal = u32;
        fn look(&mut self, mut chunk: &[u8]) -> Result<(), u32> {
            self.looked += chunk.len() as u64;
            while !chunk.is_empty() {
                if self.unseen > 0 {
                    let skip = self.unseen.min(chunk.len() as u64);
                    self.unseen -= skip;
                    chunk = &chunk[skip as usize..];
                    continue;
                }
                self.len.push(chunk[0]);
                chunk = &chunk[1..];
                if self.len.len() == 4 {
                    let len = u32::from_le_bytes(self.len[..].try_into().unwrap());
                    self.len.clear();
                    if self.refuse == Some(len) {
                        return Err(len);
                    }
                    self.unseen = len as u64;
                }
            }
            Ok(())
        }
        fn unseen(&self) -> u64 {
            self.unseen
        }
        fn passed(&mut self, n: u64) {
            self.unseen -= n;
        }
    }

    fn frames(lens: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            out.extend(len.to_le_bytes());
            out.extend((0..*len).map(|b| (b as usize * 7 + i) as u8));
        }
        out
    }

    /// `input` written into a pipe by one thread, spliced into another pipe read by a
    /// second thread: what came out, and the copy's result.
    fn through_pipes(
        head: &[u8],
        input: Vec<u8>,
        look: &mut Frames,
    ) -> (Vec<u8>, u64, Result<(), Stopped<u32>>) {
        let (mut from, mut feed) = std::io::pipe().unwrap();
        let (mut drain, mut to) = std::io::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = feed.write_all(&input);
        });
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            drain.read_to_end(&mut out).unwrap();
            out
        });
        let (bytes, end) = spliced(head, &mut from, &mut to, look, &mut |_| {});
        drop(to);
        drop(from);
        writer.join().unwrap();
        (reader.join().unwrap(), bytes, end)
    }

    #[test]
    fn spliced_bytes_arrive_whole_and_only_the_looked_at_pass_through_here() {
        let lens: Vec<u32> = (0..200).map(|i| [131_072, 3, 0, 70_000][i % 4]).collect();
        let input = frames(&lens);
        let mut look = Frames::default();
        let (head, rest) = input.split_at(2);
        let (out, bytes, end) = through_pipes(head, rest.to_vec(), &mut look);
        end.unwrap();
        assert_eq!(bytes, input.len() as u64);
        assert!(out == input, "the output differs from the input");
        assert_eq!(look.unseen, 0);
        // The frames' lengths, and no more than a first look's worth of each large frame.
        assert!(
            look.looked < (200 * (4 + FIRST_LOOK)) as u64,
            "looked at {} of {} bytes",
            look.looked,
            input.len()
        );

        // From a file, as a stream file on the backup drive is read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream");
        std::fs::write(&path, &input).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        let (mut drain, mut to) = std::io::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            drain.read_to_end(&mut out).unwrap();
            out
        });
        let mut look = Frames::default();
        let (bytes, end) = spliced(&[], &mut file, &mut to, &mut look, &mut |_| {});
        drop(to);
        end.unwrap();
        assert_eq!(bytes, input.len() as u64);
        assert!(reader.join().unwrap() == input);
    }

    #[test]
    fn a_spliced_copy_stops_at_a_refusal_and_at_a_closed_reader() {
        let input = frames(&[100_000, 5, 777, 100_000]);
        let mut look = Frames {
            refuse: Some(777),
            ..Frames::default()
        };
        let (out, bytes, end) = through_pipes(&[], input.clone(), &mut look);
        assert!(matches!(end, Err(Stopped::Refused(777))));
        assert_eq!(out.len() as u64, bytes);
        assert!(out == input[..out.len()]);
        assert!(out.len() <= 4 + 100_000 + 4 + 5, "{}", out.len());

        // The receiving side is gone: the copy stops with a write error.
        let (mut from, mut feed) = std::io::pipe().unwrap();
        let (drain, mut to) = std::io::pipe().unwrap();
        drop(drain);
        let writer = std::thread::spawn(move || {
            let _ = feed.write_all(&frames(&[500_000]));
        });
        let (_, end) = spliced(&[], &mut from, &mut to, &mut Frames::default(), &mut |_| {});
        drop(from);
        writer.join().unwrap();
        assert!(matches!(end, Err(Stopped::Write(_))), "{end:?}");
    }

    #[test]
    fn a_refused_chunk_is_not_written() {
        let input = data();
        let mut out = Vec::new();
        let mut chunks = 0;
        let (bytes, end) = copy(
            &mut &input[..],
            &mut out,
            &mut |_| {
                chunks += 1;
                if chunks == 2 {
                    Err("second")
                } else {
                    Ok(())
                }
            },
            &mut |_| {},
        );
        assert!(matches!(end, Err(Stopped::Refused("second"))));
        assert_eq!(out.len() as u64, bytes);
        assert_eq!(&out[..], &input[..bytes as usize]);
        assert!(bytes > 0 && bytes < input.len() as u64);
    }

    #[test]
    fn read_and_write_errors_stop_the_copy() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let (bytes, end) = copy::<()>(&mut Failing, &mut Vec::new(), &mut |_| Ok(()), &mut |_| {});
        assert_eq!(bytes, 0);
        assert!(matches!(end, Err(Stopped::Read(e)) if e.to_string() == "disk gone"));

        let input = data();
        let mut full = [0u8; 10];
        let (bytes, end) = copy::<()>(
            &mut &input[..],
            &mut &mut full[..],
            &mut |_| Ok(()),
            &mut |_| {},
        );
        assert_eq!(bytes, 0);
        assert!(matches!(end, Err(Stopped::Write(_))));
    }
}
