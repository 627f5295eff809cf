//! Hostile files: the real containerd meta.db mutated at known structures, and files of
//! hand-made pages. Every case must be an error naming the file and the page (or both
//! meta pages), never a panic or a hang.

mod common;

use common::{fixture, walk_all};
use salvor_bbolt::testutil::{self, assemble, branch_page, bucket_value, leaf_page, Item};
use salvor_bbolt::{BoltError, Db, MAX_BUCKET_DEPTH};

const PS: u64 = 4096;

fn put16(b: &mut [u8], at: u64, v: u16) {
    b[at as usize..at as usize + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: u64, v: u32) {
    b[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: u64, v: u64) {
    b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
}
fn get64(b: &[u8], at: u64) -> u64 {
    u64::from_le_bytes(b[at as usize..at as usize + 8].try_into().unwrap())
}

/// Where things are in the real meta.db.
struct Loc {
    /// `v1/default/leases`: a branch page.
    leases: u64,
    /// Its first child: a leaf page.
    leaf0: u64,
    /// `v1/default`'s root page: an ancestor of `leases`.
    default: u64,
    /// The element and page of `v1/default/leases/lease-151`, an inline bucket.
    inline_elem: u64,
    inline_page: u64,
}

fn locate(bytes: &[u8]) -> Loc {
    let db = Db::open(bytes.to_vec(), "meta.db").unwrap();
    let root = db.root();
    let default = root
        .bucket(b"v1")
        .unwrap()
        .unwrap()
        .bucket(b"default")
        .unwrap()
        .unwrap();
    let leases = default.bucket(b"leases").unwrap().unwrap();
    let lp = leases.root_page().unwrap();
    assert_eq!(
        bytes[(lp * PS + 8) as usize],
        0x01,
        "leases root is a branch page"
    );
    let e = leases.entry(b"lease-151").unwrap().unwrap();
    assert!(e.bucket().unwrap().root_page().is_none());
    Loc {
        leases: lp,
        leaf0: get64(bytes, lp * PS + 16 + 8),
        default: default.root_page().unwrap(),
        inline_elem: e.offset(),
        inline_page: e.page(),
    }
}

fn real() -> (Vec<u8>, Loc) {
    let b = fixture("containerd-meta.db");
    let l = locate(&b);
    (b, l)
}

/// Opens `bytes` and walks it all; returns the errors (at least one expected).
fn errors(bytes: Vec<u8>) -> Vec<BoltError> {
    let db = Db::open(bytes, "meta.db").unwrap();
    let (_, errs) = walk_all(&db);
    assert!(!errs.is_empty(), "the walk found nothing wrong");
    for e in &errs {
        let s = e.to_string();
        assert!(s.starts_with("meta.db: page "), "{s}");
    }
    errs
}

fn assert_page(errs: &[BoltError], page: u64, what: &str) {
    assert!(
        errs.iter()
            .any(|e| e.page() == Some(page) && e.to_string().contains(what)),
        "no error on page {page} with {what:?}: {errs:#?}"
    );
}

#[test]
fn branch_child_pointing_to_itself_is_a_cycle() {
    let (mut b, l) = real();
    put64(&mut b, l.leases * PS + 16 + 8, l.leases);
    let errs = errors(b);
    assert!(matches!(errs[0], BoltError::Cycle { .. }), "{errs:?}");
    assert_page(
        &errs,
        l.leases,
        &format!("refers to page {}, already on the path", l.leases),
    );
}

#[test]
fn branch_child_pointing_to_an_ancestor_is_a_cycle() {
    let (mut b, l) = real();
    put64(&mut b, l.leases * PS + 16 + 16 + 8, l.default);
    let errs = errors(b);
    assert_page(
        &errs,
        l.leases,
        &format!("refers to page {}, already on the path", l.default),
    );
}

#[test]
fn branch_child_out_of_range() {
    for (child, what) in [
        (58, "at or past the high-water mark 58"),
        (1 << 60, "at or past the high-water mark"),
        (u64::MAX, "at or past the high-water mark"),
        (1, "a meta page, as a tree page"),
        (0, "a meta page, as a tree page"),
    ] {
        let (mut b, l) = real();
        put64(&mut b, l.leases * PS + 16 + 8, child);
        assert_page(&errors(b), l.leases, what);
    }
}

#[test]
fn page_offset_overflow_and_pages_past_the_end() {
    // A high-water mark that lets page ids overflow `id × pageSize`.
    let (mut b, l) = real();
    let db = Db::open(b.clone(), "meta.db").unwrap();
    let m = db.meta_page();
    put64(&mut b, m * PS + 16 + 40, u64::MAX);
    testutil::fix_meta_checksum(&mut b, m, 4096);
    for (child, what) in [
        (u64::MAX - 1, "past the end of the file"),
        (1 << 53, "past the end of the file"),
        (64, "past the end of the file"),
        (60, "page header says page 0"),
    ] {
        let mut c = b.clone();
        put64(&mut c, l.leases * PS + 16 + 8, child);
        let page = if child == 60 { 60 } else { l.leases };
        assert_page(&errors(c), page, what);
    }
    // Overflow count running past the end.
    for ov in [u32::MAX, 1000] {
        let mut c = b.clone();
        put32(&mut c, l.leaf0 * PS + 12, ov);
        assert_page(&errors(c), l.leaf0, "overflow pages run past");
    }
}

#[test]
fn huge_count_is_refused() {
    let (mut b, l) = real();
    put16(&mut b, l.leaf0 * PS + 10, 0xffff);
    assert_page(
        &errors(b),
        l.leaf0,
        "65535 elements need 1048576 bytes, past the page span",
    );
    let (mut b, l) = real();
    put16(&mut b, l.leases * PS + 10, 0xffff);
    assert_page(&errors(b), l.leases, "past the page span");
}

#[test]
fn header_id_flags_and_empty_branch() {
    let (mut b, l) = real();
    put64(&mut b, l.leaf0 * PS, 7);
    assert_page(&errors(b), l.leaf0, "page header says page 7");
    let (mut b, l) = real();
    put16(&mut b, l.leaf0 * PS + 8, 0x10);
    assert_page(
        &errors(b),
        l.leaf0,
        "page flags 0x0010, expected a branch (0x01) or leaf (0x02) page",
    );
    let (mut b, l) = real();
    put16(&mut b, l.leases * PS + 10, 0);
    assert_page(&errors(b), l.leases, "empty branch page");
}

#[test]
fn key_and_value_ranges_past_the_page() {
    let (b0, l) = real();
    // ksize / vsize / pos of leaf element 0 of leaf0.
    for (field, v) in [
        (8u64, 0xffff_fff0u32),
        (12, 0xffff_ffff),
        (4, 4096),
        (4, u32::MAX),
    ] {
        let mut b = b0.clone();
        put32(&mut b, l.leaf0 * PS + 16 + field, v);
        assert_page(&errors(b), l.leaf0, "element 0: key/value at");
    }
    // Branch element key size.
    let mut b = b0.clone();
    put32(&mut b, l.leases * PS + 16 + 4, 5000);
    assert_page(&errors(b), l.leases, "element 0: key at");
    // Unknown leaf flags.
    let mut b = b0.clone();
    put32(&mut b, l.leaf0 * PS + 16, 6);
    assert_page(&errors(b), l.leaf0, "unknown leaf flags 0x6");
}

#[test]
fn short_bucket_values() {
    let (b0, l) = real();
    for (vsize, what) in [
        (20u32, "inline bucket value of 20 bytes, shorter than"),
        (
            8,
            "value of 8 bytes, shorter than the 16-byte bucket header",
        ),
    ] {
        let mut b = b0.clone();
        put32(&mut b, l.inline_elem + 12, vsize);
        let errs = errors(b.clone());
        assert_page(&errs, l.inline_page, what);
        let db = Db::open(b, "meta.db").unwrap();
        let leases = db
            .root()
            .bucket(b"v1")
            .unwrap()
            .unwrap()
            .bucket(b"default")
            .unwrap()
            .unwrap()
            .bucket(b"leases")
            .unwrap()
            .unwrap();
        let e = leases.bucket(b"lease-151").unwrap_err();
        assert_eq!(e.page(), Some(l.inline_page));
    }
}

#[test]
fn truncated_files() {
    let (b0, _) = real();
    let hwm_end = 58 * PS as usize;
    let mut cases = 0;
    let mut len = 2 * PS as usize;
    while len < b0.len() {
        let db = Db::open(b0[..len].to_vec(), "meta.db").unwrap();
        let (_, errs) = walk_all(&db);
        if len < hwm_end {
            assert!(!errs.is_empty(), "truncated to {len}");
            for e in &errs {
                assert!(e.to_string().starts_with("meta.db: page "), "{e}");
            }
        } else {
            assert!(errs.is_empty(), "{errs:?}");
        }
        cases += 1;
        len += 1531;
    }
    assert!(cases > 100);
    // Shorter than two pages.
    let e = Db::open(b0[..5000].to_vec(), "meta.db").unwrap_err();
    assert!(
        matches!(
            e,
            BoltError::TooSmall {
                len: 5000,
                need: 8192,
                ..
            }
        ),
        "{e}"
    );
    let e = Db::open(b0[..100].to_vec(), "meta.db").unwrap_err();
    assert_eq!(
        e.to_string(),
        "meta.db: 100 bytes, too small for a bbolt file (2048 needed)"
    );
}

#[test]
fn bad_checksum_on_one_meta_falls_back_to_the_other() {
    let (b0, _) = real();
    let db = Db::open(b0.clone(), "meta.db").unwrap();
    let (cur, txid) = (db.meta_page(), db.txid());
    assert_eq!(cur, txid % 2);
    let mut b = b0.clone();
    b[(cur * PS + 16 + 48) as usize] ^= 0x40; // txid byte: checksum no longer matches
    let db = Db::open(b, "meta.db").unwrap();
    assert_eq!(db.meta_page(), 1 - cur);
    assert_eq!(db.txid(), txid - 1);
    assert!(db.other_meta().unwrap_err().contains("checksum mismatch"));
    // The older tree may be partly overwritten by the last commit: errors, not panics.
    let _ = walk_all(&db);

    // Bad magic on the other one instead: the current stays.
    let mut b = b0.clone();
    b[((1 - cur) * PS + 16) as usize] ^= 1;
    let db = Db::open(b, "meta.db").unwrap();
    assert_eq!(db.txid(), txid);
    assert!(db.other_meta().unwrap_err().contains("bad magic"));
}

#[test]
fn both_metas_bad() {
    let (b0, _) = real();
    let mut b = b0.clone();
    b[16 + 50] ^= 1;
    b[(PS + 16 + 50) as usize] ^= 1;
    let e = Db::open(b, "meta.db").unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, BoltError::NoValidMeta { .. }));
    assert!(
        s.starts_with("meta.db: no valid meta page: page 0: checksum mismatch"),
        "{s}"
    );
    assert!(s.contains("; page 1: checksum mismatch"), "{s}");

    // Page sizes bbolt never writes, checksums fixed.
    for ps in [0u32, 3000, 512, 131072] {
        let mut b = b0.clone();
        for m in 0..2u64 {
            put32(&mut b, m * PS + 16 + 8, ps);
            testutil::fix_meta_checksum(&mut b, m, 4096);
        }
        let s = Db::open(b, "meta.db").unwrap_err().to_string();
        assert!(
            s.contains(&format!("page 0: page size {ps} is not a power of two")),
            "{s}"
        );
    }
    // Root below 2 or at the high-water mark.
    for root in [0u64, 1, 58] {
        let mut b = b0.clone();
        for m in 0..2u64 {
            put64(&mut b, m * PS + 16 + 16, root);
            testutil::fix_meta_checksum(&mut b, m, 4096);
        }
        let s = Db::open(b, "meta.db").unwrap_err().to_string();
        assert!(
            s.contains(&format!("root page {root} outside 2..58")),
            "{s}"
        );
    }
    let s = Db::open(vec![0xab; 8192], "garbage.db")
        .unwrap_err()
        .to_string();
    assert_eq!(s, "garbage.db: no valid meta page: page 0: bad magic 0xabababab at offset 0x10; page 1: bad magic 0xabababab at offset 0x1010");
}

