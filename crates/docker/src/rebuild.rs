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

use salvor_source::{resolve_in_root, FileKind, Source, SourceError};
use salvor_tarsplit::{FileGetter, FileReader, GetError};

use crate::{Layer, Result, Store, StoreError, TarSplitRef};
use salvor_model::{FileFinding, FileFindingKind, RebuildReport, RebuildStatus};

/// Looks files up in a layer's directories, first match wins.
pub struct LayerFileGetter<'a> {
    /// The filesystem the roots are in (the evidence, or a thin device's filesystem).
    pub source: &'a dyn Source,
    /// The layer's directories, looked in in order (the layer's own first).
    pub roots: Vec<PathBuf>,
}

impl FileGetter for LayerFileGetter<'_> {
    fn get(&self, name: &[u8]) -> std::result::Result<Box<dyn FileReader>, GetError> {
        self.get_with_len(name).map(|(r, _)| r)
    }

    fn get_with_len(
        &self,
        name: &[u8],
    ) -> std::result::Result<(Box<dyn FileReader>, Option<u64>), GetError> {
        let rel = Path::new(OsStr::from_bytes(name));
        let shown = String::from_utf8_lossy(name);
        if self.roots.is_empty() {
            return Err(GetError::NotFound(format!(
                "{shown}: the layer's files are not available"
            )));
        }
        // A name without `..` (a leading `/` or `./` means the root, as in the layer's
        // chroot) is its normal components joined to the root; one with `..` is resolved
        // like a chroot would.
        use std::path::Component;
        let plain = rel.components().all(|c| {
            matches!(
                c,
                Component::Normal(_) | Component::CurDir | Component::RootDir
            )
        });
        for root in &self.roots {
            // Fast path: the stored name has no symlink in it (nearly always), so the file
            // opens with one lookup and its kind comes from the open descriptor. Anything
            // else (a symlink on the way, absent here) takes the chroot-style resolution.
            if plain {
                let mut direct = root.clone();
                direct.extend(
                    rel.components()
                        .filter(|c| matches!(c, Component::Normal(_))),
                );
                match self.source.open_regular(&direct) {
                    Ok((f, md)) => return Ok((Box::new(f), Some(md.size))),
                    Err(SourceError::WrongKind { path, found, .. }) if path == direct => {
                        return Err(GetError::NotRegular(format!(
                            "{} is a {found}, not a regular file",
                            direct.display()
                        )))
                    }
                    Err(_) => {}
                }
            }
            let phys = match resolve_in_root(self.source, root, rel, false) {
                Ok(p) => p,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    return Err(GetError::Io(format!(
                        "{shown}: {}",
                        salvor_model::error_chain(&e)
                    )))
                }
            };
            let md = match self.source.metadata(&phys) {
                Ok(m) => m,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    return Err(GetError::Io(format!(
                        "{}: {}",
                        phys.display(),
                        salvor_model::error_chain(&e)
                    )))
                }
            };
            if md.kind != FileKind::Regular {
                return Err(GetError::NotRegular(format!(
                    "{} is a {}, not a regular file",
                    phys.display(),
                    md.kind
                )));
            }
            return match self.source.open_regular(&phys) {
                Ok((f, md)) => Ok((Box::new(f), Some(md.size))),
                Err(e) => Err(GetError::Io(salvor_model::error_chain(&e))),
            };
        }
        Err(GetError::NotFound(format!(
            "{shown}: not found in {}",
            self.roots[0].display()
        )))
    }
}

/// A tar-split finding as a [`FileFinding`] of the model.
pub fn file_finding(f: &salvor_tarsplit::Finding) -> FileFinding {
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
        kind,
        detail,
    }
}

fn describe_finding(k: &salvor_tarsplit::FindingKind) -> (FileFindingKind, String) {
    use salvor_tarsplit::FindingKind as K;
    use FileFindingKind as F;
    match k {
        K::Missing { detail } => (F::Missing, detail.clone()),
        K::NotRegular { detail } => (F::NotRegular, detail.clone()),
        K::SizeMismatch { expected, found } => (
            F::SizeChanged,
            format!("expected {expected} bytes, found {found}"),
        ),
        K::CrcMismatch { expected, found } => (
            F::ContentChanged,
            format!(
                "CRC-64 expected {}, found {}",
                hex::encode(expected),
                hex::encode(found)
            ),
        ),
        K::ReadError { detail } => (F::ReadError, detail.clone()),
        K::SparseUnsupported { detail } => (F::SparseUnsupported, detail.clone()),
        K::LossyNameRecovered { lossy } => (
            F::LossyNameRecovered,
            format!("stored name {lossy:?} recovered from the raw header"),
        ),
        K::Amplification { detail } => (F::Amplification, detail.clone()),
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    sha: Sha256,
    /// Bytes written so far.
    pub bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// A writer that passes everything to `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            sha: Sha256::new(),
            bytes: 0,
        }
    }
    /// The `sha256:<hex>` digest and length of what was written, and the inner writer.
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

