//! jbd2 journal replay, in memory only.
//!
//! When `needs_recovery` is set, the internal journal (inode `s_journal_inum`) is scanned
//! from `s_start` / `s_sequence` the way the kernel's recovery does it: descriptor
//! blocks list the filesystem blocks whose new contents follow, revoke blocks cancel
//! earlier copies, and a commit block with the expected sequence closes a transaction.
//! Only committed transactions count. The result is a map *filesystem block → journal
//! block holding its newest copy* (plus the escape flag), which every block read then
//! consults. Nothing is written. Supports v1 and v2 journal superblocks, 32/64-bit
//! block numbers, `csum_v2`/`csum_v3` tags (data block checksums verified: a mismatch is
//! skipped and reported, as the kernel does), wrapping at the end of the log. Fast-commit
//! blocks are not replayed (reported).

use std::collections::{BTreeMap, HashMap};

use crate::inode::Inode;
use crate::map::Run;
use salvor_source::inode::InodeFs;

use crate::{be32, sb, Ext4Error, Ext4Fs};

pub(crate) const JBD2_MAGIC: u32 = 0xC03B_3998;

const BT_DESCRIPTOR: u32 = 1;
const BT_COMMIT: u32 = 2;
const BT_SB_V1: u32 = 3;
const BT_SB_V2: u32 = 4;
const BT_REVOKE: u32 = 5;

const IN_REVOKE: u32 = 0x1;
const IN_64BIT: u32 = 0x2;
const IN_ASYNC_COMMIT: u32 = 0x4;
const IN_CSUM_V2: u32 = 0x8;
const IN_CSUM_V3: u32 = 0x10;
const IN_FAST_COMMIT: u32 = 0x20;

const TAG_ESCAPE: u32 = 0x1;
const TAG_SAME_UUID: u32 = 0x2;
const TAG_LAST: u32 = 0x8;

/// Where the newest committed copy of a filesystem block is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remap {
    /// The filesystem block (inside the journal) holding the copy.
    pub journal_block: u64,
    /// The copy's first four bytes were the jbd2 magic and were zeroed when logged.
    pub escaped: bool,
}

/// What happened to the journal when the filesystem was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalStatus {
    /// The filesystem has no journal.
    None,
    /// The journal is on another device; it was not read.
    External,
    /// `needs_recovery` is not set: nothing to replay.
    Clean,
    /// The journal was replayed in memory.
    Replayed {
        /// Committed transactions replayed.
        transactions: u64,
        /// Distinct filesystem blocks whose contents now come from the journal.
        blocks: u64,
        /// Logged block copies skipped because a later revoke cancelled them.
        revoked: u64,
        /// Logged block copies skipped because their checksum did not match.
        bad_checksums: u64,
    },
    /// Recovery was needed but could not be done; metadata may be stale.
    NotReplayed {
        /// Why (the journal superblock or a block could not be read, an unsupported
        /// feature).
        reason: String,
    },
}

struct Tag {
    fs_block: u64,
    journal_block: u64,
    escaped: bool,
}

struct Journal<'a> {
    fs: &'a Ext4Fs,
    inode: Inode,
    first: u64,
    last: u64,
    incompat: u32,
    csum_seed: u32,
}

impl Journal<'_> {
    fn phys(&self, l: u64) -> Result<u64, Ext4Error> {
        match self.fs.map_block(&self.inode, l)? {
            Run::Data { phys, .. } => Ok(phys),
            Run::Zero { .. } => Err(crate::corrupt(format!(
                "journal inode {}: block {l} is not allocated",
                self.inode.ino
            ))),
        }
    }
    fn read(&self, l: u64, buf: &mut [u8]) -> Result<u64, Ext4Error> {
        let p = self.phys(l)?;
        self.fs.read_block_into(p, buf)?;
        Ok(p)
    }
    fn next(&self, l: u64) -> u64 {
        if l + 1 >= self.last {
            self.first
        } else {
            l + 1
        }
    }
    fn tag_size(&self) -> usize {
        if self.incompat & IN_CSUM_V3 != 0 {
            return 16;
        }
        let mut sz = 12;
        if self.incompat & IN_CSUM_V2 != 0 {
            sz += 2;
        }
        if self.incompat & IN_64BIT == 0 {
            sz -= 4;
        }
        sz
    }
    fn has_csum(&self) -> bool {
        self.incompat & (IN_CSUM_V2 | IN_CSUM_V3) != 0
    }
}

