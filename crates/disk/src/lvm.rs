//! LVM2: physical volume labels (`LABELONE`), the metadata area and its text format, and
//! linear logical volumes mapped onto physical extents.
//!
//! Supported LV segments: `striped` with one stripe (that is how LVM writes a linear
//! segment) and `linear`. Other segment types (thin, thin-pool, snapshot, mirror, raid,
//! cache, striped with more than one stripe) are listed with a reason and are not mapped.
//!
//! Bounds: the label is looked for in the first four sectors; the metadata text is at
//! most [`MAX_METADATA`] bytes (a circular buffer that may wrap); the parser limits nesting
//! to 32 levels; every extent range is checked against the PV's `pe_count` and the device.

use std::collections::HashMap;
use std::sync::Arc;

use salvor_source::BlockDevice;
use serde::Serialize;

use crate::error::{DiskError, Result};
use crate::view::{Extent, ExtentMap};

/// The largest metadata text read.
pub const MAX_METADATA: u64 = 1 << 20;
/// The initial value of LVM's CRC.
pub const INITIAL_CRC: u32 = 0xf597_a6cf;
/// `mda_header` magic.
pub const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const MAX_DEPTH: usize = 32;
const MAX_SEGMENTS: usize = 65536;

/// LVM's CRC-32 (reflected, polynomial 0xedb88320, no final inversion).
pub fn calc_crc(initial: u32, data: &[u8]) -> u32 {
    let mut crc = initial;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// A physical volume label.
#[derive(Debug, Clone, Serialize)]
pub struct PvLabel {
    /// The sector (0..4) holding `LABELONE`.
    pub sector: u64,
    /// PV UUID, in LVM's dashed form.
    pub uuid: String,
    /// The PV's size in bytes, as the label records it.
    pub device_size: u64,
    /// Data areas (offset, size) in bytes.
    pub data_areas: Vec<(u64, u64)>,
    /// Metadata areas (offset, size) in bytes.
    pub metadata_areas: Vec<(u64, u64)>,
}

/// Formats a 32-character LVM UUID as LVM prints it (6-4-4-4-4-4-6).
pub fn dashed_uuid(raw: &str) -> String {
    if raw.len() != 32 || !raw.is_ascii() {
        return raw.to_string();
    }
    let cuts = [6, 4, 4, 4, 4, 4, 6];
    let mut out = String::new();
    let mut i = 0;
    for (k, c) in cuts.iter().enumerate() {
        if k > 0 {
            out.push('-');
        }
        out.push_str(&raw[i..i + c]);
        i += c;
    }
    out
}

fn norm_uuid(s: &str) -> String {
    s.chars().filter(|c| *c != '-').collect()
}

/// Looks for a PV label in the first four sectors. `Ok(None)`: not a PV.
pub fn read_pv_label(dev: &dyn BlockDevice) -> Result<Option<PvLabel>> {
    let what = dev.describe();
    if dev.size() < 4096 {
        return Ok(None);
    }
    let mut head = vec![0u8; 2048];
    dev.read_exact_at(0, &mut head)
        .map_err(|e| DiskError::dev(what.clone(), "LVM label", e))?;
    for sector in 0..4u64 {
        let s = &head[sector as usize * 512..sector as usize * 512 + 512];
        if &s[..8] != b"LABELONE" {
            continue;
        }
        let bad = |r: String| DiskError::invalid(what.clone(), "LVM label", r);
        if le64(s, 8) != sector {
            return Err(bad(format!(
                "label in sector {sector} says sector {}",
                le64(s, 8)
            )));
        }
        if calc_crc(INITIAL_CRC, &s[20..]) != le32(s, 16) {
            return Err(bad(format!("label CRC mismatch in sector {sector}")));
        }
        if &s[24..32] != b"LVM2 001" {
            return Err(bad(format!(
                "label type {:?}",
                String::from_utf8_lossy(&s[24..32])
            )));
        }
        let off = le32(s, 20) as usize;
        if !(32..=512 - 48).contains(&off) {
            return Err(bad(format!("pv_header offset {off}")));
        }
        let h = &s[off..];
        let uuid_raw = String::from_utf8_lossy(&h[..32]).into_owned();
        let device_size = le64(h, 32);
        let mut pos = 40;
        let mut lists: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
        for list in lists.iter_mut() {
            loop {
                if pos + 16 > h.len() {
                    return Err(bad("disk location lists run past the label sector".into()));
                }
                let (o, z) = (le64(h, pos), le64(h, pos + 8));
                pos += 16;
                if o == 0 {
                    break;
                }
                list.push((o, z));
            }
        }
        let [data_areas, metadata_areas] = lists;
        return Ok(Some(PvLabel {
            sector,
            uuid: dashed_uuid(&uuid_raw),
            device_size,
            data_areas,
            metadata_areas,
        }));
    }
    Ok(None)
}

/// Reads the current metadata text from the PV's metadata areas (the first one that is
/// valid). `Ok(None)`: the PV has no metadata area (its VG metadata lives on other PVs).
pub fn read_metadata_text(dev: &dyn BlockDevice, label: &PvLabel) -> Result<Option<String>> {
    let what = dev.describe();
    let mut errors = Vec::new();
    for &(start, size) in &label.metadata_areas {
        match read_mda(dev, start, size) {
            Ok(Some(t)) => return Ok(Some(t)),
            Ok(None) => {}
            Err(e) => errors.push(format!("metadata area at {start}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(None)
    } else {
        Err(DiskError::invalid(
            what,
            "LVM metadata area",
            errors.join("; "),
        ))
    }
}

fn read_mda(dev: &dyn BlockDevice, start: u64, size: u64) -> Result<Option<String>, String> {
    if size < 1024 || start.checked_add(size).is_none_or(|e| e > dev.size()) {
        return Err(format!("area of {size} bytes outside the device"));
    }
    let mut h = vec![0u8; 512];
    dev.read_exact_at(start, &mut h)
        .map_err(|e| e.to_string())?;
    if &h[4..20] != MDA_MAGIC {
        return Err("bad mda_header magic".into());
    }
    if calc_crc(INITIAL_CRC, &h[4..]) != le32(&h, 0) {
        return Err("mda_header CRC mismatch".into());
    }
    if le64(&h, 24) != start {
        return Err(format!("mda_header says it starts at {}", le64(&h, 24)));
    }
    let (off, len, csum, flags) = (le64(&h, 40), le64(&h, 48), le32(&h, 56), le32(&h, 60));
    if off == 0 || len == 0 || flags & 1 != 0 {
        return Ok(None);
    }
    if len > MAX_METADATA || len > size - 512 {
        return Err(format!(
            "metadata text of {len} bytes exceeds the limit or the area"
        ));
    }
    if off < 512 || off >= size {
        return Err(format!("metadata text offset {off} outside the area"));
    }
    let mut text = vec![0u8; len as usize];
    let first = (size - off).min(len) as usize;
    dev.read_exact_at(start + off, &mut text[..first])
        .map_err(|e| e.to_string())?;
    if first < len as usize {
        // Wrapped around the circular buffer.
        dev.read_exact_at(start + 512, &mut text[first..])
            .map_err(|e| e.to_string())?;
    }
    if calc_crc(INITIAL_CRC, &text) != csum {
        return Err("metadata text checksum mismatch".into());
    }
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    text.truncate(end);
    String::from_utf8(text)
        .map(Some)
        .map_err(|_| "metadata text is not UTF-8".into())
}

// ---------------------------------------------------------------- text format

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Num(i64),
    List(Vec<Value>),
}

#[derive(Debug, Default)]
struct Section {
    name: String,
    values: Vec<(String, Value)>,
    children: Vec<Section>,
}

impl Section {
    fn get(&self, k: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }
    fn num(&self, k: &str) -> Result<i64, String> {
        match self.get(k) {
            Some(Value::Num(n)) => Ok(*n),
            _ => Err(format!("{}: missing number {k}", self.name)),
        }
    }
    fn unum(&self, k: &str) -> Result<u64, String> {
        let n = self.num(k)?;
        u64::try_from(n).map_err(|_| format!("{}: negative {k}", self.name))
    }
    fn str(&self, k: &str) -> Option<&str> {
        match self.get(k) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    fn child(&self, k: &str) -> Option<&Section> {
        self.children.iter().find(|c| c.name == k)
    }
    fn strings(&self, k: &str) -> Vec<String> {
        match self.get(k) {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }
    fn err(&self, m: &str) -> String {
        let line = self.s[..self.i.min(self.s.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("line {line}: {m}")
    }
    fn ident(&mut self) -> Option<String> {
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"_.-+".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        (self.i > st).then(|| String::from_utf8_lossy(&self.s[st..self.i]).into_owned())
    }
    fn value(&mut self, depth: usize) -> Result<Value, String> {
        self.skip();
        match self.s.get(self.i) {
            Some(b'"') => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err(self.err("unterminated string")),
                        Some(b'"') => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            if let Some(&c) = self.s.get(self.i + 1) {
                                out.push(c);
                            }
                            self.i += 2;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Value::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("nesting too deep"));
                }
                self.i += 1;
                let mut l = Vec::new();
                loop {
                    self.skip();
                    match self.s.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        None => return Err(self.err("unterminated list")),
                        _ => l.push(self.value(depth + 1)?),
                    }
                }
                Ok(Value::List(l))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let st = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.')
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[st..self.i]).unwrap_or("");
                let int = t.split('.').next().unwrap_or("");
                int.parse::<i64>()
                    .map(Value::Num)
                    .map_err(|_| self.err(&format!("bad number {t:?}")))
            }
            _ => Err(self.err("expected a value")),
        }
    }
    /// Parses items until `}` (inside a section) or the end of input (top level).
    fn section(&mut self, name: String, depth: usize) -> Result<Section, String> {
        if depth >= MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let mut sec = Section {
            name,
            ..Default::default()
        };
        loop {
            self.skip();
            match self.s.get(self.i) {
                None if depth == 0 => return Ok(sec),
                None => return Err(self.err("unterminated section")),
                Some(b'}') if depth > 0 => {
                    self.i += 1;
                    return Ok(sec);
                }
                _ => {}
            }
            let key = self.ident().ok_or_else(|| self.err("expected a name"))?;
            self.skip();
            match self.s.get(self.i) {
                Some(b'=') => {
                    self.i += 1;
                    let v = self.value(depth)?;
                    sec.values.push((key, v));
                }
                Some(b'{') => {
                    self.i += 1;
                    let c = self.section(key, depth + 1)?;
                    sec.children.push(c);
                }
                _ => return Err(self.err("expected '=' or '{'")),
            }
        }
    }
}

/// A volume group, as its metadata describes it.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeGroup {
    /// Volume group name.
    pub name: String,
    /// VG UUID, in LVM's dashed form.
    pub uuid: String,
    /// Metadata sequence number (the highest copy across the PVs wins).
    pub seqno: u64,
    /// Extent size in bytes.
    pub extent_size: u64,
    /// The PVs the metadata lists.
    pub physical_volumes: Vec<PhysicalVolume>,
    /// The LVs the metadata lists, hidden ones (`_tmeta`, `_tdata`) included.
    pub logical_volumes: Vec<LogicalVolume>,
}

/// A physical volume of a volume group, as the VG metadata lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PhysicalVolume {
    /// The name used in segment `stripes` lists (`pv0`).
    pub name: String,
    /// PV UUID, in LVM's dashed form.
    pub uuid: String,
    /// The device path on the original host (a hint only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_hint: Option<String>,
    /// Start of the first extent, in bytes from the start of the PV.
    pub pe_start: u64,
    /// Number of physical extents.
    pub pe_count: u64,
}

