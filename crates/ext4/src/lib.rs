//! A read-only ext2/ext3/ext4 reader that implements [`salvor_source::Source`] over a
//! [`BlockDevice`], for reading a dead Docker host's disk without mounting it.
//!
//! # Principal types
//!
//! * [`Ext4`]: an opened filesystem. [`Ext4::open`] reads the superblock and the block
//!   group descriptors, and, when the filesystem was not cleanly unmounted
//!   (`needs_recovery`), replays the jbd2 journal **in memory** (see below). It is an
//!   [`InodeSource`] over [`Ext4Fs`]: the skeleton shared with `salvor-xfs` answers the
//!   [`Source`](salvor_source::Source) calls (`metadata` = lstat, `read_dir`, `open`,
//!   `read_link`, `xattrs`) with the path rules of `salvor-source`: paths are normalised, `..` is
//!   [`SourceError::Escape`], a symlink in an intermediate component is
//!   [`SourceError::SymlinkInPath`], and only regular files are opened.
//! * [`Ext4Report`]: what was found while opening and reading: features, geometry,
//!   clean/needs_recovery, the [`JournalStatus`], checksum failures and warnings.
//! * [`Ext4Error`]: errors from opening; errors from the `Source` calls are
//!   [`SourceError`]s naming the path (and the inode or block at fault).
//!
//! # Example
//!
//! Open the committed test filesystem (`fixtures/disk/fs.img.zst`, 6 MiB of ext4) and
//! read a file:
//!
//! ```
//! use std::io::Read;
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use salvor_ext4::Ext4;
//! use salvor_source::{FileDevice, Source};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let zst = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/disk/fs.img.zst");
//! let image = tempfile::NamedTempFile::new()?;
//! std::fs::write(image.path(), zstd::decode_all(std::fs::File::open(zst)?)?)?;
//!
//! let fs = Ext4::open(Arc::new(FileDevice::open(image.path())?))?;
//! assert_eq!(fs.report().volume_name, "salvortest");
//! let mut text = String::new();
//! fs.open(Path::new("var/lib/docker/hello.txt"))?
//!     .read_to_string(&mut text)?;
//! assert_eq!(text, "hello from salvor\n");
//! # Ok(())
//! # }
//! ```
//!
//! # Data flow
//!
//! ```text
//! BlockDevice ─► block reads (journal overlay consulted first, small metadata cache)
//!    ├─ superblock (1024 @ 1024) ─► group descriptors (32/64-byte, meta_bg) ─► inode tables
//!    ├─ inode ─► map (extent tree depth ≤ 5, unwritten → zeros; block maps with holes;
//!    │            inline data) ─► file reader (lazy, block run by block run, seekable)
//!    ├─ directory blocks (linear scan; htree index blocks skipped; inline dirs)
//!    └─ xattrs (in-inode after i_extra_isize, external block i_file_acl)
//! ```
//!
//! # Evidence handling
//!
//! * Nothing is ever written: the journal is replayed into a map *filesystem block →
//!   journal block* that every block read consults; the device is only read.
//! * `metadata_csum` checksums (superblock, group descriptors, inodes, extent blocks,
//!   directory leaf blocks, xattr blocks, journal data blocks) are verified; a mismatch
//!   is counted and reported in [`Ext4::report`], not fatal.
//! * Every offset, count and length read from disk is checked against the filesystem
//!   and the structure holding it; allocations are bounded by the filesystem's own
//!   sizes (one block, one inode, a directory's entries). Malformed input is an error
//!   naming the inode or block, never a panic.
//! * Timestamps use the epoch bits of the `_extra` fields: 1901 to 2446 are exact.
//! * Not supported (refused with a clear error): `ea_inode` xattr values, encrypted
//!   files, `compression`, `dirdata`, external journals (reported, not replayed).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use salvor_source::inode::{
    truncation_warning, BlockCache, Diagnostics, InodeFs, InodeSource, RawEntry,
};
use salvor_source::{BlockDevice, FileKind, Metadata, SourceError};

mod crc;
mod dir;
mod file;
mod inode;
mod journal;
mod map;
mod sb;
mod xattr;

use file::FileState;
use inode::Inode;
use sb::Superblock;

pub use dir::MAX_DIR_ENTRIES;
pub use journal::JournalStatus;

/// The root directory's inode number.
pub const ROOT_INO: u64 = 2;
/// Longest symlink target read (Linux' `PATH_MAX`).
pub const MAX_SYMLINK_LEN: u64 = 4096;

