//! A bounded, read-only reader of [bbolt](https://github.com/etcd-io/bbolt) (BoltDB)
//! files, working on a copy of the whole file in memory: no mmap, no locks, nothing
//! written.
//!
//! On container hosts bbolt holds containerd's metadata
//! (`io.containerd.metadata.v1.bolt/meta.db`: namespaces, images, containers, content,
//! snapshots, leases), each snapshotter's `metadata.db`
//! (`io.containerd.snapshotter.v1.overlayfs/metadata.db`) and Docker's
//! `volumes/metadata.db`. Evidence files are hostile: every page id, count, offset and
//! length read from the file is checked before use, and a damaged file gives a
//! [`BoltError`] naming the file, the page and the offset, never a panic or a hang.
//!
//! # Principal types
//!
//! * [`Db`]: an opened file. [`Db::open`] takes the file's bytes (read by the caller with
//!   a size limit) and its name for errors, picks the current meta page (the valid one,
//!   magic `0xED0CDAED`, version 2, FNV-1a checksum, with the higher txid) and gives
//!   [`Db::txid`], [`Db::page_size`], [`Db::meta`] and the root bucket, [`Db::root`].
//! * [`Bucket`]: a handle to one bucket (page-rooted or inline): [`Bucket::get`] a value,
//!   [`Bucket::bucket`] a nested bucket, [`Bucket::iter`] its entries in key order,
//!   [`Bucket::sequence`] its counter.
//! * [`Entry`]: one key of a bucket with its [`EntryKind`]: a value or a nested bucket,
//!   and where the element lives in the file ([`Entry::page`], [`Entry::offset`]).
//! * [`BoltError`]: what is wrong, with the file name, page id and offset.
//!
//! # Example
//!
//! A tiny database built in memory by the crate's test writer (a real file is read the
//! same way, from `std::fs::read` under a size limit), then garbage:
//!
//! ```
//! use salvor_bbolt::{testutil::Item, BoltError, Db, EntryKind};
//!
//! # fn main() -> Result<(), BoltError> {
//! let bytes = salvor_bbolt::testutil::build(4096, &[(
//!     b"v1".to_vec(),
//!     Item::bucket(7, vec![(b"version".to_vec(), Item::value(&[0x06]))]),
//! )]);
//! let db = Db::open(bytes, "meta.db")?;
//! assert_eq!(db.page_size(), 4096);
//!
//! let root = db.root();
//! let v1 = root.bucket(b"v1")?.expect("v1 bucket");
//! assert_eq!(v1.sequence(), 7);
//! assert_eq!(v1.get(b"version")?, Some(&[0x06][..]));
//! for entry in v1.iter() {
//!     let entry = entry?;
//!     match entry.kind() {
//!         EntryKind::Value(v) => println!("{:?} = {v:02x?}", entry.key()),
//!         EntryKind::Bucket(b) => println!("{:?}/ (sequence {})", entry.key(), b.sequence()),
//!     }
//! }
//!
//! // Garbage is an error naming the file, never a panic.
//! let err = Db::open(vec![0xAB; 8192], "garbage.db").unwrap_err();
//! assert!(err.to_string().starts_with("garbage.db: no valid meta page"), "{err}");
//! # Ok(())
//! # }
//! ```
//!
//! # Format and bounds
//!
//! * Page `id` at `id × pageSize`, spanning `(overflow + 1) × pageSize`; 16-byte header
//!   `id u64, flags u16, count u16, overflow u32`; flags `0x01` branch, `0x02` leaf.
//! * Branch elements `pos u32, ksize u32, child u64`; leaf elements
//!   `flags u32, pos u32, ksize u32, vsize u32`, `pos` relative to the element, flag `1` =
//!   nested bucket whose value is `root pgid u64, sequence u64`, `root == 0` = inline: a
//!   leaf page follows in the value.
//! * Checked: page size a power of two in 1024..=65536; offsets in `u64` with overflow
//!   checks; a tree page id is ≥ 2, below the meta's high-water mark, inside the file,
//!   with its own id in the header and branch/leaf flags; the element array and every
//!   key/value inside the page span or the inline buffer; branches not empty; keys
//!   strictly increasing within a page and inside the range the parent branch gives;
//!   bucket values ≥ 16 bytes, inline ones ≥ 32.
//! * Loops and sharing: a page already on the path from the root (through parent buckets)
//!   is a [`BoltError::Cycle`]; so is a page that belongs to two buckets' trees or is the
//!   root of two buckets (tracked per [`Db::root`] handle family), which also keeps a walk
//!   of a hostile file linear in its size. Depth caps [`MAX_BUCKET_DEPTH`] and
//!   [`MAX_TREE_DEPTH`]; every operation visits at most as many pages as the file has and
//!   at most as many elements as those pages can hold.
//! * Meta pages: magic, version, checksum, page size, root and freelist below the
//!   high-water mark; the meta page's own header (id, flags `0x04`) is outside the
//!   checksum and not relied on.
//! * Nothing is allocated from a count in the file: elements are read in place.
//! * Freelist and stale pages (below the high-water mark but unreachable, or past it) are
//!   not read: they hold older records, leads rather than current state.

