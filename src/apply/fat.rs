//! FAT32 written in-process with `lamfat` (rust-fatfs' fixed code; fatfs 0.3.6 writes
//! directories that fsck.vfat rejects). Works on a partition node or on a region of a
//! plain image file, so the image builder needs no loop device.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use lamfat::{FatType, FormatVolumeOptions};
use sha2::{Digest, Sha256};

use crate::file_tree::{Node, Tree};

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("FAT label \"{0}\" is longer than 11 bytes")]
    Label(String),
    #[error("{len} bytes is too small for FAT32 with {sector_size}-byte sectors (it needs at least {})", crate::spec::human(crate::plan::layout::fat32_min_bytes(*sector_size)))]
    TooSmall { len: u64, sector_size: u64 },
    #[error("{sector_size}-byte sectors: FAT32 takes 512, 1024, 2048 or 4096")]
    SectorSize { sector_size: u64 },
    #[error("formatting FAT32 failed: {0}")]
    Format(String),
    #[error("flushing to disk failed: {0}")]
    Sync(io::Error),
}

/// A window `[offset, offset + len)` of a file, seen as a whole device.
pub struct Region<'a> {
    file: &'a mut File,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<'a> Region<'a> {
    pub fn new(file: &'a mut File, offset: u64, len: u64) -> Region<'a> {
        Region {
            file,
            offset,
            len,
            pos: 0,
        }
    }

    fn room(&self, want: usize) -> usize {
        want.min(self.len.saturating_sub(self.pos) as usize)
    }
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.offset + self.pos))?;
        let got = self.file.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Region<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the FAT region",
            ));
        }
        self.file.seek(SeekFrom::Start(self.offset + self.pos))?;
        let put = self.file.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Region<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the FAT region",
            )),
        }
    }
}

/// The 11-byte, space-padded, upper-case label FAT stores.
fn label_bytes(label: &str) -> Result<[u8; 11], FatError> {
    let up = label.to_ascii_uppercase();
    if up.len() > 11 {
        return Err(FatError::Label(label.to_owned()));
    }
    let mut out = [b' '; 11];
    out[..up.len()].copy_from_slice(up.as_bytes());
    Ok(out)
}

/// Format `[offset, offset + len)` of `file` as FAT32 with this label and volume id, in
/// sectors of `sector_size` bytes. That must be the device's logical sector size: the
/// kernel refuses to mount a FAT whose sectors are smaller than the device's ("logical
/// sector size too small for device"), so 512-byte FAT sectors on a 4Kn disk are an ESP
/// that Linux cannot mount.
pub fn format_fat32(
    file: &mut File,
    offset: u64,
    len: u64,
    sector_size: u64,
    label: &str,
    volume_id: u32,
) -> Result<(), FatError> {
    let label = label_bytes(label)?;
    let bytes_per_sector = match sector_size {
        512 | 1024 | 2048 | 4096 => sector_size as u16,
        _ => return Err(FatError::SectorSize { sector_size }),
    };
    if len < crate::plan::layout::fat32_min_bytes(sector_size) {
        return Err(FatError::TooSmall { len, sector_size });
    }
    let options = FormatVolumeOptions::new()
        .fat_type(FatType::Fat32)
        .bytes_per_sector(bytes_per_sector)
        .bytes_per_cluster(cluster_size(len, sector_size))
        .volume_id(volume_id)
        .volume_label(label);
    let mut region = Region::new(file, offset, len);
    lamfat::format_volume(&mut lamfat::StdIoWrapper::new(&mut region), options)
        .map_err(|e| FatError::Format(format!("{e:?}")))?;
    file.sync_all().map_err(FatError::Sync)
}

/// The cluster sizes mkfs.vfat picks: 4 KiB up to 8 GiB, larger above, never so large that
/// FAT32's 65525-cluster minimum is missed, never smaller than a sector.
fn cluster_size(len: u64, sector_size: u64) -> u32 {
    let mut size: u32 = match len {
        l if l <= 8 << 30 => 4096,
        l if l <= 16 << 30 => 8192,
        l if l <= 32 << 30 => 16384,
        _ => 32768,
    };
    let floor = sector_size as u32;
    size = size.max(floor);
    while size > floor && len / u64::from(size) < 66_000 {
        size /= 2;
    }
    size
}

