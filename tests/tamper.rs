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

mod common;

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
    let store = salvor_store::Store::open(Arc::new(src)).expect("store");
    let mut out = Vec::new();
    for l in store.layers.values() {
        let dir = match &l.files {
            salvor_store::LayerFiles::Overlay { diff, .. } => diff.clone(),
            salvor_store::LayerFiles::Snapshot { root } => root.clone(),
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
