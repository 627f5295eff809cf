//! The commands over every store of a host that holds more than Docker's graphdriver store
//! (Docker's containerd image store, a Kubernetes node's containerd, or both beside
//! Docker): `info`, `images`, `containers`, `verify` and `logs` list or check every store,
//! with ENGINE and NAMESPACE columns; the other commands read Docker's graphdriver store
//! when the host has one.
//!
//! A host whose only store is Docker's graphdriver store never comes here: its output is
//! what it always was (`commands::run_command`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use anyhow::bail;
use salvor_core::Host;
use salvor_model::{ContainerRecord, ContainerStore, ImageRecord};
use salvor_sink::OutputPolicy;
use serde_json::{json, Value};

use crate::commands::{containers as docker_containers, images as docker_images, verify};
use crate::commands::{run_command, EXIT_FINDINGS};
use crate::output::{human_size, print_json, printable, short_id, short_time, Table};
use crate::progress::bytes_bar;
use crate::{Cli, Command};

/// The label Docker's containerd image store puts on an image built on another: its
/// parent's id (`docker images` without -a hides untagged parents, as with graphdriver).
const MOBY_PARENT: &str = "org.mobyproject.image.parent";

/// Runs `cli`'s command on every store of `host`.
pub fn run(cli: &Cli, host: &Host, outputs: &OutputPolicy) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Info { json } => info(host, *json),
        Command::Images {
            json,
            no_trunc,
            all,
        } => images(host, *json, *no_trunc, *all),
        Command::Containers { json, no_trunc } => containers(host, *json, *no_trunc),
        Command::Pods { json, no_trunc } => pods(host, *json, *no_trunc),
        Command::Tree { json } if host.docker().is_none() || !host.docker_only() => {
            tree(host, *json)
        }
        Command::Volumes { json } => volumes(host, *json),
        Command::Verify { images, json } => verify_all(host, images, *json, cli.quiet),
        Command::Extract {
            images,
            output,
            format,
            dir,
            json,
            tag,
            ..
        } if images.len() == 1
            && !in_docker_store(host, images)
            && resolve_image(host, &host.stores().images(), &images[0], "extract").is_err()
            && moby_container(host, &images[0]).is_some() =>
        {
            extract_commit(
                host,
                &images[0],
                tag.as_deref(),
                output,
                *format,
                cli.quiet,
                outputs,
            )
        }
        Command::Extract { images, .. }
            if images.len() == 1
                && host.docker().is_none()
                && resolve_image(host, &host.stores().images(), &images[0], "extract").is_err()
                && model_container(host, &images[0], "extract").is_ok() =>
        {
            bail!(
                "extract {}: an offline commit of a containerd container that is not Docker's is not written yet (Docker's containerd image store's containers are); `export` writes its files, `diff` its changes",
                images[0]
            )
        }
        Command::Extract {
            images,
            output,
            format,
            dir,
            json,
            force,
            ..
        } if !in_docker_store(host, images) => extract_stored(
            host,
            images,
            output,
            *format,
            (*dir, *force),
            *json,
            cli.quiet,
            outputs,
        ),
        Command::Logs {
            container,
            timestamps,
            since,
            until,
            tail,
        } => logs(
            cli,
            host,
            outputs,
            container,
            *timestamps,
            since.as_deref(),
            until.as_deref(),
            tail.as_deref(),
        ),
        Command::Inspect { image, config }
            if !docker_container(host, image)
                && moby_container(host, image).is_none()
                && !docker_image(host, image) =>
        {
            inspect_image(host, image, *config, cli.engine_version.as_deref())
        }
        Command::History {
            image,
            json,
            no_trunc,
        } if !docker_image(host, image) => history(host, image, *json, *no_trunc),
        Command::Inspect { image, config: false }
            if !docker_container(host, image) && moby_container(host, image).is_some() =>
        {
            let Some(d) = moby_container(host, image) else {
                unreachable!("checked by the guard")
            };
            let c = d.find_container(image.trim().trim_start_matches('/'))?;
            crate::commands::containers::inspect_container(&d, &c)
        }
        Command::Diff { container, json } if !docker_container(host, container) => {
            diff(host, container, *json)
        }
        Command::Export {
            target,
            output,
            with_volumes,
            ..
        } if !docker_container(host, target) && !docker_image(host, target) => {
            export(host, target, output, *with_volumes, cli.quiet, outputs)
        }
        Command::Timeline {
            format,
            containers,
            images,
            volumes,
            logs,
            output,
        } => timeline(
            cli,
            host,
            *format,
            containers,
            *images,
            *volumes,
            *logs,
            output.as_deref(),
            outputs,
        ),
        Command::Report {
            output,
            images,
            logs,
            no_volumes,
        } => {
            let stores = &host.stores().stores;
            if let [one] = stores.as_slice() {
                return crate::commands::report::report_store(
                    cli,
                    one.as_ref(),
                    output,
                    *images,
                    *logs,
                    !*no_volumes,
                    outputs,
                );
            }
            // One directory per store, named by engine and namespace.
            let mut named: Vec<(&dyn ContainerStore, String)> = Vec::new();
            for s in stores {
                let id = s.identity();
                let base = match &id.namespace {
                    Some(ns) => format!("{}-{ns}", id.engine),
                    None => id.engine.to_string(),
                };
                let base: String = base
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
                    .collect();
                let mut name = base.clone();
                let mut n = 2;
                while named.iter().any(|(_, d)| *d == name) {
                    name = format!("{base}-{n}");
                    n += 1;
                }
                named.push((s.as_ref(), name));
            }
            crate::commands::report::report_stores(
                cli,
                &named,
                output,
                *images,
                *logs,
                !*no_volumes,
                outputs,
            )
        }
        _ => match host.docker() {
            Some(docker) => run_command(cli, docker, outputs),
            None => bail!(
                "`salvor {}` reads Docker's graphdriver store only so far, and this host has none: its stores are {}; `info`, `images`, `containers`, `verify` and `logs` read them",
                command_name(&cli.command),
                store_list(host)
            ),
        },
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Probe { .. } => "probe",
        Command::Info { .. } => "info",
        Command::Images { .. } => "images",
        Command::Tree { .. } => "tree",
        Command::Inspect { .. } => "inspect",
        Command::History { .. } => "history",
        Command::Verify { .. } => "verify",
        Command::Extract { .. } => "extract",
        Command::Diff { .. } => "diff",
        Command::Export { .. } => "export",
        Command::Containers { .. } => "containers",
        Command::Pods { .. } => "pods",
        Command::Logs { .. } => "logs",
        Command::Volumes { .. } => "volumes",
        Command::Timeline { .. } => "timeline",
        Command::Report { .. } => "report",
    }
}

fn store_list(host: &Host) -> String {
    let ids: Vec<String> = host
        .stores()
        .identities()
        .iter()
        .map(|i| i.to_string())
        .collect();
    if ids.is_empty() {
        "none (the containerd roots found hold nothing)".into()
    } else {
        ids.join("; ")
    }
}

/// The ENGINE and NAMESPACE cells of a store.
fn engine_cells(s: &dyn ContainerStore) -> [String; 2] {
    let id = s.identity();
    [
        id.engine.as_str().to_string(),
        printable(id.namespace.as_deref().unwrap_or("-")),
    ]
}

/// `repo:tag` / `repo@digest` / `repo` → (REPOSITORY, TAG) as `docker images` shows them.
fn repo_tag(name: &str) -> (String, String) {
    if let Some((repo, _)) = name.split_once('@') {
        return (repo.to_string(), "<none>".into());
    }
    // A ':' after the last '/' separates the tag (a registry port comes before a '/').
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "latest".into()),
    }
}

