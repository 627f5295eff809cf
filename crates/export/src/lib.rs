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
//! ## Example
//!
//! One image with the empty layer, written as Engine >= 25's `docker save` would:
//!
//! ```
//! use salvor_export::{export, ExportOptions, Format, ImageToExport, LayerError, LayerRef,
//!     LayerSource, Output};
//! use salvor_oci::{Digest, EMPTY_LAYER};
//!
//! // The caller's layer tars: here only the empty layer (1024 zero bytes).
//! struct Empty;
//! impl LayerSource for Empty {
//!     fn write_layer(&self, diff_id: &str, out: &mut dyn std::io::Write)
//!         -> Result<String, LayerError> {
//!         assert_eq!(diff_id, EMPTY_LAYER.as_str());
//!         out.write_all(&[0u8; 1024])?;
//!         Ok(diff_id.to_string())
//!     }
//! }
//!
//! let config = format!(
//!     r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
//!     EMPTY_LAYER.as_str()
//! );
//! let image = ImageToExport {
//!     id: Digest::sha256_of(config.as_bytes()),
//!     config: config.into_bytes(),
//!     repo_tags: vec!["example:latest".into()],
//!     layers: vec![LayerRef { diff_id: EMPTY_LAYER, size: 1024, descriptor: None, forced_from: None }],
//!     parent: None,
//! };
//! let dir = tempfile::tempdir().unwrap();
//! let opts = ExportOptions {
//!     format: Format::Docker,
//!     output: Output::Tar(dir.path().join("example.tar")),
//!     parallel: false,
//! };
//! let report = export(&[image], &Empty, &opts).unwrap();
//! assert_eq!(report.layers_written, 1);
//! assert!(report.files.iter().any(|(path, _, _)| path == "manifest.json"));
//! ```
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
mod stored;
mod tarw;
mod v1;

use salvor_sink::{DirSink, OutputPolicy, SinkError};

use gojson::Obj;
use rayon::prelude::*;
use salvor_oci::{DiffId, Digest};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use v1::{Flavor, V1Image};

pub use stored::{
    export_stored_tar_to, stored_index_json, stored_manifest_json, BlobSource, StoredBlob,
    StoredImage, StoredRef,
};

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
    /// sha256(config).
    pub id: Digest,
    /// Exact config bytes.
    pub config: Vec<u8>,
    /// Normalised `repo:tag` as docker shows them (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Layers in rootfs order.
    pub layers: Vec<LayerRef>,
    /// For `manifest.json` `Parent` (kept only if also exported).
    pub parent: Option<Digest>,
}

/// A layer of an image.
#[derive(Clone, Debug)]
pub struct LayerRef {
    /// The digest of the uncompressed layer tar.
    pub diff_id: DiffId,
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
    pub forced_from: Option<DiffId>,
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
#[non_exhaustive]
pub enum RewriteError {
    /// The config is not a JSON object with a `rootfs.diff_ids` array of strings.
    #[error("image config: {0}")]
    Malformed(String),
    /// The replacement list does not have one entry per diff_id.
    #[error("image config has {have} diff_ids, {given} replacements given")]
    Count {
        /// Number of `rootfs.diff_ids` in the config.
        have: usize,
        /// Number of replacements given.
        given: usize,
    },
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
#[non_exhaustive]
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
    /// The archive's layout.
    pub format: Format,
    /// Where it is written.
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
#[non_exhaustive]
pub enum ExportError {
    /// An image to export is inconsistent (its config, tags or layers).
    #[error("image {image}: {reason}")]
    InvalidImage {
        /// The image id.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The bytes the layer source wrote do not hash to the layer's diff_id.
    #[error("layer {diff_id}: content has digest {actual}")]
    DigestMismatch {
        /// The layer's diff_id (`sha256:<hex>`).
        diff_id: String,
        /// The digest of what was written.
        actual: String,
    },
    /// The layer source wrote another number of bytes than the layer's declared size.
    #[error("layer {diff_id}: declared size {expected} bytes, source wrote {actual}")]
    SizeMismatch {
        /// The layer's diff_id.
        diff_id: String,
        /// Declared size ([`LayerRef::size`]), in bytes.
        expected: u64,
        /// Bytes written (one more than the declared size when it wrote too many).
        actual: u64,
    },
    /// The layer source returned another digest than that of the bytes it wrote.
    #[error("layer {diff_id}: source reported digest {reported} but wrote {actual}")]
    SourceDigestMismatch {
        /// The layer's diff_id.
        diff_id: String,
        /// The digest the source returned.
        reported: String,
        /// The digest of what it wrote.
        actual: String,
    },
    /// The layer source failed.
    #[error("layer {diff_id}")]
    Layer {
        /// The layer's diff_id.
        diff_id: String,
        /// The source's error.
        #[source]
        source: LayerError,
    },
    /// Writing the output (the tar, or a file of a directory output) failed.
    #[error("{}", path.display())]
    Io {
        /// The output (the tar, or the file of the directory output).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [`export`] to a directory that exists and is not empty.
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

mod plan;
mod write;
use plan::*;
use write::*;

/// Writes `images` as one tar archive into `out` (typically a [`salvor_sink::FileSink`]);
/// `label` names the output in errors. The caller commits the output.
pub fn export_tar_to(
    images: &[ImageToExport],
    layers: &dyn LayerSource,
    format: Format,
    out: &mut dyn Write,
    label: &Path,
) -> Result<ExportReport, ExportError> {
    export_tar_to_with(images, layers, format, out, label, true)
}

/// [`export_tar_to`], the archive's own sha256 computed only when `hash_archive` (a whole
/// SHA-256 pass over the archive: callers that report no [`ExportReport::archive_sha256`]
/// skip it).
pub fn export_tar_to_with(
    images: &[ImageToExport],
    layers: &dyn LayerSource,
    format: Format,
    out: &mut dyn Write,
    label: &Path,
    hash_archive: bool,
) -> Result<ExportReport, ExportError> {
    let merged = merge_images(images);
    let plan = build_plan(&merged, format)?;
    let (_, report) = write_tar(&plan, layers, out, label, hash_archive)?;
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
