//! Raw `btrfs send` stream files kept in restic (pure): which files of `restic ls --json`
//! are streams (`…/raw-snapshots/<host>/<btrbk name>.btrfs[.zst]`), as restore points whose
//! path is the file's path inside the snapshot.

use super::inventory::{Kind, Point};
use super::points;
use crate::restic::snapshots::Node;

/// The stream file of `host` this node of a snapshot's listing is, if it is one.
pub fn point(n: &Node, host: &str) -> Option<Point> {
    let dir = format!("/raw-snapshots/{host}/");
    if n.kind != "file" || !n.path.contains(&dir) {
        return None;
    }
    let (name, compressed) = points::raw_stream(&n.name)?;
    // The subvolume is joined onto the pool's top: one path component or nothing.
    crate::single_component::check(&name.subvol).ok()?;
    Some(Point {
        subvol: name.subvol,
        kind: Kind::Stream,
        time: name.time,
        seq: name.seq,
        path: n.path.clone(),
        uuid: None,
        received_uuid: None,
        parent_uuid: None,
        parent: None,
        size: n.size,
        compressed,
        note: None,
    })
}

/// The stream files of `host` in one snapshot's listing.
pub fn points(nodes: &[Node], host: &str) -> Vec<Point> {
    nodes.iter().filter_map(|n| point(n, host)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_files_of_the_host_only() {
        let ls = r#"{"time":"2026-11-21T03:00:00Z","paths":["/srv/bk"],"hostname":"atlantis","id":"ab","struct_type":"snapshot"}
{"name":"raw-snapshots","type":"dir","path":"/srv/bk/raw-snapshots","struct_type":"node"}
{"name":"@home.20261120T0300.btrfs.zst","type":"file","path":"/srv/bk/raw-snapshots/atlantis/@home.20261120T0300.btrfs.zst","size":4096,"struct_type":"node"}
{"name":"@home.20261121T0300.btrfs","type":"file","path":"/srv/bk/raw-snapshots/atlantis/@home.20261121T0300.btrfs","size":512,"struct_type":"node"}
{"name":"@home.20261121T0300.btrfs","type":"file","path":"/srv/bk/raw-snapshots/phone/@home.20261121T0300.btrfs","size":1,"struct_type":"node"}
{"name":"README","type":"file","path":"/srv/bk/raw-snapshots/atlantis/README","size":9,"struct_type":"node"}"#;
        let p = points(&crate::restic::snapshots::nodes(ls), "atlantis");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].subvol, "@home");
        assert!(p[0].compressed && !p[1].compressed);
        assert_eq!(p[1].size, Some(512));
        assert_eq!(
            p[1].path,
            "/srv/bk/raw-snapshots/atlantis/@home.20261121T0300.btrfs"
        );
        assert_eq!(p[0].time, 1_795_143_600);
    }
}
