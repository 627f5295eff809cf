//! `extract` of a containerd store's images with their blobs as stored
//! ([`salvor_export::export_stored_tar_to`]): the archive Docker 26's `docker save` writes
//! with the containerd image store, so that the manifest digests in it are the registry's
//! and `docker load` / `ctr images import` give the image the same id.
//!
//! [`stored_images`] turns the images picked (with the reference each was asked for by)
//! into [`StoredImage`]s from the manifest bytes the store holds; [`ContentBlobs`] streams
//! the blobs from the content store, counting bytes for a progress bar.

use std::io::{self, Read, Write};

use anyhow::{anyhow, bail, Context};
use salvor_containerd::ContainerdStore;
use salvor_export::{BlobSource, LayerError, StoredBlob, StoredImage, StoredRef};
use salvor_model::ContainerStore;
use salvor_oci::{Digest, Reference};

/// The descriptor a manifest names (`config`, `layers[]`).
fn descriptor(v: &serde_json::Value, what: &str, image: &str) -> anyhow::Result<StoredBlob> {
    let digest = v["digest"]
        .as_str()
        .ok_or_else(|| anyhow!("image {image}: its manifest's {what} has no digest"))?;
    let digest = Digest::parse(digest)
        .map_err(|e| anyhow!("image {image}: its manifest's {what} digest {digest:?}: {e}"))?;
    let size = v["size"]
        .as_u64()
        .ok_or_else(|| anyhow!("image {image}: its manifest's {what} has no size"))?;
    Ok(StoredBlob { digest, size })
}

/// One image to save: its id and the reference it was asked for by (`None`: by id).
#[derive(Debug, Clone)]
pub struct Pick {
    /// The image id (the manifest's or index's digest).
    pub id: String,
    /// The name given on the command line, when the image was asked for by name.
    pub reference: Option<String>,
}

/// The images of `store` to save, as [`StoredImage`]s: the manifest (or index) the id
/// names, the platform manifest chosen from an index, the config and the layer blobs the
/// manifest lists; each reference as meta.db names it.
pub fn stored_images(store: &ContainerdStore, picks: &[Pick]) -> anyhow::Result<Vec<StoredImage>> {
    let mut out = Vec::new();
    for p in picks {
        let records: Vec<&salvor_containerd::ImageRecord> = store
            .namespace()
            .images
            .iter()
            .filter(|r| r.target.digest.as_deref() == Some(p.id.as_str()))
            .collect();
        let Some(first) = records.first() else {
            bail!(
                "image {}: not in namespace {}",
                p.id,
                store.namespace().name
            );
        };
        let media_type = first.target.media_type.clone().unwrap_or_default();
        let size = first
            .target
            .size
            .and_then(|s| u64::try_from(s).ok())
            .ok_or_else(|| anyhow!("image {}: meta.db records no size for it", p.id))?;
        let id = Digest::parse(&p.id).map_err(|e| anyhow!("image {}: {e}", p.id))?;
        let manifest_bytes = store
            .manifest_bytes(&p.id)
            .map_err(|e| anyhow!("image {}: {}", p.id, salvor_model::error_chain(&e)))?
            .ok_or_else(|| anyhow!("image {}: its manifest is not in the content store", p.id))?;
        let mdigest = Digest::sha256_of(&manifest_bytes);
        let extra = if mdigest == id {
            Vec::new()
        } else {
            vec![StoredBlob {
                digest: mdigest,
                size: manifest_bytes.len() as u64,
            }]
        };
        let m: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .with_context(|| format!("image {}: its manifest is not JSON", p.id))?;
        let config = descriptor(&m["config"], "config", &p.id)?;
        let layers = m["layers"]
            .as_array()
            .ok_or_else(|| anyhow!("image {}: its manifest lists no layers", p.id))?
            .iter()
            .enumerate()
            .map(|(i, l)| descriptor(l, &format!("layer {i}"), &p.id))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut refs = Vec::new();
        if let Some(q) = &p.reference {
            let want = Reference::parse(q).ok().map(|r| r.normalized());
            let named = records
                .iter()
                .find(|r| Some(&r.name) == want.as_ref() || &r.name == q);
            if let Some(r) = named {
                if let Ok(re) = Reference::parse(&r.name) {
                    refs.push(StoredRef {
                        full: r.name.clone(),
                        familiar: re.familiar(),
                        tag: re.tag.clone(),
                    });
                }
            }
        }
        out.push(StoredImage {
            manifest: StoredBlob { digest: id, size },
            manifest_media_type: media_type,
            extra,
            config,
            layers,
            refs,
        });
    }
    Ok(out)
}

