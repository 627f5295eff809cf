//! `extract`: write images as an archive that `docker load`, skopeo and umoci accept.
//!
//! Layers are rebuilt from the evidence while they are written (never held in memory); each
//! one is verified against its diff_id as it passes. Without `--force`, a layer that does not
//! verify stops the export (no partial output is left) with an error naming the layer and the
//! first file that differs. With `--force`, all layers are verified first and those that do
//! not verify are exported as found, under the digest of what was actually rebuilt.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use salvor_export::{
    ExportOptions, Format, ImageToExport, LayerError, LayerRef, LayerSource, Output,
};
use salvor_store::{Layer, RebuildReport, RebuildStatus, Store};
use serde_json::json;

use crate::commands::verify::verify_layers;
use crate::commands::EXIT_FINDINGS;
use crate::output::{human_size, print_json, short_id};
use crate::progress::bytes_bar;
use crate::FormatArg;

/// One line saying why a layer did not verify, naming the first file that differs.
pub fn why_not_verified(r: &RebuildReport) -> String {
    let mut s = String::new();
    if let Some(e) = &r.error {
        s.push_str(e);
    } else if let Some(a) = &r.actual {
        if Some(a) != r.diff_id.as_ref() {
            s.push_str(&format!("rebuilt stream hashes to {a}"));
        }
    }
    if let Some(f) = r.findings.iter().find(|f| f.kind != "lossy-name-recovered") {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "first finding: {}: {} ({})",
            f.path, f.kind, f.detail
        ));
        if r.findings.len() > 1 {
            s.push_str(&format!(
                ", {} finding(s) in all (`salvor verify` lists them)",
                r.findings.len()
            ));
        }
    }
    s
}

struct StoreLayers<'a> {
    store: &'a Store,
    by_digest: BTreeMap<String, &'a Layer>,
    force: bool,
    pb: indicatif::ProgressBar,
}

struct ProgressWriter<'a, 'b> {
    out: &'a mut dyn Write,
    pb: &'b indicatif::ProgressBar,
}

