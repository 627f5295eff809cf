//! DirSource on a real tree: metadata, refusal to follow or open special files, xattrs,
//! and no access-time change.
use crate::common;

use std::io::Read;
use std::path::Path;

use common::*;
use salvor_source::{open_evidence, DirSource, FileKind, Source, SourceError};

#[test]
fn dir_source_answers() {
    let tmp = scratch();
    let (root, fx) = build_dir(tmp.path());
    let src = DirSource::new(&root).unwrap();
    check_tree(&src, &fx);
    assert!(src.describe().contains(root.to_str().unwrap()));
    // open_evidence picks DirSource for a directory.
    let ev = open_evidence(&root).unwrap();
    check_tree(ev.as_ref(), &fx);
}

#[test]
fn dir_source_real_inode_data() {
    let tmp = scratch();
    let (root, _fx) = build_dir(tmp.path());
    let src = DirSource::new(&root).unwrap();
    let md = src.metadata(Path::new("file.txt")).unwrap();
    let st = std::fs::symlink_metadata(root.join("file.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(md.ino, st.ino());
    assert_eq!(md.dev, st.dev());
    assert_eq!(md.ctime.sec, st.ctime());
    assert!(md.btime.is_some(), "ext4 has birth times via statx");
    let hard = src.metadata(Path::new("hard1")).unwrap();
    assert_eq!(
        hard.ino,
        std::fs::symlink_metadata(root.join("hard2")).unwrap().ino()
    );
    // Directory nlink is the real one.
    assert_eq!(src.metadata(Path::new("dir")).unwrap().nlink, 3);
}

#[test]
fn open_does_not_change_atime() {
    let tmp = scratch();
    let (root, _fx) = build_dir(tmp.path());
    let f = root.join("dir/inner.txt");
    let old = rustix::fs::Timespec {
        tv_sec: 1_000_000_000,
        tv_nsec: 5,
    };
    let mtime = rustix::fs::Timespec {
        tv_sec: 1_000_000_100,
        tv_nsec: 7,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        &f,
        &rustix::fs::Timestamps {
            last_access: old,
            last_modification: mtime,
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    let src = DirSource::new(&root).unwrap();
    let before = src.metadata(Path::new("dir/inner.txt")).unwrap();
    assert_eq!((before.atime.sec, before.atime.nsec), (1_000_000_000, 5));
    let mut v = Vec::new();
    src.open(Path::new("dir/inner.txt"))
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    assert_eq!(v, b"inner\n");
    src.xattrs(Path::new("dir/inner.txt")).unwrap();
    let after = src.metadata(Path::new("dir/inner.txt")).unwrap();
    assert_eq!(
        after.atime, before.atime,
        "reading evidence changed its atime"
    );
    assert_eq!(after.mtime, before.mtime);
    assert_eq!(after.ctime, before.ctime);
}

#[test]
fn fifo_and_device_never_block() {
    // If open() opened the fifo O_RDONLY this test would hang: run it on a thread
    // with a deadline.
    let tmp = scratch();
    let (root, _fx) = build_dir(tmp.path());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let src = DirSource::new(&root).unwrap();
        let r1 = matches!(
            src.open(Path::new("fifo")),
            Err(SourceError::WrongKind {
                found: FileKind::Fifo,
                ..
            })
        );
        let r2 = src.xattrs(Path::new("fifo")).is_ok();
        let r3 = src.xattrs(Path::new("whiteout")).is_ok();
        tx.send((r1, r2, r3)).unwrap();
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("fifo handling blocked");
    assert_eq!(got, (true, true, true));
}

#[test]
fn missing_root_is_an_error_naming_it() {
    let tmp = scratch();
    let e = DirSource::new(&tmp.path().join("absent")).unwrap_err();
    assert!(e.is_not_found());
    assert!(e.to_string().contains("absent"));
}

/// The descriptor cache (recent directories and the spine every 64 levels) gives the same
/// answers as walking from the root, in any order: down a 300-deep tree, back up it
/// (post-order), and across branches; a symlink on the way is still refused after its
/// siblings were cached; and the walk is linear (seconds, not minutes, at 4,000 deep).
#[test]
fn cached_descriptors_answer_like_fresh_walks() {
    use std::os::unix::fs::symlink;
    let tmp = scratch();
    let root = tmp.path().join("tree");
    let depth = 300;
    let mut p = root.clone();
    let mut rels = Vec::new();
    let mut rel = std::path::PathBuf::new();
    for i in 0..depth {
        p.push("d");
        rel.push("d");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("f"), vec![b'x'; i]).unwrap();
        rels.push(rel.join("f"));
        rels.push(rel.clone());
        if i == 150 {
            symlink("/etc", p.join("link")).unwrap();
            std::fs::create_dir(p.join("side")).unwrap();
        }
    }
    let src = DirSource::new(&root).unwrap();
    let fresh = |r: &Path| {
        DirSource::new(&root)
            .unwrap()
            .metadata(r)
            .map(|m| (m.ino, m.size))
    };
    let mut order = rels.clone();
    order.extend(rels.iter().rev().cloned());
    order.extend(rels.iter().step_by(7).cloned());
    for r in &order {
        let got = src.metadata(r).map(|m| (m.ino, m.size)).unwrap();
        assert_eq!(got, fresh(r).unwrap(), "{}", r.display());
    }
    let mut through = rels[301].clone();
    through.push("link/passwd");
    assert!(src.metadata(&rels[301].join("side")).is_ok());
    assert!(matches!(
        src.metadata(&through),
        Err(SourceError::SymlinkInPath { .. })
    ));
    assert_eq!(src.read_dir(&rels[301]).unwrap().len(), 4);

    // 4,000 deep, down and back up: linear.
    let t0 = std::time::Instant::now();
    let deep = tmp.path().join("deep");
    std::fs::create_dir(&deep).unwrap();
    let mut fd =
        rustix::fs::open(&deep, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
    for _ in 0..4000 {
        rustix::fs::mkdirat(&fd, "d", rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
        fd = rustix::fs::openat(
            &fd,
            "d",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
    }
    let src = DirSource::new(&deep).unwrap();
    let mut rel = std::path::PathBuf::new();
    let mut all = Vec::new();
    for _ in 0..4000 {
        rel.push("d");
        all.push(rel.clone());
    }
    for r in all.iter().chain(all.iter().rev()) {
        assert!(src.metadata(r).unwrap().is_dir());
        assert!(src.xattrs(r).is_ok());
    }
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        t0.elapsed()
    );
}
