//! `inspect`, `history`.

use std::io::Write;

use salvor_docker::{Image, Store};
use serde_json::json;

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
    let rows = salvor_core::images::history(store, img);
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                let (h, size, empty) = (&r.entry, &r.size, r.empty);
                json!({
                    "id": r.id,
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
    for r in &rows {
        let (h, size) = (&r.entry, &r.size);
        // The id the engine shows on this row: the image's, then its parents' as far as
        // the local chain goes (`<missing>` beyond it), like `docker history`.
        let id = match &r.id {
            Some(id) if no_trunc => id.clone(),
            Some(id) => short_id(id),
            None => "<missing>".into(),
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