/// The content store's blobs, read from the evidence; `progress` is told the bytes read.
pub struct ContentBlobs<'a> {
    /// The store whose content store holds them.
    pub store: &'a ContainerdStore,
    /// Called with the number of bytes copied as they are copied.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

impl BlobSource for ContentBlobs<'_> {
    fn write_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<(), LayerError> {
        let content = self
            .store
            .located()
            .root
            .join(salvor_containerd::store::CONTENT);
        let path = salvor_containerd::blob_path(&content, digest.as_str())
            .map_err(|e| LayerError::Other(e.to_string()))?;
        let mut f = self.store.source().open(&path).map_err(|e| {
            if e.is_not_found() {
                LayerError::NotFound(format!(
                    "blob {digest} is not in the content store ({}): discarded after unpacking, or removed",
                    path.display()
                ))
            } else {
                LayerError::Other(format!("{}: {}", path.display(), salvor_model::error_chain(&e)))
            }
        })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LayerError::Other(format!("{}: {e}", path.display())));
                }
            };
            out.write_all(&buf[..n])?;
            (self.progress)(n as u64);
        }
        Ok(())
    }
}

/// A containerd store's images as [`salvor_export::ImageToExport`]s for the formats that
/// carry uncompressed layers (`docker-legacy`, `oci`): the config as stored (the image is
/// then known by its config digest, as Docker's graphdriver store knows it), each layer by
/// its diff_id with the size of its decompressed tar from `tar_sizes` (chain id → bytes,
/// from the verify pass that decompressed each once).
pub fn uncompressed_images(
    store: &ContainerdStore,
    picks: &[Pick],
    tar_sizes: &std::collections::BTreeMap<String, u64>,
) -> anyhow::Result<Vec<salvor_export::ImageToExport>> {
    let mut out = Vec::new();
    for p in picks {
        let config = store
            .config_bytes(&p.id)
            .map_err(|e| anyhow!("image {}: {}", p.id, salvor_model::error_chain(&e)))?;
        let record = store
            .images()
            .into_iter()
            .find(|i| i.id == p.id)
            .ok_or_else(|| anyhow!("image {}: not in the store", p.id))?;
        let mut layers = Vec::new();
        for chain in &record.layers {
            let l = store
                .layer(chain)
                .ok_or_else(|| anyhow!("image {}: layer {chain} is not in the store", p.id))?;
            let diff_id = l
                .diff_id
                .ok_or_else(|| anyhow!("image {}: layer {chain} has no diff_id", p.id))?;
            let size = *tar_sizes
                .get(chain)
                .ok_or_else(|| anyhow!("image {}: layer {chain} was not decompressed", p.id))?;
            layers.push(salvor_export::LayerRef {
                diff_id,
                size,
                descriptor: None,
                forced_from: None,
            });
        }
        let repo_tags = p
            .reference
            .iter()
            .filter_map(|q| Reference::parse(q).ok())
            .map(|r| {
                if r.tag.is_none() && r.digest.is_none() {
                    format!("{}:latest", r.familiar_name())
                } else {
                    r.familiar()
                }
            })
            .collect();
        out.push(salvor_export::ImageToExport {
            id: Digest::sha256_of(&config),
            config: config.to_vec(),
            repo_tags,
            layers,
            parent: None,
        });
    }
    Ok(out)
}

