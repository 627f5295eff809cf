//! The Docker data-root as a model.
//!
//! [`Store::open`] takes any [`salvor_source::Source`] (a mounted directory, a tar archive of
//! one, later a filesystem inside a disk image), finds the data-root in it ([`locate`]), and
//! reads Docker's metadata into plain values:
//!
//! * [`Layout`]: the v2 layout (`image/<driver>/{imagedb,layerdb,repositories.json}`, Docker ≥
//!   1.10) or the pre-1.10 `graph/` layout, read as the 1.10 migration would have read it.
//! * [`Driver`]: which storage driver holds the layer files, and [`LayerFiles`]: where one
//!   layer's files live in it (overlay2 `diff/` plus lowers, aufs `diff/`, a full snapshot …).
//! * [`Image`], [`Layer`] (keyed by chain id), tags ([`reference`](mod@reference) normalises `busybox` to
//!   `docker.io/library/busybox:latest` the way the engine does).
//! * [`Problem`]: every piece of metadata that could not be read, naming the file. Loading
//!   never stops at the first bad file: the rest of the evidence is still modelled.
//!
//! [`rebuild`] turns a [`Layer`] back into its exact tar stream: it streams the layer's
//! tar-split through [`salvor_tarsplit::assemble`], reading file data through a
//! [`rebuild::LayerFileGetter`] that resolves every name *inside* the layer's directory, and
//! hashes the output to check it against the layer's diff_id.
//!
//! [`model`]: the store as an implementation of the engine-neutral
//! [`salvor_model::ContainerStore`] (layer views and recorded tar headers for the tamper audit
//! of `salvor-forensic`, proven layer content, records of images, layers, containers,
//! volumes).
//!
//! Containers, their logs and volumes are read on demand (not in [`Store::open`]):
//! [`containers`] ([`Store::containers`], [`Store::find_container`]; a [`Container`] from
//! `containers/<id>/config.v2.json` + `hostconfig.json` or the pre-1.10 `config.json`, and its
//! [`RwLayer`]: mount id, init id, image top chain id and where the files are), [`logs`]
//! (json-file and `local` logs, rotated and gzip'd, streamed like `docker logs`) and
//! [`volumes`] ([`Store::volumes`], [`Store::bind_mounts`]: bind sources are host paths,
//! reported and never followed out of the evidence).
//!
//! # Example
//!
//! The overlay2 data-root a real engine left (a committed fixture, read as an archive):
//! its images with their tags, and one layer rebuilt byte-exact from its tar-split and
//! checked against its diff_id.
//!
//! ```
//! use std::sync::Arc;
//! use salvor_docker::{Driver, Layout, RebuildStatus, Store};
//!
//! let archive = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/engine/overlay2/data-root.tar.zst");
//! let source = salvor_source::TarSource::open(std::path::Path::new(archive))?;
//! let store = Store::open(Arc::new(source))?;
//! assert_eq!((store.layout, &store.driver), (Layout::V2, &Driver::Overlay2));
//!
//! let image = store.find_image("salvor/imported:1")?;
//! assert_eq!(image.short_id(), "9da4660c028a");
//! let layers = store.image_layers(image)?;
//! let report = store.verify_layer(layers[0]);
//! assert_eq!(report.status, RebuildStatus::Verified);
//! assert_eq!(report.actual, layers[0].diff_id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_source::{Source, SourceError};

pub mod containers;
pub mod devicemapper;
pub mod digest;
mod jsondup;
pub mod legacy;
pub mod locate;
pub mod logs;
pub mod model;
pub mod rebuild;
pub mod reference;
pub mod resolve;
mod time;
mod v2;
pub mod version;
pub mod volumes;

pub use containers::{Container, ContainerState, MountPoint, RwLayer};
pub use digest::{chain_id, chain_ids, sha256_hex, Digest};
pub use rebuild::{as_found_spool_limit, LayerFileGetter, SpoolError, SpooledLayer};
pub use resolve::{Candidate, Kind, ResolveError, Resolved, SaveTarget, Target, Want};
pub use salvor_model::{FileFinding, FileFindingKind, Problem, RebuildReport, RebuildStatus};
pub use time::format_rfc3339_nano_fixed;
pub use volumes::{BindMount, Volume};

