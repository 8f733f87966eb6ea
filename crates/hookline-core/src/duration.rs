//! Human-readable durations such as `500ms`, `5s` or `1h30m`, for retry schedules and config.
//!
//! A duration is one or more `<whole number><unit>` parts, units `d`, `h`,
//! `m`, `s` and `ms`, each at most once and largest first (`1h30m`, not
//! `30m1h`). A bare `0` is allowed; any other number needs a unit. Durations
//! are whole milliseconds and at most [`MAX`] (30 days), or a longer bound a caller gives
//! ([`parse_duration_at_most`]).
//!
//! Written by hand rather than on jiff's friendly format or humantime: both read forms this grammar refuses
//! (`1.5s`, `5 s`, `5sec`, `1h 30m`; jiff also `-5s`, humantime also `30m1h`), neither writes the compact `1d12h`
//! (jiff's `SignedDuration` has no days, humantime writes `1day 12h`), and their errors do not say which rule a
//! value broke, which [`DurationError`] tells the operator.

use std::fmt::Write as _;
use std::time::Duration;

/// The longest duration [`parse_duration`] accepts: 30 days.
pub const MAX: Duration = Duration::from_secs(30 * 86_400);

/// How much of a bad value an error message repeats.
const SHOWN_CHARS: usize = 64;

/// Units from largest to smallest, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// A duration string that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {value:?}; use a number followed by ms, s, m, h or d")]
    Invalid { value: String },
    #[error("invalid duration {value:?}; add a unit after the number: ms, s, m, h or d")]
    MissingUnit { value: String },
    #[error("invalid duration {value:?}; give each unit once, largest first, e.g. 1h30m")]
    UnitOrder { value: String },
    #[error("duration {value:?} overflows; the maximum is {max}")]
    Overflow { value: String, max: String },
    #[error("duration {value:?} is too long; the maximum is {max}")]
    TooLong { value: String, max: String },
}

/// Reads a duration such as `0`, `500ms`, `5s`, `3m`, `2h`, `1d`, `1h30m` or
/// `1m30s`; surrounding whitespace is ignored.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    parse_duration_at_most(s, MAX)
}

/// Reads a duration as [`parse_duration`] does, up to `max` instead of [`MAX`] (a retention period may be a year).
pub fn parse_duration_at_most(s: &str, max: Duration) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let value = || shown(s);
    if s.is_empty() {
        return Err(DurationError::Invalid { value: value() });
    }

    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut total_ms: u64 = 0;
    // Index in UNITS of the previous part's unit.
    let mut previous_unit: Option<usize> = None;
    while pos < bytes.len() {
        let number_start = pos;
        let mut number: u64 = 0;
        while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
            number = number
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| DurationError::Overflow { value: value(), max: format_duration(max) })?;
            pos += 1;
        }
        if pos == number_start {
            return Err(DurationError::Invalid { value: value() });
        }

        let unit_start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_alphabetic) {
            pos += 1;
        }
        if unit_start == pos {
            return Err(if pos == bytes.len() {
                DurationError::MissingUnit { value: value() }
            } else {
                DurationError::Invalid { value: value() }
            });
        }
        let unit = &s[unit_start..pos];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(DurationError::Invalid { value: value() });
        };
        if previous_unit.is_some_and(|previous| index <= previous) {
            return Err(DurationError::UnitOrder { value: value() });
        }
        previous_unit = Some(index);

        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| DurationError::Overflow { value: value(), max: format_duration(max) })?;
    }

    let duration = Duration::from_millis(total_ms);
    if duration > max {
        return Err(DurationError::TooLong { value: value(), max: format_duration(max) });
    }
    Ok(duration)
}

