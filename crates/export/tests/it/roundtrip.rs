//! Round trips: every format, as tar and as directory, read back and checked.

use crate::common;
use common::*;
use salvor_export::{export, ExportError, ExportOptions, Format, ImageToExport, Output};
use serde_json::Value;
use std::path::Path;

const FORMATS: [Format; 3] = [Format::Docker, Format::DockerLegacy, Format::Oci];

fn fixture() -> (FakeSource, Vec<ImageToExport>) {
    let mut src = FakeSource::default();
    let base = src.add(layer_tar(&[("bin/sh", b"#!shell"), ("etc/os", b"test")]));
    let mid = src.add(layer_tar(&[("etc/a", b"aaaa")]));
    let top = src.add(layer_tar(&[("etc/b", &[7u8; 3000])]));
    let other = src.add(layer_tar(&[("etc/c", b"c")]));
    let a = image(
        vec![base.clone(), mid.clone(), top],
        &["busybox:latest", "example.com/x/y:1"],
        "2024-05-06T07:08:09.123456Z",
    );
    let b = image(vec![base, other], &[], "2023-01-01T00:00:00Z");
    (src, vec![a, b])
}

fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("json")
}

fn diff_ids(config: &[u8]) -> Vec<String> {
    json(config)["rootfs"]["diff_ids"]
        .as_array()
        .expect("diff_ids")
        .iter()
        .map(|d| d.as_str().expect("str").to_string())
        .collect()
}

