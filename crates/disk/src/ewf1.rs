//! E01 (EWF1) segment sets: finding and opening the segments ourselves (the `ewf` crate
//! is handed the opened files, never a name), and checking that they belong to one
//! acquisition.
//!
//! Segments are the first file's siblings by extension (`.E01`, `.E02`, … `.E99`, `.EAA`,
//! … `.EZZ`, `.FAA`, …, in the first file's case), looked up one after the other until a
//! name is absent; each is opened through the one opening policy (see
//! [`crate::container`]: inside the first segment's directory, no symlink leading out,
//! regular files only) and must be the file of that name, not a symlink to another name. The `volume`/`disk` section of the
//! first segment and the `data` section of the others record the acquisition's geometry
//! and set identifier (a GUID, when the writer records one): segments that disagree are
//! refused, so a segment of another acquisition is not merged silently. The last segment
//! must end with a `done` section and no other may: a missing segment is an error, not a
//! shorter disk. A copy of a
//! segment of another acquisition with the same geometry and no set identifier cannot
//! be told apart when opening (its chunks are self-consistent); verifying the image's
//! stored MD5 finds it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::container::OpenOptions;
use crate::error::{DiskError, Result};
use crate::files::{open_segment, Referenced};
use crate::read_full;

/// Segments read at most.
pub const MAX_SEGMENTS: u32 = 14_971;
/// Section descriptors walked per segment while looking for the set identifier.
const MAX_SECTIONS: usize = 1 << 16;
/// `EVF\x09\r\n\xff\0`.
pub const SIGNATURE: &[u8; 8] = b"EVF\x09\x0d\x0a\xff\x00";

/// The extension of segment `n` (1-based) of a set whose first segment has extension
/// `first_ext` (`E01`): `E01`…`E99`, then `EAA`…`EZZ`, `FAA`…, as libewf names them.
pub fn segment_extension(first_ext: &str, n: u32) -> Option<String> {
    let mut it = first_ext.chars();
    let c0 = it.next()?;
    if n == 0 {
        return None;
    }
    if n < 100 {
        return Some(format!("{c0}{n:02}"));
    }
    let lower = c0.is_ascii_lowercase();
    let k = n - 100;
    let (hi, lo) = (k / (26 * 26), k % (26 * 26));
    let first = (c0 as u8).checked_add(u8::try_from(hi).ok()?)?;
    let limit = if lower { b'z' } else { b'Z' };
    if first > limit {
        return None;
    }
    let base = if lower { b'a' } else { b'A' };
    Some(format!(
        "{}{}{}",
        first as char,
        (base + (lo / 26) as u8) as char,
        (base + (lo % 26) as u8) as char
    ))
}

#[cfg_attr(not(feature = "ewf"), allow(dead_code))]
/// Finds and opens every segment of the set that `first` (opened as `first_file`) starts.
/// Returns the segments in order, canonical paths included.
pub(crate) fn open_segments(
    first: &Path,
    first_file: File,
    opts: &OpenOptions,
) -> Result<Vec<Referenced>> {
    let ext = first
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.len() == 3)
        .unwrap_or("E01")
        .to_string();
    let stem = first
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    let mut segs = vec![Referenced {
        path: crate::container::canonical(first)?,
        file: first_file,
        explicit: false,
    }];
    for n in 2..=MAX_SEGMENTS + 1 {
        if n > MAX_SEGMENTS {
            return Err(DiskError::invalid(
                first.display().to_string(),
                "EWF",
                format!("more than {MAX_SEGMENTS} segments"),
            ));
        }
        let Some(next) = segment_extension(&ext, n) else {
            break;
        };
        let mut name = stem.clone();
        name.push(".");
        name.push(&next);
        let Some(name) = name.to_str().map(str::to_string) else {
            break;
        };
        let candidate = crate::files::dir_of(first).join(&name);
        if std::fs::symlink_metadata(&candidate).is_err() && !opts.backing_files.contains_key(&name)
        {
            break;
        }
        segs.push(open_segment(first, &name, opts)?);
    }
    check_set(first, &segs)?;
    Ok(segs)
}

/// What a segment's `volume`, `disk` or `data` section says about its acquisition: the
/// geometry (chunk count, sectors per chunk, bytes per sector, sector count) and the set
/// identifier (all zero when the writer recorded none, as `ewfacquire -f encase6` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetIdentity {
    /// Chunks in the acquired media.
    pub chunk_count: u32,
    /// Sectors per chunk.
    pub sectors_per_chunk: u32,
    /// Bytes per sector (usually 512).
    pub bytes_per_sector: u32,
    /// Sectors in the acquired media.
    pub sector_count: u64,
    /// The set identifier (GUID) shared by every segment of one acquisition.
    pub set_identifier: [u8; 16],
}

impl std::fmt::Display for SetIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} chunks of {} x {} bytes, {} sectors, set identifier {}",
            self.chunk_count,
            self.sectors_per_chunk,
            self.bytes_per_sector,
            self.sector_count,
            hex(&self.set_identifier)
        )
    }
}

