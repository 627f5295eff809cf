//! RFC 3339 times as Go writes and reads them.
//!
//! [`Time`] keeps the civil fields and the offset of the text it was parsed from, so it can
//! be written back the way Go's `time.Time.MarshalJSON` would ([`Time::format`],
//! `RFC3339Nano`). The UTC formatters take seconds and nanoseconds since the Unix epoch.
//! Go's zero time, `0001-01-01T00:00:00Z`, is an ordinary value here ([`Time::ZERO`],
//! `unix()` = −62135596800); callers decide what "unset" means.

/// A parsed RFC 3339 time: civil fields in the written offset, plus the offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
    offset_secs: i32,
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Time {
    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const EPOCH: Time = Time {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        min: 0,
        sec: 0,
        nanos: 0,
        offset_secs: 0,
    };
    /// Go's zero `time.Time`, `0001-01-01T00:00:00Z`.
    pub const ZERO: Time = Time {
        year: 1,
        ..Time::EPOCH
    };

    /// Parses RFC 3339 strictly, as Go's `time.Time.UnmarshalJSON` would accept it:
    /// `YYYY-MM-DDTHH:MM:SS[.fraction]` (`T` or `t`; `.` or `,` before up to any number of
    /// fraction digits, nanoseconds kept) then `Z`/`z` or `±HH:MM`. Seconds 0–59.
    pub fn parse(s: &str) -> Option<Time> {
        parse(s, false)
    }

    /// Parses RFC 3339 the way salvor reads times from engine state files and logs: like
    /// [`Time::parse`], but surrounding whitespace is ignored, a space may separate date and
    /// time, and a leap second (`:60`) is accepted (it counts as the next second).
    pub fn parse_lenient(s: &str) -> Option<Time> {
        parse(s.trim(), true)
    }

    /// The UTC time `secs` seconds and `nanos` nanoseconds after the Unix epoch (negative
    /// before 1970); `None` when `nanos` is not below 10⁹ or the year leaves −9999..=9999
    /// (RFC 3339 has four year digits).
    pub fn from_unix_utc(secs: i64, nanos: u32) -> Option<Time> {
        if nanos >= 1_000_000_000 {
            return None;
        }
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        let (year, month, day) = civil_from_days(days);
        if !(-9999..=9999).contains(&year) {
            return None;
        }
        Some(Time {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            min: (rem % 3600 / 60) as u32,
            sec: (rem % 60) as u32,
            nanos,
            offset_secs: 0,
        })
    }

    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86400
            + i64::from(self.hour) * 3600
            + i64::from(self.min) * 60
            + i64::from(self.sec)
            - i64::from(self.offset_secs)
    }

    /// The fraction of the second, in nanoseconds.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// The offset from UTC the text was written in, in seconds.
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }

    /// Whether this is Go's zero time (in any offset).
    pub fn is_zero(&self) -> bool {
        self.unix() == Time::ZERO.unix() && self.nanos == 0
    }

    /// Go's `RFC3339Nano` as `time.Time.MarshalJSON` writes it (without quotes): fraction
    /// with trailing zeros trimmed (none when zero), the offset kept, `Z` for offset 0.
    pub fn format(&self) -> String {
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.min, self.sec
        );
        if self.nanos != 0 {
            let f = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        if self.offset_secs == 0 {
            s.push('Z');
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let o = self.offset_secs.unsigned_abs();
            s.push_str(&format!("{}{:02}:{:02}", sign, o / 3600, (o % 3600) / 60));
        }
        s
    }
}

/// Serialised as Go's `time.Time` marshals itself: the [`Time::format`] string.
impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.format())
    }
}

