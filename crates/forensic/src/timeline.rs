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

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use salvor_docker::logs::{parse_time, LogReader, Stream};
use salvor_docker::{Container, LayerFiles, Layout, Problem, Store};
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
    /// Container names or ids (prefixes) whose layers are walked; empty = all containers.
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
    /// The Docker metadata needed could not be read.
    #[error(transparent)]
    Store(#[from] salvor_docker::StoreError),
}

/// Walks the evidence per `opts` and writes a sorted timeline to `out`.
pub fn write_timeline(
    store: &Store,
    opts: &TimelineOptions,
    format: TimelineFormat,
    out: &mut dyn Write,
) -> Result<TimelineSummary, TimelineError> {
    let mut c = Collector {
        store,
        src: store.source.as_ref(),
        format,
        sorter: ExternalSorter::default(),
        summary: TimelineSummary::default(),
    };
    let (all, problems) = store.containers();
    c.summary.problems.extend(problems);
    let selected: Vec<Container> = if opts.containers.is_empty() {
        all.clone()
    } else {
        let mut ids = BTreeSet::new();
        let mut v = Vec::new();
        for q in &opts.containers {
            // The one resolver, containers only (images are there to say what else `q` names).
            let found = salvor_docker::resolve::Resolver {
                images: &store.images,
                containers: &all,
            }
            .resolve(q, salvor_docker::Want::Container)
            .map_err(salvor_docker::StoreError::from)?;
            let salvor_docker::Target::Container(found) = found.target else {
                continue;
            };
            let found = *found;
            if ids.insert(found.id.clone()) {
                v.push(found);
            }
        }
        v
    };
    let mut selected = selected;
    selected.sort_by(|a, b| a.id.cmp(&b.id));

    c.image_events()?;
    for ct in &selected {
        c.container_events(ct)?;
        let label = container_label(ct);
        match &ct.rw_layer {
            Some(rw) => {
                c.walk_layer(&format!("container {label} rw"), &rw.files, &ct.dir)?;
                if let Some(init) = &rw.init_files {
                    c.walk_layer(&format!("container {label} init"), init, &ct.dir)?;
                }
            }
            None => c.problem(&ct.dir, "container without a read-write layer; not walked"),
        }
        if opts.logs {
            c.log_events(ct, &label)?;
        }
    }
    if opts.volumes {
        let (vols, problems) = store.volumes(&all);
        c.summary.problems.extend(problems);
        for v in vols {
            if let Some(data) = &v.data {
                let name = if v.anonymous {
                    v.name[..12].to_string()
                } else {
                    clean_str(&v.name)
                };
                c.walk(&format!("volume {name}"), data)?;
            }
        }
    }
    if opts.images {
        for layer in store.layers.values() {
            let short = short_hex(&layer.chain_id);
            c.walk_layer(&format!("layer {short}"), &layer.files, &layer.meta_dir)?;
        }
    }

    let Collector {
        sorter,
        mut summary,
        ..
    } = c;
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

fn container_label(c: &Container) -> String {
    if c.name.is_empty() {
        c.short_id().to_string()
    } else {
        clean_str(&c.name)
    }
}

fn short_hex(id: &str) -> String {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    h[..h.len().min(12)].to_string()
}

struct Collector<'a> {
    store: &'a Store,
    src: &'a dyn Source,
    format: TimelineFormat,
    sorter: ExternalSorter,
    summary: TimelineSummary,
}

