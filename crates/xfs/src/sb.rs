//! The primary superblock (sector 0 of allocation group 0), big-endian.

use crate::{be16, be32, be64, corrupt, XfsError};

pub(crate) const XFS_SB_MAGIC: u32 = 0x5846_5342; // "XFSB"

// sb_versionnum bits
const VERSION_NUMBITS: u16 = 0x000f;
const VERSION_MOREBITS: u16 = 0x8000;
// sb_features2
const F2_CRC: u32 = 0x100;
const F2_FTYPE: u32 = 0x200;
// v5 incompat
pub(crate) const INCOMPAT_FTYPE: u32 = 0x1;
pub(crate) const INCOMPAT_BIGTIME: u32 = 0x8;
pub(crate) const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
pub(crate) const INCOMPAT_NREXT64: u32 = 0x20;
const INCOMPAT_KNOWN: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80;

/// The superblock fields the reader uses.
#[derive(Debug, Clone)]
pub(crate) struct Superblock {
    pub block_size: u32,
    pub blocklog: u8,
    pub dblocks: u64,
    pub uuid: [u8; 16],
    pub logstart: u64,
    pub rootino: u64,
    pub agblocks: u32,
    pub agcount: u32,
    pub logblocks: u32,
    pub versionnum: u16,
    pub sectsize: u16,
    pub inodesize: u16,
    pub inopblock: u16,
    pub label: String,
    pub inopblog: u8,
    pub agblklog: u8,
    pub inprogress: u8,
    pub dirblklog: u8,
    pub features2: u32,
    pub compat: u32,
    pub ro_compat: u32,
    pub incompat: u32,
    pub log_incompat: u32,
    pub stored_crc: u32,
    pub computed_crc: u32,
}

impl Superblock {
    /// Parses and validates the geometry of a superblock sector (`raw` is one sector).
    pub(crate) fn parse(raw: &[u8]) -> Result<Superblock, XfsError> {
        if raw.len() < 512 {
            return Err(XfsError::NotThisFs(
                "XFS",
                "superblock sector too short".into(),
            ));
        }
        let magic = be32(raw, 0);
        if magic != XFS_SB_MAGIC {
            return Err(XfsError::NotThisFs(
                "XFS",
                format!("bad superblock magic {magic:#010x}"),
            ));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&raw[32..48]);
        let label_raw = &raw[108..120];
        let end = label_raw.iter().position(|&b| b == 0).unwrap_or(12);
        let sb = Superblock {
            block_size: be32(raw, 4),
            dblocks: be64(raw, 8),
            uuid,
            logstart: be64(raw, 48),
            rootino: be64(raw, 56),
            agblocks: be32(raw, 84),
            agcount: be32(raw, 88),
            logblocks: be32(raw, 96),
            versionnum: be16(raw, 100),
            sectsize: be16(raw, 102),
            inodesize: be16(raw, 104),
            inopblock: be16(raw, 106),
            label: String::from_utf8_lossy(&label_raw[..end]).into_owned(),
            blocklog: raw[120],
            inopblog: raw[123],
            agblklog: raw[124],
            inprogress: raw[126],
            dirblklog: raw[192],
            features2: be32(raw, 200),
            compat: be32(raw, 208),
            ro_compat: be32(raw, 212),
            incompat: be32(raw, 216),
            log_incompat: be32(raw, 220),
            stored_crc: u32::from_le_bytes([raw[224], raw[225], raw[226], raw[227]]),
            computed_crc: 0,
        };
        let mut sb = sb;
        let version = sb.version();
        if version != 4 && version != 5 {
            return Err(XfsError::Unsupported(format!(
                "superblock version {version} (only v4 and v5 are read)"
            )));
        }
        if version == 4 {
            // v4 superblocks have no feature words past features2.
            sb.compat = 0;
            sb.ro_compat = 0;
            sb.incompat = 0;
            sb.log_incompat = 0;
        }
        if !(512..=65536).contains(&sb.block_size)
            || !sb.block_size.is_power_of_two()
            || 1u32 << sb.blocklog != sb.block_size
        {
            return Err(corrupt(format!(
                "superblock: block size {} / log {}",
                sb.block_size, sb.blocklog
            )));
        }
        if !(512..=32768).contains(&sb.sectsize) || !sb.sectsize.is_power_of_two() {
            return Err(corrupt(format!("superblock: sector size {}", sb.sectsize)));
        }
        if !(256..=2048).contains(&sb.inodesize)
            || !sb.inodesize.is_power_of_two()
            || (version == 5 && sb.inodesize < 512)
        {
            return Err(corrupt(format!("superblock: inode size {}", sb.inodesize)));
        }
        if sb.inodesize as u32 * sb.inopblock as u32 != sb.block_size
            || 1u32 << sb.inopblog != sb.inopblock as u32
        {
            return Err(corrupt(format!(
                "superblock: {} inodes of {} bytes per block of {}",
                sb.inopblock, sb.inodesize, sb.block_size
            )));
        }
        if sb.agcount == 0 || sb.agblocks < 5 || sb.agblklog > 31 {
            return Err(corrupt(format!(
                "superblock: {} allocation groups of {} blocks",
                sb.agcount, sb.agblocks
            )));
        }
        // agblklog is log2 rounded up of agblocks.
        let want_log = 32 - (sb.agblocks - 1).leading_zeros();
        if sb.agblklog as u32 != want_log {
            return Err(corrupt(format!(
                "superblock: agblklog {} does not match {} blocks per AG",
                sb.agblklog, sb.agblocks
            )));
        }
        if sb.agblklog as u32 + sb.inopblog as u32 > 32 {
            return Err(corrupt("superblock: AG inode numbers wider than 32 bits"));
        }
        let max = sb.agcount as u64 * sb.agblocks as u64;
        if sb.dblocks == 0 || sb.dblocks > max || sb.dblocks <= max - sb.agblocks as u64 {
            return Err(corrupt(format!(
                "superblock: {} data blocks do not fit {} AGs of {}",
                sb.dblocks, sb.agcount, sb.agblocks
            )));
        }
        if sb.dirblklog > 16 || (sb.block_size as u64) << sb.dirblklog > 65536 {
            return Err(corrupt(format!(
                "superblock: directory block log {}",
                sb.dirblklog
            )));
        }
        if version == 5 {
            let mut copy = raw[..sb.sectsize.min(raw.len() as u16) as usize].to_vec();
            copy[224..228].fill(0);
            sb.computed_crc = !crate::crc::crc32c(!0, &copy);
        }
        Ok(sb)
    }

