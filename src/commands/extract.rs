//! `extract`: write images as an archive that `docker load`, skopeo and umoci accept.
//!
//! Layers are rebuilt from the evidence while they are written (never held in memory); each
//! one is verified against its diff_id as it passes. Without `--force`, a layer that does not
//! verify stops the export (no partial output is left) with an error naming the layer and the
//! first file that differs. With `--force`, all layers are verified first and those that do
//! not verify are exported *as found* (`Store::spool_as_found`: the files as the disk holds
//! them now, spooled to a temporary file); the layer's new digest replaces its diff_id in the
//! image config (so the image id changes and `docker load` accepts it), and the archive, the
//! output and `--json` mark it FORCED with the original diff_id beside the new one.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use salvor_docker::{Layer, RebuildReport, RebuildStatus, Store};
use salvor_export::{ExportError, Format, ImageToExport, LayerError, LayerRef, LayerSource};
use serde_json::json;

use crate::commands::verify::{check_with_progress, verify_layers};
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
        } else if let Some(f) = &r.as_found {
            s.push_str(&format!(
                "the stream rebuilt at the recorded sizes hashes to the diff_id, but the layer as the disk holds it differs (as found: {f})"
            ));
        }
    }
    if let Some(f) = r
        .findings
        .iter()
        .find(|f| f.kind != salvor_docker::FileFindingKind::LossyNameRecovered)
    {
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
    /// Layers made by an offline commit, spooled to temporary files: digest → file.
    committed: BTreeMap<String, &'a Path>,
    force: bool,
    pb: indicatif::ProgressBar,
    /// Each rebuilt layer's report, keyed by chain id: the content part of the verdict,
    /// from the very stream that went into the archive.
    reports: std::sync::Mutex<BTreeMap<String, RebuildReport>>,
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
        if let Some(path) = self.committed.get(digest) {
            let mut w =
                salvor_docker::rebuild::HashingWriter::new(ProgressWriter { out, pb: &self.pb });
            io::copy(&mut std::fs::File::open(path)?, &mut w)?;
            return Ok(w.finish().0);
        }
        let layer = self
            .by_digest
            .get(digest)
            .ok_or_else(|| LayerError::NotFound(digest.to_string()))?;
        let mut w = ProgressWriter { out, pb: &self.pb };
        let report = self.store.rebuild_layer(layer, &mut w)?;
        if let Ok(mut m) = self.reports.lock() {
            m.insert(layer.chain_id.clone(), report.clone());
        }
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

/// How `extract` writes.
pub struct ExtractOpts<'a> {
    pub output: &'a Path,
    pub format: FormatArg,
    pub dir: bool,
    pub force: bool,
    pub json: bool,
    pub quiet: bool,
    /// For committed containers.
    pub tag: Option<&'a str>,
    pub names: salvor_whiteout::TarNames,
    /// Where outputs may go (the evidence guard, `--overwrite`).
    pub outputs: &'a salvor_sink::OutputPolicy,
}

/// A container committed offline: its image, and its new layer spooled to a file.
struct Committed {
    image: ImageToExport,
    layer: Option<(String, u64, tempfile::TempPath)>,
    container: String,
}

