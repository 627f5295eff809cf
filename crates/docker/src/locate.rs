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
    for f in unit_files(source, base) {
        if let Ok(bytes) = source.read_limited(&f, MAX_SMALL_FILE) {
            for root in data_root_flags(&String::from_utf8_lossy(&bytes)) {
                out.push(base.join(root.trim_start_matches('/')));
            }
        }
    }
    out.push(base.join("var/lib/docker"));
    out
}

/// The docker unit, its drop-ins, and the distributions' daemon option files.
fn unit_files(source: &dyn Source, base: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        "etc/systemd/system/docker.service",
        "lib/systemd/system/docker.service",
        "usr/lib/systemd/system/docker.service",
        "etc/sysconfig/docker",
        "etc/default/docker",
    ]
    .iter()
    .map(|p| base.join(p))
    .collect();
    let dropins = base.join("etc/systemd/system/docker.service.d");
    if let Ok(mut entries) = source.read_dir(&dropins) {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        files.extend(entries.into_iter().map(|e| dropins.join(e.name)));
    }
    files
}

/// `--data-root X`, `--data-root=X`, `-g X`, `--graph X` in a command line or unit file.
pub fn data_root_flags(text: &str) -> Vec<String> {
    flag_values(text, &["--data-root", "--graph", "-g"])
        .into_iter()
        .filter(|v| v.starts_with('/'))
        .collect()
}

/// The values of `FLAG X` and `FLAG=X` for each of `flags` in a command line or unit file.
fn flag_values(text: &str, flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        for flag in flags {
            if w == flag {
                if let Some(v) = words.get(i + 1) {
                    out.push(v.to_string());
                }
            } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                out.push(v.to_string());
            }
        }
    }
    out
}

/// The storage driver options a host root at `base` configures: `storage-opts` in
/// `etc/docker/daemon.json`, then `--storage-opt` in the docker unit, its drop-ins,
/// `etc/sysconfig/docker`, `etc/sysconfig/docker-storage` and `etc/default/docker`.
pub fn configured_storage_opts(source: &dyn Source, base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(v) = read_json(source, &base.join("etc/docker/daemon.json")) {
        if let Some(opts) = v.get("storage-opts").and_then(|x| x.as_array()) {
            out.extend(opts.iter().filter_map(|o| o.as_str()).map(str::to_string));
        }
    }
    let mut files = unit_files(source, base);
    files.push(base.join("etc/sysconfig/docker-storage"));
    for f in files {
        if let Ok(bytes) = source.read_limited(&f, MAX_SMALL_FILE) {
            out.extend(flag_values(
                &String::from_utf8_lossy(&bytes),
                &["--storage-opt"],
            ));
        }
    }
    out
}

/// The LVM thin pool a `dm.thinpooldev` value names, as (volume group, logical volume):
/// `/dev/mapper/docker-thinpool` (device-mapper name, `-` doubled inside names) or
/// `/dev/docker/thinpool`.
pub fn thinpooldev_lv(value: &str) -> Option<(String, String)> {
    if let Some(name) = value.strip_prefix("/dev/mapper/") {
        // Split at the first single '-'; "--" stands for a '-' inside a name.
        let b = name.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'-' {
                if b.get(i + 1) == Some(&b'-') {
                    i += 2;
                    continue;
                }
                let (vg, lv) = (&name[..i], &name[i + 1..]);
                if vg.is_empty() || lv.is_empty() {
                    return None;
                }
                return Some((vg.replace("--", "-"), lv.replace("--", "-")));
            }
            i += 1;
        }
        return None;
    }
    let rest = value.strip_prefix("/dev/")?;
    let (vg, lv) = rest.split_once('/')?;
    (!vg.is_empty() && !lv.is_empty() && !lv.contains('/'))
        .then(|| (vg.to_string(), lv.to_string()))
}

/// The `dm.thinpooldev` a host root at `base` configures (direct-lvm devicemapper).
pub fn configured_thinpooldev(source: &dyn Source, base: &Path) -> Option<String> {
    configured_storage_opts(source, base)
        .into_iter()
        .find_map(|o| o.strip_prefix("dm.thinpooldev=").map(str::to_string))
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

    #[test]
    fn thinpooldev_names_map_to_logical_volumes() {
        let lv = |vg: &str, lv: &str| Some((vg.to_string(), lv.to_string()));
        assert_eq!(
            thinpooldev_lv("/dev/mapper/docker-thinpool"),
            lv("docker", "thinpool")
        );
        assert_eq!(
            thinpooldev_lv("/dev/mapper/my--vg-thin--pool"),
            lv("my-vg", "thin-pool")
        );
        assert_eq!(
            thinpooldev_lv("/dev/docker/thinpool"),
            lv("docker", "thinpool")
        );
        assert_eq!(thinpooldev_lv("/dev/mapper/nodash"), None);
        assert_eq!(thinpooldev_lv("/dev/mapper/-x"), None);
        assert_eq!(thinpooldev_lv("/dev/sda"), None);
        assert_eq!(thinpooldev_lv("thinpool"), None);
        let unit = "ExecStart=/usr/bin/dockerd --storage-opt dm.thinpooldev=/dev/mapper/a-b --storage-opt=dm.basesize=20G";
        assert_eq!(
            flag_values(unit, &["--storage-opt"]),
            vec!["dm.thinpooldev=/dev/mapper/a-b", "dm.basesize=20G"]
        );
    }
}
