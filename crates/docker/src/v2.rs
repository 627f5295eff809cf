//! The v2 layout: `image/<driver>/{imagedb,layerdb,repositories.json}` (Docker ≥ 1.10).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_source::{FileKind, Source};

use crate::digest::{chain_id, chain_ids, sha256_hex, Digest};
use crate::jsondup::{Node, RepositoriesFile};
use crate::reference::Reference;
use crate::{
    read_small, Driver, Image, Layer, LayerFiles, Layout, Result, Store, TarSplitRef,
    MAX_JSON_BYTES,
};

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

/// One `layerdb/sha256/<chain>/` directory as read, before its files are located.
struct RawLayer {
    diff: String,
    parent: Option<String>,
    cache_id: String,
    size: Option<u64>,
    dir: PathBuf,
    descriptor: Option<serde_json::Value>,
    has_ts: bool,
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

    // Layers.
    let layerdb = image_root.join("layerdb/sha256");
    let mut raw: BTreeMap<String, RawLayer> = BTreeMap::new();
    for name in dir_names(src, &layerdb) {
        let dir = layerdb.join(&name);
        let Some(chain) = Digest::parse_loose(&name).ok() else {
            if !name.ends_with("-removing") && name != "tmp" {
                store.problem(
                    &dir,
                    "layerdb entry whose name is not a sha256 chain id; ignored",
                );
            }
            continue;
        };
        let diff = match read_small(src, &dir.join("diff")) {
            Ok(s) => match Digest::parse(&s).ok() {
                Some(d) => d.as_str().to_string(),
                None => {
                    store.problem(dir.join("diff"), format!("not a sha256 digest: {s:?}"));
                    continue;
                }
            },
            Err(e) => {
                store.problem(dir.join("diff"), e.to_string());
                continue;
            }
        };
        let parent = match read_small(src, &dir.join("parent")) {
            Ok(s) => match Digest::parse(&s).ok() {
                Some(d) => Some(d.as_str().to_string()),
                None => {
                    store.problem(dir.join("parent"), format!("not a sha256 digest: {s:?}"));
                    None
                }
            },
            Err(e) if is_not_found(&e) => None,
            Err(e) => {
                store.problem(dir.join("parent"), e.to_string());
                None
            }
        };
        let cache_id = match read_small(src, &dir.join("cache-id")) {
            Ok(s) if is_safe_id(&s) => s,
            Ok(s) => {
                store.problem(
                    dir.join("cache-id"),
                    format!("not a valid driver id: {s:?}"),
                );
                String::new()
            }
            Err(e) => {
                store.problem(dir.join("cache-id"), e.to_string());
                String::new()
            }
        };
        let size = match read_small(src, &dir.join("size")) {
            Ok(s) => match s.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    store.problem(dir.join("size"), format!("not a size: {s:?}"));
                    None
                }
            },
            Err(_) => None,
        };
        let descriptor = match src.read_limited(&dir.join("descriptor.json"), MAX_JSON_BYTES) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(v) => Some(v),
                Err(e) => {
                    store.problem(dir.join("descriptor.json"), format!("not valid JSON: {e}"));
                    None
                }
            },
            Err(_) => None,
        };
        let expected = chain_id(parent.as_deref(), &diff);
        if expected != chain.as_str() {
            store.problem(
                &dir,
                format!("directory name is not the chain id of its parent and diff (expected {expected})"),
            );
        }
        let has_ts = src.exists(&dir.join("tar-split.json.gz"));
        raw.insert(
            chain.as_str().to_string(),
            RawLayer {
                diff,
                parent,
                cache_id,
                size,
                dir,
                descriptor,
                has_ts,
            },
        );
    }

    // Resolve each layer's files (needs the parents' cache ids).
    let cache_of: BTreeMap<String, String> = raw
        .iter()
        .map(|(k, v)| (k.clone(), v.cache_id.clone()))
        .collect();
    let parent_of: BTreeMap<String, Option<String>> = raw
        .iter()
        .map(|(k, v)| (k.clone(), v.parent.clone()))
        .collect();
    for (
        chain,
        RawLayer {
            diff,
            parent,
            cache_id,
            size,
            dir,
            descriptor,
            has_ts,
        },
    ) in raw
    {
        let mut ancestors = Vec::new();
        let mut cur = parent.clone();
        let mut guard = 0;
        while let Some(p) = cur {
            guard += 1;
            if guard > 1000 || ancestors.contains(&p) || p == chain {
                store.problem(&dir, "parent chain loops; lower layers ignored");
                break;
            }
            ancestors.push(p.clone());
            cur = parent_of.get(&p).cloned().flatten();
        }
        let lower_caches: Vec<String> = ancestors
            .iter()
            .filter_map(|a| cache_of.get(a).cloned())
            .filter(|c| !c.is_empty())
            .collect();
        let files = layer_files(&store, &cache_id, &lower_caches);
        let tar_split = if has_ts {
            TarSplitRef::Gz {
                path: dir.join("tar-split.json.gz"),
            }
        } else if diff == EMPTY_LAYER.as_str() {
            TarSplitRef::EmptyLayer
        } else {
            store.problem(
                dir.join("tar-split.json.gz"),
                "missing: the layer cannot be rebuilt byte-exact",
            );
            TarSplitRef::Missing {
                reason: format!("{} is missing", dir.join("tar-split.json.gz").display()),
            }
        };
        if let Some(p) = &parent {
            if !parent_of.contains_key(p) {
                store.problem(
                    dir.join("parent"),
                    format!("parent layer {p} is not in the layer store"),
                );
            }
        }
        store.layers.insert(
            chain.clone(),
            Layer {
                chain_id: chain,
                diff_id: Some(diff),
                parent,
                cache_id,
                size,
                tar_split,
                files,
                descriptor,
                meta_dir: dir,
            },
        );
    }

    // Tags.
    let mut tags: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let repos_path = image_root.join("repositories.json");
    match src.read_limited(&repos_path, MAX_JSON_BYTES) {
        Ok(bytes) => match serde_json::from_slice::<RepositoriesFile>(&bytes) {
            Ok(file) => {
                for (_repo, refs) in merge_repositories(&mut store, &repos_path, file) {
                    for (r, id) in refs {
                        let id = match &id {
                            Node::String(s) => Digest::parse_loose(s).ok(),
                            _ => None,
                        };
                        let (Some(id), Some(parsed)) = (id, Reference::parse(&r).ok()) else {
                            store.problem(&repos_path, format!("unreadable entry {r:?}"));
                            continue;
                        };
                        let e = tags.entry(id.as_str().to_string()).or_default();
                        if parsed.digest.is_some() {
                            e.1.push(parsed.familiar());
                        } else {
                            e.0.push(parsed.familiar());
                        }
                    }
                }
            }
            Err(e) => store.problem(&repos_path, format!("not valid JSON: {e}")),
        },
        Err(e) if e.is_not_found() => {}
        Err(e) => store.problem(&repos_path, e.to_string()),
    }

    // Images.
    let content = image_root.join("imagedb/content/sha256");
    for name in file_names(src, &content) {
        let path = content.join(&name);
        let Some(id) = Digest::parse_loose(&name).ok() else {
            store.problem(&path, "image config whose name is not a sha256 id; ignored");
            continue;
        };
        let bytes = match src.read_limited(&path, MAX_JSON_BYTES) {
            Ok(b) => b,
            Err(e) => {
                store.problem(&path, e.to_string());
                continue;
            }
        };
        let actual = sha256_hex(&bytes);
        if actual != id.as_str() {
            store.problem(
                &path,
                format!("config bytes hash to {actual}, not to the image id in its name"),
            );
        }
        // A config serde_json cannot read (`1e999` is out of range for it, as for Go's
        // decoder wherever a number lands in a typed field) is still listed, marked, with
        // what a field-by-field read recovers (unknown fields are skipped unparsed, as Go
        // does), so the image does not vanish and its tags do not dangle.
        let (cfg, config_error) = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => (v, None),
            Err(e) => {
                let recovered = serde_json::from_slice::<LenientConfig>(&bytes).ok();
                store.problem(
                    &path,
                    format!(
                        "config unparseable: not valid JSON: {e}; {}",
                        if recovered.is_some() {
                            "the image is listed with its layers read field by field (the engine fails to load a config whose bad value is in a field it reads)"
                        } else {
                            "the image is listed without layers"
                        }
                    ),
                );
                let v = recovered.map(LenientConfig::into_value).unwrap_or_default();
                (
                    v,
                    Some(format!("config unparseable: {}: {e}", path.display())),
                )
            }
        };
        let diff_ids: Vec<String> = cfg
            .pointer("/rootfs/diff_ids")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().and_then(|s| Digest::parse(s).ok()))
                    .map(|d| d.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let chains = chain_ids(&diff_ids);
        let size = chains
            .iter()
            .filter_map(|c| store.layers.get(c))
            .filter_map(|l| l.size)
            .sum();
        for c in &chains {
            if !store.layers.contains_key(c) {
                store.problem(
                    &path,
                    format!("layer {c} of this image is not in the layer store"),
                );
            }
        }
        let meta = image_root.join("imagedb/metadata/sha256").join(id.hex());
        let parent = read_small(src, &meta.join("parent"))
            .ok()
            .and_then(|s| Digest::parse(&s).ok())
            .map(|d| d.as_str().to_string());
        let (mut repo_tags, mut repo_digests) = tags.remove(id.as_str()).unwrap_or_default();
        repo_tags.sort();
        repo_digests.sort();
        store.images.push(Image {
            id: id.as_str().to_string(),
            repo_tags,
            repo_digests,
            diff_ids,
            chain_ids: chains,
            created: cfg
                .get("created")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            parent,
            architecture: cfg
                .get("architecture")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            os: cfg.get("os").and_then(|v| v.as_str()).map(str::to_string),
            size,
            config_path: Some(path),
            config: Arc::new(bytes),
            synthesised: false,
            config_error,
        });
    }
    for (id, (t, d)) in tags {
        let names: Vec<String> = t.into_iter().chain(d).collect();
        store.problem(
            &repos_path,
            format!(
                "{} point(s) at image {id}, whose config is missing",
                names.join(", ")
            ),
        );
    }
    store.images.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(store)
}

