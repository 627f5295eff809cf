//! Container and image filesystems as layer stacks: the layer directories of an image or
//! a container (top first), the names for tar headers, and the offline `docker commit`'s
//! layer. salvor-whiteout does the reading, whiteout translation and tar writing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use salvor_docker::{Container, Driver, Image, LayerFiles, MountPoint, Store};
use salvor_source::Source;
use salvor_whiteout::{HeaderRules, LayerDir, TarNames, WhiteoutStyle};

/// One layer directory, owned: the filesystem it is in, its root there, how it marks
/// deletions.
#[derive(Clone)]
pub struct OwnedLayer {
    /// The filesystem the directory is in.
    pub source: Arc<dyn Source>,
    /// The directory there.
    pub root: PathBuf,
    /// How it marks deletions.
    pub style: WhiteoutStyle,
}

impl OwnedLayer {
    /// The directory as salvor-whiteout reads it.
    pub fn dir(&self) -> LayerDir<'_> {
        LayerDir::new(self.source.as_ref(), &self.root, self.style)
    }
}

/// The directories that are a layer's own (not its lowers), top first.
fn own_dirs(store: &Store, files: &LayerFiles) -> anyhow::Result<Vec<OwnedLayer>> {
    let overlay_style = if store.driver == Driver::FuseOverlayfs {
        WhiteoutStyle::FuseOverlayfs
    } else {
        WhiteoutStyle::Overlay
    };
    let ev = store.source.clone();
    Ok(match files {
        LayerFiles::Overlay { diff, .. } => vec![OwnedLayer {
            source: ev,
            root: diff.clone(),
            style: overlay_style,
        }],
        LayerFiles::Aufs { diff } => vec![OwnedLayer {
            source: ev,
            root: diff.clone(),
            style: WhiteoutStyle::Aufs,
        }],
        LayerFiles::Snapshot { root } => vec![OwnedLayer {
            source: ev,
            root: root.clone(),
            style: WhiteoutStyle::Snapshot,
        }],
        LayerFiles::OverlayUpper { upper, lower_root } => vec![
            OwnedLayer {
                source: ev.clone(),
                root: upper.clone(),
                style: WhiteoutStyle::Overlay,
            },
            OwnedLayer {
                source: ev,
                root: lower_root.clone(),
                style: WhiteoutStyle::Snapshot,
            },
        ],
        LayerFiles::ThinDevice { source, .. } => {
            vec![OwnedLayer {
                source: source.0.clone(),
                root: PathBuf::from("rootfs"),
                style: WhiteoutStyle::Snapshot,
            }]
        }
        LayerFiles::Unavailable { reason } => bail!("the layer's files cannot be read: {reason}"),
    })
}

/// An image's layers, top first.
pub fn image_stack(store: &Store, image: &Image) -> anyhow::Result<Vec<OwnedLayer>> {
    let mut out = Vec::new();
    for l in store.image_layers(image)?.into_iter().rev() {
        out.extend(own_dirs(store, &l.files).with_context(|| format!("layer {}", l.chain_id))?);
        if matches!(
            l.files,
            LayerFiles::Snapshot { .. } | LayerFiles::ThinDevice { .. }
        ) {
            break; // a full snapshot hides everything below it
        }
    }
    Ok(out)
}

/// A container: its writable layer, and below it (top first) the init layer and the image.
pub struct ContainerStack {
    /// The read-write layer.
    pub upper: OwnedLayer,
    /// The init layer and the image's layers, top first.
    pub lowers: Vec<OwnedLayer>,
    /// What the container's changes are measured against besides `lowers`: Docker's
    /// overlay (v1) init layer's `upper/`, of which the container's `upper/` starts as a
    /// copy (both over the image's `root/`, the one entry of `lowers`); `None` elsewhere.
    pub base: Option<OwnedLayer>,
}

