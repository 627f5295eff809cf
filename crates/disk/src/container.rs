//! Disk image containers: detection by magic bytes and opening as a [`BlockDevice`].
//!
//! | format | reader | detected by |
//! |---|---|---|
//! | raw | the file itself | anything not recognised below |
//! | qcow2 v2/v3 | [`crate::qcow2::Qcow2`] (ours) | `QFI\xfb` |
//! | VMDK (monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent*, vmfs*, seSparse) | [`crate::vmdk`]: our descriptor parser and extent composition; `vmdk-core` =0.8.4 (feature `vmdk`) reads binary sparse extents from files we open | `KDMV`, `COWD`, or a `# Disk DescriptorFile` text descriptor |
//! | VHDX (dynamic, fixed) | `vhdx-core` =0.4.1 (feature `vhdx`) | `vhdxfile` |
//! | E01 (all segments) | segments found, opened and checked by [`crate::ewf1`]; read by `ewf` =0.4.10 (feature `ewf`) from the files we opened | `EVF\x09\r\n\xff\0` |
//! | Ex01 (all segments) | [`crate::ewf2::Ewf2`], our own (the crate mis-reads EWF2 pattern fills) | `EVF2\r\n\x81\0` |
//!
//! Refused with [`DiskError::Unsupported`]: dynamic/differencing VHD (`conectix`),
//! logical evidence files (L01/Lx01), VMDK snapshot children (`parentCID` set) and VMDK
//! descriptors that map host devices or reference files outside the descriptor's
//! directory, VHDX differencing disks (by `vhdx-core`), and any format whose cargo
//! feature is disabled ("not supported in this build").
//!
//! # Files an image names (qcow2 backing files, VMDK extents, E01/Ex01 segments)
//!
//! A file name recorded in an image is data from the evidence. Every such name goes
//! through one policy (`files.rs`): by default it is resolved **only inside the directory
//! of the image that names it**: a relative name without `..` whose canonical path
//! (symlinks resolved) stays inside that directory. Absolute names (they name a path on
//! the *dead host*, not on the analyst's machine), protocol names (`nbd:`, `json:`), names
//! that leave the directory and symlinks that lead out are refused
//! ([`DiskError::Refused`], naming the referring file and the name) unless the caller maps
//! the recorded name to a file explicitly with [`OpenOptions::backing_files`]. An E01/Ex01
//! segment must moreover be the file of its name (not a symlink to another name), and the
//! segments must agree on the acquisition ([`crate::ewf1`]). Chains deeper than
//! [`MAX_BACKING_DEPTH`] and loops are refused. The backing format recorded in the header
//! (`raw`, `qcow2`, `vmdk`, `vhdx`) is honoured; when absent, the backing file's format
//! is detected by magic.
//!
//! Every file, the image's own included, is opened read-only with `O_NONBLOCK` and
//! checked with `fstat` before any byte is read (a FIFO, device or socket is refused
//! without waiting for a writer), `O_NOATIME` where allowed; nothing is copied.
//! [`Image::files`] / [`crate::Disk::files`] list every file read.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_source::{BlockDevice, EvidenceDamage, FileDevice};
use serde::Serialize;

use crate::error::{DiskError, Result};
use crate::qcow2::{Qcow2, Qcow2Info};

/// The deepest backing chain followed (the image itself not counted).
pub const MAX_BACKING_DEPTH: usize = 16;

/// A container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Raw bytes: the file is the disk.
    Raw,
    /// QEMU copy-on-write version 2 or 3 (our own reader).
    Qcow2,
    /// VMware VMDK: a text descriptor with flat or sparse extents, or a monolithic sparse file.
    Vmdk,
    /// Microsoft Hyper-V VHDX.
    Vhdx,
    /// Expert Witness Format (E01, Ex01).
    Ewf,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vmdk => "vmdk",
            Format::Vhdx => "vhdx",
            Format::Ewf => "ewf",
        })
    }
}

/// Options for [`open_image_with`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Files given explicitly: a name recorded in an image (a qcow2 backing file exactly
    /// as [`ContainerInfo::backing`]'s `recorded_name` shows it, a VMDK extent name as the
    /// descriptor writes it, an E01/Ex01 segment's file name such as `disk.E02`) → the
    /// file to use. Names listed here are used as given, even outside the image's
    /// directory (they must still be regular files).
    pub backing_files: BTreeMap<String, PathBuf>,
}

