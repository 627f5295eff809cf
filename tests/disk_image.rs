//! Disk images: the demo data-root (a real engine's) put on an ext4 partition of a GPT disk,
//! as raw and as compressed qcow2, must give exactly the answers the archive of the same
//! data-root gives: same images, same diff ids, every layer verified, byte-identical archives.
//! Images are built at test time without mounting (`mke2fs -d`, `sfdisk`, `qemu-img`).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install the packages in tests/REQUIRES.txt)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(script: &str) {
    run(Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script));
}

/// Builds `disk.raw` (GPT, p1 = ext4 holding a host root with the demo data-root at
/// var/lib/docker) and `disk.qcow2` in `dir`.
fn build(dir: &Path) {
    let fixture = repo().join("fixtures/engine/overlay2/data-root.tar.zst");
    let d = dir.display();
    sh(&format!(
        "mkdir -p {d}/host/var/lib/docker {d}/host/etc
         zstd -dcf '{}' | tar --xattrs --xattrs-include='*' --numeric-owner -C {d}/host/var/lib/docker -xf -
         echo 'ID=debian' > {d}/host/etc/os-release
         mke2fs -q -t ext4 -d {d}/host {d}/fs.img 48M
         truncate -s 64M {d}/disk.raw
         printf 'label: gpt\\nstart=2048, size=98304, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\\n' | sfdisk -q {d}/disk.raw
         dd if={d}/fs.img of={d}/disk.raw bs=512 seek=2048 conv=notrunc status=none
         qemu-img convert -c -O qcow2 {d}/disk.raw {d}/disk.qcow2",
        fixture.display()
    ));
}

fn answers(root: &str) -> (Value, Value, String, String) {
    let images: Value =
        serde_json::from_str(&salvor_ok(&["--root", root, "images", "--json"], 0)).expect("json");
    let verify: Value =
        serde_json::from_str(&salvor_ok(&["--root", root, "verify", "--json"], 0)).expect("json");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("a.tar");
    salvor_ok(
        &[
            "-q",
            "--root",
            root,
            "extract",
            "salvor/app:1",
            "salvor/base:latest",
            "-o",
            &out.to_string_lossy(),
        ],
        0,
    );
    let mut diffs = String::new();
    for c in ["c-exit0", "c-exit3", "c-created", "c-unchanged"] {
        diffs.push_str(&salvor_ok(&["-q", "--root", root, "diff", c], 0));
        diffs.push_str(&salvor_ok(&["-q", "--root", root, "logs", c], 0));
    }
    (images, verify["layers"].clone(), sha256_file(&out), diffs)
}

#[test]
fn disk_images_give_the_same_answers_as_the_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    build(tmp.path());
    let reference = answers(
        &repo()
            .join("fixtures/engine/overlay2/data-root.tar.zst")
            .to_string_lossy(),
    );
    assert!(reference.0.as_array().expect("images").len() > 10);
    for root in ["disk.raw", "disk.qcow2", "disk.raw:p1", "disk.qcow2:p1"] {
        let r = tmp.path().join(root).to_string_lossy().into_owned();
        let got = answers(&r);
        assert_eq!(got.0, reference.0, "{root}: images differ");
        assert_eq!(got.1, reference.1, "{root}: verify results differ");
        assert_eq!(got.2, reference.2, "{root}: archive differs");
        assert_eq!(got.3, reference.3, "{root}: container diffs or logs differ");
    }
    // The data-root was found on p1 at /var/lib/docker.
    let probe: Value = serde_json::from_str(&salvor_ok(
        &[
            "--root",
            &tmp.path().join("disk.qcow2").to_string_lossy(),
            "probe",
            "--json",
        ],
        0,
    ))
    .expect("json");
    assert_eq!(probe["kind"], "disk image");
    assert_eq!(probe["docker"][0]["volume"], "p1");
    assert_eq!(probe["docker"][0]["data_root"], "/var/lib/docker");
    // A volume that does not exist is a clear error.
    let out = salvor(&[
        "--root",
        &format!("{}:p7", tmp.path().join("disk.raw").display()),
        "images",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("p7")
            || String::from_utf8_lossy(&out.stderr).contains('7'),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn disk_image_is_never_modified() {
    let tmp = tempfile::tempdir().expect("tmp");
    build(tmp.path());
    let raw = tmp.path().join("disk.raw");
    let q = tmp.path().join("disk.qcow2");
    let before = (
        sha256_file(&raw),
        sha256_file(&q),
        std::fs::metadata(&raw).expect("m").modified().expect("t"),
    );
    for r in [&raw, &q] {
        salvor_ok(&["-q", "--root", &r.to_string_lossy(), "verify"], 0);
    }
    let after = (
        sha256_file(&raw),
        sha256_file(&q),
        std::fs::metadata(&raw).expect("m").modified().expect("t"),
    );
    assert_eq!(before, after);
}

/// The data-root on a second partition, mounted at /srv and configured as
/// `/srv/containers/docker` in the root partition's daemon.json: found through the root
/// filesystem's /etc/fstab (by UUID), and read like the directory.
#[test]
fn data_root_on_another_partition_is_found_through_fstab() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path().display();
    let fixture = repo().join("fixtures/engine/vfs/data-root.tar.zst");
    let uuid = "0b5c2f4e-6a1d-4c3b-9e8f-7a6b5c4d3e2f";
    sh(&format!(
        "mkdir -p {d}/root/etc/docker {d}/srv/containers/docker
         printf '{{\"data-root\": \"/srv/containers/docker\"}}' > {d}/root/etc/docker/daemon.json
         printf '# static\\nUUID=11111111-2222-3333-4444-555555555555 / ext4 defaults 0 1\\nUUID={uuid} /srv ext4 defaults 0 2\\n' > {d}/root/etc/fstab
         zstd -dcf '{}' | tar --xattrs --xattrs-include='*' --numeric-owner -C {d}/srv/containers/docker -xf -
         mke2fs -q -t ext4 -U 11111111-2222-3333-4444-555555555555 -d {d}/root {d}/p1.img 8M
         mke2fs -q -t ext4 -U {uuid} -d {d}/srv {d}/p2.img 24M
         truncate -s 40M {d}/disk.raw
         printf 'label: gpt\\nstart=2048, size=16384, name=root\\nstart=18432, size=49152, name=srv\\n' | sfdisk -q {d}/disk.raw
         dd if={d}/p1.img of={d}/disk.raw bs=512 seek=2048 conv=notrunc status=none
         dd if={d}/p2.img of={d}/disk.raw bs=512 seek=18432 conv=notrunc status=none",
        fixture.display()
    ));
    let disk = tmp.path().join("disk.raw").to_string_lossy().into_owned();
    let info: Value =
        serde_json::from_str(&salvor_ok(&["-q", "--root", &disk, "info", "--json"], 0))
            .expect("json");
    assert_eq!(info["data_root"], "/containers/docker");
    assert_eq!(info["driver"], "vfs");
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    salvor_ok(
        &[
            "-q",
            "--root",
            &disk,
            "extract",
            "salvor/small:1",
            "-o",
            &a.to_string_lossy(),
        ],
        0,
    );
    salvor_ok(
        &[
            "-q",
            "--root",
            &fixture.to_string_lossy(),
            "extract",
            "salvor/small:1",
            "-o",
            &b.to_string_lossy(),
        ],
        0,
    );
    assert_eq!(sha256_file(&a), sha256_file(&b));
}
