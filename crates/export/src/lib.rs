//! # salvor-export: write image archives, deterministic and streaming
//!
//! [`export`] takes a list of [`ImageToExport`] (config bytes, tags, layer
//! references), a [`LayerSource`] that produces the uncompressed layer tars, and
//! [`ExportOptions`] (a [`Format`] and an [`Output`]), and writes one archive.
//! It returns an [`ExportReport`] or an [`ExportError`].
//!
//! ## Data flow
//! 1. **Plan.** Every image is validated (`id == sha256(config)`, the config's
//!    `rootfs.diff_ids` equal the given layers, at least one layer, tags parse).
//!    All metadata (configs, OCI manifests, `index.json`, `manifest.json`,
//!    `repositories`, legacy `<v1id>/json`, …) is rendered in memory with a
//!    byte-exact emulation of Go's `encoding/json` (`gojson`, `v1`). Layers are
//!    only *referenced* (diff_id + size). Paths shared by several images (common
//!    layers, configs) are stored once.
//! 2. **Write.** Entries are written in a fixed order: the order of Go's
//!    `filepath.WalkDir` over the engine's temp dir, i.e. lexical by path
//!    component, each directory before its contents. Layer data is streamed from
//!    [`LayerSource::write_layer`] straight into the tar (or blob file) through a
//!    counting, hashing pipe; it is never buffered. After each layer: byte count
//!    must equal [`LayerRef::size`], sha256 must equal the diff_id
//!    ([`ExportError::DigestMismatch`]) and the digest the source reported must
//!    match what passed through.
//!
//! ## Formats
//! * [`Format::Docker`]: what Engine >= 25's `docker save` writes: an OCI layout
//!   (`oci-layout`, `index.json`, `blobs/sha256/…`) plus `manifest.json` and
//!   `repositories`. Like the engine it also writes the (unreferenced) legacy
//!   v1 JSON of every layer as a blob. `manifest.json` and `repositories` end
//!   with a newline (`json.NewEncoder`), `index.json` and manifests do not
//!   (`json.Marshal`).
//! * [`Format::DockerLegacy`]: Engine <= 24: `<v1id>/{VERSION,json,layer.tar}`,
//!   `<config-hex>.json`, `manifest.json`, `repositories`. v1 ids are computed as
//!   `v1.CreateID` does. A diff_id already written under another v1 id becomes a
//!   symlink `../<v1id>/layer.tar`.
//! * [`Format::Oci`]: plain OCI image layout (no `manifest.json`/`repositories`,
//!   no v1 JSON blobs).
//!
//! ## Tar conventions
//! USTAR headers written like Go's `archive/tar`; mode 0644 files, 0755 dirs,
//! 0777 symlinks; uid/gid 0; empty uname/gname; end marker of two zero blocks
//! (no padding to a record). mtimes follow the engine: config blobs, layer
//! blobs, v1 JSON and legacy `<v1id>/` contents get the image's `Created` time
//! (of the first image that wrote them; 0 if absent or before 1970);
//! directories under `blobs/`, manifests, `index.json`, `oci-layout`,
//! `manifest.json` and `repositories` get 0. The archive is therefore a pure
//! function of the inputs: two runs are byte-identical.
//!
//! ## Deviations from the engine (all deliberate)
//! * Several images are written in input order (the engine iterates a Go map,
//!   i.e. random order). Repeated image ids are merged (tags concatenated).
//! * Every untagged image gets an un-annotated `index.json` descriptor (the
//!   engine only does so if no earlier image in its random order had a tag).
//! * Legacy `LayerSources` lists every layer that has a descriptor, even when
//!   the v1 layer was already written for another image.
//! * The non-top legacy layers' `created` is `1970-01-01T00:00:00Z`: the
//!   engine uses `time.Unix(0,0)` in the daemon's *local* zone; hosts whose
//!   daemon ran in another zone produce other v1 ids.
//! * `Parent` is kept only if the parent image is also exported (as the engine).
//!
//! ## Other entry points
//! [`metadata_files`] renders the non-layer files of an archive without a layer
//! source (dry runs, golden tests); [`legacy_v1_ids`] and [`chain_id`] expose
//! the id computations.
//!
//! ## Verification
//! `tests/engine_legacy.rs` compares v1 ids, every `<v1id>/json`, the config,
//! `manifest.json`, `repositories` and member order with a `docker save` of a
//! 4-layer image by Docker 20.10 (committed under `tests/data/engine-legacy/`).
//! `tests/engine.rs` (`SALVOR_ENGINE_TESTS=1`) runs `docker load -i` on
//! salvor's `Docker` and `DockerLegacy` archives and checks the image id.
//!
//! ## API adjustments
//! * [`LayerSource::write_layer`] returns the `sha256:<hex>` it computed
//!   (`Result<String, LayerError>`), as its documentation asks; the exporter
//!   cross-checks it.
//! * Every output goes through `salvor-sink`: `Output::Tar("-")` writes to stdout
//!   (on error the partial stream cannot be taken back); a FIFO or device is written
//!   in place; a file or directory is written under a temporary name in the same
//!   directory and renamed at the end, so no partial output is left behind.
//!   `Output::Dir` must not exist or be an empty directory. [`export`] has no
//!   evidence guard and replaces an existing file; the CLI opens its output through
//!   a guarded `salvor_sink::OutputPolicy` and calls [`export_tar_to`] /
//!   [`export_dir_into`]. A write error is reported as the output's
//!   ([`ExportError::Sink`]), whatever the layer source made of it.
//! * `parallel` only affects `Output::Dir` (a tar is one stream).
//! * [`ExportReport::files`] lists regular files (not directories/symlinks) in
//!   archive order with their sha256 (bare hex) and size.

