//! The parsed tar header of every file entry of a tar-split, streamed.
//!
//! A tar-split keeps each member's raw header blocks (PAX extended headers, GNU long
//! names, the ustar block) verbatim in the [`Entry::Segment`] entries that precede the
//! member's [`Entry::File`] entry. [`HeaderIter`] replays them through the same Go
//! `archive/tar` mimic the assembler uses and yields, for each file entry, the header the
//! engine itself read when it extracted the layer: name, typeflag, mode, owner, size,
//! mtime (PAX sub-second mtime included), link name, device numbers, user and group
//! names and the PAX records (`SCHILY.xattr.*` among them).
//!
//! Memory: only the raw bytes between two file entries are kept (bounded like the
//! assembler's, 8 MiB); file contents are never read. Parsing problems are per entry
//! ([`FileHeader::header`] is `Err`), never fatal; only an unreadable tar-split ends the
//! iteration with an error.

use crate::error::TarSplitError;
use crate::header::{
    self, block_padding, is_header_only, parse_numeric, parse_pax, parse_string, Records, Sparse,
    BLOCK,
};
use crate::unpack::Entry;

/// Raw bytes kept between two file entries (as in the assembler).
const MAX_PENDING: usize = 8 << 20;

/// A member's header as Go's `archive/tar` reader returns it (PAX overrides applied).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TarHeader {
    /// `hdr.Name`: ustar prefix, GNU long name, PAX `path` and `GNU.sparse.name` applied.
    pub name: Vec<u8>,
    /// The typeflag (`b'0'` for a regular file; a NUL flag is mapped like Go does).
    pub typeflag: u8,
    /// The mode field, as stored (may include the file-type bits `0o100000` …).
    pub mode: i64,
    /// Owner (PAX `uid` when present).
    pub uid: i64,
    /// Group (PAX `gid` when present).
    pub gid: i64,
    /// Logical size (`hdr.Size`, after PAX `size` and sparse `realsize`).
    pub size: i64,
    /// Modification time, whole seconds (PAX `mtime` when present).
    pub mtime: i64,
    /// Nanoseconds of the PAX `mtime`, when the PAX record carries a fraction.
    pub mtime_nsec: Option<u32>,
    /// Link target (ustar field, GNU long link or PAX `linkpath`).
    pub linkname: Vec<u8>,
    /// User name (PAX `uname` when present).
    pub uname: Vec<u8>,
    /// Group name (PAX `gname` when present).
    pub gname: Vec<u8>,
    /// Device major number (ustar/GNU field, 0 for V7 headers).
    pub devmajor: i64,
    /// Device minor number.
    pub devminor: i64,
    /// The member's PAX records in order (a later record for a key overrides an earlier one).
    pub pax: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TarHeader {
    /// The last PAX record for `key`.
    pub fn pax_record(&self, key: &[u8]) -> Option<&[u8]> {
        self.pax
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The extended attributes recorded as PAX `SCHILY.xattr.<name>`, later records winning,
    /// sorted by name.
    pub fn xattrs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (k, v) in &self.pax {
            if let Some(name) = k.strip_prefix(b"SCHILY.xattr.".as_slice()) {
                out.retain(|(n, _)| n != name);
                out.push((name.to_vec(), v.clone()));
            }
        }
        out.sort();
        out
    }

    /// One extended attribute (`security.capability` …) from `SCHILY.xattr.<name>`.
    pub fn xattr(&self, name: &str) -> Option<&[u8]> {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name.as_bytes());
        self.pax_record(&key)
    }

    /// Permission bits plus setuid/setgid/sticky (`mode & 0o7777`).
    pub fn perm(&self) -> u32 {
        (self.mode & 0o7777) as u32
    }
}

/// One file entry of a tar-split with the header that precedes it.
#[derive(Debug, Clone)]
pub struct FileHeader {
    /// The file entry's name as stored in the tar-split (may be lossy for old tar-splits;
    /// `header.name` is then the exact one).
    pub entry_name: Vec<u8>,
    /// The file entry's `position`.
    pub position: i64,
    /// The file entry's size.
    pub entry_size: u64,
    /// The entry's CRC-64, if stored.
    pub crc: Option<[u8; 8]>,
    /// The parsed header, or why it could not be parsed (no header bytes before the
    /// entry, a malformed block, more than 8 MiB of raw header bytes).
    pub header: Result<TarHeader, HeaderError>,
    /// The member's raw header blocks exactly as archived (extended headers and the main
    /// block, without the previous member's padding); empty when the header is not parsed.
    pub raw_header: Vec<u8>,
}

