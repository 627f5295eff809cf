//! Mounted-directory evidence.
//!
//! Every path is opened component by component from a directory file descriptor of the
//! evidence root with `openat(O_PATH | O_NOFOLLOW)`, so a symlink planted in the evidence
//! is never followed (an intermediate symlink is [`SourceError::SymlinkInPath`]), and
//! nothing outside the root can be reached. Regular files are opened with `O_NOATIME`
//! (retried without it when the kernel refuses), device nodes, fifos and sockets are
//! never opened at all, and nothing is ever written.
//!
//! # Descriptor-relative lookups
//!
//! Walking from the root for every call would make a lookup at depth `d` cost `d` opens,
//! and a walk of a tree `d` deep quadratic (cubic for callers that resolve every
//! component). So a [`DirSource`] keeps the descriptors of the last
//! [`DIR_FD_CACHE`] directories it walked to (each obtained by the same no-follow walk),
//! and a lookup starts from the deepest of them that is an ancestor of the path: in a
//! depth-first walk, `metadata`/`open`/`read_link`/`xattrs` of a directory's entries are
//! one `*at` call on the parent's descriptor, and entering a subdirectory is one more
//! `openat`. Callers need nothing special to benefit: walk in tree order (parents
//! before children, siblings together), as every walk in salvor does.
//!
//! A cached descriptor keeps naming the directory it was opened on; if live evidence
//! were renamed under the reader, a lookup through it sees the directory where it is now,
//! exactly as a walk holding the descriptor open would (the evidence is expected not to
//! change; no path ever leaves through a symlink either way).

use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use crate::*;

/// Largest extended-attribute value (and name list) read: the Linux VFS limit.
pub const MAX_XATTR_SIZE: usize = 64 * 1024;

/// Directory descriptors a [`DirSource`] keeps for lookups relative to them (see the
/// module documentation): the most recently walked ones.
pub const DIR_FD_CACHE: usize = 16;
/// Besides those, the directory every [`DIR_FD_SPINE_EVERY`] levels on the most recently
/// walked path, down to [`DIR_FD_SPINE`] such levels: going back up a deep tree (a
/// post-order step, the next sibling of a deep branch) then costs at most that many
/// opens, not the depth.
pub const DIR_FD_SPINE_EVERY: usize = 64;
/// Levels of the spine kept (`DIR_FD_SPINE * DIR_FD_SPINE_EVERY` = 16,384 deep).
pub const DIR_FD_SPINE: usize = 256;

/// The descriptor cache of a [`DirSource`].
#[derive(Debug, Default)]
struct DirCache {
    /// Recently walked directories (normalised path relative to the root, `O_PATH`
    /// descriptor), most recent last. Never the root itself.
    recent: Vec<(Vec<u8>, Arc<OwnedFd>)>,
    /// `spine[j]`: the directory `(j + 1) * DIR_FD_SPINE_EVERY` components deep on the
    /// most recent walk that went that deep.
    spine: Vec<(Vec<u8>, Arc<OwnedFd>)>,
}

/// A mounted directory, read through no-follow file-descriptor-relative calls.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    root_fd: Arc<OwnedFd>,
    dirs: Mutex<DirCache>,
    /// `/proc/self/fd` is there: xattrs are read through it without opening the entry.
    proc_fd: bool,
}

/// Where a path ends: the directory holding its last component, and that component.
/// `name == None` means the root itself.
struct Located {
    parent: Arc<OwnedFd>,
    name: Option<OsString>,
}

