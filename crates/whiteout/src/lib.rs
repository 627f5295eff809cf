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

/// An iterative walk: per open directory, its path and its remaining (name, entry) children.
type WalkStack<T> = Vec<(Vec<u8>, std::vec::IntoIter<(Vec<u8>, T)>)>;

/// Deepest directory nesting accepted (components below a layer root).
pub const MAX_DEPTH: usize = 4096;

/// Errors. Each names the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum WhiteoutError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{path}: nesting deeper than {max} directories", max = MAX_DEPTH)]
    TooDeep { path: PathBuf },
    #[error("{path}: unsupported: {what}")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: directory entry {name:?} is not a single path component")]
    BadName { path: PathBuf, name: String },
    #[error("{path}: cannot write tar header: {reason}")]
    Tar { path: String, reason: String },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the archive: {0}")]
    Output(#[source] std::io::Error),
    #[error("no layers given")]
    NoLayers,
    #[error("{path}: out of memory {what}")]
    OutOfMemory { path: PathBuf, what: String },
    #[error("mount point {mount:?}: {reason}")]
    BadMount { mount: String, reason: String },
    #[error(
        "{path}: a {style:?} layer has no native diff in the engine; use write_naive_layer_tar with its lower layers"
    )]
    NeedsLowers { path: PathBuf, style: WhiteoutStyle },
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
    pub source: &'a dyn Source,
    pub root: &'a std::path::Path,
    pub style: WhiteoutStyle,
}

impl<'a> LayerDir<'a> {
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
    Added,
    Modified,
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
    pub path: Vec<u8>,
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
    pub users: BTreeMap<u32, String>,
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

    pub fn user(&self, uid: u32) -> &str {
        self.users.get(&uid).map(String::as_str).unwrap_or("")
    }

    pub fn group(&self, gid: u32) -> &str {
        self.groups.get(&gid).map(String::as_str).unwrap_or("")
    }
}

/// Something in a layer directory worth reporting (see [`inspect_layer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
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

fn same_fs_time(a: &Metadata, b: &Metadata) -> bool {
    a.mtime == b.mtime || (a.mtime.sec == b.mtime.sec && (a.mtime.nsec == 0 || b.mtime.nsec == 0))
}

/// moby `statDifferent`.
fn stat_different(old: &Metadata, new: &Metadata) -> bool {
    st_mode(old) != st_mode(new)
        || old.uid != new.uid
        || old.gid != new.gid
        || (old.rdev_major, old.rdev_minor) != (new.rdev_major, new.rdev_minor)
        || (old.kind != FileKind::Dir && (!same_fs_time(old, new) || old.size != new.size))
}

/// One directory of the diff walk.
struct Frame<'c, 'v, 'a> {
    rel: Vec<u8>,
    /// Real changes in `out` when the frame was entered.
    real_at_entry: usize,
    /// Where this directory's own `C` goes when changes are found below it (a slot
    /// reserved in `out`), for a directory neither added nor already modified.
    slot: Option<usize>,
    /// The new view's children (`None`: not a directory, or a pruned subtree).
    children: Option<view::Children<'c, 'v, 'a>>,
    /// The old view's children, and the next one not yet matched.
    old: Option<view::Children<'c, 'v, 'a>>,
    old_next: Option<(Vec<u8>, Node)>,
    /// Old children the new view does not have, in name order.
    deleted: Vec<Vec<u8>>,
}

