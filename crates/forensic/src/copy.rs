//! Copy artifacts: the metadata a copy of the evidence did not keep.
//!
//! Evidence is often a copy: `cp -r` (no owners, new mtimes, the copier's umask, no xattrs,
//! no hard links), `rsync -a` (no xattrs, no hard links), a collector running under a
//! umask. The audit ([`crate::audit`]) reports every difference from the engine's record;
//! this module looks at the audits of *all* layers of the evidence together and decides
//! whether the differences have the shape of such a copy. A copy changes every file the
//! same way, so each artifact is accepted only when it is uniform over the evidence:
//!
//! | artifact | accepted when (over every audited layer) | explains |
//! |---|---|---|
//! | umask | every mode difference that only removes bits removes bits of one mask `m` (a umask, plus setuid/setgid when `cp` cleared them), at least 2 such paths, and *every* compared mode equals `recorded & !m` | `mode-changed` with `found == recorded & !m` |
//! | ownership | every compared path is owned by one uid (gid), at least 3 paths, at least one differs from the record | `uid-changed` (`gid-changed`) whose found owner is that one |
//! | mtimes (files; directories) | at least 3 compared, none has its recorded mtime, and every one found is newer than the newest mtime the layer's tar-split records (the layer's creation, as far as the evidence says) | `mtime-changed` newer than that |
//! | setuid/setgid cleared (part of the umask row: `chown -R`, `cp -r`) | as umask, the mask holding 06000 | also `capability-changed` found `none` (the kernel drops capabilities where it clears setuid) |
//! | extended attributes | the tar-split records `security.capability` or overlay opaque attributes, and not one compared path has any on disk | `capability-changed` found `none`, `opaque-removed` found `not opaque` |
//! | hard links | no hard link of the tar-split is one inode on disk, and every separate name is a byte-identical copy of its target (same size, mode, owner) | those `hardlink-broken` |
//!
//! The last two are weak (one removed attribute is also what a tamperer does): with a
//! single sample in the whole evidence they are accepted only when another artifact is
//! (a lost attribute and a hard link broken into an identical copy support each other).
//! Nothing here turns a check off: a finding that the artifact does not explain — a
//! setuid bit added under a umask, an mtime touched after a `chown -R`, a backdated mtime
//! in a `cp -r` copy, a broken hard link whose names differ — stays a finding.

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::{AuditFinding, AuditKind, AuditReport, FindingClass};

/// Distinct (recorded, found) mode pairs kept per layer; beyond, no umask is detected.
pub const MAX_MODE_PAIRS: usize = 4096;
/// Distinct owners kept per layer (only "one owner" matters).
const MAX_OWNERS: usize = 4;
/// Fewest owner or mtime comparisons for the ownership and mtime artifacts.
pub const MIN_SAMPLES: u64 = 3;

/// Mtime comparisons of one class of paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtimeStats {
    /// Paths whose mtime was compared.
    pub checked: u64,
    /// Of those, the paths whose mtime on disk equals the recorded one.
    pub matched: u64,
    /// The oldest mtime found on disk (seconds).
    pub oldest_found: Option<i64>,
}

/// What the audit of one layer compared, in the aggregate (filled by the audit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// (recorded permission bits, found permission bits) → paths.
    pub modes: BTreeMap<(u32, u32), u64>,
    /// More than [`MAX_MODE_PAIRS`] distinct pairs.
    pub modes_overflow: bool,
    /// Paths whose owner was compared.
    pub owners_checked: u64,
    /// Distinct uids (gids) found on disk, at most a few.
    pub uids: BTreeSet<u32>,
    /// Distinct gids found on disk (`u32::MAX` stands for "more than a few").
    pub gids: BTreeSet<u32>,
    /// Compared paths whose uid on disk differs from the record.
    pub uid_diffs: u64,
    /// Compared paths whose gid on disk differs from the record.
    pub gid_diffs: u64,
    /// `[non-directories, directories]`.
    pub mtimes: [MtimeStats; 2],
    /// The newest mtime any header of the tar-split records.
    pub newest_recorded_mtime: Option<i64>,
    /// Extended attributes the record expects (capabilities, opaque markers kept as xattrs).
    pub xattrs_expected: u64,
    /// Compared paths with such an attribute on disk.
    pub xattrs_present: u64,
    /// Recorded capabilities absent on disk, and kept.
    pub caps_lost: u64,
    /// Recorded capabilities still present on disk.
    pub caps_kept: u64,
    /// Hard links of the tar-split compared, intact, and broken into identical copies.
    pub links: u64,
    /// Hard links still one inode on disk.
    pub links_intact: u64,
    /// Hard links broken into byte-identical copies (same size, mode and owner).
    pub links_identical: u64,
}

