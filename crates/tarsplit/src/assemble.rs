//! Reassembly of the tar stream from tar-split entries and file contents.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::crc64::Crc64Hasher;
use crate::error::{EntryAt, TarSplitError};
use crate::header::{self, block_padding, is_header_only, Parsed, Sparse};
use crate::unpack::Entry;

/// An open regular file: what a [`FileGetter`] hands out.
pub trait FileReader: Read + Seek + Send {}
impl<T: Read + Seek + Send + ?Sized> FileReader for T {}

/// Why a file could not be opened. The strings are human descriptions naming the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// No such file in the layer.
    #[error("not found: {0}")]
    NotFound(String),
    /// The path exists but is not a regular file (directory, symlink, device...).
    #[error("not a regular file: {0}")]
    NotRegular(String),
    /// Any other I/O problem.
    #[error("I/O error: {0}")]
    Io(String),
}

/// What the assembler asks for: the content of a file of the layer.
pub trait FileGetter {
    /// Open the file stored under `name` (raw tar name bytes, may start with "./" or "/", may be non-UTF-8).
    fn get(&self, name: &[u8]) -> Result<Box<dyn FileReader>, GetError>;

    /// [`FileGetter::get`], with the file's length when the getter knows it (from the
    /// open descriptor): the assembler then learns whether the file is longer than its
    /// entry from it, without reading past the entry's size (one read call less per file).
    fn get_with_len(&self, name: &[u8]) -> Result<(Box<dyn FileReader>, Option<u64>), GetError> {
        self.get(name).map(|r| (r, None))
    }
}

/// One problem (or notable fact) met while assembling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Raw name of the file entry.
    pub name: Vec<u8>,
    /// `position` of the file entry.
    pub position: i64,
    /// What happened.
    pub kind: FindingKind,
}

/// Kinds of [`Finding`]. `detail` strings are human descriptions; sizes are in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FindingKind {
    /// The getter did not find the file; zeros of the expected size were written.
    Missing { detail: String },
    /// The path is not a regular file; zeros were written.
    NotRegular { detail: String },
    /// The file is shorter (zero-padded) or longer (truncated) than the entry says.
    SizeMismatch { expected: u64, found: u64 },
    /// Content read does not match the stored CRC-64/GO-ISO.
    CrcMismatch { expected: [u8; 8], found: [u8; 8] },
    /// Opening or reading failed midway; the rest was zero-filled.
    ReadError { detail: String },
    /// A sparse entry that cannot be rebuilt byte-exact (PAX 1.0 map, inconsistent map).
    SparseUnsupported { detail: String },
    /// Informational: the name in the JSON was lossy (U+FFFD) and the true bytes were taken from the raw header.
    LossyNameRecovered { lossy: String },
    /// The entry would make the rebuild produce more than the evidence can account for (more
    /// file data than the layer's recorded size allows, more zero fill or re-reads than the
    /// fill budget of [`Limits`]); the assembly stopped here ([`AssemblyReport::stopped`]).
    Amplification { detail: String },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = String::from_utf8_lossy(&self.name);
        write!(f, "{name:?} (position {}): ", self.position)?;
        match &self.kind {
            FindingKind::Missing { detail } => write!(f, "missing: {detail}"),
            FindingKind::NotRegular { detail } => write!(f, "not a regular file: {detail}"),
            FindingKind::SizeMismatch { expected, found } => {
                write!(f, "size mismatch: expected {expected} bytes, found {found}")
            }
            FindingKind::CrcMismatch { expected, found } => write!(
                f,
                "CRC-64 mismatch: expected {:016x}, found {:016x}",
                u64::from_be_bytes(*expected),
                u64::from_be_bytes(*found)
            ),
            FindingKind::ReadError { detail } => write!(f, "read error: {detail}"),
            FindingKind::SparseUnsupported { detail } => {
                write!(f, "sparse file not reproducible: {detail}")
            }
            FindingKind::LossyNameRecovered { lossy } => {
                write!(f, "lossy name {lossy:?} recovered from the raw header")
            }
            FindingKind::Amplification { detail } => write!(f, "amplification: {detail}"),
        }
    }
}

impl Finding {
    /// Whether this finding means the output is not (known to be) byte-exact.
    pub fn is_problem(&self) -> bool {
        !matches!(self.kind, FindingKind::LossyNameRecovered { .. })
    }
}