fn check(r: &Read_, format: Format, images: &[ImageToExport]) {
    // blob names are their digests
    for (p, b) in &r.files {
        if let Some(h) = p.strip_prefix("blobs/sha256/") {
            assert_eq!(sha(b), format!("sha256:{h}"), "{p}");
        }
    }
    match format {
        Format::Docker | Format::Oci => {
            assert_eq!(r.files["oci-layout"], br#"{"imageLayoutVersion": "1.0.0"}"#);
            let idx = json(&r.files["index.json"]);
            let manifests = idx["manifests"].as_array().expect("manifests");
            // 2 tags of image a + 1 untagged b
            assert_eq!(manifests.len(), 3);
            assert_eq!(
                manifests[0]["annotations"]["io.containerd.image.name"],
                "docker.io/library/busybox:latest"
            );
            assert_eq!(
                manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
                "latest"
            );
            assert!(manifests[2].get("annotations").is_none());
            for m in manifests {
                let d = m["digest"].as_str().expect("digest");
                let mb = &r.files[&format!("blobs/sha256/{}", &d[7..])];
                assert_eq!(m["size"].as_u64(), Some(mb.len() as u64));
                let man = json(mb);
                let cd = man["config"]["digest"].as_str().expect("cfg");
                let cfg = &r.files[&format!("blobs/sha256/{}", &cd[7..])];
                let ids = diff_ids(cfg);
                let layers = man["layers"].as_array().expect("layers");
                assert_eq!(layers.len(), ids.len());
                for (l, id) in layers.iter().zip(&ids) {
                    assert_eq!(l["digest"].as_str(), Some(id.as_str()));
                    assert!(r.files.contains_key(&format!("blobs/sha256/{}", &id[7..])));
                }
            }
            assert_eq!(
                format == Format::Docker,
                r.files.contains_key("manifest.json")
            );
            assert_eq!(
                format == Format::Docker,
                r.files.contains_key("repositories")
            );
        }
        Format::DockerLegacy => {
            assert!(!r.files.contains_key("index.json"));
        }
    }
    if format != Format::Oci {
        let m = json(&r.files["manifest.json"]);
        let items = m.as_array().expect("array");
        assert_eq!(items.len(), images.len());
        for (it, img) in items.iter().zip(images) {
            let cfg = &r.files[it["Config"].as_str().expect("Config")];
            assert_eq!(sha(cfg), img.id);
            let ids = diff_ids(cfg);
            let layers = it["Layers"].as_array().expect("Layers");
            assert_eq!(layers.len(), ids.len());
            for (l, id) in layers.iter().zip(&ids) {
                let mut p = l.as_str().expect("str").to_string();
                if let Some(t) = r.links.get(&p) {
                    let dir = Path::new(&p).parent().expect("parent");
                    let joined = dir.join(t);
                    // normalise "<a>/../<b>/layer.tar"
                    let mut parts: Vec<String> = Vec::new();
                    for c in joined.components() {
                        match c {
                            std::path::Component::ParentDir => {
                                parts.pop();
                            }
                            c => parts.push(c.as_os_str().to_string_lossy().into_owned()),
                        }
                    }
                    p = parts.join("/");
                }
                assert_eq!(&sha(&r.files[&p]), id, "{p}");
            }
            assert_eq!(it["RepoTags"].is_null(), img.repo_tags.is_empty());
        }
        let repos = json(&r.files["repositories"]);
        assert!(repos["busybox"]["latest"].is_string());
        assert!(repos["example.com/x/y"]["1"].is_string());
    }
}

#[test]
fn all_formats_tar_and_dir() {
    let (src, images) = fixture();
    for format in FORMATS {
        let tmp = tempfile::tempdir().expect("tmp");
        let t1 = tmp.path().join("a.tar");
        let t2 = tmp.path().join("b.tar");
        let d = tmp.path().join("dir");
        let rep1 = export(
            &images,
            &src,
            &ExportOptions {
                format,
                output: Output::Tar(t1.clone()),
                parallel: false,
            },
        )
        .expect("export tar");
        export(
            &images,
            &src,
            &ExportOptions {
                format,
                output: Output::Tar(t2.clone()),
                parallel: true,
            },
        )
        .expect("export tar 2");
        let rep_dir = export(
            &images,
            &src,
            &ExportOptions {
                format,
                output: Output::Dir(d.clone()),
                parallel: true,
            },
        )
        .expect("export dir");
        let b1 = std::fs::read(&t1).expect("read");
        let b2 = std::fs::read(&t2).expect("read");
        assert!(b1 == b2, "{format:?}: two exports differ");
        assert_eq!(rep1.archive_sha256.as_deref(), Some(&sha(&b1)[7..]));
        assert_eq!(rep1.bytes, b1.len() as u64);
        let rt = read_tar(&b1);
        let rd = read_dir(&d);
        check(&rt, format, &images);
        check(&rd, format, &images);
        assert_eq!(rt.files, rd.files, "{format:?}: tar and dir differ");
        assert_eq!(rt.links, rd.links);
        assert_eq!(rep1.files, rep_dir.files);
        // shared base layer stored once; 4 distinct layers streamed
        assert_eq!(rep1.layers_written, 4, "{format:?}");
        let names: Vec<&String> = rt.order.iter().collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len(), "duplicate members");
        // order: each directory precedes its content; siblings lexical
        for w in rt.order.windows(2) {
            let a: Vec<&str> = w[0].trim_end_matches('/').split('/').collect();
            let b: Vec<&str> = w[1].trim_end_matches('/').split('/').collect();
            assert!(a < b, "order {:?} before {:?}", w[0], w[1]);
        }
        // nothing else left in the temp dir
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.tar", "b.tar", "dir"]);
    }
}

