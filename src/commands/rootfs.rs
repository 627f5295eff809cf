//! Container and image filesystems: `diff` (like `docker diff`), `export` (like
//! `docker export`: the flattened filesystem), and the offline `docker commit` behind
//! `extract CONTAINER`. The layer directories come from the store; salvor-whiteout does the
//! reading, whiteout translation and tar writing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use salvor_docker::{Container, Driver, Image, LayerFiles, Store};
use salvor_source::Source;
use salvor_whiteout::{LayerDir, TarNames, WhiteoutStyle};

use crate::output::{print_json, printable};

/// One layer directory, owned: the filesystem it is in, its root there, how it marks
/// deletions.
#[derive(Clone)]
pub struct OwnedLayer {
    pub source: Arc<dyn Source>,
    pub root: PathBuf,
    pub style: WhiteoutStyle,
}

impl OwnedLayer {
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
    pub upper: OwnedLayer,
    pub lowers: Vec<OwnedLayer>,
}

pub fn container_stack(store: &Store, c: &Container) -> anyhow::Result<ContainerStack> {
    let short = &c.id[..c.id.len().min(12)];
    let rw = c.rw_layer.as_ref().with_context(|| {
        format!("container {short}: its read-write layer cannot be located (see `salvor info`)")
    })?;
    let mut mine = own_dirs(store, &rw.files)
        .with_context(|| format!("container {short}: read-write layer"))?;
    let upper = mine.remove(0);
    let mut lowers = mine; // overlay v1: the lower root (init + image) is already here
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
    Ok(ContainerStack { upper, lowers })
}

/// `salvor diff CONTAINER`.
pub fn diff(store: &Store, query: &str, json: bool) -> anyhow::Result<u8> {
    let c = crate::commands::target::container(store, "diff", query)?;
    let st = container_stack(store, &c)?;
    let lowers: Vec<LayerDir> = st.lowers.iter().map(OwnedLayer::dir).collect();
    let changes = salvor_whiteout::changes(&st.upper.dir(), &lowers)?;
    if json {
        let v: Vec<_> = changes
            .iter()
            .map(|ch| {
                serde_json::json!({
                    "kind": ch.kind.letter().to_string(),
                    "path": String::from_utf8_lossy(&ch.path),
                    "path_hex": std::str::from_utf8(&ch.path).is_err().then(|| hex::encode(&ch.path)),
                })
            })
            .collect();
        print_json(&v)?;
    } else {
        let mut out = io::stdout().lock();
        for ch in &changes {
            writeln!(
                out,
                "{} {}",
                ch.kind.letter(),
                printable(&String::from_utf8_lossy(&ch.path))
            )?;
        }
    }
    Ok(0)
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
fn container_names(layers: &[OwnedLayer]) -> TarNames {
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

/// How `export` fills uname/gname.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamesArg {
    /// Empty names, as Docker Engine >= 23 writes.
    None,
    /// From the container's own /etc/passwd and /etc/group, as Docker 20.10 wrote.
    Container,
}

/// `salvor export CONTAINER|IMAGE -o rootfs.tar`.
pub fn export(
    store: &Store,
    query: &str,
    output: &Path,
    names: NamesArg,
    with_volumes: bool,
    quiet: bool,
    outputs: &salvor_sink::OutputPolicy,
) -> anyhow::Result<u8> {
    // Refused before any work.
    outputs.check_file(output)?;
    // As `docker export`, a container first (exact matches); an image too.
    let want = salvor_docker::Want::Either {
        prefer: salvor_docker::Kind::Container,
    };
    let (layers, what, container) =
        match crate::commands::target::resolve(store, "export", query, want)?.target {
            salvor_docker::Target::Container(c) => {
                let c = *c;
                let st = container_stack(store, &c)?;
                let mut all = vec![st.upper];
                all.extend(st.lowers);
                (
                    all,
                    format!(
                        "container {} ({})",
                        &c.id[..12],
                        c.name.trim_start_matches('/')
                    ),
                    Some(c),
                )
            }
            salvor_docker::Target::Image(img) => (
                image_stack(store, img)?,
                format!("image {}", img.short_id()),
                None,
            ),
        };
    let names = match names {
        NamesArg::None => TarNames::empty(),
        NamesArg::Container => container_names(&layers),
    };
    let mut mounts: Vec<(Vec<u8>, OwnedLayer)> = Vec::new();
    if with_volumes {
        let c = container
            .as_ref()
            .context("--with-volumes needs a container")?;
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
                None if !quiet => eprintln!(
                    "salvor: note: {} mount {} → {} is not inside the evidence; not exported",
                    m.kind,
                    printable(&m.source),
                    printable(&m.destination)
                ),
                None => {}
            }
        }
    }
    let dirs: Vec<LayerDir> = layers.iter().map(OwnedLayer::dir).collect();
    let mount_dirs: Vec<(&[u8], LayerDir)> = mounts
        .iter()
        .map(|(p, l)| (p.as_slice(), l.dir()))
        .collect();
    let write = |w: &mut dyn Write| -> anyhow::Result<u64> {
        if mount_dirs.is_empty() {
            Ok(salvor_whiteout::write_flattened_tar(&dirs, &names, w)?)
        } else {
            Ok(salvor_whiteout::write_flattened_tar_with_mounts(
                &dirs,
                &mount_dirs,
                &names,
                w,
            )?)
        }
    };
    let mut sink = outputs.file(output)?;
    let res = write(&mut sink);
    // A write error is the output's (a full disk), whatever the tar writer made of it.
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let bytes = res?;
    sink.commit()?;
    if !quiet {
        eprintln!(
            "wrote {} ({} bytes): the flattened filesystem of {what}",
            output.display(),
            bytes
        );
    }
    Ok(0)
}

/// The offline `docker commit`: the container's changes as a layer tar (written to `out`),
/// returning (diff id, size).
pub fn commit_layer(
    store: &Store,
    c: &Container,
    names: &TarNames,
    out: &mut dyn Write,
) -> anyhow::Result<(String, u64)> {
    let st = container_stack(store, c)?;
    let upper = st.upper.dir();
    Ok(match st.upper.style {
        WhiteoutStyle::Overlay | WhiteoutStyle::Aufs
            if st.lowers.iter().all(|l| l.style != WhiteoutStyle::Snapshot) =>
        {
            salvor_whiteout::write_layer_tar(&upper, names, out)?
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
            salvor_whiteout::write_naive_layer_tar(&upper, &lowers, names, t, out)?
        }
    })
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-22T08:09:48.123Z`), read as
/// `salvor_oci::Time::parse_lenient` reads it.
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