/// Summary of an assembly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssemblyReport {
    /// Bytes written to the output.
    pub bytes: u64,
    /// File entries whose data was written (size > 0 and not header-only).
    pub files: u64,
    /// Bytes of file data written (including zero fill).
    pub file_bytes: u64,
    /// Everything noteworthy, in stream order.
    pub findings: Vec<Finding>,
    /// File entries whose cleaned name was already seen (Docker never registers such layers).
    pub duplicate_names: Vec<(Vec<u8>, i64)>,
    /// Set when the assembly stopped early at a [`Limits`] bound: why (the entry is named by
    /// its [`FindingKind::Amplification`] finding). The output is then incomplete.
    pub stopped: Option<String>,
}

impl AssemblyReport {
    /// True when no finding is a problem (lossy-name recoveries are fine).
    pub fn is_clean(&self) -> bool {
        !self.findings.iter().any(Finding::is_problem)
    }
}

const COPY_BUF: usize = 1 << 20;
/// Files at least this large get their CRC computed on a helper thread.
const PARALLEL_CRC_MIN: u64 = 8 << 20;
/// Raw bytes kept for header parsing between two file entries.
const MAX_PENDING: usize = 8 << 20;
const MAX_DUPLICATES_LISTED: usize = 1000;

/// Default fill budget of [`Limits`]: 256 MiB.
pub const DEFAULT_MAX_FILL: u64 = 256 << 20;

/// Bounds on the work of one assembly. A tar-split names files and their sizes; a hostile one
/// can claim a terabyte per entry, list one file a million times or name files that do not
/// exist, and each claim would otherwise be honoured with reads or zero padding. When a bound
/// is reached the assembly records a [`FindingKind::Amplification`] finding naming the entry
/// and stops ([`AssemblyReport::stopped`]); such a layer cannot verify anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of file data (read plus zero-filled) in the whole stream.
    pub max_data: u64,
    /// Most bytes written that are not a distinct file's own bytes: zeros for missing, short
    /// or non-regular files, and the data of a name listed again.
    pub max_fill: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_data: u64::MAX,
            max_fill: DEFAULT_MAX_FILL,
        }
    }
}

impl Limits {
    /// The bounds for a layer whose engine recorded `size` (Docker's layerdb `size`, graph
    /// `layersize`): the engine's `ApplyDiff` returns the sum of every tar header's `Size`
    /// (`size += hdr.Size` in `UnpackLayer`), which is exactly the file data of the stream.
    /// Slack: an eighth more plus 16 MiB. Without a recorded size only the fill budget holds.
    pub fn for_recorded_size(size: Option<u64>) -> Self {
        Limits {
            max_data: size.map_or(u64::MAX, |s| {
                s.saturating_add(s / 8).saturating_add(16 << 20)
            }),
            max_fill: DEFAULT_MAX_FILL,
        }
    }
}

/// What to emit for one file entry.
#[derive(Debug)]
pub(crate) enum Plan {
    Skip,
    Regular,
    Sparse { map: Vec<(i64, i64)>, phys: u64 },
    SparseUnsupported { phys: u64, detail: String },
}

impl Plan {
    pub(crate) fn emitted(&self, size: u64) -> u64 {
        match self {
            Plan::Skip => 0,
            Plan::Regular => size,
            Plan::Sparse { phys, .. } | Plan::SparseUnsupported { phys, .. } => *phys,
        }
    }
}

/// Keeps the raw segment bytes since the last file entry and derives the plan.
#[derive(Default)]
pub(crate) struct Planner {
    pending: Vec<u8>,
    pending_start: u64,
    overflow: bool,
    scratch: Vec<u8>,
}

pub(crate) struct Decision {
    pub(crate) plan: Plan,
    recovered: Option<Vec<u8>>,
}

/// Go's `json` encoding of invalid UTF-8: every invalid byte becomes U+FFFD.
fn go_lossy(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = bad.get(1..).unwrap_or_default();
            }
        }
    }
}

