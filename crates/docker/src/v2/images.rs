//! `imagedb/content/sha256/<id>`: the image configs, joined with their tags and layers.

use std::path::Path;
use std::sync::Arc;

use salvor_source::Source;

use super::{file_names, tags::Tags};
use crate::digest::{chain_ids, sha256_hex, Digest};
use crate::{read_small, Image, Store, MAX_JSON_BYTES};

/// Reads every image config of `image_root` into `store.images` with its tags (taken out
/// of `tags`; those left point at missing configs and are reported against `repos_path`).
pub(super) fn load(
    store: &mut Store,
    src: &dyn Source,
    image_root: &Path,
    mut tags: Tags,
    repos_path: &Path,
) {
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
                store.problem(&path, salvor_model::error_chain(&e));
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
        let last_updated = last_updated(store, src, &meta.join("lastUpdated"));
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
            last_updated,
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
            repos_path,
            format!(
                "{} point(s) at image {id}, whose config is missing",
                names.join(", ")
            ),
        );
    }
}

/// `lastUpdated` as moby's image store reads it (`GetLastUpdated`): absent or empty means
/// no time; otherwise the whole file must be Go `RFC3339Nano` (no trimming), or the
/// engine's inspect fails; salvor names the file and answers with no time.
fn last_updated(store: &mut Store, src: &dyn Source, path: &Path) -> Option<salvor_oci::Time> {
    let bytes = match src.read_limited(path, 4096) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            store.problem(path, salvor_model::error_chain(&e));
            return None;
        }
    };
    if bytes.is_empty() {
        return None;
    }
    let t = std::str::from_utf8(&bytes)
        .ok()
        .and_then(salvor_oci::Time::parse);
    if t.is_none() {
        store.problem(
            path,
            "lastUpdated is not an RFC 3339 time (the engine's inspect fails on it); LastTagTime shown as Go's zero time",
        );
    }
    t
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
