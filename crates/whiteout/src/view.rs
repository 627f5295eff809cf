//! Layer directories read one directory at a time, and the merged (union) view of a stack
//! of them, as overlayfs / aufs / fuse-overlayfs would present it through a mount.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use salvor_source::{FileKind, Metadata};

use crate::{LayerDir, WhiteoutError, WhiteoutStyle};

pub(crate) const WH_PREFIX: &[u8] = b".wh.";
pub(crate) const WH_META_PREFIX: &[u8] = b".wh..wh.";
pub(crate) const WH_OPAQUE: &[u8] = b".wh..wh..opq";
/// fuse-overlayfs' own opaque marker (a char 0/0 device).
pub(crate) const FUSE_OPQ: &[u8] = b".wh..opq";

pub(crate) const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
pub(crate) const FUSE_OPAQUE_XATTR: &str = "user.fuseoverlayfs.opaque";
pub(crate) const REDIRECT_XATTRS: [&str; 2] = ["trusted.overlay.redirect", "user.overlay.redirect"];
pub(crate) const METACOPY_XATTRS: [&str; 2] = ["trusted.overlay.metacopy", "user.overlay.metacopy"];

/// Joins a relative path (`""` = root) and a name.
pub(crate) fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() {
        name.to_vec()
    } else {
        let mut v = Vec::with_capacity(rel.len() + 1 + name.len());
        v.extend_from_slice(rel);
        v.push(b'/');
        v.extend_from_slice(name);
        v
    }
}

/// `/`-prefixed display form of a relative path.
pub(crate) fn abs(rel: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(rel.len() + 1);
    v.push(b'/');
    v.extend_from_slice(rel);
    v
}

pub(crate) fn depth_of(rel: &[u8]) -> usize {
    if rel.is_empty() {
        0
    } else {
        1 + rel.iter().filter(|&&c| c == b'/').count()
    }
}