/// Replays the journal of `fs` into a block map. Never fails: problems become a
/// [`JournalStatus::NotReplayed`] and warnings.
pub(crate) fn replay(
    fs: &Ext4Fs,
    warnings: &mut Vec<String>,
) -> (JournalStatus, BTreeMap<u64, Remap>) {
    let s = &fs.sb;
    let recover = s.incompat & sb::INCOMPAT_RECOVER != 0;
    if s.compat & sb::COMPAT_HAS_JOURNAL == 0 {
        if recover {
            warnings.push("needs_recovery is set but the filesystem has no journal".into());
        }
        return (JournalStatus::None, BTreeMap::new());
    }
    if s.journal_inum == 0 {
        if recover {
            warnings.push(
                "needs_recovery is set but the journal is on an external device, which was not read: metadata may be stale"
                    .into(),
            );
        }
        return (JournalStatus::External, BTreeMap::new());
    }
    if !recover {
        return (JournalStatus::Clean, BTreeMap::new());
    }
    match scan(fs) {
        Ok((status, map, notes)) => {
            warnings.extend(notes);
            if let JournalStatus::Replayed {
                transactions,
                blocks,
                ..
            } = &status
            {
                warnings.push(format!(
                    "the filesystem was not cleanly unmounted: {transactions} committed journal transactions ({blocks} blocks) replayed in memory"
                ));
            }
            (status, map)
        }
        Err(e) => {
            let reason = format!("journal unreadable: {}", salvor_source::error_chain(&e));
            warnings.push(format!(
                "needs_recovery is set but the {reason}; metadata may be stale"
            ));
            (JournalStatus::NotReplayed { reason }, BTreeMap::new())
        }
    }
}

type ScanResult = (JournalStatus, BTreeMap<u64, Remap>, Vec<String>);

