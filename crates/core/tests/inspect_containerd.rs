//! `docker image inspect` and `docker history` of Docker 26.1.5's containerd image store
//! (fixtures/engine/docker26-containerd), rendered offline from the data-root archive,
//! against what the live engine answered (`expected/image-inspect/*.json`,
//! `expected/history/*.jsonl`) for every image: of the committed fixture, and of CI's fresh
//! run of its script where there is one (`SALVOR_EXTRA_FIXTURES`, see .ci/run).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_containerd::{open_all, ContainerdStore, StoreOptions};
use salvor_core::inspect_containerd::{history, image, image_with_version};
use serde_json::Value;

const NAME: &str = "docker26-containerd";

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/engine")
        .join(NAME)
}

/// The committed fixture, then CI's fresh run of the same script (other ids) when made.
fn variants() -> Vec<PathBuf> {
    let mut v = vec![committed()];
    if let Some(extra) = std::env::var_os("SALVOR_EXTRA_FIXTURES") {
        let fresh = PathBuf::from(extra).join(NAME);
        assert!(
            fresh.join("expected").is_dir(),
            "SALVOR_EXTRA_FIXTURES is set but has no fresh {NAME} ({})",
            fresh.display()
        );
        v.push(fresh);
    }
    v
}

fn open(fixture: &Path) -> ContainerdStore {
    let src: Arc<dyn salvor_source::Source> = Arc::from(
        salvor_source::open_evidence(&fixture.join("data-root.tar.zst")).expect("evidence"),
    );
    let mut o = open_all(src, &StoreOptions::default());
    assert_eq!(o.stores.len(), 1, "{}: {:?}", fixture.display(), o.problems);
    o.stores.remove(0)
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

/// The daemon's version, as `docker version` reported it on the live engine.
fn engine_version(fixture: &Path) -> String {
    let v = json(&fixture.join("expected/version.json"));
    v["Server"]["Components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["Name"] == "Engine")
        .and_then(|c| c["Version"].as_str())
        .expect("engine version")
        .to_string()
}

/// Every image id of the fixture (`docker images -aq --no-trunc`), one inspect each.
fn ids(fixture: &Path) -> Vec<String> {
    let ids: Vec<String> = std::fs::read_to_string(fixture.join("expected/image-ids.txt"))
        .expect("ids")
        .lines()
        .map(str::to_string)
        .collect();
    let inspected = std::fs::read_dir(fixture.join("expected/image-inspect"))
        .expect("image-inspect")
        .count();
    assert_eq!(ids.len(), inspected, "{}", fixture.display());
    assert!(
        ids.len() >= 20,
        "{}: {} images",
        fixture.display(),
        ids.len()
    );
    ids
}

fn short(id: &str) -> &str {
    &id["sha256:".len().."sha256:".len() + 12]
}

#[test]
fn inspect_equals_dockers_for_every_image() {
    assert_eq!(engine_version(&committed()), "26.1.5+dfsg1");
    for fx in variants() {
        let store = open(&fx);
        let version = engine_version(&fx);
        for id in ids(&fx) {
            let p = fx.join(format!("expected/image-inspect/{}.json", short(&id)));
            let theirs = json(&p);
            let theirs = &theirs[0];
            let ours = image_with_version(&store, &id, Some(&version)).expect("inspect");
            // Equal as values, and key for key in docker's order.
            assert_eq!(&ours, theirs, "{}", p.display());
            assert_eq!(
                serde_json::to_string_pretty(&ours).expect("json"),
                serde_json::to_string_pretty(theirs).expect("json"),
                "{}: key order",
                p.display()
            );
        }
    }
}

#[test]
fn inspect_without_a_known_engine_version_leaves_docker_version_empty() {
    // The daemon's own version is not in a data-root; the rest is the same.
    let fx = committed();
    let store = open(&fx);
    let id = "sha256:9c3280bce7f076ec3fd2cbde221e82738fa2302eaf07af9d54660bebc06bc905";
    let mut ours = image(&store, id).expect("inspect");
    assert_eq!(ours["DockerVersion"], "");
    ours["DockerVersion"] = engine_version(&fx).into();
    let theirs = json(&fx.join("expected/image-inspect/9c3280bce7f0.json"));
    assert_eq!(ours, theirs[0]);
    // Two tags of one repository: two RepoTags, the same repo digest twice, as docker.
    assert_eq!(ours["RepoTags"].as_array().map(Vec::len), Some(2));
    assert_eq!(ours["RepoDigests"][0], ours["RepoDigests"][1]);
}

#[test]
fn history_equals_dockers_for_every_image() {
    for fx in variants() {
        let store = open(&fx);
        let mut missing_seen = 0;
        for id in ids(&fx) {
            let p = fx.join(format!("expected/history/{}.jsonl", short(&id)));
            let theirs: Vec<Value> = std::fs::read_to_string(&p)
                .expect("history")
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect();
            let ours = history(&store, &id).expect("history");
            assert_eq!(ours.len(), theirs.len(), "{}: rows", p.display());
            assert_eq!(ours[0].id.as_deref(), Some(id.as_str()), "{id}: top row");
            for (n, (o, t)) in ours.iter().zip(&theirs).enumerate() {
                let at = format!("{} row {n}", p.display());
                assert_eq!(o.id_shown(), t["ID"], "{at}: ID");
                assert_eq!(o.created_at(), t["CreatedAt"], "{at}: CreatedAt");
                assert_eq!(o.created_by, t["CreatedBy"], "{at}: CreatedBy");
                assert_eq!(o.size_shown(), t["Size"], "{at}: Size");
                assert_eq!(o.comment, t["Comment"], "{at}: Comment");
                if o.empty_layer {
                    assert_eq!(o.size, Some(0), "{at}: an empty layer");
                }
                if o.id.is_none() {
                    missing_seen += 1;
                }
            }
        }
        // Every image of the fixture was built by the classic builder, committed from one
        // such image or imported (one entry), so docker found every row's image: no
        // `<missing>`.
        assert_eq!(missing_seen, 0, "{}", fx.display());
    }
}

#[test]
fn history_rows_carry_the_tags_and_sizes_of_the_layers() {
    let store = open(&committed());
    let app = "sha256:df5d58f51b496bb11199de37d8a3f761b99a5efbe309d29a8a169d7b40849b82";
    let rows = history(&store, app).expect("history");
    assert_eq!(rows.len(), 13);
    assert_eq!(rows[0].tags, ["salvor/app:1"]);
    // The base image, two tags, six rows down.
    assert_eq!(rows[6].tags, ["salvor/base:1.0", "salvor/base:latest"]);
    assert!(rows[1].tags.is_empty(), "an intermediate image has no name");
    // The bottom layer: the snapshotter's recorded usage, 2031616 bytes.
    assert_eq!(rows[12].size, Some(2031616));
    assert_eq!(rows[0].size, Some(0));
    assert!(rows[0].empty_layer && !rows[12].empty_layer);
    // The imported image: one entry, its comment; no parent label, one row.
    let imported = "sha256:bec26a6d366c3258b6a4d0cdf491d00677adf201208bc01a34459f9de391447c";
    let rows = history(&store, imported).expect("history");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].comment, "imported GNU tar");
    assert_eq!(rows[0].size, Some(24576));
}

#[test]
fn an_image_not_in_the_store_is_an_error_naming_it() {
    let store = open(&committed());
    for id in [
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "9c3280bce7f0",
        "",
        "salvor/base:1.0",
    ] {
        let e = image(&store, id).expect_err("not an image").to_string();
        assert!(e.contains(&format!("no image {id} ")), "{e}");
        assert!(e.contains("namespace moby"), "{e}");
        let e = history(&store, id).expect_err("not an image").to_string();
        assert!(e.contains(&format!("no image {id} ")), "{e}");
    }
}
