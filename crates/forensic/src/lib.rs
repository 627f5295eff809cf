//! Forensic findings from a container host: the verify check, the tamper audit, copy
//! artifacts, timelines and case reports.
//!
//! This crate sits on top of `salvor-model` (the engine-neutral [`salvor_model::ContainerStore`]:
//! what [`verify`], the tamper [`audit`], the timeline and the case report consume; no
//! engine's own types) and `salvor-source` (the read-only view of the evidence), and never
//! writes to the evidence.
//!
//! (`Store` below: any `&dyn ContainerStore`.)
//!
//! ```text
//! Store ──► timeline::write_timeline ──► Collector (walk + host events) ──► Entry
//!              │                               │
//!              │                               └─► sort::ExternalSorter (bounded memory,
//!              │                                   spills sorted runs to $TMPDIR, merges)
//!              └─► bodyfile lines (mactime) or JSON lines (ns precision)
//!
//! Store ──► report::write_report ──► verify::check (rayon: ContainerStore::rebuild_layer + audit::audit_layer)
//!                                 ├─► inventory.json, verify.json, timeline.jsonl, summary.md
//!                                 └─► MANIFEST.sha256 (sha256 of every file written)
//! ```
//!
//! Principal types:
//!
//! * [`timeline::TimelineOptions`] (which containers, volumes, image layers, logs) and
//!   [`timeline::TimelineFormat`] (bodyfile or JSON lines) drive
//!   [`timeline::write_timeline`]; each file or host event is a [`timeline::Entry`] with its
//!   m/a/c/birth [`timeline::Time`]s (nanoseconds); JSON output is one
//!   [`timeline::JsonLine`] per entry and distinct time. The result is a
//!   [`timeline::TimelineSummary`] whose `problems` name what could not be read.
//! * [`sort::ExternalSorter`] orders [`sort::Item`]s by (time, name): a directory with
//!   millions of files costs one listing in memory plus sorted runs on disk.
//! * [`verify::check`]: the one check behind `verify`, `extract` and `report` — the
//!   asked-for layers rebuilt (CONTENT), every layer audited (METADATA), copy artifacts
//!   detected on the whole evidence; a [`verify::LayerVerdict`] per layer, a
//!   [`verify::ImageVerdict`] per image ([`verify::verdicts`]).
//! * [`report::write_report`] with [`report::ReportOptions`] writes a case directory
//!   deterministically into a `salvor_sink::DirSink` (the CLI's guarded output: new or empty,
//!   never inside the evidence; committed only when complete) and returns a
//!   [`report::ReportSummary`].
//!
//! # Example
//!
//! One file of a container's read-write layer as a timeline [`Entry`], rendered as a
//! bodyfile line and as JSON lines (one per distinct time), and lines ordered by the
//! [`sort::ExternalSorter`] (here with a tiny memory limit, so that runs spill to disk).
//!
//! ```
//! use salvor_forensic::sort::{ExternalSorter, Item};
//! use salvor_forensic::timeline::{bodyfile_line, json_lines, Entry, Time};
//!
//! let t = |sec| Some(Time { sec, nsec: 0 });
//! let e = Entry {
//!     name: "[container web rw] /etc/passwd".into(),
//!     scope: "container web rw".into(),
//!     path: "/etc/passwd".into(),
//!     kind: "file".into(),
//!     event: None,
//!     deleted: false,
//!     opaque: false,
//!     link_target: None,
//!     evidence: Some("overlay2/abc/diff/etc/passwd".into()),
//!     mode: "-rw-r--r--".into(),
//!     uid: 0,
//!     gid: 0,
//!     size: 1024,
//!     inode: 42,
//!     mtime: t(1_700_000_000),
//!     atime: t(1_700_000_100),
//!     ctime: t(1_700_000_000),
//!     btime: None,
//! };
//! assert_eq!(
//!     bodyfile_line(&e),
//!     "0|[container web rw] /etc/passwd|42|r/rrw-r--r--|0|0|1024|1700000100|1700000000|1700000000|0"
//! );
//! let lines = json_lines(&e);
//! let macb: Vec<&str> = lines.iter().map(|l| l.macb.as_str()).collect();
//! assert_eq!(macb, ["m.c.", ".a.."]);
//! assert_eq!(lines[0].time, "2023-11-14T22:13:20.000000000Z");
//!
//! let mut sorter = ExternalSorter::with_limit(1);
//! for (sec, line) in [(3, "c"), (1, "a"), (2, "b")] {
//!     let (name, tie, line) = (String::new(), String::new(), line.to_string());
//!     sorter.push(Item { sec, nsec: 0, name, tie, line })?;
//! }
//! let mut out = Vec::new();
//! sorter.finish(|it| Ok(out.push(it.line.clone())))?;
//! assert_eq!(out, ["a", "b", "c"]);
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod audit;
pub mod copy;
pub mod report;
pub mod sort;
pub mod timeline;
pub mod verify;

pub use report::{write_report, write_report_stores, ReportOptions, ReportSummary};
pub use timeline::{
    write_timeline, write_timeline_stores, Entry, JsonLine, TimelineFormat, TimelineOptions,
};
