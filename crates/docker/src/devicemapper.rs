//! Docker's devicemapper graph driver: its device records (`devicemapper/metadata/<id>`,
//! `deviceset-metadata`, the pre-1.7 `devicemapper/devicemapper/json`) and its loopback
//! pool files, paired with a [`ThinPool`] read by `salvor-dmthin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_dmthin::{SourceFile, ThinError, ThinPool, MAX_DEV_ID};
use salvor_source::{BlockDevice, FileKind, Source};

/// Largest devicemapper metadata JSON file read.
pub const MAX_JSON_SIZE: u64 = 1 << 20;

/// `devicemapper/metadata/<id>` of Docker's devicemapper driver (`devInfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct DmDeviceMeta {
    /// The thin device id in the pool.
    pub device_id: u64,
    /// Virtual size of the thin device in bytes.
    #[serde(default)]
    pub size: u64,
    /// `transaction_id`: the pool transaction that last changed the device.
    #[serde(default)]
    pub transaction_id: u64,
    /// `initialized`: the device's filesystem was created (only the base device records it).
    #[serde(default)]
    pub initialized: bool,
    /// Marked for (deferred) deletion; the thin device may still hold data.
    #[serde(default)]
    pub deleted: bool,
}

/// `devicemapper/metadata/deviceset-metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct DmDeviceSetMeta {
    /// `NextDeviceId`: the thin device id the driver would have allocated next.
    #[serde(default)]
    pub next_device_id: Option<u64>,
    /// `BaseDeviceUUID`: the filesystem UUID of the base device.
    #[serde(default, rename = "BaseDeviceUUID")]
    pub base_device_uuid: Option<String>,
    /// `ext4` or `xfs` (empty on old daemons).
    #[serde(default, rename = "BaseDeviceFilesystem")]
    pub base_device_filesystem: Option<String>,
}

fn dm_dir(data_root: &Path) -> PathBuf {
    data_root.join("devicemapper")
}

fn read_json<T: serde::de::DeserializeOwned>(
    source: &dyn Source,
    path: &Path,
) -> Result<T, ThinError> {
    let bytes = source.read_limited(path, MAX_JSON_SIZE)?;
    serde_json::from_slice(&bytes).map_err(|e| ThinError::Docker {
        path: path.to_path_buf(),
        reason: format!("bad JSON: {e}"),
    })
}

/// Files of `devicemapper/metadata/` that are not device records.
fn is_device_record(name: &str) -> bool {
    !(name.starts_with('.')
        || name.ends_with(".migrated")
        || name == "deviceset-metadata"
        || name == "transaction-metadata")
}

/// Reads every `devicemapper/metadata/<id>` of the data-root `data_root` in `source`: cache
/// id (`base` for the base device) → record. Also reads the pre-1.7 single file
/// `devicemapper/devicemapper/json` (`{"Devices": {hash: record}}`) when present; records
/// in `metadata/` win. Any unreadable record is an error naming the file; see
/// [`read_docker_devicemapper_metadata_lenient`] to skip them with a warning instead.
pub fn read_docker_devicemapper_metadata(
    source: &dyn Source,
    data_root: &Path,
) -> Result<BTreeMap<String, DmDeviceMeta>, ThinError> {
    read_metadata(source, data_root, None)
}

/// Like [`read_docker_devicemapper_metadata`], but a record that cannot be read or parsed
/// is left out and described in the returned warnings.
pub fn read_docker_devicemapper_metadata_lenient(
    source: &dyn Source,
    data_root: &Path,
) -> Result<(BTreeMap<String, DmDeviceMeta>, Vec<String>), ThinError> {
    let mut warnings = Vec::new();
    let m = read_metadata(source, data_root, Some(&mut warnings))?;
    Ok((m, warnings))
}

fn read_metadata(
    source: &dyn Source,
    data_root: &Path,
    mut warnings: Option<&mut Vec<String>>,
) -> Result<BTreeMap<String, DmDeviceMeta>, ThinError> {
    let mut out = BTreeMap::new();
    let legacy = dm_dir(data_root).join("devicemapper/json");
    if source.metadata(&legacy).is_ok_and(|m| m.is_file()) {
        #[derive(serde::Deserialize)]
        struct Legacy {
            #[serde(rename = "Devices", default)]
            devices: BTreeMap<String, DmDeviceMeta>,
        }
        match read_json::<Legacy>(source, &legacy) {
            Ok(l) => {
                for (hash, d) in l.devices {
                    out.insert(
                        if hash.is_empty() {
                            "base".to_string()
                        } else {
                            hash
                        },
                        d,
                    );
                }
            }
            Err(e) => match warnings.as_deref_mut() {
                Some(w) => w.push(salvor_model::error_chain(&e)),
                None => return Err(e),
            },
        }
    }
    let dir = dm_dir(data_root).join("metadata");
    let entries = match source.read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.is_not_found() && !out.is_empty() => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for ent in entries {
        let Some(name) = ent.name.to_str() else {
            if let Some(w) = warnings.as_deref_mut() {
                w.push(format!(
                    "{}: non-UTF-8 name {:?} skipped",
                    dir.display(),
                    ent.name
                ));
            }
            continue;
        };
        if ent.kind != FileKind::Regular || !is_device_record(name) {
            continue;
        }
        let path = dir.join(name);
        match read_json::<DmDeviceMeta>(source, &path) {
            Ok(d) if d.device_id > MAX_DEV_ID => {
                let e = ThinError::Docker {
                    path,
                    reason: format!("device_id {} exceeds 24 bits", d.device_id),
                };
                match warnings.as_deref_mut() {
                    Some(w) => w.push(salvor_model::error_chain(&e)),
                    None => return Err(e),
                }
            }
            Ok(d) => {
                out.insert(name.to_string(), d);
            }
            Err(e) => match warnings.as_deref_mut() {
                Some(w) => w.push(salvor_model::error_chain(&e)),
                None => return Err(e),
            },
        }
    }
    Ok(out)
}

