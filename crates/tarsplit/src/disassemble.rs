//! tar -> tar-split JSON, mimicking vbatts/tar-split's `NewInputTarStream` + `NewJSONPacker`.

use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Write};

use base64::Engine as _;

use crate::crc64::Crc64Hasher;
use crate::error::TarSplitError;
use crate::header::{self, read_full, HdrErr, Sparse};

/// A piece of a file's logical content, as handed to a [`FilePutter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChunk<'a> {
    /// Bytes present in the archive.
    Data(&'a [u8]),
    /// A sparse hole of this many zero bytes.
    Hole(u64),
}

/// Receives the logical (expanded) content of each file entry with size > 0 during disassembly.
pub trait FilePutter {
    /// A new file starts.
    fn begin(&mut self, name: &[u8], size: u64);
    /// Next piece of the current file, in order.
    fn chunk(&mut self, chunk: FileChunk<'_>);
    /// The current file is complete.
    fn end(&mut self) {}
}

/// Summary of a disassembly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisassemblyReport {
    /// JSON entries written.
    pub entries: u64,
    /// File entries written (all sizes).
    pub files: u64,
    /// Logical file bytes checksummed.
    pub file_bytes: u64,
    /// Bytes of tar consumed.
    pub tar_bytes: u64,
    /// Bytes after the end-of-archive marker (stored as segments).
    pub trailing_bytes: u64,
}

/// Go `path.Clean` on bytes (what `filepath.Clean` does on Unix).
pub(crate) fn go_clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for el in p.split(|&c| c == b'/') {
        match el {
            b"" | b"." => {}
            b".." => {
                if matches!(parts.last(), Some(l) if *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(el);
                }
            }
            _ => parts.push(el),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go `encoding/json` string encoding (HTML-escaping on).
fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let b = c as u32 as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn push_b64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + n);
}

struct Packer<W: Write> {
    w: BufWriter<W>,
    pos: i64,
    line: Vec<u8>,
}

impl<W: Write> Packer<W> {
    fn segment(&mut self, payload: &[u8]) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":2,\"payload\":\"");
        push_b64(&mut self.line, payload);
        self.finish_payload_and_position()
    }

    fn finish_payload_and_position(&mut self) -> io::Result<()> {
        self.line.extend_from_slice(b"\",\"position\":");
        self.line.extend_from_slice(self.pos.to_string().as_bytes());
        self.line.extend_from_slice(b"}\n");
        self.pos += 1;
        self.w.write_all(&self.line)
    }

    fn file(&mut self, name: &[u8], size: i64, crc: Option<[u8; 8]>) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(b"{\"type\":1");
        match std::str::from_utf8(name) {
            Ok("") => {}
            Ok(s) => {
                self.line.extend_from_slice(b",\"name\":");
                json_string(&mut self.line, s);
            }
            Err(_) => {
                self.line.extend_from_slice(b",\"name_raw\":\"");
                push_b64(&mut self.line, name);
                self.line.push(b'"');
            }
        }
        if size != 0 {
            self.line.extend_from_slice(b",\"size\":");
            self.line.extend_from_slice(size.to_string().as_bytes());
        }
        match crc {
            None => {
                self.line
                    .extend_from_slice(b",\"payload\":null,\"position\":");
                self.line.extend_from_slice(self.pos.to_string().as_bytes());
                self.line.extend_from_slice(b"}\n");
                self.pos += 1;
                self.w.write_all(&self.line)
            }
            Some(c) => {
                self.line.extend_from_slice(b",\"payload\":\"");
                push_b64(&mut self.line, &c);
                self.finish_payload_and_position()
            }
        }
    }
}

/// Counts bytes read from the tar.
struct Counted<R> {
    r: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// Disassembly with options. [`disassemble`] uses the defaults.
#[derive(Default)]
pub struct Disassembler<'p> {
    allow_duplicates: bool,
    putter: Option<&'p mut dyn FilePutter>,
}

impl std::fmt::Debug for Disassembler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disassembler")
            .field("allow_duplicates", &self.allow_duplicates)
            .finish_non_exhaustive()
    }
}

const TRAILING_CHUNK: usize = 1 << 20;
const DATA_BUF: usize = 1 << 20;

impl<'p> Disassembler<'p> {
    /// Defaults: duplicate paths are rejected as tar-split does; no file putter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept duplicate file paths (tar-split refuses them with `ErrDuplicatePath`).
    pub fn allow_duplicates(mut self, yes: bool) -> Self {
        self.allow_duplicates = yes;
        self
    }

    /// Stream every file's logical content to `putter`.
    pub fn file_putter(mut self, putter: &'p mut dyn FilePutter) -> Self {
        self.putter = Some(putter);
        self
    }

