//! TOML → validated [`Spec`](super::Spec).
//!
//! serde reads the file (types, unknown fields, sizes); everything serde cannot express is
//! checked here. Every error points at the value that breaks the rule, so a person can jump
//! to `file:line:col` and fix it without reading the code.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::model::{DiskSpec, MatchRules as MatchSpec, PartitionSpec, SpecFile, SubvolumeSpec};
use super::*;
use crate::single_component::NameError;

const MIB: u64 = 1 << 20;
/// GPT stores partition names as 36 UTF-16 code units.
const GPT_NAME_MAX: usize = 36;
/// Characters a FAT short name — and so a FAT volume label — cannot hold.
const FAT_FORBIDDEN: &str = "\"*+,./:;<=>?[\\]|";

pub(super) fn parse(file: &Path, text: &str) -> Result<Spec, SpecError> {
    let raw: SpecFile = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    Checker::new(file, text).spec(raw)
}

/// The 1-based line and column of byte `offset` in `text`; the column counts characters,
/// which is what editors show.
pub(super) fn location(text: &str, offset: usize) -> Location {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location {
        line: before.matches('\n').count() + 1,
        col: before[line_start..].chars().count() + 1,
    }
}

fn toml_error(file: &Path, text: &str, error: &toml::de::Error) -> SpecError {
    let span = error.span();
    SpecError {
        file: file.to_owned(),
        at: location(text, span.as_ref().map_or(0, |s| s.start)),
        message: toml_message(text, span, error.message()),
    }
}

/// One sentence out of what the TOML parser or serde said. Parser messages can span
/// several lines, and serde's say "variant" where a person thinks "value of `fs`".
fn toml_message(text: &str, span: Option<Range<usize>>, message: &str) -> String {
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let at_span = span
        .as_ref()
        .and_then(|s| text.get(s.clone()))
        .unwrap_or("");
    if message.starts_with("missing field") {
        // The span is the table's header, which says which table lacks the field.
        if at_span.starts_with('[') {
            return format!("{message} in {}", at_span.trim());
        }
        if message == "missing field `machine`" {
            return format!("{message}: the file needs a [machine] table with name and host");
        }
    }
    if message == "duplicate key" && !at_span.is_empty() {
        return format!("duplicate key `{}`", at_span.trim());
    }
    let key = span.and_then(|s| key_before(text, s.start));
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match key {
            Some(key) => format!("unknown {key} {rest}"),
            None => format!("unknown value {rest}"),
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return match key {
            Some(key) => format!("wrong type for {key}: {rest}"),
            None => format!("wrong type: {rest}"),
        };
    }
    if let (Some(key), true) = (&key, message.starts_with("size ")) {
        if key != "size" {
            return format!("{key}: {message}");
        }
    }
    message
}

/// The key of `key = value` when `offset` is where the value starts.
fn key_before(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let key = line.trim_end().strip_suffix('=')?.trim();
    let key = key
        .rsplit(['.', '{', ',', ' '])
        .next()?
        .trim_matches(['"', '\'']);
    (!key.is_empty()).then(|| key.to_owned())
}

/// A mount point or label already taken, and by whom (for the duplicate message).
struct Claim {
    at: Location,
    who: String,
    /// Root subvolumes all mount at `/`, each in its own distro: they may share it.
    root_subvolume: bool,
}

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    /// Keyed by the upper-cased label.
    labels: HashMap<String, Claim>,
    mounts: HashMap<String, Claim>,
    /// Where `role = "backup"` and `role = "meta"` were given: each at most once.
    backup_role: Option<Location>,
    meta_role: Option<Location>,
}

impl<'a> Checker<'a> {
    fn new(file: &'a Path, text: &'a str) -> Self {
        Checker {
            file,
            text,
            labels: HashMap::new(),
            mounts: HashMap::new(),
            backup_role: None,
            meta_role: None,
        }
    }

    fn at(&self, span: Range<usize>) -> Location {
        location(self.text, span.start)
    }

