//! Real distribution content: a Debian bookworm minbase rootfs (debootstrap) imported into
//! Docker 20.10 and Docker 26, a child image whose RUN steps delete `/usr/share/doc`, add a
//! user, make hard links and replace a directory, and a container that changes files and
//! was committed (fixtures/engine/make-debian.sh; ~0.5 GB, so not committed: `.ci/run`
//! makes it, cached between runs on one machine). salvor against the engine's own answers:
//! every layer verifies, every archive holds `docker save`'s bytes, `export` is `docker
//! export` header for header, the offline commit has `docker commit`'s diff id.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const WHY: &str = "needs the Debian fixtures: bash fixtures/engine/make-debian.sh 20.10; bash fixtures/engine/make-debian.sh 26 (SALVOR_DEBIAN_FIXTURES names their directory)";

/// The two Debian fixtures, (name, directory); panics naming the script when absent.
fn fixtures() -> Vec<(String, PathBuf)> {
    let base = std::env::var_os("SALVOR_DEBIAN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/salvor-oracle/debian"));
    ["debian-20.10", "debian-26"]
        .iter()
        .map(|n| {
            let d = base.join(n);
            assert!(
                d.join(".complete").is_file() && d.join("data-root/image").is_dir(),
                "{} is missing: {WHY}",
                d.display()
            );
            (n.to_string(), d)
        })
        .collect()
}

fn root(fx: &Path) -> String {
    fx.join("data-root").to_string_lossy().into_owned()
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Header dumps of a tar by the script that made `expected/` (every field, offsets, hashes).
fn tarheaders(tar: &Path, sha: bool) -> Vec<Value> {
    let mut c = Command::new("python3");
    c.arg(repo().join("fixtures/engine/tarheaders.py"));
    if sha {
        c.arg("--sha256");
    }
    let out = c.arg(tar).output().expect("python3 (tar header dumps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect()
}

fn jsonl(p: &Path) -> Vec<Value> {
    lines(p)
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect()
}

/// `docker image ls -a`'s ids, and every image's layers, verify byte-exact.
#[test]
#[ignore = "needs the Debian fixtures (fixtures/engine/make-debian.sh; cargo test -- --include-ignored)"]
fn debian_images_list_and_verify() {
    for (name, fx) in fixtures() {
        let v: Value =
            serde_json::from_str(&salvor_ok(&["--root", &root(&fx), "images", "--json"], 0))
                .expect("json");
        let ours: BTreeSet<String> = v
            .as_array()
            .expect("images")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_string())
            .collect();
        let theirs: BTreeSet<String> = lines(&fx.join("expected/image-ids.txt"))
            .into_iter()
            .collect();
        assert_eq!(ours, theirs, "{name}: image ids");
        let out = salvor_ok(&["--root", &root(&fx), "verify", "--json"], 0);
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["ok"], true, "{name}");
        let layers = v["layers"].as_array().expect("layers");
        assert!(layers.len() >= 5, "{name}: {} layers", layers.len());
        for l in layers {
            assert_eq!(l["status"], "verified", "{name}: {l}");
            assert_eq!(l["actual"], l["diff_id"], "{name}");
        }
        // the imported rootfs keeps the tar byte-exact: its diff_id is the tar's sha256
        let import = std::fs::read_to_string(fx.join("expected/import-tar.diff_id")).expect("r");
        assert!(
            layers.iter().any(|l| l["diff_id"] == import.trim()),
            "{name}: the imported rootfs's layer {import}"
        );
    }
}