    /// Reads the tar from `tar` and writes tar-split JSON lines (uncompressed) to `json_out`.
    pub fn run<R: Read, W: Write>(
        mut self,
        tar: R,
        json_out: W,
    ) -> Result<DisassemblyReport, TarSplitError> {
        let mut r = Counted { r: tar, n: 0 };
        let mut pk = Packer {
            w: BufWriter::with_capacity(256 << 10, json_out),
            pos: 0,
            line: Vec::new(),
        };
        let mut report = DisassemblyReport::default();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut raw: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; DATA_BUF];
        let mut skip = 0u64;
        let mut entry = 0u64;
        macro_rules! io_err {
            ($r:expr) => {
                |source: io::Error| TarSplitError::DisassemblyIo {
                    offset: $r.n,
                    source,
                }
            };
        }
        loop {
            raw.clear();
            let res = header::read_next(&mut r, &mut raw, skip);
            let tar_err = |r: &Counted<R>, e: HdrErr| TarSplitError::Tar {
                offset: r.n,
                entry,
                detail: e.to_string(),
            };
            let p = match res {
                Err(HdrErr::Eof) => {
                    if !raw.is_empty() {
                        pk.segment(&raw).map_err(io_err!(r))?;
                    }
                    break;
                }
                Err(e) => return Err(tar_err(&r, e)),
                Ok(p) => p,
            };
            let mut phys = p.phys;
            let sparse = match p.sparse {
                Sparse::Pax1x0 => {
                    let m = header::read_map_1x0(&mut r, &mut phys).map_err(|e| tar_err(&r, e))?;
                    header::check_sparse(&p, &m).map_err(|e| tar_err(&r, e))?;
                    Some(m)
                }
                Sparse::Map(ref m) => Some(m.clone()),
                Sparse::None => None,
            };
            if !raw.is_empty() {
                pk.segment(&raw).map_err(io_err!(r))?;
            }
            let mut crc = None;
            if p.size > 0 {
                if let Some(pt) = self.putter.as_deref_mut() {
                    pt.begin(&p.name, p.size as u64);
                }
                let mut h = Crc64Hasher::new();
                match &sparse {
                    None => {
                        let mut left = phys;
                        while left > 0 {
                            let want = left.min(DATA_BUF as u64) as usize;
                            let n = read_full(&mut r, &mut buf[..want]).map_err(io_err!(r))?;
                            if n < want {
                                return Err(tar_err(&r, HdrErr::UnexpectedEof));
                            }
                            h.update(&buf[..n]);
                            if let Some(pt) = self.putter.as_deref_mut() {
                                pt.chunk(FileChunk::Data(&buf[..n]));
                            }
                            left -= n as u64;
                        }
                        phys = 0;
                    }
                    Some(map) => {
                        let mut pos = 0u64;
                        for &(off, len) in map {
                            let (off, len) = (off as u64, len as u64);
                            if off > pos {
                                h.update_zeros(off - pos);
                                if let Some(pt) = self.putter.as_deref_mut() {
                                    pt.chunk(FileChunk::Hole(off - pos));
                                }
                            }
                            if len > phys {
                                return Err(tar_err(
                                    &r,
                                    HdrErr::Bad("sparse file references non-existent data".into()),
                                ));
                            }
                            let mut left = len;
                            while left > 0 {
                                let want = left.min(DATA_BUF as u64) as usize;
                                let n = read_full(&mut r, &mut buf[..want]).map_err(io_err!(r))?;
                                if n < want {
                                    return Err(tar_err(&r, HdrErr::UnexpectedEof));
                                }
                                h.update(&buf[..n]);
                                if let Some(pt) = self.putter.as_deref_mut() {
                                    pt.chunk(FileChunk::Data(&buf[..n]));
                                }
                                left -= n as u64;
                            }
                            phys -= len;
                            pos = off + len;
                        }
                        let size = p.size as u64;
                        if size > pos {
                            h.update_zeros(size - pos);
                            if let Some(pt) = self.putter.as_deref_mut() {
                                pt.chunk(FileChunk::Hole(size - pos));
                            }
                        }
                        if phys > 0 {
                            return Err(tar_err(
                                &r,
                                HdrErr::Bad("sparse file contains unreferenced data".into()),
                            ));
                        }
                    }
                }
                if let Some(pt) = self.putter.as_deref_mut() {
                    pt.end();
                }
                report.file_bytes += p.size as u64;
                crc = Some(h.finalize());
            }
            skip = phys + p.pad;
            if !self.allow_duplicates && !seen.insert(go_clean(&p.name)) {
                return Err(TarSplitError::DuplicatePath {
                    name: String::from_utf8_lossy(&p.name).into_owned(),
                    entry,
                });
            }
            pk.file(&p.name, p.size, crc).map_err(io_err!(r))?;
            report.files += 1;
            entry += 1;
        }
        report.tar_bytes = r.n;
        // Trailing data after the tar reader stopped, in 1 MiB chunks.
        loop {
            let n = read_full(&mut r, &mut buf[..TRAILING_CHUNK]).map_err(io_err!(r))?;
            if n == 0 {
                break;
            }
            report.trailing_bytes += n as u64;
            pk.segment(&buf[..n]).map_err(io_err!(r))?;
            if n < TRAILING_CHUNK {
                break;
            }
        }
        pk.w.flush().map_err(io_err!(r))?;
        report.entries = pk.pos as u64;
        Ok(report)
    }
}

/// tar -> tar-split JSON lines (uncompressed), as vbatts/tar-split's `NewInputTarStream` + `JSONPacker`
/// would write them: same segment boundaries, same CRCs, `name_raw` for non-UTF-8 names, trailing data
/// in segments, duplicate paths rejected.
pub fn disassemble<R: Read, W: Write>(
    tar: R,
    json_out: W,
) -> Result<DisassemblyReport, TarSplitError> {
    Disassembler::new().run(tar, json_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean() {
        assert_eq!(go_clean(b"./a/../b/"), b"b");
        assert_eq!(go_clean(b"/../x"), b"/x");
        assert_eq!(go_clean(b"../../x"), b"../../x");
        assert_eq!(go_clean(b""), b".");
        assert_eq!(go_clean(b"./"), b".");
    }

    #[test]
    fn escaping() {
        let mut v = Vec::new();
        json_string(&mut v, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(
            String::from_utf8(v).unwrap(),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#
        );
    }
}
