//! Our own reader of EWF2 (`.Ex01`, EnCase 7 "v2") segment sets.
//!
//! The pinned `ewf` crate reads EWF1 (`.E01`) correctly but mis-reads EWF2: a chunk stored
//! as a *pattern fill* (table entry flags `compressed | pattern fill`, the 8-byte pattern in
//! the offset field; libewf writes every all-zero chunk this way) is inflated from offset 0
//! of the segment and fails. This module reads EWF2 itself; `.E01` stays with the crate.
//!
//! Layout (libyal's EWF2 documentation, checked against libewf's own `ewfacquire -f
//! encase7-v2` and `ewfexport`):
//!
//! * file header (32 bytes): `EVF2\r\n\x81\0`, major 2, minor 1, compression method (u16:
//!   0 none, 1 deflate, 2 bzip2), segment number (u32), set identifier (16 bytes).
//! * sections: `[data][descriptor]`; the 64-byte descriptor holds the section type, data
//!   flags, the previous descriptor's offset, the data size (padding included), the
//!   descriptor size, the padding size and an Adler-32 of its first 60 bytes. The last
//!   descriptor of a segment ends the file (`next` or `done`); the list is walked backwards.
//! * device information (type 1) and case data (type 2): zlib-compressed UTF-16LE text,
//!   tab-separated keys and values: `ts` total sectors and `bp` bytes per sector (device),
//!   `sb` sectors per chunk and `tb` number of chunks (case).
//! * sector tables (type 4): first chunk (u64), entry count (u32), padding to 32 bytes; then
//!   16-byte entries: data offset in the segment (u64), data size (u32), flags (u32: 1
//!   compressed, 2 Adler-32 after the data, 4 pattern fill).
//!
//! Bounds: at most [`MAX_SEGMENTS`] segments, [`MAX_SECTIONS`] descriptors per segment,
//! [`MAX_CHUNKS`] chunks, chunk size at most [`MAX_CHUNK_SIZE`], text sections at most
//! 1 MiB inflated; every offset is checked against its file. bzip2 and encryption are
//! refused. Checksums of uncompressed chunks are verified; a mismatch is a read error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use salvor_source::BlockDevice;

use crate::container::open_ro;
use crate::error::{DiskError, Result};
use crate::read_full;

/// `EVF2\r\n\x81\0`.
pub const SIGNATURE: &[u8; 8] = b"EVF2\x0d\x0a\x81\x00";
/// Segment files read at most (`.Ex01` … `.EzZZ` is far fewer).
pub const MAX_SEGMENTS: u32 = 30_000;
/// Section descriptors walked per segment.
pub const MAX_SECTIONS: usize = 1 << 16;
/// Chunks in an image (16 TiB at 32 KiB).
pub const MAX_CHUNKS: u64 = 1 << 29;
/// Largest chunk accepted.
pub const MAX_CHUNK_SIZE: u64 = 16 << 20;
const MAX_TEXT: u64 = 1 << 20;

const T_DEVICE_INFO: u32 = 0x01;
const T_CASE_DATA: u32 = 0x02;
const T_SECTOR_TABLE: u32 = 0x04;
const T_NEXT: u32 = 0x0d;
const T_DONE: u32 = 0x0f;

const F_COMPRESSED: u32 = 1;
const F_CHECKSUM: u32 = 2;
const F_PATTERN: u32 = 4;

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Adler-32 as zlib computes it.
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Where one chunk's bytes are.
#[derive(Debug, Clone, Copy)]
struct ChunkRef {
    segment: u32,
    /// Offset in the segment file, or the fill pattern.
    offset: u64,
    size: u32,
    flags: u32,
}

/// An opened EWF2 segment set as one block device.
pub struct Ewf2 {
    files: Vec<File>,
    paths: Vec<PathBuf>,
    chunks: Vec<ChunkRef>,
    chunk_size: u64,
    size: u64,
    desc: String,
    /// The last chunk read (sequential reads hit it).
    cache: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for Ewf2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ewf2")
            .field("segments", &self.paths)
            .field("chunks", &self.chunks.len())
            .field("chunk_size", &self.chunk_size)
            .field("size", &self.size)
            .finish()
    }
}

/// The extension of segment `n` (1-based): `Ex01`…`Ex99`, then `ExAA`…`EzZZ`.
pub fn segment_extension(first_ext: &str, n: u32) -> Option<String> {
    let lower = first_ext
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase());
    let (c0, c1) = {
        let mut it = first_ext.chars();
        (it.next()?, it.next()?)
    };
    let ext = if n < 100 {
        format!("{c0}{c1}{n:02}")
    } else {
        // 100 → "AA"; letters run AA..ZZ, then the second character advances (x → y → z).
        let k = n - 100;
        let (hi, lo) = (k / 26 / 26, k % (26 * 26));
        let base = if lower { b'a' } else { b'A' };
        let second = (c1 as u8).checked_add(hi as u8)?;
        if hi > 2 {
            return None;
        }
        format!(
            "{c0}{}{}{}",
            second as char,
            (base + (lo / 26) as u8) as char,
            (base + (lo % 26) as u8) as char
        )
    };
    Some(ext)
}

