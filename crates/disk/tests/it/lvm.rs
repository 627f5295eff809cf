//! LVM2: a hand-written PV (label, metadata area, text) in an MBR partition and on a
//! whole disk; a linear LV with two out-of-order segments maps back to the filesystem.

use crate::common;

use common::*;
use salvor_disk::{Content, Disk, VolumeSpec};

/// The committed ext4 image (`fixtures/disk/fs.img.zst`, made by `mke2fs -d`).
fn fs_image(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read(unpack_fixture(dir, "fs.img")).unwrap()
}

/// On the committed MBR disk `fixtures/disk/lvm-mbr.raw.zst` (sfdisk: one 8e partition at
/// 1 MiB), a hand-written PV holding the committed ext4 image.
#[test]
fn lv_in_mbr_partition_maps_to_the_filesystem() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fs = fs_image(d);
    let lvm_raw = unpack_fixture(d, "lvm-mbr.raw");
    std::fs::rename(&lvm_raw, d.join("lvm.raw")).unwrap();
    // Metadata text placed so that it wraps around the end of the circular buffer.
    let mda_size = (1u64 << 20) - 4096;
    let pv = pv_with_fs(&fs, mda_size - 1000);
    let mut disk = std::fs::read(d.join("lvm.raw")).unwrap();
    disk[1 << 20..(1 << 20) + pv.len()].copy_from_slice(&pv);
    std::fs::write(d.join("lvm.raw"), &disk).unwrap();

    let disk = Disk::open(&d.join("lvm.raw")).unwrap();
    assert!(
        matches!(disk.volumes[0].content, Content::LvmPv { ref uuid } if uuid == "abcdef-ghij-klmn-opqr-stuv-wxyz-012345")
    );
    assert_eq!(disk.volume_groups.len(), 1);
    let vg = &disk.volume_groups[0];
    assert_eq!(
        (vg.name.as_str(), vg.seqno, vg.extent_size),
        ("vg0", 7, 512 * 1024)
    );
    let names: Vec<_> = vg
        .logical_volumes
        .iter()
        .map(|l| (l.name.as_str(), l.size, l.unsupported.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("root", 6 << 20, false),
            ("pool", 1 << 20, true),
            ("wide", 1 << 20, true),
            ("hidden", 512 << 10, false)
        ]
    );
    let specs: Vec<_> = disk.volumes.iter().map(|v| v.spec.as_str()).collect();
    assert_eq!(
        specs,
        ["p1", "lv:vg0/root"],
        "hidden and unsupported LVs are not volumes"
    );
    // The thin pool is listed, with why it cannot be opened (its sub-LVs are missing).
    assert_eq!(disk.thin_pools.len(), 1);
    let tp = &disk.thin_pools[0];
    assert_eq!(
        (
            tp.spec.as_str(),
            tp.metadata_lv.as_str(),
            tp.data_lv.as_str()
        ),
        ("lv:vg0/pool", "pool_tmeta", "pool_tdata")
    );
    assert_eq!(tp.chunk_size, Some(64 << 10));
    assert!(tp.pool.is_none());
    assert!(
        tp.error
            .as_deref()
            .is_some_and(|e| e.contains("\"pool_tmeta\" is not in the volume group")),
        "{tp:?}"
    );
    assert!(
        disk.warnings
            .iter()
            .any(|w| w.starts_with("thin pool lv:vg0/pool:")),
        "{:?}",
        disk.warnings
    );
    let root = disk.select(&"lv:vg0/root".parse().unwrap()).unwrap()[0];
    assert!(matches!(root.content, Content::Ext { .. }));
    assert_eq!(root.size, 6 << 20);
    let mut got = vec![0u8; fs.len()];
    root.device.read_exact_at(0, &mut got).unwrap();
    assert!(got == fs, "LV bytes differ from the filesystem image");
    assert_eq!(
        disk.select(&VolumeSpec::Auto).unwrap()[0].spec,
        "lv:vg0/root"
    );
    let e = disk
        .select(&"lv:vg0/pool".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("a thin pool holds thin volumes"), "{e}");
    let e = disk
        .select(&"lv:vg0/wide".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 stripes"), "{e}");
    let json = serde_json::to_value(disk.report()).unwrap();
    assert_eq!(
        json["volume_groups"][0]["logical_volumes"][0]["segments"][0]["stripes"][0][1],
        10
    );
}

#[test]
fn pv_on_whole_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let fs = fs_image(d);
    let pv = pv_with_fs(&fs, 512);
    std::fs::write(d.join("pv.raw"), &pv).unwrap();
    let disk = Disk::open(&d.join("pv.raw")).unwrap();
    assert!(disk.partition_table.is_none());
    assert_eq!(disk.volumes.len(), 2);
    assert_eq!(disk.volumes[1].spec, "lv:vg0/root");
    assert!(matches!(disk.volumes[1].content, Content::Ext { .. }));
}

