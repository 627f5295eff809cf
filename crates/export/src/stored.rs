//! Archives of blobs as stored: what `docker save` writes with Docker's containerd image
//! store (Engine 26), where an image is its manifest and every blob (layers compressed as
//! pulled or built) is copied, not rebuilt.
//!
//! The archive, as Docker 26.1.5 wrote it (fixtures/engine/docker26-containerd/expected/save):
//! `blobs/`, `blobs/sha256/`, every blob (each image's manifest, config and layers, each
//! once) in digest order, then `index.json`, `manifest.json`, `oci-layout`. Blobs and
//! `oci-layout` have mode 0444, `index.json` and `manifest.json` 0644, directories 0755;
//! every mtime is 0, owners 0, names empty. `index.json` has one descriptor per reference
//! asked for (annotated with `io.containerd.image.name` and
//! `org.opencontainers.image.ref.name`), or an unannotated one for an image asked by id;
//! `manifest.json` one entry per image (`RepoTags` its familiar references, `null` when
//! none). Neither file ends with a newline.
//!
//! Every blob is hashed as it streams and must hash to its digest and have its size:
//! an archive of the evidence's blobs is proof that they are the blobs the manifest names.

use std::io::{self, Write};
use std::path::Path;

use salvor_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::gojson::{self, Obj};
use crate::tarw::{header_mode, Kind, TarOut};
use crate::{io_err, ExportError, ExportReport, LayerError};

/// One reference an image is saved under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRef {
    /// The full name (`docker.io/salvor/app:1`): `io.containerd.image.name`.
    pub full: String,
    /// The familiar name (`salvor/app:1`): `RepoTags` of `manifest.json`.
    pub familiar: String,
    /// The tag (`1`): `org.opencontainers.image.ref.name`; `None` for a digest reference.
    pub tag: Option<String>,
}

/// A blob to copy: its digest and size as the manifest (or index) names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// One image to save with its blobs as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The manifest (or the index a platform's manifest was chosen from): its digest is
    /// the image id (Docker 26 with the containerd store).
    pub manifest: StoredBlob,
    /// Its media type (`application/vnd.oci.image.manifest.v1+json`, or an index's).
    pub manifest_media_type: String,
    /// Blobs between the index and the config: the platform's manifest when
    /// [`StoredImage::manifest`] is an index.
    pub extra: Vec<StoredBlob>,
    /// The config blob.
    pub config: StoredBlob,
    /// The layer blobs, in rootfs order.
    pub layers: Vec<StoredBlob>,
    /// The references it is saved under; empty for an image saved by id.
    pub refs: Vec<StoredRef>,
}

/// Produces stored blobs. Implemented by the caller (salvor-containerd's content store).
pub trait BlobSource: Sync {
    /// Writes exactly the blob's bytes into `out`.
    fn write_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<(), LayerError>;
}

/// Counts and hashes what passes.
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `index.json` of `images`, as Docker 26 writes it.
pub fn stored_index_json(images: &[StoredImage]) -> String {
    let mut descs = Vec::new();
    for img in images {
        let desc = |annotations: Option<String>| {
            let mut o = Obj::new();
            o.str("mediaType", &img.manifest_media_type)
                .str("digest", img.manifest.digest.as_str())
                .raw("size", &img.manifest.size.to_string());
            if let Some(a) = annotations {
                o.raw("annotations", &a);
            }
            o.finish()
        };
        if img.refs.is_empty() {
            descs.push(desc(None));
        }
        for r in &img.refs {
            let mut a = std::collections::BTreeMap::new();
            a.insert(
                salvor_oci::spec::ANNOTATION_CONTAINERD_IMAGE_NAME.to_string(),
                gojson::quote(&r.full),
            );
            if let Some(t) = &r.tag {
                a.insert(
                    salvor_oci::spec::ANNOTATION_REF_NAME.to_string(),
                    gojson::quote(t),
                );
            }
            descs.push(desc(Some(gojson::map_raw(&a))));
        }
    }
    let mut o = Obj::new();
    o.raw("schemaVersion", "2")
        .str("mediaType", salvor_oci::spec::MEDIA_TYPE_OCI_INDEX)
        .raw("manifests", &format!("[{}]", descs.join(",")));
    o.finish()
}

