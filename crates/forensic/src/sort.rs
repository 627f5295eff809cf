//! A bounded-memory external sort for timeline lines.
//!
//! Lines are collected as [`Item`]s (sort key + the finished output line). Up to
//! [`RUN_BYTES`] of them are kept in memory; beyond that each run is sorted and spilled to an
//! anonymous temporary file in `$TMPDIR` (never next to the evidence), and the runs are
//! merged at the end. The order is total (key, then the line itself), so the output is
//! deterministic whatever the walk order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

/// Bytes of items kept in memory before a run is spilled.
pub const RUN_BYTES: usize = 32 << 20;

/// One output line with its sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    /// Seconds since the Unix epoch (the primary sort key).
    pub sec: i64,
    /// Nanoseconds within the second.
    pub nsec: u32,
    /// The entry's name (second key).
    pub name: String,
    /// Last key before the line itself (the mactime letters of a JSON line; empty for the bodyfile).
    pub tie: String,
    /// The finished output line, without its newline.
    pub line: String,
}

impl Item {
    fn weight(&self) -> usize {
        64 + self.name.len() + self.tie.len() + self.line.len()
    }
}

/// Sorts [`Item`]s in bounded memory.
pub struct ExternalSorter {
    buf: Vec<Item>,
    bytes: usize,
    limit: usize,
    runs: Vec<File>,
}

impl Default for ExternalSorter {
    fn default() -> Self {
        Self::with_limit(RUN_BYTES)
    }
}

impl ExternalSorter {
    /// A sorter that spills a run to disk once `limit` bytes of items are held (at least 1).
    pub fn with_limit(limit: usize) -> Self {
        ExternalSorter {
            buf: Vec::new(),
            bytes: 0,
            limit: limit.max(1),
            runs: Vec::new(),
        }
    }

    /// Adds an item; spills a sorted run to a temporary file when the memory limit is reached.
    pub fn push(&mut self, item: Item) -> io::Result<()> {
        self.bytes += item.weight();
        self.buf.push(item);
        if self.bytes >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Number of runs spilled to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.buf.sort_unstable();
        let mut f = tempfile::tempfile()?;
        {
            let mut w = BufWriter::new(&mut f);
            for it in self.buf.drain(..) {
                serde_json::to_writer(&mut w, &it)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }
        f.seek(SeekFrom::Start(0))?;
        self.runs.push(f);
        self.bytes = 0;
        Ok(())
    }

    /// Calls `out` for every item in order.
    pub fn finish(mut self, mut out: impl FnMut(&Item) -> io::Result<()>) -> io::Result<()> {
        if self.runs.is_empty() {
            self.buf.sort_unstable();
            for it in &self.buf {
                out(it)?;
            }
            return Ok(());
        }
        self.spill()?;
        let mut readers: Vec<io::Lines<BufReader<File>>> = self
            .runs
            .drain(..)
            .map(|f| BufReader::with_capacity(64 << 10, f).lines())
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(it) = next_item(r)? {
                heap.push(Reverse((it, i)));
            }
        }
        while let Some(Reverse((it, i))) = heap.pop() {
            out(&it)?;
            if let Some(next) = next_item(&mut readers[i])? {
                heap.push(Reverse((next, i)));
            }
        }
        Ok(())
    }
}

fn next_item(r: &mut io::Lines<BufReader<File>>) -> io::Result<Option<Item>> {
    match r.next() {
        None => Ok(None),
        Some(line) => {
            let line = line?;
            serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_runs_merge_in_order() {
        let mut s = ExternalSorter::with_limit(500);
        let mut want = Vec::new();
        for i in 0..1000u32 {
            let k = (i * 7919) % 1000;
            let it = Item {
                sec: (k / 10) as i64,
                nsec: k % 10,
                name: format!("n{k}"),
                tie: String::new(),
                line: format!("line {k}"),
            };
            want.push(it.clone());
            s.push(it).unwrap();
        }
        assert!(s.runs() > 10);
        want.sort();
        let mut got = Vec::new();
        s.finish(|it| {
            got.push(it.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, want);
    }
}
