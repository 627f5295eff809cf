//! `info`, `images`, `tree`.

use std::collections::BTreeMap;
use std::io::Write;

use salvor_core::info::ThinPoolInfo;
use salvor_docker::Store;
use serde_json::json;

use crate::output::{human_size, print_json, printable, short_id, short_time, Table};

/// `salvor info`.
pub fn info(store: &Store, json: bool) -> anyhow::Result<u8> {
    let v = salvor_core::info::info(store);
    if json {
        print_json(&v)?;
        return Ok(0);
    }
    let (thin_pool, from_damage, problems) = (&v.thin_pool, &v.problems_from_damage, &v.problems);
    let (containers, volumes) = (v.containers, v.volumes);
    let mut out = std::io::stdout().lock();
    for d in &store.damage {
        writeln!(
            out,
            "DAMAGED:         {} ({}): {}",
            printable(&d.file.display().to_string()),
            d.kind,
            printable(&format!("{}; {}", d.detail, d.lost))
        )?;
    }
    writeln!(out, "Evidence:        {}", store.source.describe())?;
    writeln!(out, "Data root:       /{}", store.root.display())?;
    writeln!(
        out,
        "Layout:          {}",
        match store.layout {
            salvor_docker::Layout::V2 => "v2 (image/<driver>/imagedb, layerdb; Docker >= 1.10)",
            salvor_docker::Layout::LegacyGraph =>
                "legacy graph/ (Docker < 1.10; ids computed as the 1.10 migration would)",
        }
    )?;
    writeln!(out, "Storage driver:  {}", store.driver)?;
    match &v.engine_version {
        Some(ev) => writeln!(
            out,
            "Engine version:  {} (from {})",
            printable(&ev.version),
            printable(&ev.found_by)
        )?,
        None => writeln!(
            out,
            "Engine version:  unknown (no package database, dockerd or layout marker tells; \
             export and commit write Engine >= 23's headers; --engine-version to say)"
        )?,
    }
    match thin_pool {
        Some(ThinPoolInfo::Read {
            origin,
            thin_devices,
            device_records,
            ..
        }) => writeln!(
            out,
            "Thin pool:       {} ({thin_devices} thin devices, {device_records} device records)",
            printable(origin),
        )?,
        Some(ThinPoolInfo::Unreadable { error }) => {
            writeln!(out, "Thin pool:       unreadable: {}", printable(error))?
        }
        None => {}
    }
    writeln!(out, "Images:          {}", store.images.len())?;
    writeln!(out, "Layers:          {}", store.layers.len())?;
    writeln!(out, "Containers:      {containers}")?;
    writeln!(out, "Volumes:         {volumes}")?;
    if !from_damage.is_empty() {
        writeln!(
            out,
            "From the damage: {} (missing or cut because the evidence is damaged, not findings about the host)",
            from_damage.len()
        )?;
        for p in from_damage {
            write_problem(&mut out, p)?;
        }
    }
    if problems.is_empty() {
        writeln!(out, "Problems:        none")?;
    } else {
        writeln!(out, "Problems:        {}", problems.len())?;
        for p in problems {
            write_problem(&mut out, p)?;
        }
    }
    Ok(0)
}

/// Docker's graphdriver images for `images --json`, newest first.
pub fn docker_image_json(store: &Store) -> Vec<serde_json::Value> {
    let imgs = salvor_core::images::newest_first(store);
    let parents: std::collections::BTreeSet<&str> =
        imgs.iter().filter_map(|i| i.parent.as_deref()).collect();
    let intermediate = |i: &salvor_docker::Image| {
        i.repo_tags.is_empty() && i.repo_digests.is_empty() && parents.contains(i.id.as_str())
    };
    let ident = salvor_model::ContainerStore::identity(store);
    let engine = ident.engine.as_str();
    imgs.iter()
        .map(|i| {
            json!({
                "engine": engine,
                "namespace": ident.namespace,
                "id": i.id,
                "tags": i.repo_tags,
                "digests": i.repo_digests,
                "diff_ids": i.diff_ids,
                "chain_ids": i.chain_ids,
                "parent": i.parent,
                "created": i.created,
                "size": i.size,
                "architecture": i.architecture,
                "os": i.os,
                "config_synthesised": i.synthesised,
                "config_error": i.config_error,
                "intermediate": intermediate(i),
            })
        })
        .collect()
}

