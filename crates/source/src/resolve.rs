//! Path normalisation and symlink resolution inside a layer root (to be written).
use crate::*;
/// Normalises an evidence path: strips a leading `/` and `.` components; `..` is an error.
pub fn normalize(path: &Path) -> Result<PathBuf> { Ok(path.to_path_buf()) }
/// Resolves `path` as seen from inside `root` (like `openat2(RESOLVE_IN_ROOT)`).
pub fn resolve_in_root(_src: &dyn Source, root: &Path, path: &Path, _follow_last: bool) -> Result<PathBuf> { Ok(root.join(path)) }
