//! Superblock and block group descriptors.

use crate::{corrupt, le16, le32, Ext4Error};

pub(crate) const MAGIC: u16 = 0xEF53;

// s_feature_compat
pub(crate) const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub(crate) const COMPAT_SPARSE_SUPER2: u32 = 0x200;
// s_feature_incompat
pub(crate) const INCOMPAT_COMPRESSION: u32 = 0x1;
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_RECOVER: u32 = 0x4;
pub(crate) const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
pub(crate) const INCOMPAT_META_BG: u32 = 0x10;
pub(crate) const INCOMPAT_64BIT: u32 = 0x80;
pub(crate) const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub(crate) const INCOMPAT_DIRDATA: u32 = 0x1000;
// s_feature_ro_compat
pub(crate) const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub(crate) const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub(crate) const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

const COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "dir_prealloc"),
    (0x2, "imagic_inodes"),
    (0x4, "has_journal"),
    (0x8, "ext_attr"),
    (0x10, "resize_inode"),
    (0x20, "dir_index"),
    (0x40, "lazy_bg"),
    (0x80, "exclude_inode"),
    (0x100, "exclude_bitmap"),
    (0x200, "sparse_super2"),
    (0x400, "fast_commit"),
    (0x800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x4, "btree_dir"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x80, "has_snapshot"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

/// The parts of the superblock the reader uses.
#[derive(Debug, Clone)]
pub(crate) struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub first_data_block: u32,
    pub block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub state: u16,
    pub inode_size: u16,
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
    pub uuid: [u8; 16],
    pub volume_name: String,
    pub journal_inum: u32,
    pub desc_size: u32,
    pub first_meta_bg: u32,
    pub backup_bgs: [u32; 2],
    pub csum_seed: u32,
    pub group_count: u64,
    pub stored_csum: u32,
    pub computed_csum: u32,
}

/// Largest number of block groups accepted (16 Mi groups: 2 PiB with 4 KiB blocks).
const MAX_GROUPS: u64 = 1 << 24;

