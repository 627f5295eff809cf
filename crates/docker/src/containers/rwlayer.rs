//! Where a container's read-write layer lives: `layerdb/mounts/<id>/` (or, before 1.10,
//! the container id as driver id) and the image layers under it.

use super::*;

/// Driver ids of the image layers under a container, nearest first.
pub(super) fn image_caches(store: &Store, top: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = top.map(str::to_string);
    let mut guard = 0;
    while let Some(c) = cur {
        guard += 1;
        if guard > 1000 {
            break;
        }
        let Some(l) = store.layers.get(&c) else { break };
        if !l.cache_id.is_empty() {
            out.push(l.cache_id.clone());
        }
        cur = l.parent.clone();
    }
    out
}

impl Store {
    /// The migrated image id of a pre-1.10 v1 image id: the image whose top layer is the
    /// layer stored under that v1 id.
    pub(super) fn image_of_v1(&self, v1: &str) -> Option<String> {
        let layer = self.layers.values().find(|l| l.cache_id == v1)?;
        self.images
            .iter()
            .find(|i| i.chain_ids.last() == Some(&layer.chain_id))
            .map(|i| i.id.clone())
    }

    pub(super) fn rw_layer_of(
        &self,
        id: &str,
        driver_name: &str,
        image_v1_id: Option<&str>,
        problems: &mut Vec<Problem>,
    ) -> Option<RwLayer> {
        let src = self.source.as_ref();
        let driver = Driver::from_name(driver_name);
        let mounts = self
            .path("image")
            .join(driver_name)
            .join("layerdb/mounts")
            .join(id);
        let (mount_id, init_id, parent, meta_dir) = if self.layout == Layout::V2
            && is_safe_id(driver_name)
            && src.exists(&mounts)
        {
            let mount_id = match read_small(src, &mounts.join("mount-id")) {
                Ok(s) if is_safe_id(&s) => s,
                Ok(s) => {
                    problems.push(Problem {
                        path: mounts.join("mount-id"),
                        what: format!(
                            "not a valid driver id: {s:?}; the container's files cannot be located"
                        ),
                    });
                    return None;
                }
                Err(e) => {
                    problems.push(problem_of(e, &mounts.join("mount-id")));
                    return None;
                }
            };
            let init_id = match read_small(src, &mounts.join("init-id")) {
                Ok(s) if is_safe_id(&s) => Some(s),
                Ok(s) if s.is_empty() => None,
                Ok(s) => {
                    problems.push(Problem {
                        path: mounts.join("init-id"),
                        what: format!("not a valid driver id: {s:?}"),
                    });
                    None
                }
                Err(e) if is_not_found(&e) => None,
                Err(e) => {
                    problems.push(problem_of(e, &mounts.join("init-id")));
                    None
                }
            };
            let parent = match read_small(src, &mounts.join("parent")) {
                Ok(s) if s.is_empty() => None,
                Ok(s) => match Digest::parse(&s).ok() {
                    Some(d) => Some(d.as_str().to_string()),
                    None => {
                        problems.push(Problem {
                            path: mounts.join("parent"),
                            what: format!("not a sha256 chain id: {s:?}"),
                        });
                        None
                    }
                },
                Err(e) if is_not_found(&e) => None,
                Err(e) => {
                    problems.push(problem_of(e, &mounts.join("parent")));
                    None
                }
            };
            if let Some(p) = &parent {
                if !self.layers.contains_key(p) {
                    problems.push(Problem {
                        path: mounts.join("parent"),
                        what: format!("image layer {p} is not in the layer store"),
                    });
                }
            }
            (mount_id, init_id, parent, Some(mounts))
        } else if self.layout == Layout::LegacyGraph || self.driver_has(&driver, id) {
            if self.layout == Layout::V2 {
                problems.push(Problem {
                    path: mounts.clone(),
                    what: "missing; a driver directory named after the container id exists and is used (the pre-1.10 convention)".into(),
                });
            }
            // Pre-1.10: the driver id is the container id.
            let init = format!("{id}-init");
            let init_id = self.driver_has(&driver, &init).then_some(init);
            let parent = image_v1_id.and_then(|v1| {
                self.layers
                    .values()
                    .find(|l| l.cache_id == v1)
                    .map(|l| l.chain_id.clone())
            });
            (id.to_string(), init_id, parent, None)
        } else {
            problems.push(Problem {
                path: mounts,
                what: "missing: the container's read-write layer cannot be located".into(),
            });
            return None;
        };
        let image_caches = image_caches(self, parent.as_deref());
        let mut lowers = Vec::new();
        if let Some(i) = &init_id {
            lowers.push(i.clone());
        }
        lowers.extend(image_caches.iter().cloned());
        let files = layer_files(self, &mount_id, &lowers);
        if let LayerFiles::Unavailable { reason } = &files {
            problems.push(Problem {
                path: self.path(driver_name).join(&mount_id),
                what: format!("container {}: read-write layer: {reason}", &id[..12]),
            });
        }
        let init_files = init_id
            .as_ref()
            .map(|i| layer_files(self, i, &image_caches));
        Some(RwLayer {
            mount_id,
            init_id,
            parent,
            files,
            init_files,
            meta_dir,
        })
    }

    pub(super) fn driver_has(&self, driver: &Driver, driver_id: &str) -> bool {
        let p = match driver {
            Driver::Aufs => self.path("aufs/diff").join(driver_id),
            Driver::Vfs => self.path("vfs/dir").join(driver_id),
            Driver::Btrfs => self.path("btrfs/subvolumes").join(driver_id),
            Driver::Zfs => self.path("zfs/graph").join(driver_id),
            other => self.path(other.name()).join(driver_id),
        };
        self.source.exists(&p)
    }
}
