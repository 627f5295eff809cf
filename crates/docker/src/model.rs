//! Docker's graphdriver store as an implementation of the engine-neutral model
//! ([`salvor_model::ContainerStore`]): layers keyed by chain id, proven by tar-split
//! rebuild; images keyed by config digest; containers, volumes and logs as Docker keeps
//! them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvor_model::{
    BindMountRecord, ContainerRecord, ContainerStatus, ContainerStore, EngineKind, EvidenceDamage,
    ImageRecord, LayerProof, LayerRecord, LayerView, LogLine, LogLines, LogStream, ModelError,
    Problem, RebuildReport, RebuildStatus, RecordedHeaders, RecordedTime, StoreIdentity, ViewFiles,
    VolumeDetails, VolumeRecord, WhiteoutStyle,
};
use salvor_source::Source;

use crate::{Container, Driver, Image, Layer, LayerFiles, Layout, Store, StoreError, TarSplitRef};

impl From<StoreError> for ModelError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(s) => ModelError::NotFound(s),
            e => ModelError::Engine(Box::new(e)),
        }
    }
}

/// The userns-remap offset of a data-root named `<uid>.<gid>` (`/var/lib/docker/100000.100000`).
pub fn remap_of(root: &Path) -> (i64, i64) {
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Some((u, g)) = name.as_deref().and_then(|n| n.split_once('.')) {
        if let (Ok(u), Ok(g)) = (u.parse::<u32>(), g.parse::<u32>()) {
            return (i64::from(u), i64::from(g));
        }
    }
    (0, 0)
}

/// A Docker layer as a model record.
pub fn layer_record(l: &Layer) -> LayerRecord {
    LayerRecord {
        id: l.chain_id.clone(),
        diff_id: l.diff_id.as_deref().and_then(|d| d.parse().ok()),
        chain_id: l.chain_id.parse().ok(),
        parent: l.parent.clone(),
        size: l.size,
        proof: match &l.tar_split {
            TarSplitRef::Gz { .. } | TarSplitRef::EmptyLayer => LayerProof::TarSplit,
            TarSplitRef::Missing { reason } => LayerProof::Unprovable {
                why: reason.clone(),
            },
        },
    }
}

/// A Docker image as a model record.
pub fn image_record(i: &Image) -> ImageRecord {
    ImageRecord {
        id: i.id.clone(),
        names: i.repo_tags.clone(),
        digests: i.repo_digests.clone(),
        layers: i.chain_ids.clone(),
        created: i.created.clone(),
        config_as_stored: !i.synthesised,
        config_path: i.config_path.clone(),
    }
}

/// A Docker container as a model record.
pub fn container_record(c: &Container) -> ContainerRecord {
    ContainerRecord {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image_id.clone().unwrap_or_else(|| c.image.clone()),
        created: c.created.clone(),
        state: ContainerStatus {
            status: c.state.status.clone(),
            running: c.state.running,
            exit_code: Some(c.state.exit_code),
            pid: (c.state.pid != 0).then_some(c.state.pid),
            started_at: c.state.started_at.clone(),
            finished_at: c.state.finished_at.clone(),
        },
        rw_layer: c.rw_layer.as_ref().map(|r| r.mount_id.clone()),
        config_path: Some(c.config_path.clone()),
        log_paths: Vec::new(),
        command: Some(c.command()),
        labels: c.labels.clone(),
    }
}

