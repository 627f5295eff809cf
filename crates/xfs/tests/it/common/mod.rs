//! Test image builders (`mkfs.xfs -p protofile`, `xfs_db -x`), the `xfs_db` oracle and a
//! tree walker over a `Source`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use salvor_source::{FileDevice, FileKind, Metadata, Source};
use salvor_xfs::Xfs;
use sha2::{Digest, Sha256};

pub fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-ec").arg(cmd).status().expect("sh");
    assert!(st.success(), "command failed: {cmd}");
}

pub fn sh_out(cmd: &str) -> String {
    let o = Command::new("sh")
        .arg("-ec")
        .arg(cmd)
        .env("TZ", "UTC")
        .output()
        .expect("sh");
    assert!(
        o.status.success(),
        "command failed: {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that mkfs.xfs and xfs_db are installed: a missing oracle fails the test (it is
/// never counted as passing); `.ci/run` installs the packages in tests/REQUIRES.txt.
pub fn have_xfsprogs() -> bool {
    let ok = Command::new("mkfs.xfs").arg("-V").output().is_ok()
        && Command::new("xfs_db").arg("-V").output().is_ok();
    assert!(ok, "xfsprogs (mkfs.xfs, xfs_db) not installed: apt-get install xfsprogs (see tests/REQUIRES.txt)");
    ok
}

pub fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// The long symlink targets (remote symlinks).
pub fn long_target(n: usize) -> String {
    let mut s = String::from("/very/long/target");
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!("/component{i}"));
        i += 1;
    }
    s.truncate(n);
    s
}