/// Upper bound on metadata files we read whole (configs, JSON indexes).
pub const MAX_JSON_BYTES: u64 = 64 << 20;
/// Upper bound on one-line metadata files (`diff`, `cache-id`, `size`, `link` …).
pub const MAX_SMALL_FILE: u64 = 64 << 10;

/// Why the data-root, or a part of it, could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The evidence could not be read (the message names the file).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A metadata file is malformed.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file, relative to the evidence root.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The evidence holds no Docker data-root.
    #[error("no Docker data-root found in {evidence}: looked for {looked}")]
    NoDataRoot {
        /// The evidence as described by its source.
        evidence: String,
        /// The places searched, listed.
        looked: String,
    },
    /// An image, layer or container the store does not hold (the message names it).
    #[error("{0}")]
    NotFound(String),
    /// An argument that matches several objects (the message lists them).
    #[error("{0}")]
    Ambiguous(String),
    /// An image or container argument that names nothing, or more than one thing.
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
}

impl StoreError {
    /// A [`StoreError::Invalid`] for `path`.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which metadata layout the data-root uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `image/<driver>/…` (Docker ≥ 1.10).
    V2,
    /// `graph/<v1id>/…` + `repositories-<driver>` (Docker < 1.10).
    LegacyGraph,
}

/// A storage (graph) driver.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Driver {
    /// `overlay2`, the default on Linux.
    Overlay2,
    /// `fuse-overlayfs` (rootless engines): overlay2's layout.
    FuseOverlayfs,
    /// `overlay`, the first overlay driver (one `root/` or `upper/` per layer).
    Overlay,
    /// `aufs`: `aufs/diff/<id>` branches.
    Aufs,
    /// `vfs`: a full copy of the root filesystem per layer.
    Vfs,
    /// `btrfs`: a subvolume snapshot per layer.
    Btrfs,
    /// `zfs`: a dataset per layer (mounted under `zfs/graph/`).
    Zfs,
    /// `devicemapper`: a thin device per layer in a thin pool.
    Devicemapper,
    /// `windowsfilter` (Windows containers; not readable offline).
    Windowsfilter,
    /// Any other driver name, as found.
    Other(String),
}