/// Bytes handed to [`LayerHasher`]'s hashing thread at a time.
const HASH_CHUNK: usize = 1 << 20;

/// Layers at least this large (recorded size) are hashed on a helper thread.
const HASH_OFF_THREAD_FROM: u64 = 4 << 20;

/// Hashes and counts what passes through it into `inner`, like [`HashingWriter`], but for
/// a large layer the SHA-256 runs on a helper thread, fed 1 MiB chunks: the thread reading
/// the layer's files and the one hashing them then run side by side (the archive's own
/// digest is a third). Small layers are hashed inline: a thread would cost more. It lends
/// its chunk to the assembler ([`salvor_tarsplit::LendingWrite`]): files are read straight
/// into it, so every byte is copied once in user space.
struct LayerHasher<W: Write> {
    inner: W,
    bytes: u64,
    how: HashOn,
}

/// A chunk and how much of it holds data.
type Chunk = (Vec<u8>, usize);

enum HashOn {
    Inline {
        sha: Sha256,
        /// What is lent to the assembler (written and hashed when filled).
        lend: Vec<u8>,
    },
    Thread {
        /// Always `HASH_CHUNK` bytes long; `fill` of them hold data.
        chunk: Vec<u8>,
        fill: usize,
        tx: std::sync::mpsc::SyncSender<Chunk>,
        recycle: std::sync::mpsc::Receiver<Vec<u8>>,
        worker: std::thread::JoinHandle<[u8; 32]>,
    },
}

impl<W: Write> LayerHasher<W> {
    fn new(inner: W, off_thread: bool) -> Self {
        let how = off_thread
            .then(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(4);
                let (back, recycle) = std::sync::mpsc::sync_channel::<Vec<u8>>(6);
                std::thread::Builder::new()
                    .name("layer-sha256".into())
                    .spawn(move || {
                        let mut sha = Sha256::new();
                        for (c, n) in rx {
                            sha.update(&c[..n.min(c.len())]);
                            let _ = back.try_send(c);
                        }
                        sha.finalize().into()
                    })
                    .ok()
                    .map(|worker| HashOn::Thread {
                        chunk: vec![0; HASH_CHUNK],
                        fill: 0,
                        tx,
                        recycle,
                        worker,
                    })
            })
            .flatten()
            .unwrap_or_else(|| HashOn::Inline {
                sha: Sha256::new(),
                lend: Vec::new(),
            });
        LayerHasher {
            inner,
            bytes: 0,
            how,
        }
    }

    /// The `sha256:<hex>` digest and length of what was written.
    fn finish(mut self) -> io::Result<(String, u64)> {
        self.ship()?;
        let digest: [u8; 32] = match self.how {
            HashOn::Inline { sha, .. } => sha.finalize().into(),
            HashOn::Thread { tx, worker, .. } => {
                drop(tx);
                worker
                    .join()
                    .map_err(|_| io::Error::other("the layer hashing thread failed"))?
            }
        };
        Ok((format!("sha256:{}", hex::encode(digest)), self.bytes))
    }

    /// Off-thread: writes what the chunk holds to `inner`, then hands the chunk itself to
    /// the hashing thread.
    fn ship(&mut self) -> io::Result<()> {
        if let HashOn::Thread {
            chunk,
            fill,
            tx,
            recycle,
            ..
        } = &mut self.how
        {
            if *fill == 0 {
                return Ok(());
            }
            self.inner.write_all(&chunk[..*fill])?;
            let next = recycle.try_recv().unwrap_or_else(|_| vec![0; HASH_CHUNK]);
            tx.send((std::mem::replace(chunk, next), *fill))
                .map_err(|_| io::Error::other("the layer hashing thread stopped"))?;
            *fill = 0;
        }
        Ok(())
    }
}

