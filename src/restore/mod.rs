//! Restoring the machine from its backups: which restore points exist ([`points`] by name,
//! [`inventory`] on the backup drive), and later the pipeline that brings them back.

pub mod inventory;
pub mod points;
pub mod stream;

/// The label of the Btrfs filesystem on the backup drive that holds the btrbk targets.
pub const BACKUP_LABEL: &str = "LINBKUP";
