//! [`Disk`]: an image scanned into its partition table, LVM volume groups, thin pools and
//! volumes, and the [`ProbeReport`] behind `salvor probe`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use salvor_source::BlockDevice;
use serde::Serialize;

use crate::{
    identify, lvm, open_image_with, read_partition_table, view, ContainerInfo, Content, DiskError,
    Format, Image, LogicalVolume, OpenOptions, Partition, PartitionTable, Result, Scheme, Volume,
    VolumeGroup, VolumeKind, VolumeSpec,
};

/// An LVM thin pool, opened through its hidden metadata and data sub-volumes.
///
/// LVM's own thin volumes in it become [`Volume`]s; devices it holds that LVM does not
/// know (Docker's devicemapper driver in direct-lvm mode creates its own, one per layer
/// and container) are reached through [`ThinPoolVolume::pool`].
#[derive(Debug, Clone, Serialize)]
pub struct ThinPoolVolume {
    /// `lv:vg/pool`.
    pub spec: String,
    /// Volume group name.
    pub vg: String,
    /// The pool LV's name.
    pub lv: String,
    /// The hidden LV with the dm-thin metadata (`pool_tmeta`).
    pub metadata_lv: String,
    /// The hidden LV with the data blocks (`pool_tdata`).
    pub data_lv: String,
    /// Data block size in bytes, as LVM recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
    /// Data block size in bytes, as the pool's superblock says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_block_size: Option<u64>,
    /// The pool superblock's transaction id (Docker advances it; LVM's may lag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<u64>,
    /// Every thin device id in the pool.
    pub device_ids: Vec<u64>,
    /// Thin device id → the LVM thin volume (`lv:vg/name`) that uses it. Ids not here are
    /// devices LVM does not know about.
    pub lvm_volumes: std::collections::BTreeMap<u64, String>,
    /// Why the pool could not be opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The opened pool.
    #[serde(skip)]
    pub pool: Option<salvor_dmthin::ThinPool>,
}

impl ThinPoolVolume {
    /// The thin devices LVM does not know about (Docker's, in direct-lvm mode).
    pub fn foreign_devices(&self) -> Vec<u64> {
        self.device_ids
            .iter()
            .copied()
            .filter(|d| !self.lvm_volumes.contains_key(d))
            .collect()
    }
}

/// What `salvor probe` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The image container (format, size, backing chain, files read).
    pub container: ContainerInfo,
    /// The partition table, if the disk has one.
    pub partition_table: Option<PartitionTable>,
    /// LVM volume groups found on the disk's physical volumes.
    pub volume_groups: Vec<VolumeGroup>,
    /// Every readable volume: partitions (or the whole disk), then logical volumes.
    pub volumes: Vec<Volume>,
    /// LVM thin pools, opened through their hidden sub-volumes.
    pub thin_pools: Vec<ThinPoolVolume>,
    /// Damage met that did not stop the scan (bad primary GPT, unreadable LVM metadata).
    pub warnings: Vec<String>,
    /// Damage of the image itself (see [`Disk::damage`]).
    pub damage: Vec<salvor_source::EvidenceDamage>,
}

/// An opened, scanned disk image.
#[derive(Debug, Clone)]
pub struct Disk {
    /// The image container (format, size, backing chain, files read).
    pub container: ContainerInfo,
    /// The virtual disk's bytes.
    pub device: Arc<dyn BlockDevice>,
    /// The partition table, if the disk has one.
    pub partition_table: Option<PartitionTable>,
    /// LVM volume groups found on the disk's physical volumes.
    pub volume_groups: Vec<VolumeGroup>,
    /// Every readable volume: partitions (or the whole disk), then logical volumes.
    pub volumes: Vec<Volume>,
    /// LVM thin pools, opened through their hidden sub-volumes.
    pub thin_pools: Vec<ThinPoolVolume>,
    /// Damage met that did not stop the scan (bad primary GPT, unreadable LVM metadata).
    pub warnings: Vec<String>,
    /// Damage of the image itself (a cut copy: structures the container format or the
    /// partition table place past its end). The evidence is read up to the damage.
    pub damage: Vec<salvor_source::EvidenceDamage>,
}

