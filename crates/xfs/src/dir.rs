//! Directories (version 2 format): short-form in the inode's data fork, or data blocks.
//!
//! Block, leaf, node and B-tree directories all keep their entries in *data blocks*
//! below the 32 GiB "leaf offset" of the data fork; the leaf/node/free blocks above it
//! only index them. A linear scan of the data blocks therefore lists every form.

use salvor_source::inode::RawEntry;

use crate::inode::{Inode, FMT_BTREE, FMT_EXTENTS, FMT_LOCAL};
use crate::{be16, be32, be64, corrupt, XfsError, XfsFs};

/// Most entries read from one directory.
pub const MAX_DIR_ENTRIES: usize = 1 << 22;

const XD2B: u32 = 0x5844_3242; // v4 single-block directory
const XD2D: u32 = 0x5844_3244; // v4 data block
const XDB3: u32 = 0x5844_4233; // v5 single-block directory
const XDD3: u32 = 0x5844_4433; // v5 data block
/// Byte offset of the leaf section of a directory's data fork.
const LEAF_OFFSET: u64 = 32 << 30;

/// All entries of directory `inode` except `.` and `..`, in on-disk order.
pub(crate) fn read_dir(fs: &XfsFs, inode: &Inode) -> Result<Vec<RawEntry>, XfsError> {
    match inode.format {
        FMT_LOCAL => shortform(fs, inode),
        FMT_EXTENTS | FMT_BTREE => blocks(fs, inode),
        f => Err(corrupt(format!(
            "directory inode {}: data fork format {f}",
            inode.ino
        ))),
    }
}

fn shortform(fs: &XfsFs, inode: &Inode) -> Result<Vec<RawEntry>, XfsError> {
    let ino = inode.ino;
    let fork = inode.data_fork();
    let len = (inode.size as usize).min(fork.len());
    let d = &fork[..len];
    let bad = |what: &str| corrupt(format!("directory inode {ino}: short-form {what}"));
    if d.len() < 6 {
        return Err(bad("header truncated"));
    }
    let count = d[0] as usize;
    let i8count = d[1];
    let isz = if i8count > 0 { 8 } else { 4 };
    let ftype = fs.sb.has_ftype();
    let mut p = 2 + isz;
    if p > d.len() {
        return Err(bad("header truncated"));
    }
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        if p + 3 > d.len() {
            return Err(bad(&format!("entry {n} truncated")));
        }
        let namelen = d[p] as usize;
        if namelen == 0 {
            return Err(bad(&format!("entry {n} has an empty name")));
        }
        let name_at = p + 3;
        let ft_at = name_at + namelen;
        let ino_at = ft_at + ftype as usize;
        if ino_at + isz > d.len() {
            return Err(bad(&format!("entry {n} runs past the fork")));
        }
        let e_ino = if isz == 8 {
            be64(d, ino_at)
        } else {
            be32(d, ino_at) as u64
        };
        out.push(RawEntry {
            name: d[name_at..ft_at].to_vec(),
            ino: e_ino,
            ftype: if ftype { d[ft_at] } else { 0 },
        });
        p = ino_at + isz;
    }
    Ok(out)
}

fn blocks(fs: &XfsFs, inode: &Inode) -> Result<Vec<RawEntry>, XfsError> {
    let ino = inode.ino;
    let ext = fs.data_extents(inode)?;
    let bs = fs.bs();
    let per = 1u64 << fs.sb.dirblklog; // fs blocks per directory block
    let dbs = (bs * per) as usize;
    let leaf_lblk = LEAF_OFFSET / bs;
    // di_size covers the data section only.
    let end_lblk = inode.size.div_ceil(bs).min(leaf_lblk);
    let mut out = Vec::new();
    let mut next_db = 0u64; // first directory block not yet read
    for e in ext.iter() {
        if e.off >= end_lblk {
            break;
        }
        let first = (e.off / per).max(next_db);
        let last = ((e.off + e.len).min(end_lblk)).div_ceil(per); // exclusive
        for db in first..last {
            let lblk = db * per;
            let data = match fs.read_fork_blocks(ino, &ext, lblk, per) {
                Ok(d) => d,
                Err(err) => {
                    fs.warn(format!(
                        "directory inode {ino}: directory block at {lblk} unreadable: {}",
                        crate::error_text(&err)
                    ));
                    continue;
                }
            };
            data_block(fs, ino, lblk, &data[..dbs], &mut out)?;
            if out.len() > MAX_DIR_ENTRIES {
                return Err(corrupt(format!(
                    "directory inode {ino}: more than {MAX_DIR_ENTRIES} entries"
                )));
            }
        }
        next_db = next_db.max(last);
    }
    Ok(out)
}

fn data_block(
    fs: &XfsFs,
    ino: u64,
    lblk: u64,
    b: &[u8],
    out: &mut Vec<RawEntry>,
) -> Result<(), XfsError> {
    let v5 = fs.sb.has_crc();
    let magic = be32(b, 0);
    let (hdr, single) = match (v5, magic) {
        (false, XD2B) => (16, true),
        (false, XD2D) => (16, false),
        (true, XDB3) => (64, true),
        (true, XDD3) => (64, false),
        _ => {
            fs.warn(format!(
                "directory inode {ino}: block {lblk} has magic {magic:#010x}, not a data block; skipped"
            ));
            return Ok(());
        }
    };
    if v5 {
        fs.check_crc(b, 4, || format!("directory inode {ino}: block {lblk}"));
        let owner = be64(b, 40);
        if owner != ino {
            fs.warn(format!(
                "directory inode {ino}: block {lblk} is owned by inode {owner}"
            ));
        }
    }
    let mut end = b.len();
    if single {
        let count = be32(b, b.len() - 8) as usize;
        let tail = 8usize.saturating_add(count.saturating_mul(8));
        if tail > b.len() - hdr {
            return Err(corrupt(format!(
                "directory inode {ino}: block {lblk}: {count} leaf entries do not fit"
            )));
        }
        end = b.len() - tail;
    }
    let ftype = fs.sb.has_ftype() as usize;
    let mut p = hdr;
    while p + 8 <= end {
        if be16(b, p) == 0xffff {
            let len = be16(b, p + 2) as usize;
            if len == 0 || len & 7 != 0 || p + len > end {
                return Err(corrupt(format!(
                    "directory inode {ino}: block {lblk}: free region of {len} bytes at {p}"
                )));
            }
            p += len;
            continue;
        }
        if p + 12 > end {
            return Err(corrupt(format!(
                "directory inode {ino}: block {lblk}: entry at {p} truncated"
            )));
        }
        let e_ino = be64(b, p);
        let namelen = b[p + 8] as usize;
        let size = (8 + 1 + namelen + ftype + 2).div_ceil(8) * 8;
        if namelen == 0 || p + size > end {
            return Err(corrupt(format!(
                "directory inode {ino}: block {lblk}: entry at {p} (name length {namelen}) runs past the data"
            )));
        }
        let name = &b[p + 9..p + 9 + namelen];
        if name != b"." && name != b".." {
            out.push(RawEntry {
                name: name.to_vec(),
                ino: e_ino,
                ftype: if ftype == 1 { b[p + 9 + namelen] } else { 0 },
            });
        }
        p += size;
    }
    Ok(())
}
