//! Shared by the integration tests: the fixtures and a full walk in the format of
//! `fixtures/bbolt/bolt-dump.py`.

#![allow(dead_code)]

use std::path::PathBuf;

use salvor_bbolt::{BoltError, Bucket, Db, EntryKind};

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/bbolt")
        .join(name)
}

/// The decompressed bytes of `fixtures/bbolt/<name>.zst`.
pub fn fixture(name: &str) -> Vec<u8> {
    let f = std::fs::File::open(fixture_path(&format!("{name}.zst"))).expect("fixture");
    zstd::decode_all(f).expect("zstd")
}

/// bolt-dump.py's escaping of one path component.
pub fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (0x21..=0x7e).contains(&c) && c != b'%' && c != b'/' {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

/// Walks everything below `b` (path `path`), appending dump lines; counts entries.
pub fn walk(b: &Bucket<'_>, path: &str, out: &mut Vec<String>) -> Result<(), BoltError> {
    for e in b.iter() {
        let e = e?;
        let p = if path.is_empty() {
            esc(e.key())
        } else {
            format!("{path}/{}", esc(e.key()))
        };
        match e.kind() {
            EntryKind::Value(v) => {
                let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
                out.push(format!("K {p} {hex}"));
            }
            EntryKind::Bucket(sub) => {
                out.push(format!("B {p} seq={}", sub.sequence()));
                walk(sub, &p, out)?;
            }
        }
    }
    Ok(())
}

/// The whole dump of `db`, first line the meta as bolt-dump.py prints it.
pub fn dump(db: &Db) -> Result<Vec<String>, BoltError> {
    let m = db.meta();
    let mut out = vec![format!(
        "meta txid={} pagesize={} pgid={} root={}",
        m.txid, m.page_size, m.pgid, m.root
    )];
    walk(&db.root(), "", &mut out)?;
    Ok(out)
}

/// Walks everything, continuing past errors (each error ends the iteration of its
/// bucket); returns the entries seen and the errors. For hostile inputs.
pub fn walk_all(db: &Db) -> (usize, Vec<BoltError>) {
    fn rec(b: &Bucket<'_>, n: &mut usize, errs: &mut Vec<BoltError>) {
        for e in b.iter() {
            match e {
                Err(e) => errs.push(e),
                Ok(e) => {
                    *n += 1;
                    let _ = b.entry(e.key()).map_err(|x| errs.push(x));
                    if let EntryKind::Bucket(sub) = e.kind() {
                        rec(sub, n, errs);
                    }
                }
            }
        }
    }
    let mut n = 0;
    let mut errs = Vec::new();
    rec(&db.root(), &mut n, &mut errs);
    (n, errs)
}
