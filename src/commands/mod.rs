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

/// After printed changes: `--yes`, or a yes typed at the terminal; without a terminal and
/// without `--yes`, nothing is written.
fn confirm_changes(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !crate::ui::interactive() {
        anyhow::bail!("not confirmed: pass --yes to apply these changes without a terminal");
    }
    if !crate::ui::confirm(question)? {
        anyhow::bail!("not confirmed; nothing written");
    }
    Ok(())
}
