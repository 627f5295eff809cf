//! `docker export`: the flattened merged view as a tar, optionally with the
//! container's mounts at their mount points.

use super::*;

/// `docker export`: the flattened root filesystem of `layers_top_first` (for a container:
/// `[container upper, init layer, image top, …, base]`; for vfs `[container snapshot]`),
/// whiteouts and opaque directories applied. Returns the number of bytes written.
/// The same code path as [`write_flattened_tar_with_mounts`] with no mounts.
pub fn write_flattened_tar(
    layers_top_first: &[LayerDir],
    rules: &HeaderRules,
    out: &mut dyn Write,
) -> Result<u64, WhiteoutError> {
    write_flattened_tar_with_mounts(layers_top_first, &[], rules, out)
}

/// Most mounts accepted by [`write_flattened_tar_with_mounts`].
pub const MAX_MOUNTS: usize = 4096;

/// Normalises a mount point (container path bytes): must be absolute; empty and `.`
/// components are dropped (`/a//b/./` → `a/b`); `..`, NUL bytes, `/` itself and nesting
/// deeper than [`MAX_DEPTH`] are refused. Returns the relative form (`a/b`).
pub(super) fn normalise_mount_point(p: &[u8]) -> Result<Vec<u8>, WhiteoutError> {
    let bad = |reason: &str| WhiteoutError::BadMount {
        mount: String::from_utf8_lossy(p).into_owned(),
        reason: reason.into(),
    };
    if p.contains(&0) {
        return Err(bad("contains a NUL byte"));
    }
    if p.first() != Some(&b'/') {
        return Err(bad("not an absolute container path"));
    }
    let mut comps: Vec<&[u8]> = Vec::new();
    for c in p.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(bad("has a `..` component")),
            c => comps.push(c),
        }
        if comps.len() > MAX_DEPTH {
            return Err(bad(&format!("nested deeper than {MAX_DEPTH} directories")));
        }
    }
    if comps.is_empty() {
        return Err(bad(
            "is the container's root `/`, which docker refuses as a destination",
        ));
    }
    Ok(comps.join(&b'/'))
}

/// One entry of the export walk: a node of filesystem `fs` (0 = the layers' merged view,
/// `1 + i` = mount `i`) at `rel` inside that filesystem, or a directory no filesystem
/// has (a missing parent of a mount point).
pub(super) enum Entry {
    Node { fs: usize, rel: Vec<u8>, node: Node },
    Synth,
}

/// The merged view of the layers plus the mounts, one filesystem each.
pub(super) struct Mounted<'v, 'a> {
    /// `views[0]`: the layers; `views[1 + i]`: mount `i` (a single Snapshot layer).
    pub(super) views: Vec<View<'v, 'a>>,
    /// Normalised mount points (`a/b`) with their mount index, sorted by bytes, so the
    /// mounts below a directory are one contiguous run.
    pub(super) points: Vec<(Vec<u8>, usize)>,
}

impl<'v, 'a> Mounted<'v, 'a> {
    pub(super) fn layer(&self, fs: usize, node: &Node) -> &LayerDir<'_> {
        self.views[fs].layers[node.layer]
    }

    /// The children of the directory at tar path `tar`, in name order: the entries of
    /// `base` (filesystem, path inside it, node; `None` for a synthesised directory) with
    /// mount points below `tar` applied. A mount point child is replaced by the mount's
    /// root; a child on the way to a deeper mount point stays when it is a directory and
    /// is otherwise replaced by a synthesised directory (created when missing).
    pub(super) fn children(
        &self,
        tar: &[u8],
        base: Option<(usize, &[u8], &Node)>,
    ) -> Result<MountedChildren<'_, 'v, 'a>, WhiteoutError> {
        let base = match base {
            Some((fs, rel, node)) => Some((fs, rel.to_vec(), self.views[fs].children(rel, node)?)),
            None => None,
        };
        let prefix: Vec<u8> = if tar.is_empty() {
            Vec::new()
        } else {
            join(tar, b"")
        };
        let start = self
            .points
            .partition_point(|(p, _)| p.as_slice() < prefix.as_slice());
        let below = self.points[start..]
            .iter()
            .take_while(|(p, _)| p.starts_with(&prefix));
        // name → Some(mount index) for a mount point, None for a component on the way.
        let mut over: BTreeMap<Vec<u8>, Option<usize>> = BTreeMap::new();
        for (p, m) in below {
            let rest = &p[prefix.len()..];
            match rest.iter().position(|&c| c == b'/') {
                None => {
                    over.insert(rest.to_vec(), Some(*m));
                }
                Some(i) => {
                    over.entry(rest[..i].to_vec()).or_insert(None);
                }
            }
        }
        let mut c = MountedChildren {
            base,
            base_next: None,
            over: over.into_iter().collect::<Vec<_>>().into_iter(),
            over_next: None,
        };
        c.pull_base()?;
        c.over_next = c.over.next();
        Ok(c)
    }
}

