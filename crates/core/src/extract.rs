//! `extract`: images (and containers committed offline, like `docker commit`) as the
//! layers and configs of an archive that `docker load`, skopeo and umoci accept.
//!
//! [`plan`] resolves the arguments, commits containers, and with `force` spools the layers
//! that do not verify *as found*; [`Plan::write_and_check`] writes the archive through
//! [`StoreLayers`] (layers rebuilt from the evidence while they are written, each verified
//! against its diff_id as it passes) and assembles the verdict `verify` gives.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use salvor_docker::{Image, Layer, RebuildReport, RebuildStatus, SpooledLayer, Store};
use salvor_export::{ImageToExport, LayerError, LayerRef, LayerSource};
use salvor_forensic::verify::Check;
use salvor_whiteout::TarNames;
use serde_json::json;

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

/// The layers of an export, produced from the store: rebuilt (and verified) while they are
/// written, or copied from the files spooled by an offline commit or `--force`.
pub struct StoreLayers<'a> {
    store: &'a Store,
    by_digest: BTreeMap<String, &'a Layer>,
    /// Layers spooled to temporary files (as found, or made by an offline commit):
    /// digest → file.
    committed: BTreeMap<String, PathBuf>,
    force: bool,
    progress: &'a (dyn Fn(u64) + Sync),
    /// Each rebuilt layer's report, keyed by chain id: the content part of the verdict,
    /// from the very stream that went into the archive.
    reports: std::sync::Mutex<BTreeMap<String, RebuildReport>>,
}

/// Counts what passes into `out` for a progress bar.
pub(crate) struct ProgressWriter<'a, 'b> {
    pub(crate) out: &'a mut dyn Write,
    pub(crate) progress: &'b (dyn Fn(u64) + Sync),
}

impl Write for ProgressWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        (self.progress)(n as u64);
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
            let mut w = salvor_docker::rebuild::HashingWriter::new(ProgressWriter {
                out,
                progress: self.progress,
            });
            io::copy(&mut std::fs::File::open(path)?, &mut w)?;
            return Ok(w.finish().0);
        }
        let layer = self
            .by_digest
            .get(digest)
            .ok_or_else(|| LayerError::NotFound(digest.to_string()))?;
        let mut w = ProgressWriter {
            out,
            progress: self.progress,
        };
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

/// How [`plan`] prepares an extract.
pub struct ExtractOptions<'a> {
    /// Also export layers that do not verify, or that the disk holds otherwise, as found.
    pub force: bool,
    /// For committed containers: the committed image's tag.
    pub tag: Option<&'a str>,
    /// uname/gname for the headers of committed and as-found layers (`--passwd`,
    /// `--group`); `None`: a commit writes the names of the engine that wrote the evidence
    /// ([`crate::rootfs::header_rules`]), as-found layers none.
    pub names: Option<TarNames>,
    /// Where layers are spooled (see [`spool_dir`]).
    pub spool_dir: PathBuf,
}

/// A container committed offline: its image, and its new layer spooled to a file.
pub struct Committed {
    /// The committed image (its layers are filled in by [`plan`]).
    pub image: ImageToExport,
    /// The new layer: (diff id, size, spooled file); `None` when nothing changed.
    pub layer: Option<(String, u64, tempfile::TempPath)>,
    /// `name (short id)`.
    pub container: String,
    /// How the new layer's tar headers were chosen ([`crate::rootfs::ChosenRules`]).
    pub headers: crate::rootfs::ChosenRules,
}

/// What an extract writes, and what it found on the way.
pub struct Plan<'s> {
    /// The images checked: those named, and the images of committed containers.
    pub images: Vec<&'s Image>,
    /// Their layers' chain ids.
    pub chains: Vec<String>,
    /// The containers committed.
    pub committed: Vec<Committed>,
    /// With `force`: the check run before writing.
    pub prechecked: Option<Check>,
    /// With `force`: the layers exported as found (chain id → why).
    pub forced: BTreeMap<String, RebuildReport>,
    /// The forced layers, spooled as found.
    pub spooled: BTreeMap<String, SpooledLayer>,
    /// The images to write.
    pub to_export: Vec<ImageToExport>,
    /// Images whose id changed because a forced layer's digest replaced a diff_id:
    /// (old id, new id).
    pub renamed: Vec<(String, String)>,
    /// Bytes of all layers to write (for a progress bar).
    pub total: u64,
    by_digest: BTreeMap<String, &'s Layer>,
    store: &'s Store,
    spool_paths: BTreeMap<String, PathBuf>,
    force: bool,
}

