//! A host's `/etc/fstab`, to find a data-root that lives on another volume of the disk
//! image than the root filesystem (`/var/lib/docker` or a configured `data-root` on its own
//! partition or logical volume, mounted below a path that is not the volume's top).

use std::path::PathBuf;

use salvor_disk::{Content, Volume, VolumeKind};

/// One fstab line: what is mounted, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// What is mounted (`UUID=…`, `/dev/…`).
    pub spec: String,
    /// Where.
    pub mount_point: String,
}

/// Parses fstab text (comments, blank lines and swap ignored; octal escapes like `\040`
/// decoded).
pub fn parse(text: &str) -> Vec<Mount> {
    let unescape = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let oct = b
                .get(i + 1..i + 4)
                .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
            match oct {
                Some(d) => {
                    out.push(
                        d.iter()
                            .fold(0u8, |a, c| a.wrapping_mul(8).wrapping_add(c - b'0')),
                    );
                    i += 4;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (spec, mp) = (f.next()?, f.next()?);
            (mp.starts_with('/')).then(|| Mount {
                spec: unescape(spec),
                mount_point: unescape(mp),
            })
        })
        .collect()
}

/// True when `spec` (`UUID=…`, `LABEL=…`, `/dev/disk/by-uuid/…`, `/dev/mapper/vg-lv`,
/// `/dev/vg/lv`, `/dev/sda3`, `/dev/nvme0n1p3`) names `v`.
pub fn names_volume(spec: &str, v: &Volume) -> bool {
    let (uuid, label) = match &v.content {
        Content::Ext { uuid, label, .. } | Content::Xfs { uuid, label, .. } => {
            (uuid.as_str(), label.as_str())
        }
        _ => ("", ""),
    };
    let spec = spec.trim_matches('"');
    if let Some(u) = spec
        .strip_prefix("UUID=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-uuid/"))
    {
        return !uuid.is_empty() && u.eq_ignore_ascii_case(uuid);
    }
    if let Some(l) = spec
        .strip_prefix("LABEL=")
        .or_else(|| spec.strip_prefix("/dev/disk/by-label/"))
    {
        return !label.is_empty() && l == label;
    }
    match &v.kind {
        VolumeKind::LogicalVolume { vg, lv } => {
            // /dev/mapper doubles dashes inside names.
            let mapper = format!(
                "/dev/mapper/{}-{}",
                vg.replace('-', "--"),
                lv.replace('-', "--")
            );
            spec == mapper || spec == format!("/dev/{vg}/{lv}")
        }
        VolumeKind::Partition { index } => partition_number(spec) == Some(*index),
        VolumeKind::WholeDisk => false,
    }
}

/// `/dev/sda3`, `/dev/vda3`, `/dev/xvda3` → 3; `/dev/nvme0n1p3`, `/dev/mmcblk0p3` → 3.
pub fn partition_number(spec: &str) -> Option<u32> {
    let name = spec.strip_prefix("/dev/")?;
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (stem, num) = name.split_at(name.len() - digits);
    if (stem.starts_with("nvme") || stem.starts_with("mmcblk")) && !stem.ends_with('p') {
        return None; // the whole device
    }
    let ok = match stem.strip_suffix('p') {
        Some(s) => s.ends_with(|c: char| c.is_ascii_digit()),
        None => stem.ends_with(|c: char| c.is_ascii_lowercase()),
    };
    if ok {
        num.parse().ok()
    } else {
        None
    }
}

/// For a configured data-root path `want` and the host's mounts: the mount that holds it
/// (longest mount point that is a prefix) and the path inside that volume.
pub fn locate(want: &str, mounts: &[Mount]) -> Option<(Mount, PathBuf)> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        let mp = m.mount_point.trim_end_matches('/');
        let inside = mp.is_empty() || want == mp || want.starts_with(&format!("{mp}/"));
        if inside && best.is_none_or(|b| b.mount_point.trim_end_matches('/').len() < mp.len()) {
            best = Some(m);
        }
    }
    let m = best?;
    let mp = m.mount_point.trim_end_matches('/');
    let rel = want[mp.len()..].trim_start_matches('/');
    Some((m.clone(), PathBuf::from(rel)))
}

/// Looks for the data-root through each host root's fstab: the configured data-root path
/// (or `wanted`, the host path `--data-root` gives), on the volume mounted there. Returns
/// (volume index in `volumes`, path inside it).
pub fn find_data_root(
    volumes: &[&Volume],
    wanted: Option<&str>,
    open_fs: impl Fn(&Volume) -> Option<std::sync::Arc<dyn salvor_source::Source>>,
) -> Option<(usize, std::sync::Arc<dyn salvor_source::Source>, PathBuf)> {
    use std::path::Path;
    for host in volumes {
        let Some(fs) = open_fs(host) else { continue };
        let Ok(text) = fs.read_limited(Path::new("etc/fstab"), 1 << 20) else {
            continue;
        };
        let mounts = parse(&String::from_utf8_lossy(&text));
        let wants = match wanted {
            Some(w) => vec![w.to_string()],
            None => salvor_docker::locate::configured_data_roots(fs.as_ref(), Path::new("")),
        };
        for want in wants {
            let Some((m, rel)) = locate(&want, &mounts) else {
                continue;
            };
            for (i, v) in volumes.iter().enumerate() {
                if !names_volume(&m.spec, v) {
                    continue;
                }
                let Some(vfs) = open_fs(v) else { continue };
                if salvor_docker::locate::is_data_root(vfs.as_ref(), &rel) {
                    return Some((i, vfs, rel));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fstab_lines() {
        let m = parse("# c\nUUID=ab-cd / ext4 defaults 0 1\n/dev/mapper/vg--data-docker /srv/my\\040data xfs defaults 0 2\nswap none swap sw 0 0\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].spec, "/dev/mapper/vg--data-docker");
        assert_eq!(m[1].mount_point, "/srv/my data");
        let (mnt, rel) = locate("/srv/my data/docker", &m).expect("found");
        assert_eq!(mnt.mount_point, "/srv/my data");
        assert_eq!(rel, PathBuf::from("docker"));
        let (mnt, rel) = locate("/var/lib/docker", &m).expect("root");
        assert_eq!(mnt.mount_point, "/");
        assert_eq!(rel, PathBuf::from("var/lib/docker"));
        assert_eq!(partition_number("/dev/sda3"), Some(3));
        assert_eq!(partition_number("/dev/nvme0n1p12"), Some(12));
        assert_eq!(partition_number("/dev/nvme0n1"), None);
        assert_eq!(partition_number("/dev/mmcblk0p2"), Some(2));
        assert_eq!(partition_number("/dev/mapper/x"), None);
    }
}
