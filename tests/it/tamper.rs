//! The tamper report, end to end: each REAL engine fixture (overlay2, fuse-overlayfs, vfs)
//! is unpacked as root with its xattrs and device nodes (`tar --xattrs`), `verify --json`
//! must be clean, then one tampering at a time is applied to a fresh copy and `verify`
//! must name exactly that path, with the right finding kind, and exit 1.
//!
//! A careful tamperer restores the mtime of what they touch (the file, its directory), so
//! the tests do too: the finding must then be the tampering itself, nothing else. On vfs a
//! path inherited by a later layer's snapshot may be reported in that layer too (its copy
//! no longer equals the tampered parent's): same path, never another one.
//!
//! Needs root (device nodes, `trusted.*` xattrs, chown) and GNU tar.

use crate::common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use common::*;
use serde_json::Value;

/// The pristine unpacked fixture, once per driver.
fn pristine(driver: &'static str) -> &'static Path {
    static DIRS: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static Path)>>> = OnceLock::new();
    let m = DIRS.get_or_init(Default::default);
    let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = g.iter().find(|(d, _)| *d == driver) {
        return p;
    }
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let dest = dir.path().join("data-root");
    std::fs::create_dir(&dest).expect("mkdir");
    unpack(driver, &dest);
    let p: &'static Path = Box::leak(dest.into_boxed_path());
    g.push((driver, p));
    p
}

fn unpack(driver: &str, dest: &Path) {
    let f = std::fs::File::open(
        repo()
            .join("fixtures/engine")
            .join(driver)
            .join("data-root.tar.zst"),
    )
    .expect("fixture");
    let mut z = zstd::stream::read::Decoder::new(f).expect("zstd");
    let mut child = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-xpf",
            "-",
            "-C",
        ])
        .arg(dest)
        .stdin(Stdio::piped())
        .spawn()
        .expect("tar");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::copy(&mut z, &mut stdin).expect("feed tar");
        stdin.flush().expect("flush");
    }
    assert!(child.wait().expect("tar").success(), "tar failed");
}

/// A fresh copy of the pristine fixture.
fn fresh(driver: &'static str) -> tempfile::TempDir {
    let src = pristine(driver);
    let t = tempfile::tempdir().expect("tempdir");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(t.path().join("r"))
        .status()
        .expect("cp");
    assert!(ok.success());
    t
}

fn root(t: &tempfile::TempDir) -> PathBuf {
    t.path().join("r")
}