impl LayerDir<'_> {
    /// The path of `rel` inside the source (always under `root`).
    pub(crate) fn path(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(OsStr::from_bytes(rel))
        }
    }

    pub(crate) fn lstat(&self, rel: &[u8]) -> Result<Option<Metadata>, WhiteoutError> {
        match self.source.metadata(&self.path(rel)) {
            Ok(md) => Ok(Some(md)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn xattr(&self, rel: &[u8], name: &str) -> Result<Option<Vec<u8>>, WhiteoutError> {
        Ok(self.source.xattr(&self.path(rel), name)?)
    }

    /// Fails on overlay `redirect` / `metacopy` xattrs, which this crate cannot honour.
    pub(crate) fn check_unsupported(&self, rel: &[u8]) -> Result<(), WhiteoutError> {
        if !matches!(
            self.style,
            WhiteoutStyle::Overlay | WhiteoutStyle::FuseOverlayfs
        ) {
            return Ok(());
        }
        let xs = self.source.xattrs(&self.path(rel))?;
        for (n, v) in xs {
            let n = n.as_bytes();
            if REDIRECT_XATTRS.iter().any(|r| r.as_bytes() == n) {
                return Err(WhiteoutError::Unsupported {
                    path: self.path(rel),
                    what: format!(
                        "overlayfs redirect_dir xattr {} = {:?}: this directory was renamed \
                         inside the container and its lower contents live at another path; \
                         the engine disables native diff in this case and this crate does \
                         not follow redirects",
                        String::from_utf8_lossy(n),
                        String::from_utf8_lossy(&v)
                    ),
                });
            }
            if METACOPY_XATTRS.iter().any(|r| r.as_bytes() == n) {
                return Err(WhiteoutError::Unsupported {
                    path: self.path(rel),
                    what: format!(
                        "overlayfs metacopy xattr {}: this file was copied up metadata-only; \
                         its data is still in a lower layer, so the upper file's contents \
                         are not the file's contents",
                        String::from_utf8_lossy(n)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether the directory at `rel` hides everything below it in lower layers.
    pub(crate) fn is_opaque(&self, rel: &[u8]) -> Result<bool, WhiteoutError> {
        match self.style {
            WhiteoutStyle::Snapshot => Ok(true),
            WhiteoutStyle::Overlay => self.opaque_xattr(rel),
            WhiteoutStyle::Aufs => Ok(self.lstat(&join(rel, WH_OPAQUE))?.is_some()),
            WhiteoutStyle::FuseOverlayfs => {
                if self.opaque_xattr(rel)? {
                    return Ok(true);
                }
                if self.xattr(rel, FUSE_OPAQUE_XATTR)?.as_deref() == Some(b"y") {
                    return Ok(true);
                }
                if self.lstat(&join(rel, WH_OPAQUE))?.is_some() {
                    return Ok(true);
                }
                Ok(
                    matches!(self.lstat(&join(rel, FUSE_OPQ))?, Some(md) if md.is_overlay_whiteout()),
                )
            }
        }
    }

    /// The overlay opaque xattr (trusted., then user.) is exactly `y`.
    pub(crate) fn opaque_xattr(&self, rel: &[u8]) -> Result<bool, WhiteoutError> {
        for x in OPAQUE_XATTRS {
            if let Some(v) = self.xattr(rel, x)? {
                return Ok(v == b"y");
            }
        }
        Ok(false)
    }

    /// Reads one directory of this layer and sorts its entries into visible ones,
    /// whiteouts and markers according to the layer's style.
    pub(crate) fn listing(&self, rel: &[u8]) -> Result<Listing, WhiteoutError> {
        let mut l = Listing::default();
        let entries = self.source.read_dir(&self.path(rel))?;
        for e in entries {
            let name = e.name.as_bytes().to_vec();
            check_name(&self.path(rel), &name)?;
            let p = join(rel, &name);
            let md = self.lstat(&p)?.ok_or_else(|| {
                WhiteoutError::Source(salvor_source::SourceError::NotFound {
                    path: self.path(&p),
                })
            })?;
            let is_wh_dev = md.is_overlay_whiteout();
            match self.style {
                WhiteoutStyle::Snapshot => {
                    l.visible.insert(name, md);
                }
                WhiteoutStyle::Overlay => {
                    if is_wh_dev {
                        l.whiteouts.insert(name);
                    } else {
                        l.visible.insert(name, md);
                    }
                }
                WhiteoutStyle::Aufs => {
                    if name == WH_OPAQUE {
                        l.opaque_marker = true;
                    } else if name.starts_with(WH_META_PREFIX) {
                        // .wh..wh.plnk / .aufs / .orph: aufs bookkeeping, never visible.
                    } else if let Some(t) = name.strip_prefix(WH_PREFIX) {
                        l.whiteouts.insert(t.to_vec());
                    } else {
                        l.visible.insert(name, md);
                    }
                }
                WhiteoutStyle::FuseOverlayfs => {
                    if name == WH_OPAQUE || (name == FUSE_OPQ && is_wh_dev) {
                        l.opaque_marker = true;
                    } else if name.starts_with(WH_META_PREFIX) {
                    } else if let Some(t) = name.strip_prefix(WH_PREFIX) {
                        if !is_wh_dev {
                            l.whiteouts.insert(t.to_vec());
                        }
                    } else if is_wh_dev {
                        l.whiteouts.insert(name);
                    } else {
                        l.visible.insert(name, md);
                    }
                }
            }
        }
        Ok(l)
    }
}

/// A directory name from a listing must be one plain component.
pub(crate) fn check_name(dir: &std::path::Path, name: &[u8]) -> Result<(), WhiteoutError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(WhiteoutError::BadName {
            path: dir.to_path_buf(),
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(())
}

#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub visible: BTreeMap<Vec<u8>, Metadata>,
    pub whiteouts: BTreeSet<Vec<u8>>,
    pub opaque_marker: bool,
}

/// One path of a merged view: which layer provides it, and for a directory which layers
/// contribute entries to it (top first).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub layer: usize,
    pub md: Metadata,
    pub contrib: Vec<usize>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.md.kind == FileKind::Dir
    }
}

/// The union of `layers` (top first).
pub(crate) struct View<'v, 'a> {
    pub layers: &'v [&'v LayerDir<'a>],
}

impl<'v, 'a> View<'v, 'a> {
    pub fn new(layers: &'v [&'v LayerDir<'a>]) -> Self {
        View { layers }
    }

    pub fn root(&self) -> Result<Node, WhiteoutError> {
        let Some(top) = self.layers.first() else {
            return Err(WhiteoutError::NoLayers);
        };
        let md = top.lstat(b"")?.ok_or_else(|| {
            WhiteoutError::Source(salvor_source::SourceError::NotFound {
                path: top.path(b""),
            })
        })?;
        if !md.is_dir() {
            return Err(WhiteoutError::Source(
                salvor_source::SourceError::WrongKind {
                    path: top.path(b""),
                    expected: "directory",
                    found: md.kind,
                },
            ));
        }
        let mut contrib = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            match l.lstat(b"")? {
                Some(m) if m.is_dir() => {
                    l.check_unsupported(b"")?;
                    contrib.push(i);
                    if l.is_opaque(b"")? {
                        break;
                    }
                }
                _ => {}
            }
        }
        Ok(Node {
            layer: 0,
            md,
            contrib,
        })
    }

    /// The children of directory `node` at `rel`, sorted by name bytes.
    pub fn children(&self, rel: &[u8], node: &Node) -> Result<Vec<(Vec<u8>, Node)>, WhiteoutError> {
        let mut hidden: HashSet<Vec<u8>> = HashSet::new();
        let mut out: BTreeMap<Vec<u8>, (usize, Metadata)> = BTreeMap::new();
        let mut listings: Vec<(usize, Listing)> = Vec::new();
        for &i in &node.contrib {
            let l = self.layers[i].listing(rel)?;
            for (name, md) in &l.visible {
                if !hidden.contains(name) && !out.contains_key(name) {
                    out.insert(name.clone(), (i, md.clone()));
                }
            }
            hidden.extend(l.visible.keys().cloned());
            hidden.extend(l.whiteouts.iter().cloned());
            listings.push((i, l));
        }
        let mut res = Vec::with_capacity(out.len());
        for (name, (i, md)) in out {
            let p = join(rel, &name);
            self.layers[i].check_unsupported(&p)?;
            let mut contrib = Vec::new();
            if md.is_dir() {
                contrib.push(i);
                if !self.layers[i].is_opaque(&p)? {
                    let pos = listings.iter().position(|(j, _)| *j == i).unwrap_or(0);
                    for (j, l) in &listings[pos + 1..] {
                        if l.whiteouts.contains(&name) {
                            break;
                        }
                        match l.visible.get(&name) {
                            Some(m) if m.is_dir() => {
                                self.layers[*j].check_unsupported(&p)?;
                                contrib.push(*j);
                                if self.layers[*j].is_opaque(&p)? {
                                    break;
                                }
                            }
                            Some(_) => break,
                            None => {}
                        }
                    }
                }
            }
            res.push((
                name,
                Node {
                    layer: i,
                    md,
                    contrib,
                },
            ));
        }
        Ok(res)
    }

    pub fn capability(&self, rel: &[u8], node: &Node) -> Result<Option<Vec<u8>>, WhiteoutError> {
        self.layers[node.layer].xattr(rel, "security.capability")
    }
}
