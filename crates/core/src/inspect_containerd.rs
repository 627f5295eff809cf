//! `docker image inspect` and `docker history` of an image of Docker's containerd image
//! store (Docker ≥ 24 with `containerd-snapshotter`), rendered offline from a
//! [`ContainerdStore`] as Docker 26.1 answers them (API 1.45).
//!
//! Docker's containerd image service builds both answers from containerd's records, not
//! from files of its own, and this module follows it step by step:
//!
//! * **Id**: the image's target digest (manifest or index). **RepoTags**/**RepoDigests**:
//!   every meta.db image record with that target, in name order, except Docker's
//!   `moby-dangling@<digest>` placeholders and names that are not canonical references; a
//!   tagged name gives its familiar form to RepoTags and `<repository>@<target>` to
//!   RepoDigests (one per tag, so two tags of a repository repeat the same digest, as
//!   docker prints it), a digested name goes to RepoDigests as it is.
//! * **Parent**: the records' `org.mobyproject.image.parent` label (the classic builder's;
//!   `""` when none, or when two records disagree, where Docker fails to determine it).
//! * **Comment**: the last history entry's (Docker's containerd store never reads a
//!   top-level comment). **Created**: the config's, as Go writes it back (RFC 3339, trailing
//!   zeros of the fraction trimmed, the offset kept).
//! * **DockerVersion**: the *daemon's* version (`dockerversion.Version`), not anything
//!   stored with the image: it is not in the evidence of a data-root alone, so [`image`]
//!   takes it from the store's engine version when that is exact, and
//!   [`image_with_version`] lets the caller name it (`--engine-version`, the host's
//!   package database); unknown, it is `""`.
//! * **Config**: the image config's `config` converted to Docker's `container.Config` as
//!   the engine converts it: the fields the image config cannot hold (`Hostname`,
//!   `AttachStdin`, `Image` …) at their zero values, `null` for absent lists and maps, map
//!   keys sorted (Go's encoder), `ExposedPorts`, `Healthcheck`, `ArgsEscaped`,
//!   `StopSignal`, `Shell` only when set.
//! * **Architecture**, **Variant** (only when set), **Os** (`linux` when the config has
//!   none, the daemon's own OS), **OsVersion** (only when set): the config's platform.
//! * **Size**: the content blobs' sizes added up ([`ContainerStore::image_size`]).
//! * **GraphDriver**: `{Data: null, Name: <snapshotter>}`. **RootFS**: the config's type
//!   and diff_ids. **Metadata.LastTagTime**: the latest `updatedat` of the records naming
//!   the target (dangling placeholders included), the Unix epoch when none is later.
//! * Left out as Docker 26 leaves them out for API ≥ 1.44/1.45: `Container`,
//!   `ContainerConfig`, `VirtualSize`.
//!
//! `docker history`: one row per config history entry, newest first; a non-empty entry's
//! size is the snapshotter's recorded usage of the committed snapshot of its layer (the
//! chain id), the rest 0; the ID column follows the classic builder's parent labels from
//! the image record: the newest row is the image's id, each row below it the id of the
//! image the previous one names as its parent, `<missing>` from the first image without a
//! parent label (or whose parent is not in the namespace) on. Docker 26 looks at nothing
//! else: it does not compare the parents' histories.
//!
//! Times are rendered in UTC (docker renders the history's `CreatedAt` in the client's
//! zone, and `LastTagTime` as containerd recorded it, UTC).

use salvor_containerd::ContainerdStore;
use salvor_model::ContainerStore;
use salvor_oci::{Reference, Time};
use serde_json::{Map, Value};

use anyhow::{anyhow, bail, Context};

/// The classic builder's label naming an image's parent image (a target digest).
pub const PARENT_LABEL: &str = "org.mobyproject.image.parent";

/// The name Docker's containerd store gives an image record that keeps an untagged image.
fn is_dangling(name: &str, target: &str) -> bool {
    name.strip_prefix("moby-dangling@") == Some(target)
}

