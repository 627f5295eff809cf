//! TarSource: the same answers as DirSource for an equivalent tree, in plain, gzip and
//! zstd form; tar extraction semantics; damaged archives.
use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use salvor_source::{
    open_evidence, Compression, FileKind, Source, SourceError, TarSource, Timestamp,
};

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn fixture(tmp: &Path) -> Fixture {
    Fixture {
        canary: tmp.join("canary.txt"),
    }
}

#[test]
fn tar_matches_dir_in_all_compressions() {
    let tmp = scratch();
    // The canary exists next to the archives: it must never be read through a link.
    let (_root, fx) = build_dir(tmp.path());
    let plain = build_tar(&fx);
    let arch = tmp.path().join("archives");
    std::fs::create_dir(&arch).unwrap();
    let cases: [(&str, Vec<u8>, Compression); 3] = [
        ("t.tar", plain.clone(), Compression::None),
        ("t.tar.gz", gzip(&plain), Compression::Gzip),
        ("t.tar.zst", zstd(&plain), Compression::Zstd),
    ];
    for (name, data, comp) in cases {
        let path = write(&arch, name, &data);
        let src = TarSource::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(src.compression(), comp);
        assert!(src.warnings().is_empty(), "{name}: {:?}", src.warnings());
        check_tree(&src, &fx);
        // Same through open_evidence and the trait object.
        let ev = open_evidence(&path).unwrap();
        check_tree(ev.as_ref(), &fx);
        assert!(ev.describe().contains(name));
    }
    // The spool is never placed next to the evidence.
    let mut names: Vec<_> = std::fs::read_dir(&arch)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["t.tar", "t.tar.gz", "t.tar.zst"]);
}

#[test]
fn tar_specific_metadata() {
    let tmp = scratch();
    let fx = fixture(tmp.path());
    let path = write(tmp.path(), "t.tar", &build_tar(&fx));
    let src = TarSource::open(&path).unwrap();
    // Implicit directories: 0755, root-owned, mtime 0.
    for d in ["dir/sub", "long", &long_dir()] {
        let md = src.metadata(Path::new(d)).unwrap();
        assert_eq!(
            (md.kind, md.mode, md.uid, md.gid, md.mtime),
            (FileKind::Dir, 0o755, 0, 0, Timestamp::default()),
            "{d}"
        );
    }
    // Explicit directory keeps its header mtime; dev is 0, inodes are stable.
    let dir = src.metadata(Path::new("dir")).unwrap();
    assert_eq!(dir.mtime.sec, 1_600_000_000);
    assert_eq!(dir.dev, 0);
    assert_eq!(dir.nlink, 3);
    let again = TarSource::open(&path).unwrap();
    for p in ["file.txt", "hard2", "dir/sub", "whiteout"] {
        assert_eq!(
            src.metadata(Path::new(p)).unwrap().ino,
            again.metadata(Path::new(p)).unwrap().ino,
            "{p}"
        );
    }
    // file.txt is the first member (after its PAX header): inode 1.
    assert_eq!(src.metadata(Path::new("file.txt")).unwrap().ino, 1);
    assert_eq!(src.metadata(Path::new("file.txt")).unwrap().btime, None);
}