/// Decompressed layer tars of a containerd store, by diff_id, for
/// [`salvor_export::export_tar_to`]: each layer's blob streamed through the store's
/// decompressor ([`ContainerStore::rebuild_layer`]), which hashes what it writes.
pub struct DecompressedLayers<'a> {
    /// The store.
    pub store: &'a ContainerdStore,
    /// diff_id → chain id of the layers to write.
    pub chains: std::collections::BTreeMap<String, String>,
    /// Called with the bytes written as they are written.
    pub progress: &'a (dyn Fn(u64) + Sync),
}

impl salvor_export::LayerSource for DecompressedLayers<'_> {
    fn write_layer(&self, diff_id: &str, out: &mut dyn Write) -> Result<String, LayerError> {
        let chain = self
            .chains
            .get(diff_id)
            .ok_or_else(|| LayerError::NotFound(diff_id.to_string()))?;
        let mut w = crate::extract::ProgressWriter {
            out,
            progress: self.progress,
        };
        let r = self.store.rebuild_layer(chain, &mut w)?;
        match (r.status, r.actual) {
            (salvor_model::RebuildStatus::Verified, Some(actual)) => Ok(actual),
            (_, actual) => Err(LayerError::Other(format!(
                "layer {chain}: its blob does not decompress to its diff_id {diff_id} ({})",
                actual
                    .as_deref()
                    .map(|a| format!("it hashes to {a}"))
                    .or(r.error.clone())
                    .unwrap_or_else(|| "unreadable".into())
            ))),
        }
    }

    fn digests_what_it_writes(&self) -> bool {
        true
    }
}

/// An offline `docker commit` of a container of Docker's containerd image store: its
/// changes (the read-write snapshot against the snapshots under it) as a layer the way
/// containerd's diff writes one (every changed path in name order, whiteouts as `.wh.`
/// files of mode 0 — whose mtime the engine takes from the commit's wall clock; salvor uses
/// the container's finish time), spooled to a file in `spool_dir`.
pub struct ContainerdCommit {
    /// The committed image's config (over its image's, as `docker commit` makes it).
    pub config: Vec<u8>,
    /// The image it was created from (its manifest digest), when known.
    pub base: Option<String>,
    /// The new layer: (diff_id, bytes, spooled file); `None` when nothing changed.
    pub layer: Option<(String, u64, tempfile::TempPath)>,
}

/// Commits container `c` (Docker's record of it) of `store` (its `moby` namespace).
pub fn commit_containerd(
    store: &ContainerdStore,
    c: &salvor_docker::Container,
    spool_dir: &std::path::Path,
) -> anyhow::Result<ContainerdCommit> {
    use salvor_model::ViewFiles;
    let short = &c.id[..c.id.len().min(12)];
    let view = store
        .rw_layer_view(&c.id)
        .map_err(|e| anyhow!("container {short}: {}", salvor_model::error_chain(&e)))?;
    let ViewFiles::Diff { dir, lowers, style } = &view.files else {
        bail!("container {short}: its read-write snapshot is not an overlay upper directory");
    };
    let src = view.source.as_ref();
    let upper = salvor_whiteout::LayerDir::new(src, dir, *style);
    let lowers: Vec<salvor_whiteout::LayerDir> = lowers
        .iter()
        .map(|l| salvor_whiteout::LayerDir::new(src, l, *style))
        .collect();
    let t = c
        .state
        .finished_at
        .as_deref()
        .or(c.created.as_deref())
        .and_then(crate::rootfs::rfc3339_secs)
        .unwrap_or(0);
    let spool = tempfile::Builder::new()
        .prefix(".salvor-commit.")
        .tempfile_in(spool_dir)
        .with_context(|| format!("cannot write in {}", spool_dir.display()))?;
    let (file, path) = spool.into_parts();
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let rules = salvor_whiteout::HeaderRules::engine_23();
    let (digest, size) =
        salvor_whiteout::write_naive_layer_tar_against(&upper, None, &lowers, &rules, t, &mut w)?;
    w.flush()?;
    let base = c
        .image_id
        .clone()
        .filter(|i| store.images().iter().any(|r| &r.id == i));
    let pcfg: serde_json::Value = match &base {
        Some(b) => serde_json::from_slice(
            &store
                .config_bytes(b)
                .map_err(|e| anyhow!("image {b}: {}", salvor_model::error_chain(&e)))?,
        )
        .with_context(|| format!("image {b}: its config is not JSON"))?,
        None => serde_json::json!({}),
    };
    let config = crate::extract::commit_config(&pcfg, c, &digest)?;
    let empty = digest == salvor_oci::EMPTY_LAYER.as_str();
    Ok(ContainerdCommit {
        config,
        base,
        layer: (!empty).then_some((digest, size, path)),
    })
}

