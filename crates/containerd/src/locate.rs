//! Finding containerd roots in the evidence (stores.md §1.2, §2): every candidate is probed,
//! a host can hold several.
//!
//! * `<docker data-root>/containerd/daemon`: the containerd dockerd manages (its data-root
//!   recorded). Data-roots probed: the evidence itself, each top-level directory (an archive
//!   wrapping a data-root one directory down), and of a host root `var/lib/docker`,
//!   `data-root`/`graph` of `etc/docker/daemon.json` and rootless
//!   `home/<user>/.local/share/docker`.
//! * A system containerd: `var/lib/containerd`, the `root` of `etc/containerd/config.toml`
//!   (and of the files its `imports` name), k3s `var/lib/rancher/k3s/agent/containerd`, RKE2
//!   `var/lib/rancher/rke2/agent/containerd`, microk8s
//!   `var/snap/microk8s/common/var/lib/containerd`.
//! * The evidence itself (or a top-level directory of it) when it is a containerd root.
//!
//! A directory is a containerd root when it holds `io.containerd.metadata.v1.bolt/meta.db`
//! as a regular file.

use std::path::{Component, Path, PathBuf};

use salvor_model::Problem;
use salvor_source::{FileKind, Source};

/// meta.db's path under a containerd root.
pub const META_DB: &str = "io.containerd.metadata.v1.bolt/meta.db";

/// Config files (`config.toml`, daemon.json) read at most this large.
const MAX_CONFIG: u64 = 1 << 20;

/// Files an `imports` glob may expand to, at most.
const MAX_IMPORTS: usize = 64;

/// One containerd root found in the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The root, relative to the evidence root (`var/lib/containerd`,
    /// `var/lib/docker/containerd/daemon`; `""` when the evidence is the root).
    pub root: PathBuf,
    /// How it was found, in words (`docker data-root var/lib/docker: containerd/daemon`).
    pub found_by: String,
    /// The Docker data-root of the host, when Docker uses this containerd (dockerd-managed:
    /// always; a system containerd: when the host has a data-root).
    pub docker_data_root: Option<PathBuf>,
}

/// A path given as a containerd root is not one.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// No meta.db under it.
    #[error("{}: not a containerd root: {why}", show(.root))]
    NotARoot {
        /// The path given.
        root: PathBuf,
        /// What is missing or wrong.
        why: String,
    },
}

fn show(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".into()
    } else {
        p.display().to_string()
    }
}

/// Why `dir` is not a containerd root (`None` when it is one).
fn not_a_root(src: &dyn Source, dir: &Path) -> Option<String> {
    let p = dir.join(META_DB);
    match src.metadata(&p) {
        Ok(m) if m.kind == FileKind::Regular => None,
        Ok(m) => Some(format!(
            "{} is a {}, not a regular file",
            p.display(),
            m.kind
        )),
        Err(e) => Some(salvor_source::error_chain(&e)),
    }
}

/// True when `dir` holds `io.containerd.metadata.v1.bolt/meta.db` as a regular file.
pub fn is_containerd_root(src: &dyn Source, dir: &Path) -> bool {
    not_a_root(src, dir).is_none()
}

/// `path` (relative to the evidence, a leading `/` ignored) as a containerd root, as
/// `--containerd-root` names one. A path ending in `containerd/daemon` is taken for a
/// dockerd-managed containerd and its data-root recorded.
pub fn explicit_root(src: &dyn Source, path: &Path) -> Result<Located, LocateError> {
    let root: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if let Some(why) = not_a_root(src, &root) {
        return Err(LocateError::NotARoot { root, why });
    }
    let docker_data_root = (root.ends_with("containerd/daemon"))
        .then(|| root.parent().and_then(Path::parent).map(Path::to_path_buf))
        .flatten();
    Ok(Located {
        found_by: format!("given as the containerd root ({})", show(&root)),
        root,
        docker_data_root,
    })
}

