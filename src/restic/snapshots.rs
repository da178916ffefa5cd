//! `restic snapshots --json` (pure): the snapshots of every host, newest first.

use serde::{Deserialize, Serialize};

use crate::time::Epoch;

/// One snapshot as restic prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Raw {
    time: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    id: String,
    #[serde(default)]
    short_id: Option<String>,
    /// restic 0.17+: what the backup run saw.
    #[serde(default)]
    summary: Option<Summary>,
}

#[derive(Debug, Clone, Deserialize)]
struct Summary {
    #[serde(default)]
    total_bytes_processed: Option<u64>,
    #[serde(default)]
    total_files_processed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    pub time: Epoch,
    pub host: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    /// Known from restic 0.17 on.
    pub size: Option<u64>,
    pub files: Option<u64>,
}

/// One file or directory of `restic ls --json` (one JSON object per line).
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub mtime: Option<String>,
}

/// One line of a `restic ls --json` listing, if it is a file or directory (the first line
/// is the snapshot).
pub fn node(line: &str) -> Option<Node> {
    serde_json::from_str::<Node>(line)
        .ok()
        .filter(|n| !n.kind.is_empty())
}

/// The nodes of a `restic ls --json` listing.
pub fn nodes(ls_json: &str) -> Vec<Node> {
    ls_json.lines().filter_map(node).collect()
}

/// Whether `path` is `root` or below it.
pub(crate) fn within(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The bytes a restore of `path` without `exclude` writes for this node: a file's size if it
/// is inside, else nothing (directories, links and the rest take no room worth counting).
pub fn restored_bytes(n: &Node, path: &str, exclude: &[String]) -> u64 {
    let inside = within(&n.path, path) && !exclude.iter().any(|x| within(&n.path, x));
    if n.kind == "file" && inside {
        n.size.unwrap_or(0)
    } else {
        0
    }
}

/// Parse the JSON; snapshots newest first.
pub fn parse(json: &str) -> Result<Vec<Snapshot>, String> {
    from_raw(serde_json::from_str(json).map_err(|e| e.to_string())?)
}

/// Snapshots newest first, their times read.
pub fn from_raw(raw: Vec<Raw>) -> Result<Vec<Snapshot>, String> {
    let mut out = raw
        .into_iter()
        .map(|r| {
            let time = rfc3339(&r.time).ok_or_else(|| format!("bad snapshot time {:?}", r.time))?;
            Ok(Snapshot {
                short_id: r.short_id.unwrap_or_else(|| r.id.chars().take(8).collect()),
                id: r.id,
                time,
                host: r.hostname,
                tags: r.tags.unwrap_or_default(),
                paths: r.paths,
                size: r.summary.as_ref().and_then(|s| s.total_bytes_processed),
                files: r.summary.as_ref().and_then(|s| s.total_files_processed),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    out.sort_by(|a, b| b.time.cmp(&a.time).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// `2026-11-25T13:18:00.296879656Z`, `2026-11-25T14:18:00+01:00` → seconds (UTC).
pub fn rfc3339(text: &str) -> Option<Epoch> {
    let (date, rest) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, dd) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        (
            c,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let clock = clock.split('.').next()?;
    let mut t = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    Some(crate::time::unix_from_civil(y, mo, dd, h, mi, s)? - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_json_of_0_14_and_0_18() {
        // 0.14 against SeaweedFS, and the 0.17+ shape with a summary.
        let json = r#"[
 {"time":"2026-11-20T03:00:00.296879656Z","tree":"c0fa","paths":["/home"],"hostname":"atlantis","username":"root","tags":["LINUX"],"id":"ea119a3adf87177b","short_id":"ea119a3a"},
 {"time":"2026-11-21T04:00:00+01:00","paths":["C:\\Backups"],"hostname":"WIN-DESKTOP","id":"77aa","summary":{"total_bytes_processed":1048576,"total_files_processed":3}}
]"#;
        let s = parse(json).unwrap();
        assert_eq!(s[0].host, "WIN-DESKTOP");
        assert_eq!(s[0].time, 1_795_143_600 + 86_400);
        assert_eq!(s[0].short_id, "77aa");
        assert_eq!(s[0].size, Some(1_048_576));
        assert!(s[0].tags.is_empty());
        assert_eq!(s[1].tags, ["LINUX"]);
        assert_eq!(s[1].time, 1_795_143_600);
        assert_eq!(s[1].size, None);
        assert!(parse("{").is_err());
    }

    #[test]
    fn only_the_files_of_the_restored_path_count() {
        let ls = r#"{"time":"2026-11-21T03:00:00Z","paths":["/"],"id":"ab","struct_type":"snapshot"}
{"name":"home","type":"dir","path":"/home","struct_type":"node"}
{"name":"a","type":"file","path":"/home/alice/a","size":10,"struct_type":"node"}
{"name":"homework","type":"file","path":"/homework","size":100,"struct_type":"node"}
{"name":"big.img","type":"file","path":"/var/big.img","size":1000,"struct_type":"node"}
{"name":"m","type":"file","path":"/mnt/Atlantis-meta/m","size":10000,"struct_type":"node"}
{"name":"l","type":"symlink","path":"/l","struct_type":"node"}
{"name":"b","type":"file","path":"/home/alice/b","uid":0,"gid":0,"size":5,"mode":420,"inode":10019078,"message_type":"node","struct_type":"node"}"#;
        let sum = |path: &str, exclude: &[&str]| -> u64 {
            let exclude: Vec<String> = exclude.iter().map(|x| x.to_string()).collect();
            nodes(ls)
                .iter()
                .map(|n| restored_bytes(n, path, &exclude))
                .sum()
        };
        // The last line as restic 0.18 prints it.
        assert_eq!(sum("/home", &[]), 15);
        assert_eq!(sum("/", &["/home", "/mnt/Atlantis-meta"]), 1100);
        assert_eq!(sum("/", &[]), 11115);
        assert_eq!(sum("/srv", &[]), 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever restic (or something posing as it) prints: an error, never a panic.
        #[test]
        fn any_output(text in "\\PC{0,200}", time in "[0-9T:.+Zü-]{0,30}") {
            let _ = parse(&text);
            let _ = nodes(&text);
            let _ = rfc3339(&text);
            let _ = rfc3339(&time);
            let _ = parse(&format!(r#"[{{"time":"{time}","id":"ab"}}]"#));
        }
    }
}
