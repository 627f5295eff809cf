//! Partition tables: MBR (with extended/logical partitions) and GPT (primary, else backup
//! header; CRC-checked). A small parser of our own: every count, size and offset read from
//! the disk is checked against the device size and capped before anything is allocated.

use std::collections::HashSet;

use salvor_source::BlockDevice;
use serde::Serialize;

use crate::error::{DiskError, Result};

/// The most GPT partition entries read.
pub const MAX_GPT_ENTRIES: u32 = 128 * 1024;
/// The most GPT entry-array bytes read.
const MAX_GPT_ARRAY: u64 = 32 << 20;
/// The most EBRs followed in an extended partition chain.
pub const MAX_LOGICAL: usize = 1024;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The kind of partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Master boot record (with extended/logical partitions).
    Mbr,
    /// GUID partition table.
    Gpt,
}

/// One partition, as the table records it (byte offsets).
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    /// 1-based number, as Linux numbers them (MBR logical partitions start at 5).
    pub index: u32,
    /// MBR type id (`0x83`) or GPT type GUID (upper case).
    pub type_id: String,
    /// A human name for well-known types (`Linux filesystem`, `Linux LVM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_name: Option<&'static str>,
    /// Start in bytes from the start of the disk.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// First sector and sector count, in units of the table's sector size.
    pub start_sector: u64,
    /// Sector count.
    pub sectors: u64,
    /// GPT partition name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// GPT unique partition GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// MBR active flag.
    pub bootable: bool,
    /// Set when the entry does not fit the disk (it is then not readable as a volume).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A partition table.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionTable {
    /// MBR or GPT.
    pub scheme: Scheme,
    /// Logical sector size in bytes the table was read with (512 or 4096).
    pub sector_size: u64,
    /// GPT disk GUID, or the MBR disk signature (`0x1234abcd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_id: Option<String>,
    /// The partitions, in table order (MBR logical partitions after the primaries).
    pub partitions: Vec<Partition>,
    /// Damage that did not prevent reading the table (bad primary GPT, overlaps).
    pub warnings: Vec<String>,
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Formats a GUID stored in the mixed-endian GPT layout.
pub fn guid(b: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le32(b, 0),
        le16(b, 4),
        le16(b, 6),
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// Names of well-known GPT partition types.
pub fn gpt_type_name(g: &str) -> Option<&'static str> {
    Some(match g {
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => "Linux RAID",
        "CA7D7CCB-63ED-4C53-861C-1742536059CC" => "Linux LUKS",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" => "Linux root (ARM-64)",
        "4D21B016-B534-45C2-A9FB-5C16E091FD2D" => "Linux /var",
        "933AC7E1-2EB4-4F13-B844-0E14E2AEF915" => "Linux /home",
        "3B8F8425-20E0-4F3B-907F-1A25A76F98E8" => "Linux server data",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux extended boot",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI System",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "Microsoft reserved",
        _ => return None,
    })
}

/// Names of well-known MBR partition types.
pub fn mbr_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x83 => "Linux",
        0x82 => "Linux swap",
        0x8e => "Linux LVM",
        0xfd => "Linux raid autodetect",
        0x05 => "Extended",
        0x0f => "W95 Ext'd (LBA)",
        0x85 => "Linux extended",
        0x07 => "HPFS/NTFS/exFAT",
        0x0b => "W95 FAT32",
        0x0c => "W95 FAT32 (LBA)",
        0xef => "EFI (FAT-12/16/32)",
        0xee => "GPT",
        _ => return None,
    })
}

fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0f | 0x85)
}

fn read(dev: &dyn BlockDevice, off: u64, len: usize, structure: &'static str) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    dev.read_exact_at(off, &mut b)
        .map_err(|e| DiskError::dev(dev.describe(), structure, e))?;
    Ok(b)
}

/// Reads the partition table of a disk: GPT first (512- then 4096-byte sectors), then
/// MBR. `Ok(None)`: no partition table (the whole disk may be a filesystem).
pub fn read_partition_table(dev: &dyn BlockDevice) -> Result<Option<PartitionTable>> {
    let size = dev.size();
    if size < 1024 {
        return Ok(None);
    }
    let mbr = read(dev, 0, 512, "MBR")?;
    let mbr_ok = mbr[510] == 0x55 && mbr[511] == 0xaa;
    let protective = mbr_ok && (0..4).any(|i| mbr[446 + i * 16 + 4] == 0xee);
    let mut gpt_errors = Vec::new();
    for ss in [512u64, 4096] {
        match read_gpt(dev, ss) {
            Ok(Some(mut t)) => {
                if !protective {
                    t.warnings
                        .push("GPT found without a protective MBR (hybrid or damaged MBR)".into());
                }
                check_overlaps(&mut t);
                return Ok(Some(t));
            }
            Ok(None) => {}
            Err(e) => gpt_errors.push(e.to_string()),
        }
    }
    if !mbr_ok {
        if !gpt_errors.is_empty() {
            return Err(DiskError::invalid(
                dev.describe(),
                "GPT",
                gpt_errors.join("; "),
            ));
        }
        return Ok(None);
    }
    let Some(mut t) = read_mbr(dev, &mbr)? else {
        return Ok(None);
    };
    t.warnings.extend(gpt_errors);
    if protective {
        t.warnings
            .push("protective MBR but no valid GPT: showing the MBR entries".into());
    }
    check_overlaps(&mut t);
    Ok(Some(t))
}