/// (chain id, path, kind) of every finding, content and audit.
fn verify(root: &Path) -> (i32, Vec<(String, String, String)>, Value) {
    let out = salvor(&["--root", &root.to_string_lossy(), "verify", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut f = Vec::new();
    for l in v["layers"].as_array().expect("layers") {
        let c = l["chain_id"].as_str().unwrap_or_default().to_string();
        let lists = [&l["findings"], &l["audit"]["findings"]];
        for list in lists {
            for x in list.as_array().into_iter().flatten() {
                f.push((
                    c.clone(),
                    x["path"].as_str().unwrap_or_default().to_string(),
                    x["kind"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    (out.status.code().unwrap_or(-1), f, v)
}

/// Image layers of the data-root, with their own directory and depth (0 = base).
fn layers(root: &Path) -> Vec<(String, PathBuf, usize)> {
    let src = salvor_source::DirSource::new(root).expect("dir source");
    let store = salvor_docker::Store::open(Arc::new(src)).expect("store");
    let mut out = Vec::new();
    for l in store.layers.values() {
        let dir = match &l.files {
            salvor_docker::LayerFiles::Overlay { diff, .. } => diff.clone(),
            salvor_docker::LayerFiles::Snapshot { root } => root.clone(),
            other => panic!("unexpected layer files {other:?}"),
        };
        let mut depth = 0;
        let mut p = l.parent.clone();
        while let Some(c) = p {
            depth += 1;
            p = store.layers.get(&c).and_then(|l| l.parent.clone());
        }
        out.push((l.chain_id.clone(), root.join(dir), depth));
    }
    out.sort_by_key(|x| x.2);
    out
}

/// The lowest layer whose own directory holds `rel` matching `pred`.
fn layer_with(
    root: &Path,
    rel: &str,
    pred: impl Fn(&std::fs::Metadata, &Path) -> bool,
) -> Option<(String, PathBuf)> {
    layers(root).into_iter().find_map(|(c, dir, _)| {
        let p = dir.join(rel);
        let md = std::fs::symlink_metadata(&p).ok()?;
        pred(&md, &p).then_some((c, dir))
    })
}

fn any(_: &std::fs::Metadata, _: &Path) -> bool {
    true
}

/// Finds `(layer, dir, rel)` for the first path of a layer's tree matching `pred`.
fn find_in_layers(
    root: &Path,
    pred: impl Fn(&std::fs::Metadata, &Path) -> bool,
) -> Option<(String, PathBuf, String)> {
    for (c, dir, _) in layers(root) {
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            let mut ents: Vec<_> = std::fs::read_dir(&d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            ents.sort();
            for p in ents {
                let Ok(md) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if pred(&md, &p) {
                    let rel = p.strip_prefix(&dir).ok()?.to_string_lossy().into_owned();
                    return Some((c, dir, rel));
                }
                if md.is_dir() {
                    stack.push(p);
                }
            }
        }
    }
    None
}

/// Runs `f` on `path`, then puts back the mtimes of `path` and of its directory.
fn keeping_mtimes(path: &Path, f: impl FnOnce()) {
    let parent = path.parent().expect("parent").to_path_buf();
    let pm = std::fs::symlink_metadata(&parent).expect("parent md");
    let own = std::fs::symlink_metadata(path).ok();
    f();
    set_mtime(&parent, pm.mtime(), pm.mtime_nsec());
    if let Some(m) = own {
        if std::fs::symlink_metadata(path).is_ok() {
            set_mtime(path, m.mtime(), m.mtime_nsec());
        }
    }
}

fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

fn run(cmd: &str, args: &[&OsStr]) {
    let ok = Command::new(cmd).args(args).status().expect(cmd);
    assert!(ok.success(), "{cmd} {args:?}");
}

/// Applies `tamper` to a fresh copy and checks that the findings name exactly `rel` (in the
/// layer `chain`, with `kind`; other layers may only repeat the same path, on vfs).
fn check(
    driver: &'static str,
    find: impl Fn(&Path) -> (String, PathBuf, String),
    tamper: impl FnOnce(&Path, &str),
    kind: &str,
    reported_rel: impl Fn(&str) -> String,
) {
    let t = fresh(driver);
    let r = root(&t);
    let (chain, dir, rel) = find(&r);
    tamper(&dir, &rel);
    let want = reported_rel(&rel);
    let (code, findings, v) = verify(&r);
    assert_eq!(
        code, 1,
        "{driver}: verify must fail after tampering {rel}: {v:#}"
    );
    let paths: BTreeSet<&str> = findings.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from([want.as_str()]),
        "{driver}: findings {findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.0 == chain && f.1 == want && f.2 == kind),
        "{driver}: no {kind} for {want} in {chain}: {findings:#?}"
    );
    let status: Vec<&str> = v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["chain_id"] == chain.as_str())
        .filter_map(|l| l["status"].as_str())
        .collect();
    assert!(
        status == ["tampered"] || status == ["mismatch"],
        "{driver}: status {status:?}"
    );
}

fn same(rel: &str) -> String {
    rel.to_string()
}

fn data_file(rel: &'static str) -> impl Fn(&Path) -> (String, PathBuf, String) {
    move |r: &Path| {
        let (c, d) = layer_with(r, rel, any).unwrap_or_else(|| panic!("no layer has {rel}"));
        (c, d, rel.to_string())
    }
}

// ---------------------------------------------------------------- clean

fn clean(driver: &'static str) {
    let (code, findings, v) = verify(pristine(driver));
    assert!(findings.is_empty(), "{driver}: {findings:#?}");
    assert_eq!(code, 0, "{driver}: {v:#}");
    let audited: u64 = v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["audit"]["entries"].as_u64().unwrap_or(0))
        .sum();
    assert!(audited > 40, "{driver}: only {audited} entries audited");
}

// ---------------------------------------------------------------- tamperings

fn content_changed(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || {
                let mut b = std::fs::read(&p).expect("read");
                b[0] ^= 0x20;
                std::fs::write(&p, b).expect("write");
            })
        },
        "content-changed",
        same,
    );
}

fn size_changed(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .expect("open");
                f.write_all(b"more").expect("append");
            })
        },
        "size-changed",
        same,
    );
}

fn setuid(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| run("chmod", &[OsStr::new("u+s"), d.join(rel).as_os_str()]),
        "mode-changed",
        same,
    );
}

fn chown(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| {
            let p = d.join(rel);
            let gid = std::fs::symlink_metadata(&p).expect("md").gid();
            std::os::unix::fs::lchown(&p, Some(4242), Some(gid)).expect("chown");
        },
        "uid-changed",
        same,
    );
}

fn mtime(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| {
            run(
                "touch",
                &[
                    OsStr::new("-d"),
                    OsStr::new("2001-02-03 04:05:06"),
                    d.join(rel).as_os_str(),
                ],
            )
        },
        "mtime-changed",
        same,
    );
}

fn symlink_retarget(driver: &'static str) {
    check(
        driver,
        data_file("data/rel-link"),
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || {
                std::fs::remove_file(&p).expect("rm");
                std::os::unix::fs::symlink("/etc/shadow", &p).expect("symlink");
            })
        },
        "symlink-changed",
        same,
    );
}

fn capability_removed(driver: &'static str) {
    check(
        driver,
        data_file("data/cap-file"),
        |d, rel| {
            xattr::remove(d.join(rel), "security.capability").expect("remove security.capability")
        },
        "capability-changed",
        same,
    );
}

fn capability_added(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| {
            // VFS_CAP_REVISION_2 | effective, cap_net_raw permitted (little-endian).
            let cap = [
                0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ];
            xattr::set(d.join(rel), "security.capability", &cap).expect("set security.capability")
        },
        "capability-changed",
        same,
    );
}

fn file_added(driver: &'static str) {
    check(
        driver,
        |r| {
            let (c, d) = layer_with(r, "data/keep.txt", any).expect("data layer");
            (c, d, "data/planted".to_string())
        },
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || std::fs::write(&p, b"evil").expect("write"))
        },
        "added",
        same,
    );
}

fn file_deleted(driver: &'static str) {
    check(
        driver,
        data_file("data/setuid-file"),
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || std::fs::remove_file(&p).expect("rm"))
        },
        "missing",
        same,
    );
}

fn replaced_by_symlink(driver: &'static str) {
    check(
        driver,
        data_file("data/keep.txt"),
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || {
                std::fs::remove_file(&p).expect("rm");
                std::os::unix::fs::symlink("/etc/passwd", &p).expect("symlink");
            })
        },
        "kind-changed",
        same,
    );
}

