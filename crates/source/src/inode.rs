//! One skeleton for inode filesystems (`salvor-ext4`, `salvor-xfs`): an [`InodeFs`] says
//! what differs between them (open the superblock, read an inode, list a directory's
//! records, read file bytes, a symlink's target, xattrs, the report), and
//! [`InodeSource`] is the one [`Source`] over any of them. It owns path walking
//! (component by component from the root or a cached parent; a symlink in an
//! intermediate component is [`SourceError::SymlinkInPath`], `..` is refused by
//! [`normalize`]), the directory path cache, the directory cache and the kind checks.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::{
    normalize, seek_position, BlockDevice, DirEntry, DirPathCache, FileKind, FileReader, Metadata,
    Result, Source, SourceError,
};

/// One directory record as stored (without `.` and `..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry's name.
    pub name: Vec<u8>,
    /// Its inode number.
    pub ino: u64,
    /// The stored file type (ext4 `file_type`, XFS `ftype`; 0 when not recorded).
    pub ftype: u8,
}

/// The file kind a directory record's file type names (the same table in ext2/3/4 and
/// XFS), `None` for 0 and unknown values.
pub fn kind_of_ftype(t: u8) -> Option<FileKind> {
    Some(match t {
        1 => FileKind::Regular,
        2 => FileKind::Dir,
        3 => FileKind::CharDevice,
        4 => FileKind::BlockDevice,
        5 => FileKind::Fifo,
        6 => FileKind::Socket,
        7 => FileKind::Symlink,
        _ => return None,
    })
}

