//! Every byte salvor writes goes through this crate.
//!
//! * [`EvidenceGuard`] knows every path salvor reads: the evidence root (a directory, an
//!   archive or a disk image), the disk image's other files (segments, backing files,
//!   extents), the `--thin-pool` image, `--passwd`/`--group` files. [`EvidenceGuard::check`]
//!   resolves an output path (canonicalised, symlinks followed; for a path that does not
//!   exist yet, its nearest existing ancestor canonicalised plus the rest) and refuses it
//!   ([`SinkError::Refused`], naming both paths) when it is one of those files (by path or by
//!   device and inode, so a hard link is caught too), lies inside an evidence directory, or
//!   contains one.
//! * [`OutputPolicy`] adds the overwrite rule (an existing regular file is refused unless
//!   `overwrite`) and opens outputs:
//!   * [`OutputPolicy::file`] gives a [`FileSink`]: `-` (and `/dev/stdout`, `/dev/fd/1`) is
//!     standard output; an existing FIFO, character or block device is opened and written in
//!     place, never renamed over; a regular file is written to a temporary file in the same
//!     directory and renamed into place by [`FileSink::commit`] (removed when the sink is
//!     dropped without it).
//!   * [`OutputPolicy::dir`] gives a [`DirSink`]: a new or empty directory, built in a
//!     temporary sibling directory and renamed into place by [`DirSink::commit`] (removed
//!     otherwise), so a failure leaves nothing that claims success.
//! * [`Tagged`] wraps a writer and tags its write errors with the OUTPUT path (and keeps the
//!   first one, [`Tagged::error`]): a full disk is reported as "cannot write OUTPUT: No space
//!   left on device" even when the code that produced the bytes wraps the error with the
//!   name of the evidence file it was reading.
//!
//! ```
//! use std::io::Write;
//! use salvor_sink::{EvidenceGuard, OutputPolicy, SinkError};
//!
//! let ev = tempfile::tempdir()?;
//! let work = tempfile::tempdir()?;
//! let mut guard = EvidenceGuard::new();
//! guard.protect_evidence(ev.path());
//! let policy = OutputPolicy::new(guard, false);
//!
//! // Inside the evidence: refused, and nothing is created.
//! let inside = ev.path().join("out.tar");
//! assert!(matches!(policy.file(&inside), Err(SinkError::Refused { .. })));
//! assert!(!inside.exists());
//!
//! // Elsewhere: written under a temporary name, renamed on commit.
//! let out = work.path().join("out.tar");
//! let mut sink = policy.file(&out)?;
//! sink.write_all(b"hello")?;
//! assert!(!out.exists());
//! sink.commit()?;
//! assert_eq!(std::fs::read(&out)?, b"hello");
//!
//! // Now it exists: refused without overwrite.
//! assert!(matches!(policy.file(&out), Err(SinkError::Exists { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of this crate. Each names the output path as the user gave it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The output is, lies inside, or contains a file or directory salvor reads.
    #[error("refusing to write {}: {relation} {} (the evidence is never written)", output.display(), protected.display())]
    Refused {
        /// The output as given (with what it resolves to, when that differs).
        output: PathBuf,
        /// `it is the evidence file`, `it lies inside the evidence directory`, …
        relation: String,
        /// The protected path (canonical).
        protected: PathBuf,
    },
    /// The output file exists and overwriting was not asked for.
    #[error("{}: already exists (pass --overwrite to replace it)", output.display())]
    Exists {
        /// The output as given.
        output: PathBuf,
    },
    /// A directory output exists and is not empty.
    #[error("{}: the output directory is not empty (a directory output is only written into a new or empty directory)", output.display())]
    NotEmpty {
        /// The output as given.
        output: PathBuf,
    },
    /// A directory output exists and is not a directory.
    #[error("{}: exists and is not a directory", output.display())]
    NotADirectory {
        /// The output as given.
        output: PathBuf,
    },
    /// A file output is a directory.
    #[error("{}: is a directory (give a file name)", output.display())]
    IsADirectory {
        /// The output as given.
        output: PathBuf,
    },
    /// Writing the output failed (a full disk, an I/O error): nothing claiming success is
    /// left behind.
    #[error("cannot write {}", output.display())]
    Write {
        /// The output as given (for a file inside a directory output: that file's final
        /// path).
        output: PathBuf,
        /// The error of the write.
        #[source]
        source: io::Error,
    },
    /// Creating, opening or renaming the output failed.
    #[error("{}", output.display())]
    Io {
        /// The output as given.
        output: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
}