/// A reference as `reference.ParseNamed` accepts it: parsed and already canonical
/// (`docker.io/library/busybox:1`, not `busybox:1`).
fn parse_named(name: &str) -> Option<Reference> {
    let r = Reference::parse(name).ok()?;
    let mut canonical = r.name();
    if let Some(t) = &r.tag {
        canonical.push(':');
        canonical.push_str(t);
    }
    if let Some(d) = &r.digest {
        canonical.push('@');
        canonical.push_str(d.as_str());
    }
    (canonical == name).then_some(r)
}

/// The meta.db image records whose target is `id`, in name order; an error naming `id`
/// when there is none.
fn records<'a>(
    store: &'a ContainerdStore,
    id: &str,
) -> anyhow::Result<Vec<&'a salvor_containerd::ImageRecord>> {
    let ns = store.namespace();
    let recs: Vec<_> = ns
        .images
        .iter()
        .filter(|r| r.target.digest.as_deref() == Some(id))
        .collect();
    if recs.is_empty() {
        bail!(
            "no image {id} in containerd namespace {} of {}",
            ns.name,
            store.located().root.display()
        );
    }
    Ok(recs)
}

/// The image config of `id`, parsed; errors name the image.
fn config(store: &ContainerdStore, id: &str) -> anyhow::Result<Value> {
    let bytes = store
        .config_bytes(id)
        .map_err(|e| anyhow!("image {id}: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("image {id}: its config is not JSON"))?;
    if !v.is_object() {
        bail!("image {id}: its config is not a JSON object");
    }
    Ok(v)
}

/// The value of field `name` of `obj` as Go's decoder finds it: the last key equal to
/// `name` ignoring ASCII case.
fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn text(obj: &Value, name: &str) -> String {
    field(obj, name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A `[]string`: `null` when absent or not a list.
fn strings(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Array(a)) => Value::Array(
            a.iter()
                .filter(|x| x.is_string())
                .cloned()
                .collect::<Vec<_>>(),
        ),
        _ => Value::Null,
    }
}

/// A Go map written back: keys sorted, values through `value`; `null` when absent.
fn sorted_map(v: Option<&Value>, value: impl Fn(&Value) -> Option<Value>) -> Value {
    match v {
        Some(Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(x) = m.get(k).and_then(&value) {
                    out.insert(k.clone(), x);
                }
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

/// `map[string]struct{}` (Volumes, ExposedPorts).
fn set_map(v: Option<&Value>) -> Value {
    sorted_map(v, |_| Some(Value::Object(Map::new())))
}

/// `map[string]string` (Labels).
fn string_map(v: Option<&Value>) -> Value {
    sorted_map(v, |x| x.as_str().map(|s| Value::String(s.into())))
}

/// Docker's `HealthConfig` from the image config's `Healthcheck`: every field omitted when
/// zero.
fn healthcheck(h: &Value) -> Value {
    let mut o = Map::new();
    if let Value::Array(t) = strings(field(h, "Test")) {
        if !t.is_empty() {
            o.insert("Test".into(), Value::Array(t));
        }
    }
    for k in [
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        if let Some(n) = field(h, k).and_then(Value::as_i64).filter(|n| *n != 0) {
            o.insert(k.into(), n.into());
        }
    }
    Value::Object(o)
}

/// The image config's `config` as Docker's `container.Config` prints it
/// (`dockerOCIImageConfigToContainerConfig`).
fn container_config(c: Option<&Value>) -> Value {
    let null = Value::Null;
    let c = c.unwrap_or(&null);
    let mut o = Map::new();
    o.insert("Hostname".into(), "".into());
    o.insert("Domainname".into(), "".into());
    o.insert("User".into(), text(c, "User").into());
    o.insert("AttachStdin".into(), false.into());
    o.insert("AttachStdout".into(), false.into());
    o.insert("AttachStderr".into(), false.into());
    if let Value::Object(p) = set_map(field(c, "ExposedPorts")) {
        if !p.is_empty() {
            o.insert("ExposedPorts".into(), Value::Object(p));
        }
    }
    o.insert("Tty".into(), false.into());
    o.insert("OpenStdin".into(), false.into());
    o.insert("StdinOnce".into(), false.into());
    o.insert("Env".into(), strings(field(c, "Env")));
    o.insert("Cmd".into(), strings(field(c, "Cmd")));
    if let Some(h) = field(c, "Healthcheck").filter(|h| h.is_object()) {
        o.insert("Healthcheck".into(), healthcheck(h));
    }
    if field(c, "ArgsEscaped").and_then(Value::as_bool) == Some(true) {
        o.insert("ArgsEscaped".into(), true.into());
    }
    o.insert("Image".into(), "".into());
    o.insert("Volumes".into(), set_map(field(c, "Volumes")));
    o.insert("WorkingDir".into(), text(c, "WorkingDir").into());
    o.insert("Entrypoint".into(), strings(field(c, "Entrypoint")));
    o.insert("OnBuild".into(), strings(field(c, "OnBuild")));
    o.insert("Labels".into(), string_map(field(c, "Labels")));
    let stop = text(c, "StopSignal");
    if !stop.is_empty() {
        o.insert("StopSignal".into(), stop.into());
    }
    if let Value::Array(s) = strings(field(c, "Shell")) {
        if !s.is_empty() {
            o.insert("Shell".into(), Value::Array(s));
        }
    }
    Value::Object(o)
}

/// A config time as Go reads and writes it back (`RFC3339Nano`); text Go would not read is
/// kept as it is.
fn go_time(s: &str) -> String {
    Time::parse(s)
        .map(|t| t.format())
        .unwrap_or_else(|| s.into())
}

/// `docker image inspect ID` (one element of the array) as Docker 26.1 with the
/// containerd image store prints it, `DockerVersion` from the store's engine version when
/// it is exact (else `""`); see [`image_with_version`] and the module docs for each field.
/// `id` is the image id (the target digest, `sha256:…`); an image the namespace does not
/// hold, or whose config cannot be read, is an error naming it.
pub fn image(store: &ContainerdStore, id: &str) -> anyhow::Result<Value> {
    let v = store
        .engine_version()
        .filter(|v| v.bound == salvor_model::VersionBound::Exact)
        .map(|v| v.version);
    image_with_version(store, id, v.as_deref())
}

/// [`image`] with `DockerVersion` given: the version of the daemon that would answer,
/// which Docker prints for every image (`None`: `""`).
pub fn image_with_version(
    store: &ContainerdStore,
    id: &str,
    docker_version: Option<&str>,
) -> anyhow::Result<Value> {
    let recs = records(store, id)?;
    let cfg = config(store, id)?;

    // References, as GetImage collects them and the API sorts them into tags and digests.
    let mut repo_tags = Vec::new();
    let mut repo_digests = Vec::new();
    for r in &recs {
        if is_dangling(&r.name, id) {
            continue;
        }
        let Some(named) = parse_named(&r.name) else {
            continue;
        };
        if named.tag.is_some() {
            repo_tags.push(Value::String(named.familiar()));
        } else if named.digest.is_some() {
            repo_digests.push(Value::String(named.familiar()));
        }
        if named.digest.is_none() {
            repo_digests.push(Value::String(format!("{}@{id}", named.familiar_name())));
        }
    }

    // Parent: the label's value across the records; disagreeing values leave it unset.
    let mut parent = String::new();
    let mut conflict = false;
    for v in recs.iter().filter_map(|r| r.labels.get(PARENT_LABEL)) {
        if !parent.is_empty() && parent != *v {
            conflict = true;
            break;
        }
        parent = v.clone();
    }
    if conflict {
        parent.clear();
    }

    // LastTagTime: the latest `updatedat`, from the Unix epoch.
    let mut last = Time::EPOCH;
    for t in recs.iter().filter_map(|r| r.updated) {
        if (t.unix(), t.nanos()) > (last.unix(), last.nanos()) {
            last = t;
        }
    }

    let history = field(&cfg, "history").and_then(Value::as_array);
    let comment = history
        .and_then(|h| h.last())
        .map(|h| text(h, "comment"))
        .unwrap_or_default();
    let created = field(&cfg, "created")
        .and_then(Value::as_str)
        .map(go_time)
        .unwrap_or_default();
    let os = Some(text(&cfg, "os"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "linux".into());
    let rootfs = field(&cfg, "rootfs").cloned().unwrap_or(Value::Null);
    let size = store
        .image_size(id)
        .ok_or_else(|| anyhow!("image {id}: its size is unknown (its manifest does not read)"))?;

    let mut o = Map::new();
    o.insert("Id".into(), id.into());
    o.insert("RepoTags".into(), Value::Array(repo_tags));
    o.insert("RepoDigests".into(), Value::Array(repo_digests));
    o.insert("Parent".into(), parent.into());
    o.insert("Comment".into(), comment.into());
    o.insert("Created".into(), created.into());
    o.insert(
        "DockerVersion".into(),
        docker_version.unwrap_or_default().into(),
    );
    o.insert("Author".into(), text(&cfg, "author").into());
    o.insert("Config".into(), container_config(field(&cfg, "config")));
    o.insert("Architecture".into(), text(&cfg, "architecture").into());
    let variant = text(&cfg, "variant");
    if !variant.is_empty() {
        o.insert("Variant".into(), variant.into());
    }
    o.insert("Os".into(), os.into());
    let os_version = text(&cfg, "os.version");
    if !os_version.is_empty() {
        o.insert("OsVersion".into(), os_version.into());
    }
    o.insert("Size".into(), size.into());
    let mut gd = Map::new();
    gd.insert("Data".into(), Value::Null);
    gd.insert("Name".into(), store.snapshotter().into());
    o.insert("GraphDriver".into(), Value::Object(gd));
    let mut rf = Map::new();
    let kind = text(&rootfs, "type");
    if !kind.is_empty() {
        rf.insert("Type".into(), kind.into());
    }
    if let Value::Array(l) = strings(field(&rootfs, "diff_ids")) {
        if !l.is_empty() {
            rf.insert("Layers".into(), Value::Array(l));
        }
    }
    o.insert("RootFS".into(), Value::Object(rf));
    let mut md = Map::new();
    md.insert("LastTagTime".into(), last.format().into());
    o.insert("Metadata".into(), Value::Object(md));
    Ok(Value::Object(o))
}

/// One row of `docker history` of an image of Docker's containerd store, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image id the row shows: the image's on the newest row, then up the parent
    /// labels; `None` for `<missing>` ([`HistoryRow::id_shown`]).
    pub id: Option<String>,
    /// The entry's `created`, when it has one Go reads.
    pub created: Option<Time>,
    /// The entry's `created_by`.
    pub created_by: String,
    /// The entry's `author` (not a column of docker's; the API does not return it).
    pub author: String,
    /// The entry's `comment`.
    pub comment: String,
    /// The entry's `empty_layer`.
    pub empty_layer: bool,
    /// 0 for an empty layer; else the snapshotter's recorded disk usage of the layer's
    /// committed snapshot, `None` when the snapshot or its recorded size is missing (the
    /// engine would fail the whole command there).
    pub size: Option<u64>,
    /// The familiar names of the row's image (the API's `Tags`; not a CLI column).
    pub tags: Vec<String>,
}

impl HistoryRow {
    /// The ID column: the full id, or `<missing>`.
    pub fn id_shown(&self) -> &str {
        self.id.as_deref().unwrap_or("<missing>")
    }

    /// The API's `Created`: Unix seconds, 0 when the entry has no time.
    pub fn created_unix(&self) -> i64 {
        self.created.map(|t| t.unix()).unwrap_or(0)
    }

    /// `docker history --format json`'s `CreatedAt`: RFC 3339 at second precision, here in
    /// UTC (docker uses the client's time zone).
    pub fn created_at(&self) -> String {
        salvor_oci::time::format_utc_seconds(self.created_unix())
    }

    /// The SIZE column (`12.3kB`), `?` when unknown.
    pub fn size_shown(&self) -> String {
        self.size
            .map(crate::format::human_size)
            .unwrap_or_else(|| "?".into())
    }
}

/// `docker history ID` as Docker 26.1 with the containerd image store answers it, newest
/// first (see the module docs for the ID and SIZE columns). An image the namespace does
/// not hold, or whose config cannot be read, is an error naming it; so is a history with
/// more non-empty entries than the image has layers, which the engine refuses too.
pub fn history(store: &ContainerdStore, id: &str) -> anyhow::Result<Vec<HistoryRow>> {
    let recs = records(store, id)?;
    let cfg = config(store, id)?;
    let chain: Vec<String> = store
        .images()
        .into_iter()
        .find(|i| i.id == id)
        .map(|i| i.layers)
        .unwrap_or_default();
    let mut sizes = chain.iter().map(|c| store.layer(c).and_then(|l| l.size));
    let mut rows = Vec::new();
    let empty = Vec::new();
    let entries = field(&cfg, "history")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (n, h) in entries.iter().enumerate() {
        let empty_layer = field(h, "empty_layer").and_then(Value::as_bool) == Some(true);
        let size = if empty_layer {
            Some(0)
        } else {
            match sizes.next() {
                Some(s) => s,
                None => bail!(
                    "image {id}: history entry {n} names a layer beyond its {} diff_ids \
                     (the engine fails: unable to find the size of the layer)",
                    chain.len()
                ),
            }
        };
        rows.push(HistoryRow {
            id: None,
            created: field(h, "created")
                .and_then(Value::as_str)
                .and_then(Time::parse),
            created_by: text(h, "created_by"),
            author: text(h, "author"),
            comment: text(h, "comment"),
            empty_layer,
            size,
            tags: Vec::new(),
        });
    }
    rows.reverse();

    // The ID column, up the parent labels from the record the id resolves to.
    let all = &store.namespace().images;
    // One hop per row: a loop of parent labels ends with the rows.
    let mut current = recs.first().copied();
    for row in rows.iter_mut() {
        let Some(cur) = current else { break };
        let Some(target) = cur.target.digest.as_deref() else {
            break;
        };
        row.id = Some(target.to_string());
        row.tags = all
            .iter()
            .filter(|r| r.target.digest.as_deref() == Some(target))
            .filter(|r| !is_dangling(&r.name, target))
            .filter_map(|r| parse_named(&r.name))
            .map(|r| r.familiar())
            .collect();
        // The parents: the records targeting the label's digest; the last one with a parent
        // label of its own, else the first.
        let parent = cur
            .labels
            .get(PARENT_LABEL)
            .filter(|p| salvor_oci::Digest::parse(p).is_ok());
        let mut next = None;
        if let Some(p) = parent {
            for r in all
                .iter()
                .filter(|r| r.target.digest.as_deref() == Some(p.as_str()))
            {
                if next.is_none() || r.labels.contains_key(PARENT_LABEL) {
                    next = Some(r);
                }
            }
        }
        current = next;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_absent_config_is_docker_s_empty_container_config() {
        // What docker printed for `docker import`'s image (config `{}`).
        let want = json!({
            "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
            "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
            "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
            "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
        });
        for c in [None, Some(json!({})), Some(json!(null))] {
            let got = container_config(c.as_ref());
            assert_eq!(got, want);
            assert_eq!(got.to_string(), want.to_string(), "key order");
        }
    }

    #[test]
    fn optional_fields_maps_and_key_case_follow_go() {
        let c = json!({
            "env": ["A=1"],
            "ExposedPorts": {"443/tcp": {}, "80/tcp": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000u64, "Retries": 0},
            "ArgsEscaped": true,
            "Volumes": {"/z": {}, "/a": {}},
            "Labels": {"b": "2", "a": "1", "n": 3},
            "StopSignal": "SIGINT",
            "Shell": ["/bin/sh", "-c"],
            "OnBuild": [],
            "User": "1000",
        });
        let got = container_config(Some(&c));
        let want = json!({
            "Hostname": "", "Domainname": "", "User": "1000", "AttachStdin": false,
            "AttachStdout": false, "AttachStderr": false,
            "ExposedPorts": {"443/tcp": {}, "80/tcp": {}},
            "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": ["A=1"], "Cmd": null,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000u64},
            "ArgsEscaped": true, "Image": "", "Volumes": {"/a": {}, "/z": {}},
            "WorkingDir": "", "Entrypoint": null, "OnBuild": [],
            "Labels": {"a": "1", "b": "2"}, "StopSignal": "SIGINT", "Shell": ["/bin/sh", "-c"],
        });
        assert_eq!(got.to_string(), want.to_string());
        // Empty port sets and shells are omitted, as Go's omitempty does.
        let got = container_config(Some(&json!({"ExposedPorts": {}, "Shell": []})));
        assert!(got.get("ExposedPorts").is_none() && got.get("Shell").is_none());
        // Go's decoder: the last key matching the field, whatever its case.
        let got = container_config(Some(&json!({"Env": ["x"], "ENV": ["y"]})));
        assert_eq!(got["Env"], json!(["y"]));
    }

    #[test]
    fn names_as_the_engine_parses_them() {
        let r = parse_named("docker.io/salvor/base:1.0").expect("canonical");
        assert_eq!(r.familiar(), "salvor/base:1.0");
        assert_eq!(r.familiar_name(), "salvor/base");
        let d = "sha256:9c3280bce7f076ec3fd2cbde221e82738fa2302eaf07af9d54660bebc06bc905";
        let r = parse_named(&format!("docker.io/library/busybox@{d}")).expect("digested");
        assert_eq!(r.familiar(), format!("busybox@{d}"));
        // Not canonical (ParseNamed refuses): not a reference of docker's.
        assert!(parse_named("salvor/base:1.0").is_none());
        assert!(parse_named("docker.io/salvor/base").is_some());
        assert!(parse_named(&format!("moby-dangling@{d}")).is_none());
        assert!(is_dangling(&format!("moby-dangling@{d}"), d));
        assert!(!is_dangling("docker.io/salvor/base:1.0", d));
    }

    #[test]
    fn config_times_are_written_back_as_go_does() {
        assert_eq!(
            go_time("2026-12-03T13:15:39.066344300Z"),
            "2026-12-03T13:15:39.0663443Z"
        );
        assert_eq!(
            go_time("2026-12-03T15:15:39+02:00"),
            "2026-12-03T15:15:39+02:00"
        );
        assert_eq!(go_time("yesterday"), "yesterday");
    }

    #[test]
    fn history_row_columns() {
        let row = HistoryRow {
            id: None,
            created: None,
            created_by: String::new(),
            author: String::new(),
            comment: String::new(),
            empty_layer: false,
            size: None,
            tags: Vec::new(),
        };
        assert_eq!(row.id_shown(), "<missing>");
        assert_eq!(row.created_at(), "1970-01-01T00:00:00Z");
        assert_eq!(row.size_shown(), "?");
        let row = HistoryRow {
            created: Time::parse("2026-12-03T15:15:39.9+02:00"),
            size: Some(12288),
            ..row
        };
        assert_eq!(row.created_at(), "2026-12-03T13:15:39Z");
        assert_eq!(row.size_shown(), "12.3kB");
    }
}
