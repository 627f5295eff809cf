//! The `local` driver's record payload: the `LogEntry` protobuf message, decoded (and
//! encoded, for tests and tools) without a protobuf library.

/// A decoded `LogEntry` protobuf.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProtoEntry {
    /// Field 1, `source`: `stdout` or `stderr`.
    pub source: String,
    /// Field 2, `time_nano`: nanoseconds since the Unix epoch.
    pub time_nano: i64,
    /// Field 3, `line`: the bytes written, without the newline.
    pub line: Vec<u8>,
    /// Field 4, `partial`: the line was split (longer than the engine's buffer or no newline yet).
    pub partial: bool,
    /// `partial_log_metadata.last`: the last piece of a split line.
    pub last: bool,
    /// `partial_log_metadata.id`: ties the pieces of a split line together.
    pub partial_id: String,
    /// `partial_log_metadata.ordinal`: the piece's position in the split line, from 1.
    pub ordinal: i64,
}

fn varint(b: &[u8], i: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let Some(&byte) = b.get(*i) else {
            return Err("truncated varint".into());
        };
        *i += 1;
        if shift == 63 && byte > 1 {
            return Err("varint overflows 64 bits".into());
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn fields(b: &[u8], mut f: impl FnMut(u64, Field<'_>) -> Result<(), String>) -> Result<(), String> {
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i)?;
        let (num, wt) = (key >> 3, key & 7);
        let field = match wt {
            0 => Field::Varint(varint(b, &mut i)?),
            1 => {
                i = i
                    .checked_add(8)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated fixed64")?;
                Field::Other
            }
            2 => {
                let n = varint(b, &mut i)?;
                let end = usize::try_from(n)
                    .ok()
                    .and_then(|n| i.checked_add(n))
                    .filter(|e| *e <= b.len())
                    .ok_or("length-delimited field runs past the record")?;
                let s = &b[i..end];
                i = end;
                Field::Bytes(s)
            }
            5 => {
                i = i
                    .checked_add(4)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated fixed32")?;
                Field::Other
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        f(num, field)?;
    }
    Ok(())
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

/// Why a `local` log record's `LogEntry` protobuf could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
#[non_exhaustive]
pub struct DecodeError {
    /// What is wrong with the message (a truncated varint, a field with the wrong wire type …).
    pub reason: String,
}

/// Decodes one `LogEntry` protobuf message.
pub fn decode_entry(b: &[u8]) -> Result<ProtoEntry, DecodeError> {
    let mut e = ProtoEntry::default();
    fields(b, |num, f| {
        match (num, f) {
            (1, Field::Bytes(s)) => e.source = String::from_utf8_lossy(s).into_owned(),
            (2, Field::Varint(v)) => e.time_nano = v as i64,
            (3, Field::Bytes(s)) => e.line = s.to_vec(),
            (4, Field::Varint(v)) => e.partial = v != 0,
            (5, Field::Bytes(s)) => fields(s, |n, f| {
                match (n, f) {
                    (1, Field::Varint(v)) => e.last = v != 0,
                    (2, Field::Bytes(s)) => e.partial_id = String::from_utf8_lossy(s).into_owned(),
                    (3, Field::Varint(v)) => e.ordinal = v as i32 as i64,
                    _ => {}
                }
                Ok(())
            })?,
            (1 | 3 | 5, _) | (2 | 4, Field::Bytes(_)) => {
                return Err(format!("field {num} has the wrong wire type"))
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|reason| DecodeError { reason })?;
    Ok(e)
}

/// Encodes a `LogEntry` record with its framing (used by tests and tools).
pub fn encode_local_record(source: &str, time_nano: i64, line: &[u8], partial: bool) -> Vec<u8> {
    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut m = Vec::new();
    m.push(0x0a);
    put_varint(&mut m, source.len() as u64);
    m.extend_from_slice(source.as_bytes());
    m.push(0x10);
    put_varint(&mut m, time_nano as u64);
    m.push(0x1a);
    put_varint(&mut m, line.len() as u64);
    m.extend_from_slice(line);
    if partial {
        m.extend_from_slice(&[0x20, 1]);
    }
    let n = (m.len() as u32).to_be_bytes();
    let mut out = n.to_vec();
    out.extend_from_slice(&m);
    out.extend_from_slice(&n);
    out
}
