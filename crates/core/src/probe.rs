//! `salvor probe`: what the evidence is, down to where the data-root is.

use std::path::{Path, PathBuf};

use anyhow::Context;
use salvor_disk::{Disk, VolumeSpec};
use salvor_source::EvidenceDamage;
use serde::Serialize;

use crate::evidence::{error_damage, open_filesystem, sniff, split_spec, EvidenceOptions, Kind};

/// What [`probe`] found (its JSON is `salvor probe --json`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ProbeReport {
    /// A directory or an archive.
    Tree(TreeProbe),
    /// A disk image.
    Disk(Box<DiskProbe>),
}

/// A directory or archive: where its data-root is.
#[derive(Debug, Serialize)]
pub struct TreeProbe {
    /// The evidence's path.
    pub evidence: PathBuf,
    /// `directory` or `archive`.
    pub kind: &'static str,
    /// The data-root (`/…`), when one was found.
    pub data_root: Option<String>,
    /// The containerd roots found (`/var/lib/containerd (/etc/containerd/config.toml)` …).
    pub containerd: Vec<String>,
    /// Why none was found.
    pub error: Option<String>,
    /// Damage of the archive.
    pub damage: Vec<EvidenceDamage>,
}

/// A disk image: its structure, and the data-root on each candidate volume.
#[derive(Debug, Serialize)]
pub struct DiskProbe {
    /// The image's path.
    pub evidence: PathBuf,
    /// `disk image`.
    pub kind: &'static str,
    /// Container format, partitions, LVM, filesystems.
    pub disk: salvor_disk::ProbeReport,
    /// One entry per volume tried.
    pub docker: Vec<VolumeProbe>,
}

/// One volume of a disk image, looked at for a Docker data-root.
#[derive(Debug, Serialize)]
pub struct VolumeProbe {
    /// The volume spec (`p1`, `lv:vg/root`, `disk`).
    pub volume: String,
    /// The filesystem's description, when it could be opened.
    pub filesystem: Option<String>,
    /// The data-root on it (`/…`), when one was found.
    pub data_root: Option<String>,
    /// The containerd roots on it.
    pub containerd: Vec<String>,
    /// Why the filesystem could not be opened.
    pub error: Option<String>,
}

/// A containerd root as `probe` names it: `/<root> (<how it was found>)`.
fn describe_located(l: &salvor_containerd::Located) -> String {
    format!("/{} ({})", l.root.display(), l.found_by)
}

/// What is inside the evidence at `root` (`IMAGE:VOLUME` limits the volumes looked at),
/// and the evidence's damage (to be said first).
pub fn probe(
    root: &Path,
    spool_limit: Option<u64>,
) -> anyhow::Result<(ProbeReport, Vec<EvidenceDamage>)> {
    let (path, spec) = split_spec(root)?;
    let kind = sniff(&path)?;
    if kind != Kind::DiskImage {
        let opened = crate::evidence::open_anyhow(
            root,
            EvidenceOptions {
                spool_limit,
                ..EvidenceOptions::default()
            },
        );
        let damage = match &opened {
            Ok(o) => o.damage().to_vec(),
            Err(e) => error_damage(e),
        };
        let report = TreeProbe {
            evidence: path,
            kind: if kind == Kind::Dir {
                "directory"
            } else {
                "archive"
            },
            data_root: opened
                .as_ref()
                .ok()
                .and_then(|o| o.data_root().map(|d| format!("/{}", d.display()))),
            containerd: opened
                .as_ref()
                .map(|o| o.containerd_roots().iter().map(describe_located).collect())
                .unwrap_or_default(),
            error: opened.err().map(|e| format!("{e:#}")),
            damage: damage.clone(),
        };
        return Ok((ProbeReport::Tree(report), damage));
    }
    let disk =
        Disk::open(&path).with_context(|| format!("cannot read disk image {}", path.display()))?;
    let report = disk.report();
    let mut vols = Vec::new();
    for v in disk
        .select(spec.as_ref().unwrap_or(&VolumeSpec::Auto))
        .unwrap_or_default()
    {
        let (data_root, containerd, filesystem, error) =
            match open_filesystem(&v.content, v.device.clone()) {
                Ok(fs) => {
                    let dr = salvor_docker::locate::find_data_root(fs.as_ref())
                        .ok()
                        .map(|p| format!("/{}", p.display()));
                    let cd = salvor_containerd::locate(fs.as_ref())
                        .0
                        .iter()
                        .map(describe_located)
                        .collect();
                    (dr, cd, Some(fs.describe()), None)
                }
                Err(e) => (
                    None,
                    Vec::new(),
                    None,
                    Some(salvor_source::error_chain(&*e)),
                ),
            };
        vols.push(VolumeProbe {
            volume: v.spec.clone(),
            filesystem,
            data_root,
            containerd,
            error,
        });
    }
    let damage = disk.damage.clone();
    let report = DiskProbe {
        evidence: path,
        kind: "disk image",
        disk: report,
        docker: vols,
    };
    Ok((ProbeReport::Disk(Box::new(report)), damage))
}
