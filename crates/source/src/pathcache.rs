//! A bounded cache of resolved directory paths for the filesystem readers (`salvor-ext4`,
//! `salvor-xfs`): a lookup starts from its parent directory when that was resolved before,
//! so walking a deep (or looping) tree stays linear in its depth instead of quadratic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Directory paths remembered before the cache is cleared.
pub const PATH_CACHE_ENTRIES: usize = 16_384;

/// Normalised directory path → inode number. Only paths whose every component resolved
/// to a directory may be remembered (the readers' filesystems never change).
#[derive(Debug, Default)]
pub struct DirPathCache {
    paths: Mutex<HashMap<PathBuf, u64>>,
}

impl DirPathCache {
    /// Where to start resolving `norm` (a normalised path): `(parent, its inode, number of
    /// components already resolved)` when the parent is cached, else `None` (start at the
    /// root).
    pub fn start(&self, norm: &Path) -> Option<(PathBuf, u64, usize)> {
        let parent = norm.parent().filter(|p| !p.as_os_str().is_empty())?;
        let ino = *self
            .paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(parent)?;
        Some((parent.to_path_buf(), ino, parent.components().count()))
    }

    /// Remembers directory `path` (normalised, not the root) as inode `ino`.
    pub fn remember(&self, path: PathBuf, ino: u64) {
        if path.as_os_str().is_empty() {
            return;
        }
        let mut m = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= PATH_CACHE_ENTRIES {
            m.clear();
        }
        m.entry(path).or_insert(ino);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_from_a_remembered_parent_only() {
        let c = DirPathCache::default();
        assert_eq!(c.start(Path::new("a/b")), None);
        c.remember(PathBuf::from("a"), 12);
        assert_eq!(c.start(Path::new("a/b")), Some((PathBuf::from("a"), 12, 1)));
        assert_eq!(c.start(Path::new("a")), None, "the root is never cached");
        assert_eq!(c.start(Path::new("x/b")), None);
        c.remember(PathBuf::new(), 2);
        assert_eq!(c.start(Path::new("b")), None);
        for i in 0..PATH_CACHE_ENTRIES as u64 + 1 {
            c.remember(PathBuf::from(format!("d{i}")), i);
        }
        assert!(
            c.paths.lock().unwrap().len() <= PATH_CACHE_ENTRIES,
            "bounded"
        );
    }
}