impl Driver {
    /// The driver called `name` in `image/<name>/` (an unknown name is [`Driver::Other`]).
    pub fn from_name(name: &str) -> Driver {
        match name {
            "overlay2" => Driver::Overlay2,
            "fuse-overlayfs" => Driver::FuseOverlayfs,
            "overlay" => Driver::Overlay,
            "aufs" => Driver::Aufs,
            "vfs" => Driver::Vfs,
            "btrfs" => Driver::Btrfs,
            "zfs" => Driver::Zfs,
            "devicemapper" => Driver::Devicemapper,
            "windowsfilter" => Driver::Windowsfilter,
            other => Driver::Other(other.to_string()),
        }
    }
    /// The driver's name as the engine spells it (`overlay2`, `fuse-overlayfs` …).
    pub fn name(&self) -> &str {
        match self {
            Driver::Overlay2 => "overlay2",
            Driver::FuseOverlayfs => "fuse-overlayfs",
            Driver::Overlay => "overlay",
            Driver::Aufs => "aufs",
            Driver::Vfs => "vfs",
            Driver::Btrfs => "btrfs",
            Driver::Zfs => "zfs",
            Driver::Devicemapper => "devicemapper",
            Driver::Windowsfilter => "windowsfilter",
            Driver::Other(s) => s,
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Driver {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Where one layer's files live, as paths relative to the evidence root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerFiles {
    /// overlay2 / fuse-overlayfs: the layer's own `diff/`, then the lower layers' `diff/`
    /// nearest first (the merged view the engine would read through a mount).
    Overlay {
        /// `overlay2/<cache-id>/diff`.
        diff: PathBuf,
        /// The lower layers' `diff/` directories, nearest first.
        lowers: Vec<PathBuf>,
    },
    /// aufs: `aufs/diff/<id>` holds exactly the layer's files.
    Aufs {
        /// `aufs/diff/<cache-id>`.
        diff: PathBuf,
    },
    /// A full root filesystem of the layer (vfs, btrfs, zfs, overlay v1 `root/`).
    Snapshot {
        /// The snapshot's root directory (`vfs/dir/<id>`, `btrfs/subvolumes/<id>` …).
        root: PathBuf,
    },
    /// overlay v1 layer that is not a snapshot: `upper/` over the `lower-id` layer's `root/`.
    OverlayUpper {
        /// `overlay/<cache-id>/upper`.
        upper: PathBuf,
        /// `overlay/<lower-id>/root`, the snapshot it lies over.
        lower_root: PathBuf,
    },
    /// devicemapper: the layer's thin device holds a filesystem whose `rootfs/` is the
    /// layer's full root filesystem.
    ThinDevice {
        /// The thin device's id in the pool (`device_id` of its metadata record).
        device_id: u64,
        /// The filesystem found on it (`ext4` or `xfs`).
        filesystem: String,
        /// That filesystem, opened read-only.
        #[serde(skip)]
        source: SourceHandle,
    },
    /// The files cannot be reached offline by this build (the reason says why).
    Unavailable {
        /// Why (names the driver or the missing file).
        reason: String,
    },
}

/// A filesystem other than the evidence's own (a devicemapper thin device's), shared.
#[derive(Clone)]
pub struct SourceHandle(pub Arc<dyn Source>);

impl fmt::Debug for SourceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}

impl PartialEq for SourceHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SourceHandle {}

impl LayerFiles {
    /// The directories to look a file up in, in order.
    pub fn search_roots(&self) -> Vec<&Path> {
        match self {
            LayerFiles::Overlay { diff, lowers } => {
                let mut v: Vec<&Path> = vec![diff.as_path()];
                v.extend(lowers.iter().map(|p| p.as_path()));
                v
            }
            LayerFiles::Aufs { diff } => vec![diff.as_path()],
            LayerFiles::Snapshot { root } => vec![root.as_path()],
            LayerFiles::OverlayUpper { upper, lower_root } => {
                vec![upper.as_path(), lower_root.as_path()]
            }
            LayerFiles::ThinDevice { .. } => vec![Path::new("rootfs")],
            LayerFiles::Unavailable { .. } => vec![],
        }
    }

    /// The filesystem the [`search_roots`](Self::search_roots) are in: the evidence itself,
    /// or a devicemapper thin device's filesystem.
    pub fn source<'a>(&'a self, evidence: &'a dyn Source) -> &'a dyn Source {
        match self {
            LayerFiles::ThinDevice { source, .. } => source.0.as_ref(),
            _ => evidence,
        }
    }
}

/// How a layer's tar stream is described on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TarSplitRef {
    /// A gzip'd tar-split file (`layerdb/sha256/<chain>/tar-split.json.gz`,
    /// `graph/<id>/tar-data.json.gz`).
    Gz {
        /// The file, relative to the evidence root.
        path: PathBuf,
    },
    /// The well-known empty layer (1024 zero bytes), synthesised.
    EmptyLayer,
    /// No tar-split: the layer cannot be rebuilt byte-exact.
    Missing {
        /// Why (names the missing file).
        reason: String,
    },
}

/// One read-only image layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Layer {
    /// `sha256:<hex>`; for the legacy layout, computed like the 1.10 migration.
    pub chain_id: String,
    /// `sha256:<hex>` of the uncompressed layer tar. `None` only for a legacy layer whose
    /// diff id has not been computed yet.
    pub diff_id: Option<String>,
    /// Chain id of the layer below (`parent`), `None` for a base layer.
    pub parent: Option<String>,
    /// The storage driver's id for the layer's files.
    pub cache_id: String,
    /// `size` as the engine recorded it (bytes of the layer's files).
    pub size: Option<u64>,
    /// Where the layer's tar-split is (what makes the rebuild byte-exact).
    pub tar_split: TarSplitRef,
    /// Where the layer's files are in the storage driver.
    pub files: LayerFiles,
    /// `descriptor.json` (foreign layers and layers loaded from Engine ≥ 25 archives).
    pub descriptor: Option<serde_json::Value>,
    /// Where the layer's metadata lives (`image/overlay2/layerdb/sha256/<hex>`).
    pub meta_dir: PathBuf,
}

