//! Hostile input: corrupted images must give errors (naming the inode or block) or
//! warnings, never a panic, a hang or a huge allocation.

use crate::common;

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use salvor_ext4::Ext4;
use salvor_source::{BlockDevice, FileKind, Source};

#[derive(Debug)]
struct MemDevice(Vec<u8>);

impl BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.0.len() as u64 {
            return Ok(0);
        }
        let o = offset as usize;
        let n = buf.len().min(self.0.len() - o);
        buf[..n].copy_from_slice(&self.0[o..o + n]);
        Ok(n)
    }
    fn describe(&self) -> String {
        "memory image".into()
    }
}

/// `fixtures/ext4` (made by `fixtures/ext4/make-hostile-images.sh`), or `SALVOR_EXT4_FIXTURES`.
fn ext4_fixtures() -> PathBuf {
    std::env::var_os("SALVOR_EXT4_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ext4"))
}

const HOSTILE_IMAGES: [&str; 3] = ["ext4", "ext3", "ext4-4k"];

/// The three small committed images (mke2fs -d of the test tree without its big files):
/// (name, bytes), decompressed once.
fn images() -> &'static Vec<(&'static str, Vec<u8>)> {
    static IMGS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    IMGS.get_or_init(|| {
        HOSTILE_IMAGES
            .iter()
            .map(|name| {
                let p = ext4_fixtures().join(format!("hostile-{name}.img.zst"));
                let z = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let raw =
                    zstd::decode_all(&z[..]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (*name, raw)
            })
            .collect()
    })
}

/// `fixtures/ext4/make-hostile-images.sh` re-run into a temporary directory writes the
/// committed images and e2fsck answers byte for byte.
#[test]
#[ignore = "needs mke2fs, debugfs, e2fsck (e2fsprogs), setfattr (attr), zstd, python3, root: re-makes fixtures/ext4/make-hostile-images.sh and compares; CI runs it"]
fn hostile_images_remade_by_the_tools_are_the_committed_ones() {
    let fresh = tempfile::tempdir().unwrap();
    let script = ext4_fixtures().join("make-hostile-images.sh");
    let o = std::process::Command::new("bash")
        .arg(&script)
        .env("FX_OUT_DIR", fresh.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut names: Vec<String> = HOSTILE_IMAGES
        .iter()
        .map(|n| format!("hostile-{n}.img.zst"))
        .collect();
    names.push("hostile-e2fsck.txt".into());
    for name in names {
        let committed = std::fs::read(ext4_fixtures().join(&name)).unwrap();
        let again = std::fs::read(fresh.path().join(&name)).unwrap();
        assert!(
            committed == again,
            "{name}: the fresh run differs from the committed file"
        );
    }
}

/// `fixtures/ext4/make-edited-images.sh` re-run into a temporary directory writes the
/// committed images (debugfs's edits included) and answers byte for byte.
#[test]
#[ignore = "needs mke2fs, debugfs, e2fsck (e2fsprogs), zstd: re-makes fixtures/ext4/make-edited-images.sh and compares; CI runs it"]
fn edited_images_remade_by_the_tools_are_the_committed_ones() {
    let fresh = tempfile::tempdir().unwrap();
    let script = ext4_fixtures().join("make-edited-images.sh");
    let o = std::process::Command::new("bash")
        .arg(&script)
        .env("FX_OUT_DIR", fresh.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut names: Vec<String> = [
        "small-4k",
        "small-4k-nocsum",
        "extent-magic",
        "extent-depth",
        "extent-past-end",
    ]
    .iter()
    .map(|n| format!("{n}.img.zst"))
    .collect();
    names.push("edited-bmap.txt".into());
    names.push("edited-e2fsck.txt".into());
    for name in names {
        let committed = std::fs::read(ext4_fixtures().join(&name)).unwrap();
        let again = std::fs::read(fresh.path().join(&name)).unwrap();
        assert!(
            committed == again,
            "{name}: the fresh run differs from the committed file"
        );
    }
}

fn open_mem(bytes: Vec<u8>) -> Result<Ext4, salvor_ext4::Ext4Error> {
    Ext4::open(Arc::new(MemDevice(bytes)))
}

/// Walks everything reachable, ignoring errors, within a step budget; returns steps.
fn walk_budget(fs: &Ext4) -> usize {
    let mut steps = 0;
    let mut seen_dirs = HashSet::new();
    let mut todo = vec![PathBuf::from("/")];
    let mut buf = vec![0u8; 65536];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs.read_dir(&d) else {
            continue;
        };
        for e in entries {
            steps += 1;
            if steps > 20_000 {
                return steps;
            }
            let p = d.join(&e.name);
            let Ok(md) = fs.metadata(&p) else { continue };
            let _ = fs.xattrs(&p);
            match md.kind {
                FileKind::Dir if seen_dirs.insert(md.ino) => todo.push(p),
                FileKind::Symlink => {
                    let _ = fs.read_link(&p);
                }
                FileKind::Regular => {
                    if let Ok(mut f) = fs.open(&p) {
                        let mut total = 0usize;
                        while let Ok(n) = f.read(&mut buf) {
                            if n == 0 || total > 4 << 20 {
                                break;
                            }
                            total += n;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let _ = fs.report();
    steps
}

#[test]
fn intact_images_walk_cleanly() {
    for (name, bytes) in images() {
        let fs = open_mem(bytes.clone()).unwrap();
        let steps = walk_budget(&fs);
        assert!(steps > 150, "{name}: {steps}");
        let r = fs.report();
        assert_eq!(r.checksum_failures, 0, "{name}: {:?}", r.warnings);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
        fn random_byte_flips_never_panic(
        which in 0usize..3,
        flips in proptest::collection::vec((0usize..(600 * 1024), any::<u8>()), 1..40),
        anywhere in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..10),
    ) {
        let (_, base) = &images()[which];
        let mut bytes = base.clone();
        for (off, v) in flips {
            if off < bytes.len() { bytes[off] ^= v | 1; }
        }
        let len = bytes.len();
        for (i, v) in anywhere {
            bytes[i.index(len)] ^= v | 1;
        }
        let t = Instant::now();
        if let Ok(fs) = open_mem(bytes) {
            walk_budget(&fs);
        }
        prop_assert!(t.elapsed() < Duration::from_secs(20));
    }
}

/// Block of `path` (logical block 0) in the committed image `name`, as debugfs said
/// (`fixtures/ext4/edited-bmap.txt`).
fn bmap(name: &str, path: &str) -> u64 {
    let p = ext4_fixtures().join("edited-bmap.txt");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name) && w.next() == Some(path))
                .then(|| w.next().and_then(|b| b.parse().ok()))
                .flatten()
        })
        .unwrap_or_else(|| panic!("{}: no bmap of {path} in {name}", p.display()))
}

/// The committed image `fixtures/ext4/NAME.img.zst` (`make-edited-images.sh`: the tree
/// etc/file.txt, etc/other.txt, big on 8 MiB, 4 KiB blocks), decompressed into `tmp`.
fn edited_image(tmp: &Path, name: &str) -> PathBuf {
    let src = ext4_fixtures().join(format!("{name}.img.zst"));
    let z = std::fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let raw = zstd::decode_all(&z[..]).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    std::fs::create_dir_all(tmp).unwrap();
    let img = tmp.join(format!("{name}.img"));
    std::fs::write(&img, raw).unwrap();
    img
}

#[test]
fn corrupt_extent_headers_are_errors_naming_the_inode() {
    let tmp = tempfile::tempdir().unwrap();
    let img = edited_image(tmp.path(), "small-4k");
    let fs = open(&img);
    let ino = fs.metadata(Path::new("/big")).unwrap().ino;
    drop(fs);
    // The same image with /big's extent tree edited by debugfs (which rewrites the inode
    // checksum): bad magic, depth 0xffff, an extent past the end of the filesystem.
    for (name, want) in [
        ("extent-magic", "magic"),
        ("extent-depth", "depth"),
        ("extent-past-end", ""),
    ] {
        let fs = open(&edited_image(tmp.path(), name));
        // The whole chain: the path, then what was wrong with the inode.
        let e =
            salvor_source::error_chain(&fs.read_limited(Path::new("/big"), 1 << 20).unwrap_err());
        assert!(
            e.contains(&format!("inode {ino}")) && e.contains(want),
            "{name}: {e}"
        );
    }
}

fn patch_dir_entry(img: &Path, dir: &str, name: &[u8], f: impl FnOnce(&mut [u8])) {
    let stem = img.file_stem().and_then(|s| s.to_str()).unwrap();
    let blk = bmap(stem, dir);
    let mut bytes = std::fs::read(img).unwrap();
    let bs = 4096usize;
    let block = &mut bytes[blk as usize * bs..(blk as usize + 1) * bs];
    let pos = block.windows(name.len()).position(|w| w == name).unwrap();
    f(&mut block[pos - 8..]);
    std::fs::write(img, bytes).unwrap();
}

#[test]
fn huge_rec_len_and_out_of_range_inodes_are_skipped_with_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let img = edited_image(tmp.path(), "small-4k-nocsum");
    patch_dir_entry(&img, "/etc", b"other.txt", |e| {
        e[0..4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes())
    });
    let fs = open(&img);
    let names: Vec<_> = fs
        .read_dir(Path::new("/etc"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["file.txt"]);
    assert!(
        fs.report()
            .warnings
            .iter()
            .any(|w| w.contains("out of range")),
        "{:?}",
        fs.report().warnings
    );

    let img = edited_image(&tmp.path().join("b"), "small-4k-nocsum");
    patch_dir_entry(&img, "/etc", b"file.txt", |e| {
        e[4..6].copy_from_slice(&0xFFFCu16.to_le_bytes())
    });
    let fs = open(&img);
    let _ = fs.read_dir(Path::new("/etc")).unwrap();
    assert!(
        fs.report().warnings.iter().any(|w| w.contains("rec_len")),
        "{:?}",
        fs.report().warnings
    );
    assert!(fs.metadata_by_ino(u64::MAX).is_err());
    assert!(fs.metadata_by_ino(0).is_err());
}

#[test]
fn checksum_mismatch_is_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let img = edited_image(tmp.path(), "small-4k");
    // Change a name byte in /etc's block: the dirent checksum no longer matches.
    patch_dir_entry(&img, "/etc", b"other.txt", |e| e[8] = b'O');
    let fs = open(&img);
    let names: Vec<_> = fs
        .read_dir(Path::new("/etc"))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["Other.txt", "file.txt"]);
    let r = fs.report();
    assert_eq!(r.checksum_failures, 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("checksum"), "{:?}", r.warnings);
}

#[test]
fn not_ext4_is_refused() {
    assert!(open_mem(vec![0u8; 1 << 20]).is_err());
    assert!(open_mem(vec![0u8; 100]).is_err());
}

/// Deterministic flips concentrated on metadata: most images still open, and the walk
/// gets through them (errors and warnings, no panic).
#[test]
fn metadata_flips_walk_with_budget() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut opened, mut steps, mut warned) = (0, 0, 0);
    let t = Instant::now();
    for i in 0..150 {
        let (_, base) = &images()[i % 3];
        let mut bytes = base.clone();
        for _ in 0..(1 + rnd() % 30) {
            let off = (1024 + rnd() % (400 * 1024)) as usize;
            bytes[off] ^= (rnd() as u8) | 1;
        }
        if let Ok(fs) = open_mem(bytes) {
            opened += 1;
            steps += walk_budget(&fs);
            if !fs.report().warnings.is_empty() || fs.report().checksum_failures > 0 {
                warned += 1;
            }
        }
    }
    eprintln!(
        "metadata flips: {opened}/150 opened, {steps} walk steps, {warned} with warnings, {:?}",
        t.elapsed()
    );
    assert!(opened > 75 && steps > 10_000);
}

