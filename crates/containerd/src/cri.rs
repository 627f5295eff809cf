//! What containerd's CRI plugin (the Kubernetes runtime API) keeps beside meta.db, read
//! offline for the containers of a namespace (`k8s.io`), as containerd 1.7 writes it:
//!
//! * **State**: `<root>/io.containerd.grpc.v1.cri/containers/<id>/status`, JSON
//!   `{"Version":"v1","Pid":…,"CreatedAt":…,"StartedAt":…,"FinishedAt":…,"ExitCode":…,
//!   "Reason":…,"Message":…}` with times in nanoseconds since the epoch ([`CriStatus`],
//!   [`parse_status`]). The state is the CRI's: `exited` once finished, `running` when
//!   started and not finished (it was running when the host stopped), `created` when only
//!   created. Sandboxes have no status file (their state is not kept on disk).
//! * **Names**: an app container keeps `io.kubernetes.container.name`; a sandbox is named as
//!   dockershim named pod sandboxes, `k8s_POD_<pod>_<namespace>_<uid>_<attempt>` (the attempt
//!   from the CRI's sandbox metadata, 0 when unknown).
//! * **Log files**: the container's current log file is, in order of trust, the `LogPath`
//!   of the CRI's container metadata (the meta.db extension
//!   `io.cri-containerd.container.metadata`: the file containerd wrote to), the target of
//!   kubelet's `/var/log/containers/<pod>_<ns>_<container>-<id>.log` symlink, or
//!   `/var/log/pods/<ns>_<pod>_<uid>/<container>/<attempt>.log` with the attempt the
//!   container's rank by creation among the pod's containers of that name. Beside it,
//!   kubelet's rotations `<attempt>.log.<YYYYMMDD-HHMMSS>` and their `.gz`. Host paths are
//!   mapped into the evidence under the host root ([`host_root`]); a symlink is read, never
//!   followed, and a target leaving the host root or `/var/log/pods` is a problem.
//! * **Log lines**: [`CriLogReader`] streams the files oldest first, each line
//!   `<RFC 3339 nano> <stdout|stderr> <P|F> <message>`; `P` fragments are joined up to the
//!   next `F` of the same stream (containerd splits lines longer than 16 KiB so), a trailing
//!   `P` without `F` (output that ended without a newline) comes out without newline.
//!
//! Every file is evidence: status files are read under [`MAX_STATUS`] bytes, log lines under
//! [`MAX_CRI_LOG_LINE`]; what does not read is a [`Problem`] naming the file, or an error
//! item of the log stream naming the file and offset.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use salvor_model::{ContainerRecord, ContainerStatus, LogLine, LogStream, ModelError, Problem};
use salvor_oci::Time;
use salvor_source::{FileKind, Source, SourceError, Timestamp};

use crate::locate::META_DB;
use crate::meta;

/// The CRI plugin's directory under a containerd root.
pub const CRI_DIR: &str = "io.containerd.grpc.v1.cri";

/// A container's `status` file is read at most this large.
pub const MAX_STATUS: u64 = 64 << 10;

/// Longest log message kept in one piece: a longer physical line is an error item and
/// skipped; `P` fragments joined beyond it come out as a line of their own (no newline).
pub const MAX_CRI_LOG_LINE: usize = 16 << 20;

/// The label telling CRI sandboxes (`sandbox`) from app containers (`container`).
pub const KIND_LABEL: &str = "io.cri-containerd.kind";

const CONTAINER_META: &str = "io.cri-containerd.container.metadata";
const SANDBOX_META: &str = "io.cri-containerd.sandbox.metadata";
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_UID: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// A container's CRI `status` file as containerd 1.7 writes it (`Version` `v1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriStatus {
    /// `Pid` (0 when not running).
    pub pid: i64,
    /// `CreatedAt`, nanoseconds since the epoch (0: not created).
    pub created_at: i64,
    /// `StartedAt`, nanoseconds since the epoch (0: never started).
    pub started_at: i64,
    /// `FinishedAt`, nanoseconds since the epoch (0: not finished).
    pub finished_at: i64,
    /// `ExitCode`.
    pub exit_code: i64,
    /// `Reason` (empty on disk in practice: the CRI computes `Completed`/`Error`).
    pub reason: String,
    /// `Message`.
    pub message: String,
}

