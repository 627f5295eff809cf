//! Shared fixture tree and checker, run against a DirSource and TarSources built from
//! the same description.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use salvor_source::{FileKind, Source, SourceError, Timestamp};

pub const CANARY: &[u8] = b"CANARY-SECRET-must-never-be-returned\n";
pub const FILE_MTIME: Timestamp = Timestamp {
    sec: 1_500_000_000,
    nsec: 123_456_789,
};

pub fn long_dir() -> String {
    format!("long/{}", "d".repeat(90))
}
pub fn long_file() -> String {
    format!("{}/{}.txt", long_dir(), "f".repeat(80))
}
pub fn bad_name() -> OsString {
    OsStr::from_bytes(b"bad\xffname").to_os_string()
}

/// Everything the checker needs to know about the fixture's environment.
pub struct Fixture {
    /// Absolute path of the canary file outside the evidence root.
    pub canary: PathBuf,
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn wrong_kind(r: Result<Box<dyn salvor_source::FileReader>, SourceError>, want: FileKind) {
    match r {
        Err(SourceError::WrongKind { found, .. }) => assert_eq!(found, want),
        Err(e) => panic!("expected WrongKind({want}), got {e}"),
        Ok(_) => panic!("expected WrongKind({want}), got an open file"),
    }
}

fn read_all(src: &dyn Source, path: &str) -> Vec<u8> {
    let mut f = src
        .open(&p(path))
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

/// Walks every path of the source, reading every regular file: the canary's content
/// must never come back.
fn walk_no_canary(src: &dyn Source, dir: &Path, seen: &mut usize) {
    for e in src
        .read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
    {
        let child = dir.join(&e.name);
        let md = src.metadata(&child).unwrap();
        assert_eq!(md.kind, e.kind, "{}", child.display());
        *seen += 1;
        match e.kind {
            FileKind::Dir => walk_no_canary(src, &child, seen),
            FileKind::Regular => {
                let mut v = Vec::new();
                src.open(&child).unwrap().read_to_end(&mut v).unwrap();
                assert!(
                    !v.windows(CANARY.len()).any(|w| w == CANARY),
                    "canary read via {}",
                    child.display()
                );
                assert_eq!(v.len() as u64, md.size);
            }
            k => {
                wrong_kind(src.open(&child), k);
            }
        }
    }
}

fn xattrs_of_interest(src: &dyn Source, path: &str) -> Vec<(String, Vec<u8>)> {
    src.xattrs(&p(path))
        .unwrap_or_else(|e| panic!("xattrs {path}: {e}"))
        .into_iter()
        .filter_map(|(n, v)| {
            let n = n.into_string().ok()?;
            (n.starts_with("user.") || n.starts_with("trusted.")).then_some((n, v))
        })
        .collect()
}

/// The answers every Source must give for the fixture tree.
pub fn check_tree(src: &dyn Source, fx: &Fixture) {
    // Root and listing.
    for root in ["", "/", ".", "./"] {
        assert_eq!(
            src.metadata(&p(root)).unwrap().kind,
            FileKind::Dir,
            "root {root:?}"
        );
    }
    let names: Vec<OsString> = src
        .read_dir(&p("/"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut want: Vec<OsString> = [
        "abs_link", "dir", "dir_link", "fifo", "file.txt", "hard1", "hard2", "long", "opaque",
        "rel_link", "whiteout",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    want.push(bad_name());
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, want);
    let kinds: Vec<(String, FileKind)> = src
        .read_dir(&p("dir"))
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string_lossy().into_owned(), e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("inner.txt".to_string(), FileKind::Regular),
            ("sub".to_string(), FileKind::Dir)
        ]
    );

    // A regular file: every field.
    let md = src.metadata(&p("file.txt")).unwrap();
    assert_eq!(md.kind, FileKind::Regular);
    assert!(md.is_file());
    assert_eq!(md.mode, 0o640);
    assert_eq!((md.uid, md.gid), (1000, 1001));
    assert_eq!(md.size, 12);
    assert_eq!(md.nlink, 1);
    assert_eq!(md.mtime, FILE_MTIME);
    assert_eq!(src.metadata(&p("/./file.txt")).unwrap(), md);
    assert_eq!(read_all(src, "file.txt"), b"hello world\n");
    let mut f = src.open(&p("/file.txt")).unwrap();
    f.seek(SeekFrom::Start(6)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "world\n");
    f.seek(SeekFrom::End(-3)).unwrap();
    s.clear();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "ld\n");
    assert_eq!(
        src.read_limited(&p("file.txt"), 12).unwrap(),
        b"hello world\n"
    );
    assert!(matches!(
        src.read_limited(&p("file.txt"), 11),
        Err(SourceError::Invalid { .. })
    ));
    assert_eq!(read_all(src, "dir/inner.txt"), b"inner\n");
    assert_eq!(read_all(src, "dir/sub/deep.txt"), b"deep\n");
    assert_eq!(src.metadata(&p("dir")).unwrap().mode, 0o755);
    assert_eq!(src.metadata(&p("dir/sub")).unwrap().kind, FileKind::Dir);

    // Long names and non-UTF-8 names.
    assert_eq!(read_all(src, &long_file()), b"long\n");
    assert_eq!(src.metadata(&p(&long_dir())).unwrap().kind, FileKind::Dir);
    let bad = PathBuf::from(bad_name());
    let mut v = Vec::new();
    src.open(&bad).unwrap().read_to_end(&mut v).unwrap();
    assert_eq!(v, b"not utf-8\n");
    assert_eq!(src.metadata(&bad).unwrap().kind, FileKind::Regular);

    // Symlinks: lstat'ed, read, never followed.
    let abs_target = fx.canary.clone();
    let md = src.metadata(&p("abs_link")).unwrap();
    assert!(md.is_symlink());
    assert_eq!(md.size, abs_target.as_os_str().len() as u64);
    assert_eq!(src.read_link(&p("abs_link")).unwrap(), abs_target);
    assert_eq!(src.read_link(&p("rel_link")).unwrap(), p("../canary.txt"));
    assert_eq!(src.read_link(&p("dir_link")).unwrap(), p("dir"));
    assert!(matches!(
        src.read_link(&p("file.txt")),
        Err(SourceError::WrongKind {
            found: FileKind::Regular,
            ..
        })
    ));
    wrong_kind(src.open(&p("abs_link")), FileKind::Symlink);
    wrong_kind(src.open(&p("rel_link")), FileKind::Symlink);
    wrong_kind(src.open(&p("dir_link")), FileKind::Symlink);
    assert!(src.read_limited(&p("abs_link"), 1 << 20).is_err());
    assert!(matches!(
        src.open(&p("dir_link/inner.txt")),
        Err(SourceError::SymlinkInPath { .. })
    ));
    assert!(matches!(
        src.metadata(&p("dir_link/inner.txt")),
        Err(SourceError::SymlinkInPath { .. })
    ));
    assert!(matches!(
        src.read_dir(&p("dir_link")),
        Err(SourceError::WrongKind {
            found: FileKind::Symlink,
            ..
        })
    ));
    assert!(matches!(
        src.xattrs(&p("dir_link/inner.txt")),
        Err(SourceError::SymlinkInPath { .. })
    ));

    // Escapes, missing paths, files used as directories.
    for bad in ["../x", "dir/../file.txt", "/..", "../canary.txt"] {
        assert!(
            matches!(src.metadata(&p(bad)), Err(SourceError::Escape { .. })),
            "{bad}"
        );
        assert!(
            matches!(src.open(&p(bad)), Err(SourceError::Escape { .. })),
            "{bad}"
        );
    }
    let e = src.metadata(&p("nope")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string().contains("nope"),
        "error must name the path: {e}"
    );
    assert!(src
        .open(&p("dir/nope/x"))
        .err()
        .is_some_and(|e| e.is_not_found()));
    assert!(!src.exists(&p("nope")));
    assert!(src.exists(&p("abs_link")));
    assert!(matches!(
        src.open(&p("file.txt/x")),
        Err(SourceError::WrongKind {
            found: FileKind::Regular,
            ..
        })
    ));

    // Special files: never opened.
    let md = src.metadata(&p("whiteout")).unwrap();
    assert_eq!(md.kind, FileKind::CharDevice);
    assert_eq!((md.rdev_major, md.rdev_minor), (0, 0));
    assert!(md.is_overlay_whiteout());
    assert_eq!(md.mode, 0);
    wrong_kind(src.open(&p("whiteout")), FileKind::CharDevice);
    assert_eq!(src.metadata(&p("fifo")).unwrap().kind, FileKind::Fifo);
    wrong_kind(src.open(&p("fifo")), FileKind::Fifo);
    wrong_kind(src.open(&p("dir")), FileKind::Dir);
    wrong_kind(src.open(&p("")), FileKind::Dir);
    assert!(matches!(
        src.read_dir(&p("file.txt")),
        Err(SourceError::WrongKind {
            found: FileKind::Regular,
            ..
        })
    ));

    // Hardlinks.
    let h1 = src.metadata(&p("hard1")).unwrap();
    let h2 = src.metadata(&p("hard2")).unwrap();
    assert_eq!((h1.dev, h1.ino), (h2.dev, h2.ino));
    assert_eq!((h1.nlink, h2.nlink), (2, 2));
    assert_eq!(h1, h2);
    assert_ne!(h1.ino, src.metadata(&p("file.txt")).unwrap().ino);
    assert_eq!(read_all(src, "hard2"), b"shared\n");
    assert_eq!(read_all(src, "hard1"), b"shared\n");

    // Extended attributes, including trusted.* and on special files.
    assert_eq!(
        xattrs_of_interest(src, "opaque"),
        vec![("trusted.overlay.opaque".to_string(), b"y".to_vec())]
    );
    assert_eq!(
        src.xattr(&p("opaque"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        xattrs_of_interest(src, "opaque/x.txt"),
        vec![
            ("trusted.zz".to_string(), b"last".to_vec()),
            ("user.x".to_string(), b"1".to_vec())
        ]
    );
    assert_eq!(
        xattrs_of_interest(src, "whiteout"),
        vec![("trusted.test".to_string(), b"w".to_vec())]
    );
    assert_eq!(
        xattrs_of_interest(src, "abs_link"),
        vec![("trusted.link".to_string(), b"l".to_vec())]
    );
    assert_eq!(xattrs_of_interest(src, "file.txt"), vec![]);
    assert_eq!(xattrs_of_interest(src, "fifo"), vec![]);
    assert_eq!(src.xattr(&p("file.txt"), "user.x").unwrap(), None);

    // Nothing anywhere returns the canary.
    let mut seen = 0;
    walk_no_canary(src, Path::new(""), &mut seen);
    assert!(seen >= 18, "walked only {seen} entries");
}

// ---------------------------------------------------------------------------------
// Fixture builders

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("lsetxattr {name} on {}: {e} (these tests must run as root on a filesystem with xattrs)", path.display()));
}

/// Builds the fixture tree at `base/root`, with the canary at `base/canary.txt`.
/// Returns (root, fixture). Fails loudly when not root (mknod, trusted.* xattrs, chown).
pub fn build_dir(base: &Path) -> (PathBuf, Fixture) {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    let root = base.join("root");
    let canary = base.join("canary.txt");
    fs::write(&canary, CANARY).unwrap();
    fs::create_dir(&root).unwrap();
    let perm = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap()
    };