/// A disk shorter than its partition table says: a partition ending past the end of
/// the virtual disk, or a GPT whose backup header lies past it (a cut copy).
fn table_damage(
    info: &ContainerInfo,
    dev: &dyn BlockDevice,
    table: Option<&PartitionTable>,
) -> Vec<salvor_source::EvidenceDamage> {
    use salvor_source::{DamageKind, EvidenceDamage};
    let Some(t) = table else {
        return Vec::new();
    };
    let size = dev.size();
    let what = if info.format == Format::Raw {
        "the image"
    } else {
        "the virtual disk"
    };
    let mut out = Vec::new();
    let mut past: Vec<&Partition> = t
        .partitions
        .iter()
        .filter(|p| p.size > 0 && p.start.saturating_add(p.size) > size)
        .collect();
    past.sort_by_key(|p| std::cmp::Reverse(p.start.saturating_add(p.size)));
    if let Some(last) = past.first() {
        let end = last.start.saturating_add(last.size);
        out.push(EvidenceDamage {
            file: info.path.clone(),
            kind: DamageKind::Truncated,
            offset: Some(size),
            detail: format!(
                "{what} is {size} bytes, but its partition table says partition {} ends at byte {end} (truncated copy?)",
                last.index
            ),
            lost: format!(
                "{} byte(s) at the end of the disk; partition(s) {} cut or absent",
                end - size,
                past.iter()
                    .map(|p| p.index.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    } else if t.scheme == Scheme::Gpt {
        let ss = t.sector_size;
        let mut hdr = vec![0u8; ss as usize];
        if dev.read_exact_at(ss, &mut hdr).is_ok() && hdr.starts_with(b"EFI PART") {
            let alt = u64::from_le_bytes(hdr[32..40].try_into().unwrap_or([0; 8]));
            let at = alt.saturating_mul(ss);
            if alt > 1 && at.saturating_add(ss) > size {
                out.push(EvidenceDamage {
                    file: info.path.clone(),
                    kind: DamageKind::Truncated,
                    offset: Some(size),
                    detail: format!(
                        "{what} is {size} bytes, but its GPT places the backup header at byte {at} (truncated copy?)"
                    ),
                    lost: format!("{} byte(s) at the end of the disk (the GPT backup)", at.saturating_add(ss) - size),
                });
            }
        }
    }
    out
}

/// Opens and scans an image and reports what it holds.
pub fn probe(path: &Path) -> Result<ProbeReport> {
    Ok(Disk::open(path)?.report())
}

impl Disk {
    /// Opens an image (any container) and scans it.
    pub fn open(path: &Path) -> Result<Disk> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// Opens an image with explicit [`OpenOptions`] (backing files, segments) and scans it.
    pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Disk> {
        let img = open_image_with(path, opts)?;
        Ok(Self::scan(img))
    }

    /// Scans an opened image: partition table, volumes, LVM, contents. Damage is
    /// recorded in `warnings`; the scan goes on with what is readable.
    pub fn scan(img: Image) -> Disk {
        let dev = img.device.clone();
        let desc = dev.describe();
        let mut warnings = Vec::new();
        let table = match read_partition_table(&*dev) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!(
                    "partition table unreadable: {}",
                    salvor_source::error_chain(&e)
                ));
                None
            }
        };
        let mut damage = img.damage.clone();
        damage.extend(table_damage(&img.info, &*dev, table.as_ref()));
        let mut volumes = Vec::new();
        match &table {
            Some(t) => {
                warnings.extend(t.warnings.iter().cloned());
                for p in &t.partitions {
                    let ext = t.scheme == Scheme::Mbr
                        && matches!(p.type_id.as_str(), "0x5" | "0xf" | "0x85");
                    if ext || p.size == 0 || p.start >= dev.size() {
                        if let Some(pr) = &p.problem {
                            warnings.push(format!("partition {}: {pr}", p.index));
                        }
                        continue;
                    }
                    if let Some(pr) = &p.problem {
                        warnings.push(format!("partition {}: {pr}", p.index));
                    }
                    let slice = view::Slice::new(
                        dev.clone(),
                        p.start,
                        p.size,
                        format!("partition {} of {desc}", p.index),
                    );
                    volumes.push(Volume {
                        spec: format!("p{}", p.index),
                        kind: VolumeKind::Partition { index: p.index },
                        offset: Some(p.start),
                        size: slice.size(),
                        content: Content::Unknown,
                        device: Arc::new(slice),
                    });
                }
            }
            None => volumes.push(Volume {
                spec: "disk".into(),
                kind: VolumeKind::WholeDisk,
                offset: Some(0),
                size: dev.size(),
                content: Content::Unknown,
                device: dev.clone(),
            }),
        }
        // Contents, and LVM physical volumes.
        let mut pv_devs: HashMap<String, Arc<dyn BlockDevice>> = HashMap::new();
        let mut vgs: Vec<VolumeGroup> = Vec::new();
        for v in &mut volumes {
            v.content = identify(&*v.device);
            if let Content::LvmPv { .. } = v.content {
                match lvm::read_pv_label(&*v.device) {
                    Ok(Some(label)) => {
                        pv_devs.insert(label.uuid.clone(), v.device.clone());
                        match lvm::read_metadata_text(&*v.device, &label) {
                            Ok(Some(text)) => match lvm::parse_metadata(&text) {
                                Ok(vg) => {
                                    if let Some(old) = vgs.iter_mut().find(|g| g.uuid == vg.uuid) {
                                        if vg.seqno > old.seqno {
                                            *old = vg;
                                        }
                                    } else {
                                        vgs.push(vg);
                                    }
                                }
                                Err(e) => warnings
                                    .push(format!("{}: LVM metadata: {e}", v.device.describe())),
                            },
                            Ok(None) => {}
                            Err(e) => warnings.push(salvor_source::error_chain(&e)),
                        }
                    }
                    Ok(None) => {}
                    Err(e) => warnings.push(salvor_source::error_chain(&e)),
                }
            }
        }
        let mut thin_pools = Vec::new();
        for vg in &vgs {
            for lv in &vg.logical_volumes {
                if let Some(seg) = lv.thin_pool_segment() {
                    let tp = open_thin_pool(vg, lv, seg, &pv_devs, &mut warnings);
                    thin_pools.push(tp);
                }
            }
        }
        // Thin volumes that cannot be read: (vg, lv, why), recorded on the LV afterwards.
        let mut unreadable = Vec::new();
        for (gi, vg) in vgs.iter().enumerate() {
            for (li, lv) in vg.logical_volumes.iter().enumerate() {
                if !lv.visible() || lv.thin_pool_segment().is_some() {
                    continue; // hidden, or a pool (in `thin_pools`)
                }
                let spec = format!("lv:{}/{}", vg.name, lv.name);
                let device: Arc<dyn BlockDevice> = match lv.thin_volume() {
                    Some((pool_lv, dev_id)) => {
                        let tp = thin_pools
                            .iter_mut()
                            .find(|t| t.vg == vg.name && t.lv == pool_lv);
                        let opened = match tp {
                            None => {
                                Err(format!("thin pool {pool_lv:?} is not in the volume group"))
                            }
                            Some(tp) => {
                                tp.lvm_volumes.insert(dev_id, spec.clone());
                                match &tp.pool {
                                    None => {
                                        Err(format!("thin pool {} could not be opened", tp.spec))
                                    }
                                    Some(pool) => {
                                        pool.device_with_size(dev_id, lv.size).map_err(|e| {
                                            format!(
                                                "thin device {dev_id} of {}: {}",
                                                tp.spec,
                                                salvor_source::error_chain(&e)
                                            )
                                        })
                                    }
                                }
                            }
                        };
                        match opened {
                            Ok(d) => d,
                            Err(why) => {
                                warnings.push(format!("{spec}: {why}"));
                                unreadable.push((gi, li, why));
                                continue;
                            }
                        }
                    }
                    None => match lvm::map_lv(vg, lv, &pv_devs) {
                        Ok(map) => Arc::new(map),
                        Err(e) => {
                            warnings.push(salvor_source::error_chain(&e));
                            continue;
                        }
                    },
                };
                volumes.push(Volume {
                    spec,
                    kind: VolumeKind::LogicalVolume {
                        vg: vg.name.clone(),
                        lv: lv.name.clone(),
                    },
                    offset: None,
                    size: device.size(),
                    content: identify(&*device),
                    device,
                });
            }
        }
        for (gi, li, why) in unreadable {
            vgs[gi].logical_volumes[li].unsupported = Some(why);
        }
        Disk {
            container: img.info,
            device: dev,
            partition_table: table,
            volume_groups: vgs,
            volumes,
            thin_pools,
            warnings,
            damage,
        }
    }

    /// Every file read for this disk: the image file, its E01/Ex01 segments, its VMDK
    /// descriptor and extent files, its qcow2 backing chain; canonical absolute paths
    /// (symlinks resolved), each once. Output must never be written to any of them.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        self.container.all_files()
    }

    /// The thin pool `vg/lv`.
    pub fn thin_pool(&self, vg: &str, lv: &str) -> Option<&ThinPoolVolume> {
        self.thin_pools.iter().find(|t| t.vg == vg && t.lv == lv)
    }

    /// The serialisable report.
    pub fn report(&self) -> ProbeReport {
        ProbeReport {
            container: self.container.clone(),
            partition_table: self.partition_table.clone(),
            volume_groups: self.volume_groups.clone(),
            volumes: self.volumes.clone(),
            thin_pools: self.thin_pools.clone(),
            warnings: self.warnings.clone(),
            damage: self.damage.clone(),
        }
    }

    /// Volumes that may hold a Docker data-root: ext2/3/4 and XFS, in disk order
    /// (partitions, then logical volumes).
    pub fn candidates(&self) -> Vec<&Volume> {
        self.volumes
            .iter()
            .filter(|v| v.content.is_candidate())
            .collect()
    }

    /// The volumes a spec selects: exactly one for `disk`, `pN`, `lv:vg/name`; every
    /// candidate ([`Disk::candidates`]) for `auto` (an error if there is none).
    pub fn select(&self, spec: &VolumeSpec) -> Result<Vec<&Volume>> {
        let what = self.container.path.display().to_string();
        let none = |reason: String| DiskError::NoVolume {
            what: what.clone(),
            spec: spec.to_string(),
            reason,
        };
        let avail = || {
            let v: Vec<&str> = self.volumes.iter().map(|v| v.spec.as_str()).collect();
            if v.is_empty() {
                "the disk has no readable volumes".to_string()
            } else {
                format!("volumes are: {}", v.join(", "))
            }
        };
        match spec {
            VolumeSpec::Auto => {
                let c = self.candidates();
                if c.is_empty() {
                    Err(none(format!(
                        "no ext2/3/4 or XFS volume found; {}",
                        avail()
                    )))
                } else {
                    Ok(c)
                }
            }
            VolumeSpec::Disk => {
                // The whole disk is always selectable, even with a partition table.
                if let Some(v) = self
                    .volumes
                    .iter()
                    .find(|v| v.kind == VolumeKind::WholeDisk)
                {
                    return Ok(vec![v]);
                }
                Err(none(format!("the disk has a partition table; {}", avail())))
            }
            VolumeSpec::Partition(n) => self
                .volumes
                .iter()
                .find(|v| v.kind == VolumeKind::Partition { index: *n })
                .map(|v| vec![v])
                .ok_or_else(|| none(avail())),
            VolumeSpec::Lv { vg, lv } => {
                if let Some(v) = self.volumes.iter().find(|v| {
                    v.kind
                        == VolumeKind::LogicalVolume {
                            vg: vg.clone(),
                            lv: lv.clone(),
                        }
                }) {
                    return Ok(vec![v]);
                }
                let why = self
                    .volume_groups
                    .iter()
                    .find(|g| &g.name == vg)
                    .and_then(|g| g.logical_volumes.iter().find(|l| &l.name == lv))
                    .and_then(|l| l.unsupported.clone());
                Err(none(match why {
                    Some(w) => format!("the LV exists but cannot be read: {w}"),
                    None => avail(),
                }))
            }
        }
    }
}

