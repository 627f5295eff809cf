//! The engine-neutral model of a container host.
//!
//! A [`Host`] holds every store found in the evidence — a host can hold several: Docker's
//! graphdriver store, Docker's containerd image store, a Kubernetes node's containerd,
//! rootful and rootless Podman — each an implementation of one trait, [`ContainerStore`],
//! over engine-neutral records:
//!
//! * [`ImageRecord`]: id, names, digests, its layers in rootfs order; config bytes and, where
//!   the engine keeps one, the manifest ([`ContainerStore::config_bytes`],
//!   [`ContainerStore::manifest_bytes`]).
//! * [`LayerRecord`]: diff_id, chain id where the engine has one, recorded size, and how its
//!   content is proven ([`LayerProof`]: a tar-split rebuild, the compressed blob's digest,
//!   or unprovable).
//! * [`ContainerRecord`]: config, state, rw layer, logs. [`VolumeRecord`]: volumes.
//! * [`Problem`]: metadata that could not be read, naming the file.
//!
//! Consumers (verify, the audit, timeline, export, diff) ask a store for a layer's proven
//! content ([`ContainerStore::rebuild_layer`]: tar-split reassembly or a copy of the blob,
//! hashed against the diff_id, [`RebuildReport`]), for a layer's files as a view
//! ([`ContainerStore::layer_view`]: a [`Source`], a root, lower layers, the whiteout style)
//! and for the tar headers the engine recorded ([`ContainerStore::recorded_headers`], what
//! the tamper audit compares the files with). No consumer needs an engine's own types.
//!
//! Layer and image ids are the store's own keys (`sha256:<hex>` chain ids for Docker's
//! graphdriver, layer ids for containers/storage, snapshot keys for containerd): they are
//! only compared for equality within one store.
//!
//! # Example
//!
//! A new engine plugs in by implementing [`ContainerStore`]; consumers only see the trait
//! and the records. Here an in-memory store with one image and nothing else, in a [`Host`]:
//!
//! ```
//! use std::io::{self, Write};
//! use std::sync::Arc;
//! use salvor_model::*;
//!
//! struct Tiny { source: Arc<dyn Source>, config: Arc<Vec<u8>> }
//!
//! impl ContainerStore for Tiny {
//!     fn identity(&self) -> StoreIdentity {
//!         StoreIdentity { engine: EngineKind::Podman, namespace: None,
//!             root: "var/lib/containers/storage".into(), driver: "overlay".into(),
//!             rootless_owner: None }
//!     }
//!     fn as_any(&self) -> &dyn std::any::Any { self }
//!     fn source(&self) -> &Arc<dyn Source> { &self.source }
//!     fn images(&self) -> Vec<ImageRecord> {
//!         vec![ImageRecord { id: "sha256:1".into(), names: vec!["tiny:1".into()],
//!             digests: vec![], layers: vec![], created: None, config_as_stored: true,
//!             config_path: None }]
//!     }
//!     fn layers(&self) -> Vec<LayerRecord> { vec![] }
//!     fn layer(&self, _id: &str) -> Option<LayerRecord> { None }
//!     fn containers(&self) -> Result<Vec<ContainerRecord>, ModelError> { Ok(vec![]) }
//!     fn volumes(&self) -> Result<Vec<VolumeRecord>, ModelError> { Ok(vec![]) }
//!     fn problems(&self) -> Vec<Problem> { vec![] }
//!     fn damage(&self) -> Vec<EvidenceDamage> { vec![] }
//!     fn config_bytes(&self, _id: &str) -> Result<Arc<Vec<u8>>, ModelError> {
//!         Ok(self.config.clone())
//!     }
//!     fn manifest_bytes(&self, _id: &str) -> Result<Option<Vec<u8>>, ModelError> { Ok(None) }
//!     fn rebuild_layer(&self, id: &str, _out: &mut dyn Write) -> io::Result<RebuildReport> {
//!         Ok(self.verify_layer(id))
//!     }
//!     fn verify_layer(&self, id: &str) -> RebuildReport {
//!         RebuildReport { chain_id: id.into(), diff_id: None, actual: None, as_found: None,
//!             bytes: 0, files: 0, status: RebuildStatus::Unrebuildable, findings: vec![],
//!             error: Some(format!("no layer {id}")) }
//!     }
//!     fn layer_view(&self, id: &str) -> Result<LayerView, ModelError> {
//!         Err(ModelError::NotFound(format!("no layer {id}")))
//!     }
//!     fn recorded_headers(&self, id: &str) -> RecordedHeaders {
//!         RecordedHeaders::Unavailable { reason: format!("no layer {id}") }
//!     }
//!     fn rw_layer_view(&self, id: &str) -> Result<LayerView, ModelError> {
//!         Err(ModelError::NotFound(format!("no container {id}")))
//!     }
//! }
//!
//! let source = Arc::new(salvor_source::DirSource::new(env!("CARGO_MANIFEST_DIR").as_ref())?);
//! let host = Host::new(vec![Box::new(Tiny { source, config: Arc::new(b"{}".to_vec()) })]);
//! assert_eq!(host.identities()[0].to_string(), "podman at var/lib/containers/storage (overlay)");
//! let found = host.find_image("sha256:1");
//! assert_eq!((found[0].0, found[0].1.names.as_slice()), (0, &["tiny:1".to_string()][..]));
//! assert_eq!(host.stores[0].image_layers("sha256:1")?, vec![]);
//! assert!(host.stores[0].layer_view("x").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use salvor_oci::{ChainId, DiffId, Digest};
pub use salvor_source::{EvidenceDamage, Source, Timestamp};
pub use salvor_whiteout::WhiteoutStyle;

