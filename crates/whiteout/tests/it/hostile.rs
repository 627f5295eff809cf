//! Hostile layer directories: symlinks pointing out of the evidence, names with newlines
//! and invalid UTF-8, whiteouts without a lower counterpart, opaque xattrs with values
//! other than `y`, redirect/metacopy xattrs, deep nesting. Layers are hand-made tar
//! archives read through `TarSource` (so char 0/0 devices and `trusted.*` xattrs need no
//! privileges) and real directories read through `DirSource`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use salvor_source::{DirSource, TarSource};
use salvor_whiteout::*;

enum K<'a> {
    File(&'a [u8]),
    Dir,
    #[allow(dead_code)]
    Link(&'a [u8]),
    Whiteout,
}

struct E<'a> {
    name: Vec<u8>,
    kind: K<'a>,
    xattrs: Vec<(&'a str, &'a [u8])>,
}

fn e<'a>(name: impl AsRef<[u8]>, kind: K<'a>) -> E<'a> {
    E {
        name: name.as_ref().to_vec(),
        kind,
        xattrs: vec![],
    }
}

fn octal(b: &mut [u8], v: u64) {
    let s = format!("{:0w$o}", v, w = b.len() - 1);
    b[..s.len()].copy_from_slice(s.as_bytes());
}

fn header(name: &[u8], typ: u8, mode: u32, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_600_000_000);
    h[156] = typ;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
}

fn rec(k: &[u8], v: &[u8]) -> Vec<u8> {
    let base = k.len() + v.len() + 3;
    let mut size = base + base.to_string().len();
    if base + size.to_string().len() != size {
        size = base + size.to_string().len();
    }
    [size.to_string().as_bytes(), b" ", k, b"=", v, b"\n"].concat()
}

/// A PAX tar (every name as a `path` record) of `entries`.
fn mk_tar(dir: &Path, entries: &[E]) -> PathBuf {
    let mut out = Vec::new();
    for en in entries {
        let (typ, mode, data, link): (u8, u32, &[u8], &[u8]) = match &en.kind {
            K::File(d) => (b'0', 0o644, d, b""),
            K::Dir => (b'5', 0o755, b"", b""),
            K::Link(t) => (b'2', 0o777, b"", t),
            K::Whiteout => (b'3', 0, b"", b""),
        };
        let mut recs = rec(b"path", &en.name);
        if !link.is_empty() {
            recs.extend(rec(b"linkpath", link));
        }
        for (k, v) in &en.xattrs {
            recs.extend(rec(format!("SCHILY.xattr.{k}").as_bytes(), v));
        }
        out.extend(header(b"PaxHeaders/x", b'x', 0, recs.len() as u64, b""));
        out.extend(&recs);
        pad(&mut out);
        out.extend(header(b"placeholder", typ, mode, data.len() as u64, b""));
        out.extend(data);
        pad(&mut out);
    }
    out.extend([0u8; 1024]);
    let p = dir.join(format!("t{}.tar", entries.len()));
    std::fs::write(&p, out).unwrap();
    p
}

/// (name, type flag, link name, data) of each entry.
type Entry = (Vec<u8>, u8, Vec<u8>, Vec<u8>);

