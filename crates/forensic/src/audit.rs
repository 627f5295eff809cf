//! The tamper audit: every way a layer's files on disk differ from the engine's own record.
//!
//! [`audit_layer`] compares a layer's directory (the store's
//! [`ContainerStore::layer_view`]) with the tar headers the engine recorded
//! ([`ContainerStore::recorded_headers`]: Docker's tar-split, streamed with
//! [`salvor_tarsplit::headers`]); file contents are never read — content is the store's
//! proof, [`ContainerStore::rebuild_layer`]. It names each path that was
//!
//! * **changed in its metadata**: permission bits with setuid/setgid/sticky, owner, group,
//!   mtime (whole seconds; nanoseconds too when the header has a PAX sub-second mtime and
//!   the evidence keeps them), symlink target, device major/minor, the
//!   `security.capability` attribute (PAX `SCHILY.xattr.security.capability`);
//! * **missing**, or **replaced by another kind** of file (dirs, symlinks, devices too);
//! * **added**: on disk but not in the tar-split;
//! * a **whiteout or opaque marker added or removed**;
//! * a **hard link broken** (two names of the tar that are no longer one inode).
//!
//! # What the engine itself changes on extraction (not findings)
//!
//! Read from moby `pkg/archive` (`Unpack`/`createTarFile`, `UnpackLayer`, the overlay
//! whiteout converter) and checked on the real engine fixtures (`fixtures/engine`), where
//! the audit reports nothing:
//!
//! * The root entry (`./`) is skipped by the engine; so is it here.
//! * Directories the tar does not list but that hold listed entries were created by the
//!   engine (`MkdirAll` of missing parents): not "added".
//! * Symlinks are never `chmod`ed (their mode is not compared); their owner and mtime are
//!   set with `lchown`/`lutimes` (compared).
//! * Directory mtimes are restored after the whole layer is applied: compared.
//! * Times before the epoch or after 2262 are set to the epoch by `system.Chtimes`
//!   (not for symlinks).
//! * A hard link entry (`1`) re-applies its own header's owner, mode and times to the
//!   shared inode: for an inode with several names the *last* header applied is expected.
//! * Whiteouts: overlay2 turns `.wh.x` into a char device 0/0 `x` (mode 0, owner from the
//!   header, mtime not restored: only kind and owner are compared) and `.wh..wh..opq` into
//!   `trusted.overlay.opaque=y` on the directory; aufs and fuse-overlayfs image layers keep
//!   `.wh.x` / `.wh..wh..opq` as regular files (compared like any file). Both forms are
//!   accepted for every driver (the evidence says which one the engine used). AUFS
//!   metadata entries (`.wh..wh.plnk`, `.wh..wh.aufs` …) are not compared.
//! * Full-snapshot drivers (vfs, btrfs, zfs, overlay v1 `root/`): the engine copies the
//!   parent's snapshot then applies the layer with `UnpackLayer`, which deletes whited-out
//!   paths and the unlisted children of opaque directories. So a whiteout `.wh.x` expects
//!   *neither* `x` nor `.wh.x` on disk, and a path not listed in the layer's tar-split is
//!   expected in the parent layer's snapshot, with the same kind, mode, owner, size,
//!   symlink target, device numbers and (except directories, whose mtime changes when
//!   children are added) mtime — unless it is whited out or under an opaque directory of
//!   this layer. Unlisted paths not explained by the parent are "added"; parent paths
//!   missing from the snapshot without a whiteout are "missing". The parent's own snapshot
//!   is audited as its own layer.
//! * userns-remap: the view's `id_offset` (Docker: a data-root named `<uid>.<gid>`, the
//!   engine's remapped root) shifts the expected owner by that uid/gid.
//! * Evidence that was copied (`cp -r`, `rsync -a`, a collector under a umask) differs from
//!   the record in ways the copy explains. The audit still reports every difference as a
//!   finding; [`crate::copy`] decides, from the audits of all layers together, which of
//!   them a detected copy artifact explains and classes those `copy-artifact`.
//! * Rootless engines skip device nodes: such a data-root would show them as missing.
//!
//! # Bounds
//!
//! The walk goes through [`salvor_source::Source`] only (never the host file system) and
//! never follows a symlink. Memory: one set of the layer's (cleaned) names — at most
//! [`MAX_LISTED_NAMES`] names / [`MAX_LISTED_BYTES`] bytes, beyond which the search for
//! added files is skipped and a note says so — plus the inodes with several names. At
//! most [`MAX_FINDINGS`] findings are kept per layer (`omitted` counts the rest).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use salvor_source::{FileKind, Metadata, Source};
use salvor_tarsplit::{FileHeader, TarHeader};

use crate::copy::CopyStats;
use salvor_model::{ContainerStore, RecordedHeaders, ViewFiles};

/// Names of a layer kept for the search of added files.
pub const MAX_LISTED_NAMES: usize = 4_000_000;
/// Bytes of names of a layer kept for the search of added files.
pub const MAX_LISTED_BYTES: usize = 512 << 20;
/// Findings kept per layer.
pub const MAX_FINDINGS: usize = 100_000;
/// Inodes with several names whose expectation is deferred to the end of the layer.
const MAX_DEFERRED: usize = 1_000_000;

