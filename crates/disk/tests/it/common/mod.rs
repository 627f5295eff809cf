//! Test helpers: external tools (failing loudly with the Debian package to install when
//! one is missing), hashing.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use salvor_disk::BlockDevice;
use sha2::{Digest, Sha256};

/// Panics with the package to install when `tool` is not on PATH.
pub fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p).any(|d| d.join(tool).is_file())
                || ["/usr/sbin", "/sbin"]
                    .iter()
                    .any(|d| Path::new(d).join(tool).is_file())
        })
        .unwrap_or(false);
    assert!(
        found,
        "test needs `{tool}`: install the Debian package `{package}` (see crates/disk/tests/REQUIRES.txt)"
    );
}

fn resolve(tool: &str) -> String {
    for d in ["/usr/sbin", "/sbin"] {
        let p = Path::new(d).join(tool);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    tool.to_string()
}

/// Runs a command in `dir`, panicking with its output when it fails. Returns stdout.
pub fn run(dir: &Path, argv: &[&str]) -> String {
    run_stdin(dir, argv, None)
}

pub fn run_stdin(dir: &Path, argv: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut cmd = Command::new(resolve(argv[0]));
    cmd.args(&argv[1..]).current_dir(dir);
    cmd.stdin(std::process::Stdio::piped());
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    {
        let mut si = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// sha256 of a whole device, read in odd-sized chunks to cross cluster boundaries.
pub fn sha256_dev(d: &dyn BlockDevice) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 200_000];
    let mut off = 0;
    while off < d.size() {
        let n = (d.size() - off).min(buf.len() as u64) as usize;
        d.read_exact_at(off, &mut buf[..n]).unwrap();
        h.update(&buf[..n]);
        off += n as u64;
    }
    assert_eq!(
        d.read_at(d.size(), &mut buf).unwrap(),
        0,
        "read at the end must return 0"
    );
    hex::encode(h.finalize())
}

/// A small ext4 filesystem image (`fs.img`, 6 MiB, 1 KiB blocks) made with `mke2fs -d`.
pub fn make_ext4(dir: &Path, name: &str, size: &str) {
    need("mke2fs", "e2fsprogs");
    let src = dir.join(format!("{name}.src"));
    std::fs::create_dir_all(src.join("var/lib/docker")).unwrap();
    std::fs::write(src.join("var/lib/docker/hello.txt"), b"hello from salvor\n").unwrap();
    std::fs::write(
        src.join("big.bin"),
        (0..300_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    run(
        dir,
        &[
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "1024",
            "-L",
            "salvortest",
            "-d",
            src.to_str().unwrap(),
            name,
            size,
        ],
    );
}

/// Builds an LVM2 PV image in memory: label in sector 1, one metadata area at 4096
/// (`mda_size` bytes) holding `text` at `text_off` within the area (wrapping around the
/// circular buffer when it does not fit), data from `pe_start` bytes.
pub fn make_pv(
    size: usize,
    uuid32: &str,
    pe_start: u64,
    mda_size: u64,
    text: &str,
    text_off: u64,
) -> Vec<u8> {
    use salvor_disk::lvm::{calc_crc, INITIAL_CRC, MDA_MAGIC};
    assert_eq!(uuid32.len(), 32);
    let mut d = vec![0u8; size];
    let s = &mut d[512..1024];
    s[..8].copy_from_slice(b"LABELONE");
    s[8..16].copy_from_slice(&1u64.to_le_bytes());
    s[20..24].copy_from_slice(&32u32.to_le_bytes());
    s[24..32].copy_from_slice(b"LVM2 001");
    let h = &mut s[32..];
    h[..32].copy_from_slice(uuid32.as_bytes());
    h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
    h[40..48].copy_from_slice(&pe_start.to_le_bytes()); // data area
                                                        // [48..64] zero terminator; metadata area:
    h[72..80].copy_from_slice(&4096u64.to_le_bytes());
    h[80..88].copy_from_slice(&mda_size.to_le_bytes());
    let crc = calc_crc(INITIAL_CRC, &s[20..]);
    s[16..20].copy_from_slice(&crc.to_le_bytes());
    // mda header
    let t = text.as_bytes();
    let m = &mut d[4096..4096 + 512];
    m[4..20].copy_from_slice(MDA_MAGIC);
    m[20..24].copy_from_slice(&1u32.to_le_bytes());
    m[24..32].copy_from_slice(&4096u64.to_le_bytes());
    m[32..40].copy_from_slice(&mda_size.to_le_bytes());
    m[40..48].copy_from_slice(&text_off.to_le_bytes());
    m[48..56].copy_from_slice(&(t.len() as u64).to_le_bytes());
    m[56..60].copy_from_slice(&calc_crc(INITIAL_CRC, t).to_le_bytes());
    let crc = calc_crc(INITIAL_CRC, &m[4..]);
    m[0..4].copy_from_slice(&crc.to_le_bytes());
    let first = ((mda_size - text_off) as usize).min(t.len());
    let at = 4096 + text_off as usize;
    d[at..at + first].copy_from_slice(&t[..first]);
    d[4096 + 512..4096 + 512 + t.len() - first].copy_from_slice(&t[first..]);
    d
}

pub const PV_UUID: &str = "abcdefghijklmnopqrstuvwxyz012345";

/// Metadata text of VG `vg0` on one PV (`pv0`, 512 KiB extents from 1 MiB, 24 extents):
/// `root` maps extents 0..8 to PE 10..18 and 8..12 to PE 2..6; `pool` is a thin pool;
/// `wide` is striped over two stripes; `hidden` is not visible.
pub fn vg0_text() -> String {
    r#"# Generated by LVM2 version 2.03.16(2) (2022-05-18): Sat Nov 22 08:00:00 2026

contents = "Text Format Volume Group"
version = 1
description = "Created *after* executing 'lvcreate -n root vg0'"
creation_host = "deadhost"	# Linux deadhost 6.1.0 #1 SMP x86_64
creation_time = 1763798400	# Sat Nov 22 08:00:00 2026

vg0 {
	id = "Vg0uid-aaaa-bbbb-cccc-dddd-eeee-ffffff"
	seqno = 7
	format = "lvm2"
	status = ["RESIZEABLE", "READ", "WRITE"]
	flags = []
	extent_size = 1024
	max_lv = 0
	max_pv = 0
	metadata_copies = 0

	physical_volumes {

		pv0 {
			id = "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"
			device = "/dev/sda2"	# Hint only
			status = ["ALLOCATABLE"]
			flags = []
			dev_size = 28672
			pe_start = 2048
			pe_count = 24
		}
	}

	logical_volumes {

		root {
			id = "Root00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			creation_time = 1763798400
			creation_host = "deadhost"
			segment_count = 2

			segment1 {
				start_extent = 0
				extent_count = 8
				type = "striped"
				stripe_count = 1	# linear
				stripes = [
					"pv0", 10
				]
			}
			segment2 {
				start_extent = 8
				extent_count = 4
				type = "striped"
				stripe_count = 1
				stripes = [
					"pv0", 2
				]
			}
		}

		pool {
			id = "Pool00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 2
				type = "thin-pool"
				metadata = "pool_tmeta"
				pool = "pool_tdata"
				transaction_id = 0
				chunk_size = 128
				discards = "passdown"
				zero_new_blocks = 1
			}
		}

		wide {
			id = "Wide00-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE", "VISIBLE"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 2
				type = "striped"
				stripe_count = 2
				stripe_size = 128
				stripes = [
					"pv0", 18,
					"pv0", 20
				]
			}
		}

		hidden {
			id = "Hidden-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE"]
			flags = []
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 1
				type = "striped"
				stripe_count = 1
				stripes = [
					"pv0", 22
				]
			}
		}
	}

}
"#
    .to_string()
}

