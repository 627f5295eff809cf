//! Hostile and damaged evidence: salvor must not panic, hang, read outside the evidence or
//! write to it; it must name the file that is wrong and still process everything else.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::synth::{self, Member};
use common::*;
use serde_json::Value;

const CANARY: &[u8] = b"CANARY-7f3a9c: the investigator's own secret";

fn base_layers() -> Vec<Vec<Member>> {
    vec![
        vec![
            Member::Dir("etc"),
            Member::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            Member::File("etc/hosts", b"127.0.0.1 localhost\n"),
        ],
        vec![
            Member::Dir("bin"),
            Member::File("bin/tool", b"#!/bin/sh\necho tool\n"),
        ],
    ]
}

fn verify_json(root: &Path, code: i32) -> Value {
    serde_json::from_str(&salvor_ok(
        &["--root", &root.to_string_lossy(), "verify", "--json"],
        code,
    ))
    .expect("json")
}

fn assert_no_canary_in(dir: &Path) {
    for e in walk(dir) {
        let data = fs::read(&e).unwrap_or_default();
        assert!(
            !data.windows(CANARY.len()).any(|w| w == CANARY),
            "canary content leaked into {}",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => stack.push(p),
                    Ok(m) if m.is_file() => out.push(p),
                    _ => {}
                }
            }
        }
    }
    out
}

#[test]
fn a_clean_synthetic_root_verifies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = synth::build(tmp.path(), &base_layers());
    let v = verify_json(&b.root, 0);
    assert_eq!(v["ok"], true, "{v}");
}

