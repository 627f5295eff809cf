//! What `docker inspect` prints, rendered from the model: a container's and an image's.

use salvor_docker::containers::network_settings_json;
use salvor_docker::{Container, Image, LayerFiles, Store};
use serde_json::{json, Map, Value};

/// Docker's zero time, for times a container never had.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What `docker inspect CONTAINER` prints for container `this` (one element of the array),
/// for everything that can be derived offline. Fields that exist only in the running
/// engine (`ExecIDs`, sizes) are `null` or left out.
pub fn container(store: &Store, this: &Container) -> Value {
    let c = &this.config;
    let get = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let st = &this.state;
    let mut state = json!({
        "Status": st.status,
        "Running": st.running,
        "Paused": st.paused,
        "Restarting": st.restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.dead,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "FinishedAt": st.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
    });
    if let (Some(h), Some(obj)) = (c.pointer("/State/Health"), state.as_object_mut()) {
        if !h.is_null() {
            obj.insert("Health".into(), h.clone());
        }
    }
    let mounts: Vec<Value> = this
        .mounts
        .iter()
        .map(|m| {
            let mut o = Map::new();
            o.insert("Type".into(), json!(m.kind));
            if !m.name.is_empty() {
                o.insert("Name".into(), json!(m.name));
            }
            o.insert("Source".into(), json!(m.source));
            o.insert("Destination".into(), json!(m.destination));
            if !m.driver.is_empty() {
                o.insert("Driver".into(), json!(m.driver));
            }
            o.insert("Mode".into(), json!(m.mode));
            o.insert("RW".into(), json!(m.rw));
            o.insert("Propagation".into(), json!(m.propagation));
            Value::Object(o)
        })
        .collect();
    let image = this.image_id.clone().unwrap_or_else(|| s("Image"));
    let platform = this.platform.clone().unwrap_or_default();
    // The engine stores `DesiredMacAddress` (Docker >= 25) but does not return it.
    let mut ns = network_settings_json(c.get("NetworkSettings"));
    if let Some(nets) = ns.get_mut("Networks").and_then(Value::as_object_mut) {
        for n in nets.values_mut() {
            if let Some(o) = n.as_object_mut() {
                o.remove("DesiredMacAddress");
            }
        }
    }
    json!({
        "Id": this.id,
        "Created": s("Created"),
        "Path": this.path,
        "Args": this.args,
        "State": state,
        "Image": image,
        "ResolvConfPath": s("ResolvConfPath"),
        "HostnamePath": s("HostnamePath"),
        "HostsPath": s("HostsPath"),
        "LogPath": s("LogPath"),
        "Name": c.get("Name").cloned().unwrap_or_else(|| json!(format!("/{}", this.name))),
        "RestartCount": this.restart_count,
        "Driver": this.driver,
        "Platform": platform,
        "MountLabel": s("MountLabel"),
        "ProcessLabel": s("ProcessLabel"),
        "AppArmorProfile": s("AppArmorProfile"),
        "ExecIDs": Value::Null,
        "HostConfig": this.hostconfig.clone().unwrap_or(Value::Null),
        "GraphDriver": this.graph_driver_json(store),
        "Mounts": mounts,
        "Config": get("Config"),
        "NetworkSettings": ns,
        "Salvor": {
            "ConfigPath": format!("/{}", this.config_path.display()),
            "RwLayer": this.rw_layer,
            "ImageV1Id": this.image_v1_id,
        },
    })
}

/// What `docker image inspect IMAGE` prints for `img` (one element of the array), plus a
/// `Salvor` block (where the config came from, chain ids).
pub fn image(store: &Store, img: &Image) -> Value {
    let cfg = img.config_json().unwrap_or(Value::Null);
    let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
    let s = |k: &str| {
        cfg.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    // As the engine's inspect: the config's comment, else the last history entry's.
    let mut comment = s("comment");
    if comment.is_empty() {
        if let Some(c) = cfg
            .get("history")
            .and_then(|h| h.as_array())
            .and_then(|h| h.last())
            .and_then(|h| h.get("comment"))
            .and_then(|c| c.as_str())
        {
            comment = c.to_string();
        }
    }
    let graph_driver = match store
        .image_layers(img)
        .ok()
        .and_then(|ls| ls.last().map(|l| l.files.clone()))
    {
        Some(LayerFiles::Overlay { diff, lowers }) => json!({
            "Data": {
                "LowerDir": if lowers.is_empty() { Value::Null } else {
                    Value::String(lowers.iter().map(|p| format!("/{}", p.display())).collect::<Vec<_>>().join(":"))
                },
                "UpperDir": format!("/{}", diff.display()),
            },
            "Name": store.driver.name(),
        }),
        Some(other) => json!({ "Data": other, "Name": store.driver.name() }),
        None => json!({ "Data": null, "Name": store.driver.name() }),
    };
    let mut v = json!({
        "Id": img.id,
        "RepoTags": img.repo_tags,
        "RepoDigests": img.repo_digests,
        "Parent": img.parent.clone().unwrap_or_default(),
        "Comment": comment,
        "Created": s("created"),
        "Container": s("container"),
        "ContainerConfig": get("container_config"),
        "DockerVersion": s("docker_version"),
        "Author": s("author"),
        "Config": get("config"),
        "Architecture": s("architecture"),
        "Variant": cfg.get("variant").cloned(),
        "Os": s("os"),
        "Size": img.size,
        "VirtualSize": img.size,
        "GraphDriver": graph_driver,
        "RootFS": { "Type": "layers", "Layers": img.diff_ids },
        "Metadata": { "LastTagTime": img.last_updated.unwrap_or(salvor_oci::Time::ZERO).format() },
        "Salvor": {
            "ConfigSynthesised": img.synthesised,
            "ConfigPath": img.config_path.as_ref().map(|p| format!("/{}", p.display())),
            "ConfigError": img.config_error,
            "ChainIDs": img.chain_ids,
        },
    });
    // What Docker >= 25 (API 1.44/1.45) no longer returns.
    let modern = store
        .engine_version
        .as_ref()
        .and_then(|e| e.at_least(25, 0))
        == Some(true);
    if let Some(o) = v.as_object_mut().filter(|_| modern) {
        for k in ["Container", "ContainerConfig", "VirtualSize"] {
            o.remove(k);
        }
    }
    v
}