/// Reads `devicemapper/metadata/deviceset-metadata`; `None` when absent.
pub fn read_docker_deviceset_metadata(
    source: &dyn Source,
    data_root: &Path,
) -> Result<Option<DmDeviceSetMeta>, ThinError> {
    let path = dm_dir(data_root).join("metadata/deviceset-metadata");
    match source.metadata(&path) {
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
        Ok(_) => read_json(source, &path).map(Some),
    }
}

/// The loopback-mode pool files of the data-root `data_root`: (metadata, data), i.e.
/// `devicemapper/devicemapper/{metadata,data}`. Direct-lvm hosts have neither.
pub fn loop_files(data_root: &Path) -> (PathBuf, PathBuf) {
    let d = dm_dir(data_root).join("devicemapper");
    (d.join("metadata"), d.join("data"))
}

/// Opens the pool of a loopback-mode devicemapper data-root inside `source`
/// (`devicemapper/devicemapper/{metadata,data}`). In direct-lvm mode there are no loop
/// files: open the LVM thin pool's `_tmeta`/`_tdata` volumes with [`ThinPool::open`]
/// (`salvor-disk` does, for every thin pool in a disk image) and pair it with the records
/// through [`DockerDevicemapper::with_pool`].
pub fn open_docker_pool(source: &dyn Source, data_root: &Path) -> Result<ThinPool, ThinError> {
    let (mp, dp) = loop_files(data_root);
    for p in [&mp, &dp] {
        if let Err(e) = source.metadata(p) {
            if e.is_not_found() {
                return Err(ThinError::Docker {
                    path: p.clone(),
                    reason: "no loopback file: the daemon used direct-lvm (open the LVM thin pool's tmeta/tdata volumes instead) or this is not a devicemapper data-root".into(),
                });
            }
            return Err(e.into());
        }
    }
    let meta: Arc<dyn BlockDevice> = Arc::new(SourceFile::open(source, &mp)?);
    let data: Arc<dyn BlockDevice> = Arc::new(SourceFile::open(source, &dp)?);
    ThinPool::open(meta, data)
}

/// Docker's devicemapper driver state of a data-root: the pool and the device records.
#[derive(Debug, Clone)]
pub struct DockerDevicemapper {
    /// The thin pool (metadata and data devices), opened read-only.
    pub pool: ThinPool,
    /// Where the pool was read from (the loop files, or an LVM thin pool).
    pub origin: String,
    /// Cache id (`base` for the base device) → record.
    pub devices: BTreeMap<String, DmDeviceMeta>,
    /// `deviceset-metadata`, when present and readable.
    pub deviceset: Option<DmDeviceSetMeta>,
    /// Records that could not be read.
    pub warnings: Vec<String>,
}

impl DockerDevicemapper {
    /// Opens the loop-file pool and reads the records of the data-root `data_root` in
    /// `source` (unreadable records become warnings).
    pub fn open(source: &dyn Source, data_root: &Path) -> Result<DockerDevicemapper, ThinError> {
        let pool = open_docker_pool(source, data_root)?;
        let origin = format!(
            "loop files {}/devicemapper/devicemapper/{{metadata,data}}",
            data_root.display()
        );
        Self::with_pool(source, data_root, pool, origin)
    }

    /// Reads the records of the data-root `data_root` in `source` and pairs them with a
    /// pool opened elsewhere (direct-lvm: the LVM thin pool's `_tmeta`/`_tdata` volumes).
    pub fn with_pool(
        source: &dyn Source,
        data_root: &Path,
        pool: ThinPool,
        origin: String,
    ) -> Result<DockerDevicemapper, ThinError> {
        let (devices, mut warnings) = read_docker_devicemapper_metadata_lenient(source, data_root)?;
        let deviceset = match read_docker_deviceset_metadata(source, data_root) {
            Ok(d) => d,
            Err(e) => {
                warnings.push(salvor_model::error_chain(&e));
                None
            }
        };
        Ok(DockerDevicemapper {
            pool,
            origin,
            devices,
            deviceset,
            warnings,
        })
    }

    /// The thin device of layer (or container) `cache_id`, sized as the record says. The
    /// filesystem on it (ext4 or xfs, see [`DmDeviceSetMeta::base_device_filesystem`]) has
    /// the layer's full rootfs under `rootfs/` and the cache id in `id`.
    pub fn layer_device(&self, cache_id: &str) -> Result<Arc<dyn BlockDevice>, ThinError> {
        let rec = self
            .devices
            .get(cache_id)
            .ok_or_else(|| ThinError::Docker {
                path: PathBuf::from("devicemapper/metadata").join(cache_id),
                reason: "no devicemapper record for this id".into(),
            })?;
        if rec.size == 0 {
            self.pool.device(rec.device_id)
        } else {
            self.pool.device_with_size(rec.device_id, rec.size)
        }
    }
}
