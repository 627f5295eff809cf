//! One container's configuration: `config.v2.json` + `hostconfig.json` (or the pre-1.10
//! `config.json`) read into a [`Container`], type errors collected as [`Problem`]s.

use super::*;

impl Store {
    pub(super) fn load_container(
        &self,
        id: &str,
        cdir: &Path,
        problems: &mut Vec<Problem>,
    ) -> Result<Container, StoreError> {
        let src = self.source.as_ref();
        let v2_path = cdir.join("config.v2.json");
        let v1_path = cdir.join("config.json");
        let (config_path, legacy_config) = if src.exists(&v2_path) {
            (v2_path, false)
        } else if src.exists(&v1_path) {
            (v1_path, true)
        } else {
            return Err(StoreError::invalid(
                cdir,
                "neither config.v2.json nor config.json: not a readable container",
            ));
        };
        let cfg = read_object(src, &config_path)?;
        let mut f = Fields {
            path: &config_path,
            problems: Vec::new(),
        };
        let stored_id = f.str(&cfg, "/ID");
        if let Some(sid) = &stored_id {
            if sid != id {
                f.problems.push(Problem {
                    path: config_path.clone(),
                    what: format!(
                        "ID {sid:?} is not the directory name; the directory name is used"
                    ),
                });
            }
        }
        for key in ["State", "Config", "NetworkSettings"] {
            if let Some(v) = cfg.get(key).filter(|v| !v.is_object() && !v.is_null()) {
                f.bad(&format!("/{key}"), v, "an object");
            }
        }
        let started_at = f.str(&cfg, "/State/StartedAt");
        let finished_at = f.str(&cfg, "/State/FinishedAt");
        let health = match cfg.pointer("/State/Health") {
            Some(h @ Value::Object(_)) => f.str(h, "/Status"),
            _ => None,
        };
        let mut state = ContainerState {
            status: String::new(),
            running: f.bool(&cfg, "/State/Running"),
            paused: f.bool(&cfg, "/State/Paused"),
            restarting: f.bool(&cfg, "/State/Restarting"),
            oom_killed: f.bool(&cfg, "/State/OOMKilled"),
            dead: f.bool(&cfg, "/State/Dead"),
            removal_in_progress: f.bool(&cfg, "/State/RemovalInProgress"),
            pid: f.int(&cfg, "/State/Pid"),
            exit_code: f.int(&cfg, "/State/ExitCode"),
            error: f.str(&cfg, "/State/Error").unwrap_or_default(),
            started_at,
            finished_at,
            health,
        };
        state.status = status_of(&state);
        let name = f
            .str(&cfg, "/Name")
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let image = f.str(&cfg, "/Config/Image").unwrap_or_default();
        let raw_image = f.str(&cfg, "/Image");
        let path = f.str(&cfg, "/Path").unwrap_or_default();
        let args = f.strings(&cfg, "/Args");
        let created = f.str(&cfg, "/Created");
        let driver = f
            .str(&cfg, "/Driver")
            .unwrap_or_else(|| self.driver.name().to_string());
        let platform = f.str(&cfg, "/OS").or_else(|| f.str(&cfg, "/Platform"));
        let restart_count = f.int(&cfg, "/RestartCount");
        let log_path = f.str(&cfg, "/LogPath").filter(|s| !s.is_empty());
        let mut labels = BTreeMap::new();
        match cfg.pointer("/Config/Labels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            labels.insert(k.clone(), s.clone());
                        }
                        other => f.bad("/Config/Labels", other, "an object of strings"),
                    }
                }
            }
            Some(v) => f.bad("/Config/Labels", v, "an object"),
        }
        let mounts = mounts_of(&cfg, &mut f);
        let ports = ports_of(&cfg, &mut f);
        let networks: Vec<String> = match cfg.pointer("/NetworkSettings/Networks") {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        problems.append(&mut f.problems);

        // hostconfig.json.
        let hc_path = cdir.join("hostconfig.json");
        let hostconfig = match read_object(src, &hc_path) {
            Ok(v) => Some(v),
            Err(e) if is_not_found(&e) => None,
            Err(e) => {
                problems.push(problem_of(e, &hc_path));
                None
            }
        };
        let log_driver = hostconfig
            .as_ref()
            .and_then(|h| h.pointer("/LogConfig/Type"))
            .and_then(Value::as_str)
            .map(str::to_string);

        // Image id.
        let (image_id, image_v1_id) = match raw_image.as_deref() {
            Some(s) if s.starts_with("sha256:") => {
                (Digest::parse(s).ok().map(|d| d.as_str().to_string()), None)
            }
            Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
                if self.layout == Layout::V2 && !legacy_config {
                    (
                        Digest::parse_loose(s).ok().map(|d| d.as_str().to_string()),
                        None,
                    )
                } else {
                    (self.image_of_v1(s), Some(s.to_string()))
                }
            }
            Some(other) if !other.is_empty() => {
                problems.push(Problem {
                    path: config_path.clone(),
                    what: format!("Image {other:?} is not an image id"),
                });
                (None, None)
            }
            _ => (None, None),
        };

        let rw_layer = self.rw_layer_of(id, &driver, image_v1_id.as_deref(), problems);

        Ok(Container {
            id: id.to_string(),
            name,
            image,
            image_id,
            image_v1_id,
            path,
            args,
            created,
            state,
            driver,
            platform,
            restart_count,
            mounts,
            log_path,
            log_driver,
            labels,
            ports,
            networks,
            dir: cdir.to_path_buf(),
            config_path,
            hostconfig_path: hostconfig.as_ref().map(|_| hc_path),
            legacy_config,
            rw_layer,
            host_data_root: None,
            config: cfg,
            hostconfig,
        })
    }
}