#[test]
fn meta_one_found_at_its_own_page_size() {
    let bytes = testutil::build(
        16384,
        &[(
            b"a".to_vec(),
            Item::bucket(1, vec![(b"k".to_vec(), Item::value(b"v"))]),
        )],
    );
    let mut b = bytes.clone();
    b[16] = 0; // meta 0's magic
    let db = Db::open(b, "x.db").unwrap();
    assert_eq!((db.page_size(), db.meta_page(), db.txid()), (16384, 1, 3));
    let a = db.root().bucket(b"a").unwrap().unwrap();
    assert_eq!(a.get(b"k").unwrap(), Some(&b"v"[..]));
}

// ---- hand-made pages ----

fn open(bytes: Vec<u8>) -> Db {
    Db::open(bytes, "x.db").unwrap()
}

#[test]
fn one_page_loop_walk_ends() {
    // Page 2: a leaf whose bucket "loop" has root page 2 again.
    let v = bucket_value(2, 0, &[]);
    let db = open(assemble(4096, 2, &[leaf_page(2, &[(1, b"loop", &v)])]));
    let (n, errs) = walk_all(&db);
    assert_eq!(n, 0);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "x.db: page 2 (offset 0x2010): bucket \"loop\": root page 2 is already on the path from the root (a loop)"
    );
    assert!(db.root().bucket(b"loop").is_err());

    // Page 2: a branch whose only child is page 2.
    let db = open(assemble(4096, 2, &[branch_page(2, &[(b"a", 2)])]));
    let (_, errs) = walk_all(&db);
    assert_eq!(errs[0].to_string(), "x.db: page 2 (offset 0x2010): refers to page 2, already on the path from the root (a loop)");
    assert!(matches!(
        db.root().get(b"a").unwrap_err(),
        BoltError::Cycle { page: 2, .. }
    ));

    // Two pages pointing at each other through nested buckets.
    let v3 = bucket_value(3, 0, &[]);
    let v2 = bucket_value(2, 0, &[]);
    let db = open(assemble(
        4096,
        2,
        &[
            leaf_page(2, &[(1, b"a", &v3)]),
            leaf_page(3, &[(1, b"b", &v2)]),
        ],
    ));
    let (n, errs) = walk_all(&db);
    assert_eq!((n, errs.len()), (1, 1));
    assert!(
        matches!(errs[0], BoltError::Cycle { page: 3, .. }),
        "{errs:?}"
    );
}