#[test]
fn later_member_wins_and_dotdot_is_left_out() {
    let tmp = scratch();
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "a.txt", b"first\n", 0o600);
    add_file(&mut b, "keep.txt", b"keep\n", 0o644);
    // A member named with `..` (written raw: the tar crate refuses to).
    let mut h = header(tar::EntryType::Regular, 0o644);
    h.as_old_mut().name[..13].copy_from_slice(b"../escape.txt");
    h.set_size(4);
    h.set_cksum();
    b.append(&h, &b"bad\n"[..]).unwrap();
    add_file(&mut b, "a.txt", b"second!\n", 0o644);
    // A hardlink to the *current* a.txt.
    let mut h = header(tar::EntryType::Link, 0o644);
    b.append_link(&mut h, "b.txt", "a.txt").unwrap();
    // A file replaced by a directory, and a symlink used as a directory.
    add_file(&mut b, "x", b"x\n", 0o644);
    let mut h = header(tar::EntryType::Directory, 0o700);
    b.append_data(&mut h, "x/", std::io::empty()).unwrap();
    add_file(&mut b, "x/y", b"y\n", 0o644);
    let mut h = header(tar::EntryType::Symlink, 0o777);
    b.append_link(&mut h, "ln", "/etc").unwrap();
    add_file(&mut b, "ln/passwd", b"not reachable\n", 0o644);
    let path = write(tmp.path(), "dup.tar", &b.into_inner().unwrap());
    let src = TarSource::open(&path).unwrap();

    let mut s = String::new();
    src.open(Path::new("a.txt"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "second!\n");
    let a = src.metadata(Path::new("a.txt")).unwrap();
    assert_eq!((a.mode, a.size, a.nlink), (0o644, 8, 2));
    assert_eq!(src.metadata(Path::new("b.txt")).unwrap(), a);
    assert_eq!(src.warnings().len(), 1, "{:?}", src.warnings());
    assert!(
        src.warnings()[0].contains("../escape.txt"),
        "{:?}",
        src.warnings()
    );
    assert!(matches!(
        src.metadata(Path::new("../escape.txt")),
        Err(SourceError::Escape { .. })
    ));
    let names: Vec<_> = src
        .read_dir(Path::new(""))
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt", "keep.txt", "ln", "x"]);
    assert_eq!(src.metadata(Path::new("x")).unwrap().mode, 0o700);
    assert_eq!(src.read_dir(Path::new("x")).unwrap().len(), 1);
    assert!(matches!(
        src.open(Path::new("ln/passwd")),
        Err(SourceError::SymlinkInPath { .. })
    ));
    assert!(matches!(
        src.read_dir(Path::new("ln")),
        Err(SourceError::WrongKind {
            found: FileKind::Symlink,
            ..
        })
    ));
}

fn sample_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "one.txt", b"one\n", 0o644);
    add_file(&mut b, "two.bin", &vec![7u8; 5000], 0o644);
    add_file(&mut b, "three.txt", b"three\n", 0o644);
    b.into_inner().unwrap()
}