#[test]
fn tar_headers_are_deterministic_and_simple() {
    let (src, images) = fixture();
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path().join("a.tar");
    export(
        &images,
        &src,
        &ExportOptions {
            format: Format::Docker,
            output: Output::Tar(t.clone()),
            parallel: false,
        },
    )
    .expect("export");
    let bytes = std::fs::read(&t).expect("read");
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().expect("entries") {
        let e = e.expect("entry");
        let h = e.header();
        assert_eq!(h.uid().expect("uid"), 0);
        assert_eq!(h.gid().expect("gid"), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        let p = String::from_utf8(e.path_bytes().to_vec()).expect("utf8");
        let mode = h.mode().expect("mode");
        if p.ends_with('/') {
            assert_eq!(mode, 0o755);
            assert_eq!(h.mtime().expect("mtime"), 0);
        } else {
            assert_eq!(mode, 0o644);
        }
        if matches!(
            p.as_str(),
            "index.json" | "manifest.json" | "oci-layout" | "repositories"
        ) {
            assert_eq!(h.mtime().expect("mtime"), 0);
        }
    }
    // exactly two zero blocks at the end, no record padding
    assert_eq!(bytes.len() % 512, 0);
    assert!(bytes[bytes.len() - 1024..].iter().all(|b| *b == 0));
    // index.json has no trailing newline, manifest.json has one
    let r = read_tar(&bytes);
    assert_ne!(r.files["index.json"].last(), Some(&b'\n'));
    assert_eq!(r.files["manifest.json"].last(), Some(&b'\n'));
    assert_eq!(r.files["repositories"].last(), Some(&b'\n'));
}

#[test]
fn exact_engine25_metadata_bytes() {
    let mut src = FakeSource::default();
    let l = src.add(layer_tar(&[("f", b"x")]));
    let img = image(vec![l.clone()], &["busybox:latest"], "2024-01-01T00:00:00Z");
    let files: std::collections::BTreeMap<String, Vec<u8>> =
        salvor_export::metadata_files(std::slice::from_ref(&img), Format::Docker)
            .expect("plan")
            .into_iter()
            .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        img.id,
        img.config.len(),
        l.diff_id,
        l.size
    );
    let md = sha(manifest.as_bytes());
    assert_eq!(
        files[&format!("blobs/sha256/{}", &md[7..])],
        manifest.as_bytes()
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/busybox:latest","org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
        manifest.len()
    );
    assert_eq!(String::from_utf8_lossy(&files["index.json"]), index);
    let h = img.id.hex();
    let lh = l.diff_id.hex();
    let mj = format!(
        "[{{\"Config\":\"blobs/sha256/{h}\",\"RepoTags\":[\"busybox:latest\"],\"Layers\":[\"blobs/sha256/{lh}\"],\"LayerSources\":{{\"{}\":{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":{},\"digest\":\"{}\"}}}}}}]\n",
        l.diff_id, l.size, l.diff_id
    );
    assert_eq!(String::from_utf8_lossy(&files["manifest.json"]), mj);
    assert_eq!(
        String::from_utf8_lossy(&files["repositories"]),
        format!("{{\"busybox\":{{\"latest\":\"{lh}\"}}}}\n")
    );
}

#[test]
fn repeated_layer_is_symlink_in_legacy() {
    let mut src = FakeSource::default();
    let a = src.add(layer_tar(&[("a", b"a")]));
    let b = src.add(layer_tar(&[("b", b"b")]));
    let img = image(vec![a.clone(), b, a], &["rep:1"], "2024-01-01T00:00:00Z");
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path().join("l.tar");
    let rep = export(
        std::slice::from_ref(&img),
        &src,
        &ExportOptions {
            format: Format::DockerLegacy,
            output: Output::Tar(t.clone()),
            parallel: false,
        },
    )
    .expect("export");
    assert_eq!(rep.layers_written, 2);
    let r = read_tar(&std::fs::read(&t).expect("read"));
    assert_eq!(r.links.len(), 1);
    let (p, target) = r.links.iter().next().expect("link");
    let first = &json(&r.files["manifest.json"])[0]["Layers"][0];
    assert_eq!(format!("../{}", first.as_str().expect("s")), *target);
    assert!(p.ends_with("/layer.tar"));
    check_single(&r, &img);
}

fn check_single(r: &Read_, img: &ImageToExport) {
    let m = json(&r.files["manifest.json"]);
    assert_eq!(
        m[0]["Layers"].as_array().map(Vec::len),
        Some(img.layers.len())
    );
}

#[test]
fn digest_mismatch_leaves_nothing() {
    for format in FORMATS {
        for dir in [false, true] {
            let (mut src, images) = fixture();
            let bad = images[0].layers[1].diff_id.to_string();
            src.corrupt.push(bad.clone());
            let tmp = tempfile::tempdir().expect("tmp");
            let out = tmp.path().join("out");
            let output = if dir {
                Output::Dir(out.clone())
            } else {
                Output::Tar(out.clone())
            };
            let err = export(
                &images,
                &src,
                &ExportOptions {
                    format,
                    output,
                    parallel: dir,
                },
            )
            .expect_err("must fail");
            match err {
                ExportError::DigestMismatch { diff_id, actual } => {
                    assert_eq!(diff_id, bad);
                    assert_ne!(actual, bad);
                }
                e => panic!("unexpected error {e}"),
            }
            assert_eq!(
                std::fs::read_dir(tmp.path()).expect("ls").count(),
                0,
                "{format:?} dir={dir}: partial output left"
            );
        }
    }
}

