//! Tar-archive evidence, read without unpacking to disk.
//!
//! [`TarSource::open`] reads the archive **once**, front to back, and keeps an index of
//! its members (path, kind, mode, owner, size, times, device numbers, link targets,
//! extended attributes and the offset of the member's data in the *uncompressed*
//! stream). Nothing is extracted.
//!
//! * **Plain tar**: file data is later read with positioned reads (`pread`) straight
//!   from the archive, which is opened read-only (with `O_NOATIME` where allowed).
//! * **gzip / zstd** (detected by magic bytes): the stream is decompressed exactly once,
//!   while indexing, into a *spool*: an anonymous temporary file created with
//!   [`tempfile::tempfile`] in the system temporary directory (`$TMPDIR`, normally
//!   `/tmp`), unlinked as soon as it is created, so it vanishes with the process and is
//!   never placed next to the evidence. Later reads are positioned reads into the spool
//!   (callers read files in arbitrary order, which a compressed stream cannot serve).
//!   The spool needs as much space as the uncompressed archive, so it is **capped**:
//!   [`TarOptions::spool_limit`], by default [`default_spool_limit`] (32 × the compressed
//!   size, at least 1 GiB). Before spooling, and every 16 MiB while spooling, the free
//!   space of the spool's filesystem is checked (`fstatvfs`) and [`SPOOL_RESERVE`] is
//!   kept free (checked every 16 MiB, so at least that much is left). Exceeding either stops with [`SourceError::SpoolLimit`] or
//!   [`SourceError::SpoolNoSpace`], naming the archive and the limit.
//!
//! The header parser is salvor's own (ustar, GNU and PAX): it understands GNU long
//! names and link names (`L`/`K`), PAX `path`, `linkpath`, `size`, `uid`, `gid`,
//! `mtime`, `atime`, `ctime` (nanosecond precision), global PAX headers, extended
//! attributes in `SCHILY.xattr.*` (GNU tar `--xattrs`, e.g. `trusted.overlay.opaque`),
//! `LIBARCHIVE.xattr.*` (bsdtar, base64 values) and `RHT.security.selinux`, and GNU
//! `atime`/`ctime` header fields. A PAX or long-name header over 1 MiB is refused (the
//! member it describes is left out, with a warning).
//!
//! Semantics follow extraction by `tar`:
//!
//! * a later member with the same path replaces an earlier one;
//! * a hardlink member (`1`) shares the inode of the member it names: same synthetic
//!   inode number, metadata, xattrs and content; `nlink` counts the names sharing it;
//! * directories implied by a member's path but absent from the archive appear as
//!   directories with mode 0755, owner 0:0 and mtime 0;
//! * paths are normalised (leading `./` and `/`, trailing `/` dropped); a member whose
//!   path or hardlink target contains `..` is left out of the index (it could never be
//!   looked up) with a warning;
//! * symlink members are never followed: an intermediate symlink is
//!   [`SourceError::SymlinkInPath`], as for [`DirSource`](crate::DirSource).
//!
//! Synthetic inode numbers are `1 +` the ordinal of the member that created the inode
//! (implicit directories are numbered after all members); `dev` is 0. Times the archive
//! does not record (`atime`, `ctime` without PAX or GNU fields) are reported as 0;
//! `btime` is always `None`.
//!
//! A truncated or corrupt archive is indexed up to the damage; [`TarSource::damage`]
//! says what is wrong as an [`EvidenceDamage`] (a compressed stream ending early or not
//! decoding, a tar cut mid-header or mid-member, no end-of-archive marker, damage in the
//! compressed stream after the end-of-archive marker), and [`TarSource::warnings`] what
//! was left out. An archive with no readable member at all is an error.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufReader, BufWriter, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use base64::Engine as _;

use crate::*;

mod header;
mod index;
mod stream;
use header::*;
use index::*;
use stream::*;

/// Largest PAX extended header or GNU long name/link accepted.
pub const MAX_EXTENSION_HEADER: u64 = 1024 * 1024;
/// Warnings kept verbatim; further ones are only counted.
const MAX_WARNINGS: usize = 200;
const BLOCK: u64 = 512;