fn tar_entries(bytes: &[u8]) -> Vec<Entry> {
    let mut a = tar::Archive::new(bytes);
    let mut v = Vec::new();
    for en in a.entries().unwrap() {
        let mut en = en.unwrap();
        let name = en.path_bytes().to_vec();
        let typ = en.header().entry_type().as_byte();
        let link = en.link_name_bytes().map(|l| l.to_vec()).unwrap_or_default();
        let mut data = Vec::new();
        en.read_to_end(&mut data).unwrap();
        v.push((name, typ, link, data));
    }
    v
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

#[test]
fn symlinks_out_of_the_evidence_are_never_followed() {
    let t = tempfile::tempdir().unwrap();
    let canary = t.path().join("canary");
    std::fs::write(&canary, b"CANARY-SECRET-7f3a").unwrap();
    let ev = t.path().join("evidence");
    for d in ["lower/etc", "upper/etc", "init"] {
        std::fs::create_dir_all(ev.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(&canary, ev.join("lower/etc/abs")).unwrap();
    std::os::unix::fs::symlink("../../../canary", ev.join("lower/etc/rel")).unwrap();
    std::os::unix::fs::symlink(&canary, ev.join("upper/etc/passwd")).unwrap();
    std::os::unix::fs::symlink(t.path(), ev.join("upper/escape")).unwrap();
    std::fs::write(ev.join("upper/etc/new"), b"new").unwrap();
    let src = DirSource::new(&ev).unwrap();
    let (up, lo, ini) = (
        PathBuf::from("upper"),
        PathBuf::from("lower"),
        PathBuf::from("init"),
    );
    let upper = LayerDir::new(&src, &up, WhiteoutStyle::Overlay);
    let lowers = [
        LayerDir::new(&src, &ini, WhiteoutStyle::Overlay),
        LayerDir::new(&src, &lo, WhiteoutStyle::Overlay),
    ];
    let mut all = vec![upper];
    all.extend(lowers);

    let mut commit = Vec::new();
    write_layer_tar(&upper, &HeaderRules::default(), &mut commit).unwrap();
    let mut export = Vec::new();
    write_flattened_tar(&all, &HeaderRules::default(), &mut export).unwrap();
    let ch = changes(&upper, &lowers).unwrap();
    // A symlinked /etc/passwd is not read either.
    assert!(read_merged_file(&all, b"etc/passwd", 1024)
        .unwrap()
        .is_none());
    for out in [&commit, &export] {
        assert!(!contains(out, b"CANARY-SECRET"), "canary content leaked");
    }
    let ex = tar_entries(&export);
    let abs = ex.iter().find(|x| x.0 == b"etc/abs").unwrap();
    assert_eq!(
        (abs.1, abs.2.as_slice()),
        (b'2', canary.as_os_str().as_encoded_bytes())
    );
    let esc = ex.iter().find(|x| x.0 == b"escape").unwrap();
    assert_eq!(esc.1, b'2');
    let lines: Vec<String> = ch.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        lines,
        ["A /escape", "C /etc", "A /etc/new", "A /etc/passwd"]
    );
}

#[test]
fn odd_names_are_bytes() {
    let t = tempfile::tempdir().unwrap();
    let nl = b"up/a\nb".to_vec();
    let bad = b"up/\xff\xfe-bad".to_vec();
    let p = mk_tar(
        t.path(),
        &[
            e("up", K::Dir),
            e(&nl, K::File(b"newline")),
            e(&bad, K::File(b"invalid")),
            e("lo", K::Dir),
            e(b"lo/\xff\xfe-bad", K::File(b"old")),
        ],
    );
    let src = TarSource::open(&p).unwrap();
    let (u, l) = (PathBuf::from("up"), PathBuf::from("lo"));
    let upper = LayerDir::new(&src, &u, WhiteoutStyle::Overlay);
    let lower = LayerDir::new(&src, &l, WhiteoutStyle::Overlay);
    let ch = changes(&upper, &[lower]).unwrap();
    assert_eq!(
        ch,
        vec![
            Change {
                path: b"/a\nb".to_vec(),
                kind: ChangeKind::Added
            },
            Change {
                path: b"/\xff\xfe-bad".to_vec(),
                kind: ChangeKind::Modified
            },
        ]
    );
    let mut out = Vec::new();
    write_layer_tar(&upper, &HeaderRules::default(), &mut out).unwrap();
    let ents = tar_entries(&out);
    assert_eq!(ents[0].0, b"a\nb");
    assert_eq!(ents[0].3, b"newline");
    assert_eq!(ents[1].0, b"\xff\xfe-bad");
    // Go's writer: the invalid name needs a PAX path record, the newline one fits USTAR.
    assert!(contains(&out, b"path=\xff\xfe-bad\n"));
    assert!(!contains(&out, b"path=a\nb"));
}

#[test]
fn whiteout_without_lower_counterpart_and_odd_opaque() {
    let t = tempfile::tempdir().unwrap();
    let mut opq_x = e("up/d", K::Dir);
    opq_x.xattrs.push(("trusted.overlay.opaque", b"x"));
    let mut opq_y = e("up/o", K::Dir);
    opq_y.xattrs.push(("trusted.overlay.opaque", b"y"));
    let p = mk_tar(
        t.path(),
        &[
            e("up", K::Dir),
            e("up/ghost", K::Whiteout),
            e("up/gone", K::Whiteout),
            opq_x,
            e("up/d/new", K::File(b"n")),
            opq_y,
            e("lo", K::Dir),
            e("lo/gone", K::File(b"g")),
            e("lo/d", K::Dir),
            e("lo/d/kept", K::File(b"k")),
            e("lo/o", K::Dir),
            e("lo/o/hidden", K::File(b"h")),
        ],
    );
    let src = TarSource::open(&p).unwrap();
    let (u, l) = (PathBuf::from("up"), PathBuf::from("lo"));
    let upper = LayerDir::new(&src, &u, WhiteoutStyle::Overlay);
    let lower = LayerDir::new(&src, &l, WhiteoutStyle::Overlay);
    let lines: Vec<String> = changes(&upper, &[lower])
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    // No D for /ghost (no lower had it); /d is not opaque ("x"), so /d/kept stays.
    // Engine structure: a dir's C precedes its children; deletions come after the rest.
    assert_eq!(
        lines,
        ["C /d", "A /d/new", "C /o", "D /o/hidden", "D /gone"]
    );
    let mut out = Vec::new();
    write_layer_tar(&upper, &HeaderRules::default(), &mut out).unwrap();
    let names: Vec<Vec<u8>> = tar_entries(&out).into_iter().map(|x| x.0).collect();
    assert_eq!(
        names,
        [
            &b"d/"[..],
            b"d/new",
            b".wh.ghost",
            b".wh.gone",
            b"o/",
            b"o/.wh..wh..opq"
        ]
    );
    let mut ex = Vec::new();
    write_flattened_tar(&[upper, lower], &HeaderRules::default(), &mut ex).unwrap();
    let names: Vec<Vec<u8>> = tar_entries(&ex).into_iter().map(|x| x.0).collect();
    assert_eq!(names, [&b"d/"[..], b"d/kept", b"d/new", b"o/"]);
    let f = inspect_layer(&upper).unwrap();
    assert!(f
        .iter()
        .any(|f| f.path == Path::new("up/d") && f.what.contains("not \"y\"")));
}

#[test]
fn redirect_and_metacopy_are_refused_with_an_explanation() {
    let t = tempfile::tempdir().unwrap();
    for (x, word) in [
        ("trusted.overlay.redirect", "renamed"),
        ("trusted.overlay.metacopy", "metadata-only"),
    ] {
        let mut d = e("up/x", K::Dir);
        d.xattrs.push((x, b"/elsewhere"));
        let p = mk_tar(t.path(), &[e("up", K::Dir), d, e("lo", K::Dir)]);
        let src = TarSource::open(&p).unwrap();
        let (u, l) = (PathBuf::from("up"), PathBuf::from("lo"));
        let upper = LayerDir::new(&src, &u, WhiteoutStyle::Overlay);
        let lower = LayerDir::new(&src, &l, WhiteoutStyle::Overlay);
        let mut out = Vec::new();
        let err = write_layer_tar(&upper, &HeaderRules::default(), &mut out).unwrap_err();
        assert!(matches!(err, WhiteoutError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains(word), "{err}");
        assert!(changes(&upper, &[lower]).is_err());
        assert!(inspect_layer(&upper)
            .unwrap()
            .iter()
            .any(|f| f.what.contains(x)));
        std::fs::remove_file(p).unwrap();
    }
}

/// 4096+ nested directories: refused, naming the path, in linear time (the tar index
/// answers a lookup of a clean path without walking it: was ~4 min, now ~3 s).
#[test]
fn deep_nesting_fails_naming_the_path() {
    let t = tempfile::tempdir().unwrap();
    let mut name = b"up".to_vec();
    let mut ents = vec![e("up", K::Dir)];
    for _ in 0..(MAX_DEPTH + 3) {
        name.extend_from_slice(b"/d");
        ents.push(e(&name, K::Dir));
    }
    let p = mk_tar(t.path(), &ents);
    let t0 = std::time::Instant::now();
    let src = TarSource::open(&p).unwrap();
    eprintln!("open {:?}", t0.elapsed());
    let u = PathBuf::from("up");
    let upper = LayerDir::new(&src, &u, WhiteoutStyle::Overlay);
    let mut out = std::io::sink();
    let err = write_layer_tar(&upper, &HeaderRules::default(), &mut out).unwrap_err();
    assert!(matches!(err, WhiteoutError::TooDeep { .. }), "{err}");
    assert!(err.to_string().starts_with("up/d/d/d"));
    eprintln!("commit {:?}", t0.elapsed());
    assert!(matches!(
        write_flattened_tar(&[upper], &HeaderRules::default(), &mut out),
        Err(WhiteoutError::TooDeep { .. })
    ));
    assert!(matches!(
        changes(&upper, &[]),
        Err(WhiteoutError::TooDeep { .. })
    ));
    assert!(matches!(
        inspect_layer(&upper),
        Err(WhiteoutError::TooDeep { .. })
    ));
}

#[test]
fn output_is_deterministic_and_ends_with_two_zero_blocks() {
    let t = tempfile::tempdir().unwrap();
    let p = mk_tar(
        t.path(),
        &[
            e("up", K::Dir),
            e("up/f", K::File(b"x")),
            e("up/w", K::Whiteout),
        ],
    );
    let src = TarSource::open(&p).unwrap();
    let u = PathBuf::from("up");
    let upper = LayerDir::new(&src, &u, WhiteoutStyle::Overlay);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (da, na) = write_layer_tar(&upper, &HeaderRules::default(), &mut a).unwrap();
    let (db, _) = write_layer_tar(&upper, &HeaderRules::default(), &mut b).unwrap();
    assert_eq!((a.clone(), da), (b, db));
    assert_eq!(na as usize, a.len());
    assert_eq!(a.len(), 512 * 2 + 512 + 512 * 2);
    assert!(a[a.len() - 1024..].iter().all(|&c| c == 0));
    let _ = std::io::sink().write(&a);
}

/// A full disk while a file's data is copied: the error is the archive's
/// (`WhiteoutError::Output`), never one naming the evidence file being read.
#[test]
fn a_failing_output_is_not_blamed_on_the_file_read() {
    struct FullAfter(usize);
    impl Write for FullAfter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "No space left on device",
                ));
            }
            let n = b.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let t = tempfile::tempdir().unwrap();
    let ev = t.path().join("evidence");
    std::fs::create_dir_all(ev.join("upper/etc")).unwrap();
    std::fs::write(ev.join("upper/etc/big"), vec![b'x'; 300_000]).unwrap();
    let src = DirSource::new(&ev).unwrap();
    let up = PathBuf::from("upper");
    let upper = LayerDir::new(&src, &up, WhiteoutStyle::Overlay);
    // Mid-data (after the headers), and in a header.
    for room in [100_000, 700] {
        let e = write_flattened_tar(&[upper], &HeaderRules::default(), &mut FullAfter(room))
            .expect_err("the output is full");
        assert!(matches!(e, WhiteoutError::Output(_)), "{room}: {e:?}");
        let msg = salvor_source::error_chain(&e);
        assert!(!msg.contains("etc/big") && !msg.contains("upper"), "{msg}");
        assert!(msg.contains("No space left on device"), "{msg}");
    }
}
