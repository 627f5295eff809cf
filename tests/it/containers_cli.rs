//! Containers, logs, volumes against the real engine's answers (fixtures/engine/*/expected)
//! and the docker-explorer corpus.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{engine_fixtures, salvor, salvor_ok, shared};
use serde_json::Value;

fn root(fx: &Path) -> String {
    fx.join("data-root.tar.zst").to_string_lossy().into_owned()
}

fn jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_str()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn containers_match_docker_ps_a() {
    let mut compared = 0;
    for (name, fx) in engine_fixtures() {
        let want = jsonl(&fx.join("expected/ps-a.jsonl"));
        let got: Vec<Value> = serde_json::from_str(&salvor_ok(
            &["--root", &root(&fx), "containers", "--json"],
            0,
        ))
        .expect("json");
        let ids = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|c| c["ID"].as_str().expect("ID").to_string())
                .collect()
        };
        // Same containers, same order (newest first).
        assert_eq!(ids(&got), ids(&want), "{name}: container ids / order");
        for (g, w) in got.iter().zip(&want) {
            for k in [
                "ID",
                "Names",
                "Image",
                "Command",
                "CreatedAt",
                "State",
                "Ports",
                "LocalVolumes",
            ] {
                assert_eq!(g[k], w[k], "{name} {}: {k}", w["Names"]);
                compared += 1;
            }
            for k in ["Labels", "Mounts", "Networks"] {
                assert_eq!(set(&g[k]), set(&w[k]), "{name} {}: {k}", w["Names"]);
                compared += 1;
            }
            // Status: docker's is relative ("Exited (3) 2 seconds ago"); the part before the
            // time must agree.
            let ws = w["Status"].as_str().expect("Status");
            let gs = g["Status"].as_str().expect("Status");
            let head = |s: &str| s.split(" at ").next().unwrap_or(s).to_string();
            let w_head = if ws.starts_with("Exited (") {
                ws[..ws.find(')').expect(")") + 1].to_string()
            } else {
                ws.to_string()
            };
            assert_eq!(head(gs), w_head, "{name} {}: Status", w["Names"]);
            compared += 1;
        }
        // The table has the same rows.
        let table = salvor_ok(&["--root", &root(&fx), "containers"], 0);
        assert_eq!(table.lines().count(), want.len() + 1, "{name}: table rows");
        assert!(
            table.starts_with("ENGINE   CONTAINER ID   IMAGE"),
            "{table}"
        );
        assert!(
            table.lines().skip(1).all(|l| l.starts_with("docker ")),
            "{name}: ENGINE column: {table}"
        );
    }
    eprintln!("ps -a fields compared: {compared}");
    assert!(compared >= 100);
}

const INSPECT_FIELDS: &[&str] = &[
    "Id",
    "Created",
    "Path",
    "Args",
    "State",
    "Image",
    "ResolvConfPath",
    "HostnamePath",
    "HostsPath",
    "LogPath",
    "Name",
    "RestartCount",
    "Driver",
    "Platform",
    "MountLabel",
    "ProcessLabel",
    "AppArmorProfile",
    "ExecIDs",
    "HostConfig",
    "GraphDriver",
    "Mounts",
    "Config",
    "NetworkSettings",
];

#[test]
fn inspect_matches_docker_inspect() {
    let mut compared = 0;
    for (name, fx) in engine_fixtures() {
        let dir = fx.join("expected/container-inspect");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("container-inspect")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: no container-inspect files");
        for f in files {
            let cname = f.file_stem().expect("stem").to_string_lossy().into_owned();
            let want: Value =
                serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("json");
            let want = &want[0];
            // By name, by /name and by short id: the same answer.
            let by_name: Value =
                serde_json::from_str(&salvor_ok(&["--root", &root(&fx), "inspect", &cname], 0))
                    .expect("json");
            let short = &want["Id"].as_str().expect("Id")[..12];
            let by_id: Value =
                serde_json::from_str(&salvor_ok(&["--root", &root(&fx), "inspect", short], 0))
                    .expect("json");
            assert_eq!(by_name, by_id, "{name} {cname}: by name vs by id");
            let got = &by_name[0];
            for k in INSPECT_FIELDS {
                assert_eq!(got[k], want[k], "{name} {cname}: inspect field {k}");
                compared += 1;
            }
        }
    }
    eprintln!("inspect fields compared: {compared}");
    assert!(compared >= 200);
}

