//! The rescue menu that the live image shows on every console (`lifeboat menu`). Each
//! entry is one [`Entry`] and calls the library function its command calls (never a
//! command or its argument struct); a failure is shown as one sentence and the menu comes
//! back. The header shows the spec, Secure Boot and the addresses of the links that are up
//! (DHCP runs in the background from the init, so a late lease appears the next time).

use std::path::Path;

use anyhow::{bail, Context, Result};
use dialoguer::theme::SimpleTheme;

use crate::apply::mount::Mount;
use crate::boot::loader::ON_ESP_UEFI;
use crate::exec::Cmd;
use crate::net;
use crate::restore::{self, points, select::When, source::Kind};
use crate::spec::Spec;
use crate::ui::Confirmation;

/// What the menu offers, in the order it shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    ShowDisks,
    CheckSpec,
    PlanProvision,
    Provision,
    MirrorEsps,
    BootEntries,
    ListUsbPoints,
    RestoreUsb,
    RestoreRestic,
    Unlock,
    StaticAddress,
    Shell,
    Reboot,
    PowerOff,
}

impl Entry {
    pub const ALL: [Entry; 14] = [
        Entry::ShowDisks,
        Entry::CheckSpec,
        Entry::PlanProvision,
        Entry::Provision,
        Entry::MirrorEsps,
        Entry::BootEntries,
        Entry::ListUsbPoints,
        Entry::RestoreUsb,
        Entry::RestoreRestic,
        Entry::Unlock,
        Entry::StaticAddress,
        Entry::Shell,
        Entry::Reboot,
        Entry::PowerOff,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Entry::ShowDisks => "Show the disks (serials, sizes, contents)",
            Entry::CheckSpec => "Check the machine spec",
            Entry::PlanProvision => "Plan provisioning (writes nothing)",
            Entry::Provision => "Provision the disks (shows the plan, asks per disk)",
            Entry::MirrorEsps => "Mirror ESP0 onto ESP1 (shows the changes, asks)",
            Entry::BootEntries => "UEFI boot entries for both ESPs (shows the changes, asks)",
            Entry::ListUsbPoints => "List the restore points on the USB backup drive",
            Entry::RestoreUsb => "Restore from the USB backup drive (preflight, plan, asks)",
            Entry::RestoreRestic => {
                "Restore from restic (the spec's [restic]; preflight, plan, asks)"
            }
            Entry::Unlock => "Unlock the encrypted pool (LUKS2; asks for its passphrase)",
            Entry::StaticAddress => "Set a static address (when there is no DHCP)",
            Entry::Shell => "Shell",
            Entry::Reboot => "Reboot",
            Entry::PowerOff => "Power off",
        }
    }
}

/// The menu, until the machine reboots or powers off.
pub fn run(spec: &Path) -> Result<()> {
    let labels: Vec<&str> = Entry::ALL.iter().map(|e| e.label()).collect();
    loop {
        println!();
        println!("{}", header(spec));
        println!("{}", net::links::header(&net::links::up_addresses()));
        let choice = dialoguer::Select::with_theme(&SimpleTheme)
            .with_prompt("What now? (arrow keys or j/k, Enter)")
            .items(&labels)
            .default(0)
            .interact()
            .context("the menu needs a terminal")?;
        let Some(entry) = Entry::ALL.get(choice) else {
            continue;
        };
        if let Err(e) = run_entry(*entry, spec) {
            eprintln!("lifeboat: {}", crate::ui::error_sentence(&e));
        }
    }
}

fn header(spec: &Path) -> String {
    format!(
        "lifeboat {} rescue menu, spec {}, Secure Boot {}",
        env!("CARGO_PKG_VERSION"),
        spec.display(),
        crate::boot::efivars::SecureBoot::read(Path::new(crate::boot::efivars::EFIVARS))
    )
}

