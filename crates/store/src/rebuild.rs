//! Rebuilding a layer's exact tar stream from its tar-split and its files on disk.
//!
//! [`Store::rebuild_layer`](crate::Store::rebuild_layer) streams the tar-split through [`salvor_tarsplit::assemble`], with a
//! [`LayerFileGetter`] that looks every file name up *inside* the layer's directories (a
//! `../../etc/shadow` in the metadata resolves to the layer's own `etc/shadow`, symlinks are
//! resolved inside the layer root, and only regular files are ever opened). The output is
//! hashed as it is written and compared with the layer's diff_id.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use salvor_source::{resolve_in_root, FileKind, Source};
use salvor_tarsplit::{FileGetter, FileReader, GetError};

use crate::{Layer, Result, Store, StoreError, TarSplitRef};

/// Looks files up in a layer's directories, first match wins.
pub struct LayerFileGetter<'a> {
    pub source: &'a dyn Source,
    pub roots: Vec<PathBuf>,
}

impl FileGetter for LayerFileGetter<'_> {
    fn get(&self, name: &[u8]) -> std::result::Result<Box<dyn FileReader>, GetError> {
        let rel = Path::new(OsStr::from_bytes(name));
        let shown = String::from_utf8_lossy(name);
        if self.roots.is_empty() {
            return Err(GetError::NotFound(format!(
                "{shown}: the layer's files are not available"
            )));
        }
        for root in &self.roots {
            let phys = match resolve_in_root(self.source, root, rel, false) {
                Ok(p) => p,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(GetError::Io(format!("{shown}: {e}"))),
            };
            let md = match self.source.metadata(&phys) {
                Ok(m) => m,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(GetError::Io(format!("{}: {e}", phys.display()))),
            };
            if md.kind != FileKind::Regular {
                return Err(GetError::NotRegular(format!(
                    "{} is a {}, not a regular file",
                    phys.display(),
                    md.kind
                )));
            }
            return match self.source.open(&phys) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) => Err(GetError::Io(e.to_string())),
            };
        }
        Err(GetError::NotFound(format!(
            "{shown}: not found in {}",
            self.roots[0].display()
        )))
    }
}

/// How a rebuild ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebuildStatus {
    /// sha256 of the rebuilt stream equals the diff id and every file's CRC matched.
    Verified,
    /// The stream was rebuilt but its sha256 is not the diff id (findings say why).
    Mismatch,
    /// The layer could not be rebuilt at all (no tar-split, unreadable tar-split).
    Unrebuildable,
}

/// What happened when one layer was rebuilt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildReport {
    pub chain_id: String,
    pub diff_id: Option<String>,
    /// `sha256:<hex>` of the stream actually produced.
    pub actual: Option<String>,
    pub bytes: u64,
    pub files: u64,
    pub status: RebuildStatus,
    /// Per-file findings (missing, changed, …), in stream order.
    pub findings: Vec<FileFinding>,
    /// Why the layer is unrebuildable, when it is.
    pub error: Option<String>,
}

/// One per-file finding, serialisable.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileFinding {
    /// The file name as stored (lossy UTF-8 for display; `name_hex` is exact).
    pub path: String,
    pub name_hex: Option<String>,
    pub kind: String,
    pub detail: String,
}

impl From<&salvor_tarsplit::Finding> for FileFinding {
    fn from(f: &salvor_tarsplit::Finding) -> Self {
        let path = String::from_utf8_lossy(&f.name).into_owned();
        let name_hex = if std::str::from_utf8(&f.name).is_err() {
            Some(hex::encode(&f.name))
        } else {
            None
        };
        let (kind, detail) = describe_finding(&f.kind);
        FileFinding {
            path,
            name_hex,
            kind: kind.to_string(),
            detail,
        }
    }
}

