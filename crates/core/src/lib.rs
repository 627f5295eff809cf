//! `salvor-core`: the library façade of salvor, as `gitoxide-core` is gitoxide's.
//!
//! It owns opening the evidence ([`Evidence::open`]: a directory, an archive, a disk image
//! and its volume, the host's fstab, LVM thin pools), finding the stores on the host
//! ([`Host::open`]), the commands' logic, and the id resolver ([`target`]). The `salvor`
//! binary parses arguments, calls this crate, and prints.

#![warn(missing_docs)]

pub mod evidence;
pub mod extract;
pub mod format;
pub mod fstab;
pub mod host;
pub mod images;
pub mod info;
pub mod inspect;
pub mod probe;
pub mod ps;
pub mod rootfs;
pub mod target;

pub use evidence::{DamagedEvidence, Evidence, EvidenceError, EvidenceOptions, EXIT_DAMAGED};
pub use host::Host;
pub use probe::{probe, ProbeReport};