fn io_err(output: &Path) -> impl FnOnce(io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        output: output.to_path_buf(),
        source,
    }
}

/// The absolute path `path` names: its nearest existing ancestor canonicalised (symlinks
/// followed), plus the components that do not exist yet (`..` among those applied
/// lexically, as they cannot be symlinks).
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = fs::canonicalize(cur) {
            let mut p = c;
            for r in rest.iter().rev() {
                match Path::new(r).components().next() {
                    Some(Component::ParentDir) => {
                        p.pop();
                    }
                    Some(Component::CurDir) | None => {}
                    _ => p.push(r),
                }
            }
            return Ok(p);
        }
        match (cur.parent(), cur.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last.as_os_str());
                cur = parent;
            }
            _ => return Ok(abs),
        }
    }
}

fn file_id(md: &fs::Metadata) -> (u64, u64) {
    (md.dev(), md.ino())
}

#[derive(Debug, Clone)]
struct Protected {
    /// Canonical (or, if it cannot be resolved, absolute) path.
    path: PathBuf,
    /// Device and inode, when it exists.
    id: Option<(u64, u64)>,
    dir: bool,
    role: String,
}

/// The paths no output may touch: the evidence and every file salvor reads.
#[derive(Debug, Clone, Default)]
pub struct EvidenceGuard {
    protected: Vec<Protected>,
}

impl EvidenceGuard {
    /// A guard that protects nothing yet.
    pub fn new() -> Self {
        EvidenceGuard::default()
    }

    /// Protects the evidence root: a directory (nothing inside it may be written) or a
    /// file (archive, disk image).
    pub fn protect_evidence(&mut self, root: &Path) -> &mut Self {
        let dir = fs::metadata(root).map(|m| m.is_dir()).unwrap_or(false);
        self.protect(
            root,
            if dir {
                "the evidence directory"
            } else {
                "the evidence file"
            },
        )
    }

    /// Protects another path salvor reads; `role` says what it is ("a file of the disk
    /// image", "the --passwd file"). A directory protects everything inside it.
    pub fn protect(&mut self, path: &Path, role: &str) -> &mut Self {
        let canon = resolve(path).unwrap_or_else(|_| path.to_path_buf());
        let md = fs::metadata(path).ok();
        if self.protected.iter().any(|p| p.path == canon) {
            return self;
        }
        self.protected.push(Protected {
            path: canon,
            id: md.as_ref().map(file_id),
            dir: md.as_ref().is_some_and(|m| m.is_dir()),
            role: role.to_string(),
        });
        self
    }

    /// The protected paths (canonical), in the order they were added.
    pub fn protected(&self) -> impl Iterator<Item = &Path> {
        self.protected.iter().map(|p| p.path.as_path())
    }

    /// Resolves `output` and refuses it when it is a protected file (by path, or by device
    /// and inode), lies inside a protected directory, or contains a protected path. Returns
    /// the resolved path.
    pub fn check(&self, output: &Path) -> Result<PathBuf, SinkError> {
        let resolved = resolve(output).map_err(io_err(output))?;
        self.check_resolved(output, &resolved)?;
        Ok(resolved)
    }

