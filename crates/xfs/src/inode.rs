//! The on-disk inode (`xfs_dinode`): v1/v2 cores of 100 bytes, v3 cores of 176 bytes,
//! then the data fork and (at `forkoff * 8`) the attribute fork.

use salvor_source::{FileKind, Timestamp};

use crate::{be16, be32, be64, corrupt, XfsError};

pub(crate) const DINODE_MAGIC: u16 = 0x494e; // "IN"

pub(crate) const FMT_DEV: u8 = 0;
pub(crate) const FMT_LOCAL: u8 = 1;
pub(crate) const FMT_EXTENTS: u8 = 2;
pub(crate) const FMT_BTREE: u8 = 3;

pub(crate) const DIFLAG_REALTIME: u16 = 0x1;
const DIFLAG2_BIGTIME: u64 = 0x8;
const DIFLAG2_NREXT64: u64 = 0x10;

/// Seconds from 1901-12-13T20:45:52Z (the bigtime epoch) to the Unix epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

#[derive(Debug, Clone)]
pub struct Inode {
    pub ino: u64,
    pub mode: u16,
    pub version: u8,
    pub format: u8,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub crtime: Option<Timestamp>,
    pub size: u64,
    pub nextents: u64,
    pub anextents: u64,
    pub forkoff: u8,
    pub aformat: u8,
    pub flags: u16,
    /// The whole on-disk inode.
    pub raw: Vec<u8>,
    pub core_size: usize,
    /// v3 `di_ino` (0 for older cores).
    pub self_ino: u64,
}

fn timestamp(raw: &[u8], off: usize, bigtime: bool) -> Timestamp {
    if bigtime {
        let v = be64(raw, off);
        let secs = (v / 1_000_000_000) as i64 - BIGTIME_EPOCH_OFFSET;
        Timestamp {
            sec: secs,
            nsec: (v % 1_000_000_000) as u32,
        }
    } else {
        Timestamp {
            sec: be32(raw, off) as i32 as i64,
            nsec: be32(raw, off + 4).min(999_999_999),
        }
    }
}

impl Inode {
    /// Parses the inode bytes `raw` (one inode long) of inode number `ino`.
    pub(crate) fn parse(ino: u64, raw: &[u8], v5: bool) -> Result<Inode, XfsError> {
        let magic = be16(raw, 0);
        if magic != DINODE_MAGIC {
            return Err(corrupt(format!(
                "inode {ino}: bad magic {magic:#06x} (free or overwritten inode)"
            )));
        }
        let version = raw[4];
        if !(1..=3).contains(&version) || (v5 && version != 3) || (!v5 && version == 3) {
            return Err(corrupt(format!(
                "inode {ino}: version {version} on a v{} filesystem",
                if v5 { 5 } else { 4 }
            )));
        }
        let core_size = if version == 3 { 176 } else { 100 };
        if raw.len() < core_size + 8 {
            return Err(corrupt(format!("inode {ino}: inode too small")));
        }
        let flags2 = if version == 3 { be64(raw, 120) } else { 0 };
        let bigtime = flags2 & DIFLAG2_BIGTIME != 0;
        let nrext64 = flags2 & DIFLAG2_NREXT64 != 0;
        let (nextents, anextents) = if nrext64 {
            (be64(raw, 24), be32(raw, 76) as u64)
        } else {
            (be32(raw, 76) as u64, be16(raw, 80) as u64)
        };
        let nlink = if version == 1 {
            be16(raw, 6) as u32
        } else {
            be32(raw, 16)
        };
        let size = be64(raw, 56);
        if size > i64::MAX as u64 {
            return Err(corrupt(format!("inode {ino}: negative size")));
        }
        let forkoff = raw[82];
        if core_size + forkoff as usize * 8 >= raw.len() {
            return Err(corrupt(format!(
                "inode {ino}: attribute fork offset {} past the inode",
                forkoff as usize * 8
            )));
        }
        Ok(Inode {
            ino,
            mode: be16(raw, 2),
            version,
            format: raw[5],
            nlink,
            uid: be32(raw, 8),
            gid: be32(raw, 12),
            atime: timestamp(raw, 32, bigtime),
            mtime: timestamp(raw, 40, bigtime),
            ctime: timestamp(raw, 48, bigtime),
            crtime: (version == 3).then(|| timestamp(raw, 144, bigtime)),
            size,
            nextents,
            anextents,
            forkoff,
            aformat: raw[83],
            flags: be16(raw, 90),
            raw: raw.to_vec(),
            core_size,
            self_ino: if version == 3 { be64(raw, 152) } else { 0 },
        })
    }

    pub(crate) fn kind(&self) -> Result<FileKind, XfsError> {
        Ok(match self.mode & 0o170000 {
            0o100000 => FileKind::Regular,
            0o040000 => FileKind::Dir,
            0o120000 => FileKind::Symlink,
            0o020000 => FileKind::CharDevice,
            0o060000 => FileKind::BlockDevice,
            0o010000 => FileKind::Fifo,
            0o140000 => FileKind::Socket,
            m => {
                return Err(corrupt(format!(
                    "inode {}: unknown file type {m:#o} in mode",
                    self.ino
                )))
            }
        })
    }

    /// The data fork bytes.
    pub(crate) fn data_fork(&self) -> &[u8] {
        let end = if self.forkoff != 0 {
            self.core_size + self.forkoff as usize * 8
        } else {
            self.raw.len()
        };
        &self.raw[self.core_size..end]
    }

    /// The attribute fork bytes, if the inode has one.
    pub(crate) fn attr_fork(&self) -> Option<&[u8]> {
        (self.forkoff != 0).then(|| &self.raw[self.core_size + self.forkoff as usize * 8..])
    }

    /// Device number (`sysv` encoding: major << 18 | minor).
    pub(crate) fn rdev(&self) -> (u32, u32) {
        let d = self.data_fork();
        if self.format != FMT_DEV || d.len() < 4 {
            return (0, 0);
        }
        let v = be32(d, 0);
        (v >> 18, v & 0x3ffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigtime_and_legacy_timestamps() {
        let mut raw = [0u8; 16];
        // bigtime: (sec + 2^31) * 1e9 + nsec
        let v: u64 = ((-5i64 + (1 << 31)) as u64) * 1_000_000_000 + 7;
        raw[..8].copy_from_slice(&v.to_be_bytes());
        assert_eq!(timestamp(&raw, 0, true), Timestamp { sec: -5, nsec: 7 });
        let v: u64 = ((4_102_444_800i64 + (1 << 31)) as u64) * 1_000_000_000;
        raw[..8].copy_from_slice(&v.to_be_bytes());
        assert_eq!(timestamp(&raw, 0, true).sec, 4_102_444_800); // 2100-01-01
                                                                 // legacy: signed 32-bit seconds
        raw[..4].copy_from_slice(&(-86400i32).to_be_bytes());
        raw[4..8].copy_from_slice(&250_000_000u32.to_be_bytes());
        assert_eq!(
            timestamp(&raw, 0, false),
            Timestamp {
                sec: -86400,
                nsec: 250_000_000
            }
        );
    }
}