/// Whether normalised path `dir` is `path` or one of its ancestors.
fn is_ancestor(dir: &[u8], path: &[u8]) -> bool {
    path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

impl Located {
    /// `(dirfd, name)` for an `*at` call: the root is addressed as `""` with `AT_EMPTY_PATH`.
    fn at(&self) -> (BorrowedFd<'_>, &OsStr, AtFlags) {
        match &self.name {
            Some(n) => (
                self.parent.as_fd(),
                n.as_os_str(),
                AtFlags::SYMLINK_NOFOLLOW,
            ),
            None => (
                self.parent.as_fd(),
                OsStr::new(""),
                AtFlags::SYMLINK_NOFOLLOW | AtFlags::EMPTY_PATH,
            ),
        }
    }
}

fn errno_io(path: &Path, e: Errno) -> SourceError {
    if e == Errno::NOENT {
        SourceError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        SourceError::io(path, io::Error::from(e))
    }
}

fn kind_of_mode(mode: u32) -> FileKind {
    match FileType::from_raw_mode(mode as _) {
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        _ => FileKind::Regular,
    }
}

fn kind_of_type(t: FileType) -> Option<FileKind> {
    Some(match t {
        FileType::RegularFile => FileKind::Regular,
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        FileType::Unknown => return None,
    })
}

impl DirSource {
    /// Opens the evidence directory `root` (symlinks in `root` itself, given by the
    /// operator, are followed; nothing below it ever is).
    pub fn new(root: &Path) -> Result<Self> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
            root_fd: Arc::new(root_fd),
            dirs: Mutex::new(DirCache::default()),
            proc_fd: Path::new("/proc/self/fd").is_dir(),
        })
    }

    /// The deepest cached directory that is `dir` or an ancestor of it: (its path length
    /// in bytes, its depth in components, its descriptor); the root when none is.
    fn nearest(&self, dir: &[u8]) -> (usize, usize, Arc<OwnedFd>) {
        let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        let best = cache
            .recent
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| p.len() <= dir.len() && is_ancestor(p, dir))
            .max_by_key(|(_, (p, _))| p.len())
            .map(|(i, _)| i);
        let recent_len = best.map_or(0, |i| cache.recent[i].0.len());
        // The deepest spine level on the way to `dir`, if it is deeper than that.
        let mut spine_hit = None;
        if !cache.spine.is_empty() && !dir.is_empty() {
            let mut ends = Vec::new();
            let mut depth = 0;
            for (i, &c) in dir.iter().enumerate() {
                if c == b'/' {
                    depth += 1;
                    if depth % DIR_FD_SPINE_EVERY == 0 {
                        ends.push(i);
                    }
                }
            }
            if (depth + 1) % DIR_FD_SPINE_EVERY == 0 {
                ends.push(dir.len());
            }
            for (j, &end) in ends.iter().enumerate().rev() {
                if end <= recent_len {
                    break;
                }
                if cache
                    .spine
                    .get(j)
                    .is_some_and(|(p, _)| p.as_slice() == &dir[..end])
                {
                    spine_hit = Some(j);
                    break;
                }
            }
        }
        if let Some(j) = spine_hit {
            let (p, fd) = &cache.spine[j];
            return (p.len(), (j + 1) * DIR_FD_SPINE_EVERY, fd.clone());
        }
        match best {
            Some(i) => {
                let e = cache.recent.remove(i);
                let depth = 1 + e.0.iter().filter(|&&c| c == b'/').count();
                let r = (e.0.len(), depth, e.1.clone());
                cache.recent.push(e);
                r
            }
            None => (0, 0, self.root_fd.clone()),
        }
    }

    /// Remembers the descriptor of directory `dir` (normalised, not the root), and the
    /// spine levels met on the way to it.
    fn remember(&self, dir: &[u8], fd: &Arc<OwnedFd>, spine: Vec<(usize, Vec<u8>, Arc<OwnedFd>)>) {
        let mut cache = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        for (j, p, fd) in spine {
            if j < cache.spine.len() {
                cache.spine[j] = (p, fd);
            } else if j == cache.spine.len() && j < DIR_FD_SPINE {
                cache.spine.push((p, fd));
            }
        }
        if dir.is_empty() {
            return;
        }
        if let Some(i) = cache.recent.iter().position(|(p, _)| p.as_slice() == dir) {
            let e = cache.recent.remove(i);
            cache.recent.push(e);
            return;
        }
        if cache.recent.len() >= DIR_FD_CACHE {
            cache.recent.remove(0);
        }
        cache.recent.push((dir.to_vec(), fd.clone()));
    }

    /// Walks to the parent directory of `path`, component by component, never following
    /// a symlink, starting from the nearest cached ancestor. `path` must be normalised.
    fn locate(&self, orig: &Path, path: &Path) -> Result<Located> {
        let bytes = path.as_os_str().as_bytes();
        let (parent, last): (&[u8], &[u8]) = match bytes.iter().rposition(|&c| c == b'/') {
            Some(i) => (&bytes[..i], &bytes[i + 1..]),
            None => (&[], bytes),
        };
        if last.is_empty() {
            return Ok(Located {
                parent: self.root_fd.clone(),
                name: None,
            });
        }
        let (done, mut depth, mut cur) = self.nearest(parent);
        let mut spine = Vec::new();
        for c in parent[done..]
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
        {
            // `parent[..walked]`: the path up to and including this component.
            let walked = c.as_ptr() as usize - parent.as_ptr() as usize + c.len();
            let c = OsStr::from_bytes(c);
            let next = rustix::fs::openat(
                &cur,
                c,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            );
            cur = match next {
                Ok(fd) => {
                    let fd = Arc::new(fd);
                    depth += 1;
                    if depth % DIR_FD_SPINE_EVERY == 0 && depth / DIR_FD_SPINE_EVERY <= DIR_FD_SPINE
                    {
                        let j = depth / DIR_FD_SPINE_EVERY - 1;
                        spine.push((j, parent[..walked].to_vec(), fd.clone()));
                    }
                    fd
                }
                Err(e) if e == Errno::NOTDIR || e == Errno::LOOP => {
                    // Either a symlink (never followed) or not a directory at all.
                    let st = rustix::fs::statat(&cur, c, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| errno_io(orig, e))?;
                    let kind = kind_of_mode(st.st_mode);
                    return Err(if kind == FileKind::Symlink {
                        SourceError::SymlinkInPath {
                            path: orig.to_path_buf(),
                        }
                    } else {
                        SourceError::WrongKind {
                            path: PathBuf::from(OsStr::from_bytes(&parent[..walked])),
                            expected: "directory",
                            found: kind,
                        }
                    });
                }
                Err(e) => return Err(errno_io(orig, e)),
            };
        }
        if parent.len() > done {
            self.remember(parent, &cur, spine);
        }
        Ok(Located {
            parent: cur,
            name: Some(OsStr::from_bytes(last).to_os_string()),
        })
    }

    fn locate_norm(&self, path: &Path) -> Result<Located> {
        let norm = normalize(path)?;
        self.locate(path, &norm)
    }

    fn kind_at(&self, path: &Path, loc: &Located) -> Result<FileKind> {
        let (fd, name, flags) = loc.at();
        let st = rustix::fs::statat(fd, name, flags).map_err(|e| errno_io(path, e))?;
        Ok(kind_of_mode(st.st_mode))
    }

    /// Opens the final component for reading with `O_NOFOLLOW | O_NOATIME`, after
    /// checking it is of kind `want` (never opens devices, fifos or sockets).
    fn open_checked(&self, path: &Path, loc: &Located, want: FileKind) -> Result<OwnedFd> {
        let kind = self.kind_at(path, loc)?;
        let expected = if want == FileKind::Dir {
            "directory"
        } else {
            "regular file"
        };
        if kind != want {
            return Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected,
                found: kind,
            });
        }
        let mut flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        if want == FileKind::Dir {
            flags |= OFlags::DIRECTORY;
        }
        let name: &OsStr = match &loc.name {
            Some(n) => n,
            None => OsStr::new("."),
        };
        let fd =
            match rustix::fs::openat(&loc.parent, name, flags | OFlags::NOATIME, Mode::empty()) {
                Err(Errno::PERM) => rustix::fs::openat(&loc.parent, name, flags, Mode::empty()),
                other => other,
            }
            .map_err(|e| errno_io(path, e))?;
        // Re-check on the open descriptor: the kind must not have changed in between.
        let st = rustix::fs::fstat(&fd).map_err(|e| errno_io(path, e))?;
        let kind = kind_of_mode(st.st_mode);
        if kind != want {
            return Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected,
                found: kind,
            });
        }
        // Regular files and directories ignore O_NONBLOCK for reads; clear it anyway.
        let fl = rustix::fs::fcntl_getfl(&fd).map_err(|e| errno_io(path, e))?;
        rustix::fs::fcntl_setfl(&fd, fl - OFlags::NONBLOCK).map_err(|e| errno_io(path, e))?;
        Ok(fd)
    }
}

