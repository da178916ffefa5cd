//! The restore points on the backup drive (e.g. BACKUP): btrbk and snapper snapshots found in
//! `btrfs subvolume list`, raw send-stream files, each with its time and parent chain.
//! [`classify`], [`link_parents`] and [`group`] are pure; [`scan`] reads a mounted drive.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use uuid::Uuid;

use super::points::{self, Epoch};
use super::stream;
use crate::exec::ExecError;
use crate::single_component;

/// A point older than this is worth a warning: backups have stopped.
pub const STALE_AFTER_SECS: i64 = 7 * 86_400;

/// In this order among points of the same time: a received subvolume is the better source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A received subvolume named the btrbk way.
    Btrbk,
    /// `.snapshots/<N>/snapshot` with an info.xml.
    Snapper,
    /// A `btrfs send` stream file under `raw-snapshots/<host>/`.
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub subvol: String,
    pub kind: Kind,
    pub time: Epoch,
    /// btrbk's `_N`, snapper's number: orders points of the same second.
    pub seq: u32,
    /// Relative to the top of the backup filesystem.
    pub path: String,
    /// The subvolume's own UUID; for a stream, the UUID of the subvolume it carries.
    pub uuid: Option<Uuid>,
    pub received_uuid: Option<Uuid>,
    /// The subvolume (or stream) this one was made from.
    pub parent_uuid: Option<Uuid>,
    /// The point that is that parent, when it is here.
    pub parent: Option<String>,
    /// Known for stream files (their size on the drive).
    pub size: Option<u64>,
    pub compressed: bool,
    pub note: Option<String>,
}

impl Point {
    /// A point with only what names it (for tests of the code that chooses points).
    #[cfg(test)]
    pub fn named(subvol: &str, kind: Kind, time: Epoch, path: &str) -> Point {
        Point {
            subvol: subvol.into(),
            kind,
            time,
            seq: 0,
            path: path.into(),
            uuid: None,
            received_uuid: None,
            parent_uuid: None,
            parent: None,
            size: None,
            compressed: false,
            note: None,
        }
    }
}

/// One line of `btrfs subvolume list -u -q -R`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubvolRow {
    pub path: String,
    pub uuid: Option<Uuid>,
    pub parent_uuid: Option<Uuid>,
    pub received_uuid: Option<Uuid>,
}

/// `ID 257 gen 9 top level 5 parent_uuid - received_uuid 4c… uuid 9a… path myhost/@home.2026…`
pub fn parse_subvolume_list(text: &str) -> Vec<SubvolRow> {
    text.lines()
        .filter_map(|line| {
            let (fields, path) = line.split_once(" path ")?;
            let words: Vec<&str> = fields.split_whitespace().collect();
            let field = |key: &str| {
                let at = words.iter().position(|w| *w == key)?;
                Uuid::parse_str(words.get(at + 1)?).ok()
            };
            Some(SubvolRow {
                path: path.strip_prefix("<FS_TREE>/").unwrap_or(path).to_owned(),
                uuid: field("uuid"),
                parent_uuid: field("parent_uuid"),
                received_uuid: field("received_uuid"),
            })
        })
        .collect()
}