/// An error and its causes on one line, each cause once: the one helper, re-exported from
/// [`salvor_source::error_chain`] for engine crates that render problems.
pub use salvor_source::error_chain;

/// Which engine wrote a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EngineKind {
    /// Docker's graphdriver store (`image/<driver>/…`, `graph/`).
    Docker,
    /// Docker with the containerd image store (namespace `moby`).
    DockerContainerd,
    /// A standalone containerd (Kubernetes nodes, `ctr`).
    Containerd,
    /// containers/storage written by Podman (or Buildah).
    Podman,
    /// containers/storage written by CRI-O.
    CriO,
}

impl EngineKind {
    /// The engine's name as salvor prints and serialises it: `docker`, `docker-containerd`,
    /// `containerd`, `podman`, `cri-o`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::DockerContainerd => "docker-containerd",
            EngineKind::Containerd => "containerd",
            EngineKind::Podman => "podman",
            EngineKind::CriO => "cri-o",
        }
    }

    /// The engine named `s` ([`EngineKind::as_str`]), if any.
    pub fn from_name(s: &str) -> Option<EngineKind> {
        [
            EngineKind::Docker,
            EngineKind::DockerContainerd,
            EngineKind::Containerd,
            EngineKind::Podman,
            EngineKind::CriO,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for EngineKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EngineKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EngineKind::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown engine {s:?}")))
    }
}

/// Which version of an engine wrote a store, and how salvor knows: engines change the
/// bytes they write between versions (Docker 23 dropped the file-type bits from tar
/// headers' mode field and the user-name lookups), so output meant to equal the engine's
/// follows the version that wrote the evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineVersion {
    /// What is known: an exact version (`26.1.5+dfsg1`), or a bound (`>= 25`, `<= 22`).
    pub version: String,
    /// The major and minor version: exact, or the bound.
    pub major: u32,
    /// See [`EngineVersion::major`].
    pub minor: u32,
    /// Whether `major.minor` is exact, a lower or an upper bound.
    pub bound: VersionBound,
    /// How it was found, in words (`dpkg status: docker.io 26.1.5+dfsg1-9`, `data-root:
    /// engine-id file, ImageManifest in containers' config.v2.json`, `--engine-version`).
    pub found_by: String,
}

/// How [`EngineVersion::major`]/[`EngineVersion::minor`] relate to the real version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionBound {
    /// The version itself.
    Exact,
    /// The version is at least this (from layout markers the engine introduced).
    AtLeast,
    /// The version is at most this (markers the engine removed later are present).
    AtMost,
}

