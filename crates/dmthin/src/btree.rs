//! The persistent-data B-tree used by dm-thin metadata (`persistent-data/dm-btree*`).
//!
//! One node per 4 KiB metadata block:
//!
//! ```text
//! 0   le32 csum        crc32c of bytes 4..4096, xor 121107
//! 4   le32 flags       1 = internal, 2 = leaf
//! 8   le64 blocknr     the block the node lives in (checked against where we read it)
//! 16  le32 nr_entries
//! 20  le32 max_entries
//! 24  le32 value_size  8 in internal nodes (child block numbers)
//! 28  le32 padding
//! 32  le64 keys[max_entries], then values[max_entries] of value_size bytes
//! ```
//!
//! Internal node `i` covers keys `>= keys[i]` (and below `keys[i+1]`).

use std::collections::HashSet;
use std::sync::Arc;

use crate::{ThinError, METADATA_BLOCK_SIZE};

/// Called with each leaf entry's key and value.
pub(crate) type Visit<'a> = dyn FnMut(u64, &[u8]) -> Result<(), ThinError> + 'a;

pub(crate) const NODE_HEADER_SIZE: usize = 32;
pub(crate) const BTREE_CSUM_XOR: u32 = 121107;
const INTERNAL_NODE: u32 = 1;
const LEAF_NODE: u32 = 2;

/// Deepest B-tree accepted. A 4 KiB node holds at least 126 entries, so 8 levels
/// address far more than 2^48 keys; anything deeper is a loop or garbage.
pub const MAX_BTREE_DEPTH: usize = 8;

/// A parsed, structurally checked B-tree node (the block stays shared through an `Arc`).
#[derive(Clone)]
pub(crate) struct Node {
    pub block: u64,
    pub leaf: bool,
    pub nr: usize,
    pub max: usize,
    pub value_size: usize,
    data: Arc<Vec<u8>>,
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

impl Node {
    /// Checks the header of the node read from metadata block `block`.
    pub fn parse(block: u64, data: Arc<Vec<u8>>) -> Result<Node, ThinError> {
        let corrupt = |reason: String| ThinError::Corrupt { block, reason };
        if data.len() != METADATA_BLOCK_SIZE {
            return Err(corrupt(format!("node block is {} bytes", data.len())));
        }
        let flags = le32(&data, 4);
        let leaf = match flags {
            INTERNAL_NODE => false,
            LEAF_NODE => true,
            f => {
                return Err(corrupt(format!(
                    "B-tree node flags {f:#x} (neither internal nor leaf)"
                )))
            }
        };
        let blocknr = le64(&data, 8);
        if blocknr != block {
            return Err(corrupt(format!(
                "B-tree node says it lives in block {blocknr}, read from block {block}"
            )));
        }
        let nr = le32(&data, 16) as usize;
        let max = le32(&data, 20) as usize;
        let value_size = le32(&data, 24) as usize;
        if value_size == 0 || value_size > METADATA_BLOCK_SIZE {
            return Err(corrupt(format!("B-tree node value_size {value_size}")));
        }
        let room = (METADATA_BLOCK_SIZE - NODE_HEADER_SIZE) / (8 + value_size);
        if max == 0 || max > room {
            return Err(corrupt(format!(
                "B-tree node max_entries {max} does not fit a block with value_size {value_size} (at most {room})"
            )));
        }
        if nr > max {
            return Err(corrupt(format!(
                "B-tree node nr_entries {nr} > max_entries {max}"
            )));
        }
        if !leaf && value_size != 8 {
            return Err(corrupt(format!(
                "internal B-tree node with value_size {value_size}"
            )));
        }
        let node = Node {
            block,
            leaf,
            nr,
            max,
            value_size,
            data,
        };
        for i in 1..nr {
            if node.key(i) <= node.key(i - 1) {
                return Err(corrupt(format!(
                    "B-tree node keys out of order at entry {i} ({} after {})",
                    node.key(i),
                    node.key(i - 1)
                )));
            }
        }
        Ok(node)
    }