fn run_entry(entry: Entry, spec_path: &Path) -> Result<()> {
    let spec = || Spec::load(spec_path);
    match entry {
        Entry::ShowDisks => {
            let found = crate::probe::all_disks().context("listing the disks of this machine")?;
            print!("{}", crate::probe::table::render(&found));
            Ok(())
        }
        Entry::CheckSpec => {
            print!("{}", crate::spec::summary::summary(&spec()?));
            Ok(())
        }
        Entry::PlanProvision => {
            let (plan, setup) =
                crate::provision::preview(&spec()?, &crate::provision::Request::default())?;
            print!("{}", crate::provision::render(&plan, &setup));
            Ok(())
        }
        Entry::Provision => crate::provision::run(
            &spec()?,
            &crate::provision::Request::default(),
            Confirmation::Ask,
        ),
        Entry::MirrorEsps => sync_esps(&spec()?),
        Entry::BootEntries => {
            crate::boot::uefi::write_for(&spec()?, &[], ON_ESP_UEFI, Confirmation::Ask)
        }
        Entry::ListUsbPoints => restore::listing::show_usb(&spec()?, &[], false),
        Entry::RestoreUsb => restore_from(&spec()?, Kind::Usb),
        Entry::RestoreRestic => restore_from(&spec()?, Kind::Restic),
        Entry::Unlock => crate::unlock::run(&spec()?, &[]),
        Entry::StaticAddress => static_address(),
        Entry::Shell => {
            println!("Type `exit` to come back to the menu.");
            Ok(Cmd::new("sh").run_interactive()?)
        }
        Entry::Reboot => Ok(Cmd::new("reboot").arg("-f").run_interactive()?),
        Entry::PowerOff => Ok(Cmd::new("poweroff").arg("-f").run_interactive()?),
    }
}

/// The restore as the command line's `lifeboat restore SPEC --from …` does it, asked step by
/// step: which point in time; then [`restore::run`] shows the preflight and the plan and
/// asks for disk1's serial before it writes.
fn restore_from(spec: &Spec, from: Kind) -> Result<()> {
    if from == Kind::Restic && spec.restic.is_none() {
        bail!(
            "{} has no [restic] section: name the provider profile (env_file) and the \
             password file there to restore from restic",
            spec.file.display()
        );
    }
    let list = match from {
        Kind::Usb => "`List the restore points` shows them",
        _ => "`lifeboat inventory SPEC --from restic` in the shell lists them",
    };
    let when = dialoguer::Select::with_theme(&SimpleTheme)
        .with_prompt(format!("Restore which point? ({list})"))
        .items([
            "The newest point of each subvolume",
            "The newest point at or before a time I type",
        ])
        .default(0)
        .interact()?;
    let when = if when == 1 {
        let text = dialoguer::Input::<String>::with_theme(&SimpleTheme)
            .with_prompt("Time (UTC): 2026-11-20, 2026-11-20 03:00 or 20261120T0300")
            .validate_with(|t: &String| {
                points::parse_at(t).map(|_| ()).ok_or_else(|| {
                    format!(
                        "\"{t}\" is not a time: write 2026-11-20, '2026-11-20 03:00' or \
                         20261120T0300 (UTC)"
                    )
                })
            })
            .interact_text()?;
        When::At(points::parse_at(&text).with_context(|| format!("\"{text}\" is not a time"))?)
    } else {
        When::Latest
    };
    let options = restore::Options {
        from,
        when,
        snapshot: None,
        subvols: Vec::new(),
        disks: Vec::new(),
        wipe: Vec::new(),
        confirmation: Confirmation::Ask,
        firmware: true,
        room: None,
        new_uuid_when_taken: false,
        receives: None,
    };
    restore::run(spec, &options).map(|_| ())
}

