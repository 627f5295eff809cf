//! Evidence as a read-only filesystem.
//!
//! Everything salvor reads from a seized host goes through the [`Source`] trait: a
//! read-only, `lstat`-style view of a directory tree that **never follows a symlink**
//! and never leaves its root. Implementations:
//!
//! * [`DirSource`]: a mounted directory (`/mnt/evidence/var/lib/docker`). Every path is
//!   opened component by component with `O_NOFOLLOW` (and `O_NOATIME` where the kernel
//!   allows it), so a symlink planted in the evidence can never lead outside it and
//!   reading never changes an access time.
//! * [`TarSource`]: a tar archive of a data-root or host root (plain, gzip or zstd), as
//!   triage collectors produce. Device nodes, modes, owners and `trusted.*`/`user.*`
//!   xattrs come from the archive headers, so overlay whiteouts survive without root.
//!
//! Paths given to a `Source` are relative to its root (a leading `/` is ignored); a `..`
//! component is an error ([`SourceError::Escape`]), and a symlink met in an intermediate
//! component is an error ([`SourceError::SymlinkInPath`]). Code that must follow links
//! the way a container would see them (a layer's `/etc -> /private/etc`) uses
//! [`resolve_in_root`], which resolves them *inside* a given layer root, like
//! `openat2(RESOLVE_IN_ROOT)`.
//!
//! [`open_evidence`] picks the implementation for a path given on the command line.
//!
//! # Guarantees
//!
//! * **Nothing is written** to the evidence, and [`DirSource`] never changes an access
//!   time (`O_NOATIME`, retried without it only where the kernel refuses it).
//! * **Only regular files are opened.** Device nodes (overlay whiteouts are `c 0 0`),
//!   fifos and sockets are inspected with `lstat`-style calls and their xattrs read
//!   through the parent directory; opening a fifo could block and opening a device
//!   could have side effects.
//! * **Bounded memory**: extended-attribute values are limited to 64 KiB, PAX headers
//!   and GNU long names to 1 MiB; a tar index costs one small record per member.
//! * **Damage is reported, not fatal**: a truncated or corrupt archive is indexed up to
//!   the damage and [`Source::warnings`] says what was lost.
//! * **Damage is said**: [`Source::damage`] lists what is wrong with the evidence itself
//!   ([`EvidenceDamage`]: a compressed stream ending early, a tar cut mid-member), so that
//!   callers can report it before anything else.
//! * Compressed archives are decompressed once into an anonymous, already-unlinked
//!   temporary file in `$TMPDIR` (never next to the evidence), so that files can be read
//!   in any order; the spool is capped ([`TarOptions::spool_limit`]) and the free space
//!   of `$TMPDIR` is checked before and while spooling; see [`TarSource`].
//! * Errors name the path they are about (and the archive, for archive-level errors).
//!
//! # Example
//!
//! ```
//! use salvor_source::{FileKind, Source, TarSource};
//! use std::path::Path;
//!
//! // A tar archive of a data-root (built here; normally a triage collector's output).
//! let dir = tempfile::tempdir().unwrap();
//! let archive = dir.path().join("evidence.tar");
//! let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
//! let mut h = tar::Header::new_ustar();
//! h.set_path("var/lib/docker/engine-id").unwrap();
//! h.set_size(5);
//! h.set_mode(0o600);
//! h.set_cksum();
//! b.append(&h, &b"ab12\n"[..]).unwrap();
//! b.into_inner().unwrap();
//!
//! let src = TarSource::open(&archive).unwrap();
//! let md = src.metadata(Path::new("var/lib/docker/engine-id")).unwrap();
//! assert_eq!((md.kind, md.size, md.mode), (FileKind::Regular, 5, 0o600));
//! // Directories the archive implies exist; `..` never leaves the root.
//! assert!(src.metadata(Path::new("var/lib")).unwrap().is_dir());
//! assert!(src.metadata(Path::new("../etc")).is_err());
//! let bytes = src.read_limited(Path::new("/var/lib/docker/engine-id"), 1024).unwrap();
//! assert_eq!(bytes, b"ab12\n");
//! ```

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

mod checksum;
mod dir;
mod identify;
pub mod inode;
mod pathcache;
mod resolve;
mod seekdev;
mod tarsrc;

pub use checksum::crc32c;
pub use dir::{DirSource, MAX_XATTR_SIZE};
pub use identify::{identify, identify_head, FsKind, HEAD_LEN};
pub use pathcache::{DirPathCache, PATH_CACHE_ENTRIES};
pub use resolve::{normalize, resolve_in_root, MAX_SYMLINK_HOPS};
pub use seekdev::SeekDevice;
pub use tarsrc::{
    default_spool_limit, parse_size, Compression, SizeError, TarOptions, TarSource,
    MAX_EXTENSION_HEADER, SPOOL_LIMIT_FLOOR, SPOOL_LIMIT_MULTIPLE, SPOOL_RESERVE,
};

