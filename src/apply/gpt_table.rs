//! GPT partition tables through the `gpt` crate: writing the plan's table (on a block
//! device or on a plain image file). The probe reads tables back (`probe/gpt.rs`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};
use gpt::GptConfig;
use uuid::Uuid;

use crate::plan::layout::usable_lbas;
use crate::plan::PlannedPartition;

#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: sector size {size} is not supported (512 or 4096)", path.display())]
    SectorSize { path: PathBuf, size: u64 },
    #[error("{}: partition {number} \"{name}\": {problem}", path.display())]
    BadPartition {
        path: PathBuf,
        number: u32,
        name: String,
        problem: String,
    },
    #[error("{}: bad GUID \"{guid}\"", path.display())]
    BadGuid { path: PathBuf, guid: String },
    #[error("{}: writing the GPT failed: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("{}: flushing to disk failed: {source}", path.display())]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn block_size(path: &Path, size: u64) -> Result<LogicalBlockSize, GptError> {
    LogicalBlockSize::try_from(size).map_err(|_| GptError::SectorSize {
        path: path.to_owned(),
        size,
    })
}

fn guid(path: &Path, text: &str) -> Result<Uuid, GptError> {
    Uuid::from_str(text).map_err(|_| GptError::BadGuid {
        path: path.to_owned(),
        guid: text.to_owned(),
    })
}

/// The length of a block device or an image file, in bytes.
fn length(file: &mut File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    Ok(len)
}

