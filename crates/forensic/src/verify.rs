//! Layer verification shared by `salvor verify` and `salvor report`: every layer rebuilt
//! from the files on disk and its tar-split, in parallel ([`verify_layers`]), every layer
//! directory audited against the tar headers ([`audit_layers`]), a status per layer
//! ([`layer_status`]) and a verdict per image ([`image_verdicts`]).

use std::collections::BTreeMap;
use std::io::{self, Write};

use rayon::prelude::*;
use salvor_store::audit::AuditReport;
use salvor_store::{Image, RebuildReport, RebuildStatus, Store};
use serde::Serialize;

struct Counting<'a>(&'a (dyn Fn(u64) + Sync));
impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (self.0)(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Rebuilds the given layers in parallel; reports keyed by chain id. `progress` is called
/// with the number of bytes rebuilt as they are produced.
pub fn verify_layers(
    store: &Store,
    chain_ids: &[String],
    progress: &(dyn Fn(u64) + Sync),
) -> BTreeMap<String, RebuildReport> {
    let layers: Vec<_> = chain_ids
        .iter()
        .filter_map(|c| store.layers.get(c))
        .collect();
    let reports: Vec<RebuildReport> = layers
        .par_iter()
        .map(|l| {
            let mut sink = Counting(progress);
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
    reports
        .into_iter()
        .map(|r| (r.chain_id.clone(), r))
        .collect()
}

/// The verdict on one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageVerdict {
    pub id: String,
    pub tags: Vec<String>,
    pub ok: bool,
    pub problems: Vec<String>,
    pub chain_ids: Vec<String>,
}

/// Every layer of `images`, each once, in image order.
pub fn chains_of(images: &[&Image]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::new();
    for img in images {
        for c in &img.chain_ids {
            if !chains.contains(c) {
                chains.push(c.clone());
            }
        }
    }
    chains
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

/// Rebuilds and audits the given layers, both in parallel.
pub fn check_layers(
    store: &Store,
    chain_ids: &[String],
    progress: &(dyn Fn(u64) + Sync),
) -> (
    BTreeMap<String, RebuildReport>,
    BTreeMap<String, AuditReport>,
) {
    rayon::join(
        || verify_layers(store, chain_ids, progress),
        || audit_layers(store, chain_ids),
    )
}

/// A layer's status: the rebuild's (`verified`, `mismatch`, `unrebuildable`), or
/// `tampered` when the stream rebuilt but the audit found something.
pub fn layer_status(r: &RebuildReport, a: Option<&AuditReport>) -> &'static str {
    match r.status {
        RebuildStatus::Verified if a.is_some_and(|a| !a.is_clean()) => "tampered",
        RebuildStatus::Verified => "verified",
        RebuildStatus::Mismatch => "mismatch",
        RebuildStatus::Unrebuildable => "unrebuildable",
    }
}

/// Audit findings of a layer, counting those beyond the kept limit.
pub fn audit_count(a: Option<&AuditReport>) -> u64 {
    a.map_or(0, |a| a.findings.len() as u64 + a.omitted)
}

/// An image verifies when its config hashes to its id and every layer verified (rebuilt
/// byte-exact and audited clean).
pub fn image_verdicts(
    images: &[&Image],
    reports: &BTreeMap<String, RebuildReport>,
    audits: &BTreeMap<String, AuditReport>,
) -> Vec<ImageVerdict> {
    images
        .iter()
        .map(|img| {
            let mut problems = Vec::new();
            if !img.synthesised && salvor_store::sha256_hex(&img.config) != img.id {
                problems.push("config bytes do not hash to the image id".to_string());
            }
            for c in &img.chain_ids {
                let short = c.strip_prefix("sha256:").unwrap_or(c);
                let short = &short[..short.len().min(12)];
                match reports.get(c).map(|r| layer_status(r, audits.get(c))) {
                    Some("verified") => {}
                    Some("tampered") => problems.push(format!(
                        "layer {short} was tampered with ({} audit finding(s))",
                        audit_count(audits.get(c))
                    )),
                    Some(_) => problems.push(format!("layer {short} did not verify")),
                    None => problems.push(format!("layer {short} is not in the layer store")),
                }
            }
            ImageVerdict {
                id: img.id.clone(),
                tags: img.repo_tags.clone(),
                ok: problems.is_empty(),
                problems,
                chain_ids: img.chain_ids.clone(),
            }
        })
        .collect()
}

/// A layer's rebuild report as JSON, with its status and audit.
pub fn layer_json(r: &RebuildReport, a: Option<&AuditReport>) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert("status".into(), serde_json::json!(layer_status(r, a)));
        o.insert(
            "audit".into(),
            a.map_or(serde_json::Value::Null, |a| {
                serde_json::json!({
                    "entries": a.entries,
                    "walked": a.walked,
                    "findings": a.findings,
                    "omitted": a.omitted,
                    "notes": a.notes,
                })
            }),
        );
    }
    v
}
