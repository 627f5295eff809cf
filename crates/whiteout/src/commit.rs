//! `docker commit`: a layer's tar, from a native-diff driver's upper directory or by the
//! engine's naive diff.

use super::*;

/// `docker commit`'s layer for a layer whose driver has a native diff: overlay
/// ([`WhiteoutStyle::Overlay`], overlay2) and aufs. Streams the tar into `out`; returns
/// (`sha256:<hex>` of the tar = its diff_id, size in bytes).
pub fn write_layer_tar(
    upper: &LayerDir,
    rules: &HeaderRules,
    out: &mut dyn Write,
) -> Result<(String, u64), WhiteoutError> {
    let overlay = match upper.style {
        WhiteoutStyle::Overlay => true,
        WhiteoutStyle::Aufs => false,
        style => {
            return Err(WhiteoutError::NeedsLowers {
                path: upper.path(b""),
                style,
            })
        }
    };
    let mut app = Appender {
        tw: GoTarWriter::new(out),
        rules,
        seen: Default::default(),
        overlay_converter: overlay,
    };
    upper.check_unsupported(b"")?;
    // Iterative WalkDir of the upper directory itself (no merging): one listing (names
    // only) per level; each entry's metadata is read when it is written.
    let mut stack: WalkStack<FileKind> = vec![(Vec::new(), raw_children(upper, b"")?.into_iter())];
    while let Some((dir, it)) = stack.last_mut() {
        let Some((name, _)) = it.next() else {
            stack.pop();
            continue;
        };
        if !overlay
            && dir.is_empty()
            && name.starts_with(view::WH_META_PREFIX)
            && name != view::WH_OPAQUE
        {
            continue; // aufs Diff: Exclude ".wh..wh.*" (root level), "!.wh..wh..opq"
        }
        let rel = join(dir, &name);
        let Some(md) = upper.lstat(&rel)? else {
            continue; // gone since the listing
        };
        upper.check_unsupported(&rel)?;
        app.add(upper, &rel, &rel, &md)?;
        if md.is_dir() {
            too_deep(upper, &rel)?;
            let ch = raw_children(upper, &rel)?;
            stack.push((rel, ch.into_iter()));
        }
    }
    app.tw.finish().map_err(WhiteoutError::Output)
}

/// The names (and listed kinds) of one directory of a layer, sorted by bytes.
pub(super) fn raw_children(
    layer: &LayerDir,
    rel: &[u8],
) -> Result<Vec<(Vec<u8>, FileKind)>, WhiteoutError> {
    use std::os::unix::ffi::OsStringExt;
    let dir = layer.path(rel);
    let entries = layer.source.read_dir(&dir)?;
    let mut v = Vec::new();
    v.try_reserve_exact(entries.len())
        .map_err(|_| WhiteoutError::OutOfMemory {
            path: dir.clone(),
            what: format!("holding the listing of {} entries", entries.len()),
        })?;
    for e in entries {
        let name = e.name.into_vec();
        view::check_name(&dir, &name)?;
        v.push((name, e.kind));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// The engine's naive diff (`NaiveDiffDriver.Diff`: `ChangesDirs` + `ExportChanges`), used
/// for vfs/btrfs/zfs and fuse-overlayfs commits: entries sorted by path, each changed
/// path added from the new merged view, deletions as `.wh.<name>` (mode 0, owner 0, empty
/// names). The engine stamps those whiteouts with `time.Now()`; `whiteout_mtime` (Unix
/// seconds) stands in for it, so the digest cannot match the engine's when the layer has
/// deletions.
pub fn write_naive_layer_tar(
    upper: &LayerDir,
    lowers: &[LayerDir],
    rules: &HeaderRules,
    whiteout_mtime: i64,
    out: &mut dyn Write,
) -> Result<(String, u64), WhiteoutError> {
    write_naive_layer_tar_against(upper, None, lowers, rules, whiteout_mtime, out)
}

/// [`write_naive_layer_tar`] of the changes against `[base, lowers…]` (see
/// [`changes_against`]: Docker's overlay v1 commit, `base` the init layer's upper).
pub fn write_naive_layer_tar_against(
    upper: &LayerDir,
    base: Option<&LayerDir>,
    lowers: &[LayerDir],
    rules: &HeaderRules,
    whiteout_mtime: i64,
    out: &mut dyn Write,
) -> Result<(String, u64), WhiteoutError> {
    let mut ch = changes_against(upper, base, lowers)?;
    ch.sort_by(|a, b| a.path.cmp(&b.path));
    let mut new_layers: Vec<&LayerDir> = vec![upper];
    new_layers.extend(lowers.iter());
    let view = View::new(&new_layers);
    let mut app = Appender {
        tw: GoTarWriter::new(out),
        rules,
        seen: Default::default(),
        overlay_converter: false,
    };
    for c in &ch {
        let rel = &c.path[1..];
        if c.kind == ChangeKind::Deleted {
            app.add_whiteout(rel, whiteout_mtime)?;
            continue;
        }
        if let Some((layer, md)) = resolve(&view, rel)? {
            app.add(new_layers[layer], rel, rel, &md)?;
        }
    }
    app.tw.finish().map_err(WhiteoutError::Output)
}
