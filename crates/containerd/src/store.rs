//! A containerd root opened as stores of the engine-neutral model: one
//! [`ContainerdStore`] per meta.db namespace, implementing [`salvor_model::ContainerStore`].
//!
//! * **Images**: one per target digest of the namespace's image records (the id Docker 26
//!   and `ctr` show). An index target is resolved to the manifest of the chosen platform
//!   ([`StoreOptions::platform`]); the manifest names the config, whose `rootfs.diff_ids`
//!   give the layers. Manifest and config blobs are checked against their digests.
//! * **Layers**: keyed by chain id (computed from the diff_ids as OCI does), which is the
//!   snapshot key of an unpacked layer. A layer is proven by its compressed blob
//!   ([`LayerProof::Blob`]): the blob's sha256 is the manifest's digest, its decompressed
//!   sha256 the diff_id. Committed snapshots no image names are layers too, unprovable.
//! * **Files**: a layer's (or a container's read-write) snapshot directory, the overlayfs
//!   snapshotter's `snapshots/<id>/fs` over its parents' (kernel whiteouts), or the native
//!   snapshotter's full copy.
//! * **Containers**: meta.db's container records; for Docker's namespace (`moby` under a
//!   data-root) Docker's own, `<data-root>/containers/<id>/config.v2.json` (id, name,
//!   image, created, state, its `-json.log` files), the read-write snapshot keyed by the id.
//!   Docker's logs, volumes and the rest of `docker inspect` are not read here. Other
//!   namespaces' CRI containers (`k8s.io`) get their state, name and log files from the
//!   CRI's files ([`crate::cri`]), and [`ContainerStore::container_logs`] streams the logs.
//!
//! Every record that does not read is a [`Problem`] naming the file; the rest is still read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use salvor_model::{
    ContainerRecord, ContainerStatus, ContainerStore, EngineKind, EvidenceDamage, ImageRecord,
    LayerProof, LayerRecord, LayerView, LogLines, ModelError, Problem, RebuildReport,
    RebuildStatus, RecordedHeaders, RecordedTime, StoreIdentity, Timestamp, ViewFiles,
    VolumeRecord, WhiteoutStyle,
};
use salvor_oci::spec::{Descriptor, ImageConfig, Index, Manifest};
use salvor_oci::{chain_ids_text, DiffId, Digest, Reference, Time};
use salvor_source::{FileKind, Source};

use crate::content::{blob_headers, blob_path, copy_layer, ContentError};
use crate::locate::{locate, Located, META_DB};
use crate::meta::{self, MetaDb, Namespace};
use crate::snapshots::{Kind, SnapshotterDb};

/// The content store under a containerd root.
pub const CONTENT: &str = "io.containerd.content.v1.content";

/// Limits and choices for reading a containerd root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The platform an index resolves to, `os/architecture[/variant]` (`linux/amd64`).
    pub platform: String,
    /// meta.db and snapshotter metadata.db are read whole, up to this many bytes.
    pub max_db: u64,
    /// Manifests, indexes and configs are read whole, up to this many bytes.
    pub max_json: u64,
    /// A layer's tar is read up to this many bytes (decompression bombs stop here).
    pub max_layer: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            platform: "linux/amd64".into(),
            max_db: 1 << 30,
            max_json: 16 << 20,
            max_layer: 1 << 40,
        }
    }
}

/// A containerd root opened ([`open_root`]).
#[derive(Debug, Default)]
pub struct OpenedRoot {
    /// One store per namespace that holds anything.
    pub stores: Vec<ContainerdStore>,
    /// Namespaces with no images, blobs, snapshots or containers (Docker's graphdriver
    /// hosts keep an empty `moby`): no store is made for them.
    pub empty_namespaces: Vec<String>,
    /// What kept the root (or parts of it) from being read; a root-wide problem (meta.db
    /// records outside any namespace, an unreadable snapshotter database) is also in each
    /// store's [`ContainerStore::problems`].
    pub problems: Vec<Problem>,
}

/// Every containerd root of the evidence ([`locate`]) opened: their stores in the order
/// found, and every problem met.
pub fn open_all(src: Arc<dyn Source>, opts: &StoreOptions) -> OpenedRoot {
    let (found, problems) = locate(src.as_ref());
    let mut out = OpenedRoot {
        problems,
        ..OpenedRoot::default()
    };
    for loc in &found {
        let o = open_root(src.clone(), loc, opts);
        out.stores.extend(o.stores);
        out.empty_namespaces.extend(o.empty_namespaces);
        out.problems.extend(o.problems);
    }
    out
}

fn problem(path: impl Into<PathBuf>, what: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        what: what.into(),
    }
}

fn meta_problem(p: &meta::Problem) -> Problem {
    problem(p.file.clone(), format!("{}: {}", p.at, p.what))
}

/// The snapshotter's directory under a containerd root.
fn snapshotter_dir(name: &str) -> String {
    format!("io.containerd.snapshotter.v1.{name}")
}

