//! Streaming reader of tar-split JSON entries.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{EntryAt, TarSplitError};

/// Largest accepted segment payload (decoded).
pub const MAX_SEGMENT_PAYLOAD: usize = 64 << 20;
/// Largest accepted file `size` (1 TiB).
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Largest accepted file name, in bytes.
pub const MAX_NAME_LEN: usize = 64 << 10;
/// Largest accepted JSON text for one entry (base64 of the largest payload plus slack).
const MAX_ENTRY_JSON: usize = MAX_SEGMENT_PAYLOAD / 3 * 4 + (1 << 20);

/// One tar-split entry, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Raw archive bytes (headers, padding, EOF blocks), written verbatim.
    Segment {
        /// The raw bytes.
        payload: Vec<u8>,
        /// The `position` field.
        position: i64,
    },
    /// A file entry.
    File {
        /// Raw name bytes: `name_raw` if present, else `name` as UTF-8.
        name: Vec<u8>,
        /// Whether `name` came from `name_raw`.
        name_from_raw: bool,
        /// Logical data size (`hdr.Size`).
        size: u64,
        /// The 8-byte big-endian CRC-64/GO-ISO (None when the payload is null/absent/empty).
        crc: Option<[u8; 8]>,
        /// The `position` field.
        position: i64,
    },
}

impl Entry {
    /// The entry's `position` field.
    pub fn position(&self) -> i64 {
        match self {
            Entry::Segment { position, .. } | Entry::File { position, .. } => *position,
        }
    }
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "type", default)]
    kind: i64,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name_raw: Option<Cow<'a, str>>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(borrow, default)]
    payload: Option<Cow<'a, str>>,
    #[serde(default)]
    position: Option<i64>,
}

/// Streaming iterator over the entries of an uncompressed tar-split JSON stream.
///
/// Memory is bounded: one entry's JSON text at a time (at most ~90 MiB for the
/// largest accepted segment). After the first error the iterator is fused.
pub struct Unpacker<R: Read> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    cursor: usize,
    index: u64,
    last_position: Option<i64>,
    done: bool,
}

impl<R: Read> std::fmt::Debug for Unpacker<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpacker")
            .field("index", &self.index)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Opens a gzip-compressed tar-split (`tar-split.json.gz`), streaming.
pub fn open_gz<R: Read>(gz: R) -> Unpacker<flate2::read::MultiGzDecoder<R>> {
    Unpacker::new(flate2::read::MultiGzDecoder::new(gz))
}

fn b64_decoded_len_bound(s: &str) -> usize {
    s.len() / 4 * 3
}

impl<R: Read> Unpacker<R> {
    /// Reads entries from an uncompressed JSON stream.
    pub fn new(json_stream: R) -> Self {
        Unpacker {
            reader: BufReader::with_capacity(256 << 10, json_stream),
            buf: Vec::new(),
            cursor: 0,
            index: 0,
            last_position: None,
            done: false,
        }
    }

    /// Number of entries returned so far.
    pub fn entries_read(&self) -> u64 {
        self.index
    }

    fn at(&self) -> EntryAt {
        EntryAt {
            index: self.index,
            position: None,
        }
    }

    /// Appends the next line (bounded) to `buf`. Returns false at EOF.
    fn fill_line(&mut self) -> Result<bool, TarSplitError> {
        if self.cursor > 0 {
            self.buf.drain(..self.cursor);
            self.cursor = 0;
        }
        let room = MAX_ENTRY_JSON.saturating_sub(self.buf.len());
        let at = self.at();
        let mut limited = (&mut self.reader).take(room as u64 + 1);
        let n = limited
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| TarSplitError::Read { at, source })?;
        if self.buf.len() > MAX_ENTRY_JSON {
            return Err(TarSplitError::InvalidEntry {
                at,
                detail: format!("entry JSON longer than {MAX_ENTRY_JSON} bytes"),
            });
        }
        Ok(n > 0)
    }

    fn next_entry(&mut self) -> Result<Option<Entry>, TarSplitError> {
        loop {
            // Skip whitespace.
            while self.cursor < self.buf.len() && self.buf[self.cursor].is_ascii_whitespace() {
                self.cursor += 1;
            }
            if self.cursor >= self.buf.len() {
                if !self.fill_line()? {
                    return Ok(None);
                }
                continue;
            }
            let slice = &self.buf[self.cursor..];
            let mut it = serde_json::Deserializer::from_slice(slice).into_iter::<RawEntry<'_>>();
            match it.next() {
                None => {
                    // Only whitespace (cannot happen after the skip above, but be safe).
                    self.cursor = self.buf.len();
                }
                Some(Ok(raw)) => {
                    let consumed = it.byte_offset();
                    let entry = convert(raw, self.index)?;
                    self.cursor += consumed;
                    self.last_position = Some(entry.position());
                    self.index += 1;
                    return Ok(Some(entry));
                }
                Some(Err(e)) if e.is_eof() => {
                    // Object continues on the next line.
                    if !self.fill_line()? {
                        return Err(TarSplitError::Json {
                            at: self.at(),
                            detail: format!("truncated JSON at end of stream: {e}"),
                        });
                    }
                }
                Some(Err(e)) => {
                    return Err(TarSplitError::Json {
                        at: self.at(),
                        detail: match self.last_position {
                            Some(p) => format!("{e} (previous entry had position {p})"),
                            None => e.to_string(),
                        },
                    });
                }
            }
        }
    }
}

