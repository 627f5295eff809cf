//! salvor-bbolt: opens the input as a bbolt file and walks every bucket, looking every key up again:
//! nothing may panic, hang or allocate without bound. Seed the corpus with the
//! decompressed `fixtures/bbolt/*.db.zst`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salvor_bbolt::{Bucket, Db};

fn walk(b: &Bucket<'_>, n: &mut u64) {
    for e in b.iter() {
        let Ok(e) = e else { return };
        *n += 1;
        let _ = b.entry(e.key());
        if let Some(sub) = e.bucket() {
            walk(sub, n);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = Db::open(data.to_vec(), "fuzz.db") {
        let mut n = 0;
        walk(&db.root(), &mut n);
        assert!(n <= data.len() as u64 / 16);
    }
});