#[test]
fn truncated_archives_index_what_was_read() {
    let tmp = scratch();
    let full = sample_tar();
    // Cut in the middle of two.bin's data.
    let cut = &full[..512 + 512 + 512 + 2000];
    for (name, data) in [
        ("cut.tar", cut.to_vec()),
        ("cut.tar.gz", gzip(cut)),
        ("cut.tar.zst", zstd(cut)),
    ] {
        let path = write(tmp.path(), name, &data);
        let src = TarSource::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(src.exists(Path::new("one.txt")), "{name}");
        assert!(
            !src.exists(Path::new("two.bin")),
            "{name}: truncated member must be left out"
        );
        assert!(!src.exists(Path::new("three.txt")));
        assert_eq!(src.warnings().len(), 1, "{name}: {:?}", src.warnings());
        assert!(
            src.warnings()[0].contains("two.bin") && src.warnings()[0].contains("truncated"),
            "{:?}",
            src.warnings()
        );
        let mut s = String::new();
        src.open(Path::new("one.txt"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "one\n");
    }
    // A damaged gzip stream (cut compressed bytes) is also indexed up to the damage.
    let gz = gzip(&full);
    let path = write(tmp.path(), "damaged.tar.gz", &gz[..gz.len() - 20]);
    let src = TarSource::open(&path).unwrap();
    assert!(src.exists(Path::new("one.txt")));
    // Nothing readable: an error naming the archive.
    for (name, data) in [
        ("tiny.tar", full[..300].to_vec()),
        ("garbage.tar", vec![b'x'; 4096]),
        ("garbage.tar.gz", vec![0x1f, 0x8b, 1, 2, 3]),
    ] {
        let path = write(tmp.path(), name, &data);
        let e = TarSource::open(&path).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn oversized_pax_header_is_refused() {
    let tmp = scratch();
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "before.txt", b"b\n", 0o644);
    let big = vec![b'a'; 1024 * 1024 + 10];
    pax_header(&mut b, &[("comment", &big)]);
    add_file(&mut b, "victim.txt", b"v\n", 0o644);
    add_file(&mut b, "after.txt", b"a\n", 0o644);
    let path = write(tmp.path(), "pax.tar", &b.into_inner().unwrap());
    let src = TarSource::open(&path).unwrap();
    assert!(src.exists(Path::new("before.txt")));
    assert!(!src.exists(Path::new("victim.txt")));
    assert!(src.exists(Path::new("after.txt")));
    assert_eq!(src.warnings().len(), 1);
    assert!(src.warnings()[0].contains("PAX"), "{:?}", src.warnings());
}

#[test]
fn pax_path_times_and_base256() {
    let tmp = scratch();
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("p/{}/file", "z".repeat(200));
    pax_header(
        &mut b,
        &[
            ("path", long.as_bytes()),
            ("mtime", b"-1.25"),
            ("atime", b"1700000000.5"),
            ("ctime", b"1700000001"),
            ("uid", b"4000000000"),
            ("size", b"3"),
        ],
    );
    let mut h = header(tar::EntryType::Regular, 0o644);
    h.set_size(3);
    b.append_data(&mut h, "short-name-ignored", &b"abc"[..])
        .unwrap();
    // PAX linkpath for a long symlink target, and a base-256 encoded gid.
    let target = format!("/{}", "t".repeat(300));
    pax_header(&mut b, &[("linkpath", target.as_bytes())]);
    let mut h = header(tar::EntryType::Symlink, 0o777);
    h.as_gnu_mut().unwrap().gid = [0x80, 0, 0, 0, 0, 0, 0x01, 0x00];
    h.set_link_name("short").unwrap();
    h.set_path("sym").unwrap();
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let path = write(tmp.path(), "pax.tar", &b.into_inner().unwrap());
    let src = TarSource::open(&path).unwrap();
    assert!(src.warnings().is_empty(), "{:?}", src.warnings());
    let md = src.metadata(Path::new(&long)).unwrap();
    assert_eq!(
        md.mtime,
        Timestamp {
            sec: -2,
            nsec: 750_000_000
        }
    );
    assert_eq!(
        md.atime,
        Timestamp {
            sec: 1_700_000_000,
            nsec: 500_000_000
        }
    );
    assert_eq!(
        md.ctime,
        Timestamp {
            sec: 1_700_000_001,
            nsec: 0
        }
    );
    assert_eq!(md.uid, 4_000_000_000);
    assert!(!src.exists(Path::new("short-name-ignored")));
    let sym = src.metadata(Path::new("sym")).unwrap();
    assert_eq!(sym.gid, 256);
    assert_eq!(
        src.read_link(Path::new("sym")).unwrap(),
        PathBuf::from(&target)
    );
    assert_eq!(sym.size, target.len() as u64);
}

#[test]
fn empty_archive_is_valid() {
    let tmp = scratch();
    let path = write(tmp.path(), "empty.tar", &[0u8; 10240]);
    let src = TarSource::open(&path).unwrap();
    assert!(src.read_dir(Path::new("")).unwrap().is_empty());
    assert!(src.is_empty());
}

#[test]
fn absurd_pax_size_is_damage_not_a_panic() {
    let tmp = scratch();
    let mut b = tar::Builder::new(Vec::new());
    add_file(&mut b, "ok.txt", b"ok\n", 0o644);
    pax_header(&mut b, &[("size", b"18446744073709551615")]);
    add_file(&mut b, "huge.bin", b"x", 0o644);
    let path = write(tmp.path(), "absurd.tar", &b.into_inner().unwrap());
    let src = TarSource::open(&path).unwrap();
    assert!(src.exists(Path::new("ok.txt")));
    assert!(!src.exists(Path::new("huge.bin")));
    assert_eq!(src.warnings().len(), 1, "{:?}", src.warnings());
}

#[test]
fn damage_is_typed_and_says_where() {
    use salvor_source::DamageKind;
    let tmp = scratch();
    let full = sample_tar();
    // Clean archives: no damage in any compression.
    for (name, data) in [
        ("ok.tar", full.clone()),
        ("ok.tar.gz", gzip(&full)),
        ("ok.tar.zst", zstd(&full)),
    ] {
        let src = TarSource::open(&write(tmp.path(), name, &data)).unwrap();
        assert!(src.damage().is_empty(), "{name}: {:?}", src.damage());
    }
    // Cut mid-data of two.bin, and mid-header of three.txt (two.bin's data is 5000
    // bytes, padded to 5120: three.txt's header starts at 512 + 512 + 512 + 5120).
    let mid_data = &full[..512 + 512 + 512 + 2000];
    let mid_header = &full[..512 + 512 + 512 + 5120 + 100];
    for (cut, what, cut_member) in [
        (mid_data, "mid-data", Some("two.bin")),
        (mid_header, "mid-header", None),
    ] {
        for (name, data) in [
            (format!("{what}.tar"), cut.to_vec()),
            (format!("{what}.tar.gz"), gzip(cut)),
            (format!("{what}.tar.zst"), zstd(cut)),
        ] {
            let path = write(tmp.path(), &name, &data);
            let src = TarSource::open(&path).unwrap();
            let d = src.damage();
            assert_eq!(d.len(), 1, "{name}: {d:?}");
            assert_eq!(d[0].kind, DamageKind::Truncated, "{name}: {d:?}");
            assert_eq!(d[0].file, path);
            assert_eq!(d[0].offset, Some(data.len() as u64), "{name}");
            assert!(d[0].detail.contains("truncated copy?"), "{name}: {}", d[0]);
            if let Some(m) = cut_member {
                assert!(d[0].lost.contains(m), "{name}: {}", d[0].lost);
            }
            assert!(src.exists(Path::new("one.txt")), "{name}");
            // The trait exposes the same damage.
            let dynsrc: &dyn Source = &src;
            assert_eq!(dynsrc.damage(), d);
        }
    }
    // The compressed stream itself cut (not the tar inside it): said in compressed bytes.
    // Incompressible members, so that a cut stream still decodes its first members.
    let mut b = tar::Builder::new(Vec::new());
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..4 {
        let data: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        add_file(&mut b, format!("r{i}.bin"), &data, 0o644);
    }
    let random = b.into_inner().unwrap();
    for (name, data, codec) in [
        ("cut.tar.gz", gzip(&random), "gzip"),
        ("cut.tar.zst", zstd(&random), "zstd"),
    ] {
        let cut = &data[..data.len() * 2 / 3];
        let path = write(tmp.path(), name, cut);
        let src = TarSource::open(&path).unwrap();
        let d = src.damage();
        assert_eq!(d.len(), 1, "{name}: {d:?}");
        assert_eq!(d[0].kind, DamageKind::Truncated, "{name}: {d:?}");
        assert!(
            d[0].detail.contains(&format!(
                "{codec} stream ends at byte {} of the compressed file",
                cut.len()
            )),
            "{name}: {}",
            d[0]
        );
    }
    // Only the gzip footer (CRC, size) cut: every member is there, the copy is still bad.
    let gz = gzip(&full);
    let path = write(tmp.path(), "footer.tar.gz", &gz[..gz.len() - 4]);
    let src = TarSource::open(&path).unwrap();
    assert!(src.exists(Path::new("three.txt")));
    assert_eq!(src.damage().len(), 1, "{:?}", src.damage());
    assert!(src.damage()[0]
        .detail
        .contains("after the tar's end-of-archive marker"));
    // A tar without its end-of-archive marker (cut at a member boundary).
    let boundary = &full[..512 + 512];
    let src = TarSource::open(&write(tmp.path(), "boundary.tar", boundary)).unwrap();
    assert_eq!(src.damage().len(), 1, "{:?}", src.damage());
    assert!(src.damage()[0].detail.contains("no end-of-archive marker"));
    // A gzip stream damaged before its first member: an error that says so.
    let e = TarSource::open(&write(tmp.path(), "early.tar.gz", &gz[..30])).unwrap_err();
    assert!(matches!(e, SourceError::Damaged { .. }), "{e}");
    assert!(e.to_string().contains("early.tar.gz"), "{e}");
}

#[test]
fn spool_limit_and_size_parsing() {
    use salvor_source::{default_spool_limit, parse_size, TarOptions, SPOOL_LIMIT_FLOOR};
    assert_eq!(parse_size("10G").unwrap(), 10 << 30);
    assert_eq!(parse_size("500M").unwrap(), 500 << 20);
    assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert_eq!(parse_size("1.5K").unwrap(), 1536);
    assert_eq!(parse_size("unlimited").unwrap(), u64::MAX);
    assert!(parse_size("10X").is_err());
    assert!(parse_size("").is_err());
    assert_eq!(default_spool_limit(1000), SPOOL_LIMIT_FLOOR);
    assert_eq!(default_spool_limit(100 << 30), 3200 << 30);

    // A small archive that decompresses past the limit: a clear error, bounded spool.
    let tmp = scratch();
    let full = sample_tar();
    let path = write(tmp.path(), "small.tar.zst", &zstd(&full));
    let opts = TarOptions {
        spool_limit: Some(4096),
        ..TarOptions::default()
    };
    let e = TarSource::open_with(&path, &opts).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SourceError::SpoolLimit { .. }), "{msg}");
    assert!(
        msg.contains("small.tar.zst") && msg.contains("4096") && msg.contains("--spool-limit"),
        "{msg}"
    );
    // Within the limit it opens.
    let opts = TarOptions {
        spool_limit: Some(full.len() as u64),
        ..TarOptions::default()
    };
    assert!(TarSource::open_with(&path, &opts).is_ok());
    // A reserve larger than any free space: refused before spooling, naming the archive.
    let opts = TarOptions {
        spool_reserve: u64::MAX / 2,
        ..TarOptions::default()
    };
    let e = TarSource::open_with(&path, &opts).unwrap_err();
    assert!(matches!(e, SourceError::SpoolNoSpace { .. }), "{e}");
    assert!(e.to_string().contains("small.tar.zst"), "{e}");
}

