//! A point in time, UTC, to the second, written as RFC 3339 (`2025-03-01T12:00:00Z`).
//!
//! Saved documents (capability profiles) carry dates a person reads and a program compares;
//! this type is both: it orders like the instant it names and prints like a date. It reads any
//! RFC 3339 date-time (an offset such as `+02:00` is converted to UTC; fractions of a second are
//! dropped) and always writes the `Z` form.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_seconds(secs: i64) -> Self {
        Timestamp(secs)
    }

    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// The current time (a clock before 1970 reads as 1970).
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// This instant plus `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(secs))
    }
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back. Eras of 400 years (146097
// days) make the leap-year rule a matter of integer division.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

/// Why a text is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 date-time (like 2025-03-01T12:00:00Z): {why}")]
pub struct TimestampError {
    pub text: String,
    pub why: &'static str,
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| TimestampError {
            text: s.to_string(),
            why,
        };
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Result<i64, TimestampError> {
            let part = b.get(from..from + len).ok_or(err("too short"))?;
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(err("a digit is expected"));
            }
            Ok(part
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
        };
        let sep = |at: usize, allowed: &[u8]| -> Result<(), TimestampError> {
            match b.get(at) {
                Some(c) if allowed.contains(c) => Ok(()),
                Some(_) => Err(err("misplaced separator")),
                None => Err(err("too short")),
            }
        };
        let year = num(0, 4)?;
        sep(4, b"-")?;
        let month = num(5, 2)? as u32;
        sep(7, b"-")?;
        let day = num(8, 2)? as u32;
        sep(10, b"Tt ")?;
        let hour = num(11, 2)?;
        sep(13, b":")?;
        let minute = num(14, 2)?;
        sep(16, b":")?;
        let second = num(17, 2)?;
        if !(1..=12).contains(&month) {
            return Err(err("month out of range"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(err("day out of range"));
        }
        // 60 is a leap second; it is read as the next second's start.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(err("time out of range"));
        }
        let mut at = 19;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            if at == start {
                return Err(err("a fraction of a second needs digits"));
            }
        }
        let offset = match b.get(at) {
            Some(b'Z' | b'z') => {
                at += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                let h = num(at + 1, 2)?;
                sep(at + 3, b":")?;
                let m = num(at + 4, 2)?;
                if h > 23 || m > 59 {
                    return Err(err("offset out of range"));
                }
                let o = h * 3600 + m * 60;
                at += 6;
                if *sign == b'-' { -o } else { o }
            }
            _ => return Err(err("a time zone (`Z` or `+hh:mm`) is required")),
        };
        if at != b.len() {
            return Err(err("unexpected text after the time zone"));
        }
        let days = days_from_civil(year, month, day);
        Ok(Timestamp(
            days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        ))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 date-time, UTC (`2025-03-01T12:00:00Z`)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_print_and_parse_both_ways() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (-86_400, "1969-12-31T00:00:00Z"),
        ] {
            let t = Timestamp::from_unix_seconds(secs);
            assert_eq!(t.to_string(), text);
            assert_eq!(text.parse::<Timestamp>().unwrap(), t, "{text}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let mut day = days_from_civil(1900, 1, 1);
        let end = days_from_civil(2300, 1, 1);
        let mut last = None;
        while day < end {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            assert!(d >= 1 && d <= days_in_month(y, m));
            if let Some((ly, lm, ld)) = last {
                assert!((y, m, d) > (ly, lm, ld), "dates advance one day at a time");
            }
            last = Some((y, m, d));
            day += 1;
        }
    }

    #[test]
    fn offsets_and_fractions_are_read_as_utc() {
        let t: Timestamp = "2025-03-01T14:30:00.123+02:30".parse().unwrap();
        assert_eq!(t.to_string(), "2025-03-01T12:00:00Z");
        let t: Timestamp = "2025-03-01t00:00:00-01:00".parse().unwrap();
        assert_eq!(t.to_string(), "2025-03-01T01:00:00Z");
    }

    #[test]
    fn malformed_dates_are_refused_with_the_reason() {
        for (text, why) in [
            ("2025-02-29T00:00:00Z", "day out of range"),
            ("2025-13-01T00:00:00Z", "month out of range"),
            ("2025-01-01T24:00:00Z", "time out of range"),
            ("2025-01-01T00:00:00", "a time zone"),
            ("2025-01-01", "too short"),
            ("2025-01-01T00:00:00Zjunk", "unexpected text"),
            ("2025/01/01T00:00:00Z", "separator"),
            ("２０２５-01-01T00:00:00Z", "digit"),
        ] {
            let e = text.parse::<Timestamp>().unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn serde_uses_the_text_form_and_plus_adds_seconds() {
        let t = Timestamp::from_unix_seconds(0).plus(Duration::from_secs(30 * 86_400));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"1970-01-31T00:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
