//! File-system and host-event timelines.
//!
//! [`write_timeline`] walks the directories named by [`TimelineOptions`] through the
//! evidence's [`Source`] (`lstat` only: a symlink is reported with its target and never
//! followed) and reads the engine's metadata for host events. Every file and event becomes
//! an [`Entry`]; entries are rendered as Sleuth Kit bodyfile lines or JSON lines and sorted
//! in bounded memory ([`crate::sort`]).
//!
//! What is walked:
//!
//! * every container's read-write layer (`[container NAME rw]`: overlay2 / fuse-overlayfs
//!   `diff/`, aufs `diff/<id>`, the vfs/btrfs/zfs snapshot) and its **init layer**
//!   (`[container NAME init]`: the `/etc/hosts`, `/etc/resolv.conf`, `/.dockerenv`
//!   placeholders the engine wrote when it created the container — their times date the
//!   creation independently of `config.v2.json`);
//! * with `volumes`, every volume's `_data` (`[volume NAME]`);
//! * with `images`, every image layer's own directory (`[layer CHAINID]`).
//!
//! Whiteouts (overlay char device 0/0, or a `.wh.NAME` file) are shown as the deleted
//! path with ` (deleted)`; opaque markers (`.wh..wh..opq`, `.wh..opq`, the `*.opaque=y`
//! xattr on a directory) as ` (opaque: lower layers' contents hidden)`.
//!
//! Host events: image created (config `created`), image last updated (pulled, loaded or
//! tagged: `imagedb/metadata/sha256/<id>/lastUpdated`), image history entries (each
//! distinct `created`+`created_by` once), container created / started / finished
//! (`config.v2.json`), and with `logs` every log line. A host event has one time, written
//! into all four time fields (mactime shows it as `macb`).

mod collect;
mod render;

use render::clean_str;
pub use render::{bodyfile_line, clean_bytes, json_lines, ls_mode};

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use salvor_model::{ContainerRecord, ContainerStore, LayerView, Problem};
use salvor_source::{FileKind, Metadata, Source, Timestamp};
use serde::{Deserialize, Serialize};

use crate::sort::{ExternalSorter, Item};

/// Output format of a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimelineFormat {
    /// Sleuth Kit 3+ bodyfile, one line per file or event, for `mactime -b`.
    #[default]
    Bodyfile,
    /// One JSON object per (file, distinct time), nanosecond precision.
    Jsonl,
}

/// What goes into a timeline.
#[derive(Debug, Clone, Default)]
pub struct TimelineOptions {
    /// Full ids of the containers whose layers are walked (the caller resolves names and
    /// prefixes); empty = all containers.
    pub containers: Vec<String>,
    /// Also walk every image layer's directory.
    pub images: bool,
    /// Also walk every volume's `_data`.
    pub volumes: bool,
    /// Also one event per container log line.
    pub logs: bool,
}

/// A point in time, nanoseconds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Time {
    /// Seconds since the Unix epoch (negative before 1970).
    pub sec: i64,
    /// Nanoseconds within the second (0..1e9).
    pub nsec: u32,
}

impl From<Timestamp> for Time {
    fn from(t: Timestamp) -> Self {
        Time {
            sec: t.sec,
            nsec: t.nsec,
        }
    }
}