/// Opens the containerd root `loc`: meta.db, the snapshotters' metadata.db its namespaces
/// use, and each namespace as a [`ContainerdStore`].
pub fn open_root(src: Arc<dyn Source>, loc: &Located, opts: &StoreOptions) -> OpenedRoot {
    let mut out = OpenedRoot::default();
    let meta_path = loc.root.join(META_DB);
    let db = match src.read_limited(&meta_path, opts.max_db) {
        Ok(bytes) => match MetaDb::read(bytes, meta_path.clone()) {
            Ok(db) => db,
            Err(e) => {
                out.problems
                    .push(problem(&meta_path, salvor_source::error_chain(&e)));
                return out;
            }
        },
        Err(e) => {
            out.problems
                .push(problem(&meta_path, salvor_source::error_chain(&e)));
            return out;
        }
    };
    // Problems of a namespace go to its store; the others to every store.
    let mut root_problems = Vec::new();
    let mut ns_problems: BTreeMap<String, Vec<Problem>> = BTreeMap::new();
    for p in &db.problems {
        let ns =
            p.at.strip_prefix("v1/")
                .and_then(|r| r.split('/').next())
                .filter(|n| db.namespaces.iter().any(|x| &x.name == n));
        match ns {
            Some(n) => ns_problems
                .entry(n.to_string())
                .or_default()
                .push(meta_problem(p)),
            None => root_problems.push(meta_problem(p)),
        }
    }
    // The snapshotters any namespace uses, each read once.
    let used: BTreeSet<&str> = db
        .namespaces
        .iter()
        .flat_map(|n| n.snapshots.iter().map(|s| s.snapshotter.as_str()))
        .collect();
    let mut snapshotters: BTreeMap<String, Arc<SnapshotterDb>> = BTreeMap::new();
    for name in used {
        let p = loc.root.join(snapshotter_dir(name)).join("metadata.db");
        let read = src
            .read_limited(&p, opts.max_db)
            .map_err(|e| salvor_source::error_chain(&e))
            .and_then(|b| {
                SnapshotterDb::read(b, p.clone()).map_err(|e| salvor_source::error_chain(&e))
            });
        match read {
            Ok(s) => {
                root_problems.extend(s.problems.iter().map(meta_problem));
                snapshotters.insert(name.to_string(), Arc::new(s));
            }
            Err(e) => root_problems.push(problem(&p, e)),
        }
    }
    out.problems.extend(root_problems.iter().cloned());
    for ns in db.namespaces {
        if ns.images.is_empty()
            && ns.blobs.is_empty()
            && ns.snapshots.is_empty()
            && ns.containers.is_empty()
        {
            out.empty_namespaces.push(ns.name.clone());
            continue;
        }
        let mut problems = root_problems.clone();
        problems.extend(ns_problems.remove(&ns.name).unwrap_or_default());
        out.stores.push(ContainerdStore::build(
            src.clone(),
            loc,
            opts,
            ns,
            db.schema_version,
            &snapshotters,
            problems,
        ));
    }
    out
}

/// One snapshot of the store's snapshotter, resolved through its metadata.db.
#[derive(Debug, Clone)]
struct Snap {
    /// The snapshotter's backend key (`<ns>/<seq>/<key>`).
    backend: Option<String>,
    /// The parent's key in this namespace.
    parent: Option<String>,
    kind: Option<Kind>,
    size: Option<u64>,
}

/// An image as read.
#[derive(Debug, Clone)]
struct Image {
    id: String,
    names: Vec<String>,
    digests: Vec<String>,
    /// The platform manifest's bytes, when read.
    manifest: Option<Vec<u8>>,
    config: Option<Arc<Vec<u8>>>,
    config_path: Option<PathBuf>,
    /// Why the config is not there, when it is not.
    config_missing: Option<String>,
    created: Option<String>,
    layers: Vec<String>,
    size: Option<u64>,
    updated: Option<Time>,
}

/// A layer as read.
#[derive(Debug, Clone)]
struct Layer {
    id: String,
    diff_id: Option<String>,
    parent: Option<String>,
    /// The blobs manifests name for it (digest, media type), first one first.
    blobs: Vec<(String, String)>,
    /// The first of them the content store holds.
    present: Option<(String, String)>,
    size: Option<u64>,
}

/// A containerd namespace as an engine-neutral store.
pub struct ContainerdStore {
    source: Arc<dyn Source>,
    located: Located,
    namespace: String,
    engine: EngineKind,
    schema_version: Option<i64>,
    snapshotter: String,
    snapdb: Option<Arc<SnapshotterDb>>,
    opts: StoreOptions,
    images: Vec<Image>,
    layers: BTreeMap<String, Layer>,
    snaps: BTreeMap<String, Snap>,
    ns: Namespace,
    problems: Vec<Problem>,
    /// Docker's containers (namespace `moby` under a data-root), read on first use.
    docker_containers: std::sync::OnceLock<(Vec<DockerContainer>, Vec<Problem>)>,
    /// The other namespaces' containers with the CRI's state and logs, read on first use.
    cri: std::sync::OnceLock<crate::cri::CriContainers>,
}

/// What salvor reads of a Docker container's `config.v2.json`.
#[derive(Debug, Clone)]
struct DockerContainer {
    record: ContainerRecord,
    /// `Config.Image`: the image as the user named it.
    image_name: Option<String>,
}

/// A `config.v2.json` read at most this large.
const MAX_CONTAINER_CONFIG: u64 = 4 << 20;

impl std::fmt::Debug for ContainerdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdStore")
            .field("root", &self.located.root)
            .field("namespace", &self.namespace)
            .field("images", &self.images.len())
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

/// `os/arch[/variant]`.
fn parse_platform(p: &str) -> (String, String, Option<String>) {
    let mut it = p.split('/');
    let os = it.next().unwrap_or("linux").to_string();
    let arch = it.next().unwrap_or("amd64").to_string();
    let variant = it.next().map(str::to_string);
    (os, arch, variant)
}

fn is_index(media_type: &str) -> bool {
    media_type == salvor_oci::spec::MEDIA_TYPE_OCI_INDEX
        || media_type == salvor_oci::spec::MEDIA_TYPE_DOCKER_MANIFEST_LIST
}

/// Nested indexes followed at most this deep.
const MAX_INDEX_DEPTH: usize = 4;

impl ContainerdStore {
    fn content_root(&self) -> PathBuf {
        self.located.root.join(CONTENT)
    }

    fn blob_present(&self, digest: &str) -> bool {
        blob_path(&self.content_root(), digest)
            .ok()
            .and_then(|p| self.source.metadata(&p).ok())
            .is_some_and(|m| m.kind == FileKind::Regular)
    }

    /// A small blob (manifest, index, config) read whole and checked against its digest.
    fn read_json_blob(&self, digest: &str, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
        let path = match blob_path(&self.content_root(), digest) {
            Ok(p) => p,
            Err(e) => {
                problems.push(problem(self.located.root.join(META_DB), e.to_string()));
                return None;
            }
        };
        match self.source.read_limited(&path, self.opts.max_json) {
            Ok(b) => {
                let actual = Digest::sha256_of(&b);
                if actual.as_str() != digest {
                    problems.push(problem(
                        &path,
                        format!("hashes to {actual}, not to its name {digest}: changed after it was written"),
                    ));
                }
                Some(b)
            }
            Err(e) if e.is_not_found() => {
                problems.push(problem(&path, "blob is not in the content store"));
                None
            }
            Err(e) => {
                problems.push(problem(&path, salvor_source::error_chain(&e)));
                None
            }
        }
    }

