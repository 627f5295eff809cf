//! Errors of this crate.

use std::fmt;

/// Where in the tar-split stream something happened: the 0-based index of the
/// entry in stream order, and its `position` field when it was readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryAt {
    /// 0-based index of the entry in the stream.
    pub index: u64,
    /// The entry's `position` field, if it could be read.
    pub position: Option<i64>,
}

impl fmt::Display for EntryAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "entry #{} (position {})", self.index, p),
            None => write!(f, "entry #{}", self.index),
        }
    }
}

/// Everything that can make a tar-split unusable, or a tar undecomposable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarSplitError {
    /// Reading the (compressed) tar-split stream failed: bad gzip, truncated file, I/O error.
    #[error("cannot read tar-split stream at {at}")]
    Read {
        /// Entry being read.
        at: EntryAt,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is malformed.
    #[error("malformed tar-split JSON at {at}: {detail}")]
    Json {
        /// Entry being read.
        at: EntryAt,
        /// What is wrong.
        detail: String,
    },
    /// An entry is well-formed JSON but invalid or beyond the limits.
    #[error("invalid tar-split {at}: {detail}")]
    InvalidEntry {
        /// Entry concerned.
        at: EntryAt,
        /// What is wrong.
        detail: String,
    },
    /// Writing the output failed.
    #[error("cannot write output at {at}")]
    Write {
        /// Entry being written.
        at: EntryAt,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The tar given to the disassembler is invalid (as Go's `archive/tar` would reject it).
    #[error("invalid tar at byte offset {offset} (tar entry #{entry}): {detail}")]
    Tar {
        /// Byte offset in the tar where the problem was detected.
        offset: u64,
        /// 0-based index of the tar entry being read.
        entry: u64,
        /// What is wrong.
        detail: String,
    },
    /// Two file entries with the same cleaned path (tar-split's `ErrDuplicatePath`).
    #[error(
        "duplicate path {name:?} at tar entry #{entry}: duplicates of file paths not supported"
    )]
    DuplicatePath {
        /// The path (lossy UTF-8).
        name: String,
        /// 0-based index of the tar entry.
        entry: u64,
    },
    /// Reading the tar or writing the JSON failed during disassembly.
    #[error("I/O error during disassembly at tar byte offset {offset}")]
    DisassemblyIo {
        /// Byte offset in the tar.
        offset: u64,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}
