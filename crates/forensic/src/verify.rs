//! The one check behind every verdict: `salvor verify`, `extract` and `report` all call
//! [`check`] and print its [`LayerVerdict`]s.
//!
//! A layer's verdict has two independent parts:
//!
//! * **content** — the store's proof of the layer ([`ContainerStore::rebuild_layer`]): every
//!   file's CRC-64 and size, the stream's sha256 against the diff_id. This alone decides
//!   whether the layer is *verified* (`verified`, `mismatch`, `unrebuildable`).
//! * **metadata** — the audit ([`crate::audit::audit_layer`]): mode, owner, mtime,
//!   xattrs, links, planted and missing files (`clean`, `explained`, `findings`,
//!   `not-audited`). Every layer of the store is audited, whatever was asked, so that the
//!   copy artifacts ([`crate::copy`]) are detected on the evidence as a whole and a
//!   layer gets the same verdict from every command. Findings a detected copy artifact
//!   explains are classed `copy-artifact` (`explained`); any other is a finding.
//!
//! A layer is **ok** when its content verifies and its metadata has no finding that is not
//! a copy artifact; an image when its config hashes to its id and every layer is ok.

use std::collections::BTreeMap;
use std::io::{self, Write};

use rayon::prelude::*;
use salvor_model::{ContainerStore, ImageRecord, Problem, RebuildReport, RebuildStatus};