    fn check_resolved(&self, output: &Path, resolved: &Path) -> Result<(), SinkError> {
        let shown = if resolved == output {
            output.to_path_buf()
        } else {
            PathBuf::from(format!("{} (= {})", output.display(), resolved.display()))
        };
        let refuse = |relation: String, p: &Protected| SinkError::Refused {
            output: shown.clone(),
            relation,
            protected: p.path.clone(),
        };
        let own_id = fs::metadata(resolved).ok().map(|m| file_id(&m));
        // Device and inode of every existing ancestor (catches bind mounts and hard links).
        let ancestor_ids: Vec<(u64, u64)> = resolved
            .ancestors()
            .skip(1)
            .filter_map(|a| fs::metadata(a).ok().map(|m| file_id(&m)))
            .collect();
        for p in &self.protected {
            if resolved == p.path || (own_id.is_some() && own_id == p.id) {
                return Err(refuse(format!("it is {}", p.role), p));
            }
            if p.dir
                && (resolved.starts_with(&p.path)
                    || p.id.is_some_and(|id| ancestor_ids.contains(&id)))
            {
                return Err(refuse(format!("it lies inside {}", p.role), p));
            }
            if p.path.starts_with(resolved) {
                return Err(refuse(format!("it contains {}", p.role), p));
            }
        }
        Ok(())
    }

    /// Refuses standard output when it is (appends to) a protected file or a file inside
    /// a protected directory (`salvor … -o - >> evidence.tar`).
    pub fn check_stdout(&self) -> Result<(), SinkError> {
        let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else {
            return Ok(());
        };
        self.check_std_stream(fd, "standard output", "/proc/self/fd/1")
    }

    /// Refuses standard error when it is (appends to) a protected file or a file inside a
    /// protected directory (`salvor … 2>> evidence/x`): notes and errors are output too.
    pub fn check_stderr(&self) -> Result<(), SinkError> {
        let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() else {
            return Ok(());
        };
        self.check_std_stream(fd, "standard error", "/proc/self/fd/2")
    }

    fn check_std_stream(
        &self,
        fd: std::os::fd::OwnedFd,
        name: &str,
        proc_link: &str,
    ) -> Result<(), SinkError> {
        let Ok(md) = File::from(fd).metadata() else {
            return Ok(());
        };
        if !md.is_file() {
            return Ok(());
        }
        let id = file_id(&md);
        let out = Path::new(name);
        for p in &self.protected {
            if p.id == Some(id) {
                return Err(SinkError::Refused {
                    output: out.to_path_buf(),
                    relation: format!("it is {}", p.role),
                    protected: p.path.clone(),
                });
            }
        }
        match fs::read_link(proc_link) {
            Ok(target) if target.is_absolute() => self.check_resolved(out, &target),
            _ => Ok(()),
        }
    }
}

/// True for the names that mean standard output: `-`, `/dev/stdout`, `/dev/fd/1`,
/// `/proc/self/fd/1`.
pub fn is_stdout(output: &Path) -> bool {
    matches!(
        output.to_str(),
        Some("-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1")
    )
}

/// The guard plus the overwrite rule: the one way salvor opens an output.
#[derive(Debug, Clone, Default)]
pub struct OutputPolicy {
    /// What no output may touch.
    pub guard: EvidenceGuard,
    /// Replace an existing output file (`--overwrite`).
    pub overwrite: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh name for a temporary sibling of `target`: `.NAME.salvor-PID-N.partial`.
fn sibling(target: &Path, output: &Path) -> Result<(PathBuf, PathBuf), SinkError> {
    let name = target.file_name().ok_or_else(|| SinkError::Io {
        output: output.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the output needs a name"),
    })?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".salvor-{}-{n}.partial", std::process::id()));
    Ok((parent.clone(), parent.join(tmp_name)))
}

impl OutputPolicy {
    /// A policy from a guard and the overwrite flag.
    pub fn new(guard: EvidenceGuard, overwrite: bool) -> Self {
        OutputPolicy { guard, overwrite }
    }