impl EngineVersion {
    /// An exact version from a version string (`26.1.5+dfsg1`, `20.10.24~3-0~debian`,
    /// `v24.0.7`); `None` when it does not start with `MAJOR.MINOR`.
    pub fn exact(text: &str, found_by: impl Into<String>) -> Option<EngineVersion> {
        let t = text.trim().trim_start_matches('v');
        let mut it = t.split(|c: char| !c.is_ascii_digit());
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        // the separator after MAJOR must be a dot
        if t.as_bytes().get(t.find(|c: char| !c.is_ascii_digit())?) != Some(&b'.') {
            return None;
        }
        Some(EngineVersion {
            version: t.to_string(),
            major,
            minor,
            bound: VersionBound::Exact,
            found_by: found_by.into(),
        })
    }

    /// Whether the version is known to be at least `major.minor`: `Some(true)`/`Some(false)`
    /// when the evidence says so, `None` when a bound leaves it open.
    pub fn at_least(&self, major: u32, minor: u32) -> Option<bool> {
        let ge = (self.major, self.minor) >= (major, minor);
        match self.bound {
            VersionBound::Exact => Some(ge),
            VersionBound::AtLeast => ge.then_some(true),
            VersionBound::AtMost => ((self.major, self.minor) < (major, minor)).then_some(false),
        }
    }
}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.version, self.found_by)
    }
}

/// Which store this is: engine, namespace, where it lives, its storage driver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreIdentity {
    /// The engine that wrote it.
    pub engine: EngineKind,
    /// containerd namespace (`moby`, `k8s.io`, `default`); `None` for engines without.
    pub namespace: Option<String>,
    /// The store's root inside the evidence (Docker's data-root, containerd's root,
    /// containers/storage's graphroot); `""` when the evidence is the root itself.
    pub root: PathBuf,
    /// The storage driver or snapshotter (`overlay2`, `overlayfs`, `overlay`, `vfs` …).
    pub driver: String,
    /// The owning user's uid of a rootless store; `None` when rootful.
    pub rootless_owner: Option<u32>,
}

impl fmt::Display for StoreIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.engine)?;
        if let Some(ns) = &self.namespace {
            write!(f, " (namespace {ns})")?;
        }
        write!(f, " at {} ({})", show_root(&self.root), self.driver)?;
        if let Some(uid) = self.rootless_owner {
            write!(f, ", rootless uid {uid}")?;
        }
        Ok(())
    }
}

fn show_root(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".into()
    } else {
        p.display().to_string()
    }
}

/// A piece of evidence that could not be read or does not add up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Problem {
    /// The file or directory it is about (relative to the evidence root).
    pub path: PathBuf,
    /// What is wrong with it.
    pub what: String,
}

/// How a layer's content can be proven byte-exact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerProof {
    /// The engine kept a tar-split (Docker graphdriver, containers/storage): the layer's
    /// exact tar is reassembled from it and the layer's files, and hashed to the diff_id.
    TarSplit,
    /// The engine kept the compressed layer blob (containerd's content store): its sha256
    /// proves the distribution digest, its decompressed sha256 the diff_id.
    Blob {
        /// The blob's digest.
        digest: Digest,
        /// The blob's media type (`application/vnd.oci.image.layer.v1.tar+gzip` …).
        media_type: String,
    },
    /// Nothing on the evidence can prove the content (no tar-split, blob discarded).
    Unprovable {
        /// Why.
        why: String,
    },
}

/// One read-only image layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LayerRecord {
    /// The store's key for the layer (Docker: the chain id).
    pub id: String,
    /// The digest of the uncompressed layer tar, when known (and well-formed).
    pub diff_id: Option<DiffId>,
    /// The OCI chain id, where the engine keys layers by it.
    pub chain_id: Option<ChainId>,
    /// The parent layer's [`id`](Self::id).
    pub parent: Option<String>,
    /// The size the engine recorded (bytes of the layer's files, or of its tar).
    pub size: Option<u64>,
    /// How the content is proven.
    pub proof: LayerProof,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRecord {
    /// The image id as the engine shows it (`sha256:<hex>`: the config digest for Docker's
    /// graphdriver and containers/storage, the manifest digest for containerd).
    pub id: String,
    /// Names (tags) in familiar form (`busybox:latest`).
    pub names: Vec<String>,
    /// Digest references (`busybox@sha256:…`).
    pub digests: Vec<String>,
    /// The image's layers ([`LayerRecord::id`]) in rootfs order.
    pub layers: Vec<String>,
    /// The config's `created`, as written.
    pub created: Option<String>,
    /// `true` when the config bytes are the engine's (they can be hashed to the id);
    /// `false` when salvor synthesised them (Docker's pre-1.10 layout).
    pub config_as_stored: bool,
    /// Where the config bytes are, when they are one file of the evidence.
    pub config_path: Option<PathBuf>,
}

