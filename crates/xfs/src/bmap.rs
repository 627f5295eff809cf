//! Fork mappings: packed 128-bit extent records, in the inode (`EXTENTS`) or in the
//! leaves of a long-form bmap B-tree (`BTREE`, root in the inode).

use std::collections::HashSet;

use crate::{be16, be64, corrupt, XfsError, XfsFs};

const BMAP_MAGIC: u32 = 0x424d_4150; // "BMAP"
const BMAP3_MAGIC: u32 = 0x424d_4133; // "BMA3"
/// Deepest bmap B-tree accepted (the kernel's limit for 64-bit extent counts is 9 or so).
const MAX_LEVELS: u16 = 10;
/// Most extents read for one fork (24 bytes each in memory).
pub(crate) const MAX_EXTENTS: u64 = 1 << 22;

/// One mapping: `len` blocks from logical block `off` live at filesystem block `fsb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub off: u64,
    pub fsb: u64,
    pub len: u64,
    /// Preallocated, never written: reads as zeros.
    pub unwritten: bool,
}

impl Extent {
    fn decode(rec: &[u8]) -> Extent {
        let l0 = be64(rec, 0);
        let l1 = be64(rec, 8);
        Extent {
            unwritten: l0 >> 63 != 0,
            off: (l0 >> 9) & ((1u64 << 54) - 1),
            fsb: ((l0 & 0x1ff) << 43) | (l1 >> 21),
            len: l1 & ((1u64 << 21) - 1),
        }
    }
}

/// The extents of a fork in `EXTENTS` or `BTREE` format, sorted by logical block,
/// overlaps and invalid records dropped with a warning.
pub(crate) fn fork_extents(
    fs: &XfsFs,
    ino: u64,
    fork: &[u8],
    format: u8,
    nextents: u64,
    which: &str,
) -> Result<Vec<Extent>, XfsError> {
    if nextents > MAX_EXTENTS || nextents > fs.sb.dblocks {
        return Err(corrupt(format!(
            "inode {ino}: {which} fork claims {nextents} extents"
        )));
    }
    let mut out = Vec::new();
    match format {
        crate::inode::FMT_EXTENTS => {
            let need = nextents as usize * 16;
            if need > fork.len() {
                return Err(corrupt(format!(
                    "inode {ino}: {nextents} {which} extents do not fit the {}-byte fork",
                    fork.len()
                )));
            }
            out.extend(fork[..need].chunks_exact(16).map(Extent::decode));
        }
        crate::inode::FMT_BTREE => {
            if fork.len() < 4 + 16 {
                return Err(corrupt(format!(
                    "inode {ino}: {which} fork too small for a B-tree root"
                )));
            }
            let level = be16(fork, 0);
            let numrecs = be16(fork, 2) as usize;
            let maxrecs = (fork.len() - 4) / 16;
            if level == 0 || level > MAX_LEVELS || numrecs == 0 || numrecs > maxrecs {
                return Err(corrupt(format!(
                    "inode {ino}: {which} B-tree root has level {level} and {numrecs} records (max {maxrecs})"
                )));
            }
            let mut seen = HashSet::new();
            for i in 0..numrecs {
                let ptr = be64(fork, 4 + maxrecs * 8 + i * 8);
                walk(fs, ino, which, ptr, level - 1, &mut seen, &mut out)?;
            }
        }
        f => {
            return Err(corrupt(format!(
                "inode {ino}: {which} fork has format {f}, expected extents or btree"
            )))
        }
    }
    Ok(normalize(fs, ino, which, out))
}

fn walk(
    fs: &XfsFs,
    ino: u64,
    which: &str,
    fsb: u64,
    level: u16,
    seen: &mut HashSet<u64>,
    out: &mut Vec<Extent>,
) -> Result<(), XfsError> {
    if !seen.insert(fsb) {
        return Err(corrupt(format!(
            "inode {ino}: {which} B-tree visits block {fsb} twice (cycle)"
        )));
    }
    let blk = fs.read_meta(fsb)?;
    let bs = blk.len();
    let v5 = fs.sb.has_crc();
    let hdr = if v5 { 72 } else { 24 };
    let magic = crate::be32(&blk, 0);
    let want = if v5 { BMAP3_MAGIC } else { BMAP_MAGIC };
    if magic != want {
        return Err(corrupt(format!(
            "inode {ino}: {which} B-tree block {fsb}: bad magic {magic:#010x}"
        )));
    }
    if v5 {
        fs.check_crc(&blk, 64, || {
            format!("inode {ino}: {which} B-tree block {fsb}")
        });
        let owner = be64(&blk, 56);
        if owner != ino {
            fs.warn(format!(
                "inode {ino}: {which} B-tree block {fsb} is owned by inode {owner}"
            ));
        }
    }
    let blevel = be16(&blk, 4);
    let numrecs = be16(&blk, 6) as usize;
    if blevel != level {
        return Err(corrupt(format!(
            "inode {ino}: {which} B-tree block {fsb} has level {blevel}, expected {level}"
        )));
    }
    let maxrecs = (bs - hdr) / 16;
    if numrecs > maxrecs {
        return Err(corrupt(format!(
            "inode {ino}: {which} B-tree block {fsb} has {numrecs} records (max {maxrecs})"
        )));
    }
    if level == 0 {
        if out.len() as u64 + numrecs as u64 > MAX_EXTENTS {
            return Err(corrupt(format!(
                "inode {ino}: {which} fork has more than {MAX_EXTENTS} extents"
            )));
        }
        out.extend(
            blk[hdr..hdr + numrecs * 16]
                .chunks_exact(16)
                .map(Extent::decode),
        );
        return Ok(());
    }
    for i in 0..numrecs {
        let ptr = be64(&blk, hdr + maxrecs * 8 + i * 8);
        walk(fs, ino, which, ptr, level - 1, seen, out)?;
    }
    Ok(())
}

/// Sorts, drops zero-length, out-of-filesystem and overlapping extents (with a warning).
fn normalize(fs: &XfsFs, ino: u64, which: &str, mut v: Vec<Extent>) -> Vec<Extent> {
    v.sort_by_key(|e| e.off);
    let mut out: Vec<Extent> = Vec::with_capacity(v.len());
    for e in v {
        // An extent pointing outside the filesystem is kept: reading it is an error
        // naming the inode, rather than a silent hole.
        let bad = e.len == 0
            || e.off.checked_add(e.len).is_none()
            || out.last().is_some_and(|p| p.off + p.len > e.off);
        if bad {
            fs.warn(format!(
                "inode {ino}: {which} extent [off {}, block {}, len {}] is empty or overlaps; ignored",
                e.off, e.fsb, e.len
            ));
            continue;
        }
        out.push(e);
    }
    out
}

/// Index of the extent containing logical block `lblk`, or `Err(i)` with the index of the
/// next extent after it (a hole).
pub(crate) fn find(ext: &[Extent], lblk: u64) -> Result<usize, usize> {
    let i = ext.partition_point(|e| e.off + e.len <= lblk);
    if i < ext.len() && ext[i].off <= lblk {
        Ok(i)
    } else {
        Err(i)
    }
}
