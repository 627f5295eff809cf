//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

pub mod shapes;
pub mod synth;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` (or `$SALVOR_SHARED`); panics when absent, so a missing corpus fails loudly.
pub fn shared() -> PathBuf {
    let p = std::env::var_os("SALVOR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    assert!(
        p.join("corpus").is_dir(),
        "shared corpus not found at {} (set SALVOR_SHARED)",
        p.display()
    );
    p
}

/// Fixtures that are not Docker graphdriver stores (Docker's containerd image store: its
/// CLI tests are tests/it/containerd_cli.rs, its store's crates/containerd/tests/).
pub const NOT_YET_READ_BY_THE_CLI: &[&str] = &["docker26-containerd"];

/// The engine fixtures of Docker's graphdriver store committed under fixtures/engine/<name>/.
pub fn engine_fixtures() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("fixtures/engine"))
        .expect("fixtures/engine")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("data-root.tar.zst").is_file())
        .filter(|p| {
            !NOT_YET_READ_BY_THE_CLI
                .iter()
                .any(|n| p.file_name().is_some_and(|f| f == *n))
        })
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    v.sort();
    assert!(
        v.len() >= 3,
        "expected the overlay2, fuse-overlayfs and vfs fixtures, found {v:?}"
    );
    v
}

/// The fixture `fixtures/engine/<name>` as committed, then — where CI re-ran the engine
/// scripts (`SALVOR_EXTRA_FIXTURES`, see .ci/run) — the fresh run of the same script, made
/// by the engine of today with other random ids: tests that loop over both compare salvor
/// with the engine's answers of both runs.
pub fn fixture_variants(name: &str) -> Vec<PathBuf> {
    let mut v = vec![repo().join("fixtures/engine").join(name)];
    if let Some(extra) = std::env::var_os("SALVOR_EXTRA_FIXTURES") {
        let fresh = PathBuf::from(extra).join(name);
        assert!(
            fresh.join("expected").is_dir(),
            "SALVOR_EXTRA_FIXTURES is set but has no fresh {name} ({})",
            fresh.display()
        );
        v.push(fresh);
    }
    v
}

pub fn salvor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(args)
        .env_remove("SALVOR_ROOT")
        .output()
        .expect("run salvor")
}

/// Runs salvor and asserts exit code `code`; returns stdout.
pub fn salvor_ok(args: &[&str], code: i32) -> String {
    let out = salvor(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "salvor {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

pub fn sha256_file(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).expect("open");
    std::io::copy(&mut f, &mut h).expect("read");
    hex::encode(h.finalize())
}

pub fn engine_tests_enabled() -> bool {
    std::env::var("SALVOR_ENGINE_TESTS")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// `docker load -i` an archive; returns the ids the engine reports for `refs`.
pub fn docker_load_ids(archive: &Path, refs: &[String]) -> Vec<String> {
    let out = Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(archive)
        .output()
        .expect("docker load");
    assert!(
        out.status.success(),
        "docker load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    refs.iter()
        .map(|r| {
            let o = Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", r])
                .output()
                .expect("inspect");
            assert!(
                o.status.success(),
                "docker image inspect {r}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
        .collect()
}

pub fn docker_rmi(refs: &[String]) {
    let _ = Command::new("docker")
        .arg("rmi")
        .arg("-f")
        .args(refs)
        .output();
}

/// What one bounded run of the salvor binary used.
#[derive(Debug)]
pub struct Bounded {
    pub code: Option<i32>,
    pub seconds: f64,
    /// Peak resident set size of the child, bytes: its `VmHWM` (the kernel's high-water
    /// mark, which only grows), read every few milliseconds until it exits.
    pub max_rss: u64,
    pub stderr: String,
}

/// The `VmHWM` line of `/proc/PID/status`, bytes (`None` once the process is gone).
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs salvor with `args`, stdout to `stdout_to`, killed after `deadline` (the test then
/// fails): the exit code, the wall time and the child's own peak RSS.
pub fn salvor_bounded(args: &[&str], stdout_to: &Path, deadline: std::time::Duration) -> Bounded {
    use std::process::Stdio;
    let out = std::fs::File::create(stdout_to).expect("stdout file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(args)
        .env_remove("SALVOR_ROOT")
        .stdout(Stdio::from(out))
        .stderr(Stdio::piped())
        .spawn()
        .expect("run salvor");
    let pid = child.id();
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let t0 = std::time::Instant::now();
    let mut max_rss = 0u64;
    let mut killed = false;
    // The child is polled, never waited for blindly: it is ours and not reaped until
    // try_wait says it exited, so the kill can only reach it.
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if let Some(hwm) = vm_hwm(pid) {
            max_rss = max_rss.max(hwm);
        }
        if !killed && t0.elapsed() >= deadline {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let seconds = t0.elapsed().as_secs_f64();
    let stderr = reader.join().expect("stderr reader");
    assert!(
        !killed,
        "salvor {args:?} did not finish within {deadline:?}\nstderr:\n{stderr}"
    );
    Bounded {
        code: status.code(),
        seconds,
        max_rss,
        stderr,
    }
}

/// Unpacks a committed `.tar.zst` into `dest` with GNU tar (`--xattrs` when asked),
/// decompressing with the zstd crate (no `zstd` tool needed).
pub fn untar_zst(src: &Path, dest: &Path, xattrs: bool) {
    std::fs::create_dir_all(dest).expect("mkdir");
    let f = std::fs::File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut z = zstd::stream::read::Decoder::new(f).expect("zstd");
    let mut cmd = Command::new("tar");
    if xattrs {
        cmd.args(["--xattrs", "--xattrs-include=*"]);
    }
    let mut child = cmd
        .args(["--numeric-owner", "-C"])
        .arg(dest)
        .args(["-xf", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("tar");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::copy(&mut z, &mut stdin)
            .unwrap_or_else(|e| panic!("{}: cannot decompress into tar: {e}", src.display()));
    }
    assert!(
        child.wait().expect("tar").success(),
        "unpacking {} failed",
        src.display()
    );
}

/// Copies `len` bytes of `r` into a new file `path`, seeking over 64 KiB blocks of zeros.
pub fn copy_sparse(r: &mut impl std::io::Read, path: &Path, len: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..n])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if buf[..n].iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(n as i64)).expect("seek");
        } else {
            f.write_all(&buf[..n]).expect("write");
        }
        left -= n as u64;
    }
    f.set_len(len).expect("set_len");
}

/// `fixtures/disk/docker` (made by `fixtures/disk/make-docker-disks.sh`), or `SALVOR_DOCKER_DISKS`.
pub fn docker_disk_fixtures() -> PathBuf {
    std::env::var_os("SALVOR_DOCKER_DISKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("fixtures/disk/docker"))
}

/// Decompresses the committed disks (`disks.zst`, named and sized by `disks.txt`) into `dir`
/// (sparse): overlay2.raw, overlay2.qcow2, vfs.raw, fuse-overlayfs.raw, fstab.raw, xfs-gpt.raw.
pub fn unpack_docker_disks(dir: &Path) {
    unpack_docker_disks_from(&docker_disk_fixtures(), dir)
}

/// [`unpack_docker_disks`] of the fixture directory `fx` (a fresh run of the script).
pub fn unpack_docker_disks_from(fx: &Path, dir: &Path) {
    let list = std::fs::read_to_string(fx.join("disks.txt")).expect("disks.txt");
    let f = std::fs::File::open(fx.join("disks.zst")).expect("disks.zst");
    let mut z = zstd::stream::read::Decoder::new(f).expect("zstd");
    z.window_log_max(27).expect("zstd window");
    for line in list.lines() {
        let (name, len) = line.split_once(' ').expect("disks.txt: NAME SIZE");
        copy_sparse(
            &mut z,
            &dir.join(name),
            len.parse().expect("disks.txt: size"),
        );
    }
}

/// Decompresses `src` (zstd) into `dst`, sparse, at byte `offset` of an existing file.
pub fn unzstd_into(src: &Path, dst: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let f = std::fs::File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut z = zstd::stream::read::Decoder::new(f).expect("zstd");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(dst)
        .unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    out.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut n = 0;
        while n < buf.len() {
            let k = z.read(&mut buf[n..]).expect("zstd");
            if k == 0 {
                break;
            }
            n += k;
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(n as i64)).expect("seek");
        } else {
            out.write_all(&buf[..n]).expect("write");
        }
        if n < buf.len() {
            break;
        }
    }
}
