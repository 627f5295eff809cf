//! `verify`: rebuild every layer and compare with its diff_id, and audit every layer's
//! files against its tar-split headers (`Store::audit_layer`: metadata, whiteouts, added
//! and missing files). A layer is verified only when both are clean; a layer whose stream
//! rebuilds but whose audit has findings is `tampered`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rayon::prelude::*;
use salvor_store::{AuditReport, Image, RebuildReport, RebuildStatus, Store};
use serde_json::json;

use crate::commands::EXIT_FINDINGS;
use crate::output::{human_size, print_json, printable, short_id, Table};
use crate::progress::bytes_bar;

/// Resolves the images named on the command line (all when none).
pub fn select_images<'a>(store: &'a Store, queries: &[String]) -> anyhow::Result<Vec<&'a Image>> {
    if queries.is_empty() {
        return Ok(store.images.iter().collect());
    }
    let mut out: Vec<&Image> = Vec::new();
    for q in queries {
        let img = store.find_image(q)?;
        if !out.iter().any(|i| i.id == img.id) {
            out.push(img);
        }
    }
    Ok(out)
}

/// A writer that discards bytes and advances a progress bar.
pub struct ProgressSink<'a>(pub &'a indicatif::ProgressBar);
impl Write for ProgressSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.inc(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Verifies the given layers in parallel; reports keyed by chain id.
pub fn verify_layers(
    store: &Store,
    chain_ids: &[String],
    quiet: bool,
) -> BTreeMap<String, RebuildReport> {
    let layers: Vec<_> = chain_ids
        .iter()
        .filter_map(|c| store.layers.get(c))
        .collect();
    let total: u64 = layers
        .par_iter()
        .map(|l| store.layer_tar_size(l).unwrap_or(0))
        .sum();
    let pb = bytes_bar(total, quiet, "verifying");
    let reports: Vec<RebuildReport> = layers
        .par_iter()
        .map(|l| {
            let mut sink = ProgressSink(&pb);
            match store.rebuild_layer(l, &mut sink) {
                Ok(r) => r,
                Err(e) => {
                    let mut r = store.verify_layer(l);
                    r.error.get_or_insert_with(|| e.to_string());
                    r
                }
            }
        })
        .collect();
    pb.finish_and_clear();
    reports
        .into_iter()
        .map(|r| (r.chain_id.clone(), r))
        .collect()
}

/// Audits the given layers in parallel (a metadata walk; no file content is read).
pub fn audit_layers(store: &Store, chain_ids: &[String]) -> BTreeMap<String, AuditReport> {
    let layers: Vec<_> = chain_ids
        .iter()
        .filter_map(|c| store.layers.get(c))
        .collect();
    layers
        .par_iter()
        .map(|l| (l.chain_id.clone(), store.audit_layer(l)))
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// The status shown for a layer: the rebuild's, or `tampered` when the stream rebuilt but
/// the audit found something.
fn layer_status(r: &RebuildReport, a: Option<&AuditReport>) -> &'static str {
    match r.status {
        RebuildStatus::Verified if a.is_some_and(|a| !a.is_clean()) => "tampered",
        RebuildStatus::Verified => "verified",
        RebuildStatus::Mismatch => "mismatch",
        RebuildStatus::Unrebuildable => "unrebuildable",
    }
}

pub fn verify(
    store: &Store,
    queries: &[String],
    json_out: bool,
    quiet: bool,
) -> anyhow::Result<u8> {
    let images = select_images(store, queries)?;
    let mut chains: Vec<String> = Vec::new();
    for img in &images {
        for c in &img.chain_ids {
            if !chains.contains(c) {
                chains.push(c.clone());
            }
        }
    }
    let (reports, audits) = rayon::join(
        || verify_layers(store, &chains, quiet),
        || audit_layers(store, &chains),
    );
    let mut all_ok = true;
    let mut image_rows = Vec::new();
    for img in &images {
        let mut problems = Vec::new();
        let id_ok = img.synthesised || salvor_store::sha256_hex(&img.config) == img.id;
        if !id_ok {
            problems.push("config bytes do not hash to the image id".to_string());
        }
        for c in &img.chain_ids {
            match reports.get(c) {
                Some(r) => match layer_status(r, audits.get(c)) {
                    "verified" => {}
                    "tampered" => problems.push(format!(
                        "layer {} was tampered with ({} audit finding(s))",
                        short_id(c),
                        audits
                            .get(c)
                            .map_or(0, |a| a.findings.len() as u64 + a.omitted)
                    )),
                    _ => problems.push(format!("layer {} did not verify", short_id(c))),
                },
                None => problems.push(format!("layer {} is not in the layer store", short_id(c))),
            }
        }
        if !problems.is_empty() {
            all_ok = false;
        }
        image_rows.push((img, problems));
    }
    if json_out {
        let v = json!({
            "ok": all_ok,
            "images": image_rows.iter().map(|(img, problems)| json!({
                "id": img.id,
                "tags": img.repo_tags,
                "ok": problems.is_empty(),
                "problems": problems,
                "chain_ids": img.chain_ids,
            })).collect::<Vec<_>>(),
            "layers": reports.values().map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
                if let Some(o) = v.as_object_mut() {
                    o.insert("status".into(), json!(layer_status(r, audits.get(&r.chain_id))));
                    o.insert("audit".into(), audits.get(&r.chain_id).map_or(json!(null), |a| json!({
                        "entries": a.entries,
                        "walked": a.walked,
                        "findings": a.findings,
                        "omitted": a.omitted,
                        "notes": a.notes,
                    })));
                }
                v
            }).collect::<Vec<_>>(),
            "metadata_problems": store.problems,
        });
        print_json(&v)?;
    } else {
        let mut out = io::stdout().lock();
        let mut t = Table::new(&["LAYER (CHAIN ID)", "DIFF ID", "STATUS", "FILES", "SIZE"]);
        for c in &chains {
            let Some(r) = reports.get(c) else { continue };
            let audit = audits.get(c);
            let n_audit = audit.map_or(0, |a| a.findings.len() as u64 + a.omitted);
            let status = match layer_status(r, audit) {
                "verified" => "verified".to_string(),
                "tampered" => format!("TAMPERED ({n_audit} finding(s))"),
                "mismatch" => format!(
                    "MISMATCH ({} finding(s))",
                    r.findings.len() as u64 + n_audit
                ),
                _ => "UNREBUILDABLE".to_string(),
            };
            t.row(vec![
                short_id(c),
                r.diff_id
                    .as_deref()
                    .map(short_id)
                    .unwrap_or_else(|| "?".into()),
                status,
                r.files.to_string(),
                human_size(r.bytes),
            ]);
        }
        t.print(&mut out)?;
        for c in &chains {
            let Some(r) = reports.get(c) else { continue };
            let audit = audits.get(c);
            if layer_status(r, audit) == "verified" {
                continue;
            }
            writeln!(
                out,
                "\nlayer {c} (diff {}):",
                r.diff_id.as_deref().unwrap_or("?")
            )?;
            if let Some(e) = &r.error {
                writeln!(out, "  error: {}", printable(e))?;
            }
            if let Some(a) = &r.actual {
                if Some(a) != r.diff_id.as_ref() {
                    writeln!(out, "  rebuilt stream hashes to {a}")?;
                }
            }
            for f in r.findings.iter().take(50) {
                writeln!(
                    out,
                    "  {}: {} ({})",
                    printable(&f.path),
                    f.kind,
                    printable(&f.detail)
                )?;
            }
            if r.findings.len() > 50 {
                writeln!(
                    out,
                    "  … {} more (use --json for all)",
                    r.findings.len() - 50
                )?;
            }
            if let Some(a) = audit {
                for f in a.findings.iter().take(50) {
                    writeln!(
                        out,
                        "  {}: {} (expected {}, found {})",
                        printable(&f.path),
                        f.kind,
                        printable(&f.expected),
                        printable(&f.found)
                    )?;
                }
                let more = (a.findings.len() as u64 + a.omitted).saturating_sub(50);
                if more > 0 {
                    writeln!(out, "  … {more} more audit finding(s) (use --json for all)")?;
                }
                for n in &a.notes {
                    writeln!(out, "  audit note: {}", printable(n))?;
                }
            }
        }
        writeln!(out)?;
        for (img, problems) in &image_rows {
            let name = img
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| "<none>".into());
            if problems.is_empty() {
                writeln!(
                    out,
                    "image {} {}: verified",
                    short_id(&img.id),
                    printable(&name)
                )?;
            } else {
                writeln!(
                    out,
                    "image {} {}: FAILED: {}",
                    short_id(&img.id),
                    printable(&name),
                    problems.join("; ")
                )?;
            }
        }
    }
    Ok(if all_ok { 0 } else { EXIT_FINDINGS })
}
