//! Docker 26.1.5's containerd image store (fixtures/engine/make-docker26-containerd.sh):
//! the dockerd-managed containerd's meta.db and overlayfs metadata.db, taken from the
//! committed data-root, against what `ctr` answered about them on the live engine
//! (expected/ctr-*.txt).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use salvor_containerd::{MetaDb, SnapshotterDb};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/engine/docker26-containerd")
}

/// The files of the data-root archive whose paths are in `want`.
fn from_data_root(want: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let f = std::fs::File::open(fixture().join("data-root.tar.zst")).expect("fixture");
    let mut ar = tar::Archive::new(zstd::Decoder::new(f).expect("zstd"));
    let mut out = BTreeMap::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e
            .path()
            .expect("path")
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if want.contains(&p.as_str()) {
            let mut b = Vec::new();
            e.read_to_end(&mut b).expect("read");
            out.insert(p, b);
        }
    }
    out
}

fn table(name: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(fixture().join("expected").join(name))
        .expect("ctr answer")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

const META: &str = "containerd/daemon/io.containerd.metadata.v1.bolt/meta.db";
const SNAPS: &str = "containerd/daemon/io.containerd.snapshotter.v1.overlayfs/metadata.db";

#[test]
fn dockers_containerd_store_is_what_ctr_listed() {
    let mut files = from_data_root(&[META, SNAPS]);
    let m = MetaDb::read(files.remove(META).expect("meta.db"), META).expect("meta.db");
    let s =
        SnapshotterDb::read(files.remove(SNAPS).expect("metadata.db"), SNAPS).expect("snapshots");
    assert!(
        m.problems.is_empty() && s.problems.is_empty(),
        "{:?} {:?}",
        m.problems,
        s.problems
    );
    let names: Vec<&str> = m.namespaces.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["moby"]);
    let moby = m.namespace("moby").expect("moby");

    // ctr images ls: REF TYPE DIGEST …
    let want: Vec<(String, String, String)> = table("ctr-images-ls.txt")
        .into_iter()
        .map(|w| (w[0].clone(), w[1].clone(), w[2].clone()))
        .collect();
    let ours: Vec<(String, String, String)> = moby
        .images
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.target.media_type.clone().unwrap_or_default(),
                i.target.digest.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, want, "images");
    assert!(ours.iter().any(|(n, ..)| n.starts_with("moby-dangling@")));

    // ctr content ls: DIGEST SIZE …: every blob, and the layer blobs' uncompressed label.
    let want: Vec<String> = table("ctr-content-ls.txt")
        .into_iter()
        .map(|w| w[0].clone())
        .collect();
    let ours: Vec<String> = moby.blobs.iter().map(|b| b.digest.clone()).collect();
    assert_eq!(ours, want, "content");
    let layers = moby
        .blobs
        .iter()
        .filter(|b| b.labels.contains_key("containerd.io/uncompressed"))
        .count();
    assert!(
        layers >= 5,
        "only {layers} blobs with containerd.io/uncompressed"
    );

    // ctr snapshots ls: KEY [PARENT] KIND, through the snapshotter's own metadata.
    let want: Vec<(String, String, String)> = table("ctr-snapshots-ls.txt")
        .into_iter()
        .map(|w| match w.as_slice() {
            [k, p, kind] => (k.clone(), p.clone(), kind.clone()),
            [k, kind] => (k.clone(), String::new(), kind.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let ours: Vec<(String, String, String)> = moby
        .snapshots
        .iter()
        .filter(|x| x.snapshotter == "overlayfs")
        .map(|x| {
            let b = x.backend_name.as_deref().and_then(|n| s.snapshots.get(n));
            (
                x.key.clone(),
                x.parent.clone().unwrap_or_default(),
                b.and_then(|b| b.kind)
                    .map(|k| k.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, want, "snapshots");
    for x in &moby.snapshots {
        let n = x.backend_name.as_deref().expect("name");
        assert!(s.fs_dir(n).is_some(), "{n} has a directory");
    }

    // ctr leases ls: one per container.
    let want: Vec<String> = table("ctr-leases-ls.txt")
        .into_iter()
        .map(|w| w[0].clone())
        .collect();
    let ours: Vec<&str> = moby.leases.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ours, want, "leases");
    for l in &moby.leases {
        assert!(
            l.snapshots
                .contains(&("overlayfs".to_string(), l.id.clone())),
            "lease {} holds its container's snapshot: {:?}",
            l.id,
            l.snapshots
        );
    }
}

/// Every blob of the content store hashes to its name, and every layer blob (those
/// labelled `containerd.io/uncompressed`) decompresses to exactly that diff_id, read
/// through salvor's archive source straight from the committed data-root; a decompression
/// limit below a layer's size stops with an error naming the blob.
#[test]
fn content_blobs_prove_their_digests_and_diff_ids() {
    let mut files = from_data_root(&[META]);
    let m = MetaDb::read(files.remove(META).expect("meta.db"), META).expect("meta.db");
    let moby = m.namespace("moby").expect("moby");
    let src = salvor_source::open_evidence(&fixture().join("data-root.tar.zst")).expect("source");
    let root = std::path::Path::new("containerd/daemon/io.containerd.content.v1.content");
    let (mut blobs, mut layers) = (0, 0);
    let mut computed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for b in &moby.blobs {
        let want = b.labels.get("containerd.io/uncompressed");
        let c =
            salvor_containerd::check_blob(src.as_ref(), root, &b.digest, want.is_some(), 1 << 30)
                .unwrap_or_else(|e| panic!("{}: {e}", b.digest));
        assert!(c.digest_ok, "{}: hashes to {}", b.digest, c.digest);
        assert_eq!(Some(c.size as i64), b.size, "{}: size", b.digest);
        if let Some(diff_id) = want {
            assert_eq!(c.compression, salvor_containerd::Compression::Gzip);
            assert_eq!(
                c.uncompressed.as_ref().map(|u| &u.0),
                Some(diff_id),
                "{}",
                b.digest
            );
            computed.insert(diff_id.clone());
            layers += 1;
            // The same layer with a limit below its size: stopped, named.
            let (_, n) = c.uncompressed.expect("size");
            if n > 1024 {
                let e = salvor_containerd::check_blob(src.as_ref(), root, &b.digest, true, n - 1)
                    .expect_err("limit");
                assert!(e.to_string().contains(&b.digest[7..]), "{e}");
            }
        }
        blobs += 1;
    }
    assert!(blobs >= 20 && layers >= 5, "{blobs} blobs, {layers} layers");
    // Every diff_id `docker image inspect` printed is one a blob here decompressed to.
    let mut inspected = 0;
    for e in std::fs::read_dir(fixture().join("expected/image-inspect")).expect("inspect") {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.expect("e").path()).expect("read"))
                .expect("json");
        let v = if v.is_array() { v[0].clone() } else { v };
        for l in v["RootFS"]["Layers"].as_array().expect("layers") {
            let l = l.as_str().expect("diff id");
            assert!(
                computed.contains(l),
                "{l} of {} is no blob's content",
                v["Id"]
            );
            inspected += 1;
        }
    }
    assert!(inspected >= 10, "only {inspected} diff ids");
    assert!(matches!(
        salvor_containerd::check_blob(src.as_ref(), root, "sha256:../../etc", false, 0),
        Err(salvor_containerd::ContentError::BadDigest(_))
    ));
}