/// Prepares an extract of `queries` (images, as `docker save` takes them, or containers to
/// commit). `warn` gets each resolver note (an argument that also matched something
/// else); with `o.force`, `precheck` runs the shared check of the chains (with whatever
/// progress display the caller wants).
pub fn plan<'s>(
    store: &'s Store,
    queries: &[String],
    o: &ExtractOptions,
    warn: &mut dyn FnMut(String),
    precheck: impl FnOnce(&[String]) -> Check,
) -> anyhow::Result<Plan<'s>> {
    let force = o.force;
    // As `docker save`: each query brings its image(s) and the tags it names. A query that
    // names no image but a container is committed first, like `docker commit`.
    let mut selected: Vec<(&salvor_docker::Image, Vec<String>)> = Vec::new();
    let mut committed: Vec<Committed> = Vec::new();
    for q in queries {
        // The one resolver: an image first (docker save), else a container (docker commit).
        let r = store.resolve_for_save(q).context("extract")?;
        if let Some(n) = r.note(q) {
            warn(n);
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
            .as_ref()
            .and_then(|p| store.find_image(p.as_str()).ok())
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
    let records: Vec<salvor_model::ImageRecord> = images
        .iter()
        .map(|i| salvor_docker::model::image_record(i))
        .collect();
    let chains = salvor_forensic::verify::layers_of(&records);
    let prechecked = force.then(|| precheck(&chains));
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
            store.spool_as_found(
                layer,
                o.names.as_ref().unwrap_or(&TarNames::empty()),
                &o.spool_dir,
            )?,
        );
    }
    let mut to_export = Vec::new();
    let mut by_digest: BTreeMap<String, &Layer> = BTreeMap::new();
    let mut total = 0u64;
    let mut spool_paths: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut layer_refs = |img: &salvor_docker::Image| -> anyhow::Result<Vec<LayerRef>> {
        let mut refs = Vec::new();
        for l in store.image_layers(img)? {
            let diff_id = l
                .diff_id
                .clone()
                .with_context(|| format!("layer {} has no diff id", l.chain_id))?;
            if let Some(sp) = spooled.get(&l.chain_id) {
                if spool_paths
                    .insert(sp.digest.clone(), sp.path.to_path_buf())
                    .is_none()
                {
                    total += sp.size;
                }
                refs.push(LayerRef {
                    diff_id: sp.digest.parse()?,
                    size: sp.size,
                    descriptor: None,
                    forced_from: Some(diff_id.parse()?),
                });
                continue;
            }
            let size = store.layer_tar_size(l)?;
            if by_digest.insert(diff_id.clone(), l).is_none() {
                total += size;
            }
            refs.push(LayerRef {
                diff_id: diff_id.parse()?,
                size,
                descriptor: l.descriptor.clone(),
                forced_from: None,
            });
        }
        Ok(refs)
    };
    for (img, tags) in &selected {
        to_export.push(ImageToExport {
            id: img.id.parse()?,
            config: img.config.as_ref().clone(),
            repo_tags: tags.clone(),
            layers: layer_refs(img)?,
            parent: img.parent.as_deref().map(str::parse).transpose()?,
        });
    }
    let mut committed_layers: BTreeMap<String, PathBuf> = BTreeMap::new();
    for c in &committed {
        let mut image = c.image.clone();
        let mut refs = match c
            .image
            .parent
            .as_ref()
            .and_then(|p| store.find_image(p.as_str()).ok())
        {
            Some(p) => layer_refs(p)?,
            None => Vec::new(),
        };
        if let Some((digest, size, path)) = &c.layer {
            refs.push(LayerRef {
                diff_id: digest.parse()?,
                size: *size,
                descriptor: None,
                forced_from: None,
            });
            committed_layers.insert(digest.clone(), path.to_path_buf());
        }
        image.layers = refs;
        to_export.push(image);
    }
    spool_paths.extend(committed_layers);
    // A forced layer's new digest replaces its diff_id in every config that names it.
    let renamed = claim_forced_layers(&mut to_export)?;
    Ok(Plan {
        images,
        chains,
        committed,
        prechecked,
        forced,
        spooled,
        to_export,
        renamed,
        total,
        by_digest,
        store,
        spool_paths,
        force,
    })
}