/// What is wrong with one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    /// Permission bits (with setuid/setgid/sticky) differ.
    ModeChanged,
    /// Owner uid differs.
    UidChanged,
    /// Group gid differs.
    GidChanged,
    /// Modification time differs.
    MtimeChanged,
    /// Symlink target differs.
    SymlinkChanged,
    /// Device major/minor differ.
    DeviceChanged,
    /// `security.capability` differs, was added or removed.
    CapabilityChanged,
    /// Size differs (only for paths inherited from the parent snapshot; listed regular
    /// files are checked by the rebuild).
    SizeChanged,
    /// Listed in the tar-split, absent on disk.
    Missing,
    /// On disk as another kind of file than the tar-split says.
    KindChanged,
    /// On disk, not in the tar-split.
    Added,
    /// A whiteout on disk that the tar-split does not have.
    WhiteoutAdded,
    /// A whiteout of the tar-split that is not on disk (or the whited-out path is there).
    WhiteoutRemoved,
    /// An opaque marker on disk that the tar-split does not have.
    OpaqueAdded,
    /// An opaque marker of the tar-split that is not on disk.
    OpaqueRemoved,
    /// Names the tar-split links together are no longer one inode.
    HardlinkBroken,
    /// The tar header of an entry could not be parsed: the entry was not compared.
    HeaderUnreadable,
    /// The path could not be examined.
    ReadError,
}

impl AuditKind {
    /// The kebab-case name used in output (`mode-changed` …).
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditKind::ModeChanged => "mode-changed",
            AuditKind::UidChanged => "uid-changed",
            AuditKind::GidChanged => "gid-changed",
            AuditKind::MtimeChanged => "mtime-changed",
            AuditKind::SymlinkChanged => "symlink-changed",
            AuditKind::DeviceChanged => "device-changed",
            AuditKind::CapabilityChanged => "capability-changed",
            AuditKind::SizeChanged => "size-changed",
            AuditKind::Missing => "missing",
            AuditKind::KindChanged => "kind-changed",
            AuditKind::Added => "added",
            AuditKind::WhiteoutAdded => "whiteout-added",
            AuditKind::WhiteoutRemoved => "whiteout-removed",
            AuditKind::OpaqueAdded => "opaque-added",
            AuditKind::OpaqueRemoved => "opaque-removed",
            AuditKind::HardlinkBroken => "hardlink-broken",
            AuditKind::HeaderUnreadable => "header-unreadable",
            AuditKind::ReadError => "read-error",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tampered path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditFinding {
    /// The path inside the layer (lossy UTF-8 for display; `path_hex` is exact).
    pub path: String,
    /// Hex of the exact path bytes, when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// The exact path bytes inside the layer.
    #[serde(skip)]
    pub path_bytes: Vec<u8>,
    /// What differs.
    pub kind: AuditKind,
    /// What the tar-split (or the parent snapshot) says.
    pub expected: String,
    /// What is on disk.
    pub found: String,
    /// `finding`, or `copy-artifact` when [`crate::copy::classify`] found it explained by the way the
    /// evidence was copied (see [`crate::copy`]). The audit itself always says `finding`.
    pub class: FindingClass,
    /// The path on disk is a directory (mtime rules differ for directories).
    #[serde(skip)]
    pub is_dir: bool,
    /// `hardlink-broken` only: the separate inode is a byte-identical copy of the link's
    /// target with the same size, mode and owner (what a copy that does not keep hard links
    /// makes).
    #[serde(skip)]
    pub identical_copy: bool,
}

/// Whether a metadata difference stays a finding or is explained as a copy artifact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingClass {
    /// A difference nothing explains: the evidence was changed.
    #[default]
    Finding,
    /// Explained by a copy artifact detected in the evidence as a whole.
    CopyArtifact,
}

impl FindingClass {
    /// `finding` or `copy-artifact`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FindingClass::Finding => "finding",
            FindingClass::CopyArtifact => "copy-artifact",
        }
    }
}

impl std::fmt::Display for AuditFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (expected {}, found {})",
            self.path, self.kind, self.expected, self.found
        )
    }
}

/// The audit of one layer.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditReport {
    /// The layer's chain id (`sha256:<hex>`).
    pub chain_id: String,
    /// Tar-split entries compared with the disk.
    pub entries: u64,
    /// Paths walked on disk.
    pub walked: u64,
    /// The differences found, at most [`MAX_FINDINGS`], in walk order.
    pub findings: Vec<AuditFinding>,
    /// Findings beyond [`MAX_FINDINGS`], not kept.
    pub omitted: u64,
    /// Why the audit is incomplete or was not done (limits hit, files unavailable).
    pub notes: Vec<String>,
    /// What the comparisons looked like, for the detection of copy artifacts
    /// ([`crate::copy::detect`]).
    #[serde(skip)]
    pub stats: CopyStats,
}

