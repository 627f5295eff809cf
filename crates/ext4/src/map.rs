//! Logical → physical block mapping: extent trees (any depth ≤ 5, unwritten extents read
//! as zeros) and ext2/3 block maps (direct, indirect, double, triple; holes anywhere).

use crate::inode::{Inode, FL_EXTENTS};
use crate::{corrupt, le16, le32, Ext4Error, Ext4Fs};

/// Where a run of logical blocks, starting at the block asked for, lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// `len` blocks stored contiguously from physical block `phys`.
    Data { phys: u64, len: u64 },
    /// `len` blocks that read as zeros (a hole or an unwritten extent).
    Zero { len: u64 },
}

impl Run {
    pub(crate) fn len(&self) -> u64 {
        match *self {
            Run::Data { len, .. } | Run::Zero { len } => len,
        }
    }
}

pub(crate) const EXTENT_MAGIC: u16 = 0xF30A;
pub(crate) const MAX_EXTENT_DEPTH: u16 = 5;
/// Logical block numbers in extents are 32-bit.
const EXTENT_LIMIT: u64 = 1 << 32;

impl Ext4Fs {
    /// Maps logical block `lblk` of `inode`.
    pub(crate) fn map_block(&self, inode: &Inode, lblk: u64) -> Result<Run, Ext4Error> {
        if inode.flags & FL_EXTENTS != 0 {
            self.map_extent(inode, lblk)
        } else {
            self.map_blockmap(inode, lblk)
        }
    }

    fn check_run(&self, inode: &Inode, phys: u64, len: u64) -> Result<(), Ext4Error> {
        if phys == 0 || !matches!(phys.checked_add(len), Some(end) if end <= self.sb.blocks_count) {
            return Err(corrupt(format!(
                "inode {}: data blocks {phys}+{len} outside the filesystem ({} blocks)",
                inode.ino, self.sb.blocks_count
            )));
        }
        Ok(())
    }