struct Short(FakeSource);
impl salvor_export::LayerSource for Short {
    fn write_layer(
        &self,
        diff_id: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<String, salvor_export::LayerError> {
        let d = &self.0.layers[diff_id];
        out.write_all(&d[..d.len() - 1])?;
        Ok(sha(d))
    }
}

#[test]
fn size_mismatch_and_bad_input_are_errors() {
    let (src, images) = fixture();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("x.tar");
    let opts = ExportOptions {
        format: Format::Docker,
        output: Output::Tar(out.clone()),
        parallel: false,
    };
    let short = Short(src);
    match export(&images, &short, &opts) {
        Err(ExportError::SizeMismatch {
            expected, actual, ..
        }) => assert_eq!(expected, actual + 1),
        r => panic!("unexpected {r:?}"),
    }
    // wrong declared size (too small) -> overflow is caught before corrupting the tar
    let (src, mut images) = fixture();
    images[1].layers[1].size -= 1;
    assert!(matches!(
        export(&images, &src, &opts),
        Err(ExportError::SizeMismatch { .. })
    ));
    // id not matching config
    let (src, mut images) = fixture();
    images[0].id = images[1].id.clone();
    assert!(matches!(
        export(&images[..1], &src, &opts),
        Err(ExportError::InvalidImage { .. })
    ));
    // layers not matching rootfs
    let (src, mut images) = fixture();
    images[0].layers.pop();
    assert!(matches!(
        export(&images, &src, &opts),
        Err(ExportError::InvalidImage { .. })
    ));
    assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 0);
    // non-empty output dir refused
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).expect("mkdir");
    std::fs::write(d.join("x"), b"x").expect("write");
    let (src, images) = fixture();
    let o = ExportOptions {
        format: Format::Oci,
        output: Output::Dir(d),
        parallel: false,
    };
    assert!(matches!(
        export(&images, &src, &o),
        Err(ExportError::OutputExists(_))
    ));
}

/// `--force`: a layer exported as found is stored under the digest of its bytes, the config
/// is rewritten to claim that digest (so the image id changes and `docker load` accepts it),
/// and the archive marks the layer FORCED with the original diff_id beside the new one.
#[test]
fn forced_layer_is_claimed_by_a_rewritten_config_and_marked() {
    for format in FORMATS {
        let (mut src, mut images) = fixture();
        let good = images[0].layers[1].diff_id.to_string();
        let mut data = src.layers[&good].clone();
        data[600] ^= 0xff;
        let actual = sha(&data);
        src.layers.insert(actual.clone(), data);
        for img in &mut images {
            let mut ids = diff_ids(&img.config);
            if !ids.contains(&good) {
                continue;
            }
            for l in &mut img.layers {
                if l.diff_id == good {
                    l.diff_id = actual.parse().expect("digest");
                    l.forced_from = Some(good.parse().expect("digest"));
                }
            }
            for d in &mut ids {
                if *d == good {
                    *d = actual.clone();
                }
            }
            let before = img.config.clone();
            img.config = salvor_export::rewrite_diff_ids(&img.config, &ids).expect("rewrite");
            assert_eq!(
                img.config.len(),
                before.len(),
                "only the digest changed (same length)"
            );
            img.id = sha(&img.config).parse().expect("digest");
        }
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out.tar");
        export(
            &images,
            &src,
            &ExportOptions {
                format,
                output: Output::Tar(out.clone()),
                parallel: false,
            },
        )
        .expect("forced export works");
        let r = read_tar(&std::fs::read(&out).expect("read"));
        let shas: Vec<String> = r.files.values().map(|b| sha(b)).collect();
        assert!(
            shas.contains(&actual),
            "{format:?}: the as-found layer is in the archive"
        );
        assert!(
            !shas.contains(&good),
            "{format:?}: nothing claims to be the good layer"
        );
        let cfg_ids = diff_ids(&images[0].config);
        assert!(cfg_ids.contains(&actual) && !cfg_ids.contains(&good));
        let forced = json(&r.files[salvor_export::FORCED_FILE]);
        assert_eq!(forced["forced_layers"][0]["diff_id"], actual.as_str());
        assert_eq!(
            forced["forced_layers"][0]["original_diff_id"],
            good.as_str()
        );
        assert_eq!(forced["forced_layers"][0]["status"], "FORCED");
        if format != Format::DockerLegacy {
            let actual_hex = &actual["sha256:".len()..];
            assert!(r.files.contains_key(&format!("blobs/sha256/{actual_hex}")));
            // The manifest's descriptor of the layer carries both digests.
            let annotated = r
                .files
                .values()
                .filter_map(|b| serde_json::from_slice::<Value>(b).ok())
                .any(|m| {
                    m["layers"].as_array().is_some_and(|ls| {
                        ls.iter().any(|l| {
                            l["digest"] == actual.as_str()
                                && l["annotations"][salvor_export::ANNOTATION_ORIGINAL_DIFF_ID]
                                    == good.as_str()
                                && l["annotations"][salvor_export::ANNOTATION_FORCED] == "as-found"
                        })
                    })
                });
            assert!(annotated, "{format:?}: manifest descriptor annotated");
        }
        if format != Format::Oci {
            let m = json(&r.files["manifest.json"]);
            let src_entry = &m[0]["LayerSources"][actual.as_str()];
            assert_eq!(
                src_entry["annotations"][salvor_export::ANNOTATION_ORIGINAL_DIFF_ID],
                good.as_str(),
                "{format:?}: manifest.json LayerSources marks the layer"
            );
        }
    }
}

