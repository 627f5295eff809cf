//! `inspect`, `history`.

use std::io::Write;

use salvor_docker::{Image, Store};
use serde_json::{json, Value};

use crate::output::{human_size, print_json, printable, short_id, short_time, Table};

pub fn inspect(store: &Store, img: &Image, raw_config: bool) -> anyhow::Result<u8> {
    if raw_config {
        std::io::stdout().lock().write_all(&img.config)?;
        return Ok(0);
    }
    let v = json!([salvor_core::inspect::image(store, img)]);
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
