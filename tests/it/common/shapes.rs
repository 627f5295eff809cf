//! Synthetic data-roots of hostile *shape* (issue 15 items 7 and 8): a tree nested thousands
//! of directories deep, or one directory of a million entries. One overlay2 image of one
//! layer and one container (`deep`, on that image) whose read-write layer has the same
//! shape; the layer's tar-split is made by salvor's disassembler from a tar streamed to a
//! temporary file, so nothing of the size of the layer is held in memory here.
//!
//! Paths deeper than `PATH_MAX` are made with `mkdirat`/`openat` relative to the parent's
//! descriptor (one open per level), so building is linear in depth.
#![allow(dead_code)]

use std::fs;
use std::io::{BufWriter, Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use sha2::{Digest, Sha256};

/// The mtime of every entry (and every tar header).
pub const MTIME: i64 = 1_700_000_000;
/// The container's id.
pub const CID: &str = "dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9dee9";

/// The shape of a layer's files.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// A file `depth` components deep: `T/d/…/d/f` (`depth - 1` directories, the file
    /// with 2 bytes); `T` is `d` in the image layer and `c` in the container's layer.
    Deep { depth: usize },
    /// `T/` holding `entries` empty files `f0000000…` (`T` as for `Deep`).
    Wide { entries: usize },
}