fn bad(what: &Path, reason: impl Into<String>) -> DiskError {
    DiskError::invalid(what.display().to_string(), "EWF2", reason.into())
}

/// One parsed segment file.
struct Segment {
    number: u32,
    set_id: [u8; 16],
    compression: u16,
    tables: Vec<(u64, Vec<ChunkRef>)>,
    text: BTreeMap<String, String>,
    last: u32,
}

/// Inflates a text section and parses its `keys` / `values` lines.
fn parse_text(path: &Path, data: &[u8], into: &mut BTreeMap<String, String>) -> Result<()> {
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_TEXT)
        .read_to_end(&mut raw)
        .map_err(|e| bad(path, format!("text section: {e}")))?;
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    let text = text.trim_start_matches('\u{feff}');
    let lines: Vec<&str> = text.lines().collect();
    // "1", "main", keys, values.
    if let (Some(keys), Some(values)) = (lines.get(2), lines.get(3)) {
        for (k, v) in keys.split('\t').zip(values.split('\t')) {
            into.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    Ok(())
}

fn read_segment(path: &Path, file: &File) -> Result<Segment> {
    let len = file.metadata().map_err(|e| DiskError::io(path, e))?.len();
    let io_err = |e: io::Error| DiskError::io(path, e);
    let mut head = [0u8; 32];
    if len < 32 + 64 || read_full(file, 0, &mut head).map_err(io_err)? < 32 {
        return Err(bad(path, "shorter than a header and one section"));
    }
    if &head[..8] != SIGNATURE {
        return Err(bad(path, "not an EWF2 segment (signature)"));
    }
    let compression = le16(&head, 10);
    let number = le32(&head, 12);
    let mut set_id = [0u8; 16];
    set_id.copy_from_slice(&head[16..32]);
    let mut seg = Segment {
        number,
        set_id,
        compression,
        tables: Vec::new(),
        text: BTreeMap::new(),
        last: 0,
    };
    let mut off = len - 64;
    let mut walked = 0usize;
    loop {
        walked += 1;
        if walked > MAX_SECTIONS {
            return Err(bad(
                path,
                "too many sections (or a loop in the section list)",
            ));
        }
        let mut d = [0u8; 64];
        read_full(file, off, &mut d).map_err(io_err)?;
        if adler32(&d[..60]) != le32(&d, 60) {
            return Err(bad(
                path,
                format!("section descriptor at {off}: checksum mismatch"),
            ));
        }
        let (ty, flags, prev, size) = (le32(&d, 0), le32(&d, 4), le64(&d, 8), le64(&d, 16));
        if flags & 2 != 0 {
            return Err(DiskError::unsupported(
                path.display().to_string(),
                "encrypted EWF2 sections",
            ));
        }
        if walked == 1 {
            seg.last = ty;
        }
        if size > off || off - size < 32 {
            return Err(bad(
                path,
                format!("section at {off}: data of {size} bytes before the header"),
            ));
        }
        let start = off - size;
        match ty {
            T_DEVICE_INFO | T_CASE_DATA if size <= MAX_TEXT => {
                let mut data = vec![0u8; size as usize];
                read_full(file, start, &mut data).map_err(io_err)?;
                parse_text(path, &data, &mut seg.text)?;
            }
            T_SECTOR_TABLE => {
                let mut h = [0u8; 32];
                if size < 32 {
                    return Err(bad(path, format!("sector table at {start}: {size} bytes")));
                }
                read_full(file, start, &mut h).map_err(io_err)?;
                let (first, n) = (le64(&h, 0), le32(&h, 8) as u64);
                if n.checked_mul(16).is_none_or(|b| b + 32 > size)
                    || first.checked_add(n).is_none_or(|e| e > MAX_CHUNKS)
                {
                    return Err(bad(
                        path,
                        format!("sector table at {start}: {n} entries from chunk {first}"),
                    ));
                }
                let mut e = vec![0u8; n as usize * 16];
                read_full(file, start + 32, &mut e).map_err(io_err)?;
                let entries = e
                    .chunks_exact(16)
                    .map(|x| ChunkRef {
                        segment: 0,
                        offset: le64(x, 0),
                        size: le32(x, 8),
                        flags: le32(x, 12),
                    })
                    .collect();
                seg.tables.push((first, entries));
            }
            _ => {}
        }
        if prev == 0 {
            break;
        }
        if prev >= off || prev < 32 {
            return Err(bad(
                path,
                format!("section at {off}: previous section at {prev} is not before it"),
            ));
        }
        off = prev;
    }
    Ok(seg)
}

impl Ewf2 {
    /// Opens the segment set whose first segment is `first` (`.Ex01`), finding the
    /// others beside it by extension.
    pub fn open(first: &Path) -> Result<Ewf2> {
        Self::open_with(first, open_ro(first)?, &crate::OpenOptions::default())
    }

    /// [`Ewf2::open`] with the first segment already opened; the others are opened
    /// through the one opening policy (inside the first segment's directory, regular
    /// files only), names given in `opts` used as given. `segments()` are canonical.
    pub fn open_with(first: &Path, first_file: File, opts: &crate::OpenOptions) -> Result<Ewf2> {
        let ext = first
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() == 4)
            .unwrap_or("Ex01")
            .to_string();
        let mut files = Vec::new();
        let mut paths = Vec::new();
        let mut segs = Vec::new();
        let mut n = 1u32;
        let mut path = crate::container::canonical(first)?;
        let mut file = first_file;
        loop {
            let seg = read_segment(&path, &file)?;
            if seg.number != n {
                return Err(bad(
                    &path,
                    format!("is segment {} of its set, expected {n}", seg.number),
                ));
            }
            if let Some(s0) = segs.first() {
                let s0: &Segment = s0;
                if s0.set_id != seg.set_id {
                    return Err(bad(
                        &path,
                        "belongs to another segment set (set identifier)",
                    ));
                }
            }
            let last = seg.last;
            files.push(file);
            paths.push(path.clone());
            segs.push(seg);
            if last == T_DONE {
                break;
            }
            if last != T_NEXT {
                return Err(bad(
                    &path,
                    format!("ends with section type {last:#x}, neither next nor done (truncated?)"),
                ));
            }
            n += 1;
            if n > MAX_SEGMENTS {
                return Err(bad(first, "too many segments"));
            }
            let next_ext = segment_extension(&ext, n)
                .ok_or_else(|| bad(first, format!("no extension for segment {n}")))?;
            let candidate = first.with_extension(next_ext);
            let name = candidate
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| bad(first, format!("no name for segment {n}")))?
                .to_string();
            if std::fs::symlink_metadata(&candidate).is_err()
                && !opts.backing_files.contains_key(&name)
            {
                return Err(bad(
                    first,
                    format!("segment {n} ({}) is missing", candidate.display()),
                ));
            }
            let r = crate::files::open_segment(first, &name, opts)?;
            path = r.path;
            file = r.file;
        }
        let s0 = &segs[0];
        if s0.compression == 2 {
            return Err(DiskError::unsupported(
                first.display().to_string(),
                "bzip2-compressed EWF2",
            ));
        }
        let mut text = BTreeMap::new();
        for s in &segs {
            for (k, v) in &s.text {
                text.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let num = |k: &str| text.get(k).and_then(|v| v.parse::<u64>().ok());
        let bps = num("bp").filter(|&b| b > 0).unwrap_or(512);
        let spc = num("sb").filter(|&s| s > 0).unwrap_or(64);
        let chunk_size = bps
            .checked_mul(spc)
            .filter(|&c| c <= MAX_CHUNK_SIZE)
            .ok_or_else(|| bad(first, format!("chunk size {spc} x {bps} bytes")))?;
        let mut table: BTreeMap<u64, ChunkRef> = BTreeMap::new();
        for (i, s) in segs.iter().enumerate() {
            for (first_chunk, entries) in &s.tables {
                for (k, e) in entries.iter().enumerate() {
                    let mut e = *e;
                    e.segment = i as u32;
                    table.insert(first_chunk + k as u64, e);
                }
            }
        }
        let count = table.len() as u64;
        if table
            .keys()
            .next_back()
            .is_some_and(|&last| last + 1 != count)
        {
            return Err(bad(first, "the sector tables leave chunks out"));
        }
        let chunks: Vec<ChunkRef> = table.into_values().collect();
        let size = match num("ts") {
            Some(ts) => ts
                .checked_mul(bps)
                .ok_or_else(|| bad(first, "total size overflows"))?,
            None => count * chunk_size,
        };
        if size > count * chunk_size {
            return Err(bad(
                first,
                format!("media of {size} bytes but only {count} chunks of {chunk_size}"),
            ));
        }
        // Every stored chunk must lie inside its segment file.
        for (i, c) in chunks.iter().enumerate() {
            if c.flags & F_PATTERN != 0 {
                continue;
            }
            let flen = files[c.segment as usize]
                .metadata()
                .map(|m| m.len())
                .unwrap_or(0);
            if c.offset.checked_add(c.size as u64).is_none_or(|e| e > flen)
                || c.size as u64 > chunk_size + 4 + chunk_size / 8 + 1024
            {
                return Err(bad(
                    &paths[c.segment as usize],
                    format!(
                        "chunk {i}: {} bytes at {} outside the file",
                        c.size, c.offset
                    ),
                ));
            }
        }
        Ok(Ewf2 {
            desc: format!("ewf2 {}", first.display()),
            files,
            paths,
            chunks,
            chunk_size,
            size,
            cache: Mutex::new(None),
        })
    }

    /// Chunks in the image.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes per chunk.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// Segment files, in order.
    pub fn segments(&self) -> &[PathBuf] {
        &self.paths
    }

    fn chunk(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        if let Ok(c) = self.cache.lock() {
            if let Some((k, data)) = c.as_ref() {
                if *k == i {
                    return Ok(data.clone());
                }
            }
        }
        let c = self.chunks[i];
        let cs = self.chunk_size as usize;
        let err = |m: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: chunk {i}: {m}",
                    self.paths[c.segment as usize].display()
                ),
            )
        };
        let mut out = vec![0u8; cs];
        if c.flags & F_PATTERN != 0 {
            let p = c.offset.to_le_bytes();
            for (k, b) in out.iter_mut().enumerate() {
                *b = p[k % 8];
            }
        } else {
            let mut raw = vec![0u8; c.size as usize];
            let f = &self.files[c.segment as usize];
            if read_full(f, c.offset, &mut raw)? < raw.len() {
                return Err(err("truncated".into()));
            }
            if c.flags & F_COMPRESSED != 0 {
                let mut d = flate2::read::ZlibDecoder::new(&raw[..]);
                let mut n = 0;
                while n < cs {
                    match d.read(&mut out[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) => return Err(err(format!("deflate: {e}"))),
                    }
                }
                if n < cs && (i + 1) * cs <= self.size as usize {
                    return Err(err(format!("inflates to {n} bytes, not {cs}")));
                }
            } else {
                let data_len = if c.flags & F_CHECKSUM != 0 {
                    raw.len()
                        .checked_sub(4)
                        .ok_or_else(|| err("no room for its checksum".into()))?
                } else {
                    raw.len()
                };
                if c.flags & F_CHECKSUM != 0 {
                    let stored = le32(&raw, data_len);
                    if adler32(&raw[..data_len]) != stored {
                        return Err(err("Adler-32 mismatch".into()));
                    }
                }
                let n = data_len.min(cs);
                out[..n].copy_from_slice(&raw[..n]);
            }
        }
        let out = Arc::new(out);
        if let Ok(mut c) = self.cache.lock() {
            *c = Some((i, out.clone()));
        }
        Ok(out)
    }
}