impl<W: Write> Write for LayerHasher<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.how {
            HashOn::Inline { sha, .. } => {
                let n = self.inner.write(buf)?;
                self.bytes += n as u64;
                sha.update(&buf[..n]);
                Ok(n)
            }
            HashOn::Thread { chunk, fill, .. } => {
                // Buffered: the chunk goes to `inner` and then to the hasher, whole.
                let k = (HASH_CHUNK - *fill).min(buf.len());
                chunk[*fill..*fill + k].copy_from_slice(&buf[..k]);
                *fill += k;
                self.bytes += k as u64;
                if *fill == HASH_CHUNK {
                    self.ship()?;
                }
                Ok(k)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.ship()?;
        self.inner.flush()
    }
}

impl<W: Write> salvor_tarsplit::LendingWrite for LayerHasher<W> {
    fn spare(&mut self) -> &mut [u8] {
        match &mut self.how {
            HashOn::Inline { lend, .. } => {
                if lend.is_empty() {
                    lend.resize(64 << 10, 0);
                }
                lend
            }
            HashOn::Thread { chunk, fill, .. } => &mut chunk[*fill..],
        }
    }

    fn filled(&mut self, n: usize) -> io::Result<()> {
        match &mut self.how {
            HashOn::Inline { sha, lend } => {
                let n = n.min(lend.len());
                self.inner.write_all(&lend[..n])?;
                sha.update(&lend[..n]);
                self.bytes += n as u64;
                Ok(())
            }
            HashOn::Thread { fill, .. } => {
                *fill = (*fill + n).min(HASH_CHUNK);
                self.bytes += n as u64;
                if *fill == HASH_CHUNK {
                    self.ship()?;
                }
                Ok(())
            }
        }
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

/// A layer's tar-split entries, from whichever place has them.
pub(crate) type EntryStream = Box<
    dyn Iterator<Item = std::result::Result<salvor_tarsplit::Entry, salvor_tarsplit::TarSplitError>>
        + Send,
>;

/// Largest tar-split kept parsed for one layer, and for all layers of a store together:
/// a tar-split of 100,000 files takes about 60 MiB; beyond these the stream is parsed again.
const KEEP_PER_LAYER: usize = 32 << 20;
const KEEP_TOTAL: usize = 128 << 20;

/// Tar-splits parsed once and kept ([`Store::layer_tar_size`] parses one to know the
/// archive header's size; the rebuild and the tamper audit then read the kept entries
/// instead of inflating and decoding the JSON again). Bounded: [`KEEP_PER_LAYER`],
/// [`KEEP_TOTAL`].
#[derive(Debug, Default)]
pub(crate) struct ParsedTarSplits {
    kept: std::sync::Mutex<Kept>,
}

/// Bytes kept in all, and per chain id the layer's tar size and its entries.
type Kept = (
    usize,
    std::collections::BTreeMap<String, (u64, salvor_tarsplit::Entries)>,
);

impl ParsedTarSplits {
    fn get(&self, chain_id: &str) -> Option<(u64, salvor_tarsplit::Entries)> {
        self.kept.lock().ok()?.1.get(chain_id).cloned()
    }

    fn room(&self) -> usize {
        self.kept
            .lock()
            .map(|k| KEEP_TOTAL.saturating_sub(k.0).min(KEEP_PER_LAYER))
            .unwrap_or(0)
    }

    fn insert(&self, chain_id: &str, size: u64, entries: salvor_tarsplit::Entries) {
        if let Ok(mut k) = self.kept.lock() {
            if k.0 + entries.bytes() <= KEEP_TOTAL && !k.1.contains_key(chain_id) {
                k.0 += entries.bytes();
                k.1.insert(chain_id.to_string(), (size, entries));
            }
        }
    }
}

impl Store {
    /// The layer's tar-split entries (at `path`): the kept ones when
    /// [`Store::layer_tar_size`] parsed and kept them, else streamed from the file.
    pub(crate) fn tar_split_entries(&self, layer: &Layer, path: &Path) -> Result<EntryStream> {
        if let Some((_, kept)) = self.parsed.get(&layer.chain_id) {
            return Ok(Box::new(kept.iter()));
        }
        Ok(Box::new(open_tar_split(self, path)?))
    }
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
                if let Some((size, _)) = self.parsed.get(&layer.chain_id) {
                    return Ok(size);
                }
                let parsed =
                    salvor_tarsplit::parse(open_tar_split(self, path)?, self.parsed.room())
                        .map_err(|e| StoreError::invalid(path, salvor_model::error_chain(&e)))?;
                if let Some(kept) = parsed.kept {
                    self.parsed.insert(&layer.chain_id, parsed.size, kept);
                }
                Ok(parsed.size)
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
            as_found: None,
            bytes: 0,
            files: 0,
            status: RebuildStatus::Unrebuildable,
            findings: Vec::new(),
            error: None,
        };
        let off_thread = layer.size.is_some_and(|s| s >= HASH_OFF_THREAD_FROM);
        let mut hw = LayerHasher::new(out, off_thread);
        match &layer.tar_split {
            TarSplitRef::Missing { reason } => {
                report.error = Some(reason.clone());
                return Ok(report);
            }
            TarSplitRef::EmptyLayer => {
                hw.write_all(&[0u8; 1024])?;
            }
            TarSplitRef::Gz { path } => {
                let entries = match self.tar_split_entries(layer, path) {
                    Ok(e) => e,
                    Err(e) => {
                        report.error = Some(salvor_model::error_chain(&e));
                        return Ok(report);
                    }
                };
                let getter = self.layer_getter(layer);
                let limits = salvor_tarsplit::Limits::for_recorded_size(layer.size);
                match salvor_tarsplit::Assembler::new(&getter)
                    .limits(limits)
                    .assemble_lending(entries, &mut hw)
                {
                    Ok(r) => {
                        report.files = r.files;
                        report.findings = r.findings.iter().map(file_finding).collect();
                        if let Some(why) = &r.stopped {
                            let at = r
                                .findings
                                .iter()
                                .rfind(|f| {
                                    matches!(
                                        f.kind,
                                        salvor_tarsplit::FindingKind::Amplification { .. }
                                    )
                                })
                                .map(|f| String::from_utf8_lossy(&f.name).into_owned())
                                .unwrap_or_default();
                            report.error = Some(format!(
                                "{}: rebuild stopped at {at:?}, the stream is incomplete: {why}",
                                path.display()
                            ));
                        }
                    }
                    Err(e) => {
                        // An output error is the caller's problem; anything else is evidence.
                        if let salvor_tarsplit::TarSplitError::Write { source: ioe, .. } = e {
                            return Err(ioe);
                        }
                        report.error = Some(format!(
                            "{}: {}",
                            path.display(),
                            salvor_model::error_chain(&e)
                        ));
                        let (actual, bytes) = hw.finish()?;
                        report.actual = Some(actual);
                        report.bytes = bytes;
                        return Ok(report);
                    }
                }
            }
        }
        let (actual, bytes) = hw.finish()?;
        report.bytes = bytes;
        let ok = Some(&actual) == layer.diff_id.as_ref();
        report.actual = Some(actual);
        report.status = if ok
            && !report
                .findings
                .iter()
                .any(|f| f.kind != FileFindingKind::LossyNameRecovered)
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
        if report.status == RebuildStatus::Mismatch {
            report.as_found = self.as_found_digest(layer).ok();
        }
        Ok(report)
    }

