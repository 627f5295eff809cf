//! `docker diff`: the changes of a layer over its lowers (the engine's naive
//! `ChangesDirs` of two merged views).

use super::*;

pub(super) fn same_fs_time(a: &Metadata, b: &Metadata) -> bool {
    a.mtime == b.mtime || (a.mtime.sec == b.mtime.sec && (a.mtime.nsec == 0 || b.mtime.nsec == 0))
}

/// moby `statDifferent`.
pub(super) fn stat_different(old: &Metadata, new: &Metadata) -> bool {
    st_mode(old) != st_mode(new)
        || old.uid != new.uid
        || old.gid != new.gid
        || (old.rdev_major, old.rdev_minor) != (new.rdev_major, new.rdev_minor)
        || (old.kind != FileKind::Dir && (!same_fs_time(old, new) || old.size != new.size))
}

/// One directory of the diff walk.
pub(super) struct Frame<'c, 'v, 'a> {
    pub(super) rel: Vec<u8>,
    /// Real changes in `out` when the frame was entered.
    pub(super) real_at_entry: usize,
    /// Where this directory's own `C` goes when changes are found below it (a slot
    /// reserved in `out`), for a directory neither added nor already modified.
    pub(super) slot: Option<usize>,
    /// The new view's children (`None`: not a directory, or a pruned subtree).
    pub(super) children: Option<view::Children<'c, 'v, 'a>>,
    /// The old view's children, and the next one not yet matched.
    pub(super) old: Option<view::Children<'c, 'v, 'a>>,
    pub(super) old_next: Option<(Vec<u8>, Node)>,
    /// Old children the new view does not have, in name order.
    pub(super) deleted: Vec<Vec<u8>>,
}