/// The rescue system mounts nothing of the machine: mount the spec's two ESPs on private
/// directories, mirror, unmount.
fn sync_esps(spec: &Spec) -> Result<()> {
    let bindings = crate::machine::bind_disks(
        spec,
        &[],
        &crate::boot::uefi::esp_disk_ids(spec),
        crate::machine::Scan::WhenRequiredUnbound,
    )?;
    let esps = crate::boot::uefi::spec_esps(spec, &bindings, ON_ESP_UEFI)?;
    let [(esp0, node0), (esp1, node1), ..] = esps.as_slice() else {
        bail!("{} names fewer than two ESPs", spec.file.display());
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
    let result = crate::boot::mirror::run(from.path(), to.path(), Confirmation::Ask);
    to.close()?;
    from.close()?;
    result
}

/// Ask for the link, the address, the gateway and the name servers (each checked as it is
/// typed, a mistake said in one sentence and asked again), show the plan, confirm, apply.
fn static_address() -> Result<()> {
    let links = net::links::wired(Path::new("/sys/class/net"));
    if links.is_empty() {
        bail!(
            "this machine shows no wired network link (no driver for its network card?): \
             docs/rescue-image.md says how to add one"
        );
    }
    let have = net::links::up_addresses();
    let shown: Vec<String> = links
        .iter()
        .map(|l| {
            let addrs: Vec<&str> = have
                .iter()
                .filter(|(link, _)| link == l)
                .map(|(_, a)| a.as_str())
                .collect();
            match addrs.as_slice() {
                [] => format!("{l} (no address)"),
                found => format!("{l} ({})", found.join(", ")),
            }
        })
        .collect();
    let at = dialoguer::Select::with_theme(&SimpleTheme)
        .with_prompt("Which link?")
        .items(&shown)
        .default(0)
        .interact()?;
    let link = net::input::link(&links[at.min(links.len() - 1)], &links)?;
    let text = ask("Address with prefix (e.g. 192.168.1.20/24)", false, |t| {
        net::input::address(t).map(|_| ())
    })?;
    let (address, prefix) = net::input::address(&text)?;
    let text = ask("Gateway (Enter for none)", true, |t| {
        net::input::gateway(t, address, prefix).map(|_| ())
    })?;
    let gateway = net::input::gateway(&text, address, prefix)?;
    let text = ask("Name servers, spaces between (Enter for none)", true, |t| {
        net::input::dns(t).map(|_| ())
    })?;
    let cfg = net::input::Static {
        link,
        address,
        prefix,
        gateway,
        dns: net::input::dns(&text)?,
    };
    let steps = net::plan::plan(&cfg);
    print!("{}", net::plan::render(&cfg, &steps));
    crate::ui::confirm_changes(Confirmation::Ask, "Set this address?")?;
    net::apply::apply(&steps, &net::apply::Paths::system())?;
    println!("{}", net::links::header(&net::links::up_addresses()));
    Ok(())
}

/// One line typed at the console, checked by `check` before it is taken.
fn ask(
    prompt: &str,
    allow_empty: bool,
    check: impl Fn(&str) -> Result<(), net::input::InputError>,
) -> Result<String> {
    Ok(dialoguer::Input::<String>::with_theme(&SimpleTheme)
        .with_prompt(prompt)
        .allow_empty(allow_empty)
        .validate_with(|t: &String| check(t).map_err(|e| e.to_string()))
        .interact_text()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_once_with_its_own_label() {
        let mut labels: Vec<&str> = Entry::ALL.iter().map(|e| e.label()).collect();
        assert_eq!(labels.len(), 14);
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Entry::ALL.len(), "two entries share a label");
        for (i, e) in Entry::ALL.iter().enumerate() {
            assert_eq!(
                Entry::ALL.iter().position(|x| x == e),
                Some(i),
                "{e:?} twice"
            );
        }
    }

    /// STYLE.md: domain modules own their entry points; the menu calls them, never a
    /// command function or a command line's argument struct.
    fn calls_commands(source: &str) -> Vec<String> {
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        let needles = [
            ["crate::", "commands"].concat(),
            ["crate::", "cli"].concat(),
            ["super", "::"].concat(),
            ["Args", " {"].concat(),
        ];
        needles
            .into_iter()
            .filter(|n| code.contains(n.as_str()))
            .collect()
    }

    #[test]
    fn the_menu_calls_library_entry_points() {
        assert_eq!(
            calls_commands(include_str!("menu.rs")),
            Vec::<String>::new()
        );
        // What the menu looked like when it ran commands through their argument structs.
        let old = "use crate::cli::{DisksArgs, PlanArgs};\n\
                   fn run_entry() { super::disks(&DisksArgs { json: false }) }\n";
        assert_eq!(calls_commands(old).len(), 3);
    }

    #[test]
    fn the_order_a_person_reads() {
        let at = |e: Entry| Entry::ALL.iter().position(|x| *x == e).unwrap();
        // Look before writing, and leaving last.
        assert!(at(Entry::ShowDisks) < at(Entry::Provision));
        assert!(at(Entry::PlanProvision) < at(Entry::Provision));
        assert!(at(Entry::ListUsbPoints) < at(Entry::RestoreUsb));
        assert_eq!(Entry::ALL.last(), Some(&Entry::PowerOff));
        assert_eq!(Entry::ALL[0], Entry::ShowDisks);
        // What the boot scenario finds on screen.
        for needle in [
            "Provision the disks",
            "Mirror ESP0 onto ESP1",
            "UEFI boot entries for both ESPs",
            "Restore from the USB backup drive",
            "Restore from restic",
            "Set a static address",
            "Power off",
        ] {
            assert!(
                Entry::ALL.iter().any(|e| e.label().starts_with(needle)),
                "{needle}"
            );
        }
    }
}