/// Builds the source tree (runs as root: device nodes, owners).
pub fn build_src(root: &Path, files_in_bigdir: usize) {
    let r = root.display();
    std::fs::create_dir_all(root).unwrap();
    let s = format!(
        r#"
cd {r}
mkdir -p etc dir_opaque bigdir deep sticky attrs agdirs
echo hello > etc/file.txt
ln -s ../etc/file.txt etc/symlink
ln -s {l200} longlink
ln -s {l1000} maxlink
mknod whiteout c 0 0
mknod null c 1 3
mknod sda1 b 8 1
mknod bigdev c 300 70000
mkfifo fifo
head -c 5000 /dev/urandom > ping
chmod 4755 ping
chown 100000:200000 etc/file.txt
chmod 1777 sticky
chmod 2750 deep
truncate -s 10M sparse
printf middle | dd of=sparse bs=1 seek=3000000 conv=notrunc status=none
echo tail >> sparse
head -c 300000 /dev/urandom > medium
head -c 3000000 /dev/urandom > big
: > empty
head -c 4096 /dev/urandom > exact4k
head -c 40 /dev/urandom > tiny40
printf 'x' > "$(printf 'caf\303\251')"
for i in 0 1 2 3 4 5 6 7; do mkdir agdirs/d$i; head -c $((20000 + i * 777)) /dev/urandom > agdirs/d$i/data; done
for n in sf leaf node remote mixed; do echo $n > attrs/$n; done
"#,
        l200 = long_target(200),
        l1000 = long_target(1000),
    );
    sh(&s);
    let mut p = root.join("deep");
    for i in 0..40 {
        p = p.join(format!("level{i}"));
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("bottom"), b"deep file\n").unwrap();
    for i in 0..files_in_bigdir {
        let f = root
            .join("bigdir")
            .join(format!("file_with_a_longish_name_{i:05}"));
        std::fs::write(&f, format!("{i}\n")).unwrap();
        if i % 7 == 0 {
            std::os::unix::fs::chown(&f, Some(i as u32), Some(1000 + i as u32)).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// Writes an mkfs.xfs protofile for the tree at `root` (names with spaces or colons are
/// not expressible and left out).
pub fn write_proto(root: &Path, out: &Path) {
    fn perm(m: u32) -> String {
        let suid = if m & 0o4000 != 0 { 'u' } else { '-' };
        let sgid = if m & 0o2000 != 0 { 'g' } else { '-' };
        format!("{suid}{sgid}{:03o}", m & 0o777)
    }
    fn ent(path: &Path, name: &str, depth: usize, out: &mut Vec<String>) {
        let md = std::fs::symlink_metadata(path).unwrap();
        let ft = md.file_type();
        let pad = " ".repeat(depth);
        let (m, u, g) = (md.mode(), md.uid(), md.gid());
        if ft.is_dir() {
            out.push(format!("{pad}{name} d{} {u} {g}", perm(m)));
            let mut names: Vec<_> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            for c in names {
                if c.contains(' ') || c.contains(':') {
                    continue;
                }
                ent(&path.join(&c), &c, depth + 1, out);
            }
            out.push(format!("{pad}$"));
        } else if ft.is_file() {
            out.push(format!(
                "{pad}{name} -{} {u} {g} {}",
                perm(m),
                path.display()
            ));
        } else if ft.is_symlink() {
            let t = std::fs::read_link(path).unwrap();
            out.push(format!("{pad}{name} l{} {u} {g} {}", perm(m), t.display()));
        } else if ft.is_char_device() || ft.is_block_device() {
            let t = if ft.is_char_device() { 'c' } else { 'b' };
            let rdev = md.rdev();
            let (maj, min) = (libc_major(rdev), libc_minor(rdev));
            out.push(format!("{pad}{name} {t}{} {u} {g} {maj} {min}", perm(m)));
        } else if ft.is_fifo() {
            out.push(format!("{pad}{name} p{} {u} {g}", perm(m)));
        }
    }
    let mut lines = vec![
        "/dummy".to_string(),
        "0 0".to_string(),
        "d--755 0 0".to_string(),
    ];
    let mut names: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for c in names {
        ent(&root.join(&c), &c, 1, &mut lines);
    }
    lines.push("$".into());
    std::fs::write(out, lines.join("\n") + "\n").unwrap();
}

pub fn libc_major(d: u64) -> u64 {
    ((d >> 32) & 0xffff_f000) | ((d >> 8) & 0xfff)
}
pub fn libc_minor(d: u64) -> u64 {
    ((d >> 12) & 0xffff_ff00) | (d & 0xff)
}

/// `mkfs.xfs -q -f {opts} -p proto img` on a sparse file of `size` (the 300 MB minimum
/// of xfsprogs ≥ 5.19 is lifted the way fstests does it).
pub fn mkfs(proto: &Path, img: &Path, opts: &str, size: &str) {
    sh(&format!(
        "rm -f {img} && truncate -s {size} {img} && QA_CHECK_FS=1 TEST_DIR=/tmp TEST_DEV=x mkfs.xfs -q -f {opts} -p {proto} {img} 2>/dev/null",
        img = img.display(),
        proto = proto.display()
    ));
}

/// Runs xfs_db commands from a file (`source`), `-x` when `write`.
pub fn xfs_db(img: &Path, cmds: &[String], write: bool) -> String {
    let f = img.with_extension(format!("cmds{}", cmds.len()));
    std::fs::write(&f, cmds.join("\n") + "\n").unwrap();
    sh_out(&format!(
        "xfs_db {} -c 'source {}' {}",
        if write { "-x" } else { "-r" },
        f.display(),
        img.display()
    ))
}

/// The xattrs set on the image with xfs_db: path → sorted (name, value).
pub type Expected = BTreeMap<String, Vec<(String, Vec<u8>)>>;

/// Sets xattrs of every form with `xfs_db -x attr_set` (values are `v` repeated, except
/// the overlay ones which are rewritten to `y`). Returns what was set.
pub fn set_xattrs(img: &Path, block_size: usize) -> Expected {
    let mut cmds = Vec::new();
    let mut exp: Expected = BTreeMap::new();
    let mut add = |cmds: &mut Vec<String>, path: &str, ns: &str, name: &str, len: usize| {
        cmds.push(format!("attr_set {ns} -v {len} {name}"));
        let prefix = match ns {
            "-r" => "trusted.",
            "-s" => "security.",
            _ => "user.",
        };
        exp.entry(path.to_string())
            .or_default()
            .push((format!("{prefix}{name}"), vec![b'v'; len]));
    };
    // short-form with the overlay attributes, values rewritten to "y"
    cmds.push("path /dir_opaque".into());
    add(&mut cmds, "/dir_opaque", "-r", "overlay.opaque", 1);
    add(&mut cmds, "/dir_opaque", "-u", "overlay.opaque", 1);
    cmds.push("write -d a.sfattr.list[0].value \"y\"".into());
    cmds.push("write -d a.sfattr.list[1].value \"y\"".into());
    cmds.push("path /ping".into());
    add(&mut cmds, "/ping", "-s", "capability", 20);
    cmds.push("path /whiteout".into());
    add(&mut cmds, "/whiteout", "-r", "overlay.origin", 16);
    cmds.push("path /attrs/sf".into());
    add(&mut cmds, "/attrs/sf", "-u", "a", 5);
    add(&mut cmds, "/attrs/sf", "-r", "b", 1);
    add(&mut cmds, "/attrs/sf", "-s", "c", 7);
    cmds.push("path /attrs/leaf".into());
    for i in 0..(block_size / 200).max(12) {
        add(
            &mut cmds,
            "/attrs/leaf",
            "-u",
            &format!("leafattr{i:03}"),
            30,
        );
    }
    cmds.push("path /attrs/node".into());
    for i in 0..(block_size / 10) {
        let ns = ["-u", "-r", "-s"][i % 3];
        add(
            &mut cmds,
            "/attrs/node",
            ns,
            &format!("nodeattr_number_{i:04}"),
            40,
        );
    }
    cmds.push("path /attrs/remote".into());
    add(&mut cmds, "/attrs/remote", "-u", "big", block_size * 2);
    add(&mut cmds, "/attrs/remote", "-u", "huge", 65536);
    add(&mut cmds, "/attrs/remote", "-r", "small", 10);
    cmds.push("path /attrs/mixed".into());
    for i in 0..40 {
        // (xfs_db 6.1 crashes on v4 when the first attribute of an inode is remote.)
        let len = if i % 10 == 5 { block_size + 100 } else { 25 };
        add(&mut cmds, "/attrs/mixed", "-u", &format!("m{i:02}"), len);
    }
    // a directory with attributes
    cmds.push("path /bigdir".into());
    add(&mut cmds, "/bigdir", "-r", "overlay.redirect", 11);
    xfs_db(img, &cmds, true);
    for (_, v) in exp.get_mut("/dir_opaque").unwrap().iter_mut() {
        *v = b"y".to_vec();
    }
    for v in exp.values_mut() {
        v.sort();
    }
    exp
}

pub fn open(img: &Path) -> Xfs {
    let dev = FileDevice::open(img).unwrap();
    Xfs::open(Arc::new(dev)).unwrap()
}

/// Everything salvor says about one path.
#[derive(Debug, Clone)]
pub struct Seen {
    pub md: Metadata,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    pub link: Option<PathBuf>,
    pub sha: Option<String>,
}

pub fn read_all_sha(src: &dyn Source, p: &Path, size: u64) -> String {
    let mut f = src.open(p).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 70000];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    assert_eq!(total, size, "{}", p.display());
    hex::encode(h.finalize())
}

/// Walks the whole tree (recursively), reading every file.
pub fn walk(src: &dyn Source) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::from("/")];
    while let Some(dir) = todo.pop() {
        let entries = src.read_dir(&dir).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{}: read_dir not sorted", dir.display());
        for e in entries {
            let p = dir.join(&e.name);
            let md = src
                .metadata(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(md.kind, e.kind, "{}", p.display());
            let xattrs = src
                .xattrs(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let mut link = None;
            let mut sha = None;
            match md.kind {
                FileKind::Dir => todo.push(p.clone()),
                FileKind::Symlink => link = Some(src.read_link(&p).unwrap()),
                FileKind::Regular => sha = Some(read_all_sha(src, &p, md.size)),
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

/// Days from 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Parses xfs_db's `Thu Jan  1 00:00:00 1970` (TZ=UTC) into Unix seconds.
pub fn parse_ctime(s: &str) -> i64 {
    let f: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(f.len(), 5, "date {s:?}");
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == f[1]).unwrap() as i64 + 1;
    let d: i64 = f[2].parse().unwrap();
    let y: i64 = f[4].parse().unwrap();
    let hms: Vec<i64> = f[3].split(':').map(|x| x.parse().unwrap()).collect();
    days_from_civil(y, m, d) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// What xfs_db prints for one path: the inode number and `field = value` pairs.
#[derive(Debug, Default, Clone)]
pub struct DbInode {
    pub ino: u64,
    pub fields: BTreeMap<String, String>,
}

/// Asks xfs_db about every path (one batch): inode number and the core fields.
pub fn xfs_db_inodes(img: &Path, paths: &[String], v5: bool) -> BTreeMap<String, DbInode> {
    let mut cmds = Vec::new();
    for p in paths {
        cmds.push(format!("echo @@ {p}"));
        cmds.push(format!("path {p}"));
        cmds.push("inode".into());
        cmds.push("print core.mode core.uid core.gid core.nlinkv2 core.size core.format core.atime.sec core.atime.nsec core.mtime.sec core.mtime.nsec core.ctime.sec core.ctime.nsec".into());
        if v5 {
            cmds.push("print v3.crtime.sec v3.crtime.nsec".into());
        }
    }
    let out = xfs_db(img, &cmds, false);
    let mut res = BTreeMap::new();
    let mut cur: Option<(String, DbInode)> = None;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("@@ ") {
            if let Some((k, v)) = cur.take() {
                res.insert(k, v);
            }
            cur = Some((p.trim_end().to_string(), DbInode::default()));
        } else if let Some(n) = line.strip_prefix("current inode number is ") {
            cur.as_mut().unwrap().1.ino = n.trim().parse().unwrap();
        } else if let Some((k, v)) = line.split_once(" = ") {
            cur.as_mut()
                .unwrap()
                .1
                .fields
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if let Some((k, v)) = cur.take() {
        res.insert(k, v);
    }
    res
}
