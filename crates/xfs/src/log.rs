//! Log state: was the filesystem cleanly unmounted? Detected, never replayed.
//!
//! The internal log is a circular buffer of 512-byte basic blocks. Every basic block
//! starts with the *cycle number* of the pass that wrote it (record headers carry it in
//! `h_cycle`; data blocks have it stamped over their first word). The head of the log is
//! where the cycle number drops: blocks before it were written in the current pass.
//! The log is clean when the last record before the head holds exactly one op, an
//! unmount record (`XLOG_UNMOUNT_TRANS` op flag): the kernel then moves the tail past it
//! and recovers nothing (its `h_tail_lsn` may still point into the previous cycle, as
//! after `xfs_db logformat -c N`). Anything else is a dirty log: the kernel would replay
//! it from its tail. This matches `xfs_logprint -t`'s CLEAN/DIRTY verdict.

use crate::{be32, be64, XfsFs};

const XLOG_HEADER_MAGIC: u32 = 0xFEED_BABE;
const XLOG_UNMOUNT_TRANS: u8 = 0x20;
const BB: u64 = 512;
/// How far back from the head a record header is searched for (basic blocks): a log
/// record holds at most 256 KiB of data plus its header blocks.
const MAX_BACK: u64 = 1024;

/// What the log says about how the filesystem was left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStatus {
    /// The last log record is a lone unmount record: cleanly unmounted.
    Clean {
        /// Head and tail as (cycle, basic block within the log).
        head: (u32, u64),
    },
    /// The log holds transactions that were not checkpointed: the metadata on disk may
    /// be stale or inconsistent (the kernel would replay the log at mount).
    Dirty {
        /// Head as (cycle, basic block within the log).
        head: (u32, u64),
        /// Tail as (cycle, basic block within the log).
        tail: (u32, u64),
        /// Why the log is dirty (the last record and its op count).
        reason: String,
    },
    /// The log is on a separate device; its state cannot be known from this one.
    External,
    /// The log could not be interpreted.
    Unknown {
        /// What could not be read or did not add up.
        reason: String,
    },
}

impl LogStatus {
    /// True when the log says the filesystem was cleanly unmounted.
    pub fn is_clean(&self) -> bool {
        matches!(self, LogStatus::Clean { .. })
    }
    /// True when the log holds transactions not checkpointed.
    pub fn is_dirty(&self) -> bool {
        matches!(self, LogStatus::Dirty { .. })
    }
}

struct Log<'a> {
    fs: &'a XfsFs,
    start: u64,
    nbb: u64,
}

impl Log<'_> {
    fn bb(&self, i: u64) -> Option<[u8; 512]> {
        let mut b = [0u8; 512];
        self.fs
            .dev
            .read_exact_at(self.start + (i % self.nbb) * BB, &mut b)
            .ok()?;
        Some(b)
    }

    fn cycle(&self, i: u64) -> Option<u32> {
        let b = self.bb(i)?;
        Some(if be32(&b, 0) == XLOG_HEADER_MAGIC {
            be32(&b, 4)
        } else {
            be32(&b, 0)
        })
    }
}

pub(crate) fn inspect(fs: &XfsFs) -> LogStatus {
    let sb = &fs.sb;
    if sb.logstart == 0 {
        return LogStatus::External;
    }
    let unknown = |r: String| LogStatus::Unknown { reason: r };
    let start = match fs.fsb_run_valid(sb.logstart, sb.logblocks as u64) {
        Ok(s) => s,
        Err(e) => return unknown(format!("log location: {}", salvor_source::error_chain(&e))),
    };
    let nbb = sb.logblocks as u64 * fs.bs() / BB;
    if nbb < 2 {
        return unknown("log too small".into());
    }
    let log = Log { fs, start, nbb };
    let (Some(first), Some(last)) = (log.cycle(0), log.cycle(nbb - 1)) else {
        return unknown("log unreadable".into());
    };
    if first == 0 {
        return unknown("the log was never written (cycle 0 at its start)".into());
    }
    // The head: the first block whose cycle differs from block 0's (binary search), or
    // the end of the log when every block has the same cycle.
    let head = if first == last {
        nbb
    } else {
        let (mut lo, mut hi) = (0u64, nbb - 1); // cycle(lo) == first, cycle(hi) != first
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match log.cycle(mid) {
                Some(c) if c == first => lo = mid,
                Some(_) => hi = mid,
                None => return unknown(format!("log block {mid} unreadable")),
            }
        }
        hi
    };
    let head_pos = (first, head % nbb);
    // The last record header before the head.
    let mut found = None;
    for back in 1..=MAX_BACK.min(nbb) {
        let i = (head + nbb - back) % nbb;
        let Some(b) = log.bb(i) else { continue };
        if be32(&b, 0) == XLOG_HEADER_MAGIC {
            found = Some((i, b));
            break;
        }
    }
    let Some((hblk, h)) = found else {
        return unknown(format!(
            "no log record header within {MAX_BACK} blocks before the head at {}",
            head_pos.1
        ));
    };
    let lsn = be64(&h, 16);
    let tail_lsn = be64(&h, 24);
    let num_logops = be32(&h, 40);
    let version = be32(&h, 8);
    let hsize = be32(&h, 320);
    let tail = ((tail_lsn >> 32) as u32, tail_lsn & 0xffff_ffff);
    // Header basic blocks: v2 logs with records larger than 32 KiB use extra ones.
    let hblks = if version == 2 && hsize > 32768 {
        (hsize as u64).div_ceil(32768)
    } else {
        1
    };
    let op = log.bb(hblk + hblks);
    let op_flags = op.map(|b| b[9]);
    let unmount = num_logops == 1 && op_flags.is_some_and(|f| f & XLOG_UNMOUNT_TRANS != 0);
    if (lsn >> 32) as u32 != first {
        return unknown(format!(
            "the record header before the head (block {hblk}) has cycle {}, expected {first}",
            lsn >> 32
        ));
    }
    if unmount {
        LogStatus::Clean { head: head_pos }
    } else {
        LogStatus::Dirty {
            head: head_pos,
            tail,
            reason: format!(
                "the last record (block {hblk}, {num_logops} ops) is not a lone unmount record"
            ),
        }
    }
}