mod gojson;
mod reference;
mod tarw;
mod v1;

use salvor_sink::{DirSink, OutputPolicy, SinkError};

use gojson::Obj;
use rayon::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use v1::{Flavor, V1Image};

use salvor_oci::spec::{
    ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, MEDIA_TYPE_OCI_CONFIG as MT_CONFIG,
    MEDIA_TYPE_OCI_INDEX as MT_INDEX, MEDIA_TYPE_OCI_LAYER as MT_LAYER,
    MEDIA_TYPE_OCI_MANIFEST as MT_MANIFEST,
};
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion": "1.0.0"}"#;

/// Archive format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `docker save` of Engine >= 25: OCI layout + `manifest.json` + `repositories`.
    Docker,
    /// `docker save` of Engine <= 24.
    DockerLegacy,
    /// Plain OCI image layout.
    Oci,
}

/// One image to write.
#[derive(Clone, Debug)]
pub struct ImageToExport {
    /// `sha256:<hex>` = sha256(config).
    pub id: String,
    /// Exact config bytes.
    pub config: Vec<u8>,
    /// Normalised `repo:tag` as docker shows them (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Layers in rootfs order.
    pub layers: Vec<LayerRef>,
    /// `sha256:…` for `manifest.json` `Parent` (kept only if also exported).
    pub parent: Option<String>,
}

/// A layer of an image.
#[derive(Clone, Debug)]
pub struct LayerRef {
    /// `sha256:<hex>`.
    pub diff_id: String,
    /// Exact byte length of the uncompressed layer tar.
    pub size: u64,
    /// layerdb `descriptor.json`, if any.
    pub descriptor: Option<Value>,
    /// Set for a layer exported *as found* (`--force`): the diff_id the evidence recorded,
    /// which the layer's bytes no longer hash to. `diff_id` is then the digest of the
    /// as-found bytes, and the config must already claim it (see [`rewrite_diff_ids`]).
    /// The layer's descriptor in the OCI manifest is annotated with both
    /// ([`ANNOTATION_FORCED`], [`ANNOTATION_ORIGINAL_DIFF_ID`]), its `LayerSources` entry
    /// in `manifest.json` likewise, and a top-level [`FORCED_FILE`] lists every such layer.
    pub forced_from: Option<String>,
}

/// Annotation on the manifest's descriptor of a layer exported as found: `"as-found"`.
pub const ANNOTATION_FORCED: &str = "io.salvor.forced";
/// Annotation on the manifest's descriptor of a layer exported as found: the diff_id the
/// evidence recorded for it.
pub const ANNOTATION_ORIGINAL_DIFF_ID: &str = "io.salvor.forced.original-diff-id";
/// Top-level file of an archive holding layers exported as found (`docker load` ignores it):
/// `{"forced_layers":[{"diff_id":…,"original_diff_id":…,"size":…,"images":[…]}]}`.
pub const FORCED_FILE: &str = "salvor-forced.json";

/// Errors of [`rewrite_diff_ids`].
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The config is not a JSON object with a `rootfs.diff_ids` array of strings.
    #[error("image config: {0}")]
    Malformed(String),
    /// The replacement list does not have one entry per diff_id.
    #[error("image config has {have} diff_ids, {given} replacements given")]
    Count { have: usize, given: usize },
}

/// The exact byte range of each top-level member value of a JSON object, by key.
fn member_spans(json: &str) -> Result<Vec<(String, std::ops::Range<usize>)>, RewriteError> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    struct Spans<'a>(&'a str);
    impl<'de> Visitor<'de> for Spans<'de> {
        type Value = Vec<(String, std::ops::Range<usize>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = m.next_entry::<String, &'de serde_json::value::RawValue>()? {
                let start = v.get().as_ptr() as usize - self.0.as_ptr() as usize;
                out.push((k, start..start + v.get().len()));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.deserialize_map(Spans(json))
        .map_err(|e| RewriteError::Malformed(e.to_string()))
}

/// The config with `rootfs.diff_ids[i]` replaced by `new[i]` where they differ; every other
/// byte is kept as it was (so the image id changes only because the diff_ids do).
pub fn rewrite_diff_ids(config: &[u8], new: &[String]) -> Result<Vec<u8>, RewriteError> {
    let text = std::str::from_utf8(config)
        .map_err(|e| RewriteError::Malformed(format!("not UTF-8: {e}")))?;
    let bad = |what: &str| RewriteError::Malformed(what.to_string());
    let top = member_spans(text)?;
    let (_, rootfs) = top
        .iter()
        .rfind(|(k, _)| k == "rootfs")
        .ok_or_else(|| bad("no rootfs"))?;
    let inner = member_spans(&text[rootfs.clone()])?;
    let (_, ids) = inner
        .iter()
        .rfind(|(k, _)| k == "diff_ids")
        .ok_or_else(|| bad("no rootfs.diff_ids"))?;
    let ids = rootfs.start + ids.start..rootfs.start + ids.end;
    let arr: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text[ids.clone()])
        .map_err(|e| bad(&format!("rootfs.diff_ids: {e}")))?;
    if arr.len() != new.len() {
        return Err(RewriteError::Count {
            have: arr.len(),
            given: new.len(),
        });
    }
    let mut out = Vec::with_capacity(config.len() + 80 * new.len());
    let mut at = 0usize;
    for (raw, want) in arr.iter().zip(new) {
        let old: String = serde_json::from_str(raw.get())
            .map_err(|_| bad("rootfs.diff_ids holds a non-string"))?;
        if &old == want {
            continue;
        }
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        out.extend_from_slice(&config[at..start]);
        out.extend_from_slice(
            serde_json::to_string(want)
                .map_err(|e| bad(&e.to_string()))?
                .as_bytes(),
        );
        at = start + raw.get().len();
    }
    out.extend_from_slice(&config[at..]);
    Ok(out)
}

