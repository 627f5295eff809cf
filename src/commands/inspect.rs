//! `inspect`, `history`.

use std::io::Write;

use salvor_docker::{Image, LayerFiles, Store};
use serde_json::{json, Value};

use crate::output::{human_size, print_json, printable, short_id, short_time, Table};

pub fn inspect(store: &Store, img: &Image, raw_config: bool) -> anyhow::Result<u8> {
    if raw_config {
        std::io::stdout().lock().write_all(&img.config)?;
        return Ok(0);
    }
    let cfg = img.config_json().unwrap_or(Value::Null);
    let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
    let s = |k: &str| {
        cfg.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    // As the engine's inspect: the config's comment, else the last history entry's.
    let mut comment = s("comment");
    if comment.is_empty() {
        if let Some(c) = cfg
            .get("history")
            .and_then(|h| h.as_array())
            .and_then(|h| h.last())
            .and_then(|h| h.get("comment"))
            .and_then(|c| c.as_str())
        {
            comment = c.to_string();
        }
    }
    let graph_driver = match store
        .image_layers(img)
        .ok()
        .and_then(|ls| ls.last().map(|l| l.files.clone()))
    {
        Some(LayerFiles::Overlay { diff, lowers }) => json!({
            "Data": {
                "LowerDir": if lowers.is_empty() { Value::Null } else {
                    Value::String(lowers.iter().map(|p| format!("/{}", p.display())).collect::<Vec<_>>().join(":"))
                },
                "UpperDir": format!("/{}", diff.display()),
            },
            "Name": store.driver.name(),
        }),
        Some(other) => json!({ "Data": other, "Name": store.driver.name() }),
        None => json!({ "Data": null, "Name": store.driver.name() }),
    };
    let v = json!([{
        "Id": img.id,
        "RepoTags": img.repo_tags,
        "RepoDigests": img.repo_digests,
        "Parent": img.parent.clone().unwrap_or_default(),
        "Comment": comment,
        "Created": s("created"),
        "Container": s("container"),
        "ContainerConfig": get("container_config"),
        "DockerVersion": s("docker_version"),
        "Author": s("author"),
        "Config": get("config"),
        "Architecture": s("architecture"),
        "Variant": cfg.get("variant").cloned(),
        "Os": s("os"),
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": graph_driver,
        "RootFS": { "Type": "layers", "Layers": img.diff_ids },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        "Salvor": {
            "ConfigSynthesised": img.synthesised,
            "ConfigPath": img.config_path.as_ref().map(|p| format!("/{}", p.display())),
            "ConfigError": img.config_error,
            "ChainIDs": img.chain_ids,
        },
    }]);
    print_json(&v)?;
    Ok(0)
}

pub fn history(store: &Store, query: &str, json_out: bool, no_trunc: bool) -> anyhow::Result<u8> {
    let img = crate::commands::target::image(store, "history", query)?;
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
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, (h, size, empty))| {
                json!({
                    "id": ids[i],
                    "created": h.get("created"),
                    "created_by": h.get("created_by"),
                    "author": h.get("author"),
                    "comment": h.get("comment"),
                    "empty_layer": empty,
                    "size": size,
                    "size_human": human_size(*size),
                })
            })
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for (i, (h, size, _)) in rows.iter().enumerate() {
        let id = if i == 0 {
            if no_trunc {
                img.id.clone()
            } else {
                short_id(&img.id)
            }
        } else {
            "<missing>".into()
        };
        let mut by = h
            .get("created_by")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .replace('\t', " ");
        if !no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        t.row(vec![
            id,
            short_time(h.get("created").and_then(|v| v.as_str())),
            printable(&by),
            human_size(*size),
            printable(h.get("comment").and_then(|v| v.as_str()).unwrap_or("")),
        ]);
    }
    t.print(&mut std::io::stdout().lock())?;
    Ok(0)
}
