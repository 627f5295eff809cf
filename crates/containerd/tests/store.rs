//! Docker 26.1.5's containerd image store (fixtures/engine/docker26-containerd) opened as a
//! model store, read straight from the committed data-root archive, against what docker and
//! ctr answered on the live engine: image ids, tags, repo digests, diff_ids, sizes
//! (`image-inspect/`), layer tar sizes and headers (`save/*/layers-uncompressed.txt`,
//! `layer-headers/`), container mounts (`ctr-snapshots-mounts.txt`); then the same archive
//! with a layer blob changed or removed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_containerd::{open_all, ContainerdStore, StoreOptions};
use salvor_model::{
    ContainerStore, EngineKind, LayerProof, RebuildStatus, RecordedHeaders, ViewFiles,
};
use salvor_source::Source;
use sha2::{Digest as _, Sha256};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/engine/docker26-containerd")
}

fn expected(p: &str) -> PathBuf {
    fixture().join("expected").join(p)
}

fn open(archive: &Path) -> ContainerdStore {
    let src: Arc<dyn Source> = Arc::from(salvor_source::open_evidence(archive).expect("evidence"));
    let mut o = open_all(src, &StoreOptions::default());
    assert_eq!(o.stores.len(), 1, "{:?}", o.problems);
    o.stores.remove(0)
}

/// `docker image inspect` of every image, by id.
fn inspected() -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(expected("image-inspect")).expect("inspect") {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.expect("entry").path()).expect("read"))
                .expect("json");
        let v = if v.is_array() { v[0].clone() } else { v };
        out.insert(v["Id"].as_str().expect("id").to_string(), v);
    }
    out
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// diff_id → bytes of its tar, from every `docker save` of the fixture.
fn tar_sizes() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(expected("save")).expect("save") {
        let p = e.expect("entry").path().join("layers-uncompressed.txt");
        for l in std::fs::read_to_string(p).unwrap_or_default().lines() {
            let w: Vec<&str> = l.split_whitespace().collect();
            out.insert(format!("sha256:{}", w[0]), w[1].parse().expect("size"));
        }
    }
    out
}

/// Blob digest → member names, from `docker save`'s layer-headers.
fn saved_headers() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(expected("save")).expect("save") {
        let dir = e.expect("entry").path().join("layer-headers");
        let Ok(files) = std::fs::read_dir(dir) else {
            continue;
        };
        for f in files {
            let p = f.expect("entry").path();
            let name = p.file_stem().expect("stem").to_string_lossy();
            let digest = format!("sha256:{}", name.trim_start_matches("blobs_sha256_"));
            let names = std::fs::read_to_string(&p)
                .expect("read")
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("json");
                    v["name"].as_str().expect("name").to_string()
                })
                .collect();
            out.insert(digest, names);
        }
    }
    out
}

struct HashWriter(Sha256, u64);
impl Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        self.1 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn images_are_what_docker_listed() {
    let s = open(&fixture().join("data-root.tar.zst"));
    let id = s.identity();
    assert_eq!(id.engine, EngineKind::DockerContainerd);
    assert_eq!(id.namespace.as_deref(), Some("moby"));
    assert_eq!(id.root, Path::new("containerd/daemon"));
    assert_eq!(id.driver, "overlayfs");
    assert_eq!(s.located().docker_data_root.as_deref(), Some(Path::new("")));
    assert!(s.problems().is_empty(), "{:?}", s.problems());

