//! Between on-disk layer directories and OCI layer tars: `docker diff`, `docker commit`
//! and `docker export`, reproduced offline from a dead host's storage.
//!
//! # Principal types
//!
//! * [`LayerDir`]: one layer directory inside a [`salvor_source::Source`] (an overlay2
//!   `diff/`, an aufs `diff/<id>`, a vfs snapshot …) and its [`WhiteoutStyle`]: how that
//!   directory marks deletions (overlay char 0/0 devices + `opaque` xattr, aufs `.wh.`
//!   files, fuse-overlayfs' mix of both, or a full snapshot without whiteouts).
//! * [`Change`] / [`ChangeKind`]: one line of `docker diff`.
//! * [`TarNames`]: uid → uname and gid → gname for tar headers (empty by default, as
//!   Engine ≥ 23 writes; Docker ≤ 20.10 looked names up in the daemon host's
//!   `/etc/passwd` and `/etc/group`: parse those with [`TarNames::from_passwd_group`]).
//! * [`Finding`] from [`inspect_layer`]: things in a layer directory a reader should know
//!   about (opaque xattrs with a value other than `y`, redirect/metacopy xattrs, aufs
//!   bookkeeping entries).
//! * [`WhiteoutError`]: every error names the path it is about.
//!
//! # Data flow
//!
//! ```text
//! LayerDir(s) ─► merged view (view.rs: per-directory listing, whiteouts/opaque applied)
//!     │                 ├─► changes()             ChangesDirs: new view vs old view  → Vec<Change>
//!     │                 ├─► write_naive_layer_tar()  ChangesDirs + ExportChanges       → tar
//!     │                 └─► write_flattened_tar_with_mounts()  WalkDir of the merged view → tar
//!     │                       (+ mounts: each mount's dir a Snapshot view of its own, at its point;
//!     │                        write_flattened_tar() = the same with no mounts)
//!     └─► write_layer_tar()  WalkDir of the upper dir + overlay→AUFS conversion          → tar
//!                                 │
//!                       archive.rs (addTarFile: header rules, hard links, capability)
//!                                 └─► gotar.rs (Go archive/tar writer, USTAR/PAX choice) ─► Write
//! ```
//!
//! # Engine rules reproduced
//!
//! * **`docker diff`** ([`changes`]) is the engine's naive `archive.ChangesDirs(new, old)`
//!   where `new` is the container's merged view (upper + init + image layers) and `old` the
//!   init layer's merged view: the diff is against the init layer, so `/etc/hosts` & co.
//!   are not changes. Compared per path: `st_mode` (type + permissions), uid, gid, rdev,
//!   and for non-directories size and mtime (`sameFsTime`: equal, or same second with one
//!   side's nanoseconds 0), plus the `security.capability` xattr. A directory with
//!   changes below it gets `C` unless it is itself `A`/`C`, inserted before its
//!   children's entries; deletions of a directory's children come after its other
//!   entries. A whiteout for a path no lower layer has produces nothing. **Order:** the
//!   engine iterates Go maps, so sibling order differs from run to run; this crate emits
//!   siblings in name-byte order (additions/modifications first, then deletions), which
//!   is one of the orders the engine can print.
//! * **`docker commit`** ([`write_layer_tar`]) for overlay2 (native diff): `WalkDir` of the
//!   upper directory (lexical byte order, parents first, root skipped, directories with a
//!   trailing `/`), char 0/0 → `dir/.wh.<name>` (regular, mode 0600, size 0, owner and
//!   mtime kept, and — a moby quirk — the link name kept when the kernel made whiteouts
//!   as hard links of one inode), opaque dir (`trusted.overlay.opaque`, else
//!   `user.overlay.opaque`, exactly `y`) → the dir header then `.wh..wh..opq` (mode = dir
//!   permissions, mtime 0, USTAR). For aufs: the `diff/<id>` tree as is, without the
//!   root-level `.wh..wh.*` bookkeeping except `.wh..wh..opq`.
//!   For vfs/btrfs/zfs and fuse-overlayfs the engine uses its naive diff:
//!   [`write_naive_layer_tar`] (changes sorted by path, whiteouts `.wh.<name>` with mode
//!   0, owner 0, empty names and the engine's `time.Now()` as mtime — a time this crate
//!   cannot know, so the caller passes one; such layers never reproduce the engine's
//!   digest).
//! * **`docker export`** ([`write_flattened_tar`]): `WalkDir` of the merged view, no
//!   whiteouts, hard links by inode within the merged view.
//!   [`write_flattened_tar_with_mounts`] adds the container's volumes at their mount
//!   points (not something the engine's export does — it exports the root filesystem
//!   only — but what `tar` inside the running container saw; see its documentation for
//!   the rules on missing, non-directory and nested mount points).
//! * Headers (`FileInfoHeader` of Docker 20.10): `Mode` = permission bits + setuid/setgid/
//!   sticky **+ file-type bits** (`0o100644`, `0o40755`; whiteouts 0600 without them),
//!   mtime truncated to seconds, no atime/ctime, uid/gid, uname/gname from [`TarNames`],
//!   devmajor/devminor for devices, only `security.capability` among xattrs
//!   (VFS_CAP_REVISION_3 rewritten to revision 2, cut to 20 bytes), hard links by inode
//!   (first name = file with data, later names `TypeLink`, size 0), sockets skipped (the
//!   engine logs and skips them). The Go writer's USTAR-vs-PAX choice, PAX record
//!   layout, and the two closing zero blocks are reproduced byte for byte (`gotar.rs`).
//!
//! # Guarantees
//!
//! * Only [`salvor_source::Source`] methods are used, on paths under each
//!   [`LayerDir::root`]; symlinks are never followed (their targets are only read as
//!   link names); only regular files are opened.
//! * Names are bytes (newlines, invalid UTF-8 are fine); the nesting depth is bounded by
//!   [`MAX_DEPTH`] (error naming the path); walks are iterative.
//! * File contents stream straight to the output; nothing holds a file in memory.
//! * Output is deterministic for the same evidence.
//! * Overlay `redirect` / `metacopy` xattrs make every operation fail with
//!   [`WhiteoutError::Unsupported`] explaining what they mean, instead of a wrong result.
//!
//! # Example
//!
//! `docker diff` of an aufs-style upper layer (`.wh.` files mark deletions) over one
//! lower layer:
//!
//! ```
//! use salvor_source::DirSource;
//! use salvor_whiteout::{changes, LayerDir, WhiteoutStyle};
//! use std::path::Path;
//!
//! let ev = tempfile::tempdir().unwrap();
//! std::fs::create_dir_all(ev.path().join("lower/etc")).unwrap();
//! std::fs::write(ev.path().join("lower/etc/motd"), "hi").unwrap();
//! std::fs::create_dir_all(ev.path().join("upper/etc")).unwrap();
//! std::fs::write(ev.path().join("upper/etc/.wh.motd"), "").unwrap();
//! std::fs::write(ev.path().join("upper/new"), "x").unwrap();
//!
//! let src = DirSource::new(ev.path()).unwrap();
//! let upper = LayerDir::new(&src, Path::new("upper"), WhiteoutStyle::Aufs);
//! let lower = LayerDir::new(&src, Path::new("lower"), WhiteoutStyle::Aufs);
//! let diff: Vec<String> = changes(&upper, &[lower])
//!     .unwrap()
//!     .iter()
//!     .map(|c| c.to_string())
//!     .collect();
//! assert_eq!(diff, ["C /etc", "D /etc/motd", "A /new"]);
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use salvor_source::{FileKind, Metadata, Source, SourceError};

