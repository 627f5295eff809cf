//! The engine's `addTarFile` (moby `pkg/archive`, Docker 20.10 semantics, which are also
//! today's apart from user-name lookups): one filesystem entry → one tar header (+ data).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;

use salvor_source::{FileKind, Metadata};

use crate::gotar::{self, GoTarWriter, Header};
use crate::view::{join, WH_OPAQUE, WH_PREFIX};
use crate::{HeaderRules, LayerDir, ModeBits, WhiteoutError};

const S_IFIFO: i64 = 0o010000;
const S_IFCHR: i64 = 0o020000;
const S_IFDIR: i64 = 0o040000;
const S_IFBLK: i64 = 0o060000;
const S_IFREG: i64 = 0o100000;
const S_IFLNK: i64 = 0o120000;
const S_IFSOCK: i64 = 0o140000;

/// `st_mode` (type bits | permission bits) of a metadata record.
pub(crate) fn st_mode(md: &Metadata) -> i64 {
    let t = match md.kind {
        FileKind::Regular => S_IFREG,
        FileKind::Dir => S_IFDIR,
        FileKind::Symlink => S_IFLNK,
        FileKind::CharDevice => S_IFCHR,
        FileKind::BlockDevice => S_IFBLK,
        FileKind::Fifo => S_IFIFO,
        FileKind::Socket => S_IFSOCK,
    };
    t | i64::from(md.mode & 0o7777)
}

/// Identity of an inode for hard-link detection: the source object, its device and inode.
pub(crate) type InodeKey = (usize, u64, u64);

pub(crate) fn inode_key(layer: &LayerDir, md: &Metadata) -> InodeKey {
    (
        layer.source as *const dyn salvor_source::Source as *const () as usize,
        md.dev,
        md.ino,
    )
}

/// State shared by all entries of one archive (`tarAppender`).
pub(crate) struct Appender<'w, 'n> {
    pub tw: GoTarWriter<'w>,
    pub rules: &'n HeaderRules,
    /// `SeenFiles`: (filesystem, inode) → name of its first occurrence. The filesystem
    /// index keeps a mount's inode numbers from ever pairing with the layers' (or another
    /// mount's): 0 = the layers' merged view, `1 + i` = mount `i`.
    pub seen: HashMap<(usize, InodeKey), Vec<u8>>,
    /// Convert overlay whiteouts / opaque dirs to AUFS form (native overlay diff).
    pub overlay_converter: bool,
}

impl Appender<'_, '_> {
    /// Adds the entry at `rel` of `layer` under the tar name `name` (no trailing slash).
    pub fn add(
        &mut self,
        layer: &LayerDir,
        rel: &[u8],
        name: &[u8],
        md: &Metadata,
    ) -> Result<(), WhiteoutError> {
        self.add_in(0, layer, rel, name, md)
    }

