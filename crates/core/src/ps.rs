//! What `docker ps` shows of a container: the STATUS, PORTS and MOUNTS columns, and the
//! `docker ps --format '{{json .}}'` object; and `docker volume ls`'s object of a volume.
//!
//! Deviations from the docker CLI, on purpose (the evidence is a dead host): STATUS is
//! absolute (`Exited (3) at 2026-11-22 08:09:49 UTC`, `Up since … (running when the host
//! stopped)`); in the JSON, `CreatedAt` is always UTC and `Labels`/`Networks`/`Mounts` are
//! sorted (docker prints them in Go map order); `RunningFor` and `Size` are left out.

use salvor_docker::containers::Container;
use salvor_docker::logs;
use salvor_docker::Volume;
use serde_json::{json, Value};

use crate::format::short_time;

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if !is_go_printable(c) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || u == 0xad
        || (0x200b..=0x200f).contains(&u)
        || (0x2028..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u))
}

/// docker's `formatter.Ellipsis` for single-width text.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
}

/// A time as the tables show it.
fn when(t: Option<&str>) -> String {
    short_time(t)
}

/// The STATUS column (absolute times; see the module docs).
pub fn status(c: &Container) -> String {
    let st = &c.state;
    let health = st
        .health
        .as_deref()
        .filter(|h| !h.is_empty() && *h != "none")
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    match st.status.as_str() {
        "running" => format!(
            "Up since {} (running when the host stopped){health}",
            when(st.started_at.as_deref())
        ),
        "paused" => format!(
            "Up since {} (Paused; running when the host stopped)",
            when(st.started_at.as_deref())
        ),
        "restarting" => format!(
            "Restarting ({}) since {}",
            st.exit_code,
            when(st.finished_at.as_deref())
        ),
        "removing" => "Removal In Progress".into(),
        "dead" => "Dead".into(),
        "created" => "Created".into(),
        _ => format!(
            "Exited ({}) at {}",
            st.exit_code,
            when(st.finished_at.as_deref())
        ),
    }
}

/// The PORTS column.
pub fn ports(c: &Container) -> String {
    c.ports
        .iter()
        .map(|p| match p.public_port {
            Some(pubp) => format!("{}:{}->{}/{}", p.ip, pubp, p.private_port, p.proto),
            None => format!("{}/{}", p.private_port, p.proto),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The MOUNTS column (names, or sources of bind mounts), each cut to 15 characters with `trunc`.
pub fn mounts(c: &Container, trunc: bool) -> String {
    c.mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc {
                ellipsis(n, 15)
            } else {
                n.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `CreatedAt` as Go prints a UTC time.
fn created_at(c: &Container) -> String {
    c.created
        .as_deref()
        .and_then(logs::parse_time)
        .map(logs::format_go_utc_seconds)
        .unwrap_or_default()
}

/// One container as `docker ps --no-trunc --format '{{json .}}'` prints it, plus salvor's
/// details.
pub fn ps_json(c: &Container) -> Value {
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut networks = c.networks.clone();
    networks.sort();
    json!({
        "Command": go_quote(&c.command()),
        "CreatedAt": created_at(c),
        "ID": c.id,
        "Image": c.image,
        "Labels": labels.join(","),
        "LocalVolumes": c.mounts.iter().filter(|m| m.driver == "local").count().to_string(),
        "Mounts": mounts(c, false),
        "Names": c.name,
        "Networks": networks.join(","),
        "Platform": Value::Null,
        "Ports": ports(c),
        "State": c.state.status,
        "Status": status(c),
        "Salvor": c,
    })
}

/// One volume as `docker volume ls --format '{{json .}}'` shows it, plus whether its data
/// is inside the evidence and which containers mount it.
pub fn volume_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": Value::Null,
        "Scope": v.scope,
        "Anonymous": v.anonymous,
        "DataInEvidence": v.data.as_ref().map(|p| format!("/{}", p.display())),
        "UsedBy": v.used_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote("sh -c 'a\n\"b\"'"), "\"sh -c 'a\\n\\\"b\\\"'\"");
        assert_eq!(go_quote("naïve\u{1b}"), "\"naïve\\x1b\"");
        assert_eq!(go_quote("\u{202e}"), "\"\\u202e\"");
        assert_eq!(
            ellipsis("abcdefghijklmnopqrstuvwxyz", 20),
            "abcdefghijklmnopqrs…"
        );
    }
}