/// The ids of images another image of a containerd store names as its parent.
fn containerd_parents(s: &dyn ContainerStore) -> BTreeSet<String> {
    s.as_any()
        .downcast_ref::<salvor_containerd::ContainerdStore>()
        .map(|c| {
            c.namespace()
                .images
                .iter()
                .filter_map(|i| i.labels.get(MOBY_PARENT).cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// A containerd store's images, newest first (then by id).
fn newest_first(s: &dyn ContainerStore) -> Vec<ImageRecord> {
    let mut imgs = s.images();
    imgs.sort_by(|a, b| {
        let t = |i: &ImageRecord| {
            i.created
                .as_deref()
                .and_then(salvor_oci::Time::parse)
                .map(|t| (t.unix(), t.nanos()))
        };
        t(b).cmp(&t(a)).then_with(|| a.id.cmp(&b.id))
    });
    imgs
}

fn images(host: &Host, json_out: bool, no_trunc: bool, all: bool) -> anyhow::Result<u8> {
    if json_out {
        let mut v: Vec<Value> = Vec::new();
        for s in &host.stores().stores {
            if let Some(d) = s.as_any().downcast_ref::<salvor_docker::Store>() {
                v.extend(docker_images::docker_image_json(d));
                continue;
            }
            let id = s.identity();
            let parents = containerd_parents(s.as_ref());
            for i in newest_first(s.as_ref()) {
                v.push(json!({
                    "engine": id.engine,
                    "namespace": id.namespace,
                    "id": i.id,
                    "tags": i.names,
                    "digests": i.digests,
                    "chain_ids": i.layers,
                    "created": i.created,
                    "size": listed_size(s.as_ref(), &i.id),
                    "content_size": s.image_size(&i.id),
                    "intermediate": i.names.is_empty() && parents.contains(&i.id),
                }));
            }
        }
        print_json(&v)?;
        return Ok(0);
    }
    let mut t = Table::new(&[
        "ENGINE",
        "NAMESPACE",
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
    ]);
    for s in &host.stores().stores {
        let cells = engine_cells(s.as_ref());
        let rows = match s.as_any().downcast_ref::<salvor_docker::Store>() {
            Some(d) => docker_images::docker_image_rows(d, no_trunc, all),
            None => containerd_image_rows(s.as_ref(), no_trunc, all),
        };
        for r in rows {
            let mut row = cells.to_vec();
            row.extend(r);
            t.row(row);
        }
    }
    t.print(&mut io::stdout().lock())?;
    Ok(0)
}

/// An image's SIZE as `docker images` lists it with the containerd image store: its
/// content (manifest, config, layer blobs) plus its unpacked snapshots' recorded usage.
fn listed_size(s: &dyn ContainerStore, id: &str) -> Option<u64> {
    let content = s.image_size(id)?;
    match s
        .as_any()
        .downcast_ref::<salvor_containerd::ContainerdStore>()
    {
        Some(c) => Some(content.saturating_add(c.unpacked_size(id).unwrap_or(0))),
        None => Some(content),
    }
}

/// REPOSITORY TAG IMAGE ID CREATED SIZE of a store's images, one row per name.
fn containerd_image_rows(s: &dyn ContainerStore, no_trunc: bool, all: bool) -> Vec<Vec<String>> {
    let parents = containerd_parents(s);
    let mut rows = Vec::new();
    for i in newest_first(s) {
        if !all && i.names.is_empty() && parents.contains(&i.id) {
            continue;
        }
        let id = if no_trunc {
            i.id.clone()
        } else {
            short_id(&i.id)
        };
        let created = short_time(i.created.as_deref());
        let size = listed_size(s, &i.id)
            .map(human_size)
            .unwrap_or_else(|| "?".into());
        let mut names: Vec<(String, String)> = i.names.iter().map(|n| repo_tag(n)).collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            rows.push(vec![
                printable(&repo),
                printable(&tag),
                id.clone(),
                created.clone(),
                size.clone(),
            ]);
        }
    }
    rows
}

/// STATUS of a model container record (absolute times, as for Docker's).
fn status(c: &ContainerRecord) -> String {
    let st = &c.state;
    let code = st.exit_code.unwrap_or(0);
    match st.status.as_str() {
        "running" => format!(
            "Up since {} (running when the host stopped)",
            short_time(st.started_at.as_deref())
        ),
        "paused" => format!(
            "Up since {} (Paused; running when the host stopped)",
            short_time(st.started_at.as_deref())
        ),
        "restarting" => format!(
            "Restarting ({code}) since {}",
            short_time(st.finished_at.as_deref())
        ),
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        "created" => "Created".into(),
        "exited" => format!(
            "Exited ({code}) at {}",
            short_time(st.finished_at.as_deref())
        ),
        "unknown" => "Unknown (no task state on disk)".into(),
        other => printable(other),
    }
}

/// `<namespace>/<pod>` of a Kubernetes container, from the kubelet's labels.
fn pod_of(c: &ContainerRecord) -> Option<String> {
    let pod = c.labels.get("io.kubernetes.pod.name")?;
    Some(match c.labels.get("io.kubernetes.pod.namespace") {
        Some(ns) => format!("{ns}/{pod}"),
        None => pod.clone(),
    })
}

fn containers(host: &Host, json_out: bool, no_trunc: bool) -> anyhow::Result<u8> {
    // Per store: Docker's own rows, or model records.
    enum Rows {
        Docker(Vec<salvor_docker::Container>),
        Model(Vec<ContainerRecord>),
    }
    let mut per_store = Vec::new();
    let mut seen_configs = BTreeSet::new();
    for s in &host.stores().stores {
        if let Some(d) = s.as_any().downcast_ref::<salvor_docker::Store>() {
            let (list, problems) = d.containers();
            warn(&problems);
            seen_configs.extend(list.iter().map(|c| c.config_path.clone()));
            per_store.push((s.as_ref(), Rows::Docker(list)));
            continue;
        }
        // Docker's containers of its containerd image store: read as Docker's own records
        // (docker ps's COMMAND, PORTS …), their files in containerd's snapshots.
        if let Some(dr) = docker_data_root_of(s.as_ref()) {
            let d = salvor_docker::Store::open_containers_only(s.source().clone(), dr);
            let (list, problems) = d.containers();
            // (their read-write layers are containerd's snapshots: not a problem here)
            warn(
                &problems
                    .into_iter()
                    .filter(|p| !p.what.contains("cannot be located"))
                    .collect::<Vec<_>>(),
            );
            let list: Vec<salvor_docker::Container> = list
                .into_iter()
                .filter(|c| !seen_configs.contains(&c.config_path))
                .collect();
            seen_configs.extend(list.iter().map(|c| c.config_path.clone()));
            per_store.push((s.as_ref(), Rows::Docker(list)));
            continue;
        }
        warn(&s.container_problems());
        match s.containers() {
            Ok(list) => {
                // A container Docker's graphdriver store already listed (its config.v2.json)
                // is listed once.
                let list = list
                    .into_iter()
                    .filter(|c| {
                        c.config_path
                            .as_ref()
                            .is_none_or(|p| !seen_configs.contains(p))
                    })
                    .collect();
                per_store.push((s.as_ref(), Rows::Model(list)));
            }
            Err(e) => eprintln!(
                "salvor: warning: {}: {}",
                s.identity(),
                printable(&salvor_model::error_chain(&e))
            ),
        }
    }
    if json_out {
        let mut v = Vec::new();
        for (s, rows) in &per_store {
            let id = s.identity();
            match rows {
                Rows::Docker(list) => v.extend(list.iter().map(|c| {
                    let mut j = salvor_core::ps::ps_json(c);
                    if let Value::Object(m) = &mut j {
                        m.insert("engine".into(), json!(id.engine));
                    }
                    j
                })),
                Rows::Model(list) => v.extend(list.iter().map(|c| {
                    json!({
                        "engine": id.engine,
                        "namespace": id.namespace,
                        "ID": c.id,
                        "Names": c.name,
                        "Image": s.container_image_name(&c.id).unwrap_or_else(|| c.image.clone()),
                        "Command": c.command,
                        "CreatedAt": c.created,
                        "State": c.state.status,
                        "ExitCode": c.state.exit_code,
                        "StartedAt": c.state.started_at,
                        "FinishedAt": c.state.finished_at,
                        "Pod": pod_of(c),
                        "Labels": c.labels,
                        "RwLayer": c.rw_layer,
                        "ConfigPath": c.config_path,
                        "LogPaths": c.log_paths,
                    })
                })),
            }
        }
        print_json(&v)?;
        return Ok(0);
    }
    let with_pod = per_store.iter().any(|(_, r)| match r {
        Rows::Model(l) => l.iter().any(|c| pod_of(c).is_some()),
        Rows::Docker(_) => false,
    });
    let mut head = vec![
        "ENGINE",
        "NAMESPACE",
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if with_pod {
        head.push("POD");
    }
    let mut t = Table::new(&head);
    for (s, rows) in &per_store {
        let cells = engine_cells(*s);
        let rows: Vec<Vec<String>> = match rows {
            Rows::Docker(list) => docker_containers::docker_container_rows(list, no_trunc),
            Rows::Model(list) => list
                .iter()
                .map(|c| {
                    let cmd = c.command.clone().unwrap_or_default();
                    let cmd = if no_trunc {
                        cmd
                    } else {
                        salvor_core::ps::ellipsis(&cmd, 20)
                    };
                    let image = s
                        .container_image_name(&c.id)
                        .unwrap_or_else(|| c.image.clone());
                    let image = match image.strip_prefix("sha256:") {
                        Some(hex) if !no_trunc => hex.chars().take(12).collect(),
                        _ => image,
                    };
                    let mut row = vec![
                        if no_trunc {
                            c.id.clone()
                        } else {
                            c.id.chars().take(12).collect()
                        },
                        printable(&image),
                        salvor_core::ps::go_quote(&cmd),
                        short_time(c.created.as_deref()),
                        status(c),
                        String::new(),
                        printable(&c.name),
                    ];
                    if with_pod {
                        row.push(printable(&pod_of(c).unwrap_or_default()));
                    }
                    row
                })
                .collect(),
        };
        for r in rows {
            let mut row = cells.to_vec();
            row.extend(r);
            t.row(row);
        }
    }
    t.print(&mut io::stdout().lock())?;
    Ok(0)
}

/// One Kubernetes pod as its containers' labels tell it.
#[derive(serde::Serialize)]
struct Pod<'a> {
    engine: salvor_model::EngineKind,
    namespace: Option<String>,
    /// Kubernetes namespace and name, and uid.
    k8s_namespace: String,
    name: String,
    uid: String,
    /// The sandbox (pause) container, when its record is there.
    sandbox_id: Option<String>,
    created: Option<String>,
    containers: Vec<&'a ContainerRecord>,
}

/// The one containerd image `q` names: (its store, its id).
fn containerd_image<'h>(
    host: &'h Host,
    q: &str,
    cmd: &str,
) -> anyhow::Result<(&'h salvor_containerd::ContainerdStore, String)> {
    let all = host.stores().images();
    let found = resolve_image(host, &all, q, cmd)?;
    let stores_used: BTreeSet<usize> = found.iter().map(|(i, _, _)| *i).collect();
    let [i] = stores_used.iter().copied().collect::<Vec<_>>()[..] else {
        bail!(
            "{cmd}: {q:?} is in {} stores ({}): pick one with --namespace",
            stores_used.len(),
            stores_used
                .iter()
                .map(|i| host.stores().stores[*i].identity().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    };
    let s = host.stores().stores[i].as_ref();
    let Some(c) = s
        .as_any()
        .downcast_ref::<salvor_containerd::ContainerdStore>()
    else {
        bail!("{cmd}: {} is not a containerd store", s.identity());
    };
    Ok((c, found[0].1.id.clone()))
}

/// `inspect IMAGE` of a containerd image: `docker image inspect` as Docker 26 prints it
/// with the containerd image store (`DockerVersion` from `--engine-version` or the host's
/// package database when known); `--config`: the config's bytes as stored.
fn inspect_image(
    host: &Host,
    q: &str,
    raw_config: bool,
    engine_version: Option<&str>,
) -> anyhow::Result<u8> {
    let (c, id) = containerd_image(host, q, "inspect")?;
    if raw_config {
        let b = c
            .config_bytes(&id)
            .map_err(|e| anyhow::anyhow!("inspect: {}", salvor_model::error_chain(&e)))?;
        io::stdout().lock().write_all(&b)?;
        return Ok(0);
    }
    let version = c
        .engine_version()
        .filter(|v| v.bound == salvor_model::VersionBound::Exact)
        .map(|v| v.version);
    let v = salvor_core::inspect_containerd::image_with_version(
        c,
        &id,
        engine_version.or(version.as_deref()),
    )?;
    print_json(&json!([v]))?;
    Ok(0)
}

/// `history IMAGE` of a containerd image, as `docker history` prints it.
fn history(host: &Host, q: &str, json_out: bool, no_trunc: bool) -> anyhow::Result<u8> {
    let (c, id) = containerd_image(host, q, "history")?;
    let rows = salvor_core::inspect_containerd::history(c, &id)?;
    if json_out {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "created": r.created.as_ref().map(|t| t.format()),
                    "created_by": r.created_by,
                    "author": r.author,
                    "comment": r.comment,
                    "empty_layer": r.empty_layer,
                    "size": r.size,
                    "size_human": r.size_shown(),
                })
            })
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for r in &rows {
        let id = match &r.id {
            Some(id) if no_trunc => id.clone(),
            Some(id) => short_id(id),
            None => "<missing>".into(),
        };
        let mut by = r.created_by.replace('\t', " ");
        if !no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        t.row(vec![
            id,
            short_time(r.created.as_ref().map(|t| t.format()).as_deref()),
            printable(&by),
            r.size_shown(),
            printable(&r.comment),
        ]);
    }
    t.print(&mut io::stdout().lock())?;
    Ok(0)
}

/// The Docker data-root (as a containers-only store) of Docker's containerd image store
/// holding container `q`, if any.
fn moby_container(host: &Host, q: &str) -> Option<salvor_docker::Store> {
    host.stores().stores.iter().find_map(|s| {
        let dr = docker_data_root_of(s.as_ref())?;
        let d = salvor_docker::Store::open_containers_only(s.source().clone(), dr);
        d.find_container(q.trim().trim_start_matches('/'))
            .is_ok()
            .then_some(d)
    })
}

/// The Docker data-root of Docker's containerd image store (`moby`'s), when `s` is one.
fn docker_data_root_of(s: &dyn ContainerStore) -> Option<std::path::PathBuf> {
    if s.identity().engine != salvor_model::EngineKind::DockerContainerd {
        return None;
    }
    s.as_any()
        .downcast_ref::<salvor_containerd::ContainerdStore>()?
        .located()
        .docker_data_root
        .clone()
}

/// `tree` of every store: each store's layers by parent (chain id, diff id, size, how many
/// images use it, and the images whose top layer it is); Docker's graphdriver store as
/// `tree` has always printed it.
fn tree(host: &Host, json_out: bool) -> anyhow::Result<u8> {
    let mut all_json = Vec::new();
    let mut out = io::stdout().lock();
    for s in &host.stores().stores {
        let id = s.identity();
        let layers = s.layers();
        let images = s.images();
        let mut users: BTreeMap<&str, usize> = BTreeMap::new();
        let mut tops: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for img in &images {
            for l in &img.layers {
                *users.entry(l.as_str()).or_default() += 1;
            }
            if let Some(top) = img.layers.last() {
                let name = img
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| short_id(&img.id));
                tops.entry(top.as_str()).or_default().push(name);
            }
        }
        if json_out {
            for l in &layers {
                all_json.push(json!({
                    "engine": id.engine,
                    "namespace": id.namespace,
                    "chain_id": l.id,
                    "diff_id": l.diff_id,
                    "parent": l.parent,
                    "size": l.size,
                    "proof": l.proof,
                    "images": tops.get(l.id.as_str()).cloned().unwrap_or_default(),
                    "used_by_images": users.get(l.id.as_str()).copied().unwrap_or(0),
                }));
            }
            continue;
        }
        writeln!(out, "== {}", printable(&id.to_string()))?;
        let known: BTreeSet<&str> = layers.iter().map(|l| l.id.as_str()).collect();
        let mut children: BTreeMap<Option<&str>, Vec<&salvor_model::LayerRecord>> = BTreeMap::new();
        for l in &layers {
            let parent = l.parent.as_deref().filter(|p| known.contains(p));
            children.entry(parent).or_default().push(l);
        }
        // Depth-first from the roots; a layer is printed once (parent chains cannot loop
        // past `seen`).
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(&salvor_model::LayerRecord, usize)> = children
            .get(&None)
            .map(|v| v.iter().rev().map(|l| (*l, 0)).collect())
            .unwrap_or_default();
        while let Some((l, depth)) = stack.pop() {
            if !seen.insert(l.id.as_str()) || depth > 256 {
                continue;
            }
            let indent = "   ".repeat(depth);
            let branch = if depth == 0 { "" } else { "└─ " };
            let mut line = format!(
                "{indent}{branch}{} diff {} {} (used by {} image(s))",
                short_id(&l.id),
                l.diff_id
                    .as_ref()
                    .map(|d| short_id(d.as_str()))
                    .unwrap_or_else(|| "?".into()),
                l.size.map(human_size).unwrap_or_else(|| "?".into()),
                users.get(l.id.as_str()).copied().unwrap_or(0)
            );
            if let Some(t) = tops.get(l.id.as_str()) {
                line.push_str(&format!("  <- {}", t.join(", ")));
            }
            writeln!(out, "{}", printable(&line))?;
            if let Some(kids) = children.get(&Some(l.id.as_str())) {
                for k in kids.iter().rev() {
                    stack.push((k, depth + 1));
                }
            }
        }
    }
    if json_out {
        print_json(&all_json)?;
    }
    Ok(0)
}

