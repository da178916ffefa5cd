//! restic, the off-site copy: the environment it runs with ([`env`], provider profiles and
//! secrets), what a failure means ([`failure`]), its snapshots ([`snapshots`]), and
//! [`Restic`], which runs it with retries for a network that comes and goes.

pub mod env;
pub mod failure;
pub mod select;
pub mod snapshots;
pub mod spec;
pub mod streams;

use std::time::Duration;

use crate::exec::{Cmd, ExecError};
pub use env::Profile;
pub use failure::Failure;

#[derive(Debug, thiserror::Error)]
pub enum ResticError {
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error("{explained} (restic said: {said})")]
    Failed {
        failure: Failure,
        explained: String,
        said: String,
    },
    #[error("`restic` is not installed (not found on PATH)")]
    NotInstalled,
    #[error("restic's output could not be read: {0}")]
    Output(String),
}

impl Restic {
    /// `restic ARGS…` as a command with the profile's environment and secrets (for
    /// streaming its output somewhere: `restic dump`).
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Cmd {
        let mut cmd = Cmd::new("restic").args(args);
        for (k, v) in &self.profile.vars {
            cmd = cmd.env(k, v);
        }
        for s in self.profile.secrets() {
            cmd = cmd.secret(s.clone());
        }
        cmd
    }

    /// `restic ARGS…` for a long run (a restore): `tick` is called about twice a second
    /// while it runs. Not retried: the caller knows whether starting over is safe.
    pub fn run_watched(&self, args: &[String], tick: &mut dyn FnMut()) -> Result<(), ResticError> {
        let cmd = self.cmd(args);
        let mut running = match cmd.spawn(false, false) {
            Ok(r) => r,
            Err(ExecError::NotFound { .. }) => return Err(ResticError::NotInstalled),
            Err(e) => return Err(ResticError::Output(e.to_string())),
        };
        // Checked often so that the end is seen at once; the bar is fed twice a second.
        let mut last = std::time::Instant::now();
        while running.child.try_wait().ok().flatten().is_none() {
            if last.elapsed() >= Duration::from_millis(500) {
                tick();
                last = std::time::Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tick();
        match running.finish() {
            Ok(_) => Ok(()),
            Err(ExecError::Failed { stderr, .. }) => {
                let failure = Failure::of(&stderr);
                Err(ResticError::Failed {
                    failure,
                    explained: failure.explain(self.profile.repository()),
                    said: self.profile.redact(&stderr),
                })
            }
            Err(e) => Err(ResticError::Output(e.to_string())),
        }
    }
}

/// `2,5,15` → those waits; `0` → none. `None` for anything else.
pub fn backoff(text: &str) -> Option<Vec<Duration>> {
    let secs: Vec<f64> = text
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=3600.0).contains(s))
        })
        .collect::<Option<_>>()?;
    Some(
        secs.into_iter()
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .collect(),
    )
}

/// restic with a profile.
pub struct Restic {
    pub profile: Profile,
    /// Waits between tries of a run that failed for the network; their count + 1 is how
    /// many tries there are.
    pub backoff: Vec<Duration>,
}

impl Restic {
    /// Waits of 2, 5 and 15 s between tries, or what LIFEBOAT_RESTIC_BACKOFF says
    /// (seconds, comma-separated: `5,30,120` for a poor link, `0` for one try only).
    pub fn new(profile: Profile) -> Restic {
        let backoff = std::env::var("LIFEBOAT_RESTIC_BACKOFF")
            .ok()
            .and_then(|v| backoff(&v))
            .unwrap_or_else(|| {
                vec![
                    Duration::from_secs(2),
                    Duration::from_secs(5),
                    Duration::from_secs(15),
                ]
            });
        Restic { profile, backoff }
    }

    /// `restic ARGS…` with the profile's environment (secrets never on the command line,
    /// redacted from the log and errors); stdout on success.
    pub fn read(&self, args: &[&str]) -> Result<String, ResticError> {
        let mut tries = 0;
        loop {
            let out = match self.cmd(args).output() {
                Ok(out) => out,
                Err(ExecError::NotFound { .. }) => return Err(ResticError::NotInstalled),
                Err(e) => return Err(ResticError::Output(e.to_string())),
            };
            if out.code == Some(0) {
                return Ok(out.stdout);
            }
            let failure = Failure::of(&out.stderr);
            if failure.transient() && tries < self.backoff.len() {
                let wait = self.backoff[tries];
                eprintln!(
                    "restic could not reach {}; trying again in {} s",
                    self.profile.repository(),
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                tries += 1;
                continue;
            }
            let said = out
                .stderr
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("Fatal:"))
                .or_else(|| out.stderr.lines().map(str::trim).find(|l| !l.is_empty()))
                .unwrap_or("nothing on stderr")
                .to_owned();
            return Err(ResticError::Failed {
                failure,
                explained: failure.explain(self.profile.repository()),
                said: self.profile.redact(&said),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_from_the_environment() {
        assert_eq!(
            backoff("5, 30,120"),
            Some(vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120)
            ])
        );
        assert_eq!(backoff("0"), Some(vec![]));
        assert_eq!(backoff("soon"), None);
        assert_eq!(backoff("-1"), None);
    }
}