use crate::audit::{AuditReport, FindingClass};
use crate::copy::{ArtifactClass, CopyArtifacts};
use serde::Serialize;
use serde_json::json;

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
    store: &dyn ContainerStore,
    chain_ids: &[String],
    progress: &(dyn Fn(u64) + Sync),
) -> BTreeMap<String, RebuildReport> {
    let layers: Vec<&String> = chain_ids
        .iter()
        .filter(|c| store.layer(c).is_some())
        .collect();
    let reports: Vec<RebuildReport> = layers
        .par_iter()
        .map(|l| {
            let mut sink = Counting(progress);
            match store.rebuild_layer(l, &mut sink) {
                Ok(r) => r,
                Err(e) => {
                    let mut r = store.verify_layer(l);
                    r.error.get_or_insert_with(|| salvor_model::error_chain(&e));
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
    /// The image id (`sha256:<hex>`).
    pub id: String,
    /// Its tags in familiar form.
    pub tags: Vec<String>,
    /// No problem found: the config hashes to the id and every layer verified.
    pub ok: bool,
    /// What failed, one line each (`layer <short>: content did not verify (…)`).
    pub problems: Vec<String>,
    /// Its layers' chain ids, base layer first.
    pub chain_ids: Vec<String>,
}

/// Every layer of the engine-neutral `images` ([`ImageRecord::layers`]), each once, in
/// image order.
pub fn layers_of(images: &[ImageRecord]) -> Vec<String> {
    let mut layers: Vec<String> = Vec::new();
    for img in images {
        for l in &img.layers {
            if !layers.contains(l) {
                layers.push(l.clone());
            }
        }
    }
    layers
}

/// Audits the given layers in parallel (a metadata walk; no file content is read, except
/// both names of a broken hard link, compared byte for byte).
pub fn audit_layers(
    store: &dyn ContainerStore,
    chain_ids: &[String],
) -> BTreeMap<String, AuditReport> {
    let layers: Vec<&String> = chain_ids
        .iter()
        .filter(|c| store.layer(c).is_some())
        .collect();
    layers
        .par_iter()
        .map(|l| ((*l).clone(), crate::audit::audit_layer(store, l)))
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// The verdict on one layer: its rebuild (content) and its audit (metadata).
#[derive(Debug, Clone)]
pub struct LayerVerdict {
    /// The layer's rebuild: whether its content hashes to its diff id.
    pub rebuild: RebuildReport,
    /// `None` when the layer could not be audited at all (not in the store).
    pub audit: Option<AuditReport>,
}

impl LayerVerdict {
    /// `verified`, `mismatch` or `unrebuildable`: the rebuild alone.
    pub fn content(&self) -> &'static str {
        match self.rebuild.status {
            RebuildStatus::Verified => "verified",
            RebuildStatus::Mismatch => "mismatch",
            RebuildStatus::Unrebuildable => "unrebuildable",
        }
    }

    /// Audit findings that no copy artifact explains (plus those beyond the kept limit,
    /// which were not classed).
    pub fn metadata_findings(&self) -> u64 {
        self.audit.as_ref().map_or(0, |a| {
            a.findings
                .iter()
                .filter(|f| f.class == FindingClass::Finding)
                .count() as u64
                + a.omitted
        })
    }

    /// Audit findings classed `copy-artifact`.
    pub fn copy_artifacts(&self) -> u64 {
        self.audit.as_ref().map_or(0, |a| {
            a.findings
                .iter()
                .filter(|f| f.class == FindingClass::CopyArtifact)
                .count() as u64
        })
    }

    /// `clean`, `explained` (every difference is a copy artifact), `findings`, or
    /// `not-audited` (no tar-split, devicemapper, files unavailable: the notes say why).
    pub fn metadata(&self) -> &'static str {
        match &self.audit {
            None => "not-audited",
            Some(_) if self.metadata_findings() > 0 => "findings",
            Some(_) if self.copy_artifacts() > 0 => "explained",
            Some(a) if a.entries == 0 && a.notes.iter().any(|n| n.starts_with("not audited")) => {
                "not-audited"
            }
            Some(_) => "clean",
        }
    }

    /// Content verified and no metadata finding that is not a copy artifact.
    pub fn ok(&self) -> bool {
        self.rebuild.status == RebuildStatus::Verified && self.metadata_findings() == 0
    }

    /// Both parts in one word, as `status` in JSON: `verified` ([`Self::ok`]), `tampered`
    /// (content verified, metadata findings), `mismatch`, `unrebuildable`.
    pub fn status(&self) -> &'static str {
        match self.content() {
            "verified" if self.metadata_findings() > 0 => "tampered",
            c => c,
        }
    }

    /// The CONTENT cell: `verified`, `MISMATCH (n finding(s))`, `UNREBUILDABLE`.
    pub fn content_cell(&self) -> String {
        match self.rebuild.status {
            RebuildStatus::Verified => "verified".into(),
            RebuildStatus::Mismatch => {
                format!("MISMATCH ({} finding(s))", self.rebuild.findings.len())
            }
            RebuildStatus::Unrebuildable => "UNREBUILDABLE".into(),
        }
    }

    /// The METADATA cell: `clean`, `explained (n copy-artifact)`, `FINDINGS (n)` or
    /// `FINDINGS (n; m copy-artifact)`, `not audited`.
    pub fn metadata_cell(&self) -> String {
        let (n, m) = (self.metadata_findings(), self.copy_artifacts());
        match self.metadata() {
            "findings" if m > 0 => format!("FINDINGS ({n}; {m} copy-artifact)"),
            "findings" => format!("FINDINGS ({n})"),
            "explained" => format!("explained ({m} copy-artifact)"),
            "not-audited" => "not audited".into(),
            _ => "clean".into(),
        }
    }

    /// One line for a layer whose verdict is not clean (`None` when content verified and
    /// metadata clean): `layer 5d19914ce744: content verified; metadata FINDINGS (1; 18
    /// copy-artifact): first etc/passwd: mtime-changed`.
    pub fn summary_line(&self) -> Option<String> {
        let content = self.content();
        let metadata = self.metadata();
        if content == "verified" && matches!(metadata, "clean" | "not-audited") {
            return None;
        }
        let c = &self.rebuild.chain_id;
        let short = c.strip_prefix("sha256:").unwrap_or(c);
        let mut s = format!(
            "layer {}: content {}; metadata {}",
            &short[..short.len().min(12)],
            self.content_cell(),
            self.metadata_cell()
        );
        if let Some(f) = self.rebuild.findings.first() {
            s.push_str(&format!(
                "; first content finding {}: {}",
                crate::timeline::clean_bytes(f.path.as_bytes()),
                f.kind
            ));
        }
        if let Some(f) = self
            .audit
            .as_ref()
            .and_then(|a| a.findings.iter().find(|f| f.class == FindingClass::Finding))
        {
            s.push_str(&format!(
                "; first metadata finding {}: {}",
                crate::timeline::clean_bytes(f.path.as_bytes()),
                f.kind
            ));
        }
        Some(s)
    }

    /// The layer as JSON: the rebuild report's fields, `status`, `content`, `metadata` and
    /// `audit` (every finding with its `class`).
    pub fn json(&self) -> serde_json::Value {
        let r = &self.rebuild;
        let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
        if let Some(o) = v.as_object_mut() {
            o.insert("status".into(), json!(self.status()));
            o.insert(
                "content".into(),
                json!({
                    "verdict": self.content(),
                    "diff_id": r.diff_id,
                    "actual": r.actual,
                    "findings": r.findings.len(),
                }),
            );
            o.insert(
                "metadata".into(),
                json!({
                    "verdict": self.metadata(),
                    "findings": self.metadata_findings(),
                    "copy_artifacts": self.copy_artifacts(),
                }),
            );
            o.insert(
                "audit".into(),
                self.audit.as_ref().map_or(serde_json::Value::Null, |a| {
                    json!({
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
}

/// The result of [`check`]: a verdict per layer asked for, and the copy artifacts of the
/// evidence.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// Keyed by chain id.
    pub layers: BTreeMap<String, LayerVerdict>,
    /// Detected on the audits of every layer of the store.
    pub artifacts: CopyArtifacts,
    /// Findings explained per artifact class, over every layer of the store (the line
    /// above the table is the same whatever was asked for).
    pub explained: BTreeMap<ArtifactClass, u64>,
}

impl Check {
    /// The line above the table when a copy artifact was detected and explains something:
    /// `this looks like a copy made with umask 027: 18 mode differences explained`.
    pub fn copy_line(&self) -> Option<String> {
        if self.artifacts.is_empty() || self.explained.is_empty() {
            return None;
        }
        let counts: Vec<String> = self
            .explained
            .iter()
            .map(|(c, n)| {
                format!(
                    "{n} {} difference{}",
                    c.as_str(),
                    if *n == 1 { "" } else { "s" }
                )
            })
            .collect();
        Some(format!(
            "this looks like a copy {}: {} explained",
            self.artifacts.describe(),
            join_and(&counts)
        ))
    }

    /// Every layer asked for is ok.
    pub fn all_ok(&self) -> bool {
        self.layers.values().all(LayerVerdict::ok)
    }

    /// The copy artifacts as JSON: `{"summary", "umask", "owner_uid", …, "explained"}`.
    pub fn artifacts_json(&self) -> serde_json::Value {
        let a = &self.artifacts;
        json!({
            "summary": self.copy_line(),
            "umask": a.mode_mask.map(|m| format!("{:03o}", m & 0o777)),
            "setuid_setgid_cleared": a.mode_mask.is_some_and(|m| m & 0o6000 != 0),
            "owner_uid": a.uid,
            "owner_gid": a.gid,
            "file_mtimes_reset": a.file_mtimes_reset,
            "directory_mtimes_reset": a.dir_mtimes_reset,
            "xattrs_lost": a.xattrs_lost,
            "hardlinks_not_kept": a.hardlinks_not_kept,
            "explained": self.explained.iter().map(|(c, n)| (c.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        })
    }

    /// The verify JSON (`salvor verify --json`, the report's verify.json): `ok`,
    /// `copy_artifacts`, `images`, `layers`, `metadata_problems`.
    pub fn json(&self, verdicts: &[ImageVerdict], store: &dyn ContainerStore) -> serde_json::Value {
        let problems: Vec<Problem> = store.problems();
        json!({
            "ok": verdicts.iter().all(|v| v.ok) && self.all_ok(),
            "copy_artifacts": self.artifacts_json(),
            "images": verdicts,
            "layers": self.layers.values().map(LayerVerdict::json).collect::<Vec<_>>(),
            "metadata_problems": problems,
        })
    }
}

fn join_and(v: &[String]) -> String {
    match v {
        [] => String::new(),
        [a] => a.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The check behind every verdict: rebuilds `chain_ids` (content, in parallel, `progress`
/// gets the bytes rebuilt) while auditing *every* layer of the store (metadata), detects
/// the copy artifacts of the evidence from all the audits
/// ([`crate::copy::detect`]) and classes each finding.
pub fn check(
    store: &dyn ContainerStore,
    chain_ids: &[String],
    progress: &(dyn Fn(u64) + Sync),
) -> Check {
    let all: Vec<String> = store.layers().into_iter().map(|l| l.id).collect();
    let (reports, audits) = rayon::join(
        || verify_layers(store, chain_ids, progress),
        || audit_layers(store, &all),
    );
    assemble(chain_ids, reports, audits)
}

/// The audits [`check`] needs: every layer of the store (copy artifacts are detected on
/// the whole evidence). For a caller that rebuilds the layers itself (`extract` hashes
/// what it writes) and then calls [`assemble`].
pub fn audit_store(store: &dyn ContainerStore) -> BTreeMap<String, AuditReport> {
    let all: Vec<String> = store.layers().into_iter().map(|l| l.id).collect();
    audit_layers(store, &all)
}

/// [`check`] from rebuild reports made elsewhere (keyed by chain id; a chain id without
/// one is left out) and the audits of every layer of the store ([`audit_store`]): the
/// same verdicts, artifacts and classes as [`check`] gives.
pub fn assemble(
    chain_ids: &[String],
    mut reports: BTreeMap<String, RebuildReport>,
    mut audits: BTreeMap<String, AuditReport>,
) -> Check {
    let artifacts = crate::copy::detect(audits.values().map(|a| &a.stats));
    let mut explained: BTreeMap<ArtifactClass, u64> = BTreeMap::new();
    for a in audits.values_mut() {
        for (k, n) in crate::copy::classify(a, &artifacts) {
            *explained.entry(k).or_insert(0) += n;
        }
    }
    let mut layers = BTreeMap::new();
    for c in chain_ids {
        let Some(rebuild) = reports.remove(c) else {
            continue;
        };
        let audit = audits.remove(c);
        layers.insert(c.clone(), LayerVerdict { rebuild, audit });
    }
    Check {
        layers,
        artifacts,
        explained,
    }
}

/// The verdict on each of the engine-neutral `images` of `store`: an image verifies when
/// its id is proven and every layer is ok ([`LayerVerdict::ok`]). The id is proven when the
/// config ([`ContainerStore::config_bytes`], where the engine keeps it as stored) hashes to
/// it (Docker's graphdriver, containers/storage), or — where the id is the manifest's
/// digest (containerd) — when the manifest ([`ContainerStore::manifest_bytes`]) hashes to
/// it and the config to the digest the manifest names for it. An id that is an index's
/// digest (the platform's manifest was chosen from it) is proven as far as the manifest's
/// config.
pub fn verdicts(
    store: &dyn ContainerStore,
    images: &[ImageRecord],
    check: &Check,
) -> Vec<ImageVerdict> {
    images
        .iter()
        .map(|img| {
            let id_problem = if img.config_as_stored {
                id_problem(store, &img.id)
            } else {
                None
            };
            verdict(&img.id, &img.names, &img.layers, id_problem, check)
        })
        .collect()
}

/// Why image `id`'s bytes do not prove it (`None` when they do; see [`verdicts`]).
fn id_problem(store: &dyn ContainerStore, id: &str) -> Option<String> {
    let config = match store.config_bytes(id) {
        Ok(b) => b,
        Err(e) => {
            return Some(format!(
                "config unreadable: {}",
                salvor_model::error_chain(&e)
            ))
        }
    };
    let config_digest = salvor_oci::Digest::sha256_of(&config);
    if config_digest.as_str() == id {
        return None;
    }
    let manifest = match store.manifest_bytes(id) {
        Ok(Some(m)) => m,
        Ok(None) => return Some("config bytes do not hash to the image id".into()),
        Err(e) => {
            return Some(format!(
                "manifest unreadable: {}",
                salvor_model::error_chain(&e)
            ))
        }
    };
    let named = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|v| v["config"]["digest"].as_str().map(str::to_string));
    match named {
        None => Some("the manifest names no config digest".into()),
        Some(n) if n != config_digest.as_str() => Some(format!(
            "config bytes hash to {config_digest}, not to the manifest's config digest {n}"
        )),
        Some(_) => {
            let m = salvor_oci::Digest::sha256_of(&manifest);
            let is_manifest = serde_json::from_slice::<serde_json::Value>(&manifest)
                .ok()
                .is_some_and(|v| v.get("layers").is_some());
            if m.as_str() == id || is_manifest && store.index_lists(id, m.as_str()) {
                None
            } else {
                Some(format!("the manifest hashes to {m}, not to the image id"))
            }
        }
    }
}

/// One image's verdict: its id check, then each of its layers' verdicts in order.
fn verdict(
    id: &str,
    tags: &[String],
    layers: &[String],
    id_problem: Option<String>,
    check: &Check,
) -> ImageVerdict {
    let mut problems = Vec::new();
    problems.extend(id_problem);
    for c in layers {
        let short = c.strip_prefix("sha256:").unwrap_or(c);
        let short = &short[..short.len().min(12)];
        match check.layers.get(c) {
            Some(v) if v.ok() => {}
            Some(v) if v.content() == "verified" => problems.push(format!(
                "layer {short}: content verified, {} metadata finding(s)",
                v.metadata_findings()
            )),
            Some(v) => problems.push(format!(
                "layer {short}: content did not verify ({})",
                v.content()
            )),
            None => problems.push(format!("layer {short} is not in the layer store")),
        }
    }
    ImageVerdict {
        id: id.to_string(),
        tags: tags.to_vec(),
        ok: problems.is_empty(),
        problems,
        chain_ids: layers.to_vec(),
    }
}
