//! What a volume holds, found by superblock magic, and the one way to open the
//! filesystems salvor reads ([`open_filesystem`]).

use std::sync::Arc;

use salvor_source::{identify_head, BlockDevice, FsKind, Source};
use serde::Serialize;

/// The content of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// ext2, ext3 or ext4 (magic 0xEF53 at 1024+0x38).
    Ext {
        /// `ext2`, `ext3` or `ext4`, from the feature flags.
        version: String,
        /// Volume label (`s_volume_name`), empty when none.
        label: String,
        /// Filesystem UUID, hyphenated hex.
        uuid: String,
        /// Block size in bytes (0 when the superblock's `s_log_block_size` is absurd).
        block_size: u64,
        /// Block count (`s_blocks_count`, 64-bit with the `64bit` feature).
        blocks: u64,
        /// `s_feature_compat` bits.
        feature_compat: u32,
        /// `s_feature_incompat` bits.
        feature_incompat: u32,
        /// `s_feature_ro_compat` bits.
        feature_ro_compat: u32,
        /// `s_feature_incompat & RECOVER`: the journal holds transactions not yet applied.
        needs_recovery: bool,
        /// `s_feature_compat & HAS_JOURNAL`: an internal journal exists.
        has_journal: bool,
    },
    /// XFS (`XFSB`).
    Xfs {
        /// Superblock version (4 or 5).
        version: u16,
        /// Filesystem label (`sb_fname`), empty when none.
        label: String,
        /// Filesystem UUID, hyphenated hex.
        uuid: String,
        /// Block size in bytes (`sb_blocksize`).
        block_size: u32,
        /// Data blocks (`sb_dblocks`).
        blocks: u64,
        /// `None`: the log state was not checked (no log reader in this crate).
        log_clean: Option<bool>,
    },
    /// btrfs (`_BHRfS_M` in the superblock at 64 KiB): recognised, not read.
    Btrfs {
        /// Filesystem label, empty when none.
        label: String,
    },
    /// A Linux swap area (`SWAPSPACE2`/`SWAP-SPACE` at the end of the first page).
    Swap,
    /// LUKS encrypted volume (version 1 or 2).
    Luks {
        /// LUKS header version.
        version: u16,
    },
    /// An LVM2 physical volume (its LVs are listed separately).
    LvmPv {
        /// PV UUID, in LVM's dashed form.
        uuid: String,
    },
    /// device-mapper thin-pool metadata (Docker's `devicemapper` driver).
    ThinPoolMetadata,
    /// Nothing recognised.
    Unknown,
}

impl Content {
    /// True for filesystems a Docker data-root may live on that salvor reads (ext, XFS).
    pub fn is_candidate(&self) -> bool {
        matches!(self, Content::Ext { .. } | Content::Xfs { .. })
    }
    /// The reader for this content, if salvor has one (ext2/3/4, XFS).
    pub fn fs_kind(&self) -> Option<FsKind> {
        match self {
            Content::Ext { .. } => Some(FsKind::Ext),
            Content::Xfs { .. } => Some(FsKind::Xfs),
            _ => None,
        }
    }
    /// A short name (`ext4`, `xfs (v5)`, `LUKS2`…).
    pub fn short_name(&self) -> String {
        match self {
            Content::Ext { version, .. } => version.clone(),
            Content::Xfs { version, .. } => format!("xfs (v{version})"),
            Content::Btrfs { .. } => "btrfs".into(),
            Content::Swap => "swap".into(),
            Content::Luks { version } => format!("LUKS{version}"),
            Content::LvmPv { .. } => "LVM2 PV".into(),
            Content::ThinPoolMetadata => "thin-pool metadata".into(),
            Content::Unknown => "unknown".into(),
        }
    }
}

/// Errors from [`open_filesystem`] and [`open_as`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsOpenError {
    /// Neither an ext2/3/4 nor an XFS superblock at the start of the device.
    #[error("{device}: no ext2/3/4 or XFS filesystem on it")]
    NotAFilesystem {
        /// The device's description.
        device: String,
    },
    /// The ext2/3/4 or XFS reader refused it.
    #[error(transparent)]
    Fs(#[from] salvor_source::inode::FsError),
}