impl Planner {
    pub(crate) fn segment(&mut self, payload: Vec<u8>, offset: u64) {
        if payload.is_empty() {
            return;
        }
        if self.overflow {
            return;
        }
        if self.pending.is_empty() {
            self.pending_start = offset;
            self.pending = payload;
        } else if self.pending.len() + payload.len() > MAX_PENDING {
            self.overflow = true;
            self.pending.clear();
        } else {
            self.pending.extend_from_slice(&payload);
        }
    }

    fn parse(&mut self) -> Option<Parsed> {
        if self.overflow || self.pending.is_empty() {
            return None;
        }
        let skip = block_padding(self.pending_start);
        let mut cur: &[u8] = &self.pending;
        self.scratch.clear();
        header::read_next(&mut cur, &mut self.scratch, skip).ok()
    }

    pub(crate) fn file(
        &mut self,
        name: &[u8],
        name_from_raw: bool,
        size: u64,
        crc: Option<[u8; 8]>,
    ) -> Decision {
        let mut d = Decision {
            plan: Plan::Regular,
            recovered: None,
        };
        let lossy = !name_from_raw && name.windows(3).any(|w| w == "\u{FFFD}".as_bytes());
        if size == 0 && !lossy {
            d.plan = Plan::Skip;
        } else if let Some(p) = self.parse() {
            if lossy && p.name != name {
                let g = go_lossy(&p.name);
                if g.as_bytes() == name || String::from_utf8_lossy(&p.name).as_bytes() == name {
                    d.recovered = Some(p.name.clone());
                }
            }
            if size == 0 {
                d.plan = Plan::Skip;
            } else if p.size >= 0 && p.size as u64 == size {
                if is_header_only(p.typeflag) && crc == Some([0; 8]) {
                    d.plan = Plan::Skip;
                } else {
                    match p.sparse {
                        Sparse::None => {}
                        Sparse::Map(map) => d.plan = Plan::Sparse { map, phys: p.phys },
                        Sparse::Pax1x0 => {
                            d.plan = Plan::SparseUnsupported {
                                phys: p.phys,
                                detail: "PAX GNU sparse 1.0: the sparse map was stored in the data area and \
                                         is not in the tar-split; data written as zeros"
                                    .into(),
                            }
                        }
                    }
                }
            }
        } else if size == 0 {
            d.plan = Plan::Skip;
        }
        self.pending.clear();
        self.overflow = false;
        d
    }
}

/// Counts bytes and attributes write errors to an entry.
/// An output that lends its own buffer ([`Assembler::assemble_lending`]): a file's bytes
/// are read straight into it, not into the assembler's buffer and then copied (one copy of
/// every file byte saved).
pub trait LendingWrite: Write {
    /// Free room of the output's buffer, never empty: the assembler reads into it and
    /// then says how much it filled ([`LendingWrite::filled`]).
    fn spare(&mut self) -> &mut [u8];
    /// The first `n` bytes of [`LendingWrite::spare`] now hold output.
    fn filled(&mut self, n: usize) -> io::Result<()>;
}

enum OutW<'w> {
    Plain(&'w mut dyn Write),
    Lending(&'w mut dyn LendingWrite),
}

struct Out<'w> {
    w: OutW<'w>,
    bytes: u64,
}

impl OutW<'_> {
    fn flush(&mut self) -> io::Result<()> {
        match self {
            OutW::Plain(w) => w.flush(),
            OutW::Lending(w) => w.flush(),
        }
    }
}

impl Out<'_> {
    fn write(&mut self, data: &[u8], at: EntryAt) -> Result<(), TarSplitError> {
        match &mut self.w {
            OutW::Plain(w) => w.write_all(data),
            OutW::Lending(w) => w.write_all(data),
        }
        .map_err(|source| TarSplitError::Write { at, source })?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn zeros(&mut self, mut n: u64, zero: &[u8], at: EntryAt) -> Result<(), TarSplitError> {
        while n > 0 {
            let k = n.min(zero.len() as u64) as usize;
            self.write(&zero[..k], at)?;
            n -= k as u64;
        }
        Ok(())
    }
}

/// Assembles tar streams. Holds the reusable copy buffer; see [`assemble`].
pub struct Assembler<'a> {
    getter: &'a dyn FileGetter,
    buf: Vec<u8>,
    zero: Vec<u8>,
    verify_crc: bool,
    limits: Limits,
    /// Fill bytes still allowed in the current assembly.
    fill_left: u64,
    /// Why the current assembly stopped.
    stop: Option<String>,
}

