//! `btrfs send | btrfs receive` with lifeboat in the middle: the bytes pass through here so
//! that the person at the console sees how far it is (bytes, rate, ETA). A stream file on
//! the backup drive (plain or zstd, [`super::stream_open`]) takes the place of `btrfs send`.
//!
//! Every command is checked by [`StreamCheck`] before it is written on: a command that
//! would write outside the subvolume never reaches the receiver, whichever source the
//! stream comes from. A plain stream (from `btrfs send`, a stream file, a program) goes
//! through [`progress_copy::spliced`] with 1 MiB pipes: the commands are read and checked
//! here, the file data behind each write is spliced from pipe to pipe without passing
//! through this process. A zstd stream is decompressed here and copied in 1 MiB chunks.
//! `cargo xtask bench restore-usb` measures both against a bare `btrfs send | btrfs
//! receive`.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use super::stream_check::{Refusal, StreamCheck};
use super::stream_open::{self, Sniffed};
use crate::exec::{Cmd, ExecError, Pipe};
use crate::progress_copy::{self, Look, Stopped};

/// Where a point's stream comes from.
#[derive(Debug, Clone, Copy)]
pub enum StreamOrigin<'a> {
    /// A read-only subvolume: `btrfs send` makes the stream.
    Subvolume(&'a Path),
    /// A stream file (`btrfs send -f`), plain or zstd-compressed.
    File(&'a Path),
    /// What a program writes to stdout (`restic dump` of a stream file kept in restic),
    /// plain or zstd-compressed.
    Program(&'a Cmd),
}

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        source: std::io::Error,
    },
    #[error("the receiving side stopped after {bytes} bytes: {receive}")]
    Receive { bytes: u64, receive: ExecError },
    /// The stream would write outside its subvolume (or cannot be checked); the receiver
    /// was stopped before it got the command.
    #[error("{0}")]
    Refused(Refusal),
    /// The source ended (or failed) before the stream's end command; the receiver was
    /// stopped, so what it received is not marked complete.
    #[error("{what} ended after {bytes} bytes without the stream's end command: the stream is incomplete (an interrupted send or a damaged file)")]
    Truncated { what: String, bytes: u64 },
}

/// How much went through, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub bytes: u64,
    pub secs: f64,
}

impl Transfer {
    pub fn rate(&self) -> f64 {
        self.bytes as f64 / self.secs.max(1e-6)
    }
}

