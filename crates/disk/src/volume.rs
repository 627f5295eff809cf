//! Volumes ([`Volume`]: a partition, a logical volume or the whole disk) and the specs that
//! select them ([`VolumeSpec`]: `auto`, `disk`, `pN`, `lv:VG/NAME`).

use std::str::FromStr;
use std::sync::Arc;

use salvor_source::BlockDevice;
use serde::Serialize;

use crate::Content;

/// Where a volume comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeKind {
    /// The whole disk (no partition table).
    WholeDisk,
    /// A partition of the partition table.
    Partition {
        /// The partition's number (`p3` is 3).
        index: u32,
    },
    /// An LVM logical volume.
    LogicalVolume {
        /// Volume group name.
        vg: String,
        /// Logical volume name.
        lv: String,
    },
}

/// A readable volume: a partition, a logical volume, or the whole disk.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// The spec that selects it: `disk`, `p3`, `lv:vg/root`.
    pub spec: String,
    /// Where the volume comes from (serialised flat: `kind`, and `index` or `vg`/`lv`).
    #[serde(flatten)]
    pub kind: VolumeKind,
    /// Byte offset on the disk (partitions and the whole disk; `None` for LVs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Size in bytes.
    pub size: u64,
    /// What the volume holds, by superblock magic.
    pub content: Content,
    /// The volume's bytes.
    #[serde(skip)]
    pub device: Arc<dyn BlockDevice>,
}

/// Which volume to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    /// Every ext/XFS volume, in disk order ([`Disk::select`](crate::Disk::select) returns them all).
    Auto,
    /// The whole disk.
    Disk,
    /// Partition N (`p3`, or just `3`).
    Partition(u32),
    /// A logical volume (`lv:vg/name`).
    Lv {
        /// Volume group name.
        vg: String,
        /// Logical volume name.
        lv: String,
    },
}

/// A volume spec that is none of `auto`, `disk`, `pN`, `N` or `lv:VG/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("volume spec {spec:?}: expected auto, disk, pN or lv:VG/NAME")]
pub struct VolumeSpecError {
    /// The spec as given.
    pub spec: String,
}

impl FromStr for VolumeSpec {
    type Err = VolumeSpecError;
    fn from_str(s: &str) -> Result<Self, VolumeSpecError> {
        let bad = || VolumeSpecError { spec: s.into() };
        if s == "auto" || s.is_empty() {
            return Ok(VolumeSpec::Auto);
        }
        if s == "disk" {
            return Ok(VolumeSpec::Disk);
        }
        if let Some(rest) = s.strip_prefix("lv:") {
            let (vg, lv) = rest.split_once('/').ok_or_else(bad)?;
            if vg.is_empty() || lv.is_empty() {
                return Err(bad());
            }
            return Ok(VolumeSpec::Lv {
                vg: vg.into(),
                lv: lv.into(),
            });
        }
        let n = s.strip_prefix('p').unwrap_or(s);
        n.parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .map(VolumeSpec::Partition)
            .ok_or_else(bad)
    }
}

impl std::fmt::Display for VolumeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VolumeSpec::Auto => f.write_str("auto"),
            VolumeSpec::Disk => f.write_str("disk"),
            VolumeSpec::Partition(n) => write!(f, "p{n}"),
            VolumeSpec::Lv { vg, lv } => write!(f, "lv:{vg}/{lv}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::VolumeSpec;

    #[test]
    fn volume_specs() {
        assert_eq!("p3".parse(), Ok(VolumeSpec::Partition(3)));
        assert_eq!("3".parse(), Ok(VolumeSpec::Partition(3)));
        assert_eq!("auto".parse(), Ok(VolumeSpec::Auto));
        assert_eq!("disk".parse(), Ok(VolumeSpec::Disk));
        assert_eq!(
            "lv:rhel/root".parse(),
            Ok(VolumeSpec::Lv {
                vg: "rhel".into(),
                lv: "root".into()
            })
        );
        for bad in ["p0", "lv:x", "lv:/a", "q1", "p-1"] {
            assert!(bad.parse::<VolumeSpec>().is_err(), "{bad}");
        }
        assert_eq!(VolumeSpec::Partition(2).to_string(), "p2");
    }
}