/// A logical volume, as the VG metadata describes it.
#[derive(Debug, Clone, Serialize)]
pub struct LogicalVolume {
    /// LV name.
    pub name: String,
    /// LV UUID, in LVM's dashed form.
    pub uuid: String,
    /// Status flags as recorded (`READ`, `WRITE`, `VISIBLE`).
    pub status: Vec<String>,
    /// Size in bytes (sum of the segments).
    pub size: u64,
    /// The LV's segments, in logical order.
    pub segments: Vec<Segment>,
    /// Why this LV cannot be read as a block device, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
}

impl LogicalVolume {
    /// True when LVM shows the LV to users (`VISIBLE` status); pool sub-volumes are hidden.
    pub fn visible(&self) -> bool {
        self.status.iter().any(|s| s == "VISIBLE")
    }
}

/// One segment of a logical volume: a run of logical extents and where they live.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// First logical extent of the segment.
    pub start_extent: u64,
    /// Number of extents.
    pub extent_count: u64,
    /// Segment type as recorded (`striped`, `thin-pool`, `thin`, `raid1`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// (PV name, first physical extent) per stripe.
    pub stripes: Vec<(String, u64)>,
    /// `thin-pool`: the hidden LV holding the pool's dm-thin metadata (`<pool>_tmeta`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// `thin-pool`: the hidden LV holding the pool's data blocks (`<pool>_tdata`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// `thin-pool`: the data block size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<u64>,
    /// `thin-pool` and `thin`: LVM's transaction id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<u64>,
    /// `thin`: the pool LV this thin volume lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thin_pool: Option<String>,
    /// `thin`: the thin device id inside the pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<u64>,
}