/// Every containerd root of the evidence, in the order probed (dockerd-managed ones first),
/// each once; the problems met reading configuration on the way.
pub fn locate(src: &dyn Source) -> (Vec<Located>, Vec<Problem>) {
    let mut found: Vec<Located> = Vec::new();
    let mut problems = Vec::new();
    let add = |found: &mut Vec<Located>, l: Located| {
        if !found.iter().any(|f| f.root == l.root) {
            found.push(l);
        }
    };
    let mut bases = vec![PathBuf::new()];
    if let Ok(entries) = src.read_dir(Path::new("")) {
        bases.extend(
            entries
                .into_iter()
                .filter(|e| e.kind == FileKind::Dir)
                .map(|e| PathBuf::from(e.name)),
        );
    }
    for base in &bases {
        // The evidence (or a directory of it) a containerd root itself.
        if is_containerd_root(src, base) {
            add(
                &mut found,
                Located {
                    root: base.clone(),
                    found_by: format!("{} is a containerd root", show(base)),
                    docker_data_root: None,
                },
            );
        }
        // Docker data-roots with a dockerd-managed containerd.
        let data_roots = docker_data_roots(src, base, &mut problems);
        for (dr, how) in &data_roots {
            let root = dr.join("containerd/daemon");
            if is_containerd_root(src, &root) {
                add(
                    &mut found,
                    Located {
                        root,
                        found_by: format!(
                            "docker data-root {} ({how}): containerd/daemon",
                            show(dr)
                        ),
                        docker_data_root: Some(dr.clone()),
                    },
                );
            }
        }
        // A system containerd, when `base` is a host root.
        if !src.exists(&base.join("etc")) && !src.exists(&base.join("var")) {
            continue;
        }
        let docker = data_roots
            .iter()
            .find(|(d, _)| is_docker_data_root(src, d))
            .map(|(d, _)| d.clone());
        for (root, how, configured) in system_roots(src, base, &mut problems) {
            if is_containerd_root(src, &root) {
                add(
                    &mut found,
                    Located {
                        root,
                        found_by: how,
                        docker_data_root: docker.clone(),
                    },
                );
            } else if configured && src.exists(&root) {
                problems.push(Problem {
                    path: root.clone(),
                    what: format!(
                        "{how}, but it holds no {META_DB}: {}",
                        not_a_root(src, &root).unwrap_or_default()
                    ),
                });
            }
        }
    }
    (found, problems)
}

/// True when `dir` looks like a Docker data-root: it has an `engine-id`, `image/`,
/// `containers/` or `containerd/daemon/`.
fn is_docker_data_root(src: &dyn Source, dir: &Path) -> bool {
    ["engine-id", "image", "containers", "containerd/daemon"]
        .iter()
        .any(|p| src.exists(&dir.join(p)))
}

/// Docker data-root candidates at `base`: `base` itself, then for a host root the
/// configured ones, `var/lib/docker` and rootless ones; each with how it was found.
fn docker_data_roots(
    src: &dyn Source,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, String)> {
    let mut out = vec![(base.to_path_buf(), "the evidence's root".to_string())];
    if !base.as_os_str().is_empty() {
        out[0].1 = format!("the directory {}", base.display());
    }
    if !src.exists(&base.join("etc")) && !src.exists(&base.join("var")) {
        return out;
    }
    let daemon_json = base.join("etc/docker/daemon.json");
    match src.read_limited(&daemon_json, MAX_CONFIG) {
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => {
                for key in ["data-root", "graph"] {
                    if let Some(s) = v.get(key).and_then(|x| x.as_str()) {
                        if let Some(p) = host_path(base, s) {
                            out.push((p, format!("{key} in {}", daemon_json.display())));
                        }
                    }
                }
            }
            Err(e) => problems.push(Problem {
                path: daemon_json,
                what: format!("not JSON: {e}"),
            }),
        },
        Err(e) if e.is_not_found() => {}
        Err(e) => problems.push(Problem {
            path: daemon_json,
            what: salvor_source::error_chain(&e),
        }),
    }
    out.push((base.join("var/lib/docker"), "the default data-root".into()));
    let home = base.join("home");
    if let Ok(users) = src.read_dir(&home) {
        for u in users.into_iter().filter(|e| e.kind == FileKind::Dir) {
            let d = home.join(&u.name).join(".local/share/docker");
            if src.exists(&d) {
                out.push((d, "a rootless data-root".into()));
            }
        }
    }
    out
}

