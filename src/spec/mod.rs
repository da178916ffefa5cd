//! Machine specs: the TOML model, its validation, and the validated [`Spec`] the planner
//! works from. Every error names `file:line:col`.

pub mod fit;
mod model;
mod size;
pub mod summary;
mod validate;

pub use model::{Encryption, FsKind, Machine, PartRole, PartType, ResticSpec, SubvolRole};
pub use size::{human, SizeSpec};

use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where something stands in the spec file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Location {
    pub line: usize,
    pub col: usize,
}

/// A spec problem, always tied to a place in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {message}", at.line, at.col)]
pub struct SpecError {
    pub file: PathBuf,
    pub at: Location,
    pub message: String,
}

/// A validated machine spec.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    pub machine: Machine,
    pub disks: Vec<Disk>,
    pub restic: Option<ResticSpec>,
    /// `[drill]`, defaults filled in.
    pub drill: Drill,
    /// `[health]`, defaults filled in.
    pub health: Health,
    /// `[alerts] command`: program and first arguments (empty: no alerts).
    pub alerts: Vec<String>,
}

/// The thresholds of `lifeboat health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The backup design's "USB stale > 7 days".
    pub usb_max_age_days: u32,
    pub restic_max_age_days: u32,
    /// A monthly drill, with a few days' slack.
    pub drill_max_age_days: u32,
    /// The design's 85 % rule.
    pub fill_max_percent: u32,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            usb_max_age_days: 7,
            restic_max_age_days: 3,
            drill_max_age_days: 35,
            fill_max_percent: 85,
        }
    }
}

/// What a drill waits for: the console's markers and how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drill {
    /// Any of these (substrings of a console line) means the system booted.
    pub expect: Vec<String>,
    pub timeout_secs: u64,
}

impl Default for Drill {
    fn default() -> Drill {
        Drill {
            expect: DEFAULT_DRILL_EXPECT
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            timeout_secs: DEFAULT_DRILL_TIMEOUT_SECS,
        }
    }
}

/// systemd's multi-user target (as it logs it, and as its status line shows it) or a
/// getty's prompt.
pub const DEFAULT_DRILL_EXPECT: &[&str] = &[
    "Reached target multi-user.target",
    "Reached target Multi-User System",
    "login:",
];
pub const DEFAULT_DRILL_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    pub id: String,
    pub at: Location,
    pub description: Option<String>,
    pub preserve: bool,
    pub wipe: bool,
    pub match_rules: MatchRules,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MatchRules {
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub name: String,
    pub at: Location,
    pub size: SizeSpec,
    pub part_type: PartType,
    pub fs: Option<FsKind>,
    pub label: Option<String>,
    pub mount: Option<String>,
    pub mount_options: Vec<String>,
    pub encrypt: Encryption,
    pub key_file: Option<PathBuf>,
    /// A passphrase in a second key slot besides the key file.
    pub passphrase: bool,
    pub quotas: bool,
    /// `role = "backup"`: the backups are here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<PartRole>,
    pub subvolumes: Vec<Subvolume>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Subvolume {
    pub name: String,
    pub mount: Option<String>,
    pub root: bool,
    pub distro: Option<String>,
    pub optional: bool,
    pub mount_options: Vec<String>,
    /// `role = "meta"`: carries the boot backup and the filesystem record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<SubvolRole>,
}

impl Spec {
    /// Read and validate a spec file: a regular file of at most [`MAX_SPEC_BYTES`].
    pub fn load(path: &Path) -> Result<Spec, LoadError> {
        use std::io::Read;
        let read_error = |source| LoadError::Read {
            file: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if !meta.is_file() {
            return Err(LoadError::NotAFile {
                file: path.to_owned(),
                kind: file_kind(&meta),
            });
        }
        let too_big = |size| LoadError::TooBig {
            file: path.to_owned(),
            size,
        };
        if meta.len() > MAX_SPEC_BYTES {
            return Err(too_big(meta.len()));
        }
        // Bounded even if the file grows while it is read.
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SPEC_BYTES + 1).read_to_string(&mut text))
            .map_err(read_error)?;
        if text.len() as u64 > MAX_SPEC_BYTES {
            return Err(too_big(text.len() as u64));
        }
        Ok(Spec::parse(path, &text)?)
    }

    /// Parse and validate spec text; `file` is only used in messages.
    pub fn parse(file: &Path, text: &str) -> Result<Spec, SpecError> {
        validate::parse(file, text)
    }

    /// Where on the backup drive restore points are looked for: the host's directory, the
    /// top level (""), then the spec's `backup_dirs`.
    pub fn backup_dirs(&self) -> Vec<String> {
        let mut dirs = vec![self.machine.host.clone(), String::new()];
        dirs.extend(
            self.machine
                .backup_dirs
                .iter()
                .map(|d| d.get_ref().trim_end_matches('/').to_owned()),
        );
        dirs
    }

    /// The subvolume with `role = "meta"`, which carries the boot backup and the
    /// filesystem record (e.g. myhost-meta), if the spec names one.
    pub fn meta_subvolume(&self) -> Option<&str> {
        self.disks
            .iter()
            .flat_map(|d| &d.partitions)
            .flat_map(|p| &p.subvolumes)
            .find(|s| s.role == Some(SubvolRole::Meta))
            .map(|s| s.name.as_str())
    }

    /// The tag of this machine's restic snapshots, if the spec names one.
    pub fn restic_tag(&self) -> Option<&str> {
        self.restic.as_ref().and_then(|r| r.tag.as_deref())
    }

    /// The spec's disks in ESP order: the preserved disk first (its factory ESP is ESP0,
    /// the one the firmware boots and the mirror copies from), then the others in spec
    /// order. The one answer to "which ESP is ESP0".
    pub fn disks_esp_first(&self) -> Vec<&Disk> {
        let mut disks: Vec<&Disk> = self.disks.iter().collect();
        disks.sort_by_key(|d| !d.preserve);
        disks
    }

    pub fn disk(&self, id: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.id == id)
    }

    /// A place in the spec file, for messages of later stages.
    pub fn at(&self, at: Location) -> String {
        format!("{}:{}:{}", self.file.display(), at.line, at.col)
    }
}

