//! A layer *as found*: the tar of a layer directory as the disk holds it now, in the order of
//! the layer's recorded tar-split, for `extract --force`.
//!
//! [`write_as_found`] walks the tar-split's file entries in order and emits each one from
//! the directory's current state:
//! * an entry whose file is gone from the disk is left out;
//! * an entry the disk agrees with keeps its recorded header (name, mode, owner, times,
//!   names, xattrs), re-encoded with Go `archive/tar` rules, and the file's current bytes;
//! * where the disk disagrees on size, permission bits, owner, link target or device
//!   numbers, the header carries the disk's value; where the file type changed, the entry
//!   is written from the disk alone (as `docker commit` would);
//! * whiteouts are emitted as the disk holds them (overlay char 0/0 devices and opaque
//!   xattrs, aufs `.wh.` files);
//! * then every entry present in the directory but not in the tar-split (a *planted* file)
//!   is appended, in path order, as `docker commit` would write it.
//!
//! Modification times stay as recorded: a copy of the evidence changes them, and the
//! metadata audit reports them. Every difference is listed in the [`AsFoundReport`].

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;

use salvor_source::{FileKind, Metadata};
use salvor_tarsplit::{HeaderIter, TarHeader, TarSplitError};

use crate::archive::Appender;
use crate::gotar::{self, GoTarWriter, Header};
use crate::view::{join, WH_META_PREFIX, WH_OPAQUE, WH_PREFIX};
use crate::{raw_children, too_deep, LayerDir, TarNames, WhiteoutError, WhiteoutStyle};

/// Differences listed in full; the counts in [`AsFoundReport`] are always complete.
pub const MAX_LISTED: usize = 10_000;

/// How one entry of the as-found tar differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AsFoundKind {
    /// Recorded, not on the disk: left out.
    Missing,
    /// On the disk, not recorded: appended.
    Planted,
    /// The file's size differs (its current bytes are written).
    Size {
        /// Size the tar-split records, in bytes.
        recorded: u64,
        /// Size of the file on the disk, in bytes.
        found: u64,
    },
    /// Permission bits (with setuid/setgid/sticky) differ.
    Mode {
        /// Permission bits the tar-split records.
        recorded: u32,
        /// Permission bits on the disk.
        found: u32,
    },
    /// Owner or group differ.
    Owner {
        /// (uid, gid) the tar-split records.
        recorded: (i64, i64),
        /// (uid, gid) on the disk.
        found: (u32, u32),
    },
    /// A symlink's target (or a hard link's partner) differs.
    LinkTarget {
        /// The link name the tar-split records (lossy UTF-8).
        recorded: String,
        /// The link target (or partner) on the disk (lossy UTF-8).
        found: String,
    },
    /// Device numbers differ.
    Device {
        /// (major, minor) the tar-split records.
        recorded: (i64, i64),
        /// (major, minor) on the disk.
        found: (u32, u32),
    },
    /// The type differs (a file replaced by a directory, a symlink …): written from the disk.
    Type {
        /// The kind the tar-split records ("regular file", "directory", …).
        recorded: String,
        /// The kind on the disk.
        found: String,
    },
    /// A snapshot layer (vfs, btrfs, zfs …) lost a file its parent holds, and the tar-split
    /// records no whiteout for it: a whiteout is written, as the engine's naive diff would.
    Deleted,
    /// The entry could not be read; left out.
    Unreadable {
        /// Why, with the error's causes.
        detail: String,
    },
}

/// One difference of the as-found layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AsFoundChange {
    /// The entry's name (lossy UTF-8).
    pub path: String,
    /// What differs.
    #[serde(flatten)]
    pub kind: AsFoundKind,
}

/// What [`write_as_found`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AsFoundReport {
    /// `sha256:<hex>` of the tar written: the as-found layer's diff_id.
    pub digest: String,
    /// Bytes written.
    pub size: u64,
    /// Entries written.
    pub entries: u64,
    /// Recorded entries left out because they are gone from the disk (or unreadable).
    pub missing: u64,
    /// Entries appended because they are on the disk and not recorded.
    pub planted: u64,
    /// Recorded entries written with a header the disk changed.
    pub rewritten: u64,
    /// The differences, in stream order (at most [`MAX_LISTED`]).
    pub changes: Vec<AsFoundChange>,
}

