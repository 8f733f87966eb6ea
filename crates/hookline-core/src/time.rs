//! Timestamps as unix milliseconds, written and read as RFC 3339 in UTC, with jiff's calendar.
//!
//! The store keeps times as unix milliseconds, so that is what a [`Timestamp`] holds; jiff's civil date and
//! time do the calendar (month lengths, leap years, days since the epoch) and the writing. Reading checks
//! RFC 3339's shape here before jiff does the rest: jiff's own parsers also take forms this API refuses (a
//! space for `T`, no seconds, `+0000`, a bracketed zone, `:60` read as `:59`), and their errors do not say
//! which field was out of range.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};

/// The unix epoch as a civil date and time in UTC. Times go through jiff's civil `DateTime` rather than its
/// `Timestamp`, whose range stops at 9999-12-30T22:00Z so that every offset has room; RFC 3339 goes on to
/// the end of 9999-12-31.
const EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);

/// How much of a bad value an error message repeats.
const SHOWN_CHARS: usize = 64;

/// A point in time with millisecond precision, stored as unix milliseconds.
///
/// Serializes as an RFC 3339 string with milliseconds, such as
/// `"2021-05-20T09:23:53.123+00:00"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// An RFC 3339 timestamp that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid timestamp {value:?}; use RFC 3339 such as 2021-05-20T09:23:53Z")]
    Malformed { value: String },
    #[error("invalid timestamp {value:?}: {field} out of range; use a real date and time such as 2021-05-20T09:23:53Z")]
    OutOfRange { value: String, field: &'static str },
}

impl Timestamp {
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (so -1 ms is -1 s).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The current time from the system clock.
    ///
    /// Read with std rather than jiff's `Timestamp::now`, which is no faster and panics on a clock outside
    /// its range; this runs on every publish and attempt.
    pub fn now() -> Self {
        let millis = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map(|ms| -ms).unwrap_or(i64::MIN),
        };
        Timestamp(millis)
    }

    /// Whole seconds in UTC, e.g. `2021-05-20T09:23:53+00:00`.
    ///
    /// Years before 0000 are written with a sign and six digits (`-000001-12-31T…`), which
    /// [`Timestamp::parse_rfc3339`] does not read; times beyond jiff's years -9999..=9999 are written as the
    /// first or last millisecond of that range.
    pub fn to_rfc3339(self) -> String {
        format!("{:.0}+00:00", self.civil())
    }

    /// Milliseconds in UTC, e.g. `2021-05-20T09:23:53.123+00:00`.
    pub fn to_rfc3339_millis(self) -> String {
        format!("{:.3}+00:00", self.civil())
    }

    /// This time as a civil date and time in UTC, held within jiff's range.
    fn civil(self) -> DateTime {
        let since_epoch = SignedDuration::from_millis(self.0);
        EPOCH.checked_add(since_epoch).unwrap_or(if self.0 < 0 { DateTime::MIN } else { DateTime::MAX })
    }

    /// Reads `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`.
    ///
    /// `T` and `Z` may be lowercase. Fractions of any length are accepted and
    /// cut to milliseconds. Leap seconds (`:60`) are rejected.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeError> {
        let malformed = || TimeError::Malformed { value: shown(s) };
        let out_of_range = |field| TimeError::OutOfRange { value: shown(s), field };
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(malformed());
        }
        let year = digits(&b[0..4]).ok_or_else(malformed)?;
        let month = digits(&b[5..7]).ok_or_else(malformed)?;
        let day = digits(&b[8..10]).ok_or_else(malformed)?;
        let hour = digits(&b[11..13]).ok_or_else(malformed)?;
        let minute = digits(&b[14..16]).ok_or_else(malformed)?;
        let second = digits(&b[17..19]).ok_or_else(malformed)?;

        let mut rest = &b[19..];
        let mut millis = 0;
        if let [b'.', fraction @ ..] = rest {
            let len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 {
                return Err(malformed());
            }
            // Keep milliseconds; further digits are dropped (rounding down).
            let mut scale = 100;
            for &digit in &fraction[..len.min(3)] {
                millis += i64::from(digit - b'0') * scale;
                scale /= 10;
            }
            rest = &fraction[len..];
        }
        let offset_minutes = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hours = digits(&[*h1, *h2]).ok_or_else(malformed)?;
                let minutes = digits(&[*m1, *m2]).ok_or_else(malformed)?;
                if hours > 23 {
                    return Err(out_of_range("offset hour"));
                }
                if minutes > 59 {
                    return Err(out_of_range("offset minute"));
                }
                let total = hours * 60 + minutes;
                if *sign == b'-' { -total } else { total }
            }
            _ => return Err(malformed()),
        };

        // Four digits each at most 9999 and two digits at most 99, so the casts below keep their value.
        let (year, month, day) = (year as i16, month as i8, day as i8);
        if !(1..=12).contains(&month) {
            return Err(out_of_range("month"));
        }
        // The year and month are in range by now, so only the day can be refused.
        let date = Date::new(year, month, day).map_err(|_| out_of_range("day"))?;
        if hour > 23 {
            return Err(out_of_range("hour"));
        }
        if minute > 59 {
            return Err(out_of_range("minute"));
        }
        if second > 59 {
            return Err(out_of_range("second"));
        }

        let datetime = date.at(hour as i8, minute as i8, second as i8, 0);
        let local_millis = datetime.duration_since(EPOCH).as_millis();
        // Years 0000..=9999 are a few hundred billion seconds from the epoch: far inside an i64 of milliseconds.
        let local_millis = i64::try_from(local_millis).expect("a four-digit year fits in i64 milliseconds");
        Ok(Timestamp(local_millis + millis - offset_minutes * 60_000))
    }

    /// This time plus `d` (whole milliseconds), stopping at the largest
    /// representable time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// This time minus `d` (whole milliseconds), stopping at the smallest representable time.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339_millis())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rfc3339;

        impl serde::de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(s).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Rfc3339)
    }
}