#![deny(missing_docs)]

mod error;
#[doc(hidden)]
pub mod testutil;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub use error::BoltError;

/// The meta page magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only file format version bbolt writes.
pub const VERSION: u32 = 2;
/// Smallest page size accepted.
pub const MIN_PAGE_SIZE: u32 = 1024;
/// Largest page size accepted (64 KiB pages are real: ppc64le, arm64 with 64 KiB pages).
pub const MAX_PAGE_SIZE: u32 = 65536;
/// Deepest bucket nesting followed (containerd nests 6 deep).
pub const MAX_BUCKET_DEPTH: usize = 64;
/// Deepest B+tree of pages followed inside one bucket (bbolt's trees are balanced: a
/// terabyte of 4 KiB pages with two children per branch is 28 levels).
pub const MAX_TREE_DEPTH: usize = 64;

const HEADER: usize = 16;
const ELEM: usize = 16;
const FLAG_BRANCH: u16 = 0x01;
const FLAG_LEAF: u16 = 0x02;
const LEAF_BUCKET: u32 = 0x01;
/// Claim key of the root bucket's entry (it has none in any page).
const META_ENTRY: u64 = u64::MAX;

/// A meta page's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Page size in bytes.
    pub page_size: u32,
    /// Meta flags (0 in every file seen).
    pub flags: u32,
    /// Root page of the root bucket.
    pub root: u64,
    /// Sequence of the root bucket.
    pub sequence: u64,
    /// Freelist page (`u64::MAX` when the freelist is not synced, as containerd runs it).
    pub freelist: u64,
    /// High-water mark: the first page id never allocated.
    pub pgid: u64,
    /// Transaction id of the commit that wrote this meta.
    pub txid: u64,
}

/// An opened bbolt file.
#[derive(Debug)]
pub struct Db {
    data: Vec<u8>,
    name: PathBuf,
    meta: Meta,
    meta_page: u64,
    other_meta: Result<Meta, String>,
    /// `data.len() / page_size`: bounds every per-operation budget.
    pages_in_file: u64,
}

fn le16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// FNV-1a 64, bbolt's meta checksum.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn valid_page_size(ps: u32) -> bool {
    ps.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps)
}

/// Parses the meta page `index` (0 or 1) assuming page size `ps`.
fn parse_meta(data: &[u8], index: u64, ps: u32) -> Result<Meta, String> {
    let off = index * u64::from(ps);
    let body_at = off + HEADER as u64;
    let body = usize::try_from(body_at)
        .ok()
        .and_then(|s| data.get(s..s.checked_add(64)?))
        .ok_or_else(|| {
            format!(
                "meta body at offset {body_at:#x} is past the end of the file ({} bytes)",
                data.len()
            )
        })?;
    let magic = le32(body, 0);
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#010x} at offset {body_at:#x}"));
    }
    let version = le32(body, 4);
    if version != VERSION {
        return Err(format!("version {version}, expected {VERSION}"));
    }
    let stored = le64(body, 56);
    let computed = fnv1a64(&body[..56]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#018x}, computed {computed:#018x})"
        ));
    }
    let meta = Meta {
        page_size: le32(body, 8),
        flags: le32(body, 12),
        root: le64(body, 16),
        sequence: le64(body, 24),
        freelist: le64(body, 32),
        pgid: le64(body, 40),
        txid: le64(body, 48),
    };
    if !valid_page_size(meta.page_size) {
        return Err(format!(
            "page size {} is not a power of two in {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE}",
            meta.page_size
        ));
    }
    if meta.page_size != ps {
        return Err(format!(
            "page size {} but found at offset {off:#x} (page size {ps})",
            meta.page_size
        ));
    }
    if meta.root < 2 || meta.root >= meta.pgid {
        return Err(format!(
            "root page {} outside 2..{} (the high-water mark)",
            meta.root, meta.pgid
        ));
    }
    if meta.freelist != u64::MAX && (meta.freelist < 2 || meta.freelist >= meta.pgid) {
        return Err(format!(
            "freelist page {} outside 2..{} (the high-water mark)",
            meta.freelist, meta.pgid
        ));
    }
    Ok(meta)
}

