//! The stores found on a host, behind the engine-neutral model ([`salvor_model::Host`]):
//! for now the one Docker data-root of the [`Evidence`], opened once (with the LVM thin
//! pool a devicemapper store in direct-lvm mode needs). A new engine's store is one more
//! entry in [`Host::stores`].

use salvor_docker::Store;
use salvor_model::EngineKind;
use salvor_source::EvidenceDamage;

use crate::evidence::{choose_thin_pool, Evidence, EvidenceError};

/// The engine version `--engine-version` names, else the host root's when the evidence is
/// a host root: its package database, else — only when the data-root's layout (`layout`)
/// leaves open what salvor's output depends on (Engine >= 23, >= 25) — its `dockerd`
/// binary, which is tens of MB to read. `None` leaves the store's own guess.
fn engine_version(
    evidence: &Evidence,
    source: &dyn salvor_source::Source,
    data_root: &std::path::Path,
    layout: Option<&salvor_model::EngineVersion>,
) -> anyhow::Result<Option<salvor_model::EngineVersion>> {
    if let Some(v) = &evidence.options().engine_version {
        return salvor_model::EngineVersion::exact(v, "--engine-version")
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("--engine-version {v:?}: not a version (MAJOR.MINOR[.PATCH], e.g. 20.10.24 or 26.1.5)"));
    }
    // The data-root inside a host root (`var/lib/docker` …): the host's root is the
    // source's.
    if data_root.as_os_str().is_empty() {
        return Ok(None);
    }
    let host = std::path::Path::new("");
    if let Some(v) = salvor_docker::version::from_dpkg(source, host) {
        return Ok(Some(v));
    }
    let decided =
        layout.is_some_and(|v| v.at_least(23, 0).is_some() && v.at_least(25, 0).is_some());
    Ok((!decided)
        .then(|| salvor_docker::version::from_dockerd(source, host))
        .flatten())
}

/// Every container store found in the evidence.
pub struct Host {
    stores: salvor_model::Host,
    notes: Vec<String>,
    damage: Vec<EvidenceDamage>,
    /// Problems of the host that belong to no store (finding the stores, unreadable
    /// containerd roots).
    problems: Vec<salvor_model::Problem>,
}

impl Host {
    /// Opens the stores in `evidence`: the Docker data-root, read again through the LVM
    /// thin pool when it is devicemapper in direct-lvm mode (`EvidenceOptions::thin_pool`,
    /// else the pool the host configured, else the only candidate); then every namespace
    /// of every containerd root found. A dockerd-managed containerd's `moby` namespace
    /// without images is left out when Docker's graphdriver store of that data-root is
    /// open (Docker 20.10 keeps only its running containers' tasks there).
    pub fn open(evidence: &Evidence) -> Result<Host, EvidenceError> {
        Self::open_inner(evidence).map_err(EvidenceError::Other)
    }

