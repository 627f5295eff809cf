//! Which Docker Engine version wrote the evidence ([`salvor_model::EngineVersion`]).
//!
//! Docker changed the bytes it writes between versions: Engine 23 (moby#44083) dropped the
//! file-type bits from the tar headers' mode field (`0o100644` became `0o644`) and stopped
//! looking up user and group names for the layers it writes. `export` and an offline
//! `commit` reproduce the engine that wrote the evidence, so they need its version. Found,
//! best first:
//!
//! 1. **The host's package database** ([`from_host_root`]): `var/lib/dpkg/status`
//!    (`docker-ce`, `docker.io`, `moby-engine`, `docker-engine`, installed).
//! 2. **The `dockerd` binary** of the host root ([`from_host_root`]): the version the
//!    build linked in (`-X github.com/docker/docker/dockerversion.Version=…` in the Go
//!    build information).
//! 3. **The data-root's layout** ([`from_data_root`]), a bound only: an `engine-id` file
//!    (Engine ≥ 23 keeps its id there instead of `key.json`), `ImageManifest` in a
//!    container's `config.v2.json` (≥ 25); `trust/` or `KernelMemory` in a `hostconfig.json`
//!    without an `engine-id` (≤ 22: what 20.10 wrote).
//!
//! Every read is bounded; unreadable or malformed files are passed over (the version is
//! then found another way, or stays unknown).

use std::path::{Path, PathBuf};

use salvor_model::{EngineVersion, VersionBound};
use salvor_source::Source;

/// Packages of the Docker Engine in dpkg's database, best first.
const DPKG_PACKAGES: [&str; 4] = ["docker-ce", "docker.io", "moby-engine", "docker-engine"];
/// Largest dpkg status file read.
const MAX_DPKG_STATUS: u64 = 64 << 20;
/// Largest `dockerd` binary scanned.
const MAX_DOCKERD: u64 = 512 << 20;
/// Where a host keeps `dockerd`.
const DOCKERD_PATHS: [&str; 4] = [
    "usr/bin/dockerd",
    "usr/sbin/dockerd",
    "usr/local/bin/dockerd",
    "usr/libexec/docker/dockerd",
];
/// The linker flag that sets the version in the Go build information.
const LDFLAG: &[u8] = b"dockerversion.Version=";
/// Containers whose `config.v2.json`/`hostconfig.json` are read for markers.
const MAX_CONTAINERS_READ: usize = 64;

/// The engine version from the host root `host` inside `source` (`""` for the source's
/// root): the dpkg database ([`from_dpkg`]), else the `dockerd` binary ([`from_dockerd`]).
/// `None` when neither says.
pub fn from_host_root(source: &dyn Source, host: &Path) -> Option<EngineVersion> {
    from_dpkg(source, host).or_else(|| from_dockerd(source, host))
}

/// The version of the Docker Engine package installed in the host root's dpkg database
/// (one bounded read of `var/lib/dpkg/status`).
pub fn from_dpkg(source: &dyn Source, host: &Path) -> Option<EngineVersion> {
    let p = host.join("var/lib/dpkg/status");
    let data = source.read_limited(&p, MAX_DPKG_STATUS).ok()?;
    let text = String::from_utf8_lossy(&data);
    let mut found: Vec<(usize, String, String)> = Vec::new();
    for para in text.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let (Some(pkg), Some(status), Some(version)) =
            (field("Package"), field("Status"), field("Version"))
        else {
            continue;
        };
        if !status.ends_with(" installed") {
            continue;
        }
        if let Some(rank) = DPKG_PACKAGES.iter().position(|p| *p == pkg) {
            found.push((rank, pkg, version));
        }
    }
    found.sort();
    let (_, pkg, version) = found.into_iter().next()?;
    // "5:26.1.5-1~debian.12~bookworm": the epoch is not the version
    let upstream = version.split_once(':').map_or(version.as_str(), |(_, v)| v);
    EngineVersion::exact(upstream, format!("{}: {pkg} {version}", p.display()))
}

/// The version linked into the host root's `dockerd` (streams the binary, up to 512 MiB:
/// tens of MB, so callers ask only when it matters).
pub fn from_dockerd(source: &dyn Source, host: &Path) -> Option<EngineVersion> {
    for rel in DOCKERD_PATHS {
        let p = host.join(rel);
        let Ok(md) = source.metadata(&p) else {
            continue;
        };
        if md.kind != salvor_source::FileKind::Regular || md.size > MAX_DOCKERD {
            continue;
        }
        if let Some(v) = scan_for_ldflag(source, &p) {
            if let Some(v) = EngineVersion::exact(&v, format!("{}: build information", p.display()))
            {
                return Some(v);
            }
        }
    }
    None
}