/// Opens the filesystem on `dev` with the reader its superblock magic names
/// ([`salvor_source::identify`]).
pub fn open_filesystem(dev: Arc<dyn BlockDevice>) -> Result<Arc<dyn Source>, FsOpenError> {
    match salvor_source::identify(dev.as_ref()) {
        Some(kind) => open_as(kind, dev),
        None => Err(FsOpenError::NotAFilesystem {
            device: dev.describe(),
        }),
    }
}

/// Opens `dev` as a `kind` filesystem.
pub fn open_as(kind: FsKind, dev: Arc<dyn BlockDevice>) -> Result<Arc<dyn Source>, FsOpenError> {
    Ok(match kind {
        FsKind::Ext => Arc::new(salvor_ext4::Ext4::open(dev)?),
        FsKind::Xfs => Arc::new(salvor_xfs::Xfs::open(dev)?),
    })
}

fn uuid_str(b: &[u8]) -> String {
    b.try_into()
        .map(salvor_source::inode::uuid_string)
        .unwrap_or_default()
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn read(dev: &dyn BlockDevice, off: u64, len: usize) -> Option<Vec<u8>> {
    if off.checked_add(len as u64)? > dev.size() {
        return None;
    }
    let mut b = vec![0u8; len];
    dev.read_exact_at(off, &mut b).ok()?;
    Some(b)
}

const EXT_COMPAT_HAS_JOURNAL: u32 = 0x4;
const EXT_INCOMPAT_RECOVER: u32 = 0x4;
const EXT_INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const EXT4_INCOMPAT: u32 = 0x40 | 0x80 | 0x200 | 0x400 | 0x8000; // extents, 64bit, flex_bg, ea_inode, inline_data
const EXT4_RO_COMPAT: u32 = 0x8 | 0x20 | 0x40 | 0x400; // huge_file, dir_nlink, extra_isize, metadata_csum

/// Identifies the content of a volume. Read errors and short devices give `Unknown`.
pub fn identify(dev: &dyn BlockDevice) -> Content {
    let head = read(dev, 0, 4096).or_else(|| {
        let n = dev.size().min(4096) as usize;
        read(dev, 0, n)
    });
    let Some(head) = head else {
        return Content::Unknown;
    };
    let at = |o: usize, m: &[u8]| head.len() >= o + m.len() && &head[o..o + m.len()] == m;
    if at(0, b"LUKS\xba\xbe") {
        let v = if head.len() >= 8 {
            u16::from_be_bytes([head[6], head[7]])
        } else {
            0
        };
        return Content::Luks { version: v };
    }
    for s in 0..4 {
        if at(s * 512, b"LABELONE") && at(s * 512 + 24, b"LVM2 001") {
            if let Ok(Some(l)) = crate::lvm::read_pv_label(dev) {
                return Content::LvmPv { uuid: l.uuid };
            }
        }
    }
    let fs = identify_head(&head);
    if fs == Some(FsKind::Xfs) && head.len() >= 512 {
        let be16 = |o: usize| u16::from_be_bytes([head[o], head[o + 1]]);
        let be32 = |o: usize| u32::from_be_bytes(head[o..o + 4].try_into().unwrap());
        let be64 = |o: usize| u64::from_be_bytes(head[o..o + 8].try_into().unwrap());
        return Content::Xfs {
            version: be16(100) & 0xf,
            label: cstr(&head[108..120]),
            uuid: uuid_str(&head[32..48]),
            block_size: be32(4),
            blocks: be64(8),
            log_clean: None,
        };
    }
    if fs == Some(FsKind::Ext) && head.len() >= 2048 {
        let sb = &head[1024..2048];
        let le32 = |o: usize| u32::from_le_bytes(sb[o..o + 4].try_into().unwrap());
        let compat = le32(0x5c);
        let incompat = le32(0x60);
        let ro = le32(0x64);
        let log_bs = le32(0x18);
        let hi = if incompat & 0x80 != 0 {
            le32(0x150) as u64
        } else {
            0
        };
        let blocks = (hi << 32) | le32(0x4) as u64;
        let version = if incompat & EXT4_INCOMPAT != 0 || ro & EXT4_RO_COMPAT != 0 {
            "ext4"
        } else if compat & EXT_COMPAT_HAS_JOURNAL != 0 || incompat & EXT_INCOMPAT_JOURNAL_DEV != 0 {
            "ext3"
        } else {
            "ext2"
        };
        return Content::Ext {
            version: version.into(),
            label: cstr(&sb[0x78..0x88]),
            uuid: uuid_str(&sb[0x68..0x78]),
            block_size: if log_bs < 7 { 1024u64 << log_bs } else { 0 },
            blocks,
            feature_compat: compat,
            feature_incompat: incompat,
            feature_ro_compat: ro,
            needs_recovery: incompat & EXT_INCOMPAT_RECOVER != 0,
            has_journal: compat & EXT_COMPAT_HAS_JOURNAL != 0,
        };
    }
    if head.len() >= 40 && u64::from_le_bytes(head[32..40].try_into().unwrap()) == 27022010 {
        return Content::ThinPoolMetadata;
    }
    if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        return Content::Swap;
    }
    if let Some(b) = read(dev, 0x10000, 4096) {
        if &b[0x40..0x48] == b"_BHRfS_M" {
            return Content::Btrfs {
                label: cstr(&b[0x12b..0x22b]),
            };
        }
    }
    // Swap with larger pages (arm64 64 KiB).
    for ps in [16384u64, 65536] {
        if let Some(b) = read(dev, ps - 10, 10) {
            if &b[..] == b"SWAPSPACE2" {
                return Content::Swap;
            }
        }
    }
    Content::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Mem(Vec<u8>);
    impl BlockDevice for Mem {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            if offset >= self.size() {
                return Ok(0);
            }
            let n = buf.len().min(self.0.len() - offset as usize);
            buf[..n].copy_from_slice(&self.0[offset as usize..offset as usize + n]);
            Ok(n)
        }
        fn describe(&self) -> String {
            "mem".into()
        }
    }

    #[test]
    fn ext_versions_and_recovery() {
        let mut b = vec![0u8; 1 << 20];
        b[1024 + 0x38] = 0x53;
        b[1024 + 0x39] = 0xef;
        b[1024 + 0x18] = 2; // 4 KiB blocks
        b[1024 + 0x04] = 0x10;
        b[1024 + 0x78..1024 + 0x7c].copy_from_slice(b"root");
        let c = identify(&Mem(b.clone()));
        assert!(
            matches!(c, Content::Ext { ref version, block_size: 4096, blocks: 16, needs_recovery: false, ref label, .. } if version == "ext2" && label == "root"),
            "{c:?}"
        );
        b[1024 + 0x5c] = 0x4; // has_journal
        assert!(
            matches!(identify(&Mem(b.clone())), Content::Ext { ref version, .. } if version == "ext3")
        );
        b[1024 + 0x60] = 0x40 | 0x4; // extents + recover
        assert!(
            matches!(identify(&Mem(b.clone())), Content::Ext { ref version, needs_recovery: true, has_journal: true, .. } if version == "ext4")
        );
    }

    #[test]
    fn other_magics() {
        let mut x = vec![0u8; 1 << 20];
        x[..4].copy_from_slice(b"XFSB");
        x[4..8].copy_from_slice(&4096u32.to_be_bytes());
        x[8..16].copy_from_slice(&1000u64.to_be_bytes());
        x[100..102].copy_from_slice(&0xb4a5u16.to_be_bytes());
        x[108..112].copy_from_slice(b"data");
        assert_eq!(
            identify(&Mem(x)),
            Content::Xfs {
                version: 5,
                label: "data".into(),
                uuid: "00000000-0000-0000-0000-000000000000".into(),
                block_size: 4096,
                blocks: 1000,
                log_clean: None
            }
        );
        let mut l = vec![0u8; 1 << 20];
        l[..8].copy_from_slice(b"LUKS\xba\xbe\x00\x02");
        assert_eq!(identify(&Mem(l)), Content::Luks { version: 2 });
        let mut s = vec![0u8; 1 << 20];
        s[4086..4096].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(identify(&Mem(s)), Content::Swap);
        let mut t = vec![0u8; 1 << 20];
        t[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        t[0x1012b..0x1012e].copy_from_slice(b"bfs");
        assert_eq!(
            identify(&Mem(t)),
            Content::Btrfs {
                label: "bfs".into()
            }
        );
        let mut m = vec![0u8; 1 << 20];
        m[32..40].copy_from_slice(&27022010u64.to_le_bytes());
        assert_eq!(identify(&Mem(m)), Content::ThinPoolMetadata);
        assert_eq!(identify(&Mem(vec![0u8; 100])), Content::Unknown);
        assert_eq!(identify(&Mem(Vec::new())), Content::Unknown);
    }
}