fn decode_b64(s: &str, at: EntryAt, what: &str, limit: usize) -> Result<Vec<u8>, TarSplitError> {
    if b64_decoded_len_bound(s) > limit + 3 {
        return Err(TarSplitError::InvalidEntry {
            at,
            detail: format!("{what} longer than the limit of {limit} bytes"),
        });
    }
    let v = base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|e| TarSplitError::InvalidEntry {
            at,
            detail: format!("{what} is not valid base64: {e}"),
        })?;
    if v.len() > limit {
        return Err(TarSplitError::InvalidEntry {
            at,
            detail: format!("{what} longer than the limit of {limit} bytes"),
        });
    }
    Ok(v)
}

fn convert(raw: RawEntry<'_>, index: u64) -> Result<Entry, TarSplitError> {
    let position = raw.position.unwrap_or(0);
    let at = EntryAt {
        index,
        position: Some(position),
    };
    match raw.kind {
        2 => {
            let payload = match raw.payload.as_deref() {
                None | Some("") => Vec::new(),
                Some(s) => decode_b64(s, at, "segment payload", MAX_SEGMENT_PAYLOAD)?,
            };
            Ok(Entry::Segment { payload, position })
        }
        1 => {
            let size = raw.size.unwrap_or(0);
            if size < 0 {
                return Err(TarSplitError::InvalidEntry {
                    at,
                    detail: format!("negative file size {size}"),
                });
            }
            let size = size as u64;
            if size > MAX_FILE_SIZE {
                return Err(TarSplitError::InvalidEntry {
                    at,
                    detail: format!("file size {size} exceeds the limit of {MAX_FILE_SIZE}"),
                });
            }
            let (name, name_from_raw) = match raw.name_raw.as_deref() {
                Some(s) if !s.is_empty() => (decode_b64(s, at, "name_raw", MAX_NAME_LEN)?, true),
                _ => {
                    let n = raw.name.as_deref().unwrap_or("");
                    if n.len() > MAX_NAME_LEN {
                        return Err(TarSplitError::InvalidEntry {
                            at,
                            detail: format!("name longer than the limit of {MAX_NAME_LEN} bytes"),
                        });
                    }
                    (n.as_bytes().to_vec(), false)
                }
            };
            let crc = match raw.payload.as_deref() {
                None | Some("") => None,
                Some(s) => {
                    let v = decode_b64(s, at, "file checksum payload", 8)?;
                    match <[u8; 8]>::try_from(v.as_slice()) {
                        Ok(a) => Some(a),
                        Err(_) if v.is_empty() => None,
                        Err(_) => {
                            return Err(TarSplitError::InvalidEntry {
                                at,
                                detail: format!(
                                    "file checksum payload is {} bytes, expected 8",
                                    v.len()
                                ),
                            })
                        }
                    }
                }
            };
            Ok(Entry::File {
                name,
                name_from_raw,
                size,
                crc,
                position,
            })
        }
        other => Err(TarSplitError::InvalidEntry {
            at,
            detail: format!("unknown entry type {other} (expected 1 = file or 2 = segment)"),
        }),
    }
}

impl<R: Read> Iterator for Unpacker<R> {
    type Item = Result<Entry, TarSplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Vec<Result<Entry, TarSplitError>> {
        Unpacker::new(s.as_bytes()).collect()
    }

    #[test]
    fn shapes() {
        let v = all(concat!(
            "{\"type\":2,\"payload\":\"AAE=\",\"position\":0}\n",
            "{\"type\":1,\"name\":\"etc/\",\"payload\":null,\"position\":1}  {\"type\":2,\"payload\":\"\",\"position\":2}\n\n",
            "{\"type\":1,\"name_raw\":\"ZmlsZS3k\",\"size\":26,\"payload\":\"AnSksavsa04=\",\"position\":3,\"extra\":[1,2]}\n",
            "{\"type\":2,\n \"payload\":null}\n"
        ));
        let v: Vec<Entry> = v.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(v.len(), 5);
        assert_eq!(
            v[0],
            Entry::Segment {
                payload: vec![0, 1],
                position: 0
            }
        );
        assert_eq!(
            v[1],
            Entry::File {
                name: b"etc/".to_vec(),
                name_from_raw: false,
                size: 0,
                crc: None,
                position: 1
            }
        );
        assert_eq!(
            v[2],
            Entry::Segment {
                payload: vec![],
                position: 2
            }
        );
        assert_eq!(
            v[3],
            Entry::File {
                name: b"file-\xe4".to_vec(),
                name_from_raw: true,
                size: 26,
                crc: Some([2, 116, 164, 177, 171, 236, 107, 78]),
                position: 3
            }
        );
        assert_eq!(
            v[4],
            Entry::Segment {
                payload: vec![],
                position: 0
            }
        );
    }

    #[test]
    fn errors_name_position() {
        let v = all("{\"type\":1,\"name\":\"x\",\"size\":-5,\"payload\":null,\"position\":7}\n");
        let e = v[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("position 7") && e.contains("negative"), "{e}");
        let v = all("{\"type\":1,\"name\":\"x\",\"size\":2000000000000,\"position\":3}\n");
        let e = v[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("position 3") && e.contains("exceeds"), "{e}");
        let v = all("{\"type\":2,\"payload\":\"AAE=\",\"position\":0}\n{\"type\":2,\"payl");
        assert!(v[0].is_ok());
        let e = v[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("entry #1") && e.contains("truncated"), "{e}");
        let v = all("garbage");
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());
        let v = all("{\"type\":3}");
        assert!(v[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("unknown entry type 3"));
    }
}