#[test]
fn shared_subtrees_are_refused_so_walks_stay_linear() {
    // Pages 2..=41: page i holds buckets "a" and "b", both rooted at page i + 1.
    // Followed blindly this is 2^40 bucket visits.
    let mut pages = Vec::new();
    for i in 2..=41u64 {
        let v = bucket_value(i + 1, 0, &[]);
        pages.push(leaf_page(i, &[(1, b"a", &v), (1, b"b", &v)]));
    }
    pages.push(leaf_page(42, &[(0, b"k", b"v")]));
    let db = open(assemble(4096, 2, &pages));
    let t = std::time::Instant::now();
    let (n, errs) = walk_all(&db);
    assert!(n < 200, "{n}");
    assert!(t.elapsed().as_secs() < 5);
    assert!(errs.iter().all(|e| matches!(e, BoltError::Cycle { .. })));
    assert!(
        errs[0]
            .to_string()
            .contains("is already the root of another bucket"),
        "{}",
        errs[0]
    );

    // Two branches of one tree sharing a leaf.
    let leaf = leaf_page(3, &[(0, b"m", b"1")]);
    let db = open(assemble(
        4096,
        2,
        &[branch_page(2, &[(b"a", 3), (b"z", 3)]), leaf],
    ));
    let (_, errs) = walk_all(&db);
    assert!(!errs.is_empty());
}