    fn err(&self, span: Range<usize>, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_owned(),
            at: self.at(span),
            message: message.into(),
        }
    }

    fn spec(mut self, raw: SpecFile) -> Result<Spec, SpecError> {
        if raw.disks.is_empty() {
            return Err(self.err(
                0..0,
                "the spec describes no disk: add at least one [[disk]] table",
            ));
        }
        // The host names a directory on the backup drive (`<host>/`, `raw-snapshots/<host>/`).
        if let Err(why) = crate::single_component::check(&raw.machine.host) {
            return Err(self.err(
                host_span(self.text),
                format!(
                    "host \"{}\" {why}: it names one directory on the backup drive, like \"myhost\"",
                    raw.machine.host.escape_debug()
                ),
            ));
        }
        for dir in &raw.machine.backup_dirs {
            let text = dir.get_ref();
            let bad = text.is_empty()
                || text.starts_with('/')
                || text.split('/').any(|part| part == ".." || part == ".");
            if bad {
                return Err(self.err(
                    dir.span(),
                    format!(
                        "backup_dirs entry \"{text}\" must be a directory on the backup drive \
                         relative to its top, like \"old-host\" (no leading /, no . or ..)"
                    ),
                ));
            }
        }
        let mut ids: HashMap<String, Location> = HashMap::new();
        let mut disks = Vec::with_capacity(raw.disks.len());
        for disk in raw.disks {
            disks.push(self.disk(disk, &mut ids)?);
        }
        if let Some(restic) = &raw.restic {
            let subvols: Vec<&str> = disks
                .iter()
                .flat_map(|d| &d.partitions)
                .flat_map(|p| &p.subvolumes)
                .map(|s| s.name.as_str())
                .collect();
            for (path, subvol) in &restic.paths {
                if !path.starts_with('/') {
                    return Err(self.err(
                        subvol.span(),
                        format!("restic path \"{path}\" must be absolute (as restic backed it up)"),
                    ));
                }
                if !subvols.contains(&subvol.get_ref().as_str()) {
                    return Err(self.err(
                        subvol.span(),
                        format!(
                            "restic path \"{path}\" maps to \"{}\", which is not a subvolume of \
                             the spec (subvolumes: {})",
                            subvol.get_ref(),
                            subvols.join(", ")
                        ),
                    ));
                }
            }
        }
        let drill = self.drill(raw.drill)?;
        let health = self.health(raw.health)?;
        let alerts = match raw.alerts {
            None => Vec::new(),
            Some(a) => {
                let argv = a.command.get_ref();
                if !argv.first().is_some_and(|p| p.starts_with('/')) {
                    return Err(self.err(
                        a.command.span(),
                        "alerts command must be a list whose first item is the program's \
                         absolute path, like [\"/usr/local/bin/notify\", \"--to\", \"me\"]",
                    ));
                }
                argv.clone()
            }
        };
        Ok(Spec {
            file: self.file.to_owned(),
            machine: raw.machine,
            disks,
            restic: raw.restic,
            drill,
            health,
            alerts,
        })
    }

    fn health(&self, raw: Option<super::model::HealthFile>) -> Result<super::Health, SpecError> {
        let mut h = super::Health::default();
        let Some(raw) = raw else {
            return Ok(h);
        };
        let fields = [
            (
                "usb_max_age_days",
                raw.usb_max_age_days,
                1..=3650,
                &mut h.usb_max_age_days,
            ),
            (
                "restic_max_age_days",
                raw.restic_max_age_days,
                1..=3650,
                &mut h.restic_max_age_days,
            ),
            (
                "drill_max_age_days",
                raw.drill_max_age_days,
                1..=3650,
                &mut h.drill_max_age_days,
            ),
            (
                "fill_max_percent",
                raw.fill_max_percent,
                1..=100,
                &mut h.fill_max_percent,
            ),
        ];
        for (name, value, range, into) in fields {
            if let Some(v) = value {
                let n = *v.get_ref();
                if !range.contains(&n) {
                    return Err(self.err(
                        v.span(),
                        format!(
                            "health {name} {n} must be between {} and {}",
                            range.start(),
                            range.end()
                        ),
                    ));
                }
                *into = n as u32;
            }
        }
        Ok(h)
    }

    fn drill(&self, raw: Option<super::model::DrillFile>) -> Result<super::Drill, SpecError> {
        let mut drill = super::Drill::default();
        let Some(raw) = raw else {
            return Ok(drill);
        };
        if let Some(expect) = raw.expect {
            let text = expect.get_ref();
            if text.trim().is_empty() || text.contains('\n') {
                return Err(self.err(
                    expect.span(),
                    "drill expect must be the text of one console line (not empty, no newline)",
                ));
            }
            drill.expect = vec![text.clone()];
        }
        if let Some(t) = raw.timeout_secs {
            let secs = *t.get_ref();
            if !(1..=86_400).contains(&secs) {
                return Err(self.err(
                    t.span(),
                    format!("drill timeout_secs {secs} must be between 1 and 86400 (a day)"),
                ));
            }
            drill.timeout_secs = secs as u64;
        }
        Ok(drill)
    }

    fn disk(
        &mut self,
        d: DiskSpec,
        ids: &mut HashMap<String, Location>,
    ) -> Result<Disk, SpecError> {
        let id = d.id.get_ref().clone();
        let id_span = d.id.span();
        if id.is_empty() {
            return Err(self.err(id_span, "disk id must not be empty"));
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(self.err(
                id_span,
                format!("disk id \"{id}\" may only contain a-z, 0-9, '_' and '-'"),
            ));
        }
        if let Some(first) = ids.get(&id) {
            return Err(self.err(
                id_span,
                format!("disk id \"{id}\" is used twice (first at {})", pos(*first)),
            ));
        }
        ids.insert(id.clone(), self.at(id_span.clone()));

        let wipe = d.wipe.as_ref().is_some_and(|w| *w.get_ref());
        if let (true, Some(w)) = (d.preserve && wipe, &d.wipe) {
            return Err(self.err(
                w.span(),
                format!(
                    "{id}: preserve = true and wipe = true contradict each other: a preserved disk is never written"
                ),
            ));
        }

        let match_rules = self.match_rules(&id, &d.match_rules)?;
        let partitions = self.partitions(&id, d.partitions, match_rules.min_size)?;

        Ok(Disk {
            at: self.at(id_span),
            id,
            description: d.description,
            preserve: d.preserve,
            wipe,
            match_rules,
            partitions,
        })
    }

    fn match_rules(&self, id: &str, m: &MatchSpec) -> Result<MatchRules, SpecError> {
        for (field, value) in [("serial", &m.serial), ("wwn", &m.wwn)] {
            if let Some(v) = value.as_ref().filter(|v| v.get_ref().trim().is_empty()) {
                return Err(self.err(
                    v.span(),
                    format!("{id}: match.{field} is empty: give the value `lifeboat disks` prints, or leave it out"),
                ));
            }
        }
        let bytes = |field: &str, size: &Option<Spanned<SizeSpec>>| match size {
            None => Ok(None),
            Some(s) => match s.get_ref() {
                SizeSpec::Bytes(b) => Ok(Some(*b)),
                SizeSpec::Rest => Err(self.err(
                    s.span(),
                    format!("{id}: match.{field} must be a size such as \"480GB\", not \"rest\""),
                )),
            },
        };
        let min_size = bytes("min_size", &m.min_size)?;
        let max_size = bytes("max_size", &m.max_size)?;
        if let (Some(min), Some(max), Some(span)) = (min_size, max_size, &m.min_size) {
            if min > max {
                return Err(self.err(
                    span.span(),
                    format!(
                        "{id}: match.min_size ({}) is larger than match.max_size ({})",
                        human(min),
                        human(max)
                    ),
                ));
            }
        }
        Ok(MatchRules {
            serial: m.serial.as_ref().map(|s| s.get_ref().clone()),
            wwn: m.wwn.as_ref().map(|s| s.get_ref().clone()),
            min_size,
            max_size,
        })
    }

    /// The layout rules of one disk (names, `rest`, fitting in the smallest matching
    /// disk), then each partition's own rules.
    fn partitions(
        &mut self,
        id: &str,
        parts: Vec<PartitionSpec>,
        min_size: Option<u64>,
    ) -> Result<Vec<Partition>, SpecError> {
        let rest_at: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| *p.size.get_ref() == SizeSpec::Rest)
            .map(|(i, _)| i)
            .collect();
        let last = parts.len().saturating_sub(1);
        let mut names: HashMap<String, Location> = HashMap::new();
        let sizes: Vec<SizeSpec> = parts.iter().map(|p| *p.size.get_ref()).collect();
        let mut out = Vec::with_capacity(parts.len());
        for (i, p) in parts.into_iter().enumerate() {
            let name = p.name.get_ref().clone();
            let name_span = p.name.span();
            if name.is_empty() {
                return Err(self.err(name_span, format!("{id}: partition name must not be empty")));
            }
            let units = name.encode_utf16().count();
            if units > GPT_NAME_MAX {
                return Err(self.err(
                    name_span,
                    format!(
                        "{id}, partition \"{name}\": the name is {units} UTF-16 units long; GPT allows {GPT_NAME_MAX}"
                    ),
                ));
            }
            if let Some(first) = names.get(&name) {
                return Err(self.err(
                    name_span,
                    format!(
                        "{id}: partition name \"{name}\" is used twice (first at {})",
                        pos(*first)
                    ),
                ));
            }
            names.insert(name.clone(), self.at(name_span));

            let size_span = p.size.span();
            match *p.size.get_ref() {
                SizeSpec::Rest => {
                    if rest_at.first().is_some_and(|&first| first < i) {
                        return Err(self.err(
                            size_span,
                            format!(
                                "{id}, partition \"{name}\": a second partition of size \"rest\"; only one per disk can take the rest"
                            ),
                        ));
                    }
                    if i != last && rest_at.len() == 1 {
                        return Err(self.err(
                            size_span,
                            format!(
                                "{id}, partition \"{name}\": size = \"rest\" must be the last partition of the disk"
                            ),
                        ));
                    }
                }
                SizeSpec::Bytes(_) => {}
            }
            // The partitions so far, laid out on a disk of either sector size.
            let need = fit::min_device_bytes(sizes[..=i].iter().copied());
            if let Some(min) = min_size.filter(|&min| need > min) {
                return Err(self.err(
                    size_span,
                    {
                        // Rounded, the two sizes can read the same: the excess says
                        // how much to take off.
                        let excess = human(need - min);
                        let (need, min) = comparable(need, min);
                        format!(
                            "partitions of {id} need {need} but the disk may be as small as {min} (match.min_size): {excess} too much"
                        )
                    },
                ));
            }
            out.push(self.partition(id, p)?);
        }
        Ok(out)
    }

    fn partition(&mut self, id: &str, p: PartitionSpec) -> Result<Partition, SpecError> {
        let name = p.name.get_ref().clone();
        let who = format!("{id}, partition \"{name}\"");
        let fs = p.fs.as_ref().map(|f| *f.get_ref());
        let encrypt = p
            .encrypt
            .as_ref()
            .map_or(Encryption::None, |e| *e.get_ref());

        let part_type = match &p.part_type {
            None => default_type(fs, encrypt),
            Some(t) => {
                let problem = match (*t.get_ref(), fs) {
                    (PartType::Esp, fs) if fs != Some(FsKind::Vfat) => {
                        Some("an ESP must be FAT32: set fs = \"vfat\"")
                    }
                    (PartType::Swap, fs) if fs != Some(FsKind::Swap) => {
                        Some("type = \"swap\" needs fs = \"swap\"")
                    }
                    (t, Some(FsKind::Swap)) if t != PartType::Swap => {
                        Some("fs = \"swap\" needs type = \"swap\" (or no type)")
                    }
                    (PartType::Luks, _) if encrypt != Encryption::Luks2 => {
                        Some("type = \"luks\" needs encrypt = \"luks2\"")
                    }
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(self.err(t.span(), format!("{who}: {problem}")));
                }
                *t.get_ref()
            }
        };

        if let Some(e) = p
            .encrypt
            .as_ref()
            .filter(|e| *e.get_ref() == Encryption::Luks2)
        {
            if !matches!(fs, Some(FsKind::Ext4 | FsKind::Btrfs)) {
                let found = fs.map_or("no fs".to_owned(), |f| {
                    format!("fs = \"{}\"", f.blkid_type())
                });
                return Err(self.err(
                    e.span(),
                    format!(
                        "{who}: encrypt = \"luks2\" needs fs = \"ext4\" or \"btrfs\" (found {found})"
                    ),
                ));
            }
        }
        if let Some(b) = p.passphrase.as_ref().filter(|b| *b.get_ref()) {
            if p.key_file.is_none() {
                return Err(self.err(
                    b.span(),
                    format!(
                        "{who}: passphrase = true adds a passphrase beside a key_file; \
                         without key_file the passphrase is the only key already"
                    ),
                ));
            }
        }
        if let Some(k) = &p.key_file {
            if encrypt != Encryption::Luks2 {
                return Err(self.err(
                    k.span(),
                    format!("{who}: key_file only applies with encrypt = \"luks2\""),
                ));
            }
            if !k.get_ref().starts_with('/') {
                return Err(self.err(
                    k.span(),
                    format!(
                        "{who}: key_file \"{}\" must be an absolute path",
                        k.get_ref()
                    ),
                ));
            }
        }

        if let Some(label) = &p.label {
            self.label(&who, fs, label)?;
        }
        if let Some(role) = &p.role {
            if fs != Some(FsKind::Btrfs) {
                return Err(self.err(
                    role.span(),
                    format!(
                        "{who}: role = \"backup\" needs fs = \"btrfs\" (the backups are \
                         received there with btrfs receive)"
                    ),
                ));
            }
            if let Some(first) = self.backup_role {
                return Err(self.err(
                    role.span(),
                    format!(
                        "{who}: role = \"backup\" is given twice (first at {}): one partition \
                         holds the backups",
                        pos(first)
                    ),
                ));
            }
            self.backup_role = Some(self.at(role.span()));
        }

        if let Some(m) = &p.mount {
            match fs {
                None => {
                    return Err(self.err(
                        m.span(),
                        format!(
                            "{who}: mount \"{}\" needs a filesystem: set fs",
                            m.get_ref()
                        ),
                    ))
                }
                Some(FsKind::Swap) => {
                    return Err(self.err(
                        m.span(),
                        format!("{who}: a swap partition has no mount point: remove mount"),
                    ))
                }
                Some(_) => {}
            }
            self.mount_path(&who, m)?;
            self.claim_mount(&who, m.get_ref(), m.span(), false)?;
        }
        self.mount_options(&who, &p.mount_options)?;

        let quotas = p.quotas.as_ref().is_some_and(|q| *q.get_ref());
        if let (true, Some(q)) = (quotas && fs != Some(FsKind::Btrfs), &p.quotas) {
            return Err(self.err(
                q.span(),
                format!("{who}: quotas = true needs fs = \"btrfs\""),
            ));
        }

        if let (Some(first), false) = (p.subvolumes.first(), fs == Some(FsKind::Btrfs)) {
            return Err(self.err(
                first.name.span(),
                format!("{who}: subvolumes need fs = \"btrfs\""),
            ));
        }
        let mut subvolume_names: HashMap<String, Location> = HashMap::new();
        let mut subvolumes = Vec::with_capacity(p.subvolumes.len());
        for sv in p.subvolumes {
            subvolumes.push(self.subvolume(&who, sv, &mut subvolume_names)?);
        }

        Ok(Partition {
            name,
            at: self.at(p.name.span()),
            size: *p.size.get_ref(),
            part_type,
            fs,
            label: p.label.map(Spanned::into_inner),
            mount: p.mount.map(Spanned::into_inner),
            mount_options: p
                .mount_options
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            encrypt,
            key_file: p.key_file.map(|k| PathBuf::from(k.into_inner())),
            passphrase: p.passphrase.is_some_and(|b| *b.get_ref()),
            quotas,
            role: p.role.map(Spanned::into_inner),
            subvolumes,
        })
    }

    fn label(
        &mut self,
        who: &str,
        fs: Option<FsKind>,
        label: &Spanned<String>,
    ) -> Result<(), SpecError> {
        let text = label.get_ref();
        let span = label.span();
        let Some(fs) = fs else {
            return Err(self.err(
                span,
                format!("{who}: label \"{text}\" needs a filesystem: set fs"),
            ));
        };
        if text.is_empty() {
            return Err(self.err(
                span,
                format!("{who}: label must not be empty (leave label out for none)"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(self.err(
                span,
                format!("{who}: label {text:?} contains a control character"),
            ));
        }
        if fs == FsKind::Vfat {
            if !text.is_ascii() {
                return Err(self.err(
                    span,
                    format!("{who}: FAT label \"{text}\" must be plain ASCII"),
                ));
            }
            if let Some(c) = text.chars().find(|c| FAT_FORBIDDEN.contains(*c)) {
                return Err(self.err(
                    span,
                    format!(
                        "{who}: FAT label \"{text}\" cannot contain '{c}' (FAT labels cannot hold any of {FAT_FORBIDDEN})"
                    ),
                ));
            }
        }
        let (length, max, unit) = match fs {
            FsKind::Vfat => (text.len(), 11, "bytes"),
            FsKind::Ext4 => (text.len(), 16, "bytes"),
            FsKind::Swap => (text.len(), 15, "bytes"),
            FsKind::Btrfs => (text.len(), 255, "bytes"),
            FsKind::Ntfs => (text.encode_utf16().count(), 128, "UTF-16 units"),
        };
        if length > max {
            return Err(self.err(
                span,
                format!("{who}: label \"{text}\" is {length} {unit} long; {fs} allows {max}"),
            ));
        }
        // FAT keeps labels upper case and people read labels without minding case:
        // two labels that differ only in case are one label.
        let key = text.to_uppercase();
        if let Some(first) = self.labels.get(&key) {
            return Err(self.err(
                span,
                format!(
                    "{who}: label \"{text}\" is already used by {} (at {})",
                    first.who,
                    pos(first.at)
                ),
            ));
        }
        let claim = Claim {
            at: self.at(span),
            who: who.to_owned(),
            root_subvolume: false,
        };
        self.labels.insert(key, claim);
        Ok(())
    }

    fn mount_path(&self, who: &str, mount: &Spanned<String>) -> Result<(), SpecError> {
        let m = mount.get_ref();
        let problem = if !m.starts_with('/') {
            Some("must be an absolute path")
        } else if m.len() > 1 && m.ends_with('/') {
            Some("must not end with '/'")
        } else if m.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("cannot contain whitespace (fstab separates fields with it)")
        } else if m != "/"
            && m[1..]
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            Some("must be a plain path (no \"//\", \".\" or \"..\")")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(self.err(
                mount.span(),
                format!("{who}: mount point \"{m}\" {problem}"),
            )),
            None => Ok(()),
        }
    }

    fn claim_mount(
        &mut self,
        who: &str,
        mount: &str,
        span: Range<usize>,
        root_subvolume: bool,
    ) -> Result<(), SpecError> {
        if let Some(first) = self.mounts.get(mount) {
            if root_subvolume && first.root_subvolume {
                return Ok(());
            }
            return Err(self.err(
                span,
                format!(
                    "{who}: mount point \"{mount}\" is already used by {} (at {})",
                    first.who,
                    pos(first.at)
                ),
            ));
        }
        let claim = Claim {
            at: self.at(span),
            who: who.to_owned(),
            root_subvolume,
        };
        self.mounts.insert(mount.to_owned(), claim);
        Ok(())
    }

    fn mount_options(&self, who: &str, options: &[Spanned<String>]) -> Result<(), SpecError> {
        for o in options {
            let text = o.get_ref();
            let problem = if text.is_empty() {
                "mount_options has an empty entry".to_owned()
            } else if text.contains(',') {
                format!(
                    "mount option \"{text}\" contains a comma: write each option as its own list entry"
                )
            } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                format!("mount option \"{text}\" contains whitespace")
            } else if let Some(why) = bad_compress(text) {
                // A restore mounts the pool with it to receive: a typo found then would
                // stop the restore after provisioning wrote the disks.
                format!("mount option \"{text}\": {why}")
            } else {
                continue;
            };
            return Err(self.err(o.span(), format!("{who}: {problem}")));
        }
        Ok(())
    }

    fn subvolume(
        &mut self,
        partition: &str,
        sv: SubvolumeSpec,
        names: &mut HashMap<String, Location>,
    ) -> Result<Subvolume, SpecError> {
        let name = sv.name.get_ref().clone();
        let span = sv.name.span();
        let problem = match crate::single_component::check(&name) {
            Err(NameError::Empty) => Some("subvolume name must not be empty".to_owned()),
            Err(why @ NameError::Control) => Some(format!("subvolume name {name:?} {why}")),
            Err(why) => Some(format!("subvolume name \"{name}\" {why}")),
            Ok(()) => None,
        };
        let problem = if problem.is_some() {
            problem
        } else {
            names.get(&name).map(|first| {
                format!(
                    "subvolume name \"{name}\" is used twice (first at {})",
                    pos(*first)
                )
            })
        };
        if let Some(problem) = problem {
            return Err(self.err(span, format!("{partition}: {problem}")));
        }
        names.insert(name.clone(), self.at(span.clone()));

        let who = format!("{partition}, subvolume \"{name}\"");
        match (&sv.mount, sv.root) {
            (Some(m), true) if m.get_ref() != "/" => {
                return Err(self.err(
                    m.span(),
                    format!(
                        "{who}: a root subvolume is mounted at / by its own distro: remove mount or set it to \"/\""
                    ),
                ));
            }
            (Some(m), false) if m.get_ref() == "/" => {
                return Err(self.err(
                    m.span(),
                    format!("{who}: mount \"/\" is for root subvolumes: set root = true"),
                ));
            }
            (Some(m), root) => {
                self.mount_path(&who, m)?;
                self.claim_mount(&who, m.get_ref(), m.span(), root)?;
            }
            (None, true) => self.claim_mount(&who, "/", span, true)?,
            (None, false) => {}
        }
        self.mount_options(&who, &sv.mount_options)?;
        if let Some(role) = &sv.role {
            let problem = if sv.root {
                Some("a root subvolume cannot also be role = \"meta\"".to_owned())
            } else {
                self.meta_role.map(|first| {
                    format!(
                        "role = \"meta\" is given twice (first at {}): one subvolume carries \
                         the boot backup",
                        pos(first)
                    )
                })
            };
            if let Some(problem) = problem {
                return Err(self.err(role.span(), format!("{who}: {problem}")));
            }
            self.meta_role = Some(self.at(role.span()));
        }

        Ok(Subvolume {
            name,
            mount: sv.mount.map(Spanned::into_inner),
            root: sv.root,
            distro: sv.distro,
            optional: sv.optional,
            mount_options: sv
                .mount_options
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            role: sv.role.map(Spanned::into_inner),
        })
    }
}

