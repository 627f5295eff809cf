//! `docker images` and `docker history` rows, and the layer tree of `salvor tree`.

use std::collections::BTreeMap;

use salvor_docker::{reference::Reference, Image, Store};
use serde_json::Value;

/// One row of `docker images`: (repository, tag).
pub fn repo_tag_rows(img: &salvor_docker::Image) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = img
        .repo_tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok())
        .map(|r| (r.familiar_name(), r.tag.unwrap_or_else(|| "<none>".into())))
        .collect();
    if rows.is_empty() {
        let repo = img
            .repo_digests
            .iter()
            .filter_map(|d| Reference::parse(d).ok())
            .map(|r| r.familiar_name())
            .next();
        rows.push((repo.unwrap_or_else(|| "<none>".into()), "<none>".into()));
    }
    rows
}

/// The store's images newest first, like docker; ties by id for determinism.
pub fn newest_first(store: &Store) -> Vec<&Image> {
    let mut imgs: Vec<&Image> = store.images.iter().collect();
    imgs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    imgs
}

/// The layer tree: which images end at which layer, how many images use each layer, and
/// each layer's children (`None`: the roots, and layers whose parent is not in the store).
pub struct LayerTree<'a> {
    /// Top chain id → `short-id name` of the images ending there.
    pub tops: BTreeMap<&'a str, Vec<String>>,
    /// Chain id → how many images use the layer.
    pub users: BTreeMap<&'a str, usize>,
    /// Parent chain id → children's chain ids.
    pub children: BTreeMap<Option<&'a str>, Vec<&'a str>>,
}

/// The [`LayerTree`] of `store`.
pub fn layer_tree(store: &Store) -> LayerTree<'_> {
    // Which images end at which layer (top chain id).
    let mut tops: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut users: BTreeMap<&str, usize> = BTreeMap::new();
    for img in &store.images {
        if let Some(top) = img.chain_ids.last() {
            let name = img
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| "<none>".into());
            tops.entry(top.as_str()).or_default().push(format!(
                "{} {}",
                crate::format::short_id(&img.id),
                name
            ));
        }
        for c in &img.chain_ids {
            *users.entry(c.as_str()).or_default() += 1;
        }
    }
    let mut children: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for l in store.layers.values() {
        let parent = l
            .parent
            .as_deref()
            .filter(|p| store.layers.contains_key(*p));
        children
            .entry(parent)
            .or_default()
            .push(l.chain_id.as_str());
    }
    LayerTree {
        tops,
        users,
        children,
    }
}

/// One row of `docker history`, newest first.
pub struct HistoryRow {
    /// The image config's history entry.
    pub entry: Value,
    /// The size of its layer (0 for an empty layer).
    pub size: u64,
    /// An entry without a layer.
    pub empty: bool,
    /// The image id it carries: the newest entry the image's, the next its parent's, and
    /// so on up the parent chain for as long as those images exist; else `None`
    /// (`<missing>`).
    pub id: Option<String>,
}

/// `img`'s history, newest first.
pub fn history(store: &Store, img: &Image) -> Vec<HistoryRow> {
    let cfg = img.config_json().unwrap_or(Value::Null);
    let hist: Vec<Value> = cfg
        .get("history")
        .and_then(|h| h.as_array())
        .cloned()
        .unwrap_or_default();
    let layers = store.image_layers(img).unwrap_or_default();
    let mut layer_iter = layers.iter();
    // Newest first, like docker; the newest row carries the image id.
    let mut rows = Vec::new();
    for h in &hist {
        let empty = h
            .get("empty_layer")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layer_iter.next().and_then(|l| l.size).unwrap_or(0)
        };
        rows.push((h.clone(), size, empty));
    }
    rows.reverse();
    // As the engine: the newest entry carries the image id, the next its parent's id, and so
    // on up the parent chain for as long as those images exist; the rest are <missing>.
    let mut ids: Vec<Option<String>> = vec![None; rows.len()];
    let mut cur = Some(img);
    for slot in ids.iter_mut() {
        let Some(c) = cur else { break };
        *slot = Some(c.id.clone());
        cur = c
            .parent
            .as_deref()
            .and_then(|p| store.images.iter().find(|i| i.id == p));
    }
    rows.into_iter()
        .zip(ids)
        .map(|((entry, size, empty), id)| HistoryRow {
            entry,
            size,
            empty,
            id,
        })
        .collect()
}