/// The default spool limit is this many times the compressed archive's size...
pub const SPOOL_LIMIT_MULTIPLE: u64 = 32;
/// ...but never less than this (1 GiB).
pub const SPOOL_LIMIT_FLOOR: u64 = 1 << 30;
/// Free space kept in the spool's filesystem (64 MiB): spooling stops before less is left,
/// so that salvor never fills the examiner's disk (other programs keep working).
pub const SPOOL_RESERVE: u64 = 64 << 20;
/// How often (in spooled bytes) free space is checked again.
const SPACE_CHECK_EVERY: u64 = 16 << 20;
/// After the end-of-archive marker, at most this much of a compressed stream is decoded
/// (not spooled) to check that the stream itself ends cleanly.
const TRAILER_CHECK: u64 = 1 << 20;

/// The spool limit for a compressed archive of `compressed` bytes when none is given:
/// `max(SPOOL_LIMIT_MULTIPLE × compressed, SPOOL_LIMIT_FLOOR)`.
pub fn default_spool_limit(compressed: u64) -> u64 {
    compressed
        .saturating_mul(SPOOL_LIMIT_MULTIPLE)
        .max(SPOOL_LIMIT_FLOOR)
}

/// Why [`parse_size`] refused its input (the input, as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// The unit is not one of K, M, G, T (with optional `B`/`iB`).
    #[error("{0:?}: unknown size unit (use K, M, G or T)")]
    Unit(String),
    /// The number is not a decimal number.
    #[error("{0:?}: not a size (e.g. 500M, 10G)")]
    Number(String),
    /// The size is below one byte or does not fit in 64 bits.
    #[error("{0:?}: size out of range")]
    Range(String),
}

/// Parses a size such as `10G`, `500M`, `64MiB`, `4096` (bytes) or `1.5T`; units are
/// binary (K = 1024). `unlimited` (or `none`) is `u64::MAX`.
pub fn parse_size(s: &str) -> std::result::Result<u64, SizeError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("none") {
        return Ok(u64::MAX);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(SizeError::Unit(s.to_string())),
    };
    let v: f64 = num.parse().map_err(|_| SizeError::Number(s.to_string()))?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(SizeError::Range(s.to_string()));
    }
    Ok(bytes as u64)
}

/// Options for [`TarSource::open_with`].
#[derive(Debug, Clone)]
pub struct TarOptions {
    /// Most bytes a compressed archive may decompress to in the spool; `None` is
    /// [`default_spool_limit`] of the archive's size.
    pub spool_limit: Option<u64>,
    /// Free space kept in the spool's filesystem ([`SPOOL_RESERVE`] by default).
    pub spool_reserve: u64,
}

impl Default for TarOptions {
    fn default() -> Self {
        TarOptions {
            spool_limit: None,
            spool_reserve: SPOOL_RESERVE,
        }
    }
}

fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// How the archive file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar, read in place.
    None,
    /// gzip (magic `1f 8b`), spooled once.
    Gzip,
    /// zstd (magic `28 b5 2f fd`), spooled once.
    Zstd,
}

#[derive(Debug, Clone)]
struct Node {
    kind: FileKind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: Timestamp,
    atime: Timestamp,
    ctime: Timestamp,
    rdev_major: u32,
    rdev_minor: u32,
    /// Offset of the data in the uncompressed stream (regular files).
    offset: u64,
    /// Symlink target as stored.
    link: Option<Box<[u8]>>,
    xattrs: Vec<(OsString, Vec<u8>)>,
    /// Index of the node holding this name's inode (itself unless a hardlink).
    inode: u32,
    /// GNU/PAX sparse member: stored data is not the file content.
    sparse: bool,
}

/// A tar archive (plain, gzip or zstd) as a read-only [`Source`].
pub struct TarSource {
    archive: PathBuf,
    compression: Compression,
    /// The archive itself (plain) or the decompressed spool.
    data: Arc<File>,
    nodes: Vec<Node>,
    /// Normalised path bytes -> node ("" is the root).
    paths: HashMap<Box<[u8]>, u32>,
    /// Directory path -> sorted child names.
    children: HashMap<Box<[u8]>, Vec<Box<[u8]>>>,
    /// Per inode node: number of names sharing it.
    nlink: HashMap<u32, u64>,
    /// Per node: every ancestor of its path is a directory (so a lookup of it needs no
    /// walk; deep trees stay linear).
    clean: Vec<bool>,
    warnings: Vec<String>,
    damage: Vec<EvidenceDamage>,
}

impl fmt::Debug for TarSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TarSource")
            .field("archive", &self.archive)
            .field("compression", &self.compression)
            .field("paths", &self.paths.len())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