/// A decompression bomb: 2 GiB of zeros in one member, a few hundred KB compressed.
/// With a 64 MiB cap it stops quickly, and the spool never grows past the cap.
#[test]
fn decompression_bomb_stops_at_the_spool_limit() {
    use salvor_source::TarOptions;
    use std::io::Write;
    let tmp = scratch();
    for (name, gz) in [("bomb.tar.zst", false), ("bomb.tar.gz", true)] {
        let path = tmp.path().join(name);
        let size: u64 = 2 << 30;
        {
            let f = std::fs::File::create(&path).unwrap();
            let mut w: Box<dyn Write> = if gz {
                Box::new(flate2::write::GzEncoder::new(
                    f,
                    flate2::Compression::fast(),
                ))
            } else {
                Box::new(
                    zstd::stream::write::Encoder::new(f, 1)
                        .unwrap()
                        .auto_finish(),
                )
            };
            let mut h = tar::Header::new_gnu();
            h.set_path("zeros.bin").unwrap();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_cksum();
            w.write_all(h.as_bytes()).unwrap();
            // Only the first 256 MiB are written: the cap must stop reading long before.
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..256 {
                w.write_all(&zeros).unwrap();
            }
        }
        let compressed = std::fs::metadata(&path).unwrap().len();
        assert!(compressed < 2 << 20, "{name}: bomb is {compressed} bytes");
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let opts = TarOptions {
                spool_limit: Some(64 << 20),
                ..TarOptions::default()
            };
            let _ = tx.send(TarSource::open_with(&p, &opts).map(|_| ()));
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the spool limit must stop the bomb within 60 s");
        let e = r.unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, SourceError::SpoolLimit { written, .. } if *written <= 64 << 20),
            "{name}: {msg}"
        );
        assert!(msg.contains(name) && msg.contains("--spool-limit"), "{msg}");
    }
}
