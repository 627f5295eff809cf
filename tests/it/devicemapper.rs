//! The devicemapper storage driver: layers live as thin devices in a dm-thin pool
//! (`devicemapper/devicemapper/{data,metadata}` loop files), each holding an ext4 filesystem
//! whose `rootfs/` is the layer's full root filesystem. This engine cannot run devicemapper
//! (no device-mapper in this kernel), so the layout is built here from a real engine's vfs
//! data-root: each vfs snapshot goes into an ext4 image (`mke2fs -d`) with `rootfs/` and `id`,
//! the images are laid into a pool whose metadata `thin_restore` writes, and the records go
//! where the driver keeps them. The images, the metadata, the host root filesystems and the
//! GPT disk are committed (`fixtures/dmthin/make-docker-pool.sh`); the test lays them out. Every layer must rebuild byte-exact from the pool, and the
//! archive must be identical to the one made from the vfs directories.
//!
//! Direct-lvm: the same pool laid into the `_tmeta`/`_tdata` extents of an LVM physical
//! volume whose label and metadata the real LVM tools wrote (`fixtures/lvm/`), beside an
//! ext4 host root holding the data-root and a `daemon.json` naming `dm.thinpooldev`.

use crate::common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const BLOCK: u64 = 64 << 10;
const DEV_SIZE: u64 = 16 << 20;
const META_SIZE: u64 = 8 << 20;

