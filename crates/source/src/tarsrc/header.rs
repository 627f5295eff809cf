//! Header fields: octal/base-256 numbers, checksums, PAX records and times, path
//! normalisation.

use super::*;

pub(super) fn field(h: &[u8], start: usize, len: usize) -> &[u8] {
    let f = &h[start..start + len];
    match f.iter().position(|b| *b == 0) {
        Some(i) => &f[..i],
        None => f,
    }
}

/// A numeric header field: octal (space/NUL padded) or GNU base-256.
pub(super) fn numeric(h: &[u8], start: usize, len: usize) -> Option<i64> {
    let f = &h[start..start + len];
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        // Base-256, two's complement, big endian.
        let neg = f[0] & 0x40 != 0;
        let mut v: i128 = if neg { -1 } else { 0 };
        v = (v << 6) | i128::from(f[0] & 0x3f);
        for b in &f[1..] {
            v = (v << 8) | i128::from(*b);
            if !(-(1i128 << 100)..(1i128 << 100)).contains(&v) {
                return None;
            }
        }
        return i64::try_from(v).ok();
    }
    let s: Vec<u8> = f
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    let s = std::str::from_utf8(&s).ok()?;
    i64::from_str_radix(s, 8).ok()
}

pub(super) fn checksum_ok(h: &[u8]) -> bool {
    let Some(stored) = numeric(h, 148, 8) else {
        return false;
    };
    let unsigned: i64 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(*b)
            }
        })
        .sum();
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(*b as i8)
            }
        })
        .sum();
    stored == unsigned || stored == signed
}

/// Parses a PAX decimal time (`-12.5`, `1526467860.123456789`).
pub(super) fn pax_time(v: &[u8]) -> Option<Timestamp> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let sec: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nsec: u32 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        let d = c.to_digit(10)?;
        nsec += d * 10u32.pow(8 - i as u32);
    }
    Some(if !neg {
        Timestamp { sec, nsec }
    } else if nsec == 0 {
        Timestamp { sec: -sec, nsec: 0 }
    } else {
        Timestamp {
            sec: -sec - 1,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

/// Parses PAX records (`"<len> <key>=<value>\n"`), in order.
/// PAX records as (key, value) byte strings, in archive order.
pub(super) type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

pub(super) fn pax_records(data: &[u8]) -> std::result::Result<PaxRecords, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or("PAX record without length")?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record with a bad length")?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("malformed PAX record".into());
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|b| *b == b'=')
            .ok_or("PAX record without '='")?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// Decodes a `LIBARCHIVE.xattr.` name (URL-encoded).
pub(super) fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            let hex = std::str::from_utf8(&s[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Normalises a member path; `None` when it contains `..`.
pub(super) fn normalize_bytes(p: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(p.len());
    for c in p.split(|b| *b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        if c == b".." {
            return None;
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c);
    }
    Some(out)
}

pub(super) fn parent_of(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|b| *b == b'/') {
        Some(i) => &p[..i],
        None => b"",
    }
}

pub(super) fn name_of(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|b| *b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

pub(super) fn ts_secs(sec: i64) -> Timestamp {
    Timestamp { sec, nsec: 0 }
}
