//! Volumes: `volumes/<name>/_data` of the `local` driver, which containers mount them, and
//! the containers' bind mounts (host paths, reported and never followed).
//!
//! `volumes/metadata.db` (bbolt: driver names, labels, options of named volumes) is not
//! parsed; volumes are listed from the directories, so labels and options are unknown
//! (`None`). A 64-hex-digit name is reported as anonymous.

use std::path::PathBuf;

use salvor_source::FileKind;
use serde::Serialize;

use crate::containers::Container;
use crate::time::format_rfc3339_seconds;
use crate::{Problem, Store};

/// A container that mounts a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeUser {
    /// The container's id (64 hex digits).
    pub container_id: String,
    /// The container's name, without the leading `/`.
    pub container_name: String,
    /// Where the volume is mounted in the container.
    pub destination: String,
    /// Mounted read-write (`false`: read-only).
    pub rw: bool,
}

/// One volume of the `local` driver.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// The volume's name (`volumes/<name>`; 64 hex digits for an anonymous volume).
    pub name: String,
    /// Its driver (`local`).
    pub driver: String,
    /// Its scope (`local`).
    pub scope: String,
    /// `<host data-root>/volumes/<name>/_data`, as `docker volume inspect` shows it (the host
    /// data-root is taken from the containers' stored paths; `/var/lib/docker` if unknown).
    pub mountpoint: String,
    /// Where the data is in the evidence (`None` when `_data` is missing).
    pub data: Option<PathBuf>,
    /// `_data`'s ctime (what the engine reports), else its mtime, RFC 3339 in UTC.
    pub created_at: Option<String>,
    /// The name is a 64-hex-digit id: an anonymous volume.
    pub anonymous: bool,
    /// Labels and options live in `metadata.db`, which is not parsed.
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// The containers that mount it, as recorded in their `MountPoints`.
    pub used_by: Vec<VolumeUser>,
}

/// One bind mount of a container (a host path).
#[derive(Debug, Clone, Serialize)]
pub struct BindMount {
    /// The container's id (64 hex digits).
    pub container_id: String,
    /// The container's name, without the leading `/`.
    pub container_name: String,
    /// The host path as stored; never followed.
    pub source: String,
    /// Where it is mounted in the container.
    pub destination: String,
    /// Mounted read-write (`false`: read-only).
    pub rw: bool,
    /// Where that host path is in the evidence, when the evidence holds the host's root
    /// directory (or the path is under the data-root) and the path exists there (`lstat`,
    /// symlinks not followed).
    pub in_evidence: Option<PathBuf>,
    /// `true`: inside the evidence; `false`: outside it (only the path is known).
    pub inside_evidence: bool,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    /// The data-root path the engine used on its host, from the containers' stored paths.
    pub fn host_data_root(&self, containers: &[Container]) -> Option<String> {
        containers.iter().find_map(|c| c.host_data_root.clone())
    }

