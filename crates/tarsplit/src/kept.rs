//! A tar-split parsed once and kept, for consumers that each need the whole entry stream
//! (the archive header's size, the rebuild, the tamper audit's headers): inflating and
//! decoding the JSON once instead of once per consumer.

use std::sync::Arc;

use crate::assemble::Planner;
use crate::error::TarSplitError;
use crate::unpack::Entry;

/// Bytes counted per kept entry beyond its payload and name (the enum and vector slack).
const ENTRY_OVERHEAD: usize = 64;

/// A tar-split's entries in stream order, parsed once and shared (cloning is cheap).
#[derive(Debug, Clone)]
pub struct Entries {
    entries: Arc<[Entry]>,
    bytes: usize,
}

impl Entries {
    /// Memory the entries take, as counted against [`parse`]'s limit.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries again, in stream order, as an [`crate::Unpacker`] gives them (for
    /// [`crate::Assembler::assemble`], [`crate::headers`], [`crate::assembled_size`]).
    pub fn iter(&self) -> impl Iterator<Item = Result<Entry, TarSplitError>> + Send + 'static {
        let entries = self.entries.clone();
        (0..entries.len()).map(move |i| Ok(entries[i].clone()))
    }
}

/// What [`parse`] found: the assembled stream's size, and the entries when they fit.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Size of the assembled stream ([`crate::assembled_size`]).
    pub size: u64,
    /// The entries, unless they take more than the limit given to [`parse`].
    pub kept: Option<Entries>,
}

/// Reads every entry of `entries` once: the size of the stream they assemble to, and the
/// entries themselves while they take at most `max_bytes` of memory (past it they are
/// dropped and the reading goes on for the size alone). Errors as [`crate::assembled_size`].
///
/// ```
/// let json = br#"{"type":2,"payload":"AAAA","position":0}
/// {"type":1,"name":"a","size":0,"position":1}
/// "#;
/// let parsed = salvor_tarsplit::parse(salvor_tarsplit::Unpacker::new(&json[..]), 1 << 20)?;
/// assert_eq!(parsed.size, 3);
/// let kept = parsed.kept.expect("small enough to keep");
/// assert_eq!(salvor_tarsplit::assembled_size(kept.iter())?, 3);
/// assert!(salvor_tarsplit::parse(salvor_tarsplit::Unpacker::new(&json[..]), 10)?.kept.is_none());
/// # Ok::<(), salvor_tarsplit::TarSplitError>(())
/// ```
pub fn parse(
    entries: impl IntoIterator<Item = Result<Entry, TarSplitError>>,
    max_bytes: usize,
) -> Result<Parsed, TarSplitError> {
    let mut planner = Planner::default();
    let mut total = 0u64;
    let mut kept: Option<Vec<Entry>> = Some(Vec::new());
    let mut bytes = 0usize;
    for entry in entries {
        let entry = entry?;
        match &entry {
            Entry::Segment { payload, .. } => {
                let start = total;
                total += payload.len() as u64;
                planner.segment(payload.clone(), start);
                bytes = bytes.saturating_add(payload.len() + ENTRY_OVERHEAD);
            }
            Entry::File {
                name,
                name_from_raw,
                size,
                crc,
                ..
            } => {
                let d = planner.file(name, *name_from_raw, *size, *crc);
                total += d.plan.emitted(*size);
                bytes = bytes.saturating_add(name.len() + ENTRY_OVERHEAD);
            }
        }
        if bytes > max_bytes {
            kept = None;
        }
        if let Some(k) = kept.as_mut() {
            k.push(entry);
        }
    }
    Ok(Parsed {
        size: total,
        kept: kept.map(|k| Entries {
            entries: k.into(),
            bytes,
        }),
    })
}
