//! The crate's walk of real files written by containerd 1.7.24 (fixtures/bbolt/make-metadb.sh)
//! against the independent Python walk (bolt-dump.py) and ctr's own answers.

mod common;

use common::{dump, fixture, fixture_path};
use salvor_bbolt::{Db, EntryKind};

fn expected(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture_path(&format!("expected/{name}")))
        .expect("expected dump")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn meta_db_walk_matches_the_python_walk() {
    let db = Db::open(fixture("containerd-meta.db"), "meta.db").unwrap();
    assert_eq!(db.page_size(), 4096);
    let got = dump(&db).unwrap();
    let want = expected("containerd-meta.dump.txt");
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    eprintln!(
        "meta.db: {} bytes, txid {}, {} entries walked",
        db.bytes().len(),
        db.txid(),
        got.len() - 1
    );
}

#[test]
fn snapshotter_db_walk_matches_the_python_walk() {
    let db = Db::open(fixture("containerd-snapshots.db"), "metadata.db").unwrap();
    assert_eq!(
        dump(&db).unwrap(),
        expected("containerd-snapshots.dump.txt")
    );
}

/// `ctr ... ls` output, section by section: `$ command` then its lines.
fn ctr_sections() -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for l in expected("ctr.txt") {
        if let Some(cmd) = l.strip_prefix("$ ") {
            out.push((cmd.to_string(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(l);
        }
    }
    out
}

fn section(name: &str) -> Vec<String> {
    ctr_sections()
        .into_iter()
        .find(|(c, _)| c == name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .1
}

fn names(b: &salvor_bbolt::Bucket<'_>) -> Vec<String> {
    b.iter()
        .map(|e| String::from_utf8(e.unwrap().key().to_vec()).unwrap())
        .collect()
}

#[test]
fn meta_db_agrees_with_ctr() {
    let db = Db::open(fixture("containerd-meta.db"), "meta.db").unwrap();
    let root = db.root();
    let v1 = root.bucket(b"v1").unwrap().unwrap();
    assert_eq!(v1.get(b"version").unwrap(), Some(&[0x06][..]));

    // Namespaces: first column of `ctr namespaces ls` after the header.
    let ns: Vec<String> = section("ctr namespaces ls")
        .iter()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let buckets: Vec<String> = v1
        .iter()
        .map(|e| e.unwrap())
        .filter(|e| matches!(e.kind(), EntryKind::Bucket(_)))
        .map(|e| String::from_utf8(e.key().to_vec()).unwrap())
        .collect();
    assert_eq!(buckets, ns);
    let k8s = v1.bucket(b"k8s.io").unwrap().unwrap();
    let labels = k8s.bucket(b"labels").unwrap().unwrap();
    assert_eq!(labels.get(b"salvor.fixture").unwrap(), Some(&b"bbolt"[..]));

    for n in &ns {
        let nsb = v1.bucket(n.as_bytes()).unwrap().unwrap();
        let images = match nsb.bucket(b"images").unwrap() {
            Some(b) => names(&b),
            None => Vec::new(),
        };
        assert_eq!(images, section(&format!("ctr -n {n} images ls -q")), "{n}");
        let snaps: Vec<String> =
            section(&format!("ctr -n {n} snapshots --snapshotter overlayfs ls"))
                .iter()
                .skip(1)
                .map(|l| l.split_whitespace().next().unwrap().to_string())
                .collect();
        let got = match nsb.bucket(b"snapshots").unwrap() {
            Some(s) => match s.bucket(b"overlayfs").unwrap() {
                Some(o) => names(&o),
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        assert_eq!(got, snaps, "{n}");
    }

    let default = v1.bucket(b"default").unwrap().unwrap();
    let leases = default.bucket(b"leases").unwrap().unwrap();
    assert_eq!(names(&leases), section("ctr -n default leases ls -q"));
    // 300 leases spread over leaf pages under a branch page.
    assert!(leases.root_page().is_some());
    let lease = leases.bucket(b"lease-150").unwrap().unwrap();
    assert!(
        lease.root_page().is_some(),
        "a lease with labels has a page of its own"
    );
    assert_eq!(
        lease
            .bucket(b"labels")
            .unwrap()
            .unwrap()
            .get(b"salvor.n")
            .unwrap(),
        Some(&b"150"[..])
    );
    assert!(leases
        .bucket(b"lease-151")
        .unwrap()
        .unwrap()
        .root_page()
        .is_none());
    assert!(leases.bucket(b"lease-deleted").unwrap().is_none());

    // The 4090-byte label lives on an overflow page.
    let img = default
        .bucket(b"images")
        .unwrap()
        .unwrap()
        .bucket(b"docker.io/salvor/tiny:1")
        .unwrap()
        .unwrap();
    let big = img
        .bucket(b"labels")
        .unwrap()
        .unwrap()
        .get(b"salvor.big")
        .unwrap()
        .unwrap();
    assert_eq!(big.len(), 4080);
    assert!(big.iter().all(|&b| b == b'b'));
}

/// Every key found by iteration is found again by lookup, with the same value.
#[test]
fn lookups_agree_with_iteration() {
    let db = Db::open(fixture("containerd-meta.db"), "meta.db").unwrap();
    fn check(b: &salvor_bbolt::Bucket<'_>, n: &mut usize) {
        for e in b.iter() {
            let e = e.unwrap();
            *n += 1;
            let again = b.entry(e.key()).unwrap().unwrap();
            assert_eq!(again.offset(), e.offset());
            assert_eq!(again.value(), e.value());
            let mut k = e.key().to_vec();
            k.push(0);
            if b.entry(&k).unwrap().is_some() {
                // Only when that key really exists.
                assert!(b.iter().any(|x| x.unwrap().key() == &k[..]));
            }
            if let Some(sub) = e.bucket() {
                check(sub, n);
            }
        }
    }
    let mut n = 0;
    check(&db.root(), &mut n);
    assert_eq!(n, 731);
    assert!(db.root().get(b"nope").unwrap().is_none());
}

/// Docker 26.1.5's volumes/metadata.db (fixtures/bbolt/make-volumesdb.sh): the walk
/// matches the Python walk, the names match `docker volume ls -q`, values are the
/// volumes' JSON records.
#[test]
fn docker_volumes_db() {
    let db = Db::open(fixture("docker-volumes.db"), "metadata.db").unwrap();
    assert_eq!(dump(&db).unwrap(), expected("docker-volumes.dump.txt"));
    let vols = db.root().bucket(b"volumes").unwrap().unwrap();
    let mut want = expected("docker-volumes.txt");
    want.sort();
    assert_eq!(names(&vols), want);
    assert_eq!(want.len(), 63);
    let rec = std::str::from_utf8(vols.get(b"salvor-labels").unwrap().unwrap()).unwrap();
    assert_eq!(
        rec,
        r#"{"Name":"salvor-labels","Driver":"local","Labels":{"other":"x","salvor.fixture":"bbolt"},"Options":null}"#
    );
    assert!(vols.get(b"salvor-gone").unwrap().is_none());
}
