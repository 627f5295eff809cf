//! containerd's value encodings in meta.db: Go `binary.PutVarint` / `PutUvarint`
//! integers and Go `time.Time.MarshalBinary` times.

use salvor_oci::Time;

/// An unsigned LEB128 varint (Go `binary.Uvarint`) filling the whole value; `None` when
/// it is empty, longer than 10 bytes, overflows `u64`, or has bytes after it.
pub fn uvarint(b: &[u8]) -> Option<u64> {
    let (v, n) = uvarint_prefix(b)?;
    (n == b.len()).then_some(v)
}

/// A leading unsigned varint and the number of bytes it took.
pub fn uvarint_prefix(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    for (i, &c) in b.iter().enumerate().take(10) {
        if i == 9 && c > 1 {
            return None; // overflows u64
        }
        x |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

/// A zigzag varint (Go `binary.Varint`) filling the whole value.
pub fn varint(b: &[u8]) -> Option<i64> {
    let u = uvarint(b)?;
    let x = (u >> 1) as i64;
    Some(if u & 1 != 0 { !x } else { x })
}

/// A protobuf `google.protobuf.Any` (`type_url` = field 1, `value` = field 2, both
/// length-delimited): the type URL and the value's bytes. `None` when the bytes are not
/// one (an unknown wire type, a length past the end); unknown fields of known wire types
/// are skipped.
pub fn protobuf_any(b: &[u8]) -> Option<(String, &[u8])> {
    let (mut url, mut value) = (String::new(), &b[..0]);
    let mut at = 0;
    while at < b.len() {
        let (key, n) = uvarint_prefix(&b[at..])?;
        at += n;
        match key & 7 {
            0 => at += uvarint_prefix(b.get(at..)?)?.1,
            1 => at = at.checked_add(8)?,
            5 => at = at.checked_add(4)?,
            2 => {
                let (len, n) = uvarint_prefix(b.get(at..)?)?;
                let start = at.checked_add(n)?;
                let end = start.checked_add(usize::try_from(len).ok()?)?;
                let field = b.get(start..end)?;
                match key >> 3 {
                    1 => url = String::from_utf8_lossy(field).into_owned(),
                    2 => value = field,
                    _ => {}
                }
                at = end;
            }
            _ => return None,
        }
    }
    (at == b.len()).then_some((url, value))
}

/// Go's `time.Time.MarshalBinary` (versions 1 and 2): `0x01|0x02`, seconds since
/// 0001-01-01 UTC (i64 big-endian), nanoseconds (u32 BE), zone offset in minutes (i16
/// BE, `-1` = UTC), and for version 2 the seconds of the offset (u8). The time is
/// returned in UTC.
pub fn go_time(b: &[u8]) -> Option<Time> {
    let (&version, rest) = b.split_first()?;
    let want = match version {
        1 => 14,
        2 => 15,
        _ => return None,
    };
    if rest.len() != want {
        return None;
    }
    let secs = i64::from_be_bytes(rest[0..8].try_into().ok()?);
    let nanos = u32::from_be_bytes(rest[8..12].try_into().ok()?);
    if nanos >= 1_000_000_000 {
        return None;
    }
    // Seconds from 0001-01-01 to 1970-01-01.
    const UNIX_TO_INTERNAL: i64 = 62_135_596_800;
    let unix = secs.checked_sub(UNIX_TO_INTERNAL)?;
    Time::from_unix_utc(unix, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn go_time_as_containerd_wrote_it() {
        // stores.md §1.4: 010000000ee2a1372e1cb0e956ffff = 2026-12-01T21:46:22.481356118Z
        let t = go_time(&hex("010000000ee2a1372e1cb0e956ffff")).expect("time");
        assert_eq!(t.format(), "2026-12-01T21:46:22.481356118Z");
        assert_eq!(go_time(&hex("010000000ee2a1372e1cb0e956ff")), None, "short");
        assert_eq!(
            go_time(&hex("030000000ee2a1372e1cb0e956ffff")),
            None,
            "version"
        );
        assert_eq!(
            go_time(&hex("010000000ee2a1372effffffffffff")),
            None,
            "nanos"
        );
        assert_eq!(
            go_time(&hex("01800000000000000000000000ffff")),
            None,
            "before 0001"
        );
    }

    #[test]
    fn protobuf_any_fields() {
        let mut b = vec![0x0a, 3];
        b.extend_from_slice(b"a/b");
        b.extend_from_slice(&[0x12, 2, b'{', b'}']);
        assert_eq!(protobuf_any(&b), Some(("a/b".to_string(), &b"{}"[..])));
        // cut short, a huge length, an unknown wire type
        assert_eq!(protobuf_any(&b[..b.len() - 1]), None);
        assert_eq!(protobuf_any(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]), None);
        assert_eq!(protobuf_any(&[0x0b]), None);
        assert_eq!(protobuf_any(&[]), Some((String::new(), &b""[..])));
    }

    #[test]
    fn varints_as_go_writes_them() {
        assert_eq!(varint(&[0x06]), Some(3)); // meta.db v1/version
        assert_eq!(varint(&[0xc8, 0x06]), Some(420));
        assert_eq!(varint(&[0x01]), Some(-1));
        assert_eq!(uvarint(&[0xac, 0x02]), Some(300));
        assert_eq!(uvarint(&[]), None);
        assert_eq!(uvarint(&[0x80]), None, "unterminated");
        assert_eq!(uvarint(&[0x01, 0x00]), None, "trailing byte");
        assert_eq!(
            uvarint(&[0xff; 9].iter().copied().chain([0x01]).collect::<Vec<_>>()),
            Some(u64::MAX)
        );
        assert_eq!(
            uvarint(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()),
            None
        );
        assert_eq!(uvarint(&[0x80; 11]), None, "too long");
    }
}
