//! Opening the evidence named by `--root` ([`Evidence::open`]): a directory, a tar archive, or a disk image
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
use salvor_sink::EvidenceGuard;
use salvor_source::{EvidenceDamage, Source, TarOptions};

/// Options of [`Evidence::open`]: what the CLI's global options say about the evidence.
#[derive(Debug, Clone, Default)]
pub struct EvidenceOptions {
    /// The data-root's path when it should not be searched for (`--data-root`): inside a
    /// directory or archive, on the chosen volume of a disk image, or as the host saw it
    /// (mapped to a volume through the image's `/etc/fstab`).
    pub data_root: Option<PathBuf>,
    /// devicemapper direct-lvm: the LVM thin pool holding Docker's devices (`--thin-pool`):
    /// `VG/LV` (on the evidence's disk image), `IMAGE` or `IMAGE:VG/LV`.
    pub thin_pool: Option<String>,
    /// Most temporary space decompressing a gzip/zstd archive may take (`--spool-limit`);
    /// `None` for the default.
    pub spool_limit: Option<u64>,
    /// Other files the command reads (`--passwd`, `--group`) with what they are: outputs
    /// are never written onto them (see [`Evidence::guard`]).
    pub also_read: Vec<(PathBuf, String)>,
    /// The engine version that wrote the evidence (`--engine-version`), when the user
    /// knows it better than the evidence tells.
    pub engine_version: Option<String>,
    /// A containerd root inside the evidence (`--containerd-root`), when it should not be
    /// searched for.
    pub containerd_root: Option<PathBuf>,
    /// The platform an image index resolves to (`--platform`, `os/arch[/variant]`); `None`
    /// for `linux/amd64`.
    pub platform: Option<String>,
}

/// The opened evidence: a directory, an archive, or a volume of a disk image, and the
/// stores found in it (a Docker data-root, containerd roots). Read-only, never modified.
pub struct Evidence {
    /// The evidence as named (`--root`, possibly with a `:VOLUME` spec).
    root: PathBuf,
    source: Arc<dyn Source>,
    /// The stores found in `source`.
    found: Found,
    /// For a disk image: the volume used (`p1`, `lv:vg/root`, `disk`).
    volume: Option<String>,
    /// For a disk image: the scanned disk (its LVM thin pools may hold Docker's
    /// devicemapper devices).
    disk: Option<Disk>,
    /// Damage of the evidence itself (the archive's, or the disk image's): said first.
    damage: Vec<EvidenceDamage>,
    options: EvidenceOptions,
}

impl Evidence {
    /// Opens `root` (a directory, an archive, a disk image, `IMAGE:VOLUME`) and finds the
    /// stores in it: the Docker data-root (`options.data_root` when given) and the
    /// containerd roots (`options.containerd_root` when given). It fails when there is
    /// neither.
    pub fn open(root: &Path, options: EvidenceOptions) -> Result<Evidence, EvidenceError> {
        open_anyhow(root, options).map_err(EvidenceError::from_anyhow)
    }

    /// The filesystem the data-root is in.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The Docker graphdriver data-root's path inside [`Evidence::source`], when there is
    /// one (a host with only containerd has none).
    pub fn data_root(&self) -> Option<&Path> {
        self.found.data_root.as_deref()
    }

    /// The containerd roots found in [`Evidence::source`], in the order found.
    pub fn containerd_roots(&self) -> &[salvor_containerd::locate::Located] {
        &self.found.containerd
    }

    /// What finding the containerd roots met (unreadable configuration files).
    pub fn locate_problems(&self) -> &[salvor_model::Problem] {
        &self.found.problems
    }

    /// For a disk image: the volume used (`p1`, `lv:vg/root`, `disk`).
    pub fn volume(&self) -> Option<&str> {
        self.volume.as_deref()
    }

    /// For a disk image: the scanned disk.
    pub fn disk(&self) -> Option<&Disk> {
        self.disk.as_ref()
    }

    /// Damage of the evidence itself (a cut archive or disk image): the verdict on
    /// everything read from it.
    pub fn damage(&self) -> &[EvidenceDamage] {
        &self.damage
    }