/// Parses a CRI `status` file; the error says what is wrong (the caller names the file).
pub fn parse_status(bytes: &[u8]) -> Result<CriStatus, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let o = v
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    match o.get("Version").and_then(|x| x.as_str()) {
        Some("v1") => {}
        Some(other) => return Err(format!("unsupported status version {other:?}")),
        None => return Err("no Version".into()),
    }
    let int = |k: &str| -> Result<i64, String> {
        match o.get(k) {
            None | Some(serde_json::Value::Null) => Ok(0),
            Some(x) => x
                .as_i64()
                .ok_or_else(|| format!("{k} is not an integer: {x}")),
        }
    };
    let text = |k: &str| -> Result<String, String> {
        match o.get(k) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(x) => x
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{k} is not a string")),
        }
    };
    Ok(CriStatus {
        pid: int("Pid")?,
        created_at: int("CreatedAt")?,
        started_at: int("StartedAt")?,
        finished_at: int("FinishedAt")?,
        exit_code: int("ExitCode")?,
        reason: text("Reason")?,
        message: text("Message")?,
    })
}

/// Nanoseconds since the epoch as Go's `RFC3339Nano` in UTC (trailing zeros trimmed).
pub fn format_unix_nanos(ns: i64) -> String {
    let sec = ns.div_euclid(1_000_000_000);
    let nsec = ns.rem_euclid(1_000_000_000) as u32;
    Time::from_unix_utc(sec, nsec)
        .map(|t| t.format())
        .unwrap_or_else(|| ns.to_string())
}

impl CriStatus {
    /// The state as the CRI reports it (`containerstore.Status.State()`): `exited` once
    /// finished (with its exit code), `running` when started and not finished, `created`
    /// when only created, `unknown` otherwise.
    pub fn to_model(&self) -> ContainerStatus {
        let t = |ns: i64| (ns != 0).then(|| format_unix_nanos(ns));
        let (status, running) = if self.finished_at != 0 {
            ("exited", false)
        } else if self.started_at != 0 {
            ("running", true)
        } else if self.created_at != 0 {
            ("created", false)
        } else {
            ("unknown", false)
        };
        ContainerStatus {
            status: status.into(),
            running,
            exit_code: (self.finished_at != 0).then_some(self.exit_code),
            pid: (running && self.pid != 0).then_some(self.pid),
            started_at: t(self.started_at),
            finished_at: t(self.finished_at),
        }
    }
}

/// The host root a containerd root belongs to, inside the evidence: the part of `root`
/// before `var/lib/containerd`, `var/lib/rancher/…` or `var/snap/microk8s/…`; for another
/// root, the shortest of its ancestors holding `var/log`; else the evidence root.
pub fn host_root(src: &dyn Source, root: &Path) -> PathBuf {
    let comps: Vec<String> = root
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    const MARKS: [[&str; 3]; 3] = [
        ["var", "lib", "containerd"],
        ["var", "lib", "rancher"],
        ["var", "snap", "microk8s"],
    ];
    for i in 0..comps.len() {
        if MARKS
            .iter()
            .any(|m| comps.len() >= i + 3 && comps[i..i + 3] == m[..])
        {
            return comps[..i].iter().collect();
        }
    }
    for k in 0..comps.len() {
        let p: PathBuf = comps[..k].iter().collect();
        if src.exists(&p.join("var/log")) {
            return p;
        }
    }
    PathBuf::new()
}

/// `target` as the host would resolve it from directory `dir` (both host paths, `dir`
/// relative to the host root), lexically, inside the host root `host`; `None` when a `..`
/// climbs above the host root.
fn in_host(host: &Path, dir: &Path, target: &Path) -> Option<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = if target.has_root() {
        Vec::new()
    } else {
        dir.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .collect()
    };
    for c in target.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_os_string()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    let mut p = host.to_path_buf();
    p.extend(parts);
    Some(p)
}

/// A label value usable as one path component.
fn component(s: &str) -> Option<&str> {
    (!s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')).then_some(s)
}

/// What salvor reads of the CRI's metadata extension of a container or sandbox.
#[derive(Debug, Default, Clone)]
struct CriMeta {
    log_path: Option<String>,
    attempt: Option<u64>,
    pod: Option<(String, String, String)>,
}

/// The CRI metadata extension of record `c`, when it has one; a problem naming meta.db when
/// it does not decode.
fn cri_meta(
    c: &meta::ContainerRecord,
    ns: &str,
    db: &Path,
    problems: &mut Vec<Problem>,
) -> Option<CriMeta> {
    let (key, bytes) = c
        .extensions
        .get_key_value(CONTAINER_META)
        .or_else(|| c.extensions.get_key_value(SANDBOX_META))?;
    let at = format!("v1/{ns}/containers/{}/extensions/{key}", c.id);
    let mut bad = |what: String| {
        problems.push(Problem {
            path: db.to_path_buf(),
            what: format!("{at}: {what}"),
        });
        None
    };
    let Some((_, value)) = crate::decode::protobuf_any(bytes) else {
        return bad("not a protobuf Any".into());
    };
    let v: serde_json::Value = match serde_json::from_slice(value) {
        Ok(v) => v,
        Err(e) => return bad(format!("its value is not JSON: {e}")),
    };
    if v.get("Version").and_then(|x| x.as_str()) != Some("v1") {
        return bad(format!("unsupported metadata version {}", v["Version"]));
    }
    let m = &v["Metadata"];
    let cfg = &m["Config"]["metadata"];
    let s = |x: &serde_json::Value| x.as_str().map(str::to_string);
    Some(CriMeta {
        log_path: s(&m["LogPath"]).filter(|p| !p.is_empty()),
        attempt: cfg["attempt"]
            .as_u64()
            .or(Some(0))
            .filter(|_| cfg.is_object()),
        pod: match (s(&cfg["name"]), s(&cfg["namespace"]), s(&cfg["uid"])) {
            (Some(a), Some(b), Some(c)) if key == SANDBOX_META => Some((a, b, c)),
            _ => None,
        },
    })
}

/// A container's log files: current first, then kubelet's rotations newest first; entries
/// named like one that are not regular files apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogSet {
    pub files: Vec<PathBuf>,
    pub not_regular: Vec<(PathBuf, FileKind)>,
}