impl Frame<'_, '_, '_> {
    /// The old child named `name`, if any; old children before it are deleted.
    pub(super) fn take_old(&mut self, name: &[u8]) -> Result<Option<Node>, WhiteoutError> {
        while let Some((n, _)) = &self.old_next {
            match n.as_slice().cmp(name) {
                std::cmp::Ordering::Less => {
                    if let Some((n, _)) = self.old_next.take() {
                        self.deleted.push(n);
                    }
                    self.pull_old()?;
                }
                std::cmp::Ordering::Equal => {
                    let found = self.old_next.take().map(|(_, node)| node);
                    self.pull_old()?;
                    return Ok(found);
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(None)
    }

    pub(super) fn pull_old(&mut self) -> Result<(), WhiteoutError> {
        self.old_next = match &mut self.old {
            Some(o) => o.next()?,
            None => None,
        };
        Ok(())
    }
}

/// Whether two nodes of the two views are provably the same subtree: made of the same
/// shared lower layers only, the new view's layer `new_off + i` being the old view's
/// `old_off + i`.
pub(super) fn same_subtree(new: &Node, old: &Node, new_off: usize, old_off: usize) -> bool {
    let shared = |n: usize, o: usize| n >= new_off && o >= old_off && n - new_off == o - old_off;
    shared(new.layer, old.layer)
        && new.contrib.len() == old.contrib.len()
        && new
            .contrib
            .iter()
            .zip(&old.contrib)
            .all(|(a, b)| shared(*a, *b))
}

/// `docker diff`: the changes of `upper` over `lowers` (nearest first: for a container
/// `[init layer, image top layer, …, base]`; for vfs `[init snapshot]` with `upper` the
/// container snapshot). See the crate documentation for the rules and the order.
///
/// Linear in the size of the trees: one directory listing per layer and level is held
/// at a time (names only), and the two views' sorted listings are merged.
pub fn changes(upper: &LayerDir, lowers: &[LayerDir]) -> Result<Vec<Change>, WhiteoutError> {
    changes_against(upper, None, lowers)
}

/// `docker diff` where the parent is not just the lowers: the changes of the view
/// `[upper, lowers…]` against the view `[base, lowers…]` (`base` `None`: against
/// `[lowers…]`, as [`changes`]).
///
/// Docker's overlay (v1) driver is the case: a container's `upper/` starts as a copy of
/// its `-init` layer's `upper/` (both over the image's `root/`), and the engine's naive
/// diff compares the container's mount with the init layer's. With `base` the init
/// layer's upper, the init files the container did not touch are not changes.
pub fn changes_against(
    upper: &LayerDir,
    base: Option<&LayerDir>,
    lowers: &[LayerDir],
) -> Result<Vec<Change>, WhiteoutError> {
    let mut new_layers: Vec<&LayerDir> = vec![upper];
    new_layers.extend(lowers.iter());
    let old_layers: Vec<&LayerDir> = base.into_iter().chain(lowers.iter()).collect();
    let old_off = usize::from(base.is_some());
    let new_view = View::new(&new_layers);
    let old_view = View::new(&old_layers);
    let new_root = new_view.root()?;
    let old_root = if old_layers.is_empty() {
        None
    } else {
        Some(old_view.root()?)
    };
    // The prune shortcut needs the old view to be exactly the new view minus the upper.
    let new_off = 1;
    // Changes in walk order; `None` is a slot reserved for a directory's `C` that turned
    // out not to be needed.
    let mut out: Vec<Option<Change>> = Vec::new();
    let mut real = 0usize;
    let snapshots = upper.style == WhiteoutStyle::Snapshot
        && old_layers
            .iter()
            .all(|l| l.style == WhiteoutStyle::Snapshot);

    let push = |out: &mut Vec<Option<Change>>, c: Change, path: &[u8]| {
        out.try_reserve(1).map_err(|_| WhiteoutError::OutOfMemory {
            path: upper.path(path),
            what: format!("holding {} changes", out.len()),
        })?;
        out.push(Some(c));
        Ok::<(), WhiteoutError>(())
    };

    let mut stack: Vec<Frame> = Vec::new();
    // The root: compared only through its children.
    let mut root = Frame {
        rel: Vec::new(),
        real_at_entry: 0,
        slot: None,
        children: Some(new_view.children(b"", &new_root)?),
        old: match &old_root {
            Some(o) => Some(old_view.children(b"", o)?),
            None => None,
        },
        old_next: None,
        deleted: Vec::new(),
    };
    root.pull_old()?;
    stack.push(root);
    while let Some(top) = stack.last_mut() {
        let next = match &mut top.children {
            Some(c) => c.next()?,
            None => None,
        };
        if let Some((name, nc)) = next {
            let rel = join(&top.rel, &name);
            too_deep(upper, &rel)?;
            let oc = top.take_old(&name)?;
            let mut modified = false;
            if let Some(o) = &oc {
                if snapshots
                    && inode_key(new_layers[nc.layer], &nc.md)
                        == inode_key(old_layers[o.layer], &o.md)
                {
                    // The engine's walker prunes names with the same inode on one device.
                    continue;
                }
                if stat_different(&o.md, &nc.md)
                    || new_view.capability(&rel, &nc)? != old_view.capability(&rel, o)?
                {
                    push(
                        &mut out,
                        Change {
                            path: abs(&rel),
                            kind: ChangeKind::Modified,
                        },
                        &rel,
                    )?;
                    real += 1;
                    modified = true;
                }
            }
            let added = oc.is_none();
            if added {
                push(
                    &mut out,
                    Change {
                        path: abs(&rel),
                        kind: ChangeKind::Added,
                    },
                    &rel,
                )?;
                real += 1;
            }
            let mut f = Frame {
                rel,
                real_at_entry: real,
                slot: None,
                children: None,
                old: None,
                old_next: None,
                deleted: Vec::new(),
            };
            if nc.is_dir() {
                let pruned =
                    matches!(&oc, Some(o) if o.is_dir() && same_subtree(&nc, o, new_off, old_off));
                if !pruned {
                    f.children = Some(new_view.children(&f.rel, &nc)?);
                    if let Some(o) = oc.as_ref().filter(|o| o.is_dir()) {
                        f.old = Some(old_view.children(&f.rel, o)?);
                        f.pull_old()?;
                    }
                    // A directory neither added nor modified gets a `C` (before its
                    // children's changes) when anything below it changed.
                    if !added && !modified {
                        out.try_reserve(1).map_err(|_| WhiteoutError::OutOfMemory {
                            path: upper.path(&f.rel),
                            what: format!("holding {} changes", out.len()),
                        })?;
                        f.slot = Some(out.len());
                        out.push(None);
                    }
                }
            }
            stack.push(f);
        } else {
            let Some(mut f) = stack.pop() else { break };
            // Old children after the last new one are deleted too.
            while let Some((n, _)) = f.old_next.take() {
                f.deleted.push(n);
                f.pull_old()?;
            }
            for name in std::mem::take(&mut f.deleted) {
                let rel = join(&f.rel, &name);
                push(
                    &mut out,
                    Change {
                        path: abs(&rel),
                        kind: ChangeKind::Deleted,
                    },
                    &rel,
                )?;
                real += 1;
            }
            if let Some(i) = f.slot {
                if real > f.real_at_entry {
                    out[i] = Some(Change {
                        path: abs(&f.rel),
                        kind: ChangeKind::Modified,
                    });
                }
            }
        }
    }
    Ok(out.into_iter().flatten().collect())
}
