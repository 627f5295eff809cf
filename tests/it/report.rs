//! `salvor report` on the demo data-root: the case directory's files, a manifest that
//! `sha256sum -c` accepts, byte-identical runs, refusals, and findings on tampered evidence.

use crate::common;
mod sink;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::{repo, salvor, salvor_ok, sha256_file};

fn demo() -> String {
    repo()
        .join("fixtures/demo/data-root.tar.zst")
        .to_string_lossy()
        .into_owned()
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn demo_report_is_complete_verified_and_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    salvor_ok(
        &["-q", "--root", &demo(), "report", "-o", a.to_str().unwrap()],
        0,
    );
    salvor_ok(
        &["-q", "--root", &demo(), "report", "-o", b.to_str().unwrap()],
        0,
    );
    let want: BTreeSet<String> = [
        "MANIFEST.sha256",
        "inventory.json",
        "summary.md",
        "timeline.jsonl",
        "verify.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(files(&a), want);
    for f in &want {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between two runs"
        );
    }
    // The manifest lists every other file with its sha256.
    let manifest = std::fs::read_to_string(a.join("MANIFEST.sha256")).unwrap();
    let mut listed = BTreeSet::new();
    for line in manifest.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        assert_eq!(
            hash,
            sha256_file(&a.join(name)).trim_start_matches("sha256:"),
            "{name}"
        );
        listed.insert(name.to_string());
    }
    assert_eq!(listed.len(), want.len() - 1);
    if let Ok(out) = Command::new("sha256sum")
        .args(["-c", "--strict", "MANIFEST.sha256"])
        .current_dir(&a)
        .output()
    {
        assert!(
            out.status.success(),
            "sha256sum -c: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let verify: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("verify.json")).unwrap()).unwrap();
    assert_eq!(verify["ok"], true);
    let inv: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("inventory.json")).unwrap()).unwrap();
    assert_eq!(inv["driver"], "overlay2");
    assert_eq!(inv["images"].as_array().unwrap().len(), 23);
    assert_eq!(inv["containers"].as_array().unwrap().len(), 4);
    let summary = std::fs::read_to_string(a.join("summary.md")).unwrap();
    for s in [
        "## Images",
        "## Containers",
        "## Layers",
        "salvor/app:1",
        "c-exit0",
        "verified",
    ] {
        assert!(summary.contains(s), "summary.md lacks {s:?}");
    }
    assert!(!summary.contains("FINDINGS"));
    for line in std::fs::read_to_string(a.join("timeline.jsonl"))
        .unwrap()
        .lines()
    {
        let _: salvor_forensic::JsonLine = serde_json::from_str(line).unwrap();
    }

    // A non-empty directory is refused, and nothing in it is touched.
    let before = std::fs::read(a.join("summary.md")).unwrap();
    let out = salvor(&["-q", "--root", &demo(), "report", "-o", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    assert_eq!(std::fs::read(a.join("summary.md")).unwrap(), before);
}

#[test]
fn refuses_to_write_inside_the_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let ev = tmp.path().join("evidence");
    std::fs::create_dir_all(ev.join("image/overlay2/imagedb/content/sha256")).unwrap();
    std::fs::create_dir_all(ev.join("image/overlay2/layerdb/sha256")).unwrap();
    let out = salvor(&[
        "-q",
        "--root",
        ev.to_str().unwrap(),
        "report",
        "-o",
        ev.join("case").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the evidence"));
    assert!(!ev.join("case").exists());
}

/// The demo archive with one byte of the base layer's `/etc/passwd` changed (same size:
/// only the CRC and the layer digest can tell).
fn tampered_copy(dir: &Path) -> (std::path::PathBuf, String) {
    tampered_with(dir, |raw, pos| {
        assert_eq!(&raw[pos..pos + 4], b"root");
        raw[pos] = b'R';
    })
}

/// The demo archive with the base layer's `/etc/passwd` made setuid in its tar header (the
/// data is untouched, so the layer still rebuilds: only the audit can tell).
fn setuid_copy(dir: &Path) -> std::path::PathBuf {
    tampered_with(dir, |raw, pos| {
        let h = &mut raw[pos - 512..pos];
        let mode = std::str::from_utf8(&h[100..107]).unwrap();
        let mode = u32::from_str_radix(mode.trim_matches(|c| c == ' ' || c == '\0'), 8).unwrap();
        h[100..108].copy_from_slice(format!("{:07o}\0", mode | 0o4000).as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    })
    .0
}

fn tampered_with(
    dir: &Path,
    edit: impl FnOnce(&mut Vec<u8>, usize),
) -> (std::path::PathBuf, String) {
    let mut raw = Vec::new();
    zstd::Decoder::new(std::fs::File::open(demo()).unwrap())
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    let chain = "5d19914ce744f0e6bb12fe584bf61f653451b744b24de039bb0ba26dd2e80f2a";
    let mut cache_id = None;
    let mut ar = tar::Archive::new(&raw[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str().unwrap()
            == format!("image/overlay2/layerdb/sha256/{chain}/cache-id")
        {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            cache_id = Some(s.trim().to_string());
        }
    }
    let target = format!("overlay2/{}/diff/etc/passwd", cache_id.unwrap());
    let mut pos = None;
    let mut ar = tar::Archive::new(&raw[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_str().unwrap() == target {
            pos = Some(e.raw_file_position() as usize);
        }
    }
    let pos = pos.expect("base layer's etc/passwd in the archive");
    edit(&mut raw, pos);
    let p = dir.join("tampered.tar");
    std::fs::write(&p, &raw).unwrap();
    (p, target)
}

/// `salvor report` of `ev` into `case`: exit 1 (findings); returns its verify.json.
fn report_with_findings(ev: &Path, case: &Path) -> serde_json::Value {
    salvor_ok(
        &[
            "-q",
            "--root",
            ev.to_str().unwrap(),
            "report",
            "-o",
            case.to_str().unwrap(),
        ],
        1,
    );
    serde_json::from_slice(&std::fs::read(case.join("verify.json")).unwrap()).unwrap()
}

#[test]
fn tampered_evidence_yields_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let (ev, _) = tampered_copy(tmp.path());
    let case = tmp.path().join("case");
    let verify = report_with_findings(&ev, &case);
    assert_eq!(verify["ok"], false);
    let findings: Vec<(String, String)> = verify["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["findings"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        findings.contains(&("etc/passwd".to_string(), "content-changed".to_string())),
        "{findings:?}"
    );
    let failed: Vec<&serde_json::Value> = verify["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["ok"] == false)
        .collect();
    assert!(failed.iter().any(|i| i["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "salvor/app:1")));
    let summary = std::fs::read_to_string(case.join("summary.md")).unwrap();
    assert!(summary.contains("**FINDINGS:"), "{summary}");
    assert!(summary.contains("etc/passwd: content-changed"), "{summary}");
    assert!(
        summary.contains("### Layer sha256:5d19914ce744"),
        "{summary}"
    );
    let out = Command::new("sha256sum")
        .args(["-c", "MANIFEST.sha256"])
        .current_dir(&case)
        .output();
    if let Ok(out) = out {
        assert!(out.status.success());
    }
}

#[test]
fn metadata_tampering_is_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let ev = setuid_copy(tmp.path());
    let case = tmp.path().join("case");
    let verify = report_with_findings(&ev, &case);
    assert_eq!(verify["ok"], false);
    let layers = verify["layers"].as_array().unwrap();
    let tampered: Vec<&serde_json::Value> = layers
        .iter()
        .filter(|l| l["status"] == "tampered")
        .collect();
    assert_eq!(tampered.len(), 1, "{layers:?}");
    assert_eq!(
        tampered[0]["chain_id"],
        "sha256:5d19914ce744f0e6bb12fe584bf61f653451b744b24de039bb0ba26dd2e80f2a"
    );
    // The rebuild itself still matches: the data is the layer's.
    assert_eq!(tampered[0]["actual"], tampered[0]["diff_id"]);
    let findings = tampered[0]["audit"]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["path"], "etc/passwd");
    assert_eq!(findings[0]["kind"], "mode-changed");
    assert!(layers
        .iter()
        .filter(|l| l["status"] != "tampered")
        .all(|l| l["status"] == "verified"));
    let summary = std::fs::read_to_string(case.join("summary.md")).unwrap();
    assert!(summary.contains("**FINDINGS (1)**"), "{summary}");
    assert!(
        summary.contains("- etc/passwd: mode-changed (expected "),
        "{summary}"
    );
    // The same evidence through `verify` gives the same finding.
    let out = salvor(&["--root", ev.to_str().unwrap(), "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layers"], verify["layers"]);
}