/// The children of one directory of the export walk, in name order (see
/// [`Mounted::children`]): the merged view's children, lazily, with the mount points.
pub(super) struct MountedChildren<'c, 'v, 'a> {
    /// (filesystem, path of the directory inside it, its children).
    pub(super) base: Option<(usize, Vec<u8>, view::Children<'c, 'v, 'a>)>,
    pub(super) base_next: Option<(Vec<u8>, Node)>,
    pub(super) over: std::vec::IntoIter<(Vec<u8>, Option<usize>)>,
    pub(super) over_next: Option<(Vec<u8>, Option<usize>)>,
}

impl MountedChildren<'_, '_, '_> {
    pub(super) fn pull_base(&mut self) -> Result<(), WhiteoutError> {
        self.base_next = match &mut self.base {
            Some((_, _, c)) => c.next()?,
            None => None,
        };
        Ok(())
    }

    pub(super) fn next(&mut self, m: &Mounted) -> Result<Option<(Vec<u8>, Entry)>, WhiteoutError> {
        use std::cmp::Ordering;
        let order = match (&self.base_next, &self.over_next) {
            (None, None) => return Ok(None),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((b, _)), Some((o, _))) => b.cmp(o),
        };
        let base_entry = |me: &mut Self| -> Result<Option<(Vec<u8>, Entry)>, WhiteoutError> {
            let Some((name, node)) = me.base_next.take() else {
                return Ok(None);
            };
            let (fs, rel) = match &me.base {
                Some((fs, rel, _)) => (*fs, join(rel, &name)),
                None => return Ok(None),
            };
            me.pull_base()?;
            Ok(Some((name, Entry::Node { fs, rel, node })))
        };
        if order == Ordering::Less {
            return base_entry(self);
        }
        let Some((name, mount)) = self.over_next.take() else {
            return Ok(None);
        };
        self.over_next = self.over.next();
        let keep_base = order == Ordering::Equal
            && mount.is_none()
            && matches!(&self.base_next, Some((_, n)) if n.is_dir());
        if keep_base {
            return base_entry(self);
        }
        if order == Ordering::Equal {
            self.pull_base()?; // the layers' entry is hidden by the mount or a directory
        }
        let entry = match mount {
            Some(i) => {
                let fs = 1 + i;
                Entry::Node {
                    fs,
                    rel: Vec::new(),
                    node: m.views[fs].root()?,
                }
            }
            None => Entry::Synth,
        };
        Ok(Some((name, entry)))
    }
}

