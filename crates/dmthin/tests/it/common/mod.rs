//! Builds a dm-thin pool without root or device-mapper: the committed ext4 images made
//! with `mke2fs -d` and debugfs (`fixtures/dmthin/make-pool.sh`), a `thin_restore` XML
//! written here mapping their 64 KiB blocks to data blocks (a snapshot child sharing most
//! blocks with its parent, holes where the image is zero), a `data` file laid out
//! accordingly, and the metadata `thin_restore` wrote from that XML (committed).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use salvor_dmthin::Mapping;
use salvor_source::{DirSource, FileKind, Source};
use sha2::{Digest, Sha256};

/// 128 sectors = 64 KiB, Docker's default.
pub const DBS_SECTORS: u64 = 128;
pub const BS: u64 = DBS_SECTORS * 512;
pub const IMAGE_SIZE: u64 = 16 << 20;
pub const NR_DATA_BLOCKS: u64 = 200;
pub const BASE_DEV: u64 = 1;
pub const CHILD_DEV: u64 = 2;
pub const RAW_DEV: u64 = 3;
pub const WIDE_DEV: u64 = 7;
/// Virtual blocks mapped in the wide device (enough for a 3-level tree).
pub const WIDE_MAPPINGS: u64 = 70_000;
pub const BASE_ID: &str = "base";
pub const CHILD_ID: &str = "3f1e0c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

pub fn sh(cmd: &str) {
    let o = Command::new("sh").arg("-ec").arg(cmd).output().expect("sh");
    assert!(
        o.status.success(),
        "command failed: {cmd}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn sh_out(cmd: &str) -> String {
    let o = Command::new("sh").arg("-ec").arg(cmd).output().expect("sh");
    assert!(o.status.success(), "command failed: {cmd}");
    String::from_utf8(o.stdout).unwrap()
}

pub fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

pub struct Device {
    pub dev_id: u64,
    pub mappings: Vec<Mapping>,
    pub transaction: u64,
    pub creation_time: u32,
    pub snap_time: u32,
    /// The bytes the device must read as (zeros where unmapped), when small enough.
    pub expected: Option<Vec<u8>>,
}

pub struct Pool {
    pub dir: tempfile::TempDir,
    pub metadata: PathBuf,
    pub data: PathBuf,
    pub base_src: PathBuf,
    pub child_src: PathBuf,
    pub base_img: PathBuf,
    pub child_img: PathBuf,
    pub devices: BTreeMap<u64, Device>,
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write_tree(root: &Path, id: &str, child: bool) {
    let r = root.join("rootfs");
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("var/empty")).unwrap();
    std::fs::write(root.join("id"), id).unwrap();
    std::fs::write(r.join("etc/hostname"), "dead-host\n").unwrap();
    std::fs::write(r.join("etc/os-release"), "ID=centos\nVERSION_ID=7\n").unwrap();
    std::fs::write(r.join("usr/bin/tool"), noise(1, 300_000)).unwrap();
    std::fs::write(r.join("usr/bin/big"), noise(2, 1_500_000)).unwrap();
    std::os::unix::fs::symlink("tool", r.join("usr/bin/tool-link")).unwrap();
    if child {
        // The layer's full rootfs: the parent's files plus its own changes.
        std::fs::write(r.join("etc/hostname"), "changed-by-child\n").unwrap();
        std::fs::write(r.join("etc/added"), noise(3, 70_000)).unwrap();
        std::fs::remove_file(r.join("etc/os-release")).unwrap();
    }
}

/// `fixtures/dmthin` (made by `fixtures/dmthin/make-pool.sh`), or `SALVOR_DMTHIN_FIXTURES`.
pub fn dmthin_fixtures() -> PathBuf {
    std::env::var_os("SALVOR_DMTHIN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dmthin"))
}

