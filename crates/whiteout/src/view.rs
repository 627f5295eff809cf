//! Layer directories read one directory at a time, and the merged (union) view of a stack
//! of them, as overlayfs / aufs / fuse-overlayfs would present it through a mount.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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
    /// whiteouts and markers according to the layer's style: names and kinds only (one
    /// `lstat` per character device, to tell a whiteout), sorted by name. Metadata is read
    /// later, only for the entries the merged view shows.
    pub(crate) fn listing(&self, rel: &[u8]) -> Result<Listing, WhiteoutError> {
        let dir = self.path(rel);
        let entries = self.source.read_dir(&dir)?;
        let mut l = Listing::default();
        l.entries.try_reserve_exact(entries.len()).map_err(|_| {
            WhiteoutError::Source(salvor_source::SourceError::invalid(
                &dir,
                format!(
                    "out of memory holding the listing of {} entries",
                    entries.len()
                ),
            ))
        })?;
        let mut sorted = true;
        for e in entries {
            let kind = e.kind;
            let name = e.name.into_vec();
            check_name(&dir, &name)?;
            let is_wh_dev = kind == FileKind::CharDevice && {
                let md = self.lstat(&join(rel, &name))?.ok_or_else(|| {
                    WhiteoutError::Source(salvor_source::SourceError::NotFound {
                        path: self.path(&join(rel, &name)),
                    })
                })?;
                md.is_overlay_whiteout()
            };
            let visible = |name: Vec<u8>| LEntry {
                name,
                kind: Some(kind),
                whiteout: false,
            };
            let whiteout = |name: Vec<u8>| LEntry {
                name,
                kind: None,
                whiteout: true,
            };
            let entry = match self.style {
                WhiteoutStyle::Snapshot => visible(name),
                WhiteoutStyle::Overlay => {
                    if is_wh_dev {
                        whiteout(name)
                    } else {
                        visible(name)
                    }
                }
                WhiteoutStyle::Aufs => {
                    if name == WH_OPAQUE {
                        l.opaque_marker = true;
                        continue;
                    } else if name.starts_with(WH_META_PREFIX) {
                        // .wh..wh.plnk / .aufs / .orph: aufs bookkeeping, never visible.
                        continue;
                    } else if let Some(t) = name.strip_prefix(WH_PREFIX) {
                        sorted = false;
                        whiteout(t.to_vec())
                    } else {
                        visible(name)
                    }
                }
                WhiteoutStyle::FuseOverlayfs => {
                    if name == WH_OPAQUE || (name == FUSE_OPQ && is_wh_dev) {
                        l.opaque_marker = true;
                        continue;
                    } else if name.starts_with(WH_META_PREFIX) {
                        continue;
                    } else if let Some(t) = name.strip_prefix(WH_PREFIX) {
                        if is_wh_dev {
                            continue;
                        }
                        sorted = false;
                        whiteout(t.to_vec())
                    } else if is_wh_dev {
                        whiteout(name)
                    } else {
                        visible(name)
                    }
                }
            };
            l.entries.push(entry);
        }
        if !sorted {
            l.entries.sort_by(|a, b| a.name.cmp(&b.name));
        } else if !l.entries.is_sorted_by(|a, b| a.name <= b.name) {
            l.entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
        // A name both visible and whited out (`x` and `.wh.x`): one entry with both marks.
        l.entries.dedup_by(|later, first| {
            if later.name != first.name {
                return false;
            }
            first.kind = first.kind.or(later.kind);
            first.whiteout |= later.whiteout;
            true
        });
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

/// One name of a layer's directory listing.
#[derive(Debug)]
pub(crate) struct LEntry {
    pub name: Vec<u8>,
    /// Visible in this layer, as this kind (from the directory listing).
    pub kind: Option<FileKind>,
    /// Whited out in this layer.
    pub whiteout: bool,
}

/// One directory of one layer: its names sorted by bytes, each once.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub entries: Vec<LEntry>,
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

    /// The children of directory `node` at `rel`, in name-byte order, read lazily: the
    /// listings of the layers contributing to the directory (names only) are held, each
    /// child's metadata is read when [`Children::next`] reaches it.
    pub fn children(&self, rel: &[u8], node: &Node) -> Result<Children<'_, 'v, 'a>, WhiteoutError> {
        let mut lists = Vec::with_capacity(node.contrib.len());
        for &i in &node.contrib {
            lists.push((i, self.layers[i].listing(rel)?, 0usize));
        }
        Ok(Children {
            view: self,
            rel: rel.to_vec(),
            lists,
        })
    }

    pub fn capability(&self, rel: &[u8], node: &Node) -> Result<Option<Vec<u8>>, WhiteoutError> {
        self.layers[node.layer].xattr(rel, "security.capability")
    }
}

/// The children of one directory of a merged view, in name-byte order (see
/// [`View::children`]): a merge of the contributing layers' sorted listings.
pub(crate) struct Children<'c, 'v, 'a> {
    view: &'c View<'v, 'a>,
    rel: Vec<u8>,
    /// (layer index, its listing of this directory, cursor), top layer first.
    lists: Vec<(usize, Listing, usize)>,
}

impl Children<'_, '_, '_> {
    /// The next visible child: its name and node.
    pub fn next(&mut self) -> Result<Option<(Vec<u8>, Node)>, WhiteoutError> {
        loop {
            let Some(min) = self
                .lists
                .iter()
                .filter_map(|(_, l, pos)| l.entries.get(*pos))
                .map(|e| e.name.as_slice())
                .min()
                .map(<[u8]>::to_vec)
            else {
                return Ok(None);
            };
            // This name in each contributing layer, top first: (position in `lists`,
            // visible kind, whited out).
            let mut here: Vec<(usize, Option<FileKind>, bool)> = Vec::new();
            for (k, (_, l, pos)) in self.lists.iter_mut().enumerate() {
                if let Some(e) = l.entries.get(*pos) {
                    if e.name == min {
                        here.push((k, e.kind, e.whiteout));
                        *pos += 1;
                    }
                }
            }
            // The top layer having the name decides: shown from it, or hidden.
            let Some(&(top, Some(_), _)) = here.first() else {
                continue;
            };
            let i = self.lists[top].0;
            let layer = self.view.layers[i];
            let p = join(&self.rel, &min);
            let md = layer.lstat(&p)?.ok_or_else(|| {
                WhiteoutError::Source(salvor_source::SourceError::NotFound {
                    path: layer.path(&p),
                })
            })?;
            layer.check_unsupported(&p)?;
            let mut contrib = Vec::new();
            if md.is_dir() {
                contrib.push(i);
                if !layer.is_opaque(&p)? {
                    for &(k, kind, whiteout) in &here[1..] {
                        if whiteout {
                            break;
                        }
                        let j = self.lists[k].0;
                        match kind {
                            Some(FileKind::Dir) => {
                                self.view.layers[j].check_unsupported(&p)?;
                                contrib.push(j);
                                if self.view.layers[j].is_opaque(&p)? {
                                    break;
                                }
                            }
                            _ => break,
                        }
                    }
                }
            }
            return Ok(Some((
                min,
                Node {
                    layer: i,
                    md,
                    contrib,
                },
            )));
        }
    }
}
