//! Differential tests: images built with `mkfs.xfs -p protofile` from a source tree,
//! xattrs added with `xfs_db -x attr_set`; salvor-xfs must agree with the source tree
//! (kinds, modes, owners, sizes, contents, link targets, device numbers), with xfs_db
//! (inode numbers, modes, owners, link counts, sizes, all four timestamps) and with the
//! xattrs that were set.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use salvor_source::{FileKind, Source};

const BIGDIR_FILES: usize = 3000;

/// The source tree, built once per test binary.
fn src() -> &'static Path {
    static SRC: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &SRC.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let s = t.path().join("src");
        build_src(&s, BIGDIR_FILES);
        let proto = t.path().join("proto.txt");
        write_proto(&s, &proto);
        (t, s)
    })
    .1
}

fn proto() -> PathBuf {
    src().parent().unwrap().join("proto.txt")
}

/// Every path of the source tree that a protofile can express, with its lstat.
fn src_paths(root: &Path) -> BTreeMap<PathBuf, std::fs::Metadata> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if name.contains(' ') || name.contains(':') {
                continue;
            }
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = Path::new("/").join(e.path().strip_prefix(root).unwrap());
            if md.is_dir() {
                stack.push(e.path());
            }
            out.insert(rel, md);
        }
    }
    out
}

struct Counts {
    paths: usize,
    db_fields: usize,
    contents: usize,
    xattrs: usize,
    in_ag1_plus: usize,
}

