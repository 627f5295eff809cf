//! Finding the Docker data-root inside evidence.
//!
//! `--root` may name the data-root itself, an archive that wraps it one directory down
//! (`docker/…`), or a host's root directory. For a host root the configured data-root wins:
//! `data-root` (or the older `graph`) in `etc/docker/daemon.json`, then `--data-root` / `-g` /
//! `--graph` on the dockerd command line in the systemd unit, its drop-ins, or
//! `etc/sysconfig/docker` / `etc/default/docker`; then `var/lib/docker`.

use std::path::{Path, PathBuf};

use salvor_source::{FileKind, Source};

use crate::{read_json, StoreError, MAX_SMALL_FILE};

/// True when `dir` looks like a data-root (has `image/` or `graph/`).
pub fn is_data_root(source: &dyn Source, dir: &Path) -> bool {
    ["image", "graph"]
        .iter()
        .any(|d| matches!(source.metadata(&dir.join(d)), Ok(m) if m.kind == FileKind::Dir))
}

/// Finds the data-root; returns its path relative to the source root.
pub fn find_data_root(source: &dyn Source) -> Result<PathBuf, StoreError> {
    let mut looked = Vec::new();
    let mut bases = vec![PathBuf::new()];
    if let Ok(entries) = source.read_dir(Path::new("")) {
        bases.extend(
            entries
                .into_iter()
                .filter(|e| e.kind == FileKind::Dir)
                .map(|e| PathBuf::from(e.name)),
        );
    }
    for base in &bases {
        looked.push(display(base));
        if is_data_root(source, base) {
            return Ok(base.clone());
        }
        for cand in host_candidates(source, base) {
            looked.push(display(&cand));
            if is_data_root(source, &cand) {
                return Ok(cand);
            }
        }
    }
    Err(StoreError::NoDataRoot {
        evidence: source.describe(),
        looked: looked.join(", "),
    })
}

fn display(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        "/".to_string()
    } else {
        format!("/{}", p.display())
    }
}

/// The data-roots a host root at `base` configures (absolute paths as the host saw them:
/// `data-root`/`graph` in `etc/docker/daemon.json`, `--data-root`/`-g`/`--graph` in the
/// docker unit and its drop-ins, `etc/sysconfig/docker`, `etc/default/docker`), then the
/// default `/var/lib/docker`.
pub fn configured_data_roots(source: &dyn Source, base: &Path) -> Vec<String> {
    host_candidates(source, base)
        .into_iter()
        .filter_map(|p| {
            p.strip_prefix(base)
                .ok()
                .map(|r| format!("/{}", r.display()))
        })
        .collect()
}

/// Data-root candidates of a host root at `base`, configured ones first.
fn host_candidates(source: &dyn Source, base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !source.exists(&base.join("etc")) && !source.exists(&base.join("var")) {
        return out;
    }
    if let Ok(v) = read_json(source, &base.join("etc/docker/daemon.json")) {
        for key in ["data-root", "graph"] {
            if let Some(s) = v.get(key).and_then(|x| x.as_str()) {
                out.push(base.join(s.trim_start_matches('/')));
            }
        }
    }
    let mut unit_files: Vec<PathBuf> = [
        "etc/systemd/system/docker.service",
        "lib/systemd/system/docker.service",
        "usr/lib/systemd/system/docker.service",
        "etc/sysconfig/docker",
        "etc/default/docker",
    ]
    .iter()
    .map(|p| base.join(p))
    .collect();
    if let Ok(entries) = source.read_dir(&base.join("etc/systemd/system/docker.service.d")) {
        for e in entries {
            unit_files.push(
                base.join("etc/systemd/system/docker.service.d")
                    .join(e.name),
            );
        }
    }
    for f in unit_files {
        if let Ok(bytes) = source.read_limited(&f, MAX_SMALL_FILE) {
            for root in data_root_flags(&String::from_utf8_lossy(&bytes)) {
                out.push(base.join(root.trim_start_matches('/')));
            }
        }
    }
    out.push(base.join("var/lib/docker"));
    out
}

/// `--data-root X`, `--data-root=X`, `-g X`, `--graph X` in a command line or unit file.
pub fn data_root_flags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        for flag in ["--data-root", "--graph", "-g"] {
            if *w == flag {
                if let Some(v) = words.get(i + 1) {
                    if v.starts_with('/') {
                        out.push(v.to_string());
                    }
                }
            } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                if v.starts_with('/') {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn flags_are_found_in_unit_files() {
        let unit = "[Service]\nExecStart=/usr/bin/dockerd -H fd:// --data-root=/srv/docker\nExecStart=/usr/bin/dockerd -g /data/d\nOPTIONS='--graph /x'";
        assert_eq!(data_root_flags(unit), vec!["/srv/docker", "/data/d", "/x"]);
        assert!(data_root_flags("--data-root relative").is_empty());
    }
}
