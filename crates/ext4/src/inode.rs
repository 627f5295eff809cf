//! On-disk inodes.

use salvor_source::{FileKind, Timestamp};

use crate::{corrupt, le16, le32, Ext4Error};

pub(crate) const FL_INDEX: u32 = 0x1000;
pub(crate) const FL_HUGE_FILE: u32 = 0x40000;
pub(crate) const FL_EXTENTS: u32 = 0x80000;

pub(crate) const FL_INLINE_DATA: u32 = 0x1000_0000;
pub(crate) const FL_ENCRYPT: u32 = 0x800;

/// One inode, decoded, with its raw bytes kept for the in-inode xattr area.
#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: u64,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u16,
    pub flags: u32,
    pub block: [u8; 60],
    pub file_acl: u64,
    pub blocks512: u64,
    pub generation: u32,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub crtime: Option<Timestamp>,
    /// Bytes of the in-inode extended attribute area (after `i_extra_isize`), if any.
    pub ibody_xattr: Vec<u8>,
}

/// Decodes a 32-bit signed seconds field plus its `_extra` word (2 epoch bits, 30 bits
/// of nanoseconds).
pub(crate) fn decode_time(base: u32, extra: Option<u32>) -> Timestamp {
    let mut sec = base as i32 as i64;
    let mut nsec = 0;
    if let Some(x) = extra {
        sec += ((x & 3) as i64) << 32;
        nsec = x >> 2;
        if nsec >= 1_000_000_000 {
            nsec = 999_999_999;
        }
    }
    Timestamp { sec, nsec }
}

impl Inode {
    /// Parses the `inode_size` bytes of inode `ino`. `block_size` is the filesystem's.
    pub(crate) fn parse(
        ino: u64,
        raw: &[u8],
        block_size: u32,
        huge_file_fs: bool,
    ) -> Result<Inode, Ext4Error> {
        if raw.len() < 128 {
            return Err(corrupt(format!("inode {ino}: shorter than 128 bytes")));
        }
        let mut extra_isize = 0usize;
        if raw.len() > 128 {
            extra_isize = le16(raw, 0x80) as usize;
            if 128 + extra_isize > raw.len() || extra_isize & 3 != 0 {
                return Err(corrupt(format!(
                    "inode {ino}: i_extra_isize {extra_isize} does not fit an inode of {} bytes",
                    raw.len()
                )));
            }
        }
        let has = |field_end: usize| 128 + extra_isize >= field_end;
        let extra_at = |off: usize| {
            if has(off + 4) {
                Some(le32(raw, off))
            } else {
                None
            }
        };
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[0x28..0x64]);
        let flags = le32(raw, 0x20);
        let mut blocks512 = le32(raw, 0x1C) as u64 | (le16(raw, 0x74) as u64) << 32;
        if huge_file_fs && flags & FL_HUGE_FILE != 0 {
            blocks512 = blocks512.saturating_mul(block_size as u64 / 512);
        }
        let crtime = if has(0x94) {
            Some(decode_time(le32(raw, 0x90), extra_at(0x94)))
        } else {
            None
        };
        let xstart = 128 + extra_isize;
        let ibody_xattr = if raw.len() > xstart + 4 {
            raw[xstart..].to_vec()
        } else {
            Vec::new()
        };
        Ok(Inode {
            ino,
            mode: le16(raw, 0x0),
            uid: le16(raw, 0x2) as u32 | (le16(raw, 0x78) as u32) << 16,
            gid: le16(raw, 0x18) as u32 | (le16(raw, 0x7A) as u32) << 16,
            size: le32(raw, 0x4) as u64 | (le32(raw, 0x6C) as u64) << 32,
            links: le16(raw, 0x1A),
            flags,
            block,
            file_acl: le32(raw, 0x68) as u64 | (le16(raw, 0x76) as u64) << 32,
            blocks512,
            generation: le32(raw, 0x64),
            atime: decode_time(le32(raw, 0x8), extra_at(0x8C)),
            ctime: decode_time(le32(raw, 0xC), extra_at(0x84)),
            mtime: decode_time(le32(raw, 0x10), extra_at(0x88)),
            crtime,
            ibody_xattr,
        })
    }

    pub(crate) fn kind(&self) -> Result<FileKind, Ext4Error> {
        Ok(match self.mode & 0xF000 {
            0x1000 => FileKind::Fifo,
            0x2000 => FileKind::CharDevice,
            0x4000 => FileKind::Dir,
            0x6000 => FileKind::BlockDevice,
            0x8000 => FileKind::Regular,
            0xA000 => FileKind::Symlink,
            0xC000 => FileKind::Socket,
            m => {
                return Err(corrupt(format!(
                    "inode {}: unknown file type {m:#o} in mode",
                    self.ino
                )))
            }
        })
    }

    /// Device major/minor of a device node (old 16-bit encoding in `i_block[0]`, or the
    /// new 32-bit one in `i_block[1]`).
    pub(crate) fn rdev(&self) -> (u32, u32) {
        let b0 = le32(&self.block, 0);
        if b0 != 0 {
            ((b0 >> 8) & 0xff, b0 & 0xff)
        } else {
            let b1 = le32(&self.block, 4);
            ((b1 & 0xfff00) >> 8, (b1 & 0xff) | ((b1 >> 12) & 0xfff00))
        }
    }

    pub(crate) fn block_u32(&self, i: usize) -> u32 {
        le32(&self.block, i * 4)
    }
}
