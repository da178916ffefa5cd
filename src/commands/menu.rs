//! `lifeboat menu`: what the rescue image shows on every console. Each entry runs the same
//! code as the command line; a failure is shown and the menu comes back.

use std::path::Path;

use anyhow::{Context, Result};
use dialoguer::theme::SimpleTheme;

use crate::apply::mount::Mount;
use crate::cli::{
    BootEntriesArgs, DisksArgs, InventoryArgs, InventoryFrom, MenuArgs, PlanArgs, ProvisionArgs,
    RestoreArgs, RestoreFrom, Selection, DEFAULT_LOADER,
};
use crate::exec::Cmd;

const ENTRIES: &[&str] = &[
    "Show the disks (serials, sizes, contents)",
    "Check the machine spec",
    "Plan provisioning (writes nothing)",
    "Provision the disks (shows the plan, asks per disk)",
    "Mirror ESP0 onto ESP1 (shows the changes, asks)",
    "UEFI boot entries for both ESPs (shows the changes, asks)",
    "List the restore points on the USB backup drive",
    "Restore from the USB backup drive (preflight, plan, asks)",
    "Shell",
    "Reboot",
    "Power off",
];

pub fn menu(args: &MenuArgs) -> Result<()> {
    loop {
        println!();
        println!(
            "lifeboat {} rescue menu, spec {}, Secure Boot {}",
            env!("CARGO_PKG_VERSION"),
            args.spec.display(),
            crate::boot::efivars::SecureBoot::read(std::path::Path::new(
                crate::boot::efivars::EFIVARS
            ))
        );
        println!("{}", network_line());
        let choice = dialoguer::Select::with_theme(&SimpleTheme)
            .with_prompt("What now? (arrow keys or j/k, Enter)")
            .items(ENTRIES)
            .default(0)
            .interact()
            .context("the menu needs a terminal")?;
        if let Err(e) = run_entry(choice, &args.spec) {
            eprintln!("lifeboat: {}", crate::ui::error_sentence(&e));
        }
    }
}

fn selection(spec: &Path) -> Selection {
    Selection {
        spec: spec.to_owned(),
        disks: Vec::new(),
        only: Vec::new(),
        wipe: Vec::new(),
    }
}

fn run_entry(choice: usize, spec: &Path) -> Result<()> {
    match choice {
        0 => super::disks(&DisksArgs { json: false }),
        1 => super::check(spec),
        2 => super::plan(&PlanArgs {
            selection: selection(spec),
            json: false,
        }),
        3 => super::provision(&ProvisionArgs {
            selection: selection(spec),
            yes: false,
            dry_run: false,
        }),
        4 => sync_esps(spec),
        5 => super::boot_entries(&BootEntriesArgs {
            spec: spec.to_owned(),
            disks: Vec::new(),
            loader: DEFAULT_LOADER.to_owned(),
            dry_run: false,
            yes: false,
        }),
        6 => super::inventory(&InventoryArgs {
            spec: spec.to_owned(),
            from: InventoryFrom::Usb,
            disks: Vec::new(),
            json: false,
        }),
        7 => restore(spec),
        8 => {
            println!("Type `exit` to come back to the menu.");
            Ok(Cmd::new("sh").run_interactive()?)
        }
        9 => Ok(Cmd::new("reboot").arg("-f").run_interactive()?),
        _ => Ok(Cmd::new("poweroff").arg("-f").run_interactive()?),
    }
}

/// The restore, asked step by step: which point in time; then `lifeboat restore` shows the
/// preflight and the plan and asks for disk1's serial before it writes.
fn restore(spec: &Path) -> Result<()> {
    let when = dialoguer::Select::with_theme(&SimpleTheme)
        .with_prompt("Restore which point? (`List the restore points` shows them)")
        .items([
            "The newest point of each subvolume",
            "The newest point at or before a time I type",
        ])
        .default(0)
        .interact()?;
    let at = if when == 1 {
        Some(
            dialoguer::Input::<String>::with_theme(&SimpleTheme)
                .with_prompt("Time (UTC): 2026-11-20, 2026-11-20 03:00 or 20261120T0300")
                .interact_text()?,
        )
    } else {
        None
    };
    super::restore(&RestoreArgs {
        spec: spec.to_owned(),
        from: RestoreFrom::Usb,
        latest: at.is_none(),
        at,
        snapshot: None,
        subvols: Vec::new(),
        disks: Vec::new(),
        wipe: Vec::new(),
        yes: false,
        dry_run: false,
    })
}

/// The rescue system mounts nothing of the machine: mount the spec's two ESPs on private
/// directories, mirror, unmount.
fn sync_esps(spec_path: &Path) -> Result<()> {
    let spec = crate::spec::Spec::load(spec_path)?;
    let bindings =
        crate::machine::bind_disks(&spec, &[], &crate::boot::uefi::esp_disk_ids(&spec), false)?;
    let esps = crate::boot::uefi::spec_esps(&spec, &bindings, DEFAULT_LOADER)?;
    let [(esp0, node0), (esp1, node1), ..] = esps.as_slice() else {
        anyhow::bail!("{} names fewer than two ESPs", spec_path.display());
    };
    println!(
        "ESP0: {} ({}); ESP1: {} ({})",
        esp0.description,
        node0.display(),
        esp1.description,
        node1.display()
    );
    let from = Mount::new(node0, "vfat")?;
    let to = Mount::new(node1, "vfat")?;
    let result = crate::boot::mirror::run(from.path(), to.path(), false, false);
    to.close()?;
    from.close()?;
    result
}

/// The addresses the init's DHCP got (it runs in the background: shown each time the menu
/// comes back, so a late lease appears).
fn network_line() -> String {
    let text = Cmd::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .read()
        .unwrap_or_default();
    match addresses(&text).as_slice() {
        [] => {
            "network: no address (no wired link got a DHCP lease; the shell has `ip` and `udhcpc`)"
                .into()
        }
        found => format!(
            "network: {}",
            found
                .iter()
                .map(|(link, addr)| format!("{link} {addr}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `ip -o -4 addr` lines → (link, address/prefix).
fn addresses(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let link = words.get(1)?.trim_end_matches(':');
            let at = words.iter().position(|w| *w == "inet")?;
            Some((link.to_owned(), (*words.get(at + 1)?).to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_ip_oneline() {
        let text = "2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    3: enp3s0    inet 192.168.1.20/24 scope global enp3s0\n";
        assert_eq!(
            addresses(text),
            [
                ("eth0".to_owned(), "10.0.2.15/24".to_owned()),
                ("enp3s0".to_owned(), "192.168.1.20/24".to_owned())
            ]
        );
        assert!(addresses("").is_empty());
    }
}