    pub fn key(&self, i: usize) -> u64 {
        le64(&self.data, NODE_HEADER_SIZE + 8 * i)
    }
    pub fn value(&self, i: usize) -> &[u8] {
        let off = NODE_HEADER_SIZE + 8 * self.max + self.value_size * i;
        &self.data[off..off + self.value_size]
    }
    pub fn value_u64(&self, i: usize) -> u64 {
        le64(self.value(i), 0)
    }
    /// Index of the last key `<= key`.
    fn lower_bound(&self, key: u64) -> Option<usize> {
        let mut lo = 0usize;
        let mut hi = self.nr;
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }
}

/// Reads metadata blocks as B-tree nodes (checksum, block bounds, cache).
pub(crate) trait NodeReader {
    fn node(&self, block: u64) -> Result<Node, ThinError>;
}

fn check_leaf(node: &Node, value_size: usize) -> Result<(), ThinError> {
    if node.value_size != value_size {
        return Err(ThinError::Corrupt {
            block: node.block,
            reason: format!(
                "B-tree leaf has value_size {}, this tree stores {value_size}-byte values",
                node.value_size
            ),
        });
    }
    Ok(())
}

/// Looks `key` up in the tree rooted at `root`: the leaf node and index, or `None`.
pub(crate) fn lookup(
    r: &dyn NodeReader,
    root: u64,
    key: u64,
    value_size: usize,
) -> Result<Option<(Node, usize)>, ThinError> {
    let mut block = root;
    for _ in 0..MAX_BTREE_DEPTH {
        let node = r.node(block)?;
        if node.leaf {
            check_leaf(&node, value_size)?;
            return Ok(match node.lower_bound(key) {
                Some(i) if node.key(i) == key => Some((node, i)),
                _ => None,
            });
        }
        match node.lower_bound(key) {
            Some(i) => block = node.value_u64(i),
            None => return Ok(None),
        }
    }
    Err(ThinError::Corrupt {
        block: root,
        reason: format!("B-tree deeper than {MAX_BTREE_DEPTH} levels (a loop?)"),
    })
}

/// The highest key of the tree, following the rightmost path.
pub(crate) fn highest_key(
    r: &dyn NodeReader,
    root: u64,
    value_size: usize,
) -> Result<Option<u64>, ThinError> {
    let mut block = root;
    for _ in 0..MAX_BTREE_DEPTH {
        let node = r.node(block)?;
        if node.nr == 0 {
            return Ok(None);
        }
        if node.leaf {
            check_leaf(&node, value_size)?;
            return Ok(Some(node.key(node.nr - 1)));
        }
        block = node.value_u64(node.nr - 1);
    }
    Err(ThinError::Corrupt {
        block: root,
        reason: format!("B-tree deeper than {MAX_BTREE_DEPTH} levels (a loop?)"),
    })
}

/// Visits every leaf entry in key order. Each node is visited at most once (a node met
/// twice is a loop or a corrupt tree), keys must lie inside the range their parent gives
/// them, depth is bounded, and all leaves must be at the same depth.
pub(crate) fn walk(
    r: &dyn NodeReader,
    root: u64,
    value_size: usize,
    f: &mut Visit<'_>,
) -> Result<(), ThinError> {
    let mut w = Walker {
        r,
        value_size,
        visited: HashSet::new(),
        leaf_depth: None,
    };
    w.visit(root, 0, 0, None, f)
}

struct Walker<'a> {
    r: &'a dyn NodeReader,
    value_size: usize,
    visited: HashSet<u64>,
    leaf_depth: Option<usize>,
}

impl Walker<'_> {
    fn visit(
        &mut self,
        block: u64,
        depth: usize,
        lo: u64,
        hi: Option<u64>,
        f: &mut Visit<'_>,
    ) -> Result<(), ThinError> {
        let corrupt = |reason: String| ThinError::Corrupt { block, reason };
        if depth >= MAX_BTREE_DEPTH {
            return Err(corrupt(format!(
                "B-tree deeper than {MAX_BTREE_DEPTH} levels (a loop?)"
            )));
        }
        if !self.visited.insert(block) {
            return Err(corrupt(
                "B-tree node reached twice (a loop or a shared subtree inside one tree)".into(),
            ));
        }
        let node = self.r.node(block)?;
        if node.nr > 0 {
            let (first, last) = (node.key(0), node.key(node.nr - 1));
            if first < lo || hi.is_some_and(|h| last >= h) {
                return Err(corrupt(format!(
                    "B-tree node keys {first}..={last} outside the range {lo}..{} given by its parent",
                    hi.map_or("end".to_string(), |h| h.to_string())
                )));
            }
        }
        if node.leaf {
            check_leaf(&node, self.value_size)?;
            match self.leaf_depth {
                None => self.leaf_depth = Some(depth),
                Some(d) if d != depth && node.nr > 0 => {
                    return Err(corrupt(format!(
                        "B-tree leaf at depth {depth}, other leaves at depth {d}"
                    )))
                }
                _ => {}
            }
            for i in 0..node.nr {
                f(node.key(i), node.value(i))?;
            }
            return Ok(());
        }
        if node.nr == 0 {
            return Err(corrupt("internal B-tree node without entries".into()));
        }
        for i in 0..node.nr {
            let child_hi = if i + 1 < node.nr {
                Some(node.key(i + 1))
            } else {
                hi
            };
            self.visit(node.value_u64(i), depth + 1, node.key(i), child_hi, f)?;
        }
        Ok(())
    }
}
