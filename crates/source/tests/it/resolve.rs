//! resolve_in_root: symlinks followed inside a layer root only, never out of it.
use crate::common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;
use salvor_source::{normalize, resolve_in_root, DirSource, Source, SourceError, TarSource};

#[test]
fn normalize_rules() {
    let n = |s: &str| normalize(Path::new(s));
    assert_eq!(n("/a/./b/").unwrap(), PathBuf::from("a/b"));
    assert_eq!(n("./a").unwrap(), PathBuf::from("a"));
    assert_eq!(n("/").unwrap(), PathBuf::from(""));
    assert_eq!(n("").unwrap(), PathBuf::from(""));
    assert_eq!(n("a//b").unwrap(), PathBuf::from("a/b"));
    for bad in ["..", "../x", "a/../b", "/a/b/.."] {
        assert!(matches!(n(bad), Err(SourceError::Escape { .. })), "{bad}");
    }
}

/// A layer at `layer/` with the classic macOS-style `etc -> /private/etc`, plus traps.
fn build_layer(base: &Path) -> PathBuf {
    let root = base.join("ev");
    let layer = root.join("layer");
    std::fs::create_dir_all(layer.join("private/etc")).unwrap();
    std::fs::write(layer.join("private/etc/passwd"), b"root:x:0:0\n").unwrap();
    std::fs::write(layer.join("private/etc/shadow"), b"layer-shadow\n").unwrap();
    std::fs::write(root.join("outside.txt"), b"outside the layer\n").unwrap();
    symlink("/private/etc", layer.join("etc")).unwrap();
    symlink("../../../../../../etc/shadow", layer.join("up")).unwrap();
    symlink("/etc/shadow", layer.join("hostshadow")).unwrap();
    symlink("loop2", layer.join("loop1")).unwrap();
    symlink("loop1", layer.join("loop2")).unwrap();
    symlink("self/x", layer.join("self")).unwrap();
    symlink("../outside.txt", layer.join("out")).unwrap();
    std::fs::create_dir_all(layer.join("usr/lib")).unwrap();
    symlink("../usr/lib", layer.join("usr/lib64")).unwrap();
    std::fs::write(layer.join("usr/lib/libc.so"), b"libc\n").unwrap();
    root
}

fn tar_of_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "layer/private/etc/passwd", b"root:x:0:0\n", 0o644);
    add_file(&mut b, "layer/private/etc/shadow", b"layer-shadow\n", 0o600);
    add_file(&mut b, "outside.txt", b"outside the layer\n", 0o644);
    for (name, target) in [
        ("layer/etc", "/private/etc"),
        ("layer/up", "../../../../../../etc/shadow"),
        ("layer/hostshadow", "/etc/shadow"),
        ("layer/loop1", "loop2"),
        ("layer/loop2", "loop1"),
        ("layer/self", "self/x"),
        ("layer/out", "../outside.txt"),
        ("layer/usr/lib64", "../usr/lib"),
    ] {
        let mut h = header(tar::EntryType::Symlink, 0o777);
        b.append_link(&mut h, name, target).unwrap();
    }
    add_file(&mut b, "layer/usr/lib/libc.so", b"libc\n", 0o644);
    b.into_inner().unwrap()
}

fn check_resolve(src: &dyn Source) {
    let root = Path::new("layer");
    let r = |p: &str, follow: bool| resolve_in_root(src, root, Path::new(p), follow);
    assert_eq!(
        r("/etc/passwd", true).unwrap(),
        PathBuf::from("layer/private/etc/passwd")
    );
    assert_eq!(
        r("etc/passwd", false).unwrap(),
        PathBuf::from("layer/private/etc/passwd")
    );
    assert_eq!(
        r("/usr/lib64/libc.so", true).unwrap(),
        PathBuf::from("layer/usr/lib/libc.so")
    );
    // The last component is followed only on request.
    assert_eq!(r("/etc", false).unwrap(), PathBuf::from("layer/etc"));
    assert_eq!(r("/etc", true).unwrap(), PathBuf::from("layer/private/etc"));
    // `..` is clamped at the layer root, in the path and in link targets.
    assert_eq!(
        r("/../../../etc/passwd", true).unwrap(),
        PathBuf::from("layer/private/etc/passwd")
    );
    assert_eq!(
        r("/private/../../x", true).unwrap(),
        PathBuf::from("layer/x")
    );
    assert_eq!(
        r("/up", true).unwrap(),
        PathBuf::from("layer/private/etc/shadow")
    );
    assert_eq!(r("/out", true).unwrap(), PathBuf::from("layer/outside.txt"));
    assert!(
        !src.exists(&r("/out", true).unwrap()),
        "outside.txt must not be reachable from the layer"
    );
    // An absolute link to the host's /etc/shadow resolves inside the layer.
    let p = r("/hostshadow", true).unwrap();
    assert_eq!(p, PathBuf::from("layer/private/etc/shadow"));
    assert_eq!(src.read_limited(&p, 100).unwrap(), b"layer-shadow\n");
    assert_eq!(
        r("/hostshadow", false).unwrap(),
        PathBuf::from("layer/hostshadow")
    );
    // Loops are an error, not a hang.
    for l in ["/loop1", "/self", "/loop1/x"] {
        let e = r(l, true).unwrap_err();
        assert!(
            e.to_string().contains("too many levels of symbolic links"),
            "{l}: {e}"
        );
    }
    assert_eq!(r("/loop1", false).unwrap(), PathBuf::from("layer/loop1"));
    // Missing paths resolve to where they would be; files are not directories.
    assert_eq!(
        r("/etc/nope", true).unwrap(),
        PathBuf::from("layer/private/etc/nope")
    );
    assert!(matches!(
        r("/etc/passwd/x", true),
        Err(SourceError::WrongKind { .. })
    ));
    // The root itself.
    assert_eq!(r("/", true).unwrap(), PathBuf::from("layer"));
}

#[test]
fn resolve_in_dir_source() {
    let tmp = scratch();
    let root = build_layer(tmp.path());
    check_resolve(&DirSource::new(&root).unwrap());
}

#[test]
fn resolve_in_tar_source() {
    let tmp = scratch();
    let path = tmp.path().join("layer.tar");
    std::fs::write(&path, tar_of_layer()).unwrap();
    check_resolve(&TarSource::open(&path).unwrap());
}
