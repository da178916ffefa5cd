//! The data the restore benches back up, generated from a fixed seed (no downloads, the
//! same bytes on every machine): an incompressible mix, and a compressible one shaped like
//! a real home directory (source code, logs, a few already-compressed media files).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Which data a bench backs up and restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataSet {
    /// Random bytes: a fifth in small files (512 B to 32 KiB), the rest in large files
    Incompressible,
    /// Source-code-like text in small files, logs in medium ones, a few media-like files
    Compressible,
}

impl DataSet {
    pub fn name(self) -> &'static str {
        match self {
            DataSet::Incompressible => "incompressible",
            DataSet::Compressible => "compressible",
        }
    }

    /// Fills `dir` with `mib` MiB of this set.
    pub fn write(self, dir: &Path, mib: u64) -> Result<Data> {
        match self {
            DataSet::Incompressible => write_mixed(dir, mib),
            DataSet::Compressible => write_compressible(dir, mib),
        }
    }
}

pub struct Data {
    pub files: u64,
    pub bytes: u64,
    /// A large file and its bytes, to check a restored tree by content.
    pub sample: (String, Vec<u8>),
    /// What zstd level 1 makes of the bytes in 128 KiB pieces (how btrfs compresses
    /// extents), for the report.
    pub zstd1_bytes: u64,
}

/// `mib` MiB of incompressible data under `dir`: a fifth in small files (512 B to 32 KiB
/// in 512 directories), the rest in files of up to 256 MiB.
pub fn write_mixed(dir: &Path, mib: u64) -> Result<Data> {
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let total = mib << 20;
    let small_budget = total / 5;
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::new();
    while bytes < small_budget {
        let len = 512 + (rng.next() % (32 << 10)) as usize;
        rng.fill(&mut buf, len);
        let sub = dir.join(format!("alice/small/{:03}", files % 512));
        write(&sub.join(format!("f{files}")), &buf)?;
        files += 1;
        bytes += len as u64;
    }
    let mut sample = None;
    let mut n = 0;
    while bytes < total {
        let len = ((total - bytes).min(256 << 20)) as usize;
        rng.fill(&mut buf, len);
        let rel = format!("alice/large/big{n}.bin");
        write(&dir.join(&rel), &buf)?;
        if sample.is_none() {
            sample = Some((rel, buf.clone()));
        }
        files += 1;
        bytes += len as u64;
        n += 1;
    }
    Ok(Data {
        files,
        bytes,
        sample: sample.context("no large file was written")?,
        // Random bytes do not compress; btrfs stores them as they are.
        zstd1_bytes: bytes,
    })
}

/// `n` small files of 1 KiB of random bytes, 1,000 to a directory.
pub fn write_small(dir: &Path, n: u64) -> Result<Data> {
    let mut rng = Xorshift(0x6a09_e667_f3bc_c908);
    let mut buf = Vec::new();
    let mut sample = None;
    for i in 0..n {
        rng.fill(&mut buf, 1024);
        let rel = format!("alice/many/{:04}/f{i}", i / 1000);
        if i % 1000 == 0 {
            std::fs::create_dir_all(dir.join(&rel).parent().unwrap_or(dir))?;
        }
        File::create(dir.join(&rel))
            .and_then(|mut f| f.write_all(&buf))
            .with_context(|| format!("writing {rel}"))?;
        if sample.is_none() {
            sample = Some((rel, buf.clone()));
        }
    }
    Ok(Data {
        files: n,
        bytes: n * 1024,
        sample: sample.context("no file was written")?,
        zstd1_bytes: n * 1024,
    })
}

