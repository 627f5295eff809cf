//! A read-only qcow2 (v2, v3) reader.
//!
//! Supported: L1/L2 tables, unallocated clusters (read from the backing file, else
//! zeros), v3 zero clusters, compressed clusters (deflate, or zstd when the header's
//! `compression_type` says so), backing files (opened by [`crate::container`]).
//! Refused with [`DiskError::Unsupported`], never mis-read: encryption, `extended_l2`
//! (subclusters), an external data file, unknown incompatible feature bits, qcow v1.
//! Refcounts and snapshots are not needed to read the active image and are ignored.
//!
//! Bounds: the L1 table is at most [`MAX_L1_BYTES`], must cover the virtual size and lie
//! inside the file; every L2 table and data cluster offset is checked against the file
//! size when it is used; a compressed cluster must inflate to exactly one cluster.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use salvor_source::BlockDevice;
use salvor_source::{DamageKind, EvidenceDamage};
use serde::Serialize;

use crate::error::{DiskError, Result};
use crate::read_full;

/// `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// The largest L1 table we load.
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// L2 tables kept in memory.
const L2_CACHE_ENTRIES: usize = 16;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0x1f;

const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2E_COMPRESSED: u64 = 1 << 62;
const L2E_ZERO: u64 = 1;

const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_CRYPTO: u32 = 0x0537_be77;
const EXT_DATA_FILE: u32 = 0x4441_5441;

/// Compression algorithm of compressed clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Raw deflate (no zlib header), qcow2's default.
    Deflate,
    /// Zstandard (`compression_type` 1).
    Zstd,
}

/// What the qcow2 header says (for the probe report).
#[derive(Debug, Clone, Serialize)]
pub struct Qcow2Info {
    /// qcow2 version (2 or 3).
    pub version: u32,
    /// Cluster size in bytes (`1 << cluster_bits`).
    pub cluster_size: u64,
    /// Size of the virtual disk in bytes.
    pub virtual_size: u64,
    /// How compressed clusters are compressed.
    pub compression: Compression,
    /// The backing file name exactly as recorded in the image.
    pub backing_file: Option<String>,
    /// The backing format recorded in the header extension (`qcow2`, `raw`).
    pub backing_format: Option<String>,
    /// Refcounts may be stale (the image was not closed cleanly); does not affect reading.
    pub dirty: bool,
    /// qemu marked the image corrupt; it is read anyway.
    pub corrupt: bool,
}

/// A qcow2 image as a [`BlockDevice`]. See the module documentation.
pub struct Qcow2 {
    file: File,
    path: PathBuf,
    file_size: u64,
    info: Qcow2Info,
    cluster_bits: u32,
    l2_bits: u32,
    l1: Vec<u64>,
    backing: Option<Arc<dyn BlockDevice>>,
    l2_cache: Mutex<VecDeque<(u64, Arc<Vec<u64>>)>>,
    /// The last decompressed cluster: (host offset, data).
    cz_cache: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for Qcow2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("backing", &self.backing.as_ref().map(|b| b.describe()))
            .finish()
    }
}

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}
fn be64(b: &[u8], o: usize) -> u64 {
    u64::from_be_bytes(b[o..o + 8].try_into().unwrap())
}

fn bad(path: &Path, structure: &'static str, reason: impl Into<String>) -> DiskError {
    DiskError::invalid(path.display().to_string(), structure, reason)
}