/// Error of a [`LayerSource`].
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The source has no such layer.
    #[error("layer not available: {0}")]
    NotFound(String),
    /// I/O error while producing or writing the layer.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Produces layer tars. Implemented by the caller.
pub trait LayerSource: Sync {
    /// Write exactly the layer's bytes into `out` and return the sha256 of what
    /// was written (`sha256:<hex>`). The exporter hashes what passes through
    /// as well and cross-checks both against the diff_id.
    fn write_layer(&self, diff_id: &str, out: &mut dyn Write) -> Result<String, LayerError>;

    /// `true` when the digest [`write_layer`](Self::write_layer) returns is computed over
    /// exactly the bytes it wrote (salvor's layer rebuilder hashes its own output). The
    /// exporter then counts the bytes but does not hash them a second time, which would cost
    /// a whole extra SHA-256 pass per layer; the digest is still checked against the diff_id.
    fn digests_what_it_writes(&self) -> bool {
        false
    }
}

/// Where to write.
#[derive(Clone, Debug)]
pub enum Output {
    /// A tar file; `-` = stdout.
    Tar(PathBuf),
    /// A directory (must not exist, or be empty).
    Dir(PathBuf),
}

/// Options of [`export`].
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub format: Format,
    pub output: Output,
    /// Write layers concurrently (only for [`Output::Dir`]).
    pub parallel: bool,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct ExportReport {
    /// (path in archive, sha256 hex, size) of every regular file, in archive order.
    pub files: Vec<(String, String, u64)>,
    /// sha256 hex of the whole tar ([`Output::Tar`] only).
    pub archive_sha256: Option<String>,
    /// Number of layer tars streamed from the source.
    pub layers_written: usize,
    /// Bytes written (tar size, or sum of file sizes for a directory).
    pub bytes: u64,
}

