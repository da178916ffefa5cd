//! lifeboat: provision and restore a multi-boot Linux workstation from a declarative spec.
//!
//! The flow is always `spec` → `probe` → `plan` (pure) → show → confirm → `apply`.

pub mod apply;
pub mod blockdev;
pub mod boot;
pub mod cli;
pub mod commands;
pub mod disklock;
pub mod exec;
pub mod plan;
pub mod probe;
pub mod restic;
pub mod restore;
pub mod runlog;
pub mod single_component;
pub mod spec;
pub mod ui;
