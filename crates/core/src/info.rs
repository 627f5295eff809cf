//! `salvor info`: what salvor found in the evidence (its JSON is `salvor info --json`).

use salvor_docker::{Driver, Layout, Problem, Store};
use salvor_source::EvidenceDamage;
use serde::Serialize;

/// What salvor found: data-root, layout, storage driver, counts, unreadable metadata.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The evidence and its damage.
    pub evidence: EvidenceInfo,
    /// The data-root (`/…`) inside the evidence.
    pub data_root: String,
    /// v2 or the legacy graph.
    pub layout: Layout,
    /// The storage driver.
    pub driver: Driver,
    /// The engine version that wrote the data-root and how it was found; `None` when
    /// nothing tells (export and commit then write what Engine >= 23 writes).
    pub engine_version: Option<salvor_model::EngineVersion>,
    /// For devicemapper: the thin pool.
    pub thin_pool: Option<ThinPoolInfo>,
    /// Number of images.
    pub images: usize,
    /// Number of layers.
    pub layers: usize,
    /// Number of containers.
    pub containers: usize,
    /// Number of volumes.
    pub volumes: usize,
    /// Metadata that could not be read or does not add up (findings about the host).
    pub problems: Vec<Problem>,
    /// Metadata missing or cut because the evidence is damaged.
    pub problems_from_damage: Vec<Problem>,
}

/// The evidence, as [`Info`] describes it.
#[derive(Debug, Serialize)]
pub struct EvidenceInfo {
    /// What it is (`Source::describe`).
    pub description: String,
    /// Whether it is damaged.
    pub damaged: bool,
    /// Its damage.
    pub damage: Vec<EvidenceDamage>,
}

/// The devicemapper thin pool of a store.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ThinPoolInfo {
    /// The pool was read.
    Read {
        /// Where it was read from.
        origin: String,
        /// Its data block size in bytes.
        data_block_size: u64,
        /// How many thin devices it holds.
        thin_devices: usize,
        /// How many device records the data-root has.
        device_records: usize,
        /// Records that could not be read.
        warnings: Vec<String>,
    },
    /// It could not be read.
    Unreadable {
        /// Why.
        error: String,
    },
}

/// [`Info`] of `store`.
pub fn info(store: &Store) -> Info {
    let (containers, container_problems) = store.containers();
    let mut problems = store.problems.clone();
    problems.extend(container_problems);
    problems.sort();
    problems.dedup();
    // What the evidence reader left out (tar members named with `..`, hardlinks to members
    // not in the archive, a damaged archive …) is a problem too, about the archive itself
    // (no path inside it).
    problems.extend(store.source.warnings().iter().map(|w| Problem {
        path: std::path::PathBuf::new(),
        what: format!("evidence archive: {w}"),
    }));
    // Problems that follow from damage of the evidence are not findings about the host.
    let (problems, from_damage) = store.split_problems(problems);
    let (volumes, _) = store.volumes(&containers);
    let thin_pool = (store.driver == Driver::Devicemapper).then(|| match store.devicemapper() {
        Ok(dm) => ThinPoolInfo::Read {
            origin: dm.origin.clone(),
            data_block_size: dm.pool.data_block_size(),
            thin_devices: dm.pool.devices().len(),
            device_records: dm.devices.len(),
            warnings: dm.warnings.clone(),
        },
        Err(e) => ThinPoolInfo::Unreadable {
            error: e.to_string(),
        },
    });
    Info {
        evidence: EvidenceInfo {
            description: store.source.describe(),
            damaged: !store.damage.is_empty(),
            damage: store.damage.clone(),
        },
        data_root: format!("/{}", store.root.display()),
        layout: store.layout,
        driver: store.driver.clone(),
        engine_version: store.engine_version.clone(),
        thin_pool,
        images: store.images.len(),
        layers: store.layers.len(),
        containers: containers.len(),
        volumes: volumes.len(),
        problems,
        problems_from_damage: from_damage,
    }
}