impl std::fmt::Debug for Assembler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembler")
            .field("verify_crc", &self.verify_crc)
            .finish_non_exhaustive()
    }
}

fn clean_hash(name: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::disassemble::go_clean(name).hash(&mut h);
    h.finish()
}

impl<'a> Assembler<'a> {
    /// An assembler reading file contents through `getter`.
    pub fn new(getter: &'a dyn FileGetter) -> Self {
        Assembler {
            getter,
            buf: Vec::new(),
            zero: Vec::new(),
            verify_crc: true,
            limits: Limits::default(),
            fill_left: 0,
            stop: None,
        }
    }

    /// The bounds of each assembly (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Zero fill of `n` bytes within the fill budget; past it, records why and writes nothing.
    fn fill(
        &mut self,
        out: &mut Out<'_>,
        n: u64,
        at: EntryAt,
        findings: &mut Vec<FindingKind>,
    ) -> Result<(), TarSplitError> {
        if n > self.fill_left {
            let detail = format!(
                "{n} bytes claimed are not on the disk (missing, short or not a regular file); \
                 zero-filling them would exceed the fill budget of {} bytes",
                self.limits.max_fill
            );
            findings.push(FindingKind::Amplification {
                detail: detail.clone(),
            });
            self.stop = Some(detail);
            return Ok(());
        }
        self.fill_left -= n;
        out.zeros(n, &self.zero, at)
    }

    /// Whether to compute and compare CRC-64 checksums (default true).
    pub fn verify_crc(mut self, yes: bool) -> Self {
        self.verify_crc = yes;
        self
    }

    /// Assembles the stream; see [`assemble`].
    pub fn assemble(
        &mut self,
        entries: impl IntoIterator<Item = Result<Entry, TarSplitError>>,
        out: &mut dyn Write,
    ) -> Result<AssemblyReport, TarSplitError> {
        self.assemble_to(entries, OutW::Plain(out))
    }

    /// [`Assembler::assemble`] into an output that lends its buffer: small files' bytes
    /// are read straight into it (the same stream, one copy fewer).
    pub fn assemble_lending(
        &mut self,
        entries: impl IntoIterator<Item = Result<Entry, TarSplitError>>,
        out: &mut dyn LendingWrite,
    ) -> Result<AssemblyReport, TarSplitError> {
        self.assemble_to(entries, OutW::Lending(out))
    }