fn ts(sec: i64, nsec: u32) -> Timestamp {
    Timestamp { sec, nsec }
}

fn statx_metadata(sx: &rustix::fs::Statx) -> Metadata {
    let mode = u32::from(sx.stx_mode);
    let btime = if sx.stx_mask & StatxFlags::BTIME.bits() != 0 {
        Some(ts(sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec))
    } else {
        None
    };
    Metadata {
        kind: kind_of_mode(mode),
        mode: mode & 0o7777,
        uid: sx.stx_uid,
        gid: sx.stx_gid,
        size: sx.stx_size,
        dev: rustix::fs::makedev(sx.stx_dev_major, sx.stx_dev_minor),
        ino: sx.stx_ino,
        nlink: u64::from(sx.stx_nlink),
        rdev_major: sx.stx_rdev_major,
        rdev_minor: sx.stx_rdev_minor,
        mtime: ts(sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec),
        atime: ts(sx.stx_atime.tv_sec, sx.stx_atime.tv_nsec),
        ctime: ts(sx.stx_ctime.tv_sec, sx.stx_ctime.tv_nsec),
        btime,
    }
}

fn stat_metadata(st: &rustix::fs::Stat) -> Metadata {
    let mode = st.st_mode;
    let nsec = |n: i64| u32::try_from(n).unwrap_or(0);
    Metadata {
        kind: kind_of_mode(mode),
        mode: mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink,
        rdev_major: rustix::fs::major(st.st_rdev),
        rdev_minor: rustix::fs::minor(st.st_rdev),
        mtime: ts(st.st_mtime, nsec(st.st_mtime_nsec as i64)),
        atime: ts(st.st_atime, nsec(st.st_atime_nsec as i64)),
        ctime: ts(st.st_ctime, nsec(st.st_ctime_nsec as i64)),
        btime: None,
    }
}