mod archive;
mod asfound;
mod gotar;
mod view;

use archive::{inode_key, st_mode, Appender};
pub use asfound::{write_as_found, AsFoundChange, AsFoundError, AsFoundKind, AsFoundReport};
use gotar::GoTarWriter;
use view::{abs, depth_of, join, Node, View};

mod commit;
mod diff;
mod flatten;
use commit::*;
pub use commit::{write_layer_tar, write_naive_layer_tar, write_naive_layer_tar_against};
pub use diff::{changes, changes_against};
pub use flatten::{write_flattened_tar, write_flattened_tar_with_mounts, MAX_MOUNTS};

/// An iterative walk: per open directory, its path and its remaining (name, entry) children.
type WalkStack<T> = Vec<(Vec<u8>, std::vec::IntoIter<(Vec<u8>, T)>)>;

/// Deepest directory nesting accepted (components below a layer root).
pub const MAX_DEPTH: usize = 4096;

/// Errors. Each names the path it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhiteoutError {
    /// Reading the evidence failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The tree nests deeper than [`MAX_DEPTH`].
    #[error("{path}: nesting deeper than {max} directories", max = MAX_DEPTH)]
    TooDeep {
        /// The directory past the limit.
        path: PathBuf,
    },
    /// Something this crate refuses rather than get wrong (overlay redirect/metacopy …).
    #[error("{path}: unsupported: {what}")]
    Unsupported {
        /// The entry concerned.
        path: PathBuf,
        /// What it is and why it is refused.
        what: String,
    },
    /// A directory listing returned a name with a `/` or that is `.`/`..`/empty.
    #[error("{path}: directory entry {name:?} is not a single path component")]
    BadName {
        /// The directory listed.
        path: PathBuf,
        /// The entry's name (lossy UTF-8).
        name: String,
    },
    /// The entry cannot be put in a tar header (Go's `archive/tar` would refuse it too).
    #[error("{path}: cannot write tar header: {reason}")]
    Tar {
        /// The entry's path in the tar.
        path: String,
        /// Why the header cannot be written.
        reason: String,
    },
    /// Reading a file's content from the evidence failed.
    #[error("{path}")]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the output failed (the output's error, not the evidence's).
    #[error("writing the archive")]
    Output(#[source] std::io::Error),
    /// A function that needs at least one layer was given none.
    #[error("no layers given")]
    NoLayers,
    /// An allocation (a directory's listing, the list of changes) failed.
    #[error("{path}: out of memory {what}")]
    OutOfMemory {
        /// The path being walked.
        path: PathBuf,
        /// What could not be allocated.
        what: String,
    },
    /// A mount point of [`write_flattened_tar_with_mounts`] is refused.
    #[error("mount point {mount:?}: {reason}")]
    BadMount {
        /// The mount point as given (lossy UTF-8).
        mount: String,
        /// Why it is refused.
        reason: String,
    },
    /// [`write_layer_tar`] was given a layer style that needs [`write_naive_layer_tar`].
    #[error(
        "{path}: a {style:?} layer has no native diff in the engine; use write_naive_layer_tar with its lower layers"
    )]
    NeedsLowers {
        /// The layer directory.
        path: PathBuf,
        /// Its whiteout style.
        style: WhiteoutStyle,
    },
}

