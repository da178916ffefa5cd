//! restic, the off-site copy: the environment it runs with ([`env`], provider profiles and
//! secrets), what a failure means ([`failure`]), what it prints ([`snapshots`]),
//! which snapshot a restore uses ([`select`]), and [`Restic`], whose typed calls ([`cli`])
//! are the only runs of the `restic` program, retried for a network that comes and goes.

pub mod cli;
pub mod env;
pub mod failure;
pub mod select;
pub mod snapshots;
pub mod spec;

use std::time::Duration;

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
