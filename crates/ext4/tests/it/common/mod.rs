//! Test image builders (mke2fs -d, debugfs) and a tree walker over a `Source`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use salvor_ext4::Ext4;
use salvor_source::{FileDevice, FileKind, Metadata, Source};
use sha2::{Digest, Sha256};

pub fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-ec").arg(cmd).status().expect("sh");
    assert!(st.success(), "command failed: {cmd}");
}

pub fn sh_out(cmd: &str) -> String {
    let o = Command::new("sh").arg("-ec").arg(cmd).output().expect("sh");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// Builds the source tree. `big_xattr`: add a 3000-byte xattr (needs 4 KiB blocks).
pub fn build_src(root: &Path, files_in_bigdir: usize, big_xattr: bool) {
    let r = root.display();
    std::fs::create_dir_all(root).unwrap();
    let s = format!(
        r#"
cd {r}
mkdir -p etc dir_opaque bigdir deep sticky
echo hello > etc/file.txt
ln etc/file.txt etc/hardlink.txt
ln etc/file.txt hardlink2
ln -s ../etc/file.txt etc/symlink
ln -s /very/long/target/path/that/is/definitely/longer/than/sixty/bytes/for/sure/yes longlink
mknod whiteout c 0 0
mknod null c 1 3
mknod sda1 b 8 1
mknod bigdev c 300 70000
mkfifo fifo
head -c 5000 /dev/urandom > ping
chmod 4755 ping
chown 100000:200000 etc/file.txt
chmod 1777 sticky
truncate -s 10M sparse
printf middle | dd of=sparse bs=1 seek=3000000 conv=notrunc status=none
echo tail >> sparse
for i in $(seq 0 39); do head -c 4096 /dev/urandom | dd of=frag bs=4096 seek=$((i*2)) conv=notrunc status=none; done
truncate -s 80M hugesparse
printf end | dd of=hugesparse bs=1 seek=75000000 conv=notrunc status=none
head -c 300000 /dev/urandom > medium
head -c 3000000 /dev/urandom > big
: > empty
head -c 4096 /dev/urandom > exact4k
head -c 40 /dev/urandom > tiny40
head -c 100 /dev/urandom > small100
fallocate -l 65536 prealloc
echo old > old1901
touch -d '1901-12-20 00:00:00' old1901
echo old > old1965
touch -d '1965-01-01 00:00:00.25' old1965
printf 'x' > "$(printf 'caf\351')"
printf 'y' > "sp ace"
"#
    );
    sh(&s);
    // The xattrs (the `xattr` crate, i.e. setxattr(2); no setfattr needed). The capability is
    // set after `chmod 4755 ping` instead of before: chmod keeps it either way.
    let set = |path: &str, name: &str, value: &[u8]| {
        xattr::set(root.join(path), name, value)
            .unwrap_or_else(|e| panic!("setxattr {name} on {path}: {e}"))
    };
    set("dir_opaque", "trusted.overlay.opaque", b"y");
    set("dir_opaque", "user.overlay.opaque", b"y");
    set("dir_opaque", "trusted.overlay.redirect", b"/some/where");
    set(
        "ping",
        "security.capability",
        &hex::decode("0100000200200000000000000000000000000000").unwrap(),
    );
    set("etc/file.txt", "user.x", b"1");
    if big_xattr {
        set("etc/file.txt", "user.big", &[b'x'; 3000]);
    }
    std::fs::write(root.join("etc/acl"), b"acl").ok();
    set(
        "etc/acl",
        "system.posix_acl_access",
        &hex::decode("0200000001000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000400ffffffff").unwrap(),
    );
    // deep tree
    let mut p = root.join("deep");
    for i in 0..40 {
        p = p.join(format!("level{i}"));
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("bottom"), b"deep file\n").unwrap();
    for i in 0..files_in_bigdir {
        std::fs::write(
            root.join("bigdir")
                .join(format!("file_with_a_longish_name_{i:05}")),
            format!("{i}\n"),
        )
        .unwrap();
    }
}

/// `mke2fs -q -F {opts} -d src img size`.
pub fn mkfs(src: &Path, img: &Path, opts: &str, size: &str) {
    sh(&format!(
        "mke2fs -q -F {opts} -d {} {} {size}",
        src.display(),
        img.display()
    ));
}

pub fn debugfs_w(img: &Path, cmds: &str) {
    let f = img.with_extension("cmds");
    std::fs::write(&f, cmds).unwrap();
    sh(&format!(
        "debugfs -w -f {} {} >/dev/null 2>&1",
        f.display(),
        img.display()
    ));
}

pub fn open(img: &Path) -> Ext4 {
    let dev = FileDevice::open(img).unwrap();
    Ext4::open(Arc::new(dev)).unwrap()
}

/// Everything salvor says about one path.
#[derive(Debug, Clone)]
pub struct Seen {
    pub md: Metadata,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    pub link: Option<PathBuf>,
    pub sha: Option<String>,
}

/// Walks the whole tree (recursively), reading every file.
pub fn walk(src: &dyn Source) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::from("/")];
    while let Some(dir) = todo.pop() {
        for e in src.read_dir(&dir).unwrap() {
            let p = dir.join(&e.name);
            let md = src
                .metadata(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(md.kind, e.kind, "{}", p.display());
            let xattrs = src.xattrs(&p).unwrap();
            let mut link = None;
            let mut sha = None;
            match md.kind {
                FileKind::Dir => todo.push(p.clone()),
                FileKind::Symlink => link = Some(src.read_link(&p).unwrap()),
                FileKind::Regular => {
                    let mut f = src.open(&p).unwrap();
                    let mut h = Sha256::new();
                    let mut buf = vec![0u8; 70000];
                    let mut total = 0u64;
                    loop {
                        let n = f.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        total += n as u64;
                        h.update(&buf[..n]);
                    }
                    assert_eq!(total, md.size, "{}", p.display());
                    sha = Some(hex::encode(h.finalize()));
                }
                _ => {}
            }
            out.insert(
                p,
                Seen {
                    md,
                    xattrs,
                    link,
                    sha,
                },
            );
        }
    }
    out
}