fn check_overlaps(t: &mut PartitionTable) {
    // The extended partition of an MBR contains the logical partitions by design.
    let mbr = t.scheme == Scheme::Mbr;
    let mut v: Vec<&Partition> = t
        .partitions
        .iter()
        .filter(|p| p.size > 0 && !(mbr && matches!(p.type_id.as_str(), "0x5" | "0xf" | "0x85")))
        .collect();
    v.sort_by_key(|p| p.start);
    let mut w = Vec::new();
    for pair in v.windows(2) {
        if pair[0].start + pair[0].size > pair[1].start {
            w.push(format!(
                "partitions {} and {} overlap",
                pair[0].index, pair[1].index
            ));
        }
    }
    t.warnings.extend(w);
}

fn fit(p: &mut Partition, disk: u64) {
    let end = p.start.checked_add(p.size);
    match end {
        _ if p.start >= disk => {
            p.problem = Some(format!(
                "starts at byte {} past the end of the disk ({disk})",
                p.start
            ))
        }
        Some(e) if e <= disk => {}
        _ => {
            p.problem = Some(format!(
                "ends past the end of the disk ({disk} bytes); truncated"
            ))
        }
    }
}

fn read_mbr(dev: &dyn BlockDevice, mbr: &[u8]) -> Result<Option<PartitionTable>> {
    let disk = dev.size();
    let mut entries = Vec::new();
    for i in 0..4 {
        let e = &mbr[446 + i * 16..446 + i * 16 + 16];
        if e[0] != 0 && e[0] != 0x80 {
            // Not a partition table (a filesystem boot sector, most likely).
            return Ok(None);
        }
        entries.push((
            i as u32 + 1,
            e[0] == 0x80,
            e[4],
            le32(e, 8) as u64,
            le32(e, 12) as u64,
        ));
    }
    if entries.iter().all(|e| e.2 == 0) {
        return Ok(None);
    }
    let mut t = PartitionTable {
        scheme: Scheme::Mbr,
        sector_size: 512,
        disk_id: Some(format!("0x{:08x}", le32(mbr, 440))),
        partitions: Vec::new(),
        warnings: Vec::new(),
    };
    let mut ext_start = None;
    for &(index, boot, ty, start, sectors) in &entries {
        if ty == 0 || sectors == 0 {
            continue;
        }
        let mut p = Partition {
            index,
            type_id: format!("0x{ty:x}"),
            type_name: mbr_type_name(ty),
            start: start * 512,
            size: sectors * 512,
            start_sector: start,
            sectors,
            name: None,
            uuid: None,
            bootable: boot,
            problem: None,
        };
        fit(&mut p, disk);
        if is_extended(ty) {
            if ext_start.is_none() {
                ext_start = Some((start, sectors));
            } else {
                t.warnings.push(format!(
                    "more than one extended partition (entry {index} ignored)"
                ));
            }
        }
        t.partitions.push(p);
    }
    if let Some((ext, ext_len)) = ext_start {
        let mut cur = ext;
        let mut seen = HashSet::new();
        let mut index = 5;
        for _ in 0..MAX_LOGICAL {
            if !seen.insert(cur) {
                t.warnings
                    .push(format!("extended partition chain loops at sector {cur}"));
                break;
            }
            if cur.saturating_mul(512).saturating_add(512) > disk {
                t.warnings
                    .push(format!("EBR at sector {cur} is past the end of the disk"));
                break;
            }
            let ebr = read(dev, cur * 512, 512, "EBR")?;
            if ebr[510] != 0x55 || ebr[511] != 0xaa {
                if cur != ext {
                    t.warnings
                        .push(format!("EBR at sector {cur} has no 0x55AA signature"));
                }
                break;
            }
            let e0 = &ebr[446..462];
            let e1 = &ebr[462..478];
            let (ty, rel, n) = (e0[4], le32(e0, 8) as u64, le32(e0, 12) as u64);
            if ty != 0 && n != 0 {
                let start = cur + rel;
                let mut p = Partition {
                    index,
                    type_id: format!("0x{ty:x}"),
                    type_name: mbr_type_name(ty),
                    start: start * 512,
                    size: n * 512,
                    start_sector: start,
                    sectors: n,
                    name: None,
                    uuid: None,
                    bootable: e0[0] == 0x80,
                    problem: None,
                };
                fit(&mut p, disk);
                if p.problem.is_none() && (start < ext || start + n > ext + ext_len) {
                    t.warnings.push(format!(
                        "logical partition {index} lies outside its extended partition"
                    ));
                }
                t.partitions.push(p);
                index += 1;
            }
            let (nty, nrel) = (e1[4], le32(e1, 8) as u64);
            if nty == 0 || nrel == 0 || !is_extended(nty) {
                break;
            }
            cur = ext + nrel;
        }
    }
    Ok(Some(t))
}