    /// Checks `output` as [`OutputPolicy::file`] would, without opening anything.
    pub fn check_file(&self, output: &Path) -> Result<(), SinkError> {
        if is_stdout(output) {
            return self.guard.check_stdout();
        }
        let resolved = self.guard.check(output)?;
        match fs::metadata(&resolved) {
            Ok(m) if m.is_dir() => Err(SinkError::IsADirectory {
                output: output.to_path_buf(),
            }),
            Ok(m) if m.is_file() && !self.overwrite => Err(SinkError::Exists {
                output: output.to_path_buf(),
            }),
            Ok(_) => Ok(()),
            Err(_) if fs::symlink_metadata(&resolved).is_ok() && !self.overwrite => {
                Err(SinkError::Exists {
                    output: output.to_path_buf(),
                })
            }
            Err(_) => Ok(()),
        }
    }

    /// Opens a file output. See the crate documentation.
    pub fn file(&self, output: &Path) -> Result<FileSink, SinkError> {
        let shown = output.to_path_buf();
        if is_stdout(output) {
            self.guard.check_stdout()?;
            return Ok(FileSink::new(
                PathBuf::from("standard output"),
                Dest::Stdout(io::stdout()),
                Kind::Stream,
            ));
        }
        let resolved = self.guard.check(output)?;
        self.check_file(output)?;
        match fs::metadata(&resolved) {
            // A FIFO, a device, a socket: written in place, never renamed over.
            Ok(m) if !m.is_file() => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&resolved)
                    .map_err(io_err(output))?;
                return Ok(FileSink::new(shown, Dest::File(f), Kind::Stream));
            }
            _ => {}
        }
        let (parent, tmp) = sibling(&resolved, output)?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| SinkError::Io {
                output: shown.clone(),
                source: io::Error::new(
                    e.kind(),
                    format!("cannot create a file in {}: {e}", parent.display()),
                ),
            })?;
        let w = match Writer::new(f) {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io_err(output)(e));
            }
        };
        Ok(FileSink::new(
            shown,
            Dest::Thread(w),
            Kind::Temp {
                tmp,
                target: resolved,
                overwrite: self.overwrite,
            },
        ))
    }

    /// Checks `output` as [`OutputPolicy::dir`] would, without creating anything.
    pub fn check_dir(&self, output: &Path) -> Result<(), SinkError> {
        if is_stdout(output) {
            return Err(SinkError::Io {
                output: output.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a directory output cannot be standard output",
                ),
            });
        }
        self.check_dir_resolved(output).map(|_| ())
    }

    /// The resolved directory output, and whether it exists (empty).
    fn check_dir_resolved(&self, output: &Path) -> Result<(PathBuf, bool), SinkError> {
        let resolved = self.guard.check(output)?;
        let replace_empty = match fs::metadata(&resolved) {
            Ok(m) if m.is_dir() => {
                let mut rd = fs::read_dir(&resolved).map_err(io_err(output))?;
                if rd.next().is_some() {
                    return Err(SinkError::NotEmpty {
                        output: output.to_path_buf(),
                    });
                }
                true
            }
            Ok(_) => {
                return Err(SinkError::NotADirectory {
                    output: output.to_path_buf(),
                })
            }
            Err(_) if fs::symlink_metadata(&resolved).is_ok() => {
                return Err(SinkError::NotADirectory {
                    output: output.to_path_buf(),
                })
            }
            Err(_) => false,
        };
        Ok((resolved, replace_empty))
    }

    /// Opens a directory output: new, or an existing empty directory (a symlink to one is
    /// followed). See the crate documentation.
    pub fn dir(&self, output: &Path) -> Result<DirSink, SinkError> {
        self.check_dir(output)?;
        let (resolved, replace_empty) = self.check_dir_resolved(output)?;
        let (parent, build) = sibling(&resolved, output)?;
        fs::create_dir_all(&parent).map_err(io_err(output))?;
        fs::create_dir(&build).map_err(|e| SinkError::Io {
            output: output.to_path_buf(),
            source: io::Error::new(
                e.kind(),
                format!("cannot create a directory in {}: {e}", parent.display()),
            ),
        })?;
        Ok(DirSink {
            shown: output.to_path_buf(),
            target: resolved,
            build,
            replace_empty,
            done: false,
        })
    }
}

