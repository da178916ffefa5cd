//! Restore points by name (pure): which backup a directory entry on the backup partition (e.g. BACKUP) is, for which
//! subvolume, taken when. Three layouts are known:
//!
//! - btrbk: `<subvol>.<YYYYMMDD>[T<hhmm>[<ss><±hhmm>]][_N]` (timestamp_format short, long,
//!   long-iso; `_N` when two were taken in the same minute);
//! - snapper: `<dir>/.snapshots/<N>/snapshot`, its time in `<N>/info.xml` (`<date>`, UTC);
//! - raw send streams: files `<btrbk name>.btrfs` or `<btrbk name>.btrfs.zst` under
//!   `raw-snapshots/<host>/`.

use serde::Serialize;

// Times of points are the crate's one kind of time.
pub use crate::time::{format_age, format_time, Epoch};

/// A btrbk snapshot name, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BtrbkName {
    pub subvol: String,
    pub time: Epoch,
    /// The `_N` postfix (0 when there is none): orders points taken in the same second.
    pub seq: u32,
    /// The name carried a UTC offset (long-iso); without one the time is read as UTC.
    pub zoned: bool,
}

/// `@home.20261120T0300` → `@home` at 2026-11-20 03:00. `None` for anything else.
pub fn btrbk(name: &str) -> Option<BtrbkName> {
    let (subvol, stamp) = name.rsplit_once('.')?;
    if subvol.is_empty() {
        return None;
    }
    let (stamp, seq) = match stamp.split_once('_') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (s, n.parse().ok()?)
        }
        Some(_) => return None,
        None => (stamp, 0),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let num = |s: &str| s.parse::<i64>().ok();
    // The offsets below are byte offsets: a stamp is ASCII or it is not a time (a `ü` in a
    // directory name or in `--at` would otherwise be cut in half).
    if !stamp.is_ascii() {
        return None;
    }
    let (date, time) = match stamp.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (stamp, None),
    };
    if date.len() != 8 || !digits(date) {
        return None;
    }
    let (y, mo, d) = (num(&date[..4])?, num(&date[4..6])?, num(&date[6..])?);
    let (mut h, mut mi, mut s, mut offset, mut zoned) = (0, 0, 0, 0, false);
    if let Some(t) = time {
        match t.len() {
            4 if digits(t) => {
                (h, mi) = (num(&t[..2])?, num(&t[2..])?);
            }
            11 if digits(&t[..6]) && matches!(&t[6..7], "+" | "-") && digits(&t[7..]) => {
                (h, mi, s) = (num(&t[..2])?, num(&t[2..4])?, num(&t[4..6])?);
                let minutes = num(&t[7..9])? * 60 + num(&t[9..])?;
                offset = if &t[6..7] == "+" { minutes } else { -minutes } * 60;
                zoned = true;
            }
            _ => return None,
        }
    }
    let time = crate::time::unix_from_civil(y, mo, d, h, mi, s)? - offset;
    Some(BtrbkName {
        subvol: subvol.to_owned(),
        time,
        seq,
        zoned,
    })
}

/// A raw stream file name: the btrbk name and whether it is zstd-compressed.
pub fn raw_stream(file: &str) -> Option<(BtrbkName, bool)> {
    if let Some(stem) = file.strip_suffix(".btrfs.zst") {
        return btrbk(stem).map(|n| (n, true));
    }
    btrbk(file.strip_suffix(".btrfs")?).map(|n| (n, false))
}

/// The `<date>` of a snapper info.xml (`2026-11-20 03:00:01`, UTC).
pub fn snapper_date(info_xml: &str) -> Option<Epoch> {
    let start = info_xml.find("<date>")? + "<date>".len();
    let end = start + info_xml[start..].find("</date>")?;
    let text = info_xml[start..end].trim();
    let (date, time) = text.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (y, mo, dd) = (d.next()??, d.next()??, d.next()??);
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    crate::time::unix_from_civil(y, mo, dd, h, mi, s)
}

/// The `<description>` of a snapper info.xml, if any.
pub fn snapper_description(info_xml: &str) -> Option<String> {
    let start = info_xml.find("<description>")? + "<description>".len();
    let end = start + info_xml[start..].find("</description>")?;
    Some(info_xml[start..end].trim().to_owned())
}

