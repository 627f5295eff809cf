//! Container filesystems against the engine: `salvor diff` vs `docker diff`, `salvor export`
//! vs `docker export` (entry by entry, with offsets: the same bytes), and the offline commit
//! vs `docker commit` (the same layer digest) on a live engine's data-root.

use crate::common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use common::*;
use serde_json::Value;

fn root(fx: &Path) -> String {
    fx.join("data-root.tar.zst").to_string_lossy().into_owned()
}

fn containers(fx: &Path) -> Vec<String> {
    let v: Value = serde_json::from_str(&salvor_ok(
        &["--root", &root(fx), "containers", "--json"],
        0,
    ))
    .expect("json");
    v.as_array()
        .expect("a")
        .iter()
        .map(|c| c["Names"].as_str().expect("Names").to_string())
        .collect()
}

/// The engine prints siblings in Go map order (random per run); compare the lines as a set,
/// and check that every listed path's parent directory comes before it, as the engine does.
#[test]
fn diff_matches_docker_diff() {
    let mut compared = 0;
    for (name, fx) in engine_fixtures() {
        for c in containers(&fx) {
            let expected = fx.join("expected/diff").join(format!("{c}.txt"));
            let theirs: BTreeSet<String> = std::fs::read_to_string(&expected)
                .expect("diff")
                .lines()
                .map(str::to_string)
                .collect();
            let out = salvor_ok(&["--root", &root(&fx), "diff", &c], 0);
            let lines: Vec<&str> = out.lines().collect();
            let mut seen = BTreeSet::new();
            for l in &lines {
                let p = &l[2..];
                let parent = p.rsplit_once('/').map(|(a, _)| a).unwrap_or("");
                assert!(
                    parent.is_empty()
                        || seen.contains(parent)
                        || !theirs.iter().any(|t| &t[2..] == parent),
                    "{name}/{c}: {l} before its parent"
                );
                seen.insert(p.to_string());
            }
            let ours: BTreeSet<String> = lines.iter().map(|s| s.to_string()).collect();
            // fuse-overlayfs c-exit0: the engine's diff leaves out four deletions under a
            // recreated directory although its own export shows them gone (fuse-overlayfs'
            // lossy diff, fixtures/engine/NOTES.md); salvor reports them.
            let known_extra: BTreeSet<String> = if name == "fuse-overlayfs" && c == "c-exit0" {
                [
                    "D /data/opaque/new",
                    "D /data/opaque/old1",
                    "D /data/opaque/old2",
                    "D /data/opaque/olddir",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            } else {
                BTreeSet::new()
            };
            let extra: BTreeSet<String> = ours.difference(&theirs).cloned().collect();
            assert_eq!(
                extra, known_extra,
                "{name}/{c}: lines the engine did not print"
            );
            assert!(
                theirs.is_subset(&ours),
                "{name}/{c}: missing {:?}",
                theirs.difference(&ours).collect::<Vec<_>>()
            );
            compared += 1;
        }
    }
    assert!(compared >= 10, "{compared} containers compared");
}

/// `salvor export` writes what `docker export` of the engine that wrote the data-root wrote
/// (Docker 20.10: the container's names, file-type bits; Docker 26: neither): every header
/// field, every content hash, every offset.
#[test]
fn export_matches_docker_export() {
    let mut entries = 0;
    for (name, fx) in engine_fixtures() {
        for e in std::fs::read_dir(fx.join("expected/export")).expect("export") {
            let p = e.expect("e").path();
            let Some(c) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".headers.jsonl"))
            else {
                continue;
            };
            let theirs: Vec<Value> = std::fs::read_to_string(&p)
                .expect("r")
                .lines()
                .map(|l| serde_json::from_str(l).expect("jsonl"))
                .collect();
            let tmp = tempfile::tempdir().expect("tmp");
            let out = tmp.path().join("rootfs.tar");
            salvor_ok(
                &[
                    "-q",
                    "--root",
                    &root(&fx),
                    "export",
                    c,
                    "-o",
                    &out.to_string_lossy(),
                ],
                0,
            );
            let mut ar = tar::Archive::new(std::fs::File::open(&out).expect("open"));
            let mut i = 0;
            for ent in ar.entries().expect("entries") {
                let mut ent = ent.expect("entry");
                let t = theirs
                    .get(i)
                    .unwrap_or_else(|| panic!("{name}/{c}: more entries than the engine wrote"));
                let h = ent.header().clone();
                let path = String::from_utf8_lossy(&ent.path_bytes()).into_owned();
                let link = ent
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                let mut data = Vec::new();
                ent.read_to_end(&mut data).expect("read");
                use sha2::{Digest, Sha256};
                let ctx = format!("{name}/{c} entry {i} {path}");
                assert_eq!(
                    path.trim_end_matches('/'),
                    t["name"].as_str().expect("name").trim_end_matches('/'),
                    "{ctx}"
                );
                assert_eq!(
                    format!("0o{:o}", h.mode().expect("mode")),
                    t["mode"].as_str().expect("mode"),
                    "{ctx}: mode"
                );
                assert_eq!(
                    h.uid().expect("uid"),
                    t["uid"].as_u64().expect("uid"),
                    "{ctx}: uid"
                );
                assert_eq!(
                    h.gid().expect("gid"),
                    t["gid"].as_u64().expect("gid"),
                    "{ctx}: gid"
                );
                assert_eq!(
                    h.username().ok().flatten().unwrap_or(""),
                    t["uname"].as_str().expect("u"),
                    "{ctx}: uname"
                );
                assert_eq!(
                    h.mtime().expect("mtime"),
                    t["mtime"].as_u64().expect("mtime"),
                    "{ctx}: mtime"
                );
                if let Some(sha) = t["sha256"].as_str() {
                    assert_eq!(hex::encode(Sha256::digest(&data)), sha, "{ctx}: content");
                } else {
                    assert!(data.is_empty(), "{ctx}: data where the engine wrote none");
                }
                assert_eq!(link, t["linkname"].as_str().unwrap_or(""), "{ctx}: link");
                assert_eq!(
                    ent.raw_file_position(),
                    t["offset_data"].as_u64().expect("offset_data"),
                    "{ctx}: data offset"
                );
                i += 1;
            }
            assert_eq!(i, theirs.len(), "{name}/{c}: entry count");
            entries += i;
        }
    }
    assert!(entries > 400, "{entries} entries compared");
}

