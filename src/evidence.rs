//! Opening the evidence named by `--root`: a directory, a tar archive, or a disk image
//! (raw, qcow2, VMDK, VHDX, E01; partitions, LVM; ext4 or XFS inside), always read-only.
//!
//! `--root disk.img:p3` (or `:lv:vg/name`, `:disk`) picks the volume; otherwise every ext/XFS
//! volume is tried, in disk order, and the first that holds a Docker data-root (at its top,
//! or as a host root with `var/lib/docker` or a configured data-root) is used.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use salvor_disk::{Content, Disk, VolumeSpec};
use salvor_source::Source;

/// What `--root` turned out to be.
pub struct Opened {
    pub source: Arc<dyn Source>,
    /// The data-root inside `source`.
    pub data_root: PathBuf,
    /// For a disk image: the volume used (`p1`, `lv:vg/root`, `disk`).
    pub volume: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    Archive,
    DiskImage,
}

/// `host.img:p3` → (`host.img`, `p3`) when `host.img:p3` itself does not exist.
fn split_spec(root: &Path) -> anyhow::Result<(PathBuf, Option<VolumeSpec>)> {
    if root.exists() {
        return Ok((root.to_path_buf(), None));
    }
    let s = root.to_string_lossy();
    // Try every ':' from the left, so `lv:vg/name` specs keep their own colon.
    for (i, _) in s.match_indices(':') {
        let (file, spec) = (&s[..i], &s[i + 1..]);
        if Path::new(file).is_file() {
            let spec: VolumeSpec = spec
                .parse()
                .map_err(|e| anyhow!("{}: bad volume spec {spec:?}: {e}", root.display()))?;
            return Ok((PathBuf::from(file), Some(spec)));
        }
    }
    Ok((root.to_path_buf(), None))
}

fn sniff(path: &Path) -> anyhow::Result<Kind> {
    let md = std::fs::metadata(path)
        .with_context(|| format!("cannot open evidence {}", path.display()))?;
    if md.is_dir() {
        return Ok(Kind::Dir);
    }
    let mut head = vec![0u8; 4096];
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot open evidence {}", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    let at = |off: usize, m: &[u8]| head.len() >= off + m.len() && &head[off..off + m.len()] == m;
    if at(0, &[0x1f, 0x8b]) || at(0, &[0x28, 0xb5, 0x2f, 0xfd]) || at(257, b"ustar") {
        return Ok(Kind::Archive);
    }
    if matches!(salvor_disk::container::detect(&head), Ok(f) if f != salvor_disk::container::Format::Raw)
    {
        return Ok(Kind::DiskImage);
    }
    // A raw disk: a partition table, an ext superblock, XFS, or an LVM label.
    let raw_disk = at(510, &[0x55, 0xaa])
        || at(512, b"EFI PART")
        || at(1080, &[0x53, 0xef])
        || at(0, b"XFSB")
        || (0..4).any(|s| at(s * 512, b"LABELONE"));
    Ok(if raw_disk {
        Kind::DiskImage
    } else {
        Kind::Archive
    })
}

/// Opens `--root`.
pub fn open(root: &Path) -> anyhow::Result<Opened> {
    let (path, spec) = split_spec(root)?;
    let kind = sniff(&path)?;
    if kind != Kind::DiskImage {
        if spec.is_some() {
            bail!(
                "{}: a volume spec is only meaningful for a disk image",
                root.display()
            );
        }
        let source: Arc<dyn Source> = Arc::from(
            salvor_source::open_evidence(&path)
                .with_context(|| format!("cannot open evidence {}", path.display()))?,
        );
        let data_root = salvor_store::locate::find_data_root(source.as_ref())?;
        return Ok(Opened {
            source,
            data_root,
            volume: None,
        });
    }
    let disk =
        Disk::open(&path).with_context(|| format!("cannot read disk image {}", path.display()))?;
    let volumes = disk.select(spec.as_ref().unwrap_or(&VolumeSpec::Auto))?;
    let mut tried = Vec::new();
    for v in volumes {
        let fs = match open_filesystem(&v.content, v.device.clone()) {
            Ok(fs) => fs,
            Err(e) => {
                tried.push(format!("{}: {e}", v.spec));
                continue;
            }
        };
        match salvor_store::locate::find_data_root(fs.as_ref()) {
            Ok(data_root) => {
                return Ok(Opened {
                    source: fs,
                    data_root,
                    volume: Some(v.spec.clone()),
                })
            }
            Err(e) => tried.push(format!("{}: {e}", v.spec)),
        }
    }
    // A data-root below a mount point of another volume: follow the host's /etc/fstab.
    let all = disk.select(spec.as_ref().unwrap_or(&VolumeSpec::Auto))?;
    if let Some((i, fs, data_root)) =
        crate::fstab::find_data_root(&all, |v| open_filesystem(&v.content, v.device.clone()).ok())
    {
        return Ok(Opened {
            source: fs,
            data_root,
            volume: Some(all[i].spec.clone()),
        });
    }
    if tried.is_empty() {
        bail!(
            "{}: no ext4 or XFS volume found (see `salvor --root {} probe`)",
            path.display(),
            path.display()
        );
    }
    bail!(
        "{}: no Docker data-root found on any volume:\n  {}",
        path.display(),
        tried.join("\n  ")
    )
}

/// A filesystem reader for a volume.
pub fn open_filesystem(
    content: &Content,
    dev: Arc<dyn salvor_source::BlockDevice>,
) -> anyhow::Result<Arc<dyn Source>> {
    match content {
        Content::Ext { .. } => Ok(Arc::new(salvor_ext4::Ext4::open(dev)?)),
        Content::Xfs { .. } => Ok(Arc::new(salvor_xfs::Xfs::open(dev)?)),
        other => bail!(
            "not a filesystem salvor reads: {}",
            serde_json::to_string(other).unwrap_or_default()
        ),
    }
}

/// `salvor probe`: what is inside the evidence, down to where the data-root is.
pub fn probe(root: &Path) -> anyhow::Result<serde_json::Value> {
    let (path, spec) = split_spec(root)?;
    let kind = sniff(&path)?;
    if kind != Kind::DiskImage {
        let opened = open(root);
        return Ok(serde_json::json!({
            "evidence": path,
            "kind": if kind == Kind::Dir { "directory" } else { "archive" },
            "data_root": opened.as_ref().ok().map(|o| format!("/{}", o.data_root.display())),
            "error": opened.err().map(|e| format!("{e:#}")),
        }));
    }
    let disk =
        Disk::open(&path).with_context(|| format!("cannot read disk image {}", path.display()))?;
    let report = disk.report();
    let mut vols = Vec::new();
    for v in disk
        .select(spec.as_ref().unwrap_or(&VolumeSpec::Auto))
        .unwrap_or_default()
    {
        let (data_root, fs_report, error) = match open_filesystem(&v.content, v.device.clone()) {
            Ok(fs) => {
                let dr = salvor_store::locate::find_data_root(fs.as_ref())
                    .ok()
                    .map(|p| format!("/{}", p.display()));
                (dr, Some(fs.describe()), None)
            }
            Err(e) => (None, None, Some(e.to_string())),
        };
        vols.push(serde_json::json!({ "volume": v.spec, "filesystem": fs_report, "data_root": data_root, "error": error }));
    }
    Ok(serde_json::json!({
        "evidence": path,
        "kind": "disk image",
        "disk": report,
        "docker": vols,
    }))
}
