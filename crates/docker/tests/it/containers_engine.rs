//! The container model on the real engine's data-roots: every container's read-write layer
//! is located for its driver, with the init layer and the image's top layer.

use std::path::PathBuf;
use std::sync::Arc;

use salvor_docker::{LayerFiles, Store};
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
fn rw_layers_for_every_driver() {
    for (name, kind) in [
        ("overlay2", "overlay"),
        ("fuse-overlayfs", "overlay"),
        ("vfs", "snapshot"),
    ] {
        let store = fixture(name);
        let (list, problems) = store.containers();
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        assert!(list.len() >= 2, "{name}");
        for c in &list {
            let rw = c.rw_layer.as_ref().expect("rw layer");
            let top = c.top_chain_id().expect("top chain id");
            let img = store
                .images
                .iter()
                .find(|i| Some(&i.id) == c.image_id.as_ref())
                .expect("image in the store");
            assert_eq!(
                img.chain_ids.last().map(String::as_str),
                Some(top),
                "{name} {}",
                c.name
            );
            let init = rw.init_id.as_deref().expect("init id");
            assert_eq!(init, format!("{}-init", rw.mount_id));
            match (&rw.files, kind) {
                (LayerFiles::Overlay { diff, lowers }, "overlay") => {
                    assert!(diff.ends_with(format!("{}/diff", rw.mount_id)));
                    assert!(lowers[0].ends_with(format!("{init}/diff")), "{lowers:?}");
                    // init + every image layer.
                    assert_eq!(lowers.len(), 1 + img.chain_ids.len(), "{name} {}", c.name);
                }
                (LayerFiles::Snapshot { root }, "snapshot") => {
                    assert!(root.ends_with(&rw.mount_id));
                }
                (other, _) => panic!("{name} {}: {other:?}", c.name),
            }
            assert!(!matches!(
                rw.init_files,
                Some(LayerFiles::Unavailable { .. }) | None
            ));
            assert_eq!(store.find_container(&c.id[..12]).expect("by id").id, c.id);
        }
        let (vols, _) = store.volumes(&list);
        for v in &vols {
            assert!(v.data.is_some(), "{name}: {}", v.name);
        }
    }
}
