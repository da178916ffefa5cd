//! One function per subcommand: its flags turned into one library call. The rescue menu
//! (`crate::menu`) calls the same library functions, never these. The binary's `main`
//! only parses and dispatches.

mod backup_boot;
mod boot_entries;
mod check;
mod disks;
mod drill;
mod esp_sync;
mod fstab;
mod health;
mod inventory;
mod menu;
mod provision;
mod restore;
mod stage;
mod timers;
mod unlock;

pub use backup_boot::backup_boot;
pub use boot_entries::boot_entries;
pub use check::check;
pub use disks::disks;
pub use drill::drill;
pub use esp_sync::{esp_sync, esp_sync_hook};
pub use fstab::fstab;
pub use health::health;
pub use inventory::inventory;
pub use menu::menu;
pub use provision::{plan, provision};
pub use restore::restore;
pub use stage::stage;
pub use timers::{alert, timers};
pub use unlock::unlock;
