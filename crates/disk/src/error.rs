use std::io;
use std::path::PathBuf;

/// Errors from opening and mapping disk images. Every variant names the file (or the
/// device description) and, for malformed input, the structure that did not add up.
///
/// Messages do not repeat their cause: print the chain (`e` and its `source()`s joined
/// with ": ", as `salvor`'s `main` does) to see the underlying I/O error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// Opening, reading or inspecting a file of the image failed.
    #[error("{path}")]
    Io {
        /// The file (image, segment, extent, backing file, or its directory).
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A structure read from the image is malformed (out of range, absurd size, bad magic).
    #[error("{what}: {structure}: {reason}")]
    Invalid {
        /// The file or device (`gpt.qcow2`, `partition 2 of disk.raw`).
        what: String,
        /// The structure (`qcow2 header`, `GPT header`, `LVM metadata area`).
        structure: &'static str,
        /// What is wrong with it (values found, limits exceeded).
        reason: String,
    },
    /// A valid image that uses something this build refuses to read rather than mis-read.
    #[error("{what}: not supported: {reason}")]
    Unsupported {
        /// The file or device.
        what: String,
        /// The feature or format refused (`qcow2 encryption`, `VHD`).
        reason: String,
    },
    /// A file an image names (backing file, VMDK extent, E01/Ex01 segment) that the
    /// opening policy refuses: outside the image's directory, a symlink leading out, not
    /// a regular file, or unreadable.
    #[error("{referrer}: {kind} {name:?} refused: {reason}")]
    Refused {
        /// The image (or descriptor, or first segment) that names the file.
        referrer: PathBuf,
        /// `backing file`, `VMDK extent`, `EWF segment`.
        kind: &'static str,
        /// The name as recorded.
        name: String,
        /// Why the policy refused it.
        reason: String,
    },
    /// The image is too damaged to open (a segment of an EWF set is missing).
    #[error("{damage}")]
    Damaged {
        /// What is missing and what it costs.
        damage: salvor_source::EvidenceDamage,
    },
    /// A volume spec (`p3`, `lv:vg/root`) that names nothing on the disk.
    #[error("{what}: no volume {spec}: {reason}")]
    NoVolume {
        /// The image's path.
        what: String,
        /// The spec as given (`p3`, `lv:vg/root`, `auto`).
        spec: String,
        /// The volumes there are, or why the one named cannot be read.
        reason: String,
    },
}

impl DiskError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DiskError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn invalid(
        what: impl Into<String>,
        structure: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        DiskError::Invalid {
            what: what.into(),
            structure,
            reason: reason.into(),
        }
    }
    pub(crate) fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Self {
        DiskError::Unsupported {
            what: what.into(),
            reason: reason.into(),
        }
    }
    /// Wraps an I/O error met while reading a device (the description names it).
    pub(crate) fn dev(desc: String, structure: &'static str, e: io::Error) -> Self {
        DiskError::Invalid {
            what: desc,
            structure,
            reason: e.to_string(),
        }
    }
}

/// The result of this crate's fallible functions.
pub type Result<T, E = DiskError> = std::result::Result<T, E>;
