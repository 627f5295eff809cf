//! An open regular file: position and mapping state.

use crate::inode::{self, Inode};
use crate::map::Run;
use crate::{Ext4Error, Ext4Fs};

/// Position and current mapping run of an open file.
pub struct FileState {
    pub(crate) inode: Inode,
    pub(crate) pos: u64,
    /// The last run mapped: its first logical block and where it lives.
    cur: Option<(u64, Run)>,
    inline: Option<Vec<u8>>,
}

impl FileState {
    pub(crate) fn new(inode: Inode) -> FileState {
        FileState {
            inode,
            pos: 0,
            cur: None,
            inline: None,
        }
    }

    pub(crate) fn read(&mut self, fs: &Ext4Fs, buf: &mut [u8]) -> Result<usize, Ext4Error> {
        let size = self.inode.size;
        if buf.is_empty() || self.pos >= size {
            return Ok(0);
        }
        if self.inode.flags & inode::FL_INLINE_DATA != 0 {
            if self.inline.is_none() {
                self.inline = Some(fs.inline_data(&self.inode)?);
            }
            // Past the inline bytes the file reads as zeros (as the kernel does).
            let data = self.inline.as_deref().unwrap_or_default();
            let n = (buf.len() as u64).min(size - self.pos) as usize;
            salvor_source::inode::copy_padded(data, self.pos, &mut buf[..n]);
            self.pos += n as u64;
            return Ok(n);
        }
        let bs = fs.bs();
        let lblk = self.pos / bs;
        let (start, run) = match self.cur {
            Some((s, r)) if s <= lblk && lblk - s < r.len() => (s, r),
            _ => {
                let r = fs.map_block(&self.inode, lblk)?;
                self.cur = Some((lblk, r));
                (lblk, r)
            }
        };
        let in_run = (lblk - start) * bs + self.pos % bs;
        let run_bytes = run.len().saturating_mul(bs);
        let avail = run_bytes.saturating_sub(in_run);
        let n = (buf.len() as u64).min(avail).min(size - self.pos) as usize;
        match run {
            Run::Zero { .. } => buf[..n].fill(0),
            Run::Data { phys, .. } => fs.read_data(phys, in_run, &mut buf[..n])?,
        }
        self.pos += n as u64;
        Ok(n)
    }
}
