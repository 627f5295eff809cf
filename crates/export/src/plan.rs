//! The plan: every entry of the archive (path, content, mtime), built from the
//! validated images before anything is written.

use super::*;

pub(super) enum Content {
    Dir,
    Bytes(Vec<u8>),
    Layer { diff_id: String, size: u64 },
    Symlink(String),
}

pub(super) struct Entry {
    pub(super) path: String,
    pub(super) content: Content,
    pub(super) mtime: i64,
}

/// Archive entries keyed by path components (WalkDir order).
#[derive(Default)]
pub(super) struct Plan {
    pub(super) entries: BTreeMap<Vec<String>, Entry>,
}

impl Plan {
    fn add(&mut self, path: &str, content: Content, mtime: i64, dir_mtime: i64) {
        let comps: Vec<String> = path.split('/').map(str::to_string).collect();
        for n in 1..comps.len() {
            let key = comps[..n].to_vec();
            self.entries.entry(key.clone()).or_insert_with(|| Entry {
                path: key.join("/"),
                content: Content::Dir,
                mtime: dir_mtime,
            });
        }
        self.entries.entry(comps).or_insert_with(|| Entry {
            path: path.to_string(),
            content,
            mtime,
        });
    }
    fn has(&self, path: &str) -> bool {
        let comps: Vec<String> = path.split('/').map(str::to_string).collect();
        self.entries.contains_key(&comps)
    }
}

pub(super) fn hex_of<S: AsRef<str> + ?Sized>(digest: &S) -> Option<&str> {
    let digest = digest.as_ref();
    salvor_oci::Digest::parse(digest)
        .is_ok()
        .then(|| &digest["sha256:".len()..])
}

pub(super) fn chain_ids(diff_ids: &[&str]) -> Vec<String> {
    salvor_oci::chain_ids_text(diff_ids)
}

/// A validated image.
pub(super) struct Prepared<'a> {
    pub(super) img: &'a ImageToExport,
    pub(super) tags: Vec<reference::TagRef>,
    pub(super) v1: V1Image,
    pub(super) created: i64,
}

