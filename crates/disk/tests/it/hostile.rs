//! Hostile images: truncated files, tables pointing past the end, absurd sizes, loops.
//! Everything must be an error or a warning naming the structure: never a panic or hang.

use crate::common;

use std::path::Path;

use common::*;
use proptest::prelude::*;
use salvor_disk::{open_image, BlockDevice, Disk, DiskError};

/// Reads a whole device (at most `cap` bytes from the start and the last MiB), returning
/// the first error.
fn read_all(d: &dyn BlockDevice, cap: u64) -> Result<(), String> {
    let mut buf = vec![0u8; 65536 + 123];
    let size = d.size();
    let mut ranges = vec![(0, size.min(cap))];
    if size > cap {
        ranges.push((size - size.min(1 << 20), size));
    }
    for (mut off, end) in ranges {
        while off < end {
            let n = (end - off).min(buf.len() as u64) as usize;
            match d.read_at(off, &mut buf[..n]) {
                Ok(0) => return Err(format!("read_at({off}) returned 0 inside the device")),
                Ok(k) => off += k as u64,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(())
}

fn be32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_be_bytes());
}
fn be64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_be_bytes());
}
fn get64(b: &[u8], o: usize) -> u64 {
    u64::from_be_bytes(b[o..o + 8].try_into().unwrap())
}

/// A small qcow2 (2 MiB disk, 4 KiB clusters, data in a few clusters) and a compressed one,
/// as qemu-img wrote them (`fixtures/disk/make-containers.sh`).
fn small_qcow2(_dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(containers_dir().join("small.qcow2")).unwrap(),
        std::fs::read(containers_dir().join("smallz.qcow2")).unwrap(),
    )
}

fn open_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<salvor_disk::Image, DiskError> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    open_image(&p)
}

#[test]
fn qcow2_header_damage_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (q, _) = small_qcow2(d);
    let l1_off = get64(&q, 40) as usize;
    type Patch = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Patch, &str)> = vec![
        (
            "truncated header",
            Box::new(|b: &mut Vec<u8>| b.truncate(50)),
            "qcow2 header",
        ),
        (
            "version 7",
            Box::new(|b: &mut Vec<u8>| be32(b, 4, 7)),
            "version",
        ),
        (
            "version 1",
            Box::new(|b: &mut Vec<u8>| be32(b, 4, 1)),
            "not supported",
        ),
        (
            "cluster_bits 40",
            Box::new(|b: &mut Vec<u8>| be32(b, 20, 40)),
            "cluster_bits",
        ),
        (
            "absurd size",
            Box::new(|b: &mut Vec<u8>| be64(b, 24, u64::MAX)),
            "L1 table",
        ),
        (
            "huge l1_size",
            Box::new(|b: &mut Vec<u8>| be32(b, 36, u32::MAX)),
            "L1 table",
        ),
        (
            "l1 past the end",
            Box::new(|b: &mut Vec<u8>| be64(b, 40, 1 << 40)),
            "L1 table",
        ),
        (
            "encrypted",
            Box::new(|b: &mut Vec<u8>| be32(b, 32, 1)),
            "encrypted",
        ),
        (
            "extended_l2",
            Box::new(|b: &mut Vec<u8>| be64(b, 72, 1 << 4)),
            "extended_l2",
        ),
        (
            "external data file",
            Box::new(|b: &mut Vec<u8>| be64(b, 72, 1 << 2)),
            "external data file",
        ),
        (
            "unknown incompat",
            Box::new(|b: &mut Vec<u8>| be64(b, 72, 1 << 40)),
            "unknown qcow2 incompatible",
        ),
        (
            "header_length",
            Box::new(|b: &mut Vec<u8>| be32(b, 100, 1 << 30)),
            "header_length",
        ),
        (
            "backing name past end",
            Box::new(|b: &mut Vec<u8>| {
                be64(b, 8, 4000);
                be32(b, 16, 1000)
            }),
            "backing file name",
        ),
        (
            "zstd without feature bit",
            Box::new(|b: &mut Vec<u8>| b[104] = 1),
            "compression",
        ),
    ];
    for (name, patch, want) in cases {
        let mut b = q.clone();
        patch(&mut b);
        let e = match open_bytes(d, "h.qcow2", &b) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{name}: accepted"),
        };
        assert!(e.contains(want) && e.contains("h.qcow2"), "{name}: {e}");
    }
    // L1 entry pointing past the end: opens, reading that region fails (names the L2 table).
    let mut b = q.clone();
    be64(&mut b, l1_off, (1 << 40) | (1 << 63));
    let img = open_bytes(d, "l1.qcow2", &b).unwrap();
    let e = read_all(&*img.device, u64::MAX).unwrap_err();
    assert!(e.contains("L2 table") && e.contains("l1.qcow2"), "{e}");
}

