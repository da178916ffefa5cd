//! `lifeboat boot-entries SPEC`: one UEFI boot entry per ESP of the spec, first in
//! BootOrder, written through efivarfs after the changes are shown.

use anyhow::Result;

use crate::boot::uefi;
use crate::cli::BootEntriesArgs;
use crate::spec::Spec;

pub fn boot_entries(args: &BootEntriesArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    uefi::write_for(&spec, &args.disks, &args.loader, (&args.confirm).into())
}
