//! `salvor timeline` against the real engine fixtures: every file of every container's
//! read-write layer is in the timeline with the times, owner, mode and size the archive's
//! own headers record; whiteouts are deletions; JSON lines round-trip; output is
//! deterministic; `mactime` accepts the bodyfile (when installed).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::{engine_fixtures, salvor_ok};
use salvor_forensic::JsonLine;

fn root(fx: &Path) -> String {
    fx.join("data-root.tar.zst").to_string_lossy().into_owned()
}

/// What the archive says about one member.
#[derive(Debug)]
struct Member {
    mtime: (i64, u32),
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    kind: tar::EntryType,
    rdev: (u32, u32),
}

fn pax_time(v: &str) -> (i64, u32) {
    let (s, f) = v.split_once('.').unwrap_or((v, ""));
    let mut frac = f.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    (s.parse().unwrap(), frac.parse().unwrap())
}

fn archive_members(fx: &Path) -> BTreeMap<String, Member> {
    let f = std::fs::File::open(fx.join("data-root.tar.zst")).unwrap();
    let dec = zstd::Decoder::new(f).unwrap();
    let mut ar = tar::Archive::new(dec);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8_lossy(&e.path_bytes())
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let mut mtime = (h.mtime().unwrap() as i64, 0);
        if let Ok(Some(pax)) = e.pax_extensions() {
            for ext in pax {
                let Ok(ext) = ext else { continue };
                if ext.key() == Ok("mtime") {
                    mtime = pax_time(ext.value().unwrap());
                }
            }
        }
        let mut sink = Vec::new();
        let _ = e.read_to_end(&mut sink);
        out.insert(
            path,
            Member {
                mtime,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                size: h.size().unwrap(),
                kind: h.entry_type(),
                rdev: (
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                ),
            },
        );
    }
    out
}

fn jsonl(out: &str) -> Vec<JsonLine> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn rw_layers_match_the_archive_headers() {
    let mut checked_files = 0;
    let mut whiteouts = 0;
    for (name, fx) in engine_fixtures() {
        let members = archive_members(&fx);
        let out = salvor_ok(
            &["-q", "--root", &root(&fx), "timeline", "--format", "jsonl"],
            0,
        );
        let lines = jsonl(&out);
        // One entry per (scope, evidence path).
        let mut entries: BTreeMap<(String, String), &JsonLine> = BTreeMap::new();
        for l in &lines {
            if let Some(ev) = &l.entry.evidence {
                if l.entry.kind != "event" {
                    entries.insert((l.entry.scope.clone(), ev.clone()), l);
                }
            }
        }
        let scopes: BTreeSet<String> = entries
            .keys()
            .map(|(s, _)| s.clone())
            .filter(|s| s.ends_with(" rw"))
            .collect();
        assert!(
            scopes.len() >= 2,
            "{name}: expected the fixtures' containers, got {scopes:?}"
        );
        for scope in &scopes {
            let root_ev = entries
                .iter()
                .find(|((s, _), l)| s == scope && l.entry.path == "/")
                .map(|((_, ev), _)| ev.clone())
                .unwrap_or_else(|| panic!("{name}: {scope}: no root entry"));
            let want: BTreeSet<String> = members
                .keys()
                .filter(|p| p.starts_with(&format!("{root_ev}/")))
                .cloned()
                .collect();
            let got: BTreeSet<String> = entries
                .keys()
                .filter(|(s, ev)| s == scope && *ev != root_ev)
                .map(|(_, ev)| ev.clone())
                .collect();
            assert_eq!(got, want, "{name}: {scope}: files of {root_ev}");
            for ev in want.iter().chain(std::iter::once(&root_ev)) {
                let m = &members[ev];
                let l = entries[&(scope.clone(), ev.clone())];
                let e = &l.entry;
                let mt = e.mtime.unwrap();
                assert_eq!((mt.sec, mt.nsec), m.mtime, "{name}: {ev}: mtime");
                assert_eq!(e.uid as u64, m.uid, "{name}: {ev}: uid");
                assert_eq!(e.gid as u64, m.gid, "{name}: {ev}: gid");
                if m.kind == tar::EntryType::Regular {
                    assert_eq!(e.size, m.size, "{name}: {ev}: size");
                }
                let perms =
                    salvor_forensic::timeline::ls_mode(salvor_source::FileKind::Regular, m.mode);
                assert_eq!(&e.mode[1..], &perms[1..], "{name}: {ev}: mode");
                let is_whiteout = (m.kind == tar::EntryType::Char
                    && m.rdev == (0, 0)
                    && !ev.ends_with("/.wh..opq"))
                    || (ev.rsplit('/').next().unwrap().starts_with(".wh.")
                        && !ev.ends_with("/.wh..wh..opq")
                        && !ev.ends_with("/.wh..opq"));
                if is_whiteout {
                    whiteouts += 1;
                    assert!(e.deleted, "{name}: {ev}: whiteout not shown deleted");
                    assert_eq!(e.kind, "whiteout");
                    assert!(e.name.contains(" (deleted)"), "{}", e.name);
                    // The deleted path, as the container saw it.
                    let base = ev.rsplit('/').next().unwrap();
                    let shown = base.strip_prefix(".wh.").unwrap_or(base);
                    assert!(e.path.ends_with(&format!("/{shown}")), "{}", e.path);
                } else {
                    assert!(!e.deleted, "{name}: {ev}");
                    let rel = if *ev == root_ev {
                        "/"
                    } else {
                        &ev[root_ev.len()..]
                    };
                    if !ev.ends_with("/.wh..wh..opq") && !ev.ends_with("/.wh..opq") {
                        assert_eq!(e.path, rel, "{name}: {ev}: path as the container saw it");
                    }
                }
                checked_files += 1;
            }
        }
        // The bodyfile has the same entries with the same times.
        let body = salvor_ok(&["-q", "--root", &root(&fx), "timeline"], 0);
        let mut body_by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in body.lines() {
            let f: Vec<&str> = line.split('|').collect();
            assert_eq!(f.len(), 11, "{name}: bodyfile line {line}");
            assert_eq!(f[0], "0");
            let name = f[1].replace("%7C", "|").replace("%25", "%");
            body_by_name.insert(name, f.iter().map(|s| s.to_string()).collect());
        }
        for l in entries.values() {
            let f = body_by_name
                .get(&l.entry.name)
                .unwrap_or_else(|| panic!("{name}: {} not in the bodyfile", l.entry.name));
            let mt = l.entry.mtime.unwrap();
            let want = if mt.nsec == 0 {
                mt.sec.to_string()
            } else {
                format!("{}.{:09}", mt.sec, mt.nsec)
            };
            assert_eq!(f[8], want, "{name}: bodyfile mtime of {}", l.entry.name);
            if l.entry.deleted {
                assert!(f[3].starts_with("w/"), "{:?}", f);
            }
        }
    }
    assert!(checked_files > 50, "checked {checked_files} files");
    assert!(
        whiteouts > 0,
        "no whiteout seen in the fixtures' containers"
    );
}

