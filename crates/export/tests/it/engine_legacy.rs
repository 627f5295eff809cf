//! Golden test: salvor's legacy (Engine <= 24) metadata for an image built and
//! saved by a real Docker 20.10 engine must equal the engine's bytes.

use salvor_export::{legacy_v1_ids, metadata_files, Format, ImageToExport, LayerRef};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/engine-legacy")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (diff_id, size, v1id) per layer.
fn layers() -> Vec<(String, u64, String)> {
    String::from_utf8(read("layers.txt"))
        .expect("utf8")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().expect("size"),
                f[2].to_string(),
            )
        })
        .collect()
}

fn image(tags: &[&str]) -> ImageToExport {
    let config = read("config.json");
    let id = format!("sha256:{}", hex::encode(sha2_digest(&config)));
    ImageToExport {
        id: id.parse().expect("digest"),
        config,
        repo_tags: tags.iter().map(|s| s.to_string()).collect(),
        layers: layers()
            .into_iter()
            .map(|(d, s, _)| LayerRef {
                diff_id: d.parse().expect("digest"),
                size: s,
                descriptor: None,
                forced_from: None,
            })
            .collect(),
        parent: None,
    }
}

fn sha2_digest(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

#[test]
fn v1_ids_match_engine() {
    let want: Vec<String> = layers().into_iter().map(|l| l.2).collect();
    let got = legacy_v1_ids(&image(&[])).expect("v1 ids");
    assert_eq!(got, want);
}

#[test]
fn legacy_metadata_matches_engine() {
    let img = image(&["salvor-export-test/legacy:v1"]);
    let files: BTreeMap<String, Vec<u8>> =
        metadata_files(std::slice::from_ref(&img), Format::DockerLegacy)
            .expect("plan")
            .into_iter()
            .collect();
    let mut want: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    want.insert("manifest.json".into(), read("manifest.json"));
    want.insert("repositories".into(), read("repositories"));
    want.insert(format!("{}.json", img.id.hex()), read("config.json"));
    for (_, _, v1) in layers() {
        want.insert(format!("{v1}/json"), read(&format!("{v1}.json")));
        want.insert(format!("{v1}/VERSION"), b"1.0".to_vec());
    }
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert_eq!(
            String::from_utf8_lossy(&files[k]),
            String::from_utf8_lossy(v),
            "file {k} differs from the engine's"
        );
    }
    // member order equals the engine's tar listing (regular files and dirs)
    let listing = String::from_utf8(read("members.txt")).expect("utf8");
    let engine_order: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| !p.ends_with('/') && !p.ends_with("layer.tar"))
        .collect();
    let ours: Vec<String> = metadata_files(&[img], Format::DockerLegacy)
        .expect("plan")
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(ours, engine_order);
}

#[test]
fn untagged_manifest_matches_engine() {
    let files: BTreeMap<String, Vec<u8>> = metadata_files(&[image(&[])], Format::DockerLegacy)
        .expect("plan")
        .into_iter()
        .collect();
    assert_eq!(files["manifest.json"], read("manifest-untagged.json"));
    assert!(!files.contains_key("repositories"));
}