impl Store {
    /// The layer's files as a model view ([`LayerView`]): the evidence (or the thin
    /// device's filesystem), the layer's own directory, its lowers, the whiteout style.
    pub fn view_of(&self, files: &LayerFiles, parent: Option<&str>) -> LayerView {
        let style = if self.driver == Driver::FuseOverlayfs {
            WhiteoutStyle::FuseOverlayfs
        } else {
            WhiteoutStyle::Overlay
        };
        let mut source = self.source.clone();
        let mut not_auditable = None;
        let files = match files {
            LayerFiles::Overlay { diff, lowers } => ViewFiles::Diff {
                dir: diff.clone(),
                lowers: lowers.clone(),
                style,
            },
            LayerFiles::Aufs { diff } => ViewFiles::Diff {
                dir: diff.clone(),
                lowers: Vec::new(),
                style: WhiteoutStyle::Aufs,
            },
            LayerFiles::OverlayUpper { upper, lower_root } => ViewFiles::Diff {
                dir: upper.clone(),
                lowers: vec![lower_root.clone()],
                style: WhiteoutStyle::Overlay,
            },
            LayerFiles::Snapshot { root } => ViewFiles::Snapshot {
                root: root.clone(),
                has_parent: parent.is_some(),
                parent_root: parent
                    .and_then(|p| self.layers.get(p))
                    .and_then(|l| match &l.files {
                        LayerFiles::Snapshot { root } => Some(root.clone()),
                        _ => None,
                    }),
            },
            LayerFiles::ThinDevice { source: s, .. } => {
                source = s.0.clone();
                not_auditable = Some(
                    "devicemapper thin-device layers are checked by content (CRC, size, diff_id) only"
                        .to_string(),
                );
                ViewFiles::Snapshot {
                    root: PathBuf::from("rootfs"),
                    has_parent: parent.is_some(),
                    parent_root: None,
                }
            }
            LayerFiles::Unavailable { reason } => ViewFiles::Unavailable {
                reason: reason.clone(),
            },
        };
        LayerView {
            source,
            files,
            id_offset: remap_of(&self.root),
            not_auditable,
        }
    }

    fn layer_or_not_found(&self, id: &str) -> Result<&Layer, ModelError> {
        self.layers
            .get(id)
            .ok_or_else(|| ModelError::NotFound(format!("layer {id} is not in the layer store")))
    }

    fn image_by_id(&self, id: &str) -> Result<&Image, ModelError> {
        self.images
            .iter()
            .find(|i| i.id == id)
            .ok_or_else(|| ModelError::NotFound(format!("no image {id}")))
    }
}

fn unknown_layer(id: &str) -> RebuildReport {
    RebuildReport {
        chain_id: id.to_string(),
        diff_id: None,
        actual: None,
        as_found: None,
        bytes: 0,
        files: 0,
        status: RebuildStatus::Unrebuildable,
        findings: Vec::new(),
        error: Some(format!("layer {id} is not in the layer store")),
    }
}

impl ContainerStore for Store {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn identity(&self) -> StoreIdentity {
        StoreIdentity {
            engine: EngineKind::Docker,
            namespace: None,
            root: self.root.clone(),
            driver: self.driver.name().to_string(),
            rootless_owner: None,
        }
    }

    fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    fn engine_version(&self) -> Option<salvor_model::EngineVersion> {
        self.engine_version.clone()
    }

    fn images(&self) -> Vec<ImageRecord> {
        self.images.iter().map(image_record).collect()
    }

    fn layers(&self) -> Vec<LayerRecord> {
        self.layers.values().map(layer_record).collect()
    }

    fn layer(&self, id: &str) -> Option<LayerRecord> {
        self.layers.get(id).map(layer_record)
    }

    fn containers(&self) -> Result<Vec<ContainerRecord>, ModelError> {
        let (cs, _) = Store::containers(self);
        Ok(cs
            .iter()
            .map(|c| {
                let mut r = container_record(c);
                if let Ok(l) = crate::logs::log_files(self, c) {
                    r.log_paths = l.files.into_iter().rev().collect();
                }
                r
            })
            .collect())
    }

    fn volumes(&self) -> Result<Vec<VolumeRecord>, ModelError> {
        let (cs, _) = Store::containers(self);
        let (vs, _) = Store::volumes(self, &cs);
        Ok(vs
            .into_iter()
            .map(|v| VolumeRecord {
                name: v.name,
                driver: v.driver,
                data: v.data,
            })
            .collect())
    }

    fn problems(&self) -> Vec<Problem> {
        self.problems.clone()
    }

    fn damage(&self) -> Vec<EvidenceDamage> {
        self.damage.clone()
    }

