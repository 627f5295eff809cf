//! `io.containerd.metadata.v1.bolt/meta.db`, decoded: namespaces and their images,
//! content blobs, snapshots, containers and leases (layout in `stores.md` §1.4).
//!
//! Each record keeps what containerd stored and nothing more; a field that is missing or
//! does not decode is `None` and a [`Problem`] names the bucket path, so one bad record
//! never hides the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salvor_bbolt::{BoltError, Bucket, Db, EntryKind};
use salvor_oci::Time;

use crate::decode::{go_time, varint};

/// Labels (or annotations): key → value, as stored.
pub type Labels = BTreeMap<String, String>;

/// A content descriptor as an image's `target` records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// `sha256:<hex>`.
    pub digest: Option<String>,
    /// The media type (`application/vnd.oci.image.index.v1+json`, …).
    pub media_type: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
}

/// `v1/<ns>/images/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The image name (`docker.io/library/busybox:1`, `moby-dangling@sha256:…`).
    pub name: String,
    /// What the name points at.
    pub target: Target,
    /// `createdat`.
    pub created: Option<Time>,
    /// `updatedat`.
    pub updated: Option<Time>,
    /// `labels/`.
    pub labels: Labels,
    /// `annotations/` (the target descriptor's).
    pub annotations: Labels,
}

/// `v1/<ns>/content/blob/<digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    /// The blob's digest (the key).
    pub digest: String,
    /// `size`.
    pub size: Option<i64>,
    /// `createdat`.
    pub created: Option<Time>,
    /// `updatedat`.
    pub updated: Option<Time>,
    /// `labels/` (`containerd.io/uncompressed`, gc references, distribution sources …).
    pub labels: Labels,
}

/// `v1/<ns>/snapshots/<snapshotter>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The snapshotter (`overlayfs`, `native`, …).
    pub snapshotter: String,
    /// The key in this namespace (a chain id for image layers, a container id …).
    pub key: String,
    /// `name`: the snapshotter's own key, `<ns>/<seq>/<key>`.
    pub backend_name: Option<String>,
    /// `parent`: the parent's key in this namespace.
    pub parent: Option<String>,
    /// `children/` keys (may name snapshots that are gone: walk `parent` instead).
    pub children: Vec<String>,
    /// `createdat`.
    pub created: Option<Time>,
    /// `updatedat`.
    pub updated: Option<Time>,
    /// `labels/`.
    pub labels: Labels,
}

/// `v1/<ns>/containers/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// The container id (the key).
    pub id: String,
    /// `image`: the image name it was created from.
    pub image: Option<String>,
    /// `snapshotter`.
    pub snapshotter: Option<String>,
    /// `snapshotKey`: its read-write snapshot.
    pub snapshot_key: Option<String>,
    /// `sandboxid` (CRI: the pod sandbox).
    pub sandbox_id: Option<String>,
    /// `runtime/name` (`io.containerd.runc.v2`).
    pub runtime: Option<String>,
    /// `spec`: a protobuf `Any`, bytes as stored.
    pub spec: Option<Vec<u8>>,
    /// `createdat`.
    pub created: Option<Time>,
    /// `updatedat`.
    pub updated: Option<Time>,
    /// `labels/` (CRI: `io.kubernetes.pod.name`, …).
    pub labels: Labels,
    /// `extensions/`: name → a protobuf `Any`, bytes as stored (CRI:
    /// `io.cri-containerd.container.metadata`, `io.cri-containerd.sandbox.metadata`).
    pub extensions: BTreeMap<String, Vec<u8>>,
}

/// `v1/<ns>/leases/<id>`: a garbage-collection root (an operation in progress, a
/// container's snapshots, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The lease id (the key).
    pub id: String,
    /// `createdat`.
    pub created: Option<Time>,
    /// `labels/` (`containerd.io/gc.expire`, …).
    pub labels: Labels,
    /// `snapshots/<snapshotter>/<key>` it holds, as (snapshotter, key).
    pub snapshots: Vec<(String, String)>,
    /// `content/<digest>` it holds.
    pub content: Vec<String>,
}

/// One namespace of meta.db.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// The namespace (`moby`, `k8s.io`, `default`, …).
    pub name: String,
    /// Its labels (`v1/<ns>/labels`).
    pub labels: Labels,
    /// Images by name order.
    pub images: Vec<ImageRecord>,
    /// Content blobs by digest order.
    pub blobs: Vec<BlobRecord>,
    /// Snapshots, by snapshotter then key.
    pub snapshots: Vec<SnapshotRecord>,
    /// Containers by id.
    pub containers: Vec<ContainerRecord>,
    /// Leases by id.
    pub leases: Vec<LeaseRecord>,
}

/// Something in meta.db that could not be read: the bucket path (`v1/moby/images/x`) and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The bucket path inside it, `/`-separated.
    pub at: String,
    /// What is wrong.
    pub what: String,
}

