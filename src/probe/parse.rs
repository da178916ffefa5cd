//! Pure parsers for what the kernel and tools print; tested on fixture text.

use super::Filesystem;

/// `blkid -p -o export` output → KEY → value.
pub fn blkid_export(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn get<'a>(kv: &'a [(String, String)], key: &str) -> Option<&'a str> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A filesystem (or other content signature like swap, crypto_LUKS) from blkid's export.
pub fn filesystem(kv: &[(String, String)]) -> Option<Filesystem> {
    get(kv, "TYPE").map(|t| Filesystem {
        fstype: t.to_owned(),
        label: get(kv, "LABEL").map(str::to_owned),
        uuid: get(kv, "UUID").map(str::to_owned),
    })
}

/// The partition-table type blkid found (`gpt`, `dos`), if any.
pub fn pttype(kv: &[(String, String)]) -> Option<String> {
    get(kv, "PTTYPE").map(str::to_owned)
}

/// Device paths of active swap areas from /proc/swaps.
pub fn swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|field| String::from_utf8_lossy(&crate::mountinfo::unescape(field)).into_owned())
        .collect()
}

/// Top-level subvolume names from `btrfs inspect-internal dump-tree -t root`: the ROOT_REF
/// items of FS_TREE whose directory is the top level (dirid 256).
pub fn top_level_subvolumes(dump: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_ref = false;
    for line in dump.lines() {
        let t = line.trim();
        if t.starts_with("item ") {
            in_ref = t.contains("key (FS_TREE ROOT_REF ");
            continue;
        }
        if in_ref {
            if let Some(rest) = t.strip_prefix("root ref key dirid 256 ") {
                if let Some((_, name)) = rest.split_once(" name ") {
                    out.push(name.to_owned());
                }
            }
            in_ref = false;
        }
    }
    out
}

/// The serial in a SCSI VPD page 0x80 (unit serial number): 4-byte header, then ASCII.
pub fn vpd_pg80(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 4 || bytes[1] != 0x80 {
        return None;
    }
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    let s = bytes.get(4..4 + len.min(bytes.len() - 4))?;
    let text = String::from_utf8_lossy(s)
        .trim()
        .trim_matches('\0')
        .trim()
        .to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkid_fields() {
        let kv = blkid_export(include_str!("../../tests/fixtures/blkid-vfat.txt"));
        let fs = filesystem(&kv).unwrap();
        assert_eq!(fs.fstype, "vfat");
        assert_eq!(fs.label.as_deref(), Some("ESP1"));
        assert_eq!(fs.uuid.as_deref(), Some("1C2B-3A4D"));
        assert_eq!(
            pttype(&blkid_export("PTUUID=x\nPTTYPE=dos\n")).as_deref(),
            Some("dos")
        );
        assert!(filesystem(&blkid_export("")).is_none());
    }

    #[test]
    fn swap_list() {
        let s = swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/loop1p3                            partition\t67108860\t0\t\t-2\n");
        assert_eq!(s, ["/dev/loop1p3"]);
        assert!(swaps("Filename Type Size Used Priority\n").is_empty());
    }

    #[test]
    fn subvolumes_from_dump_tree() {
        let names = top_level_subvolumes(include_str!("../../tests/fixtures/dump-tree-root.txt"));
        assert_eq!(names, ["@rootTW", "Atlantis-meta", "@home"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any text in /proc/swaps, blkid's export or a dump-tree: an answer,
        /// never a panic.
        #[test]
        fn any_text_parses_or_is_skipped(text in "\\PC{0,200}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = swaps(&text);
            let kv = blkid_export(&text);
            let _ = (filesystem(&kv), pttype(&kv));
            let _ = top_level_subvolumes(&text);
            let _ = vpd_pg80(&bytes);
        }

    }

    #[test]
    fn vpd_serial() {
        let mut page = vec![0x00, 0x80, 0x00, 0x0C];
        page.extend_from_slice(b"  S4EVNX0R12");
        assert_eq!(vpd_pg80(&page).as_deref(), Some("S4EVNX0R12"));
        assert_eq!(vpd_pg80(&[0, 0x83, 0, 0]), None);
    }
}