/// One image (a config in `imagedb`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Image {
    /// `sha256:<hex>` = sha256 of the config bytes.
    pub id: String,
    /// Tags in familiar form (`busybox:latest`, `example.com/a/b:1`).
    pub repo_tags: Vec<String>,
    /// Digests in familiar form (`busybox@sha256:…`).
    pub repo_digests: Vec<String>,
    /// `rootfs.diff_ids` of the config, base layer first.
    pub diff_ids: Vec<String>,
    /// The chain ids of those layers (keys of [`Store::layers`]), base layer first.
    pub chain_ids: Vec<String>,
    /// `created` of the config, RFC 3339 as stored.
    pub created: Option<String>,
    /// The image it was built from (`imagedb/metadata/sha256/<id>/parent`; locally built images only).
    pub parent: Option<String>,
    /// When the image was last pulled, loaded or tagged (`imagedb/metadata/sha256/<id>/lastUpdated`,
    /// Go `RFC3339Nano`): `docker inspect`'s `Metadata.LastTagTime`. `None` when the file is
    /// absent, empty or unreadable (the engine then shows Go's zero time; a malformed file is
    /// also a [`Store::problems`] entry naming it, where the engine's inspect fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<salvor_oci::Time>,
    /// `architecture` of the config (`amd64`, `arm64` …).
    pub architecture: Option<String>,
    /// `os` of the config (`linux` …).
    pub os: Option<String>,
    /// Sum of the recorded sizes of the image's layers.
    pub size: u64,
    /// Where the config bytes are (relative to the evidence root), or `None` when the
    /// config was synthesised (legacy layout).
    pub config_path: Option<PathBuf>,
    /// The config bytes as found (or as synthesised, see `synthesised`).
    #[serde(skip)]
    pub config: Arc<Vec<u8>>,
    /// `true` when the config bytes were synthesised from v1 metadata.
    pub synthesised: bool,
    /// `config unparseable: <file>: <error>` when the config bytes are not JSON salvor
    /// (serde_json) can read, e.g. a number out of range (`1e999`). The image is still
    /// listed; `created`, `architecture`, `os` and the layers are what a field-by-field
    /// read recovered (nothing when that failed too). `config` keeps the bytes as found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

impl Image {
    /// The config parsed as JSON, `None` when it does not parse.
    pub fn config_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.config).ok()
    }
    /// The first 12 hex digits of the id, as `docker images` shows it.
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

/// The data-root, read.
#[derive(Debug)]
pub struct Store {
    /// The evidence the data-root was read from.
    pub source: Arc<dyn Source>,
    /// The data-root inside the source ("" when the source is the data-root itself).
    pub root: PathBuf,
    /// Which metadata layout it uses.
    pub layout: Layout,
    /// The storage driver whose metadata was read (the one with the most images).
    pub driver: Driver,
    /// Images sorted by id.
    pub images: Vec<Image>,
    /// Layers by chain id.
    pub layers: BTreeMap<String, Layer>,
    /// Metadata that could not be read, each naming its file (loading goes on past them).
    pub problems: Vec<Problem>,
    /// Damage of the evidence itself (a truncated or corrupt archive or disk image): the
    /// source's own ([`Source::damage`]) plus any the caller adds ([`Store::add_damage`],
    /// e.g. the disk image's). Problems that follow from it are told apart by
    /// [`Store::split_problems`].
    pub damage: Vec<salvor_source::EvidenceDamage>,
    /// The devicemapper thin pool, opened on first use (devicemapper hosts only).
    pub(crate) thin_pool: ThinPoolCell,
    /// The containers as read once for the model's per-container questions
    /// ([`salvor_model::ContainerStore::container_logs`] …), so asking about each of many
    /// containers does not re-read all of them each time.
    pub(crate) containers_read: std::sync::OnceLock<Vec<Container>>,
    /// Tar-splits parsed once and kept for the rebuild and the audit.
    pub(crate) parsed: rebuild::ParsedTarSplits,
    /// The engine version that wrote the data-root, as far as known: from the data-root's
    /// layout when opened ([`version::from_data_root`]); callers that know better (the
    /// host's package database, `--engine-version`) set it ([`Store::set_engine_version`]).
    pub engine_version: Option<salvor_model::EngineVersion>,
}

/// The devicemapper pool of a store, or why it cannot be opened; set once.
pub(crate) type ThinPoolCell =
    std::sync::OnceLock<std::result::Result<Arc<devicemapper::DockerDevicemapper>, ThinPoolError>>;

/// Why the devicemapper thin pool of a data-root could not be opened ([`Store::devicemapper`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("devicemapper thin pool: {reason} (direct-lvm hosts keep the pool on an LVM thin pool, dm.thinpooldev: read the disk image holding it, or name it with --thin-pool IMAGE[:VG/LV])")]
#[non_exhaustive]
pub struct ThinPoolError {
    /// What failed reading the pool's loop files (the error and its causes, one line).
    pub reason: String,
}