/// `YYYYMMDD-HHMMSS`.
fn rotation_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && b[8] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

/// The files of the log whose current file is `current`.
fn log_set(src: &dyn Source, current: &Path, problems: &mut Vec<Problem>) -> LogSet {
    let mut out = LogSet::default();
    let (Some(dir), Some(base)) = (current.parent(), current.file_name()) else {
        return out;
    };
    let Some(base) = base.to_str() else {
        return out;
    };
    let entries = match src.read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return out,
        Err(e) => {
            problems.push(Problem {
                path: dir.to_path_buf(),
                what: salvor_source::error_chain(&e),
            });
            return out;
        }
    };
    // (None: the current file | Some(stamp), name, path)
    let mut found: Vec<(Option<String>, String, PathBuf)> = Vec::new();
    for e in entries {
        let Some(name) = e.name.to_str() else {
            continue;
        };
        let key = if name == base {
            None
        } else {
            match name
                .strip_prefix(base)
                .and_then(|r| r.strip_prefix('.'))
                .map(|r| r.strip_suffix(".gz").unwrap_or(r))
            {
                Some(stamp) if rotation_stamp(stamp) => Some(stamp.to_string()),
                _ => continue,
            }
        };
        let path = dir.join(name);
        if e.kind == FileKind::Regular {
            found.push((key, name.to_string(), path));
        } else {
            problems.push(Problem {
                path: path.clone(),
                what: format!("a log file is a {}, not a regular file: not read", e.kind),
            });
            out.not_regular.push((path, e.kind));
        }
    }
    // Current first, then the rotations newest first.
    found.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => a.1.cmp(&b.1),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(x).then(a.1.cmp(&b.1)),
    });
    out.files = found.into_iter().map(|(_, _, p)| p).collect();
    out
}

/// The CRI's view of a namespace's containers: records with state, names and log files
/// filled in, the problems met, and each container's log entries that are not files.
#[derive(Debug, Default)]
pub(crate) struct CriContainers {
    pub records: Vec<ContainerRecord>,
    pub problems: Vec<Problem>,
    pub not_regular: BTreeMap<String, Vec<(PathBuf, FileKind)>>,
}

/// Fills `records` (parallel to `metas`, the namespace's meta.db containers) from the CRI's
/// files under containerd root `root`.
pub(crate) fn read(
    src: &dyn Source,
    root: &Path,
    ns: &str,
    metas: &[meta::ContainerRecord],
    mut records: Vec<ContainerRecord>,
) -> CriContainers {
    let mut out = CriContainers::default();
    let host = host_root(src, root);
    let db = root.join(META_DB);
    for (c, r) in metas.iter().zip(records.iter_mut()) {
        let kind = c.labels.get(KIND_LABEL).map(String::as_str);
        let cm = cri_meta(c, ns, &db, &mut out.problems);
        if kind.is_none() && cm.is_none() {
            continue; // not a CRI container
        }
        let label = |k: &str| c.labels.get(k).map(String::as_str).and_then(component);
        if kind == Some("sandbox") {
            let pod = cm.as_ref().and_then(|m| m.pod.clone()).or_else(|| {
                Some((
                    label(POD_NAME)?.to_string(),
                    label(POD_NAMESPACE)?.to_string(),
                    label(POD_UID)?.to_string(),
                ))
            });
            if let Some((name, pns, uid)) = pod {
                let attempt = cm.as_ref().and_then(|m| m.attempt).unwrap_or(0);
                r.name = format!("k8s_POD_{name}_{pns}_{uid}_{attempt}");
            }
            continue;
        }
        // State.
        let sp = root
            .join(CRI_DIR)
            .join("containers")
            .join(&c.id)
            .join("status");
        match src
            .read_limited(&sp, MAX_STATUS)
            .map_err(|e| (e.is_not_found(), salvor_source::error_chain(&e)))
            .and_then(|b| parse_status(&b).map_err(|e| (false, e)))
        {
            Ok(s) => r.state = s.to_model(),
            Err((true, _)) => out.problems.push(Problem {
                path: sp,
                what: format!("container {}: no CRI status file", c.id),
            }),
            Err((false, what)) => out.problems.push(Problem { path: sp, what }),
        }
        // Log files.
        let current = current_log(
            src,
            &host,
            &db,
            ns,
            c,
            cm.as_ref(),
            metas,
            &mut out.problems,
        );
        if let Some(cur) = current {
            let set = log_set(src, &cur, &mut out.problems);
            r.log_paths = set.files;
            if !set.not_regular.is_empty() {
                out.not_regular.insert(c.id.clone(), set.not_regular);
            }
        }
    }
    out.problems.sort();
    out.problems.dedup();
    out.records = records;
    out
}

