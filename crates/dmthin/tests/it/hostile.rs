//! Damaged and hostile metadata: errors, never panics.

use crate::common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use salvor_dmthin::{ThinError, ThinPool, METADATA_BLOCK_SIZE};
use salvor_source::BlockDevice;

const BS4K: usize = METADATA_BLOCK_SIZE;
type Mutation = Box<dyn Fn(&mut Vec<u8>)>;

/// An in-memory block device.
#[derive(Debug)]
struct Mem(Vec<u8>);
impl BlockDevice for Mem {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if offset >= self.0.len() as u64 {
            return Ok(0);
        }
        let n = buf.len().min(self.0.len() - offset as usize);
        buf[..n].copy_from_slice(&self.0[offset as usize..offset as usize + n]);
        Ok(n)
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn put64(m: &mut [u8], off: usize, v: u64) {
    m[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn put32(m: &mut [u8], off: usize, v: u32) {
    m[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn blk(b: u64) -> usize {
    b as usize * BS4K
}
/// Recomputes the checksum of metadata block `b` (superblock or B-tree node).
fn fix(m: &mut [u8], b: u64) {
    let xor = if b == 0 { 160774u32 } else { 121107 };
    let c =
        crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&m[blk(b) + 4..blk(b) + BS4K]) ^ !0 ^ xor;
    put32(m, blk(b), c);
}

struct NodeView {
    internal: bool,
    nr: usize,
    max: usize,
    vs: usize,
}
fn view(m: &[u8], b: u64) -> NodeView {
    let o = blk(b);
    NodeView {
        internal: le32(m, o + 4) == 1,
        nr: le32(m, o + 16) as usize,
        max: le32(m, o + 20) as usize,
        vs: le32(m, o + 24) as usize,
    }
}
fn key_off(b: u64, i: usize) -> usize {
    blk(b) + 32 + 8 * i
}
fn val_off(m: &[u8], b: u64, i: usize) -> usize {
    let v = view(m, b);
    blk(b) + 32 + 8 * v.max + v.vs * i
}
/// The mapping-tree root of `dev` (the top level is one leaf in these pools).
fn dev_root(m: &[u8], dev: u64) -> u64 {
    let top = le64(m, 320);
    let v = view(m, top);
    assert!(!v.internal);
    let i = (0..v.nr)
        .find(|&i| le64(m, key_off(top, i)) == dev)
        .unwrap();
    le64(m, val_off(m, top, i))
}

fn open_mem(
    meta: Vec<u8>,
    data: &Arc<dyn BlockDevice>,
    strict: bool,
) -> Result<ThinPool, ThinError> {
    let meta: Arc<dyn BlockDevice> = Arc::new(Mem(meta));
    if strict {
        ThinPool::open(meta, data.clone())
    } else {
        ThinPool::open_lenient(meta, data.clone())
    }
}

struct Fixture {
    _pool: Pool,
    meta: Vec<u8>,
    data: Arc<dyn BlockDevice>,
}
fn fixture() -> Fixture {
    let p = build_pool();
    let meta = std::fs::read(&p.metadata).unwrap();
    let data: Arc<dyn BlockDevice> = Arc::new(Mem(std::fs::read(&p.data).unwrap()));
    Fixture {
        _pool: p,
        meta,
        data,
    }
}

/// Reads everything reachable; must not panic, errors are fine.
fn exercise(pool: &ThinPool) {
    for d in pool.devices().into_iter().take(64) {
        let mut n = 0u64;
        let _ = pool.for_each_mapping(d.dev_id, &mut |_| n += 1);
        let _ = pool.highest_mapped_block(d.dev_id);
        let _ = pool.device(d.dev_id);
        if let Ok(dev) = pool.device_with_size(d.dev_id, IMAGE_SIZE) {
            let mut buf = vec![0u8; 1 << 20];
            for k in 0..16u64 {
                if dev.read_exact_at(k << 20, &mut buf).is_err() {
                    break;
                }
            }
        }
    }
    let _ = pool.report();
}

#[test]
fn wide_device_tree_has_three_levels() {
    let f = fixture();
    let root = dev_root(&f.meta, WIDE_DEV);
    let mut depth = 1;
    let mut b = root;
    while view(&f.meta, b).internal {
        b = le64(&f.meta, val_off(&f.meta, b, 0));
        depth += 1;
    }
    assert_eq!(
        depth, 3,
        "the wide device should need an internal level below the root"
    );
}

#[test]
fn not_metadata() {
    let f = fixture();
    assert!(matches!(
        open_mem(vec![0; 1 << 20], &f.data, true),
        Err(ThinError::NotThinMetadata(_))
    ));
    assert!(matches!(
        open_mem(vec![], &f.data, true),
        Err(ThinError::Io { .. })
    ));
    assert!(matches!(
        open_mem(vec![0xff; 100], &f.data, true),
        Err(ThinError::Io { .. })
    ));
}

#[test]
fn superblock_checksum_strict_and_lenient() {
    let f = fixture();
    let mut m = f.meta.clone();
    m[1000] ^= 0x40; // an unused byte of the superblock
    let e = open_mem(m.clone(), &f.data, true).unwrap_err();
    assert!(
        matches!(
            e,
            ThinError::Checksum {
                what: "superblock",
                block: 0,
                ..
            }
        ),
        "{e}"
    );
    let pool = open_mem(m, &f.data, false).unwrap();
    assert_eq!(pool.report().checksum_failures, 1);
    assert_eq!(pool.devices().len(), 4);
    assert!(salvor_ext4::Ext4::open(pool.device(BASE_DEV).unwrap()).is_ok());
}

#[test]
fn superblock_fields_validated() {
    let f = fixture();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "mapping root past the end",
            Box::new(|m| put64(m, 320, 1 << 40)),
        ),
        ("details root 0", Box::new(|m| put64(m, 328, 0))),
        ("metadata_nr_blocks 2", Box::new(|m| put64(m, 344, 2))),
        ("metadata_nr_blocks 0", Box::new(|m| put64(m, 344, 0))),
        ("data block size 0", Box::new(|m| put32(m, 336, 0))),
        ("data block size odd", Box::new(|m| put32(m, 336, 7))),
        ("metadata block size", Box::new(|m| put32(m, 340, 16))),
        ("version", Box::new(|m| put32(m, 40, 99))),
        ("incompat", Box::new(|m| put32(m, 360, 1))),
        ("blocknr", Box::new(|m| put64(m, 8, 5))),
        (
            "mapping root is the superblock",
            Box::new(|m| put64(m, 320, 0)),
        ),
    ];
    for (what, mutate) in cases {
        let mut m = f.meta.clone();
        mutate(&mut m);
        fix(&mut m, 0);
        let e = open_mem(m, &f.data, true).expect_err(what);
        eprintln!("{what}: {e}");
    }
}

#[test]
fn hostile_nodes() {
    let f = fixture();
    let root = dev_root(&f.meta, WIDE_DEV);
    let base_root = dev_root(&f.meta, BASE_DEV);
    assert!(view(&f.meta, root).internal);
    let nr_meta = le64(&f.meta, 344);
    let leaf = {
        let mut b = root;
        while view(&f.meta, b).internal {
            b = le64(&f.meta, val_off(&f.meta, b, 0));
        }
        b
    };
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "absurd nr_entries",
            Box::new(move |m| put32(m, blk(root) + 16, u32::MAX)),
        ),
        (
            "absurd max_entries",
            Box::new(move |m| put32(m, blk(root) + 20, u32::MAX)),
        ),
        (
            "zero value_size",
            Box::new(move |m| put32(m, blk(root) + 24, 0)),
        ),
        ("bad flags", Box::new(move |m| put32(m, blk(root) + 4, 3))),
        (
            "child loops to the root",
            Box::new(move |m| {
                let o = val_off(m, root, 0);
                put64(m, o, root)
            }),
        ),
        (
            "child past the end",
            Box::new(move |m| {
                let o = val_off(m, root, 1);
                put64(m, o, nr_meta + 5)
            }),
        ),
        (
            "child is the superblock",
            Box::new(move |m| {
                let o = val_off(m, root, 0);
                put64(m, o, 0)
            }),
        ),
        (
            "child is another device's tree",
            Box::new(move |m| {
                let o = val_off(m, root, 1);
                put64(m, o, base_root)
            }),
        ),
        (
            "keys out of order",
            Box::new(move |m| {
                let k = le64(m, key_off(leaf, 0));
                put64(m, key_off(leaf, 1), k)
            }),
        ),
        (
            "data block past the pool",
            Box::new(move |m| {
                let o = val_off(m, leaf, 0);
                put64(m, o, (NR_DATA_BLOCKS + 3) << 24)
            }),
        ),
        (
            "node in the wrong block",
            Box::new(move |m| put64(m, blk(leaf) + 8, leaf + 1)),
        ),
    ];
    for (what, mutate) in cases {
        let mut m = f.meta.clone();
        mutate(&mut m);
        fix(&mut m, root);
        fix(&mut m, leaf);
        // Unrelated devices stay readable.
        let pool = open_mem(m.clone(), &f.data, true).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            salvor_ext4::Ext4::open(pool.device(BASE_DEV).unwrap()).is_ok(),
            "{what}"
        );
        let walk = pool.for_each_mapping(WIDE_DEV, &mut |_| {});
        let e = walk.expect_err(what);
        eprintln!("{what}: walk: {e}");
        // Reading every mapped block of the wide device: errors, never a panic.
        let dev = pool
            .device_with_size(WIDE_DEV, (3 * WIDE_MAPPINGS + 8) * BS)
            .unwrap();
        let mut errors = 0;
        let mut buf = [0u8; 512];
        for k in (0..WIDE_MAPPINGS).step_by(7) {
            if dev
                .read_exact_at((1 + 3 * k + (k % 2)) * BS, &mut buf)
                .is_err()
            {
                errors += 1;
            }
        }
        assert!(
            errors > 0 || what == "child is another device's tree",
            "{what}: no read failed"
        );
        // Unchecksummed: the same mutation without fixing the checksum is a checksum error.
        let mut m2 = f.meta.clone();
        mutate(&mut m2);
        let pool = open_mem(m2, &f.data, true).unwrap();
        assert!(
            pool.for_each_mapping(WIDE_DEV, &mut |_| {}).is_err(),
            "{what}"
        );
    }
}