    /// [`Appender::add`] for an entry of filesystem `fs` (hard links pair only within one
    /// filesystem).
    pub fn add_in(
        &mut self,
        fs: usize,
        layer: &LayerDir,
        rel: &[u8],
        name: &[u8],
        md: &Metadata,
    ) -> Result<(), WhiteoutError> {
        let typeflag = match md.kind {
            FileKind::Regular => gotar::TYPE_REG,
            FileKind::Dir => gotar::TYPE_DIR,
            FileKind::Symlink => gotar::TYPE_SYMLINK,
            FileKind::CharDevice => gotar::TYPE_CHAR,
            FileKind::BlockDevice => gotar::TYPE_BLOCK,
            FileKind::Fifo => gotar::TYPE_FIFO,
            // tar.FileInfoHeader: "sockets not supported"; the engine logs and skips it.
            FileKind::Socket => return Ok(()),
        };
        let linkname = if md.kind == FileKind::Symlink {
            layer
                .source
                .read_link(&layer.path(rel))?
                .as_os_str()
                .as_bytes()
                .to_vec()
        } else {
            Vec::new()
        };
        let mut tar_name = name.to_vec();
        if md.kind == FileKind::Dir {
            tar_name.push(b'/');
        }
        let mut h = Header {
            name: tar_name,
            linkname,
            typeflag,
            mode: match self.rules.mode {
                ModeBits::WithFileType => st_mode(md),
                ModeBits::Permissions => i64::from(md.mode & 0o7777),
            },
            uid: i64::from(md.uid),
            gid: i64::from(md.gid),
            size: if md.kind == FileKind::Regular {
                md.size as i64
            } else {
                0
            },
            // ModTime.Truncate(time.Second); `sec` is the floor for normalised times.
            mtime: Some(md.mtime.sec),
            uname: self.rules.names.user(md.uid).into(),
            gname: self.rules.names.group(md.gid).into(),
            devmajor: 0,
            devminor: 0,
            xattrs: BTreeMap::new(),
        };
        if matches!(md.kind, FileKind::CharDevice | FileKind::BlockDevice) {
            h.devmajor = i64::from(md.rdev_major);
            h.devminor = i64::from(md.rdev_minor);
        }
        // ReadSecurityXattrToTarHeader: only security.capability, v3 -> v2 (20 bytes).
        if let Some(mut cap) = layer.xattr(rel, "security.capability")? {
            if cap.len() >= 20 && cap[3] == 3 {
                cap[3] = 2;
                cap.truncate(20);
            }
            h.xattrs.insert(b"security.capability".to_vec(), cap);
        }
        // fuse-overlayfs reports per-node link counts that do not pair names of one lower
        // inode (observed on the fixtures: `docker export` writes every name as a file).
        if md.kind != FileKind::Dir
            && md.nlink > 1
            && layer.style != crate::WhiteoutStyle::FuseOverlayfs
        {
            let key = (fs, inode_key(layer, md));
            if let Some(first) = self.seen.get(&key) {
                h.typeflag = gotar::TYPE_LINK;
                h.linkname = first.clone();
                h.size = 0;
            } else {
                self.seen.insert(key, name.to_vec());
            }
        }
        let mut opaque_wo = None;
        if self.overlay_converter {
            if md.is_overlay_whiteout() {
                let (dir, base) = match name.iter().rposition(|&c| c == b'/') {
                    Some(i) => (&name[..=i], &name[i + 1..]),
                    None => (&name[..0], name),
                };
                let mut n = dir.to_vec();
                n.extend_from_slice(WH_PREFIX);
                n.extend_from_slice(base);
                h.name = n;
                h.mode = 0o600;
                h.typeflag = gotar::TYPE_REG;
                h.size = 0;
            }
            if md.kind == FileKind::Dir && layer.opaque_xattr(rel)? {
                opaque_wo = Some(Header {
                    name: join(name, WH_OPAQUE),
                    typeflag: gotar::TYPE_REG,
                    mode: h.mode & 0o777,
                    uid: h.uid,
                    gid: h.gid,
                    uname: h.uname.clone(),
                    gname: h.gname.clone(),
                    mtime: None,
                    ..Header::default()
                });
            }
        }
        self.write(&h, true, layer, rel)?;
        if let Some(wo) = opaque_wo {
            self.write(&wo, false, layer, rel)?;
        }
        Ok(())
    }

    /// A directory that exists in no filesystem: a missing parent of a mount point, as
    /// the engine / runc would `mkdir` it (mode 0755, uid/gid 0, mtime 0, no xattrs).
    pub fn add_synth_dir(&mut self, name: &[u8]) -> Result<(), WhiteoutError> {
        let mut n = name.to_vec();
        n.push(b'/');
        let h = Header {
            name: n,
            typeflag: gotar::TYPE_DIR,
            mode: match self.rules.mode {
                ModeBits::WithFileType => S_IFDIR | 0o755,
                ModeBits::Permissions => 0o755,
            },
            mtime: Some(0),
            uname: self.rules.names.user(0).into(),
            gname: self.rules.names.group(0).into(),
            ..Header::default()
        };
        self.tw
            .write_header(&h, true)
            .map_err(|reason| WhiteoutError::Tar {
                path: String::from_utf8_lossy(name).into_owned(),
                reason,
            })
    }

    /// A synthesised whiteout of `ExportChanges` (mode 0, owner 0, FormatUnknown).
    pub fn add_whiteout(&mut self, path: &[u8], mtime: i64) -> Result<(), WhiteoutError> {
        let (dir, base) = match path.iter().rposition(|&c| c == b'/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => (&path[..0], path),
        };
        let mut n = dir.to_vec();
        n.extend_from_slice(WH_PREFIX);
        n.extend_from_slice(base);
        let h = Header {
            name: n,
            typeflag: gotar::TYPE_REG,
            mtime: Some(mtime),
            ..Header::default()
        };
        self.tw
            .write_header(&h, false)
            .map_err(|reason| WhiteoutError::Tar {
                path: String::from_utf8_lossy(path).into_owned(),
                reason,
            })
    }

    fn write(
        &mut self,
        h: &Header,
        pax: bool,
        layer: &LayerDir,
        rel: &[u8],
    ) -> Result<(), WhiteoutError> {
        // A failed write is the archive's (WhiteoutError::Output), never the file read's.
        if let Err(reason) = self.tw.write_header(h, pax) {
            return Err(match self.tw.write_error() {
                Some(e) => WhiteoutError::Output(e),
                None => WhiteoutError::Tar {
                    path: layer.path(rel).display().to_string(),
                    reason,
                },
            });
        }
        if h.typeflag == gotar::TYPE_REG && h.size > 0 {
            let p = layer.path(rel);
            let mut f = layer.source.open(&p)?;
            if let Err(e) = self.tw.write_data(&mut f, h.size as u64) {
                return Err(match self.tw.write_error() {
                    Some(w) => WhiteoutError::Output(w),
                    None => WhiteoutError::Read { path: p, source: e },
                });
            }
        }
        Ok(())
    }
}
