//! Containers: `containers/<id>/config.v2.json` + `hostconfig.json` (Docker ≥ 1.10) or the
//! older `containers/<id>/config.json`, and where each container's read-write layer lives.
//!
//! [`Store::containers`] reads every container directory; a file that cannot be read or does
//! not parse becomes a [`Problem`] naming it, and the other containers are still listed.
//! [`Store::find_container`] resolves a name (with or without the leading `/`), a full id or
//! a unique id prefix.
//!
//! The read-write layer ([`RwLayer`]) comes from `image/<driver>/layerdb/mounts/<id>/{mount-id,
//! init-id,parent}`; before 1.10 there is no mounts directory and the driver id of the
//! container layer is the container id itself (`<id>-init` for the init layer).

mod config;
mod rwlayer;

use config::is_container_id;
use rwlayer::image_caches;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salvor_source::{FileKind, Source};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::digest::Digest;
use crate::v2::{is_not_found, is_safe_id, layer_files};
use crate::{read_small, Driver, LayerFiles, Layout, Problem, Store, StoreError};

/// Upper bound on `config.v2.json` / `hostconfig.json` / `config.json` (real ones are a few KiB).
pub const MAX_CONTAINER_CONFIG: u64 = 4 << 20;

/// The state of a container as the engine last recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead` (the
    /// engine's `StateString`).
    pub status: String,
    /// `State.Running`: the container was running when the engine last wrote its state.
    pub running: bool,
    /// `State.Paused`: its processes were frozen (`docker pause`).
    pub paused: bool,
    /// `State.Restarting`: the engine was restarting it under its restart policy.
    pub restarting: bool,
    /// `State.OOMKilled`: its last process was killed for running out of memory.
    pub oom_killed: bool,
    /// `State.Dead`: removal failed and the engine gave up on it.
    pub dead: bool,
    /// `State.RemovalInProgress`: `docker rm` had begun when the state was written.
    pub removal_in_progress: bool,
    /// `State.Pid`: the host process id of its init process (0 when not running).
    pub pid: i64,
    /// `State.ExitCode`: the exit status of its last run (0 if it never exited).
    pub exit_code: i64,
    /// `State.Error`: the engine's last error starting or running it (empty when none).
    pub error: String,
    /// `State.StartedAt`, RFC 3339 as stored (`0001-01-01T00:00:00Z` if never started).
    pub started_at: Option<String>,
    /// `State.FinishedAt`, RFC 3339 as stored (the zero time while it runs or never ran).
    pub finished_at: Option<String>,
    /// Health status (`healthy`, `unhealthy`, `starting`) when a healthcheck ran.
    pub health: Option<String>,
}

/// One mount of a container (`MountPoints` in `config.v2.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MountPoint {
    /// `volume`, `bind`, `tmpfs`, `npipe` (inferred for old configs without `Type`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Volume name (empty for binds).
    pub name: String,
    /// Source on the host as the engine recorded it (a host path, never followed).
    pub source: String,
    /// Path inside the container where it is mounted.
    pub destination: String,
    /// Volume driver (`local`), empty for binds.
    pub driver: String,
    /// Mounted read-write (`false`: read-only).
    pub rw: bool,
    /// `Relabel` (`z`, `Z`) as docker inspect's `Mode`.
    pub mode: String,
    /// Bind propagation (`rprivate`, `rshared` …), empty when not set.
    pub propagation: String,
}

/// A published port (`NetworkSettings.Ports`, only set while a container runs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Port {
    /// Host address the port is published on (`HostIp`; `0.0.0.0` or empty for all).
    pub ip: String,
    /// The port inside the container.
    pub private_port: u16,
    /// The host port it is published on (`HostPort`), `None` when only exposed.
    pub public_port: Option<u16>,
    /// `tcp`, `udp` or `sctp`.
    #[serde(rename = "type")]
    pub proto: String,
}