/// What a subvolume is, if it is a restore point: btrbk names directly in one of `dirs`
/// (relative, "" for the top), snapper snapshots `<dirs>/<subvol>/.snapshots/<N>/snapshot`.
/// `info_xml(path of <N>)` reads snapper's description of snapshot N. The second list
/// warns of points passed over because a name in them is not one path component (the
/// subvolume a point restores is joined onto the pool's top).
pub fn classify(
    rows: &[SubvolRow],
    dirs: &[String],
    info_xml: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Point>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for row in rows {
        if let Some((part, why)) = row
            .path
            .split('/')
            .find_map(|part| single_component::check(part).err().map(|why| (part, why)))
        {
            warnings.push(misnamed(&row.path, part, why));
            continue;
        }
        let (dir, base) = match row.path.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", row.path.as_str()),
        };
        let point = |subvol: String, kind, time, seq, note| Point {
            subvol,
            kind,
            time,
            seq,
            path: row.path.clone(),
            uuid: row.uuid,
            received_uuid: row.received_uuid,
            parent_uuid: row.parent_uuid,
            parent: None,
            size: None,
            compressed: false,
            note,
        };
        if dirs.iter().any(|d| d == dir) {
            if let Some(name) = points::btrbk(base) {
                match single_component::check(&name.subvol) {
                    Ok(()) => out.push(point(name.subvol, Kind::Btrbk, name.time, name.seq, None)),
                    Err(why) => warnings.push(misnamed(&row.path, &name.subvol, why)),
                }
            }
            continue;
        }
        // <D>/<subvol>/.snapshots/<N>/snapshot
        if base != "snapshot" {
            continue;
        }
        let Some((snapshots_n, number)) = dir.rsplit_once('/') else {
            continue;
        };
        let Ok(seq) = number.parse::<u32>() else {
            continue;
        };
        let Some(owner) = snapshots_n.strip_suffix("/.snapshots") else {
            continue;
        };
        let (owner_dir, subvol) = owner.rsplit_once('/').unwrap_or(("", owner));
        if !dirs.iter().any(|d| d == owner_dir) {
            continue;
        }
        if let Err(why) = single_component::check(subvol) {
            warnings.push(misnamed(&row.path, subvol, why));
            continue;
        }
        let xml = info_xml(dir);
        let time = xml.as_deref().and_then(points::snapper_date);
        match time {
            Some(time) => out.push(point(
                subvol.to_owned(),
                Kind::Snapper,
                time,
                seq,
                xml.as_deref().and_then(points::snapper_description),
            )),
            None => out.push(point(
                subvol.to_owned(),
                Kind::Snapper,
                0,
                seq,
                Some(format!(
                    "{dir}/info.xml is missing or has no <date>: time unknown"
                )),
            )),
        }
    }
    (out, warnings)
}

/// The warning for a point passed over because of a name in its path.
fn misnamed(path: &str, name: &str, why: single_component::NameError) -> String {
    format!(
        "{} is not used as a restore point: the name \"{}\" {why} (each name must be one \
         path component)",
        path.escape_debug(),
        name.escape_debug()
    )
}