/// The GPT type a partition gets when the spec does not say.
fn default_type(fs: Option<FsKind>, encrypt: Encryption) -> PartType {
    match (fs, encrypt) {
        (Some(FsKind::Swap), _) => PartType::Swap,
        // Windows sees basic-data partitions; a FAT data partition is there to be shared.
        (Some(FsKind::Ntfs | FsKind::Vfat), _) => PartType::Msdata,
        (_, Encryption::Luks2) => PartType::Luks,
        _ => PartType::Linux,
    }
}

/// Two byte counts in the same unit, so "need X but only Y" can be compared at a glance.
/// The unit family follows `min`, the size the person wrote: binary when it is a whole
/// number of MiB, otherwise decimal, the way disk vendors count.
fn comparable(need: u64, min: u64) -> (String, String) {
    if min.is_multiple_of(MIB) {
        return (human(need), human(min));
    }
    let (unit, scale) = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6)]
        .into_iter()
        .find(|(_, scale)| min as f64 >= *scale)
        .unwrap_or(("KB", 1e3));
    let show = |b: u64| format!("{:.2} {unit}", b as f64 / scale);
    (show(need), show(min))
}

/// Where the value of `[machine] host` is (the model keeps the plain string).
fn host_span(text: &str) -> Range<usize> {
    #[derive(serde::Deserialize)]
    struct File {
        machine: HostOnly,
    }
    #[derive(serde::Deserialize)]
    struct HostOnly {
        host: Spanned<String>,
    }
    toml::from_str::<File>(text).map_or(0..0, |f| f.machine.host.span())
}

