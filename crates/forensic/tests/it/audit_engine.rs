//! The tamper audit on the real engine fixtures (untampered): zero findings on every layer
//! of every driver. This is the false-positive test.

use std::path::PathBuf;
use std::sync::Arc;

use salvor_docker::Store;
use salvor_forensic::audit::audit_layer;
use salvor_source::TarSource;

fn fixture(driver: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/engine")
        .join(driver)
        .join("data-root.tar.zst")
}

fn audit_clean(driver: &str) {
    let src = TarSource::open(&fixture(driver)).expect("open fixture");
    let store = Store::open(Arc::new(src)).expect("open store");
    let (mut entries, mut walked, mut bad) = (0, 0, Vec::new());
    for layer in store.layers.values() {
        let r = audit_layer(&store, &layer.chain_id);
        entries += r.entries;
        walked += r.walked;
        assert!(
            r.notes.is_empty(),
            "{driver} {}: {:?}",
            layer.chain_id,
            r.notes
        );
        for f in &r.findings {
            bad.push(format!("{driver} {}: {f}", &layer.chain_id[7..19]));
        }
    }
    eprintln!(
        "{driver}: {} layers, {entries} tar-split entries, {walked} paths walked, {} findings",
        store.layers.len(),
        bad.len()
    );
    assert!(bad.is_empty(), "false positives:\n{}", bad.join("\n"));
    assert!(entries > 40 && walked > 40, "too little audited");
}

#[test]
fn overlay2_untampered_is_clean() {
    audit_clean("overlay2");
}

#[test]
fn fuse_overlayfs_untampered_is_clean() {
    audit_clean("fuse-overlayfs");
}

#[test]
fn vfs_untampered_is_clean() {
    audit_clean("vfs");
}