/// `salvor extract CONTAINER` commits it offline: the archive loads, holds the image's
/// layers plus one new layer, and the new layer's tar has the container's changes.
#[test]
fn extract_container_commits_it() {
    let fx = repo().join("fixtures/engine/overlay2");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("c.tar");
    let v: Value = serde_json::from_str(&salvor_ok(
        &[
            "--root",
            &root(&fx),
            "extract",
            "c-exit0",
            "--tag",
            "offline/c-exit0:1",
            "-o",
            &out.to_string_lossy(),
            "--json",
        ],
        0,
    ))
    .expect("json");
    let committed = &v["committed"][0];
    assert_eq!(committed["tags"], serde_json::json!(["offline/c-exit0:1"]));
    let layer = committed["layer"].as_str().expect("a new layer");
    let mut ar = tar::Archive::new(std::fs::File::open(&out).expect("open"));
    let mut found = None;
    let mut manifest = None;
    for ent in ar.entries().expect("entries") {
        let mut ent = ent.expect("e");
        let p = ent.path().expect("p").to_string_lossy().into_owned();
        if p == format!("blobs/sha256/{}", &layer[7..]) {
            let mut d = Vec::new();
            ent.read_to_end(&mut d).expect("r");
            found = Some(d);
        } else if p == "manifest.json" {
            let mut d = Vec::new();
            ent.read_to_end(&mut d).expect("r");
            manifest = Some(d);
        }
    }
    let manifest: Value = serde_json::from_slice(&manifest.expect("manifest.json")).expect("json");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["offline/c-exit0:1"])
    );
    assert_eq!(
        manifest[0]["Layers"].as_array().expect("layers").len(),
        4,
        "3 image layers + the commit"
    );
    let layer_tar = found.expect("the committed layer blob");
    let names: BTreeSet<String> = tar::Archive::new(&layer_tar[..])
        .entries()
        .expect("e")
        .map(|e| {
            e.expect("e")
                .path()
                .expect("p")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for want in [
        "added.txt",
        "data/keep.txt",
        "data/.wh.hard1",
        "data/opaque/",
        "data/opaque/.wh..wh..opq",
        "data/opaque/recreated",
    ] {
        assert!(
            names.contains(want),
            "{want} missing from the committed layer: {names:?}"
        );
    }
}

/// On a live overlay2 data-root (made by `.ci/run` re-running the fixture scripts, so hard
/// links between the kernel's whiteouts are intact), the offline commit of `c-exit0` has
/// exactly the diff id of the engine's own `docker commit` of it: Docker 20.10 (with the
/// daemon host's user names, given as --passwd/--group since a data-root holds none) and
/// Docker 26 (no names, no file-type bits: what salvor writes by itself for a data-root it
/// finds written by Engine >= 23).
#[test]
#[ignore = "needs fresh engine data-roots from the fixture scripts (cargo test -- --include-ignored)"]
fn offline_commit_equals_docker_commit_on_a_live_data_root() {
    for (fx, host_db) in [("overlay2", true), ("docker26-overlay2", false)] {
        let dr = repo().join("fixtures/work").join(fx).join("data-root");
        assert!(
            dr.join("image").is_dir(),
            "run fixtures/engine/make-{fx}.sh first"
        );
        let r = dr.to_string_lossy().into_owned();
        let images: Value =
            serde_json::from_str(&salvor_ok(&["--root", &r, "images", "--json"], 0)).expect("json");
        let engine_layer = images
            .as_array()
            .expect("a")
            .iter()
            .find(|i| {
                i["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "salvor/committed:1"))
            })
            .and_then(|i| {
                i["diff_ids"]
                    .as_array()
                    .and_then(|d| d.last())
                    .and_then(|d| d.as_str())
            })
            .expect("salvor/committed:1")
            .to_string();
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("c.tar").to_string_lossy().into_owned();
        let mut args = vec!["--root", &r, "extract", "c-exit0", "-o", &out, "--json"];
        if host_db {
            args.extend(["--passwd", "/etc/passwd", "--group", "/etc/group"]);
        }
        let v: Value = serde_json::from_str(&salvor_ok(&args, 0)).expect("json");
        assert_eq!(
            v["committed"][0]["layer"].as_str(),
            Some(engine_layer.as_str()),
            "{fx}: {}",
            v["committed"][0]["headers"]
        );
    }
}

/// `export --with-volumes`: the named volume's files appear at the mount point.
#[test]
fn export_with_volumes_includes_the_volume() {
    let fx = repo().join("fixtures/engine/overlay2");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("x.tar");
    salvor_ok(
        &[
            "-q",
            "--root",
            &root(&fx),
            "export",
            "c-exit0",
            "--with-volumes",
            "-o",
            &out.to_string_lossy(),
        ],
        0,
    );
    let mut found = None;
    for ent in tar::Archive::new(std::fs::File::open(&out).expect("open"))
        .entries()
        .expect("e")
    {
        let mut ent = ent.expect("e");
        if ent.path().expect("p").to_string_lossy() == "vol/file-in-volume" {
            let mut d = String::new();
            ent.read_to_string(&mut d).expect("r");
            found = Some(d);
        }
    }
    assert_eq!(found.as_deref(), Some("vol\n"));
    // Without the flag the mount point is empty, as in `docker export`.
    let plain = tmp.path().join("p.tar");
    salvor_ok(
        &[
            "-q",
            "--root",
            &root(&fx),
            "export",
            "c-exit0",
            "-o",
            &plain.to_string_lossy(),
        ],
        0,
    );
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&plain).expect("open"))
        .entries()
        .expect("e")
        .map(|e| {
            e.expect("e")
                .path()
                .expect("p")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("vol/") && n.len() > 4),
        "{names:?}"
    );
}