/// overlay2: a char 0/0 in an image layer; fuse-overlayfs: a `.wh.` file.
fn whiteout_removed(driver: &'static str) {
    let overlay = driver == "overlay2";
    check(
        driver,
        move |r| {
            find_in_layers(r, |md, p| {
                use std::os::unix::fs::FileTypeExt;
                let name = p.file_name().map(OsStr::as_bytes).unwrap_or_default();
                if overlay {
                    md.file_type().is_char_device() && md.rdev() == 0
                } else {
                    md.is_file() && name.starts_with(b".wh.") && !name.starts_with(b".wh..wh.")
                }
            })
            .expect("a whiteout")
        },
        |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || std::fs::remove_file(&p).expect("rm"))
        },
        "whiteout-removed",
        move |rel| {
            if overlay {
                rel.to_string()
            } else {
                rel.replacen(".wh.", "", 1)
            }
        },
    );
}

fn whiteout_added(driver: &'static str) {
    let overlay = driver != "fuse-overlayfs";
    check(
        driver,
        move |r| {
            let (c, d) = layer_with(r, "data/keep.txt", any).expect("data layer");
            let rel = if overlay {
                "data/ghost"
            } else {
                "data/.wh.ghost"
            };
            (c, d, rel.to_string())
        },
        move |d, rel| {
            let p = d.join(rel);
            keeping_mtimes(&p, || {
                if overlay {
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &p,
                        rustix::fs::FileType::CharacterDevice,
                        rustix::fs::Mode::empty(),
                        0,
                    )
                    .expect("mknod");
                } else {
                    std::fs::write(&p, b"").expect("write");
                }
            })
        },
        "whiteout-added",
        same,
    );
}

/// overlay2: `trusted.overlay.opaque` removed; fuse-overlayfs: the `.wh..wh..opq` file.
fn opaque_removed(driver: &'static str) {
    let overlay = driver == "overlay2";
    check(
        driver,
        move |r| {
            find_in_layers(r, |md, p| {
                if overlay {
                    md.is_dir()
                        && xattr_of(p, "trusted.overlay.opaque").as_deref() == Some(b"y".as_slice())
                } else {
                    p.file_name() == Some(OsStr::new(".wh..wh..opq"))
                }
            })
            .expect("an opaque directory")
        },
        move |d, rel| {
            let p = d.join(rel);
            if overlay {
                xattr::remove(&p, "trusted.overlay.opaque").expect("remove trusted.overlay.opaque");
            } else {
                keeping_mtimes(&p, || std::fs::remove_file(&p).expect("rm"));
            }
        },
        "opaque-removed",
        move |rel| {
            if overlay {
                rel.to_string()
            } else {
                rel.trim_end_matches("/.wh..wh..opq").to_string()
            }
        },
    );
}

fn xattr_of(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn driver_name(lit: &str) -> &'static str {
    match lit.trim_matches('"') {
        "overlay2" => "overlay2",
        "fuse_overlayfs" => "fuse-overlayfs",
        _ => "vfs",
    }
}

mod clean_fixtures {
    #[test]
    fn overlay2() {
        super::clean("overlay2");
    }
    #[test]
    fn fuse_overlayfs() {
        super::clean("fuse-overlayfs");
    }
    #[test]
    fn vfs() {
        super::clean("vfs");
    }
}

macro_rules! cases {
    ($($name:ident: $($driver:ident),*;)*) => {
        $(
            mod $name {
                $(
                    #[test]
                    fn $driver() {
                        super::$name(super::driver_name(stringify!($driver)));
                    }
                )*
            }
        )*
    };
}

cases! {
    content_changed: overlay2, fuse_overlayfs, vfs;
    size_changed: overlay2, fuse_overlayfs, vfs;
    setuid: overlay2, fuse_overlayfs, vfs;
    chown: overlay2, fuse_overlayfs, vfs;
    mtime: overlay2, fuse_overlayfs, vfs;
    symlink_retarget: overlay2, fuse_overlayfs, vfs;
    capability_removed: overlay2, fuse_overlayfs, vfs;
    capability_added: overlay2, fuse_overlayfs, vfs;
    file_added: overlay2, fuse_overlayfs, vfs;
    file_deleted: overlay2, fuse_overlayfs, vfs;
    replaced_by_symlink: overlay2, fuse_overlayfs, vfs;
    whiteout_removed: overlay2, fuse_overlayfs;
    whiteout_added: overlay2, fuse_overlayfs, vfs;
    opaque_removed: overlay2, fuse_overlayfs;
}

// ---------------------------------------------------------------- copies of the evidence
//
// The evidence copied the ways examiners copy it: the verdict must say CONTENT verified
// and METADATA explained (every difference classed `copy-artifact`, the copy named in one
// line above the table), identically from `verify`, `extract` and `report`; and a real
// tampering inside such a copy must still be a finding.

#[derive(Clone, Copy, Debug)]
enum CopyHow {
    /// Every path keeps owner, mtime, xattrs and links; permission bits narrowed by a
    /// umask of 027 (a collector that creates files under its umask).
    Umask027,
    /// `cp -r` under umask 022: no owners (root), new mtimes, no xattrs, no hard links,
    /// setuid/setgid cleared.
    CpR,
    /// `rsync -a`: no xattrs, no hard links.
    Rsync,
    /// `cp -a`, then `chown -R 0:0` (a copy that lost ownership; the kernel clears
    /// setuid/setgid and file capabilities on chown).
    ChownR,
}

