//! A read-only reader for device-mapper thin pools (dm-thin), the storage under Docker's
//! `devicemapper` graph driver, working on copies of the pool's two devices: no kernel,
//! no `dmsetup`, no root, and nothing is ever written.
//!
//! # Principal types
//!
//! * [`ThinPool`]: an opened pool. [`ThinPool::open`] takes the **metadata** device and
//!   the **data** device (any [`BlockDevice`]: a loop file, an LVM `tmeta`/`tdata` logical
//!   volume from `salvor-disk`, a file inside an evidence [`Source`](salvor_source::Source) through
//!   [`SourceFile`]), checks the superblock and collects the thin devices.
//! * [`ThinDeviceInfo`]: one thin device: id, its device-details record
//!   ([`DeviceDetails`]: mapped blocks, transaction id, creation/snapshot times) and
//!   the root of its mapping tree.
//! * [`ThinPool::device`] / [`ThinPool::device_with_size`]: a thin device as a
//!   [`BlockDevice`] (virtual blocks that are not mapped read as zeros), ready for
//!   `salvor_ext4::Ext4::open` or an XFS reader.
//! * [`ThinPool::for_each_mapping`]: every mapping of a device in order
//!   ([`Mapping`]: virtual block → data block, time), the same list as `thin_dump`.
//! * Docker's devicemapper driver metadata (`devicemapper/metadata/*`, the loop files) is
//!   read by `salvor-docker` (`salvor_docker::devicemapper`), which opens pools through
//!   this crate.
//! * [`ThinError`]: every error names the metadata block, the device or the file at fault.
//!
//! # Example
//!
//! Open the committed pool metadata (`fixtures/dmthin/metadata.zst`, written by
//! `thin_restore`) over an all-zero data device, list its thin devices and their
//! mappings:
//!
//! ```
//! use std::sync::Arc;
//!
//! use salvor_dmthin::ThinPool;
//! use salvor_source::{BlockDevice, FileDevice};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let zst = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/dmthin/metadata.zst");
//! let meta = tempfile::NamedTempFile::new()?;
//! std::fs::write(meta.path(), zstd::decode_all(std::fs::File::open(zst)?)?)?;
//! let data = tempfile::NamedTempFile::new()?;
//! data.as_file().set_len(200 * 64 * 1024)?; // 200 data blocks of 64 KiB, sparse
//!
//! let pool = ThinPool::open(
//!     Arc::new(FileDevice::open(meta.path())?),
//!     Arc::new(FileDevice::open(data.path())?),
//! )?;
//! assert_eq!(pool.data_block_size(), 64 * 1024);
//! let ids: Vec<u64> = pool.devices().iter().map(|d| d.dev_id).collect();
//! assert_eq!(ids, [1, 2, 3, 7]);
//!
//! let mut mapped = 0;
//! pool.for_each_mapping(1, &mut |_m| mapped += 1)?;
//! assert_eq!(mapped, 33);
//! let dev = pool.device(1)?; // a BlockDevice: unmapped blocks read as zeros
//! let mut head = [0u8; 512];
//! dev.read_exact_at(0, &mut head)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Data flow
//!
//! ```text
//! metadata device ─► superblock (block 0: magic 27022010, crc32c ^ 160774, data block
//!    │                size, metadata/data block counts, tree roots)
//!    ├─ device-details B-tree: dev_id ─► {mapped_blocks, transaction_id, ctime, stime}
//!    └─ mapping B-tree, two levels: dev_id ─► root of the device's tree
//!                                   virtual block ─► (data block << 24 | time)
//! ThinDevice::read_at(offset) ─► virtual block ─► lookup down the tree (nodes cached,
//!    bounded) ─► data device at data_block × data_block_size, or zeros when unmapped
//! ```
//!
//! # Hostile input
//!
//! * Every metadata block number is checked against the pool's metadata block count and
//!   the metadata device's size; every data block against the data space map's block
//!   count and the data device's size.
//! * B-tree nodes: checksum (crc32c ^ 121107), the node's own block number, flags,
//!   `max_entries`/`value_size` fitting the block, `nr_entries <= max_entries`, strictly
//!   increasing keys inside the range the parent gives; depth ≤ [`MAX_BTREE_DEPTH`];
//!   a full walk visits each node once (loops are errors).
//! * Memory is bounded: lookups go down the tree on demand through a cache of at most
//!   [`NODE_CACHE_BLOCKS`] metadata blocks; the device list is bounded by the pool's
//!   24-bit device id space.
//! * Checksum mismatches are errors by default. [`ThinPool::open_lenient`] reads past
//!   them (structural checks still apply) and counts them in [`ThinPool::report`], for
//!   salvaging damaged metadata.
//! * Nothing panics on malformed input: every failure is a [`ThinError`] or, from
//!   [`BlockDevice::read_at`], an [`io::Error`](std::io::Error) carrying the `ThinError` text.
//!
//! # What a thin device's size is
//!
//! dm-thin metadata does not store a thin device's virtual size (it lives in the device-
//! mapper table, and Docker records it in `devicemapper/metadata/<id>` as `size`).
//! [`ThinPool::device_with_size`] takes it; [`ThinPool::device`] uses the larger of the
//! highest mapped block and the size an ext4 or XFS superblock at the start of the device
//! claims, so that a filesystem whose tail was never written still opens.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use salvor_source::BlockDevice;