/// Only the diff_id strings of the config change; a malformed config is an error.
#[test]
fn rewrite_diff_ids_keeps_every_other_byte() {
    let cfg = br#"{"a":"sha256:00","rootfs":{"type":"layers","diff_ids":["sha256:11", "sha256:22"]},"z":1}"#;
    let out = salvor_export::rewrite_diff_ids(cfg, &["sha256:11".into(), "sha256:33".into()])
        .expect("rewrite");
    assert_eq!(
        out,
        br#"{"a":"sha256:00","rootfs":{"type":"layers","diff_ids":["sha256:11", "sha256:33"]},"z":1}"#
    );
    assert!(salvor_export::rewrite_diff_ids(b"[1]", &[]).is_err());
    assert!(salvor_export::rewrite_diff_ids(cfg, &["x".into()]).is_err());
}

/// A source that promises its returned digest covers what it wrote is not re-hashed, but
/// its digest is still checked against the diff_id.
#[test]
fn trusted_source_digest_is_still_checked() {
    struct Trusting(FakeSource);
    impl salvor_export::LayerSource for Trusting {
        fn write_layer(
            &self,
            d: &str,
            out: &mut dyn std::io::Write,
        ) -> Result<String, salvor_export::LayerError> {
            self.0.write_layer(d, out)
        }
        fn digests_what_it_writes(&self) -> bool {
            true
        }
    }
    let (mut src, images) = fixture();
    let tmp = tempfile::tempdir().expect("tmp");
    let ok = tmp.path().join("ok.tar");
    let good = Trusting(FakeSource {
        layers: src.layers.clone(),
        corrupt: vec![],
    });
    export(
        &images,
        &good,
        &ExportOptions {
            format: Format::Docker,
            output: Output::Tar(ok.clone()),
            parallel: false,
        },
    )
    .expect("trusted export");
    let plain = tmp.path().join("plain.tar");
    export(
        &images,
        &src,
        &ExportOptions {
            format: Format::Docker,
            output: Output::Tar(plain.clone()),
            parallel: false,
        },
    )
    .expect("plain export");
    assert_eq!(
        std::fs::read(&ok).expect("a"),
        std::fs::read(&plain).expect("b"),
        "same archive either way"
    );
    let bad = images[0].layers[2].diff_id.to_string();
    src.corrupt.push(bad.clone());
    let err = export(
        &images,
        &Trusting(src),
        &ExportOptions {
            format: Format::Docker,
            output: Output::Tar(tmp.path().join("bad.tar")),
            parallel: false,
        },
    )
    .expect_err("must fail");
    assert!(
        matches!(err, ExportError::DigestMismatch { ref diff_id, .. } if *diff_id == bad),
        "{err}"
    );
}