impl Frame<'_, '_, '_> {
    /// The old child named `name`, if any; old children before it are deleted.
    fn take_old(&mut self, name: &[u8]) -> Result<Option<Node>, WhiteoutError> {
        while let Some((n, _)) = &self.old_next {
            match n.as_slice().cmp(name) {
                std::cmp::Ordering::Less => {
                    if let Some((n, _)) = self.old_next.take() {
                        self.deleted.push(n);
                    }
                    self.pull_old()?;
                }
                std::cmp::Ordering::Equal => {
                    let found = self.old_next.take().map(|(_, node)| node);
                    self.pull_old()?;
                    return Ok(found);
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(None)
    }

    fn pull_old(&mut self) -> Result<(), WhiteoutError> {
        self.old_next = match &mut self.old {
            Some(o) => o.next()?,
            None => None,
        };
        Ok(())
    }
}

/// Whether two nodes of the two views are provably the same subtree (same lower layers).
fn same_subtree(new: &Node, old: &Node, new_off: usize) -> bool {
    new.layer >= new_off
        && new.layer - new_off == old.layer
        && new.contrib.len() == old.contrib.len()
        && new
            .contrib
            .iter()
            .zip(&old.contrib)
            .all(|(a, b)| *a >= new_off && a - new_off == *b)
}

/// `docker diff`: the changes of `upper` over `lowers` (nearest first: for a container
/// `[init layer, image top layer, …, base]`; for vfs `[init snapshot]` with `upper` the
/// container snapshot). See the crate documentation for the rules and the order.
///
/// Linear in the size of the trees: one directory listing per layer and level is held
/// at a time (names only), and the two views' sorted listings are merged.
pub fn changes(upper: &LayerDir, lowers: &[LayerDir]) -> Result<Vec<Change>, WhiteoutError> {
    let mut new_layers: Vec<&LayerDir> = vec![upper];
    new_layers.extend(lowers.iter());
    let old_layers: Vec<&LayerDir> = lowers.iter().collect();
    let new_view = View::new(&new_layers);
    let old_view = View::new(&old_layers);
    let new_root = new_view.root()?;
    let old_root = if old_layers.is_empty() {
        None
    } else {
        Some(old_view.root()?)
    };
    // The prune shortcut needs the old view to be exactly the new view minus the upper.
    let new_off = 1;
    // Changes in walk order; `None` is a slot reserved for a directory's `C` that turned
    // out not to be needed.
    let mut out: Vec<Option<Change>> = Vec::new();
    let mut real = 0usize;
    let snapshots = upper.style == WhiteoutStyle::Snapshot
        && lowers.iter().all(|l| l.style == WhiteoutStyle::Snapshot);

    let push = |out: &mut Vec<Option<Change>>, c: Change, path: &[u8]| {
        out.try_reserve(1).map_err(|_| WhiteoutError::OutOfMemory {
            path: upper.path(path),
            what: format!("holding {} changes", out.len()),
        })?;
        out.push(Some(c));
        Ok::<(), WhiteoutError>(())
    };

    let mut stack: Vec<Frame> = Vec::new();
    // The root: compared only through its children.
    let mut root = Frame {
        rel: Vec::new(),
        real_at_entry: 0,
        slot: None,
        children: Some(new_view.children(b"", &new_root)?),
        old: match &old_root {
            Some(o) => Some(old_view.children(b"", o)?),
            None => None,
        },
        old_next: None,
        deleted: Vec::new(),
    };
    root.pull_old()?;
    stack.push(root);
    while let Some(top) = stack.last_mut() {
        let next = match &mut top.children {
            Some(c) => c.next()?,
            None => None,
        };
        if let Some((name, nc)) = next {
            let rel = join(&top.rel, &name);
            too_deep(upper, &rel)?;
            let oc = top.take_old(&name)?;
            let mut modified = false;
            if let Some(o) = &oc {
                if snapshots
                    && inode_key(new_layers[nc.layer], &nc.md)
                        == inode_key(old_layers[o.layer], &o.md)
                {
                    // The engine's walker prunes names with the same inode on one device.
                    continue;
                }
                if stat_different(&o.md, &nc.md)
                    || new_view.capability(&rel, &nc)? != old_view.capability(&rel, o)?
                {
                    push(
                        &mut out,
                        Change {
                            path: abs(&rel),
                            kind: ChangeKind::Modified,
                        },
                        &rel,
                    )?;
                    real += 1;
                    modified = true;
                }
            }
            let added = oc.is_none();
            if added {
                push(
                    &mut out,
                    Change {
                        path: abs(&rel),
                        kind: ChangeKind::Added,
                    },
                    &rel,
                )?;
                real += 1;
            }
            let mut f = Frame {
                rel,
                real_at_entry: real,
                slot: None,
                children: None,
                old: None,
                old_next: None,
                deleted: Vec::new(),
            };
            if nc.is_dir() {
                let pruned = matches!(&oc, Some(o) if o.is_dir() && same_subtree(&nc, o, new_off));
                if !pruned {
                    f.children = Some(new_view.children(&f.rel, &nc)?);
                    if let Some(o) = oc.as_ref().filter(|o| o.is_dir()) {
                        f.old = Some(old_view.children(&f.rel, o)?);
                        f.pull_old()?;
                    }
                    // A directory neither added nor modified gets a `C` (before its
                    // children's changes) when anything below it changed.
                    if !added && !modified {
                        out.try_reserve(1).map_err(|_| WhiteoutError::OutOfMemory {
                            path: upper.path(&f.rel),
                            what: format!("holding {} changes", out.len()),
                        })?;
                        f.slot = Some(out.len());
                        out.push(None);
                    }
                }
            }
            stack.push(f);
        } else {
            let Some(mut f) = stack.pop() else { break };
            // Old children after the last new one are deleted too.
            while let Some((n, _)) = f.old_next.take() {
                f.deleted.push(n);
                f.pull_old()?;
            }
            for name in std::mem::take(&mut f.deleted) {
                let rel = join(&f.rel, &name);
                push(
                    &mut out,
                    Change {
                        path: abs(&rel),
                        kind: ChangeKind::Deleted,
                    },
                    &rel,
                )?;
                real += 1;
            }
            if let Some(i) = f.slot {
                if real > f.real_at_entry {
                    out[i] = Some(Change {
                        path: abs(&f.rel),
                        kind: ChangeKind::Modified,
                    });
                }
            }
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// `docker commit`'s layer for a layer whose driver has a native diff: overlay
/// ([`WhiteoutStyle::Overlay`], overlay2) and aufs. Streams the tar into `out`; returns
/// (`sha256:<hex>` of the tar = its diff_id, size in bytes).
pub fn write_layer_tar(
    upper: &LayerDir,
    names: &TarNames,
    out: &mut dyn Write,
) -> Result<(String, u64), WhiteoutError> {
    let overlay = match upper.style {
        WhiteoutStyle::Overlay => true,
        WhiteoutStyle::Aufs => false,
        style => {
            return Err(WhiteoutError::NeedsLowers {
                path: upper.path(b""),
                style,
            })
        }
    };
    let mut app = Appender {
        tw: GoTarWriter::new(out),
        names,
        seen: Default::default(),
        overlay_converter: overlay,
    };
    upper.check_unsupported(b"")?;
    // Iterative WalkDir of the upper directory itself (no merging): one listing (names
    // only) per level; each entry's metadata is read when it is written.
    let mut stack: WalkStack<FileKind> = vec![(Vec::new(), raw_children(upper, b"")?.into_iter())];
    while let Some((dir, it)) = stack.last_mut() {
        let Some((name, _)) = it.next() else {
            stack.pop();
            continue;
        };
        if !overlay
            && dir.is_empty()
            && name.starts_with(view::WH_META_PREFIX)
            && name != view::WH_OPAQUE
        {
            continue; // aufs Diff: Exclude ".wh..wh.*" (root level), "!.wh..wh..opq"
        }
        let rel = join(dir, &name);
        let Some(md) = upper.lstat(&rel)? else {
            continue; // gone since the listing
        };
        upper.check_unsupported(&rel)?;
        app.add(upper, &rel, &rel, &md)?;
        if md.is_dir() {
            too_deep(upper, &rel)?;
            let ch = raw_children(upper, &rel)?;
            stack.push((rel, ch.into_iter()));
        }
    }
    app.tw.finish().map_err(WhiteoutError::Output)
}

/// The names (and listed kinds) of one directory of a layer, sorted by bytes.
fn raw_children(layer: &LayerDir, rel: &[u8]) -> Result<Vec<(Vec<u8>, FileKind)>, WhiteoutError> {
    use std::os::unix::ffi::OsStringExt;
    let dir = layer.path(rel);
    let entries = layer.source.read_dir(&dir)?;
    let mut v = Vec::new();
    v.try_reserve_exact(entries.len())
        .map_err(|_| WhiteoutError::OutOfMemory {
            path: dir.clone(),
            what: format!("holding the listing of {} entries", entries.len()),
        })?;
    for e in entries {
        let name = e.name.into_vec();
        view::check_name(&dir, &name)?;
        v.push((name, e.kind));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// The engine's naive diff (`NaiveDiffDriver.Diff`: `ChangesDirs` + `ExportChanges`), used
/// for vfs/btrfs/zfs and fuse-overlayfs commits: entries sorted by path, each changed
/// path added from the new merged view, deletions as `.wh.<name>` (mode 0, owner 0, empty
/// names). The engine stamps those whiteouts with `time.Now()`; `whiteout_mtime` (Unix
/// seconds) stands in for it, so the digest cannot match the engine's when the layer has
/// deletions.
pub fn write_naive_layer_tar(
    upper: &LayerDir,
    lowers: &[LayerDir],
    names: &TarNames,
    whiteout_mtime: i64,
    out: &mut dyn Write,
) -> Result<(String, u64), WhiteoutError> {
    let mut ch = changes(upper, lowers)?;
    ch.sort_by(|a, b| a.path.cmp(&b.path));
    let mut new_layers: Vec<&LayerDir> = vec![upper];
    new_layers.extend(lowers.iter());
    let view = View::new(&new_layers);
    let mut app = Appender {
        tw: GoTarWriter::new(out),
        names,
        seen: Default::default(),
        overlay_converter: false,
    };
    for c in &ch {
        let rel = &c.path[1..];
        if c.kind == ChangeKind::Deleted {
            app.add_whiteout(rel, whiteout_mtime)?;
            continue;
        }
        if let Some((layer, md)) = resolve(&view, rel)? {
            app.add(new_layers[layer], rel, rel, &md)?;
        }
    }
    app.tw.finish().map_err(WhiteoutError::Output)
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

/// `docker export`: the flattened root filesystem of `layers_top_first` (for a container:
/// `[container upper, init layer, image top, …, base]`; for vfs `[container snapshot]`),
/// whiteouts and opaque directories applied. Returns the number of bytes written.
/// The same code path as [`write_flattened_tar_with_mounts`] with no mounts.
pub fn write_flattened_tar(
    layers_top_first: &[LayerDir],
    names: &TarNames,
    out: &mut dyn Write,
) -> Result<u64, WhiteoutError> {
    write_flattened_tar_with_mounts(layers_top_first, &[], names, out)
}

/// Most mounts accepted by [`write_flattened_tar_with_mounts`].
pub const MAX_MOUNTS: usize = 4096;

/// Normalises a mount point (container path bytes): must be absolute; empty and `.`
/// components are dropped (`/a//b/./` → `a/b`); `..`, NUL bytes, `/` itself and nesting
/// deeper than [`MAX_DEPTH`] are refused. Returns the relative form (`a/b`).
fn normalise_mount_point(p: &[u8]) -> Result<Vec<u8>, WhiteoutError> {
    let bad = |reason: &str| WhiteoutError::BadMount {
        mount: String::from_utf8_lossy(p).into_owned(),
        reason: reason.into(),
    };
    if p.contains(&0) {
        return Err(bad("contains a NUL byte"));
    }
    if p.first() != Some(&b'/') {
        return Err(bad("not an absolute container path"));
    }
    let mut comps: Vec<&[u8]> = Vec::new();
    for c in p.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(bad("has a `..` component")),
            c => comps.push(c),
        }
        if comps.len() > MAX_DEPTH {
            return Err(bad(&format!("nested deeper than {MAX_DEPTH} directories")));
        }
    }
    if comps.is_empty() {
        return Err(bad(
            "is the container's root `/`, which docker refuses as a destination",
        ));
    }
    Ok(comps.join(&b'/'))
}

/// One entry of the export walk: a node of filesystem `fs` (0 = the layers' merged view,
/// `1 + i` = mount `i`) at `rel` inside that filesystem, or a directory no filesystem
/// has (a missing parent of a mount point).
enum Entry {
    Node { fs: usize, rel: Vec<u8>, node: Node },
    Synth,
}

/// The merged view of the layers plus the mounts, one filesystem each.
struct Mounted<'v, 'a> {
    /// `views[0]`: the layers; `views[1 + i]`: mount `i` (a single Snapshot layer).
    views: Vec<View<'v, 'a>>,
    /// Normalised mount points (`a/b`) with their mount index, sorted by bytes, so the
    /// mounts below a directory are one contiguous run.
    points: Vec<(Vec<u8>, usize)>,
}

impl<'v, 'a> Mounted<'v, 'a> {
    fn layer(&self, fs: usize, node: &Node) -> &LayerDir<'_> {
        self.views[fs].layers[node.layer]
    }

    /// The children of the directory at tar path `tar`, in name order: the entries of
    /// `base` (filesystem, path inside it, node; `None` for a synthesised directory) with
    /// mount points below `tar` applied. A mount point child is replaced by the mount's
    /// root; a child on the way to a deeper mount point stays when it is a directory and
    /// is otherwise replaced by a synthesised directory (created when missing).
    fn children(
        &self,
        tar: &[u8],
        base: Option<(usize, &[u8], &Node)>,
    ) -> Result<MountedChildren<'_, 'v, 'a>, WhiteoutError> {
        let base = match base {
            Some((fs, rel, node)) => Some((fs, rel.to_vec(), self.views[fs].children(rel, node)?)),
            None => None,
        };
        let prefix: Vec<u8> = if tar.is_empty() {
            Vec::new()
        } else {
            join(tar, b"")
        };
        let start = self
            .points
            .partition_point(|(p, _)| p.as_slice() < prefix.as_slice());
        let below = self.points[start..]
            .iter()
            .take_while(|(p, _)| p.starts_with(&prefix));
        // name → Some(mount index) for a mount point, None for a component on the way.
        let mut over: BTreeMap<Vec<u8>, Option<usize>> = BTreeMap::new();
        for (p, m) in below {
            let rest = &p[prefix.len()..];
            match rest.iter().position(|&c| c == b'/') {
                None => {
                    over.insert(rest.to_vec(), Some(*m));
                }
                Some(i) => {
                    over.entry(rest[..i].to_vec()).or_insert(None);
                }
            }
        }
        let mut c = MountedChildren {
            base,
            base_next: None,
            over: over.into_iter().collect::<Vec<_>>().into_iter(),
            over_next: None,
        };
        c.pull_base()?;
        c.over_next = c.over.next();
        Ok(c)
    }
}

/// The children of one directory of the export walk, in name order (see
/// [`Mounted::children`]): the merged view's children, lazily, with the mount points.
struct MountedChildren<'c, 'v, 'a> {
    /// (filesystem, path of the directory inside it, its children).
    base: Option<(usize, Vec<u8>, view::Children<'c, 'v, 'a>)>,
    base_next: Option<(Vec<u8>, Node)>,
    over: std::vec::IntoIter<(Vec<u8>, Option<usize>)>,
    over_next: Option<(Vec<u8>, Option<usize>)>,
}

impl MountedChildren<'_, '_, '_> {
    fn pull_base(&mut self) -> Result<(), WhiteoutError> {
        self.base_next = match &mut self.base {
            Some((_, _, c)) => c.next()?,
            None => None,
        };
        Ok(())
    }

    fn next(&mut self, m: &Mounted) -> Result<Option<(Vec<u8>, Entry)>, WhiteoutError> {
        use std::cmp::Ordering;
        let order = match (&self.base_next, &self.over_next) {
            (None, None) => return Ok(None),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((b, _)), Some((o, _))) => b.cmp(o),
        };
        let base_entry = |me: &mut Self| -> Result<Option<(Vec<u8>, Entry)>, WhiteoutError> {
            let Some((name, node)) = me.base_next.take() else {
                return Ok(None);
            };
            let (fs, rel) = match &me.base {
                Some((fs, rel, _)) => (*fs, join(rel, &name)),
                None => return Ok(None),
            };
            me.pull_base()?;
            Ok(Some((name, Entry::Node { fs, rel, node })))
        };
        if order == Ordering::Less {
            return base_entry(self);
        }
        let Some((name, mount)) = self.over_next.take() else {
            return Ok(None);
        };
        self.over_next = self.over.next();
        let keep_base = order == Ordering::Equal
            && mount.is_none()
            && matches!(&self.base_next, Some((_, n)) if n.is_dir());
        if keep_base {
            return base_entry(self);
        }
        if order == Ordering::Equal {
            self.pull_base()?; // the layers' entry is hidden by the mount or a directory
        }
        let entry = match mount {
            Some(i) => {
                let fs = 1 + i;
                Entry::Node {
                    fs,
                    rel: Vec::new(),
                    node: m.views[fs].root()?,
                }
            }
            None => Entry::Synth,
        };
        Ok(Some((name, entry)))
    }
}

/// `docker export` of the merged view of `layers_top_first`, with each mount's directory
/// mounted at its mount point (container path bytes like `/vol` or `/data/cache`): what
/// `tar` run inside the running container would have seen, in the engine's export format.
///
/// * The mount hides whatever the layers have at and below the mount point; the mount
///   point's own directory header takes the mounted directory's metadata (as `stat`
///   inside a running container would show it), and the mount's files follow in
///   `WalkDir` order (name-byte order, parents first) at their place in the tree.
/// * A mount is not a layer: its directory is read as [`WhiteoutStyle::Snapshot`]
///   whatever style the caller gave, so whiteout-looking entries in it (`.wh.*` files,
///   char 0/0 devices) are exported as what they are. Its root must be a directory.
/// * Mount points are normalised (`/a//b/./` = `/a/b`); relative paths, `..` components,
///   NUL bytes, `/` itself, duplicates (after normalisation), nesting deeper than
///   [`MAX_DEPTH`] and more than [`MAX_MOUNTS`] mounts fail with
///   [`WhiteoutError::BadMount`] naming the mount point as given.
/// * Mount points (and their parents) missing from the layers are created, as runc does:
///   directories with mode 0755, uid/gid 0, mtime 0 and no xattrs (uname/gname those of
///   uid/gid 0 in `names`). The mount point itself then carries the mount's metadata.
/// * Non-directories in the way: a file, device or **symlink** at a mount point or at one
///   of its parents in the layers is overlaid, not refused: the mount (or a synthesised
///   directory for a parent) takes its place at the literal path and the layers' entry is
///   hidden. (The engine would have failed to start such a container, or runc would have
///   resolved the symlink inside the root filesystem and mounted elsewhere; symlinks are
///   never followed here, so the evidence of the volume is kept at the path the
///   container configuration names.)
/// * Nested mounts: the deeper one wins below its point, whether its parent is in the
///   layers or in another mount (a missing parent inside a mount is synthesised as above).
/// * Hard links are tracked per filesystem: the layers' merged view is one, each mount
///   another (even two mounts of the same directory), so a mount's inode numbers never
///   link to the layers'.
///
/// Returns the number of bytes written.
pub fn write_flattened_tar_with_mounts(
    layers_top_first: &[LayerDir],
    mounts: &[(&[u8], LayerDir)],
    names: &TarNames,
    out: &mut dyn Write,
) -> Result<u64, WhiteoutError> {
    if mounts.len() > MAX_MOUNTS {
        return Err(WhiteoutError::BadMount {
            mount: format!("({} mounts)", mounts.len()),
            reason: format!("more than {MAX_MOUNTS} mounts"),
        });
    }
    let mut points: Vec<(Vec<u8>, usize)> = Vec::with_capacity(mounts.len());
    for (i, (p, _)) in mounts.iter().enumerate() {
        points.push((normalise_mount_point(p)?, i));
    }
    points.sort();
    if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(WhiteoutError::BadMount {
            mount: String::from_utf8_lossy(mounts[w[1].1].0).into_owned(),
            reason: format!(
                "the same mount point as {:?} (docker refuses duplicate mount points)",
                String::from_utf8_lossy(mounts[w[0].1].0)
            ),
        });
    }
    let layers: Vec<&LayerDir> = layers_top_first.iter().collect();
    let mount_dirs: Vec<LayerDir> = mounts
        .iter()
        .map(|(_, l)| LayerDir {
            style: WhiteoutStyle::Snapshot,
            ..*l
        })
        .collect();
    let singles: Vec<[&LayerDir; 1]> = mount_dirs.iter().map(|l| [l]).collect();
    let mut views = vec![View::new(&layers)];
    views.extend(singles.iter().map(|s| View::new(s)));
    let mounted = Mounted { views, points };

    let root = mounted.views[0].root()?;
    let mut app = Appender {
        tw: GoTarWriter::new(out),
        names,
        seen: Default::default(),
        overlay_converter: false,
    };
    // One directory per level: its merged listing (names only) and mount points.
    let mut stack: Vec<(Vec<u8>, MountedChildren)> =
        vec![(Vec::new(), mounted.children(b"", Some((0, b"", &root)))?)];
    while let Some((dir, it)) = stack.last_mut() {
        let Some((name, entry)) = it.next(&mounted)? else {
            stack.pop();
            continue;
        };
        let tar = join(dir, &name);
        let ch = match &entry {
            Entry::Node { fs, rel, node } => {
                let layer = mounted.layer(*fs, node);
                app.add_in(*fs, layer, rel, &tar, &node.md)?;
                if !node.is_dir() {
                    continue;
                }
                if depth_of(&tar) > MAX_DEPTH {
                    return Err(WhiteoutError::TooDeep {
                        path: layer.path(rel),
                    });
                }
                mounted.children(&tar, Some((*fs, rel, node)))?
            }
            Entry::Synth => {
                app.add_synth_dir(&tar)?;
                // Mount points are at most MAX_DEPTH deep, so synthesised parents are too.
                mounted.children(&tar, None)?
            }
        };
        stack.push((tar, ch));
    }
    Ok(app.tw.finish().map_err(WhiteoutError::Output)?.1)
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