/// The value after `dockerversion.Version=` in the file (streamed, bounded).
fn scan_for_ldflag(source: &dyn Source, p: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = source.open(p).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        carry.extend_from_slice(&buf[..n]);
        if let Some(i) = find(&carry, LDFLAG) {
            let rest = &carry[i + LDFLAG.len()..];
            let end = rest
                .iter()
                .position(|&c| !(c.is_ascii_alphanumeric() || b".+-~_".contains(&c)));
            match end {
                Some(e) => return Some(String::from_utf8_lossy(&rest[..e]).into_owned()),
                None if rest.len() > 128 => return None,
                None => continue,
            }
        }
        // keep the tail that could start the pattern
        let keep = carry.len().min(LDFLAG.len() + 128);
        carry.drain(..carry.len() - keep);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A bound on the engine version from the data-root's layout (see the module
/// documentation); `None` when it has no marker either way.
pub fn from_data_root(source: &dyn Source, root: &Path) -> Option<EngineVersion> {
    let engine_id = source.exists(&root.join("engine-id"));
    let (mut image_manifest, mut kernel_memory) = (None::<PathBuf>, None::<PathBuf>);
    if let Ok(mut entries) = source.read_dir(&root.join("containers")) {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries.into_iter().take(MAX_CONTAINERS_READ) {
            let dir = root.join("containers").join(&e.name);
            if image_manifest.is_none() {
                let p = dir.join("config.v2.json");
                if has_top_level_key(source, &p, "ImageManifest") {
                    image_manifest = Some(p);
                }
            }
            if kernel_memory.is_none() {
                let p = dir.join("hostconfig.json");
                if has_top_level_key(source, &p, "KernelMemory") {
                    kernel_memory = Some(p);
                }
            }
        }
    }
    let bound = |major, version: &str, bound, found_by: String| EngineVersion {
        version: version.to_string(),
        major,
        minor: 0,
        bound,
        found_by,
    };
    if let Some(p) = image_manifest {
        return Some(bound(
            25,
            ">= 25",
            VersionBound::AtLeast,
            format!("data-root: ImageManifest in {}", p.display()),
        ));
    }
    if engine_id {
        return Some(bound(
            23,
            ">= 23",
            VersionBound::AtLeast,
            format!("data-root: {}", root.join("engine-id").display()),
        ));
    }
    let trust = source.exists(&root.join("trust"));
    if trust || kernel_memory.is_some() {
        let why = match (&kernel_memory, trust) {
            (Some(p), _) => format!("KernelMemory in {}", p.display()),
            (None, _) => format!("{}", root.join("trust").display()),
        };
        return Some(bound(
            22,
            "<= 22",
            VersionBound::AtMost,
            format!("data-root: no engine-id file; {why}"),
        ));
    }
    None
}

fn has_top_level_key(source: &dyn Source, p: &Path, key: &str) -> bool {
    let Ok(data) = source.read_limited(p, 16 << 20) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&data)
        .map(|m| m.contains_key(key))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use salvor_source::DirSource;

    fn src(files: &[(&str, &[u8])]) -> (tempfile::TempDir, DirSource) {
        let d = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        let s = DirSource::new(d.path()).unwrap();
        (d, s)
    }

    #[test]
    fn dpkg_status_names_the_installed_engine() {
        let status =
            b"Package: docker.io\nStatus: deinstall ok config-files\nVersion: 20.10.24+dfsg1-1\n\n\
Package: docker-ce\nStatus: install ok installed\nVersion: 5:26.1.5-1~debian.12~bookworm\n\n";
        let (_d, s) = src(&[("var/lib/dpkg/status", status)]);
        let v = from_host_root(&s, Path::new("")).unwrap();
        assert_eq!((v.major, v.minor, v.bound), (26, 1, VersionBound::Exact));
        assert_eq!(v.version, "26.1.5-1~debian.12~bookworm");
        assert!(v.found_by.contains("docker-ce 5:26.1.5"), "{}", v.found_by);
    }

    #[test]
    fn dockerd_build_information_gives_the_version() {
        let mut bin = vec![0u8; 3 << 20];
        let at = (1 << 20) - 10; // across a read boundary
        let flag = b"-X \"github.com/docker/docker/dockerversion.Version=20.10.24+dfsg1\" -X";
        bin[at..at + flag.len()].copy_from_slice(flag);
        let (_d, s) = src(&[("usr/sbin/dockerd", &bin)]);
        let v = from_host_root(&s, Path::new("")).unwrap();
        assert_eq!(v.version, "20.10.24+dfsg1");
        assert_eq!((v.major, v.minor), (20, 10));
    }

    #[test]
    fn data_root_markers_bound_the_version() {
        let (_d, s) = src(&[
            ("dr/engine-id", b"x"),
            (
                "dr/containers/c1/config.v2.json",
                b"{\"ImageManifest\":null}",
            ),
        ]);
        let v = from_data_root(&s, Path::new("dr")).unwrap();
        assert_eq!((v.major, v.bound), (25, VersionBound::AtLeast));
        assert_eq!(v.at_least(23, 0), Some(true));
        let (_d, s) = src(&[("dr/containers/c1/hostconfig.json", b"{\"KernelMemory\":0}")]);
        let v = from_data_root(&s, Path::new("dr")).unwrap();
        assert_eq!(v.bound, VersionBound::AtMost);
        assert_eq!(v.at_least(23, 0), Some(false));
        let (_d, s) = src(&[("dr/containers/c1/hostconfig.json", b"garbage")]);
        assert!(from_data_root(&s, Path::new("dr")).is_none());
    }
}
