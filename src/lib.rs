//! lifeboat: provision and restore a multi-boot Linux workstation from a declarative spec.
//!
//! The commands that write (provision, restore, esp-sync, boot-entries, backup-boot, stage)
//! first decide what they will do from the spec and what the disks hold now, show it, and
//! write after a confirmation. The decisions are pure code (`plan`, `boot::setup`,
//! `boot::sync_plan`, `boot::entries`, `restore::select`, `restore::plan`,
//! `restore::report::check`); probing and writing are thin layers around them. A restore
//! probes again after provisioning, because provisioning made new filesystems. The read-only
//! commands (disks, check, plan, fstab, inventory) only probe and print. The module map is
//! docs/architecture.md.

pub mod apply;
pub mod atomic_file;
pub mod blockdev;
pub mod boot;
pub mod btrfs;
pub mod cli;
pub mod commands;
pub mod cryptsetup;
pub mod disklock;
pub mod drill;
pub mod exec;
pub mod file_tree;
pub mod health;
pub mod machine;
pub mod menu;
pub mod mountinfo;
pub mod net;
pub mod plan;
pub mod probe;
pub mod progress_copy;
pub mod provision;
pub mod restic;
pub mod restore;
pub mod runlog;
pub mod single_component;
pub mod spec;
pub mod time;
pub mod timers;
pub mod ui;
pub mod unlock;
