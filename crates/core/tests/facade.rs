//! The façade as a library user sees it: open the demo evidence, find its store, list,
//! resolve, inspect, probe.

use std::path::{Path, PathBuf};

use salvor_core::{Evidence, EvidenceOptions, Host, ProbeReport};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/data-root.tar.zst")
}

#[test]
fn opens_the_demo_and_its_store() {
    let ev = Evidence::open(&demo(), EvidenceOptions::default()).expect("demo opens");
    assert!(ev.damage().is_empty());
    assert!(ev.volume().is_none() && ev.disk().is_none());
    let host = Host::open(&ev).expect("store opens");
    let store = host.docker().expect("the demo is a Docker data-root");
    assert!(host.docker_only());
    assert!(!store.images.is_empty());
    assert_eq!(host.metadata_problems(), (0, 0));
    let info = salvor_core::info::info(store);
    assert_eq!(info.images, store.images.len());
    let r =
        salvor_core::target::resolve(store, "inspect", "salvor/app:1", salvor_docker::Want::Image)
            .expect("resolves");
    let img = salvor_core::target::image(r, "inspect", "salvor/app:1").expect("an image");
    let v = salvor_core::inspect::image(store, img);
    assert_eq!(v["Id"].as_str(), Some(img.id.as_str()));
    assert!(!salvor_core::images::history(store, img).is_empty());
    // The guard protects the evidence itself.
    let outputs = salvor_sink::OutputPolicy::new(ev.guard(), true);
    assert!(outputs.check_file(&demo()).is_err());
}

#[test]
fn a_missing_evidence_is_an_error_naming_it() {
    let e = Evidence::open(Path::new("/nonexistent/x"), EvidenceOptions::default())
        .err()
        .expect("an error");
    assert!(e.damage().is_empty());
    assert!(format!("{:#}", e.into_anyhow()).contains("/nonexistent/x"));
}

#[test]
fn probes_an_archive() {
    let (r, damage) = salvor_core::probe(&demo(), None).expect("probe");
    assert!(damage.is_empty());
    match r {
        ProbeReport::Tree(t) => {
            assert_eq!(t.kind, "archive");
            assert_eq!(t.data_root.as_deref(), Some("/"));
        }
        ProbeReport::Disk(_) => panic!("an archive, not a disk"),
    }
}
