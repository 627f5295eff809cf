//! RFC 3339 and Go time formats as the engine writes them, shared by the container records
//! ([`crate::containers`]) and the logs ([`crate::logs`]) so that neither needs the other.

use salvor_source::Timestamp;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
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

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses RFC 3339 (`2026-11-22T08:09:48.901289091Z`, `…+02:00`, fraction optional).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let y = num(s.get(0..4)?)? as i64;
    let mo = num(s.get(5..7)?)?;
    let d = num(s.get(8..10)?)?;
    let h = num(s.get(11..13)?)?;
    let mi = num(s.get(14..16)?)?;
    let se = num(s.get(17..19)?)?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut nsec = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        let digits = &frac[..end];
        let mut v: u32 = 0;
        for (i, c) in digits.bytes().take(9).enumerate() {
            v += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
        }
        nsec = v;
        rest = &frac[end..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) && &r[3..4] == ":" => {
            let oh = num(&r[1..3])? as i64;
            let om = num(&r[4..6])? as i64;
            let o = oh * 3600 + om * 60;
            if r.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let sec = days * 86400 + h as i64 * 3600 + mi as i64 * 60 + se as i64 - offset;
    Some(Timestamp { sec, nsec })
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

fn civil(t: Timestamp) -> (i64, u32, u32, i64, i64, i64) {
    let days = t.sec.div_euclid(86400);
    let secs = t.sec.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Go's `RFC3339NanoFixed` in UTC: `2026-11-22T08:09:48.901289091Z`.
pub fn format_rfc3339_nano_fixed(t: Timestamp) -> String {
    let (y, m, d, h, mi, s) = civil(t);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
        t.nsec.min(999_999_999)
    )
}

/// Go's `time.Time.String()` at second precision in UTC, as `docker ps` shows `CreatedAt`:
/// `2026-11-22 08:09:49 +0000 UTC`.
pub fn format_go_utc_seconds(t: Timestamp) -> String {
    let (y, m, d, h, mi, s) = civil(t);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// RFC 3339 at second precision in UTC: `2026-11-22T08:09:48Z`.
pub fn format_rfc3339_seconds(t: Timestamp) -> String {
    let (y, m, d, h, mi, s) = civil(t);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}