fn scan(fs: &Ext4Fs) -> Result<ScanResult, Ext4Error> {
    let mut notes = Vec::new();
    let inode = fs.read_inode(fs.sb.journal_inum as u64)?;
    let bs = fs.sb.block_size as usize;
    let mut j = Journal {
        fs,
        inode,
        first: 0,
        last: 0,
        incompat: 0,
        csum_seed: 0,
    };
    let mut b = vec![0u8; bs];
    j.read(0, &mut b)?;
    let not = |reason: String| {
        Ok((
            JournalStatus::NotReplayed {
                reason: reason.clone(),
            },
            BTreeMap::new(),
            vec![format!(
                "needs_recovery is set but {reason}; metadata may be stale"
            )],
        ))
    };
    if be32(&b, 0) != JBD2_MAGIC {
        return not(format!(
            "the journal superblock has a bad magic {:#010x}",
            be32(&b, 0)
        ));
    }
    let btype = be32(&b, 4);
    if btype != BT_SB_V1 && btype != BT_SB_V2 {
        return not(format!("the journal superblock has block type {btype}"));
    }
    if be32(&b, 0xC) as usize != bs {
        return not(format!(
            "the journal block size {} differs from the filesystem's {bs}",
            be32(&b, 0xC)
        ));
    }
    let maxlen = be32(&b, 0x10) as u64;
    let first = be32(&b, 0x14) as u64;
    let mut seq = be32(&b, 0x18);
    let start = be32(&b, 0x1C) as u64;
    let journal_blocks = j.inode.size / bs as u64;
    if maxlen > journal_blocks || first == 0 || first >= maxlen {
        return not(format!(
            "the journal geometry is invalid (first {first}, length {maxlen}, inode holds {journal_blocks} blocks)"
        ));
    }
    let mut last = maxlen;
    if btype == BT_SB_V2 {
        j.incompat = be32(&b, 0x28);
        let known =
            IN_REVOKE | IN_64BIT | IN_ASYNC_COMMIT | IN_CSUM_V2 | IN_CSUM_V3 | IN_FAST_COMMIT;
        if j.incompat & !known != 0 {
            return not(format!(
                "the journal has unknown incompatible features {:#x}",
                j.incompat & !known
            ));
        }
        if j.incompat & IN_FAST_COMMIT != 0 {
            let fc = be32(&b, 0x54) as u64;
            let fc = if fc == 0 { 256 } else { fc };
            if fc < maxlen - first {
                last = maxlen - fc;
            }
            notes.push("the journal has fast-commit blocks, which are not replayed".into());
        }
        j.csum_seed = crate::crc::crc32c(!0, &b[0x30..0x40]);
    }
    j.first = first;
    j.last = last;
    if start == 0 {
        return Ok((
            JournalStatus::Replayed {
                transactions: 0,
                blocks: 0,
                revoked: 0,
                bad_checksums: 0,
            },
            BTreeMap::new(),
            vec!["needs_recovery is set but the journal is empty".into()],
        ));
    }
    if start < first || start >= last {
        return not(format!(
            "the journal start block {start} is outside the log"
        ));
    }

    // Pass 1: committed transactions and their revokes.
    let mut committed: Vec<(u32, Vec<Tag>)> = Vec::new();
    let mut revokes: HashMap<u64, u32> = HashMap::new();
    let mut cur_tags: Vec<Tag> = Vec::new();
    let mut cur_revokes: Vec<u64> = Vec::new();
    let mut bad_checksums = 0u64;
    let mut pos = start;
    let mut steps = 0u64;
    let tag_size = j.tag_size();
    let mut data = vec![0u8; bs];
    let log_len = last - first;
    'outer: loop {
        steps += 1;
        if steps > 2 * log_len + 2 {
            notes.push("journal scan stopped: the log does not end".into());
            break;
        }
        if j.read(pos, &mut b).is_err() {
            notes.push(format!("journal block {pos} unreadable: scan stopped"));
            break;
        }
        if be32(&b, 0) != JBD2_MAGIC || be32(&b, 8) != seq {
            break;
        }
        match be32(&b, 4) {
            BT_DESCRIPTOR => {
                let limit = if j.has_csum() { bs - 4 } else { bs };
                let mut off = 12;
                loop {
                    if off + tag_size > limit {
                        break;
                    }
                    let t = &b[off..off + tag_size];
                    let (mut blk, flags) = if j.incompat & IN_CSUM_V3 != 0 {
                        (be32(t, 0) as u64, be32(t, 4))
                    } else {
                        (be32(t, 0) as u64, u16::from_be_bytes([t[6], t[7]]) as u32)
                    };
                    if j.incompat & IN_64BIT != 0 {
                        blk |= (be32(t, 8) as u64) << 32;
                    }
                    pos = j.next(pos);
                    steps += 1;
                    let jb = match j.read(pos, &mut data) {
                        Ok(p) => p,
                        Err(e) => {
                            notes.push(format!(
                                "journal block {pos} unreadable ({}): scan stopped",
                                salvor_source::error_chain(&e)
                            ));
                            break 'outer;
                        }
                    };
                    let mut ok = true;
                    if j.has_csum() {
                        let c = crate::crc::crc32c(j.csum_seed, &seq.to_be_bytes());
                        let c = crate::crc::crc32c(c, &data);
                        let good = if j.incompat & IN_CSUM_V3 != 0 {
                            be32(t, 12) == c
                        } else {
                            u16::from_be_bytes([t[4], t[5]]) == c as u16
                        };
                        if !good {
                            ok = false;
                            bad_checksums += 1;
                            fs.csum_failure(format!(
                                "journal transaction {seq}: logged copy of block {blk} (journal block {pos})"
                            ));
                        }
                    }
                    if ok {
                        cur_tags.push(Tag {
                            fs_block: blk,
                            journal_block: jb,
                            escaped: flags & TAG_ESCAPE != 0,
                        });
                    }
                    off += tag_size;
                    if flags & TAG_SAME_UUID == 0 {
                        off += 16;
                    }
                    if flags & TAG_LAST != 0 {
                        break;
                    }
                }
            }
            BT_COMMIT => {
                committed.push((seq, std::mem::take(&mut cur_tags)));
                for r in cur_revokes.drain(..) {
                    let e = revokes.entry(r).or_insert(seq);
                    *e = (*e).max(seq);
                }
                seq = seq.wrapping_add(1);
            }
            BT_REVOKE => {
                let count = (be32(&b, 12) as usize).min(bs);
                let rsize = if j.incompat & IN_64BIT != 0 { 8 } else { 4 };
                let mut off = 16;
                while off + rsize <= count {
                    let blk = if rsize == 8 {
                        (be32(&b, off) as u64) << 32 | be32(&b, off + 4) as u64
                    } else {
                        be32(&b, off) as u64
                    };
                    cur_revokes.push(blk);
                    off += rsize;
                }
            }
            _ => break,
        }
        pos = j.next(pos);
    }
    if !cur_tags.is_empty() {
        notes.push(format!(
            "journal transaction {seq} was not committed: its {} blocks are ignored",
            cur_tags.len()
        ));
    }

    // Pass 2: newest committed copy of each block, unless revoked at or after it.
    let mut map = BTreeMap::new();
    let mut revoked = 0u64;
    for (tseq, tags) in &committed {
        for t in tags {
            if revokes.get(&t.fs_block).is_some_and(|&r| r >= *tseq) {
                revoked += 1;
                continue;
            }
            if t.fs_block >= fs.sb.blocks_count {
                notes.push(format!(
                    "journal transaction {tseq}: block {} outside the filesystem ignored",
                    t.fs_block
                ));
                continue;
            }
            map.insert(
                t.fs_block,
                Remap {
                    journal_block: t.journal_block,
                    escaped: t.escaped,
                },
            );
        }
    }
    Ok((
        JournalStatus::Replayed {
            transactions: committed.len() as u64,
            blocks: map.len() as u64,
            revoked,
            bad_checksums,
        },
        map,
        notes,
    ))
}
