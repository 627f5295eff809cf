//! The archives salvor extracts from containerd stores, loaded back into the engines of the
//! containerd family (fixtures/engine/containerd-import.sh: a private, throw-away engine per
//! load): Docker 26.1 with its containerd image store (`docker load`) and a standalone
//! containerd 1.7 (`ctr -n k8s.io images import`) know every image by the digest the original
//! store had (the manifest's, or the index's for a multi-platform image).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{fixture_variants, repo, salvor_ok};

const NEEDS: &str =
    "needs Docker 26 and containerd 1.7 (fixtures/engine/get-docker26.sh); cargo test -- --include-ignored";

/// `containerd-import.sh MODE ARCHIVE REF...`: the (REF, digest) pairs the engine printed.
fn import(mode: &str, archive: &Path, refs: &[&str]) -> Vec<(String, String)> {
    let out = Command::new("bash")
        .arg(repo().join("fixtures/engine/containerd-import.sh"))
        .arg(mode)
        .arg(archive)
        .args(refs)
        .output()
        .expect("run containerd-import.sh");
    assert!(
        out.status.success(),
        "containerd-import.sh {mode} {} {refs:?} exited {:?} ({NEEDS})\nstdout:\n{}\nstderr:\n{}",
        archive.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| {
            let (r, d) = l.split_once(' ').expect("REF DIGEST");
            (r.to_string(), d.to_string())
        })
        .collect()
}

/// salvor's extract of `refs` (the default, stored format) from `root`, into `dir`.
fn extract(root: &Path, ns: Option<&str>, refs: &[&str], dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let root = root.to_string_lossy().into_owned();
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["-q", "--root", root.as_str()];
    if let Some(ns) = ns {
        args.extend(["--namespace", ns]);
    }
    args.push("extract");
    args.extend(refs);
    args.extend(["-o", out_s.as_str()]);
    salvor_ok(&args, 0);
    out
}

/// REF → ID of `docker image ls --format '{{json .}}'` (Docker 26's containerd store: the
/// manifest digest).
fn docker_ids(fx: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(fx.join("expected/image-ls.jsonl"))
        .expect("image-ls.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().expect("string").to_string();
            (format!("{}:{}", s("Repository"), s("Tag")), s("ID"))
        })
        .collect()
}

/// REF → DIGEST of `ctr -n <ns> images ls` (ctr's full names, docker.io/ included).
fn ctr_digests(fx: &Path, ns: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(fx.join("expected/ns").join(ns).join("images-ls.txt"))
        .expect("images-ls.txt")
        .lines()
        .skip(1)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].to_string(), w[2].to_string())
        })
        .collect()
}

fn want(table: &[(String, String)], r: &str) -> String {
    table
        .iter()
        .find(|(n, _)| n == r)
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| panic!("{r} not in {table:?}"))
}

const DOCKER_REFS: [&str; 2] = ["salvor/app:1", "salvor/base:1.0"];
const CRI_REFS: [&str; 2] = ["salvor/multi:1", "salvor/bb:1"];

/// Docker 26.1.5's containerd store (fixtures/engine/docker26-containerd): salvor's archive of
/// salvor/app:1 and salvor/base:1.0 loads into a Docker 26 with the containerd image store, which
/// then knows them by the ids `docker image ls` showed on the original engine.
#[test]
#[ignore = "needs Docker 26 and containerd 1.7 (fixtures/engine/get-docker26.sh); cargo test -- --include-ignored"]
fn docker26_extract_loads_into_docker26_with_the_same_ids() {
    for fx in fixture_variants("docker26-containerd") {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = extract(
            &fx.join("data-root.tar.zst"),
            None,
            &DOCKER_REFS,
            dir.path(),
            "x.tar",
        );
        let got = import("docker26", &a, &DOCKER_REFS);
        let ids = docker_ids(&fx);
        assert_eq!(got.len(), DOCKER_REFS.len(), "{got:?}");
        for (r, id) in &got {
            assert_eq!(*id, want(&ids, r), "{}: {r}", fx.display());
        }
    }
}

/// The same archive imported by a standalone containerd 1.7 (`ctr images import`): the manifest
/// digests again, under ctr's docker.io/ names.
#[test]
#[ignore = "needs Docker 26 and containerd 1.7 (fixtures/engine/get-docker26.sh); cargo test -- --include-ignored"]
fn docker26_extract_imports_into_containerd_with_the_same_digests() {
    for fx in fixture_variants("docker26-containerd") {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = extract(
            &fx.join("data-root.tar.zst"),
            None,
            &DOCKER_REFS,
            dir.path(),
            "x.tar",
        );
        let got = import("ctr", &a, &DOCKER_REFS);
        let ids = docker_ids(&fx);
        assert_eq!(got.len(), DOCKER_REFS.len(), "{got:?}");
        for (r, d) in &got {
            assert_eq!(*d, want(&ids, r), "{}: {r}", fx.display());
        }
    }
}

/// A Kubernetes node's containerd 1.7.24 (fixtures/engine/containerd-cri, namespace k8s.io):
/// salvor's archive of the multi-platform salvor/multi:1 (its index, the amd64 image the node
/// had) and salvor/bb:1 imports into a standalone containerd 1.7 under the digests `ctr -n k8s.io
/// images ls` showed on the node (the index's, the manifest's); one archive per image and one
/// of both.
#[test]
#[ignore = "needs Docker 26 and containerd 1.7 (fixtures/engine/get-docker26.sh); cargo test -- --include-ignored"]
fn cri_extract_imports_into_containerd_with_the_same_digests() {
    for fx in fixture_variants("containerd-cri") {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = fx.join("host-root.tar.zst");
        let digests = ctr_digests(&fx, "k8s.io");
        let mut sets: Vec<Vec<&str>> = CRI_REFS.iter().map(|r| vec![*r]).collect();
        sets.push(CRI_REFS.to_vec());
        for (i, refs) in sets.iter().enumerate() {
            let a = extract(&root, Some("k8s.io"), refs, dir.path(), &format!("{i}.tar"));
            let got = import("ctr", &a, refs);
            assert_eq!(got.len(), refs.len(), "{got:?}");
            for (r, d) in &got {
                assert_eq!(
                    *d,
                    want(&digests, &format!("docker.io/{r}")),
                    "{}: {r}",
                    fx.display()
                );
            }
        }
    }
}

/// The node's images loaded into Docker 26's containerd image store: `docker load` of the index
/// image and the plain one, known by the node's digests.
#[test]
#[ignore = "needs Docker 26 and containerd 1.7 (fixtures/engine/get-docker26.sh); cargo test -- --include-ignored"]
fn cri_extract_loads_into_docker26_with_the_same_ids() {
    for fx in fixture_variants("containerd-cri") {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = extract(
            &fx.join("host-root.tar.zst"),
            Some("k8s.io"),
            &CRI_REFS,
            dir.path(),
            "x.tar",
        );
        let got = import("docker26", &a, &CRI_REFS);
        let digests = ctr_digests(&fx, "k8s.io");
        assert_eq!(got.len(), CRI_REFS.len(), "{got:?}");
        for (r, id) in &got {
            assert_eq!(
                *id,
                want(&digests, &format!("docker.io/{r}")),
                "{}: {r}",
                fx.display()
            );
        }
    }
}