impl Qcow2 {
    /// Parses the header of the already opened `file`. The backing file, if the header
    /// names one, is attached afterwards with [`Qcow2::set_backing`].
    pub fn open(path: &Path, file: File) -> Result<Self> {
        let file_size = file.metadata().map_err(|e| DiskError::io(path, e))?.len();
        let mut hdr = [0u8; 112];
        let got = read_full(&file, 0, &mut hdr).map_err(|e| DiskError::io(path, e))?;
        if got < 72 || hdr[..4] != MAGIC {
            return Err(bad(path, "qcow2 header", "truncated or bad magic"));
        }
        let version = be32(&hdr, 4);
        if version == 1 {
            return Err(DiskError::unsupported(
                path.display().to_string(),
                "qcow version 1 (only qcow2 v2/v3)",
            ));
        }
        if version != 2 && version != 3 {
            return Err(bad(
                path,
                "qcow2 header",
                format!("unknown version {version}"),
            ));
        }
        let backing_off = be64(&hdr, 8);
        let backing_len = be32(&hdr, 16) as u64;
        let cluster_bits = be32(&hdr, 20);
        let size = be64(&hdr, 24);
        let crypt = be32(&hdr, 32);
        let l1_size = be32(&hdr, 36) as u64;
        let l1_off = be64(&hdr, 40);
        if !(9..=21).contains(&cluster_bits) {
            return Err(bad(
                path,
                "qcow2 header",
                format!("cluster_bits {cluster_bits} outside 9..=21"),
            ));
        }
        let cluster_size = 1u64 << cluster_bits;
        if crypt != 0 {
            return Err(DiskError::unsupported(
                path.display().to_string(),
                format!("encrypted qcow2 (crypt_method {crypt})"),
            ));
        }
        let (incompat, header_len, compression) = if version >= 3 {
            if got < 104 {
                return Err(bad(path, "qcow2 header", "truncated v3 header"));
            }
            let incompat = be64(&hdr, 72);
            let header_len = be32(&hdr, 100) as u64;
            if header_len < 104 || header_len > cluster_size {
                return Err(bad(
                    path,
                    "qcow2 header",
                    format!("header_length {header_len} outside 104..={cluster_size}"),
                ));
            }
            let ctype = if header_len > 104 && got > 104 {
                hdr[104]
            } else {
                0
            };
            if ctype != 0 && incompat & INCOMPAT_COMPRESSION == 0 {
                return Err(bad(
                    path,
                    "qcow2 header",
                    "compression_type set without the compression-type feature bit",
                ));
            }
            let compression = match ctype {
                0 => Compression::Deflate,
                1 => Compression::Zstd,
                n => {
                    return Err(DiskError::unsupported(
                        path.display().to_string(),
                        format!("qcow2 compression_type {n}"),
                    ))
                }
            };
            (incompat, header_len, compression)
        } else {
            (0, 72, Compression::Deflate)
        };
        if incompat & INCOMPAT_EXTL2 != 0 {
            return Err(DiskError::unsupported(
                path.display().to_string(),
                "qcow2 extended_l2 (subclusters)",
            ));
        }
        if incompat & INCOMPAT_DATA_FILE != 0 {
            return Err(DiskError::unsupported(
                path.display().to_string(),
                "qcow2 with an external data file",
            ));
        }
        if incompat & !INCOMPAT_KNOWN != 0 {
            return Err(DiskError::unsupported(
                path.display().to_string(),
                format!(
                    "unknown qcow2 incompatible features {:#x}",
                    incompat & !INCOMPAT_KNOWN
                ),
            ));
        }

        // Header extensions: within the first cluster.
        let mut backing_format = None;
        let first_len = cluster_size.min(file_size) as usize;
        let mut first = vec![0u8; first_len];
        let got = read_full(&file, 0, &mut first).map_err(|e| DiskError::io(path, e))?;
        first.truncate(got);
        let mut off = header_len as usize;
        for _ in 0..256 {
            if off + 8 > first.len() {
                break;
            }
            let ty = be32(&first, off);
            let len = be32(&first, off + 4) as usize;
            let data = off + 8;
            if ty == EXT_END {
                break;
            }
            if len > first.len() - data {
                return Err(bad(
                    path,
                    "qcow2 header extension",
                    format!("extension {ty:#x} of {len} bytes runs past the first cluster"),
                ));
            }
            match ty {
                EXT_BACKING_FORMAT => {
                    backing_format =
                        Some(String::from_utf8_lossy(&first[data..data + len]).into_owned())
                }
                EXT_CRYPTO => {
                    return Err(DiskError::unsupported(
                        path.display().to_string(),
                        "qcow2 full-disk encryption",
                    ))
                }
                EXT_DATA_FILE => {
                    return Err(DiskError::unsupported(
                        path.display().to_string(),
                        "qcow2 with an external data file",
                    ))
                }
                _ => {}
            }
            off = data + len.div_ceil(8) * 8;
        }

        let backing_file = if backing_off != 0 {
            if backing_len == 0 || backing_len > 1023 {
                return Err(bad(
                    path,
                    "qcow2 backing file name",
                    format!("length {backing_len} outside 1..=1023"),
                ));
            }
            let end = backing_off.checked_add(backing_len);
            if backing_off >= cluster_size || end.is_none_or(|e| e > file_size) {
                return Err(bad(
                    path,
                    "qcow2 backing file name",
                    format!("offset {backing_off} outside the first cluster or the file"),
                ));
            }
            let mut name = vec![0u8; backing_len as usize];
            file.read_exact_at(&mut name, backing_off)
                .map_err(|e| DiskError::io(path, e))?;
            if name.contains(&0) {
                return Err(bad(path, "qcow2 backing file name", "contains a NUL byte"));
            }
            Some(
                String::from_utf8(name)
                    .map_err(|_| bad(path, "qcow2 backing file name", "not UTF-8"))?,
            )
        } else {
            None
        };

        // L1 table.
        let l2_bits = cluster_bits - 3;
        let per_l1 = 1u128 << (cluster_bits + l2_bits);
        let needed = (size as u128).div_ceil(per_l1);
        if (l1_size as u128) < needed {
            return Err(bad(
                path,
                "qcow2 L1 table",
                format!("{l1_size} entries cannot map the virtual size {size} (needs {needed})"),
            ));
        }
        let l1_bytes = l1_size * 8;
        if l1_bytes > MAX_L1_BYTES {
            return Err(bad(
                path,
                "qcow2 L1 table",
                format!("{l1_bytes} bytes exceeds the {MAX_L1_BYTES}-byte limit"),
            ));
        }
        if l1_size > 0
            && (l1_off % cluster_size != 0
                || l1_off.checked_add(l1_bytes).is_none_or(|e| e > file_size))
        {
            return Err(bad(
                path,
                "qcow2 L1 table",
                format!("offset {l1_off} (+{l1_bytes}) unaligned or past the end of the file ({file_size} bytes)"),
            ));
        }
        // Only the entries that map the virtual size are used.
        let used = needed as usize;
        let mut raw = vec![0u8; used * 8];
        file.read_exact_at(&mut raw, l1_off)
            .map_err(|e| DiskError::io(path, e))?;
        let l1 = raw
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect();

        Ok(Qcow2 {
            file,
            path: path.to_path_buf(),
            file_size,
            info: Qcow2Info {
                version,
                cluster_size,
                virtual_size: size,
                compression,
                backing_file,
                backing_format,
                dirty: incompat & INCOMPAT_DIRTY != 0,
                corrupt: incompat & INCOMPAT_CORRUPT != 0,
            },
            cluster_bits,
            l2_bits,
            l1,
            backing: None,
            l2_cache: Mutex::new(VecDeque::new()),
            cz_cache: Mutex::new(None),
        })
    }