impl CopyStats {
    /// One compared mode.
    pub fn mode(&mut self, recorded: u32, found: u32) {
        if let Some(n) = self.modes.get_mut(&(recorded, found)) {
            *n += 1;
        } else if self.modes.len() < MAX_MODE_PAIRS {
            self.modes.insert((recorded, found), 1);
        } else {
            self.modes_overflow = true;
        }
    }

    /// One compared owner.
    pub fn owner(&mut self, uid: u32, gid: u32, uid_ok: bool, gid_ok: bool) {
        self.owners_checked += 1;
        self.uid_diffs += u64::from(!uid_ok);
        self.gid_diffs += u64::from(!gid_ok);
        if self.uids.len() < MAX_OWNERS {
            self.uids.insert(uid);
        } else if !self.uids.contains(&uid) {
            self.uids.insert(u32::MAX); // "several"; the set stays bounded
        }
        if self.gids.len() < MAX_OWNERS {
            self.gids.insert(gid);
        } else if !self.gids.contains(&gid) {
            self.gids.insert(u32::MAX);
        }
    }

    /// One compared mtime.
    pub fn mtime(&mut self, dir: bool, found: i64, differs: bool) {
        let m = &mut self.mtimes[usize::from(dir)];
        m.checked += 1;
        m.matched += u64::from(!differs);
        m.oldest_found = Some(m.oldest_found.map_or(found, |o| o.min(found)));
    }

    /// One mtime of the record.
    pub fn recorded_mtime(&mut self, sec: i64) {
        self.newest_recorded_mtime = Some(self.newest_recorded_mtime.map_or(sec, |n| n.max(sec)));
    }

    /// One compared extended attribute.
    pub fn xattr(&mut self, expected: bool, present: bool) {
        self.xattrs_expected += u64::from(expected);
        self.xattrs_present += u64::from(present);
    }

    /// One compared `security.capability`.
    pub fn cap(&mut self, recorded: bool, present: bool) {
        self.caps_lost += u64::from(recorded && !present);
        self.caps_kept += u64::from(recorded && present);
    }

    /// One compared hard link.
    pub fn link(&mut self, intact: bool, identical_copy: bool) {
        self.links += 1;
        self.links_intact += u64::from(intact);
        self.links_identical += u64::from(identical_copy);
    }
}

/// The copy artifacts detected in the evidence as a whole ([`detect`]). The mode mask is
/// the bits the evidence shows removed: 0755 → 0750 alone says `005`; a 1777 directory
/// that became 1750 shows the `020` of a umask 027.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyArtifacts {
    /// The bits every narrowed mode lost: the umask (`0o027`), plus `0o6000` when the copy
    /// cleared setuid/setgid.
    pub mode_mask: Option<u32>,
    /// The one uid (gid) that owns every path.
    pub uid: Option<u32>,
    /// The one gid that owns every path.
    pub gid: Option<u32>,
    /// No file (directory) kept its mtime; every one is newer than its layer's record.
    pub file_mtimes_reset: bool,
    /// No directory kept its mtime; every one is newer than its layer's record.
    pub dir_mtimes_reset: bool,
    /// Every recorded extended attribute is absent on disk (a copy that drops xattrs).
    pub xattrs_lost: bool,
    /// Every recorded hard link was broken into identical copies (a copy that does not keep hard links).
    pub hardlinks_not_kept: bool,
    /// setuid/setgid cleared and every recorded file capability gone with them (what
    /// the kernel does on `chown`, or to a copy made without the privilege to keep them).
    pub caps_cleared: bool,
}

/// The kinds of difference a copy artifact explains, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ArtifactClass {
    /// Permission bits (a umask applied by the copy).
    Mode,
    /// uid or gid (a copy made as one user).
    Owner,
    /// Modification times (a copy that does not keep them).
    Mtime,
    /// Extended attributes, capabilities included.
    Xattr,
    /// Hard links broken into copies.
    HardLink,
}