    /// sha256 of the layer as the disk holds it now ([`Store::write_as_found`], nothing
    /// written). Equal to the diff_id for an untouched layer; it differs when anything the
    /// tar would carry changed (content, size, mode, owner, link target, whiteouts, planted
    /// or missing files), also when the content alone still verifies.
    pub fn as_found_digest(&self, layer: &Layer) -> Result<String> {
        let mut sink = io::sink();
        self.write_as_found(layer, &salvor_whiteout::TarNames::empty(), &mut sink)
            .map(|r| r.digest)
    }

    /// The layer's own directory and how it marks deletions (not its lowers).
    pub fn layer_dir<'a>(&'a self, layer: &'a Layer) -> Result<salvor_whiteout::LayerDir<'a>> {
        use salvor_whiteout::{LayerDir, WhiteoutStyle};
        let ev = self.source.as_ref();
        Ok(match &layer.files {
            crate::LayerFiles::Overlay { diff, .. } => LayerDir::new(
                ev,
                diff,
                if self.driver == crate::Driver::FuseOverlayfs {
                    WhiteoutStyle::FuseOverlayfs
                } else {
                    WhiteoutStyle::Overlay
                },
            ),
            crate::LayerFiles::Aufs { diff } => LayerDir::new(ev, diff, WhiteoutStyle::Aufs),
            crate::LayerFiles::Snapshot { root } => {
                LayerDir::new(ev, root, WhiteoutStyle::Snapshot)
            }
            crate::LayerFiles::OverlayUpper { upper, .. } => {
                LayerDir::new(ev, upper, WhiteoutStyle::Overlay)
            }
            crate::LayerFiles::ThinDevice { source, .. } => LayerDir::new(
                source.0.as_ref(),
                Path::new("rootfs"),
                WhiteoutStyle::Snapshot,
            ),
            crate::LayerFiles::Unavailable { reason } => {
                return Err(StoreError::invalid(&layer.meta_dir, reason.clone()))
            }
        })
    }