/// The path of container `c`'s current log file in the evidence (it may not exist).
#[allow(clippy::too_many_arguments)]
fn current_log(
    src: &dyn Source,
    host: &Path,
    db: &Path,
    ns: &str,
    c: &meta::ContainerRecord,
    cm: Option<&CriMeta>,
    metas: &[meta::ContainerRecord],
    problems: &mut Vec<Problem>,
) -> Option<PathBuf> {
    let label = |k: &str| c.labels.get(k).map(String::as_str).and_then(component);
    let pods = host.join("var/log/pods");
    // containerd's own record of where it wrote.
    let recorded = cm.and_then(|m| m.log_path.as_deref()).and_then(|p| {
        let mapped = in_host(host, Path::new(""), Path::new(p)).filter(|_| p.starts_with('/'));
        if mapped.is_none() {
            problems.push(Problem {
                path: db.to_path_buf(),
                what: format!(
                    "v1/{ns}/containers/{}/extensions/{CONTAINER_META}: LogPath {p:?} is not an absolute path inside the host",
                    c.id
                ),
            });
        }
        mapped
    });
    // kubelet's symlink.
    let linked = match (label(POD_NAME), label(POD_NAMESPACE), label(CONTAINER_NAME)) {
        (Some(pod), Some(pns), Some(name)) => {
            let dir = Path::new("var/log/containers");
            let link = host
                .join(dir)
                .join(format!("{pod}_{pns}_{name}-{}.log", c.id));
            match src.metadata(&link) {
                Ok(m) if m.kind == FileKind::Symlink => match src.read_link(&link) {
                    Ok(t) => match in_host(host, dir, &t) {
                        Some(p) if p.starts_with(&pods) && p != pods => Some(p),
                        Some(p) => {
                            problems.push(Problem {
                                path: link.clone(),
                                what: format!(
                                    "points to {} ({} in the evidence), outside /var/log/pods: not followed",
                                    t.display(),
                                    p.display()
                                ),
                            });
                            None
                        }
                        None => {
                            problems.push(Problem {
                                path: link.clone(),
                                what: format!(
                                    "points to {}, which leaves the host root: not followed",
                                    t.display()
                                ),
                            });
                            None
                        }
                    },
                    Err(e) => {
                        problems.push(Problem {
                            path: link.clone(),
                            what: salvor_source::error_chain(&e),
                        });
                        None
                    }
                },
                Ok(m) => {
                    problems.push(Problem {
                        path: link.clone(),
                        what: format!("a {}, not a symlink: not read", m.kind),
                    });
                    None
                }
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    problems.push(Problem {
                        path: link.clone(),
                        what: salvor_source::error_chain(&e),
                    });
                    None
                }
            }
        }
        _ => None,
    };
    if let (Some(r), Some(l)) = (&recorded, &linked) {
        if r != l {
            problems.push(Problem {
                path: host.join("var/log/containers"),
                what: format!(
                    "container {}: kubelet's symlink names {}, containerd's record {}",
                    c.id,
                    l.display(),
                    r.display()
                ),
            });
        }
    }
    recorded.or(linked).or_else(|| {
        // The pod's log directory and the attempt by rank.
        let (pod, pns, uid, name) = (
            label(POD_NAME)?,
            label(POD_NAMESPACE)?,
            label(POD_UID)?,
            label(CONTAINER_NAME)?,
        );
        let attempt = cm.and_then(|m| m.attempt).unwrap_or_else(|| rank(c, metas));
        Some(
            pods.join(format!("{pns}_{pod}_{uid}"))
                .join(name)
                .join(format!("{attempt}.log")),
        )
    })
}