/// A container's state as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContainerStatus {
    /// `running`, `exited`, `created`, `paused`, `restarting`, `dead` …
    pub status: String,
    /// The engine thought the container was running when the host stopped.
    pub running: bool,
    /// Exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Process id while running.
    pub pid: Option<i64>,
    /// `started_at`, as written.
    pub started_at: Option<String>,
    /// `finished_at`, as written.
    pub finished_at: Option<String>,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerRecord {
    /// Full id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// The image it was created from, as the engine recorded it (id or reference).
    pub image: String,
    /// Creation time, as written.
    pub created: Option<String>,
    /// State.
    pub state: ContainerStatus,
    /// The container's read-write layer, when the store knows it.
    pub rw_layer: Option<String>,
    /// The engine's record of the container (`config.v2.json`, `config.json` …).
    pub config_path: Option<PathBuf>,
    /// The log files the engine wrote for it (current first), when known.
    pub log_paths: Vec<PathBuf>,
    /// The command it runs (entrypoint and arguments, joined by spaces as `docker ps`
    /// shows them), when recorded.
    pub command: Option<String>,
    /// Its labels (Kubernetes' `io.kubernetes.pod.name` … for CRI containers).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeRecord {
    /// Name.
    pub name: String,
    /// Volume driver (`local` …).
    pub driver: String,
    /// Where its data is in the evidence (`volumes/<name>/_data`), when local.
    pub data: Option<PathBuf>,
}

/// Where a layer's files are and what shape they have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewFiles {
    /// The layer's own changes in `dir` (overlay `diff/`, aufs `diff/<id>`, overlay v1
    /// `upper/`), deletions marked in `style`; `lowers` = the lower layers' directories,
    /// nearest first (the merged view the engine would mount).
    Diff {
        /// The layer's own directory.
        dir: PathBuf,
        /// Lower layers' directories, nearest first.
        lowers: Vec<PathBuf>,
        /// How deletions are marked.
        style: WhiteoutStyle,
    },
    /// A full root filesystem of the layer (vfs, btrfs, zfs, overlay v1 `root/`, a
    /// devicemapper thin device's `rootfs/`).
    Snapshot {
        /// The layer's root filesystem.
        root: PathBuf,
        /// The layer has a parent.
        has_parent: bool,
        /// The parent layer's snapshot, when it has one and it is available (what the layer
        /// inherited, to tell its own changes).
        parent_root: Option<PathBuf>,
    },
    /// The files cannot be reached offline (the reason says why).
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// A layer's files as a view: a filesystem, where the layer is in it, its shape.
#[derive(Clone)]
pub struct LayerView {
    /// The filesystem the paths are in (the evidence, or one inside it such as a thin
    /// device's).
    pub source: Arc<dyn Source>,
    /// The layer's files.
    pub files: ViewFiles,
    /// uid/gid offset the engine added on disk (Docker userns-remap, rootless storage):
    /// on-disk owner = recorded owner + offset.
    pub id_offset: (i64, i64),
    /// When the files are there but cannot be compared with the record file by file (the
    /// reason says why; content is still proven by [`ContainerStore::rebuild_layer`]).
    pub not_auditable: Option<String>,
}

impl fmt::Debug for LayerView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerView")
            .field("source", &self.source.describe())
            .field("files", &self.files)
            .field("id_offset", &self.id_offset)
            .field("not_auditable", &self.not_auditable)
            .finish()
    }
}

impl LayerView {
    /// The layer's own directory (not its lowers), `None` when unavailable.
    pub fn own_root(&self) -> Option<&Path> {
        match &self.files {
            ViewFiles::Diff { dir, .. } => Some(dir),
            ViewFiles::Snapshot { root, .. } => Some(root),
            ViewFiles::Unavailable { .. } => None,
        }
    }

