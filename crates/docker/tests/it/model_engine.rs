//! Docker's store through the engine-neutral model (`salvor_model::ContainerStore`) on the
//! real engine's data-roots: the records agree with the store's own, every layer is proven
//! by tar-split and verifies through the trait, views and recorded headers are there.

use std::path::PathBuf;
use std::sync::Arc;

use salvor_docker::Store;
use salvor_model::{
    ContainerStore, EngineKind, Host, LayerProof, RebuildStatus, RecordedHeaders, ViewFiles,
};
use salvor_source::TarSource;

fn fixture(name: &str) -> Store {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/engine")
        .join(name)
        .join("data-root.tar.zst");
    let src = TarSource::open(&p).expect("fixture archive");
    Store::open(Arc::new(src)).expect("store")
}

#[test]
fn docker_store_as_the_model() {
    for (name, snapshot) in [
        ("overlay2", false),
        ("fuse-overlayfs", false),
        ("vfs", true),
    ] {
        let store = fixture(name);
        let m: &dyn ContainerStore = &store;
        let id = m.identity();
        assert_eq!(id.engine, EngineKind::Docker);
        assert_eq!(id.driver, name);
        let images = m.images();
        assert_eq!(images.len(), store.images.len());
        for (r, i) in images.iter().zip(&store.images) {
            assert_eq!(r.id, i.id);
            assert_eq!(r.layers, i.chain_ids);
            assert_eq!(
                m.config_bytes(&r.id).unwrap().as_slice(),
                i.config.as_slice()
            );
            assert!(m.manifest_bytes(&r.id).unwrap().is_none());
            assert_eq!(m.image_layers(&r.id).unwrap().len(), i.chain_ids.len());
        }
        let layers = m.layers();
        assert_eq!(layers.len(), store.layers.len());
        for l in &layers {
            assert_eq!(l.proof, LayerProof::TarSplit, "{name} {}", l.id);
            assert_eq!(
                l.diff_id.as_ref().map(|d| d.to_string()),
                store.layers[&l.id].diff_id
            );
            assert_eq!(
                l.chain_id.as_ref().map(|c| c.to_string()),
                Some(l.id.clone())
            );
            let r = m.verify_layer(&l.id);
            assert_eq!(r.status, RebuildStatus::Verified, "{name} {}: {r:?}", l.id);
            let v = m.layer_view(&l.id).unwrap();
            match (&v.files, snapshot) {
                (ViewFiles::Diff { .. }, false) | (ViewFiles::Snapshot { .. }, true) => {}
                other => panic!("{name} {}: {other:?}", l.id),
            }
            assert!(v.layer_dir().is_some());
            assert!(matches!(
                m.recorded_headers(&l.id),
                RecordedHeaders::Stream { .. } | RecordedHeaders::Empty
            ));
        }
        let containers = m.containers().unwrap();
        assert!(containers.len() >= 2, "{name}");
        for c in &containers {
            assert!(c.rw_layer.is_some());
            assert!(m.rw_layer_view(&c.id).is_ok(), "{name} {}", c.id);
        }
        let host = Host::new(vec![Box::new(store)]);
        let first = &images[0];
        assert_eq!(host.find_image(&first.id).len(), 1);
        assert_eq!(host.find_container(&containers[0].id).len(), 1);
    }
}