/// meta.db as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetaDb {
    /// `v1/version` (3 for containerd 1.4–2.x).
    pub schema_version: Option<i64>,
    /// The namespaces by name.
    pub namespaces: Vec<Namespace>,
    /// What could not be read; the rest still is.
    pub problems: Vec<Problem>,
}

/// The file is not a bbolt file salvor can read, or has no `v1` bucket.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The bbolt layer refused the file.
    #[error(transparent)]
    Bolt(#[from] BoltError),
    /// No `v1` bucket at the root: not containerd metadata (or a newer schema).
    #[error("{}: no v1 bucket: not containerd metadata", .0.display())]
    NotMeta(PathBuf),
}

struct Reader<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Reader<'_> {
    fn problem(&mut self, at: &str, what: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            at: at.to_string(),
            what: what.into(),
        });
    }

    /// Sub-buckets of `b` by name; values where buckets are expected are problems.
    fn buckets<'db>(&mut self, b: &Bucket<'db>, at: &str) -> Vec<(String, Bucket<'db>)> {
        self.buckets_among(b, at, false)
    }

    /// Sub-buckets of `b` by name; values are problems unless `values_too` (a bucket that
    /// holds both, like `v1` with its `version`).
    fn buckets_among<'db>(
        &mut self,
        b: &Bucket<'db>,
        at: &str,
        values_too: bool,
    ) -> Vec<(String, Bucket<'db>)> {
        let mut out = Vec::new();
        for e in b.iter() {
            match e {
                Ok(e) => {
                    let name = text(e.key());
                    match e.into_bucket() {
                        Some(sub) => out.push((name, sub)),
                        None if values_too => {}
                        None => self.problem(
                            &format!("{at}/{name}"),
                            "a value where a bucket was expected",
                        ),
                    }
                }
                Err(err) => {
                    self.problem(at, err.to_string());
                    break;
                }
            }
        }
        out
    }

    /// Values of `b` by key (nested buckets skipped).
    fn values(&mut self, b: &Bucket<'_>, at: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for e in b.iter() {
            match e {
                Ok(e) => {
                    if let EntryKind::Value(v) = e.kind() {
                        out.insert(text(e.key()), v.to_vec());
                    }
                }
                Err(err) => {
                    self.problem(at, err.to_string());
                    break;
                }
            }
        }
        out
    }

    fn sub<'db>(&mut self, b: &Bucket<'db>, name: &str, at: &str) -> Option<Bucket<'db>> {
        match b.bucket(name.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                self.problem(&format!("{at}/{name}"), e.to_string());
                None
            }
        }
    }

    fn labels(&mut self, b: &Bucket<'_>, name: &str, at: &str) -> Labels {
        match self.sub(b, name, at) {
            Some(l) => self
                .values(&l, &format!("{at}/{name}"))
                .into_iter()
                .map(|(k, v)| (k, text(&v)))
                .collect(),
            None => Labels::new(),
        }
    }

    fn time(&mut self, vals: &BTreeMap<String, Vec<u8>>, key: &str, at: &str) -> Option<Time> {
        let v = vals.get(key)?;
        let t = go_time(v);
        if t.is_none() {
            self.problem(&format!("{at}/{key}"), "not a Go binary time");
        }
        t
    }

    fn int(&mut self, vals: &BTreeMap<String, Vec<u8>>, key: &str, at: &str) -> Option<i64> {
        let v = vals.get(key)?;
        let n = varint(v);
        if n.is_none() {
            self.problem(&format!("{at}/{key}"), "not a varint");
        }
        n
    }

    fn namespace(&mut self, name: String, ns: &Bucket<'_>) -> Namespace {
        let at = format!("v1/{name}");
        let mut out = Namespace {
            labels: self.labels(ns, "labels", &at),
            name,
            ..Namespace::default()
        };
        if let Some(images) = self.sub(ns, "images", &at) {
            let at = format!("{at}/images");
            for (name, b) in self.buckets(&images, &at) {
                let at = format!("{at}/{name}");
                let vals = self.values(&b, &at);
                let target = match self.sub(&b, "target", &at) {
                    Some(t) => {
                        let tat = format!("{at}/target");
                        let tv = self.values(&t, &tat);
                        Target {
                            digest: tv.get("digest").map(|v| text(v)),
                            media_type: tv.get("mediatype").map(|v| text(v)),
                            size: self.int(&tv, "size", &tat),
                        }
                    }
                    None => {
                        self.problem(&at, "image without a target");
                        Target::default()
                    }
                };
                out.images.push(ImageRecord {
                    target,
                    created: self.time(&vals, "createdat", &at),
                    updated: self.time(&vals, "updatedat", &at),
                    labels: self.labels(&b, "labels", &at),
                    annotations: self.labels(&b, "annotations", &at),
                    name,
                });
            }
        }
        if let Some(blobs) = self
            .sub(ns, "content", &at)
            .and_then(|c| self.sub(&c, "blob", &format!("{at}/content")))
        {
            let at = format!("{at}/content/blob");
            for (digest, b) in self.buckets(&blobs, &at) {
                let at = format!("{at}/{digest}");
                let vals = self.values(&b, &at);
                out.blobs.push(BlobRecord {
                    size: self.int(&vals, "size", &at),
                    created: self.time(&vals, "createdat", &at),
                    updated: self.time(&vals, "updatedat", &at),
                    labels: self.labels(&b, "labels", &at),
                    digest,
                });
            }
        }
        if let Some(snaps) = self.sub(ns, "snapshots", &at) {
            let at = format!("{at}/snapshots");
            for (snapshotter, sb) in self.buckets(&snaps, &at) {
                let at = format!("{at}/{snapshotter}");
                for (key, b) in self.buckets(&sb, &at) {
                    let at = format!("{at}/{key}");
                    let vals = self.values(&b, &at);
                    let children = match self.sub(&b, "children", &at) {
                        Some(c) => self
                            .values(&c, &format!("{at}/children"))
                            .into_keys()
                            .collect(),
                        None => Vec::new(),
                    };
                    out.snapshots.push(SnapshotRecord {
                        snapshotter: snapshotter.clone(),
                        backend_name: vals.get("name").map(|v| text(v)),
                        parent: vals
                            .get("parent")
                            .map(|v| text(v))
                            .filter(|p| !p.is_empty()),
                        children,
                        created: self.time(&vals, "createdat", &at),
                        updated: self.time(&vals, "updatedat", &at),
                        labels: self.labels(&b, "labels", &at),
                        key,
                    });
                }
            }
        }
        if let Some(cs) = self.sub(ns, "containers", &at) {
            let at = format!("{at}/containers");
            for (id, b) in self.buckets(&cs, &at) {
                let at = format!("{at}/{id}");
                let vals = self.values(&b, &at);
                let runtime = self.sub(&b, "runtime", &at).and_then(|r| {
                    self.values(&r, &format!("{at}/runtime"))
                        .get("name")
                        .map(|v| text(v))
                });
                out.containers.push(ContainerRecord {
                    image: vals.get("image").map(|v| text(v)),
                    snapshotter: vals.get("snapshotter").map(|v| text(v)),
                    snapshot_key: vals.get("snapshotKey").map(|v| text(v)),
                    sandbox_id: vals.get("sandboxid").map(|v| text(v)),
                    spec: vals.get("spec").cloned(),
                    runtime,
                    created: self.time(&vals, "createdat", &at),
                    updated: self.time(&vals, "updatedat", &at),
                    labels: self.labels(&b, "labels", &at),
                    extensions: match self.sub(&b, "extensions", &at) {
                        Some(x) => self.values(&x, &format!("{at}/extensions")),
                        None => BTreeMap::new(),
                    },
                    id,
                });
            }
        }
        if let Some(ls) = self.sub(ns, "leases", &at) {
            let at = format!("{at}/leases");
            for (id, b) in self.buckets(&ls, &at) {
                let at = format!("{at}/{id}");
                let vals = self.values(&b, &at);
                let mut snapshots = Vec::new();
                if let Some(s) = self.sub(&b, "snapshots", &at) {
                    let sat = format!("{at}/snapshots");
                    for (snapshotter, keys) in self.buckets(&s, &sat) {
                        for key in self
                            .values(&keys, &format!("{sat}/{snapshotter}"))
                            .into_keys()
                        {
                            snapshots.push((snapshotter.clone(), key));
                        }
                    }
                }
                let content = match self.sub(&b, "content", &at) {
                    Some(c) => self
                        .values(&c, &format!("{at}/content"))
                        .into_keys()
                        .collect(),
                    None => Vec::new(),
                };
                out.leases.push(LeaseRecord {
                    created: self.time(&vals, "createdat", &at),
                    labels: self.labels(&b, "labels", &at),
                    snapshots,
                    content,
                    id,
                });
            }
        }
        out
    }
}

impl MetaDb {
    /// Reads meta.db from its bytes (read by the caller under a size limit); `file` names
    /// it in errors and problems.
    pub fn read(bytes: Vec<u8>, file: impl Into<PathBuf>) -> Result<MetaDb, MetaError> {
        let file = file.into();
        let db = Db::open(bytes, file.clone())?;
        let root = db.root();
        let v1 = root
            .bucket(b"v1")?
            .ok_or_else(|| MetaError::NotMeta(file.clone()))?;
        let mut r = Reader {
            file: &file,
            problems: Vec::new(),
        };
        let top = r.values(&v1, "v1");
        let schema_version = r.int(&top, "version", "v1");
        let mut namespaces = Vec::new();
        for (name, ns) in r.buckets_among(&v1, "v1", true) {
            namespaces.push(r.namespace(name, &ns));
        }
        Ok(MetaDb {
            schema_version,
            namespaces,
            problems: r.problems,
        })
    }

    /// The namespace named `name`.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }
}