/// Fill in each point's `parent`: the point whose UUID, or received UUID, is its parent
/// UUID. A stream whose parent is nowhere cannot be received: that is noted.
pub fn link_parents(points: &mut [Point]) {
    let ids: Vec<(Vec<Uuid>, String)> = points
        .iter()
        .map(|p| {
            (
                p.uuid.into_iter().chain(p.received_uuid).collect(),
                p.path.clone(),
            )
        })
        .collect();
    for p in points.iter_mut() {
        let Some(parent) = p.parent_uuid else {
            continue;
        };
        p.parent = ids
            .iter()
            .find(|(uuids, path)| *path != p.path && uuids.contains(&parent))
            .map(|(_, path)| path.clone());
        if p.parent.is_none() && p.kind == Kind::Stream {
            p.note = Some(format!(
                "incremental: needs the stream or snapshot of {parent}, which is not here"
            ));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubvolPoints {
    pub subvol: String,
    /// Newest first.
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// The directories looked in, relative to the top of the backup filesystem.
    pub looked_in: Vec<String>,
    pub subvols: Vec<SubvolPoints>,
    pub warnings: Vec<String>,
}

/// Points per subvolume, newest first; a warning for each subvolume whose newest point is
/// older than [`STALE_AFTER_SECS`] at `now`, and when nothing was found at all.
pub fn group(looked_in: Vec<String>, points: Vec<Point>, now: Epoch) -> Inventory {
    let mut by: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for p in points {
        by.entry(p.subvol.clone()).or_default().push(p);
    }
    let mut warnings = Vec::new();
    let subvols: Vec<SubvolPoints> = by
        .into_iter()
        .map(|(subvol, mut points)| {
            points.sort_by(|a, b| {
                (b.time, b.seq)
                    .cmp(&(a.time, a.seq))
                    .then((a.kind, &a.path).cmp(&(b.kind, &b.path)))
            });
            if let Some(newest) = points.first() {
                if now - newest.time > STALE_AFTER_SECS {
                    warnings.push(format!(
                        "the newest point of {subvol} is {} old ({}): are backups still running?",
                        points::format_age(newest.time, now),
                        points::format_time(newest.time)
                    ));
                }
            }
            SubvolPoints { subvol, points }
        })
        .collect();
    if subvols.is_empty() {
        warnings.push(format!(
            "no restore points found in {}",
            looked_in
                .iter()
                .map(|d| if d.is_empty() { "/" } else { d.as_str() })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Inventory {
        looked_in,
        subvols,
        warnings,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// The inventory of the backup filesystem mounted (its top level) at `top`: btrbk and
/// snapper points in `dirs`, stream files in `raw-snapshots/<host>/`.
pub fn scan(
    top: &Path,
    dirs: &[String],
    host: &str,
    now: Epoch,
) -> Result<Inventory, InventoryError> {
    let list = crate::btrfs::list(top, false)?;
    let rows = parse_subvolume_list(&list);
    let (mut found, mut warnings) = classify(&rows, dirs, &|dir| {
        std::fs::read_to_string(top.join(dir).join("info.xml")).ok()
    });
    let raw = format!("raw-snapshots/{host}");
    found.extend(streams(top, &raw, &mut warnings)?);
    link_parents(&mut found);
    let mut looked_in = dirs.to_vec();
    looked_in.push(raw);
    let mut inv = group(looked_in, found, now);
    inv.warnings.splice(0..0, warnings);
    Ok(inv)
}

/// Stream files in `top/dir` (none when it does not exist).
fn streams(
    top: &Path,
    dir: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Point>, InventoryError> {
    let read_err = |path: &Path, source| InventoryError::Read {
        path: path.display().to_string(),
        source,
    };
    let full = top.join(dir);
    let entries = match std::fs::read_dir(&full) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(&full, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| read_err(&full, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some((name, compressed)) = points::raw_stream(&file) else {
            continue;
        };
        if let Err(why) = single_component::check(&name.subvol) {
            warnings.push(misnamed(&format!("{dir}/{file}"), &name.subvol, why));
            continue;
        }
        let path = entry.path();
        let size = entry.metadata().map_err(|e| read_err(&path, e))?.len();
        let mut point = Point {
            subvol: name.subvol,
            kind: Kind::Stream,
            time: name.time,
            seq: name.seq,
            path: format!("{dir}/{file}"),
            uuid: None,
            received_uuid: None,
            parent_uuid: None,
            parent: None,
            size: Some(size),
            compressed,
            note: None,
        };
        match read_head(&path) {
            Ok(head) => {
                point.uuid = Some(head.uuid);
                point.parent_uuid = head.parent.map(|(u, _)| u);
            }
            // Not passed over like a damaged stream: chosen, the preflight refuses it by
            // name, instead of quietly restoring an older point.
            Err(HeadError::Stream(why @ stream::StreamError::Name(..))) => {
                point.note = Some(format!("refused: {why}"))
            }
            Err(why) => point.note = Some(format!("unreadable: {why}")),
        }
        out.push(point);
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Stream(#[from] stream::StreamError),
}

/// The head of a stream file (plain or zstd).
pub fn read_head(path: &Path) -> Result<stream::StreamHead, HeadError> {
    let bytes =
        super::stream_open::read_head(super::stream_open::open(path)?, stream::HEAD_BYTES as u64)?;
    Ok(stream::head(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: [&str; 7] = [
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
        "44444444-4444-4444-4444-444444444444",
        "55555555-5555-5555-5555-555555555555",
        "66666666-6666-6666-6666-666666666666",
        "77777777-7777-7777-7777-777777777777",
    ];

    fn u(i: usize) -> Uuid {
        Uuid::parse_str(U[i]).unwrap()
    }

    const LIST: &str = "\
ID 256 gen 12 top level 5 parent_uuid - received_uuid 44444444-4444-4444-4444-444444444444 uuid 11111111-1111-1111-1111-111111111111 path atlantis/@home.20261119T0300
ID 257 gen 14 top level 5 parent_uuid 11111111-1111-1111-1111-111111111111 received_uuid - uuid 22222222-2222-2222-2222-222222222222 path atlantis/@home.20261120T0300
ID 258 gen 15 top level 5 parent_uuid - received_uuid - uuid 33333333-3333-3333-3333-333333333333 path atlantis/@rootTW/.snapshots/12/snapshot
ID 259 gen 16 top level 5 parent_uuid - received_uuid - uuid - path scratch
ID 260 gen 16 top level 5 parent_uuid - received_uuid - uuid - path elsewhere/@home.20261120T0300
ID 261 gen 16 top level 5 parent_uuid - received_uuid - uuid - path <FS_TREE>/@home.20261101T0300_1
";

    fn dirs() -> Vec<String> {
        vec!["atlantis".into(), String::new()]
    }

    #[test]
    fn subvolume_list_rows() {
        let rows = parse_subvolume_list(LIST);
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0].received_uuid, Some(u(3)));
        assert_eq!(rows[0].parent_uuid, None);
        assert_eq!(rows[1].parent_uuid, Some(u(0)));
        assert_eq!(rows[3].uuid, None);
        assert_eq!(rows[5].path, "@home.20261101T0300_1");
    }

    #[test]
    fn btrbk_and_snapper_points_in_the_looked_in_dirs_only() {
        let xml = |dir: &str| {
            (dir == "atlantis/@rootTW/.snapshots/12").then(|| {
                "<snapshot><num>12</num><date>2026-11-20 03:00:00</date>\
                 <description>before update</description></snapshot>"
                    .to_owned()
            })
        };
        let mut pts = classify(&parse_subvolume_list(LIST), &dirs(), &xml).0;
        link_parents(&mut pts);
        let got: Vec<(&str, Kind, &str, Option<&str>)> = pts
            .iter()
            .map(|p| {
                (
                    p.subvol.as_str(),
                    p.kind,
                    p.path.as_str(),
                    p.parent.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("@home", Kind::Btrbk, "atlantis/@home.20261119T0300", None),
                (
                    "@home",
                    Kind::Btrbk,
                    "atlantis/@home.20261120T0300",
                    Some("atlantis/@home.20261119T0300")
                ),
                (
                    "@rootTW",
                    Kind::Snapper,
                    "atlantis/@rootTW/.snapshots/12/snapshot",
                    None
                ),
                ("@home", Kind::Btrbk, "@home.20261101T0300_1", None),
            ]
        );
        assert_eq!(pts[2].seq, 12);
        assert_eq!(pts[2].note.as_deref(), Some("before update"));
        assert_eq!(pts[3].seq, 1);
    }

    #[test]
    fn streams_link_to_their_parent_by_sent_uuid_or_say_it_is_missing() {
        let stream = |path: &str, uuid: usize, parent: Option<usize>| Point {
            subvol: "@home".into(),
            kind: Kind::Stream,
            time: 0,
            seq: 0,
            path: path.into(),
            uuid: Some(u(uuid)),
            received_uuid: None,
            parent_uuid: parent.map(u),
            parent: None,
            size: Some(1),
            compressed: false,
            note: None,
        };
        // The received snapshot carries the sent UUID as its received_uuid.
        let mut pts = classify(&parse_subvolume_list(LIST), &dirs(), &|_| None).0;
        pts.push(stream("raw/a.btrfs", 4, Some(3)));
        pts.push(stream("raw/b.btrfs", 5, Some(4)));
        pts.push(stream("raw/c.btrfs", 6, Some(2)));
        link_parents(&mut pts);
        let by = |path: &str| pts.iter().find(|p| p.path == path).unwrap();
        assert_eq!(
            by("raw/a.btrfs").parent.as_deref(),
            Some("atlantis/@home.20261119T0300")
        );
        assert_eq!(by("raw/b.btrfs").parent.as_deref(), Some("raw/a.btrfs"));
        assert!(by("raw/b.btrfs").note.is_none());
        // u(2) is the snapper snapshot: a stream on top of it finds it too.
        assert_eq!(
            by("raw/c.btrfs").parent.as_deref(),
            Some("atlantis/@rootTW/.snapshots/12/snapshot")
        );
        let mut lone = vec![stream("raw/d.btrfs", 5, Some(4))];
        link_parents(&mut lone);
        assert!(lone[0].note.as_deref().unwrap().contains("not here"));
    }

    #[test]
    fn names_that_are_not_one_component_are_passed_over_with_a_warning() {
        // ".." and "..." before the stamp make the subvolumes "." and ".."; a newline in
        // a subvolume's name could forge a line of `btrfs subvolume list`.
        let list = "\
ID 256 gen 12 top level 5 parent_uuid - received_uuid - uuid - path atlantis/..20261120T0300
ID 257 gen 12 top level 5 parent_uuid - received_uuid - uuid - path atlantis/...20261120T0300
ID 258 gen 12 top level 5 parent_uuid - received_uuid - uuid - path atlantis/../.snapshots/3/snapshot
ID 259 gen 12 top level 5 parent_uuid - received_uuid - uuid - path /@home.20261120T0300
ID 260 gen 12 top level 5 parent_uuid - received_uuid - uuid - path atlantis/@home.20261120T0300
";
        let (pts, warnings) = classify(&parse_subvolume_list(list), &dirs(), &|_| None);
        let got: Vec<&str> = pts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(got, ["atlantis/@home.20261120T0300"]);
        assert_eq!(
            warnings,
            [
                "atlantis/..20261120T0300 is not used as a restore point: the name \".\" is \
                 not a name (each name must be one path component)",
                "atlantis/...20261120T0300 is not used as a restore point: the name \"..\" \
                 is not a name (each name must be one path component)",
                "atlantis/../.snapshots/3/snapshot is not used as a restore point: the name \
                 \"..\" is not a name (each name must be one path component)",
                "/@home.20261120T0300 is not used as a restore point: the name \"\" is empty \
                 (each name must be one path component)",
            ]
        );
    }

    #[test]
    fn newest_first_and_stale_subvolumes_warned() {
        let pts = classify(&parse_subvolume_list(LIST), &dirs(), &|_| None).0;
        let nov20 = points::btrbk("x.20261120T0300").unwrap().time;
        let inv = group(dirs(), pts.clone(), nov20 + 86_400);
        let home = &inv.subvols[0];
        assert_eq!(home.subvol, "@home");
        assert_eq!(home.points[0].path, "atlantis/@home.20261120T0300");
        assert_eq!(home.points[2].path, "@home.20261101T0300_1");
        // The snapper point without info.xml has time 0: very stale, and said so.
        assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
        assert!(inv.warnings[0].starts_with("the newest point of @rootTW"));

        let later = group(dirs(), pts, nov20 + 8 * 86_400);
        assert!(later.warnings[0].starts_with("the newest point of @home is 8 days old"));
        let empty = group(dirs(), Vec::new(), 0);
        assert_eq!(empty.warnings, ["no restore points found in atlantis, /"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the subvolumes on the backup drive are called: points or not, no panic.
        #[test]
        fn any_subvolume_names(names in proptest::collection::vec("[a-z@.ü_+0-9T/-]{0,30}", 0..8), text in "\\PC{0,200}") {
            let list: String = names
                .iter()
                .map(|n| format!("ID 256 gen 1 top level 5 parent_uuid - received_uuid - uuid - path {n}\n"))
                .collect();
            let rows = parse_subvolume_list(&format!("{list}{text}"));
            let (mut pts, _passed_over) = classify(&rows, &dirs(), &|_| Some(text.clone()));
            link_parents(&mut pts);
            let _ = group(dirs(), pts, 0);
        }
    }
}
