//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

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

/// The engine fixtures committed under fixtures/engine/<name>/.
pub fn engine_fixtures() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("fixtures/engine"))
        .expect("fixtures/engine")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("data-root.tar.zst").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    v.sort();
    assert!(
        v.len() >= 3,
        "expected the overlay2, fuse-overlayfs and vfs fixtures, found {v:?}"
    );
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