/// The layer stack of container `c`.
pub fn container_stack(store: &Store, c: &Container) -> anyhow::Result<ContainerStack> {
    let short = &c.id[..c.id.len().min(12)];
    let rw = c.rw_layer.as_ref().with_context(|| {
        format!("container {short}: its read-write layer cannot be located (see `salvor info`)")
    })?;
    let mut mine = own_dirs(store, &rw.files)
        .with_context(|| format!("container {short}: read-write layer"))?;
    let upper = mine.remove(0);
    let mut lowers = mine; // overlay v1: the image's root, below the upper
    let mut base = None;
    if let (
        LayerFiles::OverlayUpper { lower_root, .. },
        Some(LayerFiles::OverlayUpper {
            upper: init_upper,
            lower_root: init_lower,
        }),
    ) = (&rw.files, &rw.init_files)
    {
        // overlay v1: the init layer's upper over the same root is the parent the engine
        // diffs against (the container's upper began as its copy).
        if lower_root == init_lower {
            base = Some(OwnedLayer {
                source: store.source.clone(),
                root: init_upper.clone(),
                style: WhiteoutStyle::Overlay,
            });
        }
    }
    if lowers.is_empty() {
        if let Some(init) = &rw.init_files {
            lowers.extend(
                own_dirs(store, init).with_context(|| format!("container {short}: init layer"))?,
            );
        }
        if upper.style != WhiteoutStyle::Snapshot {
            if let Some(img) = c
                .image_id
                .as_deref()
                .and_then(|id| store.find_image(id).ok())
            {
                lowers.extend(image_stack(store, img)?);
            } else if c.image_id.is_some() {
                bail!(
                    "container {short}: its image {} is not in the store",
                    c.image.as_str()
                );
            }
        }
    }
    Ok(ContainerStack {
        upper,
        lowers,
        base,
    })
}

/// What container `c` changed against its image and init layer (`docker diff`), with
/// overlay and aufs whiteouts translated.
pub fn changes(store: &Store, c: &Container) -> anyhow::Result<Vec<salvor_whiteout::Change>> {
    let st = container_stack(store, c)?;
    let lowers: Vec<LayerDir> = st.lowers.iter().map(OwnedLayer::dir).collect();
    let base = st.base.as_ref().map(OwnedLayer::dir);
    Ok(salvor_whiteout::changes_against(
        &st.upper.dir(),
        base.as_ref(),
        &lowers,
    )?)
}

/// Container `c`'s named and anonymous volumes as (mount point, directory), and the mounts
/// whose data is not inside the evidence (bind mounts: host paths, never followed).
pub fn volume_mounts<'c>(
    store: &Store,
    c: &'c Container,
) -> (Vec<(Vec<u8>, OwnedLayer)>, Vec<&'c MountPoint>) {
    let mut mounts = Vec::new();
    let mut outside = Vec::new();
    let (vols, _) = store.volumes(std::slice::from_ref(c));
    for m in &c.mounts {
        let data = match m.kind.as_str() {
            "volume" => vols
                .iter()
                .find(|v| v.name == m.name)
                .and_then(|v| v.data.clone()),
            _ => None,
        };
        match data {
            Some(d) => mounts.push((
                m.destination.as_bytes().to_vec(),
                OwnedLayer {
                    source: store.source.clone(),
                    root: d,
                    style: WhiteoutStyle::Snapshot,
                },
            )),
            None => outside.push(m),
        }
    }
    (mounts, outside)
}

/// Writes the flattened filesystem of `layers` (top first) as a tar (`docker export`),
/// with `mounts` (mount point, directory) placed over it; returns the bytes written.
pub fn write_flattened(
    layers: &[OwnedLayer],
    mounts: &[(Vec<u8>, OwnedLayer)],
    rules: &HeaderRules,
    w: &mut dyn Write,
) -> anyhow::Result<u64> {
    let dirs: Vec<LayerDir> = layers.iter().map(OwnedLayer::dir).collect();
    let mount_dirs: Vec<(&[u8], LayerDir)> = mounts
        .iter()
        .map(|(p, l)| (p.as_slice(), l.dir()))
        .collect();
    if mount_dirs.is_empty() {
        Ok(salvor_whiteout::write_flattened_tar(&dirs, rules, w)?)
    } else {
        Ok(salvor_whiteout::write_flattened_tar_with_mounts(
            &dirs,
            &mount_dirs,
            rules,
            w,
        )?)
    }
}

