//! Image references the way the engine normalises them (`busybox` →
//! `docker.io/library/busybox:latest`), and back to the familiar form `docker images` shows:
//! `salvor_oci::reference`, re-exported.
pub use salvor_oci::reference::{normalize, Reference, ReferenceError};
