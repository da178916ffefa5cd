//! Carries out a [`Plan`](crate::plan::Plan), action by action, announcing each step.

pub mod fat;
pub mod gpt_table;
mod luks;
pub mod mount;
mod run;

pub use run::{apply, pause_at, ApplyError, KeySource, Progress};