/// Errors from opening or reading an ext2/3/4 filesystem (one type for both readers).
pub type Ext4Error = salvor_source::inode::FsError;

pub(crate) use salvor_source::inode::corrupt;

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// What [`Ext4::report`] says about the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4Report {
    /// The device description.
    pub device: String,
    /// Volume label (`s_volume_name`), empty when none.
    pub volume_name: String,
    /// The filesystem UUID, hyphenated hex.
    pub uuid: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks in the filesystem (`s_blocks_count`).
    pub blocks_count: u64,
    /// Inodes in the filesystem (`s_inodes_count`).
    pub inodes_count: u32,
    /// On-disk inode size in bytes.
    pub inode_size: u16,
    /// Block groups.
    pub group_count: u64,
    /// Feature names as `mke2fs`/`dumpe2fs` spell them (`unknown_0x…` for unknown bits).
    pub features: Vec<String>,
    /// `s_state` says cleanly unmounted and no errors recorded.
    pub clean: bool,
    /// `s_state` records that the kernel met errors.
    pub errors_recorded: bool,
    /// The `needs_recovery` feature: the journal holds transactions not yet checkpointed.
    pub needs_recovery: bool,
    /// What happened to the journal (clean, replayed in memory, or not replayed and why).
    pub journal: JournalStatus,
    /// `metadata_csum` is on, so checksums were verified.
    pub checksums_verified: bool,
    /// Number of checksum mismatches seen so far (opening and reads).
    pub checksum_failures: u64,
    /// Problems that did not prevent reading (checksum mismatches, skipped entries…).
    pub warnings: Vec<String>,
}

/// The ext2/3/4 side of [`Ext4`]: superblock, group descriptors, journal overlay and the
/// block cache; [`InodeSource`] does the path walking.
pub struct Ext4Fs {
    dev: Arc<dyn BlockDevice>,
    pub(crate) sb: Superblock,
    /// First block of each group's inode table (0: unusable).
    inode_tables: Vec<u64>,
    /// Journal replay: filesystem block → its latest committed copy in the journal.
    overlay: BTreeMap<u64, journal::Remap>,
    cache: BlockCache,
    diag: Diagnostics,
    open_warnings: Vec<String>,
    journal_status: JournalStatus,
}

impl std::fmt::Debug for Ext4Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ext4")
            .field("device", &self.dev.describe())
            .field("block_size", &self.sb.block_size)
            .field("blocks", &self.sb.blocks_count)
            .finish_non_exhaustive()
    }
}

impl Ext4Fs {
    pub(crate) fn warn(&self, msg: String) {
        self.diag.warn(msg);
    }

    pub(crate) fn csum_failure(&self, msg: String) {
        self.diag.checksum_failure(msg);
    }

    fn bs(&self) -> u64 {
        self.sb.block_size as u64
    }

    /// Reads block `blk` (journal overlay first) into `buf` (one block long).
    pub(crate) fn read_block_into(&self, blk: u64, buf: &mut [u8]) -> Result<(), Ext4Error> {
        if blk >= self.sb.blocks_count {
            return Err(corrupt(format!(
                "block {blk} is outside the filesystem ({} blocks)",
                self.sb.blocks_count
            )));
        }
        if let Some(r) = self.overlay.get(&blk) {
            self.dev_read(r.journal_block * self.bs(), buf, blk)?;
            if r.escaped {
                buf[..4].copy_from_slice(&journal::JBD2_MAGIC.to_be_bytes());
            }
            return Ok(());
        }
        self.dev_read(blk * self.bs(), buf, blk)
    }

    fn dev_read(&self, off: u64, buf: &mut [u8], blk: u64) -> Result<(), Ext4Error> {
        self.dev.read_exact_at(off, buf).map_err(|e| Ext4Error::Io {
            what: format!("{}: block {blk}", self.dev.describe()),
            source: e,
        })
    }

    /// A metadata block, through the cache.
    pub(crate) fn read_meta_block(&self, blk: u64) -> Result<Arc<[u8]>, Ext4Error> {
        self.cache.get_or_read(blk, || {
            let mut buf = vec![0u8; self.sb.block_size as usize];
            self.read_block_into(blk, &mut buf).map(|()| buf)
        })
    }

