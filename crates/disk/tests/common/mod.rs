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
                || ["/usr/sbin", "/sbin"].iter().any(|d| Path::new(d).join(tool).is_file())
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
    assert_eq!(d.read_at(d.size(), &mut buf).unwrap(), 0, "read at the end must return 0");
    hex::encode(h.finalize())
}

/// A small ext4 filesystem image (`fs.img`, 6 MiB, 1 KiB blocks) made with `mke2fs -d`.
pub fn make_ext4(dir: &Path, name: &str, size: &str) {
    need("mke2fs", "e2fsprogs");
    let src = dir.join(format!("{name}.src"));
    std::fs::create_dir_all(src.join("var/lib/docker")).unwrap();
    std::fs::write(src.join("var/lib/docker/hello.txt"), b"hello from salvor\n").unwrap();
    std::fs::write(src.join("big.bin"), (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>()).unwrap();
    run(dir, &["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-L", "salvortest", "-d", src.to_str().unwrap(), name, size]);
}