#[test]
fn qcow2_l2_damage_and_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (q, z) = small_qcow2(d);
    let l2_off = (get64(&q, get64(&q, 40) as usize) & 0x00ff_ffff_ffff_fe00) as usize;
    // L2 entry pointing past the end, and an unaligned one.
    for (v, want) in [
        ((1u64 << 40) | (1 << 63), "past the end"),
        (4096 * 3 + 512, "not cluster-aligned"),
    ] {
        let mut b = q.clone();
        be64(&mut b, l2_off, v);
        let img = open_bytes(d, "l2.qcow2", &b).unwrap();
        let e = read_all(&*img.device, u64::MAX).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    // Compressed cluster pointing past the end / at garbage.
    let zl2 = (get64(&z, get64(&z, 40) as usize) & 0x00ff_ffff_ffff_fe00) as usize;
    let mut b = z.clone();
    be64(&mut b, zl2, (1 << 62) | (1 << 40));
    let img = open_bytes(d, "cz.qcow2", &b).unwrap();
    assert!(read_all(&*img.device, u64::MAX)
        .unwrap_err()
        .contains("compressed cluster"));
    let mut b = z.clone();
    be64(&mut b, zl2, (1 << 62) | 512); // points into the header: not deflate data
    let img = open_bytes(d, "cz2.qcow2", &b).unwrap();
    assert!(read_all(&*img.device, u64::MAX).is_err());
    // Truncated at every 4 KiB: open fails or reading fails, no panic.
    for cut in (0..q.len()).step_by(4096).chain([q.len() - 1]) {
        if let Ok(img) = open_bytes(d, "t.qcow2", &q[..cut]) {
            let _ = read_all(&*img.device, u64::MAX);
        }
    }
}

#[test]
fn backing_loops_and_deep_chains_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // qemu-img's empty 1 MiB qcow2s (`make-containers.sh`), the backing name rewritten.
    let backed = |file: &str, backing: &str| {
        std::fs::write(d.join(file), qcow2_with_backing("backed.qcow2", backing)).unwrap()
    };
    backed("a.qcow2", "b.qcow2");
    backed("b.qcow2", "a.qcow2");
    let e = open_image(&d.join("a.qcow2")).unwrap_err().to_string();
    assert!(e.contains("loop"), "{e}");
    std::fs::copy(containers_dir().join("empty.qcow2"), d.join("c0.qcow2")).unwrap();
    for i in 1..=18 {
        backed(&format!("c{i}.qcow2"), &format!("c{}.qcow2", i - 1));
    }
    assert!(
        open_image(&d.join("c16.qcow2")).is_ok(),
        "16 backing files are allowed"
    );
    let e = open_image(&d.join("c17.qcow2")).unwrap_err().to_string();
    assert!(e.contains("deeper than 16"), "{e}");
    // A backing file that does not exist.
    backed("orphan.qcow2", "missing.qcow2");
    let e = open_image(&d.join("orphan.qcow2")).unwrap_err().to_string();
    assert!(e.contains("missing.qcow2"), "{e}");
}

fn mbr_entry(b: &mut [u8], i: usize, ty: u8, start: u32, len: u32) {
    let e = &mut b[446 + i * 16..462 + i * 16];
    e[4] = ty;
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&len.to_le_bytes());
}

