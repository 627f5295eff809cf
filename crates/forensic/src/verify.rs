//! Layer verification shared by `salvor report`: every layer rebuilt from the files on disk
//! and its tar-split, in parallel ([`verify_layers`]), and a verdict per image
//! ([`image_verdicts`]). The same machinery as `salvor verify` ([`Store::rebuild_layer`]).

use std::collections::BTreeMap;
use std::io::{self, Write};

use rayon::prelude::*;
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

/// An image verifies when its config hashes to its id and every layer verified.
pub fn image_verdicts(
    images: &[&Image],
    reports: &BTreeMap<String, RebuildReport>,
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
                match reports.get(c) {
                    Some(r) if r.status == RebuildStatus::Verified => {}
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