fn pos(at: Location) -> String {
    format!("line {}, column {}", at.line, at.col)
}

/// What is wrong with a Btrfs `compress=`/`compress-force=` option's value, if anything:
/// `zlib[:1-9]`, `lzo`, `zstd[:-15..15]`, `no` or `none`, as the kernel takes them.
fn bad_compress(option: &str) -> Option<String> {
    let value = option
        .strip_prefix("compress-force=")
        .or_else(|| option.strip_prefix("compress="))?;
    let (algorithm, level) = match value.split_once(':') {
        Some((a, l)) => (a, Some(l)),
        None => (value, None),
    };
    let levels = match algorithm {
        "zlib" => Some(1..=9),
        "zstd" => Some(-15..=15),
        "lzo" | "no" | "none" => None,
        _ => {
            return Some(format!(
                "Btrfs compresses with zlib, lzo or zstd (or no), not \"{algorithm}\""
            ))
        }
    };
    let level = level?;
    match (levels, level.parse::<i32>()) {
        (Some(range), Ok(n)) if range.contains(&n) => None,
        (Some(range), _) => Some(format!(
            "{algorithm} takes a level from {} to {}, not \"{level}\"",
            range.start(),
            range.end()
        )),
        (None, _) => Some(format!("{algorithm} takes no level")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[machine]\nname = \"T\"\nhost = \"t\"\n";

    /// `body` after the three-line [machine] table, so its first line is line 4. Leading
    /// indentation is dropped (TOML ignores it) so the columns in the expectations are
    /// those of the unindented text.
    fn text(body: &str) -> String {
        let mut t = String::from(HEAD);
        for line in body.strip_prefix('\n').unwrap_or(body).lines() {
            t.push_str(line.trim_start());
            t.push('\n');
        }
        t
    }

    fn parse_text(t: &str) -> Result<Spec, SpecError> {
        Spec::parse(Path::new("t.toml"), t)
    }

    fn ok(body: &str) -> Spec {
        match parse_text(&text(body)) {
            Ok(spec) => spec,
            Err(e) => panic!("expected a valid spec, got {e}"),
        }
    }

    fn error(body: &str) -> String {
        match parse_text(&text(body)) {
            Ok(_) => panic!("expected an error for:\n{body}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn atlantis_parses() {
        let spec = match Spec::parse(
            Path::new("configs/atlantis.toml"),
            include_str!("../../configs/atlantis.toml"),
        ) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(spec.machine.name, "Atlantis");
        assert_eq!(spec.machine.host, "atlantis");
        let ids: Vec<&str> = spec.disks.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["disk0", "disk1", "usb"]);

        let disk0 = &spec.disks[0];
        assert!(disk0.preserve && !disk0.wipe);
        assert_eq!(disk0.at, Location { line: 16, col: 6 });
        assert_eq!(disk0.match_rules.serial.as_deref(), Some("ATLANTIS-DISK0"));
        assert_eq!(disk0.match_rules.min_size, Some(480_000_000_000));
        assert_eq!(disk0.match_rules.max_size, Some(560_000_000_000));
        assert_eq!(disk0.partitions.len(), 2);
        assert_eq!(disk0.partitions[0].part_type, PartType::Esp);
        assert_eq!(disk0.partitions[0].label.as_deref(), Some("ESP0"));
        assert_eq!(disk0.partitions[0].at, Location { line: 26, col: 8 });
        assert_eq!(disk0.partitions[1].size, SizeSpec::Rest);
        assert_eq!(disk0.partitions[1].fs, Some(FsKind::Ntfs));

        let disk1 = spec.disk("disk1").unwrap();
        assert!(!disk1.preserve);
        assert_eq!(disk1.match_rules.min_size, Some(1_900_000_000_000));
        let names: Vec<&str> = disk1.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ESP1", "boot", "swap", "LINPOOL"]);
        let types: Vec<PartType> = disk1.partitions.iter().map(|p| p.part_type).collect();
        assert_eq!(
            types,
            [
                PartType::Esp,
                PartType::Linux,
                PartType::Swap,
                PartType::Linux
            ]
        );
        assert_eq!(disk1.partitions[0].mount_options, ["umask=0077", "nofail"]);
        assert_eq!(disk1.partitions[2].size, SizeSpec::Bytes(64 << 30));
        let pool = &disk1.partitions[3];
        assert_eq!(pool.fs, Some(FsKind::Btrfs));
        assert_eq!(pool.encrypt, Encryption::None);
        assert!(!pool.quotas);
        assert_eq!(pool.subvolumes.len(), 6);
        let roots: Vec<&str> = pool
            .subvolumes
            .iter()
            .filter(|s| s.root)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(roots, ["@rootTW", "@rootF41", "@rootNobara"]);
        assert!(pool.subvolumes[2].optional);
        assert_eq!(pool.subvolumes[3].mount.as_deref(), Some("/home"));

        let usb = spec.disk("usb").unwrap();
        assert_eq!(usb.partitions.len(), 3);
        assert_eq!(usb.partitions[0].part_type, PartType::Msdata);
        assert_eq!(usb.partitions[0].size, SizeSpec::Bytes(1_000_000_000_000));
        assert_eq!(usb.partitions[2].label.as_deref(), Some("LINBKUP"));
        assert_eq!(usb.partitions[2].role, Some(PartRole::Backup));
        assert_eq!(spec.meta_subvolume(), Some("Atlantis-meta"));
        let backup_roles = spec
            .disks
            .iter()
            .flat_map(|d| &d.partitions)
            .filter(|p| p.role.is_some())
            .count();
        assert_eq!(backup_roles, 1);
    }

    #[test]
    fn laptop_example_parses() {
        let spec = match Spec::parse(
            Path::new("configs/examples/laptop.toml"),
            include_str!("../../configs/examples/laptop.toml"),
        ) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(spec.machine.host, "lark");
        let ids: Vec<&str> = spec.disks.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["nvme", "backup"]);
        let pool = &spec.disks[0].partitions[3];
        assert_eq!(pool.encrypt, Encryption::Luks2);
        assert_eq!(pool.part_type, PartType::Luks);
        assert_eq!(spec.meta_subvolume(), Some("@lark-meta"));
        let backup = &spec.disks[1].partitions[0];
        assert_eq!(backup.role, Some(PartRole::Backup));
        assert_eq!(backup.label.as_deref(), Some("LARKBK"));
        assert_eq!(spec.restic_tag(), Some("lark-daily"));
    }

    /// The annotated example in the spec reference must stay a valid spec.
    #[test]
    fn reference_example_parses() {
        let doc = include_str!("../../docs/spec.md");
        let example = doc
            .split_once("```toml\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .map(|(toml, _)| toml);
        let Some(example) = example else {
            panic!("docs/spec.md has no ```toml example");
        };
        let spec = match Spec::parse(Path::new("docs/spec.md"), example) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        let disk = &spec.disks[0];
        let types: Vec<PartType> = disk.partitions.iter().map(|p| p.part_type).collect();
        assert_eq!(types, [PartType::Esp, PartType::Swap, PartType::Linux]);
        assert_eq!(disk.partitions[2].subvolumes.len(), 2);
    }

    #[test]
    fn types_default_from_fs_and_encryption() {
        let spec = ok(r#"
            [[disk]]
            id = "d"
            [[disk.partition]]
            name = "shared"
            size = "1GiB"
            fs = "vfat"
            [[disk.partition]]
            name = "secret"
            size = "1GiB"
            fs = "ext4"
            encrypt = "luks2"
            key_file = "/root/secret.key"
            [[disk.partition]]
            name = "raw"
            size = "rest"
        "#);
        let p = &spec.disks[0].partitions;
        assert_eq!(p[0].part_type, PartType::Msdata);
        assert_eq!(p[1].part_type, PartType::Luks);
        assert_eq!(p[1].encrypt, Encryption::Luks2);
        assert_eq!(p[1].key_file, Some(PathBuf::from("/root/secret.key")));
        assert_eq!(p[2].part_type, PartType::Linux);
        assert_eq!(p[2].fs, None);
    }

    #[test]
    fn root_subvolumes_share_slash() {
        let spec = ok(r#"
            [[disk]]
            id = "d"
            [[disk.partition]]
            name = "pool"
            size = "rest"
            fs = "btrfs"
            quotas = true
            [[disk.partition.subvolume]]
            name = "@a"
            root = true
            mount = "/"
            [[disk.partition.subvolume]]
            name = "@b"
            root = true
        "#);
        assert!(spec.disks[0].partitions[0].quotas);
        assert_eq!(spec.disks[0].partitions[0].subvolumes.len(), 2);
    }

    #[test]
    fn sizes_fit_exactly_after_alignment() {
        // 97MB → 93 MiB, 4MB → 4 MiB, 1MB → 1 MiB once aligned: with the 2 MiB of GPT
        // that is exactly 100 MiB.
        ok(r#"
            [[disk]]
            id = "d"
            [disk.match]
            min_size = "100MiB"
            [[disk.partition]]
            name = "a"
            size = "97MB"
            [[disk.partition]]
            name = "b"
            size = "4MB"
            [[disk.partition]]
            name = "c"
            size = "1MB"
        "#);
    }

    #[test]
    fn location_counts_characters() {
        let t = "ab\nüé = 1\r\nx";
        assert_eq!(location(t, 0), Location { line: 1, col: 1 });
        assert_eq!(location(t, 3), Location { line: 2, col: 1 });
        // "üé" is four bytes but two characters.
        assert_eq!(location(t, 7), Location { line: 2, col: 3 });
        assert_eq!(location(t, t.len() - 1), Location { line: 3, col: 1 });
        // Past the end or inside a character: clamp, do not panic.
        assert_eq!(location(t, 999), Location { line: 3, col: 2 });
        assert_eq!(location(t, 4), Location { line: 2, col: 1 });
    }

    // ---- TOML and serde errors

    #[test]
    fn toml_syntax_error() {
        assert_eq!(
            error("[[disk]\nid = \"a\"\n"),
            "t.toml:4:8: unclosed array table, expected `]`"
        );
    }

    #[test]
    fn toml_unquoted_string() {
        assert_eq!(
            error("[[disk]]\nid = a\n"),
            "t.toml:5:6: string values must be quoted, expected literal string"
        );
    }

    #[test]
    fn toml_duplicate_key() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\nid = \"b\"\n"),
            "t.toml:6:1: duplicate key `id`"
        );
    }

    #[test]
    fn unknown_field() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\nsize = \"1GiB\"\n"),
            "t.toml:6:1: unknown field `size`, expected one of `id`, `description`, `preserve`, `wipe`, `match`, `partition`"
        );
    }

    #[test]
    fn unknown_match_field() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\n[disk.match]\nserail = \"X\"\n"),
            "t.toml:7:1: unknown field `serail`, expected one of `serial`, `wwn`, `min_size`, `max_size`"
        );
    }

    #[test]
    fn unknown_fs() {
        assert_eq!(
            error(
                r#"
                [[disk]]
                id = "a"
                [[disk.partition]]
                name = "x"
                size = "1GiB"
                fs = "xfs"
            "#
            ),
            "t.toml:9:6: unknown fs `xfs`, expected one of `vfat`, `ext4`, `btrfs`, `ntfs`, `swap`"
        );
    }

    #[test]
    fn bad_size() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "a"
                [[disk.partition]]
                name = "x"
                size = "12XB"
            "#),
            "t.toml:8:8: size \"12XB\" is not a size: write a number with a unit such as \"512MiB\", \"64GiB\", \"1TB\", or \"rest\""
        );
    }

    #[test]
    fn negative_size() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\n[[disk.partition]]\nname = \"x\"\nsize = -5\n"),
            "t.toml:8:8: size -5 is negative"
        );
    }

    #[test]
    fn size_of_wrong_type() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\n[disk.match]\nmin_size = true\n"),
            "t.toml:7:12: wrong type for min_size: boolean `true`, expected a size such as \"512MiB\", \"1TB\" or \"rest\", or a number of bytes"
        );
    }

    #[test]
    fn missing_partition_name() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\n[[disk.partition]]\nsize = \"1GiB\"\n"),
            "t.toml:6:1: missing field `name` in [[disk.partition]]"
        );
    }

    #[test]
    fn wrong_type() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\npreserve = \"yes\"\n"),
            "t.toml:6:12: wrong type for preserve: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn restic_paths_name_subvolumes() {
        let disk = "[[disk]]\nid = \"a\"\n[[disk.partition]]\nname = \"p\"\nsize = \"rest\"\n\
                    fs = \"btrfs\"\n[[disk.partition.subvolume]]\nname = \"@home\"\n";
        assert_eq!(
            error(&format!(
                "{disk}[restic]\n[restic.paths]\n\"/home\" = \"@hom\"\n"
            )),
            "t.toml:14:11: restic path \"/home\" maps to \"@hom\", which is not a subvolume of \
             the spec (subvolumes: @home)"
        );
        assert_eq!(
            error(&format!(
                "{disk}[restic]\n[restic.paths]\n\"home\" = \"@home\"\n"
            )),
            "t.toml:14:10: restic path \"home\" must be absolute (as restic backed it up)"
        );
    }

    #[test]
    fn drill_section_has_defaults_and_checked_values() {
        let disk = "[[disk]]\nid = \"d\"\n[[disk.partition]]\nname = \"p\"\nsize = \"1GiB\"\n";
        let spec = ok(disk);
        assert_eq!(spec.drill, crate::spec::Drill::default());
        let spec = ok(&format!(
            "{disk}[drill]\nexpect = \"ATLANTIS-HOME-SHA256\"\ntimeout_secs = 90\n"
        ));
        assert_eq!(spec.drill.expect, vec!["ATLANTIS-HOME-SHA256".to_owned()]);
        assert_eq!(spec.drill.timeout_secs, 90);
        let e = error(&format!("{disk}[drill]\ntimeout_secs = 0\n"));
        assert_eq!(
            e,
            "t.toml:10:16: drill timeout_secs 0 must be between 1 and 86400 (a day)"
        );
        let e = error(&format!("{disk}[drill]\nexpect = \"  \"\n"));
        assert!(
            e.contains("drill expect must be the text of one console line"),
            "{e}"
        );
        let e = error(&format!("{disk}[drill]\nexpct = \"x\"\n"));
        assert!(e.contains("expct"), "{e}");
    }

    #[test]
    fn health_thresholds_have_defaults_and_checked_values() {
        let disk = "[[disk]]\nid = \"d\"\n[[disk.partition]]\nname = \"p\"\nsize = \"1GiB\"\n";
        assert_eq!(ok(disk).health, crate::spec::Health::default());
        assert_eq!(ok(disk).health.usb_max_age_days, 7);
        let h = ok(&format!(
            "{disk}[health]\nusb_max_age_days = 2\nfill_max_percent = 90\n"
        ))
        .health;
        assert_eq!(
            (h.usb_max_age_days, h.fill_max_percent, h.drill_max_age_days),
            (2, 90, 35)
        );
        assert_eq!(
            error(&format!("{disk}[health]\nfill_max_percent = 101\n")),
            "t.toml:10:20: health fill_max_percent 101 must be between 1 and 100"
        );
    }

    #[test]
    fn alerts_command_is_an_absolute_program_with_arguments() {
        let disk = "[[disk]]\nid = \"d\"\n[[disk.partition]]\nname = \"p\"\nsize = \"1GiB\"\n";
        assert!(ok(disk).alerts.is_empty());
        let s = ok(&format!(
            "{disk}[alerts]\ncommand = [\"/usr/bin/notify\", \"--to\", \"me\"]\n"
        ));
        assert_eq!(s.alerts, vec!["/usr/bin/notify", "--to", "me"]);
        let e = error(&format!("{disk}[alerts]\ncommand = [\"notify\"]\n"));
        assert!(
            e.starts_with("t.toml:10:11: alerts command must be a list"),
            "{e}"
        );
        let e = error(&format!("{disk}[alerts]\ncommand = []\n"));
        assert!(e.starts_with("t.toml:10:11: alerts command"), "{e}");
    }

    #[test]
    fn backup_dirs_are_relative() {
        assert_eq!(
            error("backup_dirs = [\"old\", \"../x\"]\n[[disk]]\nid = \"a\"\n"),
            "t.toml:4:23: backup_dirs entry \"../x\" must be a directory on the backup drive \
             relative to its top, like \"old-host\" (no leading /, no . or ..)"
        );
    }

    #[test]
    fn host_is_one_directory_name() {
        let spec = |host: &str| {
            format!("[machine]\nname = \"T\"\nhost = \"{host}\"\n[[disk]]\nid = \"a\"\n")
        };
        let error = |host: &str| parse_text(&spec(host)).unwrap_err().to_string();
        assert_eq!(
            error("../../x"),
            "t.toml:3:8: host \"../../x\" cannot contain '/': it names one directory on the \
             backup drive, like \"myhost\""
        );
        assert_eq!(
            error("/srv"),
            "t.toml:3:8: host \"/srv\" cannot contain '/': it names one directory on the \
             backup drive, like \"myhost\""
        );
        assert_eq!(
            error(".."),
            "t.toml:3:8: host \"..\" is not a name: it names one directory on the backup \
             drive, like \"myhost\""
        );
        assert!(error("").starts_with("t.toml:3:8: host \"\" is empty"));
    }

    #[test]
    fn missing_machine() {
        assert_eq!(
            parse_text("[[disk]]\nid = \"a\"\n").unwrap_err().to_string(),
            "t.toml:1:1: missing field `machine`: the file needs a [machine] table with name and host"
        );
    }

    // ---- disks

    #[test]
    fn no_disk() {
        assert_eq!(
            parse_text(HEAD).unwrap_err().to_string(),
            "t.toml:1:1: the spec describes no disk: add at least one [[disk]] table"
        );
    }

    #[test]
    fn empty_disk_id() {
        assert_eq!(
            error("[[disk]]\nid = \"\"\n"),
            "t.toml:5:6: disk id must not be empty"
        );
    }

    #[test]
    fn bad_disk_id() {
        assert_eq!(
            error("[[disk]]\nid = \"Disk 1\"\n"),
            "t.toml:5:6: disk id \"Disk 1\" may only contain a-z, 0-9, '_' and '-'"
        );
    }

    #[test]
    fn duplicate_disk_id() {
        assert_eq!(
            error("[[disk]]\nid = \"a\"\n[[disk]]\nid = \"a\"\n"),
            "t.toml:7:6: disk id \"a\" is used twice (first at line 5, column 6)"
        );
    }

    #[test]
    fn preserve_and_wipe() {
        assert_eq!(
            error("[[disk]]\nid = \"disk0\"\npreserve = true\nwipe = true\n"),
            "t.toml:7:8: disk0: preserve = true and wipe = true contradict each other: a preserved disk is never written"
        );
    }

    #[test]
    fn match_size_rest() {
        assert_eq!(
            error("[[disk]]\nid = \"disk1\"\n[disk.match]\nmin_size = \"rest\"\n"),
            "t.toml:7:12: disk1: match.min_size must be a size such as \"480GB\", not \"rest\""
        );
    }

    #[test]
    fn match_min_above_max() {
        assert_eq!(
            error(
                r#"
                [[disk]]
                id = "disk1"
                [disk.match]
                min_size = "2TB"
                max_size = "1TB"
            "#
            ),
            "t.toml:7:12: disk1: match.min_size (2.00 TB) is larger than match.max_size (1.00 TB)"
        );
    }

    #[test]
    fn match_serial_empty() {
        assert_eq!(
            error("[[disk]]\nid = \"disk1\"\n[disk.match]\nserial = \" \"\n"),
            "t.toml:7:10: disk1: match.serial is empty: give the value `lifeboat disks` prints, or leave it out"
        );
    }

    // ---- partition layout

    #[test]
    fn empty_partition_name() {
        assert_eq!(
            error("[[disk]]\nid = \"disk1\"\n[[disk.partition]]\nname = \"\"\nsize = \"1GiB\"\n"),
            "t.toml:7:8: disk1: partition name must not be empty"
        );
    }

    #[test]
    fn partition_name_too_long_in_utf16() {
        // 36 characters, but the emoji takes two UTF-16 units: 37.
        let name = format!("{}😀", "a".repeat(35));
        assert_eq!(
            error(&format!(
                "[[disk]]\nid = \"disk1\"\n[[disk.partition]]\nname = \"{name}\"\nsize = \"1GiB\"\n"
            )),
            format!(
                "t.toml:7:8: disk1, partition \"{name}\": the name is 37 UTF-16 units long; GPT allows 36"
            )
        );
        let fits = "a".repeat(36);
        ok(&format!(
            "[[disk]]\nid = \"disk1\"\n[[disk.partition]]\nname = \"{fits}\"\nsize = \"1GiB\"\n"
        ));
    }

    #[test]
    fn duplicate_partition_name() {
        assert_eq!(
            error(
                r#"
                [[disk]]
                id = "disk1"
                [[disk.partition]]
                name = "boot"
                size = "1GiB"
                [[disk.partition]]
                name = "boot"
                size = "1GiB"
            "#
            ),
            "t.toml:10:8: disk1: partition name \"boot\" is used twice (first at line 7, column 8)"
        );
    }

    #[test]
    fn two_rest_partitions() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk1"
                [[disk.partition]]
                name = "a"
                size = "rest"
                [[disk.partition]]
                name = "b"
                size = "rest"
            "#),
            "t.toml:11:8: disk1, partition \"b\": a second partition of size \"rest\"; only one per disk can take the rest"
        );
    }

    #[test]
    fn rest_not_last() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk1"
                [[disk.partition]]
                name = "a"
                size = "rest"
                [[disk.partition]]
                name = "b"
                size = "1GiB"
            "#),
            "t.toml:8:8: disk1, partition \"a\": size = \"rest\" must be the last partition of the disk"
        );
    }

    #[test]
    fn partitions_overflow_min_size() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk1"
                [disk.match]
                min_size = "1GiB"
                [[disk.partition]]
                name = "a"
                size = "512MiB"
                [[disk.partition]]
                name = "b"
                size = "512MiB"
            "#),
            "t.toml:13:8: partitions of disk1 need 1026 MiB but the disk may be as small as 1 GiB (match.min_size): 2 MiB too much"
        );
    }

    #[test]
    fn overflow_counts_alignment_and_rest() {
        // Unaligned, these need 99.3 MiB; aligned, 101 MiB.
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk1"
                [disk.match]
                min_size = "100MiB"
                [[disk.partition]]
                name = "a"
                size = "97MB"
                [[disk.partition]]
                name = "b"
                size = "4MB"
                [[disk.partition]]
                name = "c"
                size = "1MB"
                [[disk.partition]]
                name = "d"
                size = "rest"
            "#),
            "t.toml:19:8: partitions of disk1 need 101 MiB but the disk may be as small as 100 MiB (match.min_size): 1 MiB too much"
        );
    }

    #[test]
    fn overflow_message_tells_sizes_apart() {
        // In TB both would read "1.90 TB".
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk1"
                [disk.match]
                min_size = "1900GB"
                [[disk.partition]]
                name = "a"
                size = "1900GB"
            "#),
            "t.toml:10:8: partitions of disk1 need 1.90 TB but the disk may be as small as 1.90 TB (match.min_size): 2.93 MB too much"
        );
    }

    #[test]
    fn preserved_disk_must_fit_too() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk0"
                preserve = true
                [disk.match]
                min_size = "480GB"
                [[disk.partition]]
                name = "C"
                size = "500GB"
            "#),
            "t.toml:11:8: partitions of disk0 need 500.00 GB but the disk may be as small as 480.00 GB (match.min_size): 20.00 GB too much"
        );
    }

    // ---- types, encryption

    fn one_partition(extra: &str) -> String {
        // The partition's own lines start at line 9.
        error(&format!(
            "[[disk]]\nid = \"disk1\"\n[[disk.partition]]\nname = \"x\"\nsize = \"1GiB\"\n{extra}"
        ))
    }

    #[test]
    fn esp_not_fat32() {
        assert_eq!(
            one_partition("type = \"esp\"\nfs = \"ext4\"\n"),
            "t.toml:9:8: disk1, partition \"x\": an ESP must be FAT32: set fs = \"vfat\""
        );
    }

    #[test]
    fn esp_without_fs() {
        assert_eq!(
            one_partition("type = \"esp\"\n"),
            "t.toml:9:8: disk1, partition \"x\": an ESP must be FAT32: set fs = \"vfat\""
        );
    }

    #[test]
    fn swap_type_needs_swap_fs() {
        assert_eq!(
            one_partition("type = \"swap\"\nfs = \"ext4\"\n"),
            "t.toml:9:8: disk1, partition \"x\": type = \"swap\" needs fs = \"swap\""
        );
    }

    #[test]
    fn swap_fs_needs_swap_type() {
        assert_eq!(
            one_partition("type = \"linux\"\nfs = \"swap\"\n"),
            "t.toml:9:8: disk1, partition \"x\": fs = \"swap\" needs type = \"swap\" (or no type)"
        );
    }

    #[test]
    fn luks_type_needs_encryption() {
        assert_eq!(
            one_partition("type = \"luks\"\nfs = \"ext4\"\n"),
            "t.toml:9:8: disk1, partition \"x\": type = \"luks\" needs encrypt = \"luks2\""
        );
    }

    #[test]
    fn luks_on_swap() {
        assert_eq!(
            one_partition("fs = \"swap\"\nencrypt = \"luks2\"\n"),
            "t.toml:10:11: disk1, partition \"x\": encrypt = \"luks2\" needs fs = \"ext4\" or \"btrfs\" (found fs = \"swap\")"
        );
    }

    #[test]
    fn luks_without_fs() {
        assert_eq!(
            one_partition("encrypt = \"luks2\"\n"),
            "t.toml:9:11: disk1, partition \"x\": encrypt = \"luks2\" needs fs = \"ext4\" or \"btrfs\" (found no fs)"
        );
    }

    #[test]
    fn passphrase_without_key_file() {
        assert_eq!(
            one_partition("fs = \"btrfs\"\nencrypt = \"luks2\"\npassphrase = true\n"),
            "t.toml:11:14: disk1, partition \"x\": passphrase = true adds a passphrase beside a key_file; without key_file the passphrase is the only key already"
        );
    }

    #[test]
    fn key_file_without_luks() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nkey_file = \"/root/k\"\n"),
            "t.toml:10:12: disk1, partition \"x\": key_file only applies with encrypt = \"luks2\""
        );
    }

    #[test]
    fn key_file_relative() {
        assert_eq!(
            one_partition("fs = \"btrfs\"\nencrypt = \"luks2\"\nkey_file = \"root/k\"\n"),
            "t.toml:11:12: disk1, partition \"x\": key_file \"root/k\" must be an absolute path"
        );
    }

    // ---- labels

    #[test]
    fn label_without_fs() {
        assert_eq!(
            one_partition("label = \"DATA\"\n"),
            "t.toml:9:9: disk1, partition \"x\": label \"DATA\" needs a filesystem: set fs"
        );
    }

    #[test]
    fn fat_label_too_long() {
        assert_eq!(
            one_partition("fs = \"vfat\"\nlabel = \"ABCDEFGHIJKL\"\n"),
            "t.toml:10:9: disk1, partition \"x\": label \"ABCDEFGHIJKL\" is 12 bytes long; FAT32 allows 11"
        );
    }

    #[test]
    fn fat_label_bad_character() {
        assert_eq!(
            one_partition("fs = \"vfat\"\nlabel = \"efi.sys\"\n"),
            "t.toml:10:9: disk1, partition \"x\": FAT label \"efi.sys\" cannot contain '.' (FAT labels cannot hold any of \"*+,./:;<=>?[\\]|)"
        );
    }

    #[test]
    fn ext4_label_counts_bytes() {
        // 16 characters, 17 bytes.
        assert_eq!(
            one_partition("fs = \"ext4\"\nlabel = \"ÜberlangesLabel1\"\n"),
            "t.toml:10:9: disk1, partition \"x\": label \"ÜberlangesLabel1\" is 17 bytes long; ext4 allows 16"
        );
    }

    #[test]
    fn swap_label_too_long() {
        assert_eq!(
            one_partition("fs = \"swap\"\nlabel = \"SWAPSWAPSWAPSWAP\"\n"),
            "t.toml:10:9: disk1, partition \"x\": label \"SWAPSWAPSWAPSWAP\" is 16 bytes long; swap allows 15"
        );
    }

    #[test]
    fn ntfs_label_too_long() {
        let label = "W".repeat(129);
        assert_eq!(
            one_partition(&format!("fs = \"ntfs\"\nlabel = \"{label}\"\n")),
            format!(
                "t.toml:10:9: disk1, partition \"x\": label \"{label}\" is 129 UTF-16 units long; NTFS allows 128"
            )
        );
    }

    #[test]
    fn empty_label() {
        assert_eq!(
            one_partition("fs = \"btrfs\"\nlabel = \"\"\n"),
            "t.toml:10:9: disk1, partition \"x\": label must not be empty (leave label out for none)"
        );
    }

    #[test]
    fn duplicate_labels_across_disks() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk0"
                [[disk.partition]]
                name = "a"
                size = "1GiB"
                fs = "ext4"
                label = "DATA"
                [[disk]]
                id = "disk1"
                [[disk.partition]]
                name = "b"
                size = "1GiB"
                fs = "btrfs"
                label = "data"
            "#),
            "t.toml:17:9: disk1, partition \"b\": label \"data\" is already used by disk0, partition \"a\" (at line 10, column 9)"
        );
    }

    // ---- mount points and options

    #[test]
    fn mount_not_absolute() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nmount = \"boot\"\n"),
            "t.toml:10:9: disk1, partition \"x\": mount point \"boot\" must be an absolute path"
        );
    }

    #[test]
    fn mount_trailing_slash() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nmount = \"/boot/\"\n"),
            "t.toml:10:9: disk1, partition \"x\": mount point \"/boot/\" must not end with '/'"
        );
    }

    #[test]
    fn mount_dot_dot() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nmount = \"/boot/../etc\"\n"),
            "t.toml:10:9: disk1, partition \"x\": mount point \"/boot/../etc\" must be a plain path (no \"//\", \".\" or \"..\")"
        );
    }

    #[test]
    fn mount_without_fs() {
        assert_eq!(
            one_partition("mount = \"/data\"\n"),
            "t.toml:9:9: disk1, partition \"x\": mount \"/data\" needs a filesystem: set fs"
        );
    }

    #[test]
    fn swap_has_no_mount() {
        assert_eq!(
            one_partition("fs = \"swap\"\nmount = \"/swap\"\n"),
            "t.toml:10:9: disk1, partition \"x\": a swap partition has no mount point: remove mount"
        );
    }

    #[test]
    fn duplicate_mount_points() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk0"
                [[disk.partition]]
                name = "a"
                size = "1GiB"
                fs = "ext4"
                mount = "/home"
                [[disk]]
                id = "disk1"
                [[disk.partition]]
                name = "pool"
                size = "rest"
                fs = "btrfs"
                [[disk.partition.subvolume]]
                name = "@home"
                mount = "/home"
            "#),
            "t.toml:19:9: disk1, partition \"pool\", subvolume \"@home\": mount point \"/home\" is already used by disk0, partition \"a\" (at line 10, column 9)"
        );
    }

    #[test]
    fn slash_partition_and_root_subvolume() {
        assert_eq!(
            error(r#"
                [[disk]]
                id = "disk1"
                [[disk.partition]]
                name = "root"
                size = "10GiB"
                fs = "ext4"
                mount = "/"
                [[disk.partition]]
                name = "pool"
                size = "rest"
                fs = "btrfs"
                [[disk.partition.subvolume]]
                name = "@rootTW"
                root = true
            "#),
            "t.toml:16:8: disk1, partition \"pool\", subvolume \"@rootTW\": mount point \"/\" is already used by disk1, partition \"root\" (at line 10, column 9)"
        );
    }

    #[test]
    fn mount_option_with_comma() {
        // The column counts "ü" as one character.
        assert_eq!(
            one_partition("fs = \"ext4\"\nmount = \"/d\"\nmount_options = [\"ü\", \"a,b\"]\n"),
            "t.toml:11:23: disk1, partition \"x\": mount option \"a,b\" contains a comma: write each option as its own list entry"
        );
    }

    #[test]
    fn compress_values_the_kernel_would_refuse() {
        let with = |o: &str| {
            one_partition(&format!(
                "fs = \"btrfs\"\nmount = \"/d\"\nmount_options = [\"{o}\"]\n"
            ))
        };
        assert_eq!(
            with("compress=zstd:22"),
            "t.toml:11:18: disk1, partition \"x\": mount option \"compress=zstd:22\": zstd takes a level from -15 to 15, not \"22\""
        );
        assert_eq!(
            with("compress-force=bogus"),
            "t.toml:11:18: disk1, partition \"x\": mount option \"compress-force=bogus\": Btrfs compresses with zlib, lzo or zstd (or no), not \"bogus\""
        );
        assert_eq!(
            with("compress=lzo:3"),
            "t.toml:11:18: disk1, partition \"x\": mount option \"compress=lzo:3\": lzo takes no level"
        );
        for fine in [
            "compress",
            "compress=zstd:1",
            "compress=zlib:9",
            "compress-force=lzo",
            "compress=no",
        ] {
            assert_eq!(super::bad_compress(fine), None, "{fine}");
        }
    }

    #[test]
    fn empty_mount_option() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nmount = \"/d\"\nmount_options = [\"\"]\n"),
            "t.toml:11:18: disk1, partition \"x\": mount_options has an empty entry"
        );
    }

    #[test]
    fn quotas_need_btrfs() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nquotas = true\n"),
            "t.toml:10:10: disk1, partition \"x\": quotas = true needs fs = \"btrfs\""
        );
    }

    // ---- subvolumes

    fn pool(subvolumes: &str) -> String {
        // The first subvolume table is line 10.
        one_partition(&format!("fs = \"btrfs\"\n{subvolumes}"))
    }

    #[test]
    fn subvolumes_need_btrfs() {
        assert_eq!(
            one_partition("fs = \"ext4\"\n[[disk.partition.subvolume]]\nname = \"@home\"\n"),
            "t.toml:11:8: disk1, partition \"x\": subvolumes need fs = \"btrfs\""
        );
    }

    #[test]
    fn subvolume_name_with_slash() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"@home/user\"\n"),
            "t.toml:11:8: disk1, partition \"x\": subvolume name \"@home/user\" cannot contain '/'"
        );
    }

    #[test]
    fn subvolume_name_dot_dot() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"..\"\n"),
            "t.toml:11:8: disk1, partition \"x\": subvolume name \"..\" is not a name"
        );
    }

    #[test]
    fn duplicate_subvolume() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"@home\"\n[[disk.partition.subvolume]]\nname = \"@home\"\n"),
            "t.toml:13:8: disk1, partition \"x\": subvolume name \"@home\" is used twice (first at line 11, column 8)"
        );
    }

    #[test]
    fn root_subvolume_with_mount() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"@root\"\nroot = true\nmount = \"/home\"\n"),
            "t.toml:13:9: disk1, partition \"x\", subvolume \"@root\": a root subvolume is mounted at / by its own distro: remove mount or set it to \"/\""
        );
    }

    #[test]
    fn slash_needs_root_subvolume() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"@\"\nmount = \"/\"\n"),
            "t.toml:12:9: disk1, partition \"x\", subvolume \"@\": mount \"/\" is for root subvolumes: set root = true"
        );
    }

    #[test]
    fn subvolume_mount_option_whitespace() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"@home\"\nmount = \"/home\"\nmount_options = [\"compress = zstd\"]\n"),
            "t.toml:13:18: disk1, partition \"x\", subvolume \"@home\": mount option \"compress = zstd\" contains whitespace"
        );
    }

    // ---- roles

    #[test]
    fn roles_are_read() {
        let part = "[[disk]]\nid = \"d\"\n[[disk.partition]]\nname = \"x\"\nsize = \"1GiB\"\nfs = \"btrfs\"\n";
        let spec = ok(&format!(
            "{part}role = \"backup\"\n[[disk.partition.subvolume]]\nname = \"m\"\nrole = \"meta\"\n"
        ));
        assert_eq!(spec.disks[0].partitions[0].role, Some(PartRole::Backup));
        assert_eq!(spec.meta_subvolume(), Some("m"));
        let none = ok(&format!(
            "{part}[[disk.partition.subvolume]]\nname = \"m\"\n"
        ));
        assert_eq!(none.meta_subvolume(), None);
        assert_eq!(none.disks[0].partitions[0].role, None);
    }

    #[test]
    fn unknown_role() {
        assert_eq!(
            pool("role = \"meta\"\n"),
            "t.toml:10:8: unknown role `meta`, expected `backup`"
        );
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"m\"\nrole = \"backup\"\n"),
            "t.toml:12:8: unknown role `backup`, expected `meta`"
        );
    }

    #[test]
    fn backup_role_needs_btrfs() {
        assert_eq!(
            one_partition("fs = \"ext4\"\nrole = \"backup\"\n"),
            "t.toml:10:8: disk1, partition \"x\": role = \"backup\" needs fs = \"btrfs\" (the backups are received there with btrfs receive)"
        );
    }

    #[test]
    fn two_backup_roles() {
        let text = text(
            "[[disk]]\nid = \"usb\"\n\
             [[disk.partition]]\nname = \"a\"\nsize = \"1GiB\"\nfs = \"btrfs\"\nrole = \"backup\"\n\
             [[disk.partition]]\nname = \"b\"\nsize = \"1GiB\"\nfs = \"btrfs\"\nrole = \"backup\"\n",
        );
        assert_eq!(
            parse_text(&text).unwrap_err().to_string(),
            "t.toml:15:8: usb, partition \"b\": role = \"backup\" is given twice (first at line 10, column 8): one partition holds the backups"
        );
    }

    #[test]
    fn two_meta_roles() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"m\"\nrole = \"meta\"\n[[disk.partition.subvolume]]\nname = \"n\"\nrole = \"meta\"\n"),
            "t.toml:15:8: disk1, partition \"x\", subvolume \"n\": role = \"meta\" is given twice (first at line 12, column 8): one subvolume carries the boot backup"
        );
    }

    #[test]
    fn meta_role_not_on_a_root() {
        assert_eq!(
            pool("[[disk.partition.subvolume]]\nname = \"@r\"\nroot = true\nrole = \"meta\"\n"),
            "t.toml:13:8: disk1, partition \"x\", subvolume \"@r\": a root subvolume cannot also be role = \"meta\""
        );
    }
}
