//! Streaming reader, byte-exact assembler and disassembler for **tar-split**
//! (`tar-split.json.gz` / `tar-data.json.gz`), the metadata Docker keeps to
//! rebuild a layer's uncompressed tar (whose sha256 is the layer's diff_id)
//! from the extracted files.
//!
//! # Data flow
//!
//! ```text
//!  tar-split.json.gz ──open_gz──▶ Unpacker ──Entry──▶ assemble ──▶ out (tar bytes)
//!                                                     ▲   │
//!                                  FileGetter::get ───┘   └──▶ AssemblyReport { findings }
//!
//!  tar ──disassemble──▶ tar-split JSON lines  (fixtures, round trips)
//! ```
//!
//! * [`Unpacker`] streams [`Entry`] values out of the JSON (one entry's text in
//!   memory at a time, every allocation bounded; see [`MAX_SEGMENT_PAYLOAD`],
//!   [`MAX_FILE_SIZE`], [`MAX_NAME_LEN`]). [`open_gz`] adds gzip decoding.
//! * [`assemble`] (or a reusable [`Assembler`]) writes segments verbatim and, for
//!   each file entry, reads exactly `size` bytes through a [`FileGetter`],
//!   checking the CRC-64/GO-ISO ([`crc64_go_iso`], [`Crc64Hasher`]). Per-file
//!   problems never stop it: they become [`Finding`]s and the stream keeps its
//!   shape (missing data is zero-filled, long files are truncated).
//! * Beyond what tar-split's own Go assembler does, the raw headers in the
//!   segment preceding each file entry are parsed (a mimic of Go's
//!   `archive/tar` reader) to: recover names that old tar-split stored lossily
//!   (U+FFFD); emit no data for header-only typeflags (link, symlink, devices,
//!   dir, fifo) whose size field is non-zero; and re-sparsify old-GNU and PAX
//!   0.0/0.1 sparse files (only the data regions are written). PAX 1.0 sparse
//!   files cannot be rebuilt ([`FindingKind::SparseUnsupported`]).
//! * [`headers`] streams, for each file entry, the full tar header that precedes it
//!   ([`TarHeader`]: mode, owner, mtime, link name, device numbers, PAX records with
//!   `SCHILY.xattr.*`): what the engine itself applied when it extracted the layer, which
//!   the store's tamper audit compares with the layer directory.
//! * [`assembled_size`] computes the output length from the entries alone.
//! * [`disassemble`] (or [`Disassembler`]) turns a tar into the JSON that
//!   vbatts/tar-split's `NewInputTarStream` writes.
//!
//! Nothing here touches the host file system: names are handed to the
//! [`FileGetter`] as raw bytes, exactly as stored.
//!
//! # Example
//!
//! A tar, its tar-split, and the tar rebuilt byte for byte from the tar-split and the
//! files alone:
//!
//! ```
//! use std::collections::HashMap;
//! use std::io::Cursor;
//! use salvor_tarsplit::{assemble, disassemble, FileGetter, FileReader, GetError, Unpacker};
//!
//! let mut b = tar::Builder::new(Vec::new());
//! let mut h = tar::Header::new_ustar();
//! h.set_path("etc/hostname").unwrap();
//! h.set_size(4);
//! h.set_mode(0o644);
//! h.set_cksum();
//! b.append(&h, &b"box\n"[..]).unwrap();
//! let tar = b.into_inner().unwrap();
//! let mut json = Vec::new();
//! disassemble(&tar[..], &mut json).unwrap();
//!
//! // The layer's files, as the engine extracted them.
//! struct Files(HashMap<Vec<u8>, Vec<u8>>);
//! impl FileGetter for Files {
//!     fn get(&self, name: &[u8]) -> Result<Box<dyn FileReader>, GetError> {
//!         match self.0.get(name) {
//!             Some(b) => Ok(Box::new(Cursor::new(b.clone()))),
//!             None => Err(GetError::NotFound(String::from_utf8_lossy(name).into_owned())),
//!         }
//!     }
//! }
//! let files = Files(HashMap::from([(b"etc/hostname".to_vec(), b"box\n".to_vec())]));
//!
//! let mut out = Vec::new();
//! let report = assemble(Unpacker::new(&json[..]), &files, &mut out).unwrap();
//! assert_eq!(out, tar);
//! assert_eq!((report.files, report.file_bytes), (1, 4));
//! assert!(report.findings.is_empty());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assemble;
mod crc64;
mod disassemble;
mod error;
mod header;
mod headers;
mod kept;
mod unpack;

pub use assemble::{
    assemble, assembled_size, Assembler, AssemblyReport, FileGetter, FileReader, Finding,
    FindingKind, GetError, LendingWrite, Limits, DEFAULT_MAX_FILL,
};
pub use crc64::{crc64_go_iso, Crc64Hasher};
pub use disassemble::{disassemble, Disassembler, DisassemblyReport, FileChunk, FilePutter};
pub use error::{EntryAt, TarSplitError};
pub use headers::{headers, FileHeader, HeaderError, HeaderIter, TarHeader};
pub use kept::{parse, Entries, Parsed};
pub use unpack::{open_gz, Entry, Unpacker, MAX_FILE_SIZE, MAX_NAME_LEN, MAX_SEGMENT_PAYLOAD};

/// A tar member name as a path relative to the layer root: Go's `path.Clean("/" + name)`
/// without the leading slash, "" for the root (`./a`, `/a`, `a/`, `../../a` all give `a`):
/// how the engine's extraction places a member, so `..` never leaves the layer.
///
/// ```
/// assert_eq!(salvor_tarsplit::rooted_clean(b"../../etc/./shadow/"), b"etc/shadow");
/// assert_eq!(salvor_tarsplit::rooted_clean(b"./"), b"");
/// ```
pub fn rooted_clean(name: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join(&b'/')
}

/// The empty layer tar: 1024 zero bytes (its diff id is `salvor_oci::EMPTY_LAYER`).
pub fn empty_layer_tar() -> [u8; 1024] {
    [0u8; 1024]
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn empty_layer() {
        let d = sha2::Sha256::digest(empty_layer_tar());
        assert_eq!(
            format!("sha256:{}", hex::encode(d)),
            salvor_oci::EMPTY_LAYER.as_str()
        );
    }
}