    /// The layer's own directory as a [`salvor_whiteout::LayerDir`] (deletions in its style).
    pub fn layer_dir(&self) -> Option<salvor_whiteout::LayerDir<'_>> {
        match &self.files {
            ViewFiles::Diff { dir, style, .. } => Some(salvor_whiteout::LayerDir::new(
                self.source.as_ref(),
                dir,
                *style,
            )),
            ViewFiles::Snapshot { root, .. } => Some(salvor_whiteout::LayerDir::new(
                self.source.as_ref(),
                root,
                WhiteoutStyle::Snapshot,
            )),
            ViewFiles::Unavailable { .. } => None,
        }
    }
}

/// The file headers of a layer's tar stream as the engine recorded them.
pub type HeaderStream = Box<
    dyn Iterator<Item = Result<salvor_tarsplit::FileHeader, salvor_tarsplit::TarSplitError>> + Send,
>;

/// What the engine recorded of a layer's tar headers (the tamper audit's reference).
pub enum RecordedHeaders {
    /// The headers, streamed from `path`.
    Stream {
        /// The file they come from (a tar-split, a blob).
        path: PathBuf,
        /// The headers in stream order.
        headers: HeaderStream,
    },
    /// The well-known empty layer: no entries.
    Empty,
    /// Nothing to compare with (no tar-split, unreadable record): the reason says why.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl fmt::Debug for RecordedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordedHeaders::Stream { path, .. } => {
                f.debug_struct("Stream").field("path", path).finish()
            }
            RecordedHeaders::Empty => f.write_str("Empty"),
            RecordedHeaders::Unavailable { reason } => f
                .debug_struct("Unavailable")
                .field("reason", reason)
                .finish(),
        }
    }
}

/// How a rebuild ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebuildStatus {
    /// sha256 of the rebuilt stream equals the diff id and every file's CRC matched.
    Verified,
    /// The stream was rebuilt but its sha256 is not the diff id (findings say why).
    Mismatch,
    /// The layer could not be rebuilt at all (no tar-split, unreadable tar-split).
    Unrebuildable,
}

/// What happened when one layer's content was proven.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildReport {
    /// The layer's key in its store ([`LayerRecord::id`]; Docker: the chain id).
    pub chain_id: String,
    /// The diff_id the stream is checked against.
    pub diff_id: Option<String>,
    /// `sha256:<hex>` of the stream actually produced: the recorded entries with the files'
    /// bytes cut or zero-padded to their **recorded** sizes, so a file that grew can still
    /// give `actual == diff_id` (its size finding then decides the verdict).
    pub actual: Option<String>,
    /// `sha256:<hex>` of the layer as the disk holds it now (every file with its current
    /// bytes and size, planted files included, missing ones absent), computed when the layer
    /// does not verify and its files can be read. This is the digest `extract --force`
    /// gives the layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_found: Option<String>,
    /// Bytes of the stream.
    pub bytes: u64,
    /// Files in the stream.
    pub files: u64,
    /// The verdict.
    pub status: RebuildStatus,
    /// Per-file findings (missing, changed, …), in stream order.
    pub findings: Vec<FileFinding>,
    /// Why the layer is unrebuildable, when it is.
    pub error: Option<String>,
}

impl RebuildReport {
    /// True when some finding is more than a recovered lossy name (which changes nothing
    /// in the stream).
    pub fn has_real_findings(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind != FileFindingKind::LossyNameRecovered)
    }
}

/// The kind of a per-file content finding, serialised in kebab-case (`content-changed` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileFindingKind {
    /// The file is not on disk.
    Missing,
    /// The name is there but not a regular file.
    NotRegular,
    /// Its size differs from the record.
    SizeChanged,
    /// Its CRC-64 differs from the record.
    ContentChanged,
    /// It could not be read.
    ReadError,
    /// A sparse entry this build cannot rebuild.
    SparseUnsupported,
    /// The stored name was lossy and was recovered from the raw header (no change).
    LossyNameRecovered,
    /// The record claims more than the disk holds.
    Amplification,
}

impl FileFindingKind {
    /// The kind as serialised: `missing`, `not-regular`, `size-changed`, `content-changed`,
    /// `read-error`, `sparse-unsupported`, `lossy-name-recovered`, `amplification`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFindingKind::Missing => "missing",
            FileFindingKind::NotRegular => "not-regular",
            FileFindingKind::SizeChanged => "size-changed",
            FileFindingKind::ContentChanged => "content-changed",
            FileFindingKind::ReadError => "read-error",
            FileFindingKind::SparseUnsupported => "sparse-unsupported",
            FileFindingKind::LossyNameRecovered => "lossy-name-recovered",
            FileFindingKind::Amplification => "amplification",
        }
    }
}