/// A container's read-write layer and where its files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RwLayer {
    /// The driver id of the container layer (`overlay2/<mount-id>`).
    pub mount_id: String,
    /// The driver id of the init layer (`<mount-id>-init`), when there is one.
    pub init_id: Option<String>,
    /// Chain id of the image's top layer (`layerdb/mounts/<id>/parent`), `None` for an
    /// image without layers or when it could not be read.
    pub parent: Option<String>,
    /// The container layer's own files. For overlay2 / fuse-overlayfs `lowers` holds the init
    /// layer and then the image's layers (the merged view the container saw); aufs: the
    /// `diff/<mount-id>` branch alone; vfs / btrfs / zfs: the full root filesystem.
    pub files: LayerFiles,
    /// The init layer's own files (`/etc/hosts`, `/etc/resolv.conf` placeholders …).
    pub init_files: Option<LayerFiles>,
    /// `image/<driver>/layerdb/mounts/<id>` (absent before 1.10).
    pub meta_dir: Option<PathBuf>,
}

/// One container.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The image as the user gave it (`Config.Image`: `busybox`, `salvor/app:1`, an id …).
    pub image: String,
    /// `sha256:<hex>` of the image config (for pre-1.10 containers: the migrated id, when the
    /// image is in the store; `image_v1_id` keeps the v1 id).
    pub image_id: Option<String>,
    /// The pre-1.10 v1 image id (`Image` of `config.json`), for containers of the legacy layout.
    pub image_v1_id: Option<String>,
    /// `Path`: the executable the container runs (the entrypoint or command's first word).
    pub path: String,
    /// `Args`: the arguments after `path`.
    pub args: Vec<String>,
    /// RFC 3339 as stored.
    pub created: Option<String>,
    /// Its last recorded state (`State`).
    pub state: ContainerState,
    /// `Driver`: the storage driver its read-write layer was created with (`overlay2` …).
    pub driver: String,
    /// `Platform` (`linux`), when recorded.
    pub platform: Option<String>,
    /// `RestartCount`: how often the engine restarted it under its restart policy.
    pub restart_count: i64,
    /// Its mounts (`MountPoints`), sorted by destination.
    pub mounts: Vec<MountPoint>,
    /// `LogPath` as stored (a path on the host).
    pub log_path: Option<String>,
    /// `HostConfig.LogConfig.Type` (`json-file`, `local`, `journald` …; empty = daemon default).
    pub log_driver: Option<String>,
    /// `Config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// Published ports (`NetworkSettings.Ports`), sorted.
    pub ports: Vec<Port>,
    /// Names of the networks it is attached to (`NetworkSettings.Networks`), in stored order.
    pub networks: Vec<String>,
    /// `containers/<id>` relative to the evidence root.
    pub dir: PathBuf,
    /// `config.v2.json` (or `config.json`) relative to the evidence root.
    pub config_path: PathBuf,
    /// `hostconfig.json` relative to the evidence root, when present.
    pub hostconfig_path: Option<PathBuf>,
    /// Read from the pre-1.10 `config.json`.
    pub legacy_config: bool,
    /// Its read-write layer, `None` when it could not be located (a [`Problem`] says why).
    pub rw_layer: Option<RwLayer>,
    /// The data-root the engine used on its host (`/var/lib/docker`), from this container's
    /// stored paths or, for a container that never ran, from the other containers'.
    pub host_data_root: Option<String>,
    /// `config.v2.json` as parsed.
    #[serde(skip)]
    pub config: Value,
    /// `hostconfig.json` as parsed.
    #[serde(skip)]
    pub hostconfig: Option<Value>,
}

