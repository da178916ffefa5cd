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
    /// Killed (SIGKILL) by the kernel when lifeboat dies: see [`Cmd::die_with_parent`].
    die_with_parent: bool,
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
            die_with_parent: false,
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

    /// The program is killed when lifeboat dies, however it dies (SIGKILL, the OOM killer,
    /// a closed console): a `restic restore` or a `restic dump` feeding a receive must not
    /// go on writing into a pool that a re-run is about to clean up.
    pub fn die_with_parent(mut self) -> Cmd {
        self.die_with_parent = true;
        self
    }

    /// PR_SET_PDEATHSIG in the child, between fork and exec.
    fn bind_lifetime(&self, command: &mut Command) {
        if !self.die_with_parent {
            return;
        }
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are allowed: it makes two system calls (prctl, getppid)
        // and allocates nothing, takes no lock, touches no state shared with other threads.
        // The signal comes when the *thread* that forked exits; lifeboat spawns these from
        // threads that wait for them, so that is when lifeboat is gone too.
        #[allow(unsafe_code)]
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                // Died between fork and prctl: no signal will come, so do not start.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
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
        self.bind_lifetime(&mut command);
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

    /// Start the program with its stdin or stdout as a pipe (see [`Pipe`]), for streaming
    /// between programs (`btrfs send | btrfs receive` through lifeboat). stderr is collected
    /// on a thread so that a chatty program never blocks; [`Running::finish`] reports it.
    pub fn spawn(&self, pipe: Pipe) -> Result<Running, ExecError> {
        let mut running = self.spawn_inner(pipe)?;
        let mut err_pipe = running.child.stderr.take();
        running.stderr = Some(std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(pipe) = err_pipe.as_mut() {
                let _ = std::io::Read::read_to_string(pipe, &mut text);
            }
            text
        }));
        Ok(running)
    }

    /// The child with stderr piped (and not yet read).
    fn spawn_inner(&self, pipe: Pipe) -> Result<Running, ExecError> {
        let (stdin, stdout) = (pipe == Pipe::Stdin, pipe == Pipe::Stdout);
        runlog::line(&format!("$ {self} (streaming)"));
        let pipe_or_null = |piped: bool| {
            if piped {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(pipe_or_null(stdin))
            .stdout(pipe_or_null(stdout))
            .stderr(Stdio::piped());
        self.bind_lifetime(&mut command);
        let child = command.spawn().map_err(|source| self.io_error(source))?;
        Ok(Running {
            cmd: self.clone(),
            child,
            stderr: None,
        })
    }

    /// Like [`Cmd::spawn`], but the program is stopped as soon as a line of
    /// its stderr makes `stop` true: a program that retries what cannot get better
    /// (restic 0.17+ retries a certificate failure for 15 minutes) fails at once instead.
    pub fn spawn_watched(&self, pipe: Pipe, stop: fn(&str) -> bool) -> Result<Running, ExecError> {
        let mut running = self.spawn_inner(pipe)?;
        let pid = nix::unistd::Pid::from_raw(running.child.id() as i32);
        let mut err_pipe = running.child.stderr.take();
        running.stderr = Some(std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(pipe) = err_pipe.as_mut() {
                let mut lines = std::io::BufReader::new(pipe);
                let mut line = String::new();
                let mut stopped = false;
                while std::io::BufRead::read_line(&mut lines, &mut line).is_ok_and(|n| n > 0) {
                    if !stopped && stop(&line) {
                        // The child is not reaped before this thread is joined: the pid
                        // is still ours.
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                        stopped = true;
                    }
                    text.push_str(&line);
                    line.clear();
                }
            }
            text
        }));
        Ok(running)
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

/// Which of a spawned program's standard streams is a pipe to lifeboat; the other one is
/// /dev/null (stderr is always collected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    /// Neither: the program works on its own (a VM, a restore into a directory).
    Neither,
    /// lifeboat writes the program's stdin (`btrfs receive` fed a stream).
    Stdin,
    /// lifeboat reads the program's stdout (`btrfs send`, `restic dump`).
    Stdout,
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

    /// The test binary, started again as the parent of a `sleep` that dies with it (or not).
    const PARENT_ROLE: &str = "LIFEBOAT_TEST_SPAWN_SLEEP";

    #[test]
    fn parent_role() {
        let Some(bind) = std::env::var_os(PARENT_ROLE) else {
            return;
        };
        let mut cmd = Cmd::new("sleep").arg("600");
        if bind == "1" {
            cmd = cmd.die_with_parent();
        }
        let running = cmd.spawn(Pipe::Neither).unwrap();
        // On its own line: libtest prints the test's name without a newline first.
        println!("\nchild-pid={}", running.child.id());
        std::thread::sleep(std::time::Duration::from_secs(600));
    }

    /// Start the parent, read its child's pid, SIGKILL the parent (no drop handler runs),
    /// and say whether the child is still there a moment later.
    fn child_outlives_a_killed_parent(bind: bool) -> bool {
        use std::io::BufRead;
        let mut parent = Command::new(std::env::current_exe().unwrap())
            .args([
                "exec::tests::parent_role",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PARENT_ROLE, if bind { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(parent.stdout.take().unwrap());
        let pid: i32 = out
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("child-pid=")
                    .and_then(|p| p.trim().parse().ok())
            })
            .expect("the parent names its child");
        parent.kill().unwrap();
        parent.wait().unwrap();
        let alive = |pid: i32| {
            // A zombie waiting for init to reap it is gone for this purpose.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, r)| !r.starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let outlived = alive(pid);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        outlived
    }

    #[test]
    fn a_bound_child_dies_with_lifeboat() {
        assert!(!child_outlives_a_killed_parent(true));
        // Without it, the child would go on: the test sees the difference.
        assert!(child_outlives_a_killed_parent(false));
    }

    #[test]
    fn reads_stdout() {
        assert_eq!(Cmd::new("echo").arg("hi").read().unwrap(), "hi\n");
    }
}
