//! The `layerdb/sha256/<chain>/` directories, then where each layer's files live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salvor_source::Source;

use super::{dir_names, is_not_found, is_safe_id, layer_files, EMPTY_LAYER};
use crate::digest::{chain_id, Digest};
use crate::{read_small, Layer, Store, TarSplitRef, MAX_JSON_BYTES};

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

/// Reads every layer of `image_root`'s layer store into `store.layers`, each problem into
/// `store.problems`.
pub(super) fn load(store: &mut Store, src: &dyn Source, image_root: &Path) {
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
                store.problem(dir.join("diff"), salvor_model::error_chain(&e));
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
                store.problem(dir.join("parent"), salvor_model::error_chain(&e));
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
                store.problem(dir.join("cache-id"), salvor_model::error_chain(&e));
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
        let files = layer_files(store, &cache_id, &lower_caches);
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
}