fn times() -> Timestamps {
    let t = Timespec {
        tv_sec: MTIME,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn open_dir(at: &OwnedFd, name: &str) -> OwnedFd {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("openat")
}

/// Makes the files of `shape` inside the (existing, empty) directory `root`, all with
/// mtime [`MTIME`], and streams the matching layer tar (GNU long names, as tar-split
/// supports them) to `tar`.
fn make(root: &Path, top: &str, shape: Shape, tar: &mut dyn Write) {
    let rootfd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open root");
    let mut b = tar::Builder::new(tar);
    let hdr = |name: &[u8], kind: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(MTIME as u64);
        h.set_uid(0);
        h.set_gid(0);
        (h, name.to_vec())
    };
    match shape {
        Shape::Deep { depth } => {
            let mut fd =
                rustix::fs::openat(&rootfd, ".", OFlags::RDONLY, Mode::empty()).expect("dup");
            let mut name = Vec::new();
            let depth = depth.saturating_sub(1);
            for i in 0..depth {
                let c = if i == 0 { top } else { "d" };
                rustix::fs::mkdirat(&fd, c, Mode::from_raw_mode(0o755)).expect("mkdirat");
                fd = open_dir(&fd, c);
                if !name.is_empty() {
                    name.push(b'/');
                }
                name.extend_from_slice(c.as_bytes());
                let (mut h, n) = hdr(
                    &[&name[..], b"/"].concat(),
                    tar::EntryType::Directory,
                    0,
                    0o755,
                );
                b.append_data(
                    &mut h,
                    std::ffi::OsStr::new(std::str::from_utf8(&n).unwrap()),
                    std::io::empty(),
                )
                .expect("append dir");
            }
            let f = rustix::fs::openat(
                &fd,
                "f",
                OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .expect("create f");
            rustix::io::write(&f, b"x\n").expect("write f");
            rustix::fs::futimens(&f, &times()).expect("futimens");
            let fname = [&name[..], b"/f"].concat();
            let (mut h, n) = hdr(&fname, tar::EntryType::Regular, 2, 0o644);
            b.append_data(&mut h, std::str::from_utf8(&n).unwrap(), &b"x\n"[..])
                .expect("append file");
            // Directory mtimes last, top down: setting one does not touch its parent.
            let mut fd =
                rustix::fs::openat(&rootfd, ".", OFlags::RDONLY, Mode::empty()).expect("dup");
            for i in 0..depth {
                let c = if i == 0 { top } else { "d" };
                rustix::fs::utimensat(&fd, c, &times(), AtFlags::SYMLINK_NOFOLLOW)
                    .expect("utimensat");
                fd = open_dir(&fd, c);
            }
        }
        Shape::Wide { entries } => {
            rustix::fs::mkdirat(&rootfd, top, Mode::from_raw_mode(0o755)).expect("mkdirat");
            let w = open_dir(&rootfd, top);
            let (mut h, n) = hdr(
                format!("{top}/").as_bytes(),
                tar::EntryType::Directory,
                0,
                0o755,
            );
            b.append_data(&mut h, std::str::from_utf8(&n).unwrap(), std::io::empty())
                .expect("append dir");
            for i in 0..entries {
                let name = format!("f{i:07}");
                let f = rustix::fs::openat(
                    &w,
                    name.as_str(),
                    OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )
                .expect("create");
                rustix::fs::futimens(&f, &times()).expect("futimens");
                let (mut h, n) = hdr(
                    format!("{top}/{name}").as_bytes(),
                    tar::EntryType::Regular,
                    0,
                    0o644,
                );
                b.append_data(&mut h, std::str::from_utf8(&n).unwrap(), std::io::empty())
                    .expect("append file");
            }
            rustix::fs::utimensat(&rootfd, top, &times(), AtFlags::SYMLINK_NOFOLLOW)
                .expect("utimensat");
        }
    }
    b.finish().expect("finish tar");
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Builds `dir/data-root`: image `shape:latest` (one layer of `shape`) and container
/// `deep` on it whose read-write layer also has `shape`. Returns the data-root.
pub fn build(dir: &Path, shape: Shape) -> PathBuf {
    let root = dir.join("data-root");
    let img = root.join("image/overlay2");
    fs::create_dir_all(img.join("imagedb/content/sha256")).expect("mkdir");
    fs::create_dir_all(img.join("layerdb/sha256")).expect("mkdir");
    let cache = format!("{:064x}", 0xDEE9_u64);
    let diff = root.join("overlay2").join(&cache).join("diff");
    fs::create_dir_all(&diff).expect("mkdir diff");
    fs::write(root.join("overlay2").join(&cache).join("link"), "DEEPLAYER").expect("w");

    // The layer tar, spooled to a file (a million headers are half a gigabyte).
    let mut spool = tempfile::tempfile_in(dir).expect("spool");
    {
        let mut w = BufWriter::new(&mut spool);
        make(&diff, "d", shape, &mut w);
        w.flush().expect("flush");
    }
    spool.rewind().expect("rewind");
    let mut h = Sha256::new();
    std::io::copy(&mut (&spool).take(u64::MAX), &mut h).expect("hash");
    let diff_id = format!("sha256:{}", hex::encode(h.finalize()));
    spool.rewind().expect("rewind");
    let meta = img.join("layerdb/sha256").join(&diff_id[7..]);
    fs::create_dir_all(&meta).expect("meta");
    fs::write(meta.join("diff"), &diff_id).expect("w");
    fs::write(meta.join("cache-id"), &cache).expect("w");
    fs::write(meta.join("size"), "0").expect("w");
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(meta.join("tar-split.json.gz")).expect("c"),
        flate2::Compression::fast(),
    );
    salvor_tarsplit::disassemble(std::io::BufReader::new(&spool), &mut gz).expect("disassemble");
    gz.finish().expect("gz").flush().expect("flush");

    let config = format!(
        r#"{{"architecture":"amd64","config":{{}},"created":"2024-01-01T00:00:00Z","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let image_id = sha(config.as_bytes());
    fs::write(
        img.join("imagedb/content/sha256").join(&image_id[7..]),
        &config,
    )
    .expect("w");
    fs::write(
        img.join("repositories.json"),
        format!(r#"{{"Repositories":{{"shape":{{"shape:latest":"{image_id}"}}}}}}"#),
    )
    .expect("w");

    // The container: an empty init layer and a read-write layer of the same shape.
    let mount = "deepmount";
    let m = img.join("layerdb/mounts").join(CID);
    fs::create_dir_all(&m).expect("mkdir");
    fs::write(m.join("mount-id"), mount).expect("w");
    fs::write(m.join("init-id"), format!("{mount}-init")).expect("w");
    fs::write(m.join("parent"), &diff_id).expect("w");
    let init = root
        .join("overlay2")
        .join(format!("{mount}-init"))
        .join("diff");
    fs::create_dir_all(&init).expect("mkdir");
    let upper = root.join("overlay2").join(mount).join("diff");
    fs::create_dir_all(&upper).expect("mkdir");
    make(&upper, "c", shape, &mut std::io::sink());
    let c = root.join("containers").join(CID);
    fs::create_dir_all(&c).expect("mkdir");
    fs::write(
        c.join("config.v2.json"),
        format!(
            r#"{{"ID":"{CID}","Created":"2024-01-01T00:00:00Z","Path":"sh","Args":[],
            "State":{{"Running":false,"ExitCode":0,"StartedAt":"2024-01-01T00:00:01Z","FinishedAt":"2024-01-01T00:00:02Z"}},
            "Config":{{"Image":"shape:latest"}},"Image":"{image_id}","Name":"/deep","Driver":"overlay2"}}"#
        ),
    )
    .expect("w");
    fs::write(
        c.join("hostconfig.json"),
        r#"{"LogConfig":{"Type":"none","Config":{}}}"#,
    )
    .expect("w");
    root
}
