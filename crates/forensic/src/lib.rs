//! Forensic findings from a Docker data-root: timelines and case reports.
//!
//! This crate sits on top of `salvor-model` (the engine-neutral [`salvor_model::ContainerStore`]:
//! what [`verify`] and the tamper [`audit`] consume), `salvor-docker` (still needed by the
//! timeline and the case report, which read Docker's own records) and `salvor-source` (the
//! read-only view of the evidence), and never writes to the evidence.
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
//!   [`verify::ImageVerdict`] per image ([`verify::image_verdicts`]).
//! * [`report::write_report`] with [`report::ReportOptions`] writes a case directory
//!   deterministically into a `salvor_sink::DirSink` (the CLI's guarded output: new or empty,
//!   never inside the evidence; committed only when complete) and returns a
//!   [`report::ReportSummary`].

pub mod audit;
pub mod copy;
pub mod report;
pub mod sort;
pub mod timeline;
pub mod verify;

pub use report::{write_report, ReportOptions, ReportSummary};
pub use timeline::{write_timeline, Entry, JsonLine, TimelineFormat, TimelineOptions};