    /// Reads `buf.len()` bytes of file data starting `off` bytes into physical block `phys`.
    fn read_data(&self, phys: u64, off: u64, buf: &mut [u8]) -> Result<(), Ext4Error> {
        let bs = self.bs();
        let start = phys * bs + off;
        let first = start / bs;
        let last = (start + buf.len() as u64 - 1) / bs;
        if last >= self.sb.blocks_count {
            return Err(corrupt(format!(
                "data block {last} is outside the filesystem"
            )));
        }
        if self.overlay.range(first..=last).next().is_none() {
            return self.dev_read(start, buf, first);
        }
        let mut tmp = vec![0u8; bs as usize];
        let mut done = 0usize;
        let mut pos = start;
        while done < buf.len() {
            let blk = pos / bs;
            let within = (pos % bs) as usize;
            self.read_block_into(blk, &mut tmp)?;
            let n = (bs as usize - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&tmp[within..within + n]);
            done += n;
            pos += n as u64;
        }
        Ok(())
    }

    pub(crate) fn inode_seed(&self, inode: &Inode) -> u32 {
        let s = crc::crc32c(self.sb.csum_seed, &(inode.ino as u32).to_le_bytes());
        crc::crc32c(s, &inode.generation.to_le_bytes())
    }

    /// Inline data of an `inline_data` inode: `i_block` then the `system.data` xattr.
    pub(crate) fn inline_data(&self, inode: &Inode) -> Result<Vec<u8>, Ext4Error> {
        let mut data = inode.block.to_vec();
        if let Some(extra) = self.ibody_system_data(inode)? {
            data.extend_from_slice(&extra);
        }
        Ok(data)
    }
}

/// An opened ext2/3/4 filesystem. See the crate documentation.
pub type Ext4 = InodeSource<Ext4Fs>;

impl Ext4Fs {}

fn check_features(sb: &Superblock, warnings: &mut Vec<String>) -> Result<(), Ext4Error> {
    if sb.incompat & sb::INCOMPAT_JOURNAL_DEV != 0 {
        return Err(Ext4Error::Unsupported(
            "this is an external journal device, not a filesystem".into(),
        ));
    }
    if sb.incompat & sb::INCOMPAT_COMPRESSION != 0 {
        return Err(Ext4Error::Unsupported("the compression feature".into()));
    }
    if sb.incompat & sb::INCOMPAT_DIRDATA != 0 {
        return Err(Ext4Error::Unsupported(
            "the dirdata feature (Lustre)".into(),
        ));
    }
    let known_incompat = 0x1
        | 0x2
        | 0x4
        | 0x8
        | 0x10
        | 0x40
        | 0x80
        | 0x100
        | 0x200
        | 0x400
        | 0x1000
        | 0x2000
        | 0x4000
        | 0x8000
        | 0x10000
        | 0x20000;
    if sb.incompat & !known_incompat != 0 {
        warnings.push(format!(
            "unknown incompatible features {:#x}: reading may be wrong",
            sb.incompat & !known_incompat
        ));
    }
    Ok(())
}

impl Ext4Fs {
    fn load_groups(&self, warnings: &mut Vec<String>) -> Result<Vec<u64>, Ext4Error> {
        let sb = &self.sb;
        let mut tables = Vec::with_capacity(sb.group_count as usize);
        let itable_blocks =
            (sb.inodes_per_group as u64 * sb.inode_size as u64).div_ceil(sb.block_size as u64);
        for g in 0..sb.group_count {
            let (blk, off) = sb.desc_location(g);
            let block = match self.read_meta_block(blk) {
                Ok(b) => b,
                Err(e) => {
                    warnings.push(format!(
                        "group {g}: descriptor unreadable: {}",
                        salvor_source::error_chain(&e)
                    ));
                    tables.push(0);
                    continue;
                }
            };
            let d = &block[off..off + sb.desc_size as usize];
            let mut table = le32(d, 0x8) as u64;
            if sb.desc_size >= 64 {
                table |= (le32(d, 0x28) as u64) << 32;
            }
            if sb.has_csum() {
                let mut copy = d.to_vec();
                copy[0x1E] = 0;
                copy[0x1F] = 0;
                let s = crc::crc32c(sb.csum_seed, &(g as u32).to_le_bytes());
                let got = crc::crc32c(s, &copy) & 0xFFFF;
                let want = le16(d, 0x1E) as u32;
                if got != want {
                    self.csum_failure(format!(
                        "group {g}: descriptor checksum {want:#06x}, computed {got:#06x}"
                    ));
                }
            }
            if table == 0 || table.saturating_add(itable_blocks) > sb.blocks_count {
                warnings.push(format!(
                    "group {g}: inode table at block {table} is outside the filesystem; its inodes are unreadable"
                ));
                table = 0;
            }
            tables.push(table);
        }
        Ok(tables)
    }
}

