//! Adapters from the third-party container readers (each behind a cargo feature) to
//! [`BlockDevice`]. A disabled feature turns the format into a clear
//! "not supported in this build" error.

#![cfg_attr(
    not(all(feature = "vmdk", feature = "vhdx", feature = "ewf")),
    allow(unused_imports)
)]

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

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

/// A `Read + Seek` reader behind a mutex, as a positioned [`BlockDevice`].
#[cfg_attr(not(any(feature = "vmdk", feature = "vhdx")), allow(dead_code))]
struct SeekDevice<R> {
    inner: Mutex<R>,
    size: u64,
    desc: String,
}

impl<R> std::fmt::Debug for SeekDevice<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.desc)
    }
}

impl<R: io::Read + io::Seek + Send> BlockDevice for SeekDevice<R> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (self.size - offset).min(buf.len() as u64) as usize;
        let mut r = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        r.seek(io::SeekFrom::Start(offset))?;
        let mut done = 0;
        while done < n {
            match r.read(&mut buf[done..n]) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io::Error::new(e.kind(), format!("{}: {e}", self.desc)));
                }
            }
        }
        if done == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: no data at offset {offset} inside the virtual disk",
                    self.desc
                ),
            ));
        }
        Ok(done)
    }
    fn describe(&self) -> String {
        self.desc.clone()
    }
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
    let dev = SeekDevice {
        inner: Mutex::new(r),
        size,
        desc: format!("vhdx {}", path.display()),
    };
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
    Ok(Image::plain(path, Format::Ewf, Arc::new(EwfDevice { r, desc }), detail).with_files(files))
}

#[cfg(not(feature = "ewf"))]
pub(crate) fn open_ewf(path: &Path, _file: std::fs::File, _opts: &OpenOptions) -> Result<Image> {
    Err(not_in_build(path, "E01/Ex01", "ewf"))
}