    /// The platform manifest a target resolves to: its descriptor's digest and bytes.
    fn resolve_manifest(
        &self,
        digest: &str,
        media_type: &str,
        depth: usize,
        problems: &mut Vec<Problem>,
    ) -> Option<(String, Vec<u8>, u64)> {
        let bytes = self.read_json_blob(digest, problems)?;
        let path = blob_path(&self.content_root(), digest).unwrap_or_default();
        let looks_index = is_index(media_type)
            || (media_type.is_empty()
                && serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .is_some_and(|v| v.get("manifests").is_some()));
        if !looks_index {
            return Some((digest.to_string(), bytes, 0));
        }
        if depth >= MAX_INDEX_DEPTH {
            problems.push(problem(&path, "indexes nested too deep; not followed"));
            return None;
        }
        let index: Index = match serde_json::from_slice(&bytes) {
            Ok(i) => i,
            Err(e) => {
                problems.push(problem(&path, format!("not an image index: {e}")));
                return None;
            }
        };
        let (os, arch, variant) = parse_platform(&self.opts.platform);
        let matches = |d: &&Descriptor| match &d.platform {
            Some(p) => {
                p.os == os
                    && p.architecture == arch
                    && variant
                        .as_ref()
                        .is_none_or(|v| p.variant.as_deref() == Some(v.as_str()))
            }
            None => index.manifests.len() == 1,
        };
        let candidates: Vec<&Descriptor> = index.manifests.iter().filter(matches).collect();
        let chosen = candidates
            .iter()
            .find(|d| self.blob_present(d.digest.as_str()))
            .or(candidates.first());
        let Some(d) = chosen else {
            problems.push(problem(
                &path,
                format!("no manifest for {} in the index", self.opts.platform),
            ));
            return None;
        };
        let (m, b, _) =
            self.resolve_manifest(d.digest.as_str(), &d.media_type, depth + 1, problems)?;
        Some((m, b, bytes.len() as u64))
    }

