//! The disk pass of the audit: the layer's directory walked for what the record does not
//! list (added files; for full snapshots, what the parent's snapshot explains).

use super::*;

impl Ctx<'_> {
    pub(super) fn read_dir(&mut self, rel: &[u8], root: &Path) -> Vec<(Vec<u8>, FileKind)> {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(Path::new(OsStr::from_bytes(rel)))
        };
        match self.source.read_dir(&p) {
            Ok(v) => v
                .into_iter()
                .map(|d| (d.name.as_bytes().to_vec(), d.kind))
                .collect(),
            Err(e) => {
                self.push(
                    rel,
                    AuditKind::ReadError,
                    "a readable directory".into(),
                    salvor_model::error_chain(&e),
                );
                Vec::new()
            }
        }
    }

    /// Walks the layer's own directory (overlay `diff/`, aufs); returns whether anything
    /// under `rel` is listed.
    pub(super) fn walk_own(&mut self, rel: &[u8]) -> bool {
        let root = self.root.clone();
        let mut any = false;
        for (name, kind) in self.read_dir(rel, &root) {
            self.report.walked += 1;
            let p = join(rel, &name);
            let f = self.flag(&p);
            let sub = kind == FileKind::Dir && self.walk_own(&p);
            if f != 0 {
                any = true;
                if kind == FileKind::Dir && f & OPAQUE == 0 {
                    self.check_no_opaque(&p);
                }
                continue;
            }
            if sub {
                any = true; // a parent the engine made for listed entries
                continue;
            }
            self.unlisted(&p, &name, kind);
        }
        any
    }

    pub(super) fn check_no_opaque(&mut self, p: &[u8]) {
        if let Ok(Some(v)) = self.source.xattr(&self.phys(p), "trusted.overlay.opaque") {
            self.report.stats.xattr(false, true);
            if v == b"y" {
                self.push(
                    p,
                    AuditKind::OpaqueAdded,
                    "not opaque".into(),
                    "trusted.overlay.opaque=y".into(),
                );
            }
        }
    }

    pub(super) fn unlisted(&mut self, p: &[u8], name: &[u8], kind: FileKind) {
        let md = self.lstat(p).flatten();
        let found = md
            .as_ref()
            .map(|m| {
                let mut s = show_kind(m);
                if m.kind == FileKind::Regular {
                    s.push_str(&format!(" of {} bytes", m.size));
                }
                s.push_str(&format!(
                    ", mode {:04o}, {}:{}",
                    m.mode & 0o7777,
                    m.uid,
                    m.gid
                ));
                s
            })
            .unwrap_or_else(|| format!("a {kind}"));
        let (k, expected) = if md.as_ref().is_some_and(Metadata::is_overlay_whiteout) {
            (AuditKind::WhiteoutAdded, "no whiteout".to_string())
        } else if name == b".wh..wh..opq" {
            (AuditKind::OpaqueAdded, "no opaque marker".to_string())
        } else if name.starts_with(b".wh.") && !name.starts_with(b".wh..wh.") {
            (AuditKind::WhiteoutAdded, "no whiteout".to_string())
        } else {
            (
                AuditKind::Added,
                "nothing (not in the tar-split)".to_string(),
            )
        };
        self.push(p, k, expected, found);
    }

    /// Walks a full snapshot against the parent's snapshot (`parent` = its root); returns
    /// whether anything under `rel` is listed. `in_opaque`: the parent's entries are not
    /// inherited here (an opaque directory of this layer, or a directory the parent lacks).
    pub(super) fn walk_snapshot(
        &mut self,
        rel: &[u8],
        parent: Option<&Path>,
        in_opaque: bool,
    ) -> bool {
        let root = self.root.clone();
        let mine = self.read_dir(rel, &root);
        let theirs = match parent {
            Some(pr) if !in_opaque => {
                let p = if rel.is_empty() {
                    pr.to_path_buf()
                } else {
                    pr.join(Path::new(OsStr::from_bytes(rel)))
                };
                match self.source.read_dir(&p) {
                    Ok(v) => v
                        .into_iter()
                        .map(|d| (d.name.as_bytes().to_vec(), d.kind))
                        .collect(),
                    Err(_) => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        let mut any = false;
        let (mut i, mut j) = (0, 0);
        loop {
            let (name, here, there) = match (mine.get(i), theirs.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    i += 1;
                    j += 1;
                    (a.0.clone(), Some(a.1), Some(b.1))
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    i += 1;
                    (a.0.clone(), Some(a.1), None)
                }
                (Some(a), None) => {
                    i += 1;
                    (a.0.clone(), Some(a.1), None)
                }
                (_, Some(b)) => {
                    j += 1;
                    (b.0.clone(), None, Some(b.1))
                }
                (None, None) => break,
            };
            let p = join(rel, &name);
            let f = self.flag(&p);
            if here.is_some() {
                self.report.walked += 1;
            }
            if f != 0 {
                any = true;
            }
            match (here, there) {
                (Some(k), _) if f & LISTED != 0 => {
                    if k == FileKind::Dir {
                        let opq = in_opaque || f & OPAQUE != 0 || there != Some(FileKind::Dir);
                        self.walk_snapshot(&p, parent, opq);
                    }
                }
                // Whited out but present: reported by the whiteout already.
                (Some(_), _) if f & WHITED_OUT != 0 => {}
                (Some(k), Some(pk)) if !in_opaque => {
                    self.inherited(&p, parent, k, pk);
                    if k == FileKind::Dir
                        && pk == FileKind::Dir
                        && self.walk_snapshot(&p, parent, f & OPAQUE != 0)
                    {
                        any = true;
                    }
                }
                (Some(k), _) => {
                    if k == FileKind::Dir && self.walk_snapshot(&p, None, true) {
                        any = true; // a parent the engine made for listed entries
                        continue;
                    }
                    self.unlisted(&p, &name, k);
                }
                (None, Some(pk)) => {
                    if f & (WHITED_OUT | LISTED) != 0 || in_opaque {
                        continue; // deleted by this layer, or reported as missing already
                    }
                    self.push(
                        &p,
                        AuditKind::Missing,
                        format!("a {pk} (inherited from the parent layer)"),
                        "nothing".into(),
                    );
                }
                (None, None) => {}
            }
        }
        any
    }

    /// An unlisted path of a snapshot: must equal the parent's.
    pub(super) fn inherited(&mut self, p: &[u8], parent: Option<&Path>, k: FileKind, pk: FileKind) {
        let Some(pr) = parent else { return };
        if k != pk {
            return self.push(
                p,
                AuditKind::KindChanged,
                format!("a {pk} (inherited from the parent layer)"),
                format!("a {k}"),
            );
        }
        let Some(Some(md)) = self.lstat(p) else {
            return;
        };
        let pp = pr.join(Path::new(OsStr::from_bytes(p)));
        let Ok(pmd) = self.source.metadata(&pp) else {
            return;
        };
        let e = Expect {
            perm: (k != FileKind::Symlink).then_some(pmd.mode & 0o7777),
            uid: i64::from(pmd.uid),
            gid: i64::from(pmd.gid),
            mtime: (k != FileKind::Dir).then_some((pmd.mtime.sec, None)),
        };
        self.inheriting = true;
        self.compare_attrs(p, &e, &md);
        self.inheriting = false;
        if k == FileKind::Regular && md.size != pmd.size {
            self.push(
                p,
                AuditKind::SizeChanged,
                format!("{} bytes", pmd.size),
                format!("{} bytes", md.size),
            );
        }
        if k == FileKind::Symlink {
            let a = self.source.read_link(&self.phys(p)).ok();
            let b = self.source.read_link(&pp).ok();
            if a != b {
                let s = |x: Option<PathBuf>| {
                    x.map(|t| show_bytes(t.as_os_str().as_bytes()))
                        .unwrap_or_else(|| "unreadable".into())
                };
                self.push(p, AuditKind::SymlinkChanged, s(b), s(a));
            }
        }
        if matches!(k, FileKind::CharDevice | FileKind::BlockDevice)
            && (md.rdev_major, md.rdev_minor) != (pmd.rdev_major, pmd.rdev_minor)
        {
            self.push(
                p,
                AuditKind::DeviceChanged,
                format!("{}:{}", pmd.rdev_major, pmd.rdev_minor),
                format!("{}:{}", md.rdev_major, md.rdev_minor),
            );
        }
    }
}