#[test]
fn unsorted_and_duplicate_keys() {
    let db = open(assemble(
        4096,
        2,
        &[leaf_page(2, &[(0, b"b", b"1"), (0, b"a", b"2")])],
    ));
    let (n, errs) = walk_all(&db);
    assert_eq!(n, 1);
    assert_eq!(
        errs[0].to_string(),
        "x.db: page 2 (offset 0x2020): element 1: key \"a\" sorts before the previous key \"b\""
    );
    assert!(db.root().get(b"a").is_err());

    let db = open(assemble(
        4096,
        2,
        &[leaf_page(2, &[(0, b"a", b"1"), (0, b"a", b"2")])],
    ));
    assert!(db
        .root()
        .get(b"a")
        .unwrap_err()
        .to_string()
        .contains("key \"a\" duplicates the previous key"));

    // A leaf holding a key outside the range its parent branch gives it.
    let db = open(assemble(
        4096,
        2,
        &[
            branch_page(2, &[(b"a", 3), (b"m", 4)]),
            leaf_page(3, &[(0, b"a", b"1"), (0, b"q", b"2")]),
            leaf_page(4, &[(0, b"m", b"3")]),
        ],
    ));
    let (_, errs) = walk_all(&db);
    assert_page(
        &errs,
        3,
        "is not before \"m\", the parent branch's key for the next page",
    );
    assert!(db.root().get(b"q").is_ok()); // looked up in page 4: not there
    assert!(db
        .root()
        .get(b"a")
        .unwrap_err()
        .to_string()
        .contains("page 3"));
}