impl AuditReport {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.omitted == 0
    }
}

/// Flags of a listed name.
const LISTED: u8 = 1;
/// `x` of a listed `.wh.x`.
const WHITED_OUT: u8 = 2;
/// A directory with a listed `.wh..wh..opq`.
const OPAQUE: u8 = 4;

use salvor_tarsplit::rooted_clean as clean;

fn split_parent(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[][..], p),
    }
}

fn join(parent: &[u8], base: &[u8]) -> Vec<u8> {
    let mut v = parent.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(base);
    v
}

fn kind_of(typeflag: u8) -> Option<FileKind> {
    Some(match typeflag {
        b'0' | 0 | b'7' | b'S' => FileKind::Regular,
        b'2' => FileKind::Symlink,
        b'3' => FileKind::CharDevice,
        b'4' => FileKind::BlockDevice,
        b'5' => FileKind::Dir,
        b'6' => FileKind::Fifo,
        _ => return None,
    })
}

fn show_bytes(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

fn show_kind(md: &Metadata) -> String {
    if md.is_overlay_whiteout() {
        "an overlay whiteout (char 0/0)".into()
    } else {
        format!("a {}", md.kind)
    }
}

fn show_cap(v: Option<&[u8]>) -> String {
    match v {
        Some(v) => format!("0x{}", hex::encode(v)),
        None => "none".into(),
    }
}

/// Go `system.Chtimes`: times outside [epoch, 2262] become the epoch.
fn chtimes_clamp(sec: i64) -> i64 {
    if !(0..=9_223_372_036).contains(&sec) {
        0
    } else {
        sec
    }
}

/// What the engine left for one entry.
#[derive(Debug, Clone)]
struct Expect {
    perm: Option<u32>,
    uid: i64,
    gid: i64,
    /// (seconds, nanoseconds when the header has them)
    mtime: Option<(i64, Option<u32>)>,
}

struct Ctx<'a> {
    source: &'a dyn Source,
    root: PathBuf,
    /// userns-remap offset (uid, gid).
    remap: (i64, i64),
    report: AuditReport,
    listed: HashMap<Vec<u8>, u8>,
    listed_bytes: usize,
    listing_complete: bool,
    /// (dev, ino) -> (path, expectation, whether the last header was a hard link to a symlink)
    deferred: HashMap<(u64, u64), (Vec<u8>, Expect)>,
    /// Full snapshot (vfs …): whiteouts expect nothing on disk.
    snapshot: bool,
    /// Comparing with the parent's snapshot, not with the record: not counted in the
    /// copy statistics (after a copy the parent's disk shows the copy too).
    inheriting: bool,
}