/// `fixtures/dmthin/docker` (made by `fixtures/dmthin/make-docker-pool.sh`), or
/// `SALVOR_DOCKER_POOL`.
fn docker_pool_fixtures() -> std::path::PathBuf {
    std::env::var_os("SALVOR_DOCKER_POOL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("fixtures/dmthin/docker"))
}

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

/// Builds, in `tmp`, a devicemapper data-root at `tmp/dr` (loop-file mode) from the vfs
/// fixture; with `scratch`, the pool also holds thin device 100 (an ext4 with `hello.txt`)
/// that Docker does not know (an LVM thin volume in the direct-lvm test). Returns the
/// data-root.
fn build_devicemapper_root(tmp: &Path, scratch: bool) -> std::path::PathBuf {
    let root = tmp.join("dr");
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
    let mut devices: Vec<(u64, std::path::PathBuf)> = Vec::new();
    for (i, cache) in caches.iter().enumerate() {
        let staging = tmp.join(format!("fs-{i}"));
        fs::create_dir_all(&staging).expect("staging");
        fs::rename(root.join("vfs/dir").join(cache), staging.join("rootfs"))
            .expect("move snapshot");
        fs::write(staging.join("id"), cache).expect("id");
        let dev_id = i as u64 + 1;
        devices.push((dev_id, staging));
        fs::write(
            dm.join("metadata").join(cache),
            format!(r#"{{"device_id":{dev_id},"size":{DEV_SIZE},"transaction_id":1,"initialized":true,"deleted":false}}"#),
        )
        .expect("record");
    }
    if scratch {
        let staging = tmp.join("fs-scratch");
        fs::create_dir_all(&staging).expect("staging");
        fs::write(staging.join("hello.txt"), "an LVM thin volume\n").expect("w");
        devices.push((100, staging));
    }
    // The devices' ext4 images as mke2fs -d made them from these trees (committed, in
    // order: the layers by cache id, then device 100).
    let fx = docker_pool_fixtures();
    let mut images = zstd::stream::read::Decoder::new(
        fs::File::open(fx.join("devices.zst")).expect("devices.zst"),
    )
    .expect("zstd");
    images.window_log_max(27).expect("zstd window");
    for (i, (dev_id, _staging)) in devices.iter().enumerate() {
        assert_eq!(*dev_id, if i < caches.len() { i as u64 + 1 } else { 100 });
        std::io::copy(&mut (&mut images).take(DEV_SIZE), &mut data).expect("copy");
        xml.push_str(&format!(
            "  <device dev_id=\"{dev_id}\" mapped_blocks=\"{blocks_per_dev}\" transaction=\"1\" creation_time=\"0\" snap_time=\"0\">\n    <range_mapping origin_begin=\"0\" data_begin=\"{}\" length=\"{blocks_per_dev}\" time=\"0\"/>\n  </device>\n",
            i as u64 * blocks_per_dev
        ));
    }
    drop(data);
    let nr = devices.len() as u64 * blocks_per_dev;
    let xml = format!(
        "<superblock uuid=\"\" time=\"1\" transaction=\"1\" data_block_size=\"{}\" nr_data_blocks=\"{nr}\">\n{xml}</superblock>\n",
        BLOCK / 512
    );
    // The metadata thin_restore wrote from this very XML.
    let k = devices.len();
    let committed_xml = fs::read_to_string(fx.join(format!("pool-{k}.xml"))).expect("pool xml");
    assert_eq!(
        xml, committed_xml,
        "the pool's XML is not the one given to thin_restore"
    );
    let meta = dm.join("devicemapper/metadata");
    let bytes =
        zstd::decode_all(&fs::read(fx.join(format!("metadata-{k}.zst"))).expect("metadata")[..])
            .expect("zstd");
    assert_eq!(bytes.len() as u64, META_SIZE);
    fs::write(&meta, bytes).expect("meta");
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
    root
}

/// Every layer verified and read from a thin device; the archive equals the one made from
/// the vfs fixture the pool was built from.
fn check_answers(r: &str, tmp: &Path, extra: &[&str]) {
    let args = |a: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["--root".into(), r.into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(a.iter().map(|s| s.to_string()));
        v
    };
    let ok = |a: &[&str]| {
        let v = args(a);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        salvor_ok(&v, 0)
    };
    let info: Value = serde_json::from_str(&ok(&["info", "--json"])).expect("json");
    assert_eq!(info["driver"], "devicemapper");
    let v: Value = serde_json::from_str(&ok(&["verify", "--json"])).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert!(!v["layers"].as_array().expect("layers").is_empty());
    for l in v["layers"].as_array().expect("layers") {
        assert_eq!(l["status"], "verified", "{l}");
    }
    let tree: Value = serde_json::from_str(&ok(&["tree", "--json"])).expect("json");
    for l in tree.as_array().expect("layers") {
        assert_eq!(l["files"]["kind"], "thin-device", "{l}");
        assert_eq!(l["files"]["filesystem"], "ext4");
    }
    // Same archive as from the vfs directories the pool was made from.
    let vfs = repo()
        .join("fixtures/engine/vfs/data-root.tar.zst")
        .to_string_lossy()
        .into_owned();
    let a = tmp.join("a.tar");
    let b = tmp.join("b.tar");
    salvor_ok(
        &[
            "-q",
            "--overwrite",
            "--root",
            &vfs,
            "extract",
            "salvor/small:1",
            "-o",
            &a.to_string_lossy(),
        ],
        0,
    );
    ok(&[
        "-q",
        "--overwrite",
        "extract",
        "salvor/small:1",
        "-o",
        &b.to_string_lossy(),
    ]);
    assert_eq!(sha256_file(&a), sha256_file(&b));
}

#[test]
fn devicemapper_layers_rebuild_from_the_thin_pool() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = build_devicemapper_root(tmp.path(), false);
    let r = root.to_string_lossy().into_owned();
    let info: Value =
        serde_json::from_str(&salvor_ok(&["--root", &r, "info", "--json"], 0)).expect("json");
    assert!(
        info["thin_pool"]["origin"]
            .as_str()
            .is_some_and(|o| o.starts_with("loop files")),
        "{info}"
    );
    check_answers(&r, tmp.path(), &[]);
}

/// `fixtures/lvm`, or a fresh run of its script (`SALVOR_LVM_FIXTURES`, set by `.ci/run`
/// where the LVM tools and loop devices work).
fn lvm_fixtures() -> std::path::PathBuf {
    std::env::var_os("SALVOR_LVM_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("fixtures/lvm"))
}

/// PV geometry of `fixtures/lvm/docker-vg.txt`: 4 MiB extents from 1 MiB; tdata at PE 0
/// (32 extents), tmeta at PE 32 (2), pmspare at PE 34 (2).
const EXTENT: u64 = 4 << 20;
const PE_START: u64 = 1 << 20;
const PV_SIZE: u64 = 145 << 20;

/// A GPT disk: p1 an ext4 host root with the data-root at var/lib/docker (no loop files)
/// and `daemon.json` naming the pool; p2 the LVM PV whose thin pool holds the devices.
/// With `configured == false` there is no daemon.json (the pool is found as the only
/// candidate). Returns the disk image.
fn build_direct_lvm_disk(tmp: &Path, configured: bool) -> std::path::PathBuf {
    let root = build_devicemapper_root(tmp, true);
    // The PV: LVM's own label and metadata, then the pool's data and metadata extents.
    let mut head = Vec::new();
    zstd::stream::read::Decoder::new(
        fs::File::open(lvm_fixtures().join("pv-head.bin.zst")).expect("pv head"),
    )
    .expect("zstd")
    .read_to_end(&mut head)
    .expect("read");
    assert_eq!(head.len() as u64, PE_START);
    let pv = tmp.join("pv.img");
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(&pv).expect("pv");
        f.set_len(PV_SIZE).expect("size");
        f.write_all_at(&head, 0).expect("head");
        let data = fs::read(root.join("devicemapper/devicemapper/data")).expect("data");
        assert!(data.len() as u64 <= 32 * EXTENT, "pool data fits tdata");
        f.write_all_at(&data, PE_START).expect("tdata");
        let meta = fs::read(root.join("devicemapper/devicemapper/metadata")).expect("meta");
        assert!(meta.len() as u64 <= 2 * EXTENT, "pool metadata fits tmeta");
        f.write_all_at(&meta, PE_START + 32 * EXTENT)
            .expect("tmeta");
    }
    fs::remove_dir_all(root.join("devicemapper/devicemapper")).expect("rm loop files");
    // The host root.
    let host = tmp.join("host");
    fs::create_dir_all(host.join("var/lib")).expect("mkdir");
    fs::create_dir_all(host.join("etc/docker")).expect("mkdir");
    fs::rename(&root, host.join("var/lib/docker")).expect("mv");
    if configured {
        fs::write(
            host.join("etc/docker/daemon.json"),
            r#"{"storage-driver": "devicemapper", "storage-opts": ["dm.thinpooldev=/dev/mapper/docker-thinpool", "dm.use_deferred_removal=true"]}"#,
        )
        .expect("daemon.json");
    }
    // That host root as mke2fs -d made it (committed), on sfdisk's GPT disk (committed):
    // p1 at 1 MiB (48 MiB), p2 (LVM) after it.
    let fx = docker_pool_fixtures();
    let rootfs = tmp.join("root.img");
    let name = if configured {
        "root.img.zst"
    } else {
        "root-bare.img.zst"
    };
    fs::write(
        &rootfs,
        zstd::decode_all(&fs::read(fx.join(name)).expect("root image")[..]).expect("zstd"),
    )
    .expect("root.img");
    let disk = tmp.join("disk.img");
    let p1 = 1u64 << 20;
    let p2 = p1 + (48 << 20);
    fs::write(
        &disk,
        zstd::decode_all(&fs::read(fx.join("disk-gpt.raw.zst")).expect("disk")[..]).expect("zstd"),
    )
    .expect("disk");
    assert_eq!(
        fs::metadata(&disk).expect("disk").len(),
        p2 + PV_SIZE + (1 << 20)
    );
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&disk)
            .expect("disk");
        f.write_all_at(&fs::read(&rootfs).expect("root"), p1)
            .expect("p1");
        f.write_all_at(&fs::read(&pv).expect("pv"), p2).expect("p2");
    }
    disk
}

