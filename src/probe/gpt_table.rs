//! Reading the GPT of a disk or an image through the `gpt` crate, for the probe
//! (`apply/gpt_table.rs` writes one).

use std::fs::File;
use std::path::{Path, PathBuf};

use gpt::disk::LogicalBlockSize;
use gpt::GptConfig;

use super::{Gpt, Part};

#[derive(Debug, thiserror::Error)]
pub enum GptReadError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: sector size {size} is not supported (512 or 4096)", path.display())]
    SectorSize { path: PathBuf, size: u64 },
}

/// Read the GPT of a disk or image: `Ok(None)` when there is no valid GPT.
pub fn read(target: &Path, sector_size: u64) -> Result<Option<Gpt>, GptReadError> {
    let lb = LogicalBlockSize::try_from(sector_size).map_err(|_| GptReadError::SectorSize {
        path: target.to_owned(),
        size: sector_size,
    })?;
    let file = File::open(target).map_err(|source| GptReadError::Open {
        path: target.to_owned(),
        source,
    })?;
    let disk = match GptConfig::new()
        .writable(false)
        .logical_block_size(lb)
        .open_from_device(file)
    {
        Ok(d) => d,
        Err(_) => return Ok(None),
    };
    let partitions = disk
        .partitions()
        .iter()
        .filter(|(_, p)| p.is_used())
        .map(|(n, p)| Part {
            number: *n,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            type_guid: p.part_type_guid.guid.to_string().to_uppercase(),
            part_guid: p.part_guid.to_string().to_uppercase(),
            name: p.name.clone(),
            fs: None,
            subvolumes: None,
        })
        .collect();
    Ok(Some(Gpt {
        disk_guid: disk.guid().to_string().to_uppercase(),
        partitions,
    }))
}
