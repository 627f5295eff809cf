//! VMDK: the text descriptor is parsed here, strictly, and every extent file is opened
//! here through the one opening policy (see [`crate::container`]); the pinned
//! `vmdk-core` crate only reads the binary sparse formats (VMDK4 `KDMV`, `COWD`,
//! seSparse) from a reader we hand it. The crate never opens a file by name.
//!
//! Descriptor grammar accepted (VMware's Virtual Disk Format 5.0):
//!
//! * empty lines and `#` comments;
//! * `key = value` lines (`createType`, `parentCID`, `ddb.*`, …); `createType` must be
//!   one of the layouts listed in [`CREATE_TYPES`], `parentCID` must be `ffffffff` (a
//!   snapshot child's parent would otherwise be silently ignored);
//! * extent lines `ACCESS SECTORS TYPE ["NAME" [OFFSET]]`, fields separated by spaces or
//!   tabs, the access mode `RW`, `RDONLY` or `NOACCESS` (any case), the type `FLAT`,
//!   `VMFS`, `SPARSE`, `VMFSSPARSE`, `SESPARSE` or `ZERO`, the name quoted or not, the
//!   offset (sectors) only for `FLAT`/`VMFS`.
//!
//! Anything else is an error naming the descriptor and the line: device maps
//! (`VMFSRDM`, `VMFSRAW`), unknown extent types, a file-backed extent without a name, a
//! missing closing quote, trailing fields. `NOACCESS` extents read as zeros; their name is
//! checked like any other but the file is not opened.

#![cfg_attr(not(feature = "vmdk"), allow(dead_code, unused_imports))]

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use salvor_source::BlockDevice;

use crate::container::{Format, Image, OpenOptions};
use crate::error::{DiskError, Result};
use crate::files::{check_name, open_referenced};
use crate::read_full;

/// The largest VMDK text descriptor read.
pub const MAX_DESCRIPTOR: u64 = 1 << 20;
/// The most extents one descriptor may list.
pub const MAX_EXTENTS: usize = 1 << 14;

/// The `createType`s accepted (device maps, `custom` and unknown layouts are refused).
pub const CREATE_TYPES: &[&str] = &[
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
    "vmfs",
    "vmfsSparse",
    "vmfsThin",
    "vmfsPreallocated",
    "vmfsEagerZeroedThick",
    "seSparse",
];

/// An extent's access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `RW`: read-write.
    Rw,
    /// `RDONLY`: read-only.
    RdOnly,
    /// `NOACCESS`: not to be read (reads as zeros).
    NoAccess,
}

/// An extent's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentType {
    /// Raw bytes at an offset of a file (`FLAT`, `VMFS`).
    Flat,
    /// A binary sparse file (`SPARSE`, `VMFSSPARSE`, `SESPARSE`).
    Sparse,
    /// Zeros, no file.
    Zero,
}

/// One extent line of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// 1-based line number in the descriptor.
    pub line: usize,
    /// The access mode (`RW`, `RDONLY`, `NOACCESS`).
    pub access: Access,
    /// Size of the extent in 512-byte sectors.
    pub sectors: u64,
    /// The extent's type (`FLAT`, `SPARSE`, `ZERO`, …).
    pub kind: ExtentType,
    /// The file name exactly as recorded (quotes removed).
    pub name: Option<String>,
    /// Offset in the file, in sectors (`FLAT`/`VMFS` only).
    pub offset: u64,
}

/// A parsed text descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// The `createType` (`monolithicSparse`, `twoGbMaxExtentFlat`, …).
    pub create_type: Option<String>,
    /// The extent lines, in order.
    pub extents: Vec<Extent>,
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v)
}

