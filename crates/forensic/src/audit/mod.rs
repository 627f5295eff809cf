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

mod record;
mod walk;

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
    /// Size differs (paths inherited from the parent snapshot; and listed regular files of
    /// a layer proven by its blob — a tar-split layer's are checked by the rebuild).
    SizeChanged,
    /// A listed regular file's bytes do not hash to the CRC-64 of its member in the layer's
    /// blob (layers proven by their blob: the rebuild proves the blob, this the snapshot's
    /// files).
    ContentChanged,
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
            AuditKind::ContentChanged => "content-changed",
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
    /// The layer is proven by its blob, not rebuilt from these files: each listed regular
    /// file's size and content are compared with its member's too.
    check_content: bool,
    /// The CRC-64 of the entry being compared, from the record.
    entry_crc: Option<[u8; 8]>,
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
                self.push(
                    rel,
                    AuditKind::ReadError,
                    "readable".into(),
                    salvor_model::error_chain(&e),
                );
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

    fn flag(&self, p: &[u8]) -> u8 {
        self.listed.get(p).copied().unwrap_or(0)
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
            report
                .notes
                .push(format!("not audited: {}", salvor_model::error_chain(&e)));
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
        check_content: store
            .layer(layer_id)
            .is_some_and(|l| matches!(l.proof, salvor_model::LayerProof::Blob { .. })),
        entry_crc: None,
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
                            "{}: tar-split unreadable after {} entries: {}; the rest was not audited",
                            path.display(),
                            cx.report.entries,
                            salvor_model::error_chain(&e),
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