    /// The options it was opened with.
    pub fn options(&self) -> &EvidenceOptions {
        &self.options
    }

    /// The guard every output goes through: the evidence (or the disk image's files), the
    /// `--thin-pool` image, and the [`EvidenceOptions::also_read`] files are protected.
    pub fn guard(&self) -> EvidenceGuard {
        let mut guard = EvidenceGuard::new();
        match &self.disk {
            Some(disk) => {
                guard.protect_evidence(&disk.container.path);
                for f in disk.files() {
                    guard.protect(&f, "a file of the evidence disk image");
                }
            }
            None => {
                guard.protect_evidence(&self.root);
            }
        }
        if let Some(tp) = &self.options.thin_pool {
            let image = std::iter::once(tp.as_str())
                .chain(tp.match_indices(':').map(|(i, _)| &tp[..i]))
                .map(Path::new)
                .find(|p| p.is_file());
            if let Some(image) = image {
                if let Ok(disk) = Disk::open(image) {
                    for f in disk.files() {
                        guard.protect(&f, "a file of the --thin-pool disk image");
                    }
                }
                guard.protect(image, "the --thin-pool disk image");
            }
        }
        for (f, what) in &self.options.also_read {
            guard.protect(f, what);
        }
        guard
    }
}

/// Why [`Evidence::open`] (or [`crate::Host::open`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The evidence is damaged and nothing usable could be read before the damage.
    #[error(transparent)]
    Damaged(#[from] DamagedEvidence),
    /// The evidence could not be opened or used (the message names the file).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl EvidenceError {
    fn from_anyhow(e: anyhow::Error) -> Self {
        match e.downcast::<DamagedEvidence>() {
            Ok(d) => EvidenceError::Damaged(d),
            Err(e) => EvidenceError::Other(e),
        }
    }

    /// The damage behind the error (empty when the evidence is not damaged).
    pub fn damage(&self) -> Vec<EvidenceDamage> {
        match self {
            EvidenceError::Damaged(d) => d.damage.clone(),
            EvidenceError::Other(e) => error_damage(e),
        }
    }

    /// As an [`anyhow::Error`] with the same chain of causes (for [`error_damage`] and
    /// [`error_exit_code`]).
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            EvidenceError::Damaged(d) => anyhow::Error::new(d),
            EvidenceError::Other(e) => e,
        }
    }
}

/// Exit code when the evidence itself is damaged (wins over 0 and 1).
pub const EXIT_DAMAGED: u8 = 3;

/// An error caused by damaged evidence (nothing usable could be read before the damage):
/// the command exits [`EXIT_DAMAGED`].
#[derive(Debug)]
pub struct DamagedEvidence {
    /// The damage.
    pub damage: Vec<EvidenceDamage>,
    /// What failed because of it.
    pub cause: String,
}

impl std::fmt::Display for DamagedEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> = self
            .damage
            .iter()
            .map(|d| d.file.display().to_string())
            .collect();
        write!(
            f,
            "{} (the evidence is damaged: {}; a damaged copy, not necessarily the host's state)",
            self.cause,
            files.join(", ")
        )
    }
}

impl std::error::Error for DamagedEvidence {}

/// The exit code for an error: [`EXIT_DAMAGED`] when the evidence's damage caused it,
/// else 2.
pub fn error_exit_code(e: &anyhow::Error) -> u8 {
    if !error_damage(e).is_empty() {
        EXIT_DAMAGED
    } else {
        2
    }
}

/// The first line(s) every command prints for damaged evidence (one per damage).
pub fn damage_lines(damage: &[EvidenceDamage]) -> Vec<String> {
    damage
        .iter()
        .map(|d| format!("salvor: EVIDENCE DAMAGED: {d}; what follows is read up to the damage"))
        .collect()
}

/// The `evidence` block of `--json` outputs.
pub fn damage_json(damage: &[EvidenceDamage]) -> serde_json::Value {
    serde_json::json!({
        "damaged": !damage.is_empty(),
        "damage": damage,
    })
}

