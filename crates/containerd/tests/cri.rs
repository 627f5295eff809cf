//! A Kubernetes-like node made with containerd 1.7.24 through the real CRI API
//! (fixtures/engine/containerd-cri): the `k8s.io` namespace's containers read from the
//! committed host-root archive — their state against the CRI's own ContainerStatus answers
//! (`expected/cri/container-<id>.json`, `pods.json`), their log files against the archive's
//! listing, their log lines against the files' bytes decoded here — then the same host with
//! hostile CRI files (garbage, huge and FIFO status files, symlinks out of `/var/log/pods`,
//! malformed log lines, a FIFO and a corrupt gzip among the log files).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_containerd::{open_all, ContainerdStore, StoreOptions};
use salvor_model::{ContainerRecord, ContainerStore, LogLine, LogStream};
use salvor_oci::Time;
use salvor_source::Source;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/engine/containerd-cri")
}

fn expected(p: &str) -> PathBuf {
    fixture().join("expected").join(p)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

fn ids() -> BTreeMap<String, String> {
    std::fs::read_to_string(expected("ids.env"))
        .expect("ids.env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const POD_DIR: &str = "var/log/pods/shop_web-0_6f1c2b5e-0d4a-4c7e-9b3f-2a8d5e7c9a01";

/// The `k8s.io` store of the evidence at `path` (the archive, or a directory).
fn k8s(path: &Path) -> ContainerdStore {
    let src: Arc<dyn Source> = Arc::from(salvor_source::open_evidence(path).expect("evidence"));
    let o = open_all(src, &StoreOptions::default());
    o.stores
        .into_iter()
        .find(|s| s.identity().namespace.as_deref() == Some("k8s.io"))
        .expect("k8s.io store")
}

fn archive() -> PathBuf {
    fixture().join("host-root.tar.zst")
}

fn by_id(cs: &[ContainerRecord]) -> BTreeMap<String, ContainerRecord> {
    cs.iter().map(|c| (c.id.clone(), c.clone())).collect()
}

/// Nanoseconds since the epoch of an RFC 3339 text.
fn nanos(t: &str) -> i128 {
    let t = Time::parse(t).unwrap_or_else(|| panic!("not RFC 3339: {t}"));
    i128::from(t.unix()) * 1_000_000_000 + i128::from(t.nanos())
}

/// The CRI's ContainerStatus of every app container, by id.
fn cri_statuses() -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(expected("cri")).expect("cri") {
        let p = e.expect("entry").path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("container-") {
            let v = json(&p);
            out.insert(
                v["status"]["id"].as_str().expect("id").to_string(),
                v["status"].clone(),
            );
        }
    }
    out
}

#[test]
fn states_and_names_are_the_cris() {
    let s = k8s(&archive());
    let cs = by_id(&s.containers().expect("containers"));
    assert!(
        s.container_problems().is_empty(),
        "{:?}",
        s.container_problems()
    );
    let statuses = cri_statuses();
    let listed = json(&expected("cri/containers.json"));
    let pods = json(&expected("cri/pods.json"));
    // Every container the CRI lists, and its sandbox, and nothing else.
    let mut want: Vec<String> = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    want.extend(
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string()),
    );
    want.sort();
    assert_eq!(cs.keys().cloned().collect::<Vec<_>>(), want);
    assert_eq!(statuses.len(), 3);
    for (id, st) in &statuses {
        let c = &cs[id];
        let state = st["state"].as_str().unwrap();
        assert_eq!(state, "CONTAINER_EXITED", "{id}");
        assert_eq!(c.state.status, "exited", "{id}");
        assert!(!c.state.running);
        assert_eq!(c.state.pid, None);
        // protobuf JSON leaves a zero exit code out
        assert_eq!(
            c.state.exit_code,
            Some(st["exit_code"].as_i64().unwrap_or(0)),
            "{id}"
        );
        let cri_ns = |k: &str| st[k].as_str().unwrap().parse::<i128>().unwrap();
        assert_eq!(
            nanos(c.state.started_at.as_deref().unwrap()),
            cri_ns("started_at"),
            "{id}"
        );
        assert_eq!(
            nanos(c.state.finished_at.as_deref().unwrap()),
            cri_ns("finished_at"),
            "{id}"
        );
        assert_eq!(c.name, st["metadata"]["name"].as_str().unwrap(), "{id}");
        assert_eq!(
            c.labels
                .get("io.kubernetes.container.name")
                .map(String::as_str),
            st["labels"]["io.kubernetes.container.name"].as_str()
        );
    }
    // RFC3339Nano as Go writes it: UTC, trailing zeros trimmed.
    let ids = ids();
    let side = &cs[&ids["SIDECAR"]];
    assert_eq!(
        side.state.started_at.as_deref(),
        Some("2026-12-04T18:55:36.290836112Z")
    );
    assert_eq!(side.state.exit_code, Some(137));
    let app0 = &cs[&ids["APP0"]];
    assert_eq!(
        app0.state.finished_at.as_deref(),
        Some("2026-12-04T18:55:36.04318095Z")
    );
    assert_eq!(app0.state.exit_code, Some(0));
    // The sandbox: no state on disk, a dockershim-like name.
    let pod = &pods["items"][0];
    let sb = &cs[&ids["SANDBOX"]];
    assert_eq!(sb.state.status, "unknown");
    assert!(sb.log_paths.is_empty());
    assert_eq!(
        sb.name,
        format!(
            "k8s_POD_{}_{}_{}_{}",
            pod["metadata"]["name"].as_str().unwrap(),
            pod["metadata"]["namespace"].as_str().unwrap(),
            pod["metadata"]["uid"].as_str().unwrap(),
            pod["metadata"]["attempt"].as_u64().unwrap_or(0)
        )
    );
    assert_eq!(
        sb.name,
        "k8s_POD_web-0_shop_6f1c2b5e-0d4a-4c7e-9b3f-2a8d5e7c9a01_0"
    );
    assert!(s
        .container_logs(&ids["SANDBOX"])
        .expect("none")
        .next()
        .is_none());
    // The ctr container of `default` is not the CRI's: left as it was.
    let src: Arc<dyn Source> = Arc::from(salvor_source::open_evidence(&archive()).unwrap());
    let o = open_all(src, &StoreOptions::default());
    let d = o
        .stores
        .iter()
        .find(|s| s.identity().namespace.as_deref() == Some("default"))
        .expect("default");
    let dc = d.containers().expect("containers");
    assert_eq!(dc.len(), 1);
    assert_eq!(
        (dc[0].id.as_str(), dc[0].state.status.as_str()),
        ("ctr-run", "unknown")
    );
    assert!(dc[0].log_paths.is_empty());
    assert!(d.container_problems().is_empty());
}

/// Regular files of the archive under `var/log/pods`, decompressed when gzip'd.
fn log_files() -> BTreeMap<String, Vec<u8>> {
    let f = std::fs::File::open(archive()).expect("fixture");
    let mut ar = tar::Archive::new(zstd::Decoder::new(f).expect("zstd"));
    let mut out = BTreeMap::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").to_string_lossy().into_owned();
        if !p.starts_with("var/log/pods/") || e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let mut b = Vec::new();
        e.read_to_end(&mut b).expect("read");
        if p.ends_with(".gz") {
            let mut d = Vec::new();
            flate2::read::GzDecoder::new(b.as_slice())
                .read_to_end(&mut d)
                .expect("gunzip");
            b = d;
        }
        out.insert(p, b);
    }
    out
}