/// What a container is, for the probe report.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerInfo {
    /// The image file as given.
    pub path: PathBuf,
    /// The container format, detected by magic.
    pub format: Format,
    /// Size of the virtual disk in bytes.
    pub virtual_size: u64,
    /// Format details (VMDK create type, E01 segment count, VHDX sector size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The qcow2 header's fields (qcow2 images only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qcow2: Option<Qcow2Info>,
    /// The backing image, if any (recursively: the whole chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<Box<BackingInfo>>,
    /// The files this image itself was read from, canonical (absolute, symlinks
    /// resolved): the image file, then its VMDK extents or E01/Ex01 segments. The backing
    /// chain's files are in `backing`; [`ContainerInfo::all_files`] lists them all.
    pub files: Vec<PathBuf>,
}

impl ContainerInfo {
    /// Every file read for this image, its backing chain included: canonical absolute
    /// paths, each once, the image's own files first. Output must never be written to
    /// any of them.
    pub fn all_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut cur = Some(self);
        while let Some(c) = cur {
            for f in &c.files {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
            cur = c.backing.as_ref().map(|b| &b.image);
        }
        out
    }
}

/// One link of a backing chain.
#[derive(Debug, Clone, Serialize)]
pub struct BackingInfo {
    /// The name as recorded in the child image.
    pub recorded_name: String,
    /// True when the file came from [`OpenOptions::backing_files`].
    pub explicit: bool,
    /// The backing image itself (which may have its own backing file).
    pub image: ContainerInfo,
}

/// An opened disk image: the virtual disk as a block device, and what it is.
#[derive(Debug, Clone)]
pub struct Image {
    /// The virtual disk's bytes.
    pub device: Arc<dyn BlockDevice>,
    /// What the container is (format, size, backing chain, files).
    pub info: ContainerInfo,
    /// Damage of the image file itself found while opening it (structures past the end
    /// of a cut copy), the backing chain's included.
    pub damage: Vec<EvidenceDamage>,
}

/// The canonical path of `path` (absolute, symlinks resolved), or an error naming it.
pub(crate) fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| DiskError::io(path, e))
}

impl Image {
    /// Every file read for this image (see [`ContainerInfo::all_files`]): output must
    /// never be written to any of them.
    pub fn files(&self) -> Vec<PathBuf> {
        self.info.all_files()
    }

    /// Replaces the list of files this image was read from.
    pub(crate) fn with_files(mut self, files: Vec<PathBuf>) -> Image {
        self.info.files = files;
        self
    }

    /// An image of `format` at `path` without backing files, read through `device`;
    /// its file list is `path` alone (canonical) until [`Image::with_files`].
    pub(crate) fn plain(
        path: &Path,
        format: Format,
        device: Arc<dyn BlockDevice>,
        detail: String,
    ) -> Image {
        Image {
            info: ContainerInfo {
                path: path.to_path_buf(),
                format,
                virtual_size: device.size(),
                detail: Some(detail),
                qcow2: None,
                backing: None,
                files: std::fs::canonicalize(path)
                    .map(|c| vec![c])
                    .unwrap_or_else(|_| vec![path.to_path_buf()]),
            },
            device,
            damage: Vec::new(),
        }
    }
}

/// Opens a disk image read-only, detecting the container by magic bytes.
pub fn open_image(path: &Path) -> Result<Image> {
    open_image_with(path, &OpenOptions::default())
}

/// [`open_image`] with options (explicit backing files).
pub fn open_image_with(path: &Path, opts: &OpenOptions) -> Result<Image> {
    let mut seen = Vec::new();
    let file = open_ro(path)?;
    open_inner(path, file, None, opts, 0, &mut seen)
}

/// Opens a file of the evidence read-only (see [`crate::files::open_evidence`]): a FIFO,
/// device or socket is refused before any read, without blocking.
pub(crate) fn open_ro(path: &Path) -> Result<File> {
    crate::files::open_evidence(path)
}

/// A container format recognised by its magic but refused ([`detect`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct UnsupportedFormat {
    /// What the file is and why it is not read (`VHD (dynamic or differencing) is not
    /// supported; …`).
    pub reason: &'static str,
}

