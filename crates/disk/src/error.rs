use std::io;
use std::path::PathBuf;

/// Errors from opening and mapping disk images. Every variant names the file (or the
/// device description) and, for malformed input, the structure that did not add up.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
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
        reason: String,
    },
    /// A valid image that uses something this build refuses to read rather than mis-read.
    #[error("{what}: not supported: {reason}")]
    Unsupported { what: String, reason: String },
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
        reason: String,
    },
    /// The image is too damaged to open (a segment of an EWF set is missing).
    #[error("{damage}")]
    Damaged {
        damage: salvor_source::EvidenceDamage,
    },
    /// A volume spec (`p3`, `lv:vg/root`) that names nothing on the disk.
    #[error("{what}: no volume {spec}: {reason}")]
    NoVolume {
        what: String,
        spec: String,
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

pub type Result<T, E = DiskError> = std::result::Result<T, E>;
