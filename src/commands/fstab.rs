//! `lifeboat fstab SPEC --root NAME`: print the fstab of one root, UUIDs from the disks.

use anyhow::{Context, Result};

use crate::boot::fstab::{self, Found};
use crate::cli::FstabArgs;
use crate::plan;
use crate::probe::{self, Device, Table};
use crate::spec::Spec;

pub fn fstab(args: &FstabArgs) -> Result<()> {
    let spec = Spec::load(&args.spec)?;
    let mut explicit = Vec::new();
    for (id, path) in &args.disks {
        if spec.disk(id).is_none() {
            return Err(plan::bind::unknown(&spec, id, "--disk").into());
        }
        let device =
            probe::device(path).with_context(|| format!("probing {} for {id}", path.display()))?;
        explicit.push((id.clone(), device));
    }
    let found = probe::all_disks().context("listing the disks of this machine")?;
    // Nothing is required here: a disk that is not found shows up as the partition that
    // needs it, by name.
    let bindings = plan::bind(&spec, explicit, &found.disks, &[])?;
    let lookup = |id: &str, number: u32| -> Option<Option<Found>> {
        let binding = bindings.iter().find(|b| b.id == id)?;
        Some(partition(&binding.device, number))
    };
    print!("{}", fstab::render(&spec, &args.root, &lookup)?);
    Ok(())
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