/// Errors from reading evidence. Every variant names the path it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The path does not exist in the evidence.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path asked for (as shown: the evidence path, or the path inside the archive).
        path: PathBuf,
    },
    /// The path has a `..` component that would leave the evidence root.
    #[error("{path}: path leaves the evidence root")]
    Escape {
        /// The path asked for.
        path: PathBuf,
    },
    /// An intermediate component of the path is a symlink (never followed).
    #[error("{path}: a component of the path is a symlink (not followed: evidence is never read through links)")]
    SymlinkInPath {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path is not the kind of file the operation needs (reading a directory …).
    #[error("{path}: is a {found}, expected {expected}")]
    WrongKind {
        /// The path asked for.
        path: PathBuf,
        /// The kind needed, in words ("regular file", "directory", …).
        expected: &'static str,
        /// The kind the path has.
        found: FileKind,
    },
    /// The file or the structure read is malformed or beyond a limit.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The operating system (or the device below a filesystem reader) failed a read.
    #[error("{path}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The evidence is so damaged that nothing in it can be read.
    #[error("{damage}")]
    Damaged {
        /// What is damaged and how.
        damage: EvidenceDamage,
    },
    /// Decompressing a compressed archive would take more temporary space than allowed.
    #[error("{archive}: decompressing it needs more than the spool limit of {limit} bytes ({limit_human}) in {spool_dir} (stopped after {written} bytes; the archive is {compressed} bytes compressed); if the evidence really is that large, raise the limit with --spool-limit SIZE (e.g. --spool-limit 500G)")]
    SpoolLimit {
        /// The compressed archive.
        archive: PathBuf,
        /// The spool limit, in bytes ([`TarOptions::spool_limit`]).
        limit: u64,
        /// The limit in human units ("32.0 GiB").
        limit_human: String,
        /// Bytes of uncompressed tar spooled before stopping.
        written: u64,
        /// Size of the compressed archive, in bytes.
        compressed: u64,
        /// The directory holding the spool (`$TMPDIR`).
        spool_dir: PathBuf,
    },
    /// The spool directory has too little free space left.
    #[error("{archive}: not enough free space in {spool_dir} to decompress it: {available} bytes free, {needed} needed (including a reserve of {reserve} bytes kept free); point TMPDIR at a larger disk")]
    SpoolNoSpace {
        /// The compressed archive.
        archive: PathBuf,
        /// The directory holding the spool (`$TMPDIR`).
        spool_dir: PathBuf,
        /// Free bytes on the spool's filesystem when checked.
        available: u64,
        /// Bytes needed at that point, the reserve included.
        needed: u64,
        /// Bytes always kept free ([`SPOOL_RESERVE`]).
        reserve: u64,
    },
}

/// `e` and its causes (`source()`s) joined with `": "`, each cause once: a cause whose
/// text is already part of the message is skipped, as `salvor`'s `main` prints an error.
/// For errors rendered into output (JSON `error` fields, problems, warnings, notes),
/// where the message alone would lose the cause.
///
/// ```
/// let e = salvor_source::SourceError::io("a/b", std::io::Error::other("Input/output error"));
/// assert_eq!(e.to_string(), "a/b");
/// assert_eq!(salvor_source::error_chain(&e), "a/b: Input/output error");
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}

impl SourceError {
    /// [`SourceError::Io`] about `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SourceError::Io {
            path: path.into(),
            source,
        }
    }
    /// [`SourceError::Invalid`] about `path`, with what is wrong.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        SourceError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
    /// `Ok` when `found` is `want`, else [`SourceError::WrongKind`] naming the path.
    pub fn expect_kind(path: &Path, found: FileKind, want: FileKind) -> Result<()> {
        if found == want {
            return Ok(());
        }
        let expected = match want {
            FileKind::Regular => "regular file",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        };
        Err(SourceError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found,
        })
    }

    /// True when the error means "the path does not exist".
    pub fn is_not_found(&self) -> bool {
        match self {
            SourceError::NotFound { .. } => true,
            SourceError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// The result of reading evidence.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// What kind of inode a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// A regular file (`S_IFREG`).
    Regular,
    /// A directory (`S_IFDIR`).
    Dir,
    /// A symbolic link (`S_IFLNK`), never followed.
    Symlink,
    /// A character device node (`S_IFCHR`; 0/0 is an overlay whiteout).
    CharDevice,
    /// A block device node (`S_IFBLK`).
    BlockDevice,
    /// A named pipe (`S_IFIFO`).
    Fifo,
    /// A Unix-domain socket (`S_IFSOCK`).
    Socket,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "regular file",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        })
    }
}