/// Names for tar headers: none (the engine of today), or from passwd/group files.
pub fn tar_names(passwd: Option<&Path>, group: Option<&Path>) -> anyhow::Result<TarNames> {
    match (passwd, group) {
        (None, None) => Ok(TarNames::empty()),
        (p, g) => {
            let read = |f: Option<&Path>| -> anyhow::Result<Vec<u8>> {
                match f {
                    Some(f) => {
                        std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))
                    }
                    None => Ok(Vec::new()),
                }
            };
            Ok(TarNames::from_passwd_group(&read(p)?, &read(g)?))
        }
    }
}

/// Names as the container itself saw them (its merged `/etc/passwd`, `/etc/group`), which
/// is what Docker 20.10's `docker export` wrote.
pub fn container_names(layers: &[OwnedLayer]) -> TarNames {
    let dirs: Vec<LayerDir> = layers.iter().map(OwnedLayer::dir).collect();
    let p = salvor_whiteout::read_merged_file(&dirs, b"/etc/passwd", 1 << 20)
        .ok()
        .flatten()
        .unwrap_or_default();
    let g = salvor_whiteout::read_merged_file(&dirs, b"/etc/group", 1 << 20)
        .ok()
        .flatten()
        .unwrap_or_default();
    TarNames::from_passwd_group(&p, &g)
}

/// Which tar the header rules are for: `docker export` or the layer of `docker commit`.
#[derive(Clone, Copy)]
pub enum TarPurpose<'a> {
    /// `docker export` of these layers, top first (Docker 20.10 ran it chrooted in the
    /// container: the merged view's own user database).
    Export(&'a [OwnedLayer]),
    /// `docker commit`'s layer (Docker 20.10 wrote it in the daemon: the host's).
    Commit,
}

/// Header rules, and how they were chosen (for the user).
#[derive(Debug, Clone)]
pub struct ChosenRules {
    /// The rules.
    pub rules: HeaderRules,
    /// How they were chosen, in words (`Docker >= 23 (from …): permission bits, no names`).
    pub how: String,
    /// Whether the result can differ from the engine's (the version is unknown, or the
    /// names Docker 20.10 looked up are not in the evidence).
    pub uncertain: bool,
}

/// The tar header rules of the engine that wrote `store` ([`Store::engine_version`]) for
/// `purpose`: Engine >= 23 writes permission bits only and no
/// names; Docker <= 22 the file-type bits too, and names — for export the container's own
/// `/etc/passwd` and `/etc/group`, for commit the daemon host's (from the host root of the
/// evidence), each then falling back, as glibc's nss-systemd module did for the daemon,
/// to `root` for id 0 and `nobody`/`nogroup` for 65534 when the host's
/// `/etc/nsswitch.conf` lists `systemd` (or there is no host root to tell). An unknown
/// version is taken as Engine >= 23, and said.
pub fn header_rules(store: &Store, purpose: TarPurpose) -> ChosenRules {
    let v = store.engine_version.as_ref();
    let legacy = v.and_then(|v| v.at_least(23, 0)) == Some(false);
    let known = v.map(|v| v.to_string());
    if !legacy {
        let uncertain = v.and_then(|v| v.at_least(23, 0)).is_none();
        return ChosenRules {
            rules: HeaderRules::engine_23(),
            how: match known {
                Some(k) if !uncertain => {
                    format!("Docker {k}: mode without file-type bits, no user/group names")
                }
                Some(k) => format!(
                    "Docker {k}, not enough to tell Engine >= 23 from older; written as Engine >= 23 (--engine-version to say)"
                ),
                None => "engine version unknown; written as Engine >= 23 (mode without file-type bits, no names; --engine-version to say)".into(),
            },
            uncertain,
        };
    }
    let k = known.unwrap_or_default();
    let host = host_root(store);
    let (mut names, from) = match (purpose, &host) {
        (TarPurpose::Export(layers), _) => (
            container_names(layers),
            "the container's /etc/passwd and /etc/group",
        ),
        (TarPurpose::Commit, Some(h)) => {
            let read = |f: &str| {
                store
                    .source
                    .read_limited(&h.join(f), 16 << 20)
                    .unwrap_or_default()
            };
            (
                TarNames::from_passwd_group(&read("etc/passwd"), &read("etc/group")),
                "the host's /etc/passwd and /etc/group",
            )
        }
        (TarPurpose::Commit, None) => {
            return ChosenRules {
                rules: HeaderRules::docker_20_10(TarNames::empty()),
                how: format!(
                    "Docker {k}: mode with file-type bits, names from nowhere: Docker <= 22 wrote the daemon host's names, and the evidence holds no host root (--passwd/--group to give them)"
                ),
                uncertain: true,
            }
        }
    };
    // Whether the daemon's host had nss-systemd: its nsswitch.conf, else (no host root)
    // assumed, as on Debian and Ubuntu, and the result uncertain.
    if host
        .as_ref()
        .is_none_or(|h| host_uses_nss_systemd(store.source.as_ref(), h))
    {
        nss_systemd_names(&mut names);
    }
    ChosenRules {
        rules: HeaderRules::docker_20_10(names),
        how: format!("Docker {k}: mode with file-type bits, names from {from}"),
        uncertain: host.is_none(),
    }
}