/// `c`'s rank by creation among the app containers of its pod with its container name.
fn rank(c: &meta::ContainerRecord, metas: &[meta::ContainerRecord]) -> u64 {
    let key = |m: &meta::ContainerRecord| {
        (
            m.labels.get(POD_UID).cloned(),
            m.labels.get(CONTAINER_NAME).cloned(),
        )
    };
    let created = |m: &meta::ContainerRecord| m.created.map(|t| (t.unix(), t.nanos()));
    let mine = key(c);
    metas
        .iter()
        .filter(|m| m.labels.get(KIND_LABEL).map(String::as_str) != Some("sandbox"))
        .filter(|m| key(m) == mine)
        .filter(|m| (created(m), &m.id) < (created(c), &c.id))
        .count() as u64
}

/// Streams a CRI container's log files, oldest first, as [`LogLine`]s (see the module
/// documentation for the format and how fragments are joined). A malformed line, an
/// unreadable file or a log entry that is not a file is an error item naming the file (and
/// offset); reading goes on.
pub struct CriLogReader {
    source: Arc<dyn Source>,
    files: VecDeque<PathBuf>,
    cur: Option<Open>,
    out: VecDeque<Result<LogLine, ModelError>>,
    /// Fragments waiting for their `F`: stdout, stderr, with the order they began in.
    partial: [Option<(u64, LogLine)>; 2],
    seq: u64,
    done: bool,
}

struct Open {
    path: PathBuf,
    r: Box<dyn BufRead + Send>,
    offset: u64,
}

impl std::fmt::Debug for CriLogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriLogReader")
            .field("files", &self.files)
            .field("current", &self.cur.as_ref().map(|c| &c.path))
            .finish_non_exhaustive()
    }
}

fn invalid(path: &Path, what: String) -> ModelError {
    ModelError::Engine(Box::new(SourceError::invalid(path, what)))
}

/// The first bytes of `b`, printable.
fn preview(b: &[u8]) -> String {
    let cut = &b[..b.len().min(64)];
    let s: String = String::from_utf8_lossy(cut).escape_debug().collect();
    if b.len() > cut.len() {
        format!("\"{s}…\"")
    } else {
        format!("\"{s}\"")
    }
}

/// One CRI log line split: time, stream, partial, message.
fn parse_line(b: &[u8]) -> Result<(Timestamp, LogStream, bool, &[u8]), String> {
    let mut it = b.splitn(4, |&c| c == b' ');
    let ts = it.next().unwrap_or_default();
    let (Some(stream), Some(tag)) = (it.next(), it.next()) else {
        return Err("no stream and tag fields".into());
    };
    let msg = it.next().unwrap_or_default();
    let stream = match stream {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return Err("the second field is not stdout or stderr".into()),
    };
    let partial = match tag.split(|&c| c == b':').next().unwrap_or_default() {
        b"P" => true,
        b"F" => false,
        _ => return Err("the third field is not the tag P or F".into()),
    };
    let t = std::str::from_utf8(ts)
        .ok()
        .and_then(Time::parse)
        .ok_or_else(|| "the first field is not an RFC 3339 time".to_string())?;
    Ok((
        Timestamp {
            sec: t.unix(),
            nsec: t.nanos(),
        },
        stream,
        partial,
        msg,
    ))
}

impl CriLogReader {
    /// A reader of `files` (oldest first) in `source`; each of `not_regular` (log entries
    /// that are not regular files, never opened) is an error item first. Nothing is opened
    /// before the first item is asked for.
    pub fn new(
        source: Arc<dyn Source>,
        files: Vec<PathBuf>,
        not_regular: &[(PathBuf, FileKind)],
    ) -> CriLogReader {
        CriLogReader {
            source,
            files: files.into(),
            cur: None,
            out: not_regular
                .iter()
                .map(|(p, k)| {
                    Err(invalid(
                        p,
                        format!("the log file is a {k}, not a regular file; not read"),
                    ))
                })
                .collect(),
            partial: [None, None],
            seq: 0,
            done: false,
        }
    }

    fn open_next(&mut self) -> bool {
        let Some(path) = self.files.pop_front() else {
            return false;
        };
        match self.source.open(&path) {
            Ok(f) => {
                let r: Box<dyn BufRead + Send> = if path.extension().is_some_and(|x| x == "gz") {
                    Box::new(BufReader::with_capacity(
                        64 << 10,
                        flate2::read::MultiGzDecoder::new(BufReader::new(f)),
                    ))
                } else {
                    Box::new(BufReader::with_capacity(64 << 10, f))
                };
                self.cur = Some(Open { path, r, offset: 0 });
            }
            Err(e) => self.out.push_back(Err(ModelError::Engine(Box::new(e)))),
        }
        true
    }