/// A file in a layer directory replaced by a symlink to a file outside the evidence: the
/// layer does not verify, the finding names the file, and the outside file is never read.
#[test]
fn symlink_to_outside_is_never_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let canary = tmp.path().join("canary.txt");
    fs::write(&canary, CANARY).expect("canary");
    let b = synth::build(tmp.path(), &base_layers());
    let target = synth::diff_dir(&b, 0).join("etc/passwd");
    fs::remove_file(&target).expect("rm");
    symlink(&canary, &target).expect("symlink");
    // Also a symlinked directory on the way to a file.
    let bin = synth::diff_dir(&b, 1).join("bin");
    fs::remove_dir_all(&bin).expect("rm");
    symlink(tmp.path(), &bin).expect("symlink dir");
    let v = verify_json(&b.root, 1);
    assert_eq!(v["ok"], false);
    let findings: Vec<Value> = v["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .flat_map(|l| l["findings"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f["path"] == "etc/passwd" && f["kind"] == "not-regular"),
        "{v}"
    );
    assert!(findings.iter().any(|f| f["path"] == "bin/tool"), "{v}");
    let out = tmp.path().join("out");
    let o = salvor(&[
        "--root",
        &b.root.to_string_lossy(),
        "extract",
        "synth:latest",
        "--force",
        "--dir",
        "-o",
        &out.to_string_lossy(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_no_canary_in(&out);
    let o = salvor(&[
        "--root",
        &b.root.to_string_lossy(),
        "extract",
        "synth:latest",
        "-o",
        &tmp.path().join("x.tar").to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not verify") && err.contains("etc/passwd"),
        "{err}"
    );
    assert!(!tmp.path().join("x.tar").exists(), "no partial archive");
}

/// tar-split names that climb out (`../../canary.txt`) resolve inside the layer.
#[test]
fn dotdot_names_stay_inside_the_layer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let canary = tmp.path().join("canary.txt");
    fs::write(&canary, CANARY).expect("canary");
    let mut layers = base_layers();
    layers[1].push(Member::RawFile {
        tar_name: b"../../../../canary.txt",
        disk_name: None,
        data: CANARY,
    });
    let b = synth::build(tmp.path(), &layers);
    let v = verify_json(&b.root, 1);
    let l = &v["layers"]
        .as_array()
        .expect("l")
        .iter()
        .find(|l| l["chain_id"] == b.chain_ids[1])
        .expect("layer")
        .clone();
    assert_eq!(l["status"], "mismatch");
    assert_eq!(l["findings"][0]["path"], "../../../../canary.txt");
    assert_eq!(l["findings"][0]["kind"], "missing", "{l}");
    // The lower layer is unaffected.
    let l0 = v["layers"]
        .as_array()
        .expect("l")
        .iter()
        .find(|l| l["chain_id"] == b.chain_ids[0])
        .expect("layer")
        .clone();
    assert_eq!(l0["status"], "verified");
    let out = tmp.path().join("out");
    salvor_ok(
        &[
            "--root",
            &b.root.to_string_lossy(),
            "extract",
            "synth:latest",
            "--force",
            "--dir",
            "-o",
            &out.to_string_lossy(),
        ],
        1,
    );
    assert_no_canary_in(&out);
}

/// A file whose content changed on disk: content-changed with expected and found CRC, and
/// a byte appended: size-changed. Both named.
#[test]
fn tampered_files_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = synth::build(tmp.path(), &base_layers());
    fs::write(
        synth::diff_dir(&b, 0).join("etc/passwd"),
        b"root:x:0:0::/root:/bin/SH\n",
    )
    .expect("tamper");
    fs::write(
        synth::diff_dir(&b, 1).join("bin/tool"),
        b"#!/bin/sh\necho tool\n\n",
    )
    .expect("append");
    let v = verify_json(&b.root, 1);
    let all: Vec<Value> = v["layers"]
        .as_array()
        .expect("l")
        .iter()
        .flat_map(|l| l["findings"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(all.len(), 2, "{v}");
    assert!(
        all.iter()
            .any(|f| f["path"] == "etc/passwd" && f["kind"] == "content-changed"),
        "{v}"
    );
    assert!(
        all.iter()
            .any(|f| f["path"] == "bin/tool" && f["kind"] == "size-changed"),
        "{v}"
    );
    let human = String::from_utf8(salvor(&["--root", &b.root.to_string_lossy(), "verify"]).stdout)
        .expect("utf8");
    assert!(human.contains("etc/passwd: content-changed"), "{human}");
}

/// Broken metadata: each piece is reported naming its file, and the rest still lists.
#[test]
fn broken_metadata_is_reported_and_the_rest_still_works() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = synth::build(tmp.path(), &base_layers());
    let img = b.root.join("image/overlay2");
    // A config that is not JSON, one that is too big, and a tag pointing nowhere.
    fs::write(
        img.join("imagedb/content/sha256").join("ab".repeat(32)),
        b"{not json",
    )
    .expect("w");
    let big = vec![b' '; 65 << 20];
    fs::write(
        img.join("imagedb/content/sha256").join("cd".repeat(32)),
        &big,
    )
    .expect("w");
    fs::write(
        img.join("repositories.json"),
        format!(
            r#"{{"Repositories":{{"synth":{{"synth:latest":"{}","ghost:1":"sha256:{}"}}}}}}"#,
            b.image_id,
            "ef".repeat(32)
        ),
    )
    .expect("w");
    // A layer whose parent chain loops, and one without cache-id.
    let l1 = img.join("layerdb/sha256").join("11".repeat(32));
    let l2 = img.join("layerdb/sha256").join("22".repeat(32));
    fs::create_dir_all(&l1).expect("d");
    fs::create_dir_all(&l2).expect("d");
    fs::write(l1.join("diff"), format!("sha256:{}", "33".repeat(32))).expect("w");
    fs::write(l1.join("parent"), format!("sha256:{}", "22".repeat(32))).expect("w");
    fs::write(l2.join("diff"), format!("sha256:{}", "44".repeat(32))).expect("w");
    fs::write(l2.join("parent"), format!("sha256:{}", "11".repeat(32))).expect("w");
    fs::write(l2.join("cache-id"), "../../../etc").expect("w");
    let info: Value = serde_json::from_str(&salvor_ok(
        &["--root", &b.root.to_string_lossy(), "info", "--json"],
        0,
    ))
    .expect("json");
    let problems = info["problems"].to_string();
    for needle in [
        "not valid JSON",
        "larger than",
        "ghost",
        "parent chain loops",
        "not a valid driver id",
        "cache-id",
    ] {
        assert!(
            problems.contains(needle),
            "missing problem {needle:?} in {problems}"
        );
    }
    let images: Value = serde_json::from_str(&salvor_ok(
        &["--root", &b.root.to_string_lossy(), "images", "--json"],
        0,
    ))
    .expect("json");
    assert_eq!(images.as_array().expect("a").len(), 1);
    let v = verify_json(&b.root, 0);
    assert_eq!(v["ok"], true, "the good image still verifies");
}

/// Unreadable tar-split files: truncated, not gzip, a gzip bomb of zeros.
#[test]
fn damaged_tar_split_is_an_error_naming_the_file() {
    for (label, bytes) in [
        ("truncated", None),
        ("not gzip", Some(b"this is not gzip at all".to_vec())),
        ("bomb", Some(gzip_zeros(256 << 20))),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let b = synth::build(tmp.path(), &base_layers());
        let ts = synth::meta_dir(&b, 1).join("tar-split.json.gz");
        let data = match bytes {
            Some(d) => d,
            None => {
                let d = fs::read(&ts).expect("r");
                d[..d.len() / 2].to_vec()
            }
        };
        fs::write(&ts, data).expect("w");
        let v = verify_json(&b.root, 1);
        let l = v["layers"]
            .as_array()
            .expect("l")
            .iter()
            .find(|l| l["chain_id"] == b.chain_ids[1])
            .expect("layer")
            .clone();
        assert_ne!(l["status"], "verified", "{label}");
        let err = l["error"].as_str().unwrap_or_default();
        assert!(
            err.contains("tar-split.json.gz"),
            "{label}: error does not name the file: {l}"
        );
        let l0 = v["layers"]
            .as_array()
            .expect("l")
            .iter()
            .find(|l| l["chain_id"] == b.chain_ids[0])
            .expect("layer")
            .clone();
        assert_eq!(
            l0["status"], "verified",
            "{label}: the other layer still verifies"
        );
    }
}

fn gzip_zeros(n: usize) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(n >> 20) {
        gz.write_all(&zeros).expect("w");
    }
    gz.finish().expect("gz")
}

/// Nothing in the evidence changes: content, mode, mtime and atime of every file are the
/// same before and after listing, verifying and extracting (atimes are set to the past
/// first, so any read without O_NOATIME would move them under relatime).
#[test]
fn evidence_is_never_modified() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = synth::build(tmp.path(), &base_layers());
    let mut all = walk(&b.root);
    all.sort();
    for f in &all {
        // An old atime; the mtime stays what the layer records.
        use std::os::unix::fs::MetadataExt;
        let m = fs::symlink_metadata(f).expect("md");
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 946_684_800,
                tv_nsec: 0,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: m.mtime(),
                tv_nsec: m.mtime_nsec(),
            },
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            f,
            &ts,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .expect("utimensat");
    }
    let snap = |files: &[std::path::PathBuf]| -> Vec<(String, u64, i64, i64, u32, String)> {
        use std::os::unix::fs::MetadataExt;
        files
            .iter()
            .map(|f| {
                let m = fs::symlink_metadata(f).expect("md");
                (
                    f.display().to_string(),
                    m.len(),
                    m.mtime(),
                    m.atime(),
                    m.mode(),
                    sha256_file(f),
                )
            })
            .collect()
    };
    // Hash after the snapshot's own reads would move atime: snapshot metadata first.
    let before_md: Vec<(String, i64)> = all
        .iter()
        .map(|f| {
            use std::os::unix::fs::MetadataExt;
            (
                f.display().to_string(),
                fs::symlink_metadata(f).expect("m").atime(),
            )
        })
        .collect();
    let r = b.root.to_string_lossy().into_owned();
    salvor_ok(&["--root", &r, "images"], 0);
    salvor_ok(&["--root", &r, "verify"], 0);
    salvor_ok(&["--root", &r, "tree"], 0);
    salvor_ok(
        &[
            "--root",
            &r,
            "extract",
            "synth:latest",
            "-o",
            &tmp.path().join("o.tar").to_string_lossy(),
        ],
        0,
    );
    let after_md: Vec<(String, i64)> = all
        .iter()
        .map(|f| {
            use std::os::unix::fs::MetadataExt;
            (
                f.display().to_string(),
                fs::symlink_metadata(f).expect("m").atime(),
            )
        })
        .collect();
    assert_eq!(before_md, after_md, "salvor changed an access time");
    assert!(after_md.iter().all(|(_, a)| *a == 946_684_800));
    let s1 = snap(&all);
    assert_eq!(
        walk(&b.root).len(),
        all.len(),
        "files were added to the evidence"
    );
    let s2 = snap(&all);
    assert_eq!(
        s1.iter()
            .map(|x| (&x.0, x.1, x.2, x.4, &x.5))
            .collect::<Vec<_>>(),
        s2.iter()
            .map(|x| (&x.0, x.1, x.2, x.4, &x.5))
            .collect::<Vec<_>>()
    );
}