impl Container {
    /// The first 12 hex digits of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// The `COMMAND` column of `docker ps` before quoting: `Path` then the arguments, each
    /// argument that contains a space wrapped in single quotes.
    pub fn command(&self) -> String {
        if self.args.is_empty() {
            return self.path.clone();
        }
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            })
            .collect();
        format!("{} {}", self.path, args.join(" "))
    }

    /// The top layer of the image (`RwLayer::parent`).
    pub fn top_chain_id(&self) -> Option<&str> {
        self.rw_layer.as_ref().and_then(|l| l.parent.as_deref())
    }

    /// The data-root as the engine saw it on its host, derived from the stored paths
    /// (`…/containers/<id>/…`), e.g. `/var/lib/docker`.
    pub fn stored_host_data_root(&self) -> Option<String> {
        let marker = format!("/containers/{}/", self.id);
        ["ResolvConfPath", "HostnamePath", "HostsPath", "LogPath"]
            .iter()
            .filter_map(|k| self.config.get(*k).and_then(Value::as_str))
            .find_map(|p| p.find(&marker).map(|i| p[..i].to_string()))
    }

    /// `GraphDriver` as `docker inspect` shows it: for overlay2 / fuse-overlayfs the host
    /// paths of the layer directories (under the data-root the engine used on its host).
    pub fn graph_driver_json(&self, store: &Store) -> Value {
        let name = self.driver.clone();
        let data = match (&self.rw_layer, self.host_data_root.clone()) {
            (Some(rw), Some(host_root))
                if matches!(
                    Driver::from_name(&self.driver),
                    Driver::Overlay2 | Driver::FuseOverlayfs
                ) =>
            {
                let base = format!("{host_root}/{}", self.driver);
                let mut lowers = Vec::new();
                if let Some(init) = &rw.init_id {
                    lowers.push(format!("{base}/{init}/diff"));
                }
                for cache in image_caches(store, rw.parent.as_deref()) {
                    lowers.push(format!("{base}/{cache}/diff"));
                }
                let mut o = Map::new();
                if !lowers.is_empty() {
                    o.insert("LowerDir".into(), json!(lowers.join(":")));
                }
                o.insert(
                    "MergedDir".into(),
                    json!(format!("{base}/{}/merged", rw.mount_id)),
                );
                o.insert(
                    "UpperDir".into(),
                    json!(format!("{base}/{}/diff", rw.mount_id)),
                );
                o.insert(
                    "WorkDir".into(),
                    json!(format!("{base}/{}/work", rw.mount_id)),
                );
                Value::Object(o)
            }
            _ => Value::Null,
        };
        json!({ "Data": data, "Name": name })
    }
}

fn is_zero_time(t: &str) -> bool {
    t.is_empty() || t.starts_with("0001-01-01T00:00:00")
}

/// `NetworkSettings` the way `docker inspect` builds it from the stored settings: the base
/// fields, the default ("bridge") network's endpoint fields, `Ports` as a map and the
/// networks' endpoint settings without the engine-internal `IPAMOperational`.
pub fn network_settings_json(ns: Option<&Value>) -> Value {
    let Some(ns) = ns.filter(|v| v.is_object()) else {
        return Value::Null;
    };
    let g = |k: &str, d: Value| ns.get(k).cloned().unwrap_or(d);
    let networks = ns.get("Networks").and_then(Value::as_object);
    let bridge = networks.and_then(|n| n.get("bridge"));
    let b = |k: &str, d: Value| bridge.and_then(|e| e.get(k)).cloned().unwrap_or(d);
    let ports = match ns.get("Ports") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({}),
    };
    let mut out = Map::new();
    out.insert("Bridge".into(), g("Bridge", json!("")));
    out.insert("SandboxID".into(), g("SandboxID", json!("")));
    out.insert("HairpinMode".into(), g("HairpinMode", json!(false)));
    out.insert(
        "LinkLocalIPv6Address".into(),
        g("LinkLocalIPv6Address", json!("")),
    );
    out.insert(
        "LinkLocalIPv6PrefixLen".into(),
        g("LinkLocalIPv6PrefixLen", json!(0)),
    );
    out.insert("Ports".into(), ports);
    out.insert("SandboxKey".into(), g("SandboxKey", json!("")));
    out.insert(
        "SecondaryIPAddresses".into(),
        g("SecondaryIPAddresses", Value::Null),
    );
    out.insert(
        "SecondaryIPv6Addresses".into(),
        g("SecondaryIPv6Addresses", Value::Null),
    );
    for (k, d) in [
        ("EndpointID", json!("")),
        ("Gateway", json!("")),
        ("GlobalIPv6Address", json!("")),
        ("GlobalIPv6PrefixLen", json!(0)),
        ("IPAddress", json!("")),
        ("IPPrefixLen", json!(0)),
        ("IPv6Gateway", json!("")),
        ("MacAddress", json!("")),
    ] {
        // Pre-1.9 configs keep these at the top level.
        let v = if networks.is_some() { b(k, d) } else { g(k, d) };
        out.insert(k.into(), v);
    }
    let mut nets = Map::new();
    if let Some(n) = networks {
        for (name, ep) in n {
            let mut ep = ep.clone();
            if let Some(o) = ep.as_object_mut() {
                o.remove("IPAMOperational");
            }
            nets.insert(name.clone(), ep);
        }
    }
    out.insert("Networks".into(), Value::Object(nets));
    Value::Object(out)
}