/// A fuzzer-found image whose directories loop back on themselves, walked as the fuzz
/// target does (no loop detection, 2,000 entries, ever deeper paths). Lookups start from
/// the cached parent directory, so the walk is linear in depth (it took 21 s under the
/// fuzzer's instrumentation when every lookup walked from the root); every answer must
/// equal the one a fresh, cache-less reader gives for the same path.
#[test]
fn looping_directories_walk_in_linear_time_with_the_same_answers() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-slow-walk.img"))
            .unwrap();
    let fs = open_mem(bytes.clone()).expect("the image opens");
    let t0 = Instant::now();
    let mut stack = vec![PathBuf::new()];
    let mut visited = Vec::new();
    let mut deepest = 0;
    'walk: while let Some(dir) = stack.pop() {
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries {
            if visited.len() >= 2000 {
                break 'walk;
            }
            let p = dir.join(&e.name);
            deepest = deepest.max(p.components().count());
            let md = fs.metadata(&p).map_err(|e| e.to_string());
            if let Ok(m) = &md {
                if m.is_dir() {
                    stack.push(p.clone());
                }
            }
            visited.push((p, md));
        }
    }
    eprintln!(
        "{} entries, deepest path {deepest} components, {:?}",
        visited.len(),
        t0.elapsed()
    );
    assert!(
        deepest > 100,
        "the image should loop into deep paths ({deepest})"
    );
    // Spot-check against fresh readers (no path cache): every 97th path and the last.
    for (i, (p, md)) in visited.iter().enumerate() {
        if i % 97 != 0 && i + 1 != visited.len() {
            continue;
        }
        let fresh = open_mem(bytes.clone()).unwrap();
        assert_eq!(
            &fresh.metadata(p).map_err(|e| e.to_string()),
            md,
            "{}",
            p.display()
        );
    }
}