/// A 14 MiB PV (sfdisk type 8e partition content) with `fs` (6 MiB) laid out as `root`.
pub fn pv_with_fs(fs: &[u8], text_off: u64) -> Vec<u8> {
    assert_eq!(fs.len(), 6 << 20);
    let ext = 512 * 1024;
    let mut pv = make_pv(
        14 << 20,
        PV_UUID,
        1 << 20,
        (1 << 20) - 4096,
        &vg0_text(),
        text_off,
    );
    let base = 1 << 20;
    pv[base + 10 * ext..base + 18 * ext].copy_from_slice(&fs[..8 * ext]);
    pv[base + 2 * ext..base + 6 * ext].copy_from_slice(&fs[8 * ext..]);
    pv
}

/// `fixtures/disk` (made by `fixtures/disk/make-disks.sh`), or `SALVOR_DISK_FIXTURES`.
pub fn disk_fixtures() -> std::path::PathBuf {
    std::env::var_os("SALVOR_DISK_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/disk"))
}

/// Decompresses the committed `fixtures/disk/NAME.zst` into `dir/NAME`; returns its path.
pub fn unpack_fixture(dir: &Path, name: &str) -> std::path::PathBuf {
    let src = disk_fixtures().join(format!("{name}.zst"));
    let bytes = std::fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let raw = zstd::decode_all(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let out = dir.join(name);
    std::fs::write(&out, raw).unwrap();
    out
}

/// The committed `sfdisk --json` answer about `fixtures/disk/NAME`.
pub fn committed_sfdisk_json(name: &str) -> String {
    let p = disk_fixtures().join(format!("{}.sfdisk.json", name.trim_end_matches(".raw")));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Writes `bytes` to `path`, seeking over 64 KiB blocks of zeros (the flat images are mostly
/// holes: the copy takes little disk).
pub fn write_sparse(path: &Path, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for block in bytes.chunks(64 << 10) {
        if block.iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(block.len() as i64)).unwrap();
        } else {
            f.write_all(block).unwrap();
        }
    }
    f.set_len(bytes.len() as u64).unwrap();
}

/// Decompresses every `*.zst` under `src` (recursively) into the same place under `dest`,
/// without the `.zst`.
pub fn unpack_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for e in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            if name != "answers" {
                unpack_tree(&p, &dest.join(&name));
            }
        } else if let Some(stem) = name.strip_suffix(".zst") {
            let bytes = std::fs::read(&p).unwrap();
            let raw =
                zstd::decode_all(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            write_sparse(&dest.join(stem), &raw);
        }
    }
}