#[test]
fn jsonl_round_trips_and_is_sorted() {
    for (name, fx) in engine_fixtures() {
        let out = salvor_ok(
            &[
                "-q",
                "--root",
                &root(&fx),
                "timeline",
                "--format",
                "jsonl",
                "--images",
                "--volumes",
                "--logs",
            ],
            0,
        );
        let mut prev: Option<(i64, u32, String, String)> = None;
        let mut events = BTreeSet::new();
        for line in out.lines() {
            let l: JsonLine = serde_json::from_str(line).unwrap();
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                line,
                "{name}: round trip"
            );
            assert_eq!(
                l.time,
                salvor_forensic::timeline::Time {
                    sec: l.sec,
                    nsec: l.nsec
                }
                .rfc3339()
            );
            let key = (l.sec, l.nsec, l.entry.name.clone(), l.macb.clone());
            if let Some(p) = &prev {
                assert!(p <= &key, "{name}: not sorted: {p:?} then {key:?}");
            }
            prev = Some(key);
            if let Some(e) = &l.entry.event {
                events.insert(e.clone());
            }
        }
        for want in [
            "image-created",
            "image-last-updated",
            "image-history",
            "container-created",
            "container-started",
            "container-finished",
            "log-line",
        ] {
            assert!(events.contains(want), "{name}: no {want} event: {events:?}");
        }
    }
}

#[test]
fn deterministic_and_filtered() {
    let (_, fx) = engine_fixtures().into_iter().next().unwrap();
    for fmt in ["bodyfile", "jsonl"] {
        let args = [
            "-q",
            "--root",
            &root(&fx),
            "timeline",
            "--format",
            fmt,
            "--images",
            "--volumes",
            "--logs",
        ];
        assert_eq!(
            salvor_ok(&args, 0),
            salvor_ok(&args, 0),
            "{fmt}: two runs differ"
        );
    }
    let out = salvor_ok(
        &[
            "-q",
            "--root",
            &root(&fx),
            "timeline",
            "--format",
            "jsonl",
            "--container",
            "c-exit3",
        ],
        0,
    );
    let scopes: BTreeSet<String> = jsonl(&out)
        .into_iter()
        .filter(|l| l.entry.scope.starts_with("container"))
        .map(|l| l.entry.scope)
        .collect();
    assert!(!scopes.is_empty());
    assert!(
        scopes.iter().all(|s| s.starts_with("container c-exit3")),
        "{scopes:?}"
    );
}

#[test]
#[ignore = "needs mactime (Debian sleuthkit): the Sleuth Kit's own reader of the bodyfile; CI runs it"]
fn mactime_accepts_the_bodyfile() {
    assert!(
        Command::new("mactime").arg("-h").output().is_ok(),
        "mactime not installed (Debian sleuthkit)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut deleted = 0;
    for (name, fx) in engine_fixtures() {
        let body = salvor_ok(
            &[
                "-q",
                "--root",
                &root(&fx),
                "timeline",
                "--images",
                "--volumes",
                "--logs",
            ],
            0,
        );
        let p = dir.path().join(format!("{name}.body"));
        std::fs::write(&p, &body).unwrap();
        let out = Command::new("mactime")
            .args(["-b", p.to_str().unwrap(), "-d", "-z", "UTC"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: mactime failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().count() > body.lines().count() / 2,
            "{name}: mactime dropped lines"
        );
        deleted += text.matches("(deleted)").count();
        assert!(
            out.stderr.is_empty(),
            "{name}: mactime warnings: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(deleted > 0, "no deletion reached mactime's output");
}