    fn assemble_to(
        &mut self,
        entries: impl IntoIterator<Item = Result<Entry, TarSplitError>>,
        out: OutW<'_>,
    ) -> Result<AssemblyReport, TarSplitError> {
        if self.buf.len() != COPY_BUF {
            self.buf = vec![0; COPY_BUF];
        }
        if self.zero.is_empty() {
            self.zero = vec![0; 64 << 10];
        }
        let mut out = Out { w: out, bytes: 0 };
        let mut report = AssemblyReport::default();
        self.fill_left = self.limits.max_fill;
        self.stop = None;
        let mut data_total = 0u64;
        let mut planner = Planner::default();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut index = 0u64;
        for entry in entries {
            let entry = entry?;
            let at = EntryAt {
                index,
                position: Some(entry.position()),
            };
            index += 1;
            match entry {
                Entry::Segment { payload, .. } => {
                    let start = out.bytes;
                    out.write(&payload, at)?;
                    planner.segment(payload, start);
                }
                Entry::File {
                    name,
                    name_from_raw,
                    size,
                    crc,
                    position,
                } => {
                    let decision = planner.file(&name, name_from_raw, size, crc);
                    let mut findings = Vec::new();
                    let name = match decision.recovered {
                        Some(raw) => {
                            findings.push(FindingKind::LossyNameRecovered {
                                lossy: String::from_utf8_lossy(&name).into_owned(),
                            });
                            raw
                        }
                        None => name,
                    };
                    let duplicate = !seen.insert(clean_hash(&name));
                    if duplicate && report.duplicate_names.len() < MAX_DUPLICATES_LISTED {
                        report.duplicate_names.push((name.clone(), position));
                    }
                    let emitted = decision.plan.emitted(size);
                    if data_total.saturating_add(emitted) > self.limits.max_data {
                        self.stop = Some(format!(
                            "entry claims {emitted} bytes, bringing the layer's file data past {} bytes, \
                             more than its recorded size allows",
                            self.limits.max_data
                        ));
                    } else if duplicate && emitted > self.fill_left {
                        self.stop = Some(format!(
                            "name listed again (a filesystem holds one file under a name); reading its \
                             {emitted} bytes again would exceed the fill budget of {} bytes",
                            self.limits.max_fill
                        ));
                    } else if duplicate {
                        self.fill_left -= emitted;
                    }
                    if let Some(detail) = &self.stop {
                        findings.push(FindingKind::Amplification {
                            detail: detail.clone(),
                        });
                    }
                    data_total = data_total.saturating_add(emitted);
                    let before = out.bytes;
                    let plan = if self.stop.is_some() {
                        Plan::Skip
                    } else {
                        decision.plan
                    };
                    match plan {
                        Plan::Skip => {}
                        Plan::Regular => {
                            self.regular(&name, size, crc, &mut out, at, &mut findings)?;
                            report.files += 1;
                        }
                        Plan::Sparse { map, phys } => {
                            self.sparse(&name, size, crc, &map, phys, &mut out, at, &mut findings)?;
                            report.files += 1;
                        }
                        Plan::SparseUnsupported { phys, detail } => {
                            findings.push(FindingKind::SparseUnsupported { detail });
                            self.fill(&mut out, phys, at, &mut findings)?;
                            report.files += 1;
                        }
                    }
                    report.file_bytes += out.bytes - before;
                    report
                        .findings
                        .extend(findings.into_iter().map(|kind| Finding {
                            name: name.clone(),
                            position,
                            kind,
                        }));
                    if let Some(why) = self.stop.take() {
                        report.stopped = Some(why);
                        break;
                    }
                }
            }
        }
        out.w.flush().map_err(|source| TarSplitError::Write {
            at: EntryAt {
                index,
                position: None,
            },
            source,
        })?;
        report.bytes = out.bytes;
        Ok(report)
    }

    fn open(
        &self,
        name: &[u8],
        findings: &mut Vec<FindingKind>,
    ) -> Option<(Box<dyn FileReader>, Option<u64>)> {
        match self.getter.get_with_len(name) {
            Ok(r) => Some(r),
            Err(GetError::NotFound(detail)) => {
                findings.push(FindingKind::Missing { detail });
                None
            }
            Err(GetError::NotRegular(detail)) => {
                findings.push(FindingKind::NotRegular { detail });
                None
            }
            Err(GetError::Io(detail)) => {
                findings.push(FindingKind::ReadError { detail });
                None
            }
        }
    }