    /// What the header says.
    pub fn info(&self) -> &Qcow2Info {
        &self.info
    }

    /// Structures the header points to that lie past the end of the file: the refcount
    /// table, L2 tables and data clusters (a cut copy of the image). Reads every L2 table
    /// once (at most one cluster per L1 entry in use, all inside the file).
    pub fn damage(&self) -> Vec<EvidenceDamage> {
        let mut out = Vec::new();
        let cs = 1u64 << self.cluster_bits;
        let size = self.file_size;
        let cut = |detail: String, lost: String, offset: u64| EvidenceDamage {
            file: self.path.clone(),
            kind: DamageKind::Truncated,
            offset: Some(offset),
            detail,
            lost,
        };
        let mut hdr = [0u8; 64];
        if read_full(&self.file, 0, &mut hdr).is_ok_and(|n| n >= 64) {
            let rt_off = be64(&hdr, 48);
            let rt_clusters = u64::from(be32(&hdr, 56));
            let end = rt_clusters
                .checked_mul(cs)
                .and_then(|b| b.checked_add(rt_off));
            if rt_off != 0 && end.is_none_or(|e| e > size) {
                out.push(cut(
                    format!("qcow2 refcount table at byte {rt_off} ({rt_clusters} cluster(s)) lies past the end of the file ({size} bytes) (truncated copy?)"),
                    "the image's allocation records".to_string(),
                    size,
                ));
            }
        }
        let mut l2_past = (0u64, None::<u64>);
        let mut data_past = (0u64, None::<u64>);
        let mut table = vec![0u8; cs as usize];
        for &e in &self.l1 {
            let l2_off = e & OFFSET_MASK;
            if l2_off == 0 {
                continue;
            }
            if l2_off.checked_add(cs).is_none_or(|end| end > size) {
                l2_past.0 += 1;
                l2_past.1.get_or_insert(l2_off);
                continue;
            }
            if read_full(&self.file, l2_off, &mut table).map_or(true, |n| n < table.len()) {
                continue;
            }
            for c in table.chunks_exact(8) {
                let l2e = u64::from_be_bytes(c.try_into().unwrap_or([0; 8]));
                let host = if l2e & L2E_COMPRESSED != 0 {
                    // Compressed: the host offset is in the low 62 - (cluster_bits - 8) bits.
                    l2e & ((1u64 << (62 - (self.cluster_bits - 8))) - 1)
                } else {
                    l2e & OFFSET_MASK
                };
                if host != 0 && host >= size {
                    data_past.0 += 1;
                    data_past.1.get_or_insert(host);
                }
            }
        }
        if let (n, Some(first)) = l2_past {
            out.push(cut(
                format!("{n} qcow2 L2 table(s) lie past the end of the file ({size} bytes; the first at byte {first}) (truncated copy?)"),
                format!("up to {} bytes of the virtual disk mapped by them", n.saturating_mul(cs / 8).saturating_mul(cs)),
                size,
            ));
        }
        if let (n, Some(first)) = data_past {
            out.push(cut(
                format!("{n} qcow2 data cluster(s) lie past the end of the file ({size} bytes; the first at byte {first}) (truncated copy?)"),
                format!("{} bytes of the virtual disk (they cannot be read)", n.saturating_mul(cs)),
                size,
            ));
        }
        out
    }

