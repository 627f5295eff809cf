//! Every storage driver's directory layout. The real engine fixtures cover overlay2,
//! fuse-overlayfs and vfs directly; the other drivers store the same things under other
//! names, so their layouts are made here by moving a real engine's files where that driver
//! keeps them, and every layer must still rebuild byte-exact (sha256 == diff_id).
//!
//! * btrfs: `btrfs/subvolumes/<id>` full snapshots (from the vfs fixture's `vfs/dir/<id>`);
//! * zfs: `zfs/graph/<id>` full snapshots (likewise);
//! * overlay (v1): `overlay/<id>/root` full snapshots (likewise);
//! * aufs on the v2 layout: `aufs/diff/<id>` per-layer files (from overlay2's `diff/`);
//! * devicemapper without its pool files: reported, naming the missing thin pool (the
//!   pool itself is tested in tests/devicemapper.rs).

use crate::common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

fn unpack(fixture: &str, dest: &Path) {
    // The `tar` command keeps owners, xattrs (security.capability, trusted.overlay.opaque)
    // and device nodes, so the layer directories are as the engine left them.
    let src = repo()
        .join("fixtures/engine")
        .join(fixture)
        .join("data-root.tar.zst");
    untar_zst(&src, dest, true);
}

fn rename_driver(
    root: &Path,
    from: &str,
    to: &str,
    layer_dir: impl Fn(&str) -> String,
    src_dir: impl Fn(&str) -> String,
) {
    fs::rename(root.join("image").join(from), root.join("image").join(to)).expect("image dir");
    let layerdb = root.join("image").join(to).join("layerdb/sha256");
    let mut moved = 0;
    for e in fs::read_dir(&layerdb).expect("layerdb") {
        let p = e.expect("e").path();
        let Ok(cache) = fs::read_to_string(p.join("cache-id")) else {
            continue;
        };
        let src = root.join(src_dir(&cache));
        let dst = root.join(layer_dir(&cache));
        fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        fs::rename(&src, &dst)
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", src.display(), dst.display()));
        moved += 1;
    }
    assert!(moved >= 2, "moved {moved} layers");
}

fn verify_all(root: &Path, driver: &str) {
    let r = root.to_string_lossy().into_owned();
    let info: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "info", "--json"], 0)).expect("json");
    assert_eq!(info["driver"], driver);
    let v: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "verify", "--json"], 0)).expect("json");
    assert_eq!(v["ok"], true, "{driver}: {v}");
    let n = v["layers"].as_array().expect("layers").len();
    assert!(n >= 2, "{driver}: only {n} layers");
    for l in v["layers"].as_array().expect("layers") {
        assert_eq!(l["status"], "verified", "{driver}: {l}");
    }
}

#[test]
fn btrfs_layout_rebuilds() {
    let tmp = tempfile::tempdir().expect("tmp");
    unpack("vfs", tmp.path());
    rename_driver(
        tmp.path(),
        "vfs",
        "btrfs",
        |c| format!("btrfs/subvolumes/{c}"),
        |c| format!("vfs/dir/{c}"),
    );
    verify_all(tmp.path(), "btrfs");
}

#[test]
fn zfs_layout_rebuilds() {
    let tmp = tempfile::tempdir().expect("tmp");
    unpack("vfs", tmp.path());
    rename_driver(
        tmp.path(),
        "vfs",
        "zfs",
        |c| format!("zfs/graph/{c}"),
        |c| format!("vfs/dir/{c}"),
    );
    verify_all(tmp.path(), "zfs");
}

#[test]
fn overlay_v1_layout_rebuilds() {
    let tmp = tempfile::tempdir().expect("tmp");
    unpack("vfs", tmp.path());
    rename_driver(
        tmp.path(),
        "vfs",
        "overlay",
        |c| format!("overlay/{c}/root"),
        |c| format!("vfs/dir/{c}"),
    );
    verify_all(tmp.path(), "overlay");
}

#[test]
fn aufs_v2_layout_rebuilds() {
    let tmp = tempfile::tempdir().expect("tmp");
    unpack("overlay2", tmp.path());
    rename_driver(
        tmp.path(),
        "overlay2",
        "aufs",
        |c| format!("aufs/diff/{c}"),
        |c| format!("overlay2/{c}/diff"),
    );
    verify_all(tmp.path(), "aufs");
}

#[test]
fn devicemapper_is_reported_not_skipped() {
    let tmp = tempfile::tempdir().expect("tmp");
    unpack("vfs", tmp.path());
    fs::rename(
        tmp.path().join("image/vfs"),
        tmp.path().join("image/devicemapper"),
    )
    .expect("rename");
    let r = tmp.path().to_string_lossy().into_owned();
    let out = salvor(&["--root", &r, "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    for l in v["layers"].as_array().expect("layers") {
        assert_eq!(l["status"], "unrebuildable", "{l}");
        assert!(
            l["error"]
                .as_str()
                .expect("error")
                .contains("devicemapper thin pool"),
            "{l}"
        );
    }
    let tree: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "tree", "--json"], 0)).expect("json");
    for l in tree.as_array().expect("layers") {
        assert_eq!(l["files"]["kind"], "unavailable");
        assert!(
            l["files"]["reason"]
                .as_str()
                .expect("reason")
                .contains("thin pool"),
            "{l}"
        );
    }
}