/// How a layer directory marks deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhiteoutStyle {
    /// Kernel overlayfs (overlay2, overlay): whiteout = char device 0/0, opaque dir =
    /// `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`, rootless).
    Overlay,
    /// aufs: `.wh.<name>` files, `.wh..wh..opq` opaque marker; `.wh..wh.plnk`, `.aufs`,
    /// `.orph` bookkeeping is never visible.
    Aufs,
    /// fuse-overlayfs data-roots: image layers hold AUFS-style `.wh.` files (dockerd
    /// extracted the layer tar verbatim), container and init layers hold char 0/0
    /// whiteouts and up to three opaque markers (`trusted.overlay.opaque=y`, a char 0/0
    /// `.wh..opq`, a regular `.wh..wh..opq`). All are honoured; all `.wh.*` names are hidden.
    FuseOverlayfs,
    /// A full root filesystem (vfs, btrfs, zfs, overlay v1 `root/`): no whiteouts, and it
    /// hides everything below it.
    Snapshot,
}

/// One layer directory inside a [`Source`].
#[derive(Debug, Clone, Copy)]
pub struct LayerDir<'a> {
    /// The evidence holding the directory.
    pub source: &'a dyn Source,
    /// The layer directory's path in `source` (an overlay2 `diff/`, a vfs snapshot …).
    pub root: &'a std::path::Path,
    /// How the directory marks deletions.
    pub style: WhiteoutStyle,
}

impl<'a> LayerDir<'a> {
    /// The layer directory at `root` in `source`, read with `style`.
    pub fn new(source: &'a dyn Source, root: &'a std::path::Path, style: WhiteoutStyle) -> Self {
        LayerDir {
            source,
            root,
            style,
        }
    }
}

