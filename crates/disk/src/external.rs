//! Adapters from the third-party container readers (each behind a cargo feature) to
//! [`BlockDevice`]. A disabled feature turns the format into a clear
//! "not supported in this build" error.

#![cfg_attr(
    not(all(feature = "vmdk", feature = "vhdx", feature = "ewf")),
    allow(unused_imports)
)]

use std::io;
use std::path::Path;
use std::sync::Arc;

use salvor_source::BlockDevice;

use crate::container::{Format, Image, OpenOptions};
use crate::error::{DiskError, Result};

#[cfg_attr(
    all(feature = "vmdk", feature = "vhdx", feature = "ewf"),
    allow(dead_code)
)]
fn not_in_build(path: &Path, what: &str, feature: &str) -> DiskError {
    DiskError::unsupported(
        path.display().to_string(),
        format!("{what} images are not supported in this build (cargo feature `{feature}` of salvor-disk is disabled)"),
    )
}

#[cfg(feature = "vmdk")]
pub(crate) fn open_vmdk(path: &Path, file: std::fs::File, opts: &OpenOptions) -> Result<Image> {
    crate::vmdk::open(path, file, opts)
}

#[cfg(not(feature = "vmdk"))]
pub(crate) fn open_vmdk(path: &Path, _file: std::fs::File, _opts: &OpenOptions) -> Result<Image> {
    Err(not_in_build(path, "VMDK", "vmdk"))
}

#[cfg(feature = "vhdx")]
pub(crate) fn open_vhdx(path: &Path, file: std::fs::File) -> Result<Image> {
    let what = path.display().to_string();
    let r = vhdx::VhdxReader::from_backing(vhdx::Backing::File(file), None)
        .map_err(|e| DiskError::invalid(what, "VHDX", e.to_string()))?;
    let size = r.virtual_disk_size();
    let detail = format!("{}-byte logical sectors", r.logical_sector_size());
    let dev = salvor_source::SeekDevice::virtual_disk(r, size, format!("vhdx {}", path.display()));
    Ok(Image::plain(path, Format::Vhdx, Arc::new(dev), detail))
}

#[cfg(not(feature = "vhdx"))]
pub(crate) fn open_vhdx(path: &Path, _file: std::fs::File) -> Result<Image> {
    Err(not_in_build(path, "VHDX", "vhdx"))
}

#[cfg(feature = "ewf")]
struct EwfDevice {
    r: ewf::EwfReader,
    desc: String,
}

#[cfg(feature = "ewf")]
impl std::fmt::Debug for EwfDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.desc)
    }
}

#[cfg(feature = "ewf")]
impl BlockDevice for EwfDevice {
    fn size(&self) -> u64 {
        self.r.total_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size() || buf.is_empty() {
            return Ok(0);
        }
        let n = self.r.read_at(buf, offset).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", self.desc))
        })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: no data at offset {offset}", self.desc),
            ));
        }
        Ok(n)
    }
    fn describe(&self) -> String {
        self.desc.clone()
    }
}

#[cfg(feature = "ewf")]
pub(crate) fn open_ewf(path: &Path, file: std::fs::File, opts: &OpenOptions) -> Result<Image> {
    let what = path.display().to_string();
    if let Some(damage) = ewf_segment_gap(path) {
        return Err(DiskError::Damaged { damage });
    }
    let segs = crate::ewf1::open_segments(path, file, opts)?;
    let files: Vec<_> = segs.iter().map(|s| s.path.clone()).collect();
    let sources = segs
        .into_iter()
        .map(|s| ewf::SegmentSource::File(s.file))
        .collect();
    let r = ewf::EwfReader::open_from_sources(sources)
        .map_err(|e| DiskError::invalid(what, "EWF", e.to_string()))?;
    let detail = format!("{} chunks of {} bytes", r.chunk_count(), r.chunk_size());
    let desc = format!("ewf {}", path.display());
    let damage = ewf_damage(path, r.chunk_count() as u64, r.chunk_size(), r.total_size());
    let mut img =
        Image::plain(path, Format::Ewf, Arc::new(EwfDevice { r, desc }), detail).with_files(files);
    img.damage.extend(damage);
    Ok(img)
}

/// A numbered segment (`.E01` … `.E99`, any case) missing between the first and the
/// last present beside `first`: the set cannot be read in order.
pub(crate) fn ewf_segment_gap(first: &Path) -> Option<salvor_source::EvidenceDamage> {
    let name = first.file_name()?.to_str()?;
    let (stem, ext) = name.rsplit_once('.')?;
    let letter = ext.chars().next()?;
    if ext.len() != 3 || !matches!(letter, 'E' | 'e') {
        return None;
    }
    let dir = first
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut present = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if let Some((s, x)) = n.rsplit_once('.') {
            if s == stem && x.len() == 3 && x.starts_with(letter) {
                if let Ok(k) = x[1..].parse::<u32>() {
                    present.insert(k);
                }
            }
        }
    }
    let last = *present.iter().next_back()?;
    let missing: Vec<u32> = (1..=last).filter(|k| !present.contains(k)).collect();
    let m = *missing.first()?;
    Some(salvor_source::EvidenceDamage {
        file: dir.join(format!("{stem}.{letter}{m:02}")),
        kind: salvor_source::DamageKind::Missing,
        offset: None,
        detail: format!(
            "segment file(s) {} of the EWF set {} are missing (segments 1 to {last} expected) (truncated copy?)",
            missing
                .iter()
                .map(|k| format!("{letter}{k:02}"))
                .collect::<Vec<_>>()
                .join(", "),
            first.display()
        ),
        lost: "the set cannot be read past the first missing segment".to_string(),
    })
}

/// An EWF set whose chunks do not cover the media size its header records: the last
/// segment file(s) are missing or cut (an incomplete copy of the acquisition).
pub(crate) fn ewf_damage(
    path: &Path,
    chunks: u64,
    chunk_size: u64,
    media: u64,
) -> Option<salvor_source::EvidenceDamage> {
    let have = chunks.saturating_mul(chunk_size);
    (have < media).then(|| salvor_source::EvidenceDamage {
        file: path.to_path_buf(),
        kind: salvor_source::DamageKind::Missing,
        offset: None,
        detail: format!(
            "EWF set holds {chunks} chunk(s) of {chunk_size} bytes ({have} bytes), but the acquired media is {media} bytes: its last segment file(s) are missing or cut (truncated copy?)"
        ),
        lost: format!("{} byte(s) at the end of the disk", media - have),
    })
}

#[cfg(not(feature = "ewf"))]
pub(crate) fn open_ewf(path: &Path, _file: std::fs::File, _opts: &OpenOptions) -> Result<Image> {
    Err(not_in_build(path, "E01/Ex01", "ewf"))
}
