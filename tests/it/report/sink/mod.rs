//! Every writing command through salvor-sink: no output onto or into the evidence (a
//! directory, an archive, a qcow2 with its backing file, an E01 set), no silent overwrite,
//! `-o -`, `/dev/stdout` and FIFOs written in place, a full disk named by the output path
//! with nothing left behind. Included from tests/report.rs (one test binary).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{repo, salvor, sha256_file, unpack_docker_disks, untar_zst};

fn sh(script: &str) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// sha256 and mtime (ns) of every file under `p` (or of `p` itself).
fn snapshot(paths: &[&Path]) -> BTreeMap<PathBuf, (String, i64, i64)> {
    let mut m = BTreeMap::new();
    let mut todo: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    while let Some(p) = todo.pop() {
        let md = fs::symlink_metadata(&p).expect("stat");
        if md.is_dir() {
            for e in fs::read_dir(&p).expect("readdir") {
                todo.push(e.expect("entry").path());
            }
            m.insert(p, (String::new(), md.mtime(), md.mtime_nsec()));
        } else if md.is_file() {
            m.insert(p.clone(), (sha256_file(&p), md.mtime(), md.mtime_nsec()));
        }
    }
    m
}

/// The demo data-root as a copied archive, as a directory, on a qcow2 whose data lives in
/// its backing file, and as an E01 set of several segments.
struct Roots {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    archive: PathBuf,
    qcow_top: PathBuf,
    qcow_base: PathBuf,
    e01: PathBuf,
    e02: PathBuf,
}

fn build_roots(with_images: bool) -> Roots {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let archive = t.join("ev/data-root.tar.zst");
    fs::create_dir_all(t.join("ev")).unwrap();
    fs::copy(repo().join("fixtures/demo/data-root.tar.zst"), &archive).unwrap();
    let dir = t.join("dir");
    fs::create_dir_all(&dir).unwrap();
    untar_zst(&archive, &dir, false);
    if with_images {
        // Committed images (no tool runs): the demo data-root on ext4 on a GPT disk as
        // qemu-img's qcow2 and as ewfacquire's E01 set of 1 MiB segments
        // (`fixtures/disk/make-docker-disks.sh`), and an overlay on the qcow2 (qemu-img's
        // sub/up.qcow2 of `fixtures/disk/make-containers.sh`, its backing name rewritten).
        fs::create_dir_all(t.join("img")).unwrap();
        fs::create_dir_all(t.join("ewf")).unwrap();
        unpack_docker_disks(t);
        fs::rename(t.join("overlay2.qcow2"), t.join("img/base.qcow2")).unwrap();
        for n in [
            "overlay2.raw",
            "vfs.raw",
            "fuse-overlayfs.raw",
            "fstab.raw",
            "xfs-gpt.raw",
        ] {
            fs::remove_file(t.join(n)).unwrap();
        }
        let containers = repo().join("fixtures/disk/containers");
        let unz = |p: PathBuf| zstd::decode_all(&fs::read(&p).unwrap()[..]).unwrap();
        let mut top = unz(containers.join("sub/up.qcow2.zst"));
        let off = u64::from_be_bytes(top[8..16].try_into().unwrap()) as usize;
        let len = u32::from_be_bytes(top[16..20].try_into().unwrap()) as usize;
        top[off..off + len].fill(0);
        top[off..off + 10].copy_from_slice(b"base.qcow2");
        top[16..20].copy_from_slice(&10u32.to_be_bytes());
        fs::write(t.join("img/top.qcow2"), top).unwrap();
        for e in fs::read_dir(t).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("acq.E") {
                fs::rename(e.path(), t.join("ewf").join(&n)).unwrap();
            }
        }
    }
    Roots {
        dir,
        archive,
        qcow_top: t.join("img/top.qcow2"),
        qcow_base: t.join("img/base.qcow2"),
        e01: t.join("ewf/acq.E01"),
        e02: t.join("ewf/acq.E02"),
        _tmp: tmp,
    }
}

/// The five writing commands, each writing to `out`.
fn writers(out: &str) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        v(&["extract", "salvor/app:1", "-o", out]),
        v(&["extract", "salvor/app:1", "--dir", "-o", out]),
        v(&["export", "c-exit0", "-o", out]),
        v(&["timeline", "-o", out]),
        v(&["report", "-o", out]),
    ]
}

