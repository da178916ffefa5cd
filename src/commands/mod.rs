//! The work behind each subcommand. The binary's `main` only parses and dispatches.

mod check;
mod disks;
mod provision;

pub use check::check;
pub use disks::disks;
pub use provision::{plan, provision};