impl Db {
    /// Opens a bbolt file from its bytes; `name` is used in every error.
    ///
    /// Picks the current meta page: of the valid ones (magic, version, checksum, page
    /// size, root and freelist below the high-water mark) the one with the higher txid.
    /// When page 0 is invalid, page 1 is looked for at every possible page size.
    pub fn open(bytes: Vec<u8>, name: impl Into<PathBuf>) -> Result<Db, BoltError> {
        let name = name.into();
        let len = bytes.len() as u64;
        let need = 2 * u64::from(MIN_PAGE_SIZE);
        if len < need {
            return Err(BoltError::TooSmall {
                file: name,
                len,
                need,
            });
        }
        let ps0 = le32(&bytes, HEADER + 8);
        let m0 = parse_meta(&bytes, 0, if valid_page_size(ps0) { ps0 } else { 4096 });
        let m1 = match &m0 {
            Ok(m) => parse_meta(&bytes, 1, m.page_size),
            Err(_) => {
                let guess = if valid_page_size(ps0) { ps0 } else { 4096 };
                let first = parse_meta(&bytes, 1, guess);
                if first.is_ok() {
                    first
                } else {
                    let mut found = None;
                    let mut ps = MIN_PAGE_SIZE;
                    while ps <= MAX_PAGE_SIZE {
                        if ps != guess {
                            if let Ok(m) = parse_meta(&bytes, 1, ps) {
                                found = Some(m);
                                break;
                            }
                        }
                        ps *= 2;
                    }
                    found.ok_or_else(|| first.err().unwrap_or_default())
                }
            }
        };
        let (meta, meta_page, other_meta) = match (m0, m1) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    (b, 1, Ok(a))
                } else {
                    (a, 0, Ok(b))
                }
            }
            (Ok(a), Err(e)) => (a, 0, Err(e)),
            (Err(e), Ok(b)) => (b, 1, Err(e)),
            (Err(meta0), Err(meta1)) => {
                return Err(BoltError::NoValidMeta {
                    file: name,
                    meta0,
                    meta1,
                })
            }
        };
        let need = 2 * u64::from(meta.page_size);
        if len < need {
            return Err(BoltError::TooSmall {
                file: name,
                len,
                need,
            });
        }
        let pages_in_file = len / u64::from(meta.page_size);
        Ok(Db {
            data: bytes,
            name,
            meta,
            meta_page,
            other_meta,
            pages_in_file,
        })
    }

    /// The file name given to [`Db::open`].
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// The page size.
    pub fn page_size(&self) -> u32 {
        self.meta.page_size
    }

    /// The transaction id of the current meta page.
    pub fn txid(&self) -> u64 {
        self.meta.txid
    }

    /// The current meta page's fields.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Which meta page (0 or 1) is current.
    pub fn meta_page(&self) -> u64 {
        self.meta_page
    }

    /// The other meta page: its fields if valid (an older commit: its tree may already be
    /// partly overwritten), else what is wrong with it.
    pub fn other_meta(&self) -> Result<&Meta, &str> {
        self.other_meta.as_ref().map_err(|e| e.as_str())
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The root bucket (whose keys are the top-level buckets). Each call starts a new
    /// handle family: the buckets reached from it share the record of which pages belong
    /// to which bucket.
    pub fn root(&self) -> Bucket<'_> {
        let claims = Rc::new(RefCell::new(Claims::default()));
        claims
            .borrow_mut()
            .root_entry
            .insert(self.meta.root, META_ENTRY);
        Bucket {
            db: self,
            root: Root::Page(self.meta.root),
            sequence: self.meta.sequence,
            depth: 0,
            ancestors: Rc::from(Vec::new()),
            claims,
        }
    }

    fn corrupt(&self, page: u64, offset: u64, reason: String) -> BoltError {
        BoltError::Corrupt {
            file: self.name.clone(),
            page,
            offset,
            reason,
        }
    }

    fn out_of_range(&self, page: u64, offset: u64, reason: String) -> BoltError {
        BoltError::OutOfRange {
            file: self.name.clone(),
            page,
            offset,
            reason,
        }
    }

    fn cycle(&self, page: u64, offset: u64, reason: String) -> BoltError {
        BoltError::Cycle {
            file: self.name.clone(),
            page,
            offset,
            reason,
        }
    }

    fn limit(&self, page: u64, offset: u64, what: &'static str, limit: u64) -> BoltError {
        BoltError::Limit {
            file: self.name.clone(),
            page,
            offset,
            what,
            limit,
        }
    }

    /// Reads tree page `pgid`, referenced from `(from_page, from_off)`.
    fn node(&self, pgid: u64, from_page: u64, from_off: u64) -> Result<Node<'_>, BoltError> {
        let ps = u64::from(self.meta.page_size);
        let len = self.data.len() as u64;
        if pgid < 2 {
            return Err(self.corrupt(
                from_page,
                from_off,
                format!("refers to page {pgid}, a meta page, as a tree page"),
            ));
        }
        if pgid >= self.meta.pgid {
            return Err(self.out_of_range(
                from_page,
                from_off,
                format!(
                    "refers to page {pgid}, at or past the high-water mark {}",
                    self.meta.pgid
                ),
            ));
        }
        let off = match pgid.checked_mul(ps) {
            Some(o) if o.checked_add(HEADER as u64).is_some_and(|e| e <= len) => o,
            _ => {
                return Err(self.out_of_range(
                    from_page,
                    from_off,
                    format!("refers to page {pgid}, past the end of the file ({len} bytes)"),
                ))
            }
        };
        // off + 16 <= len, so off fits in usize.
        let at = off as usize;
        let id = le64(&self.data, at);
        let flags = le16(&self.data, at + 8);
        let count = le16(&self.data, at + 10) as usize;
        let overflow = le32(&self.data, at + 12);
        if id != pgid {
            return Err(self.corrupt(
                pgid,
                off,
                format!("page header says page {id} (referenced from page {from_page})"),
            ));
        }
        if flags != FLAG_BRANCH && flags != FLAG_LEAF {
            return Err(self.corrupt(
                pgid,
                off,
                format!("page flags {flags:#06x}, expected a branch (0x01) or leaf (0x02) page"),
            ));
        }
        let last = pgid.checked_add(u64::from(overflow));
        let end = last
            .and_then(|l| l.checked_add(1))
            .and_then(|n| n.checked_mul(ps));
        let end = match (last, end) {
            (Some(l), Some(e)) if l < self.meta.pgid && e <= len => e,
            _ => {
                return Err(self.out_of_range(
                    pgid,
                    off,
                    format!(
                        "{overflow} overflow pages run past the high-water mark {} or the end of the file ({len} bytes)",
                        self.meta.pgid
                    ),
                ))
            }
        };
        let bytes = &self.data[at..end as usize];
        let node = Node {
            page: pgid,
            off,
            bytes,
            branch: flags == FLAG_BRANCH,
            count,
            inline: false,
        };
        node.check_count(self, "page span")?;
        Ok(node)
    }

    /// The inline leaf page in bucket value `value` (at file offset `voff` in page `page`).
    fn inline_node<'db>(
        &'db self,
        value: &'db [u8],
        page: u64,
        voff: u64,
    ) -> Result<Node<'db>, BoltError> {
        if value.len() < 2 * HEADER {
            return Err(self.corrupt(
                page,
                voff,
                format!(
                    "inline bucket value of {} bytes, shorter than the bucket header and a page header (32)",
                    value.len()
                ),
            ));
        }
        let bytes = &value[HEADER..];
        let off = voff + HEADER as u64;
        let flags = le16(bytes, 8);
        if flags != FLAG_LEAF {
            return Err(self.corrupt(
                page,
                off,
                format!("inline bucket page flags {flags:#06x}, expected a leaf page (0x02)"),
            ));
        }
        let node = Node {
            page,
            off,
            bytes,
            branch: false,
            count: le16(bytes, 10) as usize,
            inline: true,
        };
        node.check_count(self, "inline bucket value")?;
        Ok(node)
    }
}