    /// Attaches the backing device: clusters this image does not allocate are read from it.
    pub fn set_backing(&mut self, backing: Arc<dyn BlockDevice>) {
        self.backing = Some(backing);
    }

    fn err(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("qcow2 {}: {what}", self.path.display()),
        )
    }

    fn l2_table(&self, l2_off: u64) -> io::Result<Arc<Vec<u64>>> {
        let cache = self.l2_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, t)) = cache.iter().find(|(o, _)| *o == l2_off) {
            return Ok(t.clone());
        }
        drop(cache);
        let cs = 1u64 << self.cluster_bits;
        if l2_off % cs != 0 || l2_off.checked_add(cs).is_none_or(|e| e > self.file_size) {
            return Err(self.err(format!(
                "L2 table offset {l2_off} unaligned or past the end of the file ({} bytes)",
                self.file_size
            )));
        }
        let mut raw = vec![0u8; cs as usize];
        self.file.read_exact_at(&mut raw, l2_off)?;
        let t: Arc<Vec<u64>> = Arc::new(
            raw.chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
                .collect(),
        );
        let mut cache = self.l2_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= L2_CACHE_ENTRIES {
            cache.pop_front();
        }
        cache.push_back((l2_off, t.clone()));
        Ok(t)
    }

    fn compressed_cluster(&self, entry: u64) -> io::Result<Arc<Vec<u8>>> {
        let cb = self.cluster_bits;
        let x = 62 - (cb - 8);
        let coff = entry & ((1u64 << x) - 1);
        let nsec = ((entry >> x) & ((1u64 << (cb - 8)) - 1)) + 1;
        {
            let c = self.cz_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((o, d)) = c.as_ref() {
                if *o == coff {
                    return Ok(d.clone());
                }
            }
        }
        let csize = nsec * 512 - (coff & 511);
        if coff >= self.file_size {
            return Err(self.err(format!(
                "compressed cluster at {coff} past the end of the file ({} bytes)",
                self.file_size
            )));
        }
        let csize = csize.min(self.file_size - coff) as usize;
        let mut input = vec![0u8; csize];
        let n = read_full(&self.file, coff, &mut input)?;
        input.truncate(n);
        let cs = 1usize << cb;
        let mut out = vec![0u8; cs];
        let produced = match self.info.compression {
            Compression::Deflate => {
                let mut d = flate2::Decompress::new(false);
                match d.decompress(&input, &mut out, flate2::FlushDecompress::Finish) {
                    Ok(_) => d.total_out() as usize,
                    Err(e) => {
                        return Err(self.err(format!("compressed cluster at {coff}: deflate: {e}")))
                    }
                }
            }
            Compression::Zstd => {
                use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
                let mut d = Decoder::new()?;
                let mut inb = InBuffer::around(&input);
                let mut outb = OutBuffer::around(&mut out[..]);
                loop {
                    let before = (inb.pos(), outb.pos());
                    let r = d.run(&mut inb, &mut outb).map_err(|e| {
                        self.err(format!("compressed cluster at {coff}: zstd: {e}"))
                    })?;
                    if outb.pos() == cs || (r == 0 && inb.pos() == input.len()) {
                        break;
                    }
                    if (inb.pos(), outb.pos()) == before {
                        break;
                    }
                }
                outb.pos()
            }
        };
        if produced != cs {
            return Err(self.err(format!(
                "compressed cluster at {coff} inflates to {produced} bytes, not {cs}"
            )));
        }
        let out = Arc::new(out);
        *self.cz_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((coff, out.clone()));
        Ok(out)
    }

    fn read_unallocated(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.fill(0);
        if let Some(b) = &self.backing {
            let bsize = b.size();
            if offset < bsize {
                let n = (bsize - offset).min(buf.len() as u64) as usize;
                b.read_exact_at(offset, &mut buf[..n])?;
            }
        }
        Ok(())
    }
}