#[test]
fn mbr_overlaps_out_of_range_and_ebr_loops() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut b = vec![0u8; 1 << 20];
    b[510] = 0x55;
    b[511] = 0xaa;
    mbr_entry(&mut b, 0, 0x83, 64, 512);
    mbr_entry(&mut b, 1, 0x83, 300, 512); // overlaps 1
    mbr_entry(&mut b, 2, 0x83, 100_000, 10); // past the end
    mbr_entry(&mut b, 3, 0x05, 1024, 1000); // extended, EBR chain loops
    let ebr = 1024 * 512;
    b[ebr + 510] = 0x55;
    b[ebr + 511] = 0xaa;
    b[ebr + 446 + 4] = 0x83;
    b[ebr + 446 + 8..ebr + 446 + 12].copy_from_slice(&8u32.to_le_bytes());
    b[ebr + 446 + 12..ebr + 446 + 16].copy_from_slice(&16u32.to_le_bytes());
    b[ebr + 462 + 4] = 0x05;
    b[ebr + 462 + 8..ebr + 462 + 12].copy_from_slice(&0u32.to_le_bytes()); // rel 0 ends chain
                                                                           // Make it loop instead: next EBR at +32 whose next is +0 (= the first).
    b[ebr + 462 + 8..ebr + 462 + 12].copy_from_slice(&32u32.to_le_bytes());
    let ebr2 = (1024 + 32) * 512;
    b[ebr2 + 510] = 0x55;
    b[ebr2 + 511] = 0xaa;
    b[ebr2 + 462 + 4] = 0x05;
    b[ebr2 + 462 + 8..ebr2 + 462 + 12].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(d.join("m.raw"), &b).unwrap();
    // rel 0 in the second EBR ends the chain; make the loop explicit with a third pointer.
    let disk = Disk::open(&d.join("m.raw")).unwrap();
    let w = disk.warnings.join("\n");
    assert!(w.contains("overlap"), "{w}");
    assert!(w.contains("past the end"), "{w}");
    let specs: Vec<_> = disk.volumes.iter().map(|v| v.spec.as_str()).collect();
    assert_eq!(specs, ["p1", "p2", "p5"]);
    // A real loop: the second EBR points back at the first (rel 0 is "end", so point at
    // a third EBR that points at the second).
    b[ebr2 + 462 + 8..ebr2 + 462 + 12].copy_from_slice(&64u32.to_le_bytes());
    let ebr3 = (1024 + 64) * 512;
    b[ebr3 + 510] = 0x55;
    b[ebr3 + 511] = 0xaa;
    b[ebr3 + 462 + 4] = 0x05;
    b[ebr3 + 462 + 8..ebr3 + 462 + 12].copy_from_slice(&32u32.to_le_bytes());
    std::fs::write(d.join("m2.raw"), &b).unwrap();
    let disk = Disk::open(&d.join("m2.raw")).unwrap();
    assert!(
        disk.warnings.join("\n").contains("loops"),
        "{:?}",
        disk.warnings
    );
}

/// sgdisk's 4 MiB disk (p1 1 MiB at 2048, p2 the rest; `make-containers.sh`).
fn gpt_disk(_dir: &Path) -> Vec<u8> {
    std::fs::read(containers_dir().join("g.raw")).unwrap()
}

fn fix_gpt_crc(b: &mut [u8], hdr: usize) {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    b[hdr + 16..hdr + 20].fill(0);
    let c = CRC.checksum(&b[hdr..hdr + 92]);
    b[hdr + 16..hdr + 20].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn gpt_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let g = gpt_disk(d);
    let last = g.len() - 512;
    // Absurd entry count (CRC fixed so only the bound stops it): the backup is used.
    let mut b = g.clone();
    b[512 + 80..512 + 84].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_gpt_crc(&mut b, 512);
    std::fs::write(d.join("g1.raw"), &b).unwrap();
    let disk = Disk::open(&d.join("g1.raw")).unwrap();
    assert!(
        disk.warnings.join("\n").contains("using the backup"),
        "{:?}",
        disk.warnings
    );
    assert_eq!(disk.partition_table.as_ref().unwrap().partitions.len(), 2);
    // Both headers bad: a warning, the scan goes on with the whole disk.
    b[last + 84..last + 88].copy_from_slice(&1u32.to_le_bytes());
    fix_gpt_crc(&mut b, last);
    std::fs::write(d.join("g2.raw"), &b).unwrap();
    let disk = Disk::open(&d.join("g2.raw")).unwrap();
    assert!(
        disk.warnings.join("\n").contains("GPT"),
        "{:?}",
        disk.warnings
    );
    // Entries out of range and overlapping (entries CRC fixed).
    let mut b = g.clone();
    let e = 1024; // entry array at LBA 2
    b[e + 128 + 32..e + 128 + 40].copy_from_slice(&3000u64.to_le_bytes()); // p2 first = inside p1
    b[e + 128 + 40..e + 128 + 48].copy_from_slice(&(1u64 << 40).to_le_bytes()); // last past the end
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let n = u32::from_le_bytes(b[512 + 80..512 + 84].try_into().unwrap()) as usize;
    let c = CRC.checksum(&b[e..e + n * 128]);
    b[512 + 88..512 + 92].copy_from_slice(&c.to_le_bytes());
    fix_gpt_crc(&mut b, 512);
    std::fs::write(d.join("g3.raw"), &b).unwrap();
    let disk = Disk::open(&d.join("g3.raw")).unwrap();
    let w = disk.warnings.join("\n");
    assert!(w.contains("overlap") && w.contains("past the end"), "{w}");
    for v in &disk.volumes {
        read_all(&*v.device, u64::MAX).unwrap();
    }
}