/// Writes `d` the canonical way [`parse_duration`] reads back: each nonzero
/// unit once, largest first (`1h30m`, `1s500ms`), or `0s` for zero.
///
/// Time below a millisecond is dropped. Durations longer than [`MAX`] are
/// written the same way (`45d`) although they do not parse.
pub fn format_duration(d: Duration) -> String {
    let mut rest = d.as_millis();
    if rest == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, ms) in UNITS {
        let ms = u128::from(ms);
        let count = rest / ms;
        rest %= ms;
        if count > 0 {
            // Writing to a String cannot fail.
            let _ = write!(out, "{count}{unit}");
        }
    }
    out
}

/// At most [`SHOWN_CHARS`] characters of a bad value, for an error message.
fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Serde helpers for a `Duration` held as a string such as `"1h30m"`:
/// `#[serde(with = "hookline_core::duration::serde_duration")]`.
pub mod serde_duration {
    use std::fmt;
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }

    struct DurationVisitor;

    impl serde::de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration string such as \"5s\" or \"1h30m\"")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
            super::parse_duration(s).map_err(E::custom)
        }
    }
}

/// Serde helpers for a `Vec<Duration>` held as a list of strings such as
/// `["30s", "5m", "1h"]`:
/// `#[serde(with = "hookline_core::duration::serde_duration_list")]`.
pub mod serde_duration_list {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(list: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(list.iter().map(|d| super::format_duration(*d)))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(transparent)]
        struct Item(#[serde(with = "super::serde_duration")] Duration);

        let items: Vec<Item> = serde::Deserialize::deserialize(deserializer)?;
        Ok(items.into_iter().map(|Item(d)| d).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `input` reads as `ms` milliseconds and writes back as
    /// `canonical`, which reads back the same.
    fn check(input: &str, ms: u64, canonical: &str) {
        let d = Duration::from_millis(ms);
        assert_eq!(parse_duration(input), Ok(d), "{input:?}");
        assert_eq!(format_duration(d), canonical, "{input:?}");
        assert_eq!(parse_duration(canonical), Ok(d), "{canonical:?}");
    }

    fn invalid(input: &str, shown: &str) {
        let value = shown.to_owned();
        assert_eq!(parse_duration(input), Err(DurationError::Invalid { value }), "{input:?}");
    }

    fn missing_unit(input: &str) {
        let value = input.trim().to_owned();
        assert_eq!(parse_duration(input), Err(DurationError::MissingUnit { value }), "{input:?}");
    }

    fn unit_order(input: &str) {
        let value = input.to_owned();
        assert_eq!(parse_duration(input), Err(DurationError::UnitOrder { value }), "{input:?}");
    }

    fn overflow(input: &str) {
        let value = input.to_owned();
        let max = "30d".to_owned();
        assert_eq!(parse_duration(input), Err(DurationError::Overflow { value, max }), "{input:?}");
    }

    fn too_long(input: &str) {
        let value = input.to_owned();
        let max = "30d".to_owned();
        assert_eq!(parse_duration(input), Err(DurationError::TooLong { value, max }), "{input:?}");
    }

    #[test]
    fn round_trips() {
        check("0", 0, "0s");
        check("0s", 0, "0s");
        check("0ms", 0, "0s");
        check("0h0m", 0, "0s");
        check("500ms", 500, "500ms");
        check("5s", 5_000, "5s");
        check("3m", 180_000, "3m");
        check("2h", 7_200_000, "2h");
        check("1d", 86_400_000, "1d");
        check("1h30m", 5_400_000, "1h30m");
        check("1m30s", 90_000, "1m30s");
        check("90s", 90_000, "1m30s");
        check("1500ms", 1_500, "1s500ms");
        check("60m", 3_600_000, "1h");
        check("36h", 129_600_000, "1d12h");
        check("1d2h3m4s5ms", 93_784_005, "1d2h3m4s5ms");
        check("007s", 7_000, "7s");
        check("  5s\n", 5_000, "5s");
        check("\t0 ", 0, "0s");
        check("30d", 2_592_000_000, "30d");
        check("720h", 2_592_000_000, "30d");
        check("29d23h59m59s999ms", 2_591_999_999, "29d23h59m59s999ms");
    }

    #[test]
    fn format_edges() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_micros(999)), "0s");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
        assert_eq!(format_duration(Duration::from_secs(45 * 86_400)), "45d");
        assert_eq!(format_duration(Duration::MAX), "213503982334601d7h15s999ms");
    }

    #[test]
    fn errors() {
        invalid("", "");
        invalid("   ", "");
        invalid("5x", "5x");
        invalid("s", "s");
        invalid("ms5", "ms5");
        invalid("-5s", "-5s");
        invalid("+5s", "+5s");
        invalid("1.5s", "1.5s");
        invalid("5 s", "5 s");
        invalid("1h 30m", "1h 30m");
        invalid("5S", "5S");
        invalid("5sec", "5sec");
        invalid("5w", "5w");
        invalid("5s!", "5s!");
        invalid("٥s", "٥s");
        missing_unit("5");
        missing_unit(" 30 ");
        missing_unit("00");
        missing_unit("1h30");
        unit_order("30m1h");
        unit_order("1s1s");
        unit_order("500ms1s");
        unit_order("1m1h");
        overflow("18446744073709551616ms");
        overflow("99999999999999999999999s");
        overflow("213503982335d");
        overflow("18446744073709551s1000ms");
        too_long("31d");
        too_long("30d1ms");
        too_long("721h");
        too_long("18446744073709551615ms");
    }

    #[test]
    fn error_messages() {
        let message = |s: &str| parse_duration(s).unwrap_err().to_string();
        assert_eq!(message("5x"), r#"invalid duration "5x"; use a number followed by ms, s, m, h or d"#);
        assert_eq!(message("5"), r#"invalid duration "5"; add a unit after the number: ms, s, m, h or d"#);
        assert_eq!(message("30m1h"), r#"invalid duration "30m1h"; give each unit once, largest first, e.g. 1h30m"#);
        assert_eq!(
            message("99999999999999999999s"),
            r#"duration "99999999999999999999s" overflows; the maximum is 30d"#
        );
        assert_eq!(message("31d"), r#"duration "31d" is too long; the maximum is 30d"#);
        let year = Duration::from_secs(365 * 86_400);
        assert_eq!(parse_duration_at_most("365d", year), Ok(year));
        assert_eq!(
            parse_duration_at_most("366d", year).unwrap_err().to_string(),
            r#"duration "366d" is too long; the maximum is 365d"#
        );
        assert_eq!(
            parse_duration(&"x".repeat(100)),
            Err(DurationError::Invalid { value: format!("{}…", "x".repeat(64)) })
        );
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Config {
        #[serde(with = "serde_duration")]
        timeout: Duration,
        #[serde(with = "serde_duration_list")]
        schedule: Vec<Duration>,
    }

    #[test]
    fn serde() {
        let config = Config {
            timeout: Duration::from_millis(1_500),
            schedule: vec![Duration::ZERO, Duration::from_secs(30), Duration::from_secs(5_400)],
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(json, r#"{"timeout":"1s500ms","schedule":["0s","30s","1h30m"]}"#);
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);

        let loose: Config = serde_json::from_str(r#"{"timeout":" 90s ","schedule":["0","1500ms"]}"#).unwrap();
        assert_eq!(loose.timeout, Duration::from_secs(90));
        assert_eq!(loose.schedule, [Duration::ZERO, Duration::from_millis(1_500)]);

        let empty: Config = serde_json::from_str(r#"{"timeout":"1s","schedule":[]}"#).unwrap();
        assert!(empty.schedule.is_empty());

        let err = serde_json::from_str::<Config>(r#"{"timeout":"5x","schedule":[]}"#).unwrap_err();
        assert!(err.to_string().contains(r#"invalid duration "5x""#), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"timeout":"1s","schedule":["5"]}"#).unwrap_err();
        assert!(err.to_string().contains("add a unit"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"timeout":5,"schedule":[]}"#).unwrap_err();
        assert!(err.to_string().contains("a duration string"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"timeout":"1s","schedule":"5s"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