#[test]
fn direct_lvm_layers_rebuild_from_the_lvm_thin_pool() {
    let tmp = tempfile::tempdir().expect("tmp");
    let disk = build_direct_lvm_disk(tmp.path(), true);
    let d = disk.to_string_lossy().into_owned();
    let before = sha256_file(&disk);

    // What salvor sees on the disk agrees with what LVM itself says (fixtures/lvm/lvs.txt).
    let probe: Value =
        serde_json::from_str(&salvor_ok(&["--root", &d, "probe", "--json"], 0)).expect("json");
    let lvs = fs::read_to_string(lvm_fixtures().join("lvs.txt")).expect("lvs.txt");
    let vg = &probe["disk"]["volume_groups"][0];
    assert_eq!(vg["name"], "docker");
    let mut ours: Vec<(String, u64, String)> = vg["logical_volumes"]
        .as_array()
        .expect("lvs")
        .iter()
        .map(|l| {
            (
                l["name"].as_str().expect("name").to_string(),
                l["size"].as_u64().expect("size"),
                l["segments"][0]["type"].as_str().expect("type").to_string(),
            )
        })
        .collect();
    ours.sort();
    let mut theirs: Vec<(String, u64, String)> = lvs
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("LV "))
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let name = w[0].trim_matches(|c| c == '[' || c == ']').to_string();
            let size: u64 = w[3].trim_end_matches('B').parse().expect("size");
            // `linear` is LVM's display name of a one-stripe `striped` segment.
            let ty = w
                .iter()
                .find(|x| ["linear", "thin", "thin-pool"].contains(x))
                .expect("type");
            (
                name,
                size,
                if *ty == "linear" {
                    "striped".to_string()
                } else {
                    ty.to_string()
                },
            )
        })
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs, "salvor's LVs vs lvs -a");
    let pool = &probe["disk"]["thin_pools"][0];
    assert_eq!(pool["spec"], "lv:docker/thinpool");
    assert_eq!(pool["data_block_size"], BLOCK);
    let mut ids: Vec<u64> = pool["device_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id"))
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 100]);
    assert_eq!(pool["lvm_volumes"]["100"], "lv:docker/scratch");
    // The LVM thin volume is a volume of its own: its bytes are the ext4 image laid in.
    let scratch = probe["disk"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["spec"] == "lv:docker/scratch")
        .expect("scratch volume");
    assert_eq!(scratch["size"], 16u64 << 20);
    assert_eq!(scratch["content"]["type"], "ext");
    let text = String::from_utf8_lossy(&salvor(&["--root", &d, "probe"]).stdout).into_owned();
    assert!(text.contains("lv:docker/thinpool"), "{text}");
    assert!(text.contains("2 LVM does not know"), "{text}");

    // The host's dm.thinpooldev picks the pool; every layer rebuilds from it.
    let out = salvor(&["--root", &d, "info"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dm.thinpooldev=/dev/mapper/docker-thinpool"),
        "{stderr}"
    );
    let info: Value =
        serde_json::from_str(&salvor_ok(&["--root", &d, "info", "--json"], 0)).expect("json");
    assert!(
        info["thin_pool"]["origin"]
            .as_str()
            .is_some_and(|o| o.starts_with("LVM thin pool docker/thinpool")),
        "{info}"
    );
    assert_eq!(info["thin_pool"]["thin_devices"], 3);
    check_answers(&d, tmp.path(), &[]);
    // Named explicitly, the same.
    check_answers(&d, tmp.path(), &["--thin-pool", "docker/thinpool"]);
    // A pool that is not there is an error naming the ones that are.
    let out = salvor(&["--root", &d, "--thin-pool", "docker/nope", "images"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("docker/nope") && e.contains("docker/thinpool"),
        "{e}"
    );
    assert_eq!(sha256_file(&disk), before, "the disk image was modified");
}

#[test]
fn direct_lvm_pool_is_found_without_configuration_or_on_another_disk() {
    let tmp = tempfile::tempdir().expect("tmp");
    let disk = build_direct_lvm_disk(tmp.path(), false);
    let d = disk.to_string_lossy().into_owned();
    // No daemon.json: the only pool holding devices LVM does not know is Docker's.
    check_answers(&d, tmp.path(), &[]);

    // The data-root on one disk (here: the root filesystem alone), the pool on another.
    let rootfs = tmp.path().join("root.img").to_string_lossy().into_owned();
    let out = salvor(&["--root", &rootfs, "verify", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "layers cannot be read without the pool"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["layers"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("--thin-pool")),
        "{v}"
    );
    check_answers(&rootfs, tmp.path(), &["--thin-pool", &d]);
    check_answers(
        &rootfs,
        tmp.path(),
        &["--thin-pool", &format!("{d}:docker/thinpool")],
    );
    // The --thin-pool image is read: no output may be written onto it.
    let before = sha256_file(&disk);
    for spec in [d.clone(), format!("{d}:docker/thinpool")] {
        let out = salvor(&[
            "-q",
            "--overwrite",
            "--root",
            &rootfs,
            "--thin-pool",
            &spec,
            "extract",
            "salvor/small:1",
            "-o",
            &d,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("refusing to write") && err.contains("--thin-pool"),
            "{err}"
        );
    }
    assert_eq!(sha256_file(&disk), before);
}

/// `fixtures/dmthin/make-docker-pool.sh` re-run into a temporary directory writes the
/// committed files byte for byte (thin_restore's metadata and thin_dump's answer included).
#[test]
#[ignore = "needs thin_restore and thin_dump (thin-provisioning-tools), mke2fs, debugfs and e2fsck (e2fsprogs), sfdisk (fdisk), zstd, tar, root: re-makes fixtures/dmthin/make-docker-pool.sh and compares; CI runs it"]
fn docker_pool_remade_by_the_tools_is_the_committed_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fresh = tmp.path().join("fresh");
    let script = repo().join("fixtures/dmthin/make-docker-pool.sh");
    let o = Command::new("bash")
        .arg(&script)
        .env("FX_OUT_DIR", &fresh)
        .output()
        .expect("bash");
    assert!(
        o.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let list = |d: &Path| {
        let mut v: Vec<String> = fs::read_dir(d)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let committed = docker_pool_fixtures();
    let names = list(&committed);
    assert_eq!(names, list(&fresh), "the fresh run writes other files");
    for n in &names {
        assert!(
            fs::read(committed.join(n)).expect("read") == fs::read(fresh.join(n)).expect("read"),
            "{n}: the fresh run differs from the committed file"
        );
    }
}