/// Opens and scans `bytes`, reads (the start and end of) every volume: any outcome but a
/// panic or a hang is fine.
fn scan_everything(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    if let Ok(disk) = Disk::open(&p) {
        let _ = serde_json::to_string(&disk.report()).unwrap();
        let _ = read_all(&*disk.device, 4 << 20);
        for v in &disk.volumes {
            let _ = read_all(&*v.device, 4 << 20);
        }
    }
}

struct Corpus {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    images: Vec<(&'static str, Vec<u8>, usize)>, // name, bytes, region to flip in
}

fn corpus() -> &'static Corpus {
    static C: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_path_buf();
        let (q, z) = small_qcow2(&d);
        let g = gpt_disk(&d);
        let pv = make_pv(
            2 << 20,
            PV_UUID,
            1 << 20,
            (1 << 20) - 4096,
            &vg0_text(),
            512,
        );
        let qlen = q.len();
        let zlen = z.len();
        Corpus {
            _tmp: tmp,
            dir: d,
            images: vec![
                ("q.qcow2", q, qlen),
                ("z.qcow2", z, zlen),
                ("g.raw", g, 64 * 1024),
                ("pv.raw", pv, 4096 + 512 + 4096),
            ],
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_byte_flips_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..24),
    ) {
        let c = corpus();
        let (name, bytes, region) = &c.images[which];
        let mut b = bytes.clone();
        for (pos, val) in flips {
            let i = pos as usize % region;
            b[i] ^= val | 1;
        }
        scan_everything(&c.dir, &format!("flip-{name}"), &b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn lvm_text_mutations_never_panic(
        flips in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..16),
    ) {
        let mut t = vg0_text().into_bytes();
        for (pos, val) in flips {
            let i = pos as usize % t.len();
            t[i] = val;
        }
        let text = String::from_utf8_lossy(&t);
        if let Ok(vg) = salvor_disk::lvm::parse_metadata(&text) {
            let devs = std::collections::HashMap::new();
            for lv in &vg.logical_volumes {
                let _ = salvor_disk::lvm::map_lv(&vg, lv, &devs);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Disk-image sets that name files outside the evidence (issue 15, items 1, 2, 6).
// ---------------------------------------------------------------------------------------

const CANARY: &[u8] = b"OUTSIDE-CANARY-7f3a9c";

/// A tree: `ev/` (the evidence directory) and `outside/` holding a canary disk (1 MiB of
/// the canary string) as `secret.raw` and `secret.vmdk`.
fn set_tree() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let ev = tmp.path().join("ev");
    let out = tmp.path().join("outside");
    std::fs::create_dir_all(&ev).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let secret: Vec<u8> = CANARY.iter().copied().cycle().take(1 << 20).collect();
    std::fs::write(out.join("secret.raw"), &secret).unwrap();
    std::fs::write(out.join("secret.vmdk"), &secret).unwrap();
    (tmp, ev, out)
}

/// sha256, size and mtime of every file under `dir` (symlinks as their target text).
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let what = if md.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if md.is_file() {
            format!("{} {:?}", sha256_file(&p), md.modified().unwrap())
        } else if md.is_dir() {
            "dir".into()
        } else {
            format!("{:?}", md.file_type())
        };
        v.push((p, what));
    }
    v.sort();
    v
}

/// Opens `path` in a thread: a hang (a FIFO opened blocking) fails the test after 20 s
/// instead of hanging it.
fn open_timed(
    path: &Path,
    opts: salvor_disk::OpenOptions,
) -> Result<salvor_disk::Image, DiskError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(salvor_disk::open_image_with(&p, &opts));
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("opening {} hung for 20 s", path.display()))
}