fn parse(s: &str, lenient: bool) -> Option<Time> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(|c| c.is_ascii_digit()) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || (lenient && b[10] == b' '))
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i64::from(num(0..4)?);
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let min = num(14..16)?;
    let sec = num(17..19)?;
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        for (k, c) in b[start..i].iter().take(9).enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - k as u32);
        }
    }
    let rest = b.get(i..)?;
    let offset_secs = match rest {
        [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = num(i + 1..i + 3)? as i32;
            let m = num(i + 4..i + 6)? as i32;
            let v = h * 3600 + m * 60;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let max_sec = if lenient { 60 } else { 59 };
    if !(1..=12).contains(&month) || day == 0 || day > 31 || hour > 23 || min > 59 || sec > max_sec
    {
        return None;
    }
    Some(Time {
        year,
        month,
        day,
        hour,
        min,
        sec,
        nanos,
        offset_secs,
    })
}

fn civil_utc(sec: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = sec.div_euclid(86400);
    let secs = sec.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Go's `RFC3339NanoFixed` in UTC (nine fraction digits): `2026-11-22T08:09:48.901289091Z`.
pub fn format_utc_nano_fixed(sec: i64, nsec: u32) -> String {
    let (y, m, d, h, mi, s) = civil_utc(sec);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
        nsec.min(999_999_999)
    )
}

/// RFC 3339 at second precision in UTC: `2026-11-22T08:09:48Z`.
pub fn format_utc_seconds(sec: i64) -> String {
    let (y, m, d, h, mi, s) = civil_utc(sec);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Go's `time.Time.String()` at second precision in UTC: `2026-11-22 08:09:49 +0000 UTC`.
pub fn format_go_utc_seconds(sec: i64) -> String {
    let (y, m, d, h, mi, s) = civil_utc(sec);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_like_go() {
        for (i, o) in [
            (
                "2026-11-22T08:09:48.901289091Z",
                "2026-11-22T08:09:48.901289091Z",
            ),
            ("2026-11-22T08:09:48.900Z", "2026-11-22T08:09:48.9Z"),
            ("2026-11-22t10:09:48,5+02:00", "2026-11-22T10:09:48.5+02:00"),
            (
                "2026-11-22T08:09:48.1234567891Z",
                "2026-11-22T08:09:48.123456789Z",
            ),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ] {
            assert_eq!(
                Time::parse(i).map(|t| t.format()).as_deref(),
                Some(o),
                "{i}"
            );
        }
        assert_eq!(Time::EPOCH.unix(), 0);
        assert_eq!(Time::ZERO.unix(), -62135596800);
        assert!(Time::ZERO.is_zero());
        assert_eq!(
            Time::parse("2000-03-01T01:00:00+01:00").map(|t| t.unix()),
            Some(951868800)
        );
    }

    #[test]
    fn strict_and_lenient() {
        for bad in [
            "yesterday",
            "2026-11-22T08:09:48",
            "2026-11-22T08:09:48.Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(Time::parse(bad).is_none(), "{bad}");
            assert!(Time::parse_lenient(bad).is_none(), "{bad}");
        }
        assert!(Time::parse(" 2026-11-22T08:09:48Z").is_none());
        assert!(Time::parse("2026-11-22 08:09:48Z").is_none());
        assert!(Time::parse("2026-11-22T08:09:60Z").is_none());
        assert_eq!(
            Time::parse_lenient(" 2026-11-22 08:09:48Z\n").map(|t| t.unix()),
            Some(1795334988)
        );
        assert_eq!(
            Time::parse_lenient("2026-11-22T08:09:60Z").map(|t| t.unix()),
            Some(1795335000)
        );
    }

    #[test]
    fn utc_formatters() {
        let t = Time::parse("2026-11-22T10:09:48.9+02:00").unwrap();
        assert_eq!(
            format_utc_nano_fixed(t.unix(), t.nanos()),
            "2026-11-22T08:09:48.900000000Z"
        );
        assert_eq!(format_utc_seconds(t.unix()), "2026-11-22T08:09:48Z");
        assert_eq!(
            format_go_utc_seconds(t.unix()),
            "2026-11-22 08:09:48 +0000 UTC"
        );
        assert_eq!(format_utc_seconds(-62135596800), "0001-01-01T00:00:00Z");
        assert_eq!(format_utc_seconds(-1), "1969-12-31T23:59:59Z");
    }
}
