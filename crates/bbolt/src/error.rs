//! [`BoltError`]: what is wrong, in which file, at which page and offset.

use std::path::PathBuf;

/// Errors from reading a bbolt file.
///
/// Every variant names the file; the ones about a page name the page id and the file
/// offset of the structure at fault (a page header, a leaf or branch element, a bucket
/// value), and say what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BoltError {
    /// The file is shorter than the two meta pages.
    #[error("{}: {len} bytes, too small for a bbolt file ({need} needed)", file.display())]
    TooSmall {
        /// The file.
        file: PathBuf,
        /// Its length.
        len: u64,
        /// The least length a file with its page size can have.
        need: u64,
    },
    /// Neither meta page (0 and 1) is valid: bad magic, version, page size, checksum or
    /// tree pointers. Each text says what was wrong with that page.
    #[error("{}: no valid meta page: page 0: {meta0}; page 1: {meta1}", file.display())]
    NoValidMeta {
        /// The file.
        file: PathBuf,
        /// What is wrong with meta page 0.
        meta0: String,
        /// What is wrong with meta page 1 (searched at every possible page size when page 0
        /// gave none).
        meta1: String,
    },
    /// A page id that cannot be read: a meta page used as a tree page, at or past the
    /// high-water mark, past the end of the file, or whose offset overflows.
    #[error("{}: page {page} (offset {offset:#x}): {reason}", file.display())]
    OutOfRange {
        /// The file.
        file: PathBuf,
        /// The page holding the reference (or the page itself when its own span is wrong).
        page: u64,
        /// The file offset of the reference (element, bucket value or page header).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A page or element whose contents do not add up: header id not the page id,
    /// unexpected flags, elements or keys/values past the page span or inline buffer,
    /// an empty branch, unsorted or duplicate keys, a short bucket value.
    #[error("{}: page {page} (offset {offset:#x}): {reason}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// The page at fault (for an inline bucket, the page holding its value).
        page: u64,
        /// The file offset of the structure at fault.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A page reached a second time: already on the path from the root (a loop), or
    /// belonging to two buckets' trees, or the root of two buckets.
    #[error("{}: page {page} (offset {offset:#x}): {reason}", file.display())]
    Cycle {
        /// The file.
        file: PathBuf,
        /// The page holding the reference that loops.
        page: u64,
        /// The file offset of that reference.
        offset: u64,
        /// Which page is reached again, and how.
        reason: String,
    },
    /// A bound of this reader exceeded: bucket nesting or tree depth, or the budget of
    /// pages and elements one operation may visit.
    #[error("{}: page {page} (offset {offset:#x}): {what} exceeds the limit of {limit}", file.display())]
    Limit {
        /// The file.
        file: PathBuf,
        /// The page being read when the limit was hit.
        page: u64,
        /// The file offset there.
        offset: u64,
        /// Which limit (`bucket nesting depth`, `tree depth`, `pages visited`, `elements visited`).
        what: &'static str,
        /// Its value.
        limit: u64,
    },
}

impl BoltError {
    /// The page id the error is about, when it is about one.
    pub fn page(&self) -> Option<u64> {
        match self {
            BoltError::OutOfRange { page, .. }
            | BoltError::Corrupt { page, .. }
            | BoltError::Cycle { page, .. }
            | BoltError::Limit { page, .. } => Some(*page),
            _ => None,
        }
    }

    /// The file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            BoltError::TooSmall { file, .. }
            | BoltError::NoValidMeta { file, .. }
            | BoltError::OutOfRange { file, .. }
            | BoltError::Corrupt { file, .. }
            | BoltError::Cycle { file, .. }
            | BoltError::Limit { file, .. } => file,
        }
    }
}
