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