/// One page (or inline page) being read: its bytes are the whole span.
#[derive(Debug, Clone, Copy)]
struct Node<'db> {
    /// The page id (for an inline page: the page holding the bucket value).
    page: u64,
    /// File offset of `bytes`.
    off: u64,
    bytes: &'db [u8],
    branch: bool,
    count: usize,
    /// An inline bucket's page, inside a bucket value.
    inline: bool,
}

/// A leaf element.
struct LeafElem<'db> {
    flags: u32,
    key: &'db [u8],
    value: &'db [u8],
    /// File offset of the element.
    off: u64,
    /// File offset of the value.
    voff: u64,
}

impl<'db> Node<'db> {
    fn check_count(&self, db: &Db, what: &str) -> Result<(), BoltError> {
        let need = HEADER as u64 + ELEM as u64 * self.count as u64;
        if need > self.bytes.len() as u64 {
            return Err(db.corrupt(
                self.page,
                self.off,
                format!(
                    "{} elements need {need} bytes, past the {what} ({} bytes)",
                    self.count,
                    self.bytes.len()
                ),
            ));
        }
        if self.branch && self.count == 0 {
            return Err(db.corrupt(self.page, self.off, "empty branch page".to_string()));
        }
        Ok(())
    }

    fn range(
        &self,
        db: &Db,
        i: usize,
        pos: u32,
        lens: &[u32],
    ) -> Result<std::ops::Range<usize>, BoltError> {
        let e = HEADER + ELEM * i;
        let start = e as u64 + u64::from(pos);
        let end = lens.iter().fold(start, |a, &l| a + u64::from(l));
        if end > self.bytes.len() as u64 {
            return Err(db.corrupt(
                self.page,
                self.off + e as u64,
                format!(
                    "element {i}: key{} at {start}..{end} past the {} ({} bytes)",
                    if lens.len() > 1 { "/value" } else { "" },
                    if self.inline {
                        "inline bucket"
                    } else {
                        "page span"
                    },
                    self.bytes.len()
                ),
            ));
        }
        Ok(start as usize..end as usize)
    }

