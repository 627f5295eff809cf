//! `write_flattened_tar_with_mounts` on hand-made directories (`DirSource`): nested
//! mounts, missing mount points, mounts hiding layer contents, hard links per filesystem,
//! hostile mount points, symlinks out of a volume, whiteout-looking names in a volume.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use salvor_source::DirSource;
use salvor_whiteout::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ent {
    name: String,
    typ: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: String,
    data: Vec<u8>,
}

fn entries(bytes: &[u8]) -> Vec<Ent> {
    let mut a = tar::Archive::new(bytes);
    let mut v = Vec::new();
    for en in a.entries().unwrap() {
        let mut en = en.unwrap();
        let h = en.header().clone();
        let name = String::from_utf8_lossy(&en.path_bytes()).into_owned();
        let link = en
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        en.read_to_end(&mut data).unwrap();
        v.push(Ent {
            name,
            typ: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            link,
            data,
        });
    }
    v
}

fn names(v: &[Ent]) -> Vec<&str> {
    v.iter().map(|e| e.name.as_str()).collect()
}

fn get<'a>(v: &'a [Ent], n: &str) -> &'a Ent {
    v.iter()
        .find(|e| e.name == n)
        .unwrap_or_else(|| panic!("{n} not in {:?}", names(v)))
}

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn set_mtime(p: &Path, secs: u64) {
    std::fs::File::open(p)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn export(layers: &[LayerDir], mounts: &[(&[u8], LayerDir)]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = write_flattened_tar_with_mounts(
        layers,
        mounts,
        &HeaderRules::docker_20_10(TarNames::empty()),
        &mut out,
    )
    .unwrap();
    assert_eq!(n, out.len() as u64);
    out
}

/// Evidence layout: `ev/upper`, `ev/lower` (overlay layers), `ev/vols/<name>`.
struct Ev {
    _t: tempfile::TempDir,
    ev: PathBuf,
}

fn evidence() -> Ev {
    let t = tempfile::tempdir().unwrap();
    let ev = t.path().join("evidence");
    for d in ["upper", "lower"] {
        std::fs::create_dir_all(ev.join(d)).unwrap();
    }
    Ev { _t: t, ev }
}

#[test]
fn no_mounts_is_write_flattened_tar() {
    let e = evidence();
    write(
        &e.ev.join("lower/etc/passwd"),
        b"root:x:0:0::/root:/bin/sh\n",
    );
    write(&e.ev.join("upper/data/f"), b"f");
    let src = DirSource::new(&e.ev).unwrap();
    let (u, l) = (PathBuf::from("upper"), PathBuf::from("lower"));
    let layers = [
        LayerDir::new(&src, &u, WhiteoutStyle::Overlay),
        LayerDir::new(&src, &l, WhiteoutStyle::Overlay),
    ];
    let mut plain = Vec::new();
    write_flattened_tar(
        &layers,
        &HeaderRules::docker_20_10(TarNames::empty()),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, export(&layers, &[]));
}

#[test]
fn nested_mounts_hide_the_layers_and_the_deeper_one_wins() {
    let e = evidence();
    let ev = &e.ev;
    write(&ev.join("lower/data/from-layer"), b"hidden-layer-file");
    write(&ev.join("lower/data/cache/old"), b"hidden");
    write(&ev.join("upper/data/upper-file"), b"hidden too");
    write(&ev.join("lower/etc/hostname"), b"box");
    write(&ev.join("lower/zz"), b"after");
    write(&ev.join("vols/outer/x"), b"outer x");
    write(
        &ev.join("vols/outer/cache/outer-cache-file"),
        b"hidden by inner",
    );
    write(&ev.join("vols/inner/y"), b"inner y");
    set_mode(&ev.join("vols/outer"), 0o750);
    set_mtime(&ev.join("vols/outer"), 1_234_567_890);
    set_mode(&ev.join("vols/inner"), 0o700);
    set_mtime(&ev.join("vols/inner"), 1_111_111_111);
    let src = DirSource::new(ev).unwrap();
    let (u, l, o, i) = (
        PathBuf::from("upper"),
        PathBuf::from("lower"),
        PathBuf::from("vols/outer"),
        PathBuf::from("vols/inner"),
    );
    let layers = [
        LayerDir::new(&src, &u, WhiteoutStyle::Overlay),
        LayerDir::new(&src, &l, WhiteoutStyle::Overlay),
    ];
    // Given inner first and with sloppy spelling: order and spelling do not matter.
    let mounts: [(&[u8], LayerDir); 2] = [
        (
            b"//data/./cache/",
            LayerDir::new(&src, &i, WhiteoutStyle::Snapshot),
        ),
        (b"/data", LayerDir::new(&src, &o, WhiteoutStyle::Snapshot)),
    ];
    let out = export(&layers, &mounts);
    let v = entries(&out);
    assert_eq!(
        names(&v),
        [
            "data/",
            "data/cache/",
            "data/cache/y",
            "data/x",
            "etc/",
            "etc/hostname",
            "zz"
        ]
    );
    let d = get(&v, "data/");
    assert_eq!((d.typ, d.mode, d.mtime), (b'5', 0o40750, 1_234_567_890));
    let md = std::fs::metadata(ev.join("vols/outer")).unwrap();
    assert_eq!((d.uid, d.gid), (u64::from(md.uid()), u64::from(md.gid())));
    let c = get(&v, "data/cache/");
    assert_eq!((c.typ, c.mode, c.mtime), (b'5', 0o40700, 1_111_111_111));
    assert_eq!(get(&v, "data/cache/y").data, b"inner y");
    assert_eq!(get(&v, "data/x").data, b"outer x");
    assert_eq!(get(&v, "zz").data, b"after");
    for hidden in [&b"hidden-layer-file"[..], b"hidden by inner", b"hidden too"] {
        assert!(!out.windows(hidden.len()).any(|w| w == hidden));
    }
}

#[test]
fn missing_mount_points_and_parents_are_created() {
    let e = evidence();
    let ev = &e.ev;
    write(&ev.join("lower/etc/hostname"), b"box");
    write(&ev.join("lower/zz"), b"z");
    // A file where a mount point's parent should be: overlaid by a synthesised dir.
    write(&ev.join("lower/opt"), b"a file in the way");
    write(&ev.join("vols/a/f"), b"a");
    write(&ev.join("vols/b/g"), b"b");
    // A mount nested in a mount, missing inside the outer mount.
    write(&ev.join("vols/c/h"), b"c");
    set_mtime(&ev.join("vols/a"), 1_500_000_000);
    let src = DirSource::new(ev).unwrap();
    let (u, l) = (PathBuf::from("upper"), PathBuf::from("lower"));
    let (a, b, c) = (
        PathBuf::from("vols/a"),
        PathBuf::from("vols/b"),
        PathBuf::from("vols/c"),
    );
    let layers = [
        LayerDir::new(&src, &u, WhiteoutStyle::Overlay),
        LayerDir::new(&src, &l, WhiteoutStyle::Overlay),
    ];
    let mounts: [(&[u8], LayerDir); 3] = [
        (
            b"/srv/app/data",
            LayerDir::new(&src, &a, WhiteoutStyle::Snapshot),
        ),
        (b"/opt/x", LayerDir::new(&src, &b, WhiteoutStyle::Snapshot)),
        (
            b"/srv/app/data/deep/er",
            LayerDir::new(&src, &c, WhiteoutStyle::Snapshot),
        ),
    ];
    let v = entries(&export(&layers, &mounts));
    assert_eq!(
        names(&v),
        [
            "etc/",
            "etc/hostname",
            "opt/",
            "opt/x/",
            "opt/x/g",
            "srv/",
            "srv/app/",
            "srv/app/data/",
            "srv/app/data/deep/",
            "srv/app/data/deep/er/",
            "srv/app/data/deep/er/h",
            "srv/app/data/f",
            "zz"
        ]
    );
    for synth in ["opt/", "srv/", "srv/app/", "srv/app/data/deep/"] {
        let s = get(&v, synth);
        assert_eq!(
            (s.typ, s.mode, s.uid, s.gid, s.mtime),
            (b'5', 0o40755, 0, 0, 0),
            "{synth}"
        );
    }
    assert_eq!(get(&v, "srv/app/data/").mtime, 1_500_000_000);
    assert_eq!(get(&v, "srv/app/data/deep/er/h").data, b"c");
}

#[test]
fn hard_links_pair_within_a_volume_only() {
    let e = evidence();
    let ev = &e.ev;
    write(&ev.join("vols/v/h1"), b"linked");
    std::fs::hard_link(ev.join("vols/v/h1"), ev.join("vols/v/h2")).unwrap();
    // One inode in the layer and in the volume (same disk): no link across filesystems.
    write(&ev.join("upper/shared"), b"shared inode");
    std::fs::hard_link(ev.join("upper/shared"), ev.join("vols/v/shared")).unwrap();
    std::fs::create_dir_all(ev.join("vols/w")).unwrap();
    std::fs::hard_link(ev.join("upper/shared"), ev.join("vols/w/shared")).unwrap();
    let src = DirSource::new(ev).unwrap();
    let (u, v_, w) = (
        PathBuf::from("upper"),
        PathBuf::from("vols/v"),
        PathBuf::from("vols/w"),
    );
    let layers = [LayerDir::new(&src, &u, WhiteoutStyle::Overlay)];
    let mounts: [(&[u8], LayerDir); 2] = [
        (b"/v", LayerDir::new(&src, &v_, WhiteoutStyle::Snapshot)),
        (b"/w", LayerDir::new(&src, &w, WhiteoutStyle::Snapshot)),
    ];
    let v = entries(&export(&layers, &mounts));
    assert_eq!(
        names(&v),
        ["shared", "v/", "v/h1", "v/h2", "v/shared", "w/", "w/shared"]
    );
    assert_eq!(
        (get(&v, "v/h1").typ, &get(&v, "v/h1").data[..]),
        (b'0', &b"linked"[..])
    );
    let h2 = get(&v, "v/h2");
    assert_eq!((h2.typ, h2.link.as_str()), (b'1', "v/h1"));
    for f in ["shared", "v/shared", "w/shared"] {
        let s = get(&v, f);
        assert_eq!((s.typ, &s.data[..]), (b'0', &b"shared inode"[..]), "{f}");
    }
}

#[test]
fn hostile_mount_points_are_refused_naming_the_mount() {
    let e = evidence();
    std::fs::create_dir_all(e.ev.join("vols/v")).unwrap();
    let src = DirSource::new(&e.ev).unwrap();
    let (u, vp) = (PathBuf::from("upper"), PathBuf::from("vols/v"));
    let layers = [LayerDir::new(&src, &u, WhiteoutStyle::Overlay)];
    let vol = LayerDir::new(&src, &vp, WhiteoutStyle::Snapshot);
    for bad in [
        &b"vol"[..],
        b"./vol",
        b"",
        b"/a/../../etc",
        b"/vol/..",
        b"/",
        b"//./",
        b"/a\0b",
    ] {
        let mut out = Vec::new();
        let err = write_flattened_tar_with_mounts(
            &layers,
            &[(bad, vol)],
            &HeaderRules::docker_20_10(TarNames::empty()),
            &mut out,
        )
        .unwrap_err();
        assert!(matches!(err, WhiteoutError::BadMount { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{:?}", String::from_utf8_lossy(bad))),
            "{msg}"
        );
        eprintln!("{msg}");
    }
    // Duplicates after normalisation.
    let mut out = Vec::new();
    let err = write_flattened_tar_with_mounts(
        &layers,
        &[(b"/vol", vol), (b"/vol//./", vol)],
        &HeaderRules::docker_20_10(TarNames::empty()),
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, WhiteoutError::BadMount { .. }), "{err}");
    assert!(err.to_string().contains("duplicate"), "{err}");
    // Too deep.
    let deep = b"/d".repeat(MAX_DEPTH + 1);
    let err = write_flattened_tar_with_mounts(
        &layers,
        &[(&deep, vol)],
        &HeaderRules::docker_20_10(TarNames::empty()),
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(err, WhiteoutError::BadMount { .. }), "{err}");
    // A mount whose directory is missing fails naming it.
    let missing = PathBuf::from("vols/missing");
    let err = write_flattened_tar_with_mounts(
        &layers,
        &[(
            b"/m",
            LayerDir::new(&src, &missing, WhiteoutStyle::Snapshot),
        )],
        &HeaderRules::docker_20_10(TarNames::empty()),
        &mut out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("vols/missing"), "{err}");
}

#[test]
fn symlinks_in_a_volume_and_at_a_mount_point_are_not_followed() {
    let e = evidence();
    let ev = &e.ev;
    let canary = e._t.path().join("canary");
    std::fs::write(&canary, b"CANARY-SECRET-91c2").unwrap();
    std::fs::create_dir_all(ev.join("vols/v")).unwrap();
    std::os::unix::fs::symlink(&canary, ev.join("vols/v/abs")).unwrap();
    std::os::unix::fs::symlink("../../../canary", ev.join("vols/v/rel")).unwrap();
    std::os::unix::fs::symlink(e._t.path(), ev.join("vols/v/escape-dir")).unwrap();
    // The layers' mount point is a symlink out of the evidence: overlaid, not followed.
    std::os::unix::fs::symlink(e._t.path(), ev.join("upper/vol")).unwrap();
    // A mount whose root is itself a symlink: refused (not a directory), not followed.
    std::os::unix::fs::symlink(e._t.path(), ev.join("vols/link")).unwrap();
    let src = DirSource::new(ev).unwrap();
    let (u, vp, lp) = (
        PathBuf::from("upper"),
        PathBuf::from("vols/v"),
        PathBuf::from("vols/link"),
    );
    let layers = [LayerDir::new(&src, &u, WhiteoutStyle::Overlay)];
    let out = export(
        &layers,
        &[(b"/vol", LayerDir::new(&src, &vp, WhiteoutStyle::Snapshot))],
    );
    assert!(!out.windows(14).any(|w| w == b"CANARY-SECRET-"));
    let v = entries(&out);
    assert_eq!(names(&v), ["vol/", "vol/abs", "vol/escape-dir", "vol/rel"]);
    assert_eq!(get(&v, "vol/").typ, b'5');
    let abs = get(&v, "vol/abs");
    assert_eq!(
        (abs.typ, abs.link.as_str()),
        (b'2', canary.to_str().unwrap())
    );
    assert_eq!(get(&v, "vol/rel").link, "../../../canary");
    assert_eq!(get(&v, "vol/escape-dir").typ, b'2');
    let mut sink = Vec::new();
    let err = write_flattened_tar_with_mounts(
        &layers,
        &[(b"/x", LayerDir::new(&src, &lp, WhiteoutStyle::Snapshot))],
        &HeaderRules::docker_20_10(TarNames::empty()),
        &mut sink,
    )
    .unwrap_err();
    assert!(err.to_string().contains("vols/link"), "{err}");
}

#[test]
fn whiteout_looking_entries_in_a_volume_are_plain_files() {
    let e = evidence();
    let ev = &e.ev;
    write(&ev.join("vols/v/.wh.gone"), b"not a whiteout");
    write(&ev.join("vols/v/.wh..wh..opq"), b"");
    write(&ev.join("vols/v/gone"), b"still here");
    let src = DirSource::new(ev).unwrap();
    let (u, vp) = (PathBuf::from("upper"), PathBuf::from("vols/v"));
    let layers = [LayerDir::new(&src, &u, WhiteoutStyle::Overlay)];
    // Even when the caller labels the volume as an aufs layer.
    for style in [
        WhiteoutStyle::Aufs,
        WhiteoutStyle::FuseOverlayfs,
        WhiteoutStyle::Snapshot,
    ] {
        let v = entries(&export(
            &layers,
            &[(b"/v", LayerDir::new(&src, &vp, style))],
        ));
        assert_eq!(
            names(&v),
            ["v/", "v/.wh..wh..opq", "v/.wh.gone", "v/gone"],
            "{style:?}"
        );
        assert_eq!(get(&v, "v/.wh.gone").data, b"not a whiteout");
    }
}