/// Splits off the first whitespace-separated (space or tab) token.
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Parses a descriptor strictly. `what` names the descriptor in errors.
pub fn parse_descriptor(what: &str, text: &str) -> Result<Descriptor> {
    let bad = |line: usize, reason: String| {
        DiskError::invalid(what, "VMDK descriptor", format!("line {line}: {reason}"))
    };
    let mut d = Descriptor::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = token(line).map(|t| t.0).unwrap_or("");
        let access = match first.to_ascii_uppercase().as_str() {
            "RW" => Some(Access::Rw),
            "RDONLY" => Some(Access::RdOnly),
            "NOACCESS" => Some(Access::NoAccess),
            _ => None,
        };
        if let Some(access) = access {
            if d.extents.len() >= MAX_EXTENTS {
                return Err(bad(n, format!("more than {MAX_EXTENTS} extents")));
            }
            d.extents
                .push(parse_extent(n, access, &line[first.len()..]).map_err(|r| bad(n, r))?);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(
                n,
                format!("{line:?} is neither an extent line nor key=value"),
            ));
        };
        let key = key.trim();
        let value = unquote(value);
        if key.eq_ignore_ascii_case("createType") {
            if !CREATE_TYPES.contains(&value) {
                return Err(DiskError::unsupported(
                    what,
                    format!(
                        "VMDK createType {value:?} (device maps and custom layouts are refused)"
                    ),
                ));
            }
            d.create_type = Some(value.to_string());
        } else if key.eq_ignore_ascii_case("parentCID") && !value.eq_ignore_ascii_case("ffffffff") {
            return Err(DiskError::unsupported(
                what,
                format!(
                    "VMDK snapshot child (parentCID={value}); open the parent chain with qemu-img convert first"
                ),
            ));
        }
    }
    Ok(d)
}

fn parse_extent(line: usize, access: Access, rest: &str) -> std::result::Result<Extent, String> {
    let (sectors, rest) = token(rest).ok_or("extent line without a size")?;
    let sectors: u64 = sectors
        .parse()
        .map_err(|_| format!("extent size {sectors:?} is not a number of sectors"))?;
    if sectors.checked_mul(512).is_none() {
        return Err(format!("extent of {sectors} sectors overflows"));
    }
    let (ty, rest) = token(rest).ok_or("extent line without a type")?;
    let kind = match ty.to_ascii_uppercase().as_str() {
        "FLAT" | "VMFS" => ExtentType::Flat,
        "SPARSE" | "VMFSSPARSE" | "SESPARSE" => ExtentType::Sparse,
        "ZERO" => ExtentType::Zero,
        "VMFSRDM" | "VMFSRAW" => {
            return Err(format!(
                "extent type {ty} maps a host device (refused: only files of the evidence are read)"
            ))
        }
        _ => return Err(format!("unknown extent type {ty:?}")),
    };
    let rest = rest.trim();
    let (name, rest) = if let Some(q) = rest.strip_prefix('"') {
        let close = q
            .find('"')
            .ok_or("extent file name without its closing quote")?;
        (Some(q[..close].to_string()), &q[close + 1..])
    } else if let Some((t, r)) = token(rest) {
        (Some(t.to_string()), r)
    } else {
        (None, "")
    };
    let mut offset = 0u64;
    let rest = rest.trim();
    if !rest.is_empty() {
        let (o, tail) = token(rest).unwrap_or((rest, ""));
        if kind != ExtentType::Flat {
            return Err(format!("unexpected {rest:?} after the file name"));
        }
        offset = o
            .parse()
            .map_err(|_| format!("extent offset {o:?} is not a number of sectors"))?;
        if offset.checked_mul(512).is_none() {
            return Err(format!("extent offset {offset} overflows"));
        }
        if !tail.trim().is_empty() {
            return Err(format!("unexpected {:?} after the offset", tail.trim()));
        }
    }
    match (&name, kind) {
        (Some(n), ExtentType::Zero) => Err(format!("ZERO extent names a file {n:?}")),
        (None, ExtentType::Flat | ExtentType::Sparse) if access != Access::NoAccess => {
            Err(format!("{ty} extent without a file name"))
        }
        (Some(n), _) if n.is_empty() => Err("empty extent file name".into()),
        _ => Ok(Extent {
            line,
            access,
            sectors,
            kind,
            name,
            offset,
        }),
    }
}

