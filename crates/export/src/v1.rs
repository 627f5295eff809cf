//! Legacy v1 image JSON (`image.V1Image`) and v1 ids (`v1.CreateID`).
//!
//! The engine decodes the image config into its Go `Image` struct (which embeds
//! `V1Image`), and re-marshals only the `V1Image` part. This module emulates that
//! decode/encode round trip for the fields the engine knows, in Go's field
//! order with Go's `omitempty` rules, so that v1 ids and `<v1id>/json` files
//! are byte-identical to the engine's.

use crate::gojson::{self, Obj};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Which engine's `V1Image` struct to emulate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flavor {
    /// Engine <= 24: `Created time.Time` (missing → `0001-01-01T00:00:00Z`),
    /// `HealthConfig` without `StartInterval`.
    Legacy,
    /// Engine >= 25: `Created *time.Time` (missing → `null`).
    Modern,
}

/// A Go `time.Time` as decoded from RFC 3339 text; re-encoded with
/// `RFC3339Nano` (trailing fractional zeros trimmed, offset preserved, `Z` for
/// offset 0): `salvor_oci::Time`, parsed strictly.
pub(crate) use salvor_oci::Time as GoTime;

#[derive(Default, Clone, Debug)]
struct Health {
    test: Option<Vec<String>>,
    interval: i64,
    timeout: i64,
    start_period: i64,
    start_interval: i64,
    retries: i64,
}

/// `container.Config` as decoded by Go.
#[derive(Default, Clone, Debug)]
struct ContainerConfig {
    hostname: String,
    domainname: String,
    user: String,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    exposed_ports: Option<Vec<String>>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    healthcheck: Option<Health>,
    args_escaped: bool,
    image: String,
    volumes: Option<Vec<String>>,
    working_dir: String,
    entrypoint: Option<Vec<String>>,
    network_disabled: bool,
    mac_address: String,
    on_build: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    stop_signal: String,
    stop_timeout: Option<i64>,
    shell: Option<Vec<String>>,
}

/// `image.V1Image` as decoded by Go from an image config.
#[derive(Default, Clone, Debug)]
pub(crate) struct V1Image {
    pub(crate) id: String,
    pub(crate) parent: String,
    comment: String,
    created: Option<GoTime>,
    container: String,
    container_config: ContainerConfig,
    docker_version: String,
    author: String,
    config: Option<ContainerConfig>,
    architecture: String,
    variant: String,
    pub(crate) os: String,
    size: i64,
}

type R<T> = Result<T, String>;

/// Go matches JSON keys to struct fields exactly or case-insensitively.
fn field<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .find(|n| **n == key)
        .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(key)))
        .copied()
}

fn d_string(k: &str, v: &Value, dst: &mut String) -> R<()> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => {
            *dst = s.clone();
            Ok(())
        }
        _ => Err(format!("{k}: expected a string")),
    }
}
fn d_bool(k: &str, v: &Value, dst: &mut bool) -> R<()> {
    match v {
        Value::Null => Ok(()),
        Value::Bool(b) => {
            *dst = *b;
            Ok(())
        }
        _ => Err(format!("{k}: expected a boolean")),
    }
}
fn d_int(k: &str, v: &Value, dst: &mut i64) -> R<()> {
    match v {
        Value::Null => Ok(()),
        Value::Number(n) => {
            *dst = n
                .as_i64()
                .ok_or_else(|| format!("{k}: expected an integer"))?;
            Ok(())
        }
        _ => Err(format!("{k}: expected an integer")),
    }
}
fn d_strings(k: &str, v: &Value, dst: &mut Option<Vec<String>>) -> R<()> {
    match v {
        Value::Null => {
            *dst = None;
            Ok(())
        }
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for x in a {
                match x {
                    Value::String(s) => out.push(s.clone()),
                    // null elements decode to "" in Go
                    Value::Null => out.push(String::new()),
                    _ => return Err(format!("{k}: expected an array of strings")),
                }
            }
            *dst = Some(out);
            Ok(())
        }
        _ => Err(format!("{k}: expected an array of strings")),
    }
}
/// `strslice.StrSlice`: an array of strings or a single string.
fn d_strslice(k: &str, v: &Value, dst: &mut Option<Vec<String>>) -> R<()> {
    match v {
        Value::String(s) => {
            *dst = Some(vec![s.clone()]);
            Ok(())
        }
        _ => d_strings(k, v, dst),
    }
}
/// `map[string]struct{}` (values must be objects; their content is dropped).
fn d_set(k: &str, v: &Value, dst: &mut Option<Vec<String>>) -> R<()> {
    match v {
        Value::Null => {
            *dst = None;
            Ok(())
        }
        Value::Object(o) => {
            let mut set: Vec<String> = dst.take().unwrap_or_default();
            for (key, val) in o {
                if !matches!(val, Value::Object(_) | Value::Null) {
                    return Err(format!("{k}: expected objects as values"));
                }
                set.push(key.clone());
            }
            set.sort();
            set.dedup();
            *dst = Some(set);
            Ok(())
        }
        _ => Err(format!("{k}: expected an object")),
    }
}
fn d_labels(k: &str, v: &Value, dst: &mut Option<BTreeMap<String, String>>) -> R<()> {
    match v {
        Value::Null => {
            *dst = None;
            Ok(())
        }
        Value::Object(o) => {
            let mut m = dst.take().unwrap_or_default();
            for (key, val) in o {
                match val {
                    Value::String(s) => {
                        m.insert(key.clone(), s.clone());
                    }
                    Value::Null => {
                        m.insert(key.clone(), String::new());
                    }
                    _ => return Err(format!("{k}: expected string values")),
                }
            }
            *dst = Some(m);
            Ok(())
        }
        _ => Err(format!("{k}: expected an object")),
    }
}