impl ArtifactClass {
    /// `mode`, `owner`, `mtime`, `xattr`, `hard-link` (as in "18 mode differences").
    pub fn as_str(&self) -> &'static str {
        match self {
            ArtifactClass::Mode => "mode",
            ArtifactClass::Owner => "owner",
            ArtifactClass::Mtime => "mtime",
            ArtifactClass::Xattr => "xattr",
            ArtifactClass::HardLink => "hard-link",
        }
    }
}

fn parse_octal(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 8).ok()
}

fn parse_sec(s: &str) -> Option<i64> {
    s.split('.').next()?.parse().ok()
}

impl CopyArtifacts {
    /// True when no artifact was detected.
    pub fn is_empty(&self) -> bool {
        *self == CopyArtifacts::default()
    }

    /// What the copy looks like, for the line above the table: `made with umask 027`,
    /// `that did not keep ownership (every path owned by 0:0)` …, joined with commas.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.mode_mask {
            if m & 0o777 != 0 {
                parts.push(format!("made with umask {:03o}", m & 0o777));
            }
            if m & 0o6000 != 0 {
                parts.push("that cleared setuid/setgid bits and file capabilities".into());
            }
        }
        match (self.uid, self.gid) {
            (Some(u), Some(g)) => parts.push(format!(
                "that did not keep ownership (every path owned by {u}:{g})"
            )),
            (Some(u), None) => parts.push(format!(
                "that did not keep owners (every path owned by uid {u})"
            )),
            (None, Some(g)) => parts.push(format!(
                "that did not keep groups (every path in group {g})"
            )),
            (None, None) => {}
        }
        match (self.file_mtimes_reset, self.dir_mtimes_reset) {
            (true, true) => parts.push("that did not keep mtimes".to_string()),
            (true, false) => parts.push("that did not keep file mtimes".to_string()),
            (false, true) => parts.push("that did not keep directory mtimes".to_string()),
            (false, false) => {}
        }
        if self.xattrs_lost {
            parts.push("that did not keep extended attributes".into());
        }
        if self.hardlinks_not_kept {
            parts.push("that did not keep hard links".into());
        }
        parts.join(", ")
    }

    /// Which artifact explains `f` (found in the layer whose audit has `stats`), if any.
    pub fn explains(&self, f: &AuditFinding, stats: &CopyStats) -> Option<ArtifactClass> {
        let explained = match f.kind {
            AuditKind::ModeChanged => self.mode_mask.is_some_and(|m| {
                match (parse_octal(&f.expected), parse_octal(&f.found)) {
                    (Some(e), Some(x)) => x != e && x == e & !m,
                    _ => false,
                }
            }),
            AuditKind::UidChanged => self
                .uid
                .is_some_and(|u| f.found.parse::<u32>().ok() == Some(u)),
            AuditKind::GidChanged => self
                .gid
                .is_some_and(|g| f.found.parse::<u32>().ok() == Some(g)),
            AuditKind::MtimeChanged => {
                let reset = if f.is_dir {
                    self.dir_mtimes_reset
                } else {
                    self.file_mtimes_reset
                };
                reset
                    && parse_sec(&f.found)
                        .is_some_and(|s| stats.newest_recorded_mtime.is_none_or(|n| s > n))
            }
            // The kernel drops file capabilities where it clears setuid/setgid (chown, a
            // copy by a process without the privilege to keep them).
            AuditKind::CapabilityChanged => {
                (self.xattrs_lost || self.caps_cleared) && f.found == "none"
            }
            AuditKind::OpaqueRemoved => self.xattrs_lost && f.found == "not opaque",
            AuditKind::HardlinkBroken => self.hardlinks_not_kept && f.identical_copy,
            _ => false,
        };
        if !explained {
            return None;
        }
        Some(match f.kind {
            AuditKind::ModeChanged => ArtifactClass::Mode,
            AuditKind::UidChanged | AuditKind::GidChanged => ArtifactClass::Owner,
            AuditKind::MtimeChanged => ArtifactClass::Mtime,
            AuditKind::HardlinkBroken => ArtifactClass::HardLink,
            _ => ArtifactClass::Xattr,
        })
    }
}

