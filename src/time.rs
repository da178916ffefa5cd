//! UTC calendar arithmetic: Unix seconds to a civil date and back, the clock, and the
//! stamps lifeboat writes into names and logs.
//!
//! Own code rather than `chrono` (compiled in only as lamfat's optional feature): lifeboat
//! needs UTC and nothing else — no zones, no leap-second tables — and the two conversions
//! below are a few lines each. Owning them keeps the checked direction exact for the name
//! parsers (`2026-02-30` and `25:00` are `None`, `:60` is accepted as btrbk writes it) and
//! keeps the dependency on chrono lamfat's choice, not ours.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01 00:00:00 UTC.
pub type Epoch = i64;

/// Now, in Unix seconds (0 on a clock set before 1970).
pub fn now() -> Epoch {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as Epoch)
        .unwrap_or(0)
}

/// (year, month, day, hour, minute, second) in UTC for a time in Unix seconds.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m as u32,
        d as u32,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The Unix time of a UTC civil time (days from civil, Howard Hinnant's algorithm), checked:
/// `None` for 2026-02-30 and 25:00.
pub fn unix_from_civil(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<Epoch> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&s) {
        return None;
    }
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// `YYYYMMDDTHHMMSS` (run logs).
pub fn utc_stamp(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(secs);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}")
}

/// `YYYYMMDDTHHMM` (names of things moved aside); times before 1970 read as 1970.
pub fn minute_stamp(t: Epoch) -> String {
    let (y, mo, d, h, mi, _) = civil(t.max(0) as u64);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}")
}

/// `2026-11-20 03:00:00 UTC`; times before 1970 read as 1970.
pub fn format_time(t: Epoch) -> String {
    let (y, mo, d, h, mi, s) = civil(t.max(0) as u64);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `3 days`, `5 hours`, `12 minutes`: how old a point taken at `t` is at `now`.
pub fn format_age(t: Epoch, now: Epoch) -> String {
    let secs = now - t;
    if secs < 0 {
        return "in the future (check the clock)".into();
    }
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "day"),
        s if s >= 2 * 3600 => (s / 3600, "hour"),
        s => (s / 60, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02 00:00:00 UTC, as `date -u -d 2026-12-02 +%s` prints it.
    const DEC02_2026: Epoch = 1_796_169_600;
    /// 2024-02-29 12:34:56 UTC (`date -u -d '2024-02-29 12:34:56' +%s`).
    const LEAP_DAY: Epoch = 1_709_210_096;

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "19700101T000000");
        // 2026-11-24 18:20:59 UTC
        assert_eq!(utc_stamp(1_795_544_459), "20261124T182059");
        assert_eq!(minute_stamp(DEC02_2026 + 3600 + 59), "20261202T0100");
        assert_eq!(format_time(-5), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn unix_to_civil() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(LEAP_DAY as u64), (2024, 2, 29, 12, 34, 56));
        assert_eq!(civil(DEC02_2026 as u64), (2026, 12, 2, 0, 0, 0));
        assert_eq!(civil(DEC02_2026 as u64 - 1), (2026, 12, 1, 23, 59, 59));
    }

    #[test]
    fn civil_to_unix() {
        assert_eq!(unix_from_civil(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_from_civil(2024, 2, 29, 12, 34, 56), Some(LEAP_DAY));
        assert_eq!(unix_from_civil(2026, 12, 2, 0, 0, 0), Some(DEC02_2026));
        assert_eq!(unix_from_civil(1969, 12, 31, 23, 59, 59), Some(-1));
        // No leap day in 2026 (nor in 1900); 2000 has one.
        assert_eq!(unix_from_civil(2026, 2, 29, 0, 0, 0), None);
        assert_eq!(unix_from_civil(1900, 2, 29, 0, 0, 0), None);
        assert!(unix_from_civil(2000, 2, 29, 0, 0, 0).is_some());
        assert_eq!(unix_from_civil(2026, 2, 30, 0, 0, 0), None);
        assert_eq!(unix_from_civil(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(unix_from_civil(2026, 11, 20, 25, 0, 0), None);
        assert_eq!(unix_from_civil(2026, 11, 20, 3, 60, 0), None);
    }

    #[test]
    fn both_directions_agree() {
        // Every day from 1970 to 2100, at a time with every field distinct.
        for day in 0..47_847u64 {
            let secs = day * 86_400 + 3 * 3600 + 4 * 60 + 5;
            let (y, m, d, h, mi, s) = civil(secs);
            let back = unix_from_civil(y, m.into(), d.into(), h.into(), mi.into(), s.into());
            assert_eq!(back, Some(secs as Epoch), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn ages() {
        const NOV20_0300: Epoch = 1_795_143_600; // 2026-11-20T03:00:00Z
        assert_eq!(
            format_age(NOV20_0300, NOV20_0300 + 8 * 86_400 + 5),
            "8 days"
        );
        assert_eq!(format_age(NOV20_0300, NOV20_0300 + 86_400), "24 hours");
        assert_eq!(format_age(NOV20_0300, NOV20_0300 + 60), "1 minute");
        assert!(format_age(NOV20_0300, NOV20_0300 - 1).contains("future"));
    }
}
