//! The CLI on Docker 26.1.5's containerd image store (fixtures/engine/docker26-containerd),
//! against what docker answered on the live engine: `images` (ids, repositories, tags, the
//! rows `docker images` shows without -a, and all 23 with -a), `containers` (`docker ps -a`
//! ids, names, images, states), `logs` (byte for byte, with and without -t), `verify`
//! (every layer's blob and snapshot), `info`; and a tampered copy of the data-root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::{fixture_variants, repo, salvor, salvor_ok};

fn fixture() -> PathBuf {
    repo().join("fixtures/engine/docker26-containerd")
}

fn archive() -> String {
    archive_of(&fixture())
}

fn archive_of(fx: &Path) -> String {
    fx.join("data-root.tar.zst").to_string_lossy().into_owned()
}

/// The committed fixture and, in CI, the fresh run of its script.
fn variants() -> Vec<PathBuf> {
    fixture_variants("docker26-containerd")
}

fn jsonl(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// (IMAGE ID, REPOSITORY, TAG) rows of a table whose first two columns are ENGINE and
/// NAMESPACE.
fn image_rows(table: &str) -> Vec<(String, String, String)> {
    let mut lines = table.lines();
    let head = lines.next().expect("header");
    assert!(
        head.starts_with("ENGINE") && head.contains("NAMESPACE   REPOSITORY"),
        "{head}"
    );
    lines
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w[0], "docker-containerd", "{l}");
            assert_eq!(w[1], "moby", "{l}");
            (w[4].to_string(), w[2].to_string(), w[3].to_string())
        })
        .collect()
}

fn docker_rows(p: &Path) -> Vec<(String, String, String)> {
    jsonl(p)
        .iter()
        .map(|v| {
            let id = v["ID"].as_str().expect("ID");
            let id = id.strip_prefix("sha256:").unwrap_or(id);
            (
                id[..12].to_string(),
                v["Repository"].as_str().expect("repo").to_string(),
                v["Tag"].as_str().expect("tag").to_string(),
            )
        })
        .collect()
}

#[test]
fn images_are_listed_as_docker_26_lists_them() {
    for fx in variants() {
        images_of(&fx);
    }
}

fn images_of(fx: &Path) {
    let a = archive_of(fx);
    let expected = |p: &str| fx.join("expected").join(p);
    // Without -a: the same rows (untagged parents hidden); in the same order (newest
    // first) for the committed run, whose images were made seconds apart.
    let out = salvor_ok(&["--root", &a, "images"], 0);
    let theirs = docker_rows(&expected("image-ls.jsonl"));
    if fx == fixture().as_path() {
        assert_eq!(image_rows(&out), theirs, "{out}");
    } else {
        let ours: BTreeSet<_> = image_rows(&out).into_iter().collect();
        assert_eq!(ours, theirs.into_iter().collect::<BTreeSet<_>>(), "{out}");
    }
    // With -a: every image; docker orders images created in the same second its own way,
    // so compare as sets.
    let out = salvor_ok(&["--root", &a, "images", "-a"], 0);
    let ours: BTreeSet<_> = image_rows(&out).into_iter().collect();
    let theirs: BTreeSet<_> = docker_rows(&expected("image-ls-a.jsonl"))
        .into_iter()
        .collect();
    assert_eq!(ours, theirs);
    // --json: every image id docker knows, with full ids.
    let v: serde_json::Value =
        serde_json::from_str(&salvor_ok(&["--root", &a, "images", "--json"], 0)).expect("json");
    let ids: BTreeSet<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|i| {
            assert_eq!(i["engine"], "docker-containerd");
            assert_eq!(i["namespace"], "moby");
            i["id"].as_str().expect("id").to_string()
        })
        .collect();
    let want: BTreeSet<String> = std::fs::read_to_string(expected("image-ids.txt"))
        .expect("ids")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn containers_are_docker_ps_a() {
    for fx in variants() {
        containers_are_docker_ps_a_of(&fx);
    }
}

fn containers_are_docker_ps_a_of(fx: &Path) {
    let a = archive_of(fx);
    let expected = |p: &str| fx.join("expected").join(p);
    let out = salvor_ok(&["--root", &a, "containers", "--no-trunc"], 0);
    let ps = jsonl(&expected("ps-a.jsonl"));
    assert_eq!(out.lines().count(), ps.len() + 1, "{out}");
    for c in &ps {
        let id = c["ID"].as_str().expect("id");
        let line = out
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{out}"));
        let name = c["Names"].as_str().expect("name");
        let image = c["Image"].as_str().expect("image");
        assert!(line.starts_with("docker-containerd   moby"), "{line}");
        assert!(line.ends_with(name), "{line}");
        assert!(
            line.contains(&format!("   {image}   ")),
            "{line} vs {image}"
        );
        let state = c["State"].as_str().expect("state");
        let status = c["Status"].as_str().expect("status");
        match state {
            "created" => assert!(line.contains("   Created   "), "{line}"),
            "exited" => {
                // docker: "Exited (3) 4 seconds ago"; salvor: "Exited (3) at <time>".
                let code = &status[..status.find(')').expect("code") + 1];
                assert!(line.contains(&format!("{code} at 2026-")), "{line}");
            }
            other => panic!("unexpected state {other}"),
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&salvor_ok(&["--root", &a, "containers", "--json"], 0)).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(ps.len()));
}

#[test]
fn logs_are_docker_logs_byte_for_byte() {
    for fx in variants() {
        logs_are_docker_logs_byte_for_byte_of(&fx);
    }
}

