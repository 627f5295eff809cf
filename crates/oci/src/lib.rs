//! # salvor-oci: the OCI and Docker image primitives, once
//!
//! A leaf crate (it depends only on small external crates) holding the vocabulary every
//! engine crate and the exporter share:
//!
//! - [`Digest`]: a validated `sha256:<64 lowercase hex>` content address;
//! - [`DiffId`] and [`ChainId`]: distinct newtypes over [`Digest`] (a layer's uncompressed
//!   tar digest and its position-dependent identity, as moby's `layer` package keeps them),
//!   with [`chain_id`] / [`ChainId::of`] computing the OCI image-spec chain id;
//! - [`EMPTY_LAYER`]: the diff id of the empty layer (1024 zero bytes);
//! - [`reference`](mod@reference): image references, normalised like `distribution/reference`;
//! - [`GoJson`]: Go `encoding/json` string escaping, with the Go 1.22 `\b`/`\f` change as an
//!   explicit option;
//! - [`time`]: one RFC 3339 parser and Go-compatible formatters;
//! - [`spec`]: media types, descriptors, manifests, indexes and image configs (for reading).
//!
//! ```
//! use salvor_oci::{ChainId, DiffId, Digest};
//!
//! let d: Digest = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
//!     .parse()
//!     .unwrap();
//! assert_eq!(d.short(), "5f70bf18a086");
//! assert_eq!(d, Digest::sha256_of(&[0u8; 1024]));
//! assert!("sha256:abc".parse::<Digest>().is_err());
//!
//! // A single layer's chain id is its diff id; each further one hashes "<parent> <diff>".
//! let a = DiffId::from_digest(Digest::sha256_of(b"a"));
//! let b = DiffId::from_digest(Digest::sha256_of(b"b"));
//! let top = ChainId::of(&[a.clone(), b.clone()]).unwrap();
//! let expected = Digest::sha256_of(format!("{a} {b}").as_bytes());
//! assert_eq!(top.as_digest(), &expected);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod digest;
pub mod gojson;
pub mod reference;
pub mod spec;
pub mod time;

pub use digest::{
    chain_id, chain_id_text, chain_ids, chain_ids_text, ChainId, DiffId, Digest, DigestError,
    EMPTY_LAYER,
};
pub use gojson::GoJson;
pub use reference::{Reference, ReferenceError};
pub use time::Time;