impl fmt::Display for FileFindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One per-file finding, serialisable.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileFinding {
    /// The file name as stored (lossy UTF-8 for display; `name_hex` is exact).
    pub path: String,
    /// The name's bytes in hex when they are not UTF-8.
    pub name_hex: Option<String>,
    /// What is wrong.
    pub kind: FileFindingKind,
    /// Details (expected and found).
    pub detail: String,
}

/// An error of a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// An image, layer or container the store does not hold.
    #[error("{0}")]
    NotFound(String),
    /// The engine's reader failed.
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync>),
}

/// One store of a host, whatever engine wrote it.
pub trait ContainerStore: Send + Sync {
    /// Which store this is.
    fn identity(&self) -> StoreIdentity;
    /// The store as its own type, for what only that engine has (a façade asking the
    /// Docker store for `docker inspect`'s fields): `store.as_any().downcast_ref::<T>()`.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The evidence the store was read from.
    fn source(&self) -> &Arc<dyn Source>;
    /// The version of the engine that wrote the store, as far as known.
    fn engine_version(&self) -> Option<EngineVersion> {
        None
    }
    /// Images, sorted by id.
    fn images(&self) -> Vec<ImageRecord>;
    /// Every layer of the store, sorted by id.
    fn layers(&self) -> Vec<LayerRecord>;
    /// The layer `id`, if the store holds it.
    fn layer(&self, id: &str) -> Option<LayerRecord>;
    /// The layers of image `image_id` in rootfs order; a missing one is an error naming it.
    fn image_layers(&self, image_id: &str) -> Result<Vec<LayerRecord>, ModelError> {
        let img = self
            .images()
            .into_iter()
            .find(|i| i.id == image_id)
            .ok_or_else(|| ModelError::NotFound(format!("no image {image_id}")))?;
        img.layers
            .iter()
            .map(|l| {
                self.layer(l).ok_or_else(|| {
                    ModelError::NotFound(format!(
                        "image {image_id}: layer {l} is not in the layer store"
                    ))
                })
            })
            .collect()
    }
    /// Containers, read on demand.
    fn containers(&self) -> Result<Vec<ContainerRecord>, ModelError>;
    /// Volumes, read on demand.
    fn volumes(&self) -> Result<Vec<VolumeRecord>, ModelError>;
    /// Metadata that could not be read or does not add up, sorted.
    fn problems(&self) -> Vec<Problem>;
    /// Damage of the evidence itself (a cut archive or disk image).
    fn damage(&self) -> Vec<EvidenceDamage>;
    /// The config bytes of image `image_id`, as stored.
    fn config_bytes(&self, image_id: &str) -> Result<Arc<Vec<u8>>, ModelError>;
    /// The manifest bytes of image `image_id`, where the engine keeps one.
    fn manifest_bytes(&self, image_id: &str) -> Result<Option<Vec<u8>>, ModelError>;
    /// Streams layer `layer_id`'s proven content into `out` (tar-split reassembly or a copy
    /// of the decompressed blob), hashed and checked against its diff_id. `Err` only when
    /// writing to `out` failed; a layer that cannot be proven is an
    /// [`RebuildStatus::Unrebuildable`] report.
    fn rebuild_layer(&self, layer_id: &str, out: &mut dyn Write) -> io::Result<RebuildReport>;
    /// [`rebuild_layer`](Self::rebuild_layer) into nothing: the verdict alone.
    fn verify_layer(&self, layer_id: &str) -> RebuildReport;
    /// Layer `layer_id`'s files.
    fn layer_view(&self, layer_id: &str) -> Result<LayerView, ModelError>;
    /// The tar headers the engine recorded for layer `layer_id`.
    fn recorded_headers(&self, layer_id: &str) -> RecordedHeaders;
    /// Container `container_id`'s read-write layer over its image's layers.
    fn rw_layer_view(&self, container_id: &str) -> Result<LayerView, ModelError>;
    /// Container `container_id`'s init layer (the `/etc/hosts`, `/etc/resolv.conf`
    /// placeholders the engine wrote when it created the container), `None` when the engine
    /// keeps none.
    fn init_layer_view(&self, container_id: &str) -> Result<Option<LayerView>, ModelError> {
        let _ = container_id;
        Ok(None)
    }
    /// The image container `container_id` was created from as the user named it
    /// (`busybox`, `salvor/app:1`, an id), when the engine recorded it.
    fn container_image_name(&self, container_id: &str) -> Option<String> {
        let _ = container_id;
        None
    }
    /// Container `container_id`'s log lines, oldest file first, as the engine wrote them; an
    /// engine that keeps no logs gives none.
    fn container_logs(&self, container_id: &str) -> Result<LogLines<'_>, ModelError> {
        let _ = container_id;
        Ok(Box::new(std::iter::empty()))
    }
    /// When image `image_id` was last pulled, loaded or tagged, where the engine records it:
    /// `Ok(None)` when it does not, `Err` (naming the file) when the record is unreadable.
    fn image_last_updated(&self, image_id: &str) -> Result<Option<RecordedTime>, Problem> {
        let _ = image_id;
        Ok(None)
    }
    /// Where the engine keeps layer `layer_id`'s metadata (a directory or file of the
    /// evidence), what problems about the layer name; `None` when unknown.
    fn layer_meta_path(&self, layer_id: &str) -> Option<PathBuf> {
        let _ = layer_id;
        None
    }
    /// How the engine laid out this store, for people (`v2 (image/<driver>/imagedb …)`),
    /// when it has more than one layout.
    fn layout_description(&self) -> Option<String> {
        None
    }
    /// True when image `image_id` is an index (a manifest list) whose bytes hash to its id
    /// and which lists the manifest `manifest_digest`: the id is then proven through it.
    fn index_lists(&self, image_id: &str, manifest_digest: &str) -> bool {
        let _ = (image_id, manifest_digest);
        false
    }
    /// The size of image `image_id` as the engine reports it (bytes), when known.
    fn image_size(&self, image_id: &str) -> Option<u64> {
        let _ = image_id;
        None
    }
    /// What a case report says of each volume beyond its record, in [`volumes`](Self::volumes)
    /// order.
    fn volume_details(&self) -> Vec<VolumeDetails> {
        Vec::new()
    }
    /// The containers' bind mounts (host paths), in the engine's order.
    fn bind_mounts(&self) -> Vec<BindMountRecord> {
        Vec::new()
    }
    /// The store described in the engine's own shape, for a case report's `inventory.json`:
    /// a JSON object. The default is the engine-neutral records.
    fn inventory_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("evidence".into(), self.source().describe().into());
        m.insert(
            "identity".into(),
            serde_json::to_value(self.identity()).unwrap_or_default(),
        );
        m.insert(
            "images".into(),
            serde_json::to_value(self.images()).unwrap_or_default(),
        );
        m.insert(
            "layers".into(),
            serde_json::to_value(self.layers()).unwrap_or_default(),
        );
        m.insert(
            "containers".into(),
            serde_json::to_value(self.containers().unwrap_or_default()).unwrap_or_default(),
        );
        m.insert(
            "volumes".into(),
            serde_json::to_value(self.volumes().unwrap_or_default()).unwrap_or_default(),
        );
        let mut problems = self.problems();
        problems.extend(self.container_problems());
        problems.extend(self.volume_problems());
        problems.sort();
        problems.dedup();
        m.insert(
            "problems".into(),
            serde_json::to_value(problems).unwrap_or_default(),
        );
        serde_json::Value::Object(m)
    }
    /// Problems met reading the containers (records that could not be read), sorted.
    fn container_problems(&self) -> Vec<Problem> {
        Vec::new()
    }
    /// Problems met reading the volumes, sorted.
    fn volume_problems(&self) -> Vec<Problem> {
        Vec::new()
    }
}