    fn config_bytes(&self, image_id: &str) -> Result<Arc<Vec<u8>>, ModelError> {
        Ok(self.image_by_id(image_id)?.config.clone())
    }

    fn manifest_bytes(&self, image_id: &str) -> Result<Option<Vec<u8>>, ModelError> {
        // The graphdriver store keeps no manifests (only their digests, in repositories.json).
        self.image_by_id(image_id).map(|_| None)
    }

    fn rebuild_layer(&self, layer_id: &str, out: &mut dyn Write) -> io::Result<RebuildReport> {
        match self.layers.get(layer_id) {
            Some(l) => Store::rebuild_layer(self, l, out),
            None => Ok(unknown_layer(layer_id)),
        }
    }

    fn verify_layer(&self, layer_id: &str) -> RebuildReport {
        match self.layers.get(layer_id) {
            Some(l) => Store::verify_layer(self, l),
            None => unknown_layer(layer_id),
        }
    }

    fn layer_view(&self, layer_id: &str) -> Result<LayerView, ModelError> {
        let l = self.layer_or_not_found(layer_id)?;
        Ok(self.view_of(&l.files, l.parent.as_deref()))
    }

    fn recorded_headers(&self, layer_id: &str) -> RecordedHeaders {
        let Some(l) = self.layers.get(layer_id) else {
            return RecordedHeaders::Unavailable {
                reason: format!("layer {layer_id} is not in the layer store"),
            };
        };
        match &l.tar_split {
            TarSplitRef::Missing { reason } => RecordedHeaders::Unavailable {
                reason: reason.clone(),
            },
            TarSplitRef::EmptyLayer => RecordedHeaders::Empty,
            TarSplitRef::Gz { path } => match self.tar_split_entries(l, path) {
                Ok(entries) => RecordedHeaders::Stream {
                    path: path.clone(),
                    headers: Box::new(salvor_tarsplit::headers(entries)),
                },
                Err(e) => RecordedHeaders::Unavailable {
                    reason: salvor_model::error_chain(&e),
                },
            },
        }
    }

    fn rw_layer_view(&self, container_id: &str) -> Result<LayerView, ModelError> {
        let c = self.find_container(container_id)?;
        let rw = c.rw_layer.as_ref().ok_or_else(|| {
            ModelError::NotFound(format!("container {}: no read-write layer", c.id))
        })?;
        Ok(self.view_of(&rw.files, rw.parent.as_deref()))
    }

    fn init_layer_view(&self, container_id: &str) -> Result<Option<LayerView>, ModelError> {
        let c = self.container_by_id(container_id)?;
        Ok(c.rw_layer.as_ref().and_then(|rw| {
            rw.init_files
                .as_ref()
                .map(|init| self.view_of(init, rw.parent.as_deref()))
        }))
    }

    fn container_image_name(&self, container_id: &str) -> Option<String> {
        self.container_by_id(container_id)
            .ok()
            .map(|c| c.image.clone())
    }