impl Store {
    /// `containers/` of the data-root.
    pub fn containers_dir(&self) -> PathBuf {
        self.path("containers")
    }

    /// Every container of the data-root, newest first (like `docker ps -a`), and what could
    /// not be read. A container whose files are damaged is left out with a [`Problem`]
    /// naming the file; a container whose read-write layer cannot be located is listed with
    /// `rw_layer: None` (or [`LayerFiles::Unavailable`]) and a problem.
    pub fn containers(&self) -> (Vec<Container>, Vec<Problem>) {
        let src = self.source.as_ref();
        let dir = self.containers_dir();
        let mut problems = Vec::new();
        let mut out = Vec::new();
        let entries = match src.read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return (out, problems),
            Err(e) => {
                problems.push(Problem {
                    path: dir,
                    what: salvor_model::error_chain(&e),
                });
                return (out, problems);
            }
        };
        for e in entries {
            let Some(name) = e.name.to_str().map(str::to_string) else {
                problems.push(Problem {
                    path: dir.join(&e.name),
                    what: "container directory whose name is not UTF-8; ignored".into(),
                });
                continue;
            };
            let cdir = dir.join(&name);
            if e.kind != FileKind::Dir {
                continue;
            }
            if !is_container_id(&name) {
                problems.push(Problem {
                    path: cdir,
                    what: "container directory whose name is not a 64-hex container id; ignored"
                        .into(),
                });
                continue;
            }
            match self.load_container(&name, &cdir, &mut problems) {
                Ok(c) => out.push(c),
                Err(e) => problems.push(problem_of(e, &cdir)),
            }
        }
        let hint = out.iter().find_map(Container::stored_host_data_root);
        for c in &mut out {
            c.host_data_root = c.stored_host_data_root().or_else(|| hint.clone());
        }
        out.sort_by(|a, b| {
            let ka = a.created.as_deref().and_then(crate::time::parse_time);
            let kb = b.created.as_deref().and_then(crate::time::parse_time);
            kb.cmp(&ka).then_with(|| a.id.cmp(&b.id))
        });
        problems.sort();
        problems.dedup();
        (out, problems)
    }

    /// Finds a container by name (with or without the leading `/`), full id or unique id
    /// prefix. An ambiguous prefix is an error listing the candidates.
    pub fn find_container(&self, query: &str) -> Result<Container, StoreError> {
        Ok(self.resolve_container(query)?)
    }
}

/// [`Store::find_container`] over an already-read list (the one resolver,
/// [`mod@crate::resolve`], for containers only).
pub fn find_in(all: Vec<Container>, query: &str) -> Result<Container, StoreError> {
    let r = crate::resolve::Resolver {
        images: &[],
        containers: &all,
    }
    .resolve(query, crate::resolve::Want::Container)?;
    match r.target {
        crate::resolve::Target::Container(c) => Ok(*c),
        crate::resolve::Target::Image(_) => Err(StoreError::NotFound(format!(
            "no container matches {:?}",
            query.trim()
        ))),
    }
}

fn problem_of(e: StoreError, fallback: &Path) -> Problem {
    match e {
        StoreError::Invalid { path, reason } => Problem { path, what: reason },
        StoreError::Source(s) => Problem {
            path: fallback.to_path_buf(),
            what: salvor_model::error_chain(&s),
        },
        other => Problem {
            path: fallback.to_path_buf(),
            what: salvor_model::error_chain(&other),
        },
    }
}