/// `docker export` of the merged view of `layers_top_first`, with each mount's directory
/// mounted at its mount point (container path bytes like `/vol` or `/data/cache`): what
/// `tar` run inside the running container would have seen, in the engine's export format.
///
/// * The mount hides whatever the layers have at and below the mount point; the mount
///   point's own directory header takes the mounted directory's metadata (as `stat`
///   inside a running container would show it), and the mount's files follow in
///   `WalkDir` order (name-byte order, parents first) at their place in the tree.
/// * A mount is not a layer: its directory is read as [`WhiteoutStyle::Snapshot`]
///   whatever style the caller gave, so whiteout-looking entries in it (`.wh.*` files,
///   char 0/0 devices) are exported as what they are. Its root must be a directory.
/// * Mount points are normalised (`/a//b/./` = `/a/b`); relative paths, `..` components,
///   NUL bytes, `/` itself, duplicates (after normalisation), nesting deeper than
///   [`MAX_DEPTH`] and more than [`MAX_MOUNTS`] mounts fail with
///   [`WhiteoutError::BadMount`] naming the mount point as given.
/// * Mount points (and their parents) missing from the layers are created, as runc does:
///   directories with mode 0755, uid/gid 0, mtime 0 and no xattrs (uname/gname those of
///   uid/gid 0 in `names`). The mount point itself then carries the mount's metadata.
/// * Non-directories in the way: a file, device or **symlink** at a mount point or at one
///   of its parents in the layers is overlaid, not refused: the mount (or a synthesised
///   directory for a parent) takes its place at the literal path and the layers' entry is
///   hidden. (The engine would have failed to start such a container, or runc would have
///   resolved the symlink inside the root filesystem and mounted elsewhere; symlinks are
///   never followed here, so the evidence of the volume is kept at the path the
///   container configuration names.)
/// * Nested mounts: the deeper one wins below its point, whether its parent is in the
///   layers or in another mount (a missing parent inside a mount is synthesised as above).
/// * Hard links are tracked per filesystem: the layers' merged view is one, each mount
///   another (even two mounts of the same directory), so a mount's inode numbers never
///   link to the layers'.
///
/// Returns the number of bytes written.
pub fn write_flattened_tar_with_mounts(
    layers_top_first: &[LayerDir],
    mounts: &[(&[u8], LayerDir)],
    rules: &HeaderRules,
    out: &mut dyn Write,
) -> Result<u64, WhiteoutError> {
    if mounts.len() > MAX_MOUNTS {
        return Err(WhiteoutError::BadMount {
            mount: format!("({} mounts)", mounts.len()),
            reason: format!("more than {MAX_MOUNTS} mounts"),
        });
    }
    let mut points: Vec<(Vec<u8>, usize)> = Vec::with_capacity(mounts.len());
    for (i, (p, _)) in mounts.iter().enumerate() {
        points.push((normalise_mount_point(p)?, i));
    }
    points.sort();
    if let Some(w) = points.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(WhiteoutError::BadMount {
            mount: String::from_utf8_lossy(mounts[w[1].1].0).into_owned(),
            reason: format!(
                "the same mount point as {:?} (docker refuses duplicate mount points)",
                String::from_utf8_lossy(mounts[w[0].1].0)
            ),
        });
    }
    let layers: Vec<&LayerDir> = layers_top_first.iter().collect();
    let mount_dirs: Vec<LayerDir> = mounts
        .iter()
        .map(|(_, l)| LayerDir {
            style: WhiteoutStyle::Snapshot,
            ..*l
        })
        .collect();
    let singles: Vec<[&LayerDir; 1]> = mount_dirs.iter().map(|l| [l]).collect();
    let mut views = vec![View::new(&layers)];
    views.extend(singles.iter().map(|s| View::new(s)));
    let mounted = Mounted { views, points };

    let root = mounted.views[0].root()?;
    let mut app = Appender {
        tw: GoTarWriter::new(out),
        rules,
        seen: Default::default(),
        overlay_converter: false,
    };
    // One directory per level: its merged listing (names only) and mount points.
    let mut stack: Vec<(Vec<u8>, MountedChildren)> =
        vec![(Vec::new(), mounted.children(b"", Some((0, b"", &root)))?)];
    while let Some((dir, it)) = stack.last_mut() {
        let Some((name, entry)) = it.next(&mounted)? else {
            stack.pop();
            continue;
        };
        let tar = join(dir, &name);
        let ch = match &entry {
            Entry::Node { fs, rel, node } => {
                let layer = mounted.layer(*fs, node);
                app.add_in(*fs, layer, rel, &tar, &node.md)?;
                if !node.is_dir() {
                    continue;
                }
                if depth_of(&tar) > MAX_DEPTH {
                    return Err(WhiteoutError::TooDeep {
                        path: layer.path(rel),
                    });
                }
                mounted.children(&tar, Some((*fs, rel, node)))?
            }
            Entry::Synth => {
                app.add_synth_dir(&tar)?;
                // Mount points are at most MAX_DEPTH deep, so synthesised parents are too.
                mounted.children(&tar, None)?
            }
        };
        stack.push((tar, ch));
    }
    Ok(app.tw.finish().map_err(WhiteoutError::Output)?.1)
}
