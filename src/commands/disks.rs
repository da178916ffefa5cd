//! `lifeboat disks`: what the spec's match rules can see.

use anyhow::{Context, Result};

use crate::cli::DisksArgs;
use crate::probe;

pub fn disks(args: &DisksArgs) -> Result<()> {
    let found = probe::all_disks().context("listing the disks of this machine")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found.disks)?);
        return Ok(());
    }
    println!(
        "Secure Boot: {}",
        crate::boot::efivars::SecureBoot::read(std::path::Path::new(crate::boot::efivars::EFIVARS))
    );
    print!("{}", probe::table::render(&found));
    Ok(())
}