/// The damage an error carries (a [`DamagedEvidence`] or a source too damaged to read).
pub fn error_damage(e: &anyhow::Error) -> Vec<EvidenceDamage> {
    e.chain()
        .find_map(|c| {
            c.downcast_ref::<DamagedEvidence>()
                .map(|d| d.damage.clone())
                .or_else(|| match c.downcast_ref::<salvor_source::SourceError>() {
                    Some(salvor_source::SourceError::Damaged { damage }) => {
                        Some(vec![damage.clone()])
                    }
                    _ => None,
                })
                .or_else(|| match c.downcast_ref::<salvor_disk::DiskError>() {
                    Some(salvor_disk::DiskError::Damaged { damage }) => Some(vec![damage.clone()]),
                    _ => None,
                })
        })
        .unwrap_or_default()
}

/// `e` as a [`DamagedEvidence`] error when the evidence is damaged.
fn because_of(damage: &[EvidenceDamage], e: anyhow::Error) -> anyhow::Error {
    if damage.is_empty() {
        e
    } else {
        anyhow::Error::new(DamagedEvidence {
            damage: damage.to_vec(),
            cause: format!("{e:#}"),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    Archive,
    DiskImage,
}

/// `host.img:p3` → (`host.img`, `p3`) when `host.img:p3` itself does not exist.
pub(crate) fn split_spec(root: &Path) -> anyhow::Result<(PathBuf, Option<VolumeSpec>)> {
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

pub(crate) fn sniff(path: &Path) -> anyhow::Result<Kind> {
    let md = std::fs::metadata(path)
        .with_context(|| format!("cannot open evidence {}", path.display()))?;
    if md.is_dir() {
        return Ok(Kind::Dir);
    }
    // Only regular files are read: a FIFO would block the open (and a stream cannot be
    // read twice), a device is not an image file.
    if !md.is_file() {
        bail!(
            "evidence {} is {}, not a directory or a regular file: save the stream or device to an image file first",
            path.display(),
            salvor_disk::describe_file_type(md.file_type())
        );
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
        || salvor_source::identify_head(&head).is_some()
        || (0..4).any(|s| at(s * 512, b"LABELONE"));
    Ok(if raw_disk {
        Kind::DiskImage
    } else {
        Kind::Archive
    })
}

/// `--data-root /srv/docker` → `srv/docker` (relative to a filesystem's root); `..` and
/// empty paths are refused.
fn wanted_data_root(p: &Path) -> anyhow::Result<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            _ => bail!("--data-root {}: must be a path without '..'", p.display()),
        }
    }
    Ok(out)
}

/// The stores of a filesystem: the Docker graphdriver data-root and the containerd roots.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The Docker data-root (with `image/` or `graph/`), if any.
    pub data_root: Option<PathBuf>,
    /// The containerd roots.
    pub containerd: Vec<salvor_containerd::locate::Located>,
    /// Problems met looking for them.
    pub problems: Vec<salvor_model::Problem>,
}

/// The stores in `fs`: the Docker data-root `wanted` when given (it must hold `image/` or
/// `graph/`, or be the data-root of a dockerd-managed containerd found), else the one
/// `locate` finds; the containerd root `containerd_root` when given, else every one
/// `salvor_containerd::locate` finds. An error when there is neither.
fn stores_in(
    fs: &dyn Source,
    wanted: Option<&Path>,
    containerd_root: Option<&Path>,
) -> anyhow::Result<Found> {
    let (containerd, problems) = match containerd_root {
        Some(p) => (
            vec![salvor_containerd::locate::explicit_root(fs, p)
                .map_err(|e| anyhow!("--containerd-root {}: {e}", p.display()))?],
            Vec::new(),
        ),
        None => salvor_containerd::locate::locate(fs),
    };
    let data_root = match wanted {
        Some(w) => {
            if salvor_docker::locate::is_data_root(fs, w) {
                Some(w.to_path_buf())
            } else if containerd
                .iter()
                .any(|l| l.docker_data_root.as_deref() == Some(w))
            {
                None
            } else {
                bail!(
                    "no Docker data-root at /{} in {} (no image/ or graph/ directory there, and no containerd/daemon of Docker's containerd image store)",
                    w.display(),
                    fs.describe()
                )
            }
        }
        None => match salvor_docker::locate::find_data_root(fs) {
            Ok(d) => Some(d),
            Err(_) if !containerd.is_empty() => None,
            Err(e) => return Err(anyhow::Error::new(e).context(
                "no containerd root either (looked for <data-root>/containerd/daemon, var/lib/containerd, /etc/containerd/config.toml's root, k3s, RKE2, microk8s)",
            )),
        },
    };
    Ok(Found {
        data_root,
        containerd,
        problems,
    })
}

/// Opens `--root`; `options.data_root` is `--data-root` (a path inside the evidence, or on
/// a volume of the disk image, or a host path that the image's /etc/fstab maps to a volume).
pub(crate) fn open_anyhow(root: &Path, options: EvidenceOptions) -> anyhow::Result<Evidence> {
    let spool_limit = options.spool_limit;
    let wanted = options
        .data_root
        .as_deref()
        .map(wanted_data_root)
        .transpose()?;
    let wanted = wanted.as_deref();
    let containerd_root = options
        .containerd_root
        .as_deref()
        .map(wanted_data_root)
        .transpose()?;
    let containerd_root = containerd_root.as_deref();
    let (path, spec) = split_spec(root)?;
    let kind = sniff(&path)?;
    if kind != Kind::DiskImage {
        if spec.is_some() {
            bail!(
                "{}: a volume spec is only meaningful for a disk image",
                root.display()
            );
        }
        let opts = TarOptions {
            spool_limit,
            ..TarOptions::default()
        };
        let source: Arc<dyn Source> = Arc::from(
            salvor_source::open_evidence_with(&path, &opts)
                .with_context(|| format!("cannot open evidence {}", path.display()))?,
        );
        let damage = source.damage().to_vec();
        let found = stores_in(source.as_ref(), wanted, containerd_root)
            .map_err(|e| because_of(&damage, e))?;
        return Ok(Evidence {
            root: root.to_path_buf(),
            source,
            found,
            volume: None,
            disk: None,
            damage,
            options,
        });
    }
    let disk =
        Disk::open(&path).with_context(|| format!("cannot read disk image {}", path.display()))?;
    let damage = disk.damage.clone();
    let r = open_disk(&path, &disk, spec.as_ref(), wanted, containerd_root);
    let (source, found, volume) = r.map_err(|e| because_of(&damage, e))?;
    Ok(Evidence {
        root: root.to_path_buf(),
        source,
        found,
        volume: Some(volume),
        disk: Some(disk),
        damage,
        options,
    })
}

/// The filesystem, stores and volume spec [`open_disk`] found.
type OnDisk = (Arc<dyn Source>, Found, String);

/// The stores on a volume of `disk`: the first volume holding any.
fn open_disk(
    path: &Path,
    disk: &Disk,
    spec: Option<&VolumeSpec>,
    wanted: Option<&Path>,
    containerd_root: Option<&Path>,
) -> anyhow::Result<OnDisk> {
    let volumes = disk.select(spec.unwrap_or(&VolumeSpec::Auto))?;
    let mut tried = Vec::new();
    for v in volumes {
        let fs = match open_filesystem(&v.content, v.device.clone()) {
            Ok(fs) => fs,
            Err(e) => {
                tried.push(format!("{}: {}", v.spec, salvor_source::error_chain(&*e)));
                continue;
            }
        };
        match stores_in(fs.as_ref(), wanted, containerd_root) {
            Ok(found) => return Ok((fs, found, v.spec.clone())),
            Err(e) => tried.push(format!("{}: {}", v.spec, salvor_source::error_chain(&*e))),
        }
    }
    // A data-root below a mount point of another volume: follow the host's /etc/fstab.
    let all = disk.select(spec.unwrap_or(&VolumeSpec::Auto))?;
    let wanted_host = wanted.map(|w| format!("/{}", w.display()));
    if let Some((i, fs, data_root)) =
        crate::fstab::find_data_root(&all, wanted_host.as_deref(), |v| {
            open_filesystem(&v.content, v.device.clone()).ok()
        })
    {
        // Only the data-root's volume is searched for containerd roots (a containerd
        // root on another volume of the host is not read yet).
        let mut found = Found {
            data_root: Some(data_root),
            ..Found::default()
        };
        if containerd_root.is_none() {
            let (c, p) = salvor_containerd::locate::locate(fs.as_ref());
            found.containerd = c;
            found.problems = p;
        }
        return Ok((fs, found, all[i].spec.clone()));
    }
    if tried.is_empty() {
        bail!(
            "{}: no ext4 or XFS volume found (see `salvor --root {} probe`)",
            path.display(),
            path.display()
        );
    }
    bail!(
        "{}: no Docker data-root or containerd root found on any volume:\n  {}",
        path.display(),
        tried.join("\n  ")
    )
}

/// The pool a devicemapper store in direct-lvm mode needs: an LVM thin pool in the
/// evidence's disk image, or in the image `--thin-pool` names. `Ok(None)` when none is
/// needed or none is found (`note` then says why, if there is something to say).
///
/// `wanted` is `--thin-pool`: `VG/LV` (on the evidence's disk), `IMAGE` (the one pool
/// with devices LVM does not know, on another disk image) or `IMAGE:VG/LV`. Without it
/// the pool is the one the host configured (`dm.thinpooldev` in `daemon.json` or the
/// docker unit), else the only pool holding devices that are not LVM thin volumes. Loop
/// files in the data-root win unless `--thin-pool` is given.
pub(crate) fn choose_thin_pool(
    store: &salvor_docker::Store,
    opened: &Evidence,
    wanted: Option<&str>,
) -> anyhow::Result<ChosenPool> {
    let mut chosen = ChosenPool::default();
    if store.driver != salvor_docker::Driver::Devicemapper {
        if wanted.is_some() {
            bail!(
                "--thin-pool: the data-root's storage driver is {}, not devicemapper",
                store.driver
            );
        }
        return Ok(chosen);
    }
    if wanted.is_none() && store.has_thin_pool_loop_files() {
        return Ok(chosen);
    }
    let (image, name) = match wanted {
        Some(w) => parse_thin_pool_arg(w)?,
        None => (None, None),
    };
    let other;
    let disk = match (&image, &opened.disk) {
        (Some(path), _) => {
            other = Disk::open(path)
                .with_context(|| format!("--thin-pool: cannot read disk image {}", path.display()))?;
            &other
        }
        (None, Some(d)) => d,
        (None, None) if name.is_some() => bail!(
            "--thin-pool {}: the evidence is not a disk image; name the image holding the pool (--thin-pool IMAGE[:VG/LV])",
            wanted.unwrap_or_default()
        ),
        (None, None) => return Ok(chosen),
    };
    let where_ = disk.container.path.display().to_string();
    let list = || {
        if disk.thin_pools.is_empty() {
            format!("{where_} has no LVM thin pool")
        } else {
            let names: Vec<String> = disk
                .thin_pools
                .iter()
                .map(|t| format!("{}/{}", t.vg, t.lv))
                .collect();
            format!("thin pools on {where_}: {}", names.join(", "))
        }
    };
    // The pool the host configured, when `--thin-pool` does not name one.
    let configured = if name.is_none() && wanted.is_none() {
        configured_thinpooldev(opened, disk)
    } else {
        None
    };
    let by_name = name.clone().or_else(|| {
        configured
            .as_ref()
            .and_then(|c| salvor_docker::locate::thinpooldev_lv(c))
    });
    let tp = match &by_name {
        Some((vg, lv)) => match disk.thin_pool(vg, lv) {
            Some(tp) => tp,
            None if wanted.is_some() => bail!("--thin-pool: no thin pool {vg}/{lv}; {}", list()),
            None => {
                chosen.note = Some(format!(
                    "the host used the LVM thin pool {vg}/{lv} (dm.thinpooldev={}), which is not on {where_}; layers stay unreadable until --thin-pool IMAGE names the disk image holding it",
                    configured.unwrap_or_default()
                ));
                return Ok(chosen);
            }
        },
        None => {
            let with_foreign: Vec<_> = disk
                .thin_pools
                .iter()
                .filter(|t| !t.foreign_devices().is_empty())
                .collect();
            match with_foreign.as_slice() {
                [tp] => *tp,
                [] if wanted.is_some() => bail!(
                    "--thin-pool: no thin pool on {where_} holds devices other than LVM's own; {}",
                    list()
                ),
                [] => return Ok(chosen),
                many => bail!(
                    "several thin pools hold devices LVM does not know ({}): choose Docker's with --thin-pool VG/LV",
                    many.iter()
                        .map(|t| format!("{}/{}", t.vg, t.lv))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    let Some(pool) = tp.pool.clone() else {
        bail!(
            "thin pool {}/{} on {where_} cannot be read: {}",
            tp.vg,
            tp.lv,
            tp.error.as_deref().unwrap_or("unknown error")
        );
    };
    let origin = format!("LVM thin pool {}/{} on {where_}", tp.vg, tp.lv);
    chosen.note = Some(format!(
        "devicemapper direct-lvm: reading the {origin}{}",
        match &configured {
            Some(c) => format!(" (dm.thinpooldev={c})"),
            None => String::new(),
        }
    ));
    chosen.pool = Some((pool, origin));
    Ok(chosen)
}

/// What [`choose_thin_pool`] found.
#[derive(Default)]
pub(crate) struct ChosenPool {
    /// The pool and where it is.
    pub pool: Option<(salvor_disk::ThinPool, String)>,
    /// What to tell the user.
    pub note: Option<String>,
}

/// `--thin-pool` → (disk image, VG/LV).
type ThinPoolArg = (Option<PathBuf>, Option<(String, String)>);

fn parse_thin_pool_arg(s: &str) -> anyhow::Result<ThinPoolArg> {
    let lv = |t: &str| -> anyhow::Result<(String, String)> {
        let t = t.strip_prefix("lv:").unwrap_or(t);
        match t.split_once('/') {
            Some((vg, lv)) if !vg.is_empty() && !lv.is_empty() && !lv.contains('/') => {
                Ok((vg.to_string(), lv.to_string()))
            }
            _ => bail!("--thin-pool {s:?}: expected VG/LV, IMAGE or IMAGE:VG/LV"),
        }
    };
    if Path::new(s).is_file() {
        return Ok((Some(PathBuf::from(s)), None));
    }
    for (i, _) in s.match_indices(':') {
        if Path::new(&s[..i]).is_file() {
            return Ok((Some(PathBuf::from(&s[..i])), Some(lv(&s[i + 1..])?)));
        }
    }
    Ok((None, Some(lv(s)?)))
}

/// `dm.thinpooldev` as the host configured it: on the filesystem holding the data-root (as
/// a host root), else on any ext/XFS volume of the disk.
fn configured_thinpooldev(opened: &Evidence, disk: &Disk) -> Option<String> {
    let here = salvor_docker::locate::configured_thinpooldev(opened.source.as_ref(), Path::new(""));
    here.or_else(|| {
        disk.candidates().into_iter().find_map(|v| {
            let fs = open_filesystem(&v.content, v.device.clone()).ok()?;
            salvor_docker::locate::configured_thinpooldev(fs.as_ref(), Path::new(""))
        })
    })
}

/// A filesystem reader for a volume.
pub fn open_filesystem(
    content: &Content,
    dev: Arc<dyn salvor_source::BlockDevice>,
) -> anyhow::Result<Arc<dyn Source>> {
    match content.fs_kind() {
        Some(kind) => Ok(salvor_disk::fs::open_as(kind, dev)?),
        None => bail!(
            "not a filesystem salvor reads: {}",
            serde_json::to_string(content).unwrap_or_default()
        ),
    }
}