/// The refusal: a `Refused` naming `referrer` and `name`, its message naming both, and no
/// canary byte in it.
fn assert_refused(
    r: Result<salvor_disk::Image, DiskError>,
    referrer: &Path,
    name: &str,
    why: &str,
) {
    let e = match r {
        Ok(img) => {
            // Opened: prove it by showing what it reads.
            let mut b = vec![0u8; 64];
            let _ = img.device.read_at(0, &mut b);
            panic!(
                "{} opened (files {:?}), first bytes {:?}",
                referrer.display(),
                img.files(),
                String::from_utf8_lossy(&b)
            )
        }
        Err(e) => e,
    };
    let msg = e.to_string();
    match &e {
        DiskError::Refused {
            referrer: r,
            name: n,
            ..
        } => {
            assert_eq!(r, referrer, "{msg}");
            assert_eq!(n, name, "{msg}");
        }
        other => panic!("expected a refusal naming {name:?}, got {other:?}"),
    }
    assert!(msg.contains(&referrer.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("{name:?}")), "{msg}");
    assert!(msg.contains(why), "{why:?} not in: {msg}");
    assert!(
        !msg.as_bytes().windows(CANARY.len()).any(|w| w == CANARY),
        "{msg}"
    );
}

fn descriptor(create_type: &str, extent_lines: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\n{extent_lines}\n\n# The Disk Data Base\nddb.virtualHWVersion = \"4\"\n"
    )
}

#[test]
fn vmdk_extents_outside_the_directory_are_refused() {
    let (_tmp, ev, out) = set_tree();
    let abs_vmdk = out.join("secret.vmdk");
    let abs_raw = out.join("secret.raw");
    let cases: Vec<(&str, String, String, &str)> = vec![
        // (descriptor file, createType + extent line, recorded name, reason)
        (
            "se-abs.vmdk",
            descriptor(
                "seSparse",
                &format!("RW 131072 SESPARSE {}", abs_vmdk.display()),
            ),
            abs_vmdk.display().to_string(),
            "absolute",
        ),
        (
            "se-up.vmdk",
            descriptor("seSparse", "RW 131072 SESPARSE ../outside/secret.vmdk"),
            "../outside/secret.vmdk".into(),
            "leaves the image's directory",
        ),
        (
            "se-tab.vmdk",
            descriptor("seSparse", "RW\t131072\tSESPARSE\t../outside/secret.vmdk"),
            "../outside/secret.vmdk".into(),
            "leaves the image's directory",
        ),
        (
            "se-quoted.vmdk",
            descriptor(
                "seSparse",
                &format!("RW 131072 SESPARSE \"{}\"", abs_vmdk.display()),
            ),
            abs_vmdk.display().to_string(),
            "absolute",
        ),
        (
            "flat-up.vmdk",
            descriptor("monolithicFlat", "RW 2048 FLAT \"../outside/secret.raw\" 0"),
            "../outside/secret.raw".into(),
            "leaves the image's directory",
        ),
        (
            "flat-tab.vmdk",
            descriptor(
                "monolithicFlat",
                &format!("RDONLY\t2048\tFLAT\t{}\t0", abs_raw.display()),
            ),
            abs_raw.display().to_string(),
            "absolute",
        ),
        (
            "vmfs-lower.vmdk",
            descriptor("vmfs", "rw 2048 VMFS \"../outside/secret.raw\""),
            "../outside/secret.raw".into(),
            "leaves the image's directory",
        ),
        (
            "sparse-abs.vmdk",
            descriptor(
                "twoGbMaxExtentSparse",
                &format!("RW 2048 SPARSE \"{}\"", abs_vmdk.display()),
            ),
            abs_vmdk.display().to_string(),
            "absolute",
        ),
        (
            "vmfssparse-up.vmdk",
            descriptor("vmfsSparse", "RW 2048 VMFSSPARSE ../outside/secret.vmdk"),
            "../outside/secret.vmdk".into(),
            "leaves the image's directory",
        ),
        (
            "noaccess.vmdk",
            descriptor(
                "monolithicFlat",
                &format!("NOACCESS 2048 FLAT \"{}\" 0", abs_raw.display()),
            ),
            abs_raw.display().to_string(),
            "absolute",
        ),
    ];
    for (file, text, _, _) in &cases {
        std::fs::write(ev.join(file), text).unwrap();
    }
    // A qcow2 in the directory whose backing file is such a descriptor (qemu-img's, 64 MiB,
    // backing "se-abs.vmdk" in vmdk format).
    std::fs::copy(
        containers_dir().join("top-vmdk.qcow2"),
        ev.join("top.qcow2"),
    )
    .unwrap();
    let before = snapshot(&ev);
    for (file, _, name, why) in &cases {
        let p = ev.join(file);
        assert_refused(open_timed(&p, Default::default()), &p, name, why);
    }
    let top = open_timed(&ev.join("top.qcow2"), Default::default());
    // The backing descriptor is opened (it is inside), its extent is refused.
    let se = std::fs::canonicalize(ev.join("se-abs.vmdk")).unwrap();
    assert_refused(top, &se, &abs_vmdk.display().to_string(), "absolute");
    // Device maps and malformed extent lines are errors naming the descriptor and line.
    for (file, line, want) in [
        ("rdm.vmdk", "RW 2048 VMFSRDM \"/dev/sda\"", "host device"),
        ("raw.vmdk", "RW 2048 VMFSRAW \"/dev/sda\"", "host device"),
        (
            "bogus.vmdk",
            "RW 2048 BOGUS \"x.raw\"",
            "unknown extent type",
        ),
        ("noquote.vmdk", "RW 2048 FLAT \"x.raw 0", "closing quote"),
        ("noname.vmdk", "RW 2048 FLAT", "without a file name"),
        (
            "trailing.vmdk",
            "RW 2048 FLAT \"x.raw\" 0 junk",
            "after the offset",
        ),
        (
            "garbage.vmdk",
            "RWX 2048 FLAT \"x.raw\"",
            "neither an extent line",
        ),
    ] {
        let p = ev.join(file);
        std::fs::write(&p, descriptor("monolithicFlat", line)).unwrap();
        let e = open_timed(&p, Default::default()).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains(want),
            "{line}: {e}"
        );
        assert!(e.contains("line 8"), "{line}: {e}");
    }
    let after: Vec<_> = snapshot(&ev)
        .into_iter()
        .filter(|(p, _)| before.iter().any(|(q, _)| q == p))
        .collect();
    assert_eq!(before, after, "the evidence changed");
}