/// `manifest.json` of `images`, as Docker 26 writes it.
pub fn stored_manifest_json(images: &[StoredImage]) -> String {
    let entries: Vec<String> = images
        .iter()
        .map(|img| {
            let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
            let tags: Vec<String> = img.refs.iter().map(|r| r.familiar.clone()).collect();
            let layers: Vec<String> = img
                .layers
                .iter()
                .map(|l| gojson::quote(&path(&l.digest)))
                .collect();
            let mut o = Obj::new();
            o.str("Config", &path(&img.config.digest))
                .raw(
                    "RepoTags",
                    &gojson::str_slice((!tags.is_empty()).then_some(tags.as_slice())),
                )
                .raw("Layers", &format!("[{}]", layers.join(",")));
            o.finish()
        })
        .collect();
    format!("[{}]", entries.join(","))
}

/// Images asked for twice (by two references) are one image with both references.
fn merge(images: &[StoredImage]) -> Vec<StoredImage> {
    let mut out: Vec<StoredImage> = Vec::new();
    for img in images {
        match out
            .iter_mut()
            .find(|o| o.manifest.digest == img.manifest.digest)
        {
            Some(o) => {
                for r in &img.refs {
                    if !o.refs.contains(r) {
                        o.refs.push(r.clone());
                    }
                }
            }
            None => out.push(img.clone()),
        }
    }
    out
}

