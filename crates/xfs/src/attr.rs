//! Extended attributes: short-form in the attribute fork, or a dabtree of attribute
//! blocks (leaf blocks chained by sibling pointers under optional node blocks), with
//! values stored locally in the leaf or remotely in their own blocks.

use std::collections::HashSet;

use crate::bmap::{self, Extent};
use crate::inode::{Inode, FMT_BTREE, FMT_EXTENTS, FMT_LOCAL};
use crate::{be16, be32, corrupt, XfsError, XfsFs};

const ATTR_LOCAL: u8 = 0x01;
const ATTR_ROOT: u8 = 0x02;
const ATTR_SECURE: u8 = 0x04;
const ATTR_PARENT: u8 = 0x08;
const ATTR_INCOMPLETE: u8 = 0x80;

const LEAF_MAGIC: u16 = 0xfbee;
const LEAF3_MAGIC: u16 = 0x3bee;
const NODE_MAGIC: u16 = 0xfebe;
const NODE3_MAGIC: u16 = 0x3ebe;
const RMT_MAGIC: u32 = 0x5841_524d; // "XARM"
/// Deepest dabtree accepted (`XFS_DA_NODE_MAXDEPTH`).
const MAX_DEPTH: usize = 5;
/// Largest attribute value (`XATTR_SIZE_MAX`).
pub(crate) const MAX_VALUE: usize = 65536;
/// Most attributes read for one inode.
const MAX_ATTRS: usize = 1 << 16;

type Attrs = Vec<(Vec<u8>, Vec<u8>)>;

fn full_name(flags: u8, name: &[u8]) -> Option<Vec<u8>> {
    if flags & (ATTR_PARENT | ATTR_INCOMPLETE) != 0 {
        return None;
    }
    let prefix: &[u8] = if flags & ATTR_ROOT != 0 {
        b"trusted."
    } else if flags & ATTR_SECURE != 0 {
        b"security."
    } else {
        b"user."
    };
    let mut n = prefix.to_vec();
    n.extend_from_slice(name);
    Some(n)
}

/// All attributes of `inode` as (full name, value), in on-disk order.
pub(crate) fn xattrs(fs: &XfsFs, inode: &Inode) -> Result<Attrs, XfsError> {
    let Some(fork) = inode.attr_fork() else {
        return Ok(Vec::new());
    };
    let ino = inode.ino;
    match inode.aformat {
        FMT_LOCAL => shortform(ino, fork),
        FMT_EXTENTS | FMT_BTREE => {
            if inode.aformat == FMT_EXTENTS && inode.anextents == 0 {
                return Ok(Vec::new());
            }
            let ext = bmap::fork_extents(fs, ino, fork, inode.aformat, inode.anextents, "attr")?;
            if ext.is_empty() {
                return Ok(Vec::new());
            }
            tree(fs, ino, &ext)
        }
        f => Err(corrupt(format!("inode {ino}: attribute fork format {f}"))),
    }
}

fn shortform(ino: u64, fork: &[u8]) -> Result<Attrs, XfsError> {
    if fork.len() < 4 {
        return Err(corrupt(format!(
            "inode {ino}: short-form attributes truncated"
        )));
    }
    let totsize = (be16(fork, 0) as usize).min(fork.len());
    let count = fork[2] as usize;
    let d = &fork[..totsize];
    let mut p = 4;
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        if p + 3 > d.len() {
            return Err(corrupt(format!(
                "inode {ino}: short-form attribute {n} truncated"
            )));
        }
        let namelen = d[p] as usize;
        let valuelen = d[p + 1] as usize;
        let flags = d[p + 2];
        let end = p + 3 + namelen + valuelen;
        if end > d.len() {
            return Err(corrupt(format!(
                "inode {ino}: short-form attribute {n} runs past the fork"
            )));
        }
        let name = &d[p + 3..p + 3 + namelen];
        if let Some(full) = full_name(flags, name) {
            out.push((full, d[p + 3 + namelen..end].to_vec()));
        }
        p = end;
    }
    Ok(out)
}