fn obj<'v>(k: &str, v: &'v Value) -> R<Option<&'v Map<String, Value>>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => Ok(Some(o)),
        _ => Err(format!("{k}: expected an object")),
    }
}

fn decode_health(o: &Map<String, Value>, h: &mut Health) -> R<()> {
    const N: &[&str] = &[
        "Test",
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ];
    for (k, v) in o {
        match field(k, N) {
            Some("Test") => d_strings(k, v, &mut h.test)?,
            Some("Interval") => d_int(k, v, &mut h.interval)?,
            Some("Timeout") => d_int(k, v, &mut h.timeout)?,
            Some("StartPeriod") => d_int(k, v, &mut h.start_period)?,
            Some("StartInterval") => d_int(k, v, &mut h.start_interval)?,
            Some("Retries") => d_int(k, v, &mut h.retries)?,
            _ => {}
        }
    }
    Ok(())
}

fn decode_config(o: &Map<String, Value>, c: &mut ContainerConfig) -> R<()> {
    const N: &[&str] = &[
        "Hostname",
        "Domainname",
        "User",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "ExposedPorts",
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "Env",
        "Cmd",
        "Healthcheck",
        "ArgsEscaped",
        "Image",
        "Volumes",
        "WorkingDir",
        "Entrypoint",
        "NetworkDisabled",
        "MacAddress",
        "OnBuild",
        "Labels",
        "StopSignal",
        "StopTimeout",
        "Shell",
    ];
    for (k, v) in o {
        match field(k, N) {
            Some("Hostname") => d_string(k, v, &mut c.hostname)?,
            Some("Domainname") => d_string(k, v, &mut c.domainname)?,
            Some("User") => d_string(k, v, &mut c.user)?,
            Some("AttachStdin") => d_bool(k, v, &mut c.attach_stdin)?,
            Some("AttachStdout") => d_bool(k, v, &mut c.attach_stdout)?,
            Some("AttachStderr") => d_bool(k, v, &mut c.attach_stderr)?,
            Some("ExposedPorts") => d_set(k, v, &mut c.exposed_ports)?,
            Some("Tty") => d_bool(k, v, &mut c.tty)?,
            Some("OpenStdin") => d_bool(k, v, &mut c.open_stdin)?,
            Some("StdinOnce") => d_bool(k, v, &mut c.stdin_once)?,
            Some("Env") => d_strings(k, v, &mut c.env)?,
            Some("Cmd") => d_strslice(k, v, &mut c.cmd)?,
            Some("Healthcheck") => match obj(k, v)? {
                None => c.healthcheck = None,
                Some(o) => {
                    let mut h = c.healthcheck.take().unwrap_or_default();
                    decode_health(o, &mut h)?;
                    c.healthcheck = Some(h);
                }
            },
            Some("ArgsEscaped") => d_bool(k, v, &mut c.args_escaped)?,
            Some("Image") => d_string(k, v, &mut c.image)?,
            Some("Volumes") => d_set(k, v, &mut c.volumes)?,
            Some("WorkingDir") => d_string(k, v, &mut c.working_dir)?,
            Some("Entrypoint") => d_strslice(k, v, &mut c.entrypoint)?,
            Some("NetworkDisabled") => d_bool(k, v, &mut c.network_disabled)?,
            Some("MacAddress") => d_string(k, v, &mut c.mac_address)?,
            Some("OnBuild") => d_strings(k, v, &mut c.on_build)?,
            Some("Labels") => d_labels(k, v, &mut c.labels)?,
            Some("StopSignal") => d_string(k, v, &mut c.stop_signal)?,
            Some("StopTimeout") => match v {
                Value::Null => c.stop_timeout = None,
                _ => {
                    let mut t = 0;
                    d_int(k, v, &mut t)?;
                    c.stop_timeout = Some(t);
                }
            },
            Some("Shell") => d_strslice(k, v, &mut c.shell)?,
            _ => {}
        }
    }
    Ok(())
}