/// Writes `images` with their blobs as stored, as one tar into `out`; `label` names the
/// output in errors. Index descriptors follow the references in the order given (an image
/// asked for by two references has two descriptors, one `manifest.json` entry).
pub fn export_stored_tar_to(
    images: &[StoredImage],
    blobs: &dyn BlobSource,
    out: &mut dyn Write,
    label: &Path,
) -> Result<ExportReport, ExportError> {
    let index = stored_index_json(images);
    let merged = merge(images);
    let manifest = stored_manifest_json(&merged);
    let mut all: std::collections::BTreeMap<String, StoredBlob> = Default::default();
    for img in &merged {
        for b in std::iter::once(&img.manifest)
            .chain(&img.extra)
            .chain(std::iter::once(&img.config))
            .chain(&img.layers)
        {
            if let Some(prev) = all.get(b.digest.hex()) {
                if prev.size != b.size {
                    return Err(ExportError::InvalidImage {
                        image: img.manifest.digest.to_string(),
                        reason: format!(
                            "blob {} is named with sizes {} and {}",
                            b.digest, prev.size, b.size
                        ),
                    });
                }
            }
            all.insert(b.digest.hex().to_string(), b.clone());
        }
    }
    let mut report = ExportReport::default();
    let mut tar = TarOut::new(out);
    let err = |e| io_err(label)(e);
    for d in ["blobs/", "blobs/sha256/"] {
        tar.write_all(&header_mode(d, Kind::Dir, 0o755, 0, 0, "").map_err(err)?)
            .map_err(err)?;
    }
    for (hex, b) in &all {
        let path = format!("blobs/sha256/{hex}");
        tar.write_all(&header_mode(&path, Kind::File, 0o444, b.size, 0, "").map_err(err)?)
            .map_err(err)?;
        let mut h = Hashing {
            inner: &mut tar,
            hash: Sha256::new(),
            bytes: 0,
        };
        if let Err(source) = blobs.write_blob(&b.digest, &mut h) {
            return Err(ExportError::Layer {
                diff_id: b.digest.to_string(),
                source,
            });
        }
        let (bytes, actual) = (
            h.bytes,
            format!("sha256:{}", hex::encode(h.hash.finalize())),
        );
        if bytes != b.size {
            return Err(ExportError::SizeMismatch {
                diff_id: b.digest.to_string(),
                expected: b.size,
                actual: bytes,
            });
        }
        if actual != b.digest.as_str() {
            return Err(ExportError::DigestMismatch {
                diff_id: b.digest.to_string(),
                actual,
            });
        }
        tar.pad(b.size).map_err(err)?;
        report.files.push((path, hex.clone(), b.size));
        report.layers_written += 1;
    }
    let small: [(&str, u32, &[u8]); 3] = [
        ("index.json", 0o644, index.as_bytes()),
        ("manifest.json", 0o644, manifest.as_bytes()),
        ("oci-layout", 0o444, br#"{"imageLayoutVersion":"1.0.0"}"#),
    ];
    for (path, mode, bytes) in small {
        let n = bytes.len() as u64;
        tar.write_all(&header_mode(path, Kind::File, mode, n, 0, "").map_err(err)?)
            .map_err(err)?;
        tar.write_all(bytes).map_err(err)?;
        tar.pad(n).map_err(err)?;
        report
            .files
            .push((path.to_string(), hex::encode(Sha256::digest(bytes)), n));
    }
    let (_, sha, bytes) = tar.finish().map_err(err)?;
    report.archive_sha256 = Some(sha);
    report.bytes = bytes;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(b: &[u8]) -> StoredBlob {
        StoredBlob {
            digest: Digest::sha256_of(b),
            size: b.len() as u64,
        }
    }

    struct Mem(Vec<Vec<u8>>);
    impl BlobSource for Mem {
        fn write_blob(&self, d: &Digest, out: &mut dyn Write) -> Result<(), LayerError> {
            let b = self
                .0
                .iter()
                .find(|b| &Digest::sha256_of(b) == d)
                .ok_or_else(|| LayerError::NotFound(d.to_string()))?;
            out.write_all(b)?;
            Ok(())
        }
    }

    fn image(blobs: &[Vec<u8>], refs: &[&str]) -> StoredImage {
        StoredImage {
            manifest: blob(&blobs[0]),
            manifest_media_type: salvor_oci::spec::MEDIA_TYPE_OCI_MANIFEST.into(),
            extra: Vec::new(),
            config: blob(&blobs[1]),
            layers: blobs[2..].iter().map(|b| blob(b)).collect(),
            refs: refs
                .iter()
                .map(|r| StoredRef {
                    full: format!("docker.io/{r}"),
                    familiar: r.to_string(),
                    tag: r.split_once(':').map(|(_, t)| t.to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn archive_lists_blobs_in_digest_order_then_the_metadata() {
        let blobs = vec![b"manifest".to_vec(), b"config".to_vec(), vec![7u8; 1000]];
        let a = image(&blobs, &["x/y:1"]);
        let b = image(&blobs, &["x/y:2"]);
        let mut out = Vec::new();
        let r = export_stored_tar_to(&[a, b], &Mem(blobs.clone()), &mut out, Path::new("t"))
            .expect("export");
        let names: Vec<&str> = r.files.iter().map(|f| f.0.as_str()).collect();
        let mut hexes: Vec<String> = blobs
            .iter()
            .map(|b| Digest::sha256_of(b).hex().to_string())
            .collect();
        hexes.sort();
        let want: Vec<String> = hexes
            .iter()
            .map(|h| format!("blobs/sha256/{h}"))
            .chain(["index.json", "manifest.json", "oci-layout"].map(String::from))
            .collect();
        assert_eq!(names, want);
        let mut t = tar::Archive::new(&out[..]);
        let modes: Vec<(String, u32)> = t
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.path().expect("path").to_string_lossy().into_owned(),
                    e.header().mode().expect("mode"),
                )
            })
            .collect();
        assert_eq!(modes[0], ("blobs/".into(), 0o755));
        assert!(modes[2..5].iter().all(|(_, m)| *m == 0o444), "{modes:?}");
        assert_eq!(modes[5].1, 0o644);
        assert_eq!(modes[7].1, 0o444);
        // Two references: two descriptors, one manifest.json entry with both tags.
        let index: serde_json::Value = serde_json::from_str(&stored_index_json(&[
            image(&blobs, &["x/y:1"]),
            image(&blobs, &["x/y:2"]),
        ]))
        .expect("json");
        assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2));
        let m = stored_manifest_json(&merge(&[
            image(&blobs, &["x/y:1"]),
            image(&blobs, &["x/y:2"]),
        ]));
        assert!(m.contains(r#""RepoTags":["x/y:1","x/y:2"]"#), "{m}");
        assert!(stored_manifest_json(&[image(&blobs, &[])]).contains(r#""RepoTags":null"#));
    }

    #[test]
    fn a_blob_that_does_not_hash_to_its_digest_fails() {
        let blobs = vec![b"manifest".to_vec(), b"config".to_vec(), vec![7u8; 100]];
        let mut img = image(&blobs, &[]);
        // The source holds other bytes of the same size under the layer's digest.
        struct Liar;
        impl BlobSource for Liar {
            fn write_blob(&self, d: &Digest, out: &mut dyn Write) -> Result<(), LayerError> {
                if d == &Digest::sha256_of(&[7u8; 100]) {
                    out.write_all(&[8u8; 100])?;
                } else if d == &Digest::sha256_of(b"manifest") {
                    out.write_all(b"manifest")?;
                } else {
                    out.write_all(b"config")?;
                }
                Ok(())
            }
        }
        let e = export_stored_tar_to(&[img.clone()], &Liar, &mut Vec::new(), Path::new("t"))
            .expect_err("mismatch");
        assert!(matches!(e, ExportError::DigestMismatch { .. }), "{e}");
        img.layers[0].size = 99;
        let e = export_stored_tar_to(&[img], &Mem(blobs), &mut Vec::new(), Path::new("t"))
            .expect_err("size");
        assert!(matches!(e, ExportError::SizeMismatch { .. }), "{e}");
    }
}
