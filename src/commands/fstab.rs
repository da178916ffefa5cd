//! `lifeboat fstab SPEC --root NAME`: print the fstab of one root, UUIDs from the disks.

use anyhow::Result;

use crate::boot::fstab;
use crate::cli::FstabArgs;
use crate::spec::Spec;

pub fn fstab(args: &FstabArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    // Nothing is required here: a disk that is not found shows up as the partition that
    // needs it, by name.
    let bindings =
        crate::machine::bind_disks(&spec, &args.disks, &[], crate::machine::Scan::AllDisks)?;
    print!(
        "{}",
        fstab::render(&spec, &args.root, &fstab::lookup(&bindings))?
    );
    Ok(())
}
