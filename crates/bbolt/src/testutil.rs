//! A tiny bbolt writer for tests and examples: whole databases from a tree of items
//! ([`build`], [`build_with`]), raw pages ([`leaf_page`], [`branch_page`]) and files of
//! hand-made pages ([`assemble`]) for hostile cases. Not a general writer: no freelist
//! contents, no transactions.

use crate::{fnv1a64, Meta, MAGIC, VERSION};

/// An item of a bucket: a value or a nested bucket.
#[derive(Debug, Clone)]
pub enum Item {
    /// A value.
    Value(Vec<u8>),
    /// A nested bucket with its sequence and items (sorted by the writer).
    Bucket {
        /// The bucket's sequence.
        sequence: u64,
        /// Its items.
        items: Vec<(Vec<u8>, Item)>,
    },
}

impl Item {
    /// A value.
    pub fn value(v: &[u8]) -> Item {
        Item::Value(v.to_vec())
    }

    /// A nested bucket.
    pub fn bucket(sequence: u64, items: Vec<(Vec<u8>, Item)>) -> Item {
        Item::Bucket { sequence, items }
    }
}

/// How [`build_with`] lays the tree out.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Page size.
    pub page_size: u32,
    /// At most this many elements per page (small values force branch pages).
    pub max_elems: usize,
    /// Store small buckets without sub-buckets inline, as bbolt does.
    pub inline: bool,
    /// The txid of the current meta (page `txid % 2`); the other meta gets `txid - 1`.
    pub txid: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            page_size: 4096,
            max_elems: 64,
            inline: true,
            txid: 3,
        }
    }
}

/// Builds a database with page size `page_size` whose root bucket holds `root`.
pub fn build(page_size: u32, root: &[(Vec<u8>, Item)]) -> Vec<u8> {
    build_with(
        Options {
            page_size,
            ..Options::default()
        },
        root,
    )
}

/// Builds a database laid out by `opts` whose root bucket holds `root`.
pub fn build_with(opts: Options, root: &[(Vec<u8>, Item)]) -> Vec<u8> {
    let ps = opts.page_size as usize;
    let mut w = Writer {
        opts,
        buf: vec![0u8; 3 * ps],
    };
    // Page 2: an empty freelist.
    w.buf[2 * ps..2 * ps + 8].copy_from_slice(&2u64.to_le_bytes());
    w.buf[2 * ps + 8..2 * ps + 10].copy_from_slice(&0x10u16.to_le_bytes());
    let root_pgid = w.bucket(root);
    let pgid = (w.buf.len() / ps) as u64;
    let mut buf = w.buf;
    for (index, txid) in [
        (opts.txid % 2, opts.txid),
        ((opts.txid + 1) % 2, opts.txid - 1),
    ] {
        let meta = Meta {
            page_size: opts.page_size,
            flags: 0,
            root: root_pgid,
            sequence: 0,
            freelist: 2,
            pgid,
            txid,
        };
        write_meta(&mut buf, index, &meta);
    }
    buf
}

/// Writes meta page `index` (0 or 1) of `buf` with a correct checksum.
pub fn write_meta(buf: &mut [u8], index: u64, meta: &Meta) {
    let ps = meta.page_size as usize;
    let off = index as usize * ps;
    let p = &mut buf[off..off + ps];
    p[..8].copy_from_slice(&index.to_le_bytes());
    p[8..10].copy_from_slice(&0x04u16.to_le_bytes());
    let b = &mut p[16..16 + 64];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&VERSION.to_le_bytes());
    b[8..12].copy_from_slice(&meta.page_size.to_le_bytes());
    b[12..16].copy_from_slice(&meta.flags.to_le_bytes());
    b[16..24].copy_from_slice(&meta.root.to_le_bytes());
    b[24..32].copy_from_slice(&meta.sequence.to_le_bytes());
    b[32..40].copy_from_slice(&meta.freelist.to_le_bytes());
    b[40..48].copy_from_slice(&meta.pgid.to_le_bytes());
    b[48..56].copy_from_slice(&meta.txid.to_le_bytes());
    let sum = fnv1a64(&b[..56]);
    b[56..64].copy_from_slice(&sum.to_le_bytes());
}

/// Recomputes the checksum of meta page `index` of `buf` (after editing its fields).
pub fn fix_meta_checksum(buf: &mut [u8], index: u64, page_size: u32) {
    let off = index as usize * page_size as usize + 16;
    let sum = fnv1a64(&buf[off..off + 56]);
    buf[off + 56..off + 64].copy_from_slice(&sum.to_le_bytes());
}

/// A leaf page (header + elements + keys and values, unpadded) with id `id`; elements
/// are `(flags, key, value)` in the order given.
pub fn leaf_page(id: u64, elems: &[(u32, &[u8], &[u8])]) -> Vec<u8> {
    let mut p = header(id, 0x02, elems.len());
    let mut data = Vec::new();
    for (i, (flags, k, v)) in elems.iter().enumerate() {
        let e = 16 + 16 * i;
        let pos = (16 + 16 * elems.len() + data.len() - e) as u32;
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&pos.to_le_bytes());
        p.extend_from_slice(&(k.len() as u32).to_le_bytes());
        p.extend_from_slice(&(v.len() as u32).to_le_bytes());
        data.extend_from_slice(k);
        data.extend_from_slice(v);
    }
    p.extend_from_slice(&data);
    p
}