/// A fixed clock, so that the same files give the same FAT bytes (reproducible images).
#[derive(Debug, Clone, Copy)]
struct FixedTime(lamfat::DateTime);

impl lamfat::TimeProvider for FixedTime {
    fn get_current_date(&self) -> lamfat::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> lamfat::DateTime {
        self.0
    }
}

/// FAT time for a Unix time (FAT counts from 1980; earlier times are clamped to it).
fn fat_time(unix: u64) -> lamfat::DateTime {
    let (y, mo, d, h, mi, s) = crate::time::civil(unix.max(315_532_800));
    lamfat::DateTime::new(
        lamfat::Date::new(y as u16, mo as u16, d as u16),
        lamfat::Time::new(h as u16, mi as u16, s as u16, 0),
    )
}

/// Write files into the FAT filesystem in `[offset, offset + len)` of `file`, creating
/// parent directories and replacing files that exist. Paths use `/`. Every timestamp is
/// `mtime` (a Unix time), so the same inputs give the same bytes.
pub fn write_files(
    file: &mut File,
    offset: u64,
    len: u64,
    files: &[(String, Vec<u8>)],
    mtime: u64,
) -> Result<(), FatError> {
    let err = |e: &dyn std::fmt::Debug| FatError::Format(format!("{e:?}"));
    {
        let region = Region::new(file, offset, len);
        let options = lamfat::FsOptions::new().time_provider(FixedTime(fat_time(mtime)));
        let fs = lamfat::FileSystem::new(lamfat::StdIoWrapper::new(region), options)
            .map_err(|e| err(&e))?;
        {
            let root = fs.root_dir();
            for (path, bytes) in files {
                let path = path.trim_start_matches('/');
                let mut dir = root.clone();
                let parts: Vec<&str> = path.split('/').collect();
                for part in &parts[..parts.len() - 1] {
                    dir = match dir.open_dir(part) {
                        Ok(d) => d,
                        Err(_) => dir.create_dir(part).map_err(|e| err(&e))?,
                    };
                }
                let name = parts[parts.len() - 1];
                let mut f = dir.create_file(name).map_err(|e| err(&e))?;
                f.truncate().map_err(|e| err(&e))?;
                lamfat::Write::write_all(&mut f, bytes).map_err(|e| err(&e))?;
                lamfat::Write::flush(&mut f).map_err(|e| err(&e))?;
            }
        }
        fs.unmount().map_err(|e| err(&e))?;
    }
    file.sync_all().map_err(FatError::Sync)
}