/// `mib` MiB shaped like a developer's home: 45 % source-code-like text in files of 1 to
/// 48 KiB (a tree of projects and modules), 35 % logs in files of 1 to 8 MiB, 20 % in a
/// few media-like files of random bytes (photos and videos are compressed already).
pub fn write_compressible(dir: &Path, mib: u64) -> Result<Data> {
    let mut rng = Xorshift(0xd1b5_4a32_d192_ed03);
    let total = mib << 20;
    let (code_budget, log_budget) = (total * 45 / 100, total * 80 / 100);
    let (mut files, mut bytes, mut zstd1) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let mut put = |rel: &str, buf: &[u8], files: &mut u64, bytes: &mut u64| -> Result<()> {
        write(&dir.join(rel), buf)?;
        zstd1 += zstd1_size(buf)?;
        *files += 1;
        *bytes += buf.len() as u64;
        Ok(())
    };
    while bytes < code_budget {
        let len = (1 << 10) + (rng.next() % (47 << 10)) as usize;
        source_text(&mut rng, &mut buf, len.min((code_budget - bytes) as usize));
        let rel = format!(
            "alice/src/project{:02}/module{:03}/file{files}.rs",
            files % 16,
            files / 16 % 256
        );
        put(&rel, &buf, &mut files, &mut bytes)?;
    }
    let mut sample = None;
    let mut n = 0;
    while bytes < log_budget {
        let len = (1 << 20) + (rng.next() % (7 << 20)) as usize;
        log_text(&mut rng, &mut buf, len.min((log_budget - bytes) as usize));
        let rel = format!("alice/logs/service{}.log.{n}", n % 8);
        put(&rel, &buf, &mut files, &mut bytes)?;
        if sample.is_none() {
            sample = Some((rel, buf.clone()));
        }
        n += 1;
    }
    n = 0;
    while bytes < total {
        let len = ((total - bytes).min(64 << 20)) as usize;
        rng.fill(&mut buf, len);
        let rel = format!("alice/media/clip{n}.mp4");
        put(&rel, &buf, &mut files, &mut bytes)?;
        n += 1;
    }
    Ok(Data {
        files,
        bytes,
        sample: sample.context("no log file was written")?,
        zstd1_bytes: zstd1,
    })
}

/// Bytes zstd level 1 makes of `buf` in 128 KiB pieces, each stored as it is when it does
/// not shrink (what btrfs keeps on disk, give or take its 4 KiB rounding).
fn zstd1_size(buf: &[u8]) -> Result<u64> {
    let mut sum = 0;
    for piece in buf.chunks(128 << 10) {
        let packed = zstd::bulk::compress(piece, 1).context("zstd")?;
        sum += packed.len().min(piece.len()) as u64;
    }
    Ok(sum)
}

const KEYWORDS: &[&str] = &[
    "fn", "let", "mut", "pub", "struct", "impl", "match", "if", "else", "for", "while", "return",
    "use", "mod", "self", "Some", "None", "Ok", "Err", "Result", "Vec", "String", "u64", "usize",
    "&str", "=>", "->", "::", "=", "+", "==", "{", "}", "(", ")", ";", ",",
];
const WORDS: &[&str] = &[
    "buffer",
    "count",
    "device",
    "entry",
    "error",
    "file",
    "index",
    "length",
    "name",
    "node",
    "offset",
    "path",
    "point",
    "pool",
    "reader",
    "snapshot",
    "stream",
    "subvolume",
    "target",
    "value",
    "writer",
    "config",
    "options",
    "header",
    "chunk",
    "parent",
    "child",
    "state",
];
const LOG_LEVELS: &[&str] = &["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const LOG_MESSAGES: &[&str] = &[
    "request handled",
    "connection accepted from",
    "cache miss for key",
    "retrying after timeout on",
    "flushed journal segment",
    "user logged in:",
    "scheduled job finished in",
    "checksum verified for",
];