    fn build(
        source: Arc<dyn Source>,
        loc: &Located,
        opts: &StoreOptions,
        ns: Namespace,
        schema_version: Option<i64>,
        snapshotters: &BTreeMap<String, Arc<SnapshotterDb>>,
        problems: Vec<Problem>,
    ) -> ContainerdStore {
        let engine = if ns.name == "moby" && loc.docker_data_root.is_some() {
            EngineKind::DockerContainerd
        } else {
            EngineKind::Containerd
        };
        // The snapshotter: the one holding most of the namespace's snapshots.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &ns.snapshots {
            *counts.entry(s.snapshotter.as_str()).or_default() += 1;
        }
        let snapshotter = counts
            .iter()
            .max_by_key(|(n, c)| (**c, **n == "overlayfs"))
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| "overlayfs".to_string());
        let snapdb = snapshotters.get(&snapshotter).cloned();
        let mut store = ContainerdStore {
            source,
            located: loc.clone(),
            namespace: ns.name.clone(),
            engine,
            schema_version,
            snapshotter,
            snapdb,
            opts: opts.clone(),
            images: Vec::new(),
            layers: BTreeMap::new(),
            snaps: BTreeMap::new(),
            ns: Namespace::default(),
            problems,
            docker_containers: std::sync::OnceLock::new(),
            cri: std::sync::OnceLock::new(),
        };
        let mut problems = std::mem::take(&mut store.problems);
        store.read_snapshots(&ns, &mut problems);
        store.read_images(&ns, &mut problems);
        store.add_orphan_snapshots();
        problems.sort();
        problems.dedup();
        store.problems = problems;
        store.ns = ns;
        store
    }

    fn read_snapshots(&mut self, ns: &Namespace, problems: &mut Vec<Problem>) {
        let meta_path = self.located.root.join(META_DB);
        for s in ns
            .snapshots
            .iter()
            .filter(|s| s.snapshotter == self.snapshotter)
        {
            let b = match (&s.backend_name, &self.snapdb) {
                (Some(n), Some(db)) => {
                    let b = db.snapshots.get(n);
                    if b.is_none() {
                        problems.push(problem(
                            self.located
                                .root
                                .join(snapshotter_dir(&self.snapshotter))
                                .join("metadata.db"),
                            format!(
                                "snapshot {} of namespace {} (backend key {n}) is not in it",
                                s.key, ns.name
                            ),
                        ));
                    }
                    b
                }
                (None, _) => {
                    problems.push(problem(
                        &meta_path,
                        format!(
                            "v1/{}/snapshots/{}/{}: no backend name",
                            ns.name, s.snapshotter, s.key
                        ),
                    ));
                    None
                }
                _ => None,
            };
            self.snaps.insert(
                s.key.clone(),
                Snap {
                    backend: s.backend_name.clone(),
                    parent: s.parent.clone(),
                    kind: b.and_then(|b| b.kind),
                    size: b.and_then(|b| b.size).and_then(|n| u64::try_from(n).ok()),
                },
            );
        }
    }

    fn read_images(&mut self, ns: &Namespace, problems: &mut Vec<Problem>) {
        let meta_path = self.located.root.join(META_DB);
        // Image records by target digest.
        let mut by_target: BTreeMap<String, Vec<&meta::ImageRecord>> = BTreeMap::new();
        for r in &ns.images {
            match &r.target.digest {
                Some(d) if Digest::parse(d).is_ok() => {
                    by_target.entry(d.clone()).or_default().push(r)
                }
                other => problems.push(problem(
                    &meta_path,
                    format!(
                        "v1/{}/images/{}: target digest {:?} is not a sha256 digest",
                        ns.name, r.name, other
                    ),
                )),
            }
        }
        let docker = self.engine == EngineKind::DockerContainerd;
        for (id, records) in by_target {
            let mut names = Vec::new();
            let mut digests = Vec::new();
            for r in &records {
                if r.name.starts_with("moby-dangling@") {
                    continue;
                }
                if Digest::parse(&r.name).is_ok() {
                    continue; // a CRI image-id alias (`sha256:<config>`), not a name
                }
                match Reference::parse(&r.name) {
                    Ok(re) if re.digest.is_some() && re.tag.is_none() => {
                        digests.push(re.familiar())
                    }
                    Ok(re) => {
                        names.push(re.familiar());
                        if docker {
                            // Docker 26: one repo digest per tag, `<repo>@<target>`.
                            digests.push(format!("{}@{id}", re.familiar_name()));
                        }
                    }
                    Err(_) => names.push(r.name.clone()),
                }
            }
            let updated = records
                .iter()
                .filter_map(|r| r.updated)
                .max_by_key(|t| (t.unix(), t.nanos()));
            let media_type = records[0].target.media_type.clone().unwrap_or_default();
            let mut img = Image {
                id: id.clone(),
                names,
                digests,
                manifest: None,
                config: None,
                config_path: None,
                config_missing: None,
                created: None,
                layers: Vec::new(),
                size: None,
                updated,
            };
            self.read_image(&mut img, &media_type, problems);
            self.images.push(img);
        }
    }

    /// Resolves an image's manifest, config and layers.
    fn read_image(&mut self, img: &mut Image, media_type: &str, problems: &mut Vec<Problem>) {
        let id = img.id.clone();
        let Some((mdigest, mbytes, index_size)) =
            self.resolve_manifest(&id, media_type, 0, problems)
        else {
            img.config_missing = Some(format!("image {id}: its manifest could not be read"));
            return;
        };
        let mpath = blob_path(&self.content_root(), &mdigest).unwrap_or_default();
        let manifest: Manifest = match serde_json::from_slice(&mbytes) {
            Ok(m) => m,
            Err(e) => {
                problems.push(problem(&mpath, format!("not an image manifest: {e}")));
                img.config_missing = Some(format!("image {id}: its manifest does not read"));
                img.manifest = Some(mbytes);
                return;
            }
        };
        let cdigest = manifest.config.digest.as_str().to_string();
        let cpath = blob_path(&self.content_root(), &cdigest).ok();
        let config_bytes = self.read_json_blob(&cdigest, problems);
        // Saturating: the sizes are the manifest's, which may be absurd.
        let mut size = index_size
            .saturating_add(mbytes.len() as u64)
            .saturating_add(manifest.config.size);
        for l in &manifest.layers {
            size = size.saturating_add(l.size);
        }
        img.size = Some(size);
        img.manifest = Some(mbytes);
        let Some(cb) = config_bytes else {
            img.config_missing = Some(format!(
                "image {id}: config {cdigest} is not in the content store"
            ));
            return;
        };
        img.config_path = cpath.clone();
        let config: ImageConfig = match serde_json::from_slice(&cb) {
            Ok(c) => c,
            Err(e) => {
                problems.push(problem(
                    cpath.clone().unwrap_or_default(),
                    format!("not an image config: {e}"),
                ));
                img.config = Some(Arc::new(cb));
                return;
            }
        };
        img.config = Some(Arc::new(cb));
        img.created = config.created.clone();
        let diff_ids: Vec<String> = config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.as_str().to_string())
            .collect();
        if diff_ids.len() != manifest.layers.len() {
            problems.push(problem(
                &mpath,
                format!(
                    "names {} layers, its config {cdigest} {} diff_ids",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let chain = chain_ids_text(&diff_ids);
        for (i, cid) in chain.iter().enumerate() {
            let blob = manifest
                .layers
                .get(i)
                .map(|d| (d.digest.as_str().to_string(), d.media_type.clone()));
            let present = blob.as_ref().filter(|(d, _)| self.blob_present(d)).cloned();
            let size = self.snaps.get(cid).and_then(|s| s.size);
            let l = self.layers.entry(cid.clone()).or_insert_with(|| Layer {
                id: cid.clone(),
                diff_id: Some(diff_ids[i].clone()),
                parent: i.checked_sub(1).map(|p| chain[p].clone()),
                blobs: Vec::new(),
                present: None,
                size,
            });
            if let Some(b) = blob {
                if !l.blobs.contains(&b) {
                    l.blobs.push(b);
                }
            }
            if l.present.is_none() {
                l.present = present;
            }
        }
        img.layers = chain;
    }

    /// Committed snapshots with a digest key no image names: layers of images gone.
    fn add_orphan_snapshots(&mut self) {
        let orphans: Vec<String> = self
            .snaps
            .iter()
            .filter(|(k, s)| {
                s.kind == Some(Kind::Committed)
                    && Digest::parse(k).is_ok()
                    && !self.layers.contains_key(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in orphans {
            let parent = self.digest_ancestor(&k);
            let size = self.snaps.get(&k).and_then(|s| s.size);
            self.layers.insert(
                k.clone(),
                Layer {
                    id: k,
                    diff_id: None,
                    parent,
                    blobs: Vec::new(),
                    present: None,
                    size,
                },
            );
        }
    }

    /// The nearest ancestor snapshot of `key` keyed by a digest (skipping Docker's build
    /// `-init`s).
    fn digest_ancestor(&self, key: &str) -> Option<String> {
        let mut cur = self.snaps.get(key)?.parent.clone();
        let mut hops = 0;
        while let Some(p) = cur {
            if Digest::parse(&p).is_ok() {
                return Some(p);
            }
            hops += 1;
            if hops > 4096 {
                return None;
            }
            cur = self.snaps.get(&p).and_then(|s| s.parent.clone());
        }
        None
    }

    /// The containerd root this store was read from, and how it was found.
    pub fn located(&self) -> &Located {
        &self.located
    }

    /// The namespace's records as meta.db holds them.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// The disk usage of an image's unpacked layers as the snapshotter recorded it when
    /// it committed each (`size` in its metadata.db), added up; `None` when a layer has no
    /// committed snapshot or no recorded size. Docker 26 lists an image's `docker images`
    /// SIZE as this plus [`ContainerStore::image_size`].
    pub fn unpacked_size(&self, image_id: &str) -> Option<u64> {
        let img = self.images.iter().find(|i| i.id == image_id)?;
        // Checked: recorded sizes come from the evidence and may be absurd.
        img.layers.iter().try_fold(0u64, |total, l| {
            total.checked_add(self.snaps.get(l).and_then(|s| s.size)?)
        })
    }

    /// The snapshotter whose snapshots are the layers' files (`overlayfs`).
    pub fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    /// The snapshot `key`'s directory under the snapshotter's root, when resolved.
    fn snap_dir(&self, key: &str) -> Result<PathBuf, String> {
        let s = self.snaps.get(key).ok_or_else(|| {
            format!(
                "no snapshot {key} in the {} snapshotter of namespace {}",
                self.snapshotter, self.namespace
            )
        })?;
        self.backend_dir(s.backend.as_deref().unwrap_or_default())
            .ok_or_else(|| format!("snapshot {key}: its directory is unknown"))
    }

    fn backend_dir(&self, backend: &str) -> Option<PathBuf> {
        let db = self.snapdb.as_ref()?;
        let id = db.snapshots.get(backend)?.id?;
        let base = self
            .located
            .root
            .join(snapshotter_dir(&self.snapshotter))
            .join("snapshots")
            .join(id.to_string());
        Some(if self.snapshotter == "native" {
            base
        } else {
            base.join("fs")
        })
    }

    /// Snapshot `key`'s files as a view: its directory over its parents' (nearest first).
    fn view_of(&self, key: &str) -> LayerView {
        let files = match self.snap_dir(key) {
            Err(reason) => ViewFiles::Unavailable { reason },
            Ok(dir) => {
                // The backend parents, as containerd mounts them.
                let mut lowers = Vec::new();
                let mut seen = BTreeSet::new();
                let db = self.snapdb.as_ref();
                let mut cur = self
                    .snaps
                    .get(key)
                    .and_then(|s| s.backend.clone())
                    .and_then(|b| db.and_then(|db| db.snapshots.get(&b)))
                    .and_then(|b| b.parent.clone());
                let mut broken = None;
                while let Some(p) = cur {
                    if !seen.insert(p.clone()) || seen.len() > 4096 {
                        broken = Some(format!("snapshot {key}: its parents loop"));
                        break;
                    }
                    match self.backend_dir(&p) {
                        Some(d) => lowers.push(d),
                        None => {
                            broken = Some(format!("snapshot {key}: parent {p} is not resolved"));
                            break;
                        }
                    }
                    cur = db
                        .and_then(|db| db.snapshots.get(&p))
                        .and_then(|b| b.parent.clone());
                }
                match (self.snapshotter.as_str(), broken) {
                    ("native", _) => ViewFiles::Snapshot {
                        root: dir,
                        has_parent: !lowers.is_empty(),
                        parent_root: lowers.first().cloned(),
                    },
                    // A snapshot without parents is a bind mount: containerd applied the
                    // layer there without the overlay whiteout conversion, so its
                    // whiteouts were applied as deletions, not kept (seen on Docker 26's
                    // containerd store: an imported layer's `.wh.gone` left nothing).
                    ("overlayfs", None) if lowers.is_empty() => ViewFiles::Snapshot {
                        root: dir,
                        has_parent: false,
                        parent_root: None,
                    },
                    ("overlayfs", None) => ViewFiles::Diff {
                        dir,
                        lowers,
                        style: WhiteoutStyle::Overlay,
                    },
                    ("overlayfs", Some(reason)) => ViewFiles::Unavailable { reason },
                    (other, _) => ViewFiles::Unavailable {
                        reason: format!("the {other} snapshotter's layout is not read by salvor"),
                    },
                }
            }
        };
        LayerView {
            source: self.source.clone(),
            files,
            id_offset: (0, 0),
            not_auditable: None,
        }
    }

    fn image_by_id(&self, id: &str) -> Result<&Image, ModelError> {
        self.images
            .iter()
            .find(|i| i.id == id)
            .ok_or_else(|| ModelError::NotFound(format!("no image {id}")))
    }

    /// The snapshot key of container `id` (a full id, or a unique prefix of one): a
    /// container record's `snapshotKey`, or an active snapshot keyed by the id (Docker).
    fn container_key(&self, id: &str) -> Result<String, ModelError> {
        if let Some(c) = self.ns.containers.iter().find(|c| c.id == id) {
            if let Some(k) = &c.snapshot_key {
                return Ok(k.clone());
            }
        }
        if self.snaps.contains_key(id) && Digest::parse(id).is_err() {
            return Ok(id.to_string());
        }
        let mut keys: BTreeSet<String> = self
            .ns
            .containers
            .iter()
            .filter(|c| !id.is_empty() && c.id.starts_with(id))
            .filter_map(|c| c.snapshot_key.clone())
            .collect();
        // Docker: a container's name, or a prefix of its id, names its snapshot.
        for c in &self.docker_containers().0 {
            let r = &c.record;
            let named = r.name == id.trim_start_matches('/');
            if (named || (!id.is_empty() && r.id.starts_with(id))) && self.snaps.contains_key(&r.id)
            {
                if named {
                    return Ok(r.id.clone());
                }
                keys.insert(r.id.clone());
            }
        }
        keys.extend(
            self.snaps
                .iter()
                .filter(|(k, s)| {
                    !id.is_empty()
                        && k.starts_with(id)
                        && s.kind == Some(Kind::Active)
                        && Digest::parse(k).is_err()
                })
                .map(|(k, _)| k.clone()),
        );
        match keys.len() {
            1 => Ok(keys.into_iter().next().unwrap_or_default()),
            0 => Err(ModelError::NotFound(format!("no container {id}"))),
            n => Err(ModelError::NotFound(format!(
                "container {id}: the prefix names {n} containers"
            ))),
        }
    }

    fn report(&self, id: &str, status: RebuildStatus, error: Option<String>) -> RebuildReport {
        RebuildReport {
            chain_id: id.to_string(),
            diff_id: self.layers.get(id).and_then(|l| l.diff_id.clone()),
            actual: None,
            as_found: None,
            bytes: 0,
            files: 0,
            status,
            findings: Vec::new(),
            error,
        }
    }

    /// Why layer `l` cannot be proven, when it cannot.
    fn unprovable(&self, l: &Layer) -> Option<String> {
        if l.present.is_some() {
            return None;
        }
        Some(match (l.diff_id.is_some(), l.blobs.first()) {
            (false, _) => format!(
                "no image of namespace {} names snapshot {}: its diff_id and blob are unknown",
                self.namespace, l.id
            ),
            (true, Some((d, _))) => format!(
                "its blob {d} is not in the content store (discarded after unpacking, or removed)"
            ),
            (true, None) => "no manifest names a blob for it".to_string(),
        })
    }
}

/// Docker's `State.StateString()` from `config.v2.json`'s `State`.
fn docker_status(state: &serde_json::Value) -> String {
    let b = |k: &str| state.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let never_started = state
        .get("StartedAt")
        .and_then(|v| v.as_str())
        .is_none_or(|t| t.is_empty() || t.starts_with("0001-01-01"));
    if b("Running") {
        if b("Paused") {
            "paused"
        } else if b("Restarting") {
            "restarting"
        } else {
            "running"
        }
    } else if b("RemovalInProgress") {
        "removing"
    } else if b("Dead") {
        "dead"
    } else if never_started {
        "created"
    } else {
        "exited"
    }
    .to_string()
}

/// The command of an OCI runtime spec stored as a protobuf `Any` holding its JSON:
/// `process.args` joined by spaces.
fn spec_command(spec: &[u8]) -> Option<String> {
    let (_, value) = crate::decode::protobuf_any(spec)?;
    let v: serde_json::Value = serde_json::from_slice(value).ok()?;
    let args: Vec<&str> = v
        .get("process")?
        .get("args")?
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    (!args.is_empty()).then(|| args.join(" "))
}

impl ContainerdStore {
    /// The namespace's containers from meta.db, with what the CRI's files say of them.
    fn cri(&self) -> &crate::cri::CriContainers {
        self.cri.get_or_init(|| {
            let meta_path = self.located.root.join(META_DB);
            let base = self
                .ns
                .containers
                .iter()
                .map(|c| ContainerRecord {
                    id: c.id.clone(),
                    name: c
                        .labels
                        .get("io.kubernetes.container.name")
                        .cloned()
                        .unwrap_or_else(|| c.id.clone()),
                    image: c.image.clone().unwrap_or_default(),
                    created: c.created.map(|t| t.format()),
                    state: ContainerStatus {
                        // Task state lives in containerd's volatile state directory; a CRI
                        // container's is in the CRI's status file.
                        status: "unknown".into(),
                        ..ContainerStatus::default()
                    },
                    rw_layer: c.snapshot_key.clone(),
                    config_path: Some(meta_path.clone()),
                    log_paths: Vec::new(),
                    command: c.spec.as_deref().and_then(spec_command),
                    labels: c.labels.clone(),
                })
                .collect();
            crate::cri::read(
                self.source.as_ref(),
                &self.located.root,
                &self.namespace,
                &self.ns.containers,
                base,
            )
        })
    }

    /// Docker's data-root when this is Docker's namespace.
    fn docker_data_root(&self) -> Option<&std::path::Path> {
        (self.engine == EngineKind::DockerContainerd)
            .then_some(self.located.docker_data_root.as_deref())
            .flatten()
    }

    /// Docker's containers, from `<data-root>/containers/*/config.v2.json`.
    fn docker_containers(&self) -> &(Vec<DockerContainer>, Vec<Problem>) {
        self.docker_containers.get_or_init(|| {
            let mut out = Vec::new();
            let mut problems = Vec::new();
            let Some(dr) = self.docker_data_root() else {
                return (out, problems);
            };
            let dir = dr.join("containers");
            let entries = match self.source.read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.is_not_found() => return (out, problems),
                Err(e) => {
                    problems.push(problem(&dir, salvor_source::error_chain(&e)));
                    return (out, problems);
                }
            };
            for e in entries.into_iter().filter(|e| e.kind == FileKind::Dir) {
                let cdir = dir.join(&e.name);
                let p = cdir.join("config.v2.json");
                let v: serde_json::Value = match self
                    .source
                    .read_limited(&p, MAX_CONTAINER_CONFIG)
                    .map_err(|e| salvor_source::error_chain(&e))
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("not JSON: {e}")))
                {
                    Ok(v) => v,
                    Err(what) => {
                        problems.push(problem(&p, what));
                        continue;
                    }
                };
                let text = |v: &serde_json::Value, k: &str| {
                    v.get(k).and_then(|x| x.as_str()).map(str::to_string)
                };
                let Some(id) = text(&v, "ID").filter(|i| !i.is_empty()) else {
                    problems.push(problem(&p, "no ID"));
                    continue;
                };
                if id.as_str() != e.name.to_string_lossy() {
                    problems.push(problem(&p, format!("ID {id} is not its directory's name")));
                }
                let state = v.get("State").cloned().unwrap_or_default();
                let int = |k: &str| state.get(k).and_then(|x| x.as_i64());
                let mut logs = Vec::new();
                let log = cdir.join(format!("{id}-json.log"));
                if self.source.exists(&log) {
                    logs.push(log.clone());
                }
                for n in 1..=64 {
                    let r = cdir.join(format!("{id}-json.log.{n}"));
                    let gz = cdir.join(format!("{id}-json.log.{n}.gz"));
                    if self.source.exists(&r) {
                        logs.push(r);
                    } else if self.source.exists(&gz) {
                        logs.push(gz);
                    } else {
                        break;
                    }
                }
                let record = ContainerRecord {
                    name: text(&v, "Name")
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    image: text(&v, "Image").unwrap_or_default(),
                    created: text(&v, "Created"),
                    state: ContainerStatus {
                        status: docker_status(&state),
                        running: state
                            .get("Running")
                            .and_then(|x| x.as_bool())
                            .unwrap_or(false),
                        exit_code: int("ExitCode"),
                        pid: int("Pid").filter(|&p| p != 0),
                        started_at: text(&state, "StartedAt"),
                        finished_at: text(&state, "FinishedAt"),
                    },
                    rw_layer: self.snaps.contains_key(&id).then(|| id.clone()),
                    config_path: Some(p),
                    log_paths: logs,
                    command: text(&v, "Path").map(|path| {
                        let args = v.get("Args").and_then(|a| a.as_array());
                        std::iter::once(path)
                            .chain(
                                args.into_iter()
                                    .flatten()
                                    .filter_map(|a| a.as_str().map(str::to_string)),
                            )
                            .collect::<Vec<_>>()
                            .join(" ")
                    }),
                    labels: v
                        .get("Config")
                        .and_then(|c| c.get("Labels"))
                        .and_then(|l| l.as_object())
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        })
                        .unwrap_or_default(),
                    id,
                };
                out.push(DockerContainer {
                    image_name: v.get("Config").and_then(|c| text(c, "Image")),
                    record,
                });
            }
            out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
            (out, problems)
        })
    }
}

