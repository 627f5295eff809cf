//! `verify`: rebuild every layer and compare with its diff_id, and audit every layer's
//! files against its tar-split headers (`Store::audit_layer`: metadata, whiteouts, added
//! and missing files). A layer is verified only when both are clean; a layer whose stream
//! rebuilds but whose audit has findings is `tampered`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use salvor_forensic::verify::{
    audit_count, chains_of, check_layers, image_verdicts, layer_json, layer_status,
};

use rayon::prelude::*;
use salvor_store::{Image, RebuildReport, Store};
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

/// Rebuilds the given layers in parallel with a progress bar; reports keyed by chain id.
pub fn verify_layers(
    store: &Store,
    chain_ids: &[String],
    quiet: bool,
) -> BTreeMap<String, RebuildReport> {
    let (pb, reports) = with_progress(store, chain_ids, quiet, |p| {
        salvor_forensic::verify::verify_layers(store, chain_ids, p)
    });
    pb.finish_and_clear();
    reports
}

/// Runs `f` with a byte-counting progress bar sized to the layers' tar lengths.
fn with_progress<T>(
    store: &Store,
    chain_ids: &[String],
    quiet: bool,
    f: impl FnOnce(&(dyn Fn(u64) + Sync)) -> T,
) -> (indicatif::ProgressBar, T) {
    let total: u64 = chain_ids
        .par_iter()
        .filter_map(|c| store.layers.get(c))
        .map(|l| store.layer_tar_size(l).unwrap_or(0))
        .sum();
    let pb = bytes_bar(total, quiet, "verifying");
    let inc = |n: u64| pb.inc(n);
    let out = f(&inc);
    (pb, out)
}

pub fn verify(
    store: &Store,
    queries: &[String],
    json_out: bool,
    quiet: bool,
) -> anyhow::Result<u8> {
    let images = select_images(store, queries)?;
    let chains = chains_of(&images);
    let (pb, (reports, audits)) =
        with_progress(store, &chains, quiet, |p| check_layers(store, &chains, p));
    pb.finish_and_clear();
    let verdicts = image_verdicts(&images, &reports, &audits);
    let all_ok = verdicts.iter().all(|v| v.ok);
    if json_out {
        let v = json!({
            "ok": all_ok,
            "images": verdicts,
            "layers": reports.values().map(|r| layer_json(r, audits.get(&r.chain_id))).collect::<Vec<_>>(),
            "metadata_problems": store.problems,
        });
        print_json(&v)?;
    } else {
        let mut out = io::stdout().lock();
        let mut t = Table::new(&["LAYER (CHAIN ID)", "DIFF ID", "STATUS", "FILES", "SIZE"]);
        for c in &chains {
            let Some(r) = reports.get(c) else { continue };
            let audit = audits.get(c);
            let n_audit = audit_count(audit);
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
                } else if r.as_found.is_some() {
                    writeln!(
                        out,
                        "  the stream rebuilt at the recorded sizes hashes to the diff id, but the disk holds other bytes"
                    )?;
                }
            }
            if let Some(f) = &r.as_found {
                writeln!(
                    out,
                    "  as found on disk the layer hashes to {f} (what extract --force exports)"
                )?;
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
        for v in &verdicts {
            let name = v.tags.first().cloned().unwrap_or_else(|| "<none>".into());
            if v.ok {
                writeln!(
                    out,
                    "image {} {}: verified",
                    short_id(&v.id),
                    printable(&name)
                )?;
            } else {
                writeln!(
                    out,
                    "image {} {}: FAILED: {}",
                    short_id(&v.id),
                    printable(&name),
                    v.problems.join("; ")
                )?;
            }
        }
    }
    Ok(if all_ok { 0 } else { EXIT_FINDINGS })
}