/// The text of a write error tagged by [`Tagged`]: the output path and the error. It is
/// the inner error of the `io::Error` a [`Tagged`] writer returns.
#[derive(Debug)]
pub struct WriteFailed {
    /// The output.
    pub output: PathBuf,
    /// The error's text.
    pub message: String,
}

impl fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.output.display(), self.message)
    }
}

impl std::error::Error for WriteFailed {}

/// A writer whose write errors name the output and are remembered (the first one), so a
/// caller can report the output's failure even when the producer wrapped it in its own
/// error.
#[derive(Debug)]
pub struct Tagged<W> {
    inner: W,
    output: PathBuf,
    error: Option<(io::ErrorKind, String)>,
    bytes: u64,
}

impl<W: Write> Tagged<W> {
    /// Wraps `inner`; errors name `output`.
    pub fn new(inner: W, output: impl Into<PathBuf>) -> Self {
        Tagged {
            inner,
            output: output.into(),
            error: None,
            bytes: 0,
        }
    }

    /// The first write error, as a [`SinkError::Write`] naming the output.
    pub fn error(&self) -> Option<SinkError> {
        self.error.as_ref().map(|(kind, msg)| SinkError::Write {
            output: self.output.clone(),
            source: io::Error::new(*kind, msg.clone()),
        })
    }

    /// Bytes accepted by the inner writer.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The output this writer names in its errors.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        if self.error.is_none() {
            self.error = Some((e.kind(), e.to_string()));
        }
        io::Error::new(
            e.kind(),
            WriteFailed {
                output: self.output.clone(),
                message: e.to_string(),
            },
        )
    }
}

impl<W: Write> Write for Tagged<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(self.fail(e)),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.fail(e))
    }
}

#[derive(Debug)]
enum Dest {
    Stdout(io::Stdout),
    File(File),
    /// A regular output file, written by its own thread ([`Writer`]).
    Thread(Writer),
}

impl Write for Dest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Dest::Stdout(s) => s.write(buf),
            Dest::File(f) => f.write(buf),
            Dest::Thread(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Dest::Stdout(s) => s.flush(),
            Dest::File(f) => f.flush(),
            // Hands over what is buffered; the thread writes it.
            Dest::Thread(w) => w.flush(),
        }
    }
}

/// Bytes per buffer handed to the writer thread.
const CHUNK: usize = 1 << 20;
/// Buffers that ever exist for one output (the one being filled, the queued ones, the one
/// being written): the memory the pipeline holds is `DEPTH × CHUNK`.
const DEPTH: usize = 8;
/// Write-back is started (and the written pages let go from the cache) every this many
/// bytes, so the final `fsync` waits only for the tail.
const WRITEBACK_EVERY: u64 = 16 << 20;

/// A regular file written by a thread of its own, so that producing the bytes (reading,
/// hashing, tar framing) overlaps with writing them: the producer fills 1 MiB buffers and
/// hands them over on a bounded queue; the thread writes them and hands them back
/// (recycled: at most [`DEPTH`] buffers ever exist), starting write-back as it goes. The
/// first write error stops the thread; the producer's next hand-over returns it.
#[derive(Debug)]
struct Writer {
    buf: Vec<u8>,
    made: usize,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<io::Result<File>>>,
    failed: Option<(io::ErrorKind, String)>,
}