    // Every id docker printed, and no other.
    let want: BTreeSet<String> = std::fs::read_to_string(expected("image-ids.txt"))
        .expect("ids")
        .lines()
        .map(str::to_string)
        .collect();
    let listed: BTreeSet<String> = std::fs::read_to_string(expected("image-ls-a.jsonl"))
        .expect("ls")
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["ID"]
                .as_str()
                .expect("ID")
                .to_string()
        })
        .collect();
    assert_eq!(want, listed);
    let images = s.images();
    let ours: BTreeSet<String> = images.iter().map(|i| i.id.clone()).collect();
    assert_eq!(ours, want);

    let inspect = inspected();
    for img in &images {
        let v = &inspect[&img.id];
        assert_eq!(img.names, strings(&v["RepoTags"]), "{} tags", img.id);
        assert_eq!(
            img.digests,
            strings(&v["RepoDigests"]),
            "{} digests",
            img.id
        );
        assert_eq!(
            img.created.as_deref(),
            v["Created"].as_str(),
            "{} created",
            img.id
        );
        assert_eq!(s.image_size(&img.id), v["Size"].as_u64(), "{} size", img.id);
        let diff_ids: Vec<String> = s
            .image_layers(&img.id)
            .expect("layers")
            .iter()
            .map(|l| l.diff_id.as_ref().expect("diff id").to_string())
            .collect();
        assert_eq!(
            diff_ids,
            strings(&v["RootFS"]["Layers"]),
            "{} layers",
            img.id
        );
        // The manifest hashes to the id; the config to the manifest's config digest.
        let m = s.manifest_bytes(&img.id).expect("manifest").expect("kept");
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&m))),
            img.id
        );
        let mv: serde_json::Value = serde_json::from_slice(&m).expect("json");
        let c = s.config_bytes(&img.id).expect("config");
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(c.as_slice()))),
            mv["config"]["digest"].as_str().expect("digest")
        );
        assert!(s.image_last_updated(&img.id).expect("time").is_some());
    }
    assert!(s.config_bytes("sha256:nope").is_err());
}