/// The [`SetIdentity`] recorded in a segment's first `volume`, `disk` or `data` section.
pub fn set_identity(path: &Path, file: &File) -> Result<Option<SetIdentity>> {
    Ok(walk(path, file)?.0)
}

/// Walks a segment's section list: its [`SetIdentity`] and whether it ends with a
/// `done` section (the last segment of a set) rather than `next`.
fn walk(path: &Path, file: &File) -> Result<(Option<SetIdentity>, bool)> {
    let io = |e| DiskError::io(path, e);
    let len = file.metadata().map_err(io)?.len();
    let mut off = 13u64;
    let mut id = None;
    for _ in 0..MAX_SECTIONS {
        if off.checked_add(76).is_none_or(|e| e > len) {
            break;
        }
        let mut d = [0u8; 76];
        read_full(file, off, &mut d).map_err(io)?;
        let ty_end = d[..16].iter().position(|&b| b == 0).unwrap_or(16);
        let ty = &d[..ty_end];
        let le64 = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let (next, size) = (le64(16), le64(24));
        if id.is_none() && matches!(ty, b"volume" | b"disk" | b"data") && size >= 76 + 80 {
            let mut v = [0u8; 80];
            if read_full(file, off + 76, &mut v).map_err(io)? == 80 {
                let u32_at = |o: usize| u32::from_le_bytes([v[o], v[o + 1], v[o + 2], v[o + 3]]);
                let mut sc = [0u8; 8];
                sc.copy_from_slice(&v[16..24]);
                let mut g = [0u8; 16];
                g.copy_from_slice(&v[64..80]);
                id = Some(SetIdentity {
                    chunk_count: u32_at(4),
                    sectors_per_chunk: u32_at(8),
                    bytes_per_sector: u32_at(12),
                    sector_count: u64::from_le_bytes(sc),
                    set_identifier: g,
                });
            }
        }
        if ty == b"done" {
            return Ok((id, true));
        }
        if ty == b"next" || next <= off {
            break;
        }
        off = next;
    }
    Ok((id, false))
}

fn hex(g: &[u8; 16]) -> String {
    g.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg_attr(not(feature = "ewf"), allow(dead_code))]
/// Refuses a set whose segments describe different acquisitions (geometry or set
/// identifier), whose last segment found does not end the set (`done`: a segment is
/// missing), or in which a segment follows the one that ends it.
fn check_set(first: &Path, segs: &[Referenced]) -> Result<()> {
    let mut set: Option<(SetIdentity, PathBuf)> = None;
    for (i, s) in segs.iter().enumerate() {
        let (id, done) = walk(&s.path, &s.file)?;
        if done && i + 1 < segs.len() {
            return Err(DiskError::invalid(
                first.display().to_string(),
                "EWF",
                format!(
                    "{} ends the set (done section) but {} follows it",
                    s.path.display(),
                    segs[i + 1].path.display()
                ),
            ));
        }
        if !done && i + 1 == segs.len() {
            // The set goes on but the next segment is not there: a cut copy of the
            // acquisition, said as damage (exit 3), never read as a shorter disk.
            let next = first
                .extension()
                .and_then(|e| e.to_str())
                .and_then(|ext| segment_extension(ext, i as u32 + 2))
                .map(|x| first.with_extension(x))
                .unwrap_or_else(|| s.path.clone());
            return Err(DiskError::Damaged {
                damage: salvor_source::EvidenceDamage {
                    file: next.clone(),
                    kind: salvor_source::DamageKind::Missing,
                    offset: None,
                    detail: format!(
                        "{} is not the last segment of the EWF set (no done section) and segment {} ({}) is missing (truncated copy?)",
                        s.path.display(),
                        i + 2,
                        next.display()
                    ),
                    lost: "the rest of the acquired media".to_string(),
                },
            });
        }
        let Some(id) = id else {
            continue;
        };
        match &set {
            None => set = Some((id, s.path.clone())),
            Some((id0, p0)) if *id0 != id => {
                return Err(DiskError::Refused {
                    referrer: first.to_path_buf(),
                    kind: "EWF segment",
                    name: s
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    reason: format!(
                        "{} belongs to another acquisition: it records {id} where {} records {id0}",
                        s.path.display(),
                        p0.display(),
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::segment_extension;

    #[test]
    fn extensions_follow_libewf() {
        assert_eq!(segment_extension("E01", 1).as_deref(), Some("E01"));
        assert_eq!(segment_extension("E01", 99).as_deref(), Some("E99"));
        assert_eq!(segment_extension("E01", 100).as_deref(), Some("EAA"));
        assert_eq!(segment_extension("E01", 101).as_deref(), Some("EAB"));
        assert_eq!(segment_extension("E01", 100 + 676).as_deref(), Some("FAA"));
        assert_eq!(segment_extension("e01", 100).as_deref(), Some("eaa"));
        assert_eq!(segment_extension("E01", 100 + 676 * 22).as_deref(), None);
    }
}
