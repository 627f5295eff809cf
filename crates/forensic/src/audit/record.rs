//! The record pass of the audit: each tar header the engine recorded, compared with the
//! path on disk (attributes, capabilities, hard links, whiteouts, opaque markers).

use super::*;

impl Ctx<'_> {
    pub(super) fn expect(&self, h: &TarHeader, clamp: bool) -> Expect {
        let sec = if clamp {
            chtimes_clamp(h.mtime)
        } else {
            h.mtime
        };
        Expect {
            perm: Some(h.perm()),
            uid: h.uid + self.remap.0,
            gid: h.gid + self.remap.1,
            mtime: Some((sec, if sec == h.mtime { h.mtime_nsec } else { None })),
        }
    }

    pub(super) fn compare_attrs(&mut self, path: &[u8], e: &Expect, md: &Metadata) {
        if let Some(perm) = e.perm {
            let found = md.mode & 0o7777;
            if !self.inheriting {
                self.report.stats.mode(perm, found);
            }
            if perm != found {
                self.push_md(
                    path,
                    md,
                    AuditKind::ModeChanged,
                    format!("{perm:04o}"),
                    format!("{found:04o}"),
                );
            }
        }
        let (uid_ok, gid_ok) = (e.uid == i64::from(md.uid), e.gid == i64::from(md.gid));
        if !self.inheriting {
            self.report.stats.owner(md.uid, md.gid, uid_ok, gid_ok);
        }
        if !uid_ok {
            self.push_md(
                path,
                md,
                AuditKind::UidChanged,
                e.uid.to_string(),
                md.uid.to_string(),
            );
        }
        if !gid_ok {
            self.push_md(
                path,
                md,
                AuditKind::GidChanged,
                e.gid.to_string(),
                md.gid.to_string(),
            );
        }
        if let Some((sec, nsec)) = e.mtime {
            let ns_differs = match nsec {
                Some(n) => md.mtime.nsec != 0 && md.mtime.nsec != n,
                None => false,
            };
            let differs = sec != md.mtime.sec || ns_differs;
            if !self.inheriting {
                self.report
                    .stats
                    .mtime(md.kind == FileKind::Dir, md.mtime.sec, differs);
            }
            if differs {
                let show = |s: i64, n: Option<u32>| match n {
                    Some(n) if n != 0 => format!("{s}.{n:09}"),
                    _ => s.to_string(),
                };
                self.push_md(
                    path,
                    md,
                    AuditKind::MtimeChanged,
                    show(sec, nsec),
                    show(md.mtime.sec, Some(md.mtime.nsec)),
                );
            }
        }
    }

    pub(super) fn compare_cap(&mut self, path: &[u8], h: &TarHeader) {
        let want = h.xattr("security.capability");
        let have = match self.source.xattr(&self.phys(path), "security.capability") {
            Ok(v) => v,
            Err(e) => {
                self.push(
                    path,
                    AuditKind::ReadError,
                    "readable xattrs".into(),
                    salvor_model::error_chain(&e),
                );
                return;
            }
        };
        self.report.stats.xattr(want.is_some(), have.is_some());
        self.report.stats.cap(want.is_some(), have.is_some());
        if want != have.as_deref() {
            self.push(
                path,
                AuditKind::CapabilityChanged,
                show_cap(want),
                show_cap(have.as_deref()),
            );
        }
    }

    /// Compares one listed, non-whiteout entry.
    pub(super) fn entry(&mut self, path: &[u8], h: &TarHeader) {
        self.list(path, LISTED);
        let Some(md) = self.lstat(path) else { return };
        if h.typeflag == b'1' {
            return self.hardlink(path, h, md);
        }
        let Some(want) = kind_of(h.typeflag) else {
            return; // vendor / unknown typeflags: the engine does not extract them
        };
        let Some(md) = md else {
            return self.push(
                path,
                AuditKind::Missing,
                format!("a {want}"),
                "nothing".into(),
            );
        };
        if md.kind != want {
            return self.push(
                path,
                AuditKind::KindChanged,
                format!("a {want}"),
                show_kind(&md),
            );
        }
        let symlink = want == FileKind::Symlink;
        let mut e = self.expect(h, !symlink);
        if symlink {
            e.perm = None;
            match self.source.read_link(&self.phys(path)) {
                Ok(t) => {
                    let t = t.as_os_str().as_bytes();
                    if t != h.linkname.as_slice() {
                        self.push(
                            path,
                            AuditKind::SymlinkChanged,
                            show_bytes(&h.linkname),
                            show_bytes(t),
                        );
                    }
                }
                Err(err) => self.push(
                    path,
                    AuditKind::ReadError,
                    "a symlink".into(),
                    salvor_model::error_chain(&err),
                ),
            }
        }
        if matches!(want, FileKind::CharDevice | FileKind::BlockDevice) {
            let (maj, min) = (i64::from(md.rdev_major), i64::from(md.rdev_minor));
            if (maj, min) != (h.devmajor, h.devminor) {
                self.push(
                    path,
                    AuditKind::DeviceChanged,
                    format!("{}:{}", h.devmajor, h.devminor),
                    format!("{maj}:{min}"),
                );
            }
        }
        if !symlink {
            self.compare_cap(path, h);
        }
        if want == FileKind::Regular && self.check_content {
            self.compare_content(path, h, &md);
        }
        if md.nlink > 1 && !symlink && want != FileKind::Dir && self.deferred.len() < MAX_DEFERRED {
            self.deferred.insert((md.dev, md.ino), (path.to_vec(), e));
        } else {
            self.compare_attrs(path, &e, &md);
        }
    }

    /// A blob-proven layer's regular file: its size, then its bytes' CRC-64, against its
    /// member's (read at most the recorded size plus one byte).
    fn compare_content(&mut self, path: &[u8], h: &TarHeader, md: &Metadata) {
        let want = u64::try_from(h.size).unwrap_or(0);
        if md.size != want {
            return self.push(
                path,
                AuditKind::SizeChanged,
                format!("{want} bytes"),
                format!("{} bytes", md.size),
            );
        }
        let Some(expected) = self.entry_crc else {
            return;
        };
        let mut f = match self.source.open(&self.phys(path)) {
            Ok(f) => f,
            Err(err) => {
                return self.push(
                    path,
                    AuditKind::ReadError,
                    "its bytes".into(),
                    salvor_model::error_chain(&err),
                )
            }
        };
        let mut crc = salvor_tarsplit::Crc64Hasher::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut left = want;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            match std::io::Read::read(&mut f, &mut buf[..k]) {
                Ok(0) => break,
                Ok(n) => {
                    crc.update(&buf[..n]);
                    left -= n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    return self.push(
                        path,
                        AuditKind::ReadError,
                        "its bytes".into(),
                        format!("after {} bytes: {err}", want - left),
                    )
                }
            }
        }
        let found = crc.finalize();
        if left > 0 || found != expected {
            self.push(
                path,
                AuditKind::ContentChanged,
                format!("the blob's bytes (CRC-64 {})", hex::encode(expected)),
                format!("other bytes (CRC-64 {})", hex::encode(found)),
            );
        }
    }

    pub(super) fn hardlink(&mut self, path: &[u8], h: &TarHeader, md: Option<Metadata>) {
        let target = clean(&h.linkname);
        let Some(md) = md else {
            return self.push(
                path,
                AuditKind::Missing,
                format!("a hard link to {}", show_bytes(&target)),
                "nothing".into(),
            );
        };
        let Some(tmd) = self.lstat(&target) else {
            return;
        };
        let same = tmd
            .as_ref()
            .is_some_and(|t| t.ino == md.ino && t.dev == md.dev);
        let identical = !same
            && tmd
                .as_ref()
                .is_some_and(|t| self.identical_copy(path, &md, &target, t));
        self.report.stats.link(same, identical);
        if !same {
            let found = match &tmd {
                Some(t) if t.ino == md.ino => "a separate inode".to_string(),
                Some(_) if identical => format!(
                    "{} that is a separate inode, an identical copy of the target",
                    show_kind(&md)
                ),
                Some(_) => format!("{} that is a separate inode", show_kind(&md)),
                None => format!("{}; the link target is absent", show_kind(&md)),
            };
            self.push(
                path,
                AuditKind::HardlinkBroken,
                format!("a hard link to {}", show_bytes(&target)),
                found,
            );
            if let Some(last) = self.report.findings.last_mut() {
                last.identical_copy = identical;
            }
            return;
        }
        if md.kind == FileKind::Symlink || md.kind == FileKind::Dir {
            return; // the engine does not chmod/chtimes through a link to a symlink
        }
        // The link's header is applied last to the shared inode.
        let e = self.expect(h, true);
        if self.deferred.len() < MAX_DEFERRED || self.deferred.contains_key(&(md.dev, md.ino)) {
            self.deferred.insert((md.dev, md.ino), (target, e));
        } else {
            self.compare_attrs(path, &e, &md);
        }
    }

    /// Whether `path` (a name the tar-split links to `target`) is a separate regular file
    /// with the same size, mode, owner and bytes as `target`: what `rsync -a` or `cp -r`
    /// make of a hard link. The two files are compared in 64 KiB pieces.
    pub(super) fn identical_copy(
        &self,
        path: &[u8],
        md: &Metadata,
        target: &[u8],
        t: &Metadata,
    ) -> bool {
        use std::io::Read;
        if md.kind != FileKind::Regular
            || t.kind != FileKind::Regular
            || (md.size, md.mode, md.uid, md.gid) != (t.size, t.mode, t.uid, t.gid)
        {
            return false;
        }
        let (Ok(mut a), Ok(mut b)) = (
            self.source.open(&self.phys(path)),
            self.source.open(&self.phys(target)),
        ) else {
            return false;
        };
        let mut left = md.size;
        let (mut x, mut y) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
        while left > 0 {
            let n = left.min(x.len() as u64) as usize;
            if a.read_exact(&mut x[..n]).is_err() || b.read_exact(&mut y[..n]).is_err() {
                return false;
            }
            if x[..n] != y[..n] {
                return false;
            }
            left -= n as u64;
        }
        true
    }

    /// `.wh.<x>` in directory `dir`.
    pub(super) fn whiteout(&mut self, path: &[u8], dir: &[u8], x: &[u8], h: &TarHeader) {
        let target = join(dir, x);
        self.list(path, LISTED);
        self.list(&target, WHITED_OUT);
        let Some(marker) = self.lstat(path) else {
            return;
        };
        let Some(tmd) = self.lstat(&target) else {
            return;
        };
        if self.snapshot {
            if let Some(t) = tmd {
                self.push(
                    &target,
                    AuditKind::WhiteoutRemoved,
                    format!("deleted by whiteout {}", show_bytes(path)),
                    show_kind(&t),
                );
            }
            if let Some(m) = marker {
                self.push(
                    path,
                    AuditKind::Added,
                    "nothing (a whiteout is applied, not kept)".into(),
                    show_kind(&m),
                );
            }
            return;
        }
        match (marker, tmd) {
            // aufs / fuse-overlayfs image layers: the marker file as in the tar.
            (Some(m), _) if m.kind == FileKind::Regular => {
                let e = self.expect(h, true);
                self.compare_attrs(path, &e, &m);
            }
            // overlay: char 0/0 at the whited-out name, owner from the header.
            (_, Some(t)) if t.is_overlay_whiteout() => {
                let e = Expect {
                    perm: None,
                    mtime: None,
                    ..self.expect(h, true)
                };
                self.compare_attrs(&target, &e, &t);
            }
            (m, t) => {
                let found = match (m, t) {
                    (Some(m), _) => format!("{} at {}", show_kind(&m), show_bytes(path)),
                    (None, Some(t)) => format!("{} at {}", show_kind(&t), show_bytes(&target)),
                    (None, None) => "nothing".into(),
                };
                self.push(
                    &target,
                    AuditKind::WhiteoutRemoved,
                    format!(
                        "a whiteout (char 0/0 {} or file {})",
                        show_bytes(&target),
                        show_bytes(path)
                    ),
                    found,
                );
            }
        }
    }

    /// `.wh..wh..opq` in directory `dir`.
    pub(super) fn opaque(&mut self, path: &[u8], dir: &[u8], h: &TarHeader) {
        self.list(path, LISTED);
        self.list(dir, OPAQUE);
        if self.snapshot {
            if let Some(Some(m)) = self.lstat(path) {
                self.push(
                    path,
                    AuditKind::Added,
                    "nothing (an opaque marker is applied, not kept)".into(),
                    show_kind(&m),
                );
            }
            return;
        }
        let Some(marker) = self.lstat(path) else {
            return;
        };
        if let Some(m) = marker {
            if m.kind == FileKind::Regular {
                let e = self.expect(h, true);
                return self.compare_attrs(path, &e, &m);
            }
        }
        let xattr = self
            .source
            .xattr(&self.phys(dir), "trusted.overlay.opaque")
            .ok()
            .flatten();
        self.report.stats.xattr(true, xattr.is_some());
        if xattr.as_deref() != Some(b"y") {
            self.push(
                dir,
                AuditKind::OpaqueRemoved,
                format!(
                    "opaque (trusted.overlay.opaque=y or file {})",
                    show_bytes(path)
                ),
                match xattr {
                    Some(v) => format!("trusted.overlay.opaque={}", show_bytes(&v)),
                    None => "not opaque".into(),
                },
            );
        }
    }

    pub(super) fn header(&mut self, fh: FileHeader) {
        self.report.entries += 1;
        self.entry_crc = fh.crc;
        let h = match fh.header {
            Ok(h) => h,
            Err(why) => {
                let name = clean(&fh.entry_name);
                self.list(&name, LISTED);
                return self.push(
                    &name,
                    AuditKind::HeaderUnreadable,
                    "a tar header".into(),
                    why.reason,
                );
            }
        };
        if matches!(h.typeflag, b'g' | b'x' | b'L' | b'K') {
            return;
        }
        self.report.stats.recorded_mtime(h.mtime);
        let path = clean(&h.name);
        if path.is_empty() {
            return; // the root entry: skipped by the engine
        }
        let (dir, base) = split_parent(&path);
        if base == b".wh..wh..opq" {
            let dir = dir.to_vec();
            return self.opaque(&path, &dir, &h);
        }
        if base.starts_with(b".wh..wh.") {
            return self.list(&path, LISTED); // AUFS metadata: not extracted as such
        }
        if let Some(x) = base.strip_prefix(b".wh.") {
            let (dir, x) = (dir.to_vec(), x.to_vec());
            return self.whiteout(&path, &dir, &x, &h);
        }
        self.entry(&path, &h);
    }

    pub(super) fn finish_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        let mut items: Vec<_> = deferred.into_values().collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, e) in items {
            if let Some(Some(md)) = self.lstat(&path) {
                self.compare_attrs(&path, &e, &md);
            }
        }
    }
}