/// Why a file entry's tar header could not be parsed ([`FileHeader::header`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct HeaderError {
    /// What is wrong, in words (no header bytes before the entry, a malformed block …).
    pub reason: String,
}

impl FileHeader {
    /// The best name: the header's when parsed, else the entry's.
    pub fn name(&self) -> &[u8] {
        match &self.header {
            Ok(h) => &h.name,
            Err(_) => &self.entry_name,
        }
    }
}

/// Streams [`FileHeader`]s out of tar-split entries; see the module documentation.
pub struct HeaderIter<I> {
    entries: I,
    pending: Vec<u8>,
    pending_start: u64,
    overflow: bool,
    /// Bytes of the assembled stream so far (segments plus emitted file data).
    offset: u64,
    scratch: Vec<u8>,
}

impl<I> std::fmt::Debug for HeaderIter<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderIter")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// Streams the headers of the tar-split entries of `entries`: an [`Unpacker`](crate::Unpacker), or entries
/// parsed once and kept ([`crate::Entries`]).
pub fn headers<I: Iterator<Item = Result<Entry, TarSplitError>>>(entries: I) -> HeaderIter<I> {
    HeaderIter {
        entries,
        pending: Vec::new(),
        pending_start: 0,
        overflow: false,
        offset: 0,
        scratch: Vec::new(),
    }
}

impl<I> HeaderIter<I> {
    /// After the last entry: the raw bytes that followed the last member's data, without
    /// its padding (the end-of-archive blocks and any record padding), when they are all
    /// zeros and at least two blocks long; else `None`.
    pub fn trailer(&self) -> Option<&[u8]> {
        if self.overflow {
            return None;
        }
        let skip = block_padding(self.pending_start) as usize;
        let t = self.pending.get(skip..)?;
        (t.len() >= 2 * BLOCK && t.len().is_multiple_of(BLOCK) && t.iter().all(|&b| b == 0))
            .then_some(t)
    }

    fn segment(&mut self, payload: Vec<u8>) {
        let start = self.offset;
        self.offset += payload.len() as u64;
        if payload.is_empty() || self.overflow {
            return;
        }
        if self.pending.is_empty() {
            self.pending_start = start;
            self.pending = payload;
        } else if self.pending.len() + payload.len() > MAX_PENDING {
            self.overflow = true;
            self.pending.clear();
        } else {
            self.pending.extend_from_slice(&payload);
        }
    }

    fn parse(&mut self) -> Result<(TarHeader, u64, Sparse), String> {
        if self.overflow {
            return Err("more than 8 MiB of raw header bytes before the entry".into());
        }
        if self.pending.is_empty() {
            return Err("no raw header bytes before the entry".into());
        }
        let skip = block_padding(self.pending_start);
        let mut cur: &[u8] = &self.pending;
        self.scratch.clear();
        let parsed = header::read_next(&mut cur, &mut self.scratch, skip)
            .map_err(|e| format!("unparsable tar header: {e}"))?;
        let mut h = full_fields(&self.scratch, skip as usize)?;
        h.name = parsed.name;
        h.typeflag = parsed.typeflag;
        h.size = parsed.size;
        Ok((h, parsed.phys, parsed.sparse))
    }
}