impl<'s> Plan<'s> {
    /// The layer source the archive is written from; `progress` gets the bytes written.
    pub fn layers<'p>(
        &self,
        store: &'p Store,
        progress: &'p (dyn Fn(u64) + Sync),
    ) -> StoreLayers<'p>
    where
        's: 'p,
    {
        StoreLayers {
            store,
            by_digest: self.by_digest.clone(),
            committed: self.spool_paths.clone(),
            force: self.force,
            progress,
            reports: Default::default(),
        }
    }

    /// Runs `write` (which writes the archive from `source`, made by [`Plan::layers`]) with
    /// the audits of the layers beside it, and returns its result with the verdict: the
    /// content part from the stream written (or the check run before, with `force`).
    pub fn write_and_check<R>(
        &mut self,
        store: &Store,
        source: &StoreLayers,
        write: impl FnOnce() -> anyhow::Result<R>,
    ) -> anyhow::Result<(R, Check)> {
        let prechecked = self.prechecked.take();
        let chains = &self.chains;
        std::thread::scope(|s| -> anyhow::Result<_> {
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
                        reports.extend(salvor_forensic::verify::verify_layers(
                            store,
                            &missing,
                            &|_| {},
                        ));
                    }
                    salvor_forensic::verify::assemble(chains, reports, audits)
                }
                (None, None) => Check::default(),
            };
            Ok((report, checked))
        })
    }

    /// The images whose config was synthesised from pre-1.10 metadata.
    pub fn synthesised(&self) -> Vec<&'s str> {
        self.images
            .iter()
            .filter(|i| i.synthesised)
            .map(|i| i.id.as_str())
            .collect()
    }

    /// True when nothing was forced and `checked` is clean (the findings exit code of
    /// `verify`: a metadata finding no copy artifact explains is a finding here too,
    /// though the layer was exported).
    pub fn clean(&self, checked: &Check) -> bool {
        let records: Vec<salvor_model::ImageRecord> = self
            .images
            .iter()
            .map(|i| salvor_docker::model::image_record(i))
            .collect();
        let images_ok = salvor_forensic::verify::verdicts(self.store, &records, checked)
            .iter()
            .all(|v| v.ok);
        self.forced.is_empty() && images_ok && checked.all_ok()
    }
}

/// The offline `docker commit`: the container's changes as a new layer (spooled next to the
/// output), and an image config made from its image's config and the container's.
fn commit(
    store: &Store,
    c: &salvor_docker::Container,
    o: &ExtractOptions,
) -> anyhow::Result<Committed> {
    let short = &c.id[..c.id.len().min(12)];
    let parent =
        match c.image_id.as_deref() {
            Some(id) => Some(store.find_image(id).with_context(|| {
                format!("container {short}: its image {id} is not in the store")
            })?),
            None => None,
        };
    let spool_dir = &o.spool_dir;
    let spool = tempfile::Builder::new()
        .prefix(".salvor-commit.")
        .tempfile_in(spool_dir)
        .with_context(|| format!("cannot write in {}", spool_dir.display()))?;
    let (file, path) = spool.into_parts();
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let mut headers = crate::rootfs::header_rules(store, crate::rootfs::TarPurpose::Commit);
    if let Some(n) = &o.names {
        headers.rules = crate::rootfs::with_names(&headers.rules, n.clone());
        headers.how = format!("{}; names from --passwd/--group", headers.how);
        headers.uncertain = false;
    }
    let (digest, size) = crate::rootfs::commit_layer(store, c, &headers.rules, &mut w)?;
    w.flush()?;
    let empty = digest == salvor_oci::EMPTY_LAYER.as_str();
    let pcfg: serde_json::Value = parent.and_then(|p| p.config_json()).unwrap_or(json!({}));
    let config = commit_config(&pcfg, c, &digest)?;
    let id = salvor_docker::sha256_hex(&config);
    Ok(Committed {
        image: ImageToExport {
            id: id.parse()?,
            config,
            repo_tags: o.tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            layers: Vec::new(),
            parent: parent.map(|p| p.id.parse()).transpose()?,
        },
        layer: (!empty).then_some((digest, size, path)),
        headers,
        container: format!("{} ({short})", c.name.trim_start_matches('/')),
    })
}

/// The config of an offline `docker commit` of container `c` over its image's config
/// `pcfg` (`{}` when the container has no image), the new layer's diff_id `digest` (the
/// empty layer adds none): keys sorted as the engine writes image configs, `created` the
/// container's finish time (the engine takes the commit's wall-clock time).
pub fn commit_config(
    pcfg: &serde_json::Value,
    c: &salvor_docker::Container,
    digest: &str,
) -> anyhow::Result<Vec<u8>> {
    let empty = digest == salvor_oci::EMPTY_LAYER.as_str();
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
    Ok(serde_json::to_vec(&cfg)?)
}

/// Where layers are spooled: the output's directory, or `$TMPDIR` when writing to stdout.
pub fn spool_dir(output: &Path) -> PathBuf {
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
        let ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
        img.config = salvor_export::rewrite_diff_ids(&img.config, &ids)
            .with_context(|| format!("image {}", img.id))?;
        let id = salvor_docker::sha256_hex(&img.config);
        if !renamed.iter().any(|(o, _)| *o == img.id) {
            renamed.push((img.id.to_string(), id.clone()));
        }
        img.id = id.parse()?;
    }
    for img in images.iter_mut() {
        if let Some(p) = &img.parent {
            if let Some((_, new)) = renamed.iter().find(|(o, _)| o == p) {
                img.parent = Some(new.parse()?);
            }
        }
    }
    Ok(renamed)
}
