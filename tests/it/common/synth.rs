//! Builds small synthetic overlay2 data-roots on disk, with real tar-split metadata made by
//! salvor's disassembler, for hostile-evidence and tampering tests.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One member of a synthetic layer.
pub enum Member {
    Dir(&'static str),
    File(&'static str, &'static [u8]),
    Symlink(&'static str, &'static str),
    /// A member whose raw tar name is given as bytes (may be hostile, e.g. `../../x`);
    /// the data is stored on disk under `disk_name` inside the layer's diff directory.
    RawFile {
        tar_name: &'static [u8],
        disk_name: Option<&'static str>,
        data: &'static [u8],
    },
}

pub struct Built {
    pub root: PathBuf,
    pub image_id: String,
    pub diff_ids: Vec<String>,
    pub cache_ids: Vec<String>,
    pub chain_ids: Vec<String>,
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn header(
    name: &[u8],
    kind: tar::EntryType,
    size: u64,
    mode: u32,
    link: Option<&str>,
) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    {
        let bytes = h.as_mut_bytes();
        bytes[..100].fill(0);
        bytes[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    }
    if let Some(l) = link {
        h.set_link_name(l).expect("link");
    }
    h.set_cksum();
    h
}

/// Builds a data-root at `dir/data-root` holding one image tagged `synth:latest` whose layers
/// are `layers` (bottom first).
pub fn build(dir: &Path, layers: &[Vec<Member>]) -> Built {
    let root = dir.join("data-root");
    let img = root.join("image/overlay2");
    fs::create_dir_all(img.join("imagedb/content/sha256")).expect("mkdir");
    fs::create_dir_all(img.join("layerdb/sha256")).expect("mkdir");
    let mut built = Built {
        root: root.clone(),
        image_id: String::new(),
        diff_ids: vec![],
        cache_ids: vec![],
        chain_ids: vec![],
    };
    for (n, members) in layers.iter().enumerate() {
        let cache = format!("{:064x}", 0xC0FFEE00 + n);
        let diff = root.join("overlay2").join(&cache).join("diff");
        fs::create_dir_all(&diff).expect("mkdir diff");
        let mut tarb: Vec<u8> = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tarb);
            for m in members {
                match m {
                    Member::Dir(name) => {
                        fs::create_dir_all(diff.join(name)).expect("dir");
                        let h = header(
                            format!("{name}/").as_bytes(),
                            tar::EntryType::Directory,
                            0,
                            0o755,
                            None,
                        );
                        b.append(&h, std::io::empty()).expect("append");
                    }
                    Member::File(name, data) => {
                        fs::write(diff.join(name), data).expect("file");
                        let h = header(
                            name.as_bytes(),
                            tar::EntryType::Regular,
                            data.len() as u64,
                            0o644,
                            None,
                        );
                        b.append(&h, *data).expect("append");
                    }
                    Member::Symlink(name, target) => {
                        symlink(target, diff.join(name)).expect("symlink");
                        let h = header(
                            name.as_bytes(),
                            tar::EntryType::Symlink,
                            0,
                            0o777,
                            Some(target),
                        );
                        b.append(&h, std::io::empty()).expect("append");
                    }
                    Member::RawFile {
                        tar_name,
                        disk_name,
                        data,
                    } => {
                        if let Some(d) = disk_name {
                            fs::write(diff.join(d), data).expect("file");
                        }
                        let h = header(
                            tar_name,
                            tar::EntryType::Regular,
                            data.len() as u64,
                            0o644,
                            None,
                        );
                        b.append(&h, *data).expect("append");
                    }
                }
            }
            b.finish().expect("finish");
        }
        set_mtimes(&diff);
        let diff_id = sha(&tarb);
        let chain = match built.chain_ids.last() {
            None => diff_id.clone(),
            Some(p) => sha(format!("{p} {diff_id}").as_bytes()),
        };
        let meta = img.join("layerdb/sha256").join(&chain[7..]);
        fs::create_dir_all(&meta).expect("meta");
        fs::write(meta.join("diff"), &diff_id).expect("w");
        fs::write(meta.join("cache-id"), &cache).expect("w");
        fs::write(meta.join("size"), "0").expect("w");
        if let Some(p) = built.chain_ids.last() {
            fs::write(meta.join("parent"), p).expect("w");
        }
        let mut gz = flate2::write::GzEncoder::new(
            fs::File::create(meta.join("tar-split.json.gz")).expect("c"),
            flate2::Compression::default(),
        );
        salvor_tarsplit::disassemble(&tarb[..], &mut gz).expect("disassemble");
        gz.finish().expect("gz").flush().expect("flush");
        built.diff_ids.push(diff_id);
        built.cache_ids.push(cache);
        built.chain_ids.push(chain);
    }
    let config = format!(
        r#"{{"architecture":"amd64","config":{{}},"created":"2024-01-01T00:00:00Z","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        built
            .diff_ids
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    built.image_id = sha(config.as_bytes());
    fs::write(
        img.join("imagedb/content/sha256")
            .join(&built.image_id[7..]),
        &config,
    )
    .expect("w");
    fs::write(
        img.join("repositories.json"),
        format!(
            r#"{{"Repositories":{{"synth":{{"synth:latest":"{}"}}}}}}"#,
            built.image_id
        ),
    )
    .expect("w");
    built
}

/// Path of a layer's metadata dir.
pub fn meta_dir(b: &Built, n: usize) -> PathBuf {
    b.root
        .join("image/overlay2/layerdb/sha256")
        .join(&b.chain_ids[n][7..])
}

/// Path of a layer's diff dir.
pub fn diff_dir(b: &Built, n: usize) -> PathBuf {
    b.root.join("overlay2").join(&b.cache_ids[n]).join("diff")
}

/// Gives every entry below `dir` the mtime its tar header records (as the engine's untar
/// does), without following symlinks.
fn set_mtimes(dir: &Path) {
    let t = rustix::fs::Timespec {
        tv_sec: 1_700_000_000,
        tv_nsec: 0,
    };
    let ts = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("readdir").flatten() {
            let p = e.path();
            if fs::symlink_metadata(&p)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                stack.push(p.clone());
            }
            all.push(p);
        }
    }
    // Deepest first, so that setting a child does not move its directory's mtime after.
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in all {
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &p,
            &ts,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .expect("utimensat");
    }
}
