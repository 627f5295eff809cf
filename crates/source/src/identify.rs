//! Which filesystem a device holds, by superblock magic: the one sniffer for the
//! filesystems salvor reads (ext2/3/4, XFS). `salvor-disk`'s volume probe, the evidence
//! sniffer and the devicemapper thin devices all ask here.

use crate::BlockDevice;

/// A filesystem salvor reads, as its superblock magic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsKind {
    /// ext2, ext3 or ext4: `0xEF53` at byte 1080 (`s_magic` of the superblock at 1024).
    Ext,
    /// XFS: `XFSB` at byte 0.
    Xfs,
}

impl FsKind {
    /// `ext4` or `xfs` (the reader's name).
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext => "ext4",
            FsKind::Xfs => "xfs",
        }
    }
}

/// Bytes of a device's start [`identify_head`] looks at.
pub const HEAD_LEN: usize = 2048;

/// The filesystem whose superblock magic `head` (a device's first bytes) carries: XFS
/// first, then ext (a head too short to hold a magic does not match it).
pub fn identify_head(head: &[u8]) -> Option<FsKind> {
    if head.starts_with(b"XFSB") {
        Some(FsKind::Xfs)
    } else if head.get(1080..1082) == Some(&[0x53, 0xef][..]) {
        Some(FsKind::Ext)
    } else {
        None
    }
}

/// The filesystem on `dev` ([`identify_head`] of its first [`HEAD_LEN`] bytes, fewer on
/// a smaller device); `None` when unreadable or unrecognised.
pub fn identify(dev: &dyn BlockDevice) -> Option<FsKind> {
    let n = dev.size().min(HEAD_LEN as u64) as usize;
    let mut head = vec![0u8; n];
    dev.read_exact_at(0, &mut head).ok()?;
    identify_head(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        let mut b = vec![0u8; 2048];
        assert_eq!(identify_head(&b), None);
        b[1080] = 0x53;
        b[1081] = 0xef;
        assert_eq!(identify_head(&b), Some(FsKind::Ext));
        assert_eq!(identify_head(&b[..1081]), None);
        b[..4].copy_from_slice(b"XFSB");
        assert_eq!(identify_head(&b), Some(FsKind::Xfs));
        assert_eq!(identify_head(b"XFSB"), Some(FsKind::Xfs));
        assert_eq!(identify_head(b"XFS"), None);
    }
}
