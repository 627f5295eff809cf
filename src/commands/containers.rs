//! `containers`, `logs`, `volumes`, and `inspect` of a container.
//!
//! Deviations from the docker CLI, on purpose (the evidence is a dead host):
//! * `CREATED` is an absolute UTC time (`2026-11-22 08:09:48 UTC`), not "2 hours ago".
//! * `STATUS` is absolute too: `Exited (3) at 2026-11-22 08:09:49 UTC`, `Created`,
//!   `Up since 2026-… UTC (running when the host stopped)`, `Restarting (1) since …`, `Dead`.
//! * In `--json`, `CreatedAt` is always UTC and `Labels`/`Networks`/`Mounts` are sorted
//!   (docker prints them in Go map order); `RunningFor` and `Size` are left out.
//! * `PORTS` lists each published port (`0.0.0.0:8080->80/tcp`) without docker's range
//!   grouping; ports exist only for containers that were running when the host stopped.

use std::io::Write;

use anyhow::Context;
use salvor_docker::containers::Container;
use salvor_docker::logs::{self, LogOptions, LogReader};
use salvor_docker::Store;
use serde_json::{json, Value};

use crate::commands::EXIT_FINDINGS;
use salvor_core::ps::{ellipsis, go_quote, ports, ps_json, status, volume_json};

use crate::output::{print_json, printable, short_time, Table};

pub fn containers(store: &Store, json_out: bool, no_trunc: bool) -> anyhow::Result<u8> {
    let (list, problems) = store.containers();
    for p in &problems {
        eprintln!(
            "salvor: warning: {}: {}",
            printable(&p.path.display().to_string()),
            printable(&p.what)
        );
    }
    let ident = salvor_model::ContainerStore::identity(store);
    let engine = ident.engine.as_str();
    if json_out {
        let v: Vec<Value> = list
            .iter()
            .map(|c| {
                let mut v = ps_json(c);
                if let Value::Object(m) = &mut v {
                    m.insert("engine".into(), json!(engine));
                    if let Some(ns) = &ident.namespace {
                        m.insert("namespace".into(), json!(ns));
                    }
                }
                v
            })
            .collect();
        print_json(&v)?;
        return Ok(0);
    }
    let with_ns = ident.namespace.is_some();
    let mut head = vec!["ENGINE"];
    if with_ns {
        head.push("NAMESPACE");
    }
    head.extend([
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]);
    let mut t = Table::new(&head);
    for cells in docker_container_rows(&list, no_trunc) {
        let mut row = vec![engine.to_string()];
        if with_ns {
            row.push(printable(ident.namespace.as_deref().unwrap_or("")));
        }
        row.extend(cells);
        t.row(row);
    }
    t.print(&mut std::io::stdout().lock())?;
    Ok(0)
}

/// Docker containers as table cells: CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES.
pub fn docker_container_rows(list: &[Container], no_trunc: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for c in list {
        let cmd = if no_trunc {
            c.command()
        } else {
            ellipsis(&c.command(), 20)
        };
        let image = if !no_trunc && c.image.starts_with("sha256:") {
            c.image["sha256:".len()..].chars().take(12).collect()
        } else {
            c.image.clone()
        };
        rows.push(vec![
            if no_trunc {
                c.id.clone()
            } else {
                c.short_id().to_string()
            },
            printable(&image),
            go_quote(&cmd),
            short_time(c.created.as_deref()),
            printable(&status(c)),
            ports(c),
            printable(&c.name),
        ]);
    }
    rows
}

/// `docker inspect CONTAINER`.
pub fn inspect_container(store: &Store, c: &Container) -> anyhow::Result<u8> {
    print_json(&json!([salvor_core::inspect::container(store, c)]))?;
    Ok(0)
}

pub(crate) fn tail_arg(s: Option<&str>) -> anyhow::Result<Option<usize>> {
    match s.map(str::trim) {
        None | Some("all") | Some("") => Ok(None),
        Some(n) => match n.parse::<i64>() {
            Ok(v) if v < 0 => Ok(None),
            Ok(v) => Ok(Some(usize::try_from(v).unwrap_or(usize::MAX))),
            Err(_) => anyhow::bail!("--tail {n:?}: expected a number or \"all\""),
        },
    }
}

pub(crate) fn time_arg(
    name: &str,
    s: Option<&str>,
) -> anyhow::Result<Option<salvor_source::Timestamp>> {
    match s {
        None => Ok(None),
        Some(v) => logs::parse_time_arg(v).map(Some).with_context(|| {
            format!("--{name} {v:?}: expected RFC 3339 (2026-11-22T08:09:48Z), a date (2026-11-22) or unix seconds (relative times like 10m are not accepted: the host is dead)")
        }),
    }
}

pub fn logs_cmd(
    store: &Store,
    query: &str,
    timestamps: bool,
    since: Option<&str>,
    until: Option<&str>,
    tail: Option<&str>,
) -> anyhow::Result<u8> {
    let c = crate::commands::target::container(store, "logs", query)?;
    let opts = LogOptions {
        since: time_arg("since", since)?,
        until: time_arg("until", until)?,
        tail: tail_arg(tail)?,
        timestamps,
    };
    let reader = LogReader::for_container(store, &c)?;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = std::io::BufWriter::new(stderr.lock());
    let mut damage = Vec::new();
    let summary = logs::write_logs(reader, &opts, &mut out, &mut err, &mut |e| {
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

/// An empty `volumes` answer (a host without a Docker data-root).
pub fn volumes_json_or_table(_none: Option<()>, json_out: bool) -> anyhow::Result<u8> {
    if json_out {
        print_json(&json!({ "Volumes": [], "BindMounts": [] }))?;
    } else {
        Table::new(&["DRIVER", "VOLUME NAME", "CREATED", "USED BY"])
            .print(&mut std::io::stdout().lock())?;
    }
    Ok(0)
}

pub fn volumes(store: &Store, json_out: bool) -> anyhow::Result<u8> {
    let (list, _) = store.containers();
    let (vols, problems) = store.volumes(&list);
    let binds = store.bind_mounts(&list);
    for p in &problems {
        eprintln!(
            "salvor: warning: {}: {}",
            printable(&p.path.display().to_string()),
            printable(&p.what)
        );
    }
    if json_out {
        let v: Vec<Value> = vols.iter().map(volume_json).collect();
        print_json(&json!({ "Volumes": v, "BindMounts": binds }))?;
        return Ok(0);
    }
    let mut t = Table::new(&["DRIVER", "VOLUME NAME", "CREATED", "USED BY"]);
    for v in &vols {
        let users: Vec<String> = v
            .used_by
            .iter()
            .map(|u| format!("{}:{}", u.container_name, u.destination))
            .collect();
        t.row(vec![
            printable(&v.driver),
            printable(&v.name),
            short_time(v.created_at.as_deref()),
            printable(&users.join(",")),
        ]);
    }
    let mut out = std::io::stdout().lock();
    t.print(&mut out)?;
    if !binds.is_empty() {
        writeln!(out)?;
        let mut b = Table::new(&[
            "CONTAINER",
            "BIND SOURCE (HOST PATH)",
            "DESTINATION",
            "IN EVIDENCE",
        ]);
        for m in &binds {
            b.row(vec![
                printable(&m.container_name),
                printable(&m.source),
                printable(&m.destination),
                match &m.in_evidence {
                    Some(p) => format!("yes: /{}", printable(&p.display().to_string())),
                    None => "no (host path outside the evidence; not followed)".into(),
                },
            ]);
        }
        b.print(&mut out)?;
    }
    Ok(0)
}
