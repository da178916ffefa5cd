//! Sizes as people write them in a spec: `"512MiB"`, `"64GiB"`, `"1TB"`, `"4.5TB"`, `"rest"`.
//!
//! Binary suffixes (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB)
//! powers of 1000 — the way disk vendors count. A bare integer is bytes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    Bytes(u64),
    /// Everything left on the disk after the other partitions.
    Rest,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SizeError(String);

const UNITS: &[(&str, u64)] = &[
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("B", 1),
];

impl std::str::FromStr for SizeSpec {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("rest") {
            return Ok(SizeSpec::Rest);
        }
        let (number, multiplier) = UNITS
            .iter()
            .find_map(|(suffix, mult)| t.strip_suffix(suffix).map(|n| (n.trim(), *mult)))
            .unwrap_or((t, 1));
        let bad = || {
            SizeError(format!(
                "size \"{text}\" is not a size: write a number with a unit such as \"512MiB\", \"64GiB\", \"1TB\", or \"rest\""
            ))
        };
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad());
        }
        let bytes = match number.split_once('.') {
            None => number
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(multiplier)),
            Some((whole, frac)) => {
                // Decimal fractions ("4.5TB") without floating point rounding.
                if whole.is_empty() || frac.is_empty() || frac.len() > 9 || frac.contains('.') {
                    return Err(bad());
                }
                let scale = 10u64.pow(frac.len() as u32);
                let whole: u64 = whole.parse().map_err(|_| bad())?;
                let frac: u64 = frac.parse().map_err(|_| bad())?;
                whole
                    .checked_mul(multiplier)
                    .and_then(|w| {
                        (frac as u128 * multiplier as u128)
                            .checked_div(scale as u128)
                            .and_then(|f| u64::try_from(f).ok())
                            .and_then(|f| w.checked_add(f))
                    })
                    .filter(|_| (frac as u128 * multiplier as u128).is_multiple_of(scale as u128))
            }
        };
        match bytes {
            Some(0) => Err(SizeError(format!("size \"{text}\" is zero"))),
            Some(b) => Ok(SizeSpec::Bytes(b)),
            None => Err(bad()),
        }
    }
}

impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: serde's untagged error ("data did not
        // match any variant") would tell a person nothing.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SizeSpec;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"512MiB\", \"1TB\" or \"rest\", or a number of bytes")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<SizeSpec, E> {
                match n {
                    0 => Err(E::custom("size is zero")),
                    n => Ok(SizeSpec::Bytes(n)),
                }
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<SizeSpec, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("size {n} is negative"))),
                }
            }

            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<SizeSpec, E> {
                Err(E::custom(format!(
                    "size {n} is not a whole number of bytes: write it with a unit as a string, like \"{n}TB\""
                )))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SizeSpec, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for SizeSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SizeSpec::Bytes(b) => s.serialize_u64(*b),
            SizeSpec::Rest => s.serialize_str("rest"),
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Bytes(b) => f.write_str(&human(*b)),
            SizeSpec::Rest => f.write_str("rest"),
        }
    }
}

/// A byte count for people: binary units for exact powers ("512 MiB"), otherwise the
/// decimal unit vendors print on the label ("2.00 TB").
pub fn human(bytes: u64) -> String {
    for (suffix, mult) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)] {
        if bytes >= mult && bytes.is_multiple_of(mult) && bytes / mult < 10_000 {
            return format!("{} {suffix}", bytes / mult);
        }
    }
    for (suffix, mult) in [
        ("TB", 1_000_000_000_000u64),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
    ] {
        if bytes >= mult {
            return format!("{:.2} {suffix}", bytes as f64 / mult as f64);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<SizeSpec, SizeError> {
        s.parse()
    }

    #[test]
    fn parses_units() {
        assert_eq!(p("512MiB"), Ok(SizeSpec::Bytes(512 << 20)));
        assert_eq!(p("1GiB"), Ok(SizeSpec::Bytes(1 << 30)));
        assert_eq!(p("64 GiB"), Ok(SizeSpec::Bytes(64 << 30)));
        assert_eq!(p("1TB"), Ok(SizeSpec::Bytes(1_000_000_000_000)));
        assert_eq!(p("500GB"), Ok(SizeSpec::Bytes(500_000_000_000)));
        assert_eq!(p("4.5TB"), Ok(SizeSpec::Bytes(4_500_000_000_000)));
        assert_eq!(p("1.5GiB"), Ok(SizeSpec::Bytes(3 << 29)));
        assert_eq!(p("4096"), Ok(SizeSpec::Bytes(4096)));
        assert_eq!(p("rest"), Ok(SizeSpec::Rest));
        assert_eq!(p("REST"), Ok(SizeSpec::Rest));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "GiB",
            "12XB",
            "-5GiB",
            "1.GiB",
            ".5GiB",
            "0MiB",
            "1.2.3GB",
            "99999999999TB",
        ] {
            assert!(p(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn human_readable() {
        assert_eq!(human(512 << 20), "512 MiB");
        assert_eq!(human(2_000_000_000_000), "2.00 TB");
        assert_eq!(human(4_500_000_000_000), "4.50 TB");
        assert_eq!(human(12), "12 B");
        assert_eq!(human(2_861_020 << 20), "3.00 TB");
    }
}