mod btree;
mod device;
mod error;

pub use btree::MAX_BTREE_DEPTH;
pub use device::{SourceFile, ThinDevice};
pub use error::ThinError;

use device::filesystem_size;

use btree::{Node, NodeReader};

/// Size of a metadata block (the only size the kernel uses).
pub const METADATA_BLOCK_SIZE: usize = 4096;
/// `THIN_SUPERBLOCK_MAGIC`.
pub const THIN_SUPERBLOCK_MAGIC: u64 = 27022010;
const SUPERBLOCK_CSUM_XOR: u32 = 160774;
/// Metadata blocks kept in the node cache (4 MiB).
pub const NODE_CACHE_BLOCKS: usize = 1024;
/// Thin device ids are 24-bit.
pub const MAX_DEV_ID: u64 = (1 << 24) - 1;
const DETAILS_SIZE: usize = 24;

/// crc32c as persistent-data computes it: `crc32c(~0, data) ^ xor` without the final
/// inversion.
fn dm_checksum(data: &[u8], xor: u32) -> u32 {
    salvor_source::crc32c(!0, data) ^ xor
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The fields of the pool superblock (`struct thin_disk_superblock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Superblock flags (bit 0: `NEEDS_CHECK`).
    pub flags: u32,
    /// Pool UUID (all zero when none was set).
    pub uuid: [u8; 16],
    /// Metadata format version (1 or 2).
    pub version: u32,
    /// The pool's current time (snapshot counter), stored in each mapping's low 24 bits.
    pub time: u32,
    /// Transaction id of the last metadata commit (userspace, e.g. Docker, sets it).
    pub transaction_id: u64,
    /// Root of a userspace-held metadata snapshot (0 if none).
    pub held_root: u64,
    /// Data blocks in the pool (from the data space map root).
    pub nr_data_blocks: u64,
    /// Data blocks allocated (from the data space map root).
    pub nr_data_blocks_allocated: u64,
    /// Root block of the two-level mapping tree (device id → device's mapping tree).
    pub data_mapping_root: u64,
    /// Root block of the device-details tree (device id → [`DeviceDetails`]).
    pub device_details_root: u64,
    /// Data block size in 512-byte sectors.
    pub data_block_size: u32,
    /// Metadata block size in 512-byte sectors (always 8).
    pub metadata_block_size: u32,
    /// Blocks of the metadata device (`metadata_nr_blocks`).
    pub metadata_nr_blocks: u64,
    /// Compatible feature flags.
    pub compat_flags: u32,
    /// Read-only-compatible feature flags.
    pub compat_ro_flags: u32,
    /// Incompatible feature flags (none are defined; nonzero is refused).
    pub incompat_flags: u32,
}

/// A thin device's record in the device-details tree (`struct disk_device_details`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceDetails {
    /// Blocks the device maps, as its details record says.
    pub mapped_blocks: u64,
    /// Transaction id when the device was last changed.
    pub transaction_id: u64,
    /// Pool time when the device was created.
    pub creation_time: u32,
    /// Pool time when the device was last snapshotted.
    pub snapshotted_time: u32,
}

/// One thin device of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinDeviceInfo {
    /// The thin device id (24-bit), as `dmsetup` and Docker name it.
    pub dev_id: u64,
    /// `None` when the device has mappings but no details record (damage).
    pub details: Option<DeviceDetails>,
    /// Root block of its mapping tree; `None` when it has details but no mapping tree.
    pub mapping_root: Option<u64>,
}

/// One mapping: virtual block `virt_block` of a thin device lives in data block
/// `data_block`; `time` is the pool time when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping {
    /// Virtual block of the thin device (units of the pool's data block size).
    pub virt_block: u64,
    /// Data block of the pool's data device.
    pub data_block: u64,
    /// Pool time when the block was written (24 bits).
    pub time: u32,
}

/// What was found while opening and reading the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThinReport {
    /// Metadata blocks whose checksum did not match (only counted by a lenient pool; a
    /// strict one fails instead).
    pub checksum_failures: u64,
    /// Damage read past (bad checksums, a NEEDS_CHECK flag, truncated devices), at most 1000.
    pub warnings: Vec<String>,
}

struct Inner {
    meta: Arc<dyn BlockDevice>,
    data: Arc<dyn BlockDevice>,
    sb: Superblock,
    /// Metadata blocks that may be read: min(superblock count, device size).
    meta_limit: u64,
    /// Bytes per data block.
    block_bytes: u64,
    strict: bool,
    cache: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
    checksum_failures: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThinPool")
            .field("metadata", &self.meta.describe())
            .field("data", &self.data.describe())
            .field("superblock", &self.sb)
            .finish()
    }
}

impl Inner {
    fn warn(&self, w: String) {
        if let Ok(mut ws) = self.warnings.lock() {
            if ws.len() < 1000 {
                ws.push(w);
            }
        }
    }

    fn read_meta_block(&self, block: u64) -> Result<Vec<u8>, ThinError> {
        if block >= self.meta_limit {
            return Err(ThinError::OutOfRange {
                what: "metadata block",
                block,
                limit: self.meta_limit,
            });
        }
        let mut buf = vec![0u8; METADATA_BLOCK_SIZE];
        self.meta
            .read_exact_at(block * METADATA_BLOCK_SIZE as u64, &mut buf)
            .map_err(|e| ThinError::Io {
                what: format!("{}: metadata block {block}", self.meta.describe()),
                source: e,
            })?;
        Ok(buf)
    }

    fn mapping_value(&self, v: u64) -> Result<(u64, u32), ThinError> {
        let data_block = v >> 24;
        if data_block >= self.sb.nr_data_blocks {
            return Err(ThinError::OutOfRange {
                what: "data block",
                block: data_block,
                limit: self.sb.nr_data_blocks,
            });
        }
        Ok((data_block, (v & 0xff_ffff) as u32))
    }

    fn dev_root(&self, dev_id: u64) -> Result<u64, ThinError> {
        match btree::lookup(self, self.sb.data_mapping_root, dev_id, 8)? {
            Some((node, i)) => Ok(node.value_u64(i)),
            None => Err(ThinError::NoSuchDevice(dev_id)),
        }
    }

    /// Reads virtual bytes of the device with mapping tree `root`, regardless of size.
    fn read_virtual(
        &self,
        root: u64,
        dev_id: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), ThinError> {
        let bs = self.block_bytes;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let vblock = pos / bs;
            let within = pos % bs;
            let n = ((bs - within) as usize).min(buf.len() - done);
            let chunk = &mut buf[done..done + n];
            match btree::lookup(self, root, vblock, 8)? {
                None => chunk.fill(0),
                Some((node, i)) => {
                    let (data_block, _) = self.mapping_value(node.value_u64(i))?;
                    let at = data_block * bs + within;
                    self.data.read_exact_at(at, chunk).map_err(|e| ThinError::Io {
                        what: format!(
                            "thin device {dev_id}: virtual block {vblock} → data block {data_block} (offset {at} of {})",
                            self.data.describe()
                        ),
                        source: e,
                    })?;
                }
            }
            done += n;
        }
        Ok(())
    }
}

impl NodeReader for Inner {
    fn node(&self, block: u64) -> Result<Node, ThinError> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(&block).cloned());
        let data = match cached {
            Some(d) => d,
            None => {
                let buf = self.read_meta_block(block)?;
                let stored = le32(&buf, 0);
                let computed = dm_checksum(&buf[4..], btree::BTREE_CSUM_XOR);
                if stored != computed {
                    if self.strict {
                        return Err(ThinError::Checksum {
                            what: "B-tree node",
                            block,
                            stored,
                            computed,
                        });
                    }
                    self.checksum_failures.fetch_add(1, Ordering::Relaxed);
                    self.warn(format!(
                        "metadata block {block}: B-tree node checksum mismatch (stored {stored:#010x}, computed {computed:#010x}); read anyway"
                    ));
                }
                let d = Arc::new(buf);
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() >= NODE_CACHE_BLOCKS {
                        c.clear();
                    }
                    c.insert(block, d.clone());
                }
                d
            }
        };
        Node::parse(block, data)
    }
}

/// An opened dm-thin pool. Cheap to clone; thin devices share it.
#[derive(Debug, Clone)]
pub struct ThinPool {
    inner: Arc<Inner>,
    devices: Vec<ThinDeviceInfo>,
}

impl ThinPool {
    /// Opens a pool; any checksum mismatch is an error.
    pub fn open(
        metadata: Arc<dyn BlockDevice>,
        data: Arc<dyn BlockDevice>,
    ) -> Result<ThinPool, ThinError> {
        Self::open_with(metadata, data, true)
    }

    /// Opens a pool reading past checksum mismatches (counted in [`ThinPool::report`]);
    /// every structural check still applies.
    pub fn open_lenient(
        metadata: Arc<dyn BlockDevice>,
        data: Arc<dyn BlockDevice>,
    ) -> Result<ThinPool, ThinError> {
        Self::open_with(metadata, data, false)
    }

    fn open_with(
        meta: Arc<dyn BlockDevice>,
        data: Arc<dyn BlockDevice>,
        strict: bool,
    ) -> Result<ThinPool, ThinError> {
        let mut buf = vec![0u8; METADATA_BLOCK_SIZE];
        meta.read_exact_at(0, &mut buf).map_err(|e| ThinError::Io {
            what: format!("{}: superblock", meta.describe()),
            source: e,
        })?;
        let magic = le64(&buf, 32);
        if magic != THIN_SUPERBLOCK_MAGIC {
            return Err(ThinError::NotThinMetadata(format!(
                "{}: superblock magic {magic}, expected {THIN_SUPERBLOCK_MAGIC}",
                meta.describe()
            )));
        }
        let mut warnings = Vec::new();
        let mut checksum_failures = 0;
        let stored = le32(&buf, 0);
        let computed = dm_checksum(&buf[4..], SUPERBLOCK_CSUM_XOR);
        if stored != computed {
            if strict {
                return Err(ThinError::Checksum {
                    what: "superblock",
                    block: 0,
                    stored,
                    computed,
                });
            }
            checksum_failures += 1;
            warnings.push(format!(
                "superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x}); read anyway"
            ));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&buf[16..32]);
        let sb = Superblock {
            flags: le32(&buf, 4),
            uuid,
            version: le32(&buf, 40),
            time: le32(&buf, 44),
            transaction_id: le64(&buf, 48),
            held_root: le64(&buf, 56),
            nr_data_blocks: le64(&buf, 64),
            nr_data_blocks_allocated: le64(&buf, 72),
            data_mapping_root: le64(&buf, 320),
            device_details_root: le64(&buf, 328),
            data_block_size: le32(&buf, 336),
            metadata_block_size: le32(&buf, 340),
            metadata_nr_blocks: le64(&buf, 344),
            compat_flags: le32(&buf, 352),
            compat_ro_flags: le32(&buf, 356),
            incompat_flags: le32(&buf, 360),
        };
        let corrupt = |reason: String| ThinError::Corrupt { block: 0, reason };
        let blocknr = le64(&buf, 8);
        if blocknr != 0 {
            return Err(corrupt(format!(
                "superblock says it lives in block {blocknr}"
            )));
        }
        if !(1..=2).contains(&sb.version) {
            return Err(ThinError::Unsupported(format!(
                "metadata version {}",
                sb.version
            )));
        }
        if sb.metadata_block_size != (METADATA_BLOCK_SIZE / 512) as u32 {
            return Err(ThinError::Unsupported(format!(
                "metadata block size of {} sectors (only 8 is defined)",
                sb.metadata_block_size
            )));
        }
        if sb.incompat_flags != 0 {
            return Err(ThinError::Unsupported(format!(
                "incompatible feature flags {:#x}",
                sb.incompat_flags
            )));
        }
        // The kernel allows 64 KiB .. 1 GiB in multiples of 64 KiB; accept any whole
        // number of 4 KiB up to 1 GiB.
        if sb.data_block_size == 0 || sb.data_block_size & 7 != 0 || sb.data_block_size > 2_097_152
        {
            return Err(corrupt(format!(
                "data block size of {} sectors",
                sb.data_block_size
            )));
        }
        if sb.metadata_nr_blocks == 0 {
            return Err(corrupt("metadata_nr_blocks is 0".into()));
        }
        if sb.flags & 1 != 0 {
            warnings.push("the pool was flagged NEEDS_CHECK by the kernel (metadata errors seen while in use)".into());
        }
        let dev_blocks = meta.size() / METADATA_BLOCK_SIZE as u64;
        if dev_blocks < sb.metadata_nr_blocks {
            warnings.push(format!(
                "metadata device holds {dev_blocks} blocks, the superblock says {}: truncated copy?",
                sb.metadata_nr_blocks
            ));
        }
        let meta_limit = dev_blocks.min(sb.metadata_nr_blocks);
        let block_bytes = sb.data_block_size as u64 * 512;
        let data_bytes = sb.nr_data_blocks.saturating_mul(block_bytes);
        if data.size() < data_bytes {
            warnings.push(format!(
                "data device is {} bytes, the pool has {} blocks of {block_bytes} bytes ({data_bytes}): blocks past the end cannot be read",
                data.size(),
                sb.nr_data_blocks
            ));
        }
        for (what, root) in [
            ("data mapping", sb.data_mapping_root),
            ("device details", sb.device_details_root),
        ] {
            if root == 0 || root >= meta_limit {
                return Err(corrupt(format!(
                    "{what} tree root {root} outside the metadata device (1..{meta_limit})"
                )));
            }
        }
        let inner = Arc::new(Inner {
            meta,
            data,
            sb,
            meta_limit,
            block_bytes,
            strict,
            cache: Mutex::new(HashMap::new()),
            checksum_failures: AtomicU64::new(checksum_failures),
            warnings: Mutex::new(warnings),
        });

        // Devices: the union of the top-level mapping tree and the details tree.
        let mut devs: BTreeMap<u64, ThinDeviceInfo> = BTreeMap::new();
        let add =
            |dev_id: u64, devs: &mut BTreeMap<u64, ThinDeviceInfo>| -> Result<(), ThinError> {
                if devs.len() as u64 > MAX_DEV_ID && !devs.contains_key(&dev_id) {
                    return Err(ThinError::Corrupt {
                        block: 0,
                        reason: format!("more than {} thin devices", MAX_DEV_ID + 1),
                    });
                }
                Ok(())
            };
        btree::walk(&*inner, inner.sb.data_mapping_root, 8, &mut |k, v| {
            add(k, &mut devs)?;
            let root = le64(v, 0);
            devs.entry(k)
                .or_insert(ThinDeviceInfo {
                    dev_id: k,
                    details: None,
                    mapping_root: None,
                })
                .mapping_root = Some(root);
            Ok(())
        })?;
        let details = btree::walk(
            &*inner,
            inner.sb.device_details_root,
            DETAILS_SIZE,
            &mut |k, v| {
                add(k, &mut devs)?;
                let d = DeviceDetails {
                    mapped_blocks: le64(v, 0),
                    transaction_id: le64(v, 8),
                    creation_time: le32(v, 16),
                    snapshotted_time: le32(v, 20),
                };
                devs.entry(k)
                    .or_insert(ThinDeviceInfo {
                        dev_id: k,
                        details: None,
                        mapping_root: None,
                    })
                    .details = Some(d);
                Ok(())
            },
        );
        if let Err(e) = details {
            // The details are informational; the mappings are what reading needs.
            inner.warn(format!(
                "device details tree unreadable: {}",
                salvor_source::error_chain(&e)
            ));
        }
        Ok(ThinPool {
            inner,
            devices: devs.into_values().collect(),
        })
    }

    /// The superblock as read.
    pub fn superblock(&self) -> &Superblock {
        &self.inner.sb
    }

    /// Bytes per data block (`data_block_size` sectors × 512).
    pub fn data_block_size(&self) -> u64 {
        self.inner.block_bytes
    }

    /// The thin devices, by id.
    pub fn devices(&self) -> Vec<ThinDeviceInfo> {
        self.devices.clone()
    }

    /// Checksum failures (lenient pools) and warnings so far.
    pub fn report(&self) -> ThinReport {
        ThinReport {
            checksum_failures: self.inner.checksum_failures.load(Ordering::Relaxed),
            warnings: self
                .inner
                .warnings
                .lock()
                .map(|w| w.clone())
                .unwrap_or_default(),
        }
    }

    /// Calls `f` for every mapping of device `dev_id`, in virtual block order.
    /// Memory: one node per tree level plus the set of visited node blocks.
    pub fn for_each_mapping(
        &self,
        dev_id: u64,
        f: &mut dyn FnMut(Mapping),
    ) -> Result<(), ThinError> {
        let root = self.inner.dev_root(dev_id)?;
        btree::walk(&*self.inner, root, 8, &mut |k, v| {
            let (data_block, time) = self.inner.mapping_value(le64(v, 0))?;
            f(Mapping {
                virt_block: k,
                data_block,
                time,
            });
            Ok(())
        })
    }

    /// The data block and time virtual block `virt_block` of `dev_id` maps to.
    pub fn lookup(&self, dev_id: u64, virt_block: u64) -> Result<Option<Mapping>, ThinError> {
        let root = self.inner.dev_root(dev_id)?;
        match btree::lookup(&*self.inner, root, virt_block, 8)? {
            None => Ok(None),
            Some((node, i)) => {
                let (data_block, time) = self.inner.mapping_value(node.value_u64(i))?;
                Ok(Some(Mapping {
                    virt_block,
                    data_block,
                    time,
                }))
            }
        }
    }

    /// The highest mapped virtual block of `dev_id`, if any.
    pub fn highest_mapped_block(&self, dev_id: u64) -> Result<Option<u64>, ThinError> {
        let root = self.inner.dev_root(dev_id)?;
        btree::highest_key(&*self.inner, root, 8)
    }

    /// Thin device `dev_id` as a block device. Its size is the larger of the highest
    /// mapped block and the size claimed by an ext4 or XFS superblock at its start (dm-thin
    /// does not store the virtual size; use [`ThinPool::device_with_size`] when it is known).
    pub fn device(&self, dev_id: u64) -> Result<Arc<dyn BlockDevice>, ThinError> {
        let root = self.inner.dev_root(dev_id)?;
        let mapped = btree::highest_key(&*self.inner, root, 8)?.map_or(0, |b| {
            b.saturating_add(1).saturating_mul(self.inner.block_bytes)
        });
        // A head that cannot be read (damaged mapping) leaves the size to the mappings;
        // reading those bytes through the device then reports the error.
        let mut head = vec![0u8; 2048];
        let fs = match self.inner.read_virtual(root, dev_id, 0, &mut head) {
            Ok(()) => filesystem_size(&head).unwrap_or(0),
            Err(_) => 0,
        };
        Ok(Arc::new(ThinDevice {
            inner: self.inner.clone(),
            dev_id,
            root,
            size: mapped.max(fs),
        }))
    }

    /// Thin device `dev_id` as a block device of `size` bytes (the dm table's length;
    /// Docker's `size`).
    pub fn device_with_size(
        &self,
        dev_id: u64,
        size: u64,
    ) -> Result<Arc<dyn BlockDevice>, ThinError> {
        let root = self.inner.dev_root(dev_id)?;
        Ok(Arc::new(ThinDevice {
            inner: self.inner.clone(),
            dev_id,
            root,
            size,
        }))
    }
}