#[test]
fn log_paths_are_the_files_on_disk() {
    let s = k8s(&archive());
    let cs = by_id(&s.containers().expect("containers"));
    let statuses = cri_statuses();
    let on_disk = log_files();
    let ids = ids();
    for (id, st) in &statuses {
        let c = &cs[id];
        // The current file is the CRI's log_path, inside the evidence.
        let cri = st["log_path"].as_str().unwrap().trim_start_matches('/');
        assert_eq!(c.log_paths[0], Path::new(cri), "{id}");
        // Every file of the archive beside it named after it is listed.
        let mut want: Vec<&String> = on_disk
            .keys()
            .filter(|k| k.as_str() == cri || k.starts_with(&format!("{cri}.")))
            .collect();
        want.sort();
        let mut got: Vec<String> = c
            .log_paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{id}");
    }
    // Current first, then the rotations newest first.
    assert_eq!(
        cs[&ids["SIDECAR"]].log_paths,
        [
            format!("{POD_DIR}/sidecar/0.log"),
            format!("{POD_DIR}/sidecar/0.log.20261204-185538"),
            format!("{POD_DIR}/sidecar/0.log.20261204-185537.gz"),
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        cs[&ids["APP1"]].log_paths,
        [PathBuf::from(format!("{POD_DIR}/app/1.log"))]
    );
}

/// The CRI log files decoded here, oldest first: (time, stream, bytes, file, offset) with
/// `P` fragments joined up to the `F` of their stream.
fn decoded(files: &[PathBuf], bytes: &BTreeMap<String, Vec<u8>>) -> Vec<LogLine> {
    let mut out = Vec::new();
    let mut pending: BTreeMap<&str, LogLine> = BTreeMap::new();
    for f in files {
        let b = &bytes[&f.to_string_lossy().into_owned()];
        let mut off = 0u64;
        for raw in b.split_inclusive(|&c| c == b'\n') {
            let line = raw.strip_suffix(b"\n").unwrap();
            let parts: Vec<&[u8]> = line.splitn(4, |&c| c == b' ').collect();
            let t = Time::parse(std::str::from_utf8(parts[0]).unwrap()).unwrap();
            let stream = std::str::from_utf8(parts[1]).unwrap();
            let l = pending.entry(stream).or_insert_with(|| LogLine {
                time: Some(salvor_source::Timestamp {
                    sec: t.unix(),
                    nsec: t.nanos(),
                }),
                stream: if stream == "stdout" {
                    LogStream::Stdout
                } else {
                    LogStream::Stderr
                },
                line: Vec::new(),
                file: f.clone(),
                offset: off,
            });
            l.line.extend_from_slice(parts[3]);
            if parts[2] == b"F" {
                let mut l = pending.remove(stream).unwrap();
                l.line.push(b'\n');
                out.push(l);
            }
            off += raw.len() as u64;
        }
    }
    out.extend(pending.into_values());
    out
}

#[test]
fn log_lines_are_the_files_decoded() {
    let s = k8s(&archive());
    let cs = by_id(&s.containers().expect("containers"));
    let bytes = log_files();
    let ids = ids();
    let mut total = 0;
    for key in ["APP0", "APP1", "SIDECAR"] {
        let c = &cs[&ids[key]];
        let got: Vec<LogLine> = s
            .container_logs(&c.id)
            .expect("logs")
            .map(|r| r.expect("line"))
            .collect();
        let oldest_first: Vec<PathBuf> = c.log_paths.iter().rev().cloned().collect();
        assert_eq!(got, decoded(&oldest_first, &bytes), "{key}");
        // Nothing lost or added: the messages are the files' fourth fields.
        total += got.len();
    }
    assert_eq!(total, 6 + 2 + 11 - 1); // app/0.log's P+F make one line
                                       // app/0.log: the 20000-byte line whole (16384 P + 3616 F), the last words without
                                       // newline (a lone P), stderr's line where containerd wrote it.
    let app0: Vec<LogLine> = s
        .container_logs(&ids["APP0"][..12])
        .expect("a prefix names it")
        .map(|r| r.expect("line"))
        .collect();
    let text: Vec<Vec<u8>> = app0.iter().map(|l| l.line.clone()).collect();
    let mut xs = vec![b'x'; 20000];
    xs.push(b'\n');
    assert_eq!(
        text,
        vec![
            b"app starting\n".to_vec(),
            b"app: to stderr\n".to_vec(),
            xs,
            b"app: done\n".to_vec(),
            b"app: last words without newline".to_vec(),
        ]
    );
    assert_eq!(app0[1].stream, LogStream::Stderr);
    let big = &app0[2];
    assert_eq!((big.offset, big.line.len()), (53 + 54, 20001)); // after two lines
    assert_eq!(
        big.time,
        Some(salvor_source::Timestamp {
            sec: 1796410536,
            nsec: 41094869
        })
    );
    // The sidecar: the gzip'd rotation first, then the plain one, then the live file.
    let side: Vec<LogLine> = s
        .container_logs(&ids["SIDECAR"])
        .expect("logs")
        .map(|r| r.expect("line"))
        .collect();
    let files: Vec<String> = side
        .iter()
        .map(|l| l.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        [
            "0.log.20261204-185537.gz",
            "0.log.20261204-185537.gz",
            "0.log.20261204-185537.gz",
            "0.log.20261204-185537.gz",
            "0.log.20261204-185538",
            "0.log.20261204-185538",
            "0.log.20261204-185538",
            "0.log",
            "0.log",
            "0.log",
            "0.log"
        ]
    );
    assert_eq!(side[0].line, b"sidecar up, arch amd64\n");
    assert_eq!(side[10].line, b"sidecar: all batches written\n");
    assert!(s.container_logs("ffffffff").is_err());
}

// ---- hostile hosts ----

/// The fixture's host unpacked into `dir` (snapshot trees left out: they hold whiteout
/// devices), `change` applied to each regular file (`None`: left out).
fn unpacked(dir: &Path, change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> PathBuf {
    let root = dir.join("host");
    let f = std::fs::File::open(archive()).expect("fixture");
    let mut ar = tar::Archive::new(zstd::Decoder::new(f).expect("zstd"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").to_string_lossy().into_owned();
        if p.contains("io.containerd.snapshotter.v1.overlayfs/snapshots/") {
            continue;
        }
        let out = root.join(&p);
        match e.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&out).expect("mkdir"),
            tar::EntryType::Regular => {
                let mut b = Vec::new();
                e.read_to_end(&mut b).expect("read");
                if let Some(b) = change(&p, b) {
                    std::fs::create_dir_all(out.parent().unwrap()).expect("mkdir");
                    std::fs::write(&out, b).expect("write");
                }
            }
            tar::EntryType::Symlink => {
                let t = e.link_name().expect("link").expect("target").into_owned();
                std::fs::create_dir_all(out.parent().unwrap()).expect("mkdir");
                std::os::unix::fs::symlink(t, &out).expect("symlink");
            }
            _ => {}
        }
    }
    root
}

fn status_path(id: &str) -> String {
    format!("var/lib/containerd/io.containerd.grpc.v1.cri/containers/{id}/status")
}

fn mkfifo(p: &Path) {
    let _ = std::fs::remove_file(p);
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo");
    assert!(ok.success());
}

#[test]
fn unpacked_host_reads_the_same() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = unpacked(d.path(), |_, b| Some(b));
    let dir = k8s(&root);
    let tar = k8s(&archive());
    assert_eq!(dir.containers().unwrap(), tar.containers().unwrap());
    assert!(
        dir.container_problems().is_empty(),
        "{:?}",
        dir.container_problems()
    );
    for c in tar.containers().unwrap() {
        let a: Vec<LogLine> = dir
            .container_logs(&c.id)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let b: Vec<LogLine> = tar
            .container_logs(&c.id)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(a, b);
    }
}