pub fn extract(store: &Store, queries: &[String], o: &ExtractOpts) -> anyhow::Result<u8> {
    let (output, format, dir, force, json_out, quiet) =
        (o.output, o.format, o.dir, o.force, o.json, o.quiet);
    // Refused before any work (and before a commit spools beside it).
    if dir {
        o.outputs.check_dir(output)?;
    } else {
        o.outputs.check_file(output)?;
    }
    // As `docker save`: each query brings its image(s) and the tags it names. A query that
    // names no image but a container is committed first, like `docker commit`.
    let mut selected: Vec<(&salvor_docker::Image, Vec<String>)> = Vec::new();
    let mut committed: Vec<Committed> = Vec::new();
    for q in queries {
        // The one resolver: an image first (docker save), else a container (docker commit).
        let r = store.resolve_for_save(q).context("extract")?;
        if let Some(n) = r.note(q) {
            eprintln!("salvor: warning: extract: {}", crate::output::printable(&n));
        }
        let found = match r.target {
            salvor_docker::SaveTarget::Images(f) => f,
            salvor_docker::SaveTarget::Container(c) => {
                committed.push(
                    commit(store, &c, o).with_context(|| format!("cannot commit container {q}"))?,
                );
                continue;
            }
        };
        for (img, tags) in found {
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
    // A committed container needs its image's layers too.
    let mut parents: Vec<&salvor_docker::Image> = Vec::new();
    for c in &committed {
        if let Some(p) = c
            .image
            .parent
            .as_deref()
            .and_then(|p| store.find_image(p).ok())
        {
            parents.push(p);
        }
    }
    let images: Vec<&salvor_docker::Image> = selected
        .iter()
        .map(|(i, _)| *i)
        .chain(parents.iter().copied())
        .collect();
    // The shared check first (the verdict `verify` gives): content decides what may be
    // exported; metadata findings are reported but do not block the export.
    // Without --force the content part comes from the export itself (each layer is
    // hashed as it is written: one read of the evidence), the metadata part from audits
    // run beside it; with --force the whole check runs first, to know what to force.
    let chains = salvor_forensic::verify::chains_of(&images);
    let prechecked = force.then(|| check_with_progress(store, &chains, quiet));
    // With --force, the layers that do not verify and what they hash to.
    let mut forced: BTreeMap<String, RebuildReport> = BTreeMap::new();
    if let Some(checked) = &prechecked {
        for (chain, v) in &checked.layers {
            let mut r = v.rebuild.clone();
            if r.status != RebuildStatus::Verified {
                forced.insert(chain.clone(), r);
                continue;
            }
            // Content verifies; the layer as the disk holds it may still differ (mode,
            // owner, whiteouts, planted files): then it is exported as found too.
            if let Some(found) = store
                .layers
                .get(chain)
                .and_then(|l| store.as_found_digest(l).ok())
            {
                if Some(&found) != r.diff_id.as_ref() {
                    r.as_found = Some(found);
                    forced.insert(chain.clone(), r);
                }
            }
        }
    }
    // Each forced layer as found, spooled beside the output (or in $TMPDIR for stdout).
    let mut spooled: BTreeMap<String, salvor_docker::SpooledLayer> = BTreeMap::new();
    for (chain, r) in &forced {
        let layer = store
            .layers
            .get(chain)
            .with_context(|| format!("layer {chain} is not in the store"))?;
        if r.status == RebuildStatus::Unrebuildable && r.actual.is_none() {
            anyhow::bail!(
                "layer {} cannot be rebuilt at all, even with --force: {}",
                chain,
                why_not_verified(r)
            );
        }
        spooled.insert(
            chain.clone(),
            store.spool_as_found(layer, &o.names, &spool_dir(o.output))?,
        );
    }
    let mut to_export = Vec::new();
    let mut by_digest: BTreeMap<String, &Layer> = BTreeMap::new();
    let mut total = 0u64;
    let mut spool_paths: BTreeMap<String, &Path> = BTreeMap::new();
    let mut layer_refs = |img: &salvor_docker::Image| -> anyhow::Result<Vec<LayerRef>> {
        let mut refs = Vec::new();
        for l in store.image_layers(img)? {
            let diff_id = l
                .diff_id
                .clone()
                .with_context(|| format!("layer {} has no diff id", l.chain_id))?;
            if let Some(sp) = spooled.get(&l.chain_id) {
                if spool_paths
                    .insert(sp.digest.clone(), sp.path.as_ref())
                    .is_none()
                {
                    total += sp.size;
                }
                refs.push(LayerRef {
                    diff_id: sp.digest.clone(),
                    size: sp.size,
                    descriptor: None,
                    forced_from: Some(diff_id),
                });
                continue;
            }
            let size = store.layer_tar_size(l)?;
            if by_digest.insert(diff_id.clone(), l).is_none() {
                total += size;
            }
            refs.push(LayerRef {
                diff_id,
                size,
                descriptor: l.descriptor.clone(),
                forced_from: None,
            });
        }
        Ok(refs)
    };
    for (img, tags) in &selected {
        to_export.push(ImageToExport {
            id: img.id.clone(),
            config: img.config.as_ref().clone(),
            repo_tags: tags.clone(),
            layers: layer_refs(img)?,
            parent: img.parent.clone(),
        });
    }
    let mut committed_layers: BTreeMap<String, &Path> = BTreeMap::new();
    for c in &committed {
        let mut image = c.image.clone();
        let mut refs = match c
            .image
            .parent
            .as_deref()
            .and_then(|p| store.find_image(p).ok())
        {
            Some(p) => layer_refs(p)?,
            None => Vec::new(),
        };
        if let Some((digest, size, path)) = &c.layer {
            refs.push(LayerRef {
                diff_id: digest.clone(),
                size: *size,
                descriptor: None,
                forced_from: None,
            });
            committed_layers.insert(digest.clone(), path.as_ref());
        }
        image.layers = refs;
        to_export.push(image);
    }
    spool_paths.extend(committed_layers);
    // A forced layer's new digest replaces its diff_id in every config that names it.
    let renamed = claim_forced_layers(&mut to_export)?;
    let format_out = match format {
        FormatArg::Docker => Format::Docker,
        FormatArg::DockerLegacy => Format::DockerLegacy,
        FormatArg::Oci => Format::Oci,
    };
    let pb = bytes_bar(total, quiet, "extracting");
    let source = StoreLayers {
        store,
        by_digest,
        committed: spool_paths,
        force,
        pb: pb.clone(),
        reports: Default::default(),
    };
    // A write error is the output's (a full disk), whatever the layer source made of it.
    let failed = |e: ExportError| match e {
        ExportError::Sink(s) => anyhow::Error::from(s),
        e => anyhow::Error::from(e).context(format!("cannot write {}", output.display())),
    };
    let write = || -> anyhow::Result<_> {
        Ok(if dir {
            let sink = o.outputs.dir(output)?;
            let r = salvor_export::export_dir_into(&to_export, &source, format_out, true, &sink)
                .map_err(failed)?;
            sink.commit()?;
            r
        } else {
            let mut sink = o.outputs.file(output)?;
            let res =
                salvor_export::export_tar_to(&to_export, &source, format_out, &mut sink, output);
            if let Some(e) = sink.write_error() {
                return Err(e.into());
            }
            let r = res.map_err(failed)?;
            sink.commit()?;
            r
        })
    };
    let (report, checked) = std::thread::scope(|s| -> anyhow::Result<_> {
        let audits = prechecked
            .is_none()
            .then(|| s.spawn(|| salvor_forensic::verify::audit_store(store)));
        let report = write()?;
        let checked = match (prechecked, audits) {
            (Some(c), _) => c,
            (None, Some(h)) => {
                let audits = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("the audit of the layers failed"))?;
                let mut reports = source.reports.lock().map(|m| m.clone()).unwrap_or_default();
                // A chain whose diff_id another chain already wrote: rebuilt here.
                let missing: Vec<String> = chains
                    .iter()
                    .filter(|c| !reports.contains_key(*c))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    reports.extend(verify_layers(store, &missing, true));
                }
                salvor_forensic::verify::assemble(&chains, reports, audits)
            }
            (None, None) => salvor_forensic::verify::Check::default(),
        };
        Ok((report, checked))
    })?;
    pb.finish_and_clear();
    if !quiet && !json_out {
        for c in &committed {
            eprintln!(
                "committed container {} as image {}{} ({})",
                c.container,
                short_id(&c.image.id),
                c.image
                    .repo_tags
                    .first()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default(),
                match &c.layer {
                    Some((d, _, _)) => format!("new layer {}", short_id(d)),
                    None => "no changes: no new layer".into(),
                }
            );
        }
    }
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
            "forced_layers": forced.iter().map(|(chain, r)| {
                let sp = spooled.get(chain);
                json!({
                    "status": "FORCED",
                    "chain_id": chain,
                    "original_diff_id": r.diff_id,
                    "diff_id": sp.map(|s| &s.digest),
                    "size": sp.map(|s| s.size),
                    "verify": r,
                    "as_found": sp.map(|s| &s.report),
                })
            }).collect::<Vec<_>>(),
            "renamed_images": renamed.iter().map(|(old, new)| json!({"original_id": old, "id": new})).collect::<Vec<_>>(),
            "copy_artifacts": checked.artifacts_json(),
            "layers": checked.layers.values().map(salvor_forensic::verify::LayerVerdict::json).collect::<Vec<_>>(),
            "committed": committed.iter().map(|c| json!({"container": c.container, "image": c.image.id, "tags": c.image.repo_tags, "layer": c.layer.as_ref().map(|l| &l.0)})).collect::<Vec<_>>(),
            "synthesised_configs": synthesised,
            "files": report.files.iter().map(|(p, h, s)| json!({"path": p, "sha256": h, "size": s})).collect::<Vec<_>>(),
        }))?;
    } else if !quiet {
        let mut err = io::stderr().lock();
        if let Some(line) = checked.copy_line() {
            writeln!(err, "{}", crate::output::printable(&line))?;
        }
        for v in checked.layers.values() {
            if let Some(line) = v.summary_line() {
                writeln!(err, "{}", crate::output::printable(&line))?;
            }
        }
        writeln!(
            err,
            "wrote {} ({}, {} image(s), {} layer(s), content of all verified{})",
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
            let sp = spooled.get(chain);
            writeln!(
                err,
                "FORCED: layer {} exported as found: diff_id {} (recorded {}); {}",
                short_id(chain),
                sp.map(|s| s.digest.as_str()).unwrap_or("?"),
                r.diff_id.as_deref().unwrap_or("none"),
                why_not_verified(r)
            )?;
            if let Some(sp) = sp {
                let a = &sp.report;
                writeln!(
                    err,
                    "  as found: {} entries, {} rewritten header(s), {} missing, {} planted",
                    a.entries, a.rewritten, a.missing, a.planted
                )?;
            }
        }
        for (old, new) in &renamed {
            writeln!(
                err,
                "FORCED: image {} is written as {} (its config names the as-found layers)",
                short_id(old),
                short_id(new)
            )?;
        }
        if !synthesised.is_empty() {
            writeln!(err, "note: config(s) {} were synthesised from pre-1.10 metadata as Docker 1.10's migration would", synthesised.join(", "))?;
        }
    }
    // The findings exit code of `verify`: a metadata finding no copy artifact explains is a
    // finding here too, though the layer was exported.
    let images_ok = salvor_forensic::verify::image_verdicts(&images, &checked)
        .iter()
        .all(|v| v.ok);
    Ok(if forced.is_empty() && images_ok && checked.all_ok() {
        0
    } else {
        EXIT_FINDINGS
    })
}