impl V1Image {
    /// A non-top layer's v1 image: only `Created` = Unix epoch (UTC).
    pub(crate) fn epoch() -> Self {
        V1Image {
            created: Some(GoTime::EPOCH),
            ..Default::default()
        }
    }

    /// Decode the `V1Image` part of an image config the way Go does.
    pub(crate) fn from_config(config: &Value) -> R<Self> {
        let o = config
            .as_object()
            .ok_or_else(|| "image config is not a JSON object".to_string())?;
        const N: &[&str] = &[
            "id",
            "parent",
            "comment",
            "created",
            "container",
            "container_config",
            "docker_version",
            "author",
            "config",
            "architecture",
            "variant",
            "os",
            "Size",
        ];
        let mut img = V1Image::default();
        for (k, v) in o {
            match field(k, N) {
                Some("id") => d_string(k, v, &mut img.id)?,
                // `Image.Parent` shadows `V1Image.Parent`: never lands here.
                Some("parent") => {}
                Some("comment") => d_string(k, v, &mut img.comment)?,
                Some("created") => match v {
                    Value::Null => {}
                    Value::String(s) => {
                        img.created = Some(
                            GoTime::parse(s).ok_or_else(|| format!("created: bad time {s:?}"))?,
                        )
                    }
                    _ => return Err("created: expected a string".into()),
                },
                Some("container") => d_string(k, v, &mut img.container)?,
                Some("container_config") => {
                    if let Some(o) = obj(k, v)? {
                        decode_config(o, &mut img.container_config)?;
                    }
                }
                Some("docker_version") => d_string(k, v, &mut img.docker_version)?,
                Some("author") => d_string(k, v, &mut img.author)?,
                Some("config") => match obj(k, v)? {
                    None => img.config = None,
                    Some(o) => {
                        let mut c = img.config.take().unwrap_or_default();
                        decode_config(o, &mut c)?;
                        img.config = Some(c);
                    }
                },
                Some("architecture") => d_string(k, v, &mut img.architecture)?,
                Some("variant") => d_string(k, v, &mut img.variant)?,
                Some("os") => d_string(k, v, &mut img.os)?,
                Some("Size") => d_int(k, v, &mut img.size)?,
                _ => {}
            }
        }
        Ok(img)
    }

    /// The created time (if any) as Unix seconds.
    pub(crate) fn created_unix(&self) -> Option<i64> {
        self.created.as_ref().map(GoTime::unix)
    }