#[test]
fn bad_status_files_are_problems_naming_them() {
    let ids = ids();
    let d = tempfile::tempdir().expect("tempdir");
    let (app0, app1) = (status_path(&ids["APP0"]), status_path(&ids["APP1"]));
    let root = unpacked(d.path(), |p, b| {
        if p == app0 {
            Some(b"\x00\xffgarbage{".to_vec())
        } else if p == app1 {
            // valid JSON, but far beyond the limit
            let mut big = b"{\"Version\":\"v1\",\"Message\":\"".to_vec();
            big.extend(vec![b'a'; 1 << 20]);
            big.extend_from_slice(b"\"}");
            Some(big)
        } else {
            Some(b)
        }
    });
    let side = status_path(&ids["SIDECAR"]);
    mkfifo(&root.join(&side));
    let s = k8s(&root);
    let cs = by_id(&s.containers().expect("containers"));
    for key in ["APP0", "APP1", "SIDECAR"] {
        let c = &cs[&ids[key]];
        assert_eq!(c.state.status, "unknown", "{key}");
        assert_eq!(c.state.exit_code, None);
        assert_eq!(c.state.started_at, None);
        // The logs are still found.
        assert!(!c.log_paths.is_empty(), "{key}");
    }
    let probs = s.container_problems();
    let about = |p: &str| {
        probs
            .iter()
            .find(|x| x.path == Path::new(p))
            .unwrap_or_else(|| panic!("no problem about {p}: {probs:?}"))
            .what
            .clone()
    };
    assert!(about(&app0).contains("not JSON"), "{}", about(&app0));
    assert!(about(&app1).contains("limit"), "{}", about(&app1));
    assert!(about(&side).contains("fifo"), "{}", about(&side));
    assert_eq!(probs.len(), 3, "{probs:?}");
    // And a status file gone: a problem too, the container still listed.
    let d2 = tempfile::tempdir().expect("tempdir");
    let root = unpacked(d2.path(), |p, b| (p != app0).then_some(b));
    let s = k8s(&root);
    let probs = s.container_problems();
    assert!(
        probs
            .iter()
            .any(|x| x.path == Path::new(&app0) && x.what.contains("no CRI status file")),
        "{probs:?}"
    );
    assert_eq!(s.containers().unwrap().len(), 4);
}

