#![allow(dead_code)]
//! Test helpers: small layer tars, images and a fake layer source.

use salvor_export::{ImageToExport, LayerError, LayerRef, LayerSource};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A small valid layer tar with the given (path, content) files.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(c.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, *c).expect("append");
    }
    b.into_inner().expect("finish")
}

#[derive(Default)]
pub struct FakeSource {
    pub layers: HashMap<String, Vec<u8>>,
    /// diff_ids whose content is served corrupted (one byte flipped)
    pub corrupt: Vec<String>,
}

impl FakeSource {
    pub fn add(&mut self, tar: Vec<u8>) -> LayerRef {
        let d = sha(&tar);
        let r = LayerRef {
            diff_id: d.parse().expect("digest"),
            size: tar.len() as u64,
            descriptor: None,
            forced_from: None,
        };
        self.layers.insert(d, tar);
        r
    }
}

impl LayerSource for FakeSource {
    fn write_layer(&self, diff_id: &str, out: &mut dyn Write) -> Result<String, LayerError> {
        let mut data = self
            .layers
            .get(diff_id)
            .ok_or_else(|| LayerError::NotFound(diff_id.to_string()))?
            .clone();
        if self.corrupt.iter().any(|c| c == diff_id) {
            if let Some(b) = data.get_mut(600) {
                *b ^= 0xff;
            }
        }
        // write in odd-sized chunks to exercise the pipe
        for c in data.chunks(777) {
            out.write_all(c)?;
        }
        Ok(sha(&data))
    }
}

pub fn image(layers: Vec<LayerRef>, tags: &[&str], created: &str) -> ImageToExport {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"a": "<b>"}},
        "created": created,
        "history": diff_ids.iter().map(|_| serde_json::json!({"created": created, "created_by": "test"})).collect::<Vec<_>>(),
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).expect("json");
    ImageToExport {
        id: sha(&config).parse().expect("digest"),
        config,
        repo_tags: tags.iter().map(|s| s.to_string()).collect(),
        layers,
        parent: None,
    }
}

/// An archive read back: path -> regular file bytes, path -> symlink target.
#[derive(Default, Debug)]
pub struct Read_ {
    pub files: BTreeMap<String, Vec<u8>>,
    pub links: BTreeMap<String, String>,
    pub order: Vec<String>,
}

pub fn read_tar(bytes: &[u8]) -> Read_ {
    let mut r = Read_::default();
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = String::from_utf8(e.path_bytes().to_vec()).expect("utf8");
        r.order.push(p.clone());
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut v = Vec::new();
                e.read_to_end(&mut v).expect("read");
                r.files.insert(p, v);
            }
            tar::EntryType::Symlink => {
                let t = e.link_name().expect("link").expect("target");
                r.links.insert(p, t.to_string_lossy().into_owned());
            }
            _ => {}
        }
    }
    r
}

pub fn read_dir(root: &Path) -> Read_ {
    fn walk(root: &Path, dir: &Path, r: &mut Read_) {
        let mut ents: Vec<_> = std::fs::read_dir(dir)
            .expect("readdir")
            .map(|e| e.expect("e"))
            .collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type().expect("ft");
            if ft.is_symlink() {
                r.links.insert(
                    rel,
                    std::fs::read_link(&p)
                        .expect("link")
                        .to_string_lossy()
                        .into_owned(),
                );
            } else if ft.is_dir() {
                walk(root, &p, r);
            } else {
                r.files.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut r = Read_::default();
    walk(root, root, &mut r);
    r
}