fn describe_finding(k: &salvor_tarsplit::FindingKind) -> (&'static str, String) {
    use salvor_tarsplit::FindingKind as K;
    match k {
        K::Missing { detail } => ("missing", detail.clone()),
        K::NotRegular { detail } => ("not-regular", detail.clone()),
        K::SizeMismatch { expected, found } => (
            "size-changed",
            format!("expected {expected} bytes, found {found}"),
        ),
        K::CrcMismatch { expected, found } => (
            "content-changed",
            format!(
                "CRC-64 expected {}, found {}",
                hex::encode(expected),
                hex::encode(found)
            ),
        ),
        K::ReadError { detail } => ("read-error", detail.clone()),
        K::SparseUnsupported { detail } => ("sparse-unsupported", detail.clone()),
        K::LossyNameRecovered { lossy } => (
            "lossy-name-recovered",
            format!("stored name {lossy:?} recovered from the raw header"),
        ),
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    sha: Sha256,
    pub bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            sha: Sha256::new(),
            bytes: 0,
        }
    }
    pub fn finish(self) -> (String, u64, W) {
        (
            format!("sha256:{}", hex::encode(self.sha.finalize())),
            self.bytes,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn open_tar_split(
    store: &Store,
    path: &Path,
) -> Result<
    salvor_tarsplit::Unpacker<flate2::read::MultiGzDecoder<Box<dyn salvor_source::FileReader>>>,
> {
    let f = store.source.open(path)?;
    Ok(salvor_tarsplit::open_gz(f))
}

impl Store {
    /// The file getter for a layer.
    pub fn layer_getter<'a>(&'a self, layer: &'a Layer) -> LayerFileGetter<'a> {
        LayerFileGetter {
            source: layer.files.source(self.source.as_ref()),
            roots: layer
                .files
                .search_roots()
                .into_iter()
                .map(Path::to_path_buf)
                .collect(),
        }
    }

    /// Exact byte length of the layer's tar, from its tar-split alone.
    pub fn layer_tar_size(&self, layer: &Layer) -> Result<u64> {
        match &layer.tar_split {
            TarSplitRef::EmptyLayer => Ok(1024),
            TarSplitRef::Missing { reason } => {
                Err(StoreError::invalid(&layer.meta_dir, reason.clone()))
            }
            TarSplitRef::Gz { path } => {
                salvor_tarsplit::assembled_size(open_tar_split(self, path)?)
                    .map_err(|e| StoreError::invalid(path, e.to_string()))
            }
        }
    }

    /// Rebuilds the layer into `out`, hashing it; never returns `Err` for evidence problems
    /// (those are in the report) — only when `out` fails.
    pub fn rebuild_layer(&self, layer: &Layer, out: &mut dyn Write) -> io::Result<RebuildReport> {
        let mut report = RebuildReport {
            chain_id: layer.chain_id.clone(),
            diff_id: layer.diff_id.clone(),
            actual: None,
            bytes: 0,
            files: 0,
            status: RebuildStatus::Unrebuildable,
            findings: Vec::new(),
            error: None,
        };
        let mut hw = HashingWriter::new(out);
        match &layer.tar_split {
            TarSplitRef::Missing { reason } => {
                report.error = Some(reason.clone());
                return Ok(report);
            }
            TarSplitRef::EmptyLayer => {
                hw.write_all(&[0u8; 1024])?;
            }
            TarSplitRef::Gz { path } => {
                let entries = match open_tar_split(self, path) {
                    Ok(e) => e,
                    Err(e) => {
                        report.error = Some(e.to_string());
                        return Ok(report);
                    }
                };
                let getter = self.layer_getter(layer);
                match salvor_tarsplit::assemble(entries, &getter, &mut hw) {
                    Ok(r) => {
                        report.files = r.files;
                        report.findings = r.findings.iter().map(FileFinding::from).collect();
                    }
                    Err(e) => {
                        // An output error is the caller's problem; anything else is evidence.
                        if let salvor_tarsplit::TarSplitError::Write { source: ioe, .. } = e {
                            return Err(ioe);
                        }
                        report.error = Some(format!("{}: {e}", path.display()));
                        let (actual, bytes, _) = hw.finish();
                        report.actual = Some(actual);
                        report.bytes = bytes;
                        return Ok(report);
                    }
                }
            }
        }
        let (actual, bytes, _) = hw.finish();
        report.bytes = bytes;
        let ok = Some(&actual) == layer.diff_id.as_ref();
        report.actual = Some(actual);
        report.status = if ok
            && !report
                .findings
                .iter()
                .any(|f| f.kind != "lossy-name-recovered")
        {
            RebuildStatus::Verified
        } else {
            RebuildStatus::Mismatch
        };
        // A layer whose files cannot be reached offline (devicemapper, a missing cache-id …)
        // still rebuilds when it holds no file data; otherwise say why it cannot.
        if let (RebuildStatus::Mismatch, crate::LayerFiles::Unavailable { reason }) =
            (&report.status, &layer.files)
        {
            report.status = RebuildStatus::Unrebuildable;
            report.error = Some(reason.clone());
        }
        Ok(report)
    }

    /// Rebuilds the layer only to hash it.
    pub fn verify_layer(&self, layer: &Layer) -> RebuildReport {
        let mut sink = io::sink();
        match self.rebuild_layer(layer, &mut sink) {
            Ok(r) => r,
            Err(e) => RebuildReport {
                chain_id: layer.chain_id.clone(),
                diff_id: layer.diff_id.clone(),
                actual: None,
                bytes: 0,
                files: 0,
                status: RebuildStatus::Unrebuildable,
                findings: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    }
}