#[test]
fn every_layer_rebuilds_to_its_diff_id() {
    let s = open(&fixture().join("data-root.tar.zst"));
    let sizes = tar_sizes();
    let headers = saved_headers();
    let mut image_layers = BTreeSet::new();
    for img in s.images() {
        image_layers.extend(img.layers);
    }
    assert!(image_layers.len() >= 9, "{image_layers:?}");
    let mut compared_headers = 0;
    for id in &image_layers {
        let l = s.layer(id).expect("layer");
        assert_eq!(l.chain_id.as_ref().map(|c| c.as_str()), Some(id.as_str()));
        let LayerProof::Blob { digest, .. } = &l.proof else {
            panic!("{id}: {:?}", l.proof)
        };
        let diff_id = l.diff_id.as_ref().expect("diff id").to_string();
        let mut w = HashWriter(Sha256::new(), 0);
        let r = s.rebuild_layer(id, &mut w).expect("rebuild");
        assert_eq!(r.status, RebuildStatus::Verified, "{id}: {r:?}");
        assert_eq!(format!("sha256:{}", hex::encode(w.0.finalize())), diff_id);
        assert_eq!(r.actual.as_deref(), Some(diff_id.as_str()));
        assert_eq!((r.bytes, w.1), (sizes[&diff_id], sizes[&diff_id]), "{id}");
        assert!(r.files > 0, "{id}");
        let v = s.verify_layer(id);
        assert_eq!(
            (v.status, v.bytes, v.files),
            (RebuildStatus::Verified, r.bytes, r.files)
        );
        // The headers the blob records: docker save's, member for member.
        match s.recorded_headers(id) {
            RecordedHeaders::Stream { path, headers: hs } => {
                assert!(path.ends_with(digest.hex()), "{}", path.display());
                let names: Vec<String> = hs
                    .map(|h| String::from_utf8_lossy(h.expect("header").name()).into_owned())
                    .collect();
                assert_eq!(names.len() as u64, r.files, "{id}");
                if let Some(want) = headers.get(digest.as_str()) {
                    // Python's tarfile (which listed docker save's) drops a directory's
                    // trailing slash.
                    let trimmed: Vec<&str> =
                        names.iter().map(|n| n.trim_end_matches('/')).collect();
                    assert_eq!(&trimmed, want, "{id}");
                    compared_headers += 1;
                }
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(compared_headers >= 5, "{compared_headers}");
    // Committed snapshots no image names are listed, unprovable.
    for l in s.layers() {
        if !image_layers.contains(&l.id) {
            assert!(matches!(l.proof, LayerProof::Unprovable { .. }), "{l:?}");
            assert_eq!(s.verify_layer(&l.id).status, RebuildStatus::Unrebuildable);
        }
    }
    assert_eq!(
        s.verify_layer("sha256:nope").status,
        RebuildStatus::Unrebuildable
    );
}

#[test]
fn snapshots_are_the_layers_and_containers_files() {
    let s = open(&fixture().join("data-root.tar.zst"));
    let src = s.source().clone();
    // The bottom layer (busybox's COPY): a snapshot of its own (containerd applied it to
    // a bind mount, whiteouts as deletions), no parent.
    let bottom = "sha256:fd73e497a81efb349c0d8f041f4e0fba8e2f03aa02cbcb9343a5ad2ad4d663c9";
    let v = s.layer_view(bottom).expect("view");
    let ViewFiles::Snapshot {
        root: dir,
        has_parent: false,
        parent_root: None,
    } = &v.files
    else {
        panic!("{:?}", v.files)
    };
    let names: Vec<String> = src
        .read_dir(dir)
        .expect("dir")
        .into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["bin", "etc", "usr"]);
    assert!(src.exists(&dir.join("bin/busybox")));
    assert!(s.layer_view("sha256:nope").is_err());

    // Containers' read-write snapshots over the lowers ctr mounted.
    let text = std::fs::read_to_string(expected("ctr-snapshots-mounts.txt")).expect("mounts");
    let mut checked = 0;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some(id) = l.strip_prefix("== ") else {
            continue;
        };
        let mount = lines.next().expect("mount line");
        let opt = |k: &str| {
            mount
                .split([',', ' '])
                .find_map(|o| o.strip_prefix(k))
                .map(|v| v.replace("<data-root>/", ""))
                .expect(k)
        };
        let v = s.rw_layer_view(id).expect("rw view");
        let ViewFiles::Diff { dir, lowers, .. } = &v.files else {
            panic!("{:?}", v.files)
        };
        assert_eq!(dir, &PathBuf::from(opt("upperdir=")), "{id}");
        let want: Vec<PathBuf> = opt("lowerdir=").split(':').map(PathBuf::from).collect();
        assert_eq!(lowers, &want, "{id}");
        // Its init layer is the first lower; a prefix names the same container.
        let init = s.init_layer_view(id).expect("init").expect("has one");
        assert_eq!(init.own_root(), Some(want[0].as_path()));
        assert_eq!(s.rw_layer_view(&id[..12]).expect("prefix").files, v.files);
        checked += 1;
    }
    assert!(checked >= 4, "{checked}");
    assert!(s.rw_layer_view("ffffffffffff").is_err());
}

/// The fixture archive rewritten into `dir` with `change` applied to each member's bytes
/// (`None`: member left out).
fn rewritten(dir: &Path, change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> PathBuf {
    let f = std::fs::File::open(fixture().join("data-root.tar.zst")).expect("fixture");
    let mut ar = tar::Archive::new(zstd::Decoder::new(f).expect("zstd"));
    let out = dir.join("changed.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&out).expect("create"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").to_string_lossy().into_owned();
        let mut h = e.header().clone();
        let mut body = Vec::new();
        e.read_to_end(&mut body).expect("read");
        let Some(body) = change(&path, body) else {
            continue;
        };
        h.set_size(body.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, &path, body.as_slice())
            .expect("append");
    }
    b.into_inner().expect("finish").flush().expect("flush");
    out
}

const BUSYBOX_BLOB: &str = "9787757d813441f94525744494ae502b2ddac81dbad50f4f388f4a37b65deb99";
const BUSYBOX_LAYER: &str =
    "sha256:fd73e497a81efb349c0d8f041f4e0fba8e2f03aa02cbcb9343a5ad2ad4d663c9";

#[test]
fn a_changed_blob_is_a_mismatch() {
    let d = tempfile::tempdir().expect("tempdir");
    let archive = rewritten(d.path(), |p, mut b| {
        if p.ends_with(BUSYBOX_BLOB) {
            let i = b.len() / 2;
            b[i] ^= 0x01;
        }
        Some(b)
    });
    let s = open(&archive);
    let r = s.verify_layer(BUSYBOX_LAYER);
    assert_eq!(r.status, RebuildStatus::Mismatch, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap_or_default()
            .contains(BUSYBOX_BLOB),
        "{r:?}"
    );
    // The other layers still verify.
    let l2 = "sha256:f7b2a188a476a2f46a307c279947f6e5081b74330cfa91ade606e34fc91ce3b5";
    assert_eq!(s.verify_layer(l2).status, RebuildStatus::Verified);
}

#[test]
fn a_removed_blob_is_unprovable() {
    let d = tempfile::tempdir().expect("tempdir");
    let archive = rewritten(d.path(), |p, b| (!p.ends_with(BUSYBOX_BLOB)).then_some(b));
    let s = open(&archive);
    let l = s.layer(BUSYBOX_LAYER).expect("still a layer");
    let LayerProof::Unprovable { why } = &l.proof else {
        panic!("{:?}", l.proof)
    };
    assert!(why.contains(BUSYBOX_BLOB), "{why}");
    let r = s.verify_layer(BUSYBOX_LAYER);
    assert_eq!(r.status, RebuildStatus::Unrebuildable);
    assert!(r
        .error
        .as_deref()
        .unwrap_or_default()
        .contains(BUSYBOX_BLOB));
    assert!(matches!(
        s.recorded_headers(BUSYBOX_LAYER),
        RecordedHeaders::Unavailable { .. }
    ));
    // Its files are still there to look at.
    assert!(s
        .layer_view(BUSYBOX_LAYER)
        .expect("view")
        .own_root()
        .is_some());
}

#[test]
fn a_changed_config_is_a_problem_naming_it() {
    let d = tempfile::tempdir().expect("tempdir");
    // base's config
    let cfg = "ef9e9196f7251c841a1947391e57632a66246dbdd426435ad27537800eee3f44";
    let archive = rewritten(d.path(), |p, mut b| {
        if p.ends_with(cfg) {
            b.push(b' ');
        }
        Some(b)
    });
    let s = open(&archive);
    let p = s.problems();
    assert!(
        p.iter()
            .any(|p| p.path.ends_with(cfg) && p.what.contains("hashes to")),
        "{p:?}"
    );
}

#[test]
fn dockers_containers_are_what_docker_inspected() {
    let s = open(&fixture().join("data-root.tar.zst"));
    let cs = s.containers().expect("containers");
    assert!(
        s.container_problems().is_empty(),
        "{:?}",
        s.container_problems()
    );
    let ps: Vec<serde_json::Value> = std::fs::read_to_string(expected("ps-a.jsonl"))
        .expect("ps")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(cs.len(), ps.len());
    for p in &ps {
        let id = p["ID"].as_str().expect("id");
        let c = cs.iter().find(|c| c.id == id).expect("listed");
        assert_eq!(c.name, p["Names"].as_str().expect("name"));
        assert_eq!(
            c.state.status,
            p["State"].as_str().expect("state"),
            "{}",
            c.name
        );
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(expected(&format!("container-inspect/{}.json", c.name)))
                .expect("inspect"),
        )
        .expect("json");
        let v = if v.is_array() { v[0].clone() } else { v };
        assert_eq!(c.image, v["Image"].as_str().expect("image"));
        assert_eq!(c.created.as_deref(), v["Created"].as_str());
        assert_eq!(c.state.exit_code, v["State"]["ExitCode"].as_i64());
        assert_eq!(
            c.state.started_at.as_deref(),
            v["State"]["StartedAt"].as_str()
        );
        assert_eq!(
            s.container_image_name(id).as_deref(),
            v["Config"]["Image"].as_str()
        );
        assert_eq!(c.rw_layer.as_deref(), Some(id));
        // Docker names a log only once the container started; the file is there anyway.
        let log = v["LogPath"].as_str().expect("log path");
        let want = format!("{id}-json.log");
        if !log.is_empty() {
            assert!(log.ends_with(&want), "{log}");
        }
        assert_eq!(
            c.log_paths.first().and_then(|p| p.file_name()),
            Some(std::ffi::OsStr::new(&want)),
            "{}",
            c.name
        );
        // By name, as docker would.
        assert_eq!(
            s.rw_layer_view(&c.name).expect("by name").files,
            s.rw_layer_view(id).expect("by id").files
        );
    }
}