/// Errors from opening or reading an inode filesystem (the readers' error type).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// No superblock of this filesystem (its name, what is wrong).
    #[error("not an {0} filesystem: {1}")]
    NotThisFs(&'static str, String),
    /// Reading the device failed.
    #[error("{what}")]
    Io {
        /// The device and what was read.
        what: String,
        /// The device's error.
        #[source]
        source: io::Error,
    },
    /// A feature the reader does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A structure on disk is malformed.
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// [`FsError::Corrupt`].
pub fn corrupt(msg: impl Into<String>) -> FsError {
    FsError::Corrupt(msg.into())
}

impl FsError {
    /// As a [`SourceError`] about `path`: device errors stay I/O errors.
    pub fn at(self, path: &Path) -> SourceError {
        match self {
            FsError::Io { what, source } => SourceError::io(
                path,
                io::Error::new(source.kind(), format!("{what}: {source}")),
            ),
            other => SourceError::invalid(path, other.to_string()),
        }
    }

    /// As an `io::Error` of a file read from inode `ino`; `name_ino`: the inode is named
    /// in messages about malformed data too.
    pub fn into_io(self, ino: u64, name_ino: bool) -> io::Error {
        match self {
            FsError::Io { what, source } => {
                io::Error::new(source.kind(), format!("inode {ino}: {what}: {source}"))
            }
            other if name_ino => {
                io::Error::new(io::ErrorKind::InvalidData, format!("inode {ino}: {other}"))
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

type FsResult<T> = std::result::Result<T, FsError>;

/// What differs between inode filesystems; [`InodeSource`] does the rest.
pub trait InodeFs: Send + Sync + fmt::Debug + Sized + 'static {
    /// An inode as read from disk.
    type Inode: Send + Sync;
    /// The state of one open regular file.
    type File: Send + 'static;
    /// What the reader says about the filesystem ([`InodeSource::report`]).
    type Report;

    /// Opens the filesystem on `dev` (superblock and whatever must be checked first).
    fn open(dev: Arc<dyn BlockDevice>) -> FsResult<Self>;
    /// `<kind> filesystem on <device>`.
    fn describe(&self) -> String;
    /// The report, with every problem met so far.
    fn report(&self) -> Self::Report;
    /// Problems found while opening.
    fn open_warnings(&self) -> &[String];
    /// Records a problem that did not prevent reading.
    fn warn(&self, msg: String);

    /// The root directory's inode number.
    fn root_ino(&self) -> u64;
    /// Reads inode `ino`.
    fn read_inode(&self, ino: u64) -> FsResult<Self::Inode>;
    /// The inode's number.
    fn ino(inode: &Self::Inode) -> u64;
    /// The inode's kind (an unknown mode type is an error).
    fn kind(inode: &Self::Inode) -> FsResult<FileKind>;
    /// `lstat` of the inode.
    fn metadata(&self, inode: &Self::Inode) -> FsResult<Metadata>;
    /// Whether directory records carry a usable file type.
    fn has_ftype(&self) -> bool;
    /// The records of directory `dir`, sorted by name (sorted again, stably, here).
    fn read_dir_raw(&self, dir: &Self::Inode) -> FsResult<Vec<RawEntry>>;
    /// Opens regular file `inode` (refusing what the reader cannot read) for `path`.
    fn open_file(&self, path: &Path, inode: Self::Inode) -> Result<Self::File>;
    /// Reads at the file's position and advances it.
    fn read_file(&self, file: &mut Self::File, buf: &mut [u8]) -> io::Result<usize>;
    /// The file's position (to move it) and its size.
    fn file_position(file: &mut Self::File) -> (&mut u64, u64);
    /// The target of symlink `inode`.
    fn symlink_target(&self, inode: &Self::Inode) -> FsResult<Vec<u8>>;
    /// The inode's extended attributes, in the order they are reported.
    fn xattrs(&self, inode: &Self::Inode) -> FsResult<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// Directory entries kept in the directory cache before it is emptied.
const DIR_CACHE_ENTRIES: usize = 1 << 21;
/// Most warnings kept in memory by [`Diagnostics`] (the failure counter keeps counting).
pub const MAX_WARNINGS: usize = 1000;

#[derive(Default)]
struct DirCache {
    entries: usize,
    dirs: HashMap<u64, Arc<Vec<RawEntry>>>,
}

struct Shared<F> {
    fs: F,
    path_cache: DirPathCache,
    dir_cache: Mutex<DirCache>,
}

/// An opened inode filesystem as a [`Source`]. See the module documentation.
pub struct InodeSource<F: InodeFs> {
    inner: Arc<Shared<F>>,
}

impl<F: InodeFs> Clone for InodeSource<F> {
    fn clone(&self) -> Self {
        InodeSource {
            inner: self.inner.clone(),
        }
    }
}

impl<F: InodeFs> fmt::Debug for InodeSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fs.fmt(f)
    }
}

impl<F: InodeFs> InodeSource<F> {
    /// Opens the filesystem on `dev` ([`InodeFs::open`]).
    pub fn open(dev: Arc<dyn BlockDevice>) -> FsResult<Self> {
        Ok(Self::new(F::open(dev)?))
    }

    /// The [`Source`] over an opened filesystem.
    pub fn new(fs: F) -> Self {
        InodeSource {
            inner: Arc::new(Shared {
                fs,
                path_cache: DirPathCache::default(),
                dir_cache: Mutex::default(),
            }),
        }
    }

    /// The filesystem reader.
    pub fn fs(&self) -> &F {
        &self.inner.fs
    }

    /// What is known about the filesystem, including every problem met so far.
    pub fn report(&self) -> F::Report {
        self.inner.fs.report()
    }

    /// `lstat` by inode number (for callers that walk by inode).
    pub fn metadata_by_ino(&self, ino: u64) -> FsResult<Metadata> {
        let fs = &self.inner.fs;
        fs.metadata(&fs.read_inode(ino)?)
    }
}

impl<F: InodeFs> Shared<F> {
    /// The entries of directory `inode`, sorted by name (cached).
    fn dir_entries(&self, inode: &F::Inode) -> FsResult<Arc<Vec<RawEntry>>> {
        let ino = F::ino(inode);
        if let Some(d) = self
            .dir_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dirs
            .get(&ino)
        {
            return Ok(d.clone());
        }
        let mut entries = self.fs.read_dir_raw(inode)?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let entries = Arc::new(entries);
        let mut c = self.dir_cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.entries + entries.len() > DIR_CACHE_ENTRIES {
            c.dirs.clear();
            c.entries = 0;
        }
        c.entries += entries.len();
        c.dirs.insert(ino, entries.clone());
        Ok(entries)
    }

    fn lookup(&self, path: &Path) -> Result<F::Inode> {
        let err = |e: FsError| e.at(path);
        let norm = normalize(path)?;
        // Start from the parent directory when it was looked up before (a walk looks up
        // the children of the directory it just listed), else from the root.
        let (mut walked, start_ino, skip) =
            self.path_cache
                .start(&norm)
                .unwrap_or((PathBuf::new(), self.fs.root_ino(), 0));
        let mut cur = self.fs.read_inode(start_ino).map_err(err)?;
        for c in norm.components().skip(skip) {
            match F::kind(&cur).map_err(err)? {
                FileKind::Dir => {}
                FileKind::Symlink => {
                    return Err(SourceError::SymlinkInPath {
                        path: path.to_path_buf(),
                    })
                }
                k => {
                    return Err(SourceError::WrongKind {
                        path: walked,
                        expected: "directory",
                        found: k,
                    })
                }
            }
            let name = c.as_os_str().as_bytes();
            let entries = self.dir_entries(&cur).map_err(err)?;
            let ino = match entries.binary_search_by(|e| e.name.as_slice().cmp(name)) {
                Ok(i) => entries[i].ino,
                Err(_) => {
                    return Err(SourceError::NotFound {
                        path: path.to_path_buf(),
                    })
                }
            };
            walked.push(c);
            cur = self.fs.read_inode(ino).map_err(err)?;
        }
        // A directory looked up is likely listed next, and its children looked up.
        if F::kind(&cur).ok() == Some(FileKind::Dir) {
            self.path_cache.remember(walked, F::ino(&cur));
        }
        Ok(cur)
    }

    /// Looks `path` up and checks that it is a `want`.
    fn lookup_kind(&self, path: &Path, want: FileKind) -> Result<F::Inode> {
        let inode = self.lookup(path)?;
        let kind = F::kind(&inode).map_err(|e| e.at(path))?;
        SourceError::expect_kind(path, kind, want)?;
        Ok(inode)
    }
}

/// A regular file opened with [`Source::open`]: reads lazily, through the reader.
struct InodeFile<F: InodeFs> {
    fs: Arc<Shared<F>>,
    file: F::File,
}

impl<F: InodeFs> Read for InodeFile<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fs.fs.read_file(&mut self.file, buf)
    }
}

impl<F: InodeFs> Seek for InodeFile<F> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let (cur, size) = F::file_position(&mut self.file);
        *cur = seek_position(pos, *cur, size)?;
        Ok(*cur)
    }
}