#[test]
fn vmdk_extent_names_parse_and_symlinks_out_are_refused() {
    let (_tmp, ev, out) = set_tree();
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(ev.join("real.raw"), &data).unwrap();
    std::fs::write(ev.join("with space.raw"), &data).unwrap();
    std::os::unix::fs::symlink("real.raw", ev.join("alias.raw")).unwrap();
    std::os::unix::fs::symlink(out.join("secret.raw"), ev.join("flat.raw")).unwrap();
    // Accepted: unquoted and tab-separated, quoted with a space, an in-directory symlink,
    // ZERO and NOACCESS holes; the bytes are the file's.
    let ok = descriptor(
        "monolithicFlat",
        "RW\t1024\tFLAT\treal.raw\t0\nRDONLY 1024 FLAT \"with space.raw\" 1024\nRW 1024 ZERO\nNOACCESS 1024 FLAT \"real.raw\" 0\nRW 2048 FLAT \"alias.raw\"",
    );
    std::fs::write(ev.join("ok.vmdk"), ok).unwrap();
    let img = open_timed(&ev.join("ok.vmdk"), Default::default()).unwrap();
    assert_eq!(img.device.size(), 6144 * 512);
    let mut got = vec![0u8; 6144 * 512];
    img.device.read_exact_at(0, &mut got).unwrap();
    let half = 1024 * 512;
    assert_eq!(&got[..half], &data[..half]);
    assert_eq!(&got[half..2 * half], &data[half..]);
    assert!(got[2 * half..4 * half].iter().all(|&b| b == 0));
    assert_eq!(&got[4 * half..], &data[..]);
    let real = std::fs::canonicalize(ev.join("real.raw")).unwrap();
    let spaced = std::fs::canonicalize(ev.join("with space.raw")).unwrap();
    assert_eq!(
        img.files(),
        vec![
            std::fs::canonicalize(ev.join("ok.vmdk")).unwrap(),
            real.clone(),
            spaced
        ]
    );
    // A flat extent that is a symlink to an outside disk.
    let before = snapshot(&ev);
    std::fs::write(
        ev.join("link.vmdk"),
        descriptor("monolithicFlat", "RW 2048 FLAT \"flat.raw\" 0"),
    )
    .unwrap();
    let p = ev.join("link.vmdk");
    assert_refused(
        open_timed(&p, Default::default()),
        &p,
        "flat.raw",
        "symlink",
    );
    // Given explicitly, the outside file is used as given.
    let mut opts = salvor_disk::OpenOptions::default();
    opts.backing_files
        .insert("flat.raw".into(), out.join("secret.raw"));
    let img = open_timed(&p, opts).unwrap();
    let mut b = vec![0u8; CANARY.len()];
    img.device.read_exact_at(0, &mut b).unwrap();
    assert_eq!(b, CANARY);
    assert!(img
        .files()
        .contains(&std::fs::canonicalize(out.join("secret.raw")).unwrap()));
    let after: Vec<_> = snapshot(&ev)
        .into_iter()
        .filter(|(p, _)| before.iter().any(|(q, _)| q == p))
        .collect();
    assert_eq!(before, after, "the evidence changed");
}