/// Reads all extended attributes through `list`/`get` (the `f*` or `l*` variants),
/// sorted by name. Attributes that cannot be read for lack of privilege (or that vanish
/// in between) are left out; a value over [`MAX_XATTR_SIZE`] is an error.
fn read_xattrs(
    path: &Path,
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&CStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> Result<Vec<(OsString, Vec<u8>)>> {
    // Most files have no or few attributes: a small buffer first, the largest the VFS
    // allows only when that is too small (a zeroed 64 KiB per call would dominate walks).
    let mut small = [0u8; 1024];
    let mut big: Vec<u8>;
    let listed = match list(&mut small) {
        Err(Errno::RANGE) => {
            big = vec![0u8; MAX_XATTR_SIZE];
            list(&mut big).map(|n| &big[..n.min(MAX_XATTR_SIZE)])
        }
        other => other.map(|n| &small[..n.min(small.len())]),
    };
    let names: &[u8] = match listed {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(Errno::RANGE) => {
            return Err(SourceError::invalid(
                path,
                format!("extended attribute name list larger than {MAX_XATTR_SIZE} bytes"),
            ))
        }
        Err(e) => return Err(errno_io(path, e)),
    };
    let mut out = Vec::new();
    let mut value = Vec::new();
    for raw in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = std::ffi::CString::new(raw) else {
            continue;
        };
        if value.is_empty() {
            value = vec![0u8; 4096];
        }
        let mut got = get(&cname, &mut value);
        if got == Err(Errno::RANGE) && value.len() < MAX_XATTR_SIZE {
            value = vec![0u8; MAX_XATTR_SIZE];
            got = get(&cname, &mut value);
        }
        match got {
            Ok(len) => out.push((
                OsString::from_vec(raw.to_vec()),
                value[..len.min(value.len())].to_vec(),
            )),
            Err(Errno::NODATA) | Err(Errno::PERM) | Err(Errno::ACCESS) | Err(Errno::NOTSUP) => {}
            Err(Errno::RANGE) => {
                return Err(SourceError::invalid(
                    path,
                    format!(
                        "extended attribute {} larger than {MAX_XATTR_SIZE} bytes",
                        String::from_utf8_lossy(raw)
                    ),
                ))
            }
            Err(e) => return Err(errno_io(path, e)),
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

impl Source for DirSource {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn metadata(&self, path: &Path) -> Result<Metadata> {
        let loc = self.locate_norm(path)?;
        let (fd, name, flags) = loc.at();
        match rustix::fs::statx(fd, name, flags, StatxFlags::BASIC_STATS | StatxFlags::BTIME) {
            Ok(sx) => Ok(statx_metadata(&sx)),
            Err(Errno::NOSYS) | Err(Errno::PERM) => {
                let st = rustix::fs::statat(fd, name, flags).map_err(|e| errno_io(path, e))?;
                Ok(stat_metadata(&st))
            }
            Err(e) => Err(errno_io(path, e)),
        }
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let loc = self.locate_norm(path)?;
        let fd = self.open_checked(path, &loc, FileKind::Dir)?;
        let dirfd = rustix::fs::openat(
            &fd,
            c".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_io(path, e))?;
        let dir = rustix::fs::Dir::new(fd).map_err(|e| errno_io(path, e))?;
        let mut out = Vec::new();
        for ent in dir {
            let ent = ent.map_err(|e| errno_io(path, e))?;
            let name = ent.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let kind = match kind_of_type(ent.file_type()) {
                Some(k) => k,
                None => {
                    let st = rustix::fs::statat(&dirfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| errno_io(&path.join(OsStr::from_bytes(bytes)), e))?;
                    kind_of_mode(st.st_mode)
                }
            };
            // A directory of millions of entries: running out of memory is an error naming
            // it, not an abort.
            out.try_reserve(1).map_err(|_| {
                SourceError::invalid(
                    path,
                    format!(
                        "out of memory listing the directory after {} entries",
                        out.len()
                    ),
                )
            })?;
            out.push(DirEntry {
                name: OsString::from_vec(bytes.to_vec()),
                kind,
            });
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    fn open(&self, path: &Path) -> Result<Box<dyn FileReader>> {
        let loc = self.locate_norm(path)?;
        let fd = self.open_checked(path, &loc, FileKind::Regular)?;
        Ok(Box::new(File::from(fd)))
    }

    fn open_regular(&self, path: &Path) -> Result<(Box<dyn FileReader>, Metadata)> {
        let loc = self.locate_norm(path)?;
        let wrong = |found| SourceError::WrongKind {
            path: path.to_path_buf(),
            expected: "regular file",
            found,
        };
        let Some(name) = &loc.name else {
            return Err(wrong(FileKind::Dir));
        };
        // The kind before opening (a device, fifo or socket is never opened) …
        let st = rustix::fs::statat(&*loc.parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| errno_io(path, e))?;
        let kind = kind_of_mode(st.st_mode);
        if kind != FileKind::Regular {
            return Err(wrong(kind));
        }
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let fd =
            match rustix::fs::openat(&*loc.parent, name, flags | OFlags::NOATIME, Mode::empty()) {
                Err(Errno::PERM) => rustix::fs::openat(&*loc.parent, name, flags, Mode::empty()),
                other => other,
            }
            .map_err(|e| errno_io(path, e))?;
        // … and the metadata from the open descriptor (what is read is what was checked).
        // O_NONBLOCK stays: reads of regular files ignore it.
        let md = match rustix::fs::statx(
            &fd,
            c"",
            AtFlags::EMPTY_PATH,
            StatxFlags::BASIC_STATS | StatxFlags::BTIME,
        ) {
            Ok(sx) => statx_metadata(&sx),
            Err(Errno::NOSYS) | Err(Errno::PERM) => {
                stat_metadata(&rustix::fs::fstat(&fd).map_err(|e| errno_io(path, e))?)
            }
            Err(e) => return Err(errno_io(path, e)),
        };
        if md.kind != FileKind::Regular {
            return Err(wrong(md.kind));
        }
        Ok((Box::new(File::from(fd)), md))
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf> {
        let loc = self.locate_norm(path)?;
        let kind = self.kind_at(path, &loc)?;
        if kind != FileKind::Symlink {
            return Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected: "symlink",
                found: kind,
            });
        }
        let (fd, name, _) = loc.at();
        let target = rustix::fs::readlinkat(fd, name, Vec::new()).map_err(|e| errno_io(path, e))?;
        Ok(PathBuf::from(OsString::from_vec(target.into_bytes())))
    }

    fn xattrs(&self, path: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
        let loc = self.locate_norm(path)?;
        // Address the entry through its parent's descriptor: the l* calls do not follow
        // the last component, /proc/self/fd/N pins the already-verified parent, and
        // nothing is opened (a device, fifo or socket never is). Opening regular files
        // and directories instead is the fallback where /proc is not mounted.
        if let (Some(name), true) = (&loc.name, self.proc_fd) {
            let mut p = format!(
                "/proc/self/fd/{}/",
                std::os::fd::AsRawFd::as_raw_fd(&*loc.parent)
            )
            .into_bytes();
            p.extend_from_slice(name.as_bytes());
            let p = PathBuf::from(OsString::from_vec(p));
            return read_xattrs(
                path,
                |b| rustix::fs::llistxattr(&p, b),
                |n, b| rustix::fs::lgetxattr(&p, n, b),
            );
        }
        let kind = self.kind_at(path, &loc)?;
        match kind {
            FileKind::Regular | FileKind::Dir => {
                let fd = self.open_checked(path, &loc, kind)?;
                read_xattrs(
                    path,
                    |b| rustix::fs::flistxattr(&fd, b),
                    |n, b| rustix::fs::fgetxattr(&fd, n, b),
                )
            }
            _ => Err(SourceError::invalid(
                path,
                "extended attributes of a device, fifo, socket or symlink need /proc/self/fd",
            )),
        }
    }
}
