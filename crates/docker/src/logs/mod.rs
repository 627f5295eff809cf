//! Container logs as the engine stored them, read like `docker logs`.
//!
//! * `json-file` (the default): `containers/<id>/<id>-json.log`, rotated to `….1`, `….2.gz` …
//!   One JSON object per line: `{"log":"…\n","stream":"stdout","time":"RFC 3339 nano"}`.
//! * `local`: `containers/<id>/local-logs/container.log` (rotated the same way): protobuf
//!   `LogEntry` records, each framed by its big-endian `u32` length before **and** after.
//!   Decoded by hand: `source`(1, string), `time_nano`(2, int64), `line`(3, bytes),
//!   `partial`(4, bool), `partial_log_metadata`(5: `last`(1), `id`(2), `ordinal`(3)).
//! * Any other driver with dual logging (Engine ≥ 20.10): the `local`-format cache
//!   `containers/<id>/container-cached.log`.
//!
//! Files are read oldest first and **streamed**: gzip'd rotations are decompressed on the fly,
//! a single log line is capped at [`MAX_LOG_LINE`] bytes (an error naming the file and offset,
//! then reading goes on after that line), and damage (truncated gzip, a bad length prefix)
//! ends that file with an error naming it; the next file is still read.
//!
//! Output rules of `docker logs`: a json-file entry's `log` is written as is (it carries its
//! newline unless the message was partial); a `local` entry gets a newline unless it is a
//! partial message that is not the last part; `--timestamps` prefixes
//! `2006-01-02T15:04:05.000000000Z07:00` (always nine digits) and a space.

mod proto;

pub use proto::{decode_entry, encode_local_record, DecodeError, ProtoEntry};

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use salvor_source::{FileKind, Source, Timestamp};

use crate::containers::Container;
pub use crate::time::{
    format_go_utc_seconds, format_rfc3339_nano_fixed, format_rfc3339_seconds, parse_time,
    parse_time_arg,
};
use crate::{Store, StoreError};

/// Longest single log line (or `local` record) accepted.
pub const MAX_LOG_LINE: usize = 16 << 20;

/// Which stream a log line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The on-disk log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// The `json-file` driver's one JSON object per line (`{"log":…,"stream":…,"time":…}`).
    JsonFile,
    /// The `local` driver's protobuf records (also the dual-logging cache).
    Local,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When the engine received the line, `None` if the entry has no readable time.
    pub time: Option<Timestamp>,
    /// Which stream the container wrote it to.
    pub stream: Stream,
    /// The bytes `docker logs` prints for this entry (newline included where it prints one).
    pub line: Vec<u8>,
    /// Where the entry was read (the file, and the offset in its decompressed bytes).
    pub file: PathBuf,
    /// Offset of the entry in the file's decompressed bytes.
    pub offset: u64,
}

/// The log files of one container, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogFiles {
    /// Their format (one driver per container).
    pub format: LogFormat,
    /// The files relative to the evidence root, oldest first (`<id>-json.log.2.gz`, …, `<id>-json.log`).
    pub files: Vec<PathBuf>,
    /// Entries named like a log file that are not regular files (FIFO, socket, symlink,
    /// directory …): not read; a [`LogReader`] yields an error naming each and its kind.
    #[serde(serialize_with = "serialize_kinds")]
    pub not_regular: Vec<(PathBuf, FileKind)>,
}

