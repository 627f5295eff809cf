//! Disk images as read-only block devices, their partitions and logical volumes, and what
//! each volume holds.
//!
//! salvor reads a dead Docker host's disk without mounting it. This crate turns an image
//! file into [`BlockDevice`]s that a filesystem reader (`salvor-ext4`, later XFS) reads
//! through:
//!
//! ```text
//! image file ─► container ─► disk device ─► partition table ─► partitions ─┬─► Content (ext4, XFS, …)
//!  (path)      open_image   Arc<dyn         read_partition_     Slice        │
//!              (by magic)   BlockDevice>    table (MBR, GPT)                 └─► LVM PV ─► LVs (ExtentMap) ─► Content
//! ```
//!
//! Principal types and functions:
//!
//! * [`open_image`] / [`open_image_with`] → [`Image`]: the virtual disk as an
//!   `Arc<dyn BlockDevice>` plus a [`ContainerInfo`] (format, size, backing chain). Formats:
//!   raw ([`FileDevice`]), qcow2 ([`qcow2::Qcow2`], our own reader), Ex01 ([`ewf2::Ewf2`],
//!   our own: the `ewf` crate mis-reads EWF2 pattern fills), VMDK, VHDX and E01 (pinned
//!   third-party readers behind the default cargo features `vmdk`, `vhdx`, `ewf`).
//!   Detection is by magic bytes, never by file extension. See [`container`] for the
//!   backing-file policy.
//! * [`parts::read_partition_table`] → [`PartitionTable`] (MBR with logical partitions, or
//!   GPT), each [`Partition`] readable as a [`view::Slice`].
//! * [`lvm`]: PV labels, metadata text, [`VolumeGroup`]s; [`lvm::map_lv`] turns a linear LV
//!   into a [`view::ExtentMap`].
//! * [`fs::identify`] → [`Content`]: ext2/3/4 (with `needs_recovery`), XFS, btrfs, swap,
//!   LUKS, LVM PV, thin-pool metadata.
//! * [`Disk`] ties it together: [`Disk::open`] scans an image into [`Volume`]s (`p1`,
//!   `lv:vg/root`, or `disk` when there is no partition table); [`Disk::select`] picks one
//!   by [`VolumeSpec`]; [`Disk::report`] / [`probe`] give the serialisable [`ProbeReport`]
//!   behind `salvor probe`.
//!
//! # Example
//!
//! Scan the committed MBR test disk (`fixtures/disk/mbr.raw.zst`: p1, an extended
//! partition holding p5 = an ext4 filesystem, p6 swap, p7 an LVM PV) and pick the
//! filesystem salvor can read:
//!
//! ```
//! use salvor_disk::{Content, Disk, VolumeSpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let zst = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/disk/mbr.raw.zst");
//! let image = tempfile::NamedTempFile::new()?;
//! std::fs::write(image.path(), zstd::decode_all(std::fs::File::open(zst)?)?)?;
//!
//! let disk = Disk::open(image.path())?;
//! let specs: Vec<&str> = disk.volumes.iter().map(|v| v.spec.as_str()).collect();
//! assert!(specs.contains(&"p5"));
//! let chosen = disk.select(&"p5".parse::<VolumeSpec>()?)?;
//! assert!(matches!(&chosen[0].content, Content::Ext { label, .. } if label == "salvortest"));
//! // `salvor_disk::open_filesystem(chosen[0].device.clone())` opens it as a `Source`.
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! * Images are opened read-only (`O_NOATIME` where allowed), never written and never
//!   copied; nothing but regular files is read (`O_NONBLOCK` + `fstat` before any read,
//!   so a FIFO never hangs). Every file an image names (backing file, VMDK extent,
//!   E01/Ex01 segment) goes through one policy (see [`container`]); [`Disk::files`]
//!   lists every file read.
//! * Everything read from an image is hostile: table sizes, counts and offsets are
//!   checked against the device size and capped (qcow2 L1 ≤ 32 MiB, GPT ≤ 128 Ki entries,
//!   LVM metadata ≤ 1 MiB, EBR chains ≤ 1024) before allocating; malformed input is a
//!   [`DiskError`] naming the file and the structure, never a panic or a hang.
//! * Formats we cannot read correctly are refused ([`DiskError::Unsupported`]) rather
//!   than mis-read: qcow2 encryption, `extended_l2`, external data files; VMDK snapshot
//!   children; VHD; LVM RAID/striped/mirror/snapshot LVs.
//! * LVM thin pools are opened through their hidden `_tmeta`/`_tdata` LVs with
//!   `salvor-dmthin` ([`ThinPoolVolume`]); LVM thin volumes in them are ordinary
//!   [`Volume`]s, and Docker's direct-lvm devices are read through the pool.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub use files::kind_of as describe_file_type;
pub use salvor_source::{BlockDevice, FileDevice};

pub mod container;
mod error;
pub mod ewf1;
pub mod ewf2;
mod external;
mod files;
pub mod fs;
pub mod lvm;
pub mod parts;
pub mod qcow2;
mod scan;
pub mod view;
pub mod vmdk;
mod volume;

pub use container::{
    detect, open_image, open_image_with, BackingInfo, ContainerInfo, Format, Image, OpenOptions,
    MAX_BACKING_DEPTH,
};
pub use error::{DiskError, Result};
pub use fs::{identify, open_filesystem, Content, FsOpenError};
pub use lvm::{LogicalVolume, VolumeGroup};
pub use parts::{read_partition_table, Partition, PartitionTable, Scheme};
pub use salvor_dmthin::ThinPool;
pub use scan::{probe, Disk, ProbeReport, ThinPoolVolume};
pub use volume::{Volume, VolumeKind, VolumeSpec, VolumeSpecError};

pub(crate) fn read_full(file: &File, off: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
