//! The pre-1.10 `graph/` layout, read the way Docker 1.10's migration read it.
//!
//! `graph/<v1id>/{json,layersize,checksum,tar-data.json.gz}` describe one v1 image each (each
//! is also a layer); tags are in `repositories-<driver>`; layer files are in the driver's
//! directory under the same v1 id. As in the migration (`migrate/v1`), each layer's diff id is
//! the sha256 of the tar rebuilt from `tar-data.json.gz` and the driver files, chain ids
//! follow, and each v1 image gets a v2 config made like `MakeConfigFromV1Config`: the v1 JSON
//! without `id`, `parent`, `Size`, `parent_id`, `layer_id`, `throwaway`, plus `rootfs` and the
//! accumulated `history`, with keys sorted. Those configs are marked `synthesised`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use salvor_source::{FileKind, Source};
use serde_json::value::RawValue;

use crate::digest::{chain_id, sha256_hex};
use crate::reference::Reference;
use crate::v2::{is_not_found, is_safe_id, layer_files, EMPTY_LAYER};
use crate::{
    read_json, read_small, Driver, Image, Layer, Layout, Result, Store, TarSplitRef, MAX_JSON_BYTES,
};
use salvor_oci::GoJson;

struct V1 {
    parent: Option<String>,
    json: Vec<u8>,
    value: serde_json::Value,
}

