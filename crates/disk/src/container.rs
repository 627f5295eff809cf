//! Disk image containers: detection by magic bytes and opening as a [`BlockDevice`].
//!
//! | format | reader | detected by |
//! |---|---|---|
//! | raw | [`FileDevice`] | anything not recognised below |
//! | qcow2 v2/v3 | [`crate::qcow2::Qcow2`] (ours) | `QFI\xfb` |
//! | VMDK (monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent*) | `vmdk-core` =0.8.4 (feature `vmdk`) | `KDMV`, `COWD`, or a `# Disk DescriptorFile` text descriptor |
//! | VHDX (dynamic, fixed) | `vhdx-core` =0.4.1 (feature `vhdx`) | `vhdxfile` |
//! | E01 (all segments) | `ewf` =0.4.10 (feature `ewf`) | `EVF\x09\r\n\xff\0` |
//! | Ex01 (all segments) | [`crate::ewf2::Ewf2`], our own (the crate mis-reads EWF2 pattern fills) | `EVF2\r\n\x81\0` |
//!
//! Refused with [`DiskError::Unsupported`]: dynamic/differencing VHD (`conectix`),
//! logical evidence files (L01/Lx01), VMDK snapshot children (`parentCID` set) and VMDK
//! descriptors that map host devices or reference files outside the descriptor's
//! directory, VHDX differencing disks (by `vhdx-core`), and any format whose cargo
//! feature is disabled ("not supported in this build").
//!
//! # Backing files (qcow2)
//!
//! A backing file name recorded in an image is data from the evidence. By default it is
//! resolved **only inside the directory of the image that names it**: a relative name
//! without `..` whose canonical path (symlinks resolved) stays inside that directory.
//! Absolute names (they name a path on the *dead host*, not on the analyst's machine),
//! protocol names (`nbd:`, `json:`) and names that leave the directory are refused unless
//! the caller maps the recorded name to a file explicitly with
//! [`OpenOptions::backing_files`]. Chains deeper than [`MAX_BACKING_DEPTH`] and loops are
//! refused. The backing format recorded in the header (`raw`, `qcow2`) is honoured; when
//! absent, the backing file's format is detected by magic.
//!
//! Every file is opened read-only (`O_NOATIME` where allowed); nothing is copied.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use salvor_source::{BlockDevice, EvidenceDamage, FileDevice};
use serde::Serialize;

use crate::error::{DiskError, Result};
use crate::qcow2::{Qcow2, Qcow2Info};

/// The deepest backing chain followed (the image itself not counted).
pub const MAX_BACKING_DEPTH: usize = 16;
/// The largest VMDK text descriptor read.
const MAX_DESCRIPTOR: u64 = 1 << 20;

/// A container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Raw,
    Qcow2,
    Vmdk,
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
    /// Backing files given explicitly: the name recorded in an image (exactly as
    /// [`ContainerInfo::backing`]'s `recorded_name` shows it) → the file to use. Names
    /// listed here are used as given, even outside the image's directory.
    pub backing_files: BTreeMap<String, PathBuf>,
}

/// What a container is, for the probe report.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerInfo {
    pub path: PathBuf,
    pub format: Format,
    /// Size of the virtual disk in bytes.
    pub virtual_size: u64,
    /// Format details (VMDK create type, E01 segment count, VHDX sector size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qcow2: Option<Qcow2Info>,
    /// The backing image, if any (recursively: the whole chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing: Option<Box<BackingInfo>>,
}

/// One link of a backing chain.
#[derive(Debug, Clone, Serialize)]
pub struct BackingInfo {
    /// The name as recorded in the child image.
    pub recorded_name: String,
    /// True when the file came from [`OpenOptions::backing_files`].
    pub explicit: bool,
    pub image: ContainerInfo,
}

/// An opened disk image: the virtual disk as a block device, and what it is.
#[derive(Debug, Clone)]
pub struct Image {
    pub device: Arc<dyn BlockDevice>,
    pub info: ContainerInfo,
    /// Damage of the image file itself found while opening it (structures past the end
    /// of a cut copy), the backing chain's included.
    pub damage: Vec<EvidenceDamage>,
}