/// Write a protective MBR and a new GPT (primary and backup) holding exactly `partitions`,
/// replacing whatever table was there, then flush.
pub fn write(
    target: &Path,
    sector_size: u64,
    disk_guid: &str,
    partitions: &[PlannedPartition],
) -> Result<(), GptError> {
    let lb = block_size(target, sector_size)?;
    let disk_guid = guid(target, disk_guid)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .map_err(|source| GptError::Open {
            path: target.to_owned(),
            source,
        })?;
    let size = length(&mut file).map_err(|source| GptError::Open {
        path: target.to_owned(),
        source,
    })?;
    let (first_usable, last_usable) = usable_lbas(size, sector_size);

    // Checked here because the gpt crate's update_partitions takes entries as given.
    let mut table = BTreeMap::new();
    let mut sorted: Vec<&PlannedPartition> = partitions.iter().collect();
    sorted.sort_by_key(|p| p.first_lba);
    for (i, p) in sorted.iter().enumerate() {
        let bad = |problem: String| GptError::BadPartition {
            path: target.to_owned(),
            number: p.number,
            name: p.name.clone(),
            problem,
        };
        if p.number == 0 || p.number > 128 {
            return Err(bad("partition numbers run from 1 to 128".into()));
        }
        if p.last_lba < p.first_lba {
            return Err(bad(format!(
                "ends (LBA {}) before it starts (LBA {})",
                p.last_lba, p.first_lba
            )));
        }
        if p.first_lba < first_usable || p.last_lba > last_usable {
            return Err(bad(format!(
                "LBAs {}..{} are outside the usable range {first_usable}..{last_usable}",
                p.first_lba, p.last_lba
            )));
        }
        if let Some(next) = sorted.get(i + 1) {
            if next.first_lba <= p.last_lba {
                return Err(bad(format!("overlaps partition {}", next.number)));
            }
        }
        if p.name.encode_utf16().count() > 36 {
            return Err(bad("names are at most 36 UTF-16 units".into()));
        }
        let entry = Partition {
            part_type_guid: Type {
                guid: guid(target, &p.type_guid)?,
                os: OperatingSystem::None,
            },
            part_guid: guid(target, &p.part_guid)?,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            flags: 0,
            name: p.name.clone(),
        };
        if table.insert(p.number, entry).is_some() {
            return Err(bad("number used twice".into()));
        }
    }

    let failed = |e: &dyn std::fmt::Display| GptError::Write {
        path: target.to_owned(),
        message: e.to_string(),
    };
    // The protective MBR is a separate step in the gpt crate; sizes past 2 TiB are capped.
    let mbr_sectors = u32::try_from(size / sector_size - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(mbr_sectors)
        .overwrite_lba0(&mut file)
        .map_err(|e| failed(&e))?;

    let mut disk = GptConfig::new()
        .writable(true)
        .logical_block_size(lb)
        .change_partition_count(true)
        .create_from_device(file, Some(disk_guid))
        .map_err(|e| failed(&e))?;
    disk.update_partitions(table).map_err(|e| failed(&e))?;
    let file = disk.write().map_err(|e| failed(&e))?;
    // The crate leaves flushing a caller-provided device to the caller.
    file.sync_all().map_err(|source| GptError::Sync {
        path: target.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Cmd;
    use crate::plan::layout::layout;
    use crate::probe::gpt_table::read;
    use crate::spec::Spec;

    fn planned(disk_id: &str, size: u64, sector: u64) -> Vec<PlannedPartition> {
        let spec = Spec::parse(
            Path::new("configs/atlantis.toml"),
            include_str!("../../configs/atlantis.toml"),
        )
        .unwrap();
        let mut n = 0u32;
        layout(spec.disk(disk_id).unwrap(), size, sector, &mut || {
            n += 1;
            format!("11111111-2222-4333-8444-{n:012X}")
        })
        .unwrap()
    }

    fn sparse(dir: &Path, size: u64) -> PathBuf {
        let p = dir.join("disk.img");
        File::create(&p).unwrap().set_len(size).unwrap();
        p
    }

    const DISK_GUID: &str = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE";

    #[test]
    fn sgdisk_reads_what_we_write_on_a_2tb_image() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path(), 2_000_000_000_000);
        let parts = planned("disk1", 2_000_000_000_000, 512);
        write(&img, 512, DISK_GUID, &parts).unwrap();
        let v = Cmd::new("sgdisk").arg("-v").arg(&img).read().unwrap();
        assert!(v.contains("No problems found"), "{v}");
        let p = Cmd::new("sgdisk").arg("-p").arg(&img).read().unwrap();
        assert!(
            p.contains(&format!("Disk identifier (GUID): {DISK_GUID}")),
            "{p}"
        );
        for (i, want) in parts.iter().enumerate() {
            let info = Cmd::new("sgdisk")
                .arg(format!("-i{}", i + 1))
                .arg(&img)
                .read()
                .unwrap();
            assert!(
                info.contains(&format!("Partition GUID code: {}", want.type_guid)),
                "{info}"
            );
            assert!(
                info.contains(&format!("Partition unique GUID: {}", want.part_guid)),
                "{info}"
            );
            assert!(
                info.contains(&format!("First sector: {} ", want.first_lba)),
                "{info}"
            );
            assert!(
                info.contains(&format!("Last sector: {} ", want.last_lba)),
                "{info}"
            );
            assert!(
                info.contains(&format!("Partition name: '{}'", want.name)),
                "{info}"
            );
        }
        // And our own reader agrees.
        let back = read(&img, 512).unwrap().unwrap();
        assert_eq!(back.disk_guid, DISK_GUID);
        assert_eq!(back.partitions.len(), 4);
        assert_eq!(back.partitions[3].first_lba, parts[3].first_lba);
    }

    #[test]
    fn overwrites_another_layout_on_4_5tb() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path(), 4_500_000_000_000);
        Cmd::new("sgdisk")
            .args([
                "-n", "1:0:+1G", "-n", "2:0:+1G", "-n", "3:0:+1G", "-n", "4:0:+1G", "-n", "5:0:0",
            ])
            .arg(&img)
            .run()
            .unwrap();
        let parts = planned("usb", 4_500_000_000_000, 512);
        write(&img, 512, DISK_GUID, &parts).unwrap();
        let p = Cmd::new("sgdisk").arg("-p").arg(&img).read().unwrap();
        let rows = p
            .lines()
            .skip_while(|l| !l.starts_with("Number"))
            .skip(1)
            .count();
        assert_eq!(rows, 3, "{p}");
        assert!(Cmd::new("sgdisk")
            .arg("-v")
            .arg(&img)
            .read()
            .unwrap()
            .contains("No problems found"));
    }

    #[test]
    fn four_k_sectors_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path(), 2_000_000_000_000);
        let parts = planned("disk1", 2_000_000_000_000, 4096);
        write(&img, 4096, DISK_GUID, &parts).unwrap();
        // No tool here reads a 4K-sector table from a plain file, so look at the bytes:
        // the header in LBA 1 and the first entry at the start of LBA 2.
        let raw = {
            use std::io::Read;
            let mut f = File::open(&img).unwrap();
            let mut b = vec![0u8; 3 * 4096];
            f.read_exact(&mut b).unwrap();
            b
        };
        assert_eq!(&raw[4096..4104], b"EFI PART");
        let first = u64::from_le_bytes(raw[8192 + 32..8192 + 40].try_into().unwrap());
        let last = u64::from_le_bytes(raw[8192 + 40..8192 + 48].try_into().unwrap());
        assert_eq!((first, last), (256, 256 + 131_072 - 1));
        assert!(
            read(&img, 512).unwrap().is_none(),
            "a 4K table is not a 512-byte one"
        );
        assert_eq!(read(&img, 4096).unwrap().unwrap().partitions.len(), 4);
    }

    #[test]
    fn bad_input_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path(), 10 << 30);
        let mut parts = planned("disk1", 2_000_000_000_000, 512);
        let err = write(&img, 512, DISK_GUID, &parts).unwrap_err().to_string();
        assert!(err.contains("partition 3 \"swap\": LBAs"), "{err}");
        parts.truncate(2);
        parts[1].first_lba = parts[0].last_lba;
        let err = write(&img, 512, DISK_GUID, &parts).unwrap_err().to_string();
        assert!(err.contains("overlaps partition 2"), "{err}");
        parts.truncate(1);
        parts[0].part_guid = "nope".into();
        assert!(write(&img, 512, DISK_GUID, &parts)
            .unwrap_err()
            .to_string()
            .contains("bad GUID \"nope\""));
        assert!(matches!(
            write(&img, 1024, DISK_GUID, &parts),
            Err(GptError::SectorSize { .. })
        ));
        // Nothing was written by any of them.
        assert!(read(&img, 512).unwrap().is_none());
    }
}