/// Walks the raw blocks of one member (after `skip` bytes of padding) and collects the
/// fields `header::read_next` does not keep.
fn full_fields(raw: &[u8], skip: usize) -> Result<TarHeader, String> {
    let mut off = skip;
    let mut pax: Records = Vec::new();
    let mut long_link: Option<Vec<u8>> = None;
    loop {
        let blk = raw
            .get(off..off + BLOCK)
            .ok_or_else(|| "header block cut short".to_string())?;
        let typeflag = blk[156];
        let size = parse_numeric(&blk[124..136]).unwrap_or(0).max(0) as usize;
        match typeflag {
            b'x' | b'L' | b'K' => {
                let data = raw
                    .get(off + BLOCK..off + BLOCK + size)
                    .ok_or_else(|| "extended header cut short".to_string())?;
                if typeflag == b'x' {
                    pax = parse_pax(data).map_err(|e| e.to_string())?;
                } else if typeflag == b'K' {
                    long_link = Some(parse_string(data).to_vec());
                }
                off += BLOCK + size + block_padding(size as u64) as usize;
            }
            _ => {
                let num = |r: std::ops::Range<usize>| parse_numeric(&blk[r]).unwrap_or(0);
                let ustar = &blk[257..262] == b"ustar";
                let mut h = TarHeader {
                    mode: num(100..108),
                    uid: num(108..116),
                    gid: num(116..124),
                    mtime: num(136..148),
                    linkname: parse_string(&blk[157..257]).to_vec(),
                    ..TarHeader::default()
                };
                if ustar {
                    h.uname = parse_string(&blk[265..297]).to_vec();
                    h.gname = parse_string(&blk[297..329]).to_vec();
                    h.devmajor = num(329..337);
                    h.devminor = num(337..345);
                }
                if let Some(l) = long_link {
                    if !l.is_empty() {
                        h.linkname = l;
                    }
                }
                apply_pax(&mut h, &pax);
                h.pax = pax;
                return Ok(h);
            }
        }
    }
}

fn apply_pax(h: &mut TarHeader, pax: &Records) {
    let last = |key: &[u8]| {
        pax.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = last(b"linkpath") {
        h.linkname = v.to_vec();
    }
    if let Some(v) = last(b"uname") {
        h.uname = v.to_vec();
    }
    if let Some(v) = last(b"gname") {
        h.gname = v.to_vec();
    }
    if let Some(n) = last(b"uid").and_then(header::go_parse_int) {
        h.uid = n;
    }
    if let Some(n) = last(b"gid").and_then(header::go_parse_int) {
        h.gid = n;
    }
    if let Some((s, ns)) = last(b"mtime").and_then(parse_pax_time) {
        h.mtime = s;
        h.mtime_nsec = (ns != 0).then_some(ns);
    }
}

/// `"-12.5"` → (-13, 500_000_000) like Go's `parsePAXTime`.
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let (int, frac) = match v.iter().position(|&c| c == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    let secs = header::go_parse_int(int)?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut ns: u32 = 0;
    for i in 0..9 {
        ns = ns * 10 + frac.get(i).map_or(0, |c| u32::from(c - b'0'));
    }
    let neg = int.first() == Some(&b'-');
    if neg && ns != 0 {
        Some((secs - 1, 1_000_000_000 - ns))
    } else {
        Some((secs, ns))
    }
}

impl<I: Iterator<Item = Result<Entry, TarSplitError>>> Iterator for HeaderIter<I> {
    type Item = Result<FileHeader, TarSplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.entries.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(e)),
            };
            match entry {
                Entry::Segment { payload, .. } => self.segment(payload),
                Entry::File {
                    name,
                    size,
                    crc,
                    position,
                    ..
                } => {
                    let parsed = self.parse();
                    let raw_header = if parsed.is_ok() {
                        let skip = block_padding(self.pending_start) as usize;
                        self.pending.get(skip..).unwrap_or_default().to_vec()
                    } else {
                        Vec::new()
                    };
                    // Data bytes the assembler emits for this entry (keeps block alignment).
                    let emitted = match &parsed {
                        _ if size == 0 => 0,
                        Ok((h, phys, sparse)) if h.size >= 0 && h.size as u64 == size => {
                            if is_header_only(h.typeflag) && crc == Some([0; 8]) {
                                0
                            } else if matches!(sparse, Sparse::None) {
                                size
                            } else {
                                *phys
                            }
                        }
                        _ => size,
                    };
                    self.offset += emitted;
                    self.pending.clear();
                    self.overflow = false;
                    return Some(Ok(FileHeader {
                        entry_name: name,
                        position,
                        entry_size: size,
                        crc,
                        header: parsed
                            .map(|(h, _, _)| h)
                            .map_err(|reason| HeaderError { reason }),
                        raw_header,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time() {
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"1.x"), None);
    }
}