#[test]
fn inline_bucket_damage() {
    let inner = leaf_page(0, &[(0, b"k", b"v")]);
    let good = bucket_value(0, 5, &inner);
    let db = open(assemble(4096, 2, &[leaf_page(2, &[(1, b"in", &good)])]));
    let b = db.root().bucket(b"in").unwrap().unwrap();
    assert_eq!((b.sequence(), b.get(b"k").unwrap()), (5, Some(&b"v"[..])));

    // Count past the inline buffer.
    let mut bad = good.clone();
    bad[16 + 10] = 9;
    let db = open(assemble(4096, 2, &[leaf_page(2, &[(1, b"in", &bad)])]));
    let e = db.root().bucket(b"in").unwrap_err().to_string();
    assert!(
        e.contains("9 elements need 160 bytes, past the inline bucket value"),
        "{e}"
    );
    // Key past the inline buffer.
    let mut bad = good.clone();
    bad[16 + 16 + 8] = 200;
    let db = open(assemble(4096, 2, &[leaf_page(2, &[(1, b"in", &bad)])]));
    let b = db.root().bucket(b"in").unwrap().unwrap();
    let e = b.get(b"k").unwrap_err().to_string();
    assert!(e.starts_with("x.db: page 2 (offset "), "{e}");
    assert!(e.contains("past the inline bucket"), "{e}");
    // Not a leaf.
    let mut bad = good.clone();
    bad[16 + 8] = 1;
    let db = open(assemble(4096, 2, &[leaf_page(2, &[(1, b"in", &bad)])]));
    assert!(db
        .root()
        .bucket(b"in")
        .unwrap_err()
        .to_string()
        .contains("inline bucket page flags 0x0001"));
}