impl Segment {
    /// True for a `thin-pool` segment.
    pub fn is_thin_pool(&self) -> bool {
        self.kind == "thin-pool"
    }
}

impl LogicalVolume {
    /// The pool segment, when this LV is a thin pool (one `thin-pool` segment).
    pub fn thin_pool_segment(&self) -> Option<&Segment> {
        match self.segments.as_slice() {
            [seg] if seg.is_thin_pool() => Some(seg),
            _ => None,
        }
    }

    /// (pool LV name, thin device id), when this LV is a thin volume (one `thin` segment).
    pub fn thin_volume(&self) -> Option<(&str, u64)> {
        match self.segments.as_slice() {
            [seg] if seg.kind == "thin" => Some((seg.thin_pool.as_deref()?, seg.device_id?)),
            _ => None,
        }
    }
}

/// Metadata text that does not parse as a volume group ([`parse_metadata`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MetadataError {
    /// What did not parse (the section, key or value, the limit exceeded).
    pub reason: String,
}

/// Parses the metadata text of one volume group.
pub fn parse_metadata(text: &str) -> Result<VolumeGroup, MetadataError> {
    parse_vg(text).map_err(|reason| MetadataError { reason })
}

fn parse_vg(text: &str) -> Result<VolumeGroup, String> {
    if text.len() as u64 > MAX_METADATA {
        return Err(format!(
            "{} bytes of metadata exceeds {MAX_METADATA}",
            text.len()
        ));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let top = p.section(String::new(), 0)?;
    let vg = top
        .children
        .iter()
        .find(|c| c.child("physical_volumes").is_some())
        .ok_or("no volume group section (with physical_volumes)")?;
    let extent_sectors = vg.unum("extent_size")?;
    if extent_sectors == 0 || extent_sectors > (1 << 32) {
        return Err(format!("extent_size {extent_sectors} sectors"));
    }
    let extent_size = extent_sectors * 512;
    let mut pvs = Vec::new();
    for pv in &vg.child("physical_volumes").unwrap().children {
        pvs.push(PhysicalVolume {
            name: pv.name.clone(),
            uuid: pv.str("id").unwrap_or("").to_string(),
            device_hint: pv.str("device").map(str::to_string),
            pe_start: pv
                .unum("pe_start")?
                .checked_mul(512)
                .ok_or("pe_start overflows")?,
            pe_count: pv.unum("pe_count")?,
        });
    }
    let mut lvs = Vec::new();
    if let Some(sec) = vg.child("logical_volumes") {
        for lv in &sec.children {
            let mut segments = Vec::new();
            let mut unsupported = None;
            let mut extents = 0u64;
            for seg in lv.children.iter().filter(|c| c.name.starts_with("segment")) {
                if segments.len() >= MAX_SEGMENTS {
                    return Err(format!("{}: too many segments", lv.name));
                }
                let kind = seg.str("type").unwrap_or("").to_string();
                let start_extent = seg.unum("start_extent")?;
                let extent_count = seg.unum("extent_count")?;
                let mut stripes = Vec::new();
                if let Some(Value::List(l)) = seg.get("stripes") {
                    for pair in l.chunks(2) {
                        match pair {
                            [Value::Str(n), Value::Num(pe)] if *pe >= 0 => {
                                stripes.push((n.clone(), *pe as u64))
                            }
                            _ => return Err(format!("{}: malformed stripes list", lv.name)),
                        }
                    }
                }
                let name = |k: &str| seg.str(k).map(str::to_string);
                let (metadata, pool, thin_pool) =
                    (name("metadata"), name("pool"), name("thin_pool"));
                let chunk_size = match seg.get("chunk_size") {
                    Some(_) => Some(
                        seg.unum("chunk_size")?
                            .checked_mul(512)
                            .ok_or("chunk_size overflows")?,
                    ),
                    None => None,
                };
                let transaction_id = seg.unum("transaction_id").ok();
                let device_id = match seg.get("device_id") {
                    Some(_) => Some(seg.unum("device_id")?),
                    None => None,
                };
                let why = match kind.as_str() {
                    "striped" | "linear" if stripes.len() == 1 => None,
                    "striped" => Some(format!("striped segment with {} stripes", stripes.len())),
                    "thin-pool" if metadata.is_some() && pool.is_some() => Some(
                        "a thin pool holds thin volumes, not a filesystem (its thin volumes are listed as volumes; Docker's direct-lvm devices are read through it)".into(),
                    ),
                    "thin-pool" => Some("thin-pool segment without metadata/pool LVs".into()),
                    "thin" if thin_pool.is_some() && device_id.is_some() => None,
                    "thin" => Some("thin segment without thin_pool/device_id".into()),
                    other => Some(format!("segment type {other:?}")),
                };
                if unsupported.is_none() {
                    unsupported = why;
                }
                extents = extents.saturating_add(extent_count);
                segments.push(Segment {
                    start_extent,
                    extent_count,
                    kind,
                    stripes,
                    metadata,
                    pool,
                    chunk_size,
                    transaction_id,
                    thin_pool,
                    device_id,
                });
            }
            if segments.is_empty() && unsupported.is_none() {
                unsupported = Some("no segments".into());
            }
            let thin_segs = segments.iter().filter(|s| s.kind == "thin").count();
            if thin_segs > 0 && segments.len() > 1 && unsupported.is_none() {
                unsupported = Some(format!(
                    "thin volume with {} segments (LVM writes one)",
                    segments.len()
                ));
            }
            lvs.push(LogicalVolume {
                name: lv.name.clone(),
                uuid: lv.str("id").unwrap_or("").to_string(),
                status: lv.strings("status"),
                size: extents.saturating_mul(extent_size),
                segments,
                unsupported,
            });
        }
    }
    Ok(VolumeGroup {
        name: vg.name.clone(),
        uuid: vg.str("id").unwrap_or("").to_string(),
        seqno: vg.unum("seqno").unwrap_or(0),
        extent_size,
        physical_volumes: pvs,
        logical_volumes: lvs,
    })
}

/// Maps a logical volume onto its physical volumes' devices, keyed by PV UUID (either
/// form). Each PV device must be the whole PV (the partition holding the label).
pub fn map_lv(
    vg: &VolumeGroup,
    lv: &LogicalVolume,
    pv_devices: &HashMap<String, Arc<dyn BlockDevice>>,
) -> Result<ExtentMap> {
    let what = format!("LV {}/{}", vg.name, lv.name);
    let bad = |r: String| DiskError::invalid(what.clone(), "LVM segment", r);
    if let Some(why) = &lv.unsupported {
        return Err(DiskError::unsupported(what, why.clone()));
    }
    let devs: HashMap<String, &Arc<dyn BlockDevice>> =
        pv_devices.iter().map(|(k, v)| (norm_uuid(k), v)).collect();
    let es = vg.extent_size;
    let mut runs = Vec::new();
    for seg in &lv.segments {
        let Some((pvname, pe)) = seg.stripes.first() else {
            return Err(DiskError::unsupported(
                what,
                format!("{} segment: not mapped onto physical volumes", seg.kind),
            ));
        };
        let pv = vg
            .physical_volumes
            .iter()
            .find(|p| &p.name == pvname)
            .ok_or_else(|| bad(format!("segment names unknown PV {pvname:?}")))?;
        if pe
            .checked_add(seg.extent_count)
            .is_none_or(|e| e > pv.pe_count)
        {
            return Err(bad(format!(
                "extents {pe}+{} beyond {}'s {} extents",
                seg.extent_count, pv.name, pv.pe_count
            )));
        }
        let dev = devs.get(&norm_uuid(&pv.uuid)).ok_or_else(|| {
            DiskError::unsupported(
                what.clone(),
                format!("PV {} ({}) is not on this disk", pv.name, pv.uuid),
            )
        })?;
        let len = seg
            .extent_count
            .checked_mul(es)
            .ok_or_else(|| bad("size overflows".into()))?;
        let start = seg
            .start_extent
            .checked_mul(es)
            .ok_or_else(|| bad("start overflows".into()))?;
        let off = pe
            .checked_mul(es)
            .and_then(|o| o.checked_add(pv.pe_start))
            .ok_or_else(|| bad("PV offset overflows".into()))?;
        if off.checked_add(len).is_none_or(|e| e > dev.size()) {
            return Err(bad(format!(
                "extents at byte {off} (+{len}) past the end of {} ({} bytes)",
                dev.describe(),
                dev.size()
            )));
        }
        runs.push(Extent {
            start,
            len,
            device: Some((*dev).clone()),
            device_offset: off,
        });
    }
    ExtentMap::new(runs, format!("logical volume {}/{}", vg.name, lv.name))
        .map_err(|e| bad(e.to_string()))
}