/// The fields of an image config salvor models, read one by one; everything else is
/// skipped unparsed (so an out-of-range number elsewhere does not stop the read).
#[derive(serde::Deserialize)]
struct LenientConfig {
    created: Option<String>,
    architecture: Option<String>,
    os: Option<String>,
    rootfs: Option<LenientRootfs>,
}

#[derive(serde::Deserialize)]
struct LenientRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

impl LenientConfig {
    fn into_value(self) -> serde_json::Value {
        serde_json::json!({
            "created": self.created,
            "architecture": self.architecture,
            "os": self.os,
            "rootfs": { "diff_ids": self.rootfs.map(|r| r.diff_ids).unwrap_or_default() },
        })
    }
}

/// The repositories of `repositories.json` as the engine's Go decoder builds them: every
/// top-level key selecting the `Repositories` field (case-insensitively) is decoded in
/// order into the same map, so duplicate keys *merge*: a repository named again replaces
/// its earlier tags, a later `null` empties the map (Go sets it to nil). Inside a
/// repository the last of duplicate tags wins. Each of these is reported as a [`Problem`]
/// naming the file, since it never happens in a file the engine wrote.
///
/// [`Problem`]: crate::Problem
fn merge_repositories(
    store: &mut Store,
    path: &Path,
    file: RepositoriesFile,
) -> BTreeMap<String, BTreeMap<String, Node>> {
    let n = file.occurrences.len();
    if n == 0 {
        store.problem(path, "no \"Repositories\" object");
    } else if n > 1 {
        let keys: Vec<String> = file
            .occurrences
            .iter()
            .map(|(k, _)| format!("{k:?}"))
            .collect();
        store.problem(
            path,
            format!(
                "the top-level \"Repositories\" key appears {n} times ({}); read as the engine's Go decoder reads it: the objects are merged in order, a repository named again replacing its earlier tags, a null dropping all earlier ones",
                keys.join(", ")
            ),
        );
    }
    let mut repos: BTreeMap<String, BTreeMap<String, Node>> = BTreeMap::new();
    for (key, value) in file.occurrences {
        match value {
            Node::Null => repos.clear(),
            Node::Object(entries) => {
                for (repo, val) in entries {
                    let tags = match val {
                        Node::Object(t) => t,
                        Node::Null => Vec::new(),
                        other => {
                            store.problem(
                                path,
                                format!(
                                    "repository {repo:?} is {}, not an object; ignored",
                                    other.kind()
                                ),
                            );
                            continue;
                        }
                    };
                    let mut refs = BTreeMap::new();
                    for (t, id) in tags {
                        if refs.insert(t.clone(), id).is_some() {
                            store.problem(
                                path,
                                format!("{t:?} is listed more than once in repository {repo:?}; the engine keeps the last"),
                            );
                        }
                    }
                    if repos.insert(repo.clone(), refs).is_some() {
                        store.problem(
                            path,
                            format!("repository {repo:?} is listed more than once; the engine keeps the last"),
                        );
                    }
                }
            }
            other => store.problem(
                path,
                format!(
                    "{key:?} is {}, not an object; ignored (the engine cannot read this file)",
                    other.kind()
                ),
            ),
        }
    }
    repos
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
        Err(e) => return LayerFiles::Unavailable { reason: e.clone() },
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
                reason: crate::devicemapper::error_text(&e),
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
                .map_err(|e| e.to_string()),
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