/// A time given on the command line (`--at`), read as UTC: `2026-11-20`, `2026-11-20 03:00`,
/// `2026-11-20T03:00:00`, or a btrbk stamp `20261120T0300`. A date alone means its end
/// (23:59:59), so `--at 2026-11-20` picks the last point of that day.
pub fn parse_at(text: &str) -> Option<Epoch> {
    let text = text.trim().trim_end_matches(" UTC").trim_end_matches('Z');
    if let Some(name) = btrbk(&format!("x.{text}")) {
        let end_of_day = if text.contains('T') { 0 } else { 86_399 };
        return Some(name.time + end_of_day);
    }
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, dd) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() {
        return None;
    }
    let Some(time) = time else {
        return crate::time::unix_from_civil(y, mo, dd, 23, 59, 59);
    };
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi) = (t.next()??, t.next()??);
    let s = t.next().map_or(Some(0), |s| s)?;
    if t.next().is_some() {
        return None;
    }
    crate::time::unix_from_civil(y, mo, dd, h, mi, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV20_0300: Epoch = 1_795_143_600; // 2026-11-20T03:00:00Z

    #[test]
    fn at_times_in_the_forms_people_type() {
        assert_eq!(parse_at("2026-11-20 03:00"), Some(NOV20_0300));
        assert_eq!(parse_at("2026-11-20T03:00:00Z"), Some(NOV20_0300));
        assert_eq!(parse_at("20261120T0300"), Some(NOV20_0300));
        assert_eq!(parse_at("2026-11-20"), Some(NOV20_0300 + 21 * 3600 - 1));
        assert_eq!(parse_at("20261120"), Some(NOV20_0300 + 21 * 3600 - 1));
        assert_eq!(parse_at("2026-11-31"), None);
        assert_eq!(parse_at("yesterday"), None);
        assert_eq!(parse_at("2026-11-20 3"), None);
    }

    #[test]
    fn btrbk_names_in_every_timestamp_format() {
        let long = btrbk("@home.20261120T0300").unwrap();
        assert_eq!(
            long,
            BtrbkName {
                subvol: "@home".into(),
                time: NOV20_0300,
                seq: 0,
                zoned: false
            }
        );
        assert_eq!(btrbk("@home.20261120").unwrap().time, NOV20_0300 - 3 * 3600);
        let iso = btrbk("@rootTW.20261120T040015+0100").unwrap();
        assert_eq!(
            (iso.subvol.as_str(), iso.time, iso.zoned),
            ("@rootTW", NOV20_0300 + 15, true)
        );
        assert_eq!(btrbk("@home.20261120T0300_2").unwrap().seq, 2);
        assert_eq!(
            btrbk("Atlantis-meta.20261120T0300").unwrap().subvol,
            "Atlantis-meta"
        );
        // Dots inside the subvolume name belong to it.
        assert_eq!(btrbk("my.data.20261120T0300").unwrap().subvol, "my.data");
        assert_eq!(format_time(long.time), "2026-11-20 03:00:00 UTC");
    }

    #[test]
    fn other_names_are_not_points() {
        for name in [
            "@home",
            ".20261120T0300",
            "@home.2026112",
            "@home.20261120T03",
            "@home.20261120T030",
            "@home.20261320T0300",
            "@home.20260230T0300",
            "@home.20261120T2400",
            "@home.20261120T0300_",
            "@home.20261120T0300_x",
            "@home.20261120T0300+0100",
            "@home.old",
        ] {
            assert_eq!(btrbk(name), None, "{name}");
        }
    }

    #[test]
    fn raw_stream_files() {
        let (n, zst) = raw_stream("@home.20261120T0300.btrfs.zst").unwrap();
        assert_eq!(
            (n.subvol.as_str(), n.time, zst),
            ("@home", NOV20_0300, true)
        );
        assert!(!raw_stream("@home.20261120T0300.btrfs").unwrap().1);
        assert_eq!(raw_stream("@home.20261120T0300.tar"), None);
        assert_eq!(raw_stream("notes.btrfs"), None);
    }

    #[test]
    fn snapper_info_xml() {
        let xml = "<?xml version=\"1.0\"?>\n<snapshot>\n  <type>single</type>\n  <num>12</num>\n  \
                   <date>2026-11-20 03:00:01</date>\n  <description>timeline</description>\n\
                   <cleanup>timeline</cleanup>\n</snapshot>\n";
        assert_eq!(snapper_date(xml), Some(NOV20_0300 + 1));
        assert_eq!(snapper_description(xml).as_deref(), Some("timeline"));
        assert_eq!(
            snapper_date("<snapshot><date>yesterday</date></snapshot>"),
            None
        );
        assert_eq!(snapper_date("<snapshot></snapshot>"), None);
    }

    #[test]
    fn stamps_with_multibyte_chars_are_not_times() {
        // 11 bytes, as long as a long-iso time: byte offsets fall inside `ü`.
        assert_eq!(parse_at("20261120T12345ü6789"), None);
        assert_eq!(btrbk("@home.20261120T12345ü6789"), None);
        assert_eq!(btrbk("@home.2026112ü"), None);
        assert_eq!(raw_stream("@home.20261120T0ü00.btrfs"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever a directory on the backup drive is called, whatever is typed after
        /// `--at`: an answer, never a panic.
        #[test]
        fn any_text_is_a_time_or_not(text in "\\PC{0,40}", tail in "[0-9T_+ü:-]{0,16}") {
            let _ = parse_at(&text);
            let _ = parse_at(&format!("2026112{tail}"));
            let _ = btrbk(&text);
            let _ = btrbk(&format!("@home.2026112{tail}"));
            let _ = raw_stream(&format!("{text}.btrfs.zst"));
            let _ = snapper_date(&format!("<date>{text}</date>"));
            let _ = snapper_description(&format!("<description>{text}"));
        }

        /// Every btrbk name of a valid time reads back as that time, in each format.
        #[test]
        fn btrbk_names_read_back(
            y in 1970i64..2200, mo in 1i64..=12, d in 1i64..=28,
            h in 0i64..24, mi in 0i64..60, s in 0i64..60, seq in 0u32..100,
        ) {
            let t = crate::time::unix_from_civil(y, mo, d, h, mi, s).unwrap();
            let long = format!("@home.{y:04}{mo:02}{d:02}T{h:02}{mi:02}");
            proptest::prop_assert_eq!(btrbk(&long).map(|n| n.time), Some(t - s));
            let iso = format!("@home.{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}+0000_{seq}");
            let n = btrbk(&iso).unwrap();
            proptest::prop_assert_eq!((n.time, n.seq, n.zoned), (t, seq, true));
            let at = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            proptest::prop_assert_eq!(parse_at(&at), Some(t));
        }
    }
}
