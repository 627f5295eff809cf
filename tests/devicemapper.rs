//! The devicemapper storage driver: layers live as thin devices in a dm-thin pool
//! (`devicemapper/devicemapper/{data,metadata}` loop files), each holding an ext4 filesystem
//! whose `rootfs/` is the layer's full root filesystem. This engine cannot run devicemapper
//! (no device-mapper in this kernel), so the layout is built here from a real engine's vfs
//! data-root: each vfs snapshot goes into an ext4 image (`mke2fs -d`) with `rootfs/` and `id`,
//! the images are laid into a pool whose metadata `thin_restore` writes, and the records go
//! where the driver keeps them. Every layer must rebuild byte-exact from the pool, and the
//! archive must be identical to the one made from the vfs directories.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const BLOCK: u64 = 64 << 10;
const DEV_SIZE: u64 = 16 << 20;

fn unpack(fixture: &str, dest: &Path) {
    let f = fs::File::open(
        repo()
            .join("fixtures/engine")
            .join(fixture)
            .join("data-root.tar.zst"),
    )
    .expect("fixture");
    let z = zstd::stream::read::Decoder::new(f).expect("zstd");
    let mut ar = tar::Archive::new(z);
    ar.set_preserve_permissions(true);
    ar.unpack(dest)
        .expect("unpack fixture (needs root for device nodes)");
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install the packages in tests/REQUIRES.txt)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn devicemapper_layers_rebuild_from_the_thin_pool() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("dr");
    unpack("vfs", &root);
    let layerdb = root.join("image/vfs/layerdb/sha256");
    let mut caches: Vec<String> = fs::read_dir(&layerdb)
        .expect("layerdb")
        .filter_map(|e| fs::read_to_string(e.expect("e").path().join("cache-id")).ok())
        .collect();
    caches.sort();
    assert!(caches.len() >= 2);
    let dm = root.join("devicemapper");
    fs::create_dir_all(dm.join("devicemapper")).expect("mkdir");
    fs::create_dir_all(dm.join("metadata")).expect("mkdir");
    let mut data = fs::File::create(dm.join("devicemapper/data")).expect("data");
    let blocks_per_dev = DEV_SIZE / BLOCK;
    let mut xml = String::new();
    for (i, cache) in caches.iter().enumerate() {
        let staging = tmp.path().join(format!("fs-{i}"));
        fs::create_dir_all(&staging).expect("staging");
        fs::rename(root.join("vfs/dir").join(cache), staging.join("rootfs"))
            .expect("move snapshot");
        fs::write(staging.join("id"), cache).expect("id");
        let img = tmp.path().join(format!("dev-{i}.img"));
        run(Command::new("mke2fs")
            .args(["-q", "-t", "ext4", "-d"])
            .arg(&staging)
            .arg(&img)
            .arg(format!("{}", DEV_SIZE >> 10)));
        std::io::copy(&mut fs::File::open(&img).expect("img"), &mut data).expect("copy");
        let dev_id = i as u64 + 1;
        xml.push_str(&format!(
            "  <device dev_id=\"{dev_id}\" mapped_blocks=\"{blocks_per_dev}\" transaction=\"1\" creation_time=\"0\" snap_time=\"0\">\n    <range_mapping origin_begin=\"0\" data_begin=\"{}\" length=\"{blocks_per_dev}\" time=\"0\"/>\n  </device>\n",
            i as u64 * blocks_per_dev
        ));
        fs::write(
            dm.join("metadata").join(cache),
            format!(r#"{{"device_id":{dev_id},"size":{DEV_SIZE},"transaction_id":1,"initialized":true,"deleted":false}}"#),
        )
        .expect("record");
    }
    drop(data);
    let nr = caches.len() as u64 * blocks_per_dev;
    let xml = format!(
        "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"{}\" nr_data_blocks=\"{nr}\">\n{xml}</superblock>\n",
        BLOCK / 512
    );
    fs::write(tmp.path().join("pool.xml"), xml).expect("xml");
    let meta = dm.join("devicemapper/metadata");
    fs::File::create(&meta)
        .expect("meta")
        .set_len(16 << 20)
        .expect("size");
    run(Command::new("thin_restore")
        .arg("-i")
        .arg(tmp.path().join("pool.xml"))
        .arg("-o")
        .arg(&meta));
    fs::write(
        dm.join("metadata/deviceset-metadata"),
        format!(
            r#"{{"next_device_id":{},"BaseDeviceFilesystem":"ext4"}}"#,
            caches.len() + 1
        ),
    )
    .expect("w");
    fs::rename(root.join("image/vfs"), root.join("image/devicemapper")).expect("rename");
    fs::remove_dir_all(root.join("vfs")).expect("rm vfs");

    let r = root.to_string_lossy().into_owned();
    let info: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "info", "--json"], 0)).expect("json");
    assert_eq!(info["driver"], "devicemapper");
    let v: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "verify", "--json"], 0)).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    for l in v["layers"].as_array().expect("layers") {
        assert_eq!(l["status"], "verified", "{l}");
    }
    let tree: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "tree", "--json"], 0)).expect("json");
    for l in tree.as_array().expect("layers") {
        assert_eq!(l["files"]["kind"], "thin-device", "{l}");
        assert_eq!(l["files"]["filesystem"], "ext4");
    }
    // Same archive as from the vfs directories the pool was made from.
    let vfs = repo()
        .join("fixtures/engine/vfs/data-root.tar.zst")
        .to_string_lossy()
        .into_owned();
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    salvor_ok(
        &[
            "-q",
            "--root",
            &vfs,
            "extract",
            "salvor/small:1",
            "-o",
            &a.to_string_lossy(),
        ],
        0,
    );
    salvor_ok(
        &[
            "-q",
            "--root",
            &r,
            "extract",
            "salvor/small:1",
            "-o",
            &b.to_string_lossy(),
        ],
        0,
    );
    assert_eq!(sha256_file(&a), sha256_file(&b));
}