fn copied(driver: &'static str, how: CopyHow) -> tempfile::TempDir {
    let src = pristine(driver);
    let t = tempfile::tempdir().expect("tempdir");
    let dest = t.path().join("r");
    match how {
        CopyHow::Umask027 | CopyHow::ChownR => {
            run("cp", &[OsStr::new("-a"), src.as_os_str(), dest.as_os_str()]);
        }
        CopyHow::CpR => {
            let ok = Command::new("sh")
                .arg("-c")
                .arg("umask 022; cp -r \"$0\" \"$1\"")
                .arg(src)
                .arg(&dest)
                .status()
                .expect("sh");
            assert!(ok.success(), "cp -r");
        }
        CopyHow::Rsync => {
            let mut s = src.as_os_str().to_owned();
            s.push("/");
            run("rsync", &[OsStr::new("-a"), &s, dest.as_os_str()]);
        }
    }
    match how {
        CopyHow::Umask027 => apply_umask(&dest, 0o027),
        CopyHow::ChownR => run(
            "chown",
            &[OsStr::new("-R"), OsStr::new("0:0"), dest.as_os_str()],
        ),
        _ => {}
    }
    t
}

/// What creating every path under `umask` would have left: permission bits narrowed
/// (symlinks have none), mtimes untouched (chmod changes only the ctime).
fn apply_umask(dir: &Path, umask: u32) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("md");
            if md.file_type().is_symlink() {
                continue;
            }
            if md.is_dir() {
                stack.push(p.clone());
            }
            let mode = md.permissions().mode() & 0o7777;
            if mode & umask != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & !umask))
                    .expect("chmod");
            }
        }
    }
}

/// Layers of a verify/extract/report JSON, keyed by chain id, reduced to the verdict.
fn verdicts(v: &Value) -> std::collections::BTreeMap<String, Value> {
    v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            (
                l["chain_id"].as_str().unwrap_or_default().to_string(),
                serde_json::json!({
                    "content": l["content"],
                    "metadata": l["metadata"],
                    "status": l["status"],
                    "audit": l["audit"]["findings"],
                }),
            )
        })
        .collect()
}

