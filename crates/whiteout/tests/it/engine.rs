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
        let name = v["Name"]
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string();
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

/// The user database of the host the fixture `d` was made on: recorded beside the
/// engine's answers (`expected/daemon-host/`), else this machine's (the older fixtures
/// were made here and recorded none).
fn host_names(d: &str) -> TarNames {
    let rec = fixture(d).join("expected/daemon-host");
    let read = |f: &str| {
        std::fs::read(rec.join(f))
            .or_else(|_| std::fs::read(Path::new("/etc").join(f)))
            .unwrap_or_default()
    };
    TarNames::from_passwd_group(&read("passwd"), &read("group"))
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// The engine fixtures: (directory under fixtures/engine, storage driver, written by
/// Docker >= 23: headers without file-type bits or names).
const FIXTURES: [(&str, &str, bool); 4] = [
    ("overlay2", "overlay2", false),
    ("fuse-overlayfs", "fuse-overlayfs", false),
    ("vfs", "vfs", false),
    ("docker26-overlay2", "overlay2", true),
];

/// The header rules of the engine that wrote fixture `modern` or not, with `names` for
/// Docker 20.10.
fn rules(modern: bool, names: TarNames) -> HeaderRules {
    if modern {
        HeaderRules::engine_23()
    } else {
        HeaderRules::docker_20_10(names)
    }
}

#[test]
fn host_names_agree_with_recorded_headers() {
    let mut checked = 0;
    for (d, _, modern) in FIXTURES {
        if modern {
            continue; // Engine >= 23 writes no names
        }
        let names = host_names(d);
        let dir = fixture(d).join("expected/save/committed-1/layer-headers");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            for h in expected_headers(&p) {
                if h["uname"] == "" && h["name"].as_str().unwrap().contains(".wh.") {
                    continue; // naive-diff whiteouts carry no names
                }
                let uid = h["uid"].as_u64().unwrap() as u32;
                let gid = h["gid"].as_u64().unwrap() as u32;
                assert_eq!(
                    names.user(uid),
                    h["uname"].as_str().unwrap(),
                    "{p:?} uid {uid}"
                );
                assert_eq!(
                    names.group(gid),
                    h["gname"].as_str().unwrap(),
                    "{p:?} gid {gid}"
                );
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
    for (d, drv, _) in FIXTURES {
        let src = TarSource::open(&fixture(d).join("data-root.tar.zst")).unwrap();
        for c in containers(&src, drv) {
            let exp_path = fixture(d).join(format!("expected/diff/{}.txt", c.name));
            let Ok(exp) = std::fs::read_to_string(&exp_path) else {
                continue;
            };
            let exp: Vec<String> = exp.lines().map(String::from).collect();
            let s = stack(drv, &c);
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
            // fuse-overlayfs: the engine (20.10 + fuse-overlayfs 1.10) printed no `D` for
            // the lower children of /data/opaque, which c-exit0 deleted and recreated,
            // although fuse-overlayfs itself hides them (checked by mounting this fixture
            // with fuse-overlayfs 1.10: the container view lists only `recreated`, and the
            // export the engine wrote agrees). This crate reports what the merged view
            // holds; the engine's omission is documented, not reproduced.
            let got: Vec<String> = if drv == "fuse-overlayfs" && c.name == "c-exit0" {
                let extra: Vec<String> = ["new", "old1", "old2", "olddir"]
                    .iter()
                    .map(|n| format!("D /data/opaque/{n}"))
                    .collect();
                for e in &extra {
                    assert!(got.contains(e), "expected the documented extra {e}");
                }
                got.into_iter().filter(|l| !extra.contains(l)).collect()
            } else {
                got
            };
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
    assert_eq!(total, expected_count("diff", ".txt"));
    assert!(failures.is_empty());
}

/// The sha256 `docker save` recorded for the layer file `path` of save `label`.
fn diff_id_of(d: &str, label: &str, path: &str) -> String {
    let l = std::fs::read_to_string(fixture(d).join(format!("expected/save/{label}/layers.txt")))
        .unwrap();
    l.lines()
        .find(|x| x.split(' ').nth(2) == Some(path))
        .map(|x| format!("sha256:{}", x.split(' ').next().unwrap()))
        .unwrap()
}

/// The committed layer is the one of `salvor/committed:1` not shared with its parent:
/// the header file of the layer whose diff_id is the last of the image (`<v1>/layer.tar`
/// in a legacy save, `blobs/sha256/<hex>` in Engine >= 25's).
fn committed_layer_headers(d: &str) -> (String, Vec<serde_json::Value>) {
    let dir = fixture(d).join("expected/save/committed-1");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("files/manifest.json")).unwrap())
            .unwrap();
    let last = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap();
    let h = expected_headers(&dir.join(format!("layer-headers/{}.jsonl", last.replace('/', "_"))));
    (diff_id_of(d, "committed-1", last), h)
}

/// How many containers of the fixtures have an expected `docker diff`/`docker export`.
fn expected_count(sub: &str, suffix: &str) -> usize {
    FIXTURES
        .iter()
        .map(|(d, _, _)| {
            std::fs::read_dir(fixture(d).join("expected").join(sub))
                .map(|rd| {
                    rd.filter(|e| {
                        e.as_ref()
                            .map(|e| e.file_name().to_string_lossy().ends_with(suffix))
                            .unwrap_or(false)
                    })
                    .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// A source that reports two paths as one inode (nlink 2).
#[derive(Debug)]
struct SharedInode<'a> {
    inner: &'a TarSource,
    a: PathBuf,
    b: PathBuf,
}

impl Source for SharedInode<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn metadata(&self, path: &Path) -> salvor_source::Result<salvor_source::Metadata> {
        if path == self.a || path == self.b {
            let mut md = self.inner.metadata(&self.a)?;
            md.nlink = 2;
            return Ok(md);
        }
        self.inner.metadata(path)
    }
    fn read_dir(&self, path: &Path) -> salvor_source::Result<Vec<salvor_source::DirEntry>> {
        self.inner.read_dir(path)
    }
    fn open(&self, path: &Path) -> salvor_source::Result<Box<dyn salvor_source::FileReader>> {
        self.inner.open(path)
    }
    fn read_link(&self, path: &Path) -> salvor_source::Result<PathBuf> {
        self.inner.read_link(path)
    }
    fn xattrs(&self, path: &Path) -> salvor_source::Result<Vec<(std::ffi::OsString, Vec<u8>)>> {
        self.inner.xattrs(path)
    }
}

#[test]
fn docker_commit_overlay2_is_byte_exact() {
    for (d, modern) in [("overlay2", false), ("docker26-overlay2", true)] {
        let drv = "overlay2";
        let src = TarSource::open(&fixture(d).join("data-root.tar.zst")).unwrap();
        let c = containers(&src, drv)
            .into_iter()
            .find(|c| c.name == "c-exit0")
            .unwrap();
        let s = stack(drv, &c);
        // The kernel made c-exit0's two whiteouts as hard links of one inode (overlayfs >=
        // 5.8), which the engine's tar records as a link name on the 2nd whiteout. The
        // fixture's data-root archive stored them as two separate char devices (same mtime
        // to the nanosecond, the inode sharing is lost), so the wrapper restores it.
        let linked = SharedInode {
            inner: &src,
            a: s.upper.join("data/abs-link"),
            b: s.upper.join("data/hard1"),
        };
        let upper = LayerDir::new(&linked, &s.upper, s.style);
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut f = std::io::BufWriter::new(tmp.reopen().unwrap());
        let (digest, size) =
            write_layer_tar(&upper, &rules(modern, host_names(d)), &mut f).unwrap();
        drop(f);
        let (diff_id, exp) = committed_layer_headers(d);
        let got = tarheaders(tmp.path());
        assert_eq!(got.len(), exp.len(), "{d}");
        for (g, e) in got.iter().zip(&exp) {
            assert_eq!(g, e, "{d}");
        }
        eprintln!(
            "{d} commit: {} headers equal, digest {digest} ({size} bytes)",
            got.len()
        );
        assert_eq!(digest, diff_id, "{d}");
        assert_eq!(size, std::fs::metadata(tmp.path()).unwrap().len());
    }
}

#[test]
fn docker_commit_fuse_overlayfs_naive_headers() {
    // fuse-overlayfs commits through the engine's naive diff: whiteouts carry the
    // engine's time.Now(), which cannot be known, so everything but their mtime (and the
    // digest, which depends on it) is compared.
    let (d, drv) = ("fuse-overlayfs", "fuse-overlayfs");
    let src = TarSource::open(&fixture(d).join("data-root.tar.zst")).unwrap();
    let c = containers(&src, drv)
        .into_iter()
        .find(|c| c.name == "c-exit0")
        .unwrap();
    let s = stack(drv, &c);
    let upper = LayerDir::new(&src, &s.upper, s.style);
    let lowers: Vec<LayerDir> = s
        .lowers
        .iter()
        .map(|(p, st)| LayerDir::new(&src, p, *st))
        .collect();
    let (_, exp) = committed_layer_headers(d);
    let wh_time = exp
        .iter()
        .find(|h| h["name"].as_str().unwrap().contains("/.wh."))
        .map(|h| h["mtime"].as_i64().unwrap())
        .unwrap_or(0);
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let mut f = std::io::BufWriter::new(tmp.reopen().unwrap());
    write_naive_layer_tar(
        &upper,
        &lowers,
        &HeaderRules::docker_20_10(host_names(d)),
        wh_time,
        &mut f,
    )
    .unwrap();
    drop(f);
    // The same engine omission as in docker diff: no whiteouts for /data/opaque's lower
    // children (see docker_diff_matches_engine). Ours has them; compare the rest.
    let got: Vec<serde_json::Value> = tarheaders(tmp.path())
        .into_iter()
        .filter(|h| !h["name"].as_str().unwrap().starts_with("data/opaque/.wh."))
        .collect();
    let mut mism = 0;
    let key = |v: &serde_json::Value| {
        let mut v = v.clone();
        let o = v.as_object_mut().unwrap();
        o.remove("offset");
        o.remove("offset_data");
        v
    };
    let (got, exp): (Vec<_>, Vec<_>) =
        (got.iter().map(key).collect(), exp.iter().map(key).collect());
    for (g, e) in got.iter().zip(&exp) {
        let wh = e["name"].as_str().unwrap().contains(".wh.");
        let (mut g, mut e) = (g.clone(), e.clone());
        if wh {
            g.as_object_mut().unwrap().remove("mtime");
            e.as_object_mut().unwrap().remove("mtime");
        }
        if g != e {
            mism += 1;
            eprintln!("ours   {g}\nengine {e}");
        }
    }
    assert_eq!(got.len(), exp.len());
    assert_eq!(mism, 0);
}

#[test]
fn docker_export_matches_engine() {
    let (mut total, mut ok_entries, mut all_entries) = (0, 0, 0);
    let mut failures = Vec::new();
    for (d, drv, modern) in FIXTURES {
        let src = TarSource::open(&fixture(d).join("data-root.tar.zst")).unwrap();
        for c in containers(&src, drv) {
            let exp_path = fixture(d).join(format!("expected/export/{}.headers.jsonl", c.name));
            if !exp_path.exists() {
                continue;
            }
            let exp = expected_headers(&exp_path);
            let s = stack(drv, &c);
            let mut layers = vec![LayerDir::new(&src, &s.upper, s.style)];
            if drv != "vfs" {
                layers.extend(s.lowers.iter().map(|(p, st)| LayerDir::new(&src, p, *st)));
            }
            // Docker 20.10's export runs chrooted in the container (chrootarchive), so
            // names come from the container's own /etc/passwd and /etc/group.
            let pw = read_merged_file(&layers, b"etc/passwd", 1 << 20)
                .unwrap()
                .unwrap_or_default();
            let gr = read_merged_file(&layers, b"etc/group", 1 << 20)
                .unwrap()
                .unwrap_or_default();
            let names = TarNames::from_passwd_group(&pw, &gr);
            let tmp = tempfile::NamedTempFile::new().unwrap();
            let mut f = std::io::BufWriter::new(tmp.reopen().unwrap());
            write_flattened_tar(&layers, &rules(modern, names.clone()), &mut f).unwrap();
            drop(f);
            let got = tarheaders(tmp.path());
            total += 1;
            all_entries += exp.len();
            let mut bad = Vec::new();
            for i in 0..got.len().max(exp.len()) {
                let g = got.get(i).cloned().unwrap_or_default();
                let e = exp.get(i).cloned().unwrap_or_default();
                if g == e {
                    ok_entries += 1;
                } else {
                    bad.push(format!("  #{i}\n  ours   {g}\n  engine {e}"));
                }
            }
            if !bad.is_empty() {
                failures.push(format!(
                    "{d} {}: {} of {} differ\n{}",
                    c.name,
                    bad.len(),
                    exp.len(),
                    bad.iter().take(6).cloned().collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    eprintln!("docker export: {total} containers, {ok_entries}/{all_entries} entries equal");
    for f in &failures {
        eprintln!("{f}");
    }
    assert_eq!(total, expected_count("export", ".headers.jsonl"));
    assert!(failures.is_empty());
}

/// The mounts of a container (`MountPoints` of its config.v2.json) whose data is a named
/// volume inside the data-root: (destination, `volumes/<name>/_data`).
fn volume_mounts(src: &dyn Source, c: &Ctr) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in src.read_dir(Path::new("containers")).unwrap() {
        let id = e.name.to_string_lossy().to_string();
        let cfg = read_str(src, &format!("containers/{id}/config.v2.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        if v["Name"].as_str().unwrap().trim_start_matches('/') != c.name {
            continue;
        }
        for m in v["MountPoints"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            if m["Type"] == "volume" {
                let data = PathBuf::from(format!("volumes/{}/_data", m["Name"].as_str().unwrap()));
                if src.metadata(&data).is_ok() {
                    out.push((m["Destination"].as_str().unwrap().to_string(), data));
                }
            }
        }
    }
    out
}

/// What the tar dump must say about every entry of a directory tree in `src` (the root
/// under `prefix`, its contents below it), in WalkDir order, straight from `Source`.
fn walk_expect(
    src: &dyn Source,
    root: &Path,
    prefix: &str,
    rules: &HeaderRules,
) -> Vec<serde_json::Value> {
    let names = &rules.names;
    use sha2::Digest;
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), prefix.to_string())];
    while let Some((p, name)) = stack.pop() {
        let md = src.metadata(&p).unwrap();
        let (typ, ifmt) = match md.kind {
            salvor_source::FileKind::Dir => ("5", 0o040000),
            salvor_source::FileKind::Regular => ("0", 0o100000),
            salvor_source::FileKind::Symlink => ("2", 0o120000),
            k => panic!("unexpected {k:?} in the volume"),
        };
        let mut e = serde_json::json!({
            "name": name, "type": typ, "mode": format!("0o{:o}", if rules.mode == ModeBits::WithFileType { ifmt } else { 0 } | (md.mode & 0o7777)),
            "uid": md.uid, "gid": md.gid, "uname": names.user(md.uid), "gname": names.group(md.gid),
            "mtime": md.mtime.sec, "size": if md.is_file() { md.size } else { 0 },
        });
        if md.is_file() {
            let data = src.read_limited(&p, 1 << 20).unwrap();
            e["sha256"] = hex::encode(sha2::Sha256::digest(&data)).into();
        }
        out.push(e);
        if md.is_dir() {
            let mut kids: Vec<String> = src
                .read_dir(&p)
                .unwrap()
                .into_iter()
                .map(|d| d.name.to_string_lossy().to_string())
                .collect();
            kids.sort();
            for k in kids.into_iter().rev() {
                stack.push((p.join(&k), format!("{name}/{k}")));
            }
        }
    }
    out
}

#[test]
fn docker_export_with_volume_mounted() {
    let mut checked = 0;
    for (d, drv, modern) in FIXTURES {
        let src = TarSource::open(&fixture(d).join("data-root.tar.zst")).unwrap();
        let Some(c) = containers(&src, drv)
            .into_iter()
            .find(|c| c.name == "c-exit0")
        else {
            continue;
        };
        let vols = volume_mounts(&src, &c);
        if vols.is_empty() {
            eprintln!("{d}: c-exit0 has no named volume in this fixture; skipped");
            continue;
        }
        let exp = expected_headers(&fixture(d).join("expected/export/c-exit0.headers.jsonl"));
        let s = stack(drv, &c);
        let mut layers = vec![LayerDir::new(&src, &s.upper, s.style)];
        if drv != "vfs" {
            layers.extend(s.lowers.iter().map(|(p, st)| LayerDir::new(&src, p, *st)));
        }
        let pw = read_merged_file(&layers, b"etc/passwd", 1 << 20)
            .unwrap()
            .unwrap_or_default();
        let gr = read_merged_file(&layers, b"etc/group", 1 << 20)
            .unwrap()
            .unwrap_or_default();
        let names = TarNames::from_passwd_group(&pw, &gr);

        // Regression: no mounts is still the engine's export, entry for entry.
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut f = std::io::BufWriter::new(tmp.reopen().unwrap());
        write_flattened_tar(&layers, &rules(modern, names.clone()), &mut f).unwrap();
        drop(f);
        assert_eq!(tarheaders(tmp.path()), exp, "{d}: plain export");

        // The mount's style is forced to Snapshot whatever the caller says.
        let mounts: Vec<(&[u8], LayerDir)> = vols
            .iter()
            .map(|(dst, data)| (dst.as_bytes(), LayerDir::new(&src, data, s.style)))
            .collect();
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut f = std::io::BufWriter::new(tmp.reopen().unwrap());
        let n = write_flattened_tar_with_mounts(
            &layers,
            &mounts,
            &rules(modern, names.clone()),
            &mut f,
        )
        .unwrap();
        drop(f);
        assert_eq!(n, std::fs::metadata(tmp.path()).unwrap().len());
        let got = tarheaders(tmp.path());

        let under = |h: &serde_json::Value, dst: &str| {
            let n = h["name"].as_str().unwrap();
            let dst = dst.trim_start_matches('/');
            n == dst || n.starts_with(&format!("{dst}/"))
        };
        let inside = |h: &serde_json::Value| vols.iter().any(|(dst, _)| under(h, dst));
        // Outside the mounts: the engine's listing, entry for entry; offsets after a
        // mount shift by what the mount added.
        let strip = |h: &serde_json::Value| {
            let mut h = h.clone();
            let o = h.as_object_mut().unwrap();
            let off = (
                o.remove("offset").unwrap(),
                o.remove("offset_data").unwrap(),
            );
            (h, off.0.as_i64().unwrap(), off.1.as_i64().unwrap())
        };
        let g_out: Vec<_> = got.iter().filter(|h| !inside(h)).map(strip).collect();
        let e_out: Vec<_> = exp.iter().filter(|h| !inside(h)).map(strip).collect();
        assert_eq!(g_out.len(), e_out.len(), "{d}: entries outside the mounts");
        let mut shifted = 0;
        for (g, e) in g_out.iter().zip(&e_out) {
            assert_eq!(g.0, e.0, "{d}");
            let delta = g.1 - e.1;
            assert_eq!(g.2 - e.2, delta);
            assert!(delta >= 0 && delta % 512 == 0, "{d}: offset shift {delta}");
            shifted += usize::from(delta != 0);
        }
        // Inside each mount: exactly the volume's tree with its on-disk metadata and
        // content, the mount point's header carrying the volume directory's metadata.
        for (dst, data) in &vols {
            let want = walk_expect(
                &src,
                data,
                dst.trim_start_matches('/'),
                &rules(modern, names.clone()),
            );
            let have: Vec<serde_json::Value> = got
                .iter()
                .filter(|h| under(h, dst))
                .map(|h| {
                    let mut h = h.clone();
                    let o = h.as_object_mut().unwrap();
                    for k in [
                        "offset",
                        "offset_data",
                        "magic",
                        "pax",
                        "linkname",
                        "devmajor",
                        "devminor",
                    ] {
                        o.remove(k);
                    }
                    h
                })
                .collect();
            assert_eq!(have, want, "{d}: inside {dst}");
            assert!(have.iter().any(|h| h["name"] == "vol/file-in-volume"));
            eprintln!(
                "{d} c-exit0 + {dst}: {} entries outside equal the engine's ({shifted} shifted), {} inside = the volume",
                g_out.len(),
                have.len()
            );
        }
        checked += 1;
    }
    assert!(checked >= 1);
}