/// An absolute path as the host saw it, inside `base`; `None` for a relative or escaping one.
fn host_path(base: &Path, s: &str) -> Option<PathBuf> {
    let s = s.trim();
    if !s.starts_with('/') {
        return None;
    }
    let mut p = base.to_path_buf();
    for c in Path::new(s).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(p)
}

/// A system containerd's root candidates at host root `base`: (root, how found, whether a
/// configuration named it).
fn system_roots(
    src: &dyn Source,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, String, bool)> {
    let mut out = Vec::new();
    let configs = [
        "etc/containerd/config.toml",
        "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
        "var/lib/rancher/rke2/agent/etc/containerd/config.toml",
        "var/snap/microk8s/current/args/containerd.toml",
    ];
    for cfg in configs {
        let cfg = base.join(cfg);
        let mut files = vec![cfg.clone()];
        let mut i = 0;
        while i < files.len() {
            let f = files[i].clone();
            i += 1;
            let text = match src.read_limited(&f, MAX_CONFIG) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) if e.is_not_found() && f == cfg => break,
                Err(e) => {
                    problems.push(Problem {
                        path: f.clone(),
                        what: salvor_source::error_chain(&e),
                    });
                    continue;
                }
            };
            let parsed = parse_config(&text);
            if let Some(root) = &parsed.root {
                match host_path(base, root) {
                    Some(p) => out.push((p, format!("root in {}", f.display()), true)),
                    None => problems.push(Problem {
                        path: f.clone(),
                        what: format!("root {root:?} is not an absolute path"),
                    }),
                }
            }
            if f != cfg {
                continue; // imports of imports are not followed
            }
            for imp in parsed.imports {
                let Some(p) = host_path(base, &imp) else {
                    problems.push(Problem {
                        path: f.clone(),
                        what: format!("import {imp:?} is not an absolute path"),
                    });
                    continue;
                };
                for m in expand_glob(src, &p).into_iter().take(MAX_IMPORTS) {
                    if !files.contains(&m) {
                        files.push(m);
                    }
                }
            }
        }
    }
    for (p, how) in [
        ("var/lib/containerd", "the default containerd root"),
        (
            "var/lib/rancher/k3s/agent/containerd",
            "k3s's containerd root",
        ),
        (
            "var/lib/rancher/rke2/agent/containerd",
            "RKE2's containerd root",
        ),
        (
            "var/snap/microk8s/common/var/lib/containerd",
            "microk8s's containerd root",
        ),
    ] {
        out.push((base.join(p), how.to_string(), false));
    }
    out
}

/// `p`, or when its last component has a `*`, the regular files of its directory that
/// match it (sorted).
fn expand_glob(src: &dyn Source, p: &Path) -> Vec<PathBuf> {
    let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    if !name.contains('*') {
        return vec![p.to_path_buf()];
    }
    let dir = p.parent().unwrap_or(Path::new(""));
    let Ok(entries) = src.read_dir(dir) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| e.kind == FileKind::Regular && glob_match(&name, &e.name.to_string_lossy()))
        .map(|e| dir.join(e.name))
        .collect()
}

/// `*`-only glob matching (`*.toml`, `10-*`).
fn glob_match(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pat == s;
    }
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// What salvor reads of a containerd `config.toml`: the top-level `root` and `imports`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigToml {
    /// `root = "…"`.
    pub root: Option<String>,
    /// `imports = ["…", …]` (may span lines).
    pub imports: Vec<String>,
}

/// Reads the top-level `root` and `imports` keys of a containerd `config.toml` (keys after the
/// first `[table]` header belong to tables and are not top-level). A simple reader of TOML's
/// basic and literal strings, not a full TOML parser: what it cannot read it leaves out.
pub fn parse_config(text: &str) -> ConfigToml {
    let mut out = ConfigToml::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let l = line.trim();
        if l.starts_with('[') {
            break;
        }
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        match key.trim().trim_matches('"') {
            "root" => out.root = toml_strings(value.trim()).into_iter().next(),
            "imports" => {
                let mut v = value.trim().to_string();
                // An array spanning lines: read on to the closing bracket.
                let mut more = 0;
                while v.starts_with('[') && !closed(&v) && more < 1000 {
                    match lines.next() {
                        Some(n) => {
                            v.push('\n');
                            v.push_str(n);
                        }
                        None => break,
                    }
                    more += 1;
                }
                out.imports = toml_strings(&v);
            }
            _ => {}
        }
    }
    out
}