#[test]
fn logs_equal_docker_logs_byte_for_byte() {
    let mut compared = 0;
    for (name, fx) in engine_fixtures() {
        let dir = fx.join("expected/logs");
        let mut containers: BTreeSet<String> = BTreeSet::new();
        for e in std::fs::read_dir(&dir).expect("logs dir") {
            let p = e.expect("entry").path();
            let n = p.file_name().expect("name").to_string_lossy().into_owned();
            if let Some((c, _)) = n.split_once('.') {
                containers.insert(c.to_string());
            }
        }
        assert!(!containers.is_empty());
        for c in &containers {
            for (flags, suffix) in [(vec![], ""), (vec!["-t"], "-t")] {
                let mut args = vec!["--root".to_string(), root(&fx), "logs".into(), c.clone()];
                args.extend(flags.iter().map(|s| s.to_string()));
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = salvor(&argv);
                assert_eq!(out.status.code(), Some(0), "{name} {c}: {out:?}");
                let want_out =
                    std::fs::read(dir.join(format!("{c}.stdout{suffix}"))).expect("stdout file");
                let want_err =
                    std::fs::read(dir.join(format!("{c}.stderr{suffix}"))).expect("stderr file");
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&want_out),
                    "{name} {c} {suffix}: stdout"
                );
                assert_eq!(out.stdout, want_out, "{name} {c} {suffix}: stdout bytes");
                // stderr carries only the log's stderr lines (the store notes nothing here).
                assert_eq!(
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&want_err),
                    "{name} {c} {suffix}: stderr"
                );
                compared += 2;
            }
        }
    }
    eprintln!("log streams compared byte for byte: {compared}");
    assert!(compared >= 30);
}