    /// Reads one physical line of the current file and files what it gives in `out`.
    fn step(&mut self) {
        let Some(cur) = self.cur.as_mut() else {
            return;
        };
        let start = cur.offset;
        let mut buf = Vec::new();
        match read_line(cur, &mut buf) {
            Err(e) => {
                let err = invalid(
                    &cur.path,
                    format!(
                        "offset {}: read error: {}; the rest of the file is not read",
                        cur.offset,
                        salvor_source::error_chain(&e)
                    ),
                );
                self.out.push_back(Err(err));
                self.cur = None;
            }
            Ok(None) => self.cur = None,
            Ok(Some(true)) => {
                let err = invalid(
                    &cur.path,
                    format!(
                        "offset {start}: log line longer than {MAX_CRI_LOG_LINE} bytes; skipped"
                    ),
                );
                self.out.push_back(Err(err));
            }
            Ok(Some(false)) => {
                let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                match parse_line(line) {
                    Err(why) => {
                        let err = invalid(
                            &cur.path,
                            format!(
                                "offset {start}: not a CRI log line ({why}): {}",
                                preview(line)
                            ),
                        );
                        self.out.push_back(Err(err));
                    }
                    Ok((time, stream, partial, msg)) => {
                        let file = cur.path.clone();
                        self.add(time, stream, partial, msg, file, start);
                    }
                }
            }
        }
    }

    fn add(
        &mut self,
        time: Timestamp,
        stream: LogStream,
        partial: bool,
        msg: &[u8],
        file: PathBuf,
        offset: u64,
    ) {
        let slot = match stream {
            LogStream::Stdout => 0,
            LogStream::Stderr => 1,
        };
        let mut entry = match self.partial[slot].take() {
            Some((seq, mut l)) => {
                l.line.extend_from_slice(msg);
                (seq, l)
            }
            None => {
                self.seq += 1;
                (
                    self.seq,
                    LogLine {
                        time: Some(time),
                        stream,
                        line: msg.to_vec(),
                        file,
                        offset,
                    },
                )
            }
        };
        if !partial {
            entry.1.line.push(b'\n');
            self.out.push_back(Ok(entry.1));
        } else if entry.1.line.len() >= MAX_CRI_LOG_LINE {
            self.out.push_back(Ok(entry.1));
        } else {
            self.partial[slot] = Some(entry);
        }
    }
}

/// Reads one `\n`-terminated line, at most [`MAX_CRI_LOG_LINE`] plus a header's bytes
/// kept: `Ok(None)` at EOF, `Ok(Some(too_long))` otherwise.
fn read_line(cur: &mut Open, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    const LIMIT: usize = MAX_CRI_LOG_LINE + 4096;
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
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (n, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !too_long {
            if buf.len() + n > LIMIT {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&avail[..n]);
            }
        }
        cur.r.consume(n);
        cur.offset += n as u64;
        if done {
            return Ok(Some(too_long));
        }
    }
}