/// True when the `[` array has its `]` outside strings (comments ignored).
fn closed(v: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut esc = false;
    let mut comment = false;
    for c in v.chars() {
        if comment {
            comment = c != '\n';
            continue;
        }
        match quote {
            Some(q) => {
                if esc {
                    esc = false;
                } else if c == '\\' && q == '"' {
                    esc = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                ']' => return true,
                '#' => comment = true,
                _ => {}
            },
        }
    }
    false
}

/// The basic (`"…"`, escapes `\"`, `\\`, `\t`, `\n`) and literal (`'…'`) strings of a TOML
/// value, in order, comments (`#` to the end of a line) skipped.
fn toml_strings(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        match c {
            '#' => {
                for c in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                let mut ok = false;
                while let Some(c) = it.next() {
                    match c {
                        '"' => {
                            ok = true;
                            break;
                        }
                        '\\' => match it.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(o) => s.push(o),
                            None => break,
                        },
                        o => s.push(o),
                    }
                }
                if ok {
                    out.push(s);
                }
            }
            '\'' => {
                let s: String = it.by_ref().take_while(|&c| c != '\'').collect();
                out.push(s);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, salvor_source::DirSource) {
        let d = tempfile::tempdir().expect("tempdir");
        for (p, body) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, body).expect("write");
        }
        let src = salvor_source::DirSource::new(d.path()).expect("source");
        (d, src)
    }

    fn roots(l: &[Located]) -> Vec<(String, Option<String>)> {
        l.iter()
            .map(|l| {
                (
                    l.root.display().to_string(),
                    l.docker_data_root.as_ref().map(|d| d.display().to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn config_toml_root_and_imports() {
        let c = parse_config(
            "version = 2\n# comment\nroot = \"/data/containerd\" # moved\nstate = '/run/x'\nimports = [\n  \"/etc/containerd/conf.d/*.toml\", # first\n  '/etc/x.toml'\n]\n[plugins]\n  root = \"/not/top\"\n",
        );
        assert_eq!(c.root.as_deref(), Some("/data/containerd"));
        assert_eq!(c.imports, ["/etc/containerd/conf.d/*.toml", "/etc/x.toml"]);
        assert_eq!(
            parse_config("[plugins]\nroot = \"/x\"\n"),
            ConfigToml::default()
        );
        assert_eq!(
            parse_config("root = \"/a\\\"b\"").root.as_deref(),
            Some("/a\"b")
        );
        // Unterminated: nothing read, no panic.
        assert_eq!(parse_config("root = \"/a").root, None);
        assert_eq!(parse_config("imports = [\"/a\"").imports, ["/a"]);
        assert_eq!(
            parse_config("root = \"/a\" # \"/b\"").root.as_deref(),
            Some("/a")
        );
        assert!(glob_match("*.toml", "10-a.toml"));
        assert!(glob_match("10-*-x", "10-a-x"));
        assert!(!glob_match("*.toml", "a.tom"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn host_roots_are_all_found() {
        let (_d, src) = tree(&[
            ("var/lib/docker/containerd/daemon/io.containerd.metadata.v1.bolt/meta.db", "x"),
            ("srv/docker/containerd/daemon/io.containerd.metadata.v1.bolt/meta.db", "x"),
            ("etc/docker/daemon.json", r#"{"data-root": "/srv/docker"}"#),
            ("var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db", "x"),
            ("etc/containerd/config.toml", "imports = [\"/etc/containerd/conf.d/*.toml\"]\n"),
            ("etc/containerd/conf.d/10-root.toml", "root = \"/data/ctrd\"\n"),
            ("data/ctrd/io.containerd.metadata.v1.bolt/meta.db", "x"),
            ("var/lib/rancher/k3s/agent/containerd/io.containerd.metadata.v1.bolt/meta.db", "x"),
            ("var/lib/rancher/rke2/agent/containerd/io.containerd.metadata.v1.bolt/meta.db", "x"),
            (
                "var/snap/microk8s/common/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
                "x",
            ),
            // Not roots: no meta.db.
            ("var/lib/rancher/k3s/agent/containerd/x", ""),
        ]);
        let (found, problems) = locate(&src);
        assert!(problems.is_empty(), "{problems:?}");
        let dr = Some("srv/docker".to_string());
        assert_eq!(
            roots(&found),
            [
                ("srv/docker/containerd/daemon".to_string(), dr.clone()),
                (
                    "var/lib/docker/containerd/daemon".to_string(),
                    Some("var/lib/docker".to_string())
                ),
                ("data/ctrd".to_string(), dr.clone()),
                ("var/lib/containerd".to_string(), dr.clone()),
                (
                    "var/lib/rancher/k3s/agent/containerd".to_string(),
                    dr.clone()
                ),
                (
                    "var/lib/rancher/rke2/agent/containerd".to_string(),
                    dr.clone()
                ),
                (
                    "var/snap/microk8s/common/var/lib/containerd".to_string(),
                    dr.clone()
                ),
            ]
        );
        assert!(
            found[2]
                .found_by
                .contains("etc/containerd/conf.d/10-root.toml"),
            "{}",
            found[2].found_by
        );
        assert!(
            found[0]
                .found_by
                .contains("data-root in etc/docker/daemon.json"),
            "{}",
            found[0].found_by
        );
    }

    #[test]
    fn data_root_archives_and_bad_configs() {
        // A data-root archive: the evidence is the data-root.
        let (_d, src) = tree(&[(
            "containerd/daemon/io.containerd.metadata.v1.bolt/meta.db",
            "x",
        )]);
        let (found, problems) = locate(&src);
        assert!(problems.is_empty());
        assert_eq!(
            roots(&found),
            [("containerd/daemon".to_string(), Some(String::new()))]
        );
        // Wrapped one directory down.
        let (_d, src) = tree(&[(
            "docker/containerd/daemon/io.containerd.metadata.v1.bolt/meta.db",
            "x",
        )]);
        assert_eq!(
            roots(&locate(&src).0),
            [(
                "docker/containerd/daemon".to_string(),
                Some("docker".to_string())
            )]
        );
        // A containerd root itself; no docker.
        let (_d, src) = tree(&[("io.containerd.metadata.v1.bolt/meta.db", "x")]);
        assert_eq!(roots(&locate(&src).0), [(String::new(), None)]);
        // Broken configuration: problems naming the files, nothing found, no panic.
        let (_d, src) = tree(&[
            ("etc/docker/daemon.json", "{not json"),
            ("etc/containerd/config.toml", "root = \"relative/x\"\n"),
            (
                "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db/x",
                "",
            ),
        ]);
        let (found, problems) = locate(&src);
        assert!(found.is_empty(), "{found:?}");
        let files: Vec<String> = problems
            .iter()
            .map(|p| p.path.display().to_string())
            .collect();
        assert_eq!(
            files,
            ["etc/docker/daemon.json", "etc/containerd/config.toml"],
            "{problems:?}"
        );
    }

    #[test]
    fn explicit_roots() {
        let (_d, src) = tree(&[
            (
                "x/containerd/daemon/io.containerd.metadata.v1.bolt/meta.db",
                "x",
            ),
            ("y/io.containerd.metadata.v1.bolt/meta.db", "x"),
        ]);
        let l = explicit_root(&src, Path::new("/x/containerd/daemon")).expect("root");
        assert_eq!(l.root, Path::new("x/containerd/daemon"));
        assert_eq!(l.docker_data_root.as_deref(), Some(Path::new("x")));
        let l = explicit_root(&src, Path::new("y")).expect("root");
        assert_eq!(l.docker_data_root, None);
        let e = explicit_root(&src, Path::new("x")).expect_err("not a root");
        assert!(
            e.to_string().starts_with("x: not a containerd root: "),
            "{e}"
        );
    }
}