fn logs_are_docker_logs_byte_for_byte_of(fx: &Path) {
    let a = archive_of(fx);
    let expected = |p: &str| fx.join("expected").join(p);
    for c in ["c-exit0", "c-exit3", "c-created", "c-unchanged"] {
        for (flag, suffix) in [(None, ""), (Some("-t"), "-t")] {
            let mut args = vec!["--root", a.as_str(), "logs"];
            args.extend(flag);
            args.push(c);
            let out = salvor(&args);
            assert_eq!(out.status.code(), Some(0), "{c} {flag:?}: {out:?}");
            let want_out =
                std::fs::read(expected(&format!("logs/{c}.stdout{suffix}"))).expect("stdout");
            let want_err =
                std::fs::read(expected(&format!("logs/{c}.stderr{suffix}"))).expect("stderr");
            assert_eq!(out.stdout, want_out, "{c} {flag:?} stdout");
            // stderr: the container's stderr, then nothing of salvor's.
            assert_eq!(out.stderr, want_err, "{c} {flag:?} stderr");
        }
    }
    let out = salvor(&["--root", &a, "logs", "no-such-container"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no container matches"));
}

#[test]
fn verify_proves_every_layer_and_image() {
    for fx in variants() {
        verify_proves_every_layer_and_image_of(&fx);
    }
}

fn verify_proves_every_layer_and_image_of(fx: &Path) {
    let a = archive_of(fx);
    let out = salvor_ok(&["--root", &a, "verify"], 0);
    let layers: Vec<&str> = out.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(layers.len(), 9, "{out}");
    for l in &layers {
        assert!(l.contains("   verified   clean   "), "{l}");
    }
    let images = out.lines().filter(|l| l.ends_with(": verified")).count();
    assert_eq!(images, 23, "{out}");
    // One image by name, one by id prefix.
    // One image by name, one by id prefix (the ids docker listed for them).
    let id_of = |repo: &str| {
        docker_rows(&fx.join("expected/image-ls.jsonl"))
            .into_iter()
            .find(|(_, r, _)| r == repo)
            .map(|(id, _, _)| id)
            .expect("listed")
    };
    let (app, base) = (id_of("salvor/app"), id_of("salvor/base"));
    let out = salvor_ok(&["--root", &a, "verify", "salvor/app:1", &base], 0);
    assert!(
        out.contains(&format!("image {app} salvor/app:1: verified")),
        "{out}"
    );
    assert!(out.contains(&format!("image {base} salvor/base")), "{out}");
    let out = salvor(&["--root", &a, "verify", "salvor/nope:1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn info_names_the_store_and_where_it_was_found() {
    let out = salvor_ok(&["--root", &archive(), "info"], 0);
    for want in [
        "Stores:          1",
        "Store:           docker-containerd (namespace moby) at containerd/daemon (overlayfs)",
        "Images:          23",
        "Layers:          9",
        "Containers:      4",
        "Problems:        none",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}

#[test]
fn commands_not_yet_reading_containerd_say_so() {
    // An offline commit of a Kubernetes container is not written yet.
    let fx = repo().join("fixtures/engine/containerd-cri");
    let ids = std::fs::read_to_string(fx.join("expected/ids.env")).expect("ids");
    let app0 = ids
        .lines()
        .find_map(|l| l.strip_prefix("APP0="))
        .expect("APP0");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("k.tar");
    let o = salvor(&[
        "--root",
        &cri_archive_of(&fx),
        "extract",
        app0,
        "-o",
        &out.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not written yet"), "{err}");
    assert!(!out.exists());
}

/// `tree`: every layer of the store once, under its parent, with the images on top.
#[test]
fn tree_lists_every_layer_under_its_parent() {
    let out = salvor_ok(&["--root", &archive(), "tree"], 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("== docker-containerd (namespace moby)"),
        "{out}"
    );
    assert_eq!(lines.len(), 1 + 9, "{out}");
    assert!(out.contains("<- salvor/imported:1"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("└─ 5cfb8cb199e0") && l.contains("salvor/committed:1")),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&salvor_ok(&["--root", &archive(), "tree", "--json"], 0))
            .expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(9));
}

/// The data-root unpacked, a snapshot file changed and a blob removed: verify names both.
#[test]
fn tampered_snapshot_and_missing_blob_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::common::untar_zst(&fixture().join("data-root.tar.zst"), dir.path(), true);
    let root = dir.path().to_string_lossy().into_owned();
    // salvor/app:1's top layer's snapshot(s) (the app was built twice: every snapshot
    // holding app/stamp): the content changed at the same size and mtime, a mode changed,
    // a file planted, a file deleted. Each is named, with its kind.
    let v: serde_json::Value = serde_json::from_str(&salvor_ok(
        &["--root", &root, "verify", "--json", "salvor/app:1"],
        0,
    ))
    .expect("json");
    assert_eq!(v["ok"], true);
    let snaps = dir
        .path()
        .join("containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots");
    let tops: Vec<PathBuf> = std::fs::read_dir(&snaps)
        .expect("snapshots")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("fs"))
        .filter(|p| p.join("app/stamp").is_file())
        .collect();
    assert!(!tops.is_empty());
    for fs in &tops {
        let stamp = fs.join("app/stamp");
        let mtime = std::fs::metadata(&stamp)
            .expect("md")
            .modified()
            .expect("mtime");
        let old = std::fs::read(&stamp).expect("read");
        let mut new = old.clone();
        new[0] ^= 0x20; // same size
        std::fs::write(&stamp, &new).expect("tamper");
        std::fs::File::options()
            .write(true)
            .open(&stamp)
            .and_then(|f| f.set_modified(mtime))
            .expect("keep the mtime");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            fs.join("data/opaque/new"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::fs::write(fs.join("app/planted"), "x\n").expect("plant");
        std::fs::remove_file(fs.join("app/current")).expect("delete");
    }
    let out = salvor(&["--root", &root, "verify", "salvor/app:1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for want in [
        "app/stamp: content-changed",
        "data/opaque/new: mode-changed (expected 0644, found 0600)",
        "app/planted: added",
        "app/current: missing (expected a symlink, found nothing)",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(text.contains("salvor/app:1: FAILED"), "{text}");
    // The imported image's only layer blob removed: unprovable, said with the blob's name.
    let blobs = dir
        .path()
        .join("containerd/daemon/io.containerd.content.v1.content/blobs/sha256");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            blobs.join("bec26a6d366c3258b6a4d0cdf491d00677adf201208bc01a34459f9de391447c"),
        )
        .expect("manifest"),
    )
    .expect("json");
    let blob = manifest["layers"][0]["digest"].as_str().expect("digest");
    std::fs::remove_file(blobs.join(blob.trim_start_matches("sha256:"))).expect("rm blob");
    let out = salvor(&["--root", &root, "verify", "salvor/imported:1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("UNREBUILDABLE"), "{text}");
    assert!(
        text.contains(&format!("its blob {blob} is not in the content store")),
        "{text}"
    );
    // extract: refused; with --force the layer is rebuilt from its snapshot in salvor's
    // canonical form, marked FORCED (unproven), the same bytes every time.
    let outdir = tempfile::tempdir().expect("tempdir");
    let out = outdir.path().join("f.tar");
    let out_s = out.to_string_lossy().into_owned();
    let args = [
        "-q",
        "--root",
        &root,
        "extract",
        "salvor/imported:1",
        "--format",
        "docker-legacy",
        "-o",
        &out_s,
        "--overwrite",
    ];
    let refused = salvor(&args);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--force rebuilds it from its snapshot"),
        "{refused:?}"
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    salvor_ok(&forced, 1);
    let first = crate::common::sha256_file(&out);
    salvor_ok(&forced, 1);
    assert_eq!(crate::common::sha256_file(&out), first, "not deterministic");
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&out)
        .output()
        .expect("tar");
    assert!(String::from_utf8_lossy(&listing.stdout).contains("salvor-forced.json"));
    // Blobs as stored cannot be forced.
    let stored = [
        "-q",
        "--root",
        &root,
        "extract",
        "salvor/imported:1",
        "-o",
        &out_s,
        "--overwrite",
        "--force",
    ];
    let refused = salvor(&stored);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot be forced"),
        "{refused:?}"
    );
}

/// Every `docker save` the engine wrote (expected/save/*: the references given, the
/// archive's sha256): salvor's extract of the same references is the same archive, byte
/// for byte (blobs as stored, in digest order; index.json per reference).
#[test]
fn extract_is_docker_26_save_byte_for_byte() {
    for fx in variants() {
        extract_is_docker_26_save_byte_for_byte_of(&fx);
    }
}

fn extract_is_docker_26_save_byte_for_byte_of(fx: &Path) {
    let a = archive_of(fx);
    let expected = |p: &str| fx.join("expected").join(p);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut compared = 0;
    for e in std::fs::read_dir(expected("save")).expect("save") {
        let d = e.expect("entry").path();
        let refs: Vec<String> = std::fs::read_to_string(d.join("refs.txt"))
            .expect("refs")
            .lines()
            .map(str::to_string)
            .collect();
        let want = std::fs::read_to_string(d.join("archive.sha256")).expect("sha");
        let out = dir.path().join("x.tar");
        let out_s = out.to_string_lossy().into_owned();
        let mut args = vec!["-q", "--root", a.as_str(), "extract"];
        args.extend(refs.iter().map(String::as_str));
        args.extend(["-o", out_s.as_str(), "--overwrite"]);
        salvor_ok(&args, 0);
        if crate::common::sha256_file(&out) != want.trim() {
            // Several images: the engine orders manifest.json's entries as a Go map
            // iterates (it differs run to run); salvor keeps the order asked. Everything
            // else must be the same: every member, its mode and size, index.json's bytes,
            // and manifest.json's entries as a set.
            assert!(
                refs.len() > 1,
                "{} ({refs:?}): not the same archive",
                d.display()
            );
            same_archive_but_manifest_order(&out, &d);
        }
        compared += 1;
    }
    assert_eq!(compared, 9);
}

/// `ours` has the members (names, modes, sizes) of the engine's `save` listing, its
/// index.json, and manifest.json's entries in some order.
fn same_archive_but_manifest_order(ours: &Path, save: &Path) {
    use std::io::Read;
    let mut listing = Vec::new();
    let mut index = Vec::new();
    let mut manifest = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(ours).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let h = e.header().clone();
        listing.push((
            name.trim_end_matches('/').to_string(),
            h.mode().expect("mode") & 0o777,
            h.size().expect("size"),
        ));
        match name.as_str() {
            "index.json" => e.read_to_end(&mut index).map(|_| ()).expect("read"),
            "manifest.json" => e.read_to_end(&mut manifest).map(|_| ()).expect("read"),
            _ => {}
        }
    }
    let perm = |s: &str| -> u32 {
        let b = s.as_bytes();
        (1..10).fold(0, |m, i| (m << 1) | u32::from(b[i] != b'-'))
    };
    let theirs: Vec<(String, u32, u64)> = std::fs::read_to_string(save.join("archive.tvf"))
        .expect("tvf")
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (
                w[5].trim_end_matches('/').to_string(),
                perm(w[0]),
                w[2].parse().expect("size"),
            )
        })
        .collect();
    assert_eq!(listing, theirs, "{}: members", save.display());
    assert_eq!(
        index,
        std::fs::read(save.join("files/index.json")).expect("index"),
        "{}: index.json",
        save.display()
    );
    let set = |b: &[u8]| -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_slice(b).expect("manifest.json");
        v.as_array()
            .expect("entries")
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert_eq!(
        set(&manifest),
        set(&std::fs::read(save.join("files/manifest.json")).expect("manifest")),
        "{}: manifest.json's entries",
        save.display()
    );
}

fn cri_archive_of(fx: &Path) -> String {
    fx.join("host-root.tar.zst").to_string_lossy().into_owned()
}

/// A Kubernetes node's containerd (fixtures/engine/containerd-cri, containerd 1.7.24 driven
/// through the CRI): every namespace a store, images with ctr's digests, containers with
/// their pod.
#[test]
fn a_kubernetes_node_lists_its_namespaces_images_and_pods() {
    for fx in fixture_variants("containerd-cri") {
        kubernetes_node(&fx);
    }
}

fn kubernetes_node(fx: &Path) {
    let a = cri_archive_of(fx);
    let out = salvor_ok(&["--root", &a, "images", "--no-trunc"], 0);
    let cri = fx.join("expected/ns");
    for ns in ["k8s.io", "default"] {
        let ls = std::fs::read_to_string(cri.join(ns).join("images-ls.txt")).expect("ls");
        for l in ls.lines().skip(1) {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w[0].starts_with("sha256:") {
                continue; // CRI's image-id alias of the same target
            }
            let (repo, tag) = w[0]
                .trim_start_matches("docker.io/")
                .rsplit_once(':')
                .expect("tag");
            let row = format!("containerd   {ns}");
            assert!(
                out.lines().any(|o| o.starts_with(&row)
                    && o.contains(&format!("   {repo}   "))
                    && o.contains(&format!("   {tag}   "))
                    && o.contains(w[2])),
                "{ns} {} {} not in\n{out}",
                w[0],
                w[2]
            );
        }
    }
    let out = salvor_ok(&["--root", &a, "containers"], 0);
    let ids = std::fs::read_to_string(fx.join("expected/ids.env")).expect("ids");
    for l in ids.lines().filter(|l| !l.starts_with("POD_UID")) {
        let id = &l.split_once('=').expect("id").1[..12];
        let line = out
            .lines()
            .find(|o| o.contains(id))
            .unwrap_or_else(|| panic!("{id} not in\n{out}"));
        assert!(line.starts_with("containerd   k8s.io"), "{line}");
        assert!(line.trim_end().ends_with("shop/web-0"), "{line}");
    }
    // pods: the CRI's one pod, with its sandbox id and its three containers.
    let v: serde_json::Value =
        serde_json::from_str(&salvor_ok(&["--root", &a, "pods", "--json"], 0)).expect("json");
    let crictl: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("expected/cri/pods.json")).expect("pods"))
            .expect("json");
    let theirs = &crictl["items"][0];
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let ours = &v[0];
    assert_eq!(ours["sandbox_id"], theirs["id"]);
    assert_eq!(ours["name"], theirs["metadata"]["name"]);
    assert_eq!(ours["k8s_namespace"], theirs["metadata"]["namespace"]);
    assert_eq!(ours["uid"], theirs["metadata"]["uid"]);
    assert_eq!(ours["namespace"], "k8s.io");
    let mut ours_c: Vec<String> = ours["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    let cri_c: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fx.join("expected/cri/containers.json")).expect("containers"),
    )
    .expect("json");
    let mut theirs_c: Vec<String> = cri_c["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    ours_c.sort();
    theirs_c.sort();
    assert_eq!(ours_c, theirs_c);
    // --namespace keeps one namespace's stores.
    let out = salvor_ok(&["--root", &a, "--namespace", "default", "images"], 0);
    assert!(
        out.lines()
            .skip(1)
            .all(|l| l.starts_with("containerd   default")),
        "{out}"
    );
    let bad = salvor(&["--root", &a, "--namespace", "nope", "images"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `ctr -n k8s.io images export` of the multi-platform image (its index, the amd64
/// manifest, config and layers): salvor's extract is the same archive byte for byte.
#[test]
fn extract_of_an_index_image_is_ctr_export_byte_for_byte() {
    for fx in fixture_variants("containerd-cri") {
        index_image_export(&fx);
    }
}

fn index_image_export(fx: &Path) {
    let a = cri_archive_of(fx);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("m.tar");
    let out_s = out.to_string_lossy().into_owned();
    let want =
        std::fs::read_to_string(fx.join("expected/export/multi-1/k8s.io.default.archive.sha256"))
            .expect("sha");
    salvor_ok(
        &[
            "-q",
            "--root",
            &a,
            "--namespace",
            "k8s.io",
            "extract",
            "salvor/multi:1",
            "-o",
            &out_s,
        ],
        0,
    );
    assert_eq!(crate::common::sha256_file(&out), want.trim());
    // The image is in two namespaces: without --namespace, which one is asked.
    let o = salvor(&[
        "-q",
        "--root",
        &a,
        "extract",
        "salvor/multi:1",
        "-o",
        &out_s,
        "--overwrite",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stores"),
        "{o:?}"
    );
}

/// `docker diff` of every container (as sets: docker lists in the directory order of the
/// host's filesystem, which an archive does not keep).
#[test]
fn diff_is_docker_diff() {
    for fx in variants() {
        diff_is_docker_diff_of(&fx);
    }
}

fn diff_is_docker_diff_of(fx: &Path) {
    let a = archive_of(fx);
    let expected = |p: &str| fx.join("expected").join(p);
    for c in ["c-exit0", "c-exit3", "c-created", "c-unchanged"] {
        let ours: BTreeSet<String> = salvor_ok(&["--root", &a, "diff", c], 0)
            .lines()
            .map(str::to_string)
            .collect();
        let theirs: BTreeSet<String> = std::fs::read_to_string(expected(&format!("diff/{c}.txt")))
            .expect("diff")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(ours, theirs, "{c}");
    }
}

/// `docker export` of every container: every header field, content hash and data offset.
#[test]
fn export_is_docker_export_header_for_header() {
    for fx in variants() {
        export_is_docker_export_header_for_header_of(&fx);
    }
}

fn export_is_docker_export_header_for_header_of(fx: &Path) {
    let a = archive_of(fx);
    let expected = |p: &str| fx.join("expected").join(p);
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    for c in ["c-exit0", "c-exit3", "c-created"] {
        let theirs = jsonl(&expected(&format!("export/{c}.headers.jsonl")));
        let out = dir.path().join(format!("{c}.tar"));
        salvor_ok(
            &[
                "-q",
                "--root",
                &a,
                "export",
                c,
                "-o",
                &out.to_string_lossy(),
            ],
            0,
        );
        let mut ar = tar::Archive::new(std::fs::File::open(&out).expect("open"));
        let mut n = 0;
        for (i, ent) in ar.entries().expect("entries").enumerate() {
            let mut ent = ent.expect("entry");
            let t = &theirs[i];
            let h = ent.header().clone();
            let ctx = format!("{c} entry {i}");
            let name = String::from_utf8_lossy(&ent.path_bytes()).into_owned();
            // (the engine's headers were read with Python's tarfile, which drops a
            // directory's trailing '/')
            assert_eq!(
                name.trim_end_matches('/'),
                t["name"].as_str().expect("name"),
                "{ctx}"
            );
            assert_eq!(
                format!("0o{:o}", h.mode().expect("mode")),
                t["mode"].as_str().expect("mode"),
                "{ctx} {name}"
            );
            assert_eq!(h.uid().ok(), t["uid"].as_u64(), "{ctx} {name}");
            assert_eq!(h.gid().ok(), t["gid"].as_u64(), "{ctx} {name}");
            assert_eq!(h.mtime().ok(), t["mtime"].as_u64(), "{ctx} {name}");
            assert_eq!(
                String::from_utf8_lossy(h.username_bytes().unwrap_or_default()),
                t["uname"].as_str().expect("uname"),
                "{ctx} {name}"
            );
            assert_eq!(
                String::from_utf8_lossy(h.groupname_bytes().unwrap_or_default()),
                t["gname"].as_str().expect("gname"),
                "{ctx} {name}"
            );
            // Where the entry's data starts (the engine's offsets count a PAX header
            // as part of its entry; the data offset does not depend on that).
            assert_eq!(
                ent.raw_file_position(),
                t["offset_data"].as_u64().expect("offset_data"),
                "{ctx} {name}"
            );
            let mut data = Vec::new();
            ent.read_to_end(&mut data).expect("read");
            use sha2::{Digest, Sha256};
            // (regular files only: the reader gives other entries no hash)
            if let Some(sha) = t["sha256"].as_str() {
                assert_eq!(hex::encode(Sha256::digest(&data)), sha, "{ctx} {name}");
            }
            n += 1;
        }
        assert_eq!(n, theirs.len(), "{c}: entries");
    }
}

/// `extract --format docker-legacy` and `oci`: every layer decompressed from its blob, each
/// tar hashing to its diff_id (the archive's layer files are named by them).
#[test]
fn decompressed_formats_carry_the_diff_ids() {
    let a = archive();
    let dir = tempfile::tempdir().expect("tempdir");
    let inspect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture().join("expected/image-inspect/df5d58f51b49.json"))
            .expect("inspect"),
    )
    .expect("json");
    let inspect = if inspect.is_array() {
        inspect[0].clone()
    } else {
        inspect
    };
    let diff_ids: Vec<String> = inspect["RootFS"]["Layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|d| d.as_str().expect("d").to_string())
        .collect();
    for format in ["docker-legacy", "oci"] {
        let out = dir.path().join(format!("{format}.tar"));
        salvor_ok(
            &[
                "-q",
                "--root",
                &a,
                "extract",
                "salvor/app:1",
                "--format",
                format,
                "-o",
                &out.to_string_lossy(),
            ],
            0,
        );
        let mut ar = tar::Archive::new(std::fs::File::open(&out).expect("open"));
        let mut found = BTreeSet::new();
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("read");
            use sha2::{Digest, Sha256};
            found.insert(format!("sha256:{}", hex::encode(Sha256::digest(&data))));
        }
        for d in &diff_ids {
            assert!(found.contains(d), "{format}: no member hashes to {d}");
        }
    }
}

/// Needs a Docker engine (run by `.ci/run` with `--include-ignored` where one answers): the
/// archives salvor writes of a containerd store load; a graphdriver engine (the system's
/// Docker 20.10) knows each image by its config digest, with the diff_ids docker listed.
#[test]
#[ignore = "needs a Docker engine (cargo test -- --include-ignored)"]
fn containerd_archives_load_into_docker() {
    let a = archive();
    let dir = tempfile::tempdir().expect("tempdir");
    let refs = vec!["salvor/app:1".to_string(), "salvor/base:1.0".to_string()];
    // (a plain OCI layout has no manifest.json: docker load refuses it)
    for format in ["docker", "docker-legacy"] {
        let out = dir.path().join(format!("{format}.tar"));
        salvor_ok(
            &[
                "-q",
                "--root",
                &a,
                "extract",
                &refs[0],
                &refs[1],
                "--format",
                format,
                "-o",
                &out.to_string_lossy(),
            ],
            0,
        );
        crate::common::docker_rmi(&refs);
        let ids = crate::common::docker_load_ids(&out, &refs);
        for (r, id) in refs.iter().zip(&ids) {
            let manifest_id = docker_rows(&fixture().join("expected/image-ls.jsonl"))
                .into_iter()
                .find(|(_, repo, tag)| format!("{repo}:{tag}") == *r)
                .map(|(id, _, _)| id)
                .expect("listed");
            let inspect: serde_json::Value = serde_json::from_slice(
                &std::fs::read(
                    fixture().join(format!("expected/image-inspect/{manifest_id}.json")),
                )
                .expect("inspect"),
            )
            .expect("json");
            let inspect = if inspect.is_array() {
                inspect[0].clone()
            } else {
                inspect
            };
            // The loaded id is the config digest the archive's manifest.json names.
            let mut ar = tar::Archive::new(std::fs::File::open(&out).expect("open"));
            let mut manifest = Vec::new();
            for e in ar.entries().expect("entries") {
                let mut e = e.expect("entry");
                if e.path().expect("path").to_string_lossy() == "manifest.json" {
                    std::io::Read::read_to_end(&mut e, &mut manifest).expect("read");
                }
            }
            let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
            let config = manifest
                .as_array()
                .expect("entries")
                .iter()
                .find(|m| {
                    m["RepoTags"]
                        .as_array()
                        .is_some_and(|t| t.iter().any(|t| t == r))
                })
                .and_then(|m| m["Config"].as_str())
                .expect("config");
            let hex = config
                .trim_start_matches("blobs/sha256/")
                .trim_end_matches(".json");
            assert_eq!(id, &format!("sha256:{hex}"), "{format} {r}");
            let o = std::process::Command::new("docker")
                .args(["image", "inspect", "--format", "{{json .RootFS.Layers}}", r])
                .output()
                .expect("inspect");
            let loaded: serde_json::Value = serde_json::from_slice(&o.stdout).expect("layers json");
            assert_eq!(loaded, inspect["RootFS"]["Layers"], "{format} {r}");
        }
        crate::common::docker_rmi(&refs);
    }
}

/// timeline over every store of a node (each scope names its namespace), report of one
/// store (Docker 26's moby; a node's namespace picked with --namespace).
#[test]
fn timeline_and_report_read_containerd_stores() {
    let a = cri_archive_of(&repo().join("fixtures/engine/containerd-cri"));
    let out = salvor_ok(&["-q", "--root", &a, "timeline", "--images", "--logs"], 0);
    for ns in ["[k8s.io: ", "[default: "] {
        assert!(
            out.lines().any(|l| l.contains(ns)),
            "{ns} not in the timeline"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.contains("[k8s.io: container app rw]")),
        "no walk of the app container's snapshot"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let rep = dir.path().join("rep");
    let r = rep.to_string_lossy().into_owned();
    // Every store in a directory of its own, one MANIFEST over all, the same bytes twice.
    salvor_ok(&["-q", "--root", &a, "report", "-o", &r], 0);
    for d in ["containerd-k8s.io", "containerd-default"] {
        for f in [
            "summary.md",
            "inventory.json",
            "verify.json",
            "timeline.jsonl",
        ] {
            assert!(rep.join(d).join(f).is_file(), "{d}/{f}");
        }
    }
    let manifest = std::fs::read_to_string(rep.join("MANIFEST.sha256")).expect("manifest");
    for l in manifest.lines() {
        let (sha, name) = l.split_once("  ").expect("line");
        assert_eq!(crate::common::sha256_file(&rep.join(name)), sha, "{name}");
    }
    let again = dir.path().join("again");
    salvor_ok(
        &["-q", "--root", &a, "report", "-o", &again.to_string_lossy()],
        0,
    );
    assert_eq!(
        std::fs::read(again.join("MANIFEST.sha256")).expect("again"),
        manifest.as_bytes(),
        "not deterministic"
    );
    std::fs::remove_dir_all(&rep).expect("rm");
    salvor_ok(
        &[
            "-q",
            "--root",
            &a,
            "--namespace",
            "k8s.io",
            "report",
            "-o",
            &r,
        ],
        0,
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("verify.json")).expect("verify"))
            .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    let rep2 = dir.path().join("rep2");
    salvor_ok(
        &[
            "-q",
            "--root",
            &archive(),
            "report",
            "-o",
            &rep2.to_string_lossy(),
        ],
        0,
    );
    let inv: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep2.join("inventory.json")).expect("inventory"))
            .expect("json");
    assert_eq!(inv["images"].as_array().map(Vec::len), Some(23), "{inv}");
}

/// `logs` of a Kubernetes container: the CRI log files (partial lines joined, the line the
/// program left without a newline kept so), stdout and stderr apart, `--tail`.
#[test]
fn logs_of_a_kubernetes_container() {
    for fx in fixture_variants("containerd-cri") {
        let a = cri_archive_of(&fx);
        let ids = std::fs::read_to_string(fx.join("expected/ids.env")).expect("ids");
        let app0 = ids
            .lines()
            .find_map(|l| l.strip_prefix("APP0="))
            .expect("APP0");
        let out = salvor(&["--root", &a, "logs", app0]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let long = format!("{}\n", "x".repeat(20000));
        assert!(text.contains(&long), "the 20000-byte line is not whole");
        assert!(text.ends_with("app: last words without newline"), "{text}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("app: to stderr"));
        let tail = salvor_ok(&["--root", &a, "logs", "--tail", "1", app0], 0);
        assert_eq!(tail, "app: last words without newline");
    }
}

/// `extract CONTAINER` of Docker's containerd image store: the offline commit's layer has
/// every header, byte and offset of `docker commit`'s (salvor/committed:1 from c-exit0) but
/// the wall-clock mtimes of its whiteouts, which the engine takes at commit time.
#[test]
fn offline_commit_is_docker_commit_but_the_whiteouts_clock() {
    use std::io::Read;
    for fx in variants() {
        let a = archive_of(&fx);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("c.tar");
        salvor_ok(
            &[
                "-q",
                "--root",
                &a,
                "extract",
                "c-exit0",
                "--tag",
                "x/y:1",
                "--format",
                "docker-legacy",
                "-o",
                &out.to_string_lossy(),
            ],
            0,
        );
        // The committed layer: the last of manifest.json's.
        let read_member = |name: &str| -> Vec<u8> {
            let mut ar = tar::Archive::new(std::fs::File::open(&out).expect("open"));
            for e in ar.entries().expect("entries") {
                let mut e = e.expect("entry");
                if e.path().expect("path").to_string_lossy() == name {
                    let mut v = Vec::new();
                    e.read_to_end(&mut v).expect("read");
                    return v;
                }
            }
            panic!("{name} not in the archive")
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&read_member("manifest.json")).expect("json");
        let last = manifest[0]["Layers"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(|l| l.as_str())
            .expect("layer")
            .to_string();
        let layer = read_member(&last);
        // docker commit's layer, as docker save wrote it (its headers).
        let save = fx.join("expected/save/committed-1");
        let manifest_theirs: serde_json::Value = serde_json::from_slice(
            &std::fs::read(save.join("files/manifest.json")).expect("manifest"),
        )
        .expect("json");
        let blob = manifest_theirs[0]["Layers"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(|l| l.as_str())
            .expect("layer")
            .replace('/', "_");
        let theirs = jsonl(&save.join("layer-headers").join(format!("{blob}.jsonl")));
        let mut ar = tar::Archive::new(&layer[..]);
        let mut n = 0;
        for (i, e) in ar.entries().expect("entries").enumerate() {
            let mut e = e.expect("entry");
            let t = &theirs[i];
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let h = e.header().clone();
            assert_eq!(
                name.trim_end_matches('/'),
                t["name"].as_str().expect("name")
            );
            assert_eq!(
                format!("0o{:o}", h.mode().expect("mode")),
                t["mode"].as_str().expect("mode"),
                "{name}"
            );
            assert_eq!(h.uid().ok(), t["uid"].as_u64(), "{name}");
            assert_eq!(h.gid().ok(), t["gid"].as_u64(), "{name}");
            assert_eq!(
                e.raw_file_position(),
                t["offset_data"].as_u64().expect("off"),
                "{name}"
            );
            let whiteout = name
                .rsplit('/')
                .next()
                .is_some_and(|b| b.starts_with(".wh."));
            if !whiteout {
                assert_eq!(h.mtime().ok(), t["mtime"].as_u64(), "{name}: mtime");
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            if let Some(sha) = t["sha256"].as_str() {
                use sha2::{Digest, Sha256};
                assert_eq!(hex::encode(Sha256::digest(&data)), sha, "{name}");
            }
            n += 1;
        }
        assert_eq!(n, theirs.len());
    }
}

/// `inspect IMAGE` and `history IMAGE` of every image: docker's answers (DockerVersion is the
/// daemon's, not in the evidence: given with --engine-version).
#[test]
fn inspect_and_history_of_every_image_are_docker_26s() {
    for fx in variants() {
        let a = archive_of(&fx);
        let version: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fx.join("expected/version.json")).expect("version"),
        )
        .expect("json");
        let v = version["Server"]["Version"]
            .as_str()
            .or(version["Version"].as_str())
            .expect("server version")
            .to_string();
        let mut n = 0;
        for e in std::fs::read_dir(fx.join("expected/image-inspect")).expect("inspect") {
            let p = e.expect("entry").path();
            let theirs: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            let theirs = if theirs.is_array() {
                theirs[0].clone()
            } else {
                theirs
            };
            let id = theirs["Id"].as_str().expect("id");
            let ours: serde_json::Value = serde_json::from_str(&salvor_ok(
                &["--root", &a, "--engine-version", &v, "inspect", id],
                0,
            ))
            .expect("json");
            assert_eq!(ours[0], theirs, "{id}");
            let short = &id["sha256:".len()..][..12];
            let hist = jsonl(&fx.join(format!("expected/history/{short}.jsonl")));
            let ours: serde_json::Value =
                serde_json::from_str(&salvor_ok(&["--root", &a, "history", id, "--json"], 0))
                    .expect("json");
            let ours = ours.as_array().expect("rows");
            assert_eq!(ours.len(), hist.len(), "{id}");
            for (o, t) in ours.iter().zip(&hist) {
                let shown = o["id"].as_str().unwrap_or("<missing>");
                assert_eq!(shown, t["ID"].as_str().expect("ID"), "{id}");
                assert_eq!(o["created_by"], t["CreatedBy"], "{id}");
                assert_eq!(o["comment"], t["Comment"], "{id}");
                assert_eq!(o["size_human"], t["Size"], "{id}");
            }
            n += 1;
        }
        assert_eq!(n, 23);
    }
}

/// Hostile: meta.db overwritten with garbage pages — the root is a problem naming the file
/// and the page, said by every command; nothing panics. A `--containerd-root` that is not
/// one is an error naming it.
#[test]
fn a_garbage_meta_db_is_a_problem_naming_the_file_and_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::common::untar_zst(&fixture().join("data-root.tar.zst"), dir.path(), true);
    let m = dir
        .path()
        .join("containerd/daemon/io.containerd.metadata.v1.bolt/meta.db");
    let mut b = std::fs::read(&m).expect("meta.db");
    let mut at = 8192;
    while at + 64 <= b.len() {
        b[at..at + 64].fill(0xff);
        at += 4096;
    }
    let mut perm = std::fs::metadata(&m).expect("md").permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&m, perm).expect("chmod");
    std::fs::write(&m, &b).expect("write");
    let root = dir.path().to_string_lossy().into_owned();
    let o = salvor(&["--root", &root, "images"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("could not be read"));
    let info = salvor_ok(&["--root", &root, "info"], 0);
    assert!(info.contains("meta.db") && info.contains("page "), "{info}");
    let o = salvor(&["--root", &root, "--containerd-root", "/nope", "images"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a containerd root"));
}

/// A host with Docker's graphdriver store and a Kubernetes containerd at once (the
/// overlay2 fixture at var/lib/docker, the CRI node's var/lib/containerd and etc beside
/// it): both listed in one table, each row with its engine and namespace.
#[test]
fn a_host_with_docker_and_containerd_lists_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dr = dir.path().join("var/lib/docker");
    std::fs::create_dir_all(&dr).expect("mkdir");
    crate::common::untar_zst(
        &repo().join("fixtures/engine/overlay2/data-root.tar.zst"),
        &dr,
        true,
    );
    crate::common::untar_zst(
        &repo().join("fixtures/engine/containerd-cri/host-root.tar.zst"),
        dir.path(),
        true,
    );
    let root = dir.path().to_string_lossy().into_owned();
    let out = salvor_ok(&["--root", &root, "images"], 0);
    let engines: BTreeSet<(String, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].to_string(), w[1].to_string())
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("docker", "-"),
        ("containerd", "k8s.io"),
        ("containerd", "default"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(engines, want, "{out}");
    // Every one of Docker's images with its id, from the graphdriver store.
    let out = salvor_ok(&["--root", &root, "images", "-a"], 0);
    let ids =
        std::fs::read_to_string(repo().join("fixtures/engine/overlay2/expected/image-ids.txt"))
            .expect("image ids");
    assert!(ids.lines().count() > 3);
    for id in ids.lines() {
        let short = &id.trim_start_matches("sha256:")[..12];
        assert!(out.contains(short), "{short} not in\n{out}");
    }
    let info = salvor_ok(&["--root", &root, "info"], 0);
    assert!(info.contains("Stores:          3"), "{info}");
    // Containers of both, the pods of the node.
    let out = salvor_ok(&["--root", &root, "containers"], 0);
    assert!(out.lines().any(|l| l.starts_with("docker ")), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("containerd   k8s.io")),
        "{out}"
    );
    let pods = salvor_ok(&["--root", &root, "pods", "--json"], 0);
    assert!(pods.contains("web-0"), "{pods}");
}

/// `--platform`: a multi-platform image resolves to the platform asked (the `default`
/// namespace imported every platform of salvor/multi:1).
#[test]
fn platform_picks_the_manifest_of_an_index() {
    let a = cri_archive_of(&repo().join("fixtures/engine/containerd-cri"));
    let arch = |p: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&salvor_ok(
            &[
                "--root",
                &a,
                "--namespace",
                "default",
                "--platform",
                p,
                "inspect",
                "salvor/multi:1",
            ],
            0,
        ))
        .expect("json");
        v[0].clone()
    };
    let amd = arch("linux/amd64");
    let arm = arch("linux/arm64");
    assert_eq!(amd["Architecture"], "amd64", "{amd}");
    assert_eq!(arm["Architecture"], "arm64", "{arm}");
    // The id is the index's either way, as docker and ctr show it.
    assert_eq!(amd["Id"], arm["Id"]);
    salvor_ok(
        &[
            "-q",
            "--root",
            &a,
            "--namespace",
            "default",
            "--platform",
            "linux/arm64",
            "verify",
            "salvor/multi:1",
        ],
        0,
    );
}