/// (path, kind, class) of every audit finding of every layer.
fn classed(v: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for l in v["layers"].as_array().expect("layers") {
        for f in l["audit"]["findings"].as_array().into_iter().flatten() {
            out.push((
                l["chain_id"].as_str().unwrap_or_default().to_string(),
                f["path"].as_str().unwrap_or_default().to_string(),
                f["kind"].as_str().unwrap_or_default().to_string(),
                f["class"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------- extract --force

/// Entries of a tar: name (without "./") → (mode, uid, gid, link target, bytes).
type TarEntries = std::collections::BTreeMap<String, (u32, u64, u64, String, Vec<u8>)>;

fn tar_entries(data: &[u8]) -> TarEntries {
    use std::io::Read;
    let mut out = TarEntries::new();
    let mut a = tar::Archive::new(data);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let mut b = Vec::new();
        e.read_to_end(&mut b).expect("read entry");
        out.insert(
            name,
            (
                h.mode().expect("mode") & 0o7777,
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                link,
                b,
            ),
        );
    }
    out
}

/// An image (by id) that holds `chain`, preferring tagged ones.
fn image_with(v: &Value, chain: &str) -> String {
    let imgs = v["images"].as_array().expect("images");
    let holds = |i: &&Value| {
        i["chain_ids"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c == chain))
    };
    let pick = imgs
        .iter()
        .filter(holds)
        .max_by_key(|i| i["tags"].as_array().map_or(0, Vec::len))
        .expect("an image with the layer");
    pick["id"].as_str().expect("id").to_string()
}

/// `extract IMAGE -o`: (exit code, stderr, JSON of `extract --json`), the archive written.
fn extract_verdict(root: &Path, image: &str) -> (i32, String, Value) {
    let t = tempfile::tempdir().expect("tempdir");
    let (a, b) = (t.path().join("a.tar"), t.path().join("b.tar"));
    let r = root.to_string_lossy();
    let human = salvor(&["--root", &r, "extract", image, "-o", &a.to_string_lossy()]);
    let json = salvor(&[
        "--root",
        &r,
        "extract",
        image,
        "-o",
        &b.to_string_lossy(),
        "--json",
    ]);
    assert_eq!(human.status.code(), json.status.code());
    assert!(a.exists() && b.exists(), "extract wrote no archive");
    let v: Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| {
        panic!(
            "extract --json: {e}\n{}",
            String::from_utf8_lossy(&json.stderr)
        )
    });
    (
        human.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&human.stderr).into_owned(),
        v,
    )
}

/// `report`: (exit code, verify.json, summary.md).
fn report_verdict(root: &Path) -> (i32, Value, String) {
    let t = tempfile::tempdir().expect("tempdir");
    let case = t.path().join("case");
    let out = salvor(&[
        "-q",
        "--root",
        &root.to_string_lossy(),
        "report",
        "-o",
        &case.to_string_lossy(),
    ]);
    let v: Value =
        serde_json::from_slice(&std::fs::read(case.join("verify.json")).expect("verify.json"))
            .expect("verify.json is JSON");
    let s = std::fs::read_to_string(case.join("summary.md")).expect("summary.md");
    (out.status.code().unwrap_or(-1), v, s)
}

/// The same verdict for every layer from verify, extract and report.
fn same_verdicts(root: &Path, v: &Value, code: i32, image: &str) {
    let want = verdicts(v);
    let (xcode, xerr, x) = extract_verdict(root, image);
    assert_eq!(xcode, code, "extract exit code\n{xerr}");
    for (c, got) in verdicts(&x) {
        assert_eq!(Some(&got), want.get(&c), "extract's verdict on {c}");
    }
    assert_eq!(x["copy_artifacts"], v["copy_artifacts"]);
    if code == 1 {
        // One line per layer that is not clean, naming the metadata finding.
        assert!(
            xerr.lines()
                .any(|l| l.starts_with("layer ") && l.contains("; metadata FINDINGS (")),
            "extract: no per-layer verdict line in\n{xerr}"
        );
    }
    if let Some(line) = v["copy_artifacts"]["summary"].as_str() {
        assert!(
            xerr.lines().any(|l| l == line),
            "extract: no {line:?} in\n{xerr}"
        );
    }
    let (rcode, rv, summary) = report_verdict(root);
    assert_eq!(rcode, code, "report exit code");
    for (c, got) in verdicts(&rv) {
        if let Some(w) = want.get(&c) {
            assert_eq!(&got, w, "report's verdict on {c}");
        }
    }
    if let Some(line) = v["copy_artifacts"]["summary"].as_str() {
        assert!(
            summary.contains("Note: this looks like a copy"),
            "{summary}"
        );
        assert!(!line.is_empty());
    }
}

/// A copy, untampered: content verified everywhere, metadata explained, exit 0 from
/// every command, the copy named above the table.
fn copy_is_explained(driver: &'static str, how: CopyHow, names: &str) {
    let t = copied(driver, how);
    let r = root(&t);
    let (code, _, v) = verify(&r);
    assert_eq!(code, 0, "{driver} {how:?}: {v:#}");
    let layers = v["layers"].as_array().expect("layers");
    assert!(
        layers.iter().all(|l| l["content"]["verdict"] == "verified"),
        "{v:#}"
    );
    assert!(
        layers.iter().all(|l| matches!(
            l["metadata"]["verdict"].as_str(),
            Some("clean" | "explained")
        )),
        "{v:#}"
    );
    assert!(
        layers
            .iter()
            .any(|l| l["metadata"]["verdict"] == "explained"),
        "{driver} {how:?}: a copy with nothing to explain? {v:#}"
    );
    let f = classed(&v);
    assert!(!f.is_empty());
    assert!(f.iter().all(|x| x.3 == "copy-artifact"), "{f:#?}");
    let line = v["copy_artifacts"]["summary"]
        .as_str()
        .expect("summary line");
    assert!(line.starts_with("this looks like a copy "), "{line}");
    assert!(line.contains(names), "{driver} {how:?}: {line}");
    let human = salvor(&["--root", &r.to_string_lossy(), "verify"]);
    let out = String::from_utf8_lossy(&human.stdout);
    assert_eq!(out.lines().next(), Some(line), "{out}");
    assert!(out.contains("CONTENT") && out.contains("METADATA") && out.contains("explained ("));
    let chain = layers[0]["chain_id"].as_str().expect("chain").to_string();
    same_verdicts(&r, &v, 0, &image_with(&v, &chain));
}

/// A copy with one real tampering: that one finding stays a finding (class `finding`),
/// every command exits 1; the copy's artifacts are still explained.
fn copy_tampered(
    driver: &'static str,
    how: CopyHow,
    tamper: impl FnOnce(&Path, &str),
    kind: &str,
    content: bool,
) {
    let t = copied(driver, how);
    let r = root(&t);
    let rel = "data/keep.txt";
    let (chain, dir) = layer_with(&r, rel, any).expect("data layer");
    tamper(&dir, rel);
    let (code, findings, v) = verify(&r);
    assert_eq!(code, 1, "{driver} {how:?}: {v:#}");
    assert!(
        findings
            .iter()
            .any(|f| f.0 == chain && f.1 == rel && f.2 == kind),
        "{driver} {how:?}: no {kind} for {rel}: {findings:#?}"
    );
    let unexplained: Vec<_> = classed(&v)
        .into_iter()
        .filter(|f| f.3 != "copy-artifact")
        .collect();
    let layer = v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["chain_id"] == chain.as_str())
        .expect("layer");
    if content {
        assert_eq!(layer["content"]["verdict"], "mismatch", "{layer:#}");
        // vfs: a later snapshot inherits the file and sees its size changed too.
        assert!(unexplained.iter().all(|f| f.1 == rel), "{unexplained:#?}");
    } else {
        assert_eq!(layer["content"]["verdict"], "verified", "{layer:#}");
        assert_eq!(layer["metadata"]["verdict"], "findings", "{layer:#}");
        assert!(
            !unexplained.is_empty() && unexplained.iter().all(|f| f.1 == rel && f.2 == kind),
            "{driver} {how:?}: {unexplained:#?}"
        );
        // extract still exports a content-verified layer, and says the same.
        same_verdicts(&r, &v, 1, &image_with(&v, &chain));
    }
    assert!(v["copy_artifacts"]["summary"].is_string(), "{v:#}");
}

fn umask_copy(driver: &'static str) {
    // vfs has no group- or world-writable path: only the 005 of the umask shows.
    let want = if driver == "vfs" {
        "made with umask 005"
    } else {
        "made with umask 027"
    };
    copy_is_explained(driver, CopyHow::Umask027, want);
}

fn cp_r_copy(driver: &'static str) {
    copy_is_explained(driver, CopyHow::CpR, "did not keep mtimes");
}

fn rsync_copy(driver: &'static str) {
    copy_is_explained(driver, CopyHow::Rsync, "did not keep extended attributes");
}

fn chown_copy(driver: &'static str) {
    copy_is_explained(driver, CopyHow::ChownR, "cleared setuid/setgid bits");
}

fn touch_after_chown(driver: &'static str) {
    copy_tampered(
        driver,
        CopyHow::ChownR,
        |d, rel| run("touch", &[d.join(rel).as_os_str()]),
        "mtime-changed",
        false,
    );
}

fn setuid_in_umask_copy(driver: &'static str) {
    copy_tampered(
        driver,
        CopyHow::Umask027,
        |d, rel| run("chmod", &[OsStr::new("u+s"), d.join(rel).as_os_str()]),
        "mode-changed",
        false,
    );
}

fn append(d: &Path, rel: &str) {
    let p = d.join(rel);
    keeping_mtimes(&p, || {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open");
        f.write_all(b"!").expect("append");
    })
}

fn byte_in_cp_r_copy(driver: &'static str) {
    copy_tampered(driver, CopyHow::CpR, append, "size-changed", true);
}

fn byte_in_rsync_copy(driver: &'static str) {
    copy_tampered(driver, CopyHow::Rsync, append, "size-changed", true);
}

/// The issue's case: `chown -R` of ONE layer plus a touch is not a copy (the other layers
/// keep their owners): the owner changes and the touch are findings.
fn chown_one_layer(driver: &'static str) {
    let t = fresh(driver);
    let r = root(&t);
    let (chain, dir) = layer_with(&r, "data/keep.txt", any).expect("data layer");
    run(
        "chown",
        &[OsStr::new("-R"), OsStr::new("0:0"), dir.as_os_str()],
    );
    run("touch", &[dir.join("data/keep.txt").as_os_str()]);
    let (code, findings, v) = verify(&r);
    assert_eq!(code, 1, "{v:#}");
    let mine: Vec<_> = classed(&v).into_iter().filter(|f| f.0 == chain).collect();
    for kind in ["uid-changed", "mtime-changed"] {
        assert!(
            mine.iter()
                .any(|f| f.1 == "data/keep.txt" && f.2 == kind && f.3 == "finding"),
            "{driver}: no {kind} finding: {findings:#?}"
        );
    }
}

cases! {
    umask_copy: overlay2, fuse_overlayfs, vfs;
    cp_r_copy: overlay2, fuse_overlayfs, vfs;
    chown_copy: overlay2, fuse_overlayfs, vfs;
    touch_after_chown: overlay2, fuse_overlayfs, vfs;
    setuid_in_umask_copy: overlay2, fuse_overlayfs, vfs;
    byte_in_cp_r_copy: overlay2, fuse_overlayfs, vfs;
    chown_one_layer: overlay2, fuse_overlayfs;
}

/// `cases!` for the tests that copy with rsync (not part of a bare toolchain).
macro_rules! rsync_cases {
    ($($name:ident: $($driver:ident),*;)*) => {
        $(
            mod $name {
                $(
                    #[test]
                    #[ignore = "needs rsync: copies the data-root with rsync; CI runs it"]
                    fn $driver() {
                        super::$name(super::driver_name(stringify!($driver)));
                    }
                )*
            }
        )*
    };
}

rsync_cases! {
    rsync_copy: overlay2, fuse_overlayfs, vfs;
    byte_in_rsync_copy: overlay2, fuse_overlayfs, vfs;
}

/// The base layer (it holds etc/passwd) of a fresh copy, tampered in every way an as-found
/// export must carry: a byte appended, a byte flipped, a mode and an owner changed, a
/// symlink retargeted, a file deleted, a file planted. Returns (copy, chain id, base dir).
fn tampered_base(driver: &'static str) -> (tempfile::TempDir, String, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let t = fresh(driver);
    let (chain, dir) = layer_with(&root(&t), "etc/passwd", any).expect("a layer has etc/passwd");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("etc/passwd"))
        .expect("open passwd");
    f.write_all(b"X").expect("append");
    let g = dir.join("etc/group");
    let mut b = std::fs::read(&g).expect("read group");
    b[0] ^= 0x20;
    std::fs::write(&g, b).expect("write group");
    let cap = dir.join("etc/capcopy");
    std::fs::set_permissions(&cap, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::lchown(&cap, Some(1234), Some(4321)).expect("chown");
    std::fs::remove_file(dir.join("bin/false")).expect("rm");
    std::fs::remove_file(dir.join("bin/cat")).expect("rm");
    std::os::unix::fs::symlink("/evil", dir.join("bin/cat")).expect("ln");
    std::fs::write(dir.join("etc/planted.txt"), b"planted\n").expect("plant");
    (t, chain, dir)
}

/// An image (by id) that has the layer `chain`.
fn image_on(root: &Path, chain: &str) -> String {
    let out = salvor(&["--root", &root.to_string_lossy(), "images", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("images --json");
    let src = salvor_source::DirSource::new(root).expect("dir source");
    let store = salvor_docker::Store::open(Arc::new(src)).expect("store");
    v.as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .find(|id| {
            store
                .find_image(id)
                .is_ok_and(|i| i.chain_ids.iter().any(|c| c == chain))
        })
        .expect("an image on the base layer")
        .to_string()
}

/// `extract --force` of a tampered layer: the archive holds the layer as the disk holds it
/// now (the appended byte, the flipped byte, the new mode, owner and link target, the planted
/// file, no deleted file), under its own digest, which the image config claims; the manifest,
/// `salvor-forced.json` and `--json` mark it FORCED with the original diff_id beside it.
fn forced_as_found(driver: &'static str) {
    let (t, chain, dir) = tampered_base(driver);
    let r = root(&t);
    let image = image_on(&r, &chain);
    let out_tar = t.path().join("forced.tar");
    let rs = r.to_string_lossy().into_owned();
    let os = out_tar.to_string_lossy().into_owned();
    let no = salvor(&["--root", &rs, "extract", &image, "-o", &os]);
    assert_ne!(
        no.status.code(),
        Some(0),
        "{driver}: without --force it is refused"
    );
    assert!(
        !out_tar.exists(),
        "{driver}: nothing written without --force"
    );
    let out = salvor(&[
        "--root", &rs, "extract", &image, "-o", &os, "--force", "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{driver}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("extract --json");
    let forced = j["forced_layers"].as_array().expect("forced_layers");
    let f = forced
        .iter()
        .find(|f| f["chain_id"] == chain.as_str())
        .expect("the base layer is forced");
    assert_eq!(f["status"], "FORCED");
    let original = f["original_diff_id"]
        .as_str()
        .expect("original")
        .to_string();
    let new = f["diff_id"].as_str().expect("new diff_id").to_string();
    assert_ne!(original, new);
    assert_eq!(
        f["verify"]["as_found"],
        new.as_str(),
        "{driver}: verify's as-found digest"
    );
    // verify --json says the same: not verified, and what the disk holds hashes to `new`.
    let (code, _, v) = verify(&r);
    assert_eq!(code, 1);
    let l = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["chain_id"] == chain.as_str())
        .expect("the base layer is verified");
    assert_ne!(l["status"], "verified");
    assert_eq!(l["as_found"], new.as_str(), "{driver}: {l:#}");

    let files = tar_entries(&std::fs::read(&out_tar).expect("read archive"));
    let blob = &files[&format!("blobs/sha256/{}", &new[7..])].4;
    assert_eq!(sha256_hex(blob), new, "{driver}: blob named by its digest");
    let layer = tar_entries(blob);
    let passwd = &layer["etc/passwd"].4;
    assert_eq!(
        passwd.last(),
        Some(&b'X'),
        "{driver}: the appended byte is there"
    );
    let group = &layer["etc/group"].4;
    assert_eq!(
        std::fs::read(dir.join("etc/group")).expect("group"),
        *group,
        "{driver}: the flipped byte is there"
    );
    let cap = &layer["etc/capcopy"];
    assert_eq!(
        (cap.0, cap.1, cap.2),
        (0o600, 1234, 4321),
        "{driver}: mode and owner"
    );
    assert_eq!(layer["bin/cat"].3, "/evil", "{driver}: link target");
    assert!(
        !layer.contains_key("bin/false"),
        "{driver}: deleted file absent"
    );
    assert_eq!(
        layer["etc/planted.txt"].4, b"planted\n",
        "{driver}: planted file"
    );

    // The config claims the new digest; the image id is the config's digest.
    let manifest: Value = serde_json::from_slice(&files["manifest.json"].4).expect("manifest");
    let cfg_path = manifest[0]["Config"].as_str().expect("Config");
    let cfg: Value = serde_json::from_slice(&files[cfg_path].4).expect("config");
    let ids: Vec<&str> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ids.contains(&new.as_str()) && !ids.contains(&original.as_str()),
        "{ids:?}"
    );
    assert_eq!(
        format!("sha256:{}", &cfg_path["blobs/sha256/".len()..]),
        sha256_hex(&files[cfg_path].4)
    );
    // The OCI manifest marks the layer FORCED with the original diff_id.
    let index: Value = serde_json::from_slice(&files["index.json"].4).expect("index");
    let m = index["manifests"][0]["digest"].as_str().expect("digest");
    let oci: Value =
        serde_json::from_slice(&files[&format!("blobs/sha256/{}", &m[7..])].4).expect("oci");
    let desc = oci["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .find(|l| l["digest"] == new.as_str())
        .expect("descriptor of the forced layer");
    assert_eq!(desc["annotations"]["io.salvor.forced"], "as-found");
    assert_eq!(
        desc["annotations"]["io.salvor.forced.original-diff-id"],
        original.as_str()
    );
    let marker: Value =
        serde_json::from_slice(&files["salvor-forced.json"].4).expect("salvor-forced.json");
    // Sorted by new digest (vfs: the child snapshot is forced too, against the tampered
    // parent); the base layer's entry names both digests.
    let entry = marker["forced_layers"]
        .as_array()
        .expect("forced_layers")
        .iter()
        .find(|e| e["original_diff_id"] == original.as_str())
        .expect("the base layer in salvor-forced.json");
    assert_eq!(entry["diff_id"], new.as_str());
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Whiteouts as on disk: a whiteout removed from a layer is not in its as-found tar, one
/// added is (overlay2: char 0/0 devices; fuse-overlayfs image layers: `.wh.` files).
fn forced_whiteouts(driver: &'static str) {
    use std::os::unix::fs::FileTypeExt;
    let overlay = driver == "overlay2";
    let t = fresh(driver);
    let r = root(&t);
    let (chain, dir, rel) = find_in_layers(&r, |md, p| {
        let name = p.file_name().map(OsStr::as_bytes).unwrap_or_default();
        if overlay {
            md.file_type().is_char_device() && md.rdev() == 0
        } else {
            md.is_file() && name.starts_with(b".wh.") && !name.starts_with(b".wh..wh.")
        }
    })
    .expect("a whiteout");
    std::fs::remove_file(dir.join(&rel)).expect("rm whiteout");
    let parent = Path::new(&rel).parent().expect("parent").to_path_buf();
    if overlay {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join(&parent).join("ghost"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .expect("mknod");
    } else {
        std::fs::write(dir.join(&parent).join(".wh.ghost"), b"").expect("write");
    }
    let image = image_on(&r, &chain);
    let out_tar = t.path().join("forced.tar");
    let out = salvor(&[
        "--root",
        &r.to_string_lossy(),
        "extract",
        &image,
        "-o",
        &out_tar.to_string_lossy(),
        "--force",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{driver}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("json");
    let new = j["forced_layers"]
        .as_array()
        .expect("forced")
        .iter()
        .find(|f| f["chain_id"] == chain.as_str())
        .and_then(|f| f["diff_id"].as_str())
        .expect("the layer is forced")
        .to_string();
    let files = tar_entries(&std::fs::read(&out_tar).expect("read"));
    let layer = tar_entries(&files[&format!("blobs/sha256/{}", &new[7..])].4);
    let removed = if overlay {
        let base = Path::new(&rel)
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        parent.join(format!(".wh.{base}"))
    } else {
        PathBuf::from(&rel)
    };
    let removed = removed.to_string_lossy().into_owned();
    let added = parent.join(".wh.ghost").to_string_lossy().into_owned();
    assert!(
        !layer.contains_key(&removed),
        "{driver}: {removed} still there: {:?}",
        layer.keys()
    );
    assert!(
        layer.contains_key(&added),
        "{driver}: {added} missing: {:?}",
        layer.keys()
    );
}

mod forced_whiteouts {
    #[test]
    fn overlay2() {
        super::forced_whiteouts("overlay2");
    }
    #[test]
    fn fuse_overlayfs() {
        super::forced_whiteouts("fuse-overlayfs");
    }
}

mod forced {
    #[test]
    fn overlay2() {
        super::forced_as_found("overlay2");
    }
    #[test]
    fn fuse_overlayfs() {
        super::forced_as_found("fuse-overlayfs");
    }
    #[test]
    fn vfs() {
        super::forced_as_found("vfs");
    }

    /// `docker load` accepts the forced archive, and a container started from it sees the
    /// evidence: the appended byte.
    #[test]
    #[ignore = "needs a Docker engine (cargo test -- --include-ignored)"]
    fn docker_load_accepts_it() {
        use std::process::Command;
        let (t, chain, _) = super::tampered_base("overlay2");
        let r = super::root(&t);
        let image = super::image_on(&r, &chain);
        let out_tar = t.path().join("forced.tar");
        let out = super::salvor(&[
            "--root",
            &r.to_string_lossy(),
            "extract",
            &image,
            "-o",
            &out_tar.to_string_lossy(),
            "--force",
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let new_id = j["renamed_images"]
            .as_array()
            .expect("renamed")
            .iter()
            .find(|x| x["original_id"] == image.as_str())
            .and_then(|x| x["id"].as_str())
            .expect("the image got a new id")
            .to_string();
        let load = Command::new("docker")
            .arg("load")
            .arg("-i")
            .arg(&out_tar)
            .output()
            .expect("docker load");
        assert!(
            load.status.success(),
            "docker load: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let run = Command::new("docker")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "/bin/sh",
                &new_id,
                "-c",
            ])
            .arg("tail -c 1 /etc/passwd; cat /etc/planted.txt")
            .output()
            .expect("docker run");
        let _ = Command::new("docker").args(["rmi", "-f", &new_id]).output();
        assert!(
            run.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(run.stdout, b"Xplanted\n");
    }
}

/// Untouched layers written as found are the layers themselves: the entries re-encoded from
/// their recorded headers and the disk give back the exact tar the engine registered (its
/// diff_id), so an as-found export differs from the original only where the disk does.
fn as_found_of_a_clean_layer_is_the_layer(driver: &'static str) {
    let root = pristine(driver);
    let src = salvor_source::DirSource::new(root).expect("dir source");
    let store = salvor_docker::Store::open(Arc::new(src)).expect("store");
    let (mut same, mut total) = (0, 0);
    let mut differ = Vec::new();
    for l in store.layers.values() {
        let Some(diff_id) = &l.diff_id else { continue };
        let mut sink = std::io::sink();
        let r = store
            .write_as_found(l, &salvor_whiteout::TarNames::empty(), &mut sink)
            .expect("as found");
        total += 1;
        if &r.digest == diff_id {
            same += 1;
        } else {
            differ.push((l.chain_id.clone(), r.changes.len()));
        }
        assert!(
            r.changes.is_empty(),
            "{driver}: {}: a clean layer has no as-found changes: {:?}",
            l.chain_id,
            r.changes
        );
    }
    eprintln!("{driver}: {same} of {total} clean layers as found hash to their diff_id; differ: {differ:?}");
    assert_eq!(same, total, "{driver}: {differ:?}");
}

mod clean_as_found {
    #[test]
    fn overlay2() {
        super::as_found_of_a_clean_layer_is_the_layer("overlay2");
    }
    #[test]
    fn fuse_overlayfs() {
        super::as_found_of_a_clean_layer_is_the_layer("fuse-overlayfs");
    }
    #[test]
    fn vfs() {
        super::as_found_of_a_clean_layer_is_the_layer("vfs");
    }
}
