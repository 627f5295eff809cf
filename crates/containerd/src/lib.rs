//! containerd's state read offline, as containerd 1.7 wrote it, and each of its namespaces
//! as a store of salvor's engine-neutral model ([`salvor_model::ContainerStore`]): Docker's
//! containerd image store (namespace `moby`), Kubernetes nodes (`k8s.io`), `ctr`'s
//! `default`.
//!
//! # Principal types
//!
//! * [`locate()`]: every containerd root of the evidence ([`Located`]: dockerd-managed
//!   `<data-root>/containerd/daemon`, `/var/lib/containerd`, `config.toml`'s `root`, k3s,
//!   RKE2, microk8s); [`explicit_root`] for a root given by hand.
//! * [`open_root`] / [`open_all`] with [`StoreOptions`] (platform, size limits): one
//!   [`ContainerdStore`] per namespace ([`OpenedRoot`]). Images are keyed by their target
//!   digest (Docker 26's image id), layers by chain id (the snapshot key) and proven by
//!   their compressed blob: [`ContainerStore::rebuild_layer`] streams the decompressed blob,
//!   its sha256 checked against the diff_id and the blob's against its digest; a layer's
//!   files are its snapshot (`snapshots/<id>/fs` over its parents).
//! * [`MetaDb`]: meta.db read ([`MetaDb::read`]): the schema version, every
//!   [`Namespace`] with its [`ImageRecord`]s, [`BlobRecord`]s, [`SnapshotRecord`]s,
//!   [`ContainerRecord`]s and [`LeaseRecord`]s, and the [`Problem`]s met on the way (a
//!   record that does not decode is a problem naming its bucket path; the rest is still
//!   read).
//! * [`SnapshotterDb`]: a snapshotter's own `metadata.db` ([`SnapshotterDb::read`]): each
//!   [`BackendSnapshot`] (`<ns>/<seq>/<key>`) with its numeric id, [`Kind`] and parent, and
//!   [`SnapshotterDb::fs_dir`], the `snapshots/<id>/fs` directory holding its files.
//! * [`check_blob`], [`copy_layer`], [`blob_headers`]: one content-store blob read once,
//!   streaming: its sha256 against its name and, for a layer, the sha256 of its tar (the
//!   diff_id), bounded against decompression bombs ([`BlobCheck`], [`LayerCopy`],
//!   [`ContentError`]); its tar headers as a tar-split would record them.
//! * [`cri`]: what containerd's CRI plugin keeps of a Kubernetes node's containers: their
//!   state ([`cri::CriStatus`], the `status` files), their log files under `/var/log/pods`
//!   and [`cri::CriLogReader`], which streams the CRI log format with partial lines joined;
//!   a [`ContainerdStore`] of namespace `k8s.io` fills its container records from them.
//! * [`decode`]: Go's varints and `time.Time.MarshalBinary`, as containerd stores them.
//!
//! The files are evidence: databases are read under a size limit through [`salvor_bbolt`],
//! whose bounds make a hostile file an error, never a panic; every record that does not
//! read is a problem naming the file.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use std::sync::Arc;
//! use salvor_containerd::{explicit_root, locate, open_root, MetaDb, MetaError, StoreOptions};
//!
//! // A host with a containerd root whose meta.db is not one.
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db");
//! std::fs::create_dir_all(db.parent().unwrap())?;
//! std::fs::write(&db, vec![0u8; 8192])?;
//! let src: Arc<dyn salvor_source::Source> = Arc::new(salvor_source::DirSource::new(dir.path())?);
//!
//! let (found, problems) = locate(src.as_ref());
//! assert!(problems.is_empty());
//! assert_eq!(found[0].root, Path::new("var/lib/containerd"));
//! assert_eq!(found[0].found_by, "the default containerd root");
//! assert!(explicit_root(src.as_ref(), Path::new("var/lib")).is_err());
//!
//! // Opening it: no store, a problem naming the file.
//! let opened = open_root(src.clone(), &found[0], &StoreOptions::default());
//! assert!(opened.stores.is_empty());
//! assert!(opened.problems[0].path.ends_with("meta.db"));
//!
//! // meta.db's reader alone: an error naming the file.
//! let err = MetaDb::read(vec![0; 8192], "meta.db").unwrap_err();
//! assert!(matches!(err, MetaError::Bolt(_)));
//! assert!(err.to_string().starts_with("meta.db: "), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

#[cfg(doc)]
use salvor_model::ContainerStore;

mod content;
pub mod cri;
pub mod decode;
pub mod locate;
mod meta;
mod snapshots;
pub mod store;

pub use content::{
    blob_headers, blob_path, check_blob, copy_layer, BlobCheck, Compression, ContentError,
    LayerCopy,
};
pub use locate::{explicit_root, locate, LocateError, Located};
pub use meta::{
    BlobRecord, ContainerRecord, ImageRecord, Labels, LeaseRecord, MetaDb, MetaError, Namespace,
    Problem, SnapshotRecord, Target,
};
pub use snapshots::{BackendSnapshot, Kind, SnapshotterDb};
pub use store::{open_all, open_root, ContainerdStore, OpenedRoot, StoreOptions};