/// Opens the thin pool `lv` (whose segment is `seg`) through its metadata and data LVs.
/// A pool whose metadata checksums fail is opened leniently, with a warning.
fn open_thin_pool(
    vg: &VolumeGroup,
    lv: &LogicalVolume,
    seg: &lvm::Segment,
    pv_devs: &HashMap<String, Arc<dyn BlockDevice>>,
    warnings: &mut Vec<String>,
) -> ThinPoolVolume {
    let spec = format!("lv:{}/{}", vg.name, lv.name);
    let mut tp = ThinPoolVolume {
        spec: spec.clone(),
        vg: vg.name.clone(),
        lv: lv.name.clone(),
        metadata_lv: seg.metadata.clone().unwrap_or_default(),
        data_lv: seg.pool.clone().unwrap_or_default(),
        chunk_size: seg.chunk_size,
        data_block_size: None,
        transaction_id: None,
        device_ids: Vec::new(),
        lvm_volumes: Default::default(),
        error: None,
        pool: None,
    };
    let sub = |name: &str| -> std::result::Result<Arc<dyn BlockDevice>, String> {
        let l = vg
            .logical_volumes
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| format!("its LV {name:?} is not in the volume group"))?;
        lvm::map_lv(vg, l, pv_devs)
            .map(|m| Arc::new(m) as Arc<dyn BlockDevice>)
            .map_err(|e| salvor_source::error_chain(&e))
    };
    let opened = sub(&tp.metadata_lv).and_then(|meta| {
        let data = sub(&tp.data_lv)?;
        match salvor_dmthin::ThinPool::open(meta.clone(), data.clone()) {
            Ok(p) => Ok(p),
            Err(salvor_dmthin::ThinError::Checksum { .. }) => {
                let p = salvor_dmthin::ThinPool::open_lenient(meta, data)
                    .map_err(|e| salvor_source::error_chain(&e))?;
                warnings.push(format!(
                    "thin pool {spec}: metadata checksums do not match; read anyway"
                ));
                Ok(p)
            }
            Err(e) => Err(salvor_source::error_chain(&e)),
        }
    });
    match opened {
        Ok(pool) => {
            let sb = pool.superblock();
            tp.data_block_size = Some(pool.data_block_size());
            tp.transaction_id = Some(sb.transaction_id);
            tp.device_ids = pool.devices().iter().map(|d| d.dev_id).collect();
            if let Some(c) = tp.chunk_size.filter(|&c| c != pool.data_block_size()) {
                warnings.push(format!(
                    "thin pool {spec}: LVM says {c}-byte chunks, the pool superblock {}",
                    pool.data_block_size()
                ));
            }
            tp.pool = Some(pool);
        }
        Err(e) => {
            warnings.push(format!("thin pool {spec}: {e}"));
            tp.error = Some(e);
        }
    }
    tp
}