/// What kind of damage a piece of evidence has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamageKind {
    /// The file ends before its own structure says it should: a cut or incomplete copy
    /// (a compressed stream ending early, a tar cut mid-member, an image shorter than
    /// its header or partition table says).
    Truncated,
    /// The bytes do not decode: a decompression error, a bad checksum, a tar header
    /// that is not one.
    Corrupt,
    /// A file the evidence consists of is absent (an E01 segment).
    Missing,
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DamageKind::Truncated => "truncated",
            DamageKind::Corrupt => "corrupt",
            DamageKind::Missing => "missing",
        })
    }
}

/// Damage found in the evidence itself while opening it: the evidence is read up to
/// the damage, and whatever follows from it (files missing because an archive was cut)
/// is a consequence of the damage, not a finding about the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct EvidenceDamage {
    /// The evidence file that is damaged (the archive, the image, the segment).
    pub file: PathBuf,
    /// Whether the file is cut short, does not decode, or is missing.
    pub kind: DamageKind,
    /// Byte offset in `file` where the damage was met, when known (for a compressed
    /// archive: in the compressed file).
    pub offset: Option<u64>,
    /// What is wrong, in words.
    pub detail: String,
    /// What is lost because of it, in words.
    pub lost: String,
}

impl fmt::Display for EvidenceDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.detail)?;
        if !self.lost.is_empty() {
            write!(f, "; {}", self.lost)?;
        }
        Ok(())
    }
}

/// A point in time with nanosecond precision (seconds may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (UTC).
    pub sec: i64,
    /// Nanoseconds within the second (0..1_000_000_000).
    pub nsec: u32,
}

/// `lstat` of one path: never the target of a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The inode's type.
    pub kind: FileKind,
    /// Permission bits plus setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Numeric owner (as recorded: the host's ids, not the container's names).
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Size in bytes (regular files; for symlinks the length of the target).
    pub size: u64,
    /// Device the inode lives on (0 where the source has no notion of it).
    pub dev: u64,
    /// Inode number; equal numbers on the same `dev` are hardlinks.
    pub ino: u64,
    /// Number of names (hard links) the inode has.
    pub nlink: u64,
    /// Device numbers of a character or block device node (0/0 is an overlay whiteout).
    pub rdev_major: u32,
    /// Minor device number of a device node (0 otherwise).
    pub rdev_minor: u32,
    /// Last modification of the content.
    pub mtime: Timestamp,
    /// Last access (0 where the source does not record it).
    pub atime: Timestamp,
    /// Last change of the inode (0 where the source does not record it).
    pub ctime: Timestamp,
    /// Birth time, where the source knows it.
    pub btime: Option<Timestamp>,
}

impl Metadata {
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::Regular
    }
    /// A symbolic link (the link itself: never its target).
    pub fn is_symlink(&self) -> bool {
        self.kind == FileKind::Symlink
    }
    /// An overlayfs whiteout: a character device with device number 0/0.
    pub fn is_overlay_whiteout(&self) -> bool {
        self.kind == FileKind::CharDevice && self.rdev_major == 0 && self.rdev_minor == 0
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name (one component, arbitrary bytes).
    pub name: OsString,
    /// The entry's type, as the listing (or an `lstat`) gives it.
    pub kind: FileKind,
}

/// The position a [`Seek`] to `pos` gives, for a reader at `current` over `size` bytes
/// (positions past the end are allowed, as for files; before the start is an error).
pub fn seek_position(pos: io::SeekFrom, current: u64, size: u64) -> io::Result<u64> {
    let new = match pos {
        io::SeekFrom::Start(n) => Some(n),
        io::SeekFrom::End(d) => size.checked_add_signed(d),
        io::SeekFrom::Current(d) => current.checked_add_signed(d),
    };
    new.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "seek to a negative or overflowing position",
        )
    })
}

/// An open regular file of the evidence.
pub trait FileReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> FileReader for T {}

/// A read-only view of evidence. See the crate documentation for the path rules.
pub trait Source: Send + Sync + fmt::Debug {
    /// A short human description (`directory /mnt/x`, `tar archive host.tar.gz`).
    fn describe(&self) -> String;
    /// `lstat`: metadata of the path itself, never of a symlink's target.
    fn metadata(&self, path: &Path) -> Result<Metadata>;
    /// The entries of a directory, sorted by name bytes, without `.` and `..`.
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;
    /// Opens a regular file for reading. A symlink, device, fifo or directory is
    /// [`SourceError::WrongKind`]: nothing but regular files is ever opened.
    fn open(&self, path: &Path) -> Result<Box<dyn FileReader>>;
    /// Opens a regular file and returns it with its metadata, never following a symlink
    /// on the way ([`SourceError::SymlinkInPath`] for one in a directory component,
    /// [`SourceError::WrongKind`] when the file itself is not a regular file, which is
    /// then never opened). The same answer as [`Source::metadata`] then [`Source::open`];
    /// sources that can do it in fewer system calls (a directory: one lookup, `openat`,
    /// `statx` on the descriptor) override it.
    fn open_regular(&self, path: &Path) -> Result<(Box<dyn FileReader>, Metadata)> {
        let md = self.metadata(path)?;
        SourceError::expect_kind(path, md.kind, FileKind::Regular)?;
        Ok((self.open(path)?, md))
    }
    /// The target of a symlink, as stored (not resolved).
    fn read_link(&self, path: &Path) -> Result<PathBuf>;
    /// All extended attributes of the path itself (not followed), sorted by name.
    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>>;