impl Superblock {
    pub(crate) fn parse(b: &[u8]) -> Result<Superblock, Ext4Error> {
        if b.len() < 1024 {
            return Err(Ext4Error::NotThisFs(
                "ext2/3/4",
                "superblock shorter than 1024 bytes".into(),
            ));
        }
        if le16(b, 0x38) != MAGIC {
            return Err(Ext4Error::NotThisFs(
                "ext2/3/4",
                format!("bad superblock magic {:#06x}", le16(b, 0x38)),
            ));
        }
        let log_bs = le32(b, 0x18);
        if log_bs > 6 {
            return Err(corrupt(format!(
                "superblock: block size 2^(10+{log_bs}) out of range"
            )));
        }
        let block_size = 1024u32 << log_bs;
        let rev_level = le32(b, 0x4C);
        let incompat = if rev_level >= 1 { le32(b, 0x60) } else { 0 };
        let compat = if rev_level >= 1 { le32(b, 0x5C) } else { 0 };
        let ro_compat = if rev_level >= 1 { le32(b, 0x64) } else { 0 };
        let mut blocks_count = le32(b, 0x4) as u64;
        let is64 = incompat & INCOMPAT_64BIT != 0;
        if is64 {
            blocks_count |= (le32(b, 0x150) as u64) << 32;
        }
        let inode_size = if rev_level == 0 { 128 } else { le16(b, 0x58) };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size as u32 > block_size {
            return Err(corrupt(format!(
                "superblock: inode size {inode_size} is invalid"
            )));
        }
        let first_data_block = le32(b, 0x14);
        let blocks_per_group = le32(b, 0x20);
        let inodes_per_group = le32(b, 0x28);
        if blocks_per_group == 0 || blocks_per_group > 8 * block_size {
            return Err(corrupt(format!(
                "superblock: {blocks_per_group} blocks per group"
            )));
        }
        if inodes_per_group == 0 || inodes_per_group > 8 * block_size {
            return Err(corrupt(format!(
                "superblock: {inodes_per_group} inodes per group"
            )));
        }
        if blocks_count <= first_data_block as u64 {
            return Err(corrupt(format!(
                "superblock: block count {blocks_count} not above first data block {first_data_block}"
            )));
        }
        let group_count =
            (blocks_count - first_data_block as u64).div_ceil(blocks_per_group as u64);
        if group_count > MAX_GROUPS {
            return Err(corrupt(format!(
                "superblock: {group_count} block groups (limit {MAX_GROUPS})"
            )));
        }
        let inodes_count = le32(b, 0x0);
        if inodes_count as u64 > group_count * inodes_per_group as u64 {
            return Err(corrupt(format!(
                "superblock: {inodes_count} inodes but only {group_count} groups of {inodes_per_group}"
            )));
        }
        let desc_size = if is64 { le16(b, 0xFE) as u32 } else { 32 };
        if is64 && (desc_size < 64 || !desc_size.is_power_of_two() || desc_size > block_size) {
            return Err(corrupt(format!(
                "superblock: group descriptor size {desc_size} is invalid"
            )));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let name = &b[0x78..0x88];
        let name_end = name.iter().position(|&c| c == 0).unwrap_or(16);
        let csum_seed = if incompat & INCOMPAT_CSUM_SEED != 0 {
            le32(b, 0x270)
        } else {
            crate::crc::crc32c(!0, &uuid)
        };
        Ok(Superblock {
            inodes_count,
            blocks_count,
            first_data_block,
            block_size,
            blocks_per_group,
            inodes_per_group,
            state: le16(b, 0x3A),
            inode_size,
            compat,
            incompat,
            ro_compat,
            uuid,
            volume_name: String::from_utf8_lossy(&name[..name_end]).into_owned(),
            journal_inum: le32(b, 0xE0),
            desc_size,
            first_meta_bg: le32(b, 0x104),
            backup_bgs: [le32(b, 0x24C), le32(b, 0x250)],
            csum_seed,
            group_count,
            stored_csum: le32(b, 0x3FC),
            computed_csum: crate::crc::crc32c(!0, &b[..0x3FC]),
        })
    }

    pub(crate) fn has_csum(&self) -> bool {
        self.ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    pub(crate) fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (set, names) in [
            (self.compat, COMPAT_NAMES),
            (self.incompat, INCOMPAT_NAMES),
            (self.ro_compat, RO_COMPAT_NAMES),
        ] {
            let mut rest = set;
            for &(bit, name) in names {
                if set & bit != 0 {
                    out.push(name.to_string());
                    rest &= !bit;
                }
            }
            let mut bit = 1u32;
            while rest != 0 {
                if rest & bit != 0 {
                    out.push(format!("unknown_{bit:#x}"));
                    rest &= !bit;
                }
                bit = bit.wrapping_shl(1);
            }
        }
        out
    }

    /// Whether `group` holds a superblock backup (and so group descriptor copies).
    pub(crate) fn group_has_super(&self, group: u64) -> bool {
        if group == 0 {
            return true;
        }
        if self.compat & COMPAT_SPARSE_SUPER2 != 0 {
            return group == self.backup_bgs[0] as u64 || group == self.backup_bgs[1] as u64;
        }
        if group <= 1 || self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 {
            return true;
        }
        if group & 1 == 0 {
            return false;
        }
        for base in [3u64, 5, 7] {
            let mut p = base;
            while p < group {
                p *= base;
            }
            if p == group {
                return true;
            }
        }
        false
    }

    /// The block holding the group descriptor of `group`, and the byte offset in it.
    pub(crate) fn desc_location(&self, group: u64) -> (u64, usize) {
        let per_block = (self.block_size / self.desc_size) as u64;
        let meta_group = group / per_block;
        let offset = ((group % per_block) * self.desc_size as u64) as usize;
        let first = self.first_data_block as u64;
        if self.incompat & INCOMPAT_META_BG != 0 && meta_group >= self.first_meta_bg as u64 {
            let bg = meta_group * per_block;
            let has_super = u64::from(self.group_has_super(bg));
            (
                first + bg * self.blocks_per_group as u64 + has_super,
                offset,
            )
        } else {
            (first + 1 + meta_group, offset)
        }
    }
}