impl ContainerStore for ContainerdStore {
    fn identity(&self) -> StoreIdentity {
        StoreIdentity {
            engine: self.engine,
            namespace: Some(self.namespace.clone()),
            root: self.located.root.clone(),
            driver: self.snapshotter.clone(),
            rootless_owner: None,
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    fn images(&self) -> Vec<ImageRecord> {
        self.images
            .iter()
            .map(|i| ImageRecord {
                id: i.id.clone(),
                names: i.names.clone(),
                digests: i.digests.clone(),
                layers: i.layers.clone(),
                created: i.created.clone(),
                config_as_stored: true,
                config_path: i.config_path.clone(),
            })
            .collect()
    }

    fn layers(&self) -> Vec<LayerRecord> {
        self.layers.keys().filter_map(|k| self.layer(k)).collect()
    }

    fn layer(&self, id: &str) -> Option<LayerRecord> {
        let l = self.layers.get(id)?;
        Some(LayerRecord {
            id: l.id.clone(),
            diff_id: l.diff_id.as_deref().and_then(|d| DiffId::parse(d).ok()),
            chain_id: l.id.parse().ok(),
            parent: l.parent.clone(),
            size: l.size,
            proof: match &l.present {
                Some((d, media_type)) => match Digest::parse(d) {
                    Ok(digest) => LayerProof::Blob {
                        digest,
                        media_type: media_type.clone(),
                    },
                    Err(e) => LayerProof::Unprovable {
                        why: format!("blob {d}: {e}"),
                    },
                },
                None => LayerProof::Unprovable {
                    why: self.unprovable(l).unwrap_or_default(),
                },
            },
        })
    }

    fn containers(&self) -> Result<Vec<ContainerRecord>, ModelError> {
        if self.docker_data_root().is_some() {
            return Ok(self
                .docker_containers()
                .0
                .iter()
                .map(|c| c.record.clone())
                .collect());
        }
        Ok(self.cri().records.clone())
    }

    fn volumes(&self) -> Result<Vec<VolumeRecord>, ModelError> {
        Ok(Vec::new())
    }

    fn problems(&self) -> Vec<Problem> {
        self.problems.clone()
    }

    fn damage(&self) -> Vec<EvidenceDamage> {
        self.source.damage().to_vec()
    }

    fn config_bytes(&self, image_id: &str) -> Result<Arc<Vec<u8>>, ModelError> {
        let i = self.image_by_id(image_id)?;
        i.config.clone().ok_or_else(|| {
            ModelError::NotFound(
                i.config_missing
                    .clone()
                    .unwrap_or_else(|| format!("image {image_id}: no config")),
            )
        })
    }

    fn manifest_bytes(&self, image_id: &str) -> Result<Option<Vec<u8>>, ModelError> {
        Ok(self.image_by_id(image_id)?.manifest.clone())
    }

    fn rebuild_layer(&self, layer_id: &str, out: &mut dyn Write) -> io::Result<RebuildReport> {
        let Some(l) = self.layers.get(layer_id) else {
            return Ok(self.report(
                layer_id,
                RebuildStatus::Unrebuildable,
                Some(format!("layer {layer_id} is not in the layer store")),
            ));
        };
        let (Some(diff_id), Some((digest, _))) = (&l.diff_id, &l.present) else {
            return Ok(self.report(
                layer_id,
                RebuildStatus::Unrebuildable,
                self.unprovable(l)
                    .or_else(|| Some("its diff_id is unknown".into())),
            ));
        };
        match copy_layer(
            self.source.as_ref(),
            &self.content_root(),
            digest,
            out,
            self.opts.max_layer,
        ) {
            Ok(c) => {
                let blob_ok = c.digest == *digest;
                let ok = blob_ok && c.diff_id == *diff_id;
                let mut r = self.report(
                    layer_id,
                    if ok {
                        RebuildStatus::Verified
                    } else {
                        RebuildStatus::Mismatch
                    },
                    None,
                );
                if !blob_ok {
                    r.error = Some(format!(
                        "{}: hashes to {}, not to its name {digest}",
                        c.path.display(),
                        c.digest
                    ));
                }
                r.actual = Some(c.diff_id);
                r.bytes = c.tar_size;
                r.files = c.files.unwrap_or(0);
                Ok(r)
            }
            Err(ContentError::Output(e)) => Err(e),
            Err(e @ ContentError::Stream { .. }) => Ok(self.report(
                layer_id,
                RebuildStatus::Mismatch,
                Some(format!(
                    "the blob does not decompress: {}",
                    salvor_source::error_chain(&e)
                )),
            )),
            Err(e) => Ok(self.report(
                layer_id,
                RebuildStatus::Unrebuildable,
                Some(salvor_source::error_chain(&e)),
            )),
        }
    }

    fn verify_layer(&self, layer_id: &str) -> RebuildReport {
        self.rebuild_layer(layer_id, &mut io::sink())
            .unwrap_or_else(|e| {
                self.report(layer_id, RebuildStatus::Unrebuildable, Some(e.to_string()))
            })
    }

    fn layer_view(&self, layer_id: &str) -> Result<LayerView, ModelError> {
        if !self.layers.contains_key(layer_id) {
            return Err(ModelError::NotFound(format!(
                "layer {layer_id} is not in the layer store"
            )));
        }
        Ok(self.view_of(layer_id))
    }

    fn recorded_headers(&self, layer_id: &str) -> RecordedHeaders {
        let Some(l) = self.layers.get(layer_id) else {
            return RecordedHeaders::Unavailable {
                reason: format!("layer {layer_id} is not in the layer store"),
            };
        };
        let Some((digest, _)) = &l.present else {
            return RecordedHeaders::Unavailable {
                reason: self.unprovable(l).unwrap_or_default(),
            };
        };
        let root = self.content_root();
        match blob_headers(self.source.clone(), &root, digest, self.opts.max_layer) {
            Ok(h) => RecordedHeaders::Stream {
                path: blob_path(&root, digest).unwrap_or_default(),
                headers: Box::new(h),
            },
            Err(e) => RecordedHeaders::Unavailable {
                reason: salvor_source::error_chain(&e),
            },
        }
    }

    fn rw_layer_view(&self, container_id: &str) -> Result<LayerView, ModelError> {
        let key = self.container_key(container_id)?;
        Ok(self.view_of(&key))
    }

    fn init_layer_view(&self, container_id: &str) -> Result<Option<LayerView>, ModelError> {
        let key = self.container_key(container_id)?;
        let init = format!("{key}-init");
        Ok(self.snaps.contains_key(&init).then(|| self.view_of(&init)))
    }

    fn container_problems(&self) -> Vec<Problem> {
        let mut p = self.docker_containers().1.clone();
        if self.docker_data_root().is_none() {
            p.extend(self.cri().problems.iter().cloned());
        }
        p.sort();
        p.dedup();
        p
    }

    /// A CRI container's log lines from its `/var/log/pods` files, oldest first
    /// ([`crate::cri::CriLogReader`]); none for a sandbox, a container the CRI did not make
    /// or Docker's namespace (whose logs salvor-docker reads).
    fn container_logs(&self, container_id: &str) -> Result<LogLines<'_>, ModelError> {
        if self.docker_data_root().is_some() {
            return Ok(Box::new(std::iter::empty()));
        }
        let cri = self.cri();
        let found: Vec<&ContainerRecord> = match cri.records.iter().find(|r| r.id == container_id) {
            Some(r) => vec![r],
            None => cri
                .records
                .iter()
                .filter(|r| !container_id.is_empty() && r.id.starts_with(container_id))
                .collect(),
        };
        let r = match found.as_slice() {
            [r] => *r,
            [] => return Err(ModelError::NotFound(format!("no container {container_id}"))),
            many => {
                return Err(ModelError::NotFound(format!(
                    "container {container_id}: the prefix names {} containers",
                    many.len()
                )))
            }
        };
        let not_regular = cri.not_regular.get(&r.id).cloned().unwrap_or_default();
        Ok(Box::new(crate::cri::CriLogReader::new(
            self.source.clone(),
            r.log_paths.iter().rev().cloned().collect(),
            &not_regular,
        )))
    }

    fn container_image_name(&self, container_id: &str) -> Option<String> {
        if let Some(c) = self
            .docker_containers()
            .0
            .iter()
            .find(|c| c.record.id == container_id)
        {
            return c.image_name.clone();
        }
        self.ns
            .containers
            .iter()
            .find(|c| c.id == container_id)
            .and_then(|c| c.image.clone())
    }

    fn image_last_updated(&self, image_id: &str) -> Result<Option<RecordedTime>, Problem> {
        let Ok(i) = self.image_by_id(image_id) else {
            return Ok(None);
        };
        Ok(i.updated.map(|t| RecordedTime {
            time: Timestamp {
                sec: t.unix(),
                nsec: t.nanos(),
            },
            path: self.located.root.join(META_DB),
        }))
    }

    fn layer_meta_path(&self, layer_id: &str) -> Option<PathBuf> {
        self.layers.get(layer_id)?;
        Some(self.located.root.join(META_DB))
    }

    fn layout_description(&self) -> Option<String> {
        Some(format!(
            "containerd meta.db (schema {}), namespace {}, {} snapshotter; found as {}",
            self.schema_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "unknown".into()),
            self.namespace,
            self.snapshotter,
            self.located.found_by
        ))
    }