impl AsFoundReport {
    fn note(&mut self, name: &[u8], kind: AsFoundKind) {
        if self.changes.len() < MAX_LISTED {
            self.changes.push(AsFoundChange {
                path: String::from_utf8_lossy(name).into_owned(),
                kind,
            });
        }
    }
}

/// Errors of [`write_as_found`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsFoundError {
    /// The tar-split cannot be read any further.
    #[error("tar-split")]
    TarSplit(#[from] TarSplitError),
    /// Reading the layer directory or writing the tar failed.
    #[error(transparent)]
    Layer(#[from] WhiteoutError),
}

use salvor_tarsplit::rooted_clean as clean;

fn split_dir(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&c| c == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&rel[..0], rel),
    }
}

fn kind_of_typeflag(t: u8) -> Option<FileKind> {
    Some(match t {
        b'0' | b'7' | 0 | b'S' => FileKind::Regular,
        b'2' => FileKind::Symlink,
        b'3' => FileKind::CharDevice,
        b'4' => FileKind::BlockDevice,
        b'5' => FileKind::Dir,
        b'6' => FileKind::Fifo,
        _ => return None,
    })
}

fn recorded_header(h: &TarHeader) -> Header {
    Header {
        name: h.name.clone(),
        linkname: h.linkname.clone(),
        typeflag: if h.typeflag == 0 || h.typeflag == b'7' || h.typeflag == b'S' {
            gotar::TYPE_REG
        } else {
            h.typeflag
        },
        mode: h.mode,
        uid: h.uid,
        gid: h.gid,
        size: h.size,
        mtime: Some(h.mtime),
        uname: h.uname.clone(),
        gname: h.gname.clone(),
        devmajor: h.devmajor,
        devminor: h.devminor,
        xattrs: h.xattrs().into_iter().collect(),
    }
}

struct Writer<'w, 'n, 'l> {
    app: Appender<'w, 'n>,
    layer: &'l LayerDir<'l>,
    /// A snapshot layer's parent snapshot (what "unrecorded" is measured against).
    parent: Option<&'l LayerDir<'l>>,
    report: AsFoundReport,
    /// Cleaned paths (relative to the layer root) the tar-split accounts for.
    recorded: HashSet<Vec<u8>>,
    /// The current entry's raw header blocks.
    raw: Vec<u8>,
}