    fn branch_elem(&self, db: &Db, i: usize) -> Result<(&'db [u8], u64), BoltError> {
        let e = HEADER + ELEM * i;
        let pos = le32(self.bytes, e);
        let ksize = le32(self.bytes, e + 4);
        let child = le64(self.bytes, e + 8);
        let r = self.range(db, i, pos, &[ksize])?;
        Ok((&self.bytes[r], child))
    }

    fn leaf_elem(&self, db: &Db, i: usize) -> Result<LeafElem<'db>, BoltError> {
        let e = HEADER + ELEM * i;
        let flags = le32(self.bytes, e);
        let pos = le32(self.bytes, e + 4);
        let ksize = le32(self.bytes, e + 8);
        let vsize = le32(self.bytes, e + 12);
        let eoff = self.off + e as u64;
        if flags & !LEAF_BUCKET != 0 {
            return Err(db.corrupt(
                self.page,
                eoff,
                format!("element {i}: unknown leaf flags {flags:#x}"),
            ));
        }
        let r = self.range(db, i, pos, &[ksize, vsize])?;
        let kend = r.start + ksize as usize;
        Ok(LeafElem {
            flags,
            key: &self.bytes[r.start..kend],
            value: &self.bytes[kend..r.end],
            off: eoff,
            voff: self.off + kend as u64,
        })
    }

    /// Checks key `key` of element `i` against the previous key in the page and the
    /// bounds given by the parent branch.
    fn check_key(
        &self,
        db: &Db,
        i: usize,
        key: &[u8],
        prev: Option<&[u8]>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> Result<(), BoltError> {
        let eoff = self.off + (HEADER + ELEM * i) as u64;
        if let Some(p) = prev {
            if key <= p {
                return Err(db.corrupt(
                    self.page,
                    eoff,
                    format!(
                        "element {i}: key {} {} the previous key {}",
                        show(key),
                        if key == p {
                            "duplicates"
                        } else {
                            "sorts before"
                        },
                        show(p)
                    ),
                ));
            }
        }
        if let Some(l) = lo {
            if key < l {
                return Err(db.corrupt(
                    self.page,
                    eoff,
                    format!(
                        "element {i}: key {} sorts before {}, the parent branch's key for this page",
                        show(key),
                        show(l)
                    ),
                ));
            }
        }
        if let Some(h) = hi {
            if key >= h {
                return Err(db.corrupt(
                    self.page,
                    eoff,
                    format!(
                        "element {i}: key {} is not before {}, the parent branch's key for the next page",
                        show(key),
                        show(h)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A key for messages: printable ASCII as is, other bytes escaped; at most 64 bytes.
fn show(key: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in key.iter().take(64) {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if key.len() > 64 {
        s.push_str("...");
    }
    s.push('"');
    s
}

/// Which pages belong to which bucket, shared by the buckets of one [`Db::root`] family.
#[derive(Debug, Default)]
struct Claims {
    /// Tree page → root page of the bucket whose tree it is in.
    page_owner: HashMap<u64, u64>,
    /// Bucket root page → file offset of the leaf element that is the bucket
    /// ([`META_ENTRY`] for the root bucket).
    root_entry: HashMap<u64, u64>,
}

#[derive(Debug, Clone, Copy)]
enum Root<'db> {
    Page(u64),
    Inline(Node<'db>),
}

/// A handle to one bucket of a [`Db`]: page-rooted or inline.
///
/// Cheap to clone; buckets reached from one [`Db::root`] call share (through an `Rc`, so a
/// `Bucket` stays on its thread; [`Db`] itself is `Send + Sync`) the record of which pages
/// belong to which bucket, which is how a page shared between two buckets is refused.
#[derive(Debug, Clone)]
pub struct Bucket<'db> {
    db: &'db Db,
    root: Root<'db>,
    sequence: u64,
    depth: usize,
    /// Pages from the root of the file down to the page holding this bucket's element.
    ancestors: Rc<[u64]>,
    claims: Rc<RefCell<Claims>>,
}

/// What a key of a bucket holds.
#[derive(Debug, Clone)]
pub enum EntryKind<'db> {
    /// A value.
    Value(&'db [u8]),
    /// A nested bucket.
    Bucket(Bucket<'db>),
}

/// One key of a bucket, from [`Bucket::iter`] or [`Bucket::entry`].
#[derive(Debug, Clone)]
pub struct Entry<'db> {
    key: &'db [u8],
    kind: EntryKind<'db>,
    page: u64,
    offset: u64,
}

impl<'db> Entry<'db> {
    /// The key.
    pub fn key(&self) -> &'db [u8] {
        self.key
    }

    /// A value or a nested bucket.
    pub fn kind(&self) -> &EntryKind<'db> {
        &self.kind
    }

    /// The value, when the entry is one.
    pub fn value(&self) -> Option<&'db [u8]> {
        match self.kind {
            EntryKind::Value(v) => Some(v),
            EntryKind::Bucket(_) => None,
        }
    }

    /// The nested bucket, when the entry is one.
    pub fn bucket(&self) -> Option<&Bucket<'db>> {
        match &self.kind {
            EntryKind::Bucket(b) => Some(b),
            EntryKind::Value(_) => None,
        }
    }

    /// The nested bucket, when the entry is one.
    pub fn into_bucket(self) -> Option<Bucket<'db>> {
        match self.kind {
            EntryKind::Bucket(b) => Some(b),
            EntryKind::Value(_) => None,
        }
    }

    /// The page holding the leaf element (for an entry of an inline bucket: the page
    /// holding the inline bucket).
    pub fn page(&self) -> u64 {
        self.page
    }

    /// The file offset of the 16-byte leaf element.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// The per-operation budget: no operation visits more pages than the file has, nor
/// more elements than those pages can hold.
struct Budget {
    pages: u64,
    elems: u64,
    max_pages: u64,
    max_elems: u64,
}

impl Budget {
    fn new(db: &Db) -> Budget {
        let max_pages = db.pages_in_file;
        Budget {
            pages: 0,
            elems: 0,
            max_pages,
            max_elems: max_pages.saturating_mul(u64::from(db.meta.page_size) / ELEM as u64),
        }
    }

    fn page(&mut self, db: &Db, node: &Node<'_>) -> Result<(), BoltError> {
        self.pages += 1;
        if self.pages > self.max_pages {
            return Err(db.limit(node.page, node.off, "pages visited", self.max_pages));
        }
        self.elems += node.count as u64;
        if self.elems > self.max_elems {
            return Err(db.limit(node.page, node.off, "elements visited", self.max_elems));
        }
        Ok(())
    }
}

impl<'db> Bucket<'db> {
    /// The bucket's sequence counter.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The bucket's root page, or `None` for an inline bucket.
    pub fn root_page(&self) -> Option<u64> {
        match self.root {
            Root::Page(p) => Some(p),
            Root::Inline(_) => None,
        }
    }

    /// How deep the bucket is nested (0: the root bucket).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The database.
    pub fn db(&self) -> &'db Db {
        self.db
    }

    /// The value of `key`; `None` when there is no such key or it is a nested bucket.
    pub fn get(&self, key: &[u8]) -> Result<Option<&'db [u8]>, BoltError> {
        Ok(self.entry(key)?.and_then(|e| e.value()))
    }

    /// The nested bucket `name`; `None` when there is no such key or it holds a value.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'db>>, BoltError> {
        Ok(self.entry(name)?.and_then(|e| e.into_bucket()))
    }

    /// The entry of `key`: a value or a nested bucket.
    ///
    /// Every page on the way down is checked whole: its elements in range and its keys
    /// sorted (no blind binary search).
    pub fn entry(&self, key: &[u8]) -> Result<Option<Entry<'db>>, BoltError> {
        let db = self.db;
        let mut budget = Budget::new(db);
        let mut path: Vec<u64> = Vec::new();
        let (mut node, owner) = match self.root {
            Root::Inline(n) => (n, None),
            Root::Page(p) => {
                let (from_page, from_off) = self.root_ref();
                let n = self.visit(p, p, from_page, from_off, &path)?;
                (n, Some(p))
            }
        };
        let (mut lo, mut hi): (Option<&'db [u8]>, Option<&'db [u8]>) = (None, None);
        loop {
            budget.page(db, &node)?;
            if !node.inline {
                path.push(node.page);
            }
            if node.branch {
                let mut prev: Option<&'db [u8]> = None;
                let mut chosen = 0;
                for i in 0..node.count {
                    let (k, _) = node.branch_elem(db, i)?;
                    node.check_key(db, i, k, prev, lo, hi)?;
                    prev = Some(k);
                    if k <= key {
                        chosen = i;
                    }
                }
                let i = chosen;
                let (k, child) = node.branch_elem(db, i)?;
                if i > 0 {
                    lo = Some(k);
                }
                if i + 1 < node.count {
                    hi = Some(node.branch_elem(db, i + 1)?.0);
                }
                let owner = owner.unwrap_or(node.page);
                if path.len() >= MAX_TREE_DEPTH {
                    return Err(db.limit(node.page, node.off, "tree depth", MAX_TREE_DEPTH as u64));
                }
                let eoff = node.off + (HEADER + ELEM * i) as u64;
                node = self.visit(child, owner, node.page, eoff, &path)?;
            } else {
                let mut prev: Option<&'db [u8]> = None;
                let mut found = None;
                for i in 0..node.count {
                    let el = node.leaf_elem(db, i)?;
                    node.check_key(db, i, el.key, prev, lo, hi)?;
                    prev = Some(el.key);
                    if el.key == key {
                        found = Some(el);
                    }
                }
                return match found {
                    None => Ok(None),
                    Some(el) => Ok(Some(self.make_entry(&node, el, &path)?)),
                };
            }
        }
    }

    /// The entries of the bucket in key order: values and nested buckets.
    ///
    /// The iterator yields an error and then ends when the tree is damaged; entries before
    /// the damage have been yielded.
    pub fn iter(&self) -> Iter<'db> {
        let mut it = Iter {
            bucket: self.clone(),
            stack: Vec::new(),
            visited: HashSet::new(),
            budget: Budget::new(self.db),
            last: None,
            done: false,
            pending: None,
        };
        match self.root {
            Root::Inline(n) => {
                if let Err(e) = it.budget.page(self.db, &n) {
                    it.pending = Some(e);
                } else {
                    it.stack.push(Frame::new(n, None, None));
                }
            }
            Root::Page(p) => {
                let (from_page, from_off) = self.root_ref();
                match self
                    .visit(p, p, from_page, from_off, &[])
                    .and_then(|n| it.budget.page(self.db, &n).map(|_| n))
                {
                    Ok(n) => {
                        it.visited.insert(p);
                        it.stack.push(Frame::new(n, None, None));
                    }
                    Err(e) => it.pending = Some(e),
                }
            }
        }
        it
    }

    /// Where the bucket's root page is referenced from: the last ancestor page (the
    /// meta page for the root bucket). Only used in messages.
    fn root_ref(&self) -> (u64, u64) {
        match self.ancestors.last() {
            Some(&p) => (p, p.saturating_mul(u64::from(self.db.meta.page_size))),
            None => (
                self.db.meta_page,
                self.db.meta_page * u64::from(self.db.meta.page_size),
            ),
        }
    }

    /// Reads tree page `pgid` of this bucket (root page `owner`), referenced from
    /// `(from_page, from_off)`, after the loop checks against the ancestors and `path`.
    fn visit(
        &self,
        pgid: u64,
        owner: u64,
        from_page: u64,
        from_off: u64,
        path: &[u64],
    ) -> Result<Node<'db>, BoltError> {
        let db = self.db;
        if path.contains(&pgid) || self.ancestors.contains(&pgid) {
            return Err(db.cycle(
                from_page,
                from_off,
                format!("refers to page {pgid}, already on the path from the root (a loop)"),
            ));
        }
        let node = db.node(pgid, from_page, from_off)?;
        let mut claims = self.claims.borrow_mut();
        match claims.page_owner.get(&pgid) {
            Some(&o) if o != owner => {
                return Err(db.cycle(
                    from_page,
                    from_off,
                    format!(
                        "refers to page {pgid}, which is in the tree of the bucket rooted at page {o}, not {owner}"
                    ),
                ))
            }
            Some(_) => {}
            None => {
                claims.page_owner.insert(pgid, owner);
            }
        }
        Ok(node)
    }

    fn make_entry(
        &self,
        node: &Node<'db>,
        el: LeafElem<'db>,
        path: &[u64],
    ) -> Result<Entry<'db>, BoltError> {
        let kind = if el.flags & LEAF_BUCKET == 0 {
            EntryKind::Value(el.value)
        } else {
            EntryKind::Bucket(self.nested(node, &el, path)?)
        };
        Ok(Entry {
            key: el.key,
            kind,
            page: node.page,
            offset: el.off,
        })
    }

    /// Opens the nested bucket of leaf element `el` in `node`, `path` being the tree pages
    /// from this bucket's root down to `node`.
    fn nested(
        &self,
        node: &Node<'db>,
        el: &LeafElem<'db>,
        path: &[u64],
    ) -> Result<Bucket<'db>, BoltError> {
        let db = self.db;
        let depth = self.depth + 1;
        if depth > MAX_BUCKET_DEPTH {
            return Err(db.limit(
                node.page,
                el.off,
                "bucket nesting depth",
                MAX_BUCKET_DEPTH as u64,
            ));
        }
        if el.value.len() < HEADER {
            return Err(db.corrupt(
                node.page,
                el.off,
                format!(
                    "bucket {}: value of {} bytes, shorter than the 16-byte bucket header",
                    show(el.key),
                    el.value.len()
                ),
            ));
        }
        let root_pgid = le64(el.value, 0);
        let sequence = le64(el.value, 8);
        let mut ancestors: Vec<u64> = self.ancestors.to_vec();
        ancestors.extend_from_slice(path);
        let root = if root_pgid == 0 {
            Root::Inline(db.inline_node(el.value, node.page, el.voff)?)
        } else {
            if ancestors.contains(&root_pgid) {
                return Err(db.cycle(
                    node.page,
                    el.off,
                    format!(
                        "bucket {}: root page {root_pgid} is already on the path from the root (a loop)",
                        show(el.key)
                    ),
                ));
            }
            let mut claims = self.claims.borrow_mut();
            match claims.root_entry.get(&root_pgid) {
                Some(&o) if o != el.off => {
                    return Err(db.cycle(
                        node.page,
                        el.off,
                        format!(
                        "bucket {}: root page {root_pgid} is already the root of another bucket{}",
                        show(el.key),
                        if o == META_ENTRY {
                            " (the root bucket)".to_string()
                        } else {
                            format!(" (element at offset {o:#x})")
                        }
                    ),
                    ))
                }
                Some(_) => {}
                None => {
                    claims.root_entry.insert(root_pgid, el.off);
                }
            }
            Root::Page(root_pgid)
        };
        Ok(Bucket {
            db,
            root,
            sequence,
            depth,
            ancestors: Rc::from(ancestors),
            claims: Rc::clone(&self.claims),
        })
    }
}