/// The engine's `StateString`.
pub(super) fn status_of(st: &ContainerState) -> String {
    if st.running {
        if st.paused {
            return "paused".into();
        }
        if st.restarting {
            return "restarting".into();
        }
        return "running".into();
    }
    if st.removal_in_progress {
        return "removing".into();
    }
    if st.dead {
        return "dead".into();
    }
    if st.started_at.as_deref().map(is_zero_time).unwrap_or(true) {
        return "created".into();
    }
    "exited".into()
}

/// Collects type errors in one config file.
pub(super) struct Fields<'a> {
    path: &'a Path,
    problems: Vec<Problem>,
}

impl Fields<'_> {
    fn bad(&mut self, what: &str, v: &Value, want: &str) {
        self.problems.push(Problem {
            path: self.path.to_path_buf(),
            what: format!("field {what} is {}, expected {want}; ignored", kind_of(v)),
        });
    }
    fn str(&mut self, obj: &Value, ptr: &str) -> Option<String> {
        match obj.pointer(ptr) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.bad(ptr, v, "a string");
                None
            }
        }
    }
    fn bool(&mut self, obj: &Value, ptr: &str) -> bool {
        match obj.pointer(ptr) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.bad(ptr, v, "a boolean");
                false
            }
        }
    }
    fn int(&mut self, obj: &Value, ptr: &str) -> i64 {
        match obj.pointer(ptr) {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(0),
            Some(v) => {
                self.bad(ptr, v, "an integer");
                0
            }
        }
    }
    fn strings(&mut self, obj: &Value, ptr: &str) -> Vec<String> {
        match obj.pointer(ptr) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for v in a {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => self.bad(ptr, other, "an array of strings"),
                    }
                }
                out
            }
            Some(v) => {
                self.bad(ptr, v, "an array of strings");
                Vec::new()
            }
        }
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads and parses a JSON object with the container-config size bound.
pub(super) fn read_object(source: &dyn Source, path: &Path) -> Result<Value, StoreError> {
    let bytes = source
        .read_limited(path, MAX_CONTAINER_CONFIG)
        .map_err(|e| match e {
            e if e.is_not_found() => StoreError::Source(e),
            e => {
                let msg = salvor_model::error_chain(&e);
                let prefix = format!("{}: ", path.display());
                StoreError::invalid(path, msg.strip_prefix(&prefix).unwrap_or(&msg).to_string())
            }
        })?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::invalid(path, format!("not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(StoreError::invalid(
            path,
            format!("is {}, expected a JSON object", kind_of(&v)),
        ));
    }
    Ok(v)
}

pub(super) fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn mounts_of(cfg: &Value, f: &mut Fields<'_>) -> Vec<MountPoint> {
    let mut out = Vec::new();
    match cfg.get("MountPoints") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (dest, mp) in m {
                if !mp.is_object() {
                    f.bad("/MountPoints/*", mp, "an object");
                    continue;
                }
                let name = f.str(mp, "/Name").unwrap_or_default();
                let driver = f.str(mp, "/Driver").unwrap_or_default();
                let kind = f.str(mp, "/Type").unwrap_or_else(|| {
                    if name.is_empty() {
                        "bind".into()
                    } else {
                        "volume".into()
                    }
                });
                out.push(MountPoint {
                    kind,
                    name,
                    source: f.str(mp, "/Source").unwrap_or_default(),
                    destination: f.str(mp, "/Destination").unwrap_or_else(|| dest.clone()),
                    driver,
                    rw: f.bool(mp, "/RW"),
                    mode: f.str(mp, "/Relabel").unwrap_or_default(),
                    propagation: f.str(mp, "/Propagation").unwrap_or_default(),
                });
            }
        }
        Some(v) => f.bad("/MountPoints", v, "an object"),
    }
    // Pre-1.8 configs: "Volumes": {dest: host path}, "VolumesRW": {dest: bool}.
    if out.is_empty() {
        if let Some(Value::Object(vols)) = cfg.get("Volumes") {
            for (dest, src) in vols {
                let Some(src) = src.as_str() else { continue };
                out.push(MountPoint {
                    kind: if src.contains("/vfs/dir/") || src.contains("/volumes/") {
                        "volume".into()
                    } else {
                        "bind".into()
                    },
                    name: String::new(),
                    source: src.to_string(),
                    destination: dest.clone(),
                    driver: String::new(),
                    rw: cfg
                        .pointer(&format!(
                            "/VolumesRW/{}",
                            dest.replace('~', "~0").replace('/', "~1")
                        ))
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                    mode: String::new(),
                    propagation: String::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.destination.cmp(&b.destination));
    out
}

pub(super) fn ports_of(cfg: &Value, f: &mut Fields<'_>) -> Vec<Port> {
    let mut out = Vec::new();
    let Some(ports) = cfg.pointer("/NetworkSettings/Ports") else {
        return out;
    };
    let Some(map) = ports.as_object() else {
        if !ports.is_null() {
            f.bad("/NetworkSettings/Ports", ports, "an object");
        }
        return out;
    };
    for (key, bindings) in map {
        let (num, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(private_port) = num.parse::<u16>() else {
            continue;
        };
        let list = bindings.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            out.push(Port {
                ip: String::new(),
                private_port,
                public_port: None,
                proto: proto.to_string(),
            });
        }
        for b in list {
            out.push(Port {
                ip: b
                    .get("HostIp")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                private_port,
                public_port: b
                    .get("HostPort")
                    .and_then(Value::as_str)
                    .and_then(|p| p.parse().ok()),
                proto: proto.to_string(),
            });
        }
    }
    out.sort();
    out
}
