//! `lifeboat fstab SPEC --root NAME`: print the fstab of one root, UUIDs from the disks.

use anyhow::Result;

use crate::boot::fstab::{self, Found};
use crate::cli::FstabArgs;
use crate::plan::Binding;
use crate::probe::{Device, Table};
use crate::spec::Spec;

pub fn fstab(args: &FstabArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    // Nothing is required here: a disk that is not found shows up as the partition that
    // needs it, by name.
    let bindings = super::bind_disks(&spec, &args.disks, &[], true)?;
    print!("{}", fstab::render(&spec, &args.root, &lookup(&bindings))?);
    Ok(())
}

/// What is in partition `number` of the disk bound to `id`, for [`fstab::render`].
pub fn lookup(bindings: &[Binding]) -> impl Fn(&str, u32) -> Option<Option<Found>> + '_ {
    move |id, number| {
        let binding = bindings.iter().find(|b| b.id == id)?;
        Some(partition(&binding.device, number))
    }
}

fn partition(device: &Device, number: u32) -> Option<Found> {
    let Table::Gpt(gpt) = &device.table else {
        return None;
    };
    let fs = gpt
        .partitions
        .iter()
        .find(|p| p.number == number)?
        .fs
        .as_ref()?;
    Some(Found {
        fstype: fs.fstype.clone(),
        uuid: fs.uuid.clone(),
    })
}