struct Frame<'db> {
    node: Node<'db>,
    idx: usize,
    prev: Option<&'db [u8]>,
    lo: Option<&'db [u8]>,
    hi: Option<&'db [u8]>,
}

impl<'db> Frame<'db> {
    fn new(node: Node<'db>, lo: Option<&'db [u8]>, hi: Option<&'db [u8]>) -> Frame<'db> {
        Frame {
            node,
            idx: 0,
            prev: None,
            lo,
            hi,
        }
    }
}

/// The entries of a [`Bucket`] in key order, from [`Bucket::iter`].
pub struct Iter<'db> {
    bucket: Bucket<'db>,
    stack: Vec<Frame<'db>>,
    visited: HashSet<u64>,
    budget: Budget,
    last: Option<&'db [u8]>,
    done: bool,
    pending: Option<BoltError>,
}

impl<'db> Iter<'db> {
    fn step(&mut self) -> Result<Option<Entry<'db>>, BoltError> {
        let db = self.bucket.db;
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if top.idx >= top.node.count {
                self.stack.pop();
                continue;
            }
            let i = top.idx;
            top.idx += 1;
            let node = top.node;
            if node.branch {
                let (k, child) = node.branch_elem(db, i)?;
                node.check_key(db, i, k, top.prev, top.lo, top.hi)?;
                top.prev = Some(k);
                let lo = if i == 0 { top.lo } else { Some(k) };
                let hi = if i + 1 < node.count {
                    Some(node.branch_elem(db, i + 1)?.0)
                } else {
                    top.hi
                };
                if self.stack.len() >= MAX_TREE_DEPTH {
                    return Err(db.limit(node.page, node.off, "tree depth", MAX_TREE_DEPTH as u64));
                }
                let eoff = node.off + (HEADER + ELEM * i) as u64;
                let path: Vec<u64> = self.stack.iter().map(|f| f.node.page).collect();
                let owner = self.bucket.root_page().unwrap_or(node.page);
                let n = self.bucket.visit(child, owner, node.page, eoff, &path)?;
                if self.visited.contains(&child) {
                    return Err(db.cycle(
                        node.page,
                        eoff,
                        format!("refers to page {child}, already visited in this bucket"),
                    ));
                }
                self.budget.page(db, &n)?;
                self.visited.insert(child);
                self.stack.push(Frame::new(n, lo, hi));
            } else {
                let el = node.leaf_elem(db, i)?;
                node.check_key(db, i, el.key, top.prev, top.lo, top.hi)?;
                top.prev = Some(el.key);
                if let Some(last) = self.last {
                    if el.key <= last {
                        return Err(db.corrupt(
                            node.page,
                            el.off,
                            format!(
                                "element {i}: key {} does not sort after {}, the bucket's previous key",
                                show(el.key),
                                show(last)
                            ),
                        ));
                    }
                }
                self.last = Some(el.key);
                // The tree path, needed only to open a nested bucket.
                let path: Vec<u64> = if node.inline || el.flags & LEAF_BUCKET == 0 {
                    Vec::new()
                } else {
                    self.stack.iter().map(|f| f.node.page).collect()
                };
                return self.bucket.make_entry(&node, el, &path).map(Some);
            }
        }
    }
}

impl<'db> Iterator for Iter<'db> {
    type Item = Result<Entry<'db>, BoltError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Some(Err(e));
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn show_escapes_and_truncates() {
        assert_eq!(show(b"a\"b\x00"), "\"a\\x22b\\x00\"");
        assert!(show(&[b'x'; 100]).ends_with("...\""));
    }

    #[test]
    fn page_sizes() {
        for ps in [1024, 4096, 16384, 65536] {
            assert!(valid_page_size(ps));
        }
        for ps in [0, 512, 3000, 131072, u32::MAX] {
            assert!(!valid_page_size(ps));
        }
    }
}