/// Decompresses a committed `fixtures/dmthin/NAME` (zstd); `None` when it is not there.
pub fn committed(name: &str) -> Option<Vec<u8>> {
    let p = dmthin_fixtures().join(name);
    let bytes = std::fs::read(&p).ok()?;
    Some(zstd::decode_all(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Builds the pool in a temporary directory.
pub fn build_pool() -> Pool {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base_src = d.join("base-src");
    let child_src = d.join("child-src");
    write_tree(&base_src, BASE_ID, false);
    write_tree(&child_src, CHILD_ID, true);
    let base_img = d.join("base.img");
    let child_img = d.join("child.img");
    // The ext4 images mke2fs and debugfs wrote (fixtures/dmthin/make-pool.sh): the base
    // layer and its snapshot child changed in place, as the kernel would change a snapshot
    // (most blocks stay equal).
    let images = committed("images.zst").expect("fixtures/dmthin/images.zst");
    assert_eq!(
        images.len() as u64,
        2 * IMAGE_SIZE,
        "images.zst: base.img + child.img"
    );
    std::fs::write(&base_img, &images[..IMAGE_SIZE as usize]).unwrap();
    std::fs::write(&child_img, &images[IMAGE_SIZE as usize..]).unwrap();

    let base = std::fs::read(&base_img).unwrap();
    let child = std::fs::read(&child_img).unwrap();
    let nblocks = (IMAGE_SIZE / BS) as usize;
    let blk = |img: &[u8], i: usize| img[i * BS as usize..(i + 1) * BS as usize].to_vec();
    let zero = vec![0u8; BS as usize];

    let mut data_blocks: Vec<Vec<u8>> = Vec::new(); // index = data block
                                                    // Base: its non-zero blocks, placed in an interleaved order (not identity).
    let mut base_map = Vec::new();
    let mut order: Vec<usize> = (0..nblocks).filter(|&i| blk(&base, i) != zero).collect();
    order.reverse();
    for (n, &i) in order.iter().enumerate() {
        // Leave data block 0 and every 5th data block unused.
        while data_blocks.len() / 5 * 5 == data_blocks.len() {
            data_blocks.push(noise(1000 + data_blocks.len() as u64, BS as usize));
        }
        let _ = n;
        base_map.push(Mapping {
            virt_block: i as u64,
            data_block: data_blocks.len() as u64,
            time: 0,
        });
        data_blocks.push(blk(&base, i));
    }
    base_map.sort();
    // Child: shares every block equal to the parent's; changed blocks get new data
    // blocks written at time 1; blocks zero in the child are holes.
    let mut child_map = Vec::new();
    let mut shared = 0;
    for i in 0..nblocks {
        let c = blk(&child, i);
        if c == zero {
            continue;
        }
        if c == blk(&base, i) {
            let m = base_map.iter().find(|m| m.virt_block == i as u64).unwrap();
            child_map.push(Mapping {
                virt_block: i as u64,
                data_block: m.data_block,
                time: 0,
            });
            shared += 1;
        } else {
            child_map.push(Mapping {
                virt_block: i as u64,
                data_block: data_blocks.len() as u64,
                time: 1,
            });
            data_blocks.push(c);
        }
    }
    assert!(
        shared > 0 && shared < child_map.len(),
        "the child must share some blocks and change some"
    );
    // A raw device: a few mapped blocks with holes between, one shared with the base.
    let raw_map = vec![
        Mapping {
            virt_block: 0,
            data_block: 0,
            time: 2,
        },
        Mapping {
            virt_block: 3,
            data_block: 5,
            time: 2,
        },
        Mapping {
            virt_block: 4,
            data_block: base_map[1].data_block,
            time: 0,
        },
        Mapping {
            virt_block: 9,
            data_block: 10,
            time: 2,
        },
    ];
    let mut raw = vec![0u8; 10 * BS as usize];
    for m in &raw_map {
        let at = (m.virt_block * BS) as usize;
        raw[at..at + BS as usize].copy_from_slice(&data_blocks[m.data_block as usize]);
    }
    // A wide device: many scattered mappings (a three-level tree), all to a few blocks.
    let wide_map: Vec<Mapping> = (0..WIDE_MAPPINGS)
        .map(|k| Mapping {
            virt_block: 1 + 3 * k + (k % 2),
            data_block: [0, 5, 10][(k % 3) as usize],
            time: (k % 3) as u32,
        })
        .collect();
    assert!((data_blocks.len() as u64) < NR_DATA_BLOCKS);

    let data = d.join("data");
    {
        let f = std::fs::File::create(&data).unwrap();
        f.set_len(NR_DATA_BLOCKS * BS).unwrap();
        for (i, b) in data_blocks.iter().enumerate() {
            f.write_all_at(b, i as u64 * BS).unwrap();
        }
    }
    let mut devices = BTreeMap::new();
    devices.insert(
        BASE_DEV,
        Device {
            dev_id: BASE_DEV,
            mappings: base_map,
            transaction: 1,
            creation_time: 0,
            snap_time: 1,
            expected: Some(base),
        },
    );
    devices.insert(
        CHILD_DEV,
        Device {
            dev_id: CHILD_DEV,
            mappings: child_map,
            transaction: 2,
            creation_time: 1,
            snap_time: 1,
            expected: Some(child),
        },
    );
    devices.insert(
        RAW_DEV,
        Device {
            dev_id: RAW_DEV,
            mappings: raw_map,
            transaction: 3,
            creation_time: 2,
            snap_time: 2,
            expected: Some(raw),
        },
    );
    devices.insert(
        WIDE_DEV,
        Device {
            dev_id: WIDE_DEV,
            mappings: wide_map,
            transaction: 4,
            creation_time: 2,
            snap_time: 2,
            expected: None,
        },
    );

    let mut xml = format!(
        "<superblock uuid=\"\" time=\"3\" transaction=\"5\" data_block_size=\"{DBS_SECTORS}\" nr_data_blocks=\"{NR_DATA_BLOCKS}\">\n"
    );
    for dev in devices.values() {
        writeln!(
            xml,
            "  <device dev_id=\"{}\" mapped_blocks=\"{}\" transaction=\"{}\" creation_time=\"{}\" snap_time=\"{}\">",
            dev.dev_id,
            dev.mappings.len(),
            dev.transaction,
            dev.creation_time,
            dev.snap_time
        )
        .unwrap();
        for m in &dev.mappings {
            writeln!(
                xml,
                "    <single_mapping origin_block=\"{}\" data_block=\"{}\" time=\"{}\"/>",
                m.virt_block, m.data_block, m.time
            )
            .unwrap();
        }
        xml.push_str("  </device>\n");
    }
    xml.push_str("</superblock>\n");
    let xml_path = d.join("pool.xml");
    std::fs::write(&xml_path, xml).unwrap();
    // The metadata thin_restore wrote from this XML (fixtures/dmthin/metadata.zst; the
    // ignored test pool_fixture_remade_by_the_tools_is_the_committed_one makes it again).
    let metadata = d.join("metadata");
    if let Some(m) = committed("metadata.zst") {
        std::fs::write(&metadata, m).unwrap();
    }
    Pool {
        dir,
        metadata,
        data,
        base_src,
        child_src,
        base_img,
        child_img,
        devices,
    }
}

/// `thin_dump` of the metadata, parsed: superblock attributes, and per device its
/// attributes and expanded mappings.
pub struct Dump {
    pub superblock: BTreeMap<String, String>,
    pub devices: BTreeMap<u64, (BTreeMap<String, String>, Vec<Mapping>)>,
}

fn attrs(line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = line;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq]
            .rsplit(|c: char| c.is_whitespace() || c == '<')
            .next()
            .unwrap()
            .to_string();
        let after = &rest[eq + 2..];
        let end = after.find('"').unwrap();
        out.insert(key, after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// `thin_dump` run on `metadata` (needs thin-provisioning-tools).
pub fn thin_dump(metadata: &Path) -> Dump {
    parse_thin_dump(&sh_out(&format!("thin_dump '{}'", metadata.display())))
}

/// thin_dump's committed answer about the committed metadata (`fixtures/dmthin/thin_dump.xml.zst`).
pub fn committed_thin_dump() -> Dump {
    let xml = committed("thin_dump.xml.zst").expect("fixtures/dmthin/thin_dump.xml.zst");
    parse_thin_dump(std::str::from_utf8(&xml).expect("thin_dump.xml is UTF-8"))
}

/// Parses thin_dump's XML.
pub fn parse_thin_dump(xml: &str) -> Dump {
    let mut dump = Dump {
        superblock: BTreeMap::new(),
        devices: BTreeMap::new(),
    };
    let mut cur: Option<u64> = None;
    for line in xml.lines() {
        let l = line.trim();
        let a = attrs(l);
        let n = |k: &str| a[k].parse::<u64>().unwrap();
        if l.starts_with("<superblock") {
            dump.superblock = a.clone();
        } else if l.starts_with("<device ") {
            let id = n("dev_id");
            dump.devices.insert(id, (a.clone(), Vec::new()));
            cur = Some(id);
        } else if l.starts_with("<range_mapping") {
            let v = &mut dump.devices.get_mut(&cur.unwrap()).unwrap().1;
            for k in 0..n("length") {
                v.push(Mapping {
                    virt_block: n("origin_begin") + k,
                    data_block: n("data_begin") + k,
                    time: n("time") as u32,
                });
            }
        } else if l.starts_with("<single_mapping") {
            let v = &mut dump.devices.get_mut(&cur.unwrap()).unwrap().1;
            v.push(Mapping {
                virt_block: n("origin_block"),
                data_block: n("data_block"),
                time: n("time") as u32,
            });
        }
    }
    dump
}

/// Walks a `Source` tree: path → (kind, content or link target).
pub fn walk_source(src: &dyn Source, root: &Path) -> BTreeMap<PathBuf, (FileKind, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in src.read_dir(&dir).unwrap() {
            let p = dir.join(&e.name);
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let content = match e.kind {
                FileKind::Dir => {
                    stack.push(p.clone());
                    Vec::new()
                }
                FileKind::Regular => {
                    let mut v = Vec::new();
                    src.open(&p).unwrap().read_to_end(&mut v).unwrap();
                    v
                }
                FileKind::Symlink => src.read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
                _ => Vec::new(),
            };
            out.insert(rel, (e.kind, content));
        }
    }
    out
}

/// Walks a host directory the same way (through `DirSource`).
pub fn walk_host(root: &Path) -> BTreeMap<PathBuf, (FileKind, Vec<u8>)> {
    let src = DirSource::new(root).unwrap();
    walk_source(&src, Path::new(""))
}