/// `volumes` of every Docker data-root of the host: Docker's graphdriver store's, and that
/// of Docker's containerd image store (its `volumes/` are Docker's, read the same way).
fn volumes(host: &Host, json_out: bool) -> anyhow::Result<u8> {
    let mut docker_roots: Vec<(String, salvor_docker::Store)> = Vec::new();
    for s in &host.stores().stores {
        if let Some(c) = s
            .as_any()
            .downcast_ref::<salvor_containerd::ContainerdStore>()
        {
            if s.identity().engine != salvor_model::EngineKind::DockerContainerd {
                continue;
            }
            if let Some(dr) = &c.located().docker_data_root {
                docker_roots.push((
                    s.identity().to_string(),
                    salvor_docker::Store::open_containers_only(s.source().clone(), dr.clone()),
                ));
            }
        }
    }
    let graphdriver = host.docker();
    let n = docker_roots.len() + usize::from(graphdriver.is_some());
    if n == 0 {
        if !json_out {
            eprintln!(
                "salvor: note: no Docker data-root on this host: containerd keeps no volumes (a Kubernetes node's are under /var/lib/kubelet/pods)"
            );
        }
        return docker_containers::volumes_json_or_table(None, json_out);
    }
    let mut code = 0;
    if let Some(d) = graphdriver {
        if n > 1 && !json_out {
            println!("== {}", s_identity(d));
        }
        code = code.max(docker_containers::volumes(d, json_out)?);
    }
    for (name, d) in &docker_roots {
        if n > 1 && !json_out {
            println!("== {name}");
        }
        code = code.max(docker_containers::volumes(d, json_out)?);
    }
    Ok(code)
}