/// Detects the copy artifacts of the evidence from the audit statistics of all its layers.
/// See the [module documentation](self) for the rules.
pub fn detect<'a>(all: impl IntoIterator<Item = &'a CopyStats>) -> CopyArtifacts {
    let all: Vec<&CopyStats> = all.into_iter().collect();
    let caps_lost: u64 = all.iter().map(|s| s.caps_lost).sum();
    let caps_kept: u64 = all.iter().map(|s| s.caps_kept).sum();
    let mask = detect_mask(&all, caps_lost, caps_kept);
    let mut a = CopyArtifacts {
        mode_mask: mask,
        caps_cleared: mask.is_some_and(|m| m & 0o6000 != 0) && caps_kept == 0 && caps_lost > 0,
        ..CopyArtifacts::default()
    };
    let checked: u64 = all.iter().map(|s| s.owners_checked).sum();
    let one = |sets: &mut dyn Iterator<Item = &BTreeSet<u32>>| -> Option<u32> {
        let mut u = BTreeSet::new();
        for s in sets {
            u.extend(s.iter().copied());
        }
        (u.len() == 1).then(|| u.into_iter().next()).flatten()
    };
    if checked >= MIN_SAMPLES {
        if all.iter().map(|s| s.uid_diffs).sum::<u64>() > 0 {
            a.uid = one(&mut all.iter().map(|s| &s.uids)).filter(|&u| u != u32::MAX);
        }
        if all.iter().map(|s| s.gid_diffs).sum::<u64>() > 0 {
            a.gid = one(&mut all.iter().map(|s| &s.gids)).filter(|&g| g != u32::MAX);
        }
    }
    let reset = |class: usize| {
        let checked: u64 = all.iter().map(|s| s.mtimes[class].checked).sum();
        let matched: u64 = all.iter().map(|s| s.mtimes[class].matched).sum();
        checked >= MIN_SAMPLES
            && matched == 0
            && all.iter().all(|s| {
                let m = &s.mtimes[class];
                m.checked == 0
                    || match (m.oldest_found, s.newest_recorded_mtime) {
                        (Some(f), Some(r)) => f > r,
                        _ => true,
                    }
            })
    };
    a.file_mtimes_reset = reset(0);
    a.dir_mtimes_reset = reset(1);
    let strong = !a.is_empty();
    // Weak artifacts: (candidate, samples).
    let xattrs: u64 = all.iter().map(|s| s.xattrs_expected).sum();
    let xattr_cand = xattrs > 0 && all.iter().all(|s| s.xattrs_present == 0);
    let links: u64 = all.iter().map(|s| s.links).sum();
    let link_cand = links > 0
        && all.iter().all(|s| s.links_intact == 0)
        && all.iter().map(|s| s.links_identical).sum::<u64>() == links;
    let xattr_solid = xattr_cand && xattrs >= 2;
    let link_solid = link_cand && links >= 2;
    // Two weak candidates, one sample each, are two independent samples.
    a.xattrs_lost = xattr_cand && (xattr_solid || strong || link_cand);
    a.hardlinks_not_kept = link_cand && (link_solid || strong || xattr_cand);
    a
}

/// The mode mask; `caps_*`: recorded capabilities lost and kept, which corroborate a mask
/// of setuid/setgid bits alone (the kernel drops both together).
fn detect_mask(all: &[&CopyStats], caps_lost: u64, caps_kept: u64) -> Option<u32> {
    if all.iter().any(|s| s.modes_overflow) {
        return None;
    }
    let mut mask = 0u32;
    let mut narrowed = 0u64;
    for s in all {
        for (&(r, f), &n) in &s.modes {
            if r != f && f & !r == 0 {
                mask |= r & !f;
                narrowed += n;
            }
        }
    }
    let enough = if mask & 0o777 != 0 {
        narrowed >= 2
    } else {
        caps_kept == 0 && narrowed + caps_lost >= 2
    };
    if mask == 0 || mask & !0o6777 != 0 || !enough {
        return None;
    }
    // Uniform: every compared mode that gained no bit is exactly the record narrowed.
    let uniform = all
        .iter()
        .flat_map(|s| s.modes.keys())
        .all(|&(r, f)| f & !r != 0 || f == r & !mask);
    uniform.then_some(mask)
}

