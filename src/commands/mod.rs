//! The work behind each subcommand. The binary's `main` only parses and dispatches.

mod check;
mod disks;
mod menu;
mod provision;

pub use check::check;
pub use disks::disks;
pub use menu::menu;
pub use provision::{plan, provision};
