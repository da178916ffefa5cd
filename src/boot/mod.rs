//! Boot redundancy: the two ESPs kept identical (`esp_sync`, planned by `sync_plan`).
//! UEFI boot entries and fstab generation join them here.

pub mod crypttab;
pub mod efivars;
pub mod entries;
pub mod esp_sync;
pub mod fstab;
pub mod hook;
pub mod loader;
pub mod mirror;
pub mod on_disk;
pub mod setup;
pub mod setup_apply;
pub mod sync_plan;
pub mod uefi;