impl Writer<'_, '_, '_> {
    /// The recorded header: its raw blocks verbatim when there are any (byte-exact for an
    /// entry the disk agrees with, whatever tar wrote it), else re-encoded.
    fn recorded(&mut self, h: &TarHeader, rel: &[u8]) -> Result<(), WhiteoutError> {
        let data = match h.typeflag {
            b'0' | b'7' | 0 => u64::try_from(h.size).unwrap_or(0),
            _ => 0,
        };
        if !self.raw.is_empty() && self.raw.len().is_multiple_of(gotar::BLOCK) && h.typeflag != b'S'
        {
            let raw = std::mem::take(&mut self.raw);
            self.app
                .tw
                .write_raw_header(&raw, data)
                .map_err(WhiteoutError::Output)?;
            self.report.entries += 1;
            return Ok(());
        }
        self.header(&recorded_header(h), rel)
    }

    fn header(&mut self, h: &Header, rel: &[u8]) -> Result<(), WhiteoutError> {
        self.app
            .tw
            .write_header(h, true)
            .map_err(|reason| WhiteoutError::Tar {
                path: self.layer.path(rel).display().to_string(),
                reason,
            })?;
        self.report.entries += 1;
        Ok(())
    }

    fn data(&mut self, rel: &[u8], size: u64) -> Result<(), WhiteoutError> {
        let p = self.layer.path(rel);
        let mut f = self.layer.source.open(&p)?;
        let mut limited = (&mut f as &mut dyn Read).take(size);
        self.app
            .tw
            .write_data(&mut limited, size)
            .map_err(|e| WhiteoutError::Read { path: p, source: e })
    }

    fn lstat(&mut self, name: &[u8], rel: &[u8]) -> Option<Metadata> {
        match self.layer.lstat(rel) {
            Ok(Some(md)) => Some(md),
            Ok(None) => {
                self.report.missing += 1;
                self.report.note(name, AsFoundKind::Missing);
                None
            }
            Err(e) => {
                self.report.missing += 1;
                self.report.note(
                    name,
                    AsFoundKind::Unreadable {
                        detail: salvor_source::error_chain(&e),
                    },
                );
                None
            }
        }
    }

    /// A recorded whiteout or opaque marker, when the disk holds it in another form.
    /// Returns `None` when the entry is not such a marker for this layer's style.
    fn marker(&mut self, h: &TarHeader, rel: &[u8]) -> Option<Result<(), WhiteoutError>> {
        let (dir, base) = split_dir(rel);
        if self.layer.style == WhiteoutStyle::Snapshot {
            // A snapshot holds no markers: a whiteout stands for the name's absence.
            let target = base.strip_prefix(WH_PREFIX)?;
            if base.starts_with(WH_META_PREFIX) {
                let dir_there = matches!(self.layer.lstat(dir), Ok(Some(md)) if md.is_dir());
                if base == WH_OPAQUE && (dir.is_empty() || dir_there) {
                    return Some(self.recorded(h, rel));
                }
                return None;
            }
            let target_rel = if dir.is_empty() {
                target.to_vec()
            } else {
                join(dir, target)
            };
            self.recorded.insert(target_rel.clone());
            return match self.layer.lstat(&target_rel) {
                Ok(None) => Some(self.recorded(h, rel)),
                _ => {
                    // The name is back: no whiteout; its entry comes from the snapshot below.
                    self.recorded.remove(&target_rel);
                    self.report.missing += 1;
                    self.report.note(&h.name, AsFoundKind::Missing);
                    Some(Ok(()))
                }
            };
        }
        if self.layer.style != WhiteoutStyle::Overlay {
            return None;
        }
        if base == WH_OPAQUE {
            let on_disk = self.layer.opaque_xattr(dir).unwrap_or_default();
            if on_disk {
                return Some(self.recorded(h, rel));
            }
            self.report.missing += 1;
            self.report.note(&h.name, AsFoundKind::Missing);
            return Some(Ok(()));
        }
        let target = base.strip_prefix(WH_PREFIX)?;
        if base.starts_with(WH_META_PREFIX) {
            return None;
        }
        let target_rel = if dir.is_empty() {
            target.to_vec()
        } else {
            join(dir, target)
        };
        match self.layer.lstat(&target_rel) {
            Ok(Some(md)) if md.is_overlay_whiteout() => {
                self.recorded.insert(target_rel);
                Some(self.recorded(h, rel))
            }
            _ => {
                self.report.missing += 1;
                self.report.note(&h.name, AsFoundKind::Missing);
                Some(Ok(()))
            }
        }
    }

    fn recorded_entry(&mut self, h: &TarHeader) -> Result<(), WhiteoutError> {
        let rel = clean(&h.name);
        if rel.is_empty() {
            return Ok(()); // "./": the layer root itself is never an entry on disk.
        }
        if !self.recorded.insert(rel.clone()) {
            // A name listed again (Docker never registers such a layer): the disk holds one
            // file under it, written once; repeating it would amplify the evidence.
            return Ok(());
        }
        if let Some(r) = self.marker(h, &rel) {
            return r;
        }
        let Some(md) = self.lstat(&h.name, &rel) else {
            return Ok(());
        };
        if h.typeflag == gotar::TYPE_LINK {
            let target = clean(&h.linkname);
            let same = md.kind == FileKind::Regular
                && matches!(self.layer.lstat(&target), Ok(Some(t)) if t.dev == md.dev && t.ino == md.ino);
            if same {
                return self.recorded(h, &rel);
            }
            self.report.rewritten += 1;
            self.report.note(
                &h.name,
                AsFoundKind::LinkTarget {
                    recorded: String::from_utf8_lossy(&h.linkname).into_owned(),
                    found: "(not the same file)".into(),
                },
            );
            return self.disk_entry(h, &rel, &md);
        }
        let Some(kind) = kind_of_typeflag(h.typeflag) else {
            return self.disk_entry(h, &rel, &md);
        };
        if kind != md.kind {
            self.report.rewritten += 1;
            self.report.note(
                &h.name,
                AsFoundKind::Type {
                    recorded: kind.to_string(),
                    found: md.kind.to_string(),
                },
            );
            return self.disk_entry(h, &rel, &md);
        }
        let mut out = recorded_header(h);
        let mut changed = false;
        let perm = md.mode & 0o7777;
        if h.perm() != perm {
            out.mode = (h.mode & !0o7777) | i64::from(perm);
            self.report.note(
                &h.name,
                AsFoundKind::Mode {
                    recorded: h.perm(),
                    found: perm,
                },
            );
            changed = true;
        }
        if h.uid != i64::from(md.uid) || h.gid != i64::from(md.gid) {
            out.uid = i64::from(md.uid);
            out.gid = i64::from(md.gid);
            self.report.note(
                &h.name,
                AsFoundKind::Owner {
                    recorded: (h.uid, h.gid),
                    found: (md.uid, md.gid),
                },
            );
            changed = true;
        }
        match md.kind {
            FileKind::Regular => {
                let recorded = u64::try_from(h.size).unwrap_or(0);
                if recorded != md.size {
                    self.report.note(
                        &h.name,
                        AsFoundKind::Size {
                            recorded,
                            found: md.size,
                        },
                    );
                    changed = true;
                }
                out.size = i64::try_from(md.size).unwrap_or(i64::MAX);
            }
            FileKind::Symlink => {
                let link = self
                    .layer
                    .source
                    .read_link(&self.layer.path(&rel))?
                    .as_os_str()
                    .as_bytes()
                    .to_vec();
                if link != h.linkname {
                    self.report.note(
                        &h.name,
                        AsFoundKind::LinkTarget {
                            recorded: String::from_utf8_lossy(&h.linkname).into_owned(),
                            found: String::from_utf8_lossy(&link).into_owned(),
                        },
                    );
                    out.linkname = link;
                    changed = true;
                }
                out.size = 0;
            }
            FileKind::CharDevice | FileKind::BlockDevice => {
                let found = (md.rdev_major, md.rdev_minor);
                if (h.devmajor, h.devminor) != (i64::from(found.0), i64::from(found.1)) {
                    self.report.note(
                        &h.name,
                        AsFoundKind::Device {
                            recorded: (h.devmajor, h.devminor),
                            found,
                        },
                    );
                    out.devmajor = i64::from(found.0);
                    out.devminor = i64::from(found.1);
                    changed = true;
                }
                out.size = 0;
            }
            _ => out.size = 0,
        }
        if changed {
            self.report.rewritten += 1;
            self.header(&out, &rel)?;
        } else {
            self.recorded(h, &rel)?;
        }
        if md.kind == FileKind::Regular && md.size > 0 {
            self.data(&rel, md.size)?;
        }
        Ok(())
    }

    /// The entry written from the disk alone, under its recorded name.
    fn disk_entry(
        &mut self,
        h: &TarHeader,
        rel: &[u8],
        md: &Metadata,
    ) -> Result<(), WhiteoutError> {
        let mut name = h.name.clone();
        while name.len() > 1 && name.last() == Some(&b'/') {
            name.pop();
        }
        let before = self.app.tw.written();
        self.app.add(self.layer, rel, &name, md)?;
        if self.app.tw.written() != before {
            self.report.entries += 1;
        }
        Ok(())
    }

    /// A snapshot layer's unrecorded changes over its parent snapshot (the engine's naive
    /// diff): added or changed entries appended from the snapshot, deletions as whiteouts.
    fn planted_in_snapshot(&mut self, parent: &LayerDir) -> Result<(), WhiteoutError> {
        let layer = self.layer;
        for c in crate::changes(layer, &[*parent])? {
            let rel = c.path.strip_prefix(b"/").unwrap_or(&c.path).to_vec();
            if rel.is_empty() || self.recorded.contains(&rel) {
                continue;
            }
            if c.kind == crate::ChangeKind::Deleted {
                self.report.planted += 1;
                self.report.note(&rel, AsFoundKind::Deleted);
                self.app.add_whiteout(&rel, 0)?;
                self.report.entries += 1;
                continue;
            }
            let Some(md) = layer.lstat(&rel)? else {
                continue;
            };
            self.report.planted += 1;
            self.report.note(&rel, AsFoundKind::Planted);
            let before = self.app.tw.written();
            self.app.add(layer, &rel, &rel, &md)?;
            if self.app.tw.written() != before {
                self.report.entries += 1;
            }
        }
        Ok(())
    }

    fn planted(&mut self) -> Result<(), WhiteoutError> {
        let layer = self.layer;
        if layer.style == WhiteoutStyle::Snapshot {
            if let Some(parent) = self.parent {
                return self.planted_in_snapshot(parent);
            }
        }
        let overlay = layer.style == WhiteoutStyle::Overlay;
        let mut stack = vec![(Vec::new(), raw_children(layer, b"")?.into_iter())];
        while let Some((dir, it)) = stack.last_mut() {
            let Some((name, kind)) = it.next() else {
                stack.pop();
                continue;
            };
            let rel = join(dir, &name);
            if !overlay && dir.is_empty() && name.starts_with(WH_META_PREFIX) && name != WH_OPAQUE {
                continue; // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs, .wh..wh.orph)
            }
            if !self.recorded.contains(&rel) {
                self.report.planted += 1;
                self.report.note(&rel, AsFoundKind::Planted);
                let md = layer.source.metadata(&layer.path(&rel))?;
                let before = self.app.tw.written();
                self.app.add(layer, &rel, &rel, &md)?;
                if self.app.tw.written() != before {
                    self.report.entries += 1;
                }
            }
            if kind == FileKind::Dir {
                too_deep(layer, &rel)?;
                let ch = raw_children(layer, &rel)?;
                stack.push((rel, ch.into_iter()));
            }
        }
        Ok(())
    }
}

