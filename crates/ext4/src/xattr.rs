//! Extended attributes: the in-inode area after `i_extra_isize` and the external block
//! (`i_file_acl`), with the name-index prefixes. POSIX ACLs are converted from ext4's
//! compact form to the VFS form `getxattr(2)` returns.

use crate::inode::Inode;
use crate::{corrupt, le16, le32, Ext4Error, Ext4Fs};

pub(crate) const XATTR_MAGIC: u32 = 0xEA02_0000;
/// Largest value returned (as `salvor_source::MAX_XATTR_SIZE`).
const MAX_VALUE: usize = salvor_source::MAX_XATTR_SIZE;

/// Full xattr names and their values.
pub(crate) type XattrList = Vec<(Vec<u8>, Vec<u8>)>;

struct RawXattr {
    index: u8,
    name: Vec<u8>,
    /// The value, or the EA inode holding it.
    value: Result<Vec<u8>, u32>,
}

fn prefix(index: u8) -> Option<&'static str> {
    Some(match index {
        1 => "user.",
        2 => "system.posix_acl_access",
        3 => "system.posix_acl_default",
        4 => "trusted.",
        6 => "security.",
        7 => "system.",
        8 => "system.richacl",
        _ => return None,
    })
}

fn parse_entries(
    area: &[u8],
    first: usize,
    value_base: usize,
    what: &str,
) -> Result<Vec<RawXattr>, Ext4Error> {
    let mut out = Vec::new();
    let mut pos = first;
    while pos + 4 <= area.len() && le32(area, pos) != 0 {
        if pos + 16 > area.len() {
            return Err(corrupt(format!(
                "{what}: xattr entry at {pos} overruns the area"
            )));
        }
        let name_len = area[pos] as usize;
        let index = area[pos + 1];
        let voff = le16(area, pos + 2) as usize;
        let vinum = le32(area, pos + 4);
        let vsize = le32(area, pos + 8) as usize;
        let name_end = pos + 16 + name_len;
        if name_end > area.len() {
            return Err(corrupt(format!(
                "{what}: xattr name at {pos} overruns the area"
            )));
        }
        let name = area[pos + 16..name_end].to_vec();
        let value = if vinum != 0 {
            Err(vinum)
        } else {
            if vsize > MAX_VALUE {
                return Err(corrupt(format!(
                    "{what}: xattr {:?} value of {vsize} bytes (limit {MAX_VALUE})",
                    String::from_utf8_lossy(&name)
                )));
            }
            let start = value_base + voff;
            let end = start + vsize;
            if end > area.len() {
                return Err(corrupt(format!(
                    "{what}: xattr {:?} value at {start}+{vsize} overruns the area",
                    String::from_utf8_lossy(&name)
                )));
            }
            Ok(area[start..end].to_vec())
        };
        out.push(RawXattr { index, name, value });
        pos += (16 + name_len + 3) & !3;
    }
    Ok(out)
}

/// ext4's compact POSIX ACL (version 1, 4-byte short entries) → the VFS xattr form
/// (version 2, 8-byte entries).
fn acl_to_vfs(v: &[u8]) -> Option<Vec<u8>> {
    if v.len() < 4 || le32(v, 0) != 1 {
        return None;
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    let mut p = 4;
    while p < v.len() {
        if p + 4 > v.len() {
            return None;
        }
        let tag = le16(v, p);
        let perm = le16(v, p + 2);
        let id = match tag {
            2 | 8 => {
                if p + 8 > v.len() {
                    return None;
                }
                let id = le32(v, p + 4);
                p += 8;
                id
            }
            1 | 4 | 0x10 | 0x20 => {
                p += 4;
                u32::MAX
            }
            _ => return None,
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Some(out)
}

impl Ext4Fs {
    fn ibody_xattrs(&self, inode: &Inode) -> Result<Vec<RawXattr>, Ext4Error> {
        let a = &inode.ibody_xattr;
        if a.len() < 4 || le32(a, 0) != XATTR_MAGIC {
            return Ok(Vec::new());
        }
        parse_entries(a, 4, 4, &format!("inode {} (in-inode xattrs)", inode.ino))
    }

    fn block_xattrs(&self, inode: &Inode) -> Result<Vec<RawXattr>, Ext4Error> {
        let blk = inode.file_acl;
        if blk == 0 {
            return Ok(Vec::new());
        }
        let what = format!("inode {} (xattr block {blk})", inode.ino);
        if blk >= self.sb.blocks_count {
            return Err(corrupt(format!("{what}: outside the filesystem")));
        }
        let b = self.read_meta_block(blk)?;
        if le32(&b, 0) != XATTR_MAGIC {
            return Err(corrupt(format!("{what}: bad magic {:#010x}", le32(&b, 0))));
        }
        if le32(&b, 8) != 1 {
            return Err(corrupt(format!(
                "{what}: h_blocks is {}, not 1",
                le32(&b, 8)
            )));
        }
        if self.sb.has_csum() {
            let mut copy = b.to_vec();
            copy[0x10..0x14].fill(0);
            let s = crate::crc::crc32c(self.sb.csum_seed, &blk.to_le_bytes());
            let got = crate::crc::crc32c(s, &copy);
            let want = le32(&b, 0x10);
            if got != want {
                self.csum_failure(format!(
                    "{what}: checksum {want:#010x}, computed {got:#010x}"
                ));
            }
        }
        parse_entries(&b, 32, 0, &what)
    }

    /// The `system.data` value of an inline-data inode (always in the inode body).
    pub(crate) fn ibody_system_data(&self, inode: &Inode) -> Result<Option<Vec<u8>>, Ext4Error> {
        for x in self.ibody_xattrs(inode)? {
            if x.index == 7 && x.name == b"data" {
                return x.value.map(Some).map_err(|e| {
                    corrupt(format!("inode {}: system.data in EA inode {e}", inode.ino))
                });
            }
        }
        Ok(None)
    }

    /// All xattrs of `inode` (full names), sorted by name; `system.data` left out.
    pub(crate) fn xattrs(&self, inode: &Inode) -> Result<XattrList, Ext4Error> {
        let mut raw = self.ibody_xattrs(inode)?;
        raw.extend(self.block_xattrs(inode)?);
        let mut out = Vec::with_capacity(raw.len());
        for x in raw {
            if x.index == 7 && x.name == b"data" {
                continue;
            }
            let Some(p) = prefix(x.index) else {
                self.warn(format!(
                    "inode {}: xattr {:?} with unknown name index {} left out",
                    inode.ino,
                    String::from_utf8_lossy(&x.name),
                    x.index
                ));
                continue;
            };
            let mut name = p.as_bytes().to_vec();
            name.extend_from_slice(&x.name);
            let value = match x.value {
                Ok(v) => v,
                Err(ea_ino) => {
                    return Err(Ext4Error::Unsupported(format!(
                        "inode {}: the value of xattr {:?} is stored in EA inode {ea_ino} (ea_inode feature), which this reader does not read",
                        inode.ino,
                        String::from_utf8_lossy(&name)
                    )))
                }
            };
            let value = if x.index == 2 || x.index == 3 {
                match acl_to_vfs(&value) {
                    Some(v) => v,
                    None => {
                        self.warn(format!(
                            "inode {}: malformed POSIX ACL in {:?}; raw bytes returned",
                            inode.ino,
                            String::from_utf8_lossy(&name)
                        ));
                        value
                    }
                }
            } else {
                value
            };
            out.push((name, value));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