    fn open_inner(evidence: &Evidence) -> anyhow::Result<Host> {
        let damage = evidence.damage().to_vec();
        let source = evidence.source().clone();
        let mut stores: Vec<Box<dyn salvor_model::ContainerStore>> = Vec::new();
        let mut notes = Vec::new();
        let mut problems: Vec<salvor_model::Problem> = evidence.locate_problems().to_vec();
        if let Some(data_root) = evidence.data_root().map(std::path::Path::to_path_buf) {
            let mut store = Store::open_at(source.clone(), data_root.clone())?;
            store.add_damage(damage.iter().cloned());
            let chosen =
                choose_thin_pool(&store, evidence, evidence.options().thin_pool.as_deref())?;
            if let Some((pool, origin)) = chosen.pool {
                store =
                    Store::open_at_with_thin_pool(source.clone(), data_root.clone(), pool, origin)?;
                store.add_damage(damage.iter().cloned());
            }
            let layout = store.engine_version.clone();
            if let Some(v) = engine_version(evidence, source.as_ref(), &data_root, layout.as_ref())?
            {
                store.set_engine_version(v);
            }
            notes.extend(chosen.note);
            stores.push(Box::new(store));
        }
        let mut opts = salvor_containerd::StoreOptions::default();
        if let Some(p) = &evidence.options().platform {
            opts.platform = p.clone();
        }
        let docker_root = evidence.data_root().map(std::path::Path::to_path_buf);
        for loc in evidence.containerd_roots() {
            let opened = salvor_containerd::open_root(source.clone(), loc, &opts);
            for s in opened.stores {
                let graphdriver_moby = s.namespace().name == "moby"
                    && docker_root.is_some()
                    && loc.docker_data_root == docker_root
                    && s.namespace().images.is_empty();
                if !graphdriver_moby {
                    stores.push(Box::new(s));
                }
            }
            // Root-wide problems are also each store's; those of a root without a store
            // (an unreadable meta.db) are the host's.
            for p in opened.problems {
                let in_store = stores.iter().any(|st| st.problems().contains(&p));
                if !in_store && !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
        Ok(Host {
            stores: salvor_model::Host::new(stores),
            notes,
            damage,
            problems,
        })
    }

    /// Keeps only the stores of containerd namespace `namespace` (`--namespace`): Docker's
    /// graphdriver store, which has none, goes too.
    pub fn retain_namespace(&mut self, namespace: &str) {
        self.stores
            .stores
            .retain(|s| s.identity().namespace.as_deref() == Some(namespace));
    }

    /// Every store found, engine-neutral, in the order found (Docker's graphdriver store
    /// first, then containerd's namespaces).
    pub fn stores(&self) -> &salvor_model::Host {
        &self.stores
    }

    /// The Docker graphdriver stores (their own type, for what only Docker has: `docker
    /// inspect`'s fields, the IMAGE/CONTAINER resolver), in the order found.
    pub fn docker_stores(&self) -> impl Iterator<Item = &Store> {
        self.stores
            .stores
            .iter()
            .filter(|s| s.identity().engine == EngineKind::Docker)
            .filter_map(|s| s.as_any().downcast_ref::<Store>())
    }

    /// The containerd stores (one per namespace of each containerd root), in the order
    /// found.
    pub fn containerd_stores(&self) -> impl Iterator<Item = &salvor_containerd::ContainerdStore> {
        self.stores.stores.iter().filter_map(|s| {
            s.as_any()
                .downcast_ref::<salvor_containerd::ContainerdStore>()
        })
    }

    /// The Docker graphdriver store, when the host has one.
    pub fn docker(&self) -> Option<&Store> {
        self.docker_stores().next()
    }

    /// True when the host's only store is Docker's graphdriver store: every command then
    /// prints exactly what it printed before other engines were read.
    pub fn docker_only(&self) -> bool {
        self.stores.stores.len() == 1 && self.docker().is_some()
    }

    /// What opening the stores has to tell the user (the thin pool read, or why none).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Damage of the evidence, as the stores carry it.
    pub fn damage(&self) -> &[EvidenceDamage] {
        match self.docker() {
            Some(d) => &d.damage,
            None => &self.damage,
        }
    }

    /// Problems of the host that belong to no store: finding the stores (an unreadable
    /// `/etc/containerd/config.toml`), a containerd root whose meta.db cannot be read.
    pub fn host_problems(&self) -> &[salvor_model::Problem] {
        &self.problems
    }

    /// How many pieces of metadata could not be read: (missing or cut because the evidence
    /// is damaged, others). A problem several stores share (a containerd root's) counts
    /// once.
    pub fn metadata_problems(&self) -> (usize, usize) {
        let mut consequences = 0;
        let mut others = std::collections::BTreeSet::new();
        if let Some(store) = self.docker() {
            consequences = store
                .problems
                .iter()
                .filter(|p| store.is_consequence_of_damage(p))
                .count();
            others.extend(
                store
                    .problems
                    .iter()
                    .filter(|p| !store.is_consequence_of_damage(p))
                    .cloned(),
            );
        }
        for s in self.containerd_stores() {
            others.extend(salvor_model::ContainerStore::problems(s));
        }
        others.extend(self.problems.iter().cloned());
        (consequences, others.len())
    }
}