impl Store {
    /// The devicemapper driver's pool and device records, opened on first use: the pool
    /// given to [`Store::open_at_with_thin_pool`], else the data-root's loop files. An error says
    /// why they cannot be read.
    pub fn devicemapper(
        &self,
    ) -> &std::result::Result<Arc<devicemapper::DockerDevicemapper>, ThinPoolError> {
        self.thin_pool.get_or_init(|| {
            devicemapper::DockerDevicemapper::open(self.source.as_ref(), &self.root)
                .map(Arc::new)
                .map_err(|e| ThinPoolError {
                    reason: salvor_model::error_chain(&e),
                })
        })
    }

    /// True when the data-root has devicemapper loop files (`devicemapper/devicemapper/
    /// {metadata,data}`): loopback mode. Direct-lvm hosts have none.
    pub fn has_thin_pool_loop_files(&self) -> bool {
        let (meta, data) = devicemapper::loop_files(&self.root);
        self.source.exists(&meta) && self.source.exists(&data)
    }

    /// Finds the data-root in `source` and reads its metadata.
    pub fn open(source: Arc<dyn Source>) -> Result<Store> {
        let root = locate::find_data_root(source.as_ref())?;
        Self::open_at(source, root)
    }

    /// Reads the data-root at `root` (relative to the source).
    pub fn open_at(source: Arc<dyn Source>, root: PathBuf) -> Result<Store> {
        Self::open_with(source, root, std::sync::OnceLock::new())
    }

    /// Reads the data-root at `root` with `pool` as the devicemapper thin pool instead of
    /// the data-root's loop files: Docker in direct-lvm mode keeps its pool on an LVM thin
    /// pool (`dm.thinpooldev`), which the caller opens (`salvor-disk` finds LVM thin pools
    /// in a disk image). `origin` says where the pool came from. The data-root's device
    /// records (`devicemapper/metadata/`) are read as usual; unreadable ones are warnings.
    pub fn open_at_with_thin_pool(
        source: Arc<dyn Source>,
        root: PathBuf,
        pool: salvor_dmthin::ThinPool,
        origin: String,
    ) -> Result<Store> {
        let dm = devicemapper::DockerDevicemapper::with_pool(source.as_ref(), &root, pool, origin)
            .map_err(|e| StoreError::Invalid {
                path: root.join("devicemapper/metadata"),
                reason: salvor_model::error_chain(&e),
            })?;
        Self::open_with(source, root, std::sync::OnceLock::from(Ok(Arc::new(dm))))
    }

    /// A data-root whose images are in containerd (Docker's containerd image store, the
    /// default of Engine 29): no images or layers here, but its containers' records,
    /// volumes and logs, read as for the graphdriver store. Containers' files are in
    /// containerd's snapshots (`salvor-containerd`), not located by this store.
    pub fn open_containers_only(source: Arc<dyn Source>, root: PathBuf) -> Store {
        let mut store = Store {
            source: source.clone(),
            root,
            layout: Layout::V2,
            driver: Driver::Other("overlayfs".into()),
            images: Vec::new(),
            layers: BTreeMap::new(),
            problems: Vec::new(),
            damage: source.damage().to_vec(),
            thin_pool: std::sync::OnceLock::new(),
            containers_read: std::sync::OnceLock::new(),
            parsed: Default::default(),
            engine_version: None,
        };
        store.engine_version = version::from_data_root(store.source.as_ref(), &store.root);
        store
    }

    fn open_with(source: Arc<dyn Source>, root: PathBuf, thin_pool: ThinPoolCell) -> Result<Store> {
        let mut store = if source.exists(&root.join("image")) {
            v2::load(source.clone(), root.clone(), thin_pool)?
        } else if source.exists(&root.join("graph")) {
            legacy::load(source.clone(), root.clone(), thin_pool)?
        } else {
            return Err(StoreError::NoDataRoot {
                evidence: source.describe(),
                looked: format!("{}/image or {}/graph", root.display(), root.display()),
            });
        };
        store.problems.sort();
        store.problems.dedup();
        store.damage = store.source.damage().to_vec();
        store.engine_version = version::from_data_root(store.source.as_ref(), &store.root);
        Ok(store)
    }