    /// Members in Go field order, each as (json key, encoded value).
    fn members(&self, flavor: Flavor) -> Vec<(&'static str, String)> {
        let mut m: Vec<(&'static str, String)> = Vec::new();
        let oe = |m: &mut Vec<(&'static str, String)>, k: &'static str, v: &str| {
            if !v.is_empty() {
                m.push((k, gojson::quote(v)));
            }
        };
        oe(&mut m, "id", &self.id);
        oe(&mut m, "parent", &self.parent);
        oe(&mut m, "comment", &self.comment);
        let created = match (&self.created, flavor) {
            (Some(t), _) => gojson::quote(&t.format()),
            (None, Flavor::Legacy) => gojson::quote(&GoTime::ZERO.format()),
            (None, Flavor::Modern) => "null".to_string(),
        };
        m.push(("created", created));
        oe(&mut m, "container", &self.container);
        m.push((
            "container_config",
            encode_config(&self.container_config, flavor),
        ));
        oe(&mut m, "docker_version", &self.docker_version);
        oe(&mut m, "author", &self.author);
        if let Some(c) = &self.config {
            m.push(("config", encode_config(c, flavor)));
        }
        oe(&mut m, "architecture", &self.architecture);
        oe(&mut m, "variant", &self.variant);
        oe(&mut m, "os", &self.os);
        if self.size != 0 {
            m.push(("Size", self.size.to_string()));
        }
        m
    }

    /// `json.Marshal(v1Image)`.
    pub(crate) fn marshal(&self, flavor: Flavor) -> String {
        let mut o = Obj::new();
        for (k, v) in self.members(flavor) {
            o.raw(k, &v);
        }
        o.finish()
    }
}

fn encode_set(v: &Option<Vec<String>>) -> String {
    match v {
        None => "null".into(),
        Some(keys) => {
            let m: BTreeMap<String, String> =
                keys.iter().map(|k| (k.clone(), "{}".to_string())).collect();
            gojson::map_raw(&m)
        }
    }
}

fn encode_config(c: &ContainerConfig, flavor: Flavor) -> String {
    let b = |x: bool| if x { "true" } else { "false" };
    let mut o = Obj::new();
    o.str("Hostname", &c.hostname)
        .str("Domainname", &c.domainname)
        .str("User", &c.user)
        .raw("AttachStdin", b(c.attach_stdin))
        .raw("AttachStdout", b(c.attach_stdout))
        .raw("AttachStderr", b(c.attach_stderr));
    if c.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
        o.raw("ExposedPorts", &encode_set(&c.exposed_ports));
    }
    o.raw("Tty", b(c.tty))
        .raw("OpenStdin", b(c.open_stdin))
        .raw("StdinOnce", b(c.stdin_once))
        .raw("Env", &gojson::str_slice(c.env.as_deref()))
        .raw("Cmd", &gojson::str_slice(c.cmd.as_deref()));
    if let Some(h) = &c.healthcheck {
        let mut ho = Obj::new();
        if h.test.as_ref().is_some_and(|t| !t.is_empty()) {
            ho.raw("Test", &gojson::str_slice(h.test.as_deref()));
        }
        let mut dur = |k: &str, v: i64| {
            if v != 0 {
                ho.raw(k, &v.to_string());
            }
        };
        dur("Interval", h.interval);
        dur("Timeout", h.timeout);
        dur("StartPeriod", h.start_period);
        if flavor == Flavor::Modern {
            dur("StartInterval", h.start_interval);
        }
        dur("Retries", h.retries);
        o.raw("Healthcheck", &ho.finish());
    }
    if c.args_escaped {
        o.raw("ArgsEscaped", "true");
    }
    o.str("Image", &c.image)
        .raw("Volumes", &encode_set(&c.volumes))
        .str("WorkingDir", &c.working_dir)
        .raw("Entrypoint", &gojson::str_slice(c.entrypoint.as_deref()));
    if c.network_disabled {
        o.raw("NetworkDisabled", "true");
    }
    o.str_oe("MacAddress", &c.mac_address)
        .raw("OnBuild", &gojson::str_slice(c.on_build.as_deref()));
    let labels = match &c.labels {
        None => "null".to_string(),
        Some(l) => {
            let m: BTreeMap<String, String> = l
                .iter()
                .map(|(k, v)| (k.clone(), gojson::quote(v)))
                .collect();
            gojson::map_raw(&m)
        }
    };
    o.raw("Labels", &labels)
        .str_oe("StopSignal", &c.stop_signal);
    if let Some(t) = c.stop_timeout {
        o.raw("StopTimeout", &t.to_string());
    }
    if c.shell.as_ref().is_some_and(|s| !s.is_empty()) {
        o.raw("Shell", &gojson::str_slice(c.shell.as_deref()));
    }
    o.finish()
}

/// `v1.CreateID(v1Image, layerID, parent)`: returns the hex v1 id.
pub(crate) fn create_id(
    img: &V1Image,
    flavor: Flavor,
    chain_id: &str,
    parent_hex: Option<&str>,
) -> String {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut clean = img.clone();
    clean.id.clear();
    for (k, v) in clean.members(flavor) {
        m.insert(k.to_string(), v);
    }
    m.insert("layer_id".into(), gojson::quote(chain_id));
    if let Some(p) = parent_hex {
        m.insert("parent".into(), gojson::quote(&format!("sha256:{p}")));
    }
    hex::encode(Sha256::digest(gojson::map_raw(&m).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn time_roundtrip() {
        for (i, o) in [
            (
                "2026-11-22T08:06:41.078074696Z",
                "2026-11-22T08:06:41.078074696Z",
            ),
            ("2026-11-22T08:06:41.080Z", "2026-11-22T08:06:41.08Z"),
            ("2026-11-22T08:06:41.000Z", "2026-11-22T08:06:41Z"),
            ("2026-11-22T08:06:41+00:00", "2026-11-22T08:06:41Z"),
            ("2026-11-22T08:06:41.5-05:30", "2026-11-22T08:06:41.5-05:30"),
        ] {
            assert_eq!(GoTime::parse(i).map(|t| t.format()).as_deref(), Some(o));
        }
        assert_eq!(GoTime::EPOCH.unix(), 0);
        assert_eq!(
            GoTime::parse("2000-03-01T01:00:00+01:00").map(|t| t.unix()),
            Some(951868800)
        );
        assert!(GoTime::parse("yesterday").is_none());
    }
}
