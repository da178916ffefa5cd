//! The work behind each subcommand. The binary's `main` only parses and dispatches.

mod boot_entries;
mod check;
mod disks;
mod esp_sync;
mod fstab;
mod menu;
mod provision;

pub use boot_entries::boot_entries;
pub use check::check;
pub use disks::disks;
pub use esp_sync::esp_sync;
pub use fstab::fstab;
pub use menu::menu;
pub use provision::{plan, provision};
