//! Fuzzed bytes as an image config, repositories.json, a layer's tar-split.json.gz and a
//! container's config.v2.json in a synthetic v2/overlay2 data-root → `Store::open_at`,
//! then everything the CLI does with the model (rebuild, containers, volumes, timeline).
#![no_main]
use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use salvor_source::{DirSource, Source};
use salvor_docker::Store;

mod common;
use common::{gzip, put, split};

const IMG: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CHAIN: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CT: &str = "3333333333333333333333333333333333333333333333333333333333333333";

fuzz_target!(|data: &[u8]| {
    let parts = split(data, 4);
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let ov = "image/overlay2";
    put(r, &format!("{ov}/imagedb/content/sha256/{IMG}"), parts[0]);
    put(
        r,
        &format!("{ov}/imagedb/metadata/sha256/{IMG}/lastUpdated"),
        b"2020-01-01T00:00:00Z",
    );
    put(r, &format!("{ov}/repositories.json"), parts[1]);
    let l = format!("{ov}/layerdb/sha256/{CHAIN}");
    put(
        r,
        &format!("{l}/diff"),
        format!("sha256:{CHAIN}").as_bytes(),
    );
    put(r, &format!("{l}/cache-id"), b"abc");
    put(r, &format!("{l}/size"), b"5");
    put(r, &format!("{l}/tar-split.json.gz"), &gzip(parts[2]));
    put(r, "overlay2/abc/diff/etc/passwd", b"root\n");
    put(r, "overlay2/abc/link", b"ABC");
    std::os::unix::fs::symlink("../../../../../etc", r.join("overlay2/abc/diff/bin")).unwrap();
    let m = format!("{ov}/layerdb/mounts/{CT}");
    put(r, &format!("{m}/mount-id"), b"def");
    put(r, &format!("{m}/init-id"), b"def-init");
    put(
        r,
        &format!("{m}/parent"),
        format!("sha256:{CHAIN}").as_bytes(),
    );
    put(r, "overlay2/def/diff/.wh.gone", b"");
    put(r, "overlay2/def-init/diff/.dockerenv", b"");
    put(r, &format!("containers/{CT}/config.v2.json"), parts[3]);
    put(r, &format!("containers/{CT}/hostconfig.json"), b"{}");
    put(
        r,
        &format!("containers/{CT}/{CT}-json.log"),
        b"{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"time\":\"2020-01-01T00:00:00Z\"}\n",
    );
    put(r, "volumes/v1/_data/f", b"x");

    let src: Arc<dyn Source> = Arc::new(DirSource::new(r).unwrap());
    let Ok(store) = Store::open_at(src, PathBuf::new()) else {
        return;
    };
    for img in &store.images {
        let _ = store.find_image(&img.id);
        let _ = store.select_for_save(&img.id);
        for t in &img.repo_tags {
            let _ = store.find_image(t);
            let _ = store.select_for_save(t);
        }
        let _ = store.image_layers(img);
        let _ = img.config_json();
    }
    for layer in store.layers.values() {
        let _ = store.layer_tar_size(layer);
        let _ = store.verify_layer(layer);
    }
    let (containers, _) = store.containers();
    for c in &containers {
        let _ = salvor_core::inspect::container(&store, c);
        let _ = c.command();
        let _ = salvor_docker::logs::log_files(&store, c);
    }
    let _ = store.volumes(&containers);
    let _ = store.bind_mounts(&containers);
    let _ = store.find_container("3333");
    let opts = salvor_forensic::TimelineOptions {
        volumes: true,
        images: true,
        logs: true,
        ..Default::default()
    };
    for format in [
        salvor_forensic::TimelineFormat::Bodyfile,
        salvor_forensic::TimelineFormat::Jsonl,
    ] {
        let mut out = Vec::new();
        let _ = salvor_forensic::write_timeline(&store, &opts, format, &mut out);
    }
});