#[test]
fn metadata_garbage_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cases: Vec<String> = vec![
        "garbage".into(),
        "vg0 { physical_volumes { pv0 { pe_start = -5 pe_count = 1 } } extent_size = 8 }".into(),
        "vg0 { extent_size = 0 physical_volumes { } }".into(),
        "[".repeat(100_000),
        "a {".repeat(10_000),
        "vg0 { extent_size = 8 physical_volumes { pv0 { id = \"x\" pe_start = 0 pe_count = 1 } } logical_volumes { lv { status = [\"VISIBLE\"] segment1 { start_extent = 0 extent_count = 99999999999 type = \"striped\" stripes = [\"pv0\", 0] } } } }".into(),
        "vg0 { extent_size = 8 physical_volumes { pv0 { id = \"x\" pe_start = 0 pe_count = 1 } } logical_volumes { lv { status = [\"VISIBLE\"] segment1 { start_extent = 0 extent_count = 1 type = \"striped\" stripes = [\"nope\", 0] } } } }".into(),
        "vg0 { extent_size = 8 physical_volumes { pv0 { id = \"x\" pe_start = 0 pe_count = 10 } } logical_volumes { lv { status = [\"VISIBLE\"] segment1 { start_extent = 0 extent_count = 2 type = \"striped\" stripes = [\"pv0\", 0] } segment2 { start_extent = 1 extent_count = 2 type = \"striped\" stripes = [\"pv0\", 4] } } } }".into(),
        "\"unterminated".into(),
        "x = 99999999999999999999999".into(),
    ];
    for (i, text) in cases.iter().enumerate() {
        let mda = (1u64 << 20) - 4096;
        if text.len() as u64 > mda - 512 {
            assert!(salvor_disk::lvm::parse_metadata(text).is_err());
            continue;
        }
        let pv = make_pv(2 << 20, PV_UUID, 1 << 20, mda, text, 512);
        let p = d.join(format!("bad{i}.raw"));
        std::fs::write(&p, &pv).unwrap();
        let disk = Disk::open(&p).unwrap();
        assert_eq!(
            disk.volumes.len(),
            1,
            "case {i}: no LV may come out of garbage"
        );
        assert!(
            !disk.warnings.is_empty(),
            "case {i}: the damage must be reported"
        );
    }
}

/// A thin pool whose metadata LV holds no dm-thin superblock, a thin volume in it, and a
/// thin volume naming a pool that does not exist: each is reported (pool error, warnings),
/// none is a volume, and nothing panics.
#[test]
fn damaged_thin_pool_is_reported_not_fatal() {
    let text = vg0_text().replace(
        "\t\thidden {",
        r#"		pool_tmeta {
			id = "TMeta0-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE"]
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 1
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 23]
			}
		}
		pool_tdata {
			id = "TData0-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE"]
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 2
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 6]
			}
		}
		thinvol {
			id = "ThinV0-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE", "VISIBLE"]
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 4
				type = "thin"
				thin_pool = "pool"
				transaction_id = 0
				device_id = 7
			}
		}
		ghost {
			id = "Ghost0-aaaa-bbbb-cccc-dddd-eeee-ffffff"
			status = ["READ", "WRITE", "VISIBLE"]
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 4
				type = "thin"
				thin_pool = "nopool"
				transaction_id = 0
				device_id = 1
			}
		}
		hidden {"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let pv = make_pv(14 << 20, PV_UUID, 1 << 20, (1 << 20) - 4096, &text, 512);
    let path = tmp.path().join("pv.raw");
    std::fs::write(&path, &pv).unwrap();
    let disk = Disk::open(&path).unwrap();
    assert_eq!(disk.volume_groups.len(), 1, "{:?}", disk.warnings);
    let tp = disk.thin_pool("vg0", "pool").expect("pool listed");
    assert!(tp.pool.is_none());
    assert!(
        tp.error.as_deref().is_some_and(|e| e.contains("magic")),
        "{tp:?}"
    );
    let specs: Vec<_> = disk.volumes.iter().map(|v| v.spec.as_str()).collect();
    assert!(
        !specs
            .iter()
            .any(|s| s.contains("thinvol") || s.contains("ghost")),
        "{specs:?}"
    );
    let w = disk.warnings.join("\n");
    assert!(
        w.contains("lv:vg0/thinvol: thin pool lv:vg0/pool could not be opened"),
        "{w}"
    );
    assert!(
        w.contains("lv:vg0/ghost: thin pool \"nopool\" is not in the volume group"),
        "{w}"
    );
    let e = disk
        .select(&"lv:vg0/thinvol".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the LV exists but cannot be read: thin pool lv:vg0/pool could not be opened"),
        "{e}"
    );
}
