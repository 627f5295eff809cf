//! The v2 layout: `image/<driver>/{imagedb,layerdb,repositories.json}` (Docker ≥ 1.10).
//!
//! [`load`] reads it in three passes, each in its own module: [`layers`] (`layerdb/`, then
//! where each layer's files are), [`tags`] (`repositories.json`), [`images`]
//! (`imagedb/`, joined with the tags and layers).

mod images;
mod layers;
mod tags;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_source::{FileKind, Source};

use crate::{read_small, Driver, LayerFiles, Layout, Result, Store};

pub use salvor_oci::EMPTY_LAYER;

fn dir_names(source: &dyn Source, dir: &Path) -> Vec<String> {
    source
        .read_dir(dir)
        .map(|v| {
            v.into_iter()
                .filter(|e| e.kind == FileKind::Dir)
                .filter_map(|e| e.name.into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn file_names(source: &dyn Source, dir: &Path) -> Vec<String> {
    source
        .read_dir(dir)
        .map(|v| {
            v.into_iter()
                .filter(|e| e.kind == FileKind::Regular)
                .filter_map(|e| e.name.into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Picks the driver whose `image/<driver>` holds the most images (ties: most layers).
fn pick_driver(source: &dyn Source, root: &Path) -> Option<String> {
    let mut best: Option<(usize, usize, String)> = None;
    for d in dir_names(source, &root.join("image")) {
        let base = root.join("image").join(&d);
        let imgs = file_names(source, &base.join("imagedb/content/sha256")).len();
        let layers = dir_names(source, &base.join("layerdb/sha256")).len();
        let score = (imgs, layers, d.clone());
        if best
            .as_ref()
            .map(|b| (score.0, score.1) > (b.0, b.1))
            .unwrap_or(true)
        {
            best = Some(score);
        }
    }
    best.map(|b| b.2)
}

pub(crate) fn load(
    source: Arc<dyn Source>,
    root: PathBuf,
    thin_pool: crate::ThinPoolCell,
) -> Result<Store> {
    let src = source.as_ref();
    let driver_name = pick_driver(src, &root).unwrap_or_else(|| "unknown".to_string());
    let driver = Driver::from_name(&driver_name);
    let mut store = Store {
        source: source.clone(),
        root: root.clone(),
        layout: Layout::V2,
        driver: driver.clone(),
        images: Vec::new(),
        layers: BTreeMap::new(),
        problems: Vec::new(),
        damage: Vec::new(),
        thin_pool,
        containers_read: std::sync::OnceLock::new(),
        parsed: Default::default(),
        engine_version: None,
    };
    let image_root = root.join("image").join(&driver_name);
    for other in dir_names(src, &root.join("image")) {
        if other != driver_name
            && !file_names(
                src,
                &root
                    .join("image")
                    .join(&other)
                    .join("imagedb/content/sha256"),
            )
            .is_empty()
        {
            store.problem(
                root.join("image").join(&other),
                format!("metadata for a second storage driver ({other}) is present; salvor reads {driver_name}, the one with the most images"),
            );
        }
    }

    layers::load(&mut store, src, &image_root);
    let (tags, repos_path) = tags::load(&mut store, src, &image_root);
    images::load(&mut store, src, &image_root, tags, &repos_path);
    store.images.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(store)
}

pub(crate) fn is_not_found(e: &crate::StoreError) -> bool {
    matches!(e, crate::StoreError::Source(s) if s.is_not_found())
}

/// Driver ids are hex, optionally with `-init`; nothing that could be a path.
pub(crate) fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s != "."
        && s != ".."
}

/// Where a layer's files live for a driver.
pub(crate) fn layer_files(store: &Store, cache_id: &str, lower_caches: &[String]) -> LayerFiles {
    let src = store.source.as_ref();
    let root = store.root.as_path();
    let driver = &store.driver;
    if cache_id.is_empty() {
        return LayerFiles::Unavailable {
            reason: "the layer has no usable cache-id".into(),
        };
    }
    let exists_dir = |p: &Path| matches!(src.metadata(p), Ok(m) if m.kind == FileKind::Dir);
    let found = |p: PathBuf| -> LayerFiles {
        if exists_dir(&p) {
            LayerFiles::Snapshot { root: p }
        } else {
            LayerFiles::Unavailable {
                reason: format!("{} is missing", p.display()),
            }
        }
    };
    match driver {
        Driver::Overlay2 | Driver::FuseOverlayfs => {
            let base = root.join(driver.name());
            let diff = base.join(cache_id).join("diff");
            if !exists_dir(&diff) {
                return LayerFiles::Unavailable {
                    reason: format!("{} is missing", diff.display()),
                };
            }
            let lowers = lower_caches
                .iter()
                .map(|c| base.join(c).join("diff"))
                .filter(|p| exists_dir(p))
                .collect();
            LayerFiles::Overlay { diff, lowers }
        }
        Driver::Aufs => {
            let diff = root.join("aufs/diff").join(cache_id);
            if exists_dir(&diff) {
                LayerFiles::Aufs { diff }
            } else {
                LayerFiles::Unavailable {
                    reason: format!("{} is missing", diff.display()),
                }
            }
        }
        Driver::Vfs => found(root.join("vfs/dir").join(cache_id)),
        Driver::Btrfs => found(root.join("btrfs/subvolumes").join(cache_id)),
        Driver::Zfs => found(root.join("zfs/graph").join(cache_id)),
        Driver::Overlay => {
            let base = root.join("overlay").join(cache_id);
            if exists_dir(&base.join("root")) {
                return LayerFiles::Snapshot {
                    root: base.join("root"),
                };
            }
            let lower = read_small(src, &base.join("lower-id"))
                .ok()
                .filter(|s| is_safe_id(s));
            match lower {
                Some(l) if exists_dir(&base.join("upper")) => LayerFiles::OverlayUpper {
                    upper: base.join("upper"),
                    lower_root: root.join("overlay").join(l).join("root"),
                },
                _ => LayerFiles::Unavailable {
                    reason: format!("{} has neither root/ nor upper/ + lower-id", base.display()),
                },
            }
        }
        Driver::Devicemapper => thin_device_files(store, cache_id),
        Driver::Windowsfilter => LayerFiles::Unavailable {
            reason: "windowsfilter layers are not supported".into(),
        },
        Driver::Other(name) => LayerFiles::Unavailable {
            reason: format!("unknown storage driver {name:?}"),
        },
    }
}

/// devicemapper: the layer's thin device in the pool (the loop files, or the LVM thin pool
/// given to [`Store::open_at_with_thin_pool`]), and the filesystem on it.
fn thin_device_files(store: &Store, cache_id: &str) -> LayerFiles {
    let dm = match store.devicemapper() {
        Ok(dm) => dm,
        Err(e) => {
            return LayerFiles::Unavailable {
                reason: e.to_string(),
            }
        }
    };
    let device_id = dm
        .devices
        .get(cache_id)
        .map(|d| d.device_id)
        .unwrap_or_default();
    let dev = match dm.layer_device(cache_id) {
        Ok(d) => d,
        Err(e) => {
            return LayerFiles::Unavailable {
                reason: salvor_model::error_chain(&e),
            }
        }
    };
    let mut head = [0u8; 1200];
    if dev.read_exact_at(0, &mut head).is_err() {
        return LayerFiles::Unavailable {
            reason: format!("thin device {device_id} cannot be read"),
        };
    }
    let opened: std::result::Result<(String, Arc<dyn Source>), String> =
        match salvor_source::identify_head(&head) {
            Some(kind) => salvor_disk::fs::open_as(kind, dev)
                .map(|fs| (kind.name().to_string(), fs))
                .map_err(|e| salvor_model::error_chain(&e)),
            None => Err("no ext4 or XFS filesystem on it".to_string()),
        };
    match opened {
        Ok((filesystem, fs)) => LayerFiles::ThinDevice {
            device_id,
            filesystem,
            source: crate::SourceHandle(fs),
        },
        Err(e) => LayerFiles::Unavailable {
            reason: format!("thin device {device_id}: {e}"),
        },
    }
}