fn run(name: &str, opts: &str, size: &str, block_size: usize, v5: bool) -> Counts {
    if !have_xfsprogs() {
        return Counts {
            paths: 0,
            db_fields: 0,
            contents: 0,
            xattrs: 0,
            in_ag1_plus: 0,
        };
    }
    let src = src();
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join(format!("{name}.img"));
    mkfs(&proto(), &img, opts, size);
    let expected = set_xattrs(&img, block_size);
    let fs = open(&img);
    let rep = fs.report();
    eprintln!("{name}: {rep:#?}");
    assert_eq!(rep.version, if v5 { 5 } else { 4 });
    assert_eq!(rep.block_size as usize, block_size);
    assert!(rep.log.is_clean(), "{name}: log {:?}", rep.log);
    assert_eq!(rep.checksum_failures, 0, "{name}: {:?}", rep.warnings);
    assert!(rep.warnings.is_empty(), "{name}: {:?}", rep.warnings);
    assert_eq!(rep.checksums_verified, v5);

    let seen = walk(&fs);
    let srcmd = src_paths(src);
    let mut counts = Counts {
        paths: 0,
        db_fields: 0,
        contents: 0,
        xattrs: 0,
        in_ag1_plus: 0,
    };
    // 1. Against the source tree.
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        srcmd.keys().collect::<Vec<_>>(),
        "{name}: the set of paths differs"
    );
    let shift = {
        // inode number → AG: agno = ino >> (agblklog + inopblog)
        let agblklog = 64 - (rep.ag_blocks as u64 - 1).leading_zeros();
        let inopblog = (rep.block_size / rep.inode_size as u32).trailing_zeros();
        agblklog + inopblog
    };
    for (p, s) in &seen {
        let m = &srcmd[p];
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::Regular
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::Fifo
        };
        assert_eq!(s.md.kind, kind, "{name}: {}", p.display());
        // Protofiles cannot express the sticky bit.
        assert_eq!(
            s.md.mode & 0o6777,
            m.mode() & 0o6777,
            "{name}: {}",
            p.display()
        );
        assert_eq!(
            (s.md.uid, s.md.gid),
            (m.uid(), m.gid()),
            "{name}: {}",
            p.display()
        );
        let host = src.join(p.strip_prefix("/").unwrap());
        match kind {
            FileKind::Regular => {
                assert_eq!(s.md.size, m.len(), "{name}: {}", p.display());
                assert_eq!(
                    s.sha.as_deref().unwrap(),
                    sha256_file(&host),
                    "{name}: {}",
                    p.display()
                );
                counts.contents += 1;
                if s.md.ino >> shift >= 1 && s.md.size > 0 {
                    counts.in_ag1_plus += 1;
                }
            }
            FileKind::Symlink => {
                assert_eq!(
                    s.link.as_ref().unwrap(),
                    &std::fs::read_link(&host).unwrap()
                );
                assert_eq!(
                    s.md.size,
                    std::fs::read_link(&host).unwrap().as_os_str().len() as u64
                );
            }
            FileKind::CharDevice | FileKind::BlockDevice => {
                assert_eq!(
                    (s.md.rdev_major as u64, s.md.rdev_minor as u64),
                    (libc_major(m.rdev()), libc_minor(m.rdev())),
                    "{name}: {}",
                    p.display()
                );
            }
            _ => {}
        }
        counts.paths += 1;
    }
    assert!(seen[Path::new("/whiteout")].md.is_overlay_whiteout());
    assert!(
        counts.in_ag1_plus >= 8,
        "{name}: only {} files in AG ≥ 1",
        counts.in_ag1_plus
    );

    // 2. Against xfs_db.
    let paths: Vec<String> = seen.keys().map(|p| p.display().to_string()).collect();
    let db = xfs_db_inodes(&img, &paths, v5);
    for (p, s) in &seen {
        let d = db
            .get(&p.display().to_string())
            .unwrap_or_else(|| panic!("{name}: xfs_db has no {}", p.display()));
        let f = |k: &str| -> &str {
            d.fields
                .get(k)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("{name}: {}: xfs_db printed no {k}: {d:?}", p.display()))
        };
        let ctx = format!("{name}: {}", p.display());
        assert_eq!(s.md.ino, d.ino, "{ctx}");
        let mode = u32::from_str_radix(f("core.mode"), 8).unwrap();
        assert_eq!(s.md.mode, mode & 0o7777, "{ctx}");
        assert_eq!(s.md.uid.to_string(), f("core.uid"), "{ctx}");
        assert_eq!(s.md.gid.to_string(), f("core.gid"), "{ctx}");
        assert_eq!(s.md.nlink.to_string(), f("core.nlinkv2"), "{ctx}");
        assert_eq!(s.md.size.to_string(), f("core.size"), "{ctx}");
        for (t, k) in [
            (s.md.atime, "atime"),
            (s.md.mtime, "mtime"),
            (s.md.ctime, "ctime"),
        ] {
            assert_eq!(t.sec, parse_ctime(f(&format!("core.{k}.sec"))), "{ctx} {k}");
            assert_eq!(
                t.nsec.to_string(),
                f(&format!("core.{k}.nsec")),
                "{ctx} {k}"
            );
        }
        if v5 {
            let b = s.md.btime.expect("v5 has crtime");
            assert_eq!(b.sec, parse_ctime(f("v3.crtime.sec")), "{ctx}");
            assert_eq!(b.nsec.to_string(), f("v3.crtime.nsec"), "{ctx}");
        } else {
            assert!(s.md.btime.is_none());
        }
        counts.db_fields += 11 + if v5 { 2 } else { 0 };
    }
    // The structures the test means to cover really are on the image.
    let forms = xfs_db(
        &img,
        &[
            "path /bigdir".into(),
            "print core.format core.nextents".into(),
            "path /attrs/node".into(),
            "print core.aformat core.naextents".into(),
            "ablock 0".into(),
            if v5 {
                "print hdr.info.hdr.magic".into()
            } else {
                "print hdr.info.magic".into()
            },
            "path /maxlink".into(),
            "print core.format".into(),
            "path /etc".into(),
            "print core.format".into(),
        ],
        false,
    );
    eprintln!("{name}: forms:\n{forms}");
    assert!(
        forms.contains("core.format = 1 (local)"),
        "{name}: short-form dir"
    );
    assert!(
        forms.contains("core.format = 2 (extents)"),
        "{name}: remote symlink"
    );
    assert!(
        forms.contains("core.format = 3 (btree)"),
        "{name}: B-tree directory"
    );
    assert!(
        forms.contains("magic = 0x3ebe") || forms.contains("magic = 0xfebe"),
        "{name}: attribute node block"
    );

    // 3. Xattrs: exactly what was set, everywhere.
    for (p, s) in &seen {
        let want = expected
            .get(&p.display().to_string())
            .cloned()
            .unwrap_or_default();
        let got: Vec<(String, Vec<u8>)> = s
            .xattrs
            .iter()
            .map(|(n, v)| (n.to_str().unwrap().to_string(), v.clone()))
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: {}: xattr names",
            p.display()
        );
        assert!(got == want, "{name}: {}: xattrs differ", p.display());
        counts.xattrs += got.len();
    }
    assert_eq!(
        fs.xattr(Path::new("/dir_opaque"), "trusted.overlay.opaque")
            .unwrap(),
        Some(b"y".to_vec())
    );
    // The report's warnings stay empty after reading everything.
    let rep = fs.report();
    assert_eq!(rep.checksum_failures, 0, "{name}: {:?}", rep.warnings);
    // mkfs.xfs 6.1 writes v5 remote symlinks without their header: that, and only that,
    // is reported.
    let unexpected: Vec<_> = rep
        .warnings
        .iter()
        .filter(|w| !(v5 && w.contains("remote symlink block without its v5 header")))
        .collect();
    assert!(unexpected.is_empty(), "{name}: {unexpected:?}");
    eprintln!(
        "{name}: {} paths, {} xfs_db fields, {} contents ({} in AG >= 1), {} xattrs compared",
        counts.paths, counts.db_fields, counts.contents, counts.in_ag1_plus, counts.xattrs
    );
    counts
}

#[test]
#[ignore = "needs mkfs.xfs and xfs_db (xfsprogs): re-makes the image and compares with xfs_db; CI runs it"]
fn v5_4k() {
    run("v5-4k", "-d agcount=4", "160M", 4096, true);
}