/// [`DecompressedLayers`], and the layers spooled by commits (diff_id → file).
pub struct WithCommitted<'a> {
    /// The store's layers.
    pub layers: DecompressedLayers<'a>,
    /// diff_id → the spooled layer file.
    pub committed: std::collections::BTreeMap<String, std::path::PathBuf>,
}

impl salvor_export::LayerSource for WithCommitted<'_> {
    fn write_layer(&self, diff_id: &str, out: &mut dyn Write) -> Result<String, LayerError> {
        match self.committed.get(diff_id) {
            Some(p) => {
                let mut f = std::fs::File::open(p)?;
                io::copy(&mut f, out)?;
                Ok(diff_id.to_string())
            }
            None => self.layers.write_layer(diff_id, out),
        }
    }
}

/// A layer whose blob is gone (GKE's `discard_unpacked_layers`, garbage collection, a
/// deletion), rebuilt from its snapshot in salvor's documented canonical form, spooled to a
/// file in `spool_dir`: (digest, bytes, file). The form is containerd's diff of the
/// snapshot against its parents' — every path in name order, Docker >= 23's headers
/// (permission bits, numeric owners, no names), deletions as `.wh.` files of mode 0 with
/// mtime 0 — and its digest is *unproven*: nothing in the evidence says it is the layer's
/// diff_id, unless it happens to equal it.
pub fn canonical_layer(
    store: &ContainerdStore,
    chain: &str,
    spool_dir: &std::path::Path,
) -> anyhow::Result<(String, u64, tempfile::TempPath)> {
    use salvor_model::ViewFiles;
    let view = store
        .layer_view(chain)
        .map_err(|e| anyhow!("layer {chain}: {}", salvor_model::error_chain(&e)))?;
    let src = view.source.as_ref();
    let (upper, lowers): (salvor_whiteout::LayerDir, Vec<salvor_whiteout::LayerDir>) =
        match &view.files {
            ViewFiles::Snapshot { root, .. } => (
                salvor_whiteout::LayerDir::new(src, root, salvor_model::WhiteoutStyle::Overlay),
                Vec::new(),
            ),
            ViewFiles::Diff { dir, lowers, style } => (
                salvor_whiteout::LayerDir::new(src, dir, *style),
                lowers
                    .iter()
                    .map(|l| salvor_whiteout::LayerDir::new(src, l, *style))
                    .collect(),
            ),
            ViewFiles::Unavailable { reason } => {
                bail!("layer {chain}: its snapshot cannot be read: {reason}")
            }
        };
    let spool = tempfile::Builder::new()
        .prefix(".salvor-canonical.")
        .tempfile_in(spool_dir)
        .with_context(|| format!("cannot write in {}", spool_dir.display()))?;
    let (file, path) = spool.into_parts();
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let rules = salvor_whiteout::HeaderRules::engine_23();
    let (digest, size) =
        salvor_whiteout::write_naive_layer_tar_against(&upper, None, &lowers, &rules, 0, &mut w)?;
    w.flush()?;
    Ok((digest, size, path))
}