/// Docker's graphdriver images as table cells, newest first: REPOSITORY TAG IMAGE ID
/// CREATED SIZE (`docker images` without -a: no untagged image that is another image's
/// parent).
pub fn docker_image_rows(store: &Store, no_trunc: bool, all: bool) -> Vec<Vec<String>> {
    let imgs = salvor_core::images::newest_first(store);
    let parents: std::collections::BTreeSet<&str> =
        imgs.iter().filter_map(|i| i.parent.as_deref()).collect();
    let intermediate = |i: &salvor_docker::Image| {
        i.repo_tags.is_empty() && i.repo_digests.is_empty() && parents.contains(i.id.as_str())
    };
    let mut rows = Vec::new();
    for img in imgs.iter().copied().filter(|i| all || !intermediate(i)) {
        let id = if no_trunc {
            img.id.clone()
        } else {
            short_id(&img.id)
        };
        for (repo, tag) in salvor_core::images::repo_tag_rows(img) {
            rows.push(vec![
                printable(&repo),
                printable(&tag),
                id.clone(),
                match &img.config_error {
                    // Listed, marked: `salvor info` names the file and the error.
                    Some(_) => "UNPARSEABLE CONFIG".to_string(),
                    None => short_time(img.created.as_deref()),
                },
                human_size(img.size),
            ]);
        }
    }
    rows
}

pub fn images(store: &Store, json: bool, no_trunc: bool, all: bool) -> anyhow::Result<u8> {
    if json {
        print_json(&docker_image_json(store))?;
        return Ok(0);
    }
    let ident = salvor_model::ContainerStore::identity(store);
    let engine = ident.engine.as_str();
    // NAMESPACE only where an engine has one (containerd's); Docker's graphdriver has none.
    let with_ns = ident.namespace.is_some();
    let mut head = vec!["ENGINE"];
    if with_ns {
        head.push("NAMESPACE");
    }
    head.extend(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    let mut t = Table::new(&head);
    for cells in docker_image_rows(store, no_trunc, all) {
        let mut row = vec![engine.to_string()];
        if with_ns {
            row.push(printable(ident.namespace.as_deref().unwrap_or("")));
        }
        row.extend(cells);
        t.row(row);
    }
    t.print(&mut std::io::stdout().lock())?;
    Ok(0)
}

pub fn tree(store: &Store, json: bool) -> anyhow::Result<u8> {
    let salvor_core::images::LayerTree {
        tops,
        users,
        children,
    } = salvor_core::images::layer_tree(store);
    if json {
        let v: Vec<_> = store
            .layers
            .values()
            .map(|l| {
                json!({
                    "chain_id": l.chain_id,
                    "diff_id": l.diff_id,
                    "parent": l.parent,
                    "cache_id": l.cache_id,
                    "size": l.size,
                    "files": l.files,
                    "tar_split": l.tar_split,
                    "images": tops.get(l.chain_id.as_str()).cloned().unwrap_or_default(),
                    "used_by_images": users.get(l.chain_id.as_str()).copied().unwrap_or(0),
                })
            })
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let ctx = TreeCtx {
        store,
        children: &children,
        tops: &tops,
        users: &users,
    };
    for root in children.get(&None).cloned().unwrap_or_default() {
        ctx.walk(&mut out, root, "", true, 0)?;
    }
    Ok(0)
}

/// What the tree printer needs to know about every layer.
struct TreeCtx<'a> {
    store: &'a Store,
    children: &'a BTreeMap<Option<&'a str>, Vec<&'a str>>,
    tops: &'a BTreeMap<&'a str, Vec<String>>,
    users: &'a BTreeMap<&'a str, usize>,
}

impl TreeCtx<'_> {
    fn walk(
        &self,
        out: &mut dyn Write,
        node: &str,
        prefix: &str,
        last: bool,
        depth: usize,
    ) -> std::io::Result<()> {
        let Some(l) = self.store.layers.get(node) else {
            return Ok(());
        };
        let branch = if depth == 0 {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let size = l.size.map(human_size).unwrap_or_else(|| "?".into());
        let mut line = format!(
            "{prefix}{branch}{} diff {} {} (used by {} image(s))",
            short_id(&l.chain_id),
            l.diff_id
                .as_deref()
                .map(short_id)
                .unwrap_or_else(|| "?".into()),
            size,
            self.users.get(node).copied().unwrap_or(0)
        );
        if let Some(t) = self.tops.get(node) {
            line.push_str(&format!("  <- {}", t.join(", ")));
        }
        writeln!(out, "{}", printable(&line))?;
        if depth > 256 {
            return Ok(());
        }
        let kids = self.children.get(&Some(node)).cloned().unwrap_or_default();
        let next_prefix = if depth == 0 {
            prefix.to_string()
        } else {
            format!("{prefix}{}", if last { "   " } else { "│  " })
        };
        for (i, k) in kids.iter().enumerate() {
            self.walk(out, k, &next_prefix, i + 1 == kids.len(), depth + 1)?;
        }
        Ok(())
    }
}

/// One problem line of `info`: `  /path: what`, or `  what` for a problem about the
/// evidence itself (no path inside it).
fn write_problem(out: &mut dyn Write, p: &salvor_docker::Problem) -> std::io::Result<()> {
    if p.path.as_os_str().is_empty() {
        return writeln!(out, "  {}", printable(&p.what));
    }
    writeln!(
        out,
        "  /{}: {}",
        printable(&p.path.display().to_string()),
        printable(&p.what)
    )
}