#[test]
fn symlinks_out_of_var_log_pods_are_not_followed() {
    let ids = ids();
    let d = tempfile::tempdir().expect("tempdir");
    let root = unpacked(d.path(), |_, b| Some(b));
    // Something worth stealing, inside and outside the evidence.
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let links = root.join("var/log/containers");
    let link = |pod_c: &str, id: &str| links.join(format!("web-0_shop_{pod_c}-{id}.log"));
    let (l0, l1, l2) = (
        link("app", &ids["APP0"]),
        link("app", &ids["APP1"]),
        link("sidecar", &ids["SIDECAR"]),
    );
    for (l, t) in [
        (&l0, "../../../etc/passwd"),
        (&l1, "../../../../../../../../etc/passwd"),
        (&l2, "/etc/passwd"),
    ] {
        std::fs::remove_file(l).unwrap();
        std::os::unix::fs::symlink(t, l).unwrap();
    }
    let s = k8s(&root);
    let cs = s.containers().expect("containers");
    for c in &cs {
        for p in &c.log_paths {
            assert!(p.starts_with(POD_DIR), "{p:?}");
        }
        for l in s.container_logs(&c.id).unwrap() {
            let l = l.unwrap();
            assert!(!l.line.starts_with(b"root:"), "{l:?}");
        }
    }
    let probs = s.container_problems();
    let rel = |p: &Path| p.strip_prefix(&root).unwrap().to_path_buf();
    for (l, what) in [
        (&l0, "outside /var/log/pods"),
        (&l1, "leaves the host root"),
        (&l2, "outside /var/log/pods"),
    ] {
        assert!(
            probs
                .iter()
                .any(|p| p.path == rel(l) && p.what.contains(what)),
            "{l:?}: {probs:?}"
        );
    }
    // A log file that is a symlink itself is never opened either.
    let cur = root.join(POD_DIR).join("app/1.log");
    std::fs::remove_file(&cur).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &cur).unwrap();
    let s = k8s(&root);
    let app1 = by_id(&s.containers().unwrap())[&ids["APP1"]].clone();
    assert!(app1.log_paths.is_empty(), "{:?}", app1.log_paths);
    let items: Vec<_> = s.container_logs(&ids["APP1"]).unwrap().collect();
    assert_eq!(items.len(), 1);
    let e = items[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("app/1.log") && e.contains("symlink"), "{e}");
}