impl Image {
    /// An image of `format` at `path` without backing files, read through `device`.
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
    open_inner(path, None, opts, 0, &mut seen)
}

/// Opens a file read-only, with `O_NOATIME` where the kernel allows it.
pub(crate) fn open_ro(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let r = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOATIME.bits() as i32)
        .open(path);
    let f = match r {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
            std::fs::File::open(path).map_err(|e| DiskError::io(path, e))?
        }
        Err(e) => return Err(DiskError::io(path, e)),
    };
    let md = f.metadata().map_err(|e| DiskError::io(path, e))?;
    if !md.is_file() {
        return Err(DiskError::invalid(
            path.display().to_string(),
            "image file",
            "not a regular file (only image files are opened)",
        ));
    }
    Ok(f)
}

/// Detects the container format from the first bytes of a file.
pub fn detect(head: &[u8]) -> Result<Format, String> {
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
        Err("EWF logical evidence file (L01/Lx01) holds files, not a disk".into())
    } else if starts(b"conectix") {
        Err("VHD (dynamic or differencing) is not supported; convert it with qemu-img".into())
    } else if starts(b"QFI") {
        Err("qcow (version 1) image".into())
    } else {
        Ok(Format::Raw)
    }
}

fn open_inner(
    path: &Path,
    forced: Option<Format>,
    opts: &OpenOptions,
    depth: usize,
    seen: &mut Vec<PathBuf>,
) -> Result<Image> {
    let file = open_ro(path)?;
    let canon = std::fs::canonicalize(path).map_err(|e| DiskError::io(path, e))?;
    if seen.contains(&canon) {
        return Err(DiskError::invalid(
            path.display().to_string(),
            "backing chain",
            "loop: the image is its own backing file",
        ));
    }
    seen.push(canon);
    let mut head = [0u8; 64];
    let n = crate::read_full(&file, 0, &mut head).map_err(|e| DiskError::io(path, e))?;
    let format = match forced {
        Some(f) => f,
        None => {
            detect(&head[..n]).map_err(|r| DiskError::unsupported(path.display().to_string(), r))?
        }
    };
    let what = path.display().to_string();
    match format {
        Format::Raw => {
            drop(file);
            let dev = FileDevice::open(path)
                .map_err(|e| DiskError::invalid(what, "raw image", e.to_string()))?;
            let info = ContainerInfo {
                path: path.to_path_buf(),
                format,
                virtual_size: dev.size(),
                detail: None,
                qcow2: None,
                backing: None,
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
                let (bpath, explicit) = resolve_backing(path, name, opts)?;
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
                let b = open_inner(&bpath, bformat, opts, depth + 1, seen)?;
                damage.extend(b.damage);
                q.set_backing(b.device);
                backing = Some(Box::new(BackingInfo {
                    recorded_name: name.clone(),
                    explicit,
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
            };
            Ok(Image {
                device: Arc::new(q),
                info,
                damage,
            })
        }
        Format::Vmdk => {
            drop(file);
            crate::external::open_vmdk(path)
        }
        Format::Vhdx => {
            drop(file);
            crate::external::open_vhdx(path)
        }
        Format::Ewf => {
            drop(file);
            if head[..n].starts_with(crate::ewf2::SIGNATURE) {
                // EWF2 (.Ex01): our own reader (the crate mis-reads pattern-fill chunks).
                return crate::ewf2::open_image(path);
            }
            crate::external::open_ewf(path)
        }
    }
}

fn resolve_backing(image: &Path, name: &str, opts: &OpenOptions) -> Result<(PathBuf, bool)> {
    if let Some(p) = opts.backing_files.get(name) {
        return Ok((p.clone(), true));
    }
    let what = image.display().to_string();
    let refuse = |why: &str| {
        DiskError::unsupported(
            what.clone(),
            format!(
                "backing file {name:?} {why}; it is only looked up inside the image's directory \
                 unless given explicitly (OpenOptions::backing_files / --backing {name}=PATH)"
            ),
        )
    };
    let rel = Path::new(name);
    if name.contains(':') && !rel.exists() {
        // qemu protocol syntax (nbd:, json:, file:), or a Windows drive path.
        return Err(refuse("uses a protocol or drive prefix"));
    }
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refuse("is absolute or leaves the image's directory"));
    }
    let dir = image
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let candidate = dir.join(rel);
    let cdir = std::fs::canonicalize(dir).map_err(|e| DiskError::io(dir, e))?;
    let ccand = std::fs::canonicalize(&candidate).map_err(|e| DiskError::io(&candidate, e))?;
    if !ccand.starts_with(&cdir) {
        return Err(refuse(
            "resolves (through a symlink) outside the image's directory",
        ));
    }
    Ok((candidate, false))
}

/// A VMDK descriptor must not map host devices or files outside its directory, and must
/// not be a snapshot child (its parent would be silently ignored).
#[cfg_attr(not(feature = "vmdk"), allow(dead_code))]
pub(crate) fn check_vmdk_descriptor(path: &Path, text: &str) -> Result<()> {
    let what = path.display().to_string();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("createType") {
            let v = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            let allowed = [
                "monolithicSparse",
                "monolithicFlat",
                "twoGbMaxExtentSparse",
                "twoGbMaxExtentFlat",
                "streamOptimized",
                "vmfs",
                "vmfsSparse",
                "vmfsThin",
                "vmfsPreallocated",
                "vmfsEagerZeroedThick",
                "seSparse",
            ];
            if !allowed.contains(&v) {
                return Err(DiskError::unsupported(
                    what,
                    format!("VMDK createType {v:?} (device maps and custom layouts are refused)"),
                ));
            }
        } else if let Some(v) = line.strip_prefix("parentCID") {
            let v = v.trim_start().trim_start_matches('=').trim();
            if !v.eq_ignore_ascii_case("ffffffff") {
                return Err(DiskError::unsupported(
                    what,
                    format!("VMDK snapshot child (parentCID={v}); open the parent chain with qemu-img convert first"),
                ));
            }
        } else if ["RW ", "RDONLY ", "NOACCESS "]
            .iter()
            .any(|p| line.starts_with(p))
        {
            if let Some(start) = line.find('"') {
                let rest = &line[start + 1..];
                let name = rest.split('"').next().unwrap_or("");
                if Path::new(name)
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
                {
                    return Err(DiskError::unsupported(
                        what,
                        format!("VMDK extent file {name:?} is outside the descriptor's directory"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Reads a VMDK text descriptor (a small text file, or embedded in a sparse extent).
#[cfg_attr(not(feature = "vmdk"), allow(dead_code))]
pub(crate) fn read_vmdk_descriptor(path: &Path) -> Result<Option<String>> {
    let file = open_ro(path)?;
    let size = file.metadata().map_err(|e| DiskError::io(path, e))?.len();
    let mut head = [0u8; 512];
    let n = crate::read_full(&file, 0, &mut head).map_err(|e| DiskError::io(path, e))?;
    if head[..n].starts_with(b"#") {
        if size > MAX_DESCRIPTOR {
            return Err(DiskError::invalid(
                path.display().to_string(),
                "VMDK descriptor",
                format!("text descriptor of {size} bytes exceeds {MAX_DESCRIPTOR}"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        let n = crate::read_full(&file, 0, &mut buf).map_err(|e| DiskError::io(path, e))?;
        buf.truncate(n);
        return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
    }
    if n >= 512 && &head[..4] == b"KDMV" {
        // Embedded descriptor: sector offset at 28, size (sectors) at 36.
        let off = u64::from_le_bytes(head[28..36].try_into().unwrap());
        let len = u64::from_le_bytes(head[36..44].try_into().unwrap());
        if off != 0 && len != 0 && len * 512 <= MAX_DESCRIPTOR {
            let mut buf = vec![0u8; (len * 512) as usize];
            let n = crate::read_full(&file, off.saturating_mul(512), &mut buf)
                .map_err(|e| DiskError::io(path, e))?;
            buf.truncate(n);
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return Ok(Some(String::from_utf8_lossy(&buf[..end]).into_owned()));
        }
    }
    Ok(None)
}