    /// Every volume directory under `volumes/`, with the containers that mount it.
    pub fn volumes(&self, containers: &[Container]) -> (Vec<Volume>, Vec<Problem>) {
        let src = self.source.as_ref();
        let dir = self.path("volumes");
        let mut problems = Vec::new();
        let mut out = Vec::new();
        let host_root = self
            .host_data_root(containers)
            .unwrap_or_else(|| "/var/lib/docker".to_string());
        let entries = match src.read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => Vec::new(),
            Err(e) => {
                problems.push(Problem {
                    path: dir.clone(),
                    what: salvor_model::error_chain(&e),
                });
                Vec::new()
            }
        };
        for e in entries {
            if e.kind != FileKind::Dir {
                continue;
            }
            let Some(name) = e.name.to_str().map(str::to_string) else {
                problems.push(Problem {
                    path: dir.join(&e.name),
                    what: "volume directory whose name is not UTF-8; ignored".into(),
                });
                continue;
            };
            let data_path = dir.join(&name).join("_data");
            let md = src.metadata(&data_path).ok().filter(|m| m.is_dir());
            if md.is_none() {
                problems.push(Problem {
                    path: data_path.clone(),
                    what:
                        "volume without a _data directory (not a local volume, or its data is gone)"
                            .into(),
                });
            }
            let created_at = md.as_ref().map(|m| {
                let t = if m.ctime.sec != 0 { m.ctime } else { m.mtime };
                format_rfc3339_seconds(t)
            });
            let used_by = containers
                .iter()
                .flat_map(|c| {
                    c.mounts
                        .iter()
                        .filter(|m| m.kind == "volume" && m.name == name)
                        .map(|m| VolumeUser {
                            container_id: c.id.clone(),
                            container_name: c.name.clone(),
                            destination: m.destination.clone(),
                            rw: m.rw,
                        })
                })
                .collect();
            out.push(Volume {
                mountpoint: format!("{host_root}/volumes/{name}/_data"),
                anonymous: is_hex64(&name),
                name,
                driver: "local".into(),
                scope: "local".into(),
                data: md.map(|_| data_path),
                created_at,
                labels: None,
                used_by,
            });
        }
        // Volumes named in containers but without a directory (another driver, or removed).
        for c in containers {
            for m in &c.mounts {
                if m.kind == "volume"
                    && !m.name.is_empty()
                    && m.driver != "local"
                    && !out.iter().any(|v| v.name == m.name)
                {
                    out.push(Volume {
                        name: m.name.clone(),
                        driver: m.driver.clone(),
                        scope: "local".into(),
                        mountpoint: m.source.clone(),
                        data: None,
                        created_at: None,
                        anonymous: is_hex64(&m.name),
                        labels: None,
                        used_by: containers
                            .iter()
                            .flat_map(|c2| {
                                c2.mounts
                                    .iter()
                                    .filter(|m2| m2.kind == "volume" && m2.name == m.name)
                                    .map(|m2| VolumeUser {
                                        container_id: c2.id.clone(),
                                        container_name: c2.name.clone(),
                                        destination: m2.destination.clone(),
                                        rw: m2.rw,
                                    })
                            })
                            .collect(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        (out, problems)
    }

    /// True when the evidence holds the host's root directory (the data-root sits at the
    /// same path inside the evidence as on the host).
    pub fn evidence_is_host_root(&self, containers: &[Container]) -> bool {
        let rel = self.root.to_string_lossy().trim_matches('/').to_string();
        if rel.is_empty() {
            return false;
        }
        match self.host_data_root(containers) {
            Some(h) => h.trim_matches('/') == rel,
            None => rel == "var/lib/docker",
        }
    }

    /// Where a host path of the dead host is inside the evidence, if it is and exists there.
    /// Never follows a symlink (`lstat` on each component through the [`salvor_source::Source`]).
    pub fn host_path_in_evidence(
        &self,
        host_path: &str,
        containers: &[Container],
    ) -> Option<PathBuf> {
        if !host_path.starts_with('/') || host_path.split('/').any(|c| c == "..") {
            return None;
        }
        let rel = if let Some(rest) = self
            .host_data_root(containers)
            .and_then(|h| host_path.strip_prefix(&format!("{h}/")).map(str::to_string))
        {
            self.root.join(rest)
        } else if self.evidence_is_host_root(containers) {
            PathBuf::from(host_path.trim_start_matches('/'))
        } else {
            return None;
        };
        self.source.exists(&rel).then_some(rel)
    }

    /// Every bind mount of every container.
    pub fn bind_mounts(&self, containers: &[Container]) -> Vec<BindMount> {
        let mut out = Vec::new();
        for c in containers {
            for m in c.mounts.iter().filter(|m| m.kind == "bind") {
                let in_evidence = self.host_path_in_evidence(&m.source, containers);
                out.push(BindMount {
                    container_id: c.id.clone(),
                    container_name: c.name.clone(),
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    rw: m.rw,
                    inside_evidence: in_evidence.is_some(),
                    in_evidence,
                });
            }
        }
        out
    }
}