#[test]
fn truncated_devices() {
    let f = fixture();
    // Data device shorter than the pool: a warning, then I/O errors for blocks past it.
    let short: Arc<dyn BlockDevice> = Arc::new(Mem(vec![0; 2 * BS as usize]));
    let pool = open_mem(f.meta.clone(), &short, true).unwrap();
    assert!(!pool.report().warnings.is_empty());
    let dev = pool.device_with_size(BASE_DEV, IMAGE_SIZE).unwrap();
    let mut buf = vec![0u8; IMAGE_SIZE as usize];
    let e = dev.read_exact_at(0, &mut buf).unwrap_err();
    eprintln!("short data: {e}");
    // Metadata cut short: errors naming the missing blocks, never a panic.
    for blocks in [1usize, 2, 4, 8, 16, 32] {
        let m = f.meta[..blocks * BS4K].to_vec();
        if let Ok(pool) = open_mem(m, &f.data, true) {
            exercise(&pool);
        }
    }
}

fn used_blocks(m: &[u8]) -> Vec<u64> {
    (0..m.len() / BS4K)
        .filter(|&b| m[b * BS4K..(b + 1) * BS4K].iter().any(|&x| x != 0))
        .map(|b| b as u64)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
        fn flipped_metadata_never_panics(flips in prop::collection::vec((any::<prop::sample::Index>(), 0usize..BS4K, 1u8..=255), 1..8), refix in any::<bool>()) {
        let f = FIXTURE.with(|f| (f.meta.clone(), f.data.clone()));
        let (mut m, data) = f;
        let used = used_blocks(&m);
        let mut touched = Vec::new();
        for (idx, off, x) in flips {
            let b = used[idx.index(used.len())];
            m[blk(b) + off] ^= x;
            touched.push(b);
        }
        if refix {
            for b in touched {
                fix(&mut m, b);
            }
        }
        for strict in [true, false] {
            if let Ok(pool) = open_mem(m.clone(), &data, strict) {
                exercise(&pool);
            }
        }
    }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}