#[test]
fn logs_filters() {
    let fx = &engine_fixtures()
        .into_iter()
        .find(|(n, _)| n == "overlay2")
        .expect("overlay2 fixture")
        .1;
    let r = root(fx);
    // c-exit3: stdout lines at …49.096122341 and …49.097517288, stderr at …49.096649121.
    // The file holds line 1, line 2, oops (in that order): --tail counts entries of the file.
    let out = salvor(&["--root", &r, "logs", "c-exit3", "--tail", "1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = salvor(&["--root", &r, "logs", "c-exit3", "--tail", "2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line 2\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = salvor(&[
        "--root",
        &r,
        "logs",
        "c-exit3",
        "--since",
        "2026-11-22T08:09:49.0965Z",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line 2\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = salvor(&[
        "--root",
        &r,
        "logs",
        "c-exit3",
        "--until",
        "2026-11-22T08:09:49.0965Z",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line 1\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let out = salvor(&["--root", &r, "logs", "c-exit3", "--since", "2100-01-01"]);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let out = salvor(&["--root", &r, "logs", "c-exit3", "--since", "10m"]);
    assert_eq!(out.status.code(), Some(2));
    let out = salvor(&["--root", &r, "logs", "no-such-container"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn volumes_match_docker_volume_ls() {
    let mut compared = 0;
    for (name, fx) in engine_fixtures() {
        let want = jsonl(&fx.join("expected/volume-ls.jsonl"));
        let got: Value =
            serde_json::from_str(&salvor_ok(&["--root", &root(&fx), "volumes", "--json"], 0))
                .expect("json");
        let got = got["Volumes"].as_array().expect("Volumes");
        assert_eq!(got.len(), want.len(), "{name}: volume count");
        let by_name: BTreeMap<&str, &Value> = got
            .iter()
            .map(|v| (v["Name"].as_str().expect("Name"), v))
            .collect();
        for w in &want {
            let vname = w["Name"].as_str().expect("Name");
            let g = by_name
                .get(vname)
                .unwrap_or_else(|| panic!("{name}: volume {vname} missing"));
            for k in ["Name", "Driver", "Scope", "Mountpoint"] {
                assert_eq!(g[k], w[k], "{name} {vname}: {k}");
                compared += 1;
            }
            assert_eq!(set(&w["Labels"]).len(), 0);
            let inspect_path = fx.join(format!("expected/volume-inspect-{vname}.json"));
            if inspect_path.is_file() {
                let wi: Value =
                    serde_json::from_str(&std::fs::read_to_string(&inspect_path).expect("read"))
                        .expect("json");
                for k in [
                    "CreatedAt",
                    "Driver",
                    "Labels",
                    "Mountpoint",
                    "Name",
                    "Options",
                    "Scope",
                ] {
                    assert_eq!(g[k], wi[0][k], "{name} {vname}: inspect {k}");
                    compared += 1;
                }
            }
            // Used by the container that mounts it (ps-a's Mounts column).
            let users: BTreeSet<String> = g["UsedBy"]
                .as_array()
                .expect("UsedBy")
                .iter()
                .map(|u| u["container_name"].as_str().expect("name").to_string())
                .collect();
            let want_users: BTreeSet<String> = jsonl(&fx.join("expected/ps-a.jsonl"))
                .iter()
                .filter(|c| set(&c["Mounts"]).contains(vname))
                .map(|c| c["Names"].as_str().expect("Names").to_string())
                .collect();
            assert_eq!(users, want_users, "{name} {vname}: users");
            compared += 1;
        }
    }
    eprintln!("volume fields compared: {compared}");
}

#[test]
fn docker_explorer_trees_list_their_containers() {
    let corpus = shared().join("corpus/docker-explorer");
    let cases: [(&str, &[(&str, &str)]); 2] = [
        (
            "overlay2.v2.tgz",
            &[
                ("festive_perlman", "running"),
                ("reverent_wing", "created"),
                ("zealous_lalande", "created"),
                ("objective_franklin", "exited"),
                ("mystifying_murdock", "exited"),
            ],
        ),
        (
            "aufs.v1.tgz",
            &[
                ("angry_rosalind", "running"),
                ("kickass_mestorf", "created"),
                ("insane_rosalind", "exited"),
            ],
        ),
    ];
    for (tree, want) in cases {
        let r = corpus.join(tree).to_string_lossy().into_owned();
        let got: Vec<Value> =
            serde_json::from_str(&salvor_ok(&["--root", &r, "containers", "--json"], 0))
                .expect("json");
        let got_pairs: Vec<(String, String)> = got
            .iter()
            .map(|c| {
                (
                    c["Names"].as_str().expect("Names").to_string(),
                    c["State"].as_str().expect("State").to_string(),
                )
            })
            .collect();
        let want_pairs: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got_pairs, want_pairs, "{tree}");
        for c in &got {
            // Every container's read-write layer is located, and its image resolved.
            let d = &c["Salvor"];
            assert!(d["rw_layer"]["files"]["kind"].is_string(), "{tree}: {d}");
            assert_ne!(d["rw_layer"]["files"]["kind"], "unavailable", "{tree}: {d}");
            assert!(
                d["image_id"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("sha256:")),
                "{tree}: {d}"
            );
            assert!(d["rw_layer"]["parent"].as_str().is_some(), "{tree}: {d}");
            // Logs readable.
            let name = c["Names"].as_str().expect("Names");
            let out = salvor(&["--root", &r, "logs", name]);
            assert_eq!(out.status.code(), Some(0), "{tree} {name}: {out:?}");
        }
        // inspect works on a container of a legacy tree too.
        let out = salvor_ok(&["--root", &r, "inspect", want[0].0], 0);
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v[0]["Name"], format!("/{}", want[0].0));
    }
    // A known log line of the aufs tree (a terminal session, escapes kept byte-exact).
    let r = corpus.join("aufs.v1.tgz").to_string_lossy().into_owned();
    let out = salvor(&["--root", &r, "logs", "angry_rosalind"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("touch /tmp/\u{1b}[Jl\u{8}\u{1b}[Jtoto\r\n")
    );
}

#[test]
fn inspect_still_finds_images() {
    let fx = &engine_fixtures()
        .into_iter()
        .find(|(n, _)| n == "overlay2")
        .expect("overlay2")
        .1;
    let out = salvor_ok(&["--root", &root(fx), "inspect", "salvor/base:1.0"], 0);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert!(v[0]["RepoTags"].is_array());
}

/// Runs salvor expecting exit 2; returns stderr.
fn salvor_err(args: &[&str]) -> String {
    let out = salvor(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "salvor {args:?}: {err}");
    err
}

fn fixture(name: &str) -> String {
    root(&common::repo().join("fixtures/engine").join(name))
}

/// Issue 9's ambiguous arguments, on the overlay2 engine fixture: `e` prefixes image
/// e8bc956cc54c and container e61f1776d840 (c-exit0). Every command taking either kind
/// refuses it, listing both with their kinds; commands taking one kind take that one.
#[test]
fn one_resolver_same_answer_for_every_command() {
    let r = fixture("overlay2");
    let img = "sha256:e8bc956cc54ca297d466b5966cada8dec4833fb9acf11837cd786a8815b0e047";
    let con = "e61f1776d840aebfa8ba02166d71fec223551551887b4cff488fe40c2ef4056e";
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("x.tar");
    let out = out.to_str().expect("utf8");
    for args in [
        vec!["inspect", "e"],
        vec!["export", "e", "-o", out],
        vec!["extract", "e", "-o", out],
    ] {
        let mut a = vec!["--root", r.as_str()];
        a.extend(&args);
        let err = salvor_err(&a);
        assert!(
            err.contains("\"e\" is ambiguous")
                && err.contains(&format!("image {img}"))
                && err.contains(&format!("container {con} (c-exit0)")),
            "{args:?}: {err}"
        );
        assert!(!Path::new(out).exists(), "{args:?} wrote output");
    }
    // Several of one kind: 9d prefixes two images.
    let err = salvor_err(&["--root", &r, "inspect", "9d"]);
    assert!(
        err.contains("matches 2 images or containers")
            && err.contains("image sha256:9da4660c028a")
            && err.contains("image sha256:9dbeae5e8669"),
        "{err}"
    );
    let err = salvor_err(&["--root", &r, "history", "9"]);
    assert!(
        err.contains("history: \"9\" is ambiguous: it matches 2 images"),
        "{err}"
    );
    // One-kind commands: `logs e` is c-exit0's log, `history e` the image's history.
    let logs = salvor_ok(&["--root", &r, "logs", "e"], 0);
    assert!(logs.contains("hello from c-exit0"), "{logs}");
    let h: Value = serde_json::from_str(&salvor_ok(&["--root", &r, "history", "e", "--json"], 0))
        .expect("json");
    assert_eq!(h[0]["id"], img);
    // Unique prefix of each kind, full ids, a name and a tag: inspect says which it took.
    for (q, id) in [
        ("e61f", con),
        ("e8bc", img),
        (con, con),
        (img, img),
        (&img[7..], img),
        ("c-exit0", con),
        ("/c-exit0", con),
        (
            "salvor/base:1.0",
            "sha256:c7eb351a0526d5c53b5f73d3ca3699b1b8065ad89762d6e635ebfdb1abff6e2a",
        ),
        (
            "docker.io/salvor/base",
            "sha256:c7eb351a0526d5c53b5f73d3ca3699b1b8065ad89762d6e635ebfdb1abff6e2a",
        ),
    ] {
        let v: Value =
            serde_json::from_str(&salvor_ok(&["--root", &r, "inspect", q], 0)).expect("json");
        assert_eq!(v[0]["Id"], id, "inspect {q}");
    }
}

/// A one-kind command says which kind it looked for, and what the argument matches
/// instead; the vfs fixture: `c` prefixes only image cbc069c50156, `a` only container
/// a54e6d9e4c1c (c-created).
#[test]
fn one_kind_commands_name_the_kind_and_the_other_match() {
    let r = fixture("vfs");
    for cmd in [
        vec!["logs", "c"],
        vec!["diff", "c"],
        vec!["timeline", "--container", "c"],
    ] {
        let mut a = vec!["--root", r.as_str()];
        a.extend(&cmd);
        let err = salvor_err(&a);
        assert!(
            err.contains(
                "no container matches \"c\"; it matches image cbc069c50156 (salvor/small:1)"
            ),
            "{cmd:?}: {err}"
        );
    }
    for cmd in ["history", "verify"] {
        let err = salvor_err(&["--root", &r, cmd, "a"]);
        assert!(
            err.contains(&format!(
                "{cmd}: no image matches \"a\"; it matches container a54e6d9e4c1c (c-created)"
            )),
            "{err}"
        );
    }
    let err = salvor_err(&["--root", &r, "logs", "zz"]);
    assert!(
        err.contains("logs: no container matches \"zz\" (try `salvor containers`)"),
        "{err}"
    );
    // `0` prefixes image 01c1… and container 04e4… (c-exit0): ambiguous where either is taken.
    let err = salvor_err(&["--root", &r, "inspect", "0"]);
    assert!(
        err.contains("image sha256:01c1419ed8cb") && err.contains("container 04e49402d446"),
        "{err}"
    );
    let v: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "inspect", "04"], 0)).expect("json");
    assert_eq!(v[0]["Name"], "/c-exit0");
}