/// Errors of [`export`].
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("image {image}: {reason}")]
    InvalidImage { image: String, reason: String },
    #[error("layer {diff_id}: content has digest {actual}")]
    DigestMismatch { diff_id: String, actual: String },
    #[error("layer {diff_id}: declared size {expected} bytes, source wrote {actual}")]
    SizeMismatch {
        diff_id: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer {diff_id}: source reported digest {reported} but wrote {actual}")]
    SourceDigestMismatch {
        diff_id: String,
        reported: String,
        actual: String,
    },
    #[error("layer {diff_id}: {source}")]
    Layer {
        diff_id: String,
        #[source]
        source: LayerError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("output {} exists and is not an empty directory", .0.display())]
    OutputExists(PathBuf),
    /// Opening, writing or placing the output failed (names the output, never the
    /// evidence), or the output was refused.
    #[error(transparent)]
    Sink(#[from] salvor_sink::SinkError),
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ExportError {
    let path = path.into();
    move |source| ExportError::Io { path, source }
}

// ---------------------------------------------------------------------------
// Plan

enum Content {
    Dir,
    Bytes(Vec<u8>),
    Layer { diff_id: String, size: u64 },
    Symlink(String),
}

struct Entry {
    path: String,
    content: Content,
    mtime: i64,
}

/// Archive entries keyed by path components (WalkDir order).
#[derive(Default)]
struct Plan {
    entries: BTreeMap<Vec<String>, Entry>,
}

impl Plan {
    fn add(&mut self, path: &str, content: Content, mtime: i64, dir_mtime: i64) {
        let comps: Vec<String> = path.split('/').map(str::to_string).collect();
        for n in 1..comps.len() {
            let key = comps[..n].to_vec();
            self.entries.entry(key.clone()).or_insert_with(|| Entry {
                path: key.join("/"),
                content: Content::Dir,
                mtime: dir_mtime,
            });
        }
        self.entries.entry(comps).or_insert_with(|| Entry {
            path: path.to_string(),
            content,
            mtime,
        });
    }
    fn has(&self, path: &str) -> bool {
        let comps: Vec<String> = path.split('/').map(str::to_string).collect();
        self.entries.contains_key(&comps)
    }
}

fn hex_of(digest: &str) -> Option<&str> {
    salvor_oci::Digest::parse(digest)
        .is_ok()
        .then(|| &digest["sha256:".len()..])
}

fn chain_ids(diff_ids: &[&str]) -> Vec<String> {
    salvor_oci::chain_ids_text(diff_ids)
}

/// A validated image.
struct Prepared<'a> {
    img: &'a ImageToExport,
    tags: Vec<reference::TagRef>,
    v1: V1Image,
    created: i64,
}

fn prepare(img: &ImageToExport) -> Result<Prepared<'_>, ExportError> {
    let bad = |reason: String| ExportError::InvalidImage {
        image: img.id.clone(),
        reason,
    };
    let id_hex = hex_of(&img.id).ok_or_else(|| bad("id is not sha256:<64 hex>".into()))?;
    let actual = hex::encode(Sha256::digest(&img.config));
    if actual != id_hex {
        return Err(bad(format!("config has digest sha256:{actual}")));
    }
    let config: Value = serde_json::from_slice(&img.config)
        .map_err(|e| bad(format!("config is not valid JSON: {e}")))?;
    let diff_ids: Vec<&str> = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|d| d.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    let given: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
    if diff_ids != given {
        return Err(bad(format!(
            "config rootfs.diff_ids {diff_ids:?} differ from the layers given {given:?}"
        )));
    }
    if img.layers.is_empty() {
        return Err(bad("image has no layers (the engine cannot save it)".into()));
    }
    for l in &img.layers {
        if hex_of(&l.diff_id).is_none()
            || l.forced_from
                .as_deref()
                .is_some_and(|f| hex_of(f).is_none())
        {
            return Err(bad(format!(
                "layer diff_id {:?} (forced from {:?}) is not sha256:<64 hex>",
                l.diff_id, l.forced_from
            )));
        }
    }
    let tags = img
        .repo_tags
        .iter()
        .map(|t| reference::parse(t).map_err(|e| bad(format!("tag {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let v1 = V1Image::from_config(&config).map_err(|e| bad(format!("config: {e}")))?;
    let created = v1.created_unix().unwrap_or(0).max(0);
    Ok(Prepared {
        img,
        tags,
        v1,
        created,
    })
}

/// Go's `distribution.Descriptor` fields, decoded from `descriptor.json`.
struct Desc {
    media_type: String,
    size: i64,
    digest: String,
    urls: Option<Vec<String>>,
    annotations: Option<BTreeMap<String, String>>,
    platform: Option<String>,
}

fn platform_json(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut p = Obj::new();
    p.str("architecture", &s("architecture"))
        .str("os", &s("os"))
        .str_oe("os.version", &s("os.version"));
    if let Some(f) = o.get("os.features").and_then(Value::as_array) {
        if !f.is_empty() {
            let v: Vec<String> = f
                .iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect();
            p.raw("os.features", &gojson::str_slice(Some(&v)));
        }
    }
    p.str_oe("variant", &s("variant"));
    Some(p.finish())
}

fn layer_desc(l: &LayerRef) -> Desc {
    let d = l.descriptor.as_ref();
    let s = |k: &str| {
        d.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut desc = Desc {
        media_type: s("mediaType"),
        size: d
            .and_then(|d| d.get("size"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
        digest: s("digest"),
        urls: d
            .and_then(|d| d.get("urls"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            }),
        annotations: d
            .and_then(|d| d.get("annotations"))
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            }),
        platform: d.and_then(|d| d.get("platform")).and_then(platform_json),
    };
    if desc.digest.is_empty() || l.forced_from.is_some() {
        desc.digest = l.diff_id.clone();
        desc.size = i64::try_from(l.size).unwrap_or(i64::MAX);
    }
    if let Some(orig) = &l.forced_from {
        // The recorded descriptor (media type, urls) described the original blob.
        desc.media_type = MT_LAYER.to_string();
        desc.urls = None;
        let a = desc.annotations.get_or_insert_with(BTreeMap::new);
        a.insert(ANNOTATION_FORCED.to_string(), "as-found".to_string());
        a.insert(ANNOTATION_ORIGINAL_DIFF_ID.to_string(), orig.clone());
    }
    if desc.media_type.is_empty() {
        desc.media_type = MT_LAYER.to_string();
    }
    desc
}

fn annotations_json(a: &BTreeMap<String, String>) -> String {
    let m: BTreeMap<String, String> = a
        .iter()
        .map(|(k, v)| (k.clone(), gojson::quote(v)))
        .collect();
    gojson::map_raw(&m)
}

impl Desc {
    fn tail(&self, o: &mut Obj) {
        if let Some(u) = self.urls.as_ref().filter(|u| !u.is_empty()) {
            o.raw("urls", &gojson::str_slice(Some(u)));
        }
        if let Some(a) = self.annotations.as_ref().filter(|a| !a.is_empty()) {
            o.raw("annotations", &annotations_json(a));
        }
        if let Some(p) = &self.platform {
            o.raw("platform", p);
        }
    }
    /// `distribution.Descriptor` (mediaType, size, digest, … all omitempty).
    fn distribution_json(&self) -> String {
        let mut o = Obj::new();
        o.str_oe("mediaType", &self.media_type);
        if self.size != 0 {
            o.raw("size", &self.size.to_string());
        }
        o.str_oe("digest", &self.digest);
        self.tail(&mut o);
        o.finish()
    }
    /// `ocispec.Descriptor` (mediaType, digest, size, urls, annotations, …).
    fn oci_json(&self) -> String {
        let mut o = Obj::new();
        o.str("mediaType", &self.media_type)
            .str("digest", &self.digest)
            .raw("size", &self.size.to_string());
        self.tail(&mut o);
        o.finish()
    }
}

fn plain_desc(mt: &str, digest: &str, size: usize) -> Obj {
    let mut o = Obj::new();
    o.str("mediaType", mt)
        .str("digest", digest)
        .raw("size", &size.to_string());
    o
}

struct ManifestItem {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
    parent: Option<String>,
    layer_sources: BTreeMap<String, String>,
}

fn manifest_json(items: &[ManifestItem]) -> Vec<u8> {
    let mut s = String::from("[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let mut o = Obj::new();
        o.str("Config", &it.config)
            .raw("RepoTags", &gojson::str_slice(it.repo_tags.as_deref()))
            .raw("Layers", &gojson::str_slice(Some(&it.layers)));
        if let Some(p) = &it.parent {
            o.str("Parent", p);
        }
        if !it.layer_sources.is_empty() {
            o.raw("LayerSources", &gojson::map_raw(&it.layer_sources));
        }
        s.push_str(&o.finish());
    }
    s.push_str("]\n");
    s.into_bytes()
}

fn repositories_json(repos: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<u8> {
    let m: BTreeMap<String, String> = repos
        .iter()
        .map(|(name, tags)| {
            let t: BTreeMap<String, String> = tags
                .iter()
                .map(|(k, v)| (k.clone(), gojson::quote(v)))
                .collect();
            (name.clone(), gojson::map_raw(&t))
        })
        .collect();
    let mut s = gojson::map_raw(&m);
    s.push('\n');
    s.into_bytes()
}

/// The [`FORCED_FILE`] of an archive, when some layer is exported as found.
fn forced_json(images: &[ImageToExport]) -> Option<Vec<u8>> {
    let mut by_layer: BTreeMap<(&str, &str), (u64, Vec<&str>)> = BTreeMap::new();
    for img in images {
        for l in &img.layers {
            if let Some(orig) = &l.forced_from {
                let e = by_layer
                    .entry((l.diff_id.as_str(), orig.as_str()))
                    .or_insert((l.size, Vec::new()));
                if !e.1.contains(&img.id.as_str()) {
                    e.1.push(&img.id);
                }
            }
        }
    }
    if by_layer.is_empty() {
        return None;
    }
    let layers: Vec<Value> = by_layer
        .into_iter()
        .map(|((diff_id, orig), (size, imgs))| {
            serde_json::json!({
                "status": "FORCED",
                "diff_id": diff_id,
                "original_diff_id": orig,
                "size": size,
                "images": imgs,
                "meaning": "the layer as the evidence holds it now; it does not hash to original_diff_id",
            })
        })
        .collect();
    let mut out =
        serde_json::to_vec_pretty(&serde_json::json!({ "forced_layers": layers })).ok()?;
    out.push(b'\n');
    Some(out)
}

fn merge_images(images: &[ImageToExport]) -> Vec<ImageToExport> {
    let mut out: Vec<ImageToExport> = Vec::new();
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for img in images {
        match idx.get(img.id.as_str()) {
            Some(&i) => {
                for t in &img.repo_tags {
                    if !out[i].repo_tags.contains(t) {
                        out[i].repo_tags.push(t.clone());
                    }
                }
            }
            None => {
                idx.insert(&img.id, out.len());
                let mut c = img.clone();
                let mut seen = HashSet::new();
                c.repo_tags.retain(|t| seen.insert(t.clone()));
                out.push(c);
            }
        }
    }
    out
}

fn build_plan(images: &[ImageToExport], format: Format) -> Result<Plan, ExportError> {
    let prepared = images.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
    // layer sizes must agree across images
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for p in &prepared {
        for l in &p.img.layers {
            if let Some(s) = sizes.insert(l.diff_id.as_str(), l.size) {
                if s != l.size {
                    return Err(ExportError::InvalidImage {
                        image: p.img.id.clone(),
                        reason: format!(
                            "layer {} declared with sizes {s} and {}",
                            l.diff_id, l.size
                        ),
                    });
                }
            }
        }
    }
    let ids: HashSet<&str> = prepared.iter().map(|p| p.img.id.as_str()).collect();
    let mut plan = Plan::default();
    let mut items: Vec<ManifestItem> = Vec::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index: Vec<String> = Vec::new();
    // legacy: diff_id -> v1id that holds the real layer.tar
    let mut diff_paths: HashMap<String, String> = HashMap::new();

    for p in &prepared {
        let img = p.img;
        let ts = p.created;
        let diff_ids: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let chains = chain_ids(&diff_ids);
        let top_hex = diff_ids.last().and_then(|d| hex_of(d)).unwrap_or("");
        let id_hex = hex_of(&img.id).unwrap_or("");
        let parent = img
            .parent
            .as_ref()
            .filter(|par| par.as_str() != img.id && ids.contains(par.as_str()))
            .cloned();
        let repo_tags: Option<Vec<String>> =
            (!p.tags.is_empty()).then(|| p.tags.iter().map(|t| t.familiar()).collect());

        // v1 ids (legacy ids also for the Engine >= 25 v1 JSON blobs)
        let flavor = if format == Format::DockerLegacy {
            Flavor::Legacy
        } else {
            Flavor::Modern
        };
        let mut v1_jsons: Vec<(String, String)> = Vec::new(); // (v1id, json)
        if format != Format::Oci {
            let mut parent_v1: Option<String> = None;
            for (i, chain) in chains.iter().enumerate() {
                let mut v = if i + 1 == chains.len() {
                    p.v1.clone()
                } else {
                    V1Image::epoch()
                };
                let id = v1::create_id(&v, flavor, chain, parent_v1.as_deref());
                v.id = id.clone();
                v.parent = parent_v1.clone().unwrap_or_default();
                v.os = p.v1.os.clone();
                v1_jsons.push((id.clone(), v.marshal(flavor)));
                parent_v1 = Some(id);
            }
        }

        let mut layer_sources = BTreeMap::new();
        match format {
            Format::Docker | Format::Oci => {
                plan.add(
                    &format!("blobs/sha256/{id_hex}"),
                    Content::Bytes(img.config.clone()),
                    ts,
                    0,
                );
                let mut layer_descs = Vec::new();
                for (i, l) in img.layers.iter().enumerate() {
                    if format == Format::Docker {
                        if let Some((_, js)) = v1_jsons.get(i) {
                            let h = hex::encode(Sha256::digest(js.as_bytes()));
                            plan.add(
                                &format!("blobs/sha256/{h}"),
                                Content::Bytes(js.clone().into_bytes()),
                                ts,
                                0,
                            );
                        }
                    }
                    let h = hex_of(l.diff_id.as_str()).unwrap_or("");
                    plan.add(
                        &format!("blobs/sha256/{h}"),
                        Content::Layer {
                            diff_id: l.diff_id.clone(),
                            size: l.size,
                        },
                        ts,
                        0,
                    );
                    let d = layer_desc(l);
                    layer_sources.insert(l.diff_id.clone(), d.distribution_json());
                    layer_descs.push(d.oci_json());
                }
                let mut m = Obj::new();
                m.raw("schemaVersion", "2")
                    .str("mediaType", MT_MANIFEST)
                    .raw(
                        "config",
                        &plain_desc(MT_CONFIG, &img.id, img.config.len()).finish(),
                    )
                    .raw("layers", &format!("[{}]", layer_descs.join(",")));
                let manifest = m.finish().into_bytes();
                let mdigest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
                let mlen = manifest.len();
                plan.add(
                    &format!("blobs/sha256/{}", &mdigest[7..]),
                    Content::Bytes(manifest),
                    0,
                    0,
                );
                if p.tags.is_empty() {
                    index.push(plain_desc(MT_MANIFEST, &mdigest, mlen).finish());
                }
                for t in &p.tags {
                    let mut a = BTreeMap::new();
                    a.insert(ANNOTATION_CONTAINERD_IMAGE_NAME.to_string(), t.full());
                    a.insert(ANNOTATION_REF_NAME.to_string(), t.tag.clone());
                    let mut d = plain_desc(MT_MANIFEST, &mdigest, mlen);
                    d.raw("annotations", &annotations_json(&a));
                    index.push(d.finish());
                    repos
                        .entry(t.familiar_name.clone())
                        .or_default()
                        .insert(t.tag.clone(), top_hex.to_string());
                }
                items.push(ManifestItem {
                    config: format!("blobs/sha256/{id_hex}"),
                    repo_tags,
                    layers: img
                        .layers
                        .iter()
                        .map(|l| {
                            format!("blobs/sha256/{}", hex_of(l.diff_id.as_str()).unwrap_or(""))
                        })
                        .collect(),
                    parent,
                    layer_sources,
                });
            }
            Format::DockerLegacy => {
                let mut layers = Vec::new();
                for (l, (v1id, js)) in img.layers.iter().zip(&v1_jsons) {
                    layers.push(format!("{v1id}/layer.tar"));
                    if l.descriptor.is_some() || l.forced_from.is_some() {
                        layer_sources.insert(l.diff_id.clone(), layer_desc(l).distribution_json());
                    }
                    if plan.has(v1id) {
                        continue;
                    }
                    plan.add(v1id, Content::Dir, ts, ts);
                    plan.add(
                        &format!("{v1id}/VERSION"),
                        Content::Bytes(b"1.0".to_vec()),
                        ts,
                        ts,
                    );
                    plan.add(
                        &format!("{v1id}/json"),
                        Content::Bytes(js.clone().into_bytes()),
                        ts,
                        ts,
                    );
                    let content = match diff_paths.get(l.diff_id.as_str()) {
                        Some(other) => Content::Symlink(format!("../{other}/layer.tar")),
                        None => {
                            diff_paths.insert(l.diff_id.clone(), v1id.clone());
                            Content::Layer {
                                diff_id: l.diff_id.clone(),
                                size: l.size,
                            }
                        }
                    };
                    plan.add(&format!("{v1id}/layer.tar"), content, ts, ts);
                }
                plan.add(
                    &format!("{id_hex}.json"),
                    Content::Bytes(img.config.clone()),
                    ts,
                    0,
                );
                let top_v1 = v1_jsons
                    .last()
                    .map(|(id, _)| id.clone())
                    .unwrap_or_default();
                for t in &p.tags {
                    repos
                        .entry(t.familiar_name.clone())
                        .or_default()
                        .insert(t.tag.clone(), top_v1.clone());
                }
                items.push(ManifestItem {
                    config: format!("{id_hex}.json"),
                    repo_tags,
                    layers,
                    parent,
                    layer_sources,
                });
            }
        }
    }

    if format != Format::DockerLegacy {
        plan.add("oci-layout", Content::Bytes(OCI_LAYOUT.into()), 0, 0);
        let mut idx = Obj::new();
        idx.raw("schemaVersion", "2")
            .str("mediaType", MT_INDEX)
            .raw("manifests", &format!("[{}]", index.join(",")));
        plan.add(
            "index.json",
            Content::Bytes(idx.finish().into_bytes()),
            0,
            0,
        );
    }
    if let Some(forced) = forced_json(images) {
        plan.add(FORCED_FILE, Content::Bytes(forced), 0, 0);
    }
    if format != Format::Oci {
        plan.add("manifest.json", Content::Bytes(manifest_json(&items)), 0, 0);
        if !repos.is_empty() {
            plan.add(
                "repositories",
                Content::Bytes(repositories_json(&repos)),
                0,
                0,
            );
        }
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------
// Writing

/// Counts, hashes and bounds the bytes of one layer on their way to `inner`.
struct LayerPipe<'a> {
    inner: &'a mut dyn Write,
    hasher: Option<Sha256>,
    written: u64,
    limit: u64,
    overflow: bool,
}

impl Write for LayerPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.overflow = true;
            return Err(io::Error::other(
                "layer source wrote more than the declared size",
            ));
        }
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stream one layer into `out`, verify it; returns the hex digest.
fn stream_layer(
    src: &dyn LayerSource,
    diff_id: &str,
    size: u64,
    out: &mut dyn Write,
) -> Result<String, ExportError> {
    let trust = src.digests_what_it_writes();
    let mut pipe = LayerPipe {
        inner: out,
        hasher: (!trust).then(Sha256::new),
        written: 0,
        limit: size,
        overflow: false,
    };
    let res = src.write_layer(diff_id, &mut pipe);
    let actual = match (&pipe.hasher, &res) {
        (Some(h), _) => format!("sha256:{}", hex::encode(h.clone().finalize())),
        (None, Ok(reported)) => reported.to_ascii_lowercase(),
        (None, Err(_)) => String::new(),
    };
    let actual_hex = actual
        .strip_prefix("sha256:")
        .unwrap_or(&actual)
        .to_string();
    if pipe.overflow || (res.is_ok() && pipe.written != size) {
        return Err(ExportError::SizeMismatch {
            diff_id: diff_id.to_string(),
            expected: size,
            actual: pipe.written + u64::from(pipe.overflow),
        });
    }
    let reported = res.map_err(|source| ExportError::Layer {
        diff_id: diff_id.to_string(),
        source,
    })?;
    if actual != diff_id {
        return Err(ExportError::DigestMismatch {
            diff_id: diff_id.to_string(),
            actual,
        });
    }
    if !reported.eq_ignore_ascii_case(&actual) {
        return Err(ExportError::SourceDigestMismatch {
            diff_id: diff_id.to_string(),
            reported,
            actual,
        });
    }
    Ok(actual_hex)
}

fn write_tar<W: Write>(
    plan: &Plan,
    src: &dyn LayerSource,
    w: W,
    label: &Path,
) -> Result<(W, ExportReport), ExportError> {
    let mut t = tarw::TarOut::new(w);
    let mut report = ExportReport::default();
    let e = |source: io::Error| ExportError::Io {
        path: label.to_path_buf(),
        source,
    };
    for entry in plan.entries.values() {
        match &entry.content {
            Content::Dir => {
                let h = tarw::header(
                    &format!("{}/", entry.path),
                    tarw::Kind::Dir,
                    0,
                    entry.mtime,
                    "",
                )
                .map_err(e)?;
                t.write_all(&h).map_err(e)?;
            }
            Content::Symlink(target) => {
                let h = tarw::header(&entry.path, tarw::Kind::Symlink, 0, entry.mtime, target)
                    .map_err(e)?;
                t.write_all(&h).map_err(e)?;
            }
            Content::Bytes(b) => {
                let h = tarw::header(
                    &entry.path,
                    tarw::Kind::File,
                    b.len() as u64,
                    entry.mtime,
                    "",
                )
                .map_err(e)?;
                t.write_all(&h).map_err(e)?;
                t.write_all(b).map_err(e)?;
                t.pad(b.len() as u64).map_err(e)?;
                report.files.push((
                    entry.path.clone(),
                    hex::encode(Sha256::digest(b)),
                    b.len() as u64,
                ));
            }
            Content::Layer { diff_id, size } => {
                let h = tarw::header(&entry.path, tarw::Kind::File, *size, entry.mtime, "")
                    .map_err(e)?;
                t.write_all(&h).map_err(e)?;
                let hx = stream_layer(src, diff_id, *size, &mut t)?;
                t.pad(*size).map_err(e)?;
                report.files.push((entry.path.clone(), hx, *size));
                report.layers_written += 1;
            }
        }
    }
    let (w, digest, bytes) = t.finish().map_err(e)?;
    report.archive_sha256 = Some(digest);
    report.bytes = bytes;
    Ok((w, report))
}

fn set_mtime(path: &Path, shown: &Path, mtime: i64) -> Result<(), ExportError> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(shown))?;
    f.set_modified(t).map_err(io_err(shown))
}

fn write_dir(
    plan: &Plan,
    src: &dyn LayerSource,
    sink: &DirSink,
    parallel: bool,
) -> Result<ExportReport, ExportError> {
    let root = sink.path();
    let mut report = ExportReport::default();
    let mut layers: Vec<(&Entry, &str, u64)> = Vec::new();
    for entry in plan.entries.values() {
        let p = root.join(&entry.path);
        let shown = sink.final_path(&entry.path);
        match &entry.content {
            Content::Dir => std::fs::create_dir_all(&p).map_err(io_err(&shown))?,
            Content::Bytes(b) => {
                let mut f = sink.create_file(&entry.path)?;
                if f.write_all(b).is_err() {
                    if let Some(e) = f.error() {
                        return Err(e.into());
                    }
                }
                drop(f);
                set_mtime(&p, &shown, entry.mtime)?;
            }
            Content::Symlink(target) => {
                #[cfg(unix)]
                std::os::unix::fs::symlink(target, &p).map_err(io_err(&shown))?;
                #[cfg(not(unix))]
                return Err(ExportError::Io {
                    path: shown,
                    source: io::Error::other(format!("cannot create symlink to {target}")),
                });
            }
            Content::Layer { diff_id, size } => layers.push((entry, diff_id, *size)),
        }
    }
    let one = |(entry, diff_id, size): &(&Entry, &str, u64)| -> Result<String, ExportError> {
        let path = root.join(&entry.path);
        let f = sink.create_file(&entry.path)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        let res = stream_layer(src, diff_id, *size, &mut w);
        let flushed = w.flush();
        // A write error is the output's, whatever the layer source made of it.
        if let Some(e) = w.get_ref().error() {
            return Err(e.into());
        }
        let hx = res?;
        flushed.map_err(io_err(sink.final_path(&entry.path)))?;
        let f = w.into_inner().map_err(|e| ExportError::Io {
            path: sink.final_path(&entry.path),
            source: e.into_error(),
        })?;
        f.get_ref()
            .sync_all()
            .map_err(io_err(sink.final_path(&entry.path)))?;
        drop(f);
        set_mtime(&path, &sink.final_path(&entry.path), entry.mtime)?;
        Ok(hx)
    };
    let digests: Vec<String> = if parallel {
        layers.par_iter().map(one).collect::<Result<Vec<_>, _>>()?
    } else {
        layers.iter().map(one).collect::<Result<Vec<_>, _>>()?
    };
    let by_path: HashMap<&str, (String, u64)> = layers
        .iter()
        .zip(digests)
        .map(|((e, _, s), d)| (e.path.as_str(), (d, *s)))
        .collect();
    report.layers_written = layers.len();
    for entry in plan.entries.values() {
        match &entry.content {
            Content::Bytes(b) => report.files.push((
                entry.path.clone(),
                hex::encode(Sha256::digest(b)),
                b.len() as u64,
            )),
            Content::Layer { .. } => {
                if let Some((d, s)) = by_path.get(entry.path.as_str()) {
                    report.files.push((entry.path.clone(), d.clone(), *s));
                }
            }
            _ => {}
        }
    }
    report.bytes = report.files.iter().map(|f| f.2).sum();
    Ok(report)
}

/// Writes `images` as one tar archive into `out` (typically a [`salvor_sink::FileSink`]);
/// `label` names the output in errors. The caller commits the output.
pub fn export_tar_to(
    images: &[ImageToExport],
    layers: &dyn LayerSource,
    format: Format,
    out: &mut dyn Write,
    label: &Path,
) -> Result<ExportReport, ExportError> {
    let merged = merge_images(images);
    let plan = build_plan(&merged, format)?;
    let (_, report) = write_tar(&plan, layers, out, label)?;
    Ok(report)
}

/// Writes `images` as a directory into the build directory of `out` (files created
/// through it, so write errors name their final paths). The caller commits `out`.
pub fn export_dir_into(
    images: &[ImageToExport],
    layers: &dyn LayerSource,
    format: Format,
    parallel: bool,
    out: &DirSink,
) -> Result<ExportReport, ExportError> {
    let merged = merge_images(images);
    let plan = build_plan(&merged, format)?;
    write_dir(&plan, layers, out, parallel)
}

/// Write `images` as one archive. See the crate documentation. (No evidence guard: the
/// CLI opens its outputs through a guarded [`salvor_sink::OutputPolicy`] and calls
/// [`export_tar_to`] / [`export_dir_into`].)
pub fn export(
    images: &[ImageToExport],
    layers: &dyn LayerSource,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let policy = OutputPolicy::new(Default::default(), true);
    match &opts.output {
        Output::Tar(path) => {
            let mut sink = policy.file(path)?;
            let res = export_tar_to(images, layers, opts.format, &mut sink, path);
            if let Some(e) = sink.write_error() {
                return Err(e.into());
            }
            let report = res?;
            sink.commit()?;
            Ok(report)
        }
        Output::Dir(path) => {
            let sink = policy.dir(path).map_err(|e| match e {
                SinkError::NotEmpty { .. } | SinkError::NotADirectory { .. } => {
                    ExportError::OutputExists(path.clone())
                }
                e => e.into(),
            })?;
            let report = export_dir_into(images, layers, opts.format, opts.parallel, &sink)?;
            sink.commit()?;
            Ok(report)
        }
    }
}

/// `ChainID` of a list of diff ids (formats.md §2.2), exposed for callers/tests.
pub fn chain_id(diff_ids: &[&str]) -> Option<String> {
    chain_ids(diff_ids).pop()
}

/// The legacy (Engine <= 24) v1 ids of an image's layers, bottom to top.
pub fn legacy_v1_ids(image: &ImageToExport) -> Result<Vec<String>, ExportError> {
    let p = prepare(image)?;
    let diff_ids: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    let mut out: Vec<String> = Vec::new();
    let chains = chain_ids(&diff_ids);
    for (i, chain) in chains.iter().enumerate() {
        let v = if i + 1 == chains.len() {
            p.v1.clone()
        } else {
            V1Image::epoch()
        };
        let id = v1::create_id(&v, Flavor::Legacy, chain, out.last().map(String::as_str));
        out.push(id);
    }
    Ok(out)
}

/// The archive's non-layer regular files (path, exact bytes), in archive
/// order, without writing anything or touching a [`LayerSource`]: useful for
/// dry runs and for checking metadata against an engine's output.
pub fn metadata_files(
    images: &[ImageToExport],
    format: Format,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    let plan = build_plan(&merge_images(images), format)?;
    Ok(plan
        .entries
        .into_values()
        .filter_map(|e| match e.content {
            Content::Bytes(b) => Some((e.path, b)),
            _ => None,
        })
        .collect())
}
