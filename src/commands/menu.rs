//! `lifeboat menu`: what the rescue image shows on every console. Each entry runs the same
//! code as the command line; a failure is shown and the menu comes back.

use std::path::Path;

use anyhow::{Context, Result};
use dialoguer::theme::SimpleTheme;

use crate::cli::{DisksArgs, MenuArgs, PlanArgs, ProvisionArgs, Selection};
use crate::exec::Cmd;

const ENTRIES: &[&str] = &[
    "Show the disks (serials, sizes, contents)",
    "Check the machine spec",
    "Plan provisioning (writes nothing)",
    "Provision the disks (shows the plan, asks per disk)",
    "Shell",
    "Reboot",
    "Power off",
];

pub fn menu(args: &MenuArgs) -> Result<()> {
    loop {
        println!();
        println!(
            "lifeboat {} rescue menu, spec {}",
            env!("CARGO_PKG_VERSION"),
            args.spec.display()
        );
        let choice = dialoguer::Select::with_theme(&SimpleTheme)
            .with_prompt("What now? (arrow keys or j/k, Enter)")
            .items(ENTRIES)
            .default(0)
            .interact()
            .context("the menu needs a terminal")?;
        if let Err(e) = run_entry(choice, &args.spec) {
            eprintln!("lifeboat: {e:#}");
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
        4 => {
            println!("Type `exit` to come back to the menu.");
            Ok(Cmd::new("sh").run_interactive()?)
        }
        5 => Ok(Cmd::new("reboot").arg("-f").run_interactive()?),
        _ => Ok(Cmd::new("poweroff").arg("-f").run_interactive()?),
    }
}