    /// Copies up to `n` bytes from `r`, reading and computing the CRC on a helper thread so
    /// that both (the kernel's copy out of the page cache, and CRC-64) overlap with the
    /// caller's work in `out` (typically SHA-256). Returns bytes copied.
    #[allow(clippy::too_many_arguments)]
    fn copy_n_parallel(
        &mut self,
        r: &mut dyn FileReader,
        n: u64,
        crc: &mut Crc64Hasher,
        out: &mut Out<'_>,
        at: EntryAt,
        findings: &mut Vec<FindingKind>,
    ) -> Result<u64, TarSplitError> {
        use std::sync::mpsc;
        let (to_main, main_rx) = mpsc::sync_channel::<Vec<u8>>(3);
        let (back_tx, back_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut h = Crc64Hasher::new();
                let mut done = 0u64;
                let mut made = 0;
                let mut err = None;
                while done < n {
                    let mut b = match back_rx.try_recv() {
                        Ok(b) => b,
                        Err(_) if made < 4 => {
                            made += 1;
                            vec![0u8; COPY_BUF]
                        }
                        Err(_) => match back_rx.recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        },
                    };
                    b.resize(COPY_BUF, 0);
                    let want = (n - done).min(COPY_BUF as u64) as usize;
                    let k = match header::read_full(r, &mut b[..want]) {
                        Ok(k) => k,
                        Err(e) => {
                            err = Some(format!("after {done} bytes: {e}"));
                            break;
                        }
                    };
                    if k == 0 {
                        break;
                    }
                    b.truncate(k);
                    h.update(&b);
                    done += k as u64;
                    if to_main.send(b).is_err() {
                        break;
                    }
                    if k < want {
                        break;
                    }
                }
                (h, done, err)
            });
            let mut result = Ok(());
            while let Ok(b) = main_rx.recv() {
                if let Err(e) = out.write(&b, at) {
                    result = Err(e);
                    break;
                }
                let _ = back_tx.send(b);
            }
            // Unblock the reader whatever state it is in, then collect it.
            drop(main_rx);
            drop(back_tx);
            match reader.join() {
                Ok((h, done, err)) => {
                    *crc = h;
                    if let Some(detail) = err {
                        findings.push(FindingKind::ReadError { detail });
                    }
                    result.map(|()| done)
                }
                Err(_) => {
                    findings.push(FindingKind::ReadError {
                        detail: "reader thread failed".into(),
                    });
                    result.map(|()| 0)
                }
            }
        })
    }

    /// Copies up to `n` bytes from `r`; returns bytes copied (short on EOF or error).
    fn copy_n(
        &mut self,
        r: &mut dyn FileReader,
        n: u64,
        crc: &mut Crc64Hasher,
        out: &mut Out<'_>,
        at: EntryAt,
        findings: &mut Vec<FindingKind>,
    ) -> Result<u64, TarSplitError> {
        let mut done = 0u64;
        if let OutW::Lending(w) = &mut out.w {
            // Straight into the output's buffer.
            while done < n {
                let spare = w.spare();
                let want = (n - done).min(spare.len() as u64) as usize;
                match r.read(&mut spare[..want]) {
                    Ok(0) => break,
                    Ok(k) => {
                        let k = k.min(want);
                        if self.verify_crc {
                            crc.update(&spare[..k]);
                        }
                        w.filled(k)
                            .map_err(|source| TarSplitError::Write { at, source })?;
                        out.bytes += k as u64;
                        done += k as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        findings.push(FindingKind::ReadError {
                            detail: format!("after {done} bytes: {e}"),
                        });
                        break;
                    }
                }
            }
            return Ok(done);
        }
        while done < n {
            let want = (n - done).min(self.buf.len() as u64) as usize;
            match r.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(k) => {
                    let k = k.min(want);
                    if self.verify_crc {
                        crc.update(&self.buf[..k]);
                    }
                    out.write(&self.buf[..k], at)?;
                    done += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    findings.push(FindingKind::ReadError {
                        detail: format!("after {done} bytes: {e}"),
                    });
                    break;
                }
            }
        }
        Ok(done)
    }

    /// Length of the file: via seek, else by counting the rest.
    fn total_len(r: &mut dyn FileReader, consumed: u64) -> u64 {
        if let Ok(end) = r.seek(SeekFrom::End(0)) {
            return end;
        }
        let mut extra = 0u64;
        let mut b = [0u8; 8192];
        while let Ok(k) = r.read(&mut b) {
            if k == 0 {
                break;
            }
            extra += k as u64;
        }
        consumed + extra
    }

    fn regular(
        &mut self,
        name: &[u8],
        size: u64,
        expected: Option<[u8; 8]>,
        out: &mut Out<'_>,
        at: EntryAt,
        findings: &mut Vec<FindingKind>,
    ) -> Result<(), TarSplitError> {
        let Some((mut r, len)) = self.open(name, findings) else {
            return self.fill(out, size, at, findings);
        };
        let mut crc = Crc64Hasher::new();
        let n = if self.verify_crc && size >= PARALLEL_CRC_MIN {
            self.copy_n_parallel(&mut *r, size, &mut crc, out, at, findings)?
        } else {
            self.copy_n(&mut *r, size, &mut crc, out, at, findings)?
        };
        if n < size {
            let read_failed = findings
                .iter()
                .any(|f| matches!(f, FindingKind::ReadError { .. }));
            if !read_failed {
                findings.push(FindingKind::SizeMismatch {
                    expected: size,
                    found: n,
                });
            }
            return self.fill(out, size - n, at, findings);
        }
        // Is there more? The length the getter knows says so, else one more read.
        let more = match len {
            Some(l) => l > size,
            None => {
                let mut probe = [0u8; 1];
                loop {
                    match r.read(&mut probe) {
                        Ok(k) => break k > 0,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break false,
                    }
                }
            }
        };
        if more {
            let found = match len {
                Some(l) => l,
                None => Self::total_len(&mut *r, size + 1).max(size + 1),
            };
            findings.push(FindingKind::SizeMismatch {
                expected: size,
                found,
            });
        }
        if self.verify_crc {
            if let Some(expected) = expected {
                let found = crc.finalize();
                if found != expected {
                    findings.push(FindingKind::CrcMismatch { expected, found });
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn sparse(
        &mut self,
        name: &[u8],
        size: u64,
        expected: Option<[u8; 8]>,
        map: &[(i64, i64)],
        phys: u64,
        out: &mut Out<'_>,
        at: EntryAt,
        findings: &mut Vec<FindingKind>,
    ) -> Result<(), TarSplitError> {
        let Some((mut r, _)) = self.open(name, findings) else {
            return self.fill(out, phys, at, findings);
        };
        let mut crc = Crc64Hasher::new();
        let mut pos = 0u64; // logical position covered by the CRC
        let mut written = 0u64; // physical bytes written
        let mut failed = false;
        for &(off, len) in map {
            // The map was validated (non-negative, ordered, within size).
            let (off, len) = (off as u64, len as u64);
            if written >= phys {
                break;
            }
            let len = len.min(phys - written);
            if self.verify_crc {
                crc.update_zeros(off - pos);
            }
            pos = off;
            if !failed {
                if let Err(e) = r.seek(SeekFrom::Start(off)) {
                    findings.push(FindingKind::ReadError {
                        detail: format!("seek to {off}: {e}"),
                    });
                    failed = true;
                }
            }
            let n = if failed {
                0
            } else {
                self.copy_n(&mut *r, len, &mut crc, out, at, findings)?
            };
            if n < len {
                if !failed
                    && !findings
                        .iter()
                        .any(|f| matches!(f, FindingKind::ReadError { .. }))
                {
                    findings.push(FindingKind::SizeMismatch {
                        expected: size,
                        found: off + n,
                    });
                }
                failed = true;
                self.fill(out, len - n, at, findings)?;
                if self.stop.is_some() {
                    return Ok(());
                }
                if self.verify_crc {
                    crc.update_zeros(len - n);
                }
            }
            pos += len;
            written += len;
        }
        if written != phys {
            findings.push(FindingKind::SparseUnsupported {
                detail: format!(
                    "sparse map covers {written} bytes but the archive holds {phys} data bytes"
                ),
            });
            return self.fill(out, phys - written, at, findings);
        }
        if failed {
            return Ok(());
        }
        let len = Self::total_len(&mut *r, pos);
        if len != size {
            findings.push(FindingKind::SizeMismatch {
                expected: size,
                found: len,
            });
        }
        if self.verify_crc {
            if let Some(expected) = expected {
                crc.update_zeros(size.saturating_sub(pos));
                let found = crc.finalize();
                if found != expected {
                    findings.push(FindingKind::CrcMismatch { expected, found });
                }
            }
        }
        Ok(())
    }
}

/// Assemble the tar stream into `out`. Never panics on hostile input. Continues past per-file problems
/// (a missing file is written as zeros of the expected size so the stream keeps its shape; a short file is
/// zero-padded; a long file is truncated to `size`), recording a [`Finding`] for each.
/// Returns `Err` only when the tar-split itself is unreadable (bad gzip/JSON, absurd sizes) or `out` fails.
pub fn assemble(
    entries: impl IntoIterator<Item = Result<Entry, TarSplitError>>,
    getter: &dyn FileGetter,
    out: &mut dyn Write,
) -> Result<AssemblyReport, TarSplitError> {
    Assembler::new(getter).assemble(entries, out)
}

/// Size of the assembled stream computable from the entries alone (segments + emitted file data,
/// honouring the header-only and sparse rules), e.g. to write a tar header for the layer first.
pub fn assembled_size(
    entries: impl IntoIterator<Item = Result<Entry, TarSplitError>>,
) -> Result<u64, TarSplitError> {
    crate::parse(entries, 0).map(|p| p.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy() {
        assert_eq!(go_lossy(b"a\xe4b"), "a\u{FFFD}b");
        assert_eq!(go_lossy(b"\xf0\x9f\x98"), "\u{FFFD}\u{FFFD}\u{FFFD}");
    }
}