/// Detects the container format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Result<Format, UnsupportedFormat> {
    let refuse = |reason| Err(UnsupportedFormat { reason });
    let starts = |m: &[u8]| head.len() >= m.len() && &head[..m.len()] == m;
    if starts(&crate::qcow2::MAGIC) {
        Ok(Format::Qcow2)
    } else if starts(b"KDMV") || starts(b"COWD") || starts(b"# Disk DescriptorFile") {
        Ok(Format::Vmdk)
    } else if starts(b"vhdxfile") {
        Ok(Format::Vhdx)
    } else if starts(b"EVF\x09\x0d\x0a\xff\x00") || starts(b"EVF2\x0d\x0a\x81\x00") {
        Ok(Format::Ewf)
    } else if starts(b"LVF\x09\x0d\x0a\xff\x00") || starts(b"LEF2\x0d\x0a\x81\x00") {
        refuse("EWF logical evidence file (L01/Lx01) holds files, not a disk")
    } else if starts(b"conectix") {
        refuse("VHD (dynamic or differencing) is not supported; convert it with qemu-img")
    } else if starts(b"QFI") {
        refuse("qcow (version 1) image")
    } else {
        Ok(Format::Raw)
    }
}

/// Opens the image at `path`, already opened as `file` (by [`open_ro`] or, for a backing
/// file, by [`crate::files::open_referenced`]).
fn open_inner(
    path: &Path,
    file: File,
    forced: Option<Format>,
    opts: &OpenOptions,
    depth: usize,
    seen: &mut Vec<PathBuf>,
) -> Result<Image> {
    let canon = canonical(path)?;
    if seen.contains(&canon) {
        return Err(DiskError::invalid(
            path.display().to_string(),
            "backing chain",
            "loop: the image is its own backing file",
        ));
    }
    seen.push(canon.clone());
    let mut head = [0u8; 64];
    let n = crate::read_full(&file, 0, &mut head).map_err(|e| DiskError::io(path, e))?;
    let format = match forced {
        Some(f) => f,
        None => detect(&head[..n])
            .map_err(|r| DiskError::unsupported(path.display().to_string(), r.reason))?,
    };
    let what = path.display().to_string();
    match format {
        Format::Raw => {
            let dev = FileDevice::from_file(path, file).map_err(|e| {
                DiskError::io(path, std::io::Error::other(salvor_source::error_chain(&e)))
            })?;
            let info = ContainerInfo {
                path: path.to_path_buf(),
                format,
                virtual_size: dev.size(),
                detail: None,
                qcow2: None,
                backing: None,
                files: vec![canon],
            };
            Ok(Image {
                device: Arc::new(dev),
                info,
                damage: Vec::new(),
            })
        }
        Format::Qcow2 => {
            let mut q = Qcow2::open(path, file)?;
            let qinfo = q.info().clone();
            let mut damage = q.damage();
            let mut backing = None;
            if let Some(name) = &qinfo.backing_file {
                if depth >= MAX_BACKING_DEPTH {
                    return Err(DiskError::invalid(
                        what,
                        "backing chain",
                        format!("deeper than {MAX_BACKING_DEPTH} images"),
                    ));
                }
                let r = crate::files::open_referenced(path, "backing file", name, opts)?;
                let bformat = match qinfo.backing_format.as_deref() {
                    None => None,
                    Some("raw") => Some(Format::Raw),
                    Some("qcow2") => Some(Format::Qcow2),
                    Some("vmdk") => Some(Format::Vmdk),
                    Some("vhdx") => Some(Format::Vhdx),
                    Some(other) => {
                        return Err(DiskError::unsupported(
                            what,
                            format!("backing file format {other:?}"),
                        ))
                    }
                };
                let b = open_inner(&r.path, r.file, bformat, opts, depth + 1, seen)?;
                damage.extend(b.damage);
                q.set_backing(b.device);
                backing = Some(Box::new(BackingInfo {
                    recorded_name: name.clone(),
                    explicit: r.explicit,
                    image: b.info,
                }));
            }
            let info = ContainerInfo {
                path: path.to_path_buf(),
                format,
                virtual_size: qinfo.virtual_size,
                detail: Some(format!(
                    "qcow2 v{}, {} KiB clusters, {:?} compression",
                    qinfo.version,
                    qinfo.cluster_size / 1024,
                    qinfo.compression
                )),
                qcow2: Some(qinfo),
                backing,
                files: vec![canon],
            };
            Ok(Image {
                device: Arc::new(q),
                info,
                damage,
            })
        }
        Format::Vmdk => crate::external::open_vmdk(path, file, opts),
        Format::Vhdx => crate::external::open_vhdx(path, file),
        Format::Ewf => {
            if head[..n].starts_with(crate::ewf2::SIGNATURE) {
                // EWF2 (.Ex01): our own reader (the crate mis-reads pattern-fill chunks).
                return crate::ewf2::open_image(path, file, opts);
            }
            crate::external::open_ewf(path, file, opts)
        }
    }
}