/// On a host root, the engine version comes from the host's dpkg database, and `export`
/// writes that engine's headers: Docker 20.10's file-type bits, the image's own
/// `/etc/passwd` names, and — this image has no `/etc/group` — nss-systemd's `root` for
/// gid 0 where the host's nsswitch.conf lists `systemd` (what the 20.10 engine printed for
/// such a container: `root/root`), none where it does not. `--engine-version 26.1.5` gives
/// Docker 26's: permission bits only, no names.
#[test]
fn host_root_engine_version_decides_export_headers() {
    use common::synth::{self, Member};
    let tmp = tempfile::tempdir().expect("tmp");
    let (uid, gid) = {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(tmp.path()).expect("md");
        (md.uid(), md.gid())
    };
    // the layer's files are owned by whoever runs the test: name that uid in the image
    let passwd: &'static [u8] = Box::leak(
        format!("imageuser:x:{uid}:{gid}::/:/bin/sh\n")
            .into_bytes()
            .into_boxed_slice(),
    );
    synth::build(
        tmp.path(),
        &[vec![
            Member::Dir("etc"),
            Member::File("etc/passwd", passwd),
            Member::File("hello", b"hi\n"),
        ]],
    );
    let host = tmp.path();
    std::fs::create_dir_all(host.join("var/lib/dpkg")).expect("mkdir");
    std::fs::write(
        host.join("var/lib/dpkg/status"),
        "Package: docker.io\nStatus: install ok installed\nVersion: 20.10.24+dfsg1-1+deb12u1\n\n",
    )
    .expect("write");
    let r = host.to_string_lossy().into_owned();
    let base = ["-q", "--root", r.as_str(), "--data-root", "/data-root"];
    let outdir = tempfile::tempdir().expect("tmp");
    let run = |extra: &[&str]| -> Vec<(String, u32, String, String)> {
        let out = outdir.path().join("x.tar");
        let _ = std::fs::remove_file(&out);
        let o = out.to_string_lossy().into_owned();
        let mut args = base.to_vec();
        args.extend(extra);
        args.extend(["export", "synth:latest", "-o", &o]);
        salvor_ok(&args, 0);
        tar::Archive::new(std::fs::File::open(&out).expect("open"))
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    h.mode().expect("mode"),
                    h.username().ok().flatten().unwrap_or("").to_string(),
                    h.groupname().ok().flatten().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let mut info = base.to_vec();
    info.extend(["info", "--json"]);
    let v: Value = serde_json::from_str(&salvor_ok(&info, 0)).expect("json");
    assert_eq!(
        v["engine_version"]["version"], "20.10.24+dfsg1-1+deb12u1",
        "{v}"
    );
    assert!(
        v["engine_version"]["found_by"]
            .as_str()
            .is_some_and(|f| f.contains("var/lib/dpkg/status")),
        "{v}"
    );
    let nss_gname = if gid == 0 { "root" } else { "" };
    for (conf, gname) in [
        ("group: files systemd\n", nss_gname),
        ("group: files\n", ""),
    ] {
        std::fs::create_dir_all(host.join("etc")).expect("mkdir");
        std::fs::write(host.join("etc/nsswitch.conf"), conf).expect("write");
        let got = run(&[]);
        let hello = got.iter().find(|e| e.0 == "hello").expect("hello");
        assert_eq!(
            hello.1, 0o100644,
            "{conf}: Docker 20.10's mode has the type bits"
        );
        assert_eq!(hello.2, "imageuser", "{conf}: the image's own passwd");
        assert_eq!(hello.3, gname, "{conf}: gname");
        let etc = got.iter().find(|e| e.0 == "etc/").expect("etc/");
        assert_eq!(etc.1 & 0o170000, 0o040000, "{conf}: directory type bits");
    }
    let got = run(&["--engine-version", "26.1.5"]);
    let hello = got.iter().find(|e| e.0 == "hello").expect("hello");
    assert_eq!(
        (hello.1, hello.2.as_str(), hello.3.as_str()),
        (0o644, "", "")
    );
}