/// Reads the text descriptor of a VMDK: the whole file when it is one (starts with `#`),
/// or the descriptor embedded in a `KDMV` sparse extent.
pub(crate) fn read_descriptor(path: &Path, file: &File) -> Result<Option<String>> {
    let size = file.metadata().map_err(|e| DiskError::io(path, e))?.len();
    let mut head = [0u8; 512];
    let n = read_full(file, 0, &mut head).map_err(|e| DiskError::io(path, e))?;
    if head[..n].starts_with(b"#") {
        if size > MAX_DESCRIPTOR {
            return Err(DiskError::invalid(
                path.display().to_string(),
                "VMDK descriptor",
                format!("text descriptor of {size} bytes exceeds {MAX_DESCRIPTOR}"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        let n = read_full(file, 0, &mut buf).map_err(|e| DiskError::io(path, e))?;
        buf.truncate(n);
        return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
    }
    if n >= 512 && &head[..4] == b"KDMV" {
        // Embedded descriptor: sector offset at 28, size (sectors) at 36.
        let le = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let (off, len) = (le(28), le(36));
        if off != 0 && len != 0 && len.saturating_mul(512) <= MAX_DESCRIPTOR {
            let mut buf = vec![0u8; (len * 512) as usize];
            let n = read_full(file, off.saturating_mul(512), &mut buf)
                .map_err(|e| DiskError::io(path, e))?;
            buf.truncate(n);
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return Ok(Some(String::from_utf8_lossy(&buf[..end]).into_owned()));
        }
    }
    Ok(None)
}

enum Data {
    Zero,
    Flat {
        file: File,
        /// Byte offset of the extent's data in the file.
        offset: u64,
        path: PathBuf,
    },
    #[cfg(feature = "vmdk")]
    Sparse {
        r: Box<Mutex<vmdk::VmdkReader<BufReader<File>>>>,
        path: PathBuf,
    },
}

struct Piece {
    /// First virtual byte.
    start: u64,
    len: u64,
    data: Data,
}

/// A VMDK as one block device: its extents end to end.
struct VmdkDevice {
    pieces: Vec<Piece>,
    size: u64,
    desc: String,
}

impl std::fmt::Debug for VmdkDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.desc)
    }
}

impl VmdkDevice {
    fn read_piece(&self, p: &Piece, within: u64, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len();
        let short = |path: &Path, got: usize| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: extent {} holds {got} of {want} bytes at virtual offset {}",
                    self.desc,
                    path.display(),
                    p.start + within
                ),
            )
        };
        match &p.data {
            Data::Zero => {
                buf.fill(0);
                Ok(buf.len())
            }
            Data::Flat { file, offset, path } => {
                let n = read_full(file, offset + within, buf)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                if n < buf.len() {
                    return Err(short(path, n));
                }
                Ok(n)
            }
            #[cfg(feature = "vmdk")]
            Data::Sparse { r, path } => {
                let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
                r.seek(io::SeekFrom::Start(within))
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                let mut done = 0;
                while done < buf.len() {
                    match r.read(&mut buf[done..]) {
                        Ok(0) => break,
                        Ok(k) => done += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            return Err(io::Error::new(
                                e.kind(),
                                format!("{}: {e}", path.display()),
                            ))
                        }
                    }
                }
                if done < buf.len() {
                    return Err(short(path, done));
                }
                Ok(done)
            }
        }
    }
}

impl BlockDevice for VmdkDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = (self.size - offset).min(buf.len() as u64) as usize;
        let mut done = 0usize;
        while done < want {
            let off = offset + done as u64;
            let i = self.pieces.partition_point(|p| p.start <= off);
            let Some(p) = i.checked_sub(1).and_then(|i| self.pieces.get(i)) else {
                break;
            };
            let within = off - p.start;
            if within >= p.len {
                break;
            }
            let n = ((p.len - within) as usize).min(want - done);
            done += self.read_piece(p, within, &mut buf[done..done + n])?;
        }
        Ok(done)
    }
    fn describe(&self) -> String {
        self.desc.clone()
    }
}

#[cfg(feature = "vmdk")]
fn sparse_reader(path: &Path, file: File) -> Result<vmdk::VmdkReader<BufReader<File>>> {
    vmdk::VmdkReader::open(BufReader::new(file))
        .map_err(|e| DiskError::invalid(path.display().to_string(), "VMDK", e.to_string()))
}