#[test]
#[ignore = "needs mkfs.xfs and xfs_db (xfsprogs): re-makes the image and compares with xfs_db; CI runs it"]
fn v5_1k_blocks() {
    run("v5-1k", "-b size=1024 -d agcount=4", "160M", 1024, true);
}

#[test]
#[ignore = "needs mkfs.xfs and xfs_db (xfsprogs): re-makes the image and compares with xfs_db; CI runs it"]
fn v5_dirblock_8k_nrext64_nobigtime() {
    run(
        "v5-8kdir",
        "-d agcount=5 -n size=8192 -i nrext64=1 -m bigtime=0",
        "160M",
        4096,
        true,
    );
}

#[test]
#[ignore = "needs mkfs.xfs and xfs_db (xfsprogs): re-makes the image and compares with xfs_db; CI runs it"]
fn v4() {
    run("v4", "-m crc=0 -d agcount=4", "160M", 4096, false);
}

#[test]
#[ignore = "needs mkfs.xfs and xfs_db (xfsprogs): re-makes the image and compares with xfs_db; CI runs it"]
fn v4_no_ftype_512_blocks() {
    run(
        "v4-noftype",
        "-m crc=0 -n ftype=0 -b size=512 -d agcount=3",
        "160M",
        512,
        false,
    );
}

/// Holes, unwritten extents and several extents, in files of every AG: the extent list
/// of a 400-block file is rewritten with xfs_db into
/// `[0,50) data | [50,100) hole | [100,150) unwritten | [150,250) data | [250,300) hole |
/// [300,400) data`; reads (sequential and after seeks) must give the source bytes with
/// zeros in the holes and the unwritten range.
#[test]
#[ignore = "needs mkfs.xfs and xfs_db (xfsprogs): re-makes the image and compares with xfs_db; CI runs it"]
fn holes_unwritten_and_many_extents() {
    use std::io::{Read, Seek, SeekFrom};
    if !have_xfsprogs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let data: Vec<u8> = (0..400 * 4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for d in 0..4 {
        std::fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
        std::fs::write(src.join(format!("d{d}/f")), &data).unwrap();
    }
    let proto = tmp.path().join("proto");
    write_proto(&src, &proto);
    let img = tmp.path().join("img");
    mkfs(&proto, &img, "-d agcount=4", "64M");
    let mut cmds = Vec::new();
    for d in 0..4 {
        let out = xfs_db(
            &img,
            &[format!("path /d{d}/f"), "print u3.bmx".into()],
            false,
        );
        // "0:[0,SB,400,0]"
        let rec = out.lines().find(|l| l.starts_with("0:[")).unwrap();
        let f: Vec<u64> = rec[3..rec.len() - 1]
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!((f[0], f[2]), (0, 400), "{out}");
        let sb = f[1];
        cmds.push(format!("path /d{d}/f"));
        cmds.push("write core.nextents 4".into());
        for (i, (off, len, flag)) in [
            (0u64, 50u64, 0u8),
            (100, 50, 1),
            (150, 100, 0),
            (300, 100, 0),
        ]
        .into_iter()
        .enumerate()
        {
            cmds.push(format!("write u3.bmx[{i}].startoff {off}"));
            cmds.push(format!("write u3.bmx[{i}].startblock {}", sb + off));
            cmds.push(format!("write u3.bmx[{i}].blockcount {len}"));
            cmds.push(format!("write u3.bmx[{i}].extentflag {flag}"));
        }
    }
    xfs_db(&img, &cmds, true);
    let mut want = data.clone();
    for (a, b) in [(50, 150), (250, 300)] {
        want[a * 4096..b * 4096].fill(0);
    }
    let fs = open(&img);
    let rep = fs.report();
    let agblklog = 64 - (rep.ag_blocks as u64 - 1).leading_zeros();
    let mut in_ag = std::collections::BTreeSet::new();
    for d in 0..4 {
        let p = PathBuf::from(format!("/d{d}/f"));
        let md = fs.metadata(&p).unwrap();
        let inopblog = (rep.block_size / rep.inode_size as u32).trailing_zeros();
        in_ag.insert(md.ino >> (agblklog + inopblog));
        let got = fs.read_limited(&p, 1 << 24).unwrap();
        assert!(got == want, "{}: content differs", p.display());
        // Seeks into the middle of each region.
        let mut f = fs.open(&p).unwrap();
        for blk in [10u64, 60, 120, 200, 270, 399] {
            let off = blk * 4096 + 123;
            f.seek(SeekFrom::Start(off)).unwrap();
            let mut b = [0u8; 5000];
            let n = f.read(&mut b).unwrap();
            assert!(n > 0);
            assert_eq!(
                &b[..n],
                &want[off as usize..off as usize + n],
                "{} @{off}",
                p.display()
            );
        }
    }
    assert!(
        in_ag.len() >= 2 && in_ag.iter().any(|&a| a >= 1),
        "AGs {in_ag:?}"
    );
    assert_eq!(
        fs.report().checksum_failures,
        0,
        "{:?}",
        fs.report().warnings
    );
}
