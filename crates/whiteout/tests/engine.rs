//! The real engine fixtures (Docker 20.10, `fixtures/engine/*`) are the oracle: `docker diff`,
//! the `docker commit` layer and `docker export` of every container, recomputed from the
//! data-root archive and compared with what the engine printed / wrote.
//!
//! Tar outputs are dumped with the same `fixtures/engine/tarheaders.py` that produced
//! `expected/` (python3), so every header field, PAX record, offset and content digest is
//! compared.
//!
//! uname/gname: Docker 20.10 wrote names looked up in the **daemon host's** /etc/passwd and
//! /etc/group. The fixtures were made on this machine, so the tests read this machine's
//! `/etc/passwd` and `/etc/group` (and check that the resulting map agrees with every
//! uid→uname the engine recorded in the expected headers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use salvor_source::{Source, TarSource};
use salvor_whiteout::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(driver: &str) -> PathBuf {
    repo().join("fixtures/engine").join(driver)
}

fn read_str(src: &dyn Source, p: &str) -> Option<String> {
    src.read_limited(Path::new(p), 1 << 20)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

struct Ctr {
    name: String,
    mount_id: String,
    init_id: String,
    /// Image layer cache ids, top first.
    image_cache_ids: Vec<String>,
}

fn containers(src: &dyn Source, driver: &str) -> Vec<Ctr> {
    let mut out = Vec::new();
    for e in src.read_dir(Path::new("containers")).unwrap() {
        let id = e.name.to_string_lossy().to_string();
        let cfg = read_str(src, &format!("containers/{id}/config.v2.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        let name = v["Name"].as_str().unwrap().trim_start_matches('/').to_string();
        let m = format!("image/{driver}/layerdb/mounts/{id}");
        let mount_id = read_str(src, &format!("{m}/mount-id")).unwrap();
        let init_id = read_str(src, &format!("{m}/init-id")).unwrap();
        let mut chain = read_str(src, &format!("{m}/parent"));
        let mut image_cache_ids = Vec::new();
        while let Some(c) = chain.filter(|c| !c.is_empty()) {
            let hexid = c.trim_start_matches("sha256:");
            let d = format!("image/{driver}/layerdb/sha256/{hexid}");
            image_cache_ids.push(read_str(src, &format!("{d}/cache-id")).unwrap());
            chain = read_str(src, &format!("{d}/parent"));
        }
        out.push(Ctr {
            name,
            mount_id,
            init_id,
            image_cache_ids,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

struct Stack {
    upper: PathBuf,
    lowers: Vec<(PathBuf, WhiteoutStyle)>,
    style: WhiteoutStyle,
}

fn stack(driver: &str, c: &Ctr) -> Stack {
    match driver {
        "vfs" => Stack {
            upper: format!("vfs/dir/{}", c.mount_id).into(),
            lowers: vec![(
                format!("vfs/dir/{}", c.init_id).into(),
                WhiteoutStyle::Snapshot,
            )],
            style: WhiteoutStyle::Snapshot,
        },
        d => {
            let st = if d == "overlay2" {
                WhiteoutStyle::Overlay
            } else {
                WhiteoutStyle::FuseOverlayfs
            };
            let mut lowers = vec![(format!("{d}/{}/diff", c.init_id).into(), st)];
            for id in &c.image_cache_ids {
                lowers.push((format!("{d}/{id}/diff").into(), st));
            }
            Stack {
                upper: format!("{d}/{}/diff", c.mount_id).into(),
                lowers,
                style: st,
            }
        }
    }
}

fn host_names() -> TarNames {
    let p = std::fs::read("/etc/passwd").unwrap_or_default();
    let g = std::fs::read("/etc/group").unwrap_or_default();
    TarNames::from_passwd_group(&p, &g)
}

/// Puts a `docker diff` listing into the sibling-sorted form this crate emits (the
/// engine's sibling order comes from Go map iteration and changes run to run): a tree of
/// entries in pre-order, siblings ordered additions/modifications by name, then deletions
/// by name. Also checks the listing has the engine's structure (every entry's parent dir
/// listed before it).
fn canonical(lines: &[String]) -> Vec<String> {
    #[derive(Default)]
    struct T {
        kids: BTreeMap<(bool, Vec<u8>), (String, T)>,
    }
    let mut root = T::default();
    for (i, l) in lines.iter().enumerate() {
        let (k, p) = l.split_at(2);
        let comps: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        let mut t = &mut root;
        for (j, c) in comps.iter().enumerate() {
            let last = j + 1 == comps.len();
            let del = last && k.starts_with('D');
            if !last {
                let key = (false, c.as_bytes().to_vec());
                assert!(
                    t.kids.contains_key(&key),
                    "line {i} {l:?}: parent not listed before it"
                );
                t = &mut t.kids.get_mut(&key).unwrap().1;
            } else {
                t.kids
                    .insert((del, c.as_bytes().to_vec()), (l.clone(), T::default()));
            }
        }
    }
    fn walk(t: &T, out: &mut Vec<String>) {
        for (line, sub) in t.kids.values() {
            out.push(line.clone());
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&root, &mut out);
    out
}

fn tarheaders(tar: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("python3")
        .arg(repo().join("fixtures/engine/tarheaders.py"))
        .arg(tar)
        .output()
        .expect("python3 is needed to dump tar headers like expected/ was made");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected_headers(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const DRIVERS: [&str; 3] = ["overlay2", "fuse-overlayfs", "vfs"];

#[test]
fn host_names_agree_with_recorded_headers() {
    let names = host_names();
    let mut checked = 0;
    for d in DRIVERS {
        let dir = fixture(d).join("expected/export");
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if !p.to_string_lossy().ends_with(".headers.jsonl") {
                continue;
            }
            for h in expected_headers(&p) {
                let uid = h["uid"].as_u64().unwrap() as u32;
                let gid = h["gid"].as_u64().unwrap() as u32;
                assert_eq!(names.user(uid), h["uname"].as_str().unwrap(), "{p:?} uid {uid}");
                assert_eq!(names.group(gid), h["gname"].as_str().unwrap(), "{p:?} gid {gid}");
                checked += 1;
            }
        }
    }
    eprintln!("uname/gname of {checked} recorded headers agree with /etc/passwd, /etc/group");
}

#[test]
fn docker_diff_matches_engine() {
    let (mut total, mut exact, mut canon) = (0, 0, 0);
    let mut failures = Vec::new();
    for d in DRIVERS {
        let src = TarSource::open(&fixture(d).join("data-root.tar.zst")).unwrap();
        for c in containers(&src, d) {
            let exp_path = fixture(d).join(format!("expected/diff/{}.txt", c.name));
            let Ok(exp) = std::fs::read_to_string(&exp_path) else {
                continue;
            };
            let exp: Vec<String> = exp.lines().map(String::from).collect();
            let s = stack(d, &c);
            let upper = LayerDir::new(&src, &s.upper, s.style);
            let lowers: Vec<LayerDir> = s
                .lowers
                .iter()
                .map(|(p, st)| LayerDir::new(&src, p, *st))
                .collect();
            let got: Vec<String> = changes(&upper, &lowers)
                .unwrap()
                .iter()
                .map(|c| c.to_string())
                .collect();
            total += 1;
            if got == exp {
                exact += 1;
            }
            if got == canonical(&exp) {
                canon += 1;
            } else {
                failures.push(format!(
                    "{d} {}:\n  engine: {:?}\n  ours:   {:?}",
                    c.name,
                    canonical(&exp),
                    got
                ));
            }
        }
    }
    eprintln!("docker diff: {total} containers, {canon} match (sibling order normalised), {exact} match in the engine's literal order");
    for f in &failures {
        eprintln!("{f}");
    }
    assert_eq!(total, 10);
    assert!(failures.is_empty());
}