fn s_identity(d: &salvor_docker::Store) -> String {
    ContainerStore::identity(d).to_string()
}

/// `timeline` over every store of the host, one sorted timeline (each scope names its
/// store); `--container` takes the containers of any store.
#[allow(clippy::too_many_arguments)]
fn timeline(
    cli: &Cli,
    host: &Host,
    format: crate::TimelineFormatArg,
    containers: &[String],
    images: bool,
    volumes: bool,
    logs: bool,
    output: Option<&std::path::Path>,
    outputs: &OutputPolicy,
) -> anyhow::Result<u8> {
    let mut sink = outputs.file(output.unwrap_or(std::path::Path::new("-")))?;
    let mut ids = Vec::new();
    for q in containers {
        let id = match host.docker().and_then(|d| d.find_container(q).ok()) {
            Some(c) => c.id,
            None => model_container(host, q, "timeline")?.1.id,
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let opts = salvor_forensic::TimelineOptions {
        containers: ids,
        images,
        volumes,
        logs,
    };
    let format = match format {
        crate::TimelineFormatArg::Bodyfile => salvor_forensic::TimelineFormat::Bodyfile,
        crate::TimelineFormatArg::Jsonl => salvor_forensic::TimelineFormat::Jsonl,
    };
    let stores: Vec<&dyn ContainerStore> =
        host.stores().stores.iter().map(|s| s.as_ref()).collect();
    let res = salvor_forensic::write_timeline_stores(&stores, &opts, format, &mut sink);
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let summary = res?;
    sink.commit()?;
    if !cli.quiet {
        eprintln!(
            "salvor: timeline: {} file(s) and event(s), {} line(s), {} store(s)",
            summary.entries,
            summary.lines,
            stores.len()
        );
        for p in summary.problems.iter().take(20) {
            eprintln!("salvor: note: {}: {}", p.path.display(), printable(&p.what));
        }
    }
    Ok(0)
}

/// `pods`: every containerd store's containers grouped by the kubelet's pod labels.
fn pods(host: &Host, json_out: bool, no_trunc: bool) -> anyhow::Result<u8> {
    let mut lists = Vec::new();
    for s in &host.stores().stores {
        if s.identity().engine != salvor_model::EngineKind::Containerd {
            continue;
        }
        match s.containers() {
            Ok(l) => lists.push((s.as_ref(), l)),
            Err(e) => eprintln!(
                "salvor: warning: {}: {}",
                s.identity(),
                printable(&salvor_model::error_chain(&e))
            ),
        }
    }
    let mut pods: Vec<Pod> = Vec::new();
    for (s, list) in &lists {
        let id = s.identity();
        for c in list {
            let (Some(uid), Some(name)) = (
                c.labels.get("io.kubernetes.pod.uid"),
                c.labels.get("io.kubernetes.pod.name"),
            ) else {
                continue;
            };
            let k8s_ns = c
                .labels
                .get("io.kubernetes.pod.namespace")
                .cloned()
                .unwrap_or_default();
            let at = match pods
                .iter()
                .position(|p| p.uid == *uid && p.namespace == id.namespace)
            {
                Some(i) => i,
                None => {
                    pods.push(Pod {
                        engine: id.engine,
                        namespace: id.namespace.clone(),
                        k8s_namespace: k8s_ns,
                        name: name.clone(),
                        uid: uid.clone(),
                        sandbox_id: None,
                        created: None,
                        containers: Vec::new(),
                    });
                    pods.len() - 1
                }
            };
            let p = &mut pods[at];
            if c.labels.get("io.cri-containerd.kind").map(String::as_str) == Some("sandbox") {
                p.sandbox_id = Some(c.id.clone());
                p.created = c.created.clone();
            } else {
                p.containers.push(c);
            }
        }
    }
    for p in &mut pods {
        p.containers
            .sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    }
    if json_out {
        print_json(&pods)?;
        return Ok(0);
    }
    let short = |id: &str| -> String {
        if no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    let mut t = Table::new(&[
        "ENGINE",
        "NAMESPACE",
        "POD ID",
        "CREATED",
        "POD",
        "UID",
        "CONTAINERS",
    ]);
    for p in &pods {
        let containers: Vec<String> = p
            .containers
            .iter()
            .map(|c| format!("{} {} ({})", c.name, short(&c.id), status(c)))
            .collect();
        t.row(vec![
            p.engine.as_str().to_string(),
            printable(p.namespace.as_deref().unwrap_or("-")),
            p.sandbox_id
                .as_deref()
                .map(short)
                .unwrap_or_else(|| "?".into()),
            short_time(p.created.as_deref()),
            printable(&format!("{}/{}", p.k8s_namespace, p.name)),
            printable(&p.uid),
            printable(&containers.join(", ")),
        ]);
    }
    t.print(&mut io::stdout().lock())?;
    Ok(0)
}

fn warn(problems: &[salvor_model::Problem]) {
    for p in problems {
        eprintln!(
            "salvor: warning: {}: {}",
            printable(&p.path.display().to_string()),
            printable(&p.what)
        );
    }
}

fn info(host: &Host, json_out: bool) -> anyhow::Result<u8> {
    let stores = &host.stores().stores;
    let describe = |s: &dyn ContainerStore| {
        let id = s.identity();
        let (containers, cproblems) = match s.as_any().downcast_ref::<salvor_docker::Store>() {
            Some(d) => {
                let (l, p) = d.containers();
                (l.len(), p)
            }
            None => (
                s.containers().map(|l| l.len()).unwrap_or(0),
                s.container_problems(),
            ),
        };
        let mut problems = s.problems();
        problems.extend(cproblems);
        problems.sort();
        problems.dedup();
        json!({
            "engine": id.engine,
            "namespace": id.namespace,
            "root": id.root,
            "driver": id.driver,
            "layout": s.layout_description(),
            "engine_version": s.engine_version(),
            "images": s.images().len(),
            "layers": s.layers().len(),
            "containers": containers,
            "volumes": s.volumes().map(|v| v.len()).unwrap_or(0),
            "problems": problems,
        })
    };
    let described: Vec<Value> = stores.iter().map(|s| describe(s.as_ref())).collect();
    let source = stores.first().map(|s| s.source().describe());
    if json_out {
        print_json(&json!({
            "evidence": source,
            "stores": described,
            "problems": host.host_problems(),
        }))?;
        return Ok(0);
    }
    let mut out = io::stdout().lock();
    for d in host.damage() {
        writeln!(
            out,
            "DAMAGED:         {} ({}): {}",
            printable(&d.file.display().to_string()),
            d.kind,
            printable(&format!("{}; {}", d.detail, d.lost))
        )?;
    }
    if let Some(src) = &source {
        writeln!(out, "Evidence:        {}", printable(src))?;
    }
    writeln!(out, "Stores:          {}", stores.len())?;
    for (s, d) in stores.iter().zip(&described) {
        writeln!(out)?;
        writeln!(
            out,
            "Store:           {}",
            printable(&s.identity().to_string())
        )?;
        if let Some(l) = d["layout"].as_str() {
            writeln!(out, "Layout:          {}", printable(l))?;
        }
        if let Some(c) = s
            .as_any()
            .downcast_ref::<salvor_containerd::ContainerdStore>()
        {
            writeln!(out, "Found:           {}", printable(&c.located().found_by))?;
        }
        if let Some(v) = s.engine_version() {
            writeln!(
                out,
                "Engine version:  {} (from {})",
                printable(&v.version),
                printable(&v.found_by)
            )?;
        }
        for (k, label) in [
            ("images", "Images:          "),
            ("layers", "Layers:          "),
            ("containers", "Containers:      "),
            ("volumes", "Volumes:         "),
        ] {
            writeln!(out, "{label}{}", d[k])?;
        }
        let problems = d["problems"].as_array().cloned().unwrap_or_default();
        if problems.is_empty() {
            writeln!(out, "Problems:        none")?;
        } else {
            writeln!(out, "Problems:        {}", problems.len())?;
            for p in &problems {
                write_problem(&mut out, p)?;
            }
        }
    }
    let hp = host.host_problems();
    if !hp.is_empty() {
        writeln!(out)?;
        writeln!(out, "Host problems:   {}", hp.len())?;
        for p in hp {
            write_problem(&mut out, &json!(p))?;
        }
    }
    Ok(0)
}

fn write_problem(out: &mut dyn Write, p: &Value) -> io::Result<()> {
    let path = p["path"].as_str().unwrap_or_default();
    let what = p["what"].as_str().unwrap_or_default();
    if path.is_empty() {
        writeln!(out, "  {}", printable(what))
    } else {
        writeln!(out, "  /{}: {}", printable(path), printable(what))
    }
}

/// The image `q` names across every store: (store index, record, the name it matched);
/// a full or unique-prefix id (`sha256:` optional), or a name as listed (`salvor/app:1`,
/// `busybox` for `busybox:latest`). `cmd` names the command in errors.
fn resolve_image(
    host: &Host,
    all: &[(usize, ImageRecord)],
    q: &str,
    cmd: &str,
) -> anyhow::Result<Vec<(usize, ImageRecord, Option<String>)>> {
    let q = q.trim();
    let with_tag = |n: &str| {
        let (repo, tag) = repo_tag(n);
        format!("{repo}:{tag}")
    };
    let by_name: Vec<(usize, ImageRecord, Option<String>)> = all
        .iter()
        .filter_map(|(i, r)| {
            let n = r
                .names
                .iter()
                .chain(&r.digests)
                .find(|n| *n == q || with_tag(n) == with_tag(q))?;
            Some((*i, r.clone(), Some(n.clone())))
        })
        .collect();
    let hex = q.strip_prefix("sha256:").unwrap_or(q);
    let by_id: Vec<(usize, ImageRecord, Option<String>)> =
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            all.iter()
                .filter(|(_, r)| {
                    r.id.strip_prefix("sha256:")
                        .unwrap_or(&r.id)
                        .starts_with(hex)
                })
                .map(|(i, r)| (*i, r.clone(), None))
                .collect()
        } else {
            Vec::new()
        };
    let found = if by_name.is_empty() { by_id } else { by_name };
    let ids: BTreeSet<&str> = found.iter().map(|(_, r, _)| r.id.as_str()).collect();
    match ids.len() {
        0 => bail!(
            "{cmd}: no image matches {q:?} in any store ({})",
            store_list(host)
        ),
        1 => Ok(found),
        _ => bail!(
            "{cmd}: {q:?} is ambiguous: {}",
            ids.iter()
                .map(|i| short_id(i))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// True when every image `queries` name is in Docker's graphdriver store (or the host has
/// no other store): `extract` is then Docker's own.
fn in_docker_store(host: &Host, queries: &[String]) -> bool {
    let Some(d) = host.docker() else {
        return false;
    };
    queries
        .iter()
        .all(|q| crate::commands::target::image(d, "extract", q).is_ok())
}

/// The images `queries` name across every store (all when none), by store.
fn select(host: &Host, queries: &[String]) -> anyhow::Result<BTreeMap<usize, Vec<ImageRecord>>> {
    let mut out: BTreeMap<usize, Vec<ImageRecord>> = BTreeMap::new();
    let all = host.stores().images();
    if queries.is_empty() {
        for (i, r) in all {
            out.entry(i).or_default().push(r);
        }
        return Ok(out);
    }
    for q in queries {
        for (i, r, _) in resolve_image(host, &all, q, "verify")? {
            let v = out.entry(i).or_default();
            if !v.iter().any(|x| x.id == r.id) {
                v.push(r);
            }
        }
    }
    Ok(out)
}

fn export_format(f: crate::FormatArg) -> salvor_export::Format {
    match f {
        crate::FormatArg::DockerLegacy => salvor_export::Format::DockerLegacy,
        crate::FormatArg::Oci => salvor_export::Format::Oci,
        crate::FormatArg::Docker => salvor_export::Format::Docker,
    }
}

/// `extract CONTAINER` of a container of Docker's containerd image store: an offline
/// `docker commit` (its changes as a new layer over its image's, the config made as
/// `docker commit` makes it), written with the image's layers decompressed.
fn extract_commit(
    host: &Host,
    q: &str,
    tag: Option<&str>,
    output: &std::path::Path,
    format: crate::FormatArg,
    quiet: bool,
    outputs: &OutputPolicy,
) -> anyhow::Result<u8> {
    use salvor_forensic::verify::{check, layers_of};
    outputs.check_file(output)?;
    let Some(d) = moby_container(host, q) else {
        bail!("extract: no container {q:?}");
    };
    let c = d.find_container(q.trim().trim_start_matches('/'))?;
    let Some(cstore) = host.stores().stores.iter().find_map(|s| {
        (docker_data_root_of(s.as_ref()).as_deref() == Some(d.root.as_path()))
            .then(|| {
                s.as_any()
                    .downcast_ref::<salvor_containerd::ContainerdStore>()
            })
            .flatten()
    }) else {
        bail!("extract: container {q:?}: its containerd store is not open");
    };
    let spool = salvor_core::extract::spool_dir(output);
    let commit = salvor_core::stored::commit_containerd(cstore, &c, &spool)?;
    let mut layers = Vec::new();
    let mut by_diff = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let mut checked_layers = 0;
    if let Some(base) = &commit.base {
        let records: Vec<ImageRecord> = cstore
            .images()
            .into_iter()
            .filter(|i| &i.id == base)
            .collect();
        let chains = layers_of(&records);
        let pb = bytes_bar(0, quiet, "verifying");
        let inc = |n: u64| pb.inc(n);
        let checked = check(cstore, &chains, &inc);
        pb.finish_and_clear();
        for chain in &chains {
            let v = checked
                .layers
                .get(chain)
                .ok_or_else(|| anyhow::anyhow!("extract: layer {chain} was not checked"))?;
            if v.content() != "verified" {
                bail!(
                    "extract: the container's image layer {} did not verify ({})",
                    short_id(chain),
                    v.content_cell()
                );
            }
            sizes.insert(chain.clone(), v.rebuild.bytes);
            if let Some(dd) = cstore.layer(chain).and_then(|l| l.diff_id) {
                by_diff.insert(dd.as_str().to_string(), chain.clone());
            }
            checked_layers += 1;
        }
        let base_img = salvor_core::stored::uncompressed_images(
            cstore,
            &[salvor_core::stored::Pick {
                id: base.clone(),
                reference: None,
            }],
            &sizes,
        )?;
        layers = base_img.into_iter().flat_map(|i| i.layers).collect();
    }
    let mut committed = BTreeMap::new();
    if let Some((digest, size, path)) = &commit.layer {
        layers.push(salvor_export::LayerRef {
            diff_id: digest.parse()?,
            size: *size,
            descriptor: None,
            forced_from: None,
        });
        committed.insert(digest.clone(), path.to_path_buf());
    }
    let image = salvor_export::ImageToExport {
        id: salvor_oci::Digest::sha256_of(&commit.config),
        config: commit.config.clone(),
        repo_tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
        layers,
        parent: None,
    };
    let total = crate::output::total(image.layers.iter().map(|l| l.size));
    let pb = bytes_bar(total, quiet, "extracting");
    let inc = |n: u64| pb.inc(n);
    let source = salvor_core::stored::WithCommitted {
        layers: salvor_core::stored::DecompressedLayers {
            store: cstore,
            chains: by_diff,
            progress: &inc,
        },
        committed,
    };
    let format_out = export_format(format);
    let mut sink = outputs.file(output)?;
    let res = salvor_export::export_tar_to(
        std::slice::from_ref(&image),
        &source,
        format_out,
        &mut sink,
        output,
    );
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let report = res.map_err(|e| match e {
        salvor_export::ExportError::Sink(s) => anyhow::Error::from(s),
        e => anyhow::Error::from(e).context(format!("cannot write {}", output.display())),
    })?;
    sink.commit()?;
    pb.finish_and_clear();
    if !quiet {
        eprintln!(
            "committed container {} ({}) as image {}{} ({})",
            printable(c.name.trim_start_matches('/')),
            &c.id[..12],
            short_id(image.id.as_str()),
            tag.map(|t| format!(" {t}")).unwrap_or_default(),
            match &commit.layer {
                Some((d, _, _)) => format!("new layer {}", short_id(d)),
                None => "no changes: no new layer".into(),
            }
        );
        eprintln!(
            "salvor: {}: layer headers as Docker >= 23 writes them (permission bits, no names); whiteouts dated at the container's finish (the engine dates them at the commit)",
            printable(c.name.trim_start_matches('/'))
        );
        eprintln!(
            "wrote {} ({}, 1 image, {} layer(s): {checked_layers} of its image verified)",
            output.display(),
            human_size(report.bytes),
            report.layers_written
        );
    }
    Ok(0)
}

/// `extract --format docker-legacy|oci` of a containerd store's images: every layer's blob
/// decompressed and checked against its diff_id first (the verify pass, which also gives
/// each tar's size), then written decompressed; the images are known by their config
/// digests, as a graphdriver engine loads them.
#[allow(clippy::too_many_arguments)]
fn extract_decompressed(
    c: &salvor_containerd::ContainerdStore,
    picks: &[salvor_core::stored::Pick],
    output: &std::path::Path,
    format: crate::FormatArg,
    (dir, force): (bool, bool),
    json_out: bool,
    quiet: bool,
    outputs: &OutputPolicy,
) -> anyhow::Result<u8> {
    use salvor_forensic::verify::{check, layers_of};
    let records: Vec<ImageRecord> = c
        .images()
        .into_iter()
        .filter(|i| picks.iter().any(|p| p.id == i.id))
        .collect();
    let chains = layers_of(&records);
    let total = crate::output::total(
        chains
            .iter()
            .filter_map(|l| c.layer(l).and_then(|l| l.size)),
    );
    let pb = bytes_bar(total, quiet, "verifying");
    let inc = |n: u64| pb.inc(n);
    let checked = check(c, &chains, &inc);
    pb.finish_and_clear();
    let mut sizes = BTreeMap::new();
    let mut by_diff = BTreeMap::new();
    // chain → (canonical digest, its spooled file), for the layers --force rebuilt.
    let mut forced: BTreeMap<String, (String, tempfile::TempPath)> = BTreeMap::new();
    let spool = salvor_core::extract::spool_dir(output);
    for chain in &chains {
        let Some(v) = checked.layers.get(chain) else {
            bail!("extract: layer {chain} was not checked");
        };
        if v.content() != "verified" {
            let why = v
                .rebuild
                .error
                .clone()
                .unwrap_or_else(|| "its blob does not decompress to its diff_id".into());
            if !force {
                bail!(
                    "extract: layer {} did not verify ({}): {why}; --force rebuilds it from its snapshot (marked FORCED, its digest unproven)",
                    short_id(chain),
                    v.content_cell(),
                );
            }
            let (digest, size, path) = salvor_core::stored::canonical_layer(c, chain, &spool)?;
            if !quiet {
                eprintln!(
                    "FORCED: layer {} rebuilt from its snapshot in salvor's canonical form: digest {digest} (unproven; recorded diff_id {}): {}",
                    short_id(chain),
                    c.layer(chain)
                        .and_then(|l| l.diff_id)
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "none".into()),
                    printable(&why)
                );
            }
            sizes.insert(chain.clone(), size);
            forced.insert(chain.clone(), (digest, path));
            continue;
        }
        sizes.insert(chain.clone(), v.rebuild.bytes);
        if let Some(d) = c.layer(chain).and_then(|l| l.diff_id) {
            by_diff.insert(d.as_str().to_string(), chain.clone());
        }
    }
    let mut images = salvor_core::stored::uncompressed_images(c, picks, &sizes)?;
    // Forced layers: the canonical digest becomes the layer's diff_id in the config.
    for (img, p) in images.iter_mut().zip(picks) {
        let Some(record) = records.iter().find(|r| r.id == p.id) else {
            continue;
        };
        let mut changed = false;
        for (l, chain) in img.layers.iter_mut().zip(&record.layers) {
            if let Some((digest, _)) = forced.get(chain) {
                l.forced_from = Some(l.diff_id.clone());
                l.diff_id = digest.parse()?;
                changed = true;
            }
        }
        if changed {
            let ids: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
            img.config = salvor_export::rewrite_diff_ids(&img.config, &ids)?;
            img.id = salvor_oci::Digest::sha256_of(&img.config);
        }
    }
    let committed: BTreeMap<String, std::path::PathBuf> = forced
        .values()
        .map(|(d, p)| (d.clone(), p.to_path_buf()))
        .collect();
    let total = crate::output::total(sizes.values().copied());
    let pb = bytes_bar(total, quiet, "extracting");
    let inc = |n: u64| pb.inc(n);
    let source = salvor_core::stored::WithCommitted {
        layers: salvor_core::stored::DecompressedLayers {
            store: c,
            chains: by_diff,
            progress: &inc,
        },
        committed,
    };
    let format_out = export_format(format);
    let failed = |e: salvor_export::ExportError| match e {
        salvor_export::ExportError::Sink(s) => anyhow::Error::from(s),
        e => anyhow::Error::from(e).context(format!("cannot write {}", output.display())),
    };
    let report = if dir {
        let sink = outputs.dir(output)?;
        let r = salvor_export::export_dir_into(&images, &source, format_out, true, &sink)
            .map_err(failed)?;
        sink.commit()?;
        r
    } else {
        let mut sink = outputs.file(output)?;
        let res = salvor_export::export_tar_to(&images, &source, format_out, &mut sink, output);
        if let Some(e) = sink.write_error() {
            return Err(e.into());
        }
        let r = res.map_err(failed)?;
        sink.commit()?;
        r
    };
    pb.finish_and_clear();
    if json_out {
        print_json(&json!({
            "output": output,
            "format": format!("{format:?}"),
            "store": c.identity(),
            "images": images.iter().map(|i| json!({"id": i.id, "tags": i.repo_tags})).collect::<Vec<_>>(),
            "archive_sha256": report.archive_sha256,
            "bytes": report.bytes,
            "layers_written": report.layers_written,
            "forced_layers": forced.iter().map(|(chain, (d, _))| json!({"status": "FORCED", "chain_id": chain, "diff_id": d, "proven": false, "original_diff_id": c.layer(chain).and_then(|l| l.diff_id)})).collect::<Vec<_>>(),
            "layers": checked.layers.values().map(salvor_forensic::verify::LayerVerdict::json).collect::<Vec<_>>(),
            "files": report.files.iter().map(|(p, h, n)| json!({"path": p, "sha256": h, "size": n})).collect::<Vec<_>>(),
        }))?;
    } else if !quiet {
        eprintln!(
            "wrote {} ({}, {} image(s), {} layer(s) decompressed from their blobs, each hashed to its diff_id{})",
            output.display(),
            human_size(report.bytes),
            images.len(),
            report.layers_written,
            if forced.is_empty() {
                String::new()
            } else {
                format!("; {} FORCED from snapshots, unproven", forced.len())
            }
        );
        if let Some(h) = &report.archive_sha256 {
            eprintln!("archive sha256:{h}");
        }
    }
    Ok(if forced.is_empty() { 0 } else { EXIT_FINDINGS })
}

/// `extract` of a containerd store's images: the blobs as stored, as Docker 26's `docker
/// save` writes them with the containerd image store.
#[allow(clippy::too_many_arguments)]
fn extract_stored(
    host: &Host,
    queries: &[String],
    output: &std::path::Path,
    format: crate::FormatArg,
    (dir, force): (bool, bool),
    json_out: bool,
    quiet: bool,
    outputs: &OutputPolicy,
) -> anyhow::Result<u8> {
    use salvor_core::stored::{stored_images, ContentBlobs, Pick};
    let stored = matches!(format, crate::FormatArg::Docker);
    if dir && stored {
        bail!("extract --dir: a containerd store's images are written with their blobs as stored as a tar only (--format docker-legacy or oci can be a directory)");
    }
    if dir {
        outputs.check_dir(output)?;
    } else {
        outputs.check_file(output)?;
    }
    let all = host.stores().images();
    let mut picks: Vec<(usize, Pick)> = Vec::new();
    for q in queries {
        for (i, r, name) in resolve_image(host, &all, q, "extract")? {
            picks.push((
                i,
                Pick {
                    id: r.id.clone(),
                    reference: name,
                },
            ));
        }
    }
    let stores_used: BTreeSet<usize> = picks.iter().map(|(i, _)| *i).collect();
    let [store_index] = stores_used.iter().copied().collect::<Vec<_>>()[..] else {
        bail!(
            "extract: the images named are in {} stores ({}); one archive holds the images of one store: pick it with --namespace",
            stores_used.len(),
            stores_used
                .iter()
                .map(|i| host.stores().stores[*i].identity().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    };
    let s = host.stores().stores[store_index].as_ref();
    let Some(c) = s
        .as_any()
        .downcast_ref::<salvor_containerd::ContainerdStore>()
    else {
        bail!("extract: {} is not a containerd store", s.identity());
    };
    let picks: Vec<Pick> = picks.into_iter().map(|(_, p)| p).collect();
    if !stored {
        return extract_decompressed(
            c,
            &picks,
            output,
            format,
            (dir, force),
            json_out,
            quiet,
            outputs,
        );
    }
    if force {
        bail!("extract --force: blobs as stored cannot be forced; --format docker-legacy (or oci) --force rebuilds a layer whose blob is gone or wrong from its snapshot, marked FORCED and unproven");
    }
    let images = stored_images(c, &picks)?;
    let total: u64 = {
        let mut seen = BTreeSet::new();
        images
            .iter()
            .flat_map(|i| {
                std::iter::once(&i.manifest)
                    .chain(&i.extra)
                    .chain(std::iter::once(&i.config))
                    .chain(&i.layers)
            })
            .filter(|b| seen.insert(b.digest.clone()))
            .map(|b| b.size)
            .fold(0, u64::saturating_add)
    };
    let pb = bytes_bar(total, quiet, "extracting");
    let inc = |n: u64| pb.inc(n);
    let blobs = ContentBlobs {
        store: c,
        progress: &inc,
    };
    let mut sink = outputs.file(output)?;
    let res = salvor_export::export_stored_tar_to(&images, &blobs, &mut sink, output);
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let report = res.map_err(|e| match e {
        salvor_export::ExportError::Sink(s) => anyhow::Error::from(s),
        e => anyhow::Error::from(e).context(format!("cannot write {}", output.display())),
    })?;
    sink.commit()?;
    pb.finish_and_clear();
    if json_out {
        print_json(&json!({
            "output": output,
            "format": "docker",
            "store": s.identity(),
            "images": images.iter().map(|i| json!({
                "id": i.manifest.digest,
                "tags": i.refs.iter().map(|r| &r.familiar).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "archive_sha256": report.archive_sha256,
            "bytes": report.bytes,
            "blobs_written": report.layers_written,
            "files": report.files.iter().map(|(p, h, n)| json!({"path": p, "sha256": h, "size": n})).collect::<Vec<_>>(),
        }))?;
    } else if !quiet {
        eprintln!(
            "wrote {} ({}, {} image(s), {} blob(s) as stored, each hashed to its digest)",
            output.display(),
            human_size(report.bytes),
            images.len(),
            report.layers_written
        );
        if let Some(h) = &report.archive_sha256 {
            eprintln!("archive sha256:{h}");
        }
    }
    Ok(0)
}

fn verify_all(host: &Host, queries: &[String], json_out: bool, quiet: bool) -> anyhow::Result<u8> {
    use salvor_forensic::verify::{check, layers_of, verdicts};
    let selected = select(host, queries)?;
    let stores = &host.stores().stores;
    let mut all_ok = true;
    let mut results = Vec::new();
    for (i, records) in &selected {
        let s = stores[*i].as_ref();
        let chains = layers_of(records);
        let total = crate::output::total(
            chains
                .iter()
                .filter_map(|c| s.layer(c).and_then(|l| l.size)),
        );
        let pb = bytes_bar(total, quiet, "verifying");
        let inc = |n: u64| pb.inc(n);
        let checked = check(s, &chains, &inc);
        pb.finish_and_clear();
        let v = verdicts(s, records, &checked);
        all_ok &= v.iter().all(|x| x.ok) && checked.all_ok();
        results.push((s, chains, checked, v));
    }
    if json_out {
        let v: Vec<Value> = results
            .iter()
            .map(|(s, _, checked, v)| {
                let mut j = checked.json(v, *s);
                if let Value::Object(m) = &mut j {
                    let id = s.identity();
                    m.insert("engine".into(), json!(id.engine));
                    m.insert("namespace".into(), json!(id.namespace));
                }
                j
            })
            .collect();
        print_json(&json!({ "ok": all_ok, "stores": v }))?;
        return Ok(if all_ok { 0 } else { EXIT_FINDINGS });
    }
    let mut out = io::stdout().lock();
    let mut t = Table::new(&[
        "ENGINE",
        "NAMESPACE",
        "LAYER (CHAIN ID)",
        "DIFF ID",
        "CONTENT",
        "METADATA",
        "FILES",
        "SIZE",
    ]);
    for (s, chains, checked, _) in &results {
        if let Some(line) = checked.copy_line() {
            writeln!(out, "{}: {}", s.identity(), printable(&line))?;
        }
        let cells = engine_cells(*s);
        for c in chains {
            let Some(v) = checked.layers.get(c) else {
                continue;
            };
            let r = &v.rebuild;
            let mut row = cells.to_vec();
            row.extend([
                short_id(c),
                r.diff_id
                    .as_deref()
                    .map(short_id)
                    .unwrap_or_else(|| "?".into()),
                v.content_cell(),
                v.metadata_cell(),
                r.files.to_string(),
                human_size(r.bytes),
            ]);
            t.row(row);
        }
    }
    t.print(&mut out)?;
    for (_, chains, checked, _) in &results {
        for c in chains {
            let Some(v) = checked.layers.get(c) else {
                continue;
            };
            if v.content() == "verified" && v.metadata() != "findings" {
                continue;
            }
            verify::print_details(&mut out, c, v)?;
        }
    }
    writeln!(out)?;
    for (s, _, _, verdicts) in &results {
        let id = s.identity();
        let ns = id.namespace.map(|n| format!(" {n}")).unwrap_or_default();
        for v in verdicts {
            let name = v.tags.first().cloned().unwrap_or_else(|| "<none>".into());
            if v.ok {
                writeln!(
                    out,
                    "{}{ns} image {} {}: verified",
                    id.engine,
                    short_id(&v.id),
                    printable(&name)
                )?;
            } else {
                writeln!(
                    out,
                    "{}{ns} image {} {}: FAILED: {}",
                    id.engine,
                    short_id(&v.id),
                    printable(&name),
                    printable(&v.problems.join("; "))
                )?;
            }
        }
    }
    Ok(if all_ok { 0 } else { EXIT_FINDINGS })
}

/// True when `q` names a container of Docker's graphdriver store.
fn docker_container(host: &Host, q: &str) -> bool {
    host.docker()
        .is_some_and(|d| d.find_container(q.trim().trim_start_matches('/')).is_ok())
}

/// True when `q` names an image of Docker's graphdriver store.
fn docker_image(host: &Host, q: &str) -> bool {
    host.docker()
        .is_some_and(|d| crate::commands::target::image(d, "export", q).is_ok())
}

/// The container `q` names (full id, unique id prefix, or name) among the stores other
/// than Docker's graphdriver store: (store index, record). An exact id or name wins over
/// prefixes; `cmd` names the command in errors.
fn model_container(host: &Host, q: &str, cmd: &str) -> anyhow::Result<(usize, ContainerRecord)> {
    let q = q.trim().trim_start_matches('/');
    let stores = &host.stores().stores;
    let mut found: Vec<(usize, ContainerRecord)> = host
        .stores()
        .find_container(q)
        .into_iter()
        .filter(|(i, _)| {
            stores[*i]
                .as_any()
                .downcast_ref::<salvor_docker::Store>()
                .is_none()
        })
        .collect();
    if found.len() > 1 {
        let exact: Vec<_> = found
            .iter()
            .filter(|(_, c)| c.id == q || c.name == q)
            .cloned()
            .collect();
        if !exact.is_empty() {
            found = exact;
        }
    }
    match found.as_slice() {
        [] => bail!(
            "{cmd}: no container matches {q:?} in any store ({})",
            store_list(host)
        ),
        [one] => Ok(one.clone()),
        many => bail!(
            "{cmd}: {q:?} is ambiguous: {}",
            many.iter()
                .map(|(i, c)| format!(
                    "{} {} ({})",
                    &c.id[..c.id.len().min(12)],
                    c.name,
                    stores[*i].identity()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A container's read-write snapshot and the snapshots under it (its `-init` and its
/// image's layers, nearest first), as whiteout-aware layer directories.
fn container_layers(
    host: &Host,
    q: &str,
    cmd: &str,
) -> anyhow::Result<(ContainerRecord, salvor_model::LayerView)> {
    let (i, c) = model_container(host, q, cmd)?;
    let s = host.stores().stores[i].as_ref();
    let view = s.rw_layer_view(&c.id).map_err(|e| {
        anyhow::anyhow!(
            "{cmd}: container {}: {}",
            c.name,
            salvor_model::error_chain(&e)
        )
    })?;
    Ok((c, view))
}

/// The layer directories of a view, top first.
fn view_dirs(view: &salvor_model::LayerView) -> anyhow::Result<Vec<salvor_whiteout::LayerDir<'_>>> {
    use salvor_model::ViewFiles;
    match &view.files {
        ViewFiles::Diff { dir, lowers, style } => {
            let mut v = vec![salvor_whiteout::LayerDir::new(
                view.source.as_ref(),
                dir,
                *style,
            )];
            v.extend(
                lowers
                    .iter()
                    .map(|l| salvor_whiteout::LayerDir::new(view.source.as_ref(), l, *style)),
            );
            Ok(v)
        }
        ViewFiles::Snapshot { root, .. } => Ok(vec![salvor_whiteout::LayerDir::new(
            view.source.as_ref(),
            root,
            salvor_model::WhiteoutStyle::Snapshot,
        )]),
        ViewFiles::Unavailable { reason } => bail!("{reason}"),
    }
}

/// `diff CONTAINER` of a containerd store's container: its read-write snapshot against
/// the snapshots under it.
fn diff(host: &Host, q: &str, json_out: bool) -> anyhow::Result<u8> {
    let (_, view) = container_layers(host, q, "diff")?;
    let dirs = view_dirs(&view)?;
    let changes = salvor_whiteout::changes_against(&dirs[0], None, &dirs[1..])?;
    crate::commands::rootfs::print_changes(&changes, json_out)?;
    Ok(0)
}

/// `export CONTAINER` of a containerd store's container: the flattened filesystem of its
/// snapshots, with the headers Docker >= 23 writes (permission bits, no names).
fn export(
    host: &Host,
    q: &str,
    output: &std::path::Path,
    with_volumes: bool,
    quiet: bool,
    outputs: &OutputPolicy,
) -> anyhow::Result<u8> {
    outputs.check_file(output)?;
    if with_volumes {
        bail!("export --with-volumes: not read for containerd stores' containers yet");
    }
    let (c, view) = container_layers(host, q, "export")?;
    let dirs = view_dirs(&view)?;
    let rules = salvor_whiteout::HeaderRules::engine_23();
    let mut sink = outputs.file(output)?;
    let res = salvor_whiteout::write_flattened_tar(&dirs, &rules, &mut sink);
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let bytes = res?;
    sink.commit()?;
    if !quiet {
        eprintln!(
            "wrote {} ({} bytes): the flattened filesystem of container {} ({})",
            output.display(),
            bytes,
            &c.id[..c.id.len().min(12)],
            printable(&c.name)
        );
    }
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
fn logs(
    cli: &Cli,
    host: &Host,
    outputs: &OutputPolicy,
    query: &str,
    timestamps: bool,
    since: Option<&str>,
    until: Option<&str>,
    tail: Option<&str>,
) -> anyhow::Result<u8> {
    let q = query.trim().trim_start_matches('/');
    // Docker's graphdriver store first, as the only store it always was.
    if docker_container(host, q) {
        if let Some(d) = host.docker() {
            return run_command(cli, d, outputs);
        }
    }
    let stores = &host.stores().stores;
    let (i, c) = model_container(host, q, "logs")?;
    if c.log_paths.is_empty() {
        bail!(
            "logs: container {} ({}) has no log file in the evidence",
            c.name,
            stores[i].identity()
        );
    }
    let opts = salvor_docker::logs::LogOptions {
        since: docker_containers::time_arg("since", since)?,
        until: docker_containers::time_arg("until", until)?,
        tail: docker_containers::tail_arg(tail)?,
        timestamps,
    };
    if stores[i].identity().engine != salvor_model::EngineKind::DockerContainerd {
        // containerd's own containers: the CRI log files, read by the store.
        let lines = stores[i]
            .container_logs(&c.id)
            .map_err(|e| anyhow::anyhow!("logs: {}: {}", c.name, salvor_model::error_chain(&e)))?;
        return write_model_logs(lines, &opts);
    }
    // The record lists the live file first; the reader wants the oldest first.
    let files = salvor_docker::logs::LogFiles {
        format: salvor_docker::logs::LogFormat::JsonFile,
        files: c.log_paths.iter().rev().cloned().collect(),
        not_regular: Vec::new(),
    };
    let reader = salvor_docker::logs::LogReader::new(stores[i].source().clone(), &files);
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::BufWriter::new(io::stderr().lock());
    let mut damage = Vec::new();
    let summary = salvor_docker::logs::write_logs(reader, &opts, &mut out, &mut err, &mut |e| {
        damage.push(e.to_string())
    })?;
    out.flush()?;
    err.flush()?;
    drop(err);
    for d in &damage {
        eprintln!("salvor: warning: {}", printable(d));
    }
    Ok(if summary.errors.is_empty() {
        0
    } else {
        EXIT_FINDINGS
    })
}

/// Writes a store's log lines like `docker logs` / `kubectl logs`: stdout lines to stdout,
/// stderr lines to stderr, `--since`/`--until`/`--tail`/`-t` as for Docker's logs; a line
/// that cannot be read is a warning naming the file and offset, and reading goes on
/// (exit 1).
fn write_model_logs(
    lines: salvor_model::LogLines<'_>,
    opts: &salvor_docker::logs::LogOptions,
) -> anyhow::Result<u8> {
    use salvor_model::LogStream;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::BufWriter::new(io::stderr().lock());
    let mut errors = Vec::new();
    let mut kept: std::collections::VecDeque<salvor_model::LogLine> = Default::default();
    let emit =
        |l: &salvor_model::LogLine, out: &mut dyn Write, err: &mut dyn Write| -> io::Result<bool> {
            if let (Some(since), Some(t)) = (opts.since, l.time) {
                if t < since {
                    return Ok(true);
                }
            }
            if let (Some(until), Some(t)) = (opts.until, l.time) {
                if t > until {
                    return Ok(false);
                }
            }
            let w: &mut dyn Write = match l.stream {
                LogStream::Stdout => out,
                LogStream::Stderr => err,
            };
            if opts.timestamps {
                let t = l
                    .time
                    .map(salvor_docker::format_rfc3339_nano_fixed)
                    .unwrap_or_else(|| "0001-01-01T00:00:00.000000000Z".to_string());
                w.write_all(t.as_bytes())?;
                w.write_all(b" ")?;
            }
            w.write_all(&l.line)?;
            Ok(true)
        };
    for item in lines {
        match item {
            Ok(l) => match opts.tail {
                Some(0) => {}
                Some(n) => {
                    if kept.len() == n {
                        kept.pop_front();
                    }
                    kept.push_back(l);
                }
                None => {
                    if !emit(&l, &mut out, &mut err)? {
                        break;
                    }
                }
            },
            Err(e) => errors.push(salvor_model::error_chain(&e)),
        }
    }
    for l in &kept {
        if !emit(l, &mut out, &mut err)? {
            break;
        }
    }
    out.flush()?;
    err.flush()?;
    drop(err);
    for e in &errors {
        eprintln!("salvor: warning: {}", printable(e));
    }
    Ok(if errors.is_empty() { 0 } else { EXIT_FINDINGS })
}

#[cfg(test)]
mod tests {
    use super::repo_tag;

    #[test]
    fn names_split_as_docker_images_shows_them() {
        let rt = |n: &str| {
            let (r, t) = repo_tag(n);
            format!("{r} {t}")
        };
        assert_eq!(rt("salvor/base:1.0"), "salvor/base 1.0");
        assert_eq!(rt("busybox"), "busybox latest");
        assert_eq!(rt("localhost:5000/x"), "localhost:5000/x latest");
        assert_eq!(rt("localhost:5000/x:2"), "localhost:5000/x 2");
        assert_eq!(rt("busybox@sha256:abcd"), "busybox <none>");
    }
}
