//! Times as lifeboat keeps them: seconds since the Unix epoch, UTC (`Epoch`), made from a
//! calendar date and written for people. Restore points, restic snapshots and `--at` all
//! use it; the other direction of the calendar (seconds to a date) is `runlog::civil`.

/// Seconds since the Unix epoch, UTC.
pub type Epoch = i64;

/// Days from civil (Howard Hinnant's algorithm), checked: `None` for 2026-02-30 and 25:00.
pub fn epoch(y: i64, m: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<Epoch> {
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

/// `2026-11-20 03:00:00 UTC`.
pub fn format_time(t: Epoch) -> String {
    let (y, mo, d, h, mi, s) = crate::runlog::civil(t.max(0) as u64);
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

    const NOV20_0300: Epoch = 1_795_143_600; // 2026-11-20T03:00:00Z

    #[test]
    fn ages() {
        assert_eq!(
            format_age(NOV20_0300, NOV20_0300 + 8 * 86_400 + 5),
            "8 days"
        );
        assert_eq!(format_age(NOV20_0300, NOV20_0300 + 86_400), "24 hours");
        assert_eq!(format_age(NOV20_0300, NOV20_0300 + 60), "1 minute");
        assert!(format_age(NOV20_0300, NOV20_0300 - 1).contains("future"));
    }
}