/// Every `docker save` of the fixture: salvor's archive in the engine's format holds the
/// same metadata files byte for byte and each layer with the engine's sha256 and size.
#[test]
#[ignore = "needs the Debian fixtures (fixtures/engine/make-debian.sh; cargo test -- --include-ignored)"]
fn debian_archives_equal_docker_save() {
    let mut compared = 0;
    for (name, fx) in fixtures() {
        for e in std::fs::read_dir(fx.join("expected/save")).expect("save") {
            let save = e.expect("entry").path();
            let refs = lines(&save.join("refs.txt"));
            let files = save.join("files");
            let format = if files.join("index.json").is_file() {
                "docker"
            } else {
                "docker-legacy"
            };
            let tmp = tempfile::tempdir().expect("tmp");
            let out = tmp.path().join("out");
            let r = root(&fx);
            let mut args: Vec<&str> = vec!["-q", "--root", &r, "extract"];
            args.extend(refs.iter().map(String::as_str));
            let o = out.to_string_lossy().into_owned();
            args.extend(["--format", format, "--dir", "-o", &o]);
            salvor_ok(&args, 0);
            let mut n = 0;
            let mut stack = vec![files.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).expect("dir") {
                    let p = e.expect("e").path();
                    if p.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    let rel = p.strip_prefix(&files).expect("rel");
                    let ours = std::fs::read(out.join(rel))
                        .unwrap_or_else(|e| panic!("{name}: {}: {e}", rel.display()));
                    assert!(
                        ours == std::fs::read(&p).expect("read"),
                        "{name}: {}: {} differs",
                        save.display(),
                        rel.display()
                    );
                    n += 1;
                }
            }
            assert!(n >= 3, "{name}: {}: nothing compared", save.display());
            for l in lines(&save.join("layers.txt")) {
                let f: Vec<&str> = l.split_whitespace().collect();
                let p = out.join(f[2]);
                let md = std::fs::symlink_metadata(&p)
                    .unwrap_or_else(|e| panic!("{name}: {}: {e}", f[2]));
                if md.file_type().is_symlink() {
                    continue;
                }
                assert_eq!(md.len().to_string(), f[1], "{name}: {} size", f[2]);
                assert_eq!(sha256_file(&p), f[0], "{name}: {} sha256", f[2]);
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 6, "three saves per engine");
}

/// `salvor export deb-c` is `docker export deb-c`: every header field, offset and content
/// hash of all entries (Docker 20.10: file-type bits and the container's names; 26: neither).
#[test]
#[ignore = "needs the Debian fixtures (fixtures/engine/make-debian.sh; cargo test -- --include-ignored)"]
fn debian_export_equals_docker_export() {
    for (name, fx) in fixtures() {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("x.tar");
        salvor_ok(
            &[
                "-q",
                "--root",
                &root(&fx),
                "export",
                "deb-c",
                "-o",
                &out.to_string_lossy(),
            ],
            0,
        );
        let ours = tarheaders(&out, true);
        let theirs = jsonl(&fx.join("expected/export/deb-c.headers.jsonl"));
        assert!(theirs.len() > 5000, "{name}: {} entries", theirs.len());
        let bad: Vec<String> = ours
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("  ours   {a}\n  engine {b}"))
            .collect();
        assert!(
            bad.is_empty(),
            "{name}: export differs:\n{}",
            bad.join("\n")
        );
        assert_eq!(ours.len(), theirs.len(), "{name}: entries");
    }
}

/// The offline commit of `deb-c` has the diff id of `docker commit deb-c`
/// (`salvor/debian-committed:1`'s last layer), its headers equal the engine's.
#[test]
#[ignore = "needs the Debian fixtures (fixtures/engine/make-debian.sh; cargo test -- --include-ignored)"]
fn debian_offline_commit_equals_docker_commit() {
    for (name, fx) in fixtures() {
        let inspect = std::fs::read_dir(fx.join("expected/image-inspect"))
            .expect("image-inspect")
            .map(|e| {
                let v: Value =
                    serde_json::from_slice(&std::fs::read(e.expect("e").path()).expect("r"))
                        .expect("json");
                v[0].clone()
            })
            .find(|v| {
                v["RepoTags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "salvor/debian-committed:1"))
            })
            .expect("salvor/debian-committed:1");
        let want = inspect["RootFS"]["Layers"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(|l| l.as_str())
            .expect("layers")
            .to_string();
        let tmp = tempfile::tempdir().expect("tmp");
        let o = tmp.path().join("c").to_string_lossy().into_owned();
        let r = root(&fx);
        let host = fx.join("expected/daemon-host");
        let (pw, gr) = (
            host.join("passwd").to_string_lossy().into_owned(),
            host.join("group").to_string_lossy().into_owned(),
        );
        let mut args = vec![
            "--root", &r, "extract", "deb-c", "--dir", "-o", &o, "--json",
        ];
        if name == "debian-20.10" {
            // Docker 20.10 wrote the daemon host's names; a data-root alone holds none
            args.extend(["--passwd", &pw, "--group", &gr]);
        }
        let v: Value = serde_json::from_str(&salvor_ok(&args, 0)).expect("json");
        assert_eq!(
            v["committed"][0]["layer"].as_str(),
            Some(want.as_str()),
            "{name}: {}",
            v["committed"][0]["headers"]
        );
        // its headers are the engine's (the save's dump of the layer with that digest)
        let save = fx.join("expected/save/debian-committed");
        let path = lines(&save.join("layers.txt"))
            .into_iter()
            .find(|l| l.starts_with(&want[7..]))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
            .expect("the committed layer in docker save");
        let theirs = jsonl(&save.join(format!("layer-headers/{}.jsonl", path.replace('/', "_"))));
        let ours = tarheaders(&Path::new(&o).join("blobs/sha256").join(&want[7..]), false);
        let strip = |v: &Vec<Value>| -> Vec<Value> {
            v.iter()
                .map(|h| {
                    let mut h = h.clone();
                    h.as_object_mut().map(|o| o.remove("sha256"));
                    h
                })
                .collect()
        };
        assert_eq!(
            strip(&ours),
            strip(&theirs),
            "{name}: committed layer headers"
        );
    }
}