/// The environment variable that names the spec when a command is given none.
pub const SPEC_ENV: &str = "LIFEBOAT_SPEC";
/// The spec on the boot stick's FAT partition (the rescue system mounts it at
/// /run/lifeboat/boot): put a machine's spec there from any computer.
pub const STICK_SPEC: &str = "/run/lifeboat/boot/lifeboat/spec.toml";
/// The spec the rescue image carries (`cargo xtask image` copies the shipped spec from configs/ there).
pub const IMAGE_SPEC: &str = "/etc/lifeboat/spec.toml";

/// The spec of a command that was given none (`lifeboat menu`, `lifeboat esp-sync`):
/// `$LIFEBOAT_SPEC` when set, else the stick's spec when it exists, else the image's.
pub fn default_path(env: Option<std::ffi::OsString>, exists: impl Fn(&Path) -> bool) -> PathBuf {
    match env.filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None if exists(Path::new(STICK_SPEC)) => PathBuf::from(STICK_SPEC),
        None => PathBuf::from(IMAGE_SPEC),
    }
}

/// [`default_path`] on this machine.
pub fn default_path_here() -> PathBuf {
    default_path(std::env::var_os(SPEC_ENV), Path::exists)
}

/// A spec is a few kilobytes of TOML; a file bigger than this is not one (and reading a
/// device or a pipe by mistake must end).
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read spec {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is {kind}, not a spec: a spec is a TOML file (like configs/examples/laptop.toml)", file.display())]
    NotAFile { file: PathBuf, kind: &'static str },
    #[error("{} is {size} bytes, too big for a spec (at most {MAX_SPEC_BYTES}): is it the right file?", file.display())]
    TooBig { file: PathBuf, size: u64 },
    #[error(transparent)]
    Invalid(#[from] SpecError),
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATLANTIS: &str = include_str!("../../configs/atlantis.toml");

    #[test]
    fn default_path_env_then_stick_then_image() {
        let none = |_: &Path| false;
        let stick = |p: &Path| p == Path::new(STICK_SPEC);
        assert_eq!(
            default_path(Some("/x/laptop.toml".into()), stick),
            Path::new("/x/laptop.toml")
        );
        assert_eq!(default_path(Some("".into()), stick), Path::new(STICK_SPEC));
        assert_eq!(default_path(None, stick), Path::new(STICK_SPEC));
        assert_eq!(default_path(None, none), Path::new(IMAGE_SPEC));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text is a spec or one error, never a panic.
        #[test]
        fn any_text_loads_or_is_refused(text in "\\PC{0,300}") {
            let _ = Spec::parse(Path::new("any.toml"), &text);
        }

        /// The real spec with a piece replaced by anything (a typo, a pasted value, a cut
        /// line): every error names a place in the file.
        #[test]
        fn an_edited_spec_loads_or_is_refused(at in 0usize..ATLANTIS.len(), cut in 0usize..40, with in "\\PC{0,12}") {
            let mut start = at;
            while !ATLANTIS.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + cut).min(ATLANTIS.len());
            while !ATLANTIS.is_char_boundary(end) {
                end += 1;
            }
            let text = format!("{}{with}{}", &ATLANTIS[..start], &ATLANTIS[end..]);
            if let Err(e) = Spec::parse(Path::new("atlantis.toml"), &text) {
                proptest::prop_assert!(e.to_string().contains("atlantis.toml"), "{}", e);
            }
        }
    }
}