pub(crate) fn load(
    source: Arc<dyn Source>,
    root: PathBuf,
    thin_pool: crate::ThinPoolCell,
) -> Result<Store> {
    let src = source.as_ref();
    // The driver: from repositories-<driver>, else the first known driver directory.
    let mut driver_name = None;
    if let Ok(entries) = src.read_dir(&root) {
        for e in &entries {
            if let Some(n) = e
                .name
                .to_str()
                .and_then(|n| n.strip_prefix("repositories-"))
            {
                driver_name = Some(n.to_string());
            }
        }
        if driver_name.is_none() {
            for d in ["aufs", "overlay", "devicemapper", "btrfs", "zfs", "vfs"] {
                if entries
                    .iter()
                    .any(|e| e.name == d && e.kind == FileKind::Dir)
                {
                    driver_name = Some(d.to_string());
                    break;
                }
            }
        }
    }
    let driver_name = driver_name.unwrap_or_else(|| "unknown".into());
    let driver = Driver::from_name(&driver_name);
    let mut store = Store {
        source: source.clone(),
        root: root.clone(),
        layout: Layout::LegacyGraph,
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

    let graph = root.join("graph");
    let mut v1s: BTreeMap<String, V1> = BTreeMap::new();
    for e in src.read_dir(&graph)? {
        if e.kind != FileKind::Dir {
            continue;
        }
        let Some(id) = e.name.to_str().map(str::to_string) else {
            continue;
        };
        if id == "_tmp" || id.starts_with('.') {
            continue;
        }
        let dir = graph.join(&id);
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            store.problem(&dir, "graph entry whose name is not a v1 image id; ignored");
            continue;
        }
        let json = match src.read_limited(&dir.join("json"), MAX_JSON_BYTES) {
            Ok(b) => b,
            Err(e) => {
                store.problem(dir.join("json"), salvor_model::error_chain(&e));
                continue;
            }
        };
        let value: serde_json::Value = match serde_json::from_slice(&json) {
            Ok(v) => v,
            Err(e) => {
                store.problem(dir.join("json"), format!("not valid JSON: {e}"));
                continue;
            }
        };
        let parent = value
            .get("parent")
            .and_then(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        v1s.insert(
            id,
            V1 {
                parent,
                json,
                value,
            },
        );
    }

    // Topological order: parents first; loops and missing parents are problems.
    let mut order: Vec<String> = Vec::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for start in v1s.keys() {
        let mut chain = Vec::new();
        let mut cur = Some(start.clone());
        while let Some(c) = cur {
            if done.contains(&c) {
                break;
            }
            if chain.contains(&c) {
                store.problem(graph.join(&c).join("json"), "parent chain loops");
                break;
            }
            let Some(v) = v1s.get(&c) else {
                store.problem(
                    graph
                        .join(chain.last().cloned().unwrap_or_default())
                        .join("json"),
                    format!("parent {c} is missing from graph/"),
                );
                break;
            };
            chain.push(c.clone());
            cur = v.parent.clone();
        }
        for c in chain.into_iter().rev() {
            if done.insert(c.clone()) {
                order.push(c);
            }
        }
    }

    // Per v1 id: (chain id, diff ids so far, history so far).
    let mut state: BTreeMap<String, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut image_of_v1: BTreeMap<String, String> = BTreeMap::new();
    for id in order {
        let Some(v) = v1s.get(&id) else { continue };
        let dir = graph.join(&id);
        let parent_state = match &v.parent {
            Some(p) => match state.get(p) {
                Some(s) => Some(s.clone()),
                None => {
                    store.problem(
                        dir.join("json"),
                        format!("parent {p} could not be read; image skipped"),
                    );
                    continue;
                }
            },
            None => None,
        };
        let parent_chain = parent_state.as_ref().map(|s| s.0.clone());
        let mut lowers = Vec::new();
        let mut p = v.parent.clone();
        while let Some(pid) = p {
            if lowers.contains(&pid) || lowers.len() > 1000 {
                break;
            }
            lowers.push(pid.clone());
            p = v1s.get(&pid).and_then(|x| x.parent.clone());
        }
        let files = if is_safe_id(&id) {
            layer_files(&store, &id, &lowers)
        } else {
            unreachable_files()
        };
        let ts_path = dir.join("tar-data.json.gz");
        let tar_split = if src.exists(&ts_path) {
            TarSplitRef::Gz {
                path: ts_path.clone(),
            }
        } else {
            TarSplitRef::Missing {
                reason: format!("{} is missing (layer from Docker < 1.8)", ts_path.display()),
            }
        };
        let size = read_small(src, &dir.join("layersize"))
            .ok()
            .and_then(|s| s.parse().ok());
        let mut layer = Layer {
            chain_id: format!("v1:{id}"),
            diff_id: None,
            parent: parent_chain.clone(),
            cache_id: id.clone(),
            size,
            tar_split,
            files,
            descriptor: None,
            meta_dir: dir.clone(),
        };
        let report = store.verify_layer(&layer);
        let diff = match (&report.actual, &report.error) {
            (Some(a), None)
                if report
                    .findings
                    .iter()
                    .all(|f| f.kind == salvor_model::FileFindingKind::LossyNameRecovered) =>
            {
                a.clone()
            }
            _ => {
                let why = report.error.clone().unwrap_or_else(|| {
                    report
                        .findings
                        .first()
                        .map(|f| format!("{}: {} ({})", f.path, f.kind, f.detail))
                        .unwrap_or_default()
                });
                store.problem(&ts_path, format!("layer cannot be rebuilt, so its diff id (as the 1.10 migration computed it) is unknown: {why}"));
                continue;
            }
        };
        let chain = chain_id(parent_chain.as_deref(), &diff);
        layer.chain_id = chain.clone();
        layer.diff_id = Some(diff.clone());
        if !matches!(layer.tar_split, TarSplitRef::Gz { .. }) && diff == EMPTY_LAYER.as_str() {
            layer.tar_split = TarSplitRef::EmptyLayer;
        }
        store.layers.insert(chain.clone(), layer);

        let mut diff_ids = parent_state
            .as_ref()
            .map(|s| s.1.clone())
            .unwrap_or_default();
        diff_ids.push(diff);
        let mut history = parent_state.map(|s| s.2).unwrap_or_default();
        history.push(history_entry(&v.value));
        let config = match make_config(&v.json, &diff_ids, &history) {
            Ok(c) => c,
            Err(why) => {
                store.problem(dir.join("json"), why);
                continue;
            }
        };
        let image_id = sha256_hex(&config);
        image_of_v1.insert(id.clone(), image_id.clone());
        let parent_image = v.parent.as_ref().and_then(|p| image_of_v1.get(p)).cloned();
        store.images.push(Image {
            id: image_id,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            chain_ids: crate::digest::chain_ids(&diff_ids),
            diff_ids: diff_ids.clone(),
            created: v
                .value
                .get("created")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            parent: parent_image,
            last_updated: None,
            architecture: v
                .value
                .get("architecture")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            os: v
                .value
                .get("os")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            size: 0,
            config_path: None,
            config: Arc::new(config),
            synthesised: true,
            config_error: None,
        });
        state.insert(id, (chain, diff_ids, history));
    }
    for img in &mut store.images {
        img.size = img
            .chain_ids
            .iter()
            .filter_map(|c| store.layers.get(c))
            .filter_map(|l| l.size)
            .sum();
    }

    // Tags: repositories-<driver> = {"Repositories":{"name":{"tag":"<v1id>"}}}.
    let repos = root.join(format!("repositories-{driver_name}"));
    match read_json(src, &repos) {
        Ok(v) => {
            if let Some(map) = v.get("Repositories").and_then(|r| r.as_object()) {
                for (name, tags) in map {
                    let Some(tags) = tags.as_object() else {
                        continue;
                    };
                    for (tag, v1) in tags {
                        let target = v1.as_str().and_then(|s| image_of_v1.get(s));
                        let r = if tag.starts_with("sha256:") {
                            format!("{name}@{tag}")
                        } else {
                            format!("{name}:{tag}")
                        };
                        match (target, Reference::parse(&r).ok()) {
                            (Some(img_id), Some(parsed)) => {
                                if let Some(img) = store.images.iter_mut().find(|i| &i.id == img_id)
                                {
                                    if parsed.digest.is_some() {
                                        img.repo_digests.push(parsed.familiar());
                                    } else {
                                        img.repo_tags.push(parsed.familiar());
                                    }
                                }
                            }
                            _ => store.problem(
                                &repos,
                                format!("tag {r} points at {v1}, which is not a readable image"),
                            ),
                        }
                    }
                }
            }
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => store.problem(&repos, salvor_model::error_chain(&e)),
    }
    for img in &mut store.images {
        img.repo_tags.sort();
        img.repo_digests.sort();
    }
    store.images.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(store)
}

fn unreachable_files() -> crate::LayerFiles {
    crate::LayerFiles::Unavailable {
        reason: "unsafe layer id".into(),
    }
}

/// One history entry as `HistoryFromConfig(imageJSON, false)` marshals it.
fn history_entry(v: &serde_json::Value) -> String {
    let mut s = String::from("{");
    let created = v
        .get("created")
        .and_then(|c| c.as_str())
        .unwrap_or("0001-01-01T00:00:00Z");
    s.push_str("\"created\":");
    s.push_str(&GO_JSON.quote(created));
    for (key, val) in [
        (
            "author",
            v.get("author")
                .and_then(|a| a.as_str())
                .unwrap_or("")
                .to_string(),
        ),
        ("created_by", created_by(v)),
        (
            "comment",
            v.get("comment")
                .and_then(|a| a.as_str())
                .unwrap_or("")
                .to_string(),
        ),
    ] {
        if !val.is_empty() {
            s.push_str(&format!(",\"{key}\":{}", GO_JSON.quote(&val)));
        }
    }
    s.push('}');
    s
}

fn created_by(v: &serde_json::Value) -> String {
    v.pointer("/container_config/Cmd")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `MakeConfigFromV1Config`: keys sorted, v1 values kept as raw JSON.
fn make_config(v1_json: &[u8], diff_ids: &[String], history: &[String]) -> Result<Vec<u8>, String> {
    let map: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(v1_json).map_err(|e| format!("v1 JSON is not an object: {e}"))?;
    let mut out = String::from("{");
    let mut first = true;
    let rootfs = format!(
        "{{\"type\":\"layers\",\"diff_ids\":[{}]}}",
        diff_ids
            .iter()
            .map(|d| GO_JSON.quote(d))
            .collect::<Vec<_>>()
            .join(",")
    );
    let hist = format!("[{}]", history.join(","));
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in map {
        if ["id", "parent", "Size", "parent_id", "layer_id", "throwaway"].contains(&k.as_str()) {
            continue;
        }
        all.insert(k, compact(v.get()));
    }
    all.insert("rootfs".into(), rootfs);
    all.insert("history".into(), hist);
    for (k, v) in all {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&GO_JSON.quote(&k));
        out.push(':');
        out.push_str(&v);
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// Removes insignificant whitespace from JSON text (Go's `json.Compact`), HTML-escaping as
/// `json.Marshal` does for raw messages.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_str = false;
    let mut esc = false;
    for c in raw.chars() {
        if in_str {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                _ => out.push(c),
            }
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// The Go JSON string encoder of the configs rebuilt here: `\u0008`/`\u000c` for U+0008/U+000C,
/// as Go before 1.22 wrote them (the engines that migrated v1 stores were built with such Go).
const GO_JSON: GoJson = GoJson::PRE_GO_1_22;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn go_json_escapes_html() {
        assert_eq!(
            GO_JSON.quote("a<b>&\"\n"),
            "\"a\\u003cb\\u003e\\u0026\\\"\\n\""
        );
        assert_eq!(GO_JSON.quote("\u{8}\u{c}"), r#""\u0008\u000c""#);
        assert_eq!(
            compact("{ \"a\" : [1, 2], \"b\":\"x y<\" }"),
            "{\"a\":[1,2],\"b\":\"x y\\u003c\"}"
        );
    }
    #[test]
    fn config_drops_v1_keys_and_sorts() {
        let v1 = br#"{"id":"x","parent":"y","Size":3,"created":"2018-01-01T00:00:00Z","os":"linux","architecture":"amd64"}"#;
        let c = make_config(
            v1,
            &["sha256:aa".into()],
            &["{\"created\":\"2018-01-01T00:00:00Z\"}".into()],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            r#"{"architecture":"amd64","created":"2018-01-01T00:00:00Z","history":[{"created":"2018-01-01T00:00:00Z"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#
        );
    }
}