impl Time {
    /// RFC 3339 in UTC, nine fractional digits.
    pub fn rfc3339(self) -> String {
        salvor_oci::time::format_utc_nano_fixed(self.sec, self.nsec)
    }
    /// Seconds as the bodyfile writes them: `1700000000` or `1700000000.123456789`.
    pub fn bodyfile(self) -> String {
        if self.nsec == 0 {
            self.sec.to_string()
        } else if self.sec >= 0 {
            format!("{}.{:09}", self.sec, self.nsec)
        } else {
            // -1.25 s is sec -2, nsec 750000000.
            let total = self.sec as i128 * 1_000_000_000 + self.nsec as i128;
            let a = total.unsigned_abs();
            format!("-{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
        }
    }
}

/// One file (or host event) of a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What the bodyfile's name column shows: `[SCOPE] PATH[ -> TARGET][ (deleted)]…
    /// (evidence: EVIDENCE-PATH)`.
    pub name: String,
    /// `container c-exit0 rw`, `container c-exit0 init`, `volume NAME`, `layer CHAIN`,
    /// `image ID TAG`, `container NAME`, `container NAME log stdout`.
    pub scope: String,
    /// The path as the container saw it (`/etc/passwd`), or what happened, for events.
    pub path: String,
    /// `file`, `dir`, `symlink`, `char-device`, `block-device`, `fifo`, `socket`,
    /// `whiteout`, `opaque-marker`, `event`.
    pub kind: String,
    /// For events: `image-created`, `image-last-updated`, `image-history`,
    /// `container-created`, `container-started`, `container-finished`, `log-line`.
    pub event: Option<String>,
    /// A whiteout: `path` was deleted in this layer.
    pub deleted: bool,
    /// A directory marked opaque (or an opaque marker).
    pub opaque: bool,
    /// A symlink's target as stored (lossy UTF-8).
    pub link_target: Option<String>,
    /// Where the file (or the metadata the event comes from) is in the evidence.
    pub evidence: Option<String>,
    /// `ls -l` style (`-rw-r--r--`, `c---------`), empty for events.
    pub mode: String,
    /// Owner uid as found (0 for events).
    pub uid: u32,
    /// Owner gid as found (0 for events).
    pub gid: u32,
    /// Size in bytes (0 for events).
    pub size: u64,
    /// Inode number in the evidence's filesystem (0 for events).
    pub inode: u64,
    /// Last modification (for an event: its time, as are the other three).
    pub mtime: Option<Time>,
    /// Last access, when the evidence keeps it.
    pub atime: Option<Time>,
    /// Last inode change, when the evidence keeps it.
    pub ctime: Option<Time>,
    /// Creation (birth), when the evidence's filesystem records it.
    pub btime: Option<Time>,
}

/// One JSON line of a timeline: an [`Entry`] at one of its times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLine {
    /// RFC 3339, nanoseconds, UTC.
    pub time: String,
    /// `time` as seconds since the Unix epoch.
    pub sec: i64,
    /// Nanoseconds within the second.
    pub nsec: u32,
    /// Which of the entry's times are at `time`, mactime style (`m.c.`, `macb`).
    pub macb: String,
    /// The entry (its fields flattened into the line).
    #[serde(flatten)]
    pub entry: Entry,
}

/// What a timeline run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TimelineSummary {
    /// Files and events.
    pub entries: u64,
    /// Output lines.
    pub lines: u64,
    /// Directories, files or metadata that could not be read (the rest was still walked).
    pub problems: Vec<Problem>,
}

