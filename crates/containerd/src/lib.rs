//! containerd's state read offline, as containerd 1.7 wrote it: the metadata database
//! (`io.containerd.metadata.v1.bolt/meta.db`) and a snapshotter's `metadata.db`, decoded. The
//! first part of salvor's containerd store (Docker's containerd image store, Kubernetes
//! nodes), and its content store's blobs checked; the engine-neutral model comes next.
//!
//! # Principal types
//!
//! * [`MetaDb`]: meta.db read ([`MetaDb::read`]): the schema version, every
//!   [`Namespace`] with its [`ImageRecord`]s, [`BlobRecord`]s, [`SnapshotRecord`]s,
//!   [`ContainerRecord`]s and [`LeaseRecord`]s, and the [`Problem`]s met on the way (a
//!   record that does not decode is a problem naming its bucket path; the rest is still
//!   read).
//! * [`SnapshotterDb`]: a snapshotter's own `metadata.db` ([`SnapshotterDb::read`]): each
//!   [`BackendSnapshot`] (`<ns>/<seq>/<key>`) with its numeric id, [`Kind`] and parent, and
//!   [`SnapshotterDb::fs_dir`], the `snapshots/<id>/fs` directory holding its files.
//! * [`check_blob`]: one content-store blob read once, streaming: its sha256 against its
//!   name and, for a compressed layer, the sha256 of what it decompresses to (the diff_id),
//!   bounded against decompression bombs ([`BlobCheck`], [`ContentError`]).
//! * [`decode`]: Go's varints and `time.Time.MarshalBinary`, as containerd stores them.
//!
//! The file is evidence: it is read from bytes the caller read under a size limit,
//! through [`salvor_bbolt`], whose bounds make a hostile file an error, never a panic.
//!
//! # Example
//!
//! ```
//! use salvor_containerd::{MetaDb, MetaError};
//!
//! // Not a bbolt file: an error naming the file.
//! let err = MetaDb::read(vec![0; 8192], "meta.db").unwrap_err();
//! assert!(matches!(err, MetaError::Bolt(_)));
//! assert!(err.to_string().starts_with("meta.db: "), "{err}");
//! ```

#![deny(missing_docs)]

mod content;
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