    fn map_extent(&self, inode: &Inode, lblk: u64) -> Result<Run, Ext4Error> {
        let ino = inode.ino;
        if lblk >= EXTENT_LIMIT {
            return Ok(Run::Zero { len: u64::MAX / 2 });
        }
        let mut node: std::borrow::Cow<[u8]> = std::borrow::Cow::Borrowed(&inode.block[..]);
        let mut upper = EXTENT_LIMIT;
        let mut expect_depth: Option<u16> = None;
        let mut node_block = 0u64;
        loop {
            let n = &node[..];
            if le16(n, 0) != EXTENT_MAGIC {
                return Err(corrupt(format!(
                    "inode {ino}: bad extent header magic {:#06x}{}",
                    le16(n, 0),
                    at_block(node_block)
                )));
            }
            let entries = le16(n, 2) as usize;
            let max = le16(n, 4) as usize;
            let depth = le16(n, 6);
            if entries > max || 12 + 12 * max > n.len() {
                return Err(corrupt(format!(
                    "inode {ino}: extent node with {entries}/{max} entries does not fit{}",
                    at_block(node_block)
                )));
            }
            match expect_depth {
                Some(d) if d != depth => {
                    return Err(corrupt(format!(
                        "inode {ino}: extent node depth {depth}, expected {d}{}",
                        at_block(node_block)
                    )))
                }
                None if depth > MAX_EXTENT_DEPTH => {
                    return Err(corrupt(format!(
                        "inode {ino}: extent tree depth {depth} > {MAX_EXTENT_DEPTH}"
                    )))
                }
                _ => {}
            }
            let key = |i: usize| le32(n, 12 + 12 * i) as u64;
            // Last entry whose first logical block is <= lblk.
            let (mut lo, mut hi) = (0usize, entries);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if key(mid) <= lblk {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let idx = lo;
            if depth == 0 {
                if idx > 0 {
                    let e = 12 + 12 * (idx - 1);
                    let start = key(idx - 1);
                    let raw_len = le16(n, e + 4) as u64;
                    let (len, unwritten) = if raw_len > 32768 {
                        (raw_len - 32768, true)
                    } else {
                        (raw_len, false)
                    };
                    let phys = (le16(n, e + 6) as u64) << 32 | le32(n, e + 8) as u64;
                    if lblk < start + len {
                        let off = lblk - start;
                        let run = (len - off).min(upper.saturating_sub(lblk)).max(1);
                        if unwritten {
                            return Ok(Run::Zero { len: run });
                        }
                        self.check_run(inode, phys, len)?;
                        return Ok(Run::Data {
                            phys: phys + off,
                            len: run,
                        });
                    }
                }
                let next = if idx < entries {
                    key(idx).min(upper)
                } else {
                    upper
                };
                return Ok(Run::Zero {
                    len: next.saturating_sub(lblk).max(1),
                });
            }
            if idx == 0 {
                let next = if entries > 0 {
                    key(0).min(upper)
                } else {
                    upper
                };
                return Ok(Run::Zero {
                    len: next.saturating_sub(lblk).max(1),
                });
            }
            if idx < entries {
                upper = upper.min(key(idx));
            }
            let e = 12 + 12 * (idx - 1);
            let child = (le16(n, e + 8) as u64) << 32 | le32(n, e + 4) as u64;
            if child == 0 || child >= self.sb.blocks_count {
                return Err(corrupt(format!(
                    "inode {ino}: extent index points to block {child} outside the filesystem"
                )));
            }
            let blk = self.read_meta_block(child)?;
            if self.sb.has_csum() {
                let max = le16(&blk, 4) as usize;
                let tail = 12 + 12 * max;
                if le16(&blk, 0) == EXTENT_MAGIC && tail + 4 <= blk.len() {
                    let want = le32(&blk, tail);
                    let got = crate::crc::crc32c(self.inode_seed(inode), &blk[..tail]);
                    if want != got {
                        self.csum_failure(format!(
                            "inode {ino}: extent block {child} checksum {want:#010x}, computed {got:#010x}"
                        ));
                    }
                }
            }
            node = std::borrow::Cow::Owned(blk.to_vec());
            node_block = child;
            expect_depth = Some(depth - 1);
        }
    }

    fn map_blockmap(&self, inode: &Inode, lblk: u64) -> Result<Run, Ext4Error> {
        let p = (self.sb.block_size / 4) as u64;
        if lblk < 12 {
            let i = lblk as usize;
            let ptr = inode.block_u32(i) as u64;
            let mut len = 1u64;
            if ptr == 0 {
                while i + (len as usize) < 12 && inode.block_u32(i + len as usize) == 0 {
                    len += 1;
                }
                return Ok(Run::Zero { len });
            }
            while i + (len as usize) < 12 && inode.block_u32(i + len as usize) as u64 == ptr + len {
                len += 1;
            }
            self.check_run(inode, ptr, len)?;
            return Ok(Run::Data { phys: ptr, len });
        }
        let mut l = lblk - 12;
        let mut span = p;
        let mut level = 1;
        while l >= span {
            l -= span;
            level += 1;
            if level > 3 {
                return Ok(Run::Zero { len: u64::MAX / 2 });
            }
            span *= p;
        }
        let mut ptr = inode.block_u32(11 + level) as u64;
        loop {
            if ptr == 0 {
                return Ok(Run::Zero { len: span - l });
            }
            if ptr >= self.sb.blocks_count {
                return Err(corrupt(format!(
                    "inode {}: indirect block {ptr} outside the filesystem",
                    inode.ino
                )));
            }
            let blk = self.read_meta_block(ptr)?;
            span /= p;
            let idx = (l / span) as usize;
            l %= span;
            let entry = |i: usize| le32(&blk, 4 * i) as u64;
            if span == 1 {
                let first = entry(idx);
                let mut len = 1u64;
                if first == 0 {
                    while idx + (len as usize) < p as usize && entry(idx + len as usize) == 0 {
                        len += 1;
                    }
                    return Ok(Run::Zero { len });
                }
                while idx + (len as usize) < p as usize && entry(idx + len as usize) == first + len
                {
                    len += 1;
                }
                self.check_run(inode, first, len)?;
                return Ok(Run::Data { phys: first, len });
            }
            ptr = entry(idx);
        }
    }
}

fn at_block(b: u64) -> String {
    if b == 0 {
        " (in the inode)".into()
    } else {
        format!(" (block {b})")
    }
}
