//! Hostile images: truncated files, tables pointing past the end, absurd sizes, loops.
//! Everything must be an error or a warning naming the structure: never a panic or hang.

mod common;

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

/// A small qcow2 (2 MiB disk, 4 KiB clusters, data in a few clusters) and a compressed one.
fn small_qcow2(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    need("qemu-img", "qemu-utils");
    let mut raw = vec![0u8; 2 << 20];
    for (i, b) in raw.iter_mut().enumerate().take(300_000) {
        *b = (i % 253) as u8;
    }
    raw[1 << 20..(1 << 20) + 5000].fill(0x42);
    std::fs::write(dir.join("small.raw"), &raw).unwrap();
    run(
        dir,
        &[
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=4096",
            "small.raw",
            "small.qcow2",
        ],
    );
    run(
        dir,
        &[
            "qemu-img",
            "convert",
            "-c",
            "-f",
            "raw",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=4096",
            "small.raw",
            "smallz.qcow2",
        ],
    );
    (
        std::fs::read(dir.join("small.qcow2")).unwrap(),
        std::fs::read(dir.join("smallz.qcow2")).unwrap(),
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
    need("qemu-img", "qemu-utils");
    run(
        d,
        &[
            "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2",
            "a.qcow2", "1M",
        ],
    );
    run(
        d,
        &[
            "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2",
            "b.qcow2", "1M",
        ],
    );
    let e = open_image(&d.join("a.qcow2")).unwrap_err().to_string();
    assert!(e.contains("loop"), "{e}");
    run(
        d,
        &["qemu-img", "create", "-q", "-f", "qcow2", "c0.qcow2", "1M"],
    );
    for i in 1..=18 {
        let b = format!("c{}.qcow2", i - 1);
        run(
            d,
            &[
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-u",
                "-b",
                &b,
                "-F",
                "qcow2",
                &format!("c{i}.qcow2"),
                "1M",
            ],
        );
    }
    assert!(
        open_image(&d.join("c16.qcow2")).is_ok(),
        "16 backing files are allowed"
    );
    let e = open_image(&d.join("c17.qcow2")).unwrap_err().to_string();
    assert!(e.contains("deeper than 16"), "{e}");
    // A backing file that does not exist.
    run(
        d,
        &[
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-b",
            "missing.qcow2",
            "-F",
            "qcow2",
            "orphan.qcow2",
            "1M",
        ],
    );
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

fn gpt_disk(dir: &Path) -> Vec<u8> {
    need("sgdisk", "gdisk");
    run(dir, &["truncate", "-s", "4M", "g.raw"]);
    run(
        dir,
        &[
            "sgdisk",
            "-n",
            "1:2048:+1M",
            "-t",
            "1:8300",
            "-n",
            "2:0:0",
            "g.raw",
        ],
    );
    std::fs::read(dir.join("g.raw")).unwrap()
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