    /// Writes the layer *as found* into `out` (`extract --force`): the tar-split's entries in
    /// order, each from the disk's current state (current bytes and size; header rewritten
    /// where size, mode, owner or link target changed; files gone from the disk left out),
    /// then the files present on disk but not recorded. See [`salvor_whiteout::write_as_found`].
    /// Returns what was written and how it differs from the record; `Err` names the file.
    pub fn write_as_found(
        &self,
        layer: &Layer,
        names: &salvor_whiteout::TarNames,
        out: &mut dyn Write,
    ) -> Result<salvor_whiteout::AsFoundReport> {
        let dir = self.layer_dir(layer)?;
        // A snapshot's unrecorded changes are measured against its parent's snapshot.
        let parent = match (
            dir.style,
            layer.parent.as_ref().and_then(|p| self.layers.get(p)),
        ) {
            (salvor_whiteout::WhiteoutStyle::Snapshot, Some(p)) => self
                .layer_dir(p)
                .ok()
                .filter(|d| d.style == salvor_whiteout::WhiteoutStyle::Snapshot),
            _ => None,
        };
        let wrap = |path: &Path, e: salvor_whiteout::AsFoundError| match e {
            salvor_whiteout::AsFoundError::Layer(salvor_whiteout::WhiteoutError::Output(ioe)) => {
                StoreError::Source(salvor_source::SourceError::io(path, ioe))
            }
            e => StoreError::invalid(path, salvor_model::error_chain(&e)),
        };
        match &layer.tar_split {
            TarSplitRef::Gz { path } => {
                let entries = self.tar_split_entries(layer, path)?;
                salvor_whiteout::write_as_found(
                    &mut salvor_tarsplit::headers(entries),
                    &dir,
                    parent.as_ref(),
                    names,
                    out,
                )
                .map_err(|e| wrap(path, e))
            }
            TarSplitRef::EmptyLayer => salvor_whiteout::write_as_found(
                &mut salvor_tarsplit::headers(salvor_tarsplit::Unpacker::new(&[][..])),
                &dir,
                parent.as_ref(),
                names,
                out,
            )
            .map_err(|e| wrap(&layer.meta_dir, e)),
            TarSplitRef::Missing { reason } => {
                Err(StoreError::invalid(&layer.meta_dir, reason.clone()))
            }
        }
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
                as_found: None,
                bytes: 0,
                files: 0,
                status: RebuildStatus::Unrebuildable,
                findings: Vec::new(),
                error: Some(salvor_model::error_chain(&e)),
            },
        }
    }

    /// Writes the layer as found ([`Store::write_as_found`]) to a temporary file in
    /// `spool_dir` (never next to the evidence: the caller passes the output's directory or
    /// `$TMPDIR`), so that its size and digest are known before an archive names it. The
    /// spool stops at [`as_found_spool_limit`] bytes; the file is removed when the returned
    /// [`SpooledLayer`] is dropped.
    pub fn spool_as_found(
        &self,
        layer: &Layer,
        names: &salvor_whiteout::TarNames,
        spool_dir: &Path,
    ) -> std::result::Result<SpooledLayer, SpoolError> {
        let recorded = self.layer_tar_size(layer).unwrap_or(0);
        let limit = as_found_spool_limit(recorded);
        let tmp = tempfile::Builder::new()
            .prefix(".salvor-forced.")
            .tempfile_in(spool_dir)
            .map_err(|source| SpoolError::Spool {
                path: spool_dir.to_path_buf(),
                source,
            })?;
        let (file, path) = tmp.into_parts();
        let mut w = Bounded {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            written: 0,
            limit,
            over: false,
        };
        let res = self.write_as_found(layer, names, &mut w);
        if w.over {
            return Err(SpoolError::TooLarge {
                chain_id: layer.chain_id.clone(),
                limit,
                recorded,
            });
        }
        let report = res.map_err(|e| SpoolError::Layer {
            chain_id: layer.chain_id.clone(),
            source: Box::new(e),
        })?;
        w.inner.flush().map_err(|source| SpoolError::Spool {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SpooledLayer {
            digest: report.digest.clone(),
            size: report.size,
            path,
            report,
        })
    }
}

