//! The image file: a GPT with one ESP, FAT32 on it, the boot files inside. Written into a
//! plain file at offsets (no loop device, no mount), under a temporary name that becomes
//! the final name only once the image is complete and checked.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lifeboat::apply::{fat, gpt_table};
use lifeboat::plan::PlannedPartition;
use lifeboat::spec::PartType;
use xshell::{cmd, Shell};

use crate::run_quiet;

const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// The ESP starts at 1 MiB; 1 MiB is left at the end for the backup GPT.
const ESP_START: u64 = MIB;

/// Where the ESP lies in the image and how big the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub total: u64,
    pub esp_offset: u64,
    pub esp_len: u64,
}

/// The smallest layout that holds `content` bytes of files plus `free` bytes of room:
/// FAT32 needs 33 MiB at least; FAT tables and directories take about 2% more.
pub fn layout(content: u64, free: u64, max: u64) -> Result<Layout> {
    let need = content + content / 50 + free + 2 * MIB;
    let esp_len = need.div_ceil(MIB).max(34) * MIB;
    let total = ESP_START + esp_len + MIB;
    if total > max {
        bail!(
            "the image would be {} MiB, more than image.max_size_mib = {} in images/rescue.toml",
            total / MIB,
            max / MIB
        );
    }
    Ok(Layout {
        total,
        esp_offset: ESP_START,
        esp_len,
    })
}

pub struct Identity<'a> {
    pub label: &'a str,
    pub volume_id: u32,
    pub disk_guid: &'a str,
    pub esp_guid: &'a str,
    pub mtime: u64,
}

/// Removes the temporary image unless `keep` was called.
struct TempImage {
    path: PathBuf,
    kept: bool,
}

impl Drop for TempImage {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Write the image to `out` (through `.<name>.tmp` beside it) and check it with sgdisk and
/// fsck.vfat. `files` are (path on the ESP, bytes).
pub fn write(
    sh: &Shell,
    out: &Path,
    layout: Layout,
    id: &Identity<'_>,
    files: &[(String, Vec<u8>)],
) -> Result<()> {
    let dir = out.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
    let name = out
        .file_name()
        .with_context(|| format!("{} names no file", out.display()))?;
    let tmp = TempImage {
        path: dir.join(format!(".{}.tmp", name.to_string_lossy())),
        kept: false,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp.path)
        .with_context(|| format!("cannot write the image in {}", dir.display()))?;
    file.set_len(layout.total)
        .with_context(|| format!("sizing {}", tmp.path.display()))?;

    let esp = PlannedPartition {
        number: 1,
        name: "EFI system partition".to_owned(),
        first_lba: layout.esp_offset / SECTOR,
        last_lba: (layout.esp_offset + layout.esp_len) / SECTOR - 1,
        part_type: PartType::Esp,
        type_guid: PartType::Esp.guid().to_owned(),
        part_guid: id.esp_guid.to_owned(),
    };
    gpt_table::write(&tmp.path, SECTOR, id.disk_guid, &[esp]).context("writing the GPT")?;
    fat::format_fat32(
        &mut file,
        layout.esp_offset,
        layout.esp_len,
        SECTOR,
        id.label,
        id.volume_id,
    )
    .context("formatting the ESP")?;
    fat::write_files(
        &mut file,
        layout.esp_offset,
        layout.esp_len,
        files,
        id.mtime,
    )
    .context("writing the boot files onto the ESP")?;
    file.sync_all()
        .with_context(|| format!("flushing {}", tmp.path.display()))?;

    check(sh, &tmp.path, &mut file, layout)?;
    fs::rename(&tmp.path, out)
        .with_context(|| format!("renaming {} to {}", tmp.path.display(), out.display()))?;
    let mut tmp = tmp;
    tmp.kept = true;
    Ok(())
}

/// What independent tools say: sgdisk about the table, fsck.vfat about the FAT.
fn check(sh: &Shell, image: &Path, file: &mut File, layout: Layout) -> Result<()> {
    let said = run_quiet(cmd!(sh, "sgdisk -v {image}")).context("checking the GPT")?;
    if !said.contains("No problems found") {
        bail!(
            "sgdisk -v finds problems in the image's GPT: {}",
            said.trim()
        );
    }
    let esp_copy = image.with_extension("esp.tmp");
    let result = (|| -> Result<()> {
        let mut region = vec![0u8; layout.esp_len as usize];
        file.seek(SeekFrom::Start(layout.esp_offset))?;
        file.read_exact(&mut region)?;
        let mut copy = File::create(&esp_copy)?;
        copy.write_all(&region)?;
        drop(copy);
        run_quiet(cmd!(sh, "fsck.vfat -n {esp_copy}")).context("checking the ESP's FAT")?;
        Ok(())
    })();
    let _ = fs::remove_file(&esp_copy);
    result
}

/// The ESP of an image this module wrote: offset and length, read back from its GPT.
pub fn find_esp(image: &Path) -> Result<(u64, u64)> {
    let gpt = lifeboat::probe::gpt_table::read(image, SECTOR)
        .with_context(|| format!("reading the GPT of {}", image.display()))?
        .with_context(|| format!("{} has no GPT", image.display()))?;
    let esp = gpt
        .partitions
        .iter()
        .find(|p| p.type_guid.eq_ignore_ascii_case(PartType::Esp.guid()))
        .with_context(|| format!("{} has no ESP", image.display()))?;
    Ok((
        esp.first_lba * SECTOR,
        (esp.last_lba + 1 - esp.first_lba) * SECTOR,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_grows_with_content_and_stops_at_the_limit() {
        let small = layout(MIB, 8 * MIB, 128 * MIB).unwrap();
        assert_eq!(small.esp_len, 34 * MIB, "FAT32's floor");
        assert_eq!(small.total, 36 * MIB);
        let big = layout(60 * MIB, 8 * MIB, 128 * MIB).unwrap();
        assert!(big.esp_len >= 70 * MIB && big.total.is_multiple_of(MIB));
        let err = layout(130 * MIB, 0, 128 * MIB).unwrap_err().to_string();
        assert!(err.contains("max_size_mib"), "{err}");
    }
}