impl<F: InodeFs> Source for InodeSource<F> {
    fn describe(&self) -> String {
        self.inner.fs.describe()
    }

    fn metadata(&self, path: &Path) -> Result<Metadata> {
        let inode = self.inner.lookup(path)?;
        self.inner.fs.metadata(&inode).map_err(|e| e.at(path))
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let fs = &self.inner.fs;
        let inode = self.inner.lookup_kind(path, FileKind::Dir)?;
        let entries = self.inner.dir_entries(&inode).map_err(|e| e.at(path))?;
        let ftype = fs.has_ftype();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries.iter() {
            let kind = match (ftype, kind_of_ftype(e.ftype)) {
                (true, Some(k)) => k,
                _ => match fs.read_inode(e.ino).and_then(|i| F::kind(&i)) {
                    Ok(k) => k,
                    Err(err) => {
                        fs.warn(format!(
                            "{}: entry {:?} left out: {}",
                            path.display(),
                            String::from_utf8_lossy(&e.name),
                            crate::error_chain(&err)
                        ));
                        continue;
                    }
                },
            };
            out.push(DirEntry {
                name: OsString::from_vec(e.name.clone()),
                kind,
            });
        }
        Ok(out)
    }

    fn open(&self, path: &Path) -> Result<Box<dyn FileReader>> {
        let inode = self.inner.lookup_kind(path, FileKind::Regular)?;
        let file = self.inner.fs.open_file(path, inode)?;
        Ok(Box::new(InodeFile {
            fs: self.inner.clone(),
            file,
        }))
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf> {
        let inode = self.inner.lookup_kind(path, FileKind::Symlink)?;
        let t = self
            .inner
            .fs
            .symlink_target(&inode)
            .map_err(|e| e.at(path))?;
        Ok(PathBuf::from(OsString::from_vec(t)))
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
        let inode = self.inner.lookup(path)?;
        let list = self.inner.fs.xattrs(&inode).map_err(|e| e.at(path))?;
        Ok(list
            .into_iter()
            .map(|(n, v)| (OsString::from_vec(n), v))
            .collect())
    }

    fn warnings(&self) -> &[String] {
        self.inner.fs.open_warnings()
    }
}

/// Problems a reader met after opening: warnings (at most [`MAX_WARNINGS`] kept) and a
/// count of checksum mismatches.
#[derive(Debug, Default)]
pub struct Diagnostics {
    inner: Mutex<(u64, Vec<String>)>,
}

impl Diagnostics {
    /// Starts with `checksum_failures` already counted (found while opening).
    pub fn with_failures(checksum_failures: u64) -> Self {
        Diagnostics {
            inner: Mutex::new((checksum_failures, Vec::new())),
        }
    }