/// Stream `source` into `sink` (a program reading the stream on stdin: `btrfs receive DIR`
/// or `btrfs receive --dump`), calling `progress` with the bytes so far.
pub fn stream(
    source: StreamOrigin,
    sink: &Cmd,
    progress: &mut dyn FnMut(u64),
) -> Result<Transfer, PipeError> {
    let started = Instant::now();
    let (mut reader, sender, what): (Reader, _, String) = match source {
        StreamOrigin::Subvolume(path) => {
            let mut send = crate::btrfs::send(path).spawn(Pipe::Stdout)?;
            let out = send.child.stdout.take().expect("stdout is piped");
            grow_pipe(&out);
            (
                Reader::Plain {
                    head: Vec::new(),
                    rest: File::from(OwnedFd::from(out)),
                },
                Some(send),
                format!("btrfs send {}", path.display()),
            )
        }
        StreamOrigin::Program(cmd) => {
            let mut prog = cmd.spawn(Pipe::Stdout)?;
            let out = prog.child.stdout.take().expect("stdout is piped");
            grow_pipe(&out);
            match stream_open::sniff(File::from(OwnedFd::from(out))) {
                Ok(sniffed) => (sniffed.into(), Some(prog), cmd.to_string()),
                Err(source) => {
                    prog.kill();
                    return Err(PipeError::Read {
                        what: cmd.to_string(),
                        source,
                    });
                }
            }
        }
        StreamOrigin::File(path) => {
            let sniffed = File::open(path).and_then(stream_open::sniff);
            let reader = sniffed.map_err(|source| PipeError::Read {
                what: path.display().to_string(),
                source,
            })?;
            (reader.into(), None, path.display().to_string())
        }
    };
    let mut receive = match sink.spawn(Pipe::Stdin) {
        Ok(r) => r,
        Err(e) => {
            if let Some(s) = sender {
                s.kill();
            }
            return Err(e.into());
        }
    };
    let mut input = receive.child.stdin.take().expect("stdin is piped");
    grow_pipe(&input);
    let mut check = StreamCheck::new();
    let mut receiver_quit = false;
    let cpu_before = own_cpu();
    let mut looked = Looked {
        check: &mut check,
        bytes: 0,
    };
    let (bytes, end) = match &mut reader {
        Reader::Plain { head, rest } => {
            progress_copy::spliced(head, rest, &mut input, &mut looked, progress)
        }
        Reader::Decoded(decoded) => progress_copy::copy(
            decoded,
            &mut input,
            &mut |chunk| looked.look(chunk),
            progress,
        ),
    };
    // What the restore's breakdown cannot see: how much passed through this process, and
    // what that cost it.
    crate::runlog::line(&format!(
        "stream: {bytes} bytes from {what}, {} of them read by lifeboat (the rest spliced), \
         lifeboat's own CPU {:.2} s",
        looked.bytes,
        own_cpu() - cpu_before
    ));
    let copied: Result<(), PipeError> = match end {
        Ok(()) => Ok(()),
        Err(Stopped::Read(source)) => Err(PipeError::Read {
            what: what.clone(),
            source,
        }),
        Err(Stopped::Refused(refusal)) => Err(PipeError::Refused(refusal)),
        Err(Stopped::Write(_)) => {
            // The receiver quit; its exit status and stderr say why (below).
            receiver_quit = true;
            Ok(())
        }
    };
    // Anything but a whole, checked stream: the receiver is killed, not given EOF. At a
    // command boundary EOF would make `btrfs receive` finish the subvolume and mark it
    // complete (read-only with a received UUID), which is what a re-run trusts.
    let copied = match copied {
        Ok(()) if !receiver_quit && !check.complete() => Err(PipeError::Truncated {
            what: what.clone(),
            bytes,
        }),
        other => other,
    };
    if let Err(err) = copied {
        receive.kill();
        return Err(match (err, sender) {
            // The sending program ended early: its own words say why, when it has any.
            (truncated @ PipeError::Truncated { .. }, Some(s)) => match s.finish() {
                Err(failed) => failed.into(),
                Ok(_) => truncated,
            },
            (err, sender) => {
                if let Some(s) = sender {
                    s.kill();
                }
                err
            }
        });
    }
    drop(input);
    drop(reader);
    let received = receive.finish();
    let sent = match sender {
        Some(s) if received.is_ok() => s.finish().map(|_| ()),
        Some(s) => {
            s.kill();
            Ok(())
        }
        None => Ok(()),
    };
    received.map_err(|receive| PipeError::Receive { bytes, receive })?;
    sent?;
    Ok(Transfer {
        bytes,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// The stream check, counting the bytes it is shown.
struct Looked<'a> {
    check: &'a mut StreamCheck,
    bytes: u64,
}

impl Look for Looked<'_> {
    type Refusal = Refusal;
    fn look(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        self.bytes += chunk.len() as u64;
        self.check.feed(chunk)
    }
    fn unseen(&self) -> u64 {
        self.check.unseen()
    }
    fn passed(&mut self, n: u64) {
        self.check.passed(n)
    }
}

/// Seconds of CPU this process used so far, user and system.
fn own_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        secs(u.user_time()) + secs(u.system_time())
    })
}

/// A stream's bytes, as [`stream_open::sniff`] found them.
enum Reader {
    /// A file or pipe that can be spliced from, after the bytes read to tell.
    Plain { head: Vec<u8>, rest: File },
    /// Decompressed here.
    Decoded(Box<dyn Read>),
}

impl From<Sniffed<'static, File>> for Reader {
    fn from(s: Sniffed<'static, File>) -> Reader {
        match s {
            Sniffed::Plain { head, rest } => Reader::Plain { head, rest },
            Sniffed::Compressed(r) => Reader::Decoded(r),
        }
    }
}

/// The stream in the file at `path`, plain or zstd.
pub fn open_file(path: &Path) -> Result<Box<dyn Read>, PipeError> {
    stream_open::open(path).map_err(|source| PipeError::Read {
        what: path.display().to_string(),
        source,
    })
}

/// The receiving side of the pipe: `btrfs receive --chroot` into a directory.
pub use crate::btrfs::receive as receive_into;

/// 1 MiB pipes instead of 64 KiB: fewer wake-ups between send, lifeboat and receive.
fn grow_pipe(fd: &impl AsRawFd) {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(progress_copy::CHUNK as i32),
    );
}