/// Opens a VMDK whose first file (`path`, already opened as `file`) is a text descriptor
/// or a binary sparse extent. Returns the image; its `files` lists the descriptor and
/// every extent file, canonical.
#[cfg(feature = "vmdk")]
pub(crate) fn open(path: &Path, file: File, opts: &OpenOptions) -> Result<Image> {
    let what = path.display().to_string();
    let canon = std::fs::canonicalize(path).map_err(|e| DiskError::io(path, e))?;
    let mut files = vec![canon];
    let mut head = [0u8; 1];
    read_full(&file, 0, &mut head).map_err(|e| DiskError::io(path, e))?;
    let text = read_descriptor(path, &file)?;
    let desc = match &text {
        Some(t) => parse_descriptor(&what, t)?,
        None => Descriptor::default(),
    };
    let desc_name = format!("vmdk {}", path.display());
    if head[0] != b'#' {
        // A binary VMDK (monolithicSparse, streamOptimized, COWD): self-contained; the
        // extent lines of an embedded descriptor name the file itself and are not opened.
        let r = sparse_reader(path, file)?;
        if r.parent_cid() != 0xffff_ffff {
            return Err(DiskError::unsupported(
                what,
                format!(
                    "VMDK snapshot child (parentCID={:08x}); its parent would be ignored",
                    r.parent_cid()
                ),
            ));
        }
        let size = r.virtual_disk_size();
        let detail = r.disk_type().to_string();
        let dev = VmdkDevice {
            pieces: vec![Piece {
                start: 0,
                len: size,
                data: Data::Sparse {
                    r: Box::new(Mutex::new(r)),
                    path: path.to_path_buf(),
                },
            }],
            size,
            desc: desc_name,
        };
        return Ok(Image::plain(path, Format::Vmdk, Arc::new(dev), detail).with_files(files));
    }
    drop(file);
    if desc.extents.is_empty() {
        return Err(DiskError::invalid(
            what,
            "VMDK descriptor",
            "no extent lines",
        ));
    }
    let mut pieces = Vec::with_capacity(desc.extents.len());
    let mut start = 0u64;
    for e in &desc.extents {
        let len = e.sectors * 512; // checked when parsed
        let data = match (e.kind, e.access, &e.name) {
            (ExtentType::Zero, _, _) | (_, Access::NoAccess, None) => Data::Zero,
            (_, Access::NoAccess, Some(n)) => {
                check_name(path, "VMDK extent", n, opts)?;
                Data::Zero
            }
            (ExtentType::Flat, _, Some(n)) => {
                let f = open_referenced(path, "VMDK extent", n, opts)?;
                let offset = e.offset * 512;
                let flen = f
                    .file
                    .metadata()
                    .map_err(|x| DiskError::io(&f.path, x))?
                    .len();
                if offset.checked_add(len).is_none_or(|end| end > flen) {
                    return Err(DiskError::invalid(
                        what,
                        "VMDK descriptor",
                        format!(
                            "line {}: extent {n:?} ({}) is {flen} bytes, the descriptor maps {len} bytes at {offset}",
                            e.line,
                            f.path.display()
                        ),
                    ));
                }
                files.push(f.path.clone());
                Data::Flat {
                    file: f.file,
                    offset,
                    path: f.path,
                }
            }
            (ExtentType::Sparse, _, Some(n)) => {
                let f = open_referenced(path, "VMDK extent", n, opts)?;
                let r = sparse_reader(&f.path, f.file)?;
                if r.virtual_disk_size() < len {
                    return Err(DiskError::invalid(
                        what,
                        "VMDK descriptor",
                        format!(
                            "line {}: sparse extent {n:?} holds {} bytes, the descriptor maps {len}",
                            e.line,
                            r.virtual_disk_size()
                        ),
                    ));
                }
                files.push(f.path.clone());
                Data::Sparse {
                    r: Box::new(Mutex::new(r)),
                    path: f.path,
                }
            }
            (_, _, None) => Data::Zero, // refused when parsed
        };
        pieces.push(Piece { start, len, data });
        start = start.checked_add(len).ok_or_else(|| {
            DiskError::invalid(what.clone(), "VMDK descriptor", "extents overflow")
        })?;
    }
    let detail = desc.create_type.clone().unwrap_or_else(|| "vmdk".into());
    let dev = VmdkDevice {
        pieces,
        size: start,
        desc: desc_name,
    };
    files.dedup();
    Ok(Image::plain(path, Format::Vmdk, Arc::new(dev), detail).with_files(files))
}