    fn index_lists(&self, image_id: &str, manifest_digest: &str) -> bool {
        let mut ignored = Vec::new();
        let Some(bytes) = self.read_json_blob(image_id, &mut ignored) else {
            return false;
        };
        if Digest::sha256_of(&bytes).as_str() != image_id {
            return false;
        }
        serde_json::from_slice::<Index>(&bytes).is_ok_and(|i| {
            i.manifests
                .iter()
                .any(|d| d.digest.as_str() == manifest_digest)
        })
    }

    /// The manifest's, config's and layer blobs' sizes added up (Docker 26's `Size`; for
    /// an index, the index's own size too).
    fn image_size(&self, image_id: &str) -> Option<u64> {
        self.image_by_id(image_id).ok()?.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn platforms() {
        assert_eq!(
            parse_platform("linux/arm64/v8"),
            ("linux".into(), "arm64".into(), Some("v8".into()))
        );
        assert_eq!(
            parse_platform("linux"),
            ("linux".into(), "amd64".into(), None)
        );
    }

    #[test]
    fn a_root_without_meta_db_is_a_problem() {
        let d = tempfile::tempdir().expect("tempdir");
        let src: Arc<dyn Source> =
            Arc::new(salvor_source::DirSource::new(d.path()).expect("source"));
        let loc = Located {
            root: "x".into(),
            found_by: "test".into(),
            docker_data_root: None,
        };
        let o = open_root(src, &loc, &StoreOptions::default());
        assert!(o.stores.is_empty());
        assert_eq!(o.problems.len(), 1);
        assert_eq!(o.problems[0].path, Path::new("x").join(META_DB));
    }
}