/// About `len` bytes of text shaped like source code: indented lines of keywords and
/// identifiers with numbers, and now and then a comment.
fn source_text(rng: &mut Xorshift, out: &mut Vec<u8>, len: usize) {
    out.clear();
    while out.len() < len {
        let depth = (rng.next() % 4) as usize;
        out.extend(std::iter::repeat_n(b' ', depth * 4));
        if rng.next().is_multiple_of(8) {
            out.extend_from_slice(b"// ");
        }
        for _ in 0..3 + rng.next() % 8 {
            let r = rng.next();
            let word = if r.is_multiple_of(3) {
                KEYWORDS[(r >> 8) as usize % KEYWORDS.len()]
            } else {
                WORDS[(r >> 8) as usize % WORDS.len()]
            };
            out.extend_from_slice(word.as_bytes());
            if r.is_multiple_of(5) {
                out.extend_from_slice(format!("_{}", (r >> 20) % 100).as_bytes());
            }
            out.push(b' ');
        }
        out.push(b'\n');
    }
    out.truncate(len);
}

/// About `len` bytes of log lines: a rising timestamp, a level, a message, an id.
fn log_text(rng: &mut Xorshift, out: &mut Vec<u8>, len: usize) {
    out.clear();
    let mut ms: u64 = 1_795_000_000_000 + rng.next() % 1_000_000_000;
    while out.len() < len {
        let r = rng.next();
        ms += r % 5_000;
        let line = format!(
            "{}.{:03} {} [worker-{}] {} {:08x}\n",
            ms / 1000,
            ms % 1000,
            LOG_LEVELS[r as usize % LOG_LEVELS.len()],
            (r >> 16) % 16,
            LOG_MESSAGES[(r >> 24) as usize % LOG_MESSAGES.len()],
            (r >> 32) % 0x10_0000,
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
    File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))
}

/// Incompressible bytes, fast and without a crate.
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn fill(&mut self, buf: &mut Vec<u8>, len: usize) {
        buf.clear();
        buf.reserve(len);
        while buf.len() < len {
            let word = self.next().to_le_bytes();
            let take = (len - buf.len()).min(8);
            buf.extend_from_slice(&word[..take]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_compressible_set_is_the_same_every_time_and_compresses_like_a_home() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let data = write_compressible(&a, 24).unwrap();
        write_compressible(&b, 24).unwrap();
        let (ta, tb) = (tree(&a), tree(&b));
        assert_eq!(ta, tb, "the same seed gives the same files");
        assert_eq!(data.files, ta.len() as u64);
        let bytes: u64 = ta.iter().map(|(_, c)| c.len() as u64).sum();
        assert_eq!((data.bytes, bytes), (24 << 20, 24 << 20));
        // Text, logs and media in their shares, each as compressible as its kind.
        let share = |part: &str| -> (u64, u64) {
            let files: Vec<_> = ta.iter().filter(|(p, _)| p.contains(part)).collect();
            let raw: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
            let packed: u64 = files.iter().map(|(_, c)| zstd1_size(c).unwrap()).sum();
            (raw, packed)
        };
        let (code, code_z) = share("/src/");
        let (logs, logs_z) = share("/logs/");
        let (media, media_z) = share("/media/");
        assert_eq!(code + logs + media, bytes);
        assert!((code * 100 / bytes).abs_diff(45) <= 1, "{code} of {bytes}");
        assert!(media * 100 / bytes >= 19, "{media} of {bytes}");
        assert!(code_z * 3 < code, "source text {code} -> {code_z}");
        assert!(logs_z * 3 < logs, "logs {logs} -> {logs_z}");
        assert!(media_z * 100 >= media * 99, "media {media} -> {media_z}");
        assert_eq!(data.zstd1_bytes, code_z + logs_z + media_z);
        let sample = ta.iter().find(|(p, _)| *p == data.sample.0).unwrap();
        assert_eq!(sample.1, data.sample.1);
        assert!(sample.1.is_ascii());
    }

    #[test]
    fn the_incompressible_set_does_not_compress() {
        let tmp = tempfile::tempdir().unwrap();
        let data = write_mixed(tmp.path(), 8).unwrap();
        let content = tree(tmp.path());
        let all: Vec<u8> = content.into_iter().flat_map(|(_, c)| c).collect();
        assert_eq!(all.len() as u64, data.bytes);
        assert!(zstd1_size(&all).unwrap() * 100 >= data.bytes * 99);
    }
}
