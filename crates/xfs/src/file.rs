//! An open regular file: position and mapping state.

use std::sync::Arc;

use crate::bmap::{self, Extent};
use crate::inode::{self, Inode};
use crate::{XfsError, XfsFs};

/// Position and mapping of an open file.
pub struct FileState {
    pub(crate) inode: Inode,
    pub(crate) pos: u64,
    extents: Arc<Vec<Extent>>,
    /// Inline (`LOCAL`) file data.
    inline: Option<Vec<u8>>,
}

impl FileState {
    pub(crate) fn new(fs: &XfsFs, inode: Inode) -> Result<FileState, XfsError> {
        let (extents, inline) = match inode.format {
            inode::FMT_LOCAL => (Vec::new(), Some(inode.data_fork().to_vec())),
            _ => (fs.data_extents(&inode)?, None),
        };
        Ok(FileState {
            inode,
            pos: 0,
            extents: Arc::new(extents),
            inline,
        })
    }

    pub(crate) fn read(&mut self, fs: &XfsFs, buf: &mut [u8]) -> Result<usize, XfsError> {
        let size = self.inode.size;
        if buf.is_empty() || self.pos >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - self.pos);
        if let Some(data) = &self.inline {
            let n = n as usize;
            salvor_source::inode::copy_padded(data, self.pos, &mut buf[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let bs = fs.bs();
        let lblk = self.pos / bs;
        let within = self.pos % bs;
        let n = match bmap::find(&self.extents, lblk) {
            Ok(i) => {
                let e = self.extents[i];
                let avail = (e.off + e.len - lblk) * bs - within;
                let n = n.min(avail) as usize;
                if e.unwritten {
                    buf[..n].fill(0);
                } else {
                    let byte = fs.fsb_run_valid(e.fsb, e.len)? + (lblk - e.off) * bs + within;
                    fs.dev_read(byte, &mut buf[..n], || {
                        format!("inode {}: data at byte {byte}", self.inode.ino)
                    })?;
                }
                n
            }
            Err(i) => {
                let next = self.extents.get(i).map_or(u64::MAX, |e| e.off);
                let avail = (next - lblk).saturating_mul(bs) - within;
                let n = n.min(avail) as usize;
                buf[..n].fill(0);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}