/// What a case report says of a volume beyond its [`VolumeRecord`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VolumeDetails {
    /// The volume's name.
    pub name: String,
    /// When it was created, as the engine reports it (RFC 3339).
    pub created_at: Option<String>,
    /// The containers that mount it: (container name, destination in the container).
    pub used_by: Vec<(String, String)>,
}

/// One bind mount of a container (a host path, never followed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BindMountRecord {
    /// The container's name.
    pub container_name: String,
    /// The host path as stored.
    pub source: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// The host path is inside the evidence.
    pub inside_evidence: bool,
}

/// A log stream of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the engine received it, `None` when the entry has no readable time.
    pub time: Option<Timestamp>,
    /// The stream the container wrote it to.
    pub stream: LogStream,
    /// The bytes the container wrote (newline included where the engine kept one).
    pub line: Vec<u8>,
    /// The log file it was read from (relative to the evidence root).
    pub file: PathBuf,
    /// Its offset in the file's decompressed bytes.
    pub offset: u64,
}

/// A container's log lines ([`ContainerStore::container_logs`]); an unreadable file or entry
/// is an error item, and the lines after it still come.
pub type LogLines<'a> = Box<dyn Iterator<Item = Result<LogLine, ModelError>> + Send + 'a>;

/// A time the engine recorded in a file of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTime {
    /// The time.
    pub time: Timestamp,
    /// The file it was read from (relative to the evidence root).
    pub path: PathBuf,
}