    fn container_logs(&self, container_id: &str) -> Result<LogLines<'_>, ModelError> {
        let c = self.container_by_id(container_id)?;
        let reader = crate::logs::LogReader::for_container(self, c)
            .map_err(|e| ModelError::Engine(Box::new(e)))?;
        Ok(Box::new(reader.map(|r| {
            r.map(|e| LogLine {
                time: e.time,
                stream: match e.stream {
                    crate::logs::Stream::Stdout => LogStream::Stdout,
                    crate::logs::Stream::Stderr => LogStream::Stderr,
                },
                line: e.line,
                file: e.file,
                offset: e.offset,
            })
            .map_err(|e| ModelError::Engine(Box::new(e)))
        })))
    }

    fn image_last_updated(&self, image_id: &str) -> Result<Option<RecordedTime>, Problem> {
        if self.layout != Layout::V2 {
            return Ok(None);
        }
        let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        let p = self
            .path("image")
            .join(self.driver.name())
            .join("imagedb/metadata/sha256")
            .join(hex)
            .join("lastUpdated");
        match self.source.read_limited(&p, 4096) {
            Ok(b) => match std::str::from_utf8(&b)
                .ok()
                .and_then(crate::logs::parse_time)
            {
                Some(time) => Ok(Some(RecordedTime { time, path: p })),
                None => Err(Problem {
                    path: p,
                    what: "not an RFC 3339 time".into(),
                }),
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(Problem {
                what: salvor_model::error_chain(&e),
                path: p,
            }),
        }
    }

    fn layer_meta_path(&self, layer_id: &str) -> Option<PathBuf> {
        self.layers.get(layer_id).map(|l| l.meta_dir.clone())
    }

    fn layout_description(&self) -> Option<String> {
        Some(
            match self.layout {
                Layout::V2 => "v2 (image/<driver>/imagedb, layerdb; Docker >= 1.10)",
                Layout::LegacyGraph => "legacy graph/ (Docker < 1.10)",
            }
            .to_string(),
        )
    }

    fn image_size(&self, image_id: &str) -> Option<u64> {
        self.image_by_id(image_id).ok().map(|i| i.size)
    }

    fn volume_details(&self) -> Vec<VolumeDetails> {
        let (cs, _) = Store::containers(self);
        let (vs, _) = Store::volumes(self, &cs);
        vs.into_iter()
            .map(|v| VolumeDetails {
                name: v.name,
                created_at: v.created_at,
                used_by: v
                    .used_by
                    .into_iter()
                    .map(|u| (u.container_name, u.destination))
                    .collect(),
            })
            .collect()
    }

    fn bind_mounts(&self) -> Vec<BindMountRecord> {
        let (cs, _) = Store::containers(self);
        Store::bind_mounts(self, &cs)
            .into_iter()
            .map(|b| BindMountRecord {
                container_name: b.container_name,
                source: b.source,
                destination: b.destination,
                inside_evidence: b.inside_evidence,
            })
            .collect()
    }

    /// Docker's own shape: data-root, layout, driver, its images, layers, containers,
    /// volumes and bind mounts as salvor reads them, every problem, and the evidence's
    /// damage when there is some.
    fn inventory_json(&self) -> serde_json::Value {
        let (containers, container_problems) = Store::containers(self);
        let (volumes, volume_problems) = Store::volumes(self, &containers);
        let binds = Store::bind_mounts(self, &containers);
        let mut problems = self.problems.clone();
        problems.extend(container_problems);
        problems.extend(volume_problems);
        problems.sort();
        problems.dedup();
        let mut inventory = serde_json::json!({
            "evidence": self.source.describe(),
            "evidence_warnings": self.source.warnings(),
            "data_root": self.root,
            "layout": self.layout,
            "driver": self.driver,
            "images": self.images,
            "layers": self.layers.values().collect::<Vec<_>>(),
            "containers": containers,
            "volumes": volumes,
            "bind_mounts": binds,
            "problems": problems,
        });
        // Damage of the evidence itself, only when there is some (clean reports unchanged).
        if !self.damage.is_empty() {
            if let Some(o) = inventory.as_object_mut() {
                o.insert("evidence_damage".into(), serde_json::json!(self.damage));
            }
        }
        inventory
    }

    fn container_problems(&self) -> Vec<Problem> {
        Store::containers(self).1
    }

    fn volume_problems(&self) -> Vec<Problem> {
        let (cs, _) = Store::containers(self);
        Store::volumes(self, &cs).1
    }
}

impl Store {
    /// The container whose full id is `id` (no prefix or name resolution).
    fn container_by_id(&self, id: &str) -> Result<&Container, ModelError> {
        self.containers_read
            .get_or_init(|| Store::containers(self).0)
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ModelError::NotFound(format!("no container {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remap_dir() {
        assert_eq!(
            remap_of(Path::new("var/lib/docker/100000.100000")),
            (100000, 100000)
        );
        assert_eq!(remap_of(Path::new("var/lib/docker")), (0, 0));
    }
}