    pub(crate) fn version(&self) -> u16 {
        self.versionnum & VERSION_NUMBITS
    }

    /// v5: metadata checksums and self-describing headers.
    pub(crate) fn has_crc(&self) -> bool {
        self.version() == 5
    }

    /// Directory entries carry the file type.
    pub(crate) fn has_ftype(&self) -> bool {
        if self.has_crc() {
            self.incompat & INCOMPAT_FTYPE != 0
        } else {
            self.versionnum & VERSION_MOREBITS != 0 && self.features2 & F2_FTYPE != 0
        }
    }

    pub(crate) fn unknown_incompat(&self) -> u32 {
        self.incompat & !INCOMPAT_KNOWN
    }

    /// Blocks in allocation group `agno` (the last one may be short).
    pub(crate) fn ag_size(&self, agno: u64) -> u64 {
        let start = agno * self.agblocks as u64;
        (self.dblocks - start.min(self.dblocks)).min(self.agblocks as u64)
    }

    /// Feature names as `xfs_info` / `mkfs.xfs` spell them.
    pub(crate) fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let v = self.versionnum;
        let mut add = |on: bool, name: &str| {
            if on {
                out.push(name.to_string());
            }
        };
        add(v & 0x10 != 0, "attr");
        add(v & 0x20 != 0, "nlink");
        add(v & 0x40 != 0, "quota");
        add(v & 0x80 != 0, "align");
        add(v & 0x100 != 0, "dalign");
        add(v & 0x400 != 0, "logv2");
        add(v & 0x800 != 0, "sector");
        add(v & 0x1000 != 0, "extflg");
        add(v & 0x2000 != 0, "dirv2");
        add(v & 0x4000 != 0, "ascii-ci");
        let more = v & VERSION_MOREBITS != 0;
        let f2 = if more { self.features2 } else { 0 };
        add(f2 & 0x2 != 0, "lazy-count");
        add(f2 & 0x8 != 0, "attr2");
        add(f2 & 0x10 != 0, "parent");
        add(f2 & 0x80 != 0, "projid32bit");
        add(f2 & F2_CRC != 0, "crc");
        add(f2 & F2_FTYPE != 0, "ftype");
        let ro = self.ro_compat;
        add(ro & 0x1 != 0, "finobt");
        add(ro & 0x2 != 0, "rmapbt");
        add(ro & 0x4 != 0, "reflink");
        add(ro & 0x8 != 0, "inobtcount");
        let inc = self.incompat;
        add(inc & INCOMPAT_FTYPE != 0 && f2 & F2_FTYPE == 0, "ftype");
        add(inc & 0x2 != 0, "sparse");
        add(inc & 0x4 != 0, "meta_uuid");
        add(inc & INCOMPAT_BIGTIME != 0, "bigtime");
        add(inc & INCOMPAT_NEEDSREPAIR != 0, "needsrepair");
        add(inc & INCOMPAT_NREXT64 != 0, "nrext64");
        add(inc & 0x40 != 0, "exchange");
        add(inc & 0x80 != 0, "parent_pointers");
        add(self.log_incompat & 0x1 != 0, "log_xattrs");
        if self.unknown_incompat() != 0 {
            out.push(format!("unknown_incompat_{:#x}", self.unknown_incompat()));
        }
        out
    }
}
