//! Docker's devicemapper layout (loop files, per-layer records, deviceset metadata) on a
//! dm-thin pool built with `thin_restore` (the pool builder of `salvor-dmthin`'s tests),
//! read through `DirSource` and `TarSource`.

#[path = "../../../dmthin/tests/it/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::*;
use salvor_docker::devicemapper::{
    read_docker_devicemapper_metadata, read_docker_deviceset_metadata, DockerDevicemapper,
};
use salvor_source::{DirSource, Source};

/// Lays out a devicemapper data-root: loop files, per-layer JSON, deviceset metadata.
fn docker_root(p: &Pool) -> PathBuf {
    let root = p.dir.path().join("docker");
    let dm = root.join("devicemapper");
    std::fs::create_dir_all(dm.join("devicemapper")).unwrap();
    std::fs::create_dir_all(dm.join("metadata")).unwrap();
    std::fs::copy(&p.metadata, dm.join("devicemapper/metadata")).unwrap();
    std::fs::copy(&p.data, dm.join("devicemapper/data")).unwrap();
    let rec = |id: u64, tx: u64| {
        format!("{{\"device_id\":{id},\"size\":{IMAGE_SIZE},\"transaction_id\":{tx},\"initialized\":true,\"deleted\":false}}")
    };
    std::fs::write(dm.join("metadata/base"), rec(BASE_DEV, 1)).unwrap();
    std::fs::write(dm.join("metadata").join(CHILD_ID), rec(CHILD_DEV, 2)).unwrap();
    std::fs::write(
        dm.join("metadata/deviceset-metadata"),
        r#"{"next_device_id":8,"BaseDeviceUUID":"6f0a2c5e-1b2d-4e3f-8a9b-0c1d2e3f4a5b","BaseDeviceFilesystem":"ext4"}"#,
    )
    .unwrap();
    std::fs::write(
        dm.join("metadata/transaction-metadata"),
        r#"{"open_transaction_id":5,"device_hash":"","device_id":0}"#,
    )
    .unwrap();
    std::fs::write(dm.join("metadata/.tmp12345"), "partial").unwrap();
    root
}

fn check_docker(src: &dyn Source, data_root: &Path, p: &Pool) {
    let recs = read_docker_devicemapper_metadata(src, data_root).unwrap();
    assert_eq!(
        recs.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![CHILD_ID, BASE_ID]
    );
    assert_eq!(recs[BASE_ID].device_id, BASE_DEV);
    assert_eq!(recs[CHILD_ID].size, IMAGE_SIZE);
    assert!(recs[CHILD_ID].initialized && !recs[CHILD_ID].deleted);
    let ds = read_docker_deviceset_metadata(src, data_root)
        .unwrap()
        .unwrap();
    assert_eq!(ds.next_device_id, Some(8));
    assert_eq!(ds.base_device_filesystem.as_deref(), Some("ext4"));

    let dm = DockerDevicemapper::open(src, data_root).unwrap();
    assert!(dm.warnings.is_empty(), "{:?}", dm.warnings);
    for (id, tree) in [(BASE_ID, &p.base_src), (CHILD_ID, &p.child_src)] {
        let dev = dm.layer_device(id).unwrap();
        assert_eq!(dev.size(), IMAGE_SIZE);
        let fs = salvor_ext4::Ext4::open(dev).unwrap();
        assert_eq!(
            fs.read_limited(Path::new("id"), 100).unwrap(),
            id.as_bytes()
        );
        assert!(
            walk_source(&fs, Path::new("rootfs")) == walk_host(&tree.join("rootfs")),
            "{id}"
        );
    }
    assert!(dm.layer_device("nope").is_err());
}

#[test]
fn docker_layout_through_dir_source() {
    let p = build_pool();
    let root = docker_root(&p);
    let src = DirSource::new(&root).unwrap();
    check_docker(&src, Path::new(""), &p);
    // A data-root below the evidence root.
    let src = DirSource::new(p.dir.path()).unwrap();
    check_docker(&src, Path::new("docker"), &p);
    // Direct-lvm (no loop files): a clear error.
    let err = DockerDevicemapper::open(&src, Path::new("base-src"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("direct-lvm"), "{err}");
}

#[test]
fn docker_layout_through_tar_source() {
    let p = build_pool();
    let root = docker_root(&p);
    let tar = p.dir.path().join("docker.tar");
    sh(&format!(
        "tar -C '{}' -cf '{}' .",
        root.display(),
        tar.display()
    ));
    let src = salvor_source::TarSource::open(&tar).unwrap();
    check_docker(&src, Path::new(""), &p);
}
