//! The real third-party data-roots of google/docker-explorer's test data
//! (`../shared/corpus/docker-explorer`): an overlay2 tree on the v2 layout and an aufs tree
//! on the pre-1.10 `graph/` layout. Both must list and extract with every layer verified.

use crate::common;

use common::*;
use serde_json::Value;

fn corpus(name: &str) -> String {
    shared()
        .join("corpus/docker-explorer")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn overlay2_v2_tree_lists_and_verifies() {
    let root = corpus("overlay2.v2.tgz");
    let info: Value =
        serde_json::from_str(&salvor_ok(&["--root", &root, "info", "--json"], 0)).expect("json");
    assert_eq!(info["layout"], "v2");
    assert_eq!(info["driver"], "overlay2");
    assert_eq!(info["data_root"], "/docker");
    let images: Value =
        serde_json::from_str(&salvor_ok(&["--root", &root, "images", "--json"], 0)).expect("json");
    let images = images.as_array().expect("array");
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0]["id"],
        "sha256:8ac48589692a53a9b8c2d1ceaa6b402665aa7fe667ba51ccc03002300856d8c7"
    );
    assert_eq!(images[0]["tags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(
        images[0]["diff_ids"],
        serde_json::json!([
            "sha256:0314be9edf00a925d59f9b88c9d8ccb34447ab677078874d8c14e7a6816e21e1"
        ])
    );
    let v: Value =
        serde_json::from_str(&salvor_ok(&["--root", &root, "verify", "--json"], 0)).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["layers"][0]["status"], "verified");
    assert_eq!(
        v["layers"][0]["actual"],
        "sha256:0314be9edf00a925d59f9b88c9d8ccb34447ab677078874d8c14e7a6816e21e1"
    );
}

#[test]
fn aufs_graph_tree_lists_and_verifies() {
    let root = corpus("aufs.v1.tgz");
    let info: Value =
        serde_json::from_str(&salvor_ok(&["--root", &root, "info", "--json"], 0)).expect("json");
    assert_eq!(info["layout"], "legacy-graph");
    assert_eq!(info["driver"], "aufs");
    assert_eq!(info["problems"], serde_json::json!([]));
    let images: Value =
        serde_json::from_str(&salvor_ok(&["--root", &root, "images", "--json"], 0)).expect("json");
    let images = images.as_array().expect("array");
    // Two v1 images (the busybox layer and its CMD child), each migrated to a v2 image.
    assert_eq!(images.len(), 2);
    let tagged = images
        .iter()
        .find(|i| i["tags"] == serde_json::json!(["busybox:latest"]))
        .expect("busybox:latest");
    assert_eq!(tagged["config_synthesised"], true);
    // The busybox layer's diff id as the 1.10 migration computes it (sha256 of the tar rebuilt
    // from tar-data.json.gz): busybox 1.29's published layer digest.
    assert_eq!(
        tagged["diff_ids"],
        serde_json::json!([
            "sha256:23bc2b70b2014dec0ac22f27bb93e9babd08cdd6f1115d0c955b9ff22b382f5a",
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        ])
    );
    let v: Value =
        serde_json::from_str(&salvor_ok(&["--root", &root, "verify", "--json"], 0)).expect("json");
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn corpus_images_extract_and_load() {
    for (name, image) in [
        ("overlay2.v2.tgz", "busybox:latest"),
        ("aufs.v1.tgz", "busybox:latest"),
    ] {
        let root = corpus(name);
        let tmp = tempfile::tempdir().expect("tmp");
        for format in ["docker", "docker-legacy", "oci"] {
            let out = tmp.path().join(format!("{format}.tar"));
            salvor_ok(
                &[
                    "--root",
                    &root,
                    "extract",
                    image,
                    "--format",
                    format,
                    "-o",
                    &out.to_string_lossy(),
                ],
                0,
            );
            assert!(
                out.metadata().expect("out").len() > 1_000_000,
                "{name}: {format}: archive too small"
            );
        }
    }
}

/// Needs a Docker engine (run by `.ci/run` with `--include-ignored` where one answers).
#[test]
#[ignore = "needs a Docker engine (cargo test -- --include-ignored)"]
fn corpus_images_load_with_their_ids() {
    for (name, image) in [
        ("overlay2.v2.tgz", "busybox:latest"),
        ("aufs.v1.tgz", "busybox:latest"),
    ] {
        let root = corpus(name);
        let tmp = tempfile::tempdir().expect("tmp");
        let archive = tmp.path().join("docker.tar");
        salvor_ok(
            &[
                "--root",
                &root,
                "extract",
                image,
                "-o",
                &archive.to_string_lossy(),
            ],
            0,
        );
        let images: Value =
            serde_json::from_str(&salvor_ok(&["--root", &root, "images", "--json"], 0))
                .expect("json");
        let want = images
            .as_array()
            .expect("a")
            .iter()
            .find(|i| {
                i["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == image))
            })
            .and_then(|i| i["id"].as_str())
            .expect("id")
            .to_string();
        docker_rmi(&[image.to_string()]);
        let ids = docker_load_ids(&archive, &[image.to_string()]);
        assert_eq!(ids[0], want, "{name}: docker load gives another image id");
        docker_rmi(&[image.to_string()]);
    }
}

/// The corpus containers diff: what their upper directories hold (the aufs one from its
/// `aufs/diff/<id>` branch with `.wh.` conventions, pre-1.10 layout).
#[test]
fn corpus_containers_diff() {
    let cases: [(&str, &str, &[&str]); 4] = [
        ("overlay2.v2.tgz", "8e8b7f23eb7c", &["A /tets"]),
        ("overlay2.v2.tgz", "10acac0b3466", &[]),
        (
            "aufs.v1.tgz",
            "de44dd97cfd1",
            &["C /root", "A /root/.ash_history", "C /tmp", "A /tmp/toto"],
        ),
        ("aufs.v1.tgz", "fbb6711cefc7", &[]),
    ];
    for (tree, id, want) in cases {
        let out = salvor_ok(&["--root", &corpus(tree), "diff", id], 0);
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, want, "{tree} {id}");
    }
    // Every container of both trees can be diffed.
    for tree in ["overlay2.v2.tgz", "aufs.v1.tgz"] {
        let v: Value = serde_json::from_str(&salvor_ok(
            &["--root", &corpus(tree), "containers", "--json"],
            0,
        ))
        .expect("json");
        assert!(v.as_array().expect("a").len() >= 3);
        for c in v.as_array().expect("a") {
            salvor_ok(
                &[
                    "--root",
                    &corpus(tree),
                    "diff",
                    c["ID"].as_str().expect("ID"),
                ],
                0,
            );
        }
    }
}