pub(super) fn prepare(img: &ImageToExport) -> Result<Prepared<'_>, ExportError> {
    let bad = |reason: String| ExportError::InvalidImage {
        image: img.id.to_string(),
        reason,
    };
    let id_hex = hex_of(&img.id).ok_or_else(|| bad("id is not sha256:<64 hex>".into()))?;
    let actual = hex::encode(Sha256::digest(&img.config));
    if actual != id_hex {
        return Err(bad(format!("config has digest sha256:{actual}")));
    }
    let config: Value = serde_json::from_slice(&img.config)
        .map_err(|e| bad(format!("config is not valid JSON: {e}")))?;
    let diff_ids: Vec<&str> = config
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|d| d.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    let given: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
    if diff_ids != given {
        return Err(bad(format!(
            "config rootfs.diff_ids {diff_ids:?} differ from the layers given {given:?}"
        )));
    }
    if img.layers.is_empty() {
        return Err(bad("image has no layers (the engine cannot save it)".into()));
    }
    for l in &img.layers {
        if hex_of(&l.diff_id).is_none()
            || l.forced_from
                .as_ref()
                .map(DiffId::as_str)
                .is_some_and(|f| hex_of(f).is_none())
        {
            return Err(bad(format!(
                "layer diff_id {:?} (forced from {:?}) is not sha256:<64 hex>",
                l.diff_id, l.forced_from
            )));
        }
    }
    let tags = img
        .repo_tags
        .iter()
        .map(|t| reference::parse(t).map_err(|e| bad(format!("tag {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let v1 = V1Image::from_config(&config).map_err(|e| bad(format!("config: {e}")))?;
    let created = v1.created_unix().unwrap_or(0).max(0);
    Ok(Prepared {
        img,
        tags,
        v1,
        created,
    })
}

/// Go's `distribution.Descriptor` fields, decoded from `descriptor.json`.
pub(super) struct Desc {
    pub(super) media_type: String,
    pub(super) size: i64,
    pub(super) digest: String,
    pub(super) urls: Option<Vec<String>>,
    pub(super) annotations: Option<BTreeMap<String, String>>,
    pub(super) platform: Option<String>,
}

pub(super) fn platform_json(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut p = Obj::new();
    p.str("architecture", &s("architecture"))
        .str("os", &s("os"))
        .str_oe("os.version", &s("os.version"));
    if let Some(f) = o.get("os.features").and_then(Value::as_array) {
        if !f.is_empty() {
            let v: Vec<String> = f
                .iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect();
            p.raw("os.features", &gojson::str_slice(Some(&v)));
        }
    }
    p.str_oe("variant", &s("variant"));
    Some(p.finish())
}

pub(super) fn layer_desc(l: &LayerRef) -> Desc {
    let d = l.descriptor.as_ref();
    let s = |k: &str| {
        d.and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut desc = Desc {
        media_type: s("mediaType"),
        size: d
            .and_then(|d| d.get("size"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
        digest: s("digest"),
        urls: d
            .and_then(|d| d.get("urls"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            }),
        annotations: d
            .and_then(|d| d.get("annotations"))
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            }),
        platform: d.and_then(|d| d.get("platform")).and_then(platform_json),
    };
    if desc.digest.is_empty() || l.forced_from.is_some() {
        desc.digest = l.diff_id.to_string();
        desc.size = i64::try_from(l.size).unwrap_or(i64::MAX);
    }
    if let Some(orig) = &l.forced_from {
        // The recorded descriptor (media type, urls) described the original blob.
        desc.media_type = MT_LAYER.to_string();
        desc.urls = None;
        let a = desc.annotations.get_or_insert_with(BTreeMap::new);
        a.insert(ANNOTATION_FORCED.to_string(), "as-found".to_string());
        a.insert(ANNOTATION_ORIGINAL_DIFF_ID.to_string(), orig.to_string());
    }
    if desc.media_type.is_empty() {
        desc.media_type = MT_LAYER.to_string();
    }
    desc
}

pub(super) fn annotations_json(a: &BTreeMap<String, String>) -> String {
    let m: BTreeMap<String, String> = a
        .iter()
        .map(|(k, v)| (k.clone(), gojson::quote(v)))
        .collect();
    gojson::map_raw(&m)
}

impl Desc {
    fn tail(&self, o: &mut Obj) {
        if let Some(u) = self.urls.as_ref().filter(|u| !u.is_empty()) {
            o.raw("urls", &gojson::str_slice(Some(u)));
        }
        if let Some(a) = self.annotations.as_ref().filter(|a| !a.is_empty()) {
            o.raw("annotations", &annotations_json(a));
        }
        if let Some(p) = &self.platform {
            o.raw("platform", p);
        }
    }
    /// `distribution.Descriptor` (mediaType, size, digest, … all omitempty).
    fn distribution_json(&self) -> String {
        let mut o = Obj::new();
        o.str_oe("mediaType", &self.media_type);
        if self.size != 0 {
            o.raw("size", &self.size.to_string());
        }
        o.str_oe("digest", &self.digest);
        self.tail(&mut o);
        o.finish()
    }
    /// `ocispec.Descriptor` (mediaType, digest, size, urls, annotations, …).
    fn oci_json(&self) -> String {
        let mut o = Obj::new();
        o.str("mediaType", &self.media_type)
            .str("digest", &self.digest)
            .raw("size", &self.size.to_string());
        self.tail(&mut o);
        o.finish()
    }
}

pub(super) fn plain_desc(mt: &str, digest: &str, size: usize) -> Obj {
    let mut o = Obj::new();
    o.str("mediaType", mt)
        .str("digest", digest)
        .raw("size", &size.to_string());
    o
}

pub(super) struct ManifestItem {
    pub(super) config: String,
    pub(super) repo_tags: Option<Vec<String>>,
    pub(super) layers: Vec<String>,
    pub(super) parent: Option<String>,
    pub(super) layer_sources: BTreeMap<String, String>,
}

pub(super) fn manifest_json(items: &[ManifestItem]) -> Vec<u8> {
    let mut s = String::from("[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let mut o = Obj::new();
        o.str("Config", &it.config)
            .raw("RepoTags", &gojson::str_slice(it.repo_tags.as_deref()))
            .raw("Layers", &gojson::str_slice(Some(&it.layers)));
        if let Some(p) = &it.parent {
            o.str("Parent", p);
        }
        if !it.layer_sources.is_empty() {
            o.raw("LayerSources", &gojson::map_raw(&it.layer_sources));
        }
        s.push_str(&o.finish());
    }
    s.push_str("]\n");
    s.into_bytes()
}

pub(super) fn repositories_json(repos: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<u8> {
    let m: BTreeMap<String, String> = repos
        .iter()
        .map(|(name, tags)| {
            let t: BTreeMap<String, String> = tags
                .iter()
                .map(|(k, v)| (k.clone(), gojson::quote(v)))
                .collect();
            (name.clone(), gojson::map_raw(&t))
        })
        .collect();
    let mut s = gojson::map_raw(&m);
    s.push('\n');
    s.into_bytes()
}

/// The [`FORCED_FILE`] of an archive, when some layer is exported as found.
pub(super) fn forced_json(images: &[ImageToExport]) -> Option<Vec<u8>> {
    let mut by_layer: BTreeMap<(&str, &str), (u64, Vec<&str>)> = BTreeMap::new();
    for img in images {
        for l in &img.layers {
            if let Some(orig) = &l.forced_from {
                let e = by_layer
                    .entry((l.diff_id.as_str(), orig.as_str()))
                    .or_insert((l.size, Vec::new()));
                if !e.1.contains(&img.id.as_str()) {
                    e.1.push(img.id.as_str());
                }
            }
        }
    }
    if by_layer.is_empty() {
        return None;
    }
    let layers: Vec<Value> = by_layer
        .into_iter()
        .map(|((diff_id, orig), (size, imgs))| {
            serde_json::json!({
                "status": "FORCED",
                "diff_id": diff_id,
                "original_diff_id": orig,
                "size": size,
                "images": imgs,
                "meaning": "the layer as the evidence holds it now; it does not hash to original_diff_id",
            })
        })
        .collect();
    let mut out =
        serde_json::to_vec_pretty(&serde_json::json!({ "forced_layers": layers })).ok()?;
    out.push(b'\n');
    Some(out)
}

pub(super) fn merge_images(images: &[ImageToExport]) -> Vec<ImageToExport> {
    let mut out: Vec<ImageToExport> = Vec::new();
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for img in images {
        match idx.get(img.id.as_str()) {
            Some(&i) => {
                for t in &img.repo_tags {
                    if !out[i].repo_tags.contains(t) {
                        out[i].repo_tags.push(t.clone());
                    }
                }
            }
            None => {
                idx.insert(img.id.as_str(), out.len());
                let mut c = img.clone();
                let mut seen = HashSet::new();
                c.repo_tags.retain(|t| seen.insert(t.clone()));
                out.push(c);
            }
        }
    }
    out
}

pub(super) fn build_plan(images: &[ImageToExport], format: Format) -> Result<Plan, ExportError> {
    let prepared = images.iter().map(prepare).collect::<Result<Vec<_>, _>>()?;
    // layer sizes must agree across images
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for p in &prepared {
        for l in &p.img.layers {
            if let Some(s) = sizes.insert(l.diff_id.as_str(), l.size) {
                if s != l.size {
                    return Err(ExportError::InvalidImage {
                        image: p.img.id.to_string(),
                        reason: format!(
                            "layer {} declared with sizes {s} and {}",
                            l.diff_id, l.size
                        ),
                    });
                }
            }
        }
    }
    let ids: HashSet<&str> = prepared.iter().map(|p| p.img.id.as_str()).collect();
    let mut plan = Plan::default();
    let mut items: Vec<ManifestItem> = Vec::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index: Vec<String> = Vec::new();
    // legacy: diff_id -> v1id that holds the real layer.tar
    let mut diff_paths: HashMap<String, String> = HashMap::new();

    for p in &prepared {
        let img = p.img;
        let ts = p.created;
        let diff_ids: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
        let chains = chain_ids(&diff_ids);
        let top_hex = diff_ids.last().and_then(|d| hex_of(d)).unwrap_or("");
        let id_hex = hex_of(&img.id).unwrap_or("");
        let parent = img
            .parent
            .as_ref()
            .filter(|par| **par != img.id && ids.contains(par.as_str()))
            .map(Digest::to_string);
        let repo_tags: Option<Vec<String>> =
            (!p.tags.is_empty()).then(|| p.tags.iter().map(|t| t.familiar()).collect());

        // v1 ids (legacy ids also for the Engine >= 25 v1 JSON blobs)
        let flavor = if format == Format::DockerLegacy {
            Flavor::Legacy
        } else {
            Flavor::Modern
        };
        let mut v1_jsons: Vec<(String, String)> = Vec::new(); // (v1id, json)
        if format != Format::Oci {
            let mut parent_v1: Option<String> = None;
            for (i, chain) in chains.iter().enumerate() {
                let mut v = if i + 1 == chains.len() {
                    p.v1.clone()
                } else {
                    V1Image::epoch()
                };
                let id = v1::create_id(&v, flavor, chain, parent_v1.as_deref());
                v.id = id.clone();
                v.parent = parent_v1.clone().unwrap_or_default();
                v.os = p.v1.os.clone();
                v1_jsons.push((id.clone(), v.marshal(flavor)));
                parent_v1 = Some(id);
            }
        }

        let mut layer_sources = BTreeMap::new();
        match format {
            Format::Docker | Format::Oci => {
                plan.add(
                    &format!("blobs/sha256/{id_hex}"),
                    Content::Bytes(img.config.clone()),
                    ts,
                    0,
                );
                let mut layer_descs = Vec::new();
                for (i, l) in img.layers.iter().enumerate() {
                    if format == Format::Docker {
                        if let Some((_, js)) = v1_jsons.get(i) {
                            let h = hex::encode(Sha256::digest(js.as_bytes()));
                            plan.add(
                                &format!("blobs/sha256/{h}"),
                                Content::Bytes(js.clone().into_bytes()),
                                ts,
                                0,
                            );
                        }
                    }
                    let h = hex_of(l.diff_id.as_str()).unwrap_or("");
                    plan.add(
                        &format!("blobs/sha256/{h}"),
                        Content::Layer {
                            diff_id: l.diff_id.to_string(),
                            size: l.size,
                        },
                        ts,
                        0,
                    );
                    let d = layer_desc(l);
                    layer_sources.insert(l.diff_id.to_string(), d.distribution_json());
                    layer_descs.push(d.oci_json());
                }
                let mut m = Obj::new();
                m.raw("schemaVersion", "2")
                    .str("mediaType", MT_MANIFEST)
                    .raw(
                        "config",
                        &plain_desc(MT_CONFIG, img.id.as_str(), img.config.len()).finish(),
                    )
                    .raw("layers", &format!("[{}]", layer_descs.join(",")));
                let manifest = m.finish().into_bytes();
                let mdigest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
                let mlen = manifest.len();
                plan.add(
                    &format!("blobs/sha256/{}", &mdigest[7..]),
                    Content::Bytes(manifest),
                    0,
                    0,
                );
                if p.tags.is_empty() {
                    index.push(plain_desc(MT_MANIFEST, &mdigest, mlen).finish());
                }
                for t in &p.tags {
                    let mut a = BTreeMap::new();
                    a.insert(ANNOTATION_CONTAINERD_IMAGE_NAME.to_string(), t.full());
                    a.insert(ANNOTATION_REF_NAME.to_string(), t.tag.clone());
                    let mut d = plain_desc(MT_MANIFEST, &mdigest, mlen);
                    d.raw("annotations", &annotations_json(&a));
                    index.push(d.finish());
                    repos
                        .entry(t.familiar_name.clone())
                        .or_default()
                        .insert(t.tag.clone(), top_hex.to_string());
                }
                items.push(ManifestItem {
                    config: format!("blobs/sha256/{id_hex}"),
                    repo_tags,
                    layers: img
                        .layers
                        .iter()
                        .map(|l| {
                            format!("blobs/sha256/{}", hex_of(l.diff_id.as_str()).unwrap_or(""))
                        })
                        .collect(),
                    parent,
                    layer_sources,
                });
            }
            Format::DockerLegacy => {
                let mut layers = Vec::new();
                for (l, (v1id, js)) in img.layers.iter().zip(&v1_jsons) {
                    layers.push(format!("{v1id}/layer.tar"));
                    if l.descriptor.is_some() || l.forced_from.is_some() {
                        layer_sources
                            .insert(l.diff_id.to_string(), layer_desc(l).distribution_json());
                    }
                    if plan.has(v1id) {
                        continue;
                    }
                    plan.add(v1id, Content::Dir, ts, ts);
                    plan.add(
                        &format!("{v1id}/VERSION"),
                        Content::Bytes(b"1.0".to_vec()),
                        ts,
                        ts,
                    );
                    plan.add(
                        &format!("{v1id}/json"),
                        Content::Bytes(js.clone().into_bytes()),
                        ts,
                        ts,
                    );
                    let content = match diff_paths.get(l.diff_id.as_str()) {
                        Some(other) => Content::Symlink(format!("../{other}/layer.tar")),
                        None => {
                            diff_paths.insert(l.diff_id.to_string(), v1id.clone());
                            Content::Layer {
                                diff_id: l.diff_id.to_string(),
                                size: l.size,
                            }
                        }
                    };
                    plan.add(&format!("{v1id}/layer.tar"), content, ts, ts);
                }
                plan.add(
                    &format!("{id_hex}.json"),
                    Content::Bytes(img.config.clone()),
                    ts,
                    0,
                );
                let top_v1 = v1_jsons
                    .last()
                    .map(|(id, _)| id.clone())
                    .unwrap_or_default();
                for t in &p.tags {
                    repos
                        .entry(t.familiar_name.clone())
                        .or_default()
                        .insert(t.tag.clone(), top_v1.clone());
                }
                items.push(ManifestItem {
                    config: format!("{id_hex}.json"),
                    repo_tags,
                    layers,
                    parent,
                    layer_sources,
                });
            }
        }
    }

    if format != Format::DockerLegacy {
        plan.add("oci-layout", Content::Bytes(OCI_LAYOUT.into()), 0, 0);
        let mut idx = Obj::new();
        idx.raw("schemaVersion", "2")
            .str("mediaType", MT_INDEX)
            .raw("manifests", &format!("[{}]", index.join(",")));
        plan.add(
            "index.json",
            Content::Bytes(idx.finish().into_bytes()),
            0,
            0,
        );
    }
    if let Some(forced) = forced_json(images) {
        plan.add(FORCED_FILE, Content::Bytes(forced), 0, 0);
    }
    if format != Format::Oci {
        plan.add("manifest.json", Content::Bytes(manifest_json(&items)), 0, 0);
        if !repos.is_empty() {
            plan.add(
                "repositories",
                Content::Bytes(repositories_json(&repos)),
                0,
                0,
            );
        }
    }
    Ok(plan)
}