fn read_gpt(dev: &dyn BlockDevice, ss: u64) -> Result<Option<PartitionTable>> {
    let disk = dev.size();
    if disk < ss * 3 {
        return Ok(None);
    }
    let what = dev.describe();
    let primary = read(dev, ss, ss as usize, "GPT header")?;
    if &primary[..8] != b"EFI PART" {
        return Ok(None);
    }
    let mut warnings = Vec::new();
    let (hdr, entries) = match gpt_header(dev, &primary, ss, 1) {
        Ok(x) => x,
        Err(e1) => {
            // Try the backup header at the last sector.
            let last = disk / ss - 1;
            let backup = read(dev, last * ss, ss as usize, "GPT backup header")?;
            match gpt_header(dev, &backup, ss, last) {
                Ok(x) => {
                    warnings.push(format!("primary GPT damaged ({e1}); using the backup"));
                    x
                }
                Err(e2) => {
                    return Err(DiskError::invalid(
                        what,
                        "GPT",
                        format!("primary: {e1}; backup: {e2}"),
                    ))
                }
            }
        }
    };
    let num = le32(&hdr, 80) as usize;
    let esz = le32(&hdr, 84) as usize;
    let mut t = PartitionTable {
        scheme: Scheme::Gpt,
        sector_size: ss,
        disk_id: Some(guid(&hdr[56..72])),
        partitions: Vec::new(),
        warnings,
    };
    for i in 0..num {
        let e = &entries[i * esz..i * esz + esz];
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = le64(e, 32);
        let last = le64(e, 40);
        let tg = guid(&e[..16]);
        let name_units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&name_units);
        let (sectors, problem) = if last < first {
            (0, Some(format!("last LBA {last} before first LBA {first}")))
        } else {
            (last - first + 1, None)
        };
        let mut p = Partition {
            index: i as u32 + 1,
            type_name: gpt_type_name(&tg),
            type_id: tg,
            start: first.saturating_mul(ss),
            size: sectors.saturating_mul(ss),
            start_sector: first,
            sectors,
            name: Some(name),
            uuid: Some(guid(&e[16..32])),
            bootable: false,
            problem,
        };
        if p.problem.is_none() {
            fit(&mut p, disk);
        }
        t.partitions.push(p);
    }
    Ok(Some(t))
}

/// Validates one GPT header (at `lba`) and reads its entry array.
fn gpt_header(
    dev: &dyn BlockDevice,
    h: &[u8],
    ss: u64,
    lba: u64,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    if &h[..8] != b"EFI PART" {
        return Err("no EFI PART signature".into());
    }
    let hsize = le32(h, 12) as usize;
    if hsize < 92 || hsize > h.len() {
        return Err(format!("header size {hsize} outside 92..={}", h.len()));
    }
    let mut c = h[..hsize].to_vec();
    c[16..20].fill(0);
    if CRC32.checksum(&c) != le32(h, 16) {
        return Err("header CRC mismatch".into());
    }
    if le64(h, 24) != lba {
        return Err(format!(
            "header says it is at LBA {}, found at {lba}",
            le64(h, 24)
        ));
    }
    let num = le32(h, 80);
    let esz = le32(h, 84) as u64;
    if num > MAX_GPT_ENTRIES {
        return Err(format!("{num} partition entries exceeds {MAX_GPT_ENTRIES}"));
    }
    if !(128..=4096).contains(&esz) || esz % 8 != 0 {
        return Err(format!("partition entry size {esz}"));
    }
    let bytes = num as u64 * esz;
    if bytes > MAX_GPT_ARRAY {
        return Err(format!("entry array of {bytes} bytes"));
    }
    let elba = le64(h, 72);
    let off = elba.checked_mul(ss).ok_or("entry array LBA overflows")?;
    if off.checked_add(bytes).is_none_or(|e| e > dev.size()) || elba < 2 && lba == 1 {
        return Err(format!("entry array at LBA {elba} outside the disk"));
    }
    let mut entries = vec![0u8; bytes as usize];
    dev.read_exact_at(off, &mut entries)
        .map_err(|e| format!("reading the entry array: {e}"))?;
    if CRC32.checksum(&entries) != le32(h, 88) {
        return Err("partition entry array CRC mismatch".into());
    }
    Ok((h[..hsize].to_vec(), entries))
}