/// Reads a slice of the data file with positioned reads.
struct SliceReader {
    file: Arc<File>,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for SliceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive data shorter than its index",
            ));
        }
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for SliceReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = crate::seek_position(pos, self.pos, self.len)?;
        Ok(self.pos)
    }
}

/// Opens a file read-only without updating its access time where the kernel allows.
fn open_noatime(path: &Path) -> Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags | OFlags::NOATIME, Mode::empty()) {
        Err(rustix::io::Errno::PERM) => rustix::fs::open(path, flags, Mode::empty()),
        other => other,
    }
    .map_err(|e| SourceError::io(path, io::Error::from(e)))?;
    Ok(File::from(fd))
}

impl TarSource {
    /// Indexes the archive at `path` (plain, gzip or zstd tar, detected by magic bytes),
    /// with the default [`TarOptions`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &TarOptions::default())
    }

    /// Indexes the archive at `path` with `opts` (the spool limit).
    pub fn open_with(path: &Path, opts: &TarOptions) -> Result<Self> {
        let mut file = open_noatime(path)?;
        let len = file.metadata().map_err(|e| SourceError::io(path, e))?.len();
        let mut magic = [0u8; 4];
        let n = {
            let mut got = 0;
            while got < 4 {
                match file.read(&mut magic[got..]) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(SourceError::io(path, e)),
                }
            }
            got
        };
        file.seek(SeekFrom::Start(0))
            .map_err(|e| SourceError::io(path, e))?;
        let compression = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            Compression::Gzip
        } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Compression::Zstd
        } else {
            Compression::None
        };

        let mut ix = Indexer {
            nodes: Vec::new(),
            paths: HashMap::new(),
            warnings: Vec::new(),
            dropped_warnings: 0,
            globals: Vec::new(),
            cut: None,
            no_trailer: false,
        };
        let spool_err = |e: io::Error| {
            SourceError::io(
                path,
                io::Error::new(e.kind(), format!("temporary spool file: {e}")),
            )
        };
        let spool_dir = std::env::temp_dir();
        let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // (indexing result, decoder error, tar input ended, decoder error after the marker)
        let (result, decode_err, at_eof, trailer_err, data) = match compression {
            Compression::None => {
                let mut s = PlainStream {
                    r: BufReader::with_capacity(64 * 1024, file),
                    pos: 0,
                    len,
                };
                let r = ix.run(&mut s);
                let eof = s.at_eof();
                (r, None, eof, None, s.r.into_inner())
            }
            Compression::Gzip | Compression::Zstd => {
                let spool = tempfile::tempfile().map_err(spool_err)?;
                let spool_w = spool.try_clone().map_err(spool_err)?;
                let spool_fd = spool.try_clone().map_err(spool_err)?;
                let limit = opts.spool_limit.unwrap_or_else(|| default_spool_limit(len));
                // Free space first: the spool takes at least as much as the archive.
                if let Some(available) = free_space(&spool_fd) {
                    let needed = opts.spool_reserve.saturating_add(len.min(limit));
                    if available < needed {
                        return Err(SourceError::SpoolNoSpace {
                            archive: path.to_path_buf(),
                            spool_dir,
                            available,
                            needed,
                            reserve: opts.spool_reserve,
                        });
                    }
                }
                let reader = BufReader::with_capacity(
                    256 * 1024,
                    Counting {
                        r: file,
                        n: Arc::clone(&consumed),
                    },
                );
                let decoder: Box<dyn Read> = if compression == Compression::Gzip {
                    Box::new(flate2::read::MultiGzDecoder::new(reader))
                } else {
                    Box::new(
                        zstd::stream::read::Decoder::with_buffer(reader)
                            .map_err(|e| SourceError::io(path, e))?,
                    )
                };
                let mut s = TeeStream {
                    r: decoder,
                    spool: BufWriter::with_capacity(256 * 1024, spool_w),
                    spool_fd,
                    written: 0,
                    limit,
                    reserve: opts.spool_reserve,
                    next_check: 0,
                    eof: false,
                    decode_err: None,
                    stop: None,
                };
                let r = ix.run(&mut s);
                match s.stop.take() {
                    None => {}
                    Some(SpoolStop::Limit { written }) => {
                        return Err(SourceError::SpoolLimit {
                            archive: path.to_path_buf(),
                            limit,
                            limit_human: human_bytes(limit),
                            written,
                            compressed: len,
                            spool_dir,
                        })
                    }
                    Some(SpoolStop::NoSpace { available }) => {
                        return Err(SourceError::SpoolNoSpace {
                            archive: path.to_path_buf(),
                            spool_dir,
                            available,
                            needed: opts.spool_reserve.saturating_add(SPACE_CHECK_EVERY),
                            reserve: opts.spool_reserve,
                        })
                    }
                    Some(SpoolStop::Write(e)) => return Err(spool_err(e)),
                }
                s.spool.flush().map_err(spool_err)?;
                let trailer = if r.is_ok() && !ix.no_trailer {
                    s.check_trailer()
                } else {
                    None
                };
                (r, s.decode_err.take(), s.eof, trailer, spool)
            }
        };
        let at = consumed.load(std::sync::atomic::Ordering::Relaxed);
        let codec = match compression {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        };
        let mut damage = Vec::new();
        if let Err(e) = &result {
            if ix.nodes.is_empty()
                && (compression == Compression::None || (decode_err.is_none() && !at_eof))
            {
                // Nothing readable and no sign of a cut compressed stream: not a tar
                // archive (or a tar cut inside its very first header: indistinguishable).
                return Err(SourceError::invalid(
                    path,
                    format!("not a readable tar archive: {e}"),
                ));
            }
            let members = ix.nodes.len();
            let mut lost = format!("{members} member(s) read before the damage");
            if let Some(m) = &ix.cut {
                lost.push_str(&format!("; member {m} is cut short and left out"));
            }
            lost.push_str("; whatever followed is lost");
            let (kind, offset, detail) = match &decode_err {
                Some((io::ErrorKind::UnexpectedEof, _)) => (
                    DamageKind::Truncated,
                    Some(len),
                    format!("{codec} stream ends at byte {len} of the compressed file, before its end (truncated copy?)"),
                ),
                Some((_, d)) if at >= len => (
                    DamageKind::Truncated,
                    Some(len),
                    format!("{codec} stream ends at byte {len} of the compressed file, before its end (truncated copy?): {d}"),
                ),
                Some((_, d)) => (
                    DamageKind::Corrupt,
                    Some(at),
                    format!("{codec} stream does not decode (near byte {at} of the compressed file): {d}"),
                ),
                None if at_eof && compression == Compression::None => (
                    DamageKind::Truncated,
                    Some(len),
                    format!("tar archive ends at byte {len}, inside a member ({e}) (truncated copy?)"),
                ),
                None if at_eof => (
                    DamageKind::Truncated,
                    Some(len),
                    format!("the tar archive inside the {codec} stream is cut ({e}) (truncated copy?)"),
                ),
                None => (
                    DamageKind::Corrupt,
                    None,
                    format!("tar stream is corrupt: {e}"),
                ),
            };
            damage.push(EvidenceDamage {
                file: path.to_path_buf(),
                kind,
                offset,
                detail,
                lost,
            });
            if ix.nodes.is_empty() {
                // A compressed stream damaged before its first member: nothing to read.
                if let Some(damage) = damage.pop() {
                    return Err(SourceError::Damaged { damage });
                }
            }
            ix.warn(format!("archive damaged, indexed up to the damage: {e}"));
        } else if ix.no_trailer && !ix.nodes.is_empty() {
            damage.push(EvidenceDamage {
                file: path.to_path_buf(),
                kind: DamageKind::Truncated,
                offset: Some(len),
                detail: format!(
                    "tar archive has no end-of-archive marker: it ends at a member boundary (at byte {len}{}) (truncated copy?)",
                    if compression == Compression::None { String::new() } else { format!(" of the compressed file; {codec} stream complete") }
                ),
                lost: format!("{} member(s) read; whatever followed them is lost", ix.nodes.len()),
            });
        } else if let Some((kind, d)) = trailer_err {
            damage.push(EvidenceDamage {
                file: path.to_path_buf(),
                kind: if kind == io::ErrorKind::UnexpectedEof {
                    DamageKind::Truncated
                } else {
                    DamageKind::Corrupt
                },
                offset: Some(at),
                detail: format!("{codec} stream is damaged after the tar's end-of-archive marker (near byte {at} of the compressed file): {d}"),
                lost: "no member: all members were read before the damage".to_string(),
            });
        }
        if ix.nodes.is_empty() && ix.paths.is_empty() && damage.is_empty() {
            // An empty archive (only end-of-archive blocks) is valid, but say so.
            ix.warn("archive has no members".to_string());
        }
        let mut src = TarSource {
            archive: path.to_path_buf(),
            compression,
            data: Arc::new(data),
            nodes: ix.nodes,
            paths: ix.paths,
            children: HashMap::new(),
            nlink: HashMap::new(),
            clean: Vec::new(),
            warnings: ix.warnings,
            damage,
        };
        if ix.dropped_warnings > 0 {
            src.warnings
                .push(format!("... and {} more warnings", ix.dropped_warnings));
        }
        src.finish_index();
        Ok(src)
    }

    /// Damage found while indexing: the archive is read up to it.
    pub fn damage(&self) -> &[EvidenceDamage] {
        &self.damage
    }

    /// Adds implicit directories, the root, child lists and link counts.
    fn finish_index(&mut self) {
        let implicit = |inode: u32| Node {
            kind: FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: Timestamp::default(),
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            rdev_major: 0,
            rdev_minor: 0,
            offset: 0,
            link: None,
            xattrs: Vec::new(),
            inode,
            sparse: false,
        };
        let mut keys: Vec<Box<[u8]>> = self.paths.keys().cloned().collect();
        keys.sort();
        for k in &keys {
            let mut p: &[u8] = k;
            loop {
                if p.is_empty() {
                    break;
                }
                p = parent_of(p);
                if self.paths.contains_key(p) {
                    break;
                }
                let idx = self.nodes.len() as u32;
                self.nodes.push(implicit(idx));
                self.paths.insert(p.into(), idx);
            }
        }
        if !self.paths.contains_key(&b""[..]) {
            let idx = self.nodes.len() as u32;
            self.nodes.push(implicit(idx));
            self.paths.insert(Box::from(&b""[..]), idx);
        }
        let mut children: HashMap<Box<[u8]>, Vec<Box<[u8]>>> = HashMap::new();
        let mut nlink: HashMap<u32, u64> = HashMap::new();
        for (k, &n) in &self.paths {
            *nlink.entry(self.nodes[n as usize].inode).or_default() += 1;
            if !k.is_empty() {
                children
                    .entry(parent_of(k).into())
                    .or_default()
                    .push(name_of(k).into());
            }
        }
        // Directories: 2 + number of subdirectories, as on a real filesystem.
        for (dir, names) in children.iter_mut() {
            names.sort();
            if let Some(&n) = self.paths.get(dir) {
                let inode = self.nodes[n as usize].inode;
                if self.nodes[inode as usize].kind == FileKind::Dir {
                    let subdirs = names
                        .iter()
                        .filter(|c| {
                            let mut p = dir.to_vec();
                            if !p.is_empty() {
                                p.push(b'/');
                            }
                            p.extend_from_slice(c);
                            self.paths.get(p.as_slice()).is_some_and(|&i| {
                                self.nodes[self.nodes[i as usize].inode as usize].kind
                                    == FileKind::Dir
                            })
                        })
                        .count() as u64;
                    nlink.insert(inode, 2 + subdirs);
                }
            }
        }
        for (k, &n) in &self.paths {
            let inode = self.nodes[n as usize].inode;
            if self.nodes[inode as usize].kind == FileKind::Dir && !children.contains_key(k) {
                nlink.insert(inode, 2);
            }
        }
        self.children = children;
        self.nlink = nlink;
        // Parents sort before their children (a strict prefix sorts first).
        let mut clean = vec![false; self.nodes.len()];
        let mut keys: Vec<(&Box<[u8]>, u32)> = self.paths.iter().map(|(k, &n)| (k, n)).collect();
        keys.sort();
        for (k, n) in keys {
            clean[n as usize] = if k.is_empty() {
                true
            } else {
                self.paths.get(parent_of(k)).is_some_and(|&pn| {
                    clean[pn as usize]
                        && self.nodes[self.nodes[pn as usize].inode as usize].kind == FileKind::Dir
                })
            };
        }
        self.clean = clean;
    }

    /// Problems met while indexing (damage, left-out members), for the report.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// How the archive is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The archive file.
    pub fn archive(&self) -> &Path {
        &self.archive
    }

    /// Number of names in the index (members, implicit directories and the root).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// True when the archive has no members.
    pub fn is_empty(&self) -> bool {
        self.paths.len() <= 1
    }

    /// Looks up a path without following symlinks: returns (normalised path, inode node).
    fn lookup(&self, orig: &Path) -> Result<(PathBuf, &Node, u32)> {
        let norm = normalize(orig)?;
        let bytes = norm.as_os_str().as_bytes();
        // Fast path: the name exists and every ancestor is a directory.
        if let Some(&n) = self.paths.get(bytes) {
            if self.clean.get(n as usize).copied().unwrap_or(false) {
                let inode = self.nodes[n as usize].inode;
                return Ok((norm.clone(), &self.nodes[inode as usize], inode));
            }
        }
        // Otherwise walk, to say exactly what is in the way.
        let mut end = 0;
        let comps: Vec<&[u8]> = if bytes.is_empty() {
            Vec::new()
        } else {
            bytes.split(|b| *b == b'/').collect()
        };
        for (i, c) in comps.iter().enumerate() {
            end += c.len() + usize::from(i > 0);
            if i + 1 == comps.len() {
                break;
            }
            let prefix = &bytes[..end];
            let Some(&n) = self.paths.get(prefix) else {
                return Err(SourceError::NotFound {
                    path: orig.to_path_buf(),
                });
            };
            let inode = self.nodes[n as usize].inode;
            match self.nodes[inode as usize].kind {
                FileKind::Dir => {}
                FileKind::Symlink => {
                    return Err(SourceError::SymlinkInPath {
                        path: orig.to_path_buf(),
                    })
                }
                k => {
                    return Err(SourceError::WrongKind {
                        path: PathBuf::from(OsStr::from_bytes(prefix)),
                        expected: "directory",
                        found: k,
                    })
                }
            }
        }
        let Some(&n) = self.paths.get(bytes) else {
            return Err(SourceError::NotFound {
                path: orig.to_path_buf(),
            });
        };
        let inode = self.nodes[n as usize].inode;
        Ok((norm.clone(), &self.nodes[inode as usize], inode))
    }
}