/// Errors that stop a timeline (evidence problems do not: they become [`Problem`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// Writing the output, or spilling the sort to `$TMPDIR`, failed.
    #[error("writing the timeline")]
    Io(#[from] io::Error),
    /// The engine's metadata needed could not be read.
    #[error(transparent)]
    Store(#[from] salvor_model::ModelError),
}

/// Walks the evidence per `opts` and writes a sorted timeline to `out`.
pub fn write_timeline(
    store: &dyn ContainerStore,
    opts: &TimelineOptions,
    format: TimelineFormat,
    out: &mut dyn Write,
) -> Result<TimelineSummary, TimelineError> {
    write_timeline_stores(&[store], opts, format, out)
}

/// [`write_timeline`] over several stores of one host, in one sorted timeline. With more
/// than one store each entry's scope names its store first (`[k8s.io: container app rw]`,
/// `[docker: image 9c3280bce7f0 …]`); `opts.containers` are ids of any of them.
pub fn write_timeline_stores(
    stores: &[&dyn ContainerStore],
    opts: &TimelineOptions,
    format: TimelineFormat,
    out: &mut dyn Write,
) -> Result<TimelineSummary, TimelineError> {
    let mut sorter = ExternalSorter::default();
    let mut summary = TimelineSummary::default();
    for store in stores {
        let prefix = if stores.len() > 1 {
            let id = store.identity();
            format!(
                "{}: ",
                id.namespace.unwrap_or_else(|| id.engine.to_string())
            )
        } else {
            String::new()
        };
        let c = Collector {
            store: *store,
            src: store.source().as_ref(),
            format,
            sorter,
            summary,
            prefix,
        };
        let c = collect_store(c, opts)?;
        sorter = c.sorter;
        summary = c.summary;
    }
    let mut lines = 0u64;
    sorter.finish(|it| {
        lines += 1;
        out.write_all(it.line.as_bytes())?;
        out.write_all(b"\n")
    })?;
    out.flush()?;
    summary.lines = lines;
    summary.problems.sort();
    summary.problems.dedup();
    Ok(summary)
}

/// One store's entries into the collector.
fn collect_store<'a>(
    mut c: Collector<'a>,
    opts: &TimelineOptions,
) -> Result<Collector<'a>, TimelineError> {
    let store = c.store;
    let all = store.containers()?;
    c.summary.problems.extend(store.container_problems());
    let wanted: BTreeSet<&str> = opts.containers.iter().map(String::as_str).collect();
    let mut selected: Vec<ContainerRecord> = all
        .into_iter()
        .filter(|ct| wanted.is_empty() || wanted.contains(ct.id.as_str()))
        .collect();
    selected.sort_by(|a, b| a.id.cmp(&b.id));
    selected.dedup_by(|a, b| a.id == b.id);

    c.image_events()?;
    for ct in &selected {
        c.container_events(ct)?;
        let label = container_label(ct);
        let dir = container_dir(ct);
        if ct.rw_layer.is_some() {
            match store.rw_layer_view(&ct.id) {
                Ok(view) => c.walk_layer(&format!("container {label} rw"), &view, &dir)?,
                Err(e) => c.problem(&dir, salvor_model::error_chain(&e)),
            }
            match store.init_layer_view(&ct.id) {
                Ok(Some(view)) => c.walk_layer(&format!("container {label} init"), &view, &dir)?,
                Ok(None) => {}
                Err(e) => c.problem(&dir, salvor_model::error_chain(&e)),
            }
        } else {
            c.problem(&dir, "container without a read-write layer; not walked");
        }
        if opts.logs {
            c.log_events(ct, &dir, &label)?;
        }
    }
    if opts.volumes {
        let vols = store.volumes()?;
        c.summary.problems.extend(store.volume_problems());
        for v in vols {
            if let Some(data) = &v.data {
                // An anonymous volume (a 64-hex-digit name) by its short id.
                let name = if is_hex64(&v.name) {
                    v.name[..12].to_string()
                } else {
                    clean_str(&v.name)
                };
                c.walk(&format!("volume {name}"), data)?;
            }
        }
    }
    if opts.images {
        for layer in store.layers() {
            let short = short_hex(&layer.id);
            let meta = store
                .layer_meta_path(&layer.id)
                .unwrap_or_else(|| store.identity().root);
            let scope = format!("layer {short}");
            match store.layer_view(&layer.id) {
                Ok(view) => c.walk_layer(&scope, &view, &meta)?,
                Err(e) => c.problem(
                    &meta,
                    format!(
                        "{scope}: files not walked: {}",
                        salvor_model::error_chain(&e)
                    ),
                ),
            }
        }
    }

    Ok(c)
}

fn container_label(c: &ContainerRecord) -> String {
    if c.name.is_empty() {
        c.id[..c.id.len().min(12)].to_string()
    } else {
        clean_str(&c.name)
    }
}

/// The container's directory of the engine's files (what problems about it name): the
/// directory of its record.
fn container_dir(c: &ContainerRecord) -> PathBuf {
    c.config_path
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn short_hex(id: &str) -> String {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    h[..h.len().min(12)].to_string()
}

struct Collector<'a> {
    store: &'a dyn ContainerStore,
    src: &'a dyn Source,
    format: TimelineFormat,
    sorter: ExternalSorter,
    summary: TimelineSummary,
    /// Put before every scope (the store's name, when a timeline holds several).
    prefix: String,
}