    /// Records a problem that did not prevent reading.
    pub fn warn(&self, msg: String) {
        let mut rt = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if rt.1.len() < MAX_WARNINGS {
            rt.1.push(msg);
        }
    }

    /// Counts a checksum mismatch and records it as `checksum mismatch: {msg}`.
    pub fn checksum_failure(&self, msg: String) {
        let mut rt = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        rt.0 += 1;
        if rt.1.len() < MAX_WARNINGS {
            rt.1.push(format!("checksum mismatch: {msg}"));
        }
    }

    /// Checksum mismatches so far and `open` followed by the warnings recorded so far.
    pub fn snapshot(&self, open: &[String]) -> (u64, Vec<String>) {
        let rt = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut warnings = open.to_vec();
        warnings.extend(rt.1.iter().cloned());
        (rt.0, warnings)
    }
}

/// A 16-byte UUID as hyphenated lower-case hex (`8-4-4-4-12`).
pub fn uuid_string(u: &[u8; 16]) -> String {
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Metadata blocks a [`BlockCache`] keeps before it is emptied.
pub const CACHE_BLOCKS: usize = 4096;

/// A bounded cache of metadata blocks by key (block number or byte offset), emptied
/// when full.
#[derive(Debug, Default)]
pub struct BlockCache {
    blocks: Mutex<HashMap<u64, Arc<[u8]>>>,
}

impl BlockCache {
    /// The block cached under `key`, else what `read` returns (then cached).
    pub fn get_or_read<E>(
        &self,
        key: u64,
        read: impl FnOnce() -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<Arc<[u8]>, E> {
        if let Some(b) = self.lock().get(&key) {
            return Ok(b.clone());
        }
        let b: Arc<[u8]> = read()?.into();
        let mut c = self.lock();
        if c.len() >= CACHE_BLOCKS {
            c.clear();
        }
        c.insert(key, b.clone());
        Ok(b)
    }

    /// Forgets every block.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<[u8]>>> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Fills `out` with `data` from byte `pos` on; past the end of `data` it reads zeros (as
/// the kernels do for inline file data shorter than the file).
pub fn copy_padded(data: &[u8], pos: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = usize::try_from(pos + i as u64)
            .ok()
            .and_then(|x| data.get(x))
            .copied()
            .unwrap_or(0);
    }
}

/// The warning for a filesystem of `need` bytes on a smaller `dev`, if it is.
pub fn truncation_warning(need: u64, dev: &dyn BlockDevice) -> Option<String> {
    (need > dev.size()).then(|| {
        format!(
            "the filesystem is {need} bytes but {} holds only {} (truncated image?): blocks past the end cannot be read",
            dev.describe(),
            dev.size()
        )
    })
}