/// Writes the layer as found (see the module documentation) into `out`: the tar-split's
/// entries in order from the disk's current state, then the planted entries.
/// `layer` is the layer's own directory (an overlay2 `diff/`, an aufs `diff/<id>`, a
/// snapshot); for a snapshot, `parent` is the parent layer's snapshot (what the layer's
/// unrecorded changes are measured against; `None` for a base layer: everything unrecorded
/// is planted). `names` gives the user and group names of planted entries.
pub fn write_as_found<I: Iterator<Item = Result<salvor_tarsplit::Entry, TarSplitError>>>(
    recorded: &mut HeaderIter<I>,
    layer: &LayerDir,
    parent: Option<&LayerDir>,
    names: &TarNames,
    out: &mut dyn Write,
) -> Result<AsFoundReport, AsFoundError> {
    // Planted entries: headers as the engine's own Diff would write them (the recorded
    // entries keep their recorded header fields).
    let rules = crate::HeaderRules::docker_20_10(names.clone());
    let mut w = Writer {
        app: Appender {
            tw: GoTarWriter::new(out),
            rules: &rules,
            seen: Default::default(),
            overlay_converter: layer.style == WhiteoutStyle::Overlay,
        },
        layer,
        parent,
        report: AsFoundReport::default(),
        recorded: HashSet::new(),
        raw: Vec::new(),
    };
    for fh in recorded.by_ref() {
        let fh = fh?;
        w.raw = fh.raw_header;
        match &fh.header {
            Ok(h) => w.recorded_entry(h)?,
            Err(_) => {
                // No usable recorded header: the entry as the disk holds it, if it does.
                let rel = clean(&fh.entry_name);
                if rel.is_empty() {
                    continue;
                }
                if !w.recorded.insert(rel.clone()) {
                    continue;
                }
                if let Some(md) = w.lstat(&fh.entry_name, &rel) {
                    let h = TarHeader {
                        name: fh.entry_name.clone(),
                        ..TarHeader::default()
                    };
                    w.disk_entry(&h, &rel, &md)?;
                }
            }
        }
    }
    w.raw.clear();
    w.planted()?;
    let mut report = w.report;
    let (digest, size) = match recorded.trailer() {
        Some(t) => w.app.tw.finish_with(t),
        None => w.app.tw.finish(),
    }
    .map_err(WhiteoutError::Output)?;
    report.digest = digest;
    report.size = size;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn names_clean_inside_the_root() {
        assert_eq!(clean(b"./etc/passwd"), b"etc/passwd");
        assert_eq!(clean(b"/etc/"), b"etc");
        assert_eq!(clean(b"../../etc/shadow"), b"etc/shadow");
        assert_eq!(clean(b"./"), b"");
    }
}
