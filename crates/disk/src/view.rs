//! Block devices built on other block devices: a byte range ([`Slice`], a partition) and
//! an extent map ([`ExtentMap`], an LVM logical volume).

use std::io;
use std::sync::Arc;

use salvor_source::BlockDevice;

/// `len` bytes of `inner` starting at `offset`: a partition, or a physical volume's
/// data area. Reads never go past `offset + len`, nor past the end of `inner`.
#[derive(Debug, Clone)]
pub struct Slice {
    inner: Arc<dyn BlockDevice>,
    offset: u64,
    len: u64,
    desc: String,
}

impl Slice {
    /// A view of `inner[offset .. offset + len]`, clamped to the size of `inner`.
    pub fn new(
        inner: Arc<dyn BlockDevice>,
        offset: u64,
        len: u64,
        desc: impl Into<String>,
    ) -> Self {
        let size = inner.size();
        let offset = offset.min(size);
        let len = len.min(size - offset);
        Slice {
            inner,
            offset,
            len,
            desc: desc.into(),
        }
    }
    /// Where the slice starts in the inner device, in bytes.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl BlockDevice for Slice {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let n = (self.len - offset).min(buf.len() as u64) as usize;
        self.inner.read_at(self.offset + offset, &mut buf[..n])
    }
    fn describe(&self) -> String {
        self.desc.clone()
    }
}

/// One run of an [`ExtentMap`]: `len` bytes at `start` in the mapped device come from
/// `device` at `device_offset` (`None`: an unmapped run, reads as zeros).
#[derive(Debug, Clone)]
pub struct Extent {
    /// Byte offset of the run in the mapped device.
    pub start: u64,
    /// Length of the run in bytes.
    pub len: u64,
    /// The device the bytes come from (`None`: zeros).
    pub device: Option<Arc<dyn BlockDevice>>,
    /// Byte offset in `device`.
    pub device_offset: u64,
}

/// A device made of runs of other devices (an LVM logical volume). Runs are sorted,
/// non-overlapping and cover `0..size` without gaps (gaps are filled with zero runs by
/// [`ExtentMap::new`]).
#[derive(Debug, Clone)]
pub struct ExtentMap {
    extents: Vec<Extent>,
    size: u64,
    desc: String,
}

/// Runs that do not make an [`ExtentMap`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtentError {
    /// A run starts before the previous one ends.
    #[error("overlapping extents at byte {at}")]
    Overlap {
        /// Virtual byte offset where the overlapping run starts.
        at: u64,
    },
    /// A run's end is past `u64::MAX`.
    #[error("extent end overflows")]
    Overflow,
}

impl ExtentMap {
    /// Builds the map. Overlapping runs are an error; gaps read as zeros.
    pub fn new(mut runs: Vec<Extent>, desc: impl Into<String>) -> Result<Self, ExtentError> {
        runs.retain(|r| r.len > 0);
        runs.sort_by_key(|r| r.start);
        let mut extents = Vec::with_capacity(runs.len());
        let mut pos = 0u64;
        for r in runs {
            if r.start < pos {
                return Err(ExtentError::Overlap { at: r.start });
            }
            if r.start > pos {
                extents.push(Extent {
                    start: pos,
                    len: r.start - pos,
                    device: None,
                    device_offset: 0,
                });
            }
            pos = r.start.checked_add(r.len).ok_or(ExtentError::Overflow)?;
            extents.push(r);
        }
        Ok(ExtentMap {
            extents,
            size: pos,
            desc: desc.into(),
        })
    }
    /// The runs, in order, gaps included as unmapped runs.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }
}

impl BlockDevice for ExtentMap {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let i = match self.extents.binary_search_by(|e| e.start.cmp(&offset)) {
            Ok(i) => i,
            Err(i) => i - 1, // extents start at 0, so i >= 1 here
        };
        let e = &self.extents[i];
        let within = offset - e.start;
        let n = (e.len - within).min(buf.len() as u64) as usize;
        match &e.device {
            None => {
                buf[..n].fill(0);
                Ok(n)
            }
            Some(dev) => {
                let got = dev.read_at(e.device_offset + within, &mut buf[..n])?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{}: extent at byte {} maps past the end of {}",
                            self.desc,
                            e.start,
                            dev.describe()
                        ),
                    ));
                }
                Ok(got)
            }
        }
    }
    fn describe(&self) -> String {
        self.desc.clone()
    }
}
