//! `verify`: the shared check ([`salvor_forensic::verify::check`]) printed as a table with
//! two verdicts per layer, CONTENT (rebuild: CRC-64, sizes, diff_id) and METADATA (audit:
//! mode, owner, mtime, xattrs, links, planted files), and a line above the table when the
//! evidence looks like a copy that lost metadata. Exit 0 when every layer's content
//! verifies and no metadata finding is unexplained, 1 otherwise.

use std::collections::BTreeMap;
use std::io::{self, Write};

use salvor_forensic::audit::FindingClass;
use salvor_forensic::verify::{check, layers_of, verdicts, Check, LayerVerdict};

use rayon::prelude::*;
use salvor_docker::{Image, RebuildReport, Store};

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
        let img = crate::commands::target::image(store, "verify", q)?;
        if !out.iter().any(|i| i.id == img.id) {
            out.push(img);
        }
    }
    Ok(out)
}

/// Rebuilds the given layers in parallel with a progress bar; reports keyed by chain id
/// (the content half of the check alone).
#[allow(dead_code)]
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
    let records: Vec<salvor_model::ImageRecord> = images
        .iter()
        .map(|i| salvor_docker::model::image_record(i))
        .collect();
    let chains = layers_of(&records);
    let checked = check_with_progress(store, &chains, quiet);
    let verdicts = verdicts(store, &records, &checked);
    let all_ok = verdicts.iter().all(|v| v.ok) && checked.all_ok();
    if json_out {
        print_json(&checked.json(&verdicts, store))?;
    } else {
        let mut out = io::stdout().lock();
        if let Some(line) = checked.copy_line() {
            writeln!(out, "{}", printable(&line))?;
        }
        let mut t = Table::new(&[
            "LAYER (CHAIN ID)",
            "DIFF ID",
            "CONTENT",
            "METADATA",
            "FILES",
            "SIZE",
        ]);
        for c in &chains {
            let Some(v) = checked.layers.get(c) else {
                continue;
            };
            let r = &v.rebuild;
            t.row(vec![
                short_id(c),
                r.diff_id
                    .as_deref()
                    .map(short_id)
                    .unwrap_or_else(|| "?".into()),
                v.content_cell(),
                v.metadata_cell(),
                r.files.to_string(),
                human_size(r.bytes),
            ]);
        }
        t.print(&mut out)?;
        for c in &chains {
            let Some(v) = checked.layers.get(c) else {
                continue;
            };
            if v.content() == "verified" && v.metadata() != "findings" {
                continue; // clean, or every difference explained (the line above the table)
            }
            print_details(&mut out, c, v)?;
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

/// Runs the shared check ([`salvor_forensic::verify::check`]) with a progress bar.
pub fn check_with_progress(store: &Store, chains: &[String], quiet: bool) -> Check {
    let (pb, checked) = with_progress(store, chains, quiet, |p| check(store, chains, p));
    pb.finish_and_clear();
    checked
}

/// The findings of a layer that is not clean: content findings, then metadata findings;
/// copy artifacts are counted by kind (`--json` lists them).
pub(crate) fn print_details(out: &mut dyn Write, c: &str, v: &LayerVerdict) -> io::Result<()> {
    let r = &v.rebuild;
    writeln!(
        out,
        "\nlayer {c} (diff {}): content {}, metadata {}",
        r.diff_id.as_deref().unwrap_or("?"),
        v.content_cell(),
        v.metadata_cell()
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
    let Some(a) = &v.audit else { return Ok(()) };
    let mut shown = 0u64;
    let mut artifacts: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &a.findings {
        if f.class == FindingClass::CopyArtifact {
            *artifacts.entry(f.kind.as_str()).or_insert(0) += 1;
            continue;
        }
        shown += 1;
        if shown <= 50 {
            writeln!(
                out,
                "  {}: {} (expected {}, found {})",
                printable(&f.path),
                f.kind,
                printable(&f.expected),
                printable(&f.found)
            )?;
        }
    }
    let more = (shown + a.omitted).saturating_sub(50);
    if more > 0 {
        writeln!(out, "  … {more} more audit finding(s) (use --json for all)")?;
    }
    if !artifacts.is_empty() {
        let list: Vec<String> = artifacts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            out,
            "  copy-artifact (explained by the copy, not findings): {} (use --json for each path)",
            list.join(", ")
        )?;
    }
    for n in &a.notes {
        writeln!(out, "  audit note: {}", printable(n))?;
    }
    Ok(())
}