/// Docker's overlay (v1) driver: a container's `upper/` begins as a copy of its `-init`
/// layer's `upper/` (moby's overlay `Create` of a child of a non-root layer), and the
/// engine's naive diff compares the container with the init layer. So the init files the
/// container left alone (`/.dockerenv`, `/proc`, …) are neither in `diff` nor in the
/// offline commit; a rewritten one is `C`, one the container removed (only in the init
/// upper, so removed without a whiteout) is `D`. The docker-explorer corpus has no overlay
/// v1 data (its `overlay` trees are empty), hence this synthetic root.
#[test]
fn overlay_v1_diff_and_commit_leave_the_init_layer_out() {
    use std::fs;
    let tmp = tempfile::tempdir().expect("tmp");
    let b = common::synth::build(
        tmp.path(),
        &[vec![
            common::synth::Member::Dir("etc"),
            common::synth::Member::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            common::synth::Member::File("etc/motd", b"hello\n"),
        ]],
    );
    let r = &b.root;
    // overlay2 layout → overlay v1 layout: image/overlay, overlay/<cache>/root.
    fs::rename(r.join("image/overlay2"), r.join("image/overlay")).expect("mv image");
    fs::create_dir_all(r.join("overlay")).expect("mkdir");
    fs::rename(
        r.join("overlay2").join(&b.cache_ids[0]).join("diff"),
        r.join("overlay").join(&b.cache_ids[0]).join("root"),
    )
    .or_else(|_| {
        fs::create_dir_all(r.join("overlay").join(&b.cache_ids[0]))?;
        fs::rename(
            r.join("overlay2").join(&b.cache_ids[0]).join("diff"),
            r.join("overlay").join(&b.cache_ids[0]).join("root"),
        )
    })
    .expect("mv root");
    fs::remove_dir_all(r.join("overlay2")).expect("rm overlay2");
    let cid = "c".repeat(64);
    let m = "d".repeat(64);
    let set_time = |p: &Path, secs: i64| {
        let t = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .expect("utimensat");
    };
    // The init layer: the files the engine puts into every container.
    let init = r.join("overlay").join(format!("{m}-init"));
    for u in [init.clone(), r.join("overlay").join(&m)] {
        fs::create_dir_all(u.join("work")).expect("work");
        fs::write(u.join("lower-id"), &b.cache_ids[0]).expect("lower-id");
        let up = u.join("upper");
        for d in ["etc", "proc", "sys", "dev"] {
            fs::create_dir_all(up.join(d)).expect("dir");
        }
        for f in [".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            fs::write(up.join(f), b"").expect("init file");
            set_time(&up.join(f), 1_700_000_100);
        }
    }
    // The container's own changes, over its copy of the init files.
    let up = r.join("overlay").join(&m).join("upper");
    fs::write(up.join("etc/hosts"), b"127.0.0.1 localhost\n").expect("hosts");
    set_time(&up.join("etc/hosts"), 1_700_000_200);
    fs::remove_file(up.join("etc/hostname")).expect("rm hostname");
    fs::write(up.join("new.txt"), b"new\n").expect("new");
    let mounts = r.join("image/overlay/layerdb/mounts").join(&cid);
    fs::create_dir_all(&mounts).expect("mounts");
    fs::write(mounts.join("mount-id"), &m).expect("w");
    fs::write(mounts.join("init-id"), format!("{m}-init")).expect("w");
    fs::write(mounts.join("parent"), &b.chain_ids[0]).expect("w");
    let cdir = r.join("containers").join(&cid);
    fs::create_dir_all(&cdir).expect("mkdir");
    fs::write(
        cdir.join("config.v2.json"),
        format!(
            r#"{{"ID":"{cid}","Created":"2024-01-01T00:00:00Z","Path":"sh","Args":[],"State":{{"Status":"exited","ExitCode":0,"FinishedAt":"2024-01-01T00:00:05Z"}},"Config":{{"Image":"synth"}},"Image":"{}","Name":"/v1","Driver":"overlay"}}"#,
            b.image_id
        ),
    )
    .expect("config");
    fs::write(cdir.join("hostconfig.json"), "{}").expect("hostconfig");

    let rs = r.to_string_lossy().into_owned();
    let out = salvor_ok(&["--root", &rs, "diff", "v1"], 0);
    let ours: BTreeSet<&str> = out.lines().collect();
    let want: BTreeSet<&str> = ["C /etc", "C /etc/hosts", "D /etc/hostname", "A /new.txt"]
        .into_iter()
        .collect();
    assert_eq!(ours, want, "diff of the overlay v1 container");

    // The offline commit holds the same changes and nothing of the init layer.
    let layer = tmp.path().join("layer.tar");
    let v: Value = serde_json::from_str(&salvor_ok(
        &[
            "--root",
            &rs,
            "extract",
            "v1",
            "-o",
            &tmp.path().join("c.tar").to_string_lossy(),
            "--json",
        ],
        0,
    ))
    .expect("json");
    let digest = v["committed"][0]["layer"]
        .as_str()
        .expect("a committed layer");
    let mut ar = tar::Archive::new(fs::File::open(tmp.path().join("c.tar")).expect("open"));
    for ent in ar.entries().expect("entries") {
        let mut ent = ent.expect("e");
        if ent.path().expect("p").to_string_lossy() == format!("blobs/sha256/{}", &digest[7..]) {
            let mut d = Vec::new();
            ent.read_to_end(&mut d).expect("r");
            fs::write(&layer, d).expect("w");
        }
    }
    let names: Vec<String> = tar::Archive::new(fs::File::open(&layer).expect("the layer blob"))
        .entries()
        .expect("e")
        .map(|e| {
            e.expect("e")
                .path()
                .expect("p")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["etc/", "etc/.wh.hostname", "etc/hosts", "new.txt"],
        "commit layer of the overlay v1 container"
    );
}