/// The offline `docker commit`: the container's changes as a new layer (spooled next to the
/// output), and an image config made from its image's config and the container's.
fn commit(
    store: &Store,
    c: &salvor_docker::Container,
    o: &ExtractOpts,
) -> anyhow::Result<Committed> {
    let short = &c.id[..c.id.len().min(12)];
    let parent =
        match c.image_id.as_deref() {
            Some(id) => Some(store.find_image(id).with_context(|| {
                format!("container {short}: its image {id} is not in the store")
            })?),
            None => None,
        };
    let spool_dir = spool_dir(o.output);
    let spool = tempfile::Builder::new()
        .prefix(".salvor-commit.")
        .tempfile_in(&spool_dir)
        .with_context(|| format!("cannot write in {}", spool_dir.display()))?;
    let (file, path) = spool.into_parts();
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let (digest, size) = crate::commands::rootfs::commit_layer(store, c, &o.names, &mut w)?;
    w.flush()?;
    let empty = digest == salvor_oci::EMPTY_LAYER.as_str();
    let pcfg: serde_json::Value = parent.and_then(|p| p.config_json()).unwrap_or(json!({}));
    let created = c
        .state
        .finished_at
        .clone()
        .filter(|t| !t.starts_with("0001-"))
        .or_else(|| c.created.clone())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let mut diff_ids: Vec<serde_json::Value> = pcfg
        .pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default();
    if !empty {
        diff_ids.push(json!(digest));
    }
    let mut history: Vec<serde_json::Value> = pcfg
        .get("history")
        .and_then(|h| h.as_array())
        .cloned()
        .unwrap_or_default();
    let mut entry = serde_json::Map::new();
    entry.insert("created".into(), json!(created));
    entry.insert(
        "comment".into(),
        json!(format!(
            "offline commit by salvor of container {} ({})",
            c.name.trim_start_matches('/'),
            c.id
        )),
    );
    if empty {
        entry.insert("empty_layer".into(), json!(true));
    }
    history.push(serde_json::Value::Object(entry));
    let container_config = c.config.get("Config").cloned().unwrap_or(json!({}));
    // Keys sorted, as the engine writes image configs.
    let mut cfg: std::collections::BTreeMap<&str, serde_json::Value> =
        std::collections::BTreeMap::new();
    for k in ["architecture", "os", "variant", "os.version"] {
        if let Some(v) = pcfg.get(k) {
            cfg.insert(k, v.clone());
        }
    }
    cfg.insert("config", container_config.clone());
    cfg.insert("container", json!(c.id));
    cfg.insert("container_config", container_config);
    cfg.insert("created", json!(created));
    cfg.insert("history", json!(history));
    cfg.insert("rootfs", json!({"type": "layers", "diff_ids": diff_ids}));
    let config = serde_json::to_vec(&cfg)?;
    let id = salvor_docker::sha256_hex(&config);
    Ok(Committed {
        image: ImageToExport {
            id,
            config,
            repo_tags: o.tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            layers: Vec::new(),
            parent: parent.map(|p| p.id.clone()),
        },
        layer: (!empty).then_some((digest, size, path)),
        container: format!("{} ({short})", c.name.trim_start_matches('/')),
    })
}