/// What happened to a path (`docker diff`'s `A`, `C`, `D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// `A`: the path is new in the upper layer.
    Added,
    /// `C`: the path (or something below a directory) changed.
    Modified,
    /// `D`: the path was deleted (a whiteout, or gone from a snapshot).
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One change: an absolute path (`/a/b`, raw bytes) and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change {
    /// The absolute path in the container (`/a/b`, raw bytes).
    pub path: Vec<u8>,
    /// Added, modified or deleted.
    pub kind: ChangeKind,
}

impl std::fmt::Display for Change {
    /// `docker diff`'s line: `C /data` (invalid UTF-8 shown lossily).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.kind.letter(),
            String::from_utf8_lossy(&self.path)
        )
    }
}

/// uid → uname and gid → gname for tar headers. Empty (the default) writes empty names,
/// like Engine ≥ 23; Docker ≤ 20.10 wrote the names the **daemon host** resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarNames {
    /// uid → user name (tar `uname`).
    pub users: BTreeMap<u32, String>,
    /// gid → group name (tar `gname`).
    pub groups: BTreeMap<u32, String>,
}

impl TarNames {
    /// Empty names (today's engine).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses `/etc/passwd` and `/etc/group` contents (`name:x:id:…`); the first line for
    /// an id wins, as with `getpwuid`. Malformed lines are ignored.
    pub fn from_passwd_group(passwd: &[u8], group: &[u8]) -> Self {
        fn parse(data: &[u8]) -> BTreeMap<u32, String> {
            let mut m = BTreeMap::new();
            for line in data.split(|&c| c == b'\n') {
                if line.first() == Some(&b'#') {
                    continue;
                }
                let f: Vec<&[u8]> = line.split(|&c| c == b':').collect();
                if f.len() < 3 || f[0].is_empty() {
                    continue;
                }
                let Ok(id) = std::str::from_utf8(f[2])
                    .unwrap_or("x")
                    .trim()
                    .parse::<u32>()
                else {
                    continue;
                };
                m.entry(id)
                    .or_insert_with(|| String::from_utf8_lossy(f[0]).into_owned());
            }
            m
        }
        TarNames {
            users: parse(passwd),
            groups: parse(group),
        }
    }

    /// The user name of `uid`, empty when unknown.
    pub fn user(&self, uid: u32) -> &str {
        self.users.get(&uid).map(String::as_str).unwrap_or("")
    }

    /// The group name of `gid`, empty when unknown.
    pub fn group(&self, gid: u32) -> &str {
        self.groups.get(&gid).map(String::as_str).unwrap_or("")
    }
}

/// How the tar headers of `docker export` and `docker commit` are written: what differs
/// between engine versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// uid → uname, gid → gname.
    pub names: TarNames,
    /// What the mode field holds.
    pub mode: ModeBits,
}

/// The tar mode field of `docker export` / `docker commit` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModeBits {
    /// Permission bits with setuid/setgid/sticky only (`0o644`, `0o755`): Engine >= 23
    /// (moby#44083 removed Go 1.8's file-type bits), as POSIX tar says.
    #[default]
    Permissions,
    /// Plus the file-type bits (`0o100644`, `0o40755`): Docker <= 22 (20.10 and older),
    /// which kept Go 1.8's `archive/tar` behaviour.
    WithFileType,
}

impl HeaderRules {
    /// Engine >= 23: permission bits only, empty names.
    pub fn engine_23() -> Self {
        Self::default()
    }

    /// Docker <= 22 (20.10): file-type bits in the mode field, and `names` (the daemon
    /// host's user database for the layers it writes, the container's own for export).
    pub fn docker_20_10(names: TarNames) -> Self {
        HeaderRules {
            names,
            mode: ModeBits::WithFileType,
        }
    }
}

/// Something in a layer directory worth reporting (see [`inspect_layer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The entry's path in the evidence.
    pub path: PathBuf,
    /// What it is and what it means, in words.
    pub what: String,
}

fn too_deep(layer: &LayerDir, rel: &[u8]) -> Result<(), WhiteoutError> {
    if depth_of(rel) > MAX_DEPTH {
        return Err(WhiteoutError::TooDeep {
            path: layer.path(rel),
        });
    }
    Ok(())
}