/// A branch page (unpadded) with id `id`; elements are `(key, child pgid)`.
pub fn branch_page(id: u64, elems: &[(&[u8], u64)]) -> Vec<u8> {
    let mut p = header(id, 0x01, elems.len());
    let mut data = Vec::new();
    for (i, (k, child)) in elems.iter().enumerate() {
        let e = 16 + 16 * i;
        let pos = (16 + 16 * elems.len() + data.len() - e) as u32;
        p.extend_from_slice(&pos.to_le_bytes());
        p.extend_from_slice(&(k.len() as u32).to_le_bytes());
        p.extend_from_slice(&child.to_le_bytes());
        data.extend_from_slice(k);
    }
    p.extend_from_slice(&data);
    p
}

/// A bucket value: `root pgid, sequence`, then `inline` (an inline leaf page) if any.
pub fn bucket_value(root: u64, sequence: u64, inline: &[u8]) -> Vec<u8> {
    let mut v = root.to_le_bytes().to_vec();
    v.extend_from_slice(&sequence.to_le_bytes());
    v.extend_from_slice(inline);
    v
}

fn header(id: u64, flags: u16, count: usize) -> Vec<u8> {
    let mut p = id.to_le_bytes().to_vec();
    p.extend_from_slice(&flags.to_le_bytes());
    p.extend_from_slice(&(count as u16).to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p
}

/// A file of meta pages 0 and 1 (txids 2 and 3, root `root`) followed by `pages` as
/// pages 2, 3, …: each padded to a page, or to whole pages with the header's overflow
/// count set when longer. The high-water mark is the page count.
pub fn assemble(page_size: u32, root: u64, pages: &[Vec<u8>]) -> Vec<u8> {
    let ps = page_size as usize;
    let mut buf = vec![0u8; 2 * ps];
    for p in pages {
        let n = p.len().div_ceil(ps).max(1);
        let at = buf.len();
        buf.extend_from_slice(p);
        buf.resize(at + n * ps, 0);
        if n > 1 {
            buf[at + 12..at + 16].copy_from_slice(&((n - 1) as u32).to_le_bytes());
        }
    }
    let pgid = (buf.len() / ps) as u64;
    for (index, txid) in [(0, 2), (1, 3)] {
        let meta = Meta {
            page_size,
            flags: 0,
            root,
            sequence: 0,
            freelist: u64::MAX,
            pgid,
            txid,
        };
        write_meta(&mut buf, index, &meta);
    }
    buf
}

struct Writer {
    opts: Options,
    buf: Vec<u8>,
}

impl Writer {
    /// Writes `page` at a fresh page id (fixing its id and overflow fields).
    fn put(&mut self, mut page: Vec<u8>) -> u64 {
        let ps = self.opts.page_size as usize;
        let pgid = (self.buf.len() / ps) as u64;
        let n = page.len().div_ceil(ps).max(1);
        page[..8].copy_from_slice(&pgid.to_le_bytes());
        page[12..16].copy_from_slice(&((n - 1) as u32).to_le_bytes());
        page.resize(n * ps, 0);
        self.buf.extend_from_slice(&page);
        pgid
    }

    fn elems(&mut self, items: &[(Vec<u8>, Item)]) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
        let mut sorted: Vec<&(Vec<u8>, Item)> = items.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (k, item) in sorted {
            match item {
                Item::Value(v) => out.push((0, k.clone(), v.clone())),
                Item::Bucket { sequence, items } => {
                    let has_sub = items.iter().any(|(_, i)| matches!(i, Item::Bucket { .. }));
                    let size: usize = 16
                        + items
                            .iter()
                            .map(|(k, i)| 16 + k.len() + item_len(i))
                            .sum::<usize>();
                    if self.opts.inline && !has_sub && size <= self.opts.page_size as usize / 4 {
                        let elems = self.elems(items);
                        let refs: Vec<(u32, &[u8], &[u8])> =
                            elems.iter().map(|(f, k, v)| (*f, &k[..], &v[..])).collect();
                        let page = leaf_page(0, &refs);
                        out.push((1, k.clone(), bucket_value(0, *sequence, &page)));
                    } else {
                        let root = self.bucket(items);
                        out.push((1, k.clone(), bucket_value(root, *sequence, &[])));
                    }
                }
            }
        }
        out
    }

    /// Writes a bucket's tree, returning its root page.
    fn bucket(&mut self, items: &[(Vec<u8>, Item)]) -> u64 {
        let ps = self.opts.page_size as usize;
        let max = self.opts.max_elems.max(2);
        let elems = self.elems(items);
        // Leaves.
        let mut level: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut chunk: Vec<(u32, &[u8], &[u8])> = Vec::new();
        let mut size = 16;
        let mut chunks = Vec::new();
        for (f, k, v) in &elems {
            let n = 16 + k.len() + v.len();
            if !chunk.is_empty() && (chunk.len() >= max || size + n > ps) {
                chunks.push(std::mem::take(&mut chunk));
                size = 16;
            }
            chunk.push((*f, &k[..], &v[..]));
            size += n;
        }
        chunks.push(chunk);
        for c in chunks {
            let first = c.first().map(|e| e.1.to_vec()).unwrap_or_default();
            let pgid = self.put(leaf_page(0, &c));
            level.push((first, pgid));
        }
        // Branches.
        while level.len() > 1 {
            let mut next = Vec::new();
            for c in level.chunks(max) {
                let refs: Vec<(&[u8], u64)> = c.iter().map(|(k, p)| (&k[..], *p)).collect();
                let pgid = self.put(branch_page(0, &refs));
                next.push((c[0].0.clone(), pgid));
            }
            level = next;
        }
        level[0].1
    }
}

fn item_len(i: &Item) -> usize {
    match i {
        Item::Value(v) => v.len(),
        Item::Bucket { items, .. } => {
            32 + items
                .iter()
                .map(|(k, i)| 16 + k.len() + item_len(i))
                .sum::<usize>()
        }
    }
}
