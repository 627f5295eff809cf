//! A snapshotter's own metadata (`io.containerd.snapshotter.v1.overlayfs/metadata.db`,
//! stores.md §1.5): backend key → numeric id, kind and parent, which names the directory
//! `snapshots/<id>/fs` holding the snapshot's files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use salvor_bbolt::{Db, EntryKind};
use salvor_oci::Time;

use crate::decode::{go_time, uvarint, varint};
use crate::meta::{MetaError, Problem};

/// What a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: a read-only view.
    View,
    /// 2: active (writable: a container's read-write layer, a layer being unpacked).
    Active,
    /// 3: committed (an image layer, an init layer).
    Committed,
    /// Anything else, as stored.
    Unknown(u8),
}

impl Kind {
    fn from_byte(b: u8) -> Kind {
        match b {
            1 => Kind::View,
            2 => Kind::Active,
            3 => Kind::Committed,
            other => Kind::Unknown(other),
        }
    }
    /// As `ctr snapshots ls` prints it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::View => "View",
            Kind::Active => "Active",
            Kind::Committed => "Committed",
            Kind::Unknown(_) => "Unknown",
        }
    }
}

/// `v1/snapshots/<backend key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSnapshot {
    /// `<namespace>/<seq>/<key>` (meta.db's snapshot `name`).
    pub name: String,
    /// `id`: the directory `snapshots/<id>`.
    pub id: Option<u64>,
    /// `kind`.
    pub kind: Option<Kind>,
    /// `parent`: the parent's backend key.
    pub parent: Option<String>,
    /// `inodes` (committed snapshots only).
    pub inodes: Option<i64>,
    /// `size` in bytes (committed snapshots only).
    pub size: Option<i64>,
    /// `createdat`.
    pub created: Option<Time>,
    /// `updatedat`.
    pub updated: Option<Time>,
}

/// A snapshotter's metadata.db as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotterDb {
    /// Snapshots by backend key.
    pub snapshots: BTreeMap<String, BackendSnapshot>,
    /// The sequence of `v1/snapshots`: the highest id handed out.
    pub sequence: u64,
    /// What could not be read.
    pub problems: Vec<Problem>,
}

impl SnapshotterDb {
    /// Reads the snapshotter's metadata.db from its bytes; `file` names it.
    pub fn read(bytes: Vec<u8>, file: impl Into<PathBuf>) -> Result<SnapshotterDb, MetaError> {
        let file = file.into();
        let db = Db::open(bytes, file.clone())?;
        let root = db.root();
        let v1 = root
            .bucket(b"v1")?
            .ok_or_else(|| MetaError::NotMeta(file.clone()))?;
        let mut out = SnapshotterDb::default();
        let problem = |out: &mut SnapshotterDb, at: String, what: String| {
            out.problems.push(Problem {
                file: file.clone(),
                at,
                what,
            })
        };
        let Some(snaps) = v1.bucket(b"snapshots")? else {
            return Ok(out);
        };
        out.sequence = snaps.sequence();
        for e in snaps.iter() {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    problem(&mut out, "v1/snapshots".into(), err.to_string());
                    break;
                }
            };
            let name = String::from_utf8_lossy(e.key()).into_owned();
            let at = format!("v1/snapshots/{name}");
            let Some(b) = e.into_bucket() else {
                problem(&mut out, at, "a value where a bucket was expected".into());
                continue;
            };
            let mut vals: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for e in b.iter() {
                match e {
                    Ok(e) => {
                        if let EntryKind::Value(v) = e.kind() {
                            vals.insert(e.key().to_vec(), v.to_vec());
                        }
                    }
                    Err(err) => {
                        problem(&mut out, at.clone(), err.to_string());
                        break;
                    }
                }
            }
            let mut bad: Vec<&str> = Vec::new();
            let raw = |k: &str| vals.get(k.as_bytes()).map(Vec::as_slice);
            let mut decoded = |k: &'static str, ok: bool| {
                if !ok {
                    bad.push(k);
                }
            };
            let id = raw("id").and_then(|v| {
                let n = uvarint(v);
                decoded("id", n.is_some());
                n
            });
            let kind = raw("kind").and_then(|v| {
                let k = match v {
                    [b] => Some(Kind::from_byte(*b)),
                    _ => None,
                };
                decoded("kind", k.is_some());
                k
            });
            let inodes = raw("inodes").and_then(|v| {
                let n = varint(v);
                decoded("inodes", n.is_some());
                n
            });
            let size = raw("size").and_then(|v| {
                let n = varint(v);
                decoded("size", n.is_some());
                n
            });
            let created = raw("createdat").and_then(|v| {
                let t = go_time(v);
                decoded("createdat", t.is_some());
                t
            });
            let updated = raw("updatedat").and_then(|v| {
                let t = go_time(v);
                decoded("updatedat", t.is_some());
                t
            });
            for k in bad {
                problem(&mut out, format!("{at}/{k}"), "does not decode".into());
            }
            if id.is_none() {
                problem(
                    &mut out,
                    at.clone(),
                    "no id: its directory is unknown".into(),
                );
            }
            out.snapshots.insert(
                name.clone(),
                BackendSnapshot {
                    parent: vals
                        .get(b"parent".as_slice())
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .filter(|p| !p.is_empty()),
                    name,
                    id,
                    kind,
                    inodes,
                    size,
                    created,
                    updated,
                },
            );
        }
        Ok(out)
    }

    /// The directory of a snapshot's files, relative to the snapshotter's root
    /// (`snapshots/<id>/fs`).
    pub fn fs_dir(&self, backend_name: &str) -> Option<PathBuf> {
        let id = self.snapshots.get(backend_name)?.id?;
        Some(PathBuf::from(format!("snapshots/{id}/fs")))
    }
}