fn serialize_kinds<S: serde::Serializer>(
    v: &[(PathBuf, FileKind)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (p, k) in v {
        seq.serialize_element(&(p, k.to_string()))?;
    }
    seq.end()
}

/// Finds a container's log files in the evidence.
pub fn log_files(store: &Store, c: &Container) -> Result<LogFiles, StoreError> {
    let src = store.source.as_ref();
    let driver = c.log_driver.clone().unwrap_or_default();
    let (format, dir, base) = match driver.as_str() {
        "" | "json-file" => {
            // LogPath is a host path; inside the evidence the file sits in the container dir.
            let base = c
                .log_path
                .as_deref()
                .and_then(|p| p.rsplit('/').next())
                .filter(|b| !b.is_empty() && *b != "." && *b != "..")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}-json.log", c.id));
            (LogFormat::JsonFile, c.dir.clone(), base)
        }
        "local" => (
            LogFormat::Local,
            c.dir.join("local-logs"),
            "container.log".to_string(),
        ),
        other => {
            if src.exists(&c.dir.join("container-cached.log")) {
                (
                    LogFormat::Local,
                    c.dir.clone(),
                    "container-cached.log".to_string(),
                )
            } else {
                return Err(StoreError::NotFound(format!(
                    "container {}: the {other:?} log driver does not keep logs in the data-root (and there is no dual-logging cache {})",
                    c.short_id(),
                    c.dir.join("container-cached.log").display()
                )));
            }
        }
    };
    let entries = match src.read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // (rotation number, path); the live file is 0.
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    let mut not_regular = Vec::new();
    for e in entries {
        let Some(name) = e.name.to_str() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(base.as_str()) else {
            continue;
        };
        let n = if rest.is_empty() {
            Some(0)
        } else {
            rest.strip_prefix('.')
                .map(|r| r.strip_suffix(".gz").unwrap_or(r))
                .and_then(|r| r.parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        if let Some(n) = n {
            if e.kind == FileKind::Regular {
                found.push((n, dir.join(name)));
            } else {
                // A FIFO, socket, symlink … where a log file belongs: never opened (a FIFO
                // would block, a symlink could lead out), but said.
                not_regular.push((dir.join(name), e.kind));
            }
        }
    }
    // Oldest first: highest rotation number first, the live file last.
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(LogFiles {
        format,
        files: found.into_iter().map(|(_, p)| p).collect(),
        not_regular,
    })
}

/// Streams the entries of a container's log files, oldest first.
pub struct LogReader {
    source: Arc<dyn Source>,
    format: LogFormat,
    files: VecDeque<PathBuf>,
    cur: Option<Open>,
    /// Errors to yield before any entry (log files that are not regular files).
    pending: VecDeque<StoreError>,
}

struct Open {
    path: PathBuf,
    r: Box<dyn BufRead + Send>,
    offset: u64,
}

impl LogReader {
    /// A reader of `files` in `source`, oldest first; nothing is opened until the first entry is read.
    pub fn new(source: Arc<dyn Source>, files: &LogFiles) -> Self {
        LogReader {
            source,
            format: files.format,
            files: files.files.iter().cloned().collect(),
            cur: None,
            pending: files
                .not_regular
                .iter()
                .map(|(p, k)| {
                    StoreError::invalid(
                        p,
                        format!("the log file is a {k}, not a regular file; not read"),
                    )
                })
                .collect(),
        }
    }

    /// Reader over a container's logs.
    pub fn for_container(store: &Store, c: &Container) -> Result<Self, StoreError> {
        let files = log_files(store, c)?;
        Ok(Self::new(store.source.clone(), &files))
    }

    fn open_next(&mut self) -> Option<Result<(), StoreError>> {
        let path = self.files.pop_front()?;
        let f = match self.source.open(&path) {
            Ok(f) => f,
            Err(e) => return Some(Err(e.into())),
        };
        let r: Box<dyn BufRead + Send> = if path.extension().is_some_and(|x| x == "gz") {
            Box::new(BufReader::with_capacity(
                64 << 10,
                flate2::read::MultiGzDecoder::new(BufReader::new(f)),
            ))
        } else {
            Box::new(BufReader::with_capacity(64 << 10, f))
        };
        self.cur = Some(Open { path, r, offset: 0 });
        Some(Ok(()))
    }
}

impl Iterator for LogReader {
    type Item = Result<LogEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.pop_front() {
            return Some(Err(e));
        }
        loop {
            if self.cur.is_none() {
                match self.open_next()? {
                    Ok(()) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            let cur = self.cur.as_mut()?;
            let res = match self.format {
                LogFormat::JsonFile => next_json(cur),
                LogFormat::Local => next_local(cur),
            };
            match res {
                Step::Entry(e) => return Some(Ok(e)),
                Step::Skip(err) => return Some(Err(err)),
                Step::Eof => self.cur = None,
                Step::Fatal(err) => {
                    self.cur = None;
                    return Some(Err(err));
                }
            }
        }
    }
}

enum Step {
    Entry(LogEntry),
    /// A bad entry; the file goes on.
    Skip(StoreError),
    Eof,
    /// The rest of the file cannot be read.
    Fatal(StoreError),
}

fn at(cur: &Open, offset: u64, what: impl std::fmt::Display) -> StoreError {
    StoreError::invalid(&cur.path, format!("offset {offset}: {what}"))
}

/// Reads one `\n`-terminated line, at most `MAX_LOG_LINE` bytes kept. Returns
/// `Ok(None)` at EOF, `Ok(Some((bytes, too_long)))` otherwise.
fn read_line(cur: &mut Open, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = match cur.r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if any { Some(too_long) } else { None });
        }
        any = true;
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let n = chunk.len();
        if !too_long {
            if buf.len() + n > MAX_LOG_LINE + 1 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        cur.r.consume(n);
        cur.offset += n as u64;
        if done {
            return Ok(Some(too_long));
        }
    }
}

#[derive(serde::Deserialize)]
struct JsonLine {
    log: String,
    stream: Option<String>,
    time: Option<String>,
}

fn next_json(cur: &mut Open) -> Step {
    let mut buf = Vec::new();
    loop {
        let start = cur.offset;
        match read_line(cur, &mut buf) {
            Err(e) => {
                return Step::Fatal(at(
                    cur,
                    cur.offset,
                    format!("read error: {}", salvor_model::error_chain(&e)),
                ))
            }
            Ok(None) => return Step::Eof,
            Ok(Some(true)) => {
                return Step::Skip(at(
                    cur,
                    start,
                    format!("log line longer than {MAX_LOG_LINE} bytes; skipped"),
                ))
            }
            Ok(Some(false)) => {}
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let l: JsonLine = match serde_json::from_slice(&buf) {
            Ok(l) => l,
            Err(e) => return Step::Skip(at(cur, start, format!("not a json-file log entry: {e}"))),
        };
        let stream = match l.stream.as_deref() {
            Some("stderr") => Stream::Stderr,
            _ => Stream::Stdout,
        };
        let time = l.time.as_deref().and_then(parse_time);
        return Step::Entry(LogEntry {
            time,
            stream,
            line: l.log.into_bytes(),
            file: cur.path.clone(),
            offset: start,
        });
    }
}

/// Fills `buf` completely; `Ok(false)` on a clean EOF before any byte.
fn read_full(cur: &mut Open, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match cur.r.read(&mut buf[got..]) {
            Ok(0) => {
                if got == 0 {
                    return Ok(false);
                }
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("file ends inside a record ({got} of {} bytes)", buf.len()),
                ));
            }
            Ok(n) => {
                got += n;
                cur.offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn next_local(cur: &mut Open) -> Step {
    let start = cur.offset;
    let mut len = [0u8; 4];
    match read_full(cur, &mut len) {
        Ok(false) => return Step::Eof,
        Ok(true) => {}
        Err(e) => return Step::Fatal(at(cur, start, e)),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_LOG_LINE + 4096 {
        return Step::Fatal(at(
            cur,
            start,
            format!("bad record length prefix {n} (limit {MAX_LOG_LINE}); the rest of the file is not read"),
        ));
    }
    let mut rec = vec![0u8; n];
    match read_full(cur, &mut rec) {
        Ok(true) => {}
        Ok(false) if n == 0 => {}
        Ok(false) => return Step::Fatal(at(cur, start, "file ends inside a record")),
        Err(e) => return Step::Fatal(at(cur, start, e)),
    }
    let mut suffix = [0u8; 4];
    match read_full(cur, &mut suffix) {
        Ok(true) => {}
        Ok(false) => {
            return Step::Fatal(at(
                cur,
                start,
                "file ends before the record's length suffix",
            ))
        }
        Err(e) => return Step::Fatal(at(cur, start, e)),
    }
    if suffix != len {
        return Step::Fatal(at(
            cur,
            start,
            format!(
                "record length suffix {} does not match the prefix {n}; the rest of the file is not read",
                u32::from_be_bytes(suffix)
            ),
        ));
    }
    match decode_entry(&rec) {
        Ok(e) => {
            let mut line = e.line;
            if !e.partial || e.last {
                line.push(b'\n');
            }
            let stream = if e.source == "stderr" {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            let time = Some(Timestamp {
                sec: e.time_nano.div_euclid(1_000_000_000),
                nsec: e.time_nano.rem_euclid(1_000_000_000) as u32,
            });
            Step::Entry(LogEntry {
                time,
                stream,
                line,
                file: cur.path.clone(),
                offset: start,
            })
        }
        Err(why) => Step::Skip(at(cur, start, format!("bad LogEntry record: {why}"))),
    }
}

/// Options of `docker logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only entries at or after this time (`--since`).
    pub since: Option<Timestamp>,
    /// Only entries at or before this time (`--until`); reading stops at the first later one.
    pub until: Option<Timestamp>,
    /// Only the last N entries (before `since`/`until` are applied, as the engine does).
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 time in nanoseconds (`--timestamps`).
    pub timestamps: bool,
}

/// What [`write_logs`] did.
#[derive(Debug, Clone, Default)]
pub struct LogSummary {
    /// Entries written (after the filters).
    pub entries: u64,
    /// Damage met (each names the file and offset); the rest was still written.
    pub errors: Vec<String>,
}

/// Writes a container's logs like `docker logs`: stdout entries to `out`, stderr entries to
/// `err`. Damage is collected in the summary (and passed to `on_error` as it is met).
pub fn write_logs(
    reader: LogReader,
    opts: &LogOptions,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
    on_error: &mut dyn FnMut(&StoreError),
) -> std::io::Result<LogSummary> {
    let mut summary = LogSummary::default();
    let mut emit = |e: &LogEntry, summary: &mut LogSummary| -> std::io::Result<bool> {
        if let (Some(since), Some(t)) = (opts.since, e.time) {
            if t < since {
                return Ok(true);
            }
        }
        if let (Some(until), Some(t)) = (opts.until, e.time) {
            if t > until {
                return Ok(false);
            }
        }
        let w: &mut dyn std::io::Write = match e.stream {
            Stream::Stdout => &mut *out,
            Stream::Stderr => &mut *err,
        };
        if opts.timestamps {
            let t = e
                .time
                .map(format_rfc3339_nano_fixed)
                .unwrap_or_else(|| "0001-01-01T00:00:00.000000000Z".to_string());
            w.write_all(t.as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(&e.line)?;
        summary.entries += 1;
        Ok(true)
    };
    match opts.tail {
        Some(n) => {
            let mut ring: VecDeque<LogEntry> = VecDeque::with_capacity(n.min(1 << 16));
            for item in reader {
                match item {
                    Ok(e) => {
                        if n == 0 {
                            continue;
                        }
                        if ring.len() == n {
                            ring.pop_front();
                        }
                        ring.push_back(e);
                    }
                    Err(e) => {
                        on_error(&e);
                        summary.errors.push(salvor_model::error_chain(&e));
                    }
                }
            }
            for e in &ring {
                if !emit(e, &mut summary)? {
                    break;
                }
            }
        }
        None => {
            for item in reader {
                match item {
                    Ok(e) => {
                        if !emit(&e, &mut summary)? {
                            break;
                        }
                    }
                    Err(e) => {
                        on_error(&e);
                        summary.errors.push(salvor_model::error_chain(&e));
                    }
                }
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-22T08:09:48.901289091Z").expect("parses");
        assert_eq!(
            format_rfc3339_nano_fixed(t),
            "2026-11-22T08:09:48.901289091Z"
        );
        let t2 = parse_time("2026-11-22T10:09:48.9+02:00").expect("parses");
        assert_eq!(
            format_rfc3339_nano_fixed(t2),
            "2026-11-22T08:09:48.900000000Z"
        );
        assert_eq!(format_go_utc_seconds(t), "2026-11-22 08:09:48 +0000 UTC");
        assert_eq!(
            parse_time("0001-01-01T00:00:00Z").map(|t| t.sec),
            Some(-62135596800)
        );
        assert_eq!(parse_time_arg("0").map(|t| t.sec), Some(0));
        assert_eq!(
            parse_time_arg("1700000000.25").map(|t| t.nsec),
            Some(250_000_000)
        );
        assert_eq!(parse_time_arg("1970-01-02").map(|t| t.sec), Some(86400));
        assert!(parse_time("garbage").is_none());
        assert!(parse_time_arg("10m").is_none());
    }

    #[test]
    fn local_record_round_trip() {
        let rec = encode_local_record("stderr", 1_700_000_000_123_456_789, b"hi", false);
        let n = u32::from_be_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
        let e = decode_entry(&rec[4..4 + n]).expect("decodes");
        assert_eq!(e.source, "stderr");
        assert_eq!(e.time_nano, 1_700_000_000_123_456_789);
        assert_eq!(e.line, b"hi");
        assert!(!e.partial);
        assert!(decode_entry(&[0x0a, 0x05, b'a']).is_err());
        assert!(decode_entry(&[0xff; 12]).is_err());
    }
}