    /// One extended attribute, or `None` when absent.
    fn xattr(&self, path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .xattrs(path)?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v))
    }
    /// Reads a whole regular file, refusing files larger than `limit` bytes.
    fn read_limited(&self, path: &Path, limit: u64) -> Result<Vec<u8>> {
        let mut f = self.open(path)?;
        let mut buf = Vec::new();
        (&mut f)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| SourceError::io(path, e))?;
        if buf.len() as u64 > limit {
            return Err(SourceError::invalid(
                path,
                format!("larger than the {limit}-byte limit for this kind of file"),
            ));
        }
        Ok(buf)
    }
    /// True when the path exists (as anything, symlinks included).
    fn exists(&self, path: &Path) -> bool {
        self.metadata(path).is_ok()
    }
    /// Problems met while opening the evidence that did not prevent reading it (a
    /// damaged archive indexed up to the damage, members left out). Empty by default.
    fn warnings(&self) -> &[String] {
        &[]
    }
    /// Damage found in the evidence while opening it (a truncated or corrupt archive or
    /// image). Empty for undamaged evidence. Callers report this before anything else.
    fn damage(&self) -> &[EvidenceDamage] {
        &[]
    }
}

/// Opens the evidence at `path`: a directory becomes a [`DirSource`], a regular file is
/// read as a tar archive (plain, gzip or zstd, detected by magic bytes).
pub fn open_evidence(path: &Path) -> Result<Box<dyn Source>> {
    open_evidence_with(path, &TarOptions::default())
}

/// [`open_evidence`] with options for archives (the decompression spool's limit).
pub fn open_evidence_with(path: &Path, opts: &TarOptions) -> Result<Box<dyn Source>> {
    let md = std::fs::metadata(path).map_err(|e| SourceError::io(path, e))?;
    if md.is_dir() {
        Ok(Box::new(DirSource::new(path)?))
    } else if md.is_file() {
        Ok(Box::new(TarSource::open_with(path, opts)?))
    } else {
        Err(SourceError::invalid(
            path,
            "evidence must be a directory or an archive file",
        ))
    }
}

/// A read-only block device: a raw disk image, a partition of one, a logical volume, a
/// virtual disk (qcow2, VMDK, VHDX, E01) or a dm-thin device. Filesystem readers (ext4,
/// XFS) read through it and implement [`Source`] on top.
pub trait BlockDevice: Send + Sync + fmt::Debug {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Reads up to `buf.len()` bytes at `offset`; returns 0 only at or past the end.
    /// Regions that are not allocated (holes, unallocated clusters) read as zeros.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// A short human description (`qcow2 host.qcow2`, `partition 3 of disk.raw`).
    fn describe(&self) -> String;

    /// Fills `buf` completely from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(offset, buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{}: read past the end at offset {offset}", self.describe()),
                ));
            }
            offset += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }
}

/// A regular file (a raw image) as a [`BlockDevice`], opened read-only.
#[derive(Debug)]
pub struct FileDevice {
    file: std::fs::File,
    size: u64,
    path: PathBuf,
}

impl FileDevice {
    /// Opens the file at `path` read-only (with `O_NOATIME` where the kernel allows it).
    pub fn open(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOATIME: reading evidence must not change its access time (retried without it
        // where the kernel refuses, e.g. for files we do not own).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOATIME.bits() as i32)
            .open(path)
            .or_else(|_| std::fs::OpenOptions::new().read(true).open(path))
            .map_err(|e| SourceError::io(path, e))?;
        Self::from_file(path, file)
    }

    /// A file the caller already opened (and checked: salvor-disk's opening policy) as a
    /// block device; `path` names it in messages.
    pub fn from_file(path: &Path, file: std::fs::File) -> Result<Self> {
        let size = file.metadata().map_err(|e| SourceError::io(path, e))?.len();
        Ok(FileDevice {
            file,
            size,
            path: path.to_path_buf(),
        })
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if offset >= self.size {
            return Ok(0);
        }
        let max = ((self.size - offset).min(buf.len() as u64)) as usize;
        self.file.read_at(&mut buf[..max], offset)
    }
    fn describe(&self) -> String {
        format!("raw image {}", self.path.display())
    }
}