/// Read one file back from a FAT region (for checks and for the QEMU harness).
pub fn read_file(file: &mut File, offset: u64, len: u64, path: &str) -> Result<Vec<u8>, FatError> {
    let err = |e: &dyn std::fmt::Debug| FatError::Format(format!("{e:?}"));
    let region = Region::new(file, offset, len);
    let fs = lamfat::FileSystem::new(lamfat::StdIoWrapper::new(region), lamfat::FsOptions::new())
        .map_err(|e| err(&e))?;
    let mut f = fs
        .root_dir()
        .open_file(path.trim_start_matches('/'))
        .map_err(|e| err(&e))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = lamfat::Read::read(&mut f, &mut buf).map_err(|e| err(&e))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// Every directory and file of a FAT region, as esp-sync lists a mounted ESP (path → kind,
/// length and SHA-256), read in-process: no mount, so no vfat module is needed and nothing
/// on the device changes. Open `file` read-only.
pub fn tree(file: &mut File, offset: u64, len: u64) -> Result<Tree, FatError> {
    let err = |e: &dyn std::fmt::Debug| FatError::Format(format!("{e:?}"));
    let region = Region::new(file, offset, len);
    let fs = lamfat::FileSystem::new(lamfat::StdIoWrapper::new(region), lamfat::FsOptions::new())
        .map_err(|e| err(&e))?;
    let mut out = Tree::new();
    let mut stack = vec![(PathBuf::new(), fs.root_dir())];
    let mut buf = vec![0u8; 1 << 16];
    while let Some((rel, dir)) = stack.pop() {
        for entry in dir.iter() {
            let entry = entry.map_err(|e| err(&e))?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = rel.join(&name);
            if entry.is_dir() {
                out.insert(path.clone(), Node::Dir);
                stack.push((path, entry.to_dir()));
            } else if entry.is_file() {
                let mut f = entry.to_file();
                let mut hasher = Sha256::new();
                let mut total = 0u64;
                loop {
                    let n = lamfat::Read::read(&mut f, &mut buf).map_err(|e| err(&e))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
                out.insert(
                    path,
                    Node::File {
                        len: total,
                        sha256: hasher.finalize().into(),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Copy every directory and file of a FAT region into the directory `to` (made when
/// missing), read in-process: no mount, so no vfat module (the boot backup of a host
/// without one). Returns the files and bytes copied. Open `file` read-only.
pub fn extract(file: &mut File, offset: u64, len: u64, to: &Path) -> Result<(u64, u64), FatError> {
    let err = |e: &dyn std::fmt::Debug| FatError::Format(format!("{e:?}"));
    let local = |path: &Path, source: io::Error| FatError::Open {
        path: path.to_owned(),
        source,
    };
    let region = Region::new(file, offset, len);
    let fs = lamfat::FileSystem::new(lamfat::StdIoWrapper::new(region), lamfat::FsOptions::new())
        .map_err(|e| err(&e))?;
    let (mut files, mut bytes) = (0u64, 0u64);
    std::fs::create_dir_all(to).map_err(|e| local(to, e))?;
    let mut stack = vec![(to.to_owned(), fs.root_dir())];
    let mut buf = vec![0u8; 1 << 16];
    while let Some((here, dir)) = stack.pop() {
        for entry in dir.iter() {
            let entry = entry.map_err(|e| err(&e))?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            // FAT names are one component; anything else is a damaged directory.
            if crate::single_component::check(&name).is_err() {
                return Err(FatError::Format(format!(
                    "a FAT directory entry \"{}\" is not a file name",
                    name.escape_debug()
                )));
            }
            let path = here.join(&name);
            if entry.is_dir() {
                std::fs::create_dir_all(&path).map_err(|e| local(&path, e))?;
                stack.push((path, entry.to_dir()));
            } else if entry.is_file() {
                let mut f = entry.to_file();
                let mut out = File::create(&path).map_err(|e| local(&path, e))?;
                loop {
                    let n = lamfat::Read::read(&mut f, &mut buf).map_err(|e| err(&e))?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n]).map_err(|e| local(&path, e))?;
                    bytes += n as u64;
                }
                out.sync_all().map_err(|e| local(&path, e))?;
                files += 1;
            }
        }
    }
    Ok((files, bytes))
}

/// Format a whole partition node (or image file) as FAT32.
pub fn format_fat32_path(node: &Path, label: &str, volume_id: u32) -> Result<(), FatError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(node)
        .map_err(|source| FatError::Open {
            path: node.to_owned(),
            source,
        })?;
    let open_err = |source| FatError::Open {
        path: node.to_owned(),
        source,
    };
    let sector_size = crate::blockdev::logical_sector_size(&file).map_err(open_err)?;
    let len = file.seek(SeekFrom::End(0)).map_err(open_err)?;
    file.seek(SeekFrom::Start(0)).map_err(open_err)?;
    format_fat32(&mut file, 0, len, sector_size, label, volume_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Cmd;

    fn hash_outside(path: &Path, offset: u64, len: u64) -> (Vec<u8>, Vec<u8>) {
        let all = std::fs::read(path).unwrap();
        (
            all[..offset as usize].to_vec(),
            all[(offset + len) as usize..].to_vec(),
        )
    }

    #[test]
    fn region_inside_a_larger_file_passes_fsck() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        let (offset, len) = (1u64 << 20, 64u64 << 20);
        {
            let mut f = File::create(&img).unwrap();
            // Recognisable bytes around the region prove nothing outside it is touched.
            f.write_all(&vec![0xA5; offset as usize]).unwrap();
            f.set_len(offset + len + (1 << 20)).unwrap();
            f.seek(SeekFrom::Start(offset + len)).unwrap();
            f.write_all(&vec![0x5A; 1 << 20]).unwrap();
        }
        let before = hash_outside(&img, offset, len);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&img)
            .unwrap();
        format_fat32(&mut f, offset, len, 512, "esp1", 0x1234_ABCD).unwrap();
        drop(f);
        assert_eq!(hash_outside(&img, offset, len), before);

        // Cut the region out and let dosfstools and blkid judge it.
        let all = std::fs::read(&img).unwrap();
        let part = dir.path().join("part.img");
        std::fs::write(&part, &all[offset as usize..(offset + len) as usize]).unwrap();
        let fsck = Cmd::new("fsck.vfat").arg("-n").arg(&part).run().unwrap();
        // Exit 0 is dosfstools' "no errors"; one cluster in use is the root directory.
        assert!(fsck.stdout.contains(" 1/"), "{}", fsck.stdout);
        let blkid = Cmd::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(&part)
            .read()
            .unwrap();
        assert!(blkid.contains("TYPE=vfat"), "{blkid}");
        assert!(blkid.contains("VERSION=FAT32"), "{blkid}");
        assert!(blkid.contains("LABEL=ESP1"), "{blkid}");
        assert!(blkid.contains("UUID=1234-ABCD"), "{blkid}");
    }

    #[test]
    fn extract_copies_what_mtools_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("esp.img");
        File::create(&part).unwrap().set_len(64 << 20).unwrap();
        format_fat32_path(&part, "ESP1", 9).unwrap();
        // Written by mtools, an independent FAT implementation.
        let src = dir.path().join("BOOTX64.EFI");
        std::fs::write(&src, vec![0x4d; 100_000]).unwrap();
        let entry = dir.path().join("tw.conf");
        std::fs::write(&entry, "title TW\n").unwrap();
        let img = part.to_str().unwrap();
        for argv in [
            vec![
                "mmd",
                "-i",
                img,
                "::/EFI",
                "::/EFI/BOOT",
                "::/loader",
                "::/loader/entries",
            ],
            vec![
                "mcopy",
                "-i",
                img,
                src.to_str().unwrap(),
                "::/EFI/BOOT/BOOTX64.EFI",
            ],
            vec![
                "mcopy",
                "-i",
                img,
                entry.to_str().unwrap(),
                "::/loader/entries/tw.conf",
            ],
        ] {
            Cmd::new(argv[0]).args(&argv[1..]).run().unwrap();
        }
        let to = dir.path().join("copy");
        let mut f = File::open(&part).unwrap();
        let (files, bytes) = extract(&mut f, 0, 64 << 20, &to).unwrap();
        assert_eq!((files, bytes), (2, 100_009));
        assert_eq!(
            std::fs::read(to.join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
            vec![0x4d; 100_000]
        );
        assert_eq!(
            std::fs::read_to_string(to.join("loader/entries/tw.conf")).unwrap(),
            "title TW\n"
        );
    }

    #[test]
    fn a_512_mib_esp_is_fat32_with_4k_clusters() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("esp.img");
        File::create(&part).unwrap().set_len(512 << 20).unwrap();
        format_fat32_path(&part, "ESP0", 7).unwrap();
        let out = Cmd::new("fsck.vfat")
            .args(["-n", "-v"])
            .arg(&part)
            .run()
            .unwrap();
        assert!(
            out.stdout.contains("4096 bytes per cluster"),
            "{}",
            out.stdout
        );
        let blkid = Cmd::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(&part)
            .read()
            .unwrap();
        assert!(blkid.contains("VERSION=FAT32"), "{blkid}");
    }

    #[test]
    fn files_written_read_back_through_mtools_and_are_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let img = dir.path().join(name);
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&img)
                .unwrap();
            f.set_len(66 << 20).unwrap();
            format_fat32(&mut f, 1 << 20, 64 << 20, 512, "LIFEBOAT", 0xABCD_0001).unwrap();
            let files = vec![
                ("EFI/BOOT/BOOTX64.EFI".to_owned(), vec![0x4D; 300_000]),
                (
                    "loader/entries/lifeboat.conf".to_owned(),
                    b"title lifeboat\n".to_vec(),
                ),
                (
                    "loader/loader.conf".to_owned(),
                    b"default lifeboat.conf\n".to_vec(),
                ),
            ];
            write_files(&mut f, 1 << 20, 64 << 20, &files, 1_700_000_000).unwrap();
            // Replacing a file keeps the tree consistent.
            write_files(
                &mut f,
                1 << 20,
                64 << 20,
                &[("loader/loader.conf".to_owned(), b"timeout 0\n".to_vec())],
                1_700_000_000,
            )
            .unwrap();
            assert_eq!(
                read_file(&mut f, 1 << 20, 64 << 20, "loader/loader.conf").unwrap(),
                b"timeout 0\n"
            );
            img
        };
        let a = make("a.img");
        let b = make("b.img");
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "same inputs, same bytes"
        );

        let all = std::fs::read(&a).unwrap();
        let part = dir.path().join("part.img");
        std::fs::write(&part, &all[1 << 20..(1 << 20) + (64 << 20)]).unwrap();
        Cmd::new("fsck.vfat").arg("-n").arg(&part).run().unwrap();
        let out = dir.path().join("x.efi");
        Cmd::new("mcopy")
            .arg("-i")
            .arg(&part)
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .arg(&out)
            .run()
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), vec![0x4D; 300_000]);
        let listing = Cmd::new("mdir")
            .arg("-i")
            .arg(&part)
            .arg("::/loader/entries")
            .read()
            .unwrap();
        assert!(
            listing.contains("lifeboat.conf") && listing.contains("2023-11-14  22:13"),
            "{listing}"
        );
    }

    #[test]
    fn four_k_sectors_and_trees_that_compare_across_sector_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            (
                "EFI/systemd/systemd-bootx64.efi".to_owned(),
                vec![0x4D; 70_000],
            ),
            ("loader/loader.conf".to_owned(), b"timeout 5\n".to_vec()),
        ];
        let mut trees = Vec::new();
        for (sector, label) in [(512u64, "ESP0"), (4096, "ESP1")] {
            let img = dir.path().join(format!("{sector}.img"));
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&img)
                .unwrap();
            f.set_len(512 << 20).unwrap();
            format_fat32(&mut f, 0, 512 << 20, sector, label, 9).unwrap();
            write_files(&mut f, 0, 512 << 20, &files, 1_700_000_000).unwrap();
            let out = Cmd::new("fsck.vfat")
                .args(["-n", "-v"])
                .arg(&img)
                .run()
                .unwrap();
            assert!(
                out.stdout
                    .contains(&format!("{sector} bytes per logical sector")),
                "{}",
                out.stdout
            );
            trees.push(tree(&mut File::open(&img).unwrap(), 0, 512 << 20).unwrap());
        }
        assert_eq!(
            trees[0], trees[1],
            "labels and sector sizes are not content"
        );
        assert_eq!(trees[0].len(), 5, "{:?}", trees[0]);
        assert!(matches!(
            trees[0].get(Path::new("EFI/systemd/systemd-bootx64.efi")),
            Some(Node::File { len: 70_000, .. })
        ));
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(64 << 20).unwrap();
        assert!(matches!(
            format_fat32(&mut f, 0, 64 << 20, 4096, "X", 1),
            Err(FatError::TooSmall { .. })
        ));
        assert!(matches!(
            format_fat32(&mut f, 0, 64 << 20, 520, "X", 1),
            Err(FatError::SectorSize { .. })
        ));
    }

    #[test]
    fn refuses_long_labels_and_tiny_regions() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("p.img");
        File::create(&part).unwrap().set_len(16 << 20).unwrap();
        assert!(matches!(
            format_fat32_path(&part, "ESP", 1),
            Err(FatError::TooSmall { .. })
        ));
        assert!(matches!(
            format_fat32_path(&part, "TWELVE-CHARS", 1),
            Err(FatError::Label(_))
        ));
    }

    #[test]
    fn region_stays_inside_its_window() {
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(100).unwrap();
        let mut r = Region::new(&mut f, 10, 20);
        assert!(r.seek(SeekFrom::Start(21)).is_err());
        r.seek(SeekFrom::Start(15)).unwrap();
        assert_eq!(r.write(&[1u8; 10]).unwrap(), 5);
        assert!(r.write(&[1u8]).is_err());
    }
}
