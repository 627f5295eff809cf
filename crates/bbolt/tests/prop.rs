//! Random mutations of the real containerd meta.db: opening and walking never panics,
//! every error names the file, and the walk stays bounded.

mod common;

use std::sync::OnceLock;

use common::{fixture, walk_all};
use proptest::prelude::*;
use salvor_bbolt::Db;

fn base() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| fixture("containerd-meta.db"))
}

/// A mutation: (where, what). Offsets aim at page headers and element arrays (the first
/// 256 bytes of a page) half of the time, anywhere in the file otherwise.
fn mutation() -> impl Strategy<Value = (usize, u8, u8)> {
    (
        0usize..64,
        0usize..256,
        0usize..262_144,
        any::<bool>(),
        any::<u8>(),
        0u8..4,
    )
        .prop_map(|(page, within, anywhere, head, byte, how)| {
            let at = if head { page * 4096 + within } else { anywhere };
            (at, byte, how)
        })
}

proptest! {
    // 512 cases unless PROPTEST_CASES says otherwise (the long runs).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_meta_db_never_panics(
        muts in prop::collection::vec(mutation(), 1..24),
        cut in prop::option::weighted(0.1, 0usize..262_144),
        fix_meta in any::<bool>(),
    ) {
        let mut b = base().to_vec();
        for (at, byte, how) in muts {
            if at >= b.len() { continue; }
            match how {
                0 => b[at] = byte,
                1 => b[at] ^= 1 << (byte % 8),
                2 => b[at] = 0xff,
                _ => b[at] = 0,
            }
        }
        if fix_meta {
            // Keep the metas' checksums valid so mutations of their fields are read.
            for m in 0..2 {
                salvor_bbolt::testutil::fix_meta_checksum(&mut b, m, 4096);
            }
        }
        if let Some(n) = cut {
            b.truncate(n);
        }
        match Db::open(b, "meta.db") {
            Err(e) => prop_assert!(e.to_string().starts_with("meta.db: "), "{}", e),
            Ok(db) => {
                let (n, errs) = walk_all(&db);
                // A walk never sees more entries than the file has element slots.
                prop_assert!(n as u64 <= db.bytes().len() as u64 / 16);
                for e in errs {
                    prop_assert!(e.to_string().starts_with("meta.db: page "), "{}", e);
                }
            }
        }
    }

    /// Random pages behind valid metas: ids right, flags branch or leaf, counts and
    /// element fields random, so the tree code (not the meta check) meets the garbage.
    #[test]
    fn random_pages_never_panic(
        pages in prop::collection::vec((prop::collection::vec(any::<u8>(), 16..1500), 0u8..3, 0u16..80), 1..8),
        root in 2u64..10,
    ) {
        let mut raw = Vec::new();
        for (i, (mut p, flags, count)) in pages.into_iter().enumerate() {
            p[..8].copy_from_slice(&(i as u64 + 2).to_le_bytes());
            p[8..10].copy_from_slice(&[1u16, 2, 2][flags as usize].to_le_bytes());
            p[10..12].copy_from_slice(&count.to_le_bytes());
            p[12..16].copy_from_slice(&0u32.to_le_bytes());
            // Small child ids and positions, so elements often point somewhere real.
            for e in (16..p.len().saturating_sub(16)).step_by(16) {
                if p[e] & 1 == 0 {
                    p[e + 8] %= 12;
                    for x in &mut p[e + 9..e + 16] { *x = 0; }
                    p[e + 4] %= 64;
                    for x in &mut p[e + 5..e + 8] { *x = 0; }
                }
            }
            raw.push(p);
        }
        let b = salvor_bbolt::testutil::assemble(1024, root, &raw);
        if let Ok(db) = Db::open(b, "p.db") {
            let (_, errs) = walk_all(&db);
            for e in errs {
                prop_assert!(e.to_string().starts_with("p.db: page "), "{}", e);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
        if let Ok(db) = Db::open(bytes, "r.db") {
            let _ = walk_all(&db);
        }
    }
}
