//! Live-engine test: `docker load -i` of salvor's archives.
//! Runs only when `SALVOR_ENGINE_TESTS=1` (skipped with a message otherwise).

use crate::common;
use common::*;
use salvor_export::{export, ExportOptions, Format, Output};
use std::process::Command;

fn docker(args: &[&str]) -> (bool, String, String) {
    match Command::new("docker").args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        ),
        Err(e) => (false, String::new(), e.to_string()),
    }
}

/// Needs a Docker engine: `.ci/run` runs it (`cargo test -- --include-ignored`) where one
/// answers; elsewhere it is reported as ignored, never as passed.
#[test]
#[ignore = "needs a Docker engine (cargo test -- --include-ignored)"]
fn docker_load_accepts_salvor_archives() {
    let (ok, _, err) = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(ok, "`docker info` fails: {err}");

    let mut src = FakeSource::default();
    let pid = std::process::id();
    let l1 = src.add(layer_tar(&[("bin/hello", b"hello world\n")]));
    let l2 = src.add(layer_tar(&[("etc/salvor", format!("{pid}\n").as_bytes())]));
    for (format, suffix) in [(Format::Docker, "docker"), (Format::DockerLegacy, "legacy")] {
        let tag = format!("salvor-export-test/engine-{pid}:{suffix}");
        let img = image(
            vec![l1.clone(), l2.clone()],
            &[&tag],
            "2024-01-02T03:04:05Z",
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let t = tmp.path().join("img.tar");
        export(
            std::slice::from_ref(&img),
            &src,
            &ExportOptions {
                format,
                output: Output::Tar(t.clone()),
                parallel: false,
            },
        )
        .expect("export");
        let path = t.to_string_lossy().into_owned();
        let (ok, out, err) = docker(&["load", "-i", &path]);
        assert!(ok, "{format:?}: docker load failed: {out} {err}");
        let (ok, id, err) = docker(&["image", "inspect", "--format", "{{.Id}}", &tag]);
        let _ = docker(&["rmi", &tag]);
        assert!(ok, "{format:?}: inspect failed: {err}");
        assert_eq!(id, img.id, "{format:?}: loaded image id");
    }
}