/// Every store found in the evidence.
#[derive(Default)]
pub struct Host {
    /// The stores, in the order they were found.
    pub stores: Vec<Box<dyn ContainerStore>>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.stores.iter().map(|s| s.identity().to_string()))
            .finish()
    }
}

impl Host {
    /// A host of these stores.
    pub fn new(stores: Vec<Box<dyn ContainerStore>>) -> Host {
        Host { stores }
    }

    /// Every store's identity, in order.
    pub fn identities(&self) -> Vec<StoreIdentity> {
        self.stores.iter().map(|s| s.identity()).collect()
    }

    /// Every image of every store, with the index of its store.
    pub fn images(&self) -> Vec<(usize, ImageRecord)> {
        self.stores
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.images().into_iter().map(move |r| (i, r)))
            .collect()
    }

    /// The stores holding an image with id `id` (the same image can be in several).
    pub fn find_image(&self, id: &str) -> Vec<(usize, ImageRecord)> {
        self.images()
            .into_iter()
            .filter(|(_, r)| r.id == id)
            .collect()
    }

    /// Every container of every store, with the index of its store; a store whose
    /// containers cannot be read gives its error instead.
    pub fn containers(&self) -> Vec<(usize, Result<Vec<ContainerRecord>, ModelError>)> {
        self.stores
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.containers()))
            .collect()
    }

    /// The stores holding a container whose id starts with `prefix` or whose name is it.
    pub fn find_container(&self, query: &str) -> Vec<(usize, ContainerRecord)> {
        let q = query.trim().trim_start_matches('/');
        let mut out = Vec::new();
        for (i, r) in self.containers() {
            for c in r.into_iter().flatten() {
                if !q.is_empty() && (c.id.starts_with(q) || c.name == q) {
                    out.push((i, c));
                }
            }
        }
        out
    }

    /// Every problem of every store, with the index of its store.
    pub fn problems(&self) -> Vec<(usize, Problem)> {
        self.stores
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.problems().into_iter().map(move |p| (i, p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_round_trip() {
        for e in [
            EngineKind::Docker,
            EngineKind::DockerContainerd,
            EngineKind::Containerd,
            EngineKind::Podman,
            EngineKind::CriO,
        ] {
            let j = serde_json::to_string(&e).unwrap();
            assert_eq!(j, format!("\"{e}\""));
            assert_eq!(serde_json::from_str::<EngineKind>(&j).unwrap(), e);
        }
        assert_eq!(EngineKind::CriO.to_string(), "cri-o");
        assert!(EngineKind::from_name("rkt").is_none());
    }

    #[test]
    fn finding_kinds_serialise_as_before() {
        for k in [
            FileFindingKind::Missing,
            FileFindingKind::NotRegular,
            FileFindingKind::SizeChanged,
            FileFindingKind::ContentChanged,
            FileFindingKind::ReadError,
            FileFindingKind::SparseUnsupported,
            FileFindingKind::LossyNameRecovered,
            FileFindingKind::Amplification,
        ] {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
    }

    #[test]
    fn proof_json() {
        let p = LayerProof::Blob {
            digest: Digest::sha256_of(b""),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"kind":"blob","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","media_type":"application/vnd.oci.image.layer.v1.tar+gzip"}"#
        );
    }
}
