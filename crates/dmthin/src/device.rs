//! The pool's thin devices as [`BlockDevice`]s ([`ThinDevice`]), the size a filesystem at
//! a device's start claims, and pool files inside an evidence [`Source`] as block devices
//! ([`SourceFile`]).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use salvor_source::{BlockDevice, FileKind, FileReader, Source, SourceError};

use crate::{le32, Inner, ThinError};

/// The size in bytes an ext2/3/4 or XFS superblock at the start of a device claims.
pub(crate) fn filesystem_size(head: &[u8]) -> Option<u64> {
    let kind = salvor_source::identify_head(head);
    if kind == Some(salvor_source::FsKind::Ext) && head.len() >= 2048 {
        let sb = &head[1024..];
        let lo = le32(sb, 4) as u64;
        let log = le32(sb, 0x18);
        let incompat = le32(sb, 0x60);
        let hi = if incompat & 0x80 != 0 {
            le32(sb, 0x150) as u64
        } else {
            0
        };
        if log > 6 {
            return None;
        }
        return ((hi << 32) | lo).checked_mul(1024u64 << log);
    }
    if kind == Some(salvor_source::FsKind::Xfs) && head.len() >= 16 {
        let bsize = u32::from_be_bytes(head[4..8].try_into().unwrap()) as u64;
        let dblocks = u64::from_be_bytes(head[8..16].try_into().unwrap());
        return dblocks.checked_mul(bsize);
    }
    None
}

/// A thin device: reads go through the device's mapping tree; unmapped blocks are zeros.
pub struct ThinDevice {
    pub(crate) inner: Arc<Inner>,
    pub(crate) dev_id: u64,
    pub(crate) root: u64,
    pub(crate) size: u64,
}

impl fmt::Debug for ThinDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThinDevice")
            .field("dev_id", &self.dev_id)
            .field("size", &self.size)
            .field("pool_data", &self.inner.data.describe())
            .finish()
    }
}

impl BlockDevice for ThinDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = (self.size - offset).min(buf.len() as u64) as usize;
        self.inner
            .read_virtual(self.root, self.dev_id, offset, &mut buf[..n])
            .map_err(ThinError::into_io)?;
        Ok(n)
    }
    fn describe(&self) -> String {
        format!(
            "thin device {} of pool {}",
            self.dev_id,
            self.inner.data.describe()
        )
    }
}

/// A regular file inside a [`Source`] as a [`BlockDevice`] (positioned reads through a
/// locked reader), so that a pool's loop files can be read from a mounted data-root, a tar
/// archive, or a filesystem inside a disk image alike.
#[derive(Debug)]
pub struct SourceFile(salvor_source::SeekDevice<Box<dyn FileReader>>);

impl SourceFile {
    /// Opens regular file `path` of `source`.
    pub fn open(source: &dyn Source, path: &Path) -> Result<SourceFile, ThinError> {
        let md = source.metadata(path)?;
        if md.kind != FileKind::Regular {
            return Err(SourceError::WrongKind {
                path: path.to_path_buf(),
                expected: "regular file",
                found: md.kind,
            }
            .into());
        }
        let reader = source.open(path)?;
        let desc = format!("{} in {}", path.display(), source.describe());
        Ok(SourceFile(salvor_source::SeekDevice::new(
            reader, md.size, desc,
        )))
    }
}

impl BlockDevice for SourceFile {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_at(offset, buf)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}