/// Looks one path up in a merged view.
fn resolve(view: &View, rel: &[u8]) -> Result<Option<(usize, Metadata)>, WhiteoutError> {
    let mut node = view.root()?;
    let mut cur: Vec<u8> = Vec::new();
    for comp in rel.split(|&c| c == b'/') {
        if !node.is_dir() {
            return Ok(None);
        }
        let mut kids = view.children(&cur, &node)?;
        let found = loop {
            match kids.next()? {
                Some((k, n)) if k == comp => break Some(n),
                Some((k, _)) if k.as_slice() > comp => break None,
                Some(_) => {}
                None => break None,
            }
        };
        let Some(n) = found else {
            return Ok(None);
        };
        cur = join(&cur, comp);
        node = n;
    }
    Ok(Some((node.layer, node.md)))
}

/// Reads a regular file of the merged view of `layers_top_first` (e.g. `etc/passwd` of a
/// container, to build the [`TarNames`] `docker export` used), refusing files over `limit`
/// bytes. `Ok(None)` when the path is absent or not a regular file; no symlink is followed.
pub fn read_merged_file(
    layers_top_first: &[LayerDir],
    path: &[u8],
    limit: u64,
) -> Result<Option<Vec<u8>>, WhiteoutError> {
    let layers: Vec<&LayerDir> = layers_top_first.iter().collect();
    let view = View::new(&layers);
    let rel: Vec<u8> = path
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(&b'/');
    if rel.is_empty() || rel.split(|&c| c == b'/').any(|c| c == b"." || c == b"..") {
        return Ok(None);
    }
    match resolve(&view, &rel)? {
        Some((i, md)) if md.is_file() => Ok(Some(
            layers[i]
                .source
                .read_limited(&layers[i].path(&rel), limit)?,
        )),
        _ => Ok(None),
    }
}

/// Walks one layer directory and reports what a reader should know: opaque xattrs whose
/// value is not `y` (the engine treats them as not opaque), overlay redirect/metacopy
/// xattrs (renamed directories / metadata-only copy-ups the other functions refuse),
/// whiteouts and markers by kind. Fails only on unreadable evidence or excessive depth.
pub fn inspect_layer(layer: &LayerDir) -> Result<Vec<Finding>, WhiteoutError> {
    use std::os::unix::ffi::OsStrExt;
    let mut findings = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(rel) = stack.pop() {
        too_deep(layer, &rel)?;
        let md = match layer.lstat(&rel)? {
            Some(m) => m,
            None => continue,
        };
        let p = layer.path(&rel);
        for (n, v) in layer.source.xattrs(&p)? {
            let n = n.as_bytes();
            let ns = String::from_utf8_lossy(n);
            if view::OPAQUE_XATTRS.iter().any(|x| x.as_bytes() == n) && v != b"y" {
                findings.push(Finding {
                    path: p.clone(),
                    what: format!(
                        "{ns} = {:?}: not \"y\", so the engine does not treat this directory as opaque",
                        String::from_utf8_lossy(&v)
                    ),
                });
            }
            if view::REDIRECT_XATTRS.iter().any(|x| x.as_bytes() == n) {
                findings.push(Finding {
                    path: p.clone(),
                    what: format!(
                        "{ns} = {:?}: overlayfs redirect_dir (a directory renamed inside the container; its lower contents live at that other path)",
                        String::from_utf8_lossy(&v)
                    ),
                });
            }
            if view::METACOPY_XATTRS.iter().any(|x| x.as_bytes() == n) {
                findings.push(Finding {
                    path: p.clone(),
                    what: format!("{ns}: overlayfs metacopy (metadata-only copy-up; the data is in a lower layer)"),
                });
            }
        }
        if md.is_overlay_whiteout() && !rel.is_empty() {
            findings.push(Finding {
                path: p.clone(),
                what: "whiteout (char device 0/0)".into(),
            });
        }
        let base = rel.rsplit(|&c| c == b'/').next().unwrap_or(b"");
        if base.starts_with(view::WH_PREFIX) {
            findings.push(Finding {
                path: p.clone(),
                what: format!("AUFS-style marker {:?}", String::from_utf8_lossy(base)),
            });
        }
        if md.is_dir() {
            let mut kids: Vec<Vec<u8>> = Vec::new();
            for e in layer.source.read_dir(&p)? {
                let name = e.name.as_bytes().to_vec();
                view::check_name(&p, &name)?;
                kids.push(join(&rel, &name));
            }
            kids.sort();
            stack.extend(kids.into_iter().rev());
        }
    }
    Ok(findings)
}