/// Where layers are spooled: the output's directory, or `$TMPDIR` when writing to stdout.
fn spool_dir(output: &Path) -> std::path::PathBuf {
    // Beside the output (already checked against the evidence), else the temp dir.
    match salvor_sink::resolve(output) {
        Ok(p) if !salvor_sink::is_stdout(output) => p
            .parent()
            .map_or_else(std::env::temp_dir, Path::to_path_buf),
        _ => std::env::temp_dir(),
    }
}

/// Rewrites the config of every image that has a forced layer so that its `rootfs.diff_ids`
/// name the as-found digests; returns (old id, new id) of each image renamed, and points
/// `parent` of the others at the new ids.
fn claim_forced_layers(images: &mut [ImageToExport]) -> anyhow::Result<Vec<(String, String)>> {
    let mut renamed: Vec<(String, String)> = Vec::new();
    for img in images.iter_mut() {
        if img.layers.iter().all(|l| l.forced_from.is_none()) {
            continue;
        }
        let ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
        img.config = salvor_export::rewrite_diff_ids(&img.config, &ids)
            .with_context(|| format!("image {}", img.id))?;
        let id = salvor_docker::sha256_hex(&img.config);
        if !renamed.iter().any(|(o, _)| *o == img.id) {
            renamed.push((img.id.clone(), id.clone()));
        }
        img.id = id;
    }
    for img in images.iter_mut() {
        if let Some(p) = &img.parent {
            if let Some((_, new)) = renamed.iter().find(|(o, _)| o == p) {
                img.parent = Some(new.clone());
            }
        }
    }
    Ok(renamed)
}