impl Collector<'_> {
    fn problem(&mut self, path: &Path, what: impl Into<String>) {
        let mut what = what.into();
        if let Some(rest) = what.strip_prefix(&format!("{}: ", path.display())) {
            what = rest.to_string();
        }
        self.summary.problems.push(Problem {
            path: path.to_path_buf(),
            what,
        });
    }

    fn walk_layer(&mut self, scope: &str, files: &LayerFiles, meta: &Path) -> io::Result<()> {
        // The layer's own files are the first search root (overlay `diff/`, aufs branch,
        // snapshot root, overlay v1 `upper/`).
        match files {
            LayerFiles::Unavailable { reason } => {
                self.problem(meta, format!("{scope}: files not walked: {reason}"));
                Ok(())
            }
            other => match other.search_roots().first() {
                Some(root) => {
                    let root = root.to_path_buf();
                    self.walk(scope, &root)
                }
                None => {
                    self.problem(meta, format!("{scope}: files not reachable; not walked"));
                    Ok(())
                }
            },
        }
    }

    /// Walks one directory tree, depth first in name order: one directory listing per
    /// level in memory (names only), each entry's metadata read as it is reached, so the
    /// walk is linear in the tree and bounded by its depth times the widest listing.
    fn walk(&mut self, scope: &str, root: &Path) -> io::Result<()> {
        let md = match self.src.metadata(root) {
            Ok(m) => m,
            Err(e) => {
                self.problem(root, e.to_string());
                return Ok(());
            }
        };
        if !md.is_dir() {
            self.problem(root, format!("{scope}: is a {}, not a directory", md.kind));
            return Ok(());
        }
        let opaque = self.is_opaque_dir(root);
        self.file_entry(scope, b"/", root, &md, None, false, opaque)?;
        // Per open directory: its evidence path, its path inside the layer, and the
        // entries not yet visited.
        let mut stack: Vec<(
            PathBuf,
            Vec<u8>,
            std::vec::IntoIter<salvor_source::DirEntry>,
        )> = Vec::new();
        if let Some(it) = self.listing(root) {
            stack.push((root.to_path_buf(), Vec::new(), it));
        }
        while let Some((dir, inside, it)) = stack.last_mut() {
            let Some(e) = it.next() else {
                stack.pop();
                continue;
            };
            let ev = dir.join(&e.name);
            let name = e.name.as_bytes();
            let mut cpath = inside.clone();
            cpath.push(b'/');
            cpath.extend_from_slice(name);
            let md = match self.src.metadata(&ev) {
                Ok(m) => m,
                Err(err) => {
                    self.problem(&ev, err.to_string());
                    continue;
                }
            };
            let parent_path: Vec<u8> = if inside.is_empty() {
                b"/".to_vec()
            } else {
                inside.clone()
            };
            if name == b".wh..wh..opq" || name == b".wh..opq" {
                self.file_entry(
                    scope,
                    &parent_path,
                    &ev,
                    &md,
                    Some("opaque-marker"),
                    false,
                    true,
                )?;
                continue;
            }
            if md.is_overlay_whiteout() {
                self.file_entry(scope, &cpath, &ev, &md, Some("whiteout"), true, false)?;
                continue;
            }
            if let Some(target) = name.strip_prefix(b".wh.") {
                if !target.is_empty() && !name.starts_with(b".wh..wh.") {
                    let mut del = inside.clone();
                    del.push(b'/');
                    del.extend_from_slice(target);
                    self.file_entry(scope, &del, &ev, &md, Some("whiteout"), true, false)?;
                    continue;
                }
            }
            let opaque = md.is_dir() && self.is_opaque_dir(&ev);
            self.file_entry(scope, &cpath, &ev, &md, None, false, opaque)?;
            if md.is_dir() {
                if let Some(it) = self.listing(&ev) {
                    stack.push((ev, cpath, it));
                }
            }
        }
        Ok(())
    }

    /// The entries of directory `dir`, or `None` (and a problem) when it cannot be read.
    fn listing(&mut self, dir: &Path) -> Option<std::vec::IntoIter<salvor_source::DirEntry>> {
        match self.src.read_dir(dir) {
            Ok(e) => Some(e.into_iter()),
            Err(e) => {
                self.problem(dir, e.to_string());
                None
            }
        }
    }

    fn is_opaque_dir(&self, dir: &Path) -> bool {
        match self.src.xattrs(dir) {
            Ok(x) => x.iter().any(|(n, v)| {
                n.as_bytes().ends_with(b".opaque") && v.first().is_some_and(|b| *b == b'y')
            }),
            Err(_) => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn file_entry(
        &mut self,
        scope: &str,
        cpath: &[u8],
        ev: &Path,
        md: &Metadata,
        special: Option<&str>,
        deleted: bool,
        opaque: bool,
    ) -> io::Result<()> {
        let link_target = if md.is_symlink() {
            match self.src.read_link(ev) {
                Ok(t) => Some(clean_bytes(t.as_os_str().as_bytes())),
                Err(e) => {
                    self.problem(ev, e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let path = clean_bytes(cpath);
        let evidence = clean_bytes(ev.as_os_str().as_bytes());
        let mut name = format!("[{scope}] {path}");
        if let Some(t) = &link_target {
            name.push_str(" -> ");
            name.push_str(t);
        }
        if deleted {
            name.push_str(" (deleted)");
        }
        if opaque {
            name.push_str(" (opaque: lower layers' contents hidden)");
        }
        name.push_str(&format!(" (evidence: {evidence})"));
        let kind = special.unwrap_or(kind_name(md.kind)).to_string();
        let e = Entry {
            name,
            scope: scope.to_string(),
            path,
            kind,
            event: None,
            deleted,
            opaque,
            link_target,
            evidence: Some(evidence),
            mode: ls_mode(md.kind, md.mode),
            uid: md.uid,
            gid: md.gid,
            size: md.size,
            inode: md.ino,
            mtime: Some(md.mtime.into()),
            atime: known(md.atime),
            ctime: known(md.ctime),
            btime: md.btime.map(Time::from),
        };
        self.push(e)
    }

    fn event(
        &mut self,
        scope: &str,
        event: &str,
        what: &str,
        time: Time,
        evidence: Option<&Path>,
    ) -> io::Result<()> {
        let evidence = evidence.map(|p| clean_bytes(p.as_os_str().as_bytes()));
        let mut name = format!("[{scope}] {what}");
        if let Some(ev) = &evidence {
            name.push_str(&format!(" (evidence: {ev})"));
        }
        let e = Entry {
            name,
            scope: scope.to_string(),
            path: what.to_string(),
            kind: "event".into(),
            event: Some(event.to_string()),
            deleted: false,
            opaque: false,
            link_target: None,
            evidence,
            mode: String::new(),
            uid: 0,
            gid: 0,
            size: 0,
            inode: 0,
            mtime: Some(time),
            atime: Some(time),
            ctime: Some(time),
            btime: Some(time),
        };
        self.push(e)
    }

    fn push(&mut self, e: Entry) -> io::Result<()> {
        self.summary.entries += 1;
        match self.format {
            TimelineFormat::Bodyfile => {
                let t = e.mtime.unwrap_or_default();
                self.sorter.push(Item {
                    sec: t.sec,
                    nsec: t.nsec,
                    name: e.name.clone(),
                    tie: String::new(),
                    line: bodyfile_line(&e),
                })
            }
            TimelineFormat::Jsonl => {
                for line in json_lines(&e) {
                    let json = serde_json::to_string(&line)?;
                    self.sorter.push(Item {
                        sec: line.sec,
                        nsec: line.nsec,
                        name: line.entry.name,
                        tie: line.macb,
                        line: json,
                    })?;
                }
                Ok(())
            }
        }
    }

    fn image_events(&mut self) -> io::Result<()> {
        let store = self.store;
        let mut seen_history: BTreeSet<(Time, String, String)> = BTreeSet::new();
        for img in &store.images {
            let tag = img
                .repo_tags
                .first()
                .map(|t| clean_str(t))
                .unwrap_or_else(|| "<none>".into());
            let scope = format!("image {} {tag}", img.short_id());
            let config_path = img.config_path.as_deref();
            if let Some(t) = img.created.as_deref().and_then(parse_time).filter(real) {
                self.event(
                    &scope,
                    "image-created",
                    "image created (config \"created\")",
                    t.into(),
                    config_path,
                )?;
            }
            if store.layout == Layout::V2 {
                let hex = img.id.strip_prefix("sha256:").unwrap_or(&img.id);
                let p = store
                    .path("image")
                    .join(store.driver.name())
                    .join("imagedb/metadata/sha256")
                    .join(hex)
                    .join("lastUpdated");
                match self.src.read_limited(&p, 4096) {
                    Ok(b) => match std::str::from_utf8(&b).ok().and_then(parse_time) {
                        Some(t) if real(&t) => self.event(
                            &scope,
                            "image-last-updated",
                            "image pulled, loaded or tagged (lastUpdated)",
                            t.into(),
                            Some(&p),
                        )?,
                        _ => self.problem(&p, "not an RFC 3339 time"),
                    },
                    Err(e) if e.is_not_found() => {}
                    Err(e) => self.problem(&p, e.to_string()),
                }
            }
            let Some(cfg) = img.config_json() else {
                continue;
            };
            let Some(hist) = cfg.get("history").and_then(|h| h.as_array()) else {
                continue;
            };
            for (i, h) in hist.iter().enumerate() {
                let Some(t) = h
                    .get("created")
                    .and_then(|v| v.as_str())
                    .and_then(parse_time)
                    .filter(real)
                else {
                    continue;
                };
                let by = h.get("created_by").and_then(|v| v.as_str()).unwrap_or("");
                let comment = h.get("comment").and_then(|v| v.as_str()).unwrap_or("");
                if !seen_history.insert((t.into(), by.to_string(), comment.to_string())) {
                    continue;
                }
                let mut what = format!("history[{i}]: {}", clean_str(&truncate(by, 300)));
                if !comment.is_empty() {
                    what.push_str(&format!(" ({})", clean_str(&truncate(comment, 200))));
                }
                self.event(&scope, "image-history", &what, t.into(), config_path)?;
            }
        }
        Ok(())
    }

    fn container_events(&mut self, c: &Container) -> io::Result<()> {
        let scope = format!("container {}", container_label(c));
        let cfg = Some(c.config_path.as_path());
        let image = clean_str(&c.image);
        let items = [
            (
                c.created.as_deref(),
                "container-created",
                format!("container created (image {image})"),
            ),
            (
                c.state.started_at.as_deref(),
                "container-started",
                "container started".to_string(),
            ),
            (
                c.state.finished_at.as_deref(),
                "container-finished",
                format!("container finished (exit code {})", c.state.exit_code),
            ),
        ];
        for (t, ev, what) in items {
            if let Some(t) = t.and_then(parse_time).filter(real) {
                self.event(&scope, ev, &what, t.into(), cfg)?;
            }
        }
        Ok(())
    }

    fn log_events(&mut self, c: &Container, label: &str) -> io::Result<()> {
        let reader = match LogReader::for_container(self.store, c) {
            Ok(r) => r,
            Err(e) => {
                self.problem(&c.dir, format!("logs: {e}"));
                return Ok(());
            }
        };
        for entry in reader {
            match entry {
                Ok(e) => {
                    let Some(t) = e.time else { continue };
                    let stream = match e.stream {
                        Stream::Stdout => "stdout",
                        Stream::Stderr => "stderr",
                    };
                    let mut line = &e.line[..];
                    while let Some(rest) = line.strip_suffix(b"\n") {
                        line = rest;
                    }
                    let text = clean_bytes(&line[..line.len().min(400)]);
                    let ev = PathBuf::from(format!("{}@{}", e.file.display(), e.offset));
                    self.event(
                        &format!("container {label} log {stream}"),
                        "log-line",
                        &text,
                        t.into(),
                        Some(&ev),
                    )?;
                }
                Err(err) => self.problem(&c.dir, format!("logs: {err}")),
            }
        }
        Ok(())
    }
}

/// Go's zero time (`0001-01-01T00:00:00Z`) and anything before 1 AD mean "never".
fn real(t: &Timestamp) -> bool {
    t.sec > -62_135_596_800
}

/// Zero means "not recorded" for atime/ctime (a tar without PAX times).
fn known(t: Timestamp) -> Option<Time> {
    if t.sec == 0 && t.nsec == 0 {
        None
    } else {
        Some(t.into())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::Regular => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::CharDevice => "char-device",
        FileKind::BlockDevice => "block-device",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
    }
}

/// `ls -l` mode string: `drwxr-xr-x`, `-rwsr-xr-x`, `drwxrwxrwt`.
pub fn ls_mode(kind: FileKind, mode: u32) -> String {
    let t = match kind {
        FileKind::Regular => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
    let special = |x: bool, s: bool, on: char, off: char| match (x, s) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    s
}

/// TSK's `mode_as_string` column: name type `/` meta type and permissions
/// (`r/rrw-r--r--`, `d/drwxr-xr-x`, `l/lrwxrwxrwx`; a whiteout `w/c---------`).
fn tsk_mode(e: &Entry) -> String {
    if e.kind == "event" {
        return "-/----------".into();
    }
    let meta = match e.mode.chars().next() {
        Some('-') => 'r',
        Some('s') => 'h',
        Some(c) => c,
        None => '-',
    };
    let name_type = if e.kind == "whiteout" { 'w' } else { meta };
    format!("{name_type}/{meta}{}", e.mode.get(1..).unwrap_or(""))
}

/// Escapes a bodyfile field: `%` and `|` as `%25` / `%7C` (mactime decodes `%XX`).
fn body_field(s: &str) -> String {
    s.replace('%', "%25").replace('|', "%7C")
}

fn body_time(t: Option<Time>) -> String {
    t.map(Time::bodyfile).unwrap_or_else(|| "0".into())
}

/// One TSK 3 bodyfile line (without newline):
/// `MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime`.
pub fn bodyfile_line(e: &Entry) -> String {
    format!(
        "0|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        body_field(&e.name),
        e.inode,
        tsk_mode(e),
        e.uid,
        e.gid,
        e.size,
        body_time(e.atime),
        body_time(e.mtime),
        body_time(e.ctime),
        body_time(e.btime),
    )
}

/// The JSON lines of one entry: one per distinct time, flags mactime style.
pub fn json_lines(e: &Entry) -> Vec<JsonLine> {
    let times = [e.mtime, e.atime, e.ctime, e.btime];
    let mut distinct: Vec<Time> = times.iter().flatten().copied().collect();
    distinct.sort();
    distinct.dedup();
    distinct
        .into_iter()
        .map(|t| {
            let macb: String = times
                .iter()
                .zip(['m', 'a', 'c', 'b'])
                .map(|(x, c)| if *x == Some(t) { c } else { '.' })
                .collect();
            JsonLine {
                time: t.rfc3339(),
                sec: t.sec,
                nsec: t.nsec,
                macb,
                entry: e.clone(),
            }
        })
        .collect()
}

/// Names are shown as UTF-8; bytes that are not UTF-8 and control characters become
/// `\xNN`, a backslash `\\`.
pub fn clean_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

fn clean_str(s: &str) -> String {
    clean_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(ls_mode(FileKind::Regular, 0o644), "-rw-r--r--");
        assert_eq!(ls_mode(FileKind::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(ls_mode(FileKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(ls_mode(FileKind::Dir, 0o2745), "drwxr-Sr-x");
        assert_eq!(ls_mode(FileKind::CharDevice, 0), "c---------");
    }

    #[test]
    fn times() {
        assert_eq!(Time { sec: 5, nsec: 0 }.bodyfile(), "5");
        assert_eq!(Time { sec: 5, nsec: 1 }.bodyfile(), "5.000000001");
        assert_eq!(
            Time {
                sec: -2,
                nsec: 750_000_000
            }
            .bodyfile(),
            "-1.250000000"
        );
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(clean_bytes(b"a\nb\xff\\c"), "a\\x0ab\\xff\\\\c");
        assert_eq!(body_field("a|b%c"), "a%7Cb%25c");
    }
}
