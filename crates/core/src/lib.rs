//! `salvor-core`: the library façade of salvor, as `gitoxide-core` is gitoxide's.
//!
//! It owns opening the evidence ([`Evidence::open`]: a directory, an archive, a disk image
//! and its volume, the host's fstab, LVM thin pools), finding the stores on the host
//! ([`Host::open`]), the commands' logic, and the id resolver ([`target`]). The `salvor`
//! binary parses arguments, calls this crate, and prints.
//!
//! Principal types: [`Evidence`] (what `--root` names, opened read-only, with its damage and
//! the Docker data-root and containerd roots found in it; [`EvidenceOptions`] are the global
//! options about it, [`EvidenceError`] why it could not be opened) and [`Host`] (the stores
//! found in it: Docker's graphdriver store, each namespace of each containerd root).
//!
//! # Example
//!
//! ```
//! use salvor_core::{Evidence, EvidenceOptions, Host};
//!
//! // A real engine's data-root, archived (a committed fixture; decompressed into $TMPDIR).
//! let archive = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/engine/overlay2/data-root.tar.zst");
//! let evidence = Evidence::open(archive.as_ref(), EvidenceOptions::default())?;
//! assert!(evidence.volume().is_none() && evidence.damage().is_empty());
//! assert_eq!(evidence.data_root(), Some(std::path::Path::new(""))); // the archive is the data-root
//!
//! let host = Host::open(&evidence)?;
//! assert!(host.damage().is_empty() && host.docker_only());
//! assert_eq!(host.metadata_problems(), (0, 0)); // nothing unreadable
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod evidence;
pub mod extract;
pub mod format;
pub mod fstab;
pub mod host;
pub mod images;
pub mod info;
pub mod inspect;
pub mod inspect_containerd;
pub mod probe;
pub mod ps;
pub mod rootfs;
pub mod stored;
pub mod target;

pub use evidence::{DamagedEvidence, Evidence, EvidenceError, EvidenceOptions, EXIT_DAMAGED};
pub use host::Host;
pub use probe::{probe, ProbeReport};