    let f = root.join("file.txt");
    fs::write(&f, b"hello world\n").unwrap();
    perm(&f, 0o640);
    std::os::unix::fs::chown(&f, Some(1000), Some(1001)).expect("chown (tests must run as root)");
    let t = rustix::fs::Timespec {
        tv_sec: FILE_MTIME.sec,
        tv_nsec: FILE_MTIME.nsec as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        &f,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();

    fs::create_dir_all(root.join("dir/sub")).unwrap();
    perm(&root.join("dir"), 0o755);
    perm(&root.join("dir/sub"), 0o755);
    fs::write(root.join("dir/inner.txt"), b"inner\n").unwrap();
    fs::write(root.join("dir/sub/deep.txt"), b"deep\n").unwrap();
    fs::create_dir_all(root.join(long_dir())).unwrap();
    fs::write(root.join(long_file()), b"long\n").unwrap();
    fs::write(root.join(bad_name()), b"not utf-8\n").unwrap();

    symlink(&canary, root.join("abs_link")).unwrap();
    set_xattr(&root.join("abs_link"), "trusted.link", b"l");
    symlink("../canary.txt", root.join("rel_link")).unwrap();
    symlink("dir", root.join("dir_link")).unwrap();

    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    perm(&root.join("fifo"), 0o644);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("whiteout"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .expect("mknod c 0 0 failed: these tests must run as root (CAP_MKNOD)");
    set_xattr(&root.join("whiteout"), "trusted.test", b"w");

    fs::write(root.join("hard1"), b"shared\n").unwrap();
    fs::hard_link(root.join("hard1"), root.join("hard2")).unwrap();

    fs::create_dir(root.join("opaque")).unwrap();
    set_xattr(&root.join("opaque"), "trusted.overlay.opaque", b"y");
    fs::write(root.join("opaque/x.txt"), b"x\n").unwrap();
    set_xattr(&root.join("opaque/x.txt"), "user.x", b"1");
    set_xattr(&root.join("opaque/x.txt"), "trusted.zz", b"last");
    (root, Fixture { canary })
}

/// A PAX extended header (`x`) with the given records.
pub fn pax_header<W: std::io::Write>(b: &mut tar::Builder<W>, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (k, v) in records {
        let body_len = 1 + k.len() + 1 + v.len() + 1; // " k=v\n"
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len = len.to_string().len() + body_len;
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeaders/x").unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data.as_slice()).unwrap();
}

pub fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

pub fn add_file<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    path: impl AsRef<Path>,
    data: &[u8],
    mode: u32,
) {
    let mut h = header(tar::EntryType::Regular, mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// The same tree as [`build_dir`], as an uncompressed tar (GNU headers, PAX records for
/// xattrs and the nanosecond mtime, GNU long names, some directories only implied).
pub fn build_tar(fx: &Fixture) -> Vec<u8> {
    use tar::EntryType as T;
    let mut b = tar::Builder::new(Vec::new());
    pax_header(&mut b, &[("mtime", b"1500000000.123456789")]);
    let mut h = header(T::Regular, 0o640);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_size(12);
    b.append_data(&mut h, "./file.txt", &b"hello world\n"[..])
        .unwrap();

    let mut h = header(T::Directory, 0o755);
    b.append_data(&mut h, "dir/", std::io::empty()).unwrap();
    add_file(&mut b, "dir/inner.txt", b"inner\n", 0o644);
    // dir/sub/ and long/... are implicit.
    add_file(&mut b, "dir/sub/deep.txt", b"deep\n", 0o644);
    add_file(&mut b, long_file(), b"long\n", 0o644);
    add_file(&mut b, PathBuf::from(bad_name()), b"not utf-8\n", 0o644);

    pax_header(&mut b, &[("SCHILY.xattr.trusted.link", b"l")]);
    let mut h = header(T::Symlink, 0o777);
    b.append_link(&mut h, "abs_link", &fx.canary).unwrap();
    let mut h = header(T::Symlink, 0o777);
    b.append_link(&mut h, "rel_link", "../canary.txt").unwrap();
    let mut h = header(T::Symlink, 0o777);
    b.append_link(&mut h, "dir_link", "dir").unwrap();

    let mut h = header(T::Fifo, 0o644);
    b.append_data(&mut h, "fifo", std::io::empty()).unwrap();
    pax_header(&mut b, &[("SCHILY.xattr.trusted.test", b"w")]);
    let mut h = header(T::Char, 0);
    h.set_device_major(0).unwrap();
    h.set_device_minor(0).unwrap();
    b.append_data(&mut h, "whiteout", std::io::empty()).unwrap();

    add_file(&mut b, "hard1", b"shared\n", 0o644);
    let mut h = header(T::Link, 0o644);
    b.append_link(&mut h, "hard2", "hard1").unwrap();

    pax_header(&mut b, &[("SCHILY.xattr.trusted.overlay.opaque", b"y")]);
    let mut h = header(T::Directory, 0o755);
    b.append_data(&mut h, "opaque/", std::io::empty()).unwrap();
    // bsdtar style: URL-encoded name, base64 value.
    pax_header(
        &mut b,
        &[
            ("SCHILY.xattr.user.x", b"1"),
            ("LIBARCHIVE.xattr.trusted%2Ezz", b"bGFzdA=="),
        ],
    );
    add_file(&mut b, "opaque/x.txt", b"x\n", 0o644);
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A scratch directory on the build's filesystem (xattr-capable, unlike some /tmp).
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("salvor-source-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}