/// `fixtures/disk/containers` (made by `fixtures/disk/make-containers.sh`).
pub fn container_fixtures() -> std::path::PathBuf {
    disk_fixtures().join("containers")
}

/// The committed containers, decompressed once per test binary into a temporary directory
/// (with `fs.img` and `mbr.raw` of `make-disks.sh` beside them).
pub fn containers_dir() -> &'static Path {
    static D: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        unpack_tree(&container_fixtures(), tmp.path());
        unpack_fixture(tmp.path(), "fs.img");
        unpack_fixture(tmp.path(), "mbr.raw");
        tmp
    })
    .path()
}

/// A committed tool answer, `fixtures/disk/containers/answers/NAME`.
pub fn container_answer(name: &str) -> String {
    let p = container_fixtures().join("answers").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The sha256 the committed `answers/FILE` (`<sha256>  <name>` lines) gives for `name`.
pub fn committed_sha(file: &str, name: &str) -> String {
    container_answer(file)
        .lines()
        .find_map(|l| {
            let (sha, n) = l.split_once("  ")?;
            (n == name).then(|| sha.to_string())
        })
        .unwrap_or_else(|| panic!("answers/{file} has no line for {name}"))
}

/// A committed qcow2 of the containers fixture, its backing file name replaced by `name`
/// (the name is stored after the header extensions, zeros follow it in the header cluster).
pub fn qcow2_with_backing(fixture: &str, name: &str) -> Vec<u8> {
    let p = containers_dir().join(fixture);
    let mut b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let off = u64::from_be_bytes(b[8..16].try_into().unwrap()) as usize;
    let len = u32::from_be_bytes(b[16..20].try_into().unwrap()) as usize;
    assert!(off > 0, "{fixture} has no backing file");
    b[off..off + len].fill(0);
    assert!(off + name.len() < 65536, "backing name too long");
    b[off..off + name.len()].copy_from_slice(name.as_bytes());
    b[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
    b
}

/// Copies the committed E01 set `set` (`set.E01`, `set.E02`, …) into `dir` as `as_name.E01…`.
pub fn copy_e01_set(set: &str, dir: &Path, as_name: &str) {
    for n in 1..100 {
        let from = containers_dir().join(format!("{set}.E{n:02}"));
        if !from.exists() {
            assert!(n > 3, "{set}: fewer than 3 segments");
            break;
        }
        std::fs::copy(&from, dir.join(format!("{as_name}.E{n:02}"))).unwrap();
    }
}