fn tree(fs: &XfsFs, ino: u64, ext: &[Extent]) -> Result<Attrs, XfsError> {
    let v5 = fs.sb.has_crc();
    let bs = fs.bs() as usize;
    let read = |lblk: u64| -> Result<Vec<u8>, XfsError> {
        let b = fs.read_fork_blocks(ino, ext, lblk, 1)?;
        if v5 {
            fs.check_crc(&b, 12, || format!("inode {ino}: attribute block {lblk}"));
        }
        Ok(b)
    };
    // Descend the leftmost path to the first leaf.
    let mut lblk = 0u64;
    let mut blk = read(lblk)?;
    let mut depth = 0;
    loop {
        let magic = be16(&blk, 8);
        if magic == NODE_MAGIC || magic == NODE3_MAGIC {
            if (magic == NODE3_MAGIC) != v5 {
                return Err(corrupt(format!(
                    "inode {ino}: attribute node block {lblk} of the wrong version"
                )));
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(corrupt(format!(
                    "inode {ino}: attribute tree deeper than {MAX_DEPTH}"
                )));
            }
            let hdr = if v5 { 64 } else { 16 };
            let count = be16(&blk, hdr - if v5 { 8 } else { 4 }) as usize;
            if count == 0 || hdr + count * 8 > bs {
                return Err(corrupt(format!(
                    "inode {ino}: attribute node block {lblk} with {count} entries"
                )));
            }
            lblk = be32(&blk, hdr + 4) as u64;
            blk = read(lblk)?;
            continue;
        }
        break;
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    loop {
        if !seen.insert(lblk) {
            return Err(corrupt(format!(
                "inode {ino}: attribute leaf chain visits block {lblk} twice (cycle)"
            )));
        }
        leaf(fs, ino, ext, lblk, &blk, &mut out)?;
        let forw = be32(&blk, 0) as u64;
        if forw == 0 {
            break;
        }
        lblk = forw;
        blk = read(lblk)?;
    }
    Ok(out)
}

fn leaf(
    fs: &XfsFs,
    ino: u64,
    ext: &[Extent],
    lblk: u64,
    b: &[u8],
    out: &mut Attrs,
) -> Result<(), XfsError> {
    let v5 = fs.sb.has_crc();
    let magic = be16(b, 8);
    let want = if v5 { LEAF3_MAGIC } else { LEAF_MAGIC };
    if magic != want {
        return Err(corrupt(format!(
            "inode {ino}: attribute block {lblk}: magic {magic:#06x}, expected a leaf"
        )));
    }
    let (hdr, count_at) = if v5 { (80, 56) } else { (32, 12) };
    let count = be16(b, count_at) as usize;
    if hdr + count * 8 > b.len() {
        return Err(corrupt(format!(
            "inode {ino}: attribute leaf {lblk}: {count} entries do not fit"
        )));
    }
    let bad = |i: usize| {
        corrupt(format!(
            "inode {ino}: attribute leaf {lblk}: entry {i} points outside the block"
        ))
    };
    for i in 0..count {
        let e = hdr + i * 8;
        let nameidx = be16(b, e + 4) as usize;
        let flags = b[e + 6];
        if nameidx < hdr || nameidx >= b.len() {
            return Err(bad(i));
        }
        if flags & ATTR_LOCAL != 0 {
            if nameidx + 3 > b.len() {
                return Err(bad(i));
            }
            let valuelen = be16(b, nameidx) as usize;
            let namelen = b[nameidx + 2] as usize;
            let end = nameidx + 3 + namelen + valuelen;
            if end > b.len() {
                return Err(bad(i));
            }
            if let Some(full) = full_name(flags, &b[nameidx + 3..nameidx + 3 + namelen]) {
                out.push((full, b[nameidx + 3 + namelen..end].to_vec()));
            }
        } else {
            if nameidx + 9 > b.len() {
                return Err(bad(i));
            }
            let valueblk = be32(b, nameidx) as u64;
            let valuelen = be32(b, nameidx + 4) as usize;
            let namelen = b[nameidx + 8] as usize;
            if nameidx + 9 + namelen > b.len() {
                return Err(bad(i));
            }
            let Some(full) = full_name(flags, &b[nameidx + 9..nameidx + 9 + namelen]) else {
                continue;
            };
            let value = remote_value(fs, ino, ext, valueblk, valuelen, &full)?;
            out.push((full, value));
        }
        if out.len() > MAX_ATTRS {
            return Err(corrupt(format!(
                "inode {ino}: more than {MAX_ATTRS} attributes"
            )));
        }
    }
    Ok(())
}

fn remote_value(
    fs: &XfsFs,
    ino: u64,
    ext: &[Extent],
    valueblk: u64,
    valuelen: usize,
    name: &[u8],
) -> Result<Vec<u8>, XfsError> {
    let nm = String::from_utf8_lossy(name);
    if valuelen > MAX_VALUE {
        return Err(corrupt(format!(
            "inode {ino}: attribute {nm}: value of {valuelen} bytes (limit {MAX_VALUE})"
        )));
    }
    let v5 = fs.sb.has_crc();
    let bs = fs.bs() as usize;
    let hdr = if v5 { 56 } else { 0 };
    let per = bs - hdr;
    let nblocks = valuelen.div_ceil(per).max(1) as u64;
    let data = fs.read_fork_blocks(ino, ext, valueblk, nblocks)?;
    let mut out = Vec::with_capacity(valuelen);
    for (i, blk) in data.chunks(bs).enumerate() {
        let want = (valuelen - out.len()).min(per);
        if v5 {
            if be32(blk, 0) != RMT_MAGIC {
                return Err(corrupt(format!(
                    "inode {ino}: attribute {nm}: remote value block {} has bad magic",
                    valueblk + i as u64
                )));
            }
            fs.check_crc(blk, 12, || {
                format!(
                    "inode {ino}: attribute {nm}: remote block {}",
                    valueblk + i as u64
                )
            });
            let bytes = be32(blk, 8) as usize;
            if bytes != want {
                fs.warn(format!(
                    "inode {ino}: attribute {nm}: remote block says {bytes} bytes, expected {want}"
                ));
            }
        }
        out.extend_from_slice(&blk[hdr..hdr + want]);
    }
    Ok(out)
}