#[test]
fn e01_segments_of_another_acquisition_are_refused() {
    let (_tmp, ev, out) = set_tree();
    // Acquisition A (3.5 MiB) in ev/, acquisition B (other bytes, 4 MiB) outside, both
    // by ewfacquire in 1 MiB segments (`make-containers.sh`).
    copy_e01_set("a", &ev, "a");
    copy_e01_set("b", &out, "b");
    // The set alone opens, and lists its segments.
    let a = open_timed(&ev.join("a.E01"), Default::default()).unwrap();
    assert!(a.files().len() >= 3);
    let id = |p: &Path| {
        salvor_disk::ewf1::set_identity(p, &std::fs::File::open(p).unwrap())
            .unwrap()
            .unwrap()
    };
    assert_eq!(id(&ev.join("a.E01")), id(&ev.join("a.E02")));
    assert_ne!(id(&ev.join("a.E02")), id(&out.join("b.E02")));
    // Mixed sets, each in its own directory: A's segments with another E02.
    let mixed = |tag: &str, seg2: &dyn Fn(&Path)| {
        let d = ev.join(tag);
        std::fs::create_dir_all(&d).unwrap();
        for n in 1..=9 {
            let s = ev.join(format!("a.E{n:02}"));
            if s.exists() && n != 2 {
                std::fs::copy(&s, d.join(format!("a.E{n:02}"))).unwrap();
            }
        }
        seg2(&d.join("a.E02"));
        d.join("a.E01")
    };
    let before = snapshot(&ev);
    // E02 a symlink to B's E02 outside the directory.
    let first = mixed("link-out", &|p| {
        std::os::unix::fs::symlink(out.join("b.E02"), p).unwrap()
    });
    assert_refused(
        open_timed(&first, Default::default()),
        &first,
        "a.E02",
        "symlink",
    );
    // E02 a symlink to B's E02 in a subdirectory of the set's directory.
    let first = mixed("link-in", &|p| {
        let d = p.parent().unwrap().join("b");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(out.join("b.E02"), d.join("b.E02")).unwrap();
        std::os::unix::fs::symlink("b/b.E02", p).unwrap();
    });
    assert_refused(
        open_timed(&first, Default::default()),
        &first,
        "a.E02",
        "symlink",
    );
    // E02 a copy of B's E02 (a regular file of the right name): another acquisition.
    let first = mixed("copy", &|p| {
        std::fs::copy(out.join("b.E02"), p).unwrap();
    });
    assert_refused(
        open_timed(&first, Default::default()),
        &first,
        "a.E02",
        "another acquisition",
    );
    // A segment missing from the middle: an error, not a shorter disk.
    let d = ev.join("gap");
    std::fs::create_dir_all(&d).unwrap();
    for n in [1, 2, 4] {
        std::fs::copy(ev.join(format!("a.E{n:02}")), d.join(format!("a.E{n:02}"))).unwrap();
    }
    let e = open_timed(&d.join("a.E01"), Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("E03") && e.contains("missing"), "{e}");
    // E02 a symlink to the canary.
    let first = mixed("canary", &|p| {
        std::os::unix::fs::symlink(out.join("secret.raw"), p).unwrap()
    });
    assert_refused(
        open_timed(&first, Default::default()),
        &first,
        "a.E02",
        "symlink",
    );
    let after: Vec<_> = snapshot(&ev)
        .into_iter()
        .filter(|(p, _)| before.iter().any(|(q, _)| q == p))
        .collect();
    assert_eq!(before, after, "the evidence changed");
}