impl Iterator for CriLogReader {
    type Item = Result<LogLine, ModelError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.out.pop_front() {
                return Some(x);
            }
            if self.done {
                return None;
            }
            if self.cur.is_some() {
                self.step();
            } else if !self.open_next() {
                // The end: fragments no `F` followed, in the order they began.
                let mut rest: Vec<(u64, LogLine)> =
                    self.partial.iter_mut().filter_map(Option::take).collect();
                rest.sort_by_key(|(s, _)| *s);
                self.out.extend(rest.into_iter().map(|(_, l)| Ok(l)));
                self.done = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_to_state() {
        let s = parse_status(br#"{"Version":"v1","Pid":0,"CreatedAt":1796410535755309702,"StartedAt":1796410536290836112,"FinishedAt":1796410543454295777,"ExitCode":137,"Reason":"","Message":"","Resources":{"linux":{}}}"#).unwrap();
        let m = s.to_model();
        assert_eq!(m.status, "exited");
        assert_eq!(m.exit_code, Some(137));
        assert_eq!(
            m.started_at.as_deref(),
            Some("2026-12-04T18:55:36.290836112Z")
        );
        assert_eq!(
            m.finished_at.as_deref(),
            Some("2026-12-04T18:55:43.454295777Z")
        );
        let r = parse_status(br#"{"Version":"v1","Pid":42,"CreatedAt":1,"StartedAt":1000000000}"#)
            .unwrap()
            .to_model();
        assert_eq!(
            (r.status.as_str(), r.running, r.pid, r.exit_code),
            ("running", true, Some(42), None)
        );
        assert_eq!(r.started_at.as_deref(), Some("1970-01-01T00:00:01Z"));
        let c = parse_status(br#"{"Version":"v1","CreatedAt":5}"#).unwrap();
        assert_eq!(c.to_model().status, "created");
        assert_eq!(
            parse_status(br#"{"Version":"v1"}"#)
                .unwrap()
                .to_model()
                .status,
            "unknown"
        );
        for bad in [
            &b"garbage"[..],
            b"[]",
            br#"{"Version":"v2"}"#,
            br#"{"Pid":1}"#,
            br#"{"Version":"v1","StartedAt":"x"}"#,
            br#"{"Version":"v1","Reason":5}"#,
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_unix_nanos(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format_unix_nanos(1_500_000_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn lines_split() {
        let (t, s, p, m) =
            parse_line(b"2026-12-04T18:55:36.00275112Z stderr F app: to stderr").unwrap();
        assert_eq!((t.sec, t.nsec), (1796410536, 2751120));
        assert_eq!(
            (s, p, m),
            (LogStream::Stderr, false, &b"app: to stderr"[..])
        );
        let (_, _, p, m) = parse_line(b"2026-12-04T18:55:36Z stdout P").unwrap();
        assert_eq!((p, m), (true, &b""[..]));
        let (_, _, p, m) = parse_line(b"2026-12-04T18:55:36Z stdout F:x  two  spaces").unwrap();
        assert_eq!((p, m), (false, &b" two  spaces"[..]));
        for bad in [
            &b""[..],
            b"2026-12-04T18:55:36Z F hello",
            b"2026-12-04T18:55:36Z stdin F hello",
            b"2026-12-04T18:55:36Z stdout X hello",
            b"yesterday stdout F hello",
            b"\xff\xfe stdout F hello",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    fn any(url: &str, value: &str) -> Vec<u8> {
        let mut b = vec![0x0a, url.len() as u8];
        b.extend_from_slice(url.as_bytes());
        b.push(0x12);
        let n = value.len();
        b.extend_from_slice(&[(n as u8 & 0x7f) | 0x80, (n >> 7) as u8]);
        b.extend_from_slice(value.as_bytes());
        b
    }

    fn record(
        id: &str,
        kind: &str,
        name: Option<&str>,
        pod: &str,
        created: i64,
    ) -> meta::ContainerRecord {
        let mut labels = meta::Labels::new();
        labels.insert(KIND_LABEL.into(), kind.into());
        labels.insert(POD_NAME.into(), pod.into());
        labels.insert(POD_NAMESPACE.into(), "shop".into());
        labels.insert(POD_UID.into(), "u1".into());
        if let Some(n) = name {
            labels.insert(CONTAINER_NAME.into(), n.into());
        }
        meta::ContainerRecord {
            id: id.into(),
            image: None,
            snapshotter: None,
            snapshot_key: None,
            sandbox_id: None,
            runtime: None,
            spec: None,
            created: Time::from_unix_utc(created, 0),
            updated: None,
            labels,
            extensions: BTreeMap::new(),
        }
    }

    fn blank(id: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: id.into(),
            image: String::new(),
            created: None,
            state: ContainerStatus {
                status: "unknown".into(),
                ..ContainerStatus::default()
            },
            rw_layer: None,
            config_path: None,
            log_paths: Vec::new(),
            command: None,
            labels: BTreeMap::new(),
        }
    }

    /// Without the CRI's metadata: the attempt from kubelet's symlink, else the rank.
    #[test]
    fn log_files_without_the_cris_metadata() {
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("node");
        let w = |p: &str, b: &[u8]| {
            let p = h.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        };
        let pods = "var/log/pods/shop_web-0_u1";
        let ok = br#"{"Version":"v1","CreatedAt":1,"StartedAt":2,"FinishedAt":3,"ExitCode":1}"#;
        for id in ["a0", "a1", "s", "m", "x"] {
            w(
                &format!("var/lib/containerd/{CRI_DIR}/containers/{id}/status"),
                ok,
            );
        }
        for f in [
            "app/0.log",
            "app/0.log.20250101-000000",
            "app/0.log.20250102-000000.gz",
            "app/0.log.20250102-00000.gz",
            "app/0.log.tmp",
            "app/1.log",
            "side/3.log",
            "side/0.log",
            "m/7.log",
            "m/8.log",
        ] {
            w(&format!("{pods}/{f}"), b"");
        }
        std::fs::create_dir_all(h.join("var/log/containers")).unwrap();
        let link = |name: &str, id: &str, t: &str| {
            std::os::unix::fs::symlink(
                t,
                h.join(format!("var/log/containers/web-0_shop_{name}-{id}.log")),
            )
            .unwrap()
        };
        link("side", "s", &format!("/{pods}/side/3.log"));
        link("app", "a0", "../../../../etc/passwd");
        link("m", "m", "../pods/shop_web-0_u1/m/7.log");
        let src = salvor_source::DirSource::new(&h).unwrap();
        let mut m = record("m", "container", Some("m"), "web-0", 50);
        m.extensions.insert(
            CONTAINER_META.into(),
            any(
                "github.com/containerd/cri/pkg/store/container/Metadata",
                &format!(r#"{{"Version":"v1","Metadata":{{"LogPath":"/{pods}/m/8.log","Config":{{"metadata":{{"name":"m","attempt":8}}}}}}}}"#),
            ),
        );
        let mut bad = record("x", "container", Some("x"), "web-0", 60);
        bad.extensions.insert(CONTAINER_META.into(), vec![0xff]);
        let metas = vec![
            record("a1", "container", Some("app"), "web-0", 20),
            record("a0", "container", Some("app"), "web-0", 10),
            record("s", "container", Some("side"), "web-0", 30),
            record("sb", "sandbox", None, "web-0", 5),
            record("evil", "container", Some("app"), "../../etc", 40),
            m,
            bad,
        ];
        let records = metas.iter().map(|c| blank(&c.id)).collect();
        let out = read(
            &src,
            Path::new("var/lib/containerd"),
            "k8s.io",
            &metas,
            records,
        );
        let by: BTreeMap<&str, &ContainerRecord> =
            out.records.iter().map(|r| (r.id.as_str(), r)).collect();
        let paths = |id: &str| -> Vec<String> {
            by[id]
                .log_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        // a0: its symlink leaves the host, so the rank (first by creation): 0.log and its
        // rotations newest first; names that are not rotations left out.
        assert_eq!(
            paths("a0"),
            [
                format!("{pods}/app/0.log"),
                format!("{pods}/app/0.log.20250102-000000.gz"),
                format!("{pods}/app/0.log.20250101-000000"),
            ]
        );
        assert_eq!(paths("a1"), [format!("{pods}/app/1.log")]);
        assert_eq!(paths("s"), [format!("{pods}/side/3.log")]);
        // containerd's record wins over a symlink that disagrees (said).
        assert_eq!(paths("m"), [format!("{pods}/m/8.log")]);
        assert!(paths("evil").is_empty());
        assert!(paths("sb").is_empty());
        assert_eq!(by["sb"].name, "k8s_POD_web-0_shop_u1_0");
        assert_eq!(by["a0"].state.status, "exited");
        assert_eq!(by["evil"].state.status, "unknown");
        let what: Vec<String> = out
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path.display(), p.what))
            .collect();
        assert!(what.iter().any(|w| w.contains("web-0_shop_app-a0.log: points to ../../../../etc/passwd, which leaves the host root")), "{what:?}");
        assert!(
            what.iter()
                .any(|w| w.contains("container m: kubelet's symlink names")),
            "{what:?}"
        );
        assert!(
            what.iter().any(|w| w.contains(
                "containers/x/extensions/io.cri-containerd.container.metadata: not a protobuf Any"
            )),
            "{what:?}"
        );
        assert!(
            what.iter()
                .any(|w| w.contains("containers/evil/status") && w.contains("no CRI status file")),
            "{what:?}"
        );
        assert_eq!(what.len(), 4, "{what:?}");
        // Host roots.
        for (root, host) in [
            ("var/lib/rancher/k3s/agent/containerd", ""),
            ("n/var/lib/containerd", "n"),
            ("var/snap/microk8s/common/var/lib/containerd", ""),
            ("data/containerd", ""),
        ] {
            assert_eq!(host_root(&src, Path::new(root)), Path::new(host), "{root}");
        }
    }

    #[test]
    fn host_paths() {
        let h = Path::new("host");
        let d = Path::new("var/log/containers");
        assert_eq!(
            in_host(h, d, Path::new("/var/log/pods/a/b/0.log")),
            Some(PathBuf::from("host/var/log/pods/a/b/0.log"))
        );
        assert_eq!(
            in_host(h, d, Path::new("../pods/a/./b/0.log")),
            Some(PathBuf::from("host/var/log/pods/a/b/0.log"))
        );
        assert_eq!(
            in_host(h, d, Path::new("../../../etc/passwd")),
            Some(PathBuf::from("host/etc/passwd"))
        );
        assert_eq!(in_host(h, d, Path::new("../../../../etc/passwd")), None);
        assert_eq!(in_host(h, d, Path::new("/../etc")), None);
        assert!(rotation_stamp("20261204-185537"));
        assert!(!rotation_stamp("20261204185537"));
        assert!(!rotation_stamp("2026120-4185537"));
        assert_eq!(component(".."), None);
        assert_eq!(component("a/b"), None);
        assert_eq!(component("web-0"), Some("web-0"));
    }
}
