//! The copy loop behind every progress bar of bytes (a stream into `btrfs receive`, a file
//! out of `restic dump`): read a chunk, let the caller look at it, write it, report how far.
//! `std::io::copy` would do the bytes but neither the look nor the count along the way.

use std::io::{self, Read, Write};

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