impl Writer {
    fn new(f: File) -> io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(DEPTH - 2);
        let (back_tx, back) = std::sync::mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let thread = std::thread::Builder::new()
            .name("salvor-writer".into())
            .spawn(move || -> io::Result<File> {
                let mut f = f;
                let (mut written, mut advised) = (0u64, 0u64);
                for mut chunk in rx {
                    f.write_all(&chunk)?;
                    written += chunk.len() as u64;
                    if written - advised >= WRITEBACK_EVERY {
                        // Starts write-back of the range without waiting for it (and lets
                        // the kernel drop the pages once clean). Advisory: a filesystem
                        // that ignores it only loses the overlap with the final fsync.
                        let _ = rustix::fs::fadvise(
                            &f,
                            advised,
                            std::num::NonZeroU64::new(written - advised),
                            rustix::fs::Advice::DontNeed,
                        );
                        advised = written;
                    }
                    chunk.clear();
                    let _ = back_tx.send(chunk);
                }
                Ok(f)
            })?;
        Ok(Writer {
            buf: Vec::with_capacity(CHUNK),
            made: 1,
            tx: Some(tx),
            back,
            thread: Some(thread),
            failed: None,
        })
    }

    /// The error that stopped the thread (which has ended: its queue is closed).
    fn thread_error(&mut self) -> io::Error {
        if self.failed.is_none() {
            self.tx = None;
            let e = match self.thread.take().map(|t| t.join()) {
                Some(Ok(Err(e))) => e,
                Some(Err(_)) => io::Error::other("the writer thread panicked"),
                _ => io::Error::other("the writer thread has stopped"),
            };
            self.failed = Some((e.kind(), e.to_string()));
        }
        match &self.failed {
            Some((kind, what)) => io::Error::new(*kind, what.clone()),
            None => io::Error::other("the writer thread has stopped"),
        }
    }

    /// Hands the filled buffer to the thread and takes an empty one.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(self.thread_error());
        }
        let next = match self.back.try_recv() {
            Ok(b) => b,
            Err(_) if self.made < DEPTH => {
                self.made += 1;
                Vec::with_capacity(CHUNK)
            }
            Err(_) => match self.back.recv() {
                Ok(b) => b,
                Err(_) => return Err(self.thread_error()),
            },
        };
        let full = std::mem::replace(&mut self.buf, next);
        let sent = match &self.tx {
            Some(tx) => tx.send(full).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(self.thread_error())
        }
    }

    /// Hands over what is left, waits for the thread, and returns the file.
    fn finish(mut self) -> io::Result<File> {
        if !self.buf.is_empty() {
            self.hand_over()?;
        }
        if self.failed.is_some() {
            return Err(self.thread_error());
        }
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the writer thread panicked")),
            None => Err(self.thread_error()),
        }
    }
}

impl Write for Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == CHUNK {
            self.hand_over()?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.hand_over()
        }
    }
}

#[derive(Debug)]
enum Kind {
    /// Standard output, a FIFO or a device: written in place, cannot be taken back.
    Stream,
    /// A regular file: a temporary sibling renamed over `target` on commit.
    Temp {
        tmp: PathBuf,
        target: PathBuf,
        overwrite: bool,
    },
}

/// A file output (see [`OutputPolicy::file`]). Buffered; write errors name the output.
/// Dropped without [`FileSink::commit`], its temporary file is removed.
#[derive(Debug)]
pub struct FileSink {
    shown: PathBuf,
    w: Option<BufWriter<Tagged<Dest>>>,
    kind: Kind,
}

impl FileSink {
    fn new(shown: PathBuf, dest: Dest, kind: Kind) -> Self {
        // The writer thread buffers by itself (1 MiB hand-overs): no second copy here.
        let cap = if matches!(dest, Dest::Thread(_)) {
            0
        } else {
            1 << 20
        };
        let w = BufWriter::with_capacity(cap, Tagged::new(dest, shown.clone()));
        FileSink {
            shown,
            w: Some(w),
            kind,
        }
    }

    /// The output as given.
    pub fn output(&self) -> &Path {
        &self.shown
    }