impl Ctx<'_> {
    fn push(&mut self, path: &[u8], kind: AuditKind, expected: String, found: String) {
        if self.report.findings.len() >= MAX_FINDINGS {
            self.report.omitted += 1;
            return;
        }
        let path_hex = std::str::from_utf8(path)
            .is_err()
            .then(|| hex::encode(path));
        self.report.findings.push(AuditFinding {
            path: String::from_utf8_lossy(path).into_owned(),
            path_hex,
            path_bytes: path.to_vec(),
            kind,
            expected,
            found,
            class: FindingClass::Finding,
            is_dir: false,
            identical_copy: false,
        });
    }

    /// [`Self::push`], marking the path as a directory when it is one.
    fn push_md(&mut self, path: &[u8], md: &Metadata, kind: AuditKind, e: String, f: String) {
        self.push(path, kind, e, f);
        if md.kind == FileKind::Dir {
            if let Some(last) = self.report.findings.last_mut() {
                last.is_dir = true;
            }
        }
    }

    fn phys(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(Path::new(OsStr::from_bytes(rel)))
        }
    }

    /// `lstat`; `Ok(None)` when absent (a symlink met on the way counts as absent).
    fn lstat(&mut self, rel: &[u8]) -> Option<Option<Metadata>> {
        match self.source.metadata(&self.phys(rel)) {
            Ok(m) => Some(Some(m)),
            Err(e)
                if e.is_not_found()
                    || matches!(
                        e,
                        salvor_source::SourceError::SymlinkInPath { .. }
                            | salvor_source::SourceError::WrongKind { .. }
                    ) =>
            {
                Some(None)
            }
            Err(e) => {
                self.push(rel, AuditKind::ReadError, "readable".into(), e.to_string());
                None
            }
        }
    }

    fn list(&mut self, name: &[u8], flag: u8) {
        if !self.listing_complete {
            return;
        }
        if let Some(f) = self.listed.get_mut(name) {
            *f |= flag;
            return;
        }
        if self.listed.len() >= MAX_LISTED_NAMES || self.listed_bytes >= MAX_LISTED_BYTES {
            self.listing_complete = false;
            self.listed = HashMap::new();
            self.report.notes.push(format!(
                "more than {MAX_LISTED_NAMES} names or {MAX_LISTED_BYTES} bytes of names: files added on disk were not searched for"
            ));
            return;
        }
        self.listed_bytes += name.len() + 32;
        self.listed.insert(name.to_vec(), flag);
    }

    fn expect(&self, h: &TarHeader, clamp: bool) -> Expect {
        let sec = if clamp {
            chtimes_clamp(h.mtime)
        } else {
            h.mtime
        };
        Expect {
            perm: Some(h.perm()),
            uid: h.uid + self.remap.0,
            gid: h.gid + self.remap.1,
            mtime: Some((sec, if sec == h.mtime { h.mtime_nsec } else { None })),
        }
    }

    fn compare_attrs(&mut self, path: &[u8], e: &Expect, md: &Metadata) {
        if let Some(perm) = e.perm {
            let found = md.mode & 0o7777;
            if !self.inheriting {
                self.report.stats.mode(perm, found);
            }
            if perm != found {
                self.push_md(
                    path,
                    md,
                    AuditKind::ModeChanged,
                    format!("{perm:04o}"),
                    format!("{found:04o}"),
                );
            }
        }
        let (uid_ok, gid_ok) = (e.uid == i64::from(md.uid), e.gid == i64::from(md.gid));
        if !self.inheriting {
            self.report.stats.owner(md.uid, md.gid, uid_ok, gid_ok);
        }
        if !uid_ok {
            self.push_md(
                path,
                md,
                AuditKind::UidChanged,
                e.uid.to_string(),
                md.uid.to_string(),
            );
        }
        if !gid_ok {
            self.push_md(
                path,
                md,
                AuditKind::GidChanged,
                e.gid.to_string(),
                md.gid.to_string(),
            );
        }
        if let Some((sec, nsec)) = e.mtime {
            let ns_differs = match nsec {
                Some(n) => md.mtime.nsec != 0 && md.mtime.nsec != n,
                None => false,
            };
            let differs = sec != md.mtime.sec || ns_differs;
            if !self.inheriting {
                self.report
                    .stats
                    .mtime(md.kind == FileKind::Dir, md.mtime.sec, differs);
            }
            if differs {
                let show = |s: i64, n: Option<u32>| match n {
                    Some(n) if n != 0 => format!("{s}.{n:09}"),
                    _ => s.to_string(),
                };
                self.push_md(
                    path,
                    md,
                    AuditKind::MtimeChanged,
                    show(sec, nsec),
                    show(md.mtime.sec, Some(md.mtime.nsec)),
                );
            }
        }
    }

    fn compare_cap(&mut self, path: &[u8], h: &TarHeader) {
        let want = h.xattr("security.capability");
        let have = match self.source.xattr(&self.phys(path), "security.capability") {
            Ok(v) => v,
            Err(e) => {
                self.push(
                    path,
                    AuditKind::ReadError,
                    "readable xattrs".into(),
                    e.to_string(),
                );
                return;
            }
        };
        self.report.stats.xattr(want.is_some(), have.is_some());
        self.report.stats.cap(want.is_some(), have.is_some());
        if want != have.as_deref() {
            self.push(
                path,
                AuditKind::CapabilityChanged,
                show_cap(want),
                show_cap(have.as_deref()),
            );
        }
    }

    /// Compares one listed, non-whiteout entry.
    fn entry(&mut self, path: &[u8], h: &TarHeader) {
        self.list(path, LISTED);
        let Some(md) = self.lstat(path) else { return };
        if h.typeflag == b'1' {
            return self.hardlink(path, h, md);
        }
        let Some(want) = kind_of(h.typeflag) else {
            return; // vendor / unknown typeflags: the engine does not extract them
        };
        let Some(md) = md else {
            return self.push(
                path,
                AuditKind::Missing,
                format!("a {want}"),
                "nothing".into(),
            );
        };
        if md.kind != want {
            return self.push(
                path,
                AuditKind::KindChanged,
                format!("a {want}"),
                show_kind(&md),
            );
        }
        let symlink = want == FileKind::Symlink;
        let mut e = self.expect(h, !symlink);
        if symlink {
            e.perm = None;
            match self.source.read_link(&self.phys(path)) {
                Ok(t) => {
                    let t = t.as_os_str().as_bytes();
                    if t != h.linkname.as_slice() {
                        self.push(
                            path,
                            AuditKind::SymlinkChanged,
                            show_bytes(&h.linkname),
                            show_bytes(t),
                        );
                    }
                }
                Err(err) => self.push(
                    path,
                    AuditKind::ReadError,
                    "a symlink".into(),
                    err.to_string(),
                ),
            }
        }
        if matches!(want, FileKind::CharDevice | FileKind::BlockDevice) {
            let (maj, min) = (i64::from(md.rdev_major), i64::from(md.rdev_minor));
            if (maj, min) != (h.devmajor, h.devminor) {
                self.push(
                    path,
                    AuditKind::DeviceChanged,
                    format!("{}:{}", h.devmajor, h.devminor),
                    format!("{maj}:{min}"),
                );
            }
        }
        if !symlink {
            self.compare_cap(path, h);
        }
        if md.nlink > 1 && !symlink && want != FileKind::Dir && self.deferred.len() < MAX_DEFERRED {
            self.deferred.insert((md.dev, md.ino), (path.to_vec(), e));
        } else {
            self.compare_attrs(path, &e, &md);
        }
    }

    fn hardlink(&mut self, path: &[u8], h: &TarHeader, md: Option<Metadata>) {
        let target = clean(&h.linkname);
        let Some(md) = md else {
            return self.push(
                path,
                AuditKind::Missing,
                format!("a hard link to {}", show_bytes(&target)),
                "nothing".into(),
            );
        };
        let Some(tmd) = self.lstat(&target) else {
            return;
        };
        let same = tmd
            .as_ref()
            .is_some_and(|t| t.ino == md.ino && t.dev == md.dev);
        let identical = !same
            && tmd
                .as_ref()
                .is_some_and(|t| self.identical_copy(path, &md, &target, t));
        self.report.stats.link(same, identical);
        if !same {
            let found = match &tmd {
                Some(t) if t.ino == md.ino => "a separate inode".to_string(),
                Some(_) if identical => format!(
                    "{} that is a separate inode, an identical copy of the target",
                    show_kind(&md)
                ),
                Some(_) => format!("{} that is a separate inode", show_kind(&md)),
                None => format!("{}; the link target is absent", show_kind(&md)),
            };
            self.push(
                path,
                AuditKind::HardlinkBroken,
                format!("a hard link to {}", show_bytes(&target)),
                found,
            );
            if let Some(last) = self.report.findings.last_mut() {
                last.identical_copy = identical;
            }
            return;
        }
        if md.kind == FileKind::Symlink || md.kind == FileKind::Dir {
            return; // the engine does not chmod/chtimes through a link to a symlink
        }
        // The link's header is applied last to the shared inode.
        let e = self.expect(h, true);
        if self.deferred.len() < MAX_DEFERRED || self.deferred.contains_key(&(md.dev, md.ino)) {
            self.deferred.insert((md.dev, md.ino), (target, e));
        } else {
            self.compare_attrs(path, &e, &md);
        }
    }

    /// Whether `path` (a name the tar-split links to `target`) is a separate regular file
    /// with the same size, mode, owner and bytes as `target`: what `rsync -a` or `cp -r`
    /// make of a hard link. The two files are compared in 64 KiB pieces.
    fn identical_copy(&self, path: &[u8], md: &Metadata, target: &[u8], t: &Metadata) -> bool {
        use std::io::Read;
        if md.kind != FileKind::Regular
            || t.kind != FileKind::Regular
            || (md.size, md.mode, md.uid, md.gid) != (t.size, t.mode, t.uid, t.gid)
        {
            return false;
        }
        let (Ok(mut a), Ok(mut b)) = (
            self.source.open(&self.phys(path)),
            self.source.open(&self.phys(target)),
        ) else {
            return false;
        };
        let mut left = md.size;
        let (mut x, mut y) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
        while left > 0 {
            let n = left.min(x.len() as u64) as usize;
            if a.read_exact(&mut x[..n]).is_err() || b.read_exact(&mut y[..n]).is_err() {
                return false;
            }
            if x[..n] != y[..n] {
                return false;
            }
            left -= n as u64;
        }
        true
    }

    /// `.wh.<x>` in directory `dir`.
    fn whiteout(&mut self, path: &[u8], dir: &[u8], x: &[u8], h: &TarHeader) {
        let target = join(dir, x);
        self.list(path, LISTED);
        self.list(&target, WHITED_OUT);
        let Some(marker) = self.lstat(path) else {
            return;
        };
        let Some(tmd) = self.lstat(&target) else {
            return;
        };
        if self.snapshot {
            if let Some(t) = tmd {
                self.push(
                    &target,
                    AuditKind::WhiteoutRemoved,
                    format!("deleted by whiteout {}", show_bytes(path)),
                    show_kind(&t),
                );
            }
            if let Some(m) = marker {
                self.push(
                    path,
                    AuditKind::Added,
                    "nothing (a whiteout is applied, not kept)".into(),
                    show_kind(&m),
                );
            }
            return;
        }
        match (marker, tmd) {
            // aufs / fuse-overlayfs image layers: the marker file as in the tar.
            (Some(m), _) if m.kind == FileKind::Regular => {
                let e = self.expect(h, true);
                self.compare_attrs(path, &e, &m);
            }
            // overlay: char 0/0 at the whited-out name, owner from the header.
            (_, Some(t)) if t.is_overlay_whiteout() => {
                let e = Expect {
                    perm: None,
                    mtime: None,
                    ..self.expect(h, true)
                };
                self.compare_attrs(&target, &e, &t);
            }
            (m, t) => {
                let found = match (m, t) {
                    (Some(m), _) => format!("{} at {}", show_kind(&m), show_bytes(path)),
                    (None, Some(t)) => format!("{} at {}", show_kind(&t), show_bytes(&target)),
                    (None, None) => "nothing".into(),
                };
                self.push(
                    &target,
                    AuditKind::WhiteoutRemoved,
                    format!(
                        "a whiteout (char 0/0 {} or file {})",
                        show_bytes(&target),
                        show_bytes(path)
                    ),
                    found,
                );
            }
        }
    }

    /// `.wh..wh..opq` in directory `dir`.
    fn opaque(&mut self, path: &[u8], dir: &[u8], h: &TarHeader) {
        self.list(path, LISTED);
        self.list(dir, OPAQUE);
        if self.snapshot {
            if let Some(Some(m)) = self.lstat(path) {
                self.push(
                    path,
                    AuditKind::Added,
                    "nothing (an opaque marker is applied, not kept)".into(),
                    show_kind(&m),
                );
            }
            return;
        }
        let Some(marker) = self.lstat(path) else {
            return;
        };
        if let Some(m) = marker {
            if m.kind == FileKind::Regular {
                let e = self.expect(h, true);
                return self.compare_attrs(path, &e, &m);
            }
        }
        let xattr = self
            .source
            .xattr(&self.phys(dir), "trusted.overlay.opaque")
            .ok()
            .flatten();
        self.report.stats.xattr(true, xattr.is_some());
        if xattr.as_deref() != Some(b"y") {
            self.push(
                dir,
                AuditKind::OpaqueRemoved,
                format!(
                    "opaque (trusted.overlay.opaque=y or file {})",
                    show_bytes(path)
                ),
                match xattr {
                    Some(v) => format!("trusted.overlay.opaque={}", show_bytes(&v)),
                    None => "not opaque".into(),
                },
            );
        }
    }

    fn header(&mut self, fh: FileHeader) {
        self.report.entries += 1;
        let h = match fh.header {
            Ok(h) => h,
            Err(why) => {
                let name = clean(&fh.entry_name);
                self.list(&name, LISTED);
                return self.push(
                    &name,
                    AuditKind::HeaderUnreadable,
                    "a tar header".into(),
                    why,
                );
            }
        };
        if matches!(h.typeflag, b'g' | b'x' | b'L' | b'K') {
            return;
        }
        self.report.stats.recorded_mtime(h.mtime);
        let path = clean(&h.name);
        if path.is_empty() {
            return; // the root entry: skipped by the engine
        }
        let (dir, base) = split_parent(&path);
        if base == b".wh..wh..opq" {
            let dir = dir.to_vec();
            return self.opaque(&path, &dir, &h);
        }
        if base.starts_with(b".wh..wh.") {
            return self.list(&path, LISTED); // AUFS metadata: not extracted as such
        }
        if let Some(x) = base.strip_prefix(b".wh.") {
            let (dir, x) = (dir.to_vec(), x.to_vec());
            return self.whiteout(&path, &dir, &x, &h);
        }
        self.entry(&path, &h);
    }

    fn finish_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        let mut items: Vec<_> = deferred.into_values().collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, e) in items {
            if let Some(Some(md)) = self.lstat(&path) {
                self.compare_attrs(&path, &e, &md);
            }
        }
    }

    fn flag(&self, p: &[u8]) -> u8 {
        self.listed.get(p).copied().unwrap_or(0)
    }

    fn read_dir(&mut self, rel: &[u8], root: &Path) -> Vec<(Vec<u8>, FileKind)> {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(Path::new(OsStr::from_bytes(rel)))
        };
        match self.source.read_dir(&p) {
            Ok(v) => v
                .into_iter()
                .map(|d| (d.name.as_bytes().to_vec(), d.kind))
                .collect(),
            Err(e) => {
                self.push(
                    rel,
                    AuditKind::ReadError,
                    "a readable directory".into(),
                    e.to_string(),
                );
                Vec::new()
            }
        }
    }

    /// Walks the layer's own directory (overlay `diff/`, aufs); returns whether anything
    /// under `rel` is listed.
    fn walk_own(&mut self, rel: &[u8]) -> bool {
        let root = self.root.clone();
        let mut any = false;
        for (name, kind) in self.read_dir(rel, &root) {
            self.report.walked += 1;
            let p = join(rel, &name);
            let f = self.flag(&p);
            let sub = kind == FileKind::Dir && self.walk_own(&p);
            if f != 0 {
                any = true;
                if kind == FileKind::Dir && f & OPAQUE == 0 {
                    self.check_no_opaque(&p);
                }
                continue;
            }
            if sub {
                any = true; // a parent the engine made for listed entries
                continue;
            }
            self.unlisted(&p, &name, kind);
        }
        any
    }

    fn check_no_opaque(&mut self, p: &[u8]) {
        if let Ok(Some(v)) = self.source.xattr(&self.phys(p), "trusted.overlay.opaque") {
            self.report.stats.xattr(false, true);
            if v == b"y" {
                self.push(
                    p,
                    AuditKind::OpaqueAdded,
                    "not opaque".into(),
                    "trusted.overlay.opaque=y".into(),
                );
            }
        }
    }

    fn unlisted(&mut self, p: &[u8], name: &[u8], kind: FileKind) {
        let md = self.lstat(p).flatten();
        let found = md
            .as_ref()
            .map(|m| {
                let mut s = show_kind(m);
                if m.kind == FileKind::Regular {
                    s.push_str(&format!(" of {} bytes", m.size));
                }
                s.push_str(&format!(
                    ", mode {:04o}, {}:{}",
                    m.mode & 0o7777,
                    m.uid,
                    m.gid
                ));
                s
            })
            .unwrap_or_else(|| format!("a {kind}"));
        let (k, expected) = if md.as_ref().is_some_and(Metadata::is_overlay_whiteout) {
            (AuditKind::WhiteoutAdded, "no whiteout".to_string())
        } else if name == b".wh..wh..opq" {
            (AuditKind::OpaqueAdded, "no opaque marker".to_string())
        } else if name.starts_with(b".wh.") && !name.starts_with(b".wh..wh.") {
            (AuditKind::WhiteoutAdded, "no whiteout".to_string())
        } else {
            (
                AuditKind::Added,
                "nothing (not in the tar-split)".to_string(),
            )
        };
        self.push(p, k, expected, found);
    }

    /// Walks a full snapshot against the parent's snapshot (`parent` = its root); returns
    /// whether anything under `rel` is listed. `in_opaque`: the parent's entries are not
    /// inherited here (an opaque directory of this layer, or a directory the parent lacks).
    fn walk_snapshot(&mut self, rel: &[u8], parent: Option<&Path>, in_opaque: bool) -> bool {
        let root = self.root.clone();
        let mine = self.read_dir(rel, &root);
        let theirs = match parent {
            Some(pr) if !in_opaque => {
                let p = if rel.is_empty() {
                    pr.to_path_buf()
                } else {
                    pr.join(Path::new(OsStr::from_bytes(rel)))
                };
                match self.source.read_dir(&p) {
                    Ok(v) => v
                        .into_iter()
                        .map(|d| (d.name.as_bytes().to_vec(), d.kind))
                        .collect(),
                    Err(_) => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        let mut any = false;
        let (mut i, mut j) = (0, 0);
        loop {
            let (name, here, there) = match (mine.get(i), theirs.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    i += 1;
                    j += 1;
                    (a.0.clone(), Some(a.1), Some(b.1))
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    i += 1;
                    (a.0.clone(), Some(a.1), None)
                }
                (Some(a), None) => {
                    i += 1;
                    (a.0.clone(), Some(a.1), None)
                }
                (_, Some(b)) => {
                    j += 1;
                    (b.0.clone(), None, Some(b.1))
                }
                (None, None) => break,
            };
            let p = join(rel, &name);
            let f = self.flag(&p);
            if here.is_some() {
                self.report.walked += 1;
            }
            if f != 0 {
                any = true;
            }
            match (here, there) {
                (Some(k), _) if f & LISTED != 0 => {
                    if k == FileKind::Dir {
                        let opq = in_opaque || f & OPAQUE != 0 || there != Some(FileKind::Dir);
                        self.walk_snapshot(&p, parent, opq);
                    }
                }
                // Whited out but present: reported by the whiteout already.
                (Some(_), _) if f & WHITED_OUT != 0 => {}
                (Some(k), Some(pk)) if !in_opaque => {
                    self.inherited(&p, parent, k, pk);
                    if k == FileKind::Dir
                        && pk == FileKind::Dir
                        && self.walk_snapshot(&p, parent, f & OPAQUE != 0)
                    {
                        any = true;
                    }
                }
                (Some(k), _) => {
                    if k == FileKind::Dir && self.walk_snapshot(&p, None, true) {
                        any = true; // a parent the engine made for listed entries
                        continue;
                    }
                    self.unlisted(&p, &name, k);
                }
                (None, Some(pk)) => {
                    if f & (WHITED_OUT | LISTED) != 0 || in_opaque {
                        continue; // deleted by this layer, or reported as missing already
                    }
                    self.push(
                        &p,
                        AuditKind::Missing,
                        format!("a {pk} (inherited from the parent layer)"),
                        "nothing".into(),
                    );
                }
                (None, None) => {}
            }
        }
        any
    }

    /// An unlisted path of a snapshot: must equal the parent's.
    fn inherited(&mut self, p: &[u8], parent: Option<&Path>, k: FileKind, pk: FileKind) {
        let Some(pr) = parent else { return };
        if k != pk {
            return self.push(
                p,
                AuditKind::KindChanged,
                format!("a {pk} (inherited from the parent layer)"),
                format!("a {k}"),
            );
        }
        let Some(Some(md)) = self.lstat(p) else {
            return;
        };
        let pp = pr.join(Path::new(OsStr::from_bytes(p)));
        let Ok(pmd) = self.source.metadata(&pp) else {
            return;
        };
        let e = Expect {
            perm: (k != FileKind::Symlink).then_some(pmd.mode & 0o7777),
            uid: i64::from(pmd.uid),
            gid: i64::from(pmd.gid),
            mtime: (k != FileKind::Dir).then_some((pmd.mtime.sec, None)),
        };
        self.inheriting = true;
        self.compare_attrs(p, &e, &md);
        self.inheriting = false;
        if k == FileKind::Regular && md.size != pmd.size {
            self.push(
                p,
                AuditKind::SizeChanged,
                format!("{} bytes", pmd.size),
                format!("{} bytes", md.size),
            );
        }
        if k == FileKind::Symlink {
            let a = self.source.read_link(&self.phys(p)).ok();
            let b = self.source.read_link(&pp).ok();
            if a != b {
                let s = |x: Option<PathBuf>| {
                    x.map(|t| show_bytes(t.as_os_str().as_bytes()))
                        .unwrap_or_else(|| "unreadable".into())
                };
                self.push(p, AuditKind::SymlinkChanged, s(b), s(a));
            }
        }
        if matches!(k, FileKind::CharDevice | FileKind::BlockDevice)
            && (md.rdev_major, md.rdev_minor) != (pmd.rdev_major, pmd.rdev_minor)
        {
            self.push(
                p,
                AuditKind::DeviceChanged,
                format!("{}:{}", pmd.rdev_major, pmd.rdev_minor),
                format!("{}:{}", md.rdev_major, md.rdev_minor),
            );
        }
    }
}

/// userns-remap: the engine keeps a remapped data-root in `<uid>.<gid>`.
/// Audits layer `layer_id` of `store`: its files on disk ([`ContainerStore::layer_view`])
/// against the tar headers the engine recorded ([`ContainerStore::recorded_headers`]). See
/// the [module documentation](self) for what is compared and what the engine may change.
/// Never fails: problems reading the evidence are findings or notes.
pub fn audit_layer(store: &dyn ContainerStore, layer_id: &str) -> AuditReport {
    let mut report = AuditReport {
        chain_id: layer_id.to_string(),
        ..AuditReport::default()
    };
    let view = match store.layer_view(layer_id) {
        Ok(v) => v,
        Err(e) => {
            report.notes.push(format!("not audited: {e}"));
            return report;
        }
    };
    let (root, snapshot, parent_root) = match &view.files {
        ViewFiles::Diff { dir, .. } if view.not_auditable.is_none() => (dir.clone(), false, None),
        ViewFiles::Snapshot {
            root,
            has_parent,
            parent_root,
        } if view.not_auditable.is_none() => {
            if *has_parent && parent_root.is_none() {
                report.notes.push(
                    "the parent layer's snapshot is not available: unlisted files were not compared"
                        .into(),
                );
            }
            (root.clone(), true, parent_root.clone())
        }
        ViewFiles::Unavailable { reason } => {
            report.notes.push(format!("not audited: {reason}"));
            return report;
        }
        _ => {
            let why = view.not_auditable.clone().unwrap_or_default();
            report.notes.push(format!("not audited: {why}"));
            return report;
        }
    };
    let mut cx = Ctx {
        source: view.source.as_ref(),
        root,
        remap: view.id_offset,
        report,
        listed: HashMap::new(),
        listed_bytes: 0,
        listing_complete: true,
        deferred: HashMap::new(),
        snapshot,
        inheriting: false,
    };
    match store.recorded_headers(layer_id) {
        RecordedHeaders::Unavailable { reason } => {
            cx.report.notes.push(format!("not audited: {reason}"));
            return cx.report;
        }
        RecordedHeaders::Empty => {}
        RecordedHeaders::Stream { path, headers } => {
            for fh in headers {
                match fh {
                    Ok(fh) => cx.header(fh),
                    Err(e) => {
                        cx.report.notes.push(format!(
                            "{}: tar-split unreadable after {} entries: {e}; the rest was not audited",
                            path.display(),
                            cx.report.entries
                        ));
                        return cx.report;
                    }
                }
            }
        }
    }
    cx.finish_deferred();
    if match cx.source.metadata(&cx.root) {
        Ok(m) => m.is_dir(),
        Err(_) => false,
    } {
        if !cx.listing_complete {
            // Names were not kept: nothing to compare the walk with.
        } else if snapshot {
            let parent_root = parent_root.clone();
            cx.walk_snapshot(&[], parent_root.as_deref(), false);
        } else {
            cx.walk_own(&[]);
        }
    } else {
        let root = cx.root.clone();
        cx.push(
            &[],
            AuditKind::Missing,
            format!("the layer directory {}", root.display()),
            "nothing".into(),
        );
    }
    let mut r = cx.report;
    r.findings
        .sort_by(|a, b| (a.path_bytes.as_slice(), a.kind).cmp(&(b.path_bytes.as_slice(), b.kind)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        assert_eq!(clean(b"./a//b/"), b"a/b");
        assert_eq!(clean(b"../../etc/x"), b"etc/x");
        assert_eq!(clean(b"./"), b"");
        assert_eq!(split_parent(b"a/b/.wh.c"), (&b"a/b"[..], &b".wh.c"[..]));
    }

    #[test]
    fn clamp() {
        assert_eq!(chtimes_clamp(-5), 0);
        assert_eq!(chtimes_clamp(5), 5);
    }
}