    /// Sets the engine version that wrote the data-root (found on the host, or named by the
    /// user), replacing what the layout suggested.
    pub fn set_engine_version(&mut self, v: salvor_model::EngineVersion) {
        self.engine_version = Some(v);
    }

    /// Records damage of the evidence found outside the source (a disk image cut short).
    pub fn add_damage(&mut self, damage: impl IntoIterator<Item = salvor_source::EvidenceDamage>) {
        for d in damage {
            if !self.damage.contains(&d) {
                self.damage.push(d);
            }
        }
    }

    /// True when `p` can follow from the evidence's damage rather than from the host:
    /// the evidence is damaged and the file it is about is absent or cut short (an archive
    /// read up to its damage lacks every file that came after it).
    pub fn is_consequence_of_damage(&self, p: &Problem) -> bool {
        if self.damage.is_empty() {
            return false;
        }
        let what = p.what.to_ascii_lowercase();
        !self.source.exists(&p.path)
            || [
                "missing",
                "not found",
                "no such file",
                "truncated",
                "shorter",
                "unexpected end",
                "cannot be read",
                "unreadable",
            ]
            .iter()
            .any(|w| what.contains(w))
    }

    /// Splits problems into (findings about the host, consequences of the evidence's
    /// damage). Without damage, every problem is a finding.
    pub fn split_problems(&self, problems: Vec<Problem>) -> (Vec<Problem>, Vec<Problem>) {
        problems
            .into_iter()
            .partition(|p| !self.is_consequence_of_damage(p))
    }

    /// Path of something relative to the data-root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The layers of an image, in rootfs order (missing ones are errors naming the chain id).
    pub fn image_layers(&self, image: &Image) -> Result<Vec<&Layer>> {
        image
            .chain_ids
            .iter()
            .map(|c| {
                self.layers.get(c).ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "image {}: layer {} (chain id) is not in the layer store",
                        image.short_id(),
                        c
                    ))
                })
            })
            .collect()
    }

    /// Finds an image by reference (`busybox`, `busybox:1`, `docker.io/library/busybox:1`,
    /// `busybox@sha256:…`) or by id (full or a unique prefix, with or without `sha256:`):
    /// [`Store::resolve_image`] (the one resolver, [`mod@resolve`]) as a [`StoreError`].
    pub fn find_image(&self, query: &str) -> Result<&Image> {
        Ok(self.resolve_image(query)?)
    }

    /// What `docker save QUERY` would write: the images and, for each, the tags that go
    /// into the archive. A `repo:tag` gives that tag; a bare repository name gives every
    /// tagged image of that repository with its tags there; an id or digest gives no tag.
    /// Images only; [`Store::resolve_for_save`] also takes a container.
    pub fn select_for_save(&self, query: &str) -> Result<Vec<(&Image, Vec<String>)>> {
        let r = resolve::Resolver {
            images: &self.images,
            containers: &[],
        }
        .resolve_for_save(query, Want::Image)?;
        match r.target {
            SaveTarget::Images(v) => Ok(v),
            SaveTarget::Container(_) => Err(StoreError::NotFound(format!(
                "no image matches {:?}",
                query.trim()
            ))),
        }
    }

    /// Ids of images whose parent is `id` (used to tell intermediate images).
    pub fn children_of(&self, id: &str) -> BTreeSet<String> {
        self.images
            .iter()
            .filter(|i| i.parent.as_deref() == Some(id))
            .map(|i| i.id.clone())
            .collect()
    }

    pub(crate) fn problem(&mut self, path: impl Into<PathBuf>, what: impl Into<String>) {
        let path = path.into();
        let mut what = what.into();
        // Errors from the source already start with the path; say it once.
        if let Some(rest) = what.strip_prefix(&format!("{}: ", path.display())) {
            what = rest.to_string();
        }
        self.problems.push(Problem { path, what });
    }
}

/// Reads a small text file and trims whitespace.
pub(crate) fn read_small(source: &dyn Source, path: &Path) -> Result<String> {
    let bytes = source.read_limited(path, MAX_SMALL_FILE)?;
    String::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| StoreError::invalid(path, "not UTF-8 text"))
}

/// Reads and parses a JSON file with the size bound.
pub(crate) fn read_json(source: &dyn Source, path: &Path) -> Result<serde_json::Value> {
    let bytes = source.read_limited(path, MAX_JSON_BYTES)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::invalid(path, format!("not valid JSON: {e}")))
}