#[test]
fn depth_cap() {
    let mut item = Item::value(b"deep");
    for _ in 0..MAX_BUCKET_DEPTH + 5 {
        item = Item::bucket(0, vec![(b"n".to_vec(), item)]);
    }
    let opts = testutil::Options {
        inline: false,
        ..Default::default()
    };
    let db = open(testutil::build_with(opts, &[(b"n".to_vec(), item)]));
    let (n, errs) = walk_all(&db);
    assert_eq!(n, MAX_BUCKET_DEPTH);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].to_string().contains(&format!(
            "bucket nesting depth exceeds the limit of {MAX_BUCKET_DEPTH}"
        )),
        "{}",
        errs[0]
    );
}

#[test]
fn writer_round_trip_with_branches_overflow_and_inline() {
    let mut items = Vec::new();
    for i in 0..500u32 {
        let k = format!("key-{i:05}").into_bytes();
        let it = match i % 5 {
            0 => Item::bucket(
                u64::from(i),
                vec![(b"x".to_vec(), Item::value(&i.to_le_bytes()))],
            ),
            1 => Item::value(&vec![i as u8; 9000]),
            _ => Item::value(&i.to_be_bytes()),
        };
        items.push((k, it));
    }
    let opts = testutil::Options {
        max_elems: 8,
        ..Default::default()
    };
    let db = open(testutil::build_with(
        opts,
        &[(b"top".to_vec(), Item::bucket(9, items))],
    ));
    let top = db.root().bucket(b"top").unwrap().unwrap();
    assert_eq!(top.sequence(), 9);
    let got: Vec<_> = top.iter().map(|e| e.unwrap()).collect();
    assert_eq!(got.len(), 500);
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.key(), format!("key-{i:05}").as_bytes());
        let i = i as u32;
        match i % 5 {
            0 => {
                let b = e.bucket().unwrap();
                assert_eq!((b.sequence(), b.root_page()), (u64::from(i), None));
                assert_eq!(b.get(b"x").unwrap(), Some(&i.to_le_bytes()[..]));
            }
            1 => assert_eq!(e.value().unwrap(), &vec![i as u8; 9000][..]),
            _ => assert_eq!(e.value().unwrap(), &i.to_be_bytes()[..]),
        }
        assert_eq!(top.entry(e.key()).unwrap().unwrap().offset(), e.offset());
    }
    assert!(top.get(b"key-").unwrap().is_none());
    assert!(top.get(b"key-99999").unwrap().is_none());
    assert!(top.get(b"").unwrap().is_none());
}

/// A large well-formed file: the walk and the lookups are linear in its size.
#[test]
fn large_file_walk_is_linear() {
    let n = 100_000u32;
    let items: Vec<(Vec<u8>, Item)> = (0..n)
        .map(|i| {
            (
                format!("k{i:08}").into_bytes(),
                Item::value(&i.to_le_bytes()),
            )
        })
        .collect();
    let bytes = testutil::build(4096, &[(b"big".to_vec(), Item::bucket(0, items))]);
    let len = bytes.len();
    let db = open(bytes);
    let big = db.root().bucket(b"big").unwrap().unwrap();
    let t = std::time::Instant::now();
    let mut count = 0u32;
    for e in big.iter() {
        assert_eq!(e.unwrap().value().unwrap(), &count.to_le_bytes()[..]);
        count += 1;
    }
    let walk = t.elapsed();
    let t = std::time::Instant::now();
    for i in (0..n).step_by(97) {
        assert_eq!(
            big.get(format!("k{i:08}").as_bytes()).unwrap(),
            Some(&i.to_le_bytes()[..])
        );
    }
    let gets = t.elapsed();
    assert_eq!(count, n);
    eprintln!(
        "{n} entries, {len} bytes ({} pages): walk {walk:?}, {} lookups {gets:?}",
        len / 4096,
        n.div_ceil(97)
    );
}
