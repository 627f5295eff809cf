//! DirSource on a real tree: metadata, refusal to follow or open special files, xattrs,
//! and no access-time change.
mod common;

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
