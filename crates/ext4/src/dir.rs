//! Directories: linear scan of every block (htree index blocks look like empty entries
//! and are skipped), inline directories, the `metadata_csum` dirent tail.

use salvor_source::inode::RawEntry;

use crate::inode::{Inode, FL_INDEX, FL_INLINE_DATA};
use crate::map::Run;
use crate::{corrupt, le16, le32, sb, Ext4Error, Ext4Fs};

/// Most entries one directory may have (a hostile directory whose blocks cover the
/// whole filesystem cannot make the reader allocate without bound).
pub const MAX_DIR_ENTRIES: usize = 16 << 20;

impl Ext4Fs {
    pub(crate) fn read_dir_raw(&self, inode: &Inode) -> Result<Vec<RawEntry>, Ext4Error> {
        let ino = inode.ino;
        let mut out = Vec::new();
        if inode.flags & FL_INLINE_DATA != 0 {
            let data = self.inline_data(inode)?;
            self.parse_region(inode, &data[4..60], "inline i_block", &mut out);
            if data.len() > 60 {
                self.parse_region(inode, &data[60..], "inline system.data", &mut out);
            }
            return Ok(out);
        }
        let bs = self.sb.block_size as u64;
        if inode.size > self.sb.blocks_count.saturating_mul(bs) {
            return Err(corrupt(format!(
                "directory inode {ino}: size {} larger than the filesystem",
                inode.size
            )));
        }
        let nblocks = inode.size.div_ceil(bs);
        let mut buf = vec![0u8; bs as usize];
        let mut lblk = 0u64;
        while lblk < nblocks {
            let run = self.map_block(inode, lblk)?;
            let n = run.len().min(nblocks - lblk);
            if let Run::Data { phys, .. } = run {
                for k in 0..n {
                    let blk = phys + k;
                    if let Err(e) = self.read_block_into(blk, &mut buf) {
                        self.warn(format!(
                            "directory inode {ino}: block {blk} unreadable: {}",
                            crate::error_text(&e)
                        ));
                        continue;
                    }
                    self.verify_dir_block(inode, lblk + k, blk, &buf);
                    self.parse_region(inode, &buf, &format!("block {blk}"), &mut out);
                    if out.len() > MAX_DIR_ENTRIES {
                        return Err(corrupt(format!(
                            "directory inode {ino}: more than {MAX_DIR_ENTRIES} entries"
                        )));
                    }
                }
            }
            lblk += n;
        }
        Ok(out)
    }

    fn verify_dir_block(&self, inode: &Inode, lblk: u64, blk: u64, b: &[u8]) {
        if !self.sb.has_csum() {
            return;
        }
        let t = b.len() - 12;
        let is_tail = le32(b, t) == 0 && le16(b, t + 4) == 12 && b[t + 6] == 0 && b[t + 7] == 0xDE;
        if !is_tail {
            // htree root and index blocks carry their checksum elsewhere.
            let dx_block = inode.flags & FL_INDEX != 0
                && (lblk == 0 || (le32(b, 0) == 0 && rec_len(le16(b, 4), b.len()) == b.len()));
            if !dx_block {
                self.csum_failure(format!(
                    "directory inode {}: block {blk} has no checksum tail",
                    inode.ino
                ));
            }
            return;
        }
        let want = le32(b, t + 8);
        let got = crate::crc::crc32c(self.inode_seed(inode), &b[..t]);
        if want != got {
            self.csum_failure(format!(
                "directory inode {}: block {blk} checksum {want:#010x}, computed {got:#010x}",
                inode.ino
            ));
        }
    }

    /// Parses the entries of one directory block (or inline region) into `out`.
    fn parse_region(&self, inode: &Inode, b: &[u8], what: &str, out: &mut Vec<RawEntry>) {
        let filetype = self.sb.incompat & sb::INCOMPAT_FILETYPE != 0;
        let mut off = 0usize;
        while off + 8 <= b.len() {
            let ino = le32(b, off);
            let rl = rec_len(le16(b, off + 4), self.sb.block_size as usize);
            let (name_len, ftype) = if filetype {
                (b[off + 6] as usize, b[off + 7])
            } else {
                (le16(b, off + 6) as usize, 0)
            };
            if rl < 8 || rl & 3 != 0 || off + rl > b.len() || (ino != 0 && 8 + name_len > rl) {
                self.warn(format!(
                    "directory inode {}: {what}: bad entry at offset {off} (rec_len {rl}, name_len {name_len}); rest of the block skipped",
                    inode.ino
                ));
                return;
            }
            if ino != 0 {
                let name = &b[off + 8..off + 8 + name_len];
                if name == b"." || name == b".." {
                    // skipped
                } else if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                    self.warn(format!(
                        "directory inode {}: {what}: entry with invalid name {:?} skipped",
                        inode.ino,
                        String::from_utf8_lossy(name)
                    ));
                } else if ino as u64 > self.sb.inodes_count as u64 {
                    self.warn(format!(
                        "directory inode {}: {what}: entry {:?} names inode {ino}, out of range; skipped",
                        inode.ino,
                        String::from_utf8_lossy(name)
                    ));
                } else {
                    out.push(RawEntry {
                        name: name.to_vec(),
                        ino: ino as u64,
                        ftype,
                    });
                }
            }
            off += rl;
        }
    }
}

fn rec_len(raw: u16, block_size: usize) -> usize {
    if block_size >= 65536 && (raw == 65535 || raw == 0) {
        block_size
    } else if block_size >= 65536 {
        (raw as usize & 65532) | ((raw as usize & 3) << 16)
    } else {
        raw as usize
    }
}