/// The host root of the evidence `store` is in, when its data-root is inside one (the
/// source's root; `None` when the evidence is the data-root itself).
fn host_root(store: &Store) -> Option<PathBuf> {
    (!store.root.as_os_str().is_empty() && store.source.exists(Path::new("etc"))).then(PathBuf::new)
}

/// Whether the host's `/etc/nsswitch.conf` lists `systemd` for passwd or group.
fn host_uses_nss_systemd(source: &dyn Source, host: &Path) -> bool {
    let Ok(conf) = source.read_limited(&host.join("etc/nsswitch.conf"), 1 << 20) else {
        return false;
    };
    String::from_utf8_lossy(&conf).lines().any(|l| {
        let l = l.split('#').next().unwrap_or("");
        (l.starts_with("passwd:") || l.starts_with("group:"))
            && l.split_whitespace().any(|w| w == "systemd")
    })
}

/// nss-systemd's synthesised entries, where the files have none: root (0) and nobody
/// (65534; Debian's group name `nogroup`, as seen on the engine fixtures).
fn nss_systemd_names(n: &mut TarNames) {
    n.users.entry(0).or_insert_with(|| "root".into());
    n.groups.entry(0).or_insert_with(|| "root".into());
    n.users.entry(65534).or_insert_with(|| "nobody".into());
    n.groups.entry(65534).or_insert_with(|| "nogroup".into());
}

/// `rules` with other names (the user's `--passwd`/`--group`, `--names`), same mode rule.
pub fn with_names(rules: &HeaderRules, names: TarNames) -> HeaderRules {
    HeaderRules {
        names,
        mode: rules.mode,
    }
}

/// The offline `docker commit`: the container's changes as a layer tar (written to `out`),
/// returning (diff id, size).
pub fn commit_layer(
    store: &Store,
    c: &Container,
    rules: &HeaderRules,
    out: &mut dyn Write,
) -> anyhow::Result<(String, u64)> {
    let st = container_stack(store, c)?;
    let upper = st.upper.dir();
    Ok(match st.upper.style {
        WhiteoutStyle::Overlay | WhiteoutStyle::Aufs
            if st.lowers.iter().all(|l| l.style != WhiteoutStyle::Snapshot) =>
        {
            salvor_whiteout::write_layer_tar(&upper, rules, out)?
        }
        _ => {
            // Snapshot drivers (and fuse-overlayfs): the engine's naive diff. Its whiteouts
            // carry the commit's wall-clock time; salvor uses the container's finish time.
            let t = c
                .state
                .finished_at
                .as_deref()
                .or(c.created.as_deref())
                .and_then(rfc3339_secs)
                .unwrap_or(0);
            let lowers: Vec<LayerDir> = st.lowers.iter().map(OwnedLayer::dir).collect();
            let base = st.base.as_ref().map(OwnedLayer::dir);
            salvor_whiteout::write_naive_layer_tar_against(
                &upper,
                base.as_ref(),
                &lowers,
                rules,
                t,
                out,
            )?
        }
    })
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-11-22T08:09:48.123Z`).
pub fn rfc3339_secs(t: &str) -> Option<i64> {
    salvor_oci::Time::parse_lenient(t).map(|t| t.unix())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            super::rfc3339_secs("2026-11-22T08:09:48.999Z"),
            Some(1795334988)
        );
        assert_eq!(
            super::rfc3339_secs("0001-01-01T00:00:00Z").map(|s| s < 0),
            Some(true)
        );
        assert_eq!(super::rfc3339_secs("garbage"), None);
    }
}