impl BlockDevice for Qcow2 {
    fn size(&self) -> u64 {
        self.info.virtual_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.info.virtual_size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let cs = 1u64 << self.cluster_bits;
        let within = offset & (cs - 1);
        let n = (cs - within).min(size - offset).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        let ci = offset >> self.cluster_bits;
        let l1i = (ci >> self.l2_bits) as usize;
        let l2i = (ci & ((1u64 << self.l2_bits) - 1)) as usize;
        let l1e = *self
            .l1
            .get(l1i)
            .ok_or_else(|| self.err(format!("L1 index {l1i} out of range")))?;
        let l2_off = l1e & OFFSET_MASK;
        if l2_off == 0 {
            self.read_unallocated(offset, buf)?;
            return Ok(n);
        }
        let l2 = self.l2_table(l2_off)?;
        let e = l2[l2i];
        if e & L2E_COMPRESSED != 0 {
            let data = self.compressed_cluster(e)?;
            buf.copy_from_slice(&data[within as usize..within as usize + n]);
            return Ok(n);
        }
        if self.info.version >= 3 && e & L2E_ZERO != 0 {
            buf.fill(0);
            return Ok(n);
        }
        let host = e & OFFSET_MASK;
        if host == 0 {
            self.read_unallocated(offset, buf)?;
            return Ok(n);
        }
        if host % cs != 0 {
            return Err(self.err(format!("data cluster offset {host} is not cluster-aligned")));
        }
        let at = host + within;
        if at >= self.file_size {
            return Err(self.err(format!(
                "data cluster at {host} past the end of the file ({} bytes)",
                self.file_size
            )));
        }
        // A last cluster that the file does not fully contain reads as zeros past EOF,
        // as qemu does.
        let got = read_full(&self.file, at, buf)?;
        buf[got..].fill(0);
        Ok(n)
    }

    fn describe(&self) -> String {
        format!("qcow2 {}", self.path.display())
    }
}
