//! RFC 3339 and Go time formats as the engine writes them (through `salvor_oci::time`), shared
//! by the container records ([`crate::containers`]) and the logs ([`crate::logs`]) so that
//! neither needs the other.

use salvor_source::Timestamp;

/// Parses RFC 3339 (`2026-11-22T08:09:48.901289091Z`, `…+02:00`, fraction optional), leniently
/// (`salvor_oci::Time::parse_lenient`: surrounding whitespace, a space for `T`, leap seconds).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    salvor_oci::Time::parse_lenient(s).map(|t| Timestamp {
        sec: t.unix(),
        nsec: t.nanos(),
    })
}

/// Parses a `--since` / `--until` value: RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC
/// when no zone is given), or unix seconds with an optional fraction (`1700000000.5`).
pub fn parse_time_arg(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Some(t) = parse_time(s) {
        return Some(t);
    }
    if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
        return parse_time(&format!("{s}T00:00:00Z"));
    }
    if s.len() == 19 {
        return parse_time(&format!("{s}Z"));
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let digits = int.strip_prefix('-').unwrap_or(int);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 15 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut sec: i64 = digits.parse().ok()?;
    if neg {
        sec = -sec;
    }
    let mut nsec = 0u32;
    for (i, c) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(Timestamp { sec, nsec })
}

/// Go's `RFC3339NanoFixed` in UTC: `2026-11-22T08:09:48.901289091Z`.
pub fn format_rfc3339_nano_fixed(t: Timestamp) -> String {
    salvor_oci::time::format_utc_nano_fixed(t.sec, t.nsec)
}

/// Go's `time.Time.String()` at second precision in UTC, as `docker ps` shows `CreatedAt`:
/// `2026-11-22 08:09:49 +0000 UTC`.
pub fn format_go_utc_seconds(t: Timestamp) -> String {
    salvor_oci::time::format_go_utc_seconds(t.sec)
}

/// RFC 3339 at second precision in UTC: `2026-11-22T08:09:48Z`.
pub fn format_rfc3339_seconds(t: Timestamp) -> String {
    salvor_oci::time::format_utc_seconds(t.sec)
}