/// Where the record says "regular file", the layer directory holds a FIFO, a device node, a
/// directory, a symlink loop, or an absolute symlink to a device of the investigator's
/// machine. None of them is opened (a FIFO would block, /dev/zero would never end): each
/// is `not-regular`, and verify finishes.
#[test]
fn special_files_in_place_of_regular_files_are_never_opened() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = synth::build(
        tmp.path(),
        &[vec![
            Member::Dir("x"),
            Member::File("x/fifo", b"data1\n"),
            Member::File("x/dev", b"data2\n"),
            Member::File("x/dir", b"data3\n"),
            Member::File("x/loop", b"data4\n"),
            Member::File("x/zero", b"data5\n"),
        ]],
    );
    let d = synth::diff_dir(&b, 0).join("x");
    for n in ["fifo", "dev", "dir", "loop", "zero"] {
        fs::remove_file(d.join(n)).expect("rm");
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        d.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        d.join("dev"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(1, 3),
    )
    .expect("mknod (needs root)");
    fs::create_dir(d.join("dir")).expect("dir");
    symlink("loop", d.join("loop")).expect("loop");
    symlink("/dev/zero", d.join("zero")).expect("zero");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(["--root", &b.root.to_string_lossy(), "verify", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("verify hung on special files");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings: Vec<Value> = v["layers"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for n in ["fifo", "dev", "dir", "loop", "zero"] {
        let p = format!("x/{n}");
        assert!(
            findings
                .iter()
                .any(|f| f["path"] == p.as_str() && f["kind"] == "not-regular"),
            "{p}: {findings:?}"
        );
    }
}

/// A file that keeps growing while salvor reads it (a live host, a copy in progress):
/// exactly the recorded number of bytes is read, the growth is a `size-changed` finding,
/// and verify ends.
#[test]
fn a_file_growing_while_read_is_a_finding() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().expect("tmp");
    let b = synth::build(tmp.path(), &[vec![Member::File("grow", b"0123456789\n")]]);
    let path = synth::diff_dir(&b, 0).join("grow");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let p2 = path.clone();
    let writer = std::thread::spawn(move || {
        let mut f = fs::OpenOptions::new().append(true).open(&p2).expect("open");
        let chunk = vec![b'x'; 1 << 16];
        let mut written = 0u64;
        while !s2.load(Ordering::Relaxed) && written < (256 << 20) {
            f.write_all(&chunk).expect("append");
            written += chunk.len() as u64;
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = salvor(&["--root", &b.root.to_string_lossy(), "verify", "--json"]);
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let f = &v["layers"][0]["findings"][0];
    assert_eq!(f["path"], "grow");
    assert_eq!(f["kind"], "size-changed", "{v}");
}

/// A tar-split whose file name holds a NUL byte or is not UTF-8 (edited metadata): the
/// file cannot be looked up, which is a finding naming it; nothing panics, and the name is
/// reported exactly (hex) when it is not UTF-8.
#[test]
fn nul_and_non_utf8_names_in_the_tar_split() {
    use std::io::{Read, Write};
    for (label, replacement) in [
        ("nul", r#""name":"bin/to\u0000ol""#.to_string()),
        ("latin1", format!(r#""name_raw":"{}""#, "YmluL3Rv/29s")),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let b = synth::build(tmp.path(), &base_layers());
        let ts = synth::meta_dir(&b, 1).join("tar-split.json.gz");
        let mut json = String::new();
        flate2::read::GzDecoder::new(fs::File::open(&ts).expect("open"))
            .read_to_string(&mut json)
            .expect("gunzip");
        assert!(json.contains(r#""name":"bin/tool""#), "{json}");
        let json = json.replace(r#""name":"bin/tool""#, &replacement);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).expect("gz");
        fs::write(&ts, gz.finish().expect("gz")).expect("write");
        let v = verify_json(&b.root, 1);
        let l = v["layers"]
            .as_array()
            .expect("l")
            .iter()
            .find(|l| l["chain_id"] == b.chain_ids[1])
            .expect("layer")
            .clone();
        assert_ne!(l["status"], "verified", "{label}");
        let f = &l["findings"][0];
        assert!(
            matches!(f["kind"].as_str(), Some("missing") | Some("read-error")),
            "{label}: {l}"
        );
        if label == "latin1" {
            assert_eq!(f["name_hex"], hex::encode(b"bin/to\xffol"), "{label}: {l}");
        }
    }
}

// ---- Deep and wide trees (issue 15 items 7 and 8) ----------------------------------------

use common::shapes::{self, Shape};

/// A generous bound for the deep tree: the fixed code takes seconds; the quadratic code
/// took minutes per command.
const DEEP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
/// For a million entries (export writes a gigabyte of headers): generous, for loaded
/// machines.
const WIDE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(240);
/// Peak RSS allowed for a directory of a million entries.
const WIDE_RSS: u64 = 256 << 20;

/// The data-root of `shape` (in `$SALVOR_SHAPES_DIR/<name>` when set, kept for measuring;
/// else in a temporary directory).
fn shape_root(name: &str, shape: Shape) -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    if let Some(d) = std::env::var_os("SALVOR_SHAPES_DIR") {
        let dir = Path::new(&d).join(name);
        if !dir.join("data-root").is_dir() {
            fs::create_dir_all(&dir).expect("mkdir");
            shapes::build(&dir, shape);
        }
        return (None, dir.join("data-root"));
    }
    let t = tempfile::tempdir().expect("tmp");
    let root = shapes::build(t.path(), shape);
    (Some(t), root)
}

/// diff, export, timeline and verify of `root`, each bounded in time; returns the runs.
fn run_all_bounded(
    root: &Path,
    out: &Path,
    deadline: std::time::Duration,
) -> Vec<(&'static str, Bounded)> {
    let r = root.to_string_lossy().into_owned();
    let tar = out.join("export.tar");
    let tar = tar.to_string_lossy().into_owned();
    let runs: [(&str, Vec<&str>); 4] = [
        ("diff", vec!["--root", &r, "diff", "deep"]),
        ("export", vec!["--root", &r, "export", "deep", "-o", &tar]),
        ("timeline", vec!["--root", &r, "timeline"]),
        ("verify", vec!["--root", &r, "verify", "--json"]),
    ];
    runs.into_iter()
        .map(|(what, args)| {
            let b = salvor_bounded(&args, &out.join(format!("{what}.out")), deadline);
            eprintln!(
                "{what}: {:.2} s, {} MiB peak RSS",
                b.seconds,
                b.max_rss >> 20
            );
            assert_eq!(b.code, Some(0), "{what} failed:\n{}", b.stderr);
            (what, b)
        })
        .collect()
}

/// A tree 4,096 deep (the deepest nesting accepted): diff, export, timeline and verify each end well within
/// a minute (were 2+ minutes, about cubic in the depth) and give the right answers.
#[test]
fn a_tree_4096_deep_is_linear() {
    let depth = 4096;
    let (_t, root) = shape_root("deep-4096", Shape::Deep { depth });
    let out = tempfile::tempdir().expect("tmp");
    run_all_bounded(&root, out.path(), DEEP_DEADLINE);
    let diff = fs::read_to_string(out.path().join("diff.out")).expect("diff");
    assert_eq!(
        diff.lines().count(),
        depth,
        "every directory and the file added"
    );
    let mut deepest = "/c".to_string();
    deepest.push_str(&"/d".repeat(depth - 2));
    deepest.push_str("/f");
    assert_eq!(diff.lines().last(), Some(format!("A {deepest}").as_str()));
    // The export: the container's tree (c/…) and the image's (d/…).
    let mut a = tar::Archive::new(fs::File::open(out.path().join("export.tar")).expect("tar"));
    let names: Vec<Vec<u8>> = a
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path_bytes().into_owned())
        .collect();
    assert_eq!(names.len(), 2 * depth);
    assert_eq!(names.last().map(|n| n.len()), Some(depth * 2 - 1));
    let v: Value =
        serde_json::from_str(&fs::read_to_string(out.path().join("verify.out")).expect("v"))
            .expect("verify json");
    assert!(v.to_string().contains("verified"), "{v}");
    let tl = fs::read_to_string(out.path().join("timeline.out")).expect("timeline");
    assert!(
        tl.contains(&format!("[container deep rw] {deepest} (evidence:")),
        "deepest file in the timeline"
    );
}

/// A directory of 1,000,000 entries (in the image layer and in the container's layer):
/// diff, export, timeline and verify within 256 MiB peak RSS each (were ~1 GB).
#[test]
#[ignore = "slow: a million files twice, ~3 minutes and ~2 GB of temporary space; CI runs it with --include-ignored"]
fn a_directory_of_a_million_entries_is_bounded_in_memory() {
    let entries = 1_000_000;
    let (_t, root) = shape_root("wide1m", Shape::Wide { entries });
    let out = tempfile::tempdir().expect("tmp");
    for (what, b) in run_all_bounded(&root, out.path(), WIDE_DEADLINE) {
        assert!(
            b.max_rss <= WIDE_RSS,
            "{what}: peak RSS {} MiB > {} MiB",
            b.max_rss >> 20,
            WIDE_RSS >> 20
        );
    }
    let diff = fs::File::open(out.path().join("diff.out")).expect("diff");
    let n = std::io::BufRead::lines(std::io::BufReader::new(diff)).count();
    assert_eq!(n, entries + 1);
}