/// Classes each finding of `report` explained by `artifacts` as
/// [`FindingClass::CopyArtifact`] (and every other one as a finding); returns the number
/// explained per artifact class.
pub fn classify(
    report: &mut AuditReport,
    artifacts: &CopyArtifacts,
) -> BTreeMap<ArtifactClass, u64> {
    let mut counts = BTreeMap::new();
    let stats = report.stats.clone();
    for f in &mut report.findings {
        match artifacts.explains(f, &stats) {
            Some(c) => {
                f.class = FindingClass::CopyArtifact;
                *counts.entry(c).or_insert(0) += 1;
            }
            None => f.class = FindingClass::Finding,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(pairs: &[((u32, u32), u64)]) -> CopyStats {
        let mut s = CopyStats::default();
        for &((r, f), n) in pairs {
            for _ in 0..n {
                s.mode(r, f);
            }
        }
        s
    }

    #[test]
    fn umask_uniform_only() {
        let s = modes(&[
            ((0o755, 0o750), 18),
            ((0o1777, 0o1750), 1),
            ((0o644, 0o640), 3),
            ((0o700, 0o700), 2),
        ]);
        assert_eq!(detect([&s]).mode_mask, Some(0o027));
        // One 0755 left as recorded: not uniform.
        let s = modes(&[((0o755, 0o750), 18), ((0o755, 0o755), 1)]);
        assert_eq!(detect([&s]).mode_mask, None);
        // A single narrowed path is no umask.
        let s = modes(&[((0o755, 0o750), 1), ((0o700, 0o700), 9)]);
        assert_eq!(detect([&s]).mode_mask, None);
        // An added setuid bit neither makes nor breaks the umask.
        let s = modes(&[
            ((0o755, 0o750), 5),
            ((0o1777, 0o1750), 1),
            ((0o644, 0o4640), 1),
        ]);
        assert_eq!(detect([&s]).mode_mask, Some(0o027));
        // Only the bits the evidence shows: 0755 → 0750 alone is a mask of 005.
        let s = modes(&[((0o755, 0o750), 5)]);
        assert_eq!(detect([&s]).mode_mask, Some(0o005));
        // cp -r: setuid cleared too.
        let s = modes(&[
            ((0o4755, 0o755), 1),
            ((0o1777, 0o1755), 1),
            ((0o644, 0o644), 4),
        ]);
        assert_eq!(detect([&s]).mode_mask, Some(0o4022));
    }

    #[test]
    fn owners_one_for_all() {
        let mut s = CopyStats::default();
        s.owner(0, 0, true, true);
        s.owner(0, 0, false, false);
        s.owner(0, 0, true, true);
        let a = detect([&s]);
        assert_eq!((a.uid, a.gid), (Some(0), Some(0)));
        s.owner(4242, 0, false, true);
        let a = detect([&s]);
        assert_eq!((a.uid, a.gid), (None, Some(0)));
    }

    #[test]
    fn mtimes_reset_must_be_newer_than_the_record() {
        let mut s = CopyStats::default();
        s.recorded_mtime(1000);
        for t in [2000, 2001, 2002] {
            s.mtime(false, t, true);
        }
        assert!(detect([&s]).file_mtimes_reset);
        s.mtime(false, 500, true); // backdated
        assert!(!detect([&s]).file_mtimes_reset);
        let mut s = CopyStats::default();
        s.recorded_mtime(1000);
        for (t, d) in [(2000, true), (2001, true), (1000, false)] {
            s.mtime(false, t, d);
        }
        assert!(!detect([&s]).file_mtimes_reset, "one kept its mtime");
    }

    #[test]
    fn weak_artifacts_need_two_samples_or_company() {
        let mut s = CopyStats::default();
        s.xattr(true, false);
        assert!(!detect([&s]).xattrs_lost);
        s.xattr(true, false);
        assert!(detect([&s]).xattrs_lost);
        let mut s = CopyStats::default();
        s.xattr(true, false);
        s.link(false, true);
        s.link(false, true);
        let a = detect([&s]);
        assert!(a.xattrs_lost && a.hardlinks_not_kept);
        s.link(false, false); // a broken link whose names differ
        assert!(!detect([&s]).hardlinks_not_kept);
    }
}