/// Opens an EWF2 segment set (`.Ex01` and its siblings) as an [`Image`].
pub(crate) fn open_image(
    first: &Path,
    file: File,
    opts: &crate::OpenOptions,
) -> Result<crate::Image> {
    let r = Ewf2::open_with(first, file, opts)?;
    let files = r.segments().to_vec();
    let detail = format!(
        "EWF2 (Ex01), {} segment(s), {} chunks of {} bytes",
        r.segments().len(),
        r.chunk_count(),
        r.chunk_size()
    );
    let damage = crate::external::ewf_damage(
        first,
        r.chunk_count() as u64,
        r.chunk_size(),
        BlockDevice::size(&r),
    );
    let mut img = crate::Image::plain(first, crate::Format::Ewf, std::sync::Arc::new(r), detail)
        .with_files(files);
    img.damage.extend(damage);
    Ok(img)
}

impl BlockDevice for Ewf2 {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let mut done = 0usize;
        let mut off = offset;
        while done < buf.len() && off < self.size {
            let i = (off / self.chunk_size) as usize;
            let within = (off % self.chunk_size) as usize;
            let data = self.chunk(i)?;
            let n = (data.len() - within)
                .min(buf.len() - done)
                .min((self.size - off) as usize);
            buf[done..done + n].copy_from_slice(&data[within..within + n]);
            done += n;
            off += n as u64;
        }
        Ok(done)
    }

    fn describe(&self) -> String {
        self.desc.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_follow_libewf() {
        assert_eq!(segment_extension("Ex01", 1).as_deref(), Some("Ex01"));
        assert_eq!(segment_extension("Ex01", 99).as_deref(), Some("Ex99"));
        assert_eq!(segment_extension("Ex01", 100).as_deref(), Some("ExAA"));
        assert_eq!(segment_extension("Ex01", 101).as_deref(), Some("ExAB"));
        assert_eq!(
            segment_extension("Ex01", 100 + 26 * 26).as_deref(),
            Some("EyAA")
        );
        assert_eq!(segment_extension("ex01", 100).as_deref(), Some("exaa"));
    }

    #[test]
    fn adler32_matches_zlib() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }
}
