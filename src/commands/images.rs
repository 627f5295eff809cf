//! `info`, `images`, `tree`.

use std::collections::BTreeMap;
use std::io::Write;

use salvor_docker::{reference::Reference, Store};
use serde_json::json;

use crate::output::{human_size, print_json, printable, short_id, short_time, Table};

pub fn info(store: &Store, json: bool) -> anyhow::Result<u8> {
    let (containers, container_problems) = store.containers();
    let mut problems = store.problems.clone();
    problems.extend(container_problems);
    problems.sort();
    problems.dedup();
    // What the evidence reader left out (tar members named with `..`, hardlinks to members
    // not in the archive, a damaged archive …) is a problem too, about the archive itself
    // (no path inside it).
    problems.extend(
        store
            .source
            .warnings()
            .iter()
            .map(|w| salvor_docker::Problem {
                path: std::path::PathBuf::new(),
                what: format!("evidence archive: {w}"),
            }),
    );
    // Problems that follow from damage of the evidence are not findings about the host.
    let (problems, from_damage) = store.split_problems(problems);
    let (volumes, _) = store.volumes(&containers);
    let thin_pool =
        (store.driver == salvor_docker::Driver::Devicemapper).then(|| match store.devicemapper() {
            Ok(dm) => json!({
                "origin": dm.origin,
                "data_block_size": dm.pool.data_block_size(),
                "thin_devices": dm.pool.devices().len(),
                "device_records": dm.devices.len(),
                "warnings": dm.warnings,
            }),
            Err(e) => json!({ "error": e }),
        });
    let v = json!({
        "evidence": {
            "description": store.source.describe(),
            "damaged": !store.damage.is_empty(),
            "damage": store.damage,
        },
        "data_root": format!("/{}", store.root.display()),
        "layout": store.layout,
        "driver": store.driver,
        "thin_pool": thin_pool,
        "images": store.images.len(),
        "layers": store.layers.len(),
        "containers": containers.len(),
        "volumes": volumes.len(),
        "problems": problems,
        "problems_from_damage": from_damage,
    });
    if json {
        print_json(&v)?;
        return Ok(0);
    }
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
    if let Some(tp) = &thin_pool {
        match (tp["origin"].as_str(), tp["error"].as_str()) {
            (Some(o), _) => writeln!(
                out,
                "Thin pool:       {} ({} thin devices, {} device records)",
                printable(o),
                tp["thin_devices"],
                tp["device_records"]
            )?,
            (None, e) => writeln!(
                out,
                "Thin pool:       unreadable: {}",
                printable(e.unwrap_or(""))
            )?,
        }
    }
    writeln!(out, "Images:          {}", store.images.len())?;
    writeln!(out, "Layers:          {}", store.layers.len())?;
    writeln!(out, "Containers:      {}", containers.len())?;
    writeln!(out, "Volumes:         {}", volumes.len())?;
    if !from_damage.is_empty() {
        writeln!(
            out,
            "From the damage: {} (missing or cut because the evidence is damaged, not findings about the host)",
            from_damage.len()
        )?;
        for p in &from_damage {
            write_problem(&mut out, p)?;
        }
    }
    if problems.is_empty() {
        writeln!(out, "Problems:        none")?;
    } else {
        writeln!(out, "Problems:        {}", problems.len())?;
        for p in &problems {
            write_problem(&mut out, p)?;
        }
    }
    Ok(0)
}

/// One row of `docker images`: (repository, tag).
fn repo_tag_rows(img: &salvor_docker::Image) -> Vec<(String, String)> {
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

pub fn images(store: &Store, json: bool, no_trunc: bool) -> anyhow::Result<u8> {
    let mut imgs: Vec<&salvor_docker::Image> = store.images.iter().collect();
    // Newest first, like docker; ties by id for determinism.
    imgs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    if json {
        let v: Vec<_> = imgs
            .iter()
            .map(|i| {
                json!({
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
                })
            })
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    for img in imgs {
        let id = if no_trunc {
            img.id.clone()
        } else {
            short_id(&img.id)
        };
        for (repo, tag) in repo_tag_rows(img) {
            t.row(vec![
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
    t.print(&mut std::io::stdout().lock())?;
    Ok(0)
}

pub fn tree(store: &Store, json: bool) -> anyhow::Result<u8> {
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
            tops.entry(top.as_str())
                .or_default()
                .push(format!("{} {}", short_id(&img.id), name));
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