impl Source for TarSource {
    fn describe(&self) -> String {
        let c = match self.compression {
            Compression::None => "",
            Compression::Gzip => " (gzip)",
            Compression::Zstd => " (zstd)",
        };
        format!("tar archive {}{c}", self.archive.display())
    }

    fn metadata(&self, path: &Path) -> Result<Metadata> {
        let (_, n, inode) = self.lookup(path)?;
        Ok(Metadata {
            kind: n.kind,
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            size: n.size,
            dev: 0,
            ino: u64::from(inode) + 1,
            nlink: self.nlink.get(&inode).copied().unwrap_or(1),
            rdev_major: n.rdev_major,
            rdev_minor: n.rdev_minor,
            mtime: n.mtime,
            atime: n.atime,
            ctime: n.ctime,
            btime: None,
        })
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let (norm, n, _) = self.lookup(path)?;
        if n.kind != FileKind::Dir {
            return Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected: "directory",
                found: n.kind,
            });
        }
        let key = norm.as_os_str().as_bytes();
        let Some(names) = self.children.get(key) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let mut p = key.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            if let Some(&c) = self.paths.get(p.as_slice()) {
                let inode = self.nodes[c as usize].inode;
                out.push(DirEntry {
                    name: OsString::from_vec(name.to_vec()),
                    kind: self.nodes[inode as usize].kind,
                });
            }
        }
        Ok(out)
    }

    fn open(&self, path: &Path) -> Result<Box<dyn FileReader>> {
        let (_, n, _) = self.lookup(path)?;
        if n.kind != FileKind::Regular {
            return Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected: "regular file",
                found: n.kind,
            });
        }
        if n.sparse {
            return Err(SourceError::invalid(
                path,
                "sparse archive member: reading sparse members is not supported",
            ));
        }
        Ok(Box::new(SliceReader {
            file: Arc::clone(&self.data),
            start: n.offset,
            len: n.size,
            pos: 0,
        }))
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf> {
        let (_, n, _) = self.lookup(path)?;
        match (&n.link, n.kind) {
            (Some(l), FileKind::Symlink) => Ok(PathBuf::from(OsString::from_vec(l.to_vec()))),
            _ => Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected: "symlink",
                found: n.kind,
            }),
        }
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
        let (_, n, _) = self.lookup(path)?;
        Ok(n.xattrs.clone())
    }

    fn warnings(&self) -> &[String] {
        TarSource::warnings(self)
    }

    fn damage(&self) -> &[EvidenceDamage] {
        TarSource::damage(self)
    }
}