#[test]
fn fifos_in_a_set_are_refused_without_hanging() {
    let (_tmp, ev, _out) = set_tree();
    let fifo = |p: &Path| run(&ev, &["mkfifo", p.to_str().unwrap()]);
    // The image itself.
    fifo(&ev.join("disk.raw"));
    let e = open_timed(&ev.join("disk.raw"), Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("disk.raw") && e.contains("FIFO"), "{e}");
    // A qcow2 backing file.
    fifo(&ev.join("base.raw"));
    std::fs::copy(containers_dir().join("top-raw.qcow2"), ev.join("top.qcow2")).unwrap();
    let p = ev.join("top.qcow2");
    assert_refused(open_timed(&p, Default::default()), &p, "base.raw", "FIFO");
    // A VMDK extent, flat and sparse.
    fifo(&ev.join("extent.raw"));
    for (n, line) in [
        ("flat.vmdk", "RW 2048 FLAT \"extent.raw\" 0"),
        ("se.vmdk", "RW 2048 SESPARSE extent.raw"),
    ] {
        std::fs::write(
            ev.join(n),
            descriptor(
                if n == "se.vmdk" {
                    "seSparse"
                } else {
                    "monolithicFlat"
                },
                line,
            ),
        )
        .unwrap();
        let p = ev.join(n);
        assert_refused(open_timed(&p, Default::default()), &p, "extent.raw", "FIFO");
    }
    // An E01 segment.
    copy_e01_set("a", &ev, "ev");
    std::fs::remove_file(ev.join("ev.E02")).unwrap();
    fifo(&ev.join("ev.E02"));
    let p = ev.join("ev.E01");
    assert_refused(open_timed(&p, Default::default()), &p, "ev.E02", "FIFO");
}

/// The tree for the descriptor property: `ev/` with a small raw extent and a symlink out,
/// `outside/` with the canary.
fn descriptor_tree() -> &'static (tempfile::TempDir, std::path::PathBuf) {
    static T: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        let (tmp, ev, out) = set_tree();
        std::fs::write(ev.join("in.raw"), vec![7u8; 1 << 20]).unwrap();
        std::os::unix::fs::symlink(out.join("secret.raw"), ev.join("link.raw")).unwrap();
        std::os::unix::fs::symlink("in.raw", ev.join("alias.raw")).unwrap();
        (tmp, ev)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]
    /// Whatever the extent lines say, a VMDK opens only files inside its directory, and
    /// never reads the canary.
    #[test]
    fn vmdk_descriptors_never_read_outside(
        lines in proptest::collection::vec(
            (
                prop::sample::select(vec!["RW", "RDONLY", "NOACCESS", "rw", "Rw"]),
                prop::sample::select(vec!["0", "1", "2048", "131072", "18446744073709551615", "x"]),
                prop::sample::select(vec!["FLAT", "VMFS", "SPARSE", "VMFSSPARSE", "SESPARSE", "ZERO", "flat"]),
                prop::sample::select(vec![
                    "", "in.raw", "\"in.raw\"", "alias.raw", "link.raw", "\"link.raw\"",
                    "../outside/secret.raw", "\"../outside/secret.raw\"", "./../outside/secret.raw",
                    "in.raw/../../outside/secret.raw", "nbd:localhost:1", "/etc/passwd", "\"/etc/passwd\"", "\"a b\"", "\"x",
                ]),
                prop::sample::select(vec!["", " 0", " 1", "\t3", " 99999999999999999999", " 0 junk"]),
                prop::sample::select(vec![" ", "\t", "  \t"]),
            ),
            1..5,
        ),
        create in prop::sample::select(vec!["monolithicFlat", "seSparse", "vmfs", "twoGbMaxExtentSparse", "custom"]),
    ) {
        let (_t, ev) = descriptor_tree();
        let body: Vec<String> = lines
            .iter()
            .map(|(a, n, t, f, o, sep)| format!("{a}{sep}{n}{sep}{t}{sep}{f}{o}"))
            .collect();
        let text = descriptor(create, &body.join("\n"));
        let p = ev.join("prop.vmdk");
        std::fs::write(&p, text).unwrap();
        if let Ok(img) = open_timed(&p, Default::default()) {
            let cdir = std::fs::canonicalize(ev).unwrap();
            for f in img.files() {
                prop_assert!(f.starts_with(&cdir), "{} read for {:?}", f.display(), body);
            }
            let mut buf = vec![0u8; 1 << 16];
            let size = img.device.size();
            for off in [0, size / 2, size.saturating_sub(1 << 16)] {
                if let Ok(n) = img.device.read_at(off, &mut buf) {
                    prop_assert!(!buf[..n].windows(CANARY.len()).any(|w| w == CANARY));
                }
            }
        }
    }
}
