//! `lifeboat inventory SPEC`: the restore points on the backup drive or in restic,
//! read-only ([`crate::restore::listing`]).

use anyhow::Result;

use crate::cli::{InventoryArgs, InventoryFrom};
use crate::restore::listing;
use crate::spec::Spec;

pub fn inventory(args: &InventoryArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    match args.from {
        InventoryFrom::Restic => listing::show_restic(&spec, args.json),
        InventoryFrom::Usb => listing::show_usb(&spec, &args.disks, args.json),
    }
}