impl InodeFs for Ext4Fs {
    type Inode = Inode;
    type File = FileState;
    type Report = Ext4Report;

    fn open(dev: Arc<dyn BlockDevice>) -> Result<Ext4Fs, Ext4Error> {
        let mut raw = vec![0u8; 1024];
        dev.read_exact_at(1024, &mut raw)
            .map_err(|e| Ext4Error::Io {
                what: format!("{}: superblock", dev.describe()),
                source: e,
            })?;
        let sb = Superblock::parse(&raw)?;
        let mut warnings = Vec::new();
        check_features(&sb, &mut warnings)?;
        let mut csum_failures = 0u64;
        if sb.has_csum() && sb.stored_csum != sb.computed_csum {
            csum_failures += 1;
            warnings.push(format!(
                "checksum mismatch: superblock {:#010x}, computed {:#010x}",
                sb.stored_csum, sb.computed_csum
            ));
        }
        let need = sb.blocks_count.saturating_mul(sb.block_size as u64);
        warnings.extend(truncation_warning(need, dev.as_ref()));
        let mut inner = Ext4Fs {
            dev,
            sb,
            inode_tables: Vec::new(),
            overlay: BTreeMap::new(),
            cache: BlockCache::default(),
            diag: Diagnostics::with_failures(csum_failures),
            open_warnings: Vec::new(),
            journal_status: JournalStatus::None,
        };
        // Group descriptors are needed to find the journal inode.
        inner.inode_tables = inner.load_groups(&mut Vec::new())?;
        let (status, overlay) = journal::replay(&inner, &mut warnings);
        inner.journal_status = status;
        if !overlay.is_empty() {
            inner.overlay = overlay;
            inner.cache.clear();
            // The journal may hold newer copies of the superblock and descriptors.
            let mut buf = vec![0u8; 1024];
            let bs = inner.bs();
            let sb_blk = 1024 / bs;
            let mut blk = vec![0u8; bs as usize];
            if inner.read_block_into(sb_blk, &mut blk).is_ok() {
                let off = (1024 % bs) as usize;
                buf.copy_from_slice(&blk[off..off + 1024]);
                match Superblock::parse(&buf) {
                    Ok(new) if new.block_size == inner.sb.block_size => inner.sb = new,
                    Ok(_) | Err(_) => warnings.push(
                        "the journal's copy of the superblock is unusable; the on-disk one is used"
                            .into(),
                    ),
                }
            }
        }
        inner.inode_tables = inner.load_groups(&mut warnings)?;
        inner.open_warnings = warnings;
        Ok(inner)
    }
    fn describe(&self) -> String {
        format!("ext4 filesystem on {}", self.dev.describe())
    }
    fn report(&self) -> Ext4Report {
        let i = self;
        let (checksum_failures, warnings) = i.diag.snapshot(&i.open_warnings);
        Ext4Report {
            device: i.dev.describe(),
            volume_name: i.sb.volume_name.clone(),
            uuid: salvor_source::inode::uuid_string(&i.sb.uuid),
            block_size: i.sb.block_size,
            blocks_count: i.sb.blocks_count,
            inodes_count: i.sb.inodes_count,
            inode_size: i.sb.inode_size,
            group_count: i.sb.group_count,
            features: i.sb.feature_names(),
            clean: i.sb.state & 1 != 0 && i.sb.state & 2 == 0,
            errors_recorded: i.sb.state & 2 != 0,
            needs_recovery: i.sb.incompat & sb::INCOMPAT_RECOVER != 0,
            journal: i.journal_status.clone(),
            checksums_verified: i.sb.has_csum(),
            checksum_failures,
            warnings,
        }
    }
    fn open_warnings(&self) -> &[String] {
        &self.open_warnings
    }
    fn warn(&self, msg: String) {
        self.diag.warn(msg);
    }
    fn root_ino(&self) -> u64 {
        ROOT_INO
    }
    fn read_inode(&self, ino: u64) -> Result<Inode, Ext4Error> {
        if ino == 0 || ino > self.sb.inodes_count as u64 {
            return Err(corrupt(format!(
                "inode number {ino} out of range (1..={})",
                self.sb.inodes_count
            )));
        }
        let group = (ino - 1) / self.sb.inodes_per_group as u64;
        let index = (ino - 1) % self.sb.inodes_per_group as u64;
        let table = *self.inode_tables.get(group as usize).unwrap_or(&0);
        if table == 0 {
            return Err(corrupt(format!(
                "inode {ino}: the inode table of group {group} is unusable"
            )));
        }
        let isz = self.sb.inode_size as u64;
        let byte = table * self.bs() + index * isz;
        let blk = self.read_meta_block(byte / self.bs())?;
        let off = (byte % self.bs()) as usize;
        let raw = &blk[off..off + isz as usize];
        let inode = Inode::parse(
            ino,
            raw,
            self.sb.block_size,
            self.sb.ro_compat & sb::RO_COMPAT_HUGE_FILE != 0,
        )?;
        if self.sb.has_csum() {
            let mut copy = raw.to_vec();
            copy[0x7C] = 0;
            copy[0x7D] = 0;
            let has_hi = isz > 128 && le16(raw, 0x80) >= 4;
            if has_hi {
                copy[0x82] = 0;
                copy[0x83] = 0;
            }
            let got = crc::crc32c(self.inode_seed(&inode), &copy);
            let (want, got) = if has_hi {
                (le16(raw, 0x7C) as u32 | (le16(raw, 0x82) as u32) << 16, got)
            } else {
                (le16(raw, 0x7C) as u32, got & 0xFFFF)
            };
            if want != got {
                self.csum_failure(format!(
                    "inode {ino}: checksum {want:#010x}, computed {got:#010x}"
                ));
            }
        }
        Ok(inode)
    }
    fn ino(inode: &Inode) -> u64 {
        inode.ino
    }
    fn kind(inode: &Inode) -> Result<FileKind, Ext4Error> {
        inode.kind()
    }
    fn metadata(&self, inode: &Inode) -> Result<Metadata, Ext4Error> {
        let kind = inode.kind()?;
        let (rdev_major, rdev_minor) = match kind {
            FileKind::CharDevice | FileKind::BlockDevice => inode.rdev(),
            _ => (0, 0),
        };
        Ok(Metadata {
            kind,
            mode: (inode.mode & 0o7777) as u32,
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            dev: u64::from_le_bytes(self.sb.uuid[..8].try_into().unwrap_or_default()),
            ino: inode.ino,
            nlink: inode.links as u64,
            rdev_major,
            rdev_minor,
            mtime: inode.mtime,
            atime: inode.atime,
            ctime: inode.ctime,
            btime: inode.crtime,
        })
    }
    fn has_ftype(&self) -> bool {
        self.sb.incompat & sb::INCOMPAT_FILETYPE != 0
    }
    fn read_dir_raw(&self, dir: &Inode) -> Result<Vec<RawEntry>, Ext4Error> {
        Ext4Fs::read_dir_raw(self, dir)
    }
    fn open_file(&self, path: &Path, inode: Inode) -> salvor_source::Result<FileState> {
        if inode.flags & inode::FL_ENCRYPT != 0 {
            return Err(SourceError::invalid(
                path,
                format!("inode {}: the file is encrypted (fscrypt)", inode.ino),
            ));
        }
        Ok(FileState::new(inode))
    }
    fn read_file(&self, file: &mut FileState, buf: &mut [u8]) -> io::Result<usize> {
        let ino = file.inode.ino;
        file.read(self, buf).map_err(|e| e.into_io(ino, false))
    }
    fn file_position(file: &mut FileState) -> (&mut u64, u64) {
        (&mut file.pos, file.inode.size)
    }
    fn symlink_target(&self, inode: &Inode) -> Result<Vec<u8>, Ext4Error> {
        let ino = inode.ino;
        if inode.size > MAX_SYMLINK_LEN {
            return Err(corrupt(format!(
                "inode {ino}: symlink target of {} bytes (limit {MAX_SYMLINK_LEN})",
                inode.size
            )));
        }
        let size = inode.size as usize;
        if inode.flags & inode::FL_INLINE_DATA != 0 {
            let data = self.inline_data(inode)?;
            return data.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
                corrupt(format!("inode {ino}: inline symlink shorter than its size"))
            });
        }
        let ea_blocks = if inode.file_acl != 0 {
            self.bs() / 512
        } else {
            0
        };
        let fast =
            inode.blocks512 <= ea_blocks && inode.flags & inode::FL_EXTENTS == 0 && size < 60;
        if fast {
            return Ok(inode.block[..size].to_vec());
        }
        let mut f = FileState::new(inode.clone());
        let mut out = vec![0u8; size];
        let mut done = 0;
        while done < size {
            let n = f.read(self, &mut out[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(out)
    }
    fn xattrs(&self, inode: &Inode) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Ext4Error> {
        Ext4Fs::xattrs(self, inode)
    }
}
