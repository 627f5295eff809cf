//! [`ThinError`], and how it is rendered where it becomes text (an [`io::Error`] from
//! [`BlockDevice::read_at`](salvor_source::BlockDevice::read_at), a warning).

use std::io;
use std::path::PathBuf;

use salvor_source::SourceError;

/// Errors from reading a thin pool.
///
/// Messages do not repeat their cause: print the chain (`e` and its `source()`s joined
/// with ": ") to see the underlying I/O error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThinError {
    /// Block 0 of the metadata device is not a thin-pool superblock (the text says which
    /// device and what magic was found).
    #[error("not dm-thin metadata: {0}")]
    NotThinMetadata(String),
    /// A superblock or B-tree node whose crc32c does not match (strict pools only).
    #[error("metadata block {block}: {what} checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// `superblock` or `B-tree node`.
        what: &'static str,
        /// The metadata block number.
        block: u64,
        /// The checksum stored in the block.
        stored: u32,
        /// The checksum of the block's bytes.
        computed: u32,
    },
    /// A metadata block whose contents do not add up (bad flags, sizes, keys, loops).
    #[error("metadata block {block}: {reason}")]
    Corrupt {
        /// The metadata block number (0: the superblock, or the pool as a whole).
        block: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A metadata or data block number past the pool's or the device's end.
    #[error("{what} {block} is out of range (limit {limit})")]
    OutOfRange {
        /// `metadata block` or `data block`.
        what: &'static str,
        /// The block number found.
        block: u64,
        /// The number of blocks there are.
        limit: u64,
    },
    /// A valid pool using something this reader refuses to guess at (metadata version,
    /// block size, incompatible features).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The thin device id is not in the pool's mapping tree.
    #[error("thin device {0} is not in the pool")]
    NoSuchDevice(u64),
    /// Reading the metadata or data device failed.
    #[error("{what}")]
    Io {
        /// The device and what was being read (`meta.img: metadata block 7`).
        what: String,
        /// The device's error.
        #[source]
        source: io::Error,
    },
    /// Opening a pool file inside an evidence [`Source`](salvor_source::Source) failed
    /// ([`SourceFile::open`](crate::SourceFile::open)).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Docker's devicemapper records (read by `salvor-docker`) do not add up.
    #[error("{path}: {reason}")]
    Docker {
        /// The record file (`devicemapper/metadata/<id>`, `deviceset-metadata`).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl ThinError {
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            ThinError::Io { what, source } => {
                io::Error::new(source.kind(), format!("{what}: {source}"))
            }
            e => io::Error::new(io::ErrorKind::InvalidData, salvor_source::error_chain(&e)),
        }
    }
}