fn run(root: &Path, extra: &[&str], cmd: &[String]) -> (Option<i32>, String) {
    let mut args: Vec<&str> = vec!["-q", "--root", s(root)];
    args.extend_from_slice(extra);
    args.extend(cmd.iter().map(String::as_str));
    let out = salvor(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_output_onto_or_into_the_evidence() {
    let r = build_roots(true);
    assert!(r.e02.exists(), "the E01 set has several segments");
    let canon = |p: &Path| fs::canonicalize(p).unwrap();
    // (evidence root, what to snapshot, output that must be refused, protected path named)
    let cases: Vec<(&Path, Vec<&Path>, PathBuf, PathBuf)> = vec![
        (
            &r.dir,
            vec![&r.dir],
            r.dir.join("case/out.tar"),
            canon(&r.dir),
        ),
        (
            &r.dir,
            vec![&r.dir],
            r.dir.join("image/overlay2/repositories.json"),
            canon(&r.dir),
        ),
        (&r.dir, vec![&r.dir], r.dir.clone(), canon(&r.dir)),
        (
            &r.archive,
            vec![&r.archive],
            r.archive.clone(),
            canon(&r.archive),
        ),
        (
            &r.qcow_top,
            vec![&r.qcow_top, &r.qcow_base],
            r.qcow_base.clone(),
            canon(&r.qcow_base),
        ),
        (
            &r.qcow_top,
            vec![&r.qcow_top, &r.qcow_base],
            r.qcow_top.clone(),
            canon(&r.qcow_top),
        ),
        (&r.e01, vec![&r.e01, &r.e02], r.e02.clone(), canon(&r.e02)),
    ];
    for (root, watched, out, protected) in &cases {
        let before = snapshot(watched);
        for cmd in writers(s(out)) {
            for extra in [&[][..], &["--overwrite"][..]] {
                let (code, err) = run(root, extra, &cmd);
                let what = format!("--root {} {extra:?} {cmd:?}", root.display());
                assert_eq!(code, Some(2), "{what}: {err}");
                assert!(err.contains("refusing to write"), "{what}: {err}");
                assert!(err.contains(s(out)), "{what}: names the output: {err}");
                assert!(
                    err.contains(s(protected)),
                    "{what}: names the evidence {}: {err}",
                    protected.display()
                );
            }
        }
        assert_eq!(snapshot(watched), before, "{} changed", root.display());
    }
    // Through a symlink into the evidence directory, and a hard link to the archive.
    let t = r.archive.parent().unwrap().parent().unwrap();
    std::os::unix::fs::symlink(&r.dir, t.join("dirlink")).unwrap();
    fs::hard_link(&r.archive, t.join("hardlink.tar.zst")).unwrap();
    let before = snapshot(&[&r.dir, &r.archive]);
    for (root, out) in [
        (&r.dir, t.join("dirlink/new/x.tar")),
        (&r.archive, t.join("hardlink.tar.zst")),
    ] {
        for cmd in writers(s(&out)) {
            let (code, err) = run(root, &["--overwrite"], &cmd);
            assert_eq!(code, Some(2), "{cmd:?} {}: {err}", out.display());
            assert!(err.contains("refusing to write"), "{err}");
        }
    }
    assert!(!r.dir.join("new").exists());
    assert_eq!(snapshot(&[&r.dir, &r.archive]), before);
    // The --passwd and --group files salvor reads are protected too, even with --overwrite.
    let (pw, gr) = (t.join("passwd"), t.join("group"));
    fs::write(&pw, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(&gr, "root:x:0:\n").unwrap();
    let before = snapshot(&[&pw, &gr]);
    for out in [&pw, &gr] {
        let cmd: Vec<String> = [
            "extract",
            "c-exit0",
            "--passwd",
            s(&pw),
            "--group",
            s(&gr),
            "-o",
            s(out),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let (code, err) = run(&r.archive, &["--overwrite"], &cmd);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("refusing to write") && err.contains("--"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&[&pw, &gr]), before);
}

#[test]
fn existing_outputs_need_overwrite() {
    let r = build_roots(false);
    let tmp = tempfile::tempdir().unwrap();
    for (i, cmd) in [
        vec!["extract", "salvor/app:1", "-o"],
        vec!["export", "c-exit0", "-o"],
        vec!["timeline", "-o"],
    ]
    .iter()
    .enumerate()
    {
        let fresh = tmp.path().join(format!("fresh{i}"));
        let old = tmp.path().join(format!("old{i}"));
        let mut a: Vec<String> = cmd.iter().map(|x| x.to_string()).collect();
        a.push(s(&fresh).into());
        assert_eq!(run(&r.archive, &[], &a).0, Some(0), "{cmd:?}");
        fs::write(&old, b"an examiner's notes").unwrap();
        a.pop();
        a.push(s(&old).into());
        let (code, err) = run(&r.archive, &[], &a);
        assert_eq!(code, Some(2), "{cmd:?}: {err}");
        assert!(err.contains("already exists"), "{err}");
        assert!(err.contains("--overwrite"), "{err}");
        assert_eq!(fs::read(&old).unwrap(), b"an examiner's notes");
        let (code, err) = run(&r.archive, &["--overwrite"], &a);
        assert_eq!(code, Some(0), "{cmd:?}: {err}");
        assert_eq!(
            sha256_file(&old),
            sha256_file(&fresh),
            "{cmd:?}: replaced by the same bytes"
        );
    }
    // Directory outputs: new or empty, never a non-empty one, --overwrite or not.
    for cmd in [
        vec!["extract", "salvor/app:1", "--dir", "-o"],
        vec!["report", "-o"],
    ] {
        let d = tmp.path().join(format!("d-{}", cmd[0]));
        fs::create_dir(&d).unwrap();
        fs::write(d.join("keep"), b"x").unwrap();
        let mut a: Vec<String> = cmd.iter().map(|x| x.to_string()).collect();
        a.push(s(&d).into());
        for extra in [&[][..], &["--overwrite"][..]] {
            let (code, err) = run(&r.archive, extra, &a);
            assert_eq!(code, Some(2), "{cmd:?}: {err}");
            assert!(err.contains("not empty"), "{err}");
        }
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        // An empty directory, reached through a symlink: the symlink is followed.
        let e = tmp.path().join(format!("e-{}", cmd[0]));
        fs::create_dir(&e).unwrap();
        let link = tmp.path().join(format!("l-{}", cmd[0]));
        std::os::unix::fs::symlink(&e, &link).unwrap();
        a.pop();
        a.push(s(&link).into());
        let (code, err) = run(&r.archive, &[], &a);
        assert_eq!(
            code,
            Some(0),
            "{cmd:?} into a symlink to an empty dir: {err}"
        );
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(
            fs::read_dir(&e).unwrap().count() > 1,
            "written into {}",
            e.display()
        );
    }
}

#[test]
fn stdout_dev_stdout_and_fifo_are_written_in_place() {
    let r = build_roots(false);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.tar");
    let base = ["-q", "--root", s(&r.archive), "export", "c-exit0", "-o"];
    let ok = |o: &str| {
        let mut a = base.to_vec();
        a.push(o);
        let out = salvor(&a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "-o {o}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    assert!(ok(s(&file)).is_empty());
    let want = fs::read(&file).unwrap();
    // `-o -` while standard output appends to the evidence itself: refused.
    let before = snapshot(&[&r.archive]);
    let out = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(base)
        .arg("-")
        .stdout(
            fs::OpenOptions::new()
                .append(true)
                .open(&r.archive)
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to write standard output"));
    assert_eq!(snapshot(&[&r.archive]), before);
    assert_eq!(ok("-"), want, "-o -");
    // Standard output is a pipe here: /dev/stdout is written, not replaced.
    let stdout_before = fs::symlink_metadata("/dev/stdout").unwrap();
    assert_eq!(ok("/dev/stdout"), want, "-o /dev/stdout");
    let stdout_after = fs::symlink_metadata("/dev/stdout").unwrap();
    assert_eq!(
        stdout_before.file_type().is_symlink(),
        stdout_after.file_type().is_symlink()
    );
    assert_eq!(stdout_before.ino(), stdout_after.ino());
    // A FIFO: opened and written, still a FIFO afterwards, no file beside it.
    let fifo = tmp.path().join("fifo");
    sh(&format!("mkfifo {}", fifo.display()));
    let f2 = fifo.clone();
    let reader = std::thread::spawn(move || fs::read(f2).unwrap());
    assert!(ok(s(&fifo)).is_empty());
    assert_eq!(reader.join().unwrap(), want, "through the FIFO");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // timeline to a FIFO too.
    let f3 = fifo.clone();
    let reader = std::thread::spawn(move || fs::read(f3).unwrap());
    let out = salvor(&["-q", "--root", s(&r.archive), "timeline", "-o", s(&fifo)]);
    assert_eq!(out.status.code(), Some(0));
    let tl = reader.join().unwrap();
    let out = salvor(&["-q", "--root", s(&r.archive), "timeline"]);
    assert_eq!(tl, out.stdout);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

/// Unmounts on drop.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_names_the_output_and_leaves_nothing() {
    let r = build_roots(false);
    let ev_names = |err: &str| {
        err.contains(s(&r.archive)) || err.contains("overlay2/") || err.contains("/diff")
    };
    // /dev/full: the in-place path. The device stays a device.
    for cmd in writers("/dev/full")
        .into_iter()
        .filter(|c| !c.contains(&"--dir".to_string()) && c[0] != "report")
    {
        let (code, err) = run(&r.archive, &[], &cmd);
        assert_eq!(code, Some(2), "{cmd:?}: {err}");
        assert!(err.contains("cannot write /dev/full"), "{cmd:?}: {err}");
        assert!(!ev_names(&err), "{cmd:?} names the evidence: {err}");
    }
    assert!(fs::metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
    // A small tmpfs, almost full: every command fails part-way.
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: cannot mount a tmpfs (not root?): only /dev/full was checked");
        return;
    }
    let _m = Mount(mnt.clone());
    // Leave ~8 KiB free: every output is larger.
    let filler = mnt.join("filler");
    let free = {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&mnt)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap()
    };
    fs::write(&filler, vec![0u8; (free - 8192) as usize]).unwrap();
    for cmd in writers(s(&mnt.join("out"))) {
        let (code, err) = run(&r.archive, &[], &cmd);
        assert_eq!(code, Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains(s(&mnt.join("out"))),
            "{cmd:?} names the output: {err}"
        );
        assert!(err.contains("No space left on device"), "{cmd:?}: {err}");
        assert!(!ev_names(&err), "{cmd:?} names the evidence: {err}");
        let left: Vec<_> = fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "filler")
            .collect();
        assert!(left.is_empty(), "{cmd:?} left {left:?}");
    }
}

/// Listing commands write standard output too: `salvor … images >> evidence/x` (the shell
/// appending into the evidence directory, or onto the evidence archive) is refused before
/// anything is printed; the evidence is unchanged. Elsewhere the same commands print.
#[test]
fn listing_commands_refuse_stdout_into_the_evidence() {
    let r = build_roots(false);
    let inside = r.dir.join("image/overlay2/repositories.json");
    for cmd in [
        &["images"][..],
        &["containers"][..],
        &["inspect", "c-exit0"][..],
        &["info"][..],
    ] {
        for (root, target) in [(&r.dir, &inside), (&r.archive, &r.archive)] {
            let before = snapshot(&[&r.dir, &r.archive]);
            let out = Command::new(env!("CARGO_BIN_EXE_salvor"))
                .arg("--root")
                .arg(root)
                .args(cmd)
                .stdout(fs::OpenOptions::new().append(true).open(target).unwrap())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd:?} >> {}: {err}",
                target.display()
            );
            assert!(
                err.contains("refusing to write standard output"),
                "{cmd:?}: {err}"
            );
            assert_eq!(snapshot(&[&r.dir, &r.archive]), before, "{cmd:?}");
        }
        let out = salvor(&[&["--root", s(&r.archive)][..], cmd].concat());
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        assert!(!out.stdout.is_empty(), "{cmd:?} printed nothing");
    }
}