/// Most bytes a layer spooled as found may take: twice the recorded tar length plus 4 GiB
/// (room for files that grew and files planted, while a hostile layer cannot fill the disk).
pub fn as_found_spool_limit(recorded_tar_size: u64) -> u64 {
    recorded_tar_size.saturating_mul(2).saturating_add(4 << 30)
}

/// A layer written as found to a temporary file.
#[derive(Debug)]
pub struct SpooledLayer {
    /// `sha256:<hex>` of the spooled tar: the layer's diff_id as found.
    pub digest: String,
    /// Its length in bytes.
    pub size: u64,
    /// The temporary file (removed on drop).
    pub path: tempfile::TempPath,
    /// How the layer as found differs from its record.
    pub report: salvor_whiteout::AsFoundReport,
}

/// Errors of [`Store::spool_as_found`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The temporary file could not be created or written.
    #[error("cannot spool a forced layer in {}", path.display())]
    Spool {
        /// The spool directory (or the temporary file in it).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The layer as found is larger than the spool may hold.
    #[error("layer {chain_id} as found exceeds the spool limit of {limit} bytes (2 × its recorded {recorded} bytes + 4 GiB); not exported")]
    TooLarge {
        /// The layer's chain id.
        chain_id: String,
        /// The spool limit in bytes ([`as_found_spool_limit`]).
        limit: u64,
        /// The layer's recorded tar length in bytes.
        recorded: u64,
    },
    /// The layer could not be read as found.
    #[error("layer {chain_id} cannot be read as found")]
    Layer {
        /// The layer's chain id.
        chain_id: String,
        /// Why it could not be read.
        #[source]
        source: Box<StoreError>,
    },
}

/// A writer that refuses to go past `limit` bytes.
struct Bounded<W> {
    inner: W,
    written: u64,
    limit: u64,
    over: bool,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written.saturating_add(buf.len() as u64) > self.limit {
            self.over = true;
            return Err(io::Error::other("spool limit exceeded"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashed inline or on the helper thread, in writes that straddle the 1 MiB chunks:
    /// the same bytes reach `inner` and the digest is the SHA-256 of them.
    #[test]
    fn layer_hasher_inline_and_off_thread_agree_with_sha256() {
        let data: Vec<u8> = (0..(HASH_CHUNK * 2 + 12_345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        for off_thread in [false, true] {
            let mut out = Vec::new();
            let mut h = LayerHasher::new(&mut out, off_thread);
            for piece in data.chunks(300_007) {
                h.write_all(piece).expect("write");
            }
            let (digest, n) = h.finish().expect("finish");
            assert_eq!(digest, want, "off_thread {off_thread}");
            assert_eq!(n, data.len() as u64);
            assert_eq!(out, data);
        }
        // Lent: filled through its own buffer in odd pieces, mixed with plain writes.
        use salvor_tarsplit::LendingWrite;
        for off_thread in [false, true] {
            let mut out = Vec::new();
            let mut h = LayerHasher::new(&mut out, off_thread);
            let mut at = 0;
            let mut turn = 0usize;
            while at < data.len() {
                turn += 1;
                if turn.is_multiple_of(3) {
                    let k = (data.len() - at).min(1000);
                    h.write_all(&data[at..at + k]).expect("write");
                    at += k;
                    continue;
                }
                let spare = h.spare();
                let k = (data.len() - at).min(spare.len()).min(77_777 + turn);
                spare[..k].copy_from_slice(&data[at..at + k]);
                h.filled(k).expect("filled");
                at += k;
            }
            let (digest, n) = h.finish().expect("finish");
            assert_eq!(digest, want, "lent, off_thread {off_thread}");
            assert_eq!(n, data.len() as u64);
            assert_eq!(out, data);
        }
    }
}