/// Compares the walk with the source directory tree it was built from. Returns the
/// number of attributes compared.
pub fn compare_with_src(
    src_root: &Path,
    seen: &BTreeMap<PathBuf, Seen>,
    skip_xattr: &[&str],
    skip_paths: &[&str],
) -> usize {
    use std::os::unix::fs::MetadataExt;
    let mut n = 0;
    // every source path is seen
    let mut count = 0;
    let mut stack = vec![src_root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = Path::new("/").join(e.path().strip_prefix(src_root).unwrap());
            assert!(seen.contains_key(&rel), "missing {}", rel.display());
            count += 1;
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    let seen_count = seen
        .keys()
        .filter(|p| !p.starts_with("/lost+found"))
        .count();
    assert_eq!(count, seen_count, "number of paths");
    for (rel, s) in seen.iter().filter(|(p, _)| {
        !p.starts_with("/lost+found") && !skip_paths.iter().any(|s| p.as_path() == Path::new(s))
    }) {
        let p = src_root.join(rel.strip_prefix("/").unwrap());
        let m = std::fs::symlink_metadata(&p).unwrap();
        let what = rel.display();
        assert_eq!(s.md.mode, m.mode() & 0o7777, "{what} mode");
        assert_eq!(s.md.uid, m.uid(), "{what} uid");
        assert_eq!(s.md.gid, m.gid(), "{what} gid");
        assert_eq!(s.md.mtime.sec, m.mtime(), "{what} mtime");
        n += 4;
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else if ft.is_fifo() {
            FileKind::Fifo
        } else {
            FileKind::Regular
        };
        assert_eq!(s.md.kind, kind, "{what} kind");
        n += 1;
        if kind != FileKind::Dir {
            assert_eq!(s.md.nlink, m.nlink(), "{what} nlink");
            n += 1;
        }
        if kind == FileKind::Regular || kind == FileKind::Symlink {
            assert_eq!(s.md.size, m.size(), "{what} size");
            n += 1;
        }
        if kind == FileKind::CharDevice || kind == FileKind::BlockDevice {
            let d = m.rdev();
            let major = (((d >> 32) & 0xffff_f000) | ((d >> 8) & 0xfff)) as u32;
            let minor = (((d >> 12) & 0xffff_ff00) | (d & 0xff)) as u32;
            assert_eq!(
                (s.md.rdev_major, s.md.rdev_minor),
                (major, minor),
                "{what} rdev"
            );
            n += 2;
        }
        if kind == FileKind::Symlink {
            assert_eq!(
                s.link.as_deref(),
                Some(std::fs::read_link(&p).unwrap().as_path()),
                "{what} link"
            );
            n += 1;
        }
        if kind == FileKind::Regular {
            assert_eq!(
                s.sha.as_deref(),
                Some(sha256_file(&p).as_str()),
                "{what} content"
            );
            n += 1;
        }
        if kind != FileKind::Symlink {
            let mut want: Vec<(OsString, Vec<u8>)> = xattr::list(&p)
                .unwrap()
                .filter(|k| {
                    !skip_xattr
                        .iter()
                        .any(|s| k.as_bytes().starts_with(s.as_bytes()))
                })
                .map(|k| {
                    let v = xattr::get(&p, &k).unwrap().unwrap_or_default();
                    (k, v)
                })
                .collect();
            want.sort();
            let got: Vec<_> = s
                .xattrs
                .iter()
                .filter(|(k, _)| {
                    !skip_xattr
                        .iter()
                        .any(|s| k.as_bytes().starts_with(s.as_bytes()))
                })
                .cloned()
                .collect();
            assert_eq!(got, want, "{what} xattrs");
            n += 1 + want.len();
        }
    }
    n
}

fn is_safe(p: &Path) -> bool {
    p.as_os_str()
        .as_bytes()
        .iter()
        .all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
}

fn decode(raw: &str) -> (i64, u32) {
    // "0xAAAAAAAA:BBBBBBBB" or "0xAAAAAAAA"
    let mut it = raw.trim_start_matches("0x").split(':');
    let base = u32::from_str_radix(it.next().unwrap(), 16).unwrap();
    let mut sec = base as i32 as i64;
    let mut ns = 0;
    if let Some(x) = it.next() {
        let x = u32::from_str_radix(x, 16).unwrap();
        sec += ((x & 3) as i64) << 32;
        ns = x >> 2;
    }
    (sec, ns)
}

/// Compares with `debugfs stat` for every path debugfs can name: inode number, links,
/// size, mode, the four timestamps with nanoseconds. Returns attributes compared.
pub fn compare_with_debugfs(img: &Path, seen: &BTreeMap<PathBuf, Seen>) -> usize {
    let paths: Vec<&PathBuf> = seen.keys().filter(|p| is_safe(p)).collect();
    let cmds: String = paths
        .iter()
        .map(|p| format!("stat \"{}\"\n", p.display()))
        .collect();
    let f = img.with_extension("stat");
    std::fs::write(&f, cmds).unwrap();
    let out = sh_out(&format!(
        "debugfs -f {} {} 2>/dev/null",
        f.display(),
        img.display()
    ));
    let mut n = 0;
    let blocks: Vec<&str> = out.split("debugfs: stat ").skip(1).collect();
    assert_eq!(blocks.len(), paths.len());
    for (p, b) in paths.iter().zip(blocks) {
        let s = &seen[*p];
        let what = p.display();
        let field = |name: &str| -> Option<String> {
            let i = b.find(name)?;
            Some(b[i + name.len()..].split_whitespace().next()?.to_string())
        };
        assert_eq!(
            field("Inode:").unwrap().parse::<u64>().unwrap(),
            s.md.ino,
            "{what} ino"
        );
        assert_eq!(
            field("Links:").unwrap().parse::<u64>().unwrap(),
            s.md.nlink,
            "{what} links"
        );
        assert_eq!(
            field("Size:").unwrap().parse::<u64>().unwrap(),
            s.md.size,
            "{what} size"
        );
        assert_eq!(
            u32::from_str_radix(&field("Mode:").unwrap(), 8).unwrap(),
            s.md.mode,
            "{what} mode"
        );
        assert_eq!(
            field("User:").unwrap().parse::<u32>().unwrap(),
            s.md.uid,
            "{what} uid"
        );
        assert_eq!(
            field("Group:").unwrap().parse::<u32>().unwrap(),
            s.md.gid,
            "{what} gid"
        );
        n += 6;
        for (name, ts) in [
            ("ctime:", Some(s.md.ctime)),
            ("atime:", Some(s.md.atime)),
            ("mtime:", Some(s.md.mtime)),
            ("crtime:", s.md.btime),
        ] {
            let line = b.lines().find(|l| l.trim_start().starts_with(name));
            match (line, ts) {
                (Some(l), Some(ts)) => {
                    let raw = l.trim_start()[name.len()..]
                        .split_whitespace()
                        .next()
                        .unwrap();
                    assert_eq!(decode(raw), (ts.sec, ts.nsec), "{what} {name}");
                    n += 2;
                }
                (None, None) => {}
                (l, t) => panic!("{what} {name}: debugfs {l:?} salvor {t:?}"),
            }
        }
        if let Some(i) = b.find("Device major/minor number:") {
            let mm = b[i..].split_whitespace().nth(3).unwrap();
            let (ma, mi) = mm.split_once(':').unwrap();
            assert_eq!(
                (ma.parse::<u32>().unwrap(), mi.parse::<u32>().unwrap()),
                (s.md.rdev_major, s.md.rdev_minor),
                "{what} rdev"
            );
            n += 2;
        }
    }
    n
}

/// Compares file contents with `debugfs rdump` of the whole tree.
pub fn compare_with_rdump(img: &Path, seen: &BTreeMap<PathBuf, Seen>, dir: &Path) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    sh(&format!(
        "debugfs -R 'rdump / {}' {} >/dev/null 2>&1 || true",
        dir.display(),
        img.display()
    ));
    let mut n = 0;
    for (p, s) in seen {
        if let Some(sha) = &s.sha {
            let d = dir.join(p.strip_prefix("/").unwrap());
            let mut bytes = std::fs::read(&d).unwrap();
            // debugfs 1.47.0 dumps the whole 60-byte i_block of small inline-data files.
            // and only those 60 bytes of an inline-data file whose size is larger (sparse).
            bytes.resize(s.md.size as usize, 0);
            let dsha = hex::encode(Sha256::digest(&bytes));
            assert_eq!(sha, &dsha, "{} content vs debugfs rdump", p.display());
            n += 1;
        }
    }
    n
}

pub fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}
