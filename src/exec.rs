//! The one wrapper around external programs: every command line is written to the run log,
//! and a failure carries the command line and what the program said on stderr.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::runlog;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("`{program}` is not installed (not found on PATH)")]
    NotFound { program: String },
    #[error("`{cmdline}` failed ({status}): {stderr}")]
    Failed {
        cmdline: String,
        status: String,
        stderr: String,
    },
    #[error("`{cmdline}` could not be run: {source}")]
    Io {
        cmdline: String,
        source: std::io::Error,
    },
}

/// A command to run, built like [`std::process::Command`] but always run through here.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    /// Bytes fed to the program's stdin (never logged: keys travel this way).
    stdin: Option<Vec<u8>>,
    /// Values (passwords, keys) replaced by `***` in what is logged and in errors.
    secrets: Vec<String>,
}

/// What a finished program printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
            secrets: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Feed these bytes to the program's stdin instead of /dev/null.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Cmd {
        self.stdin = Some(bytes);
        self
    }

    /// Never show this value: it is replaced by `***` in the log and in errors (a secret the
    /// program gets in its environment may still come back in what it prints).
    pub fn secret(mut self, value: impl Into<String>) -> Cmd {
        let value = value.into();
        if !value.is_empty() {
            self.secrets.push(value);
        }
        self
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    pub fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Run to completion; a non-zero exit is an error that quotes stderr.
    pub fn run(&self) -> Result<Output, ExecError> {
        let out = self.output()?;
        if out.code == Some(0) {
            Ok(out)
        } else {
            Err(self.failed(&out))
        }
    }

    /// Run to completion and return stdout; a non-zero exit is an error.
    pub fn read(&self) -> Result<String, ExecError> {
        self.run().map(|o| o.stdout)
    }

    /// Run to completion whatever the exit status; for probes where "non-zero" is an
    /// answer (blkid finds nothing, for one).
    pub fn output(&self) -> Result<Output, ExecError> {
        runlog::line(&format!("$ {self}"));
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = command.spawn().map_err(|source| self.io_error(source))?;
        if let (Some(bytes), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            // A program that exits without reading all of stdin is not an error here;
            // its exit status says what happened.
            let _ = pipe.write_all(bytes);
        }
        let out = child
            .wait_with_output()
            .map_err(|source| self.io_error(source))?;
        let output = Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        };
        if !output.stderr.trim().is_empty() {
            runlog::line(&format!(
                "  stderr: {}",
                self.redact(output.stderr.trim_end())
            ));
        }
        if output.code != Some(0) {
            runlog::line(&format!("  exit: {}", status_text(output.code)));
        }
        Ok(output)
    }

    /// Run with the terminal as stdin/stdout/stderr (a shell for the user, an editor);
    /// a non-zero exit is an error.
    pub fn run_interactive(&self) -> Result<(), ExecError> {
        runlog::line(&format!("$ {self} (interactive)"));
        let status = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .status()
            .map_err(|source| self.io_error(source))?;
        if status.success() {
            Ok(())
        } else {
            Err(ExecError::Failed {
                cmdline: self.to_string(),
                status: status_text(status.code()),
                stderr: "(shown on the terminal)".into(),
            })
        }
    }

    /// Start the program with its stdin and/or stdout as pipes, for streaming between
    /// programs (`btrfs send | btrfs receive` through lifeboat). stderr is collected on a
    /// thread so that a chatty program never blocks; [`Running::finish`] reports it.
    pub fn spawn(&self, stdin: bool, stdout: bool) -> Result<Running, ExecError> {
        runlog::line(&format!("$ {self} (streaming)"));
        let pipe_or_null = |piped: bool| {
            if piped {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(pipe_or_null(stdin))
            .stdout(pipe_or_null(stdout))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| self.io_error(source))?;
        let mut err_pipe = child.stderr.take();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(pipe) = err_pipe.as_mut() {
                let _ = std::io::Read::read_to_string(pipe, &mut text);
            }
            text
        });
        Ok(Running {
            cmd: self.clone(),
            child,
            stderr: Some(stderr),
        })
    }

    /// The error for a finished run that did not succeed.
    pub fn failed(&self, out: &Output) -> ExecError {
        let said = if out.stderr.trim().is_empty() {
            out.stdout.trim()
        } else {
            out.stderr.trim()
        };
        ExecError::Failed {
            cmdline: self.to_string(),
            status: status_text(out.code),
            stderr: self.redact(&last_lines(said, 6)),
        }
    }

    fn io_error(&self, source: std::io::Error) -> ExecError {
        if source.kind() == std::io::ErrorKind::NotFound {
            ExecError::NotFound {
                program: self.program(),
            }
        } else {
            ExecError::Io {
                cmdline: self.to_string(),
                source,
            }
        }
    }
}

/// A program started by [`Cmd::spawn`].
#[derive(Debug)]
pub struct Running {
    cmd: Cmd,
    pub child: std::process::Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Wait for the program (its stdin closed first); a non-zero exit is an error that
    /// quotes its stderr.
    pub fn finish(mut self) -> Result<Output, ExecError> {
        drop(self.child.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|source| self.cmd.io_error(source))?;
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let out = Output {
            stdout: String::new(),
            stderr,
            code: status.code(),
        };
        if !out.stderr.trim().is_empty() {
            runlog::line(&format!(
                "  stderr: {}",
                self.cmd.redact(out.stderr.trim_end())
            ));
        }
        if out.code == Some(0) {
            Ok(out)
        } else {
            runlog::line(&format!("  exit: {}", status_text(out.code)));
            Err(self.cmd.failed(&out))
        }
    }

    /// Stop the program (the other end of the pipe failed) and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr.take() {
            let _ = t.join();
        }
    }
}

fn status_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_owned(),
    }
}

/// Keep the end of a long error: that is where programs say what went wrong.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        "(no output)".to_owned()
    } else {
        lines[start..].join(" / ")
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shell_quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_quote(a))?;
        }
        Ok(())
    }
}

fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_quotes_stderr_and_command() {
        let err = Cmd::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit status 3"), "{text}");
        assert!(text.contains("oops"), "{text}");
        assert!(text.contains("'echo oops >&2; exit 3'"), "{text}");
    }

    #[test]
    fn missing_program_is_named() {
        let err = Cmd::new("lifeboat-no-such-program").run().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`lifeboat-no-such-program` is not installed (not found on PATH)"
        );
    }

    #[test]
    fn feeds_stdin() {
        let out = Cmd::new("cat").stdin(b"secret".to_vec()).read().unwrap();
        assert_eq!(out, "secret");
    }

    #[test]
    fn secrets_never_reach_the_error() {
        let err = Cmd::new("sh")
            .args(["-c", "echo \"bad key $KEY\" >&2; exit 1"])
            .env("KEY", "hunter22")
            .secret("hunter22")
            .run()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad key ***") && !err.contains("hunter22"),
            "{err}"
        );
    }

    #[test]
    fn reads_stdout() {
        assert_eq!(Cmd::new("echo").arg("hi").read().unwrap(), "hi\n");
    }
}