/// The value of a run of ASCII digits, or `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
}

/// At most [`SHOWN_CHARS`] characters of a bad value, for an error message.
fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `text` (written in our whole-second form) and `seconds`
    /// describe the same time, both ways.
    fn check(text: &str, seconds: i64) {
        let ts = Timestamp::from_unix_millis(seconds * 1000);
        assert_eq!(ts.to_rfc3339(), text, "{seconds}");
        assert_eq!(Timestamp::parse_rfc3339(text), Ok(ts), "{text}");
        assert_eq!(ts.unix_seconds(), seconds);
    }

    /// Checks that `text` parses to `millis`.
    fn check_parse(text: &str, millis: i64) {
        assert_eq!(Timestamp::parse_rfc3339(text), Ok(Timestamp::from_unix_millis(millis)), "{text}");
    }

    /// Checks the millisecond form of `millis`, and that it reads back.
    fn check_millis(millis: i64, text: &str) {
        let ts = Timestamp::from_unix_millis(millis);
        assert_eq!(ts.to_rfc3339_millis(), text, "{millis}");
        assert_eq!(Timestamp::parse_rfc3339(text), Ok(ts), "{text}");
    }

    fn malformed(text: &str) {
        assert_eq!(Timestamp::parse_rfc3339(text), Err(TimeError::Malformed { value: text.to_owned() }), "{text}");
    }

    fn out_of_range(text: &str, field: &'static str) {
        assert_eq!(
            Timestamp::parse_rfc3339(text),
            Err(TimeError::OutOfRange { value: text.to_owned(), field }),
            "{text}"
        );
    }

    // Known answers from Python's datetime.
    #[test]
    fn whole_seconds() {
        check("1970-01-01T00:00:00+00:00", 0);
        check("2021-05-20T09:23:53+00:00", 1_621_502_633);
        check("2000-02-29T12:00:00+00:00", 951_825_600);
        check("2000-03-01T00:00:00+00:00", 951_868_800);
        check("2024-02-29T00:00:00+00:00", 1_709_164_800);
        check("2100-02-28T23:59:59+00:00", 4_107_542_399);
        check("2100-03-01T00:00:00+00:00", 4_107_542_400);
        check("2038-01-19T03:14:08+00:00", 2_147_483_648);
        check("1969-12-31T23:59:59+00:00", -1);
        check("1900-01-01T00:00:00+00:00", -2_208_988_800);
        check("1600-02-29T00:00:00+00:00", -11_670_998_400);
        check("0001-01-01T00:00:00+00:00", -62_135_596_800);
        check("0000-01-01T00:00:00+00:00", -62_167_219_200);
    }

    #[test]
    fn every_day_round_trips() {
        // Every midnight from 1900 to 2100, and every 29th from 0000-01-01 to 9999-12-31.
        let days = (-25_567..=47_482).chain((-719_528..=2_932_896).step_by(29)).chain([2_932_896]);
        for days in days {
            let ts = Timestamp::from_unix_millis(days * 86_400_000);
            let text = ts.to_rfc3339();
            assert!(text.ends_with("T00:00:00+00:00"), "{text}");
            assert_eq!(Timestamp::parse_rfc3339(&text), Ok(ts), "{text}");
        }
    }

    #[test]
    fn milliseconds() {
        check_millis(0, "1970-01-01T00:00:00.000+00:00");
        check_millis(1_621_502_633_123, "2021-05-20T09:23:53.123+00:00");
        check_millis(1_621_502_633_007, "2021-05-20T09:23:53.007+00:00");
        check_millis(-1, "1969-12-31T23:59:59.999+00:00");
        check_millis(253_402_300_799_999, "9999-12-31T23:59:59.999+00:00");
        assert_eq!(Timestamp::from_unix_millis(-1).unix_seconds(), -1);
        assert_eq!(Timestamp::from_unix_millis(1999).unix_seconds(), 1);
        assert_eq!(Timestamp::from_unix_millis(1_621_502_633_999).to_rfc3339(), "2021-05-20T09:23:53+00:00");
    }

    #[test]
    fn parse_forms() {
        check_parse("2021-05-20T09:23:53Z", 1_621_502_633_000);
        check_parse("2021-05-20t09:23:53z", 1_621_502_633_000);
        check_parse("2021-05-20T09:23:53-00:00", 1_621_502_633_000);
        check_parse("2021-05-20T04:23:53-05:00", 1_621_502_633_000);
        check_parse("2021-05-20T14:53:53+05:30", 1_621_502_633_000);
        check_parse("2021-05-19T23:23:53-10:00", 1_621_502_633_000);
        check_parse("1970-01-01T00:00:00-00:01", 60_000);
        check_parse("2021-05-20T09:23:53.1Z", 1_621_502_633_100);
        check_parse("2021-05-20T09:23:53.12Z", 1_621_502_633_120);
        check_parse("2021-05-20T09:23:53.123Z", 1_621_502_633_123);
        check_parse("2021-05-20T09:23:53.123999999Z", 1_621_502_633_123);
        check_parse("2021-05-20T09:23:53.5+01:00", 1_621_499_033_500);
        check_parse("1969-12-31T23:59:59.5Z", -500);
    }

    #[test]
    fn parse_errors() {
        malformed("");
        malformed("garbage");
        malformed("2021-05-20");
        malformed("2021-05-20T09:23:53");
        malformed("2021-05-20 09:23:53Z");
        malformed("2021-05-20T09:23Z");
        malformed("2021/05/20T09:23:53Z");
        malformed("2021-5-20T09:23:53Z");
        malformed("21-05-20T09:23:53Z");
        malformed("+2021-05-20T09:23:53Z");
        malformed("2021-05-20T09:23:53.Z");
        malformed("2021-05-20T09:23:53.12aZ");
        malformed("2021-05-20T09:23:53+0000");
        malformed("2021-05-20T09:23:53+00");
        malformed("2021-05-20T09:23:53UTC");
        malformed("2021-05-20T09:23:53Z ");
        malformed(" 2021-05-20T09:23:53Z");
        malformed("2021-05-20T09:23:5xZ");
        malformed("2021-05-20T09:23:53+0a:00");
        malformed("2021-05-20T09:2é:53Z");
        out_of_range("2021-13-01T00:00:00Z", "month");
        out_of_range("2021-00-01T00:00:00Z", "month");
        out_of_range("2021-02-30T00:00:00Z", "day");
        out_of_range("2021-02-29T00:00:00Z", "day");
        out_of_range("2100-02-29T00:00:00Z", "day");
        out_of_range("2021-04-31T00:00:00Z", "day");
        out_of_range("2021-05-00T00:00:00Z", "day");
        out_of_range("2021-05-20T24:00:00Z", "hour");
        out_of_range("2021-05-20T09:60:00Z", "minute");
        out_of_range("2016-12-31T23:59:60Z", "second");
        out_of_range("2021-05-20T09:23:53+24:00", "offset hour");
        out_of_range("2021-05-20T09:23:53+05:60", "offset minute");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            Timestamp::parse_rfc3339("yesterday").unwrap_err().to_string(),
            r#"invalid timestamp "yesterday"; use RFC 3339 such as 2021-05-20T09:23:53Z"#
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2021-02-30T00:00:00Z").unwrap_err().to_string(),
            r#"invalid timestamp "2021-02-30T00:00:00Z": day out of range; use a real date and time such as 2021-05-20T09:23:53Z"#
        );
        let long = "x".repeat(100);
        assert_eq!(
            Timestamp::parse_rfc3339(&long),
            Err(TimeError::Malformed { value: format!("{}…", "x".repeat(64)) })
        );
    }

    #[test]
    fn outside_four_digit_years() {
        let ts = Timestamp::from_unix_millis(-62_167_219_200_001);
        assert_eq!(ts.to_rfc3339_millis(), "-000001-12-31T23:59:59.999+00:00");
        // Beyond jiff's years -9999..=9999: the range's first or last millisecond.
        let ts = Timestamp::from_unix_millis(253_402_300_800_000);
        assert_eq!(ts.to_rfc3339_millis(), "9999-12-31T23:59:59.999+00:00");
        assert_eq!(Timestamp::from_unix_millis(i64::MAX).to_rfc3339(), "9999-12-31T23:59:59+00:00");
        assert_eq!(Timestamp::from_unix_millis(i64::MIN).to_rfc3339_millis(), "-009999-01-01T00:00:00.000+00:00");
    }

    #[test]
    fn arithmetic_and_now() {
        let ts = Timestamp::from_unix_millis(1_000);
        assert_eq!(ts.saturating_add(Duration::from_millis(1_500)).unix_millis(), 2_500);
        assert_eq!(ts.saturating_add(Duration::from_micros(1_999)).unix_millis(), 1_001);
        assert_eq!(ts.saturating_add(Duration::MAX), Timestamp::from_unix_millis(i64::MAX));
        assert_eq!(
            Timestamp::from_unix_millis(i64::MAX - 1).saturating_add(Duration::from_secs(1)),
            Timestamp::from_unix_millis(i64::MAX)
        );
        // After this code was written and before the year 3000.
        let now = Timestamp::now().unix_seconds();
        assert!((1_700_000_000..32_503_680_000).contains(&now), "{now}");
        assert!(Timestamp::from_unix_millis(1) < Timestamp::from_unix_millis(2));
    }

    #[test]
    fn serde() {
        let ts = Timestamp::from_unix_millis(1_621_502_633_123);
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, r#""2021-05-20T09:23:53.123+00:00""#);
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ts);
        let zulu: Timestamp = serde_json::from_str(r#""2021-05-20T09:23:53Z""#).unwrap();
        assert_eq!(zulu.unix_seconds(), 1_621_502_633);

        let err = serde_json::from_str::<Timestamp>(r#""2021-13-01T00:00:00Z""#).unwrap_err();
        assert!(err.to_string().contains("month out of range"), "{err}");
        let err = serde_json::from_str::<Timestamp>("1621502633").unwrap_err();
        assert!(err.to_string().contains("an RFC 3339 timestamp string"), "{err}");
    }
}