#[test]
fn malformed_log_lines_are_errors_naming_file_and_offset() {
    let ids = ids();
    let d = tempfile::tempdir().expect("tempdir");
    let app1 = format!("{POD_DIR}/app/1.log");
    let gz = format!("{POD_DIR}/sidecar/0.log.20261204-185537.gz");
    // After app/1.log's 116 bytes of good lines: no stream field; garbage; a bad time; a
    // good line.
    let added: [&[u8]; 4] = [
        b"2026-12-04T18:55:37.5Z F no stream here\n",
        b"\xff\xfe\x00 binary junk\n",
        b"18:55:38 stdout F bad time\n",
        b"2026-12-04T18:55:39Z stderr F still read\n",
    ];
    let offsets: Vec<u64> = (0..4)
        .map(|i| 116 + added[..i].iter().map(|a| a.len() as u64).sum::<u64>())
        .collect();
    let root = unpacked(d.path(), |p, mut b| {
        if p == app1 {
            assert_eq!(b.len(), 116);
            for a in added {
                b.extend_from_slice(a);
            }
        } else if p == gz {
            let n = b.len();
            b.truncate(n / 2); // a cut gzip
        }
        Some(b)
    });
    mkfifo(&root.join(POD_DIR).join("sidecar/0.log.20261204-185538"));
    let s = k8s(&root);
    let items: Vec<_> = s.container_logs(&ids["APP1"]).unwrap().collect();
    assert_eq!(items.len(), 6, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap().line,
        b"app restarted (attempt 1)\n"
    );
    assert_eq!(items[1].as_ref().unwrap().line, b"app: idle\n");
    let errs: Vec<String> = items[2..5]
        .iter()
        .map(|r| r.as_ref().unwrap_err().to_string())
        .collect();
    for (e, off) in errs.iter().zip(&offsets) {
        assert!(
            e.contains(&app1) && e.contains(&format!("offset {off}:")),
            "{e}"
        );
    }
    assert!(errs[0].contains("stdout or stderr"), "{}", errs[0]);
    assert!(errs[2].contains("RFC 3339"), "{}", errs[2]);
    let last = items[5].as_ref().unwrap();
    assert_eq!(
        (last.stream, last.line.as_slice(), last.offset),
        (LogStream::Stderr, &b"still read\n"[..], offsets[3])
    );
    // The sidecar: the FIFO said first, the cut gzip ends its file with an error, the live
    // file is still read whole.
    let side = by_id(&s.containers().unwrap())[&ids["SIDECAR"]].clone();
    assert_eq!(side.log_paths.len(), 2, "{:?}", side.log_paths);
    let items: Vec<_> = s.container_logs(&ids["SIDECAR"]).unwrap().collect();
    let first = items[0].as_ref().unwrap_err().to_string();
    assert!(
        first.contains("0.log.20261204-185538") && first.contains("fifo"),
        "{first}"
    );
    assert!(
        items.iter().any(|r| r
            .as_ref()
            .is_err_and(|e| e.to_string().contains("185537.gz"))),
        "{items:?}"
    );
    let live: Vec<&LogLine> = items
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|l| l.file.ends_with("sidecar/0.log"))
        .collect();
    assert_eq!(live.len(), 4);
    assert!(s
        .container_problems()
        .iter()
        .any(|p| p.path.ends_with("sidecar/0.log.20261204-185538") && p.what.contains("fifo")));
}