impl Write for ProgressWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.pb.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl LayerSource for StoreLayers<'_> {
    /// `Store::rebuild_layer` hashes exactly the bytes it writes.
    fn digests_what_it_writes(&self) -> bool {
        true
    }

    fn write_layer(&self, digest: &str, out: &mut dyn Write) -> Result<String, LayerError> {
        let layer = self
            .by_digest
            .get(digest)
            .ok_or_else(|| LayerError::NotFound(digest.to_string()))?;
        let mut w = ProgressWriter { out, pb: &self.pb };
        let report = self.store.rebuild_layer(layer, &mut w)?;
        if report.status != RebuildStatus::Verified && !self.force {
            return Err(LayerError::Other(format!(
                "does not verify (chain id {}): {}",
                layer.chain_id,
                why_not_verified(&report)
            )));
        }
        match &report.actual {
            Some(a) => Ok(a.clone()),
            None => Err(LayerError::Other(why_not_verified(&report))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn extract(
    store: &Store,
    queries: &[String],
    output: &Path,
    format: FormatArg,
    dir: bool,
    force: bool,
    json_out: bool,
    quiet: bool,
) -> anyhow::Result<u8> {
    // As `docker save`: each query brings its image(s) and the tags it names.
    let mut selected: Vec<(&salvor_store::Image, Vec<String>)> = Vec::new();
    for q in queries {
        for (img, tags) in store.select_for_save(q)? {
            match selected.iter_mut().find(|(i, _)| i.id == img.id) {
                Some((_, have)) => {
                    for t in tags {
                        if !have.contains(&t) {
                            have.push(t);
                        }
                    }
                }
                None => selected.push((img, tags)),
            }
        }
    }
    let images: Vec<&salvor_store::Image> = selected.iter().map(|(i, _)| *i).collect();
    // With --force, find out first which layers do not verify and what they hash to.
    let mut forced: BTreeMap<String, RebuildReport> = BTreeMap::new();
    if force {
        let chains: Vec<String> = images
            .iter()
            .flat_map(|i| i.chain_ids.iter().cloned())
            .collect();
        for (chain, r) in verify_layers(store, &chains, quiet) {
            if r.status != RebuildStatus::Verified {
                forced.insert(chain, r);
            }
        }
    }
    let mut to_export = Vec::new();
    let mut by_digest: BTreeMap<String, &Layer> = BTreeMap::new();
    let mut total = 0u64;
    for (img, tags) in &selected {
        let layers = store.image_layers(img)?;
        let mut refs = Vec::new();
        for l in layers {
            let diff_id = l
                .diff_id
                .clone()
                .with_context(|| format!("layer {} has no diff id", l.chain_id))?;
            let (blob, size) = match forced.get(&l.chain_id) {
                Some(r) => {
                    let actual = r.actual.clone().with_context(|| {
                        format!(
                            "layer {} cannot be rebuilt at all, even with --force: {}",
                            l.chain_id,
                            why_not_verified(r)
                        )
                    })?;
                    (actual, r.bytes)
                }
                None => (diff_id.clone(), store.layer_tar_size(l)?),
            };
            if by_digest.insert(blob.clone(), l).is_none() {
                total += size;
            }
            refs.push(LayerRef {
                diff_id,
                size,
                descriptor: l.descriptor.clone(),
                blob_digest: (blob != *l.diff_id.as_ref().unwrap_or(&blob)).then(|| blob.clone()),
            });
        }
        to_export.push(ImageToExport {
            id: img.id.clone(),
            config: img.config.as_ref().clone(),
            repo_tags: tags.clone(),
            layers: refs,
            parent: img.parent.clone(),
        });
    }
    let opts = ExportOptions {
        format: match format {
            FormatArg::Docker => Format::Docker,
            FormatArg::DockerLegacy => Format::DockerLegacy,
            FormatArg::Oci => Format::Oci,
        },
        output: if dir {
            Output::Dir(output.to_path_buf())
        } else {
            Output::Tar(output.to_path_buf())
        },
        parallel: true,
    };
    let pb = bytes_bar(total, quiet, "extracting");
    let source = StoreLayers {
        store,
        by_digest,
        force,
        pb: pb.clone(),
    };
    let report = salvor_export::export(&to_export, &source, &opts)
        .with_context(|| format!("cannot write {}", output.display()))?;
    pb.finish_and_clear();
    let synthesised: Vec<&str> = images
        .iter()
        .filter(|i| i.synthesised)
        .map(|i| i.id.as_str())
        .collect();
    if json_out {
        print_json(&json!({
            "output": output,
            "format": format!("{format:?}"),
            "images": images.iter().map(|i| json!({"id": i.id, "tags": i.repo_tags})).collect::<Vec<_>>(),
            "archive_sha256": report.archive_sha256,
            "bytes": report.bytes,
            "layers_written": report.layers_written,
            "forced_layers": forced.values().collect::<Vec<_>>(),
            "synthesised_configs": synthesised,
            "files": report.files.iter().map(|(p, h, s)| json!({"path": p, "sha256": h, "size": s})).collect::<Vec<_>>(),
        }))?;
    } else if !quiet {
        let mut err = io::stderr().lock();
        writeln!(
            err,
            "wrote {} ({}, {} image(s), {} layer(s), all verified{})",
            output.display(),
            human_size(report.bytes),
            images.len(),
            report.layers_written,
            if forced.is_empty() {
                ""
            } else {
                " except those listed below"
            }
        )?;
        if let Some(h) = &report.archive_sha256 {
            writeln!(err, "archive sha256:{h}")?;
        }
        for (chain, r) in &forced {
            writeln!(
                err,
                "FORCED: layer {} exported as found: {}",
                short_id(chain),
                why_not_verified(r)
            )?;
        }
        if !synthesised.is_empty() {
            writeln!(err, "note: config(s) {} were synthesised from pre-1.10 metadata as Docker 1.10's migration would", synthesised.join(", "))?;
        }
    }
    Ok(if forced.is_empty() { 0 } else { EXIT_FINDINGS })
}