    /// True when the output is standard output, a FIFO or a device: what was written
    /// cannot be taken back.
    pub fn is_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream)
    }

    /// The directory the output file will be in (for spool files beside it); `None` for
    /// a stream.
    pub fn directory(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Temp { target, .. } => target.parent(),
            Kind::Stream => None,
        }
    }

    /// The first write error, naming the output.
    pub fn write_error(&self) -> Option<SinkError> {
        self.w.as_ref().and_then(|w| w.get_ref().error())
    }

    /// Flushes, and for a regular file syncs it and renames it into place. Returns the
    /// bytes written. On error nothing is left at the output path (for a regular file).
    pub fn commit(mut self) -> Result<u64, SinkError> {
        let Some(mut w) = self.w.take() else {
            return Ok(0);
        };
        let flushed = w.flush();
        let tagged = match w.into_inner() {
            Ok(t) => t,
            Err(e) => {
                let (err, t) = e.into_parts();
                return Err(t.get_ref().error().unwrap_or(SinkError::Write {
                    output: self.shown.clone(),
                    source: err,
                }));
            }
        };
        if let Some(e) = tagged.error() {
            return Err(e);
        }
        flushed.map_err(|source| SinkError::Write {
            output: self.shown.clone(),
            source,
        })?;
        let bytes = tagged.bytes();
        let dest = match tagged.into_inner() {
            // All handed over: wait for the thread to have written it.
            Dest::Thread(w) => Dest::File(w.finish().map_err(|source| SinkError::Write {
                output: self.shown.clone(),
                source,
            })?),
            d => d,
        };
        if let (
            Kind::Temp {
                tmp,
                target,
                overwrite,
            },
            Dest::File(f),
        ) = (&self.kind, &dest)
        {
            f.sync_all().map_err(|source| SinkError::Write {
                output: self.shown.clone(),
                source,
            })?;
            drop(dest);
            place(tmp, target, *overwrite, &self.shown)?;
            // Placed: nothing to remove any more.
            self.kind = Kind::Stream;
        }
        Ok(bytes)
    }
}

/// Renames `tmp` to `target`; without `overwrite`, never over an existing file (a hard
/// link fails if the target appeared meanwhile).
fn place(tmp: &Path, target: &Path, overwrite: bool, shown: &Path) -> Result<(), SinkError> {
    if !overwrite {
        match fs::hard_link(tmp, target) {
            Ok(()) => {
                let _ = fs::remove_file(tmp);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SinkError::Exists {
                    output: shown.to_path_buf(),
                })
            }
            Err(_) if fs::symlink_metadata(target).is_ok() => {
                return Err(SinkError::Exists {
                    output: shown.to_path_buf(),
                })
            }
            Err(_) => {}
        }
    }
    fs::rename(tmp, target).map_err(io_err(shown))
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.w {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("output already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.w {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Kind::Temp { tmp, .. } = &self.kind {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// A directory output (see [`OutputPolicy::dir`]): built in a temporary sibling directory
/// ([`DirSink::path`]), renamed into place by [`DirSink::commit`], removed if dropped
/// without it.
#[derive(Debug)]
pub struct DirSink {
    shown: PathBuf,
    target: PathBuf,
    build: PathBuf,
    replace_empty: bool,
    done: bool,
}

impl DirSink {
    /// Where to build the tree (a temporary sibling of the output).
    pub fn path(&self) -> &Path {
        &self.build
    }

    /// The output as given.
    pub fn output(&self) -> &Path {
        &self.shown
    }

    /// The path `rel` will have once committed (for messages).
    pub fn final_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.shown.join(rel)
    }

    /// Creates the new directory `rel` (its parent must exist) in the tree.
    pub fn create_dir(&self, rel: impl AsRef<Path>) -> Result<(), SinkError> {
        let rel = rel.as_ref();
        fs::create_dir(self.build.join(rel)).map_err(|source| SinkError::Io {
            output: self.final_path(rel),
            source,
        })
    }

    /// Creates the new file `rel` in the tree: its write errors name its final path.
    pub fn create_file(&self, rel: impl AsRef<Path>) -> Result<Tagged<File>, SinkError> {
        let rel = rel.as_ref();
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.build.join(rel))
            .map_err(|source| SinkError::Io {
                output: self.final_path(rel),
                source,
            })?;
        Ok(Tagged::new(f, self.final_path(rel)))
    }

    /// Renames the finished tree into place.
    pub fn commit(mut self) -> Result<(), SinkError> {
        if self.replace_empty {
            // Still empty (remove_dir fails otherwise): replaced by the finished tree.
            fs::remove_dir(&self.target).map_err(io_err(&self.shown))?;
        }
        fs::rename(&self.build, &self.target).map_err(io_err(&self.shown))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for DirSink {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.build);
        }
    }
}

#[cfg(test)]
mod tests;
