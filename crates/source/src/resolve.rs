//! Path normalisation and symlink resolution inside a layer root.
//!
//! [`normalize`] turns a caller's path into the relative, `..`-free form every
//! [`Source`] works with. [`resolve_in_root`] follows symlinks the way a process
//! chrooted at a layer root would see them (like `openat2(RESOLVE_IN_ROOT)`), using only
//! the no-follow primitives of a [`Source`], so the walk can never leave that root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::Component;

use crate::*;

/// Maximum number of symlinks followed by one [`resolve_in_root`] call (as Linux' `MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// Normalises an evidence path: strips a leading `/`, `.` components and a trailing
/// slash; a `..` component is [`SourceError::Escape`]. The result is relative (empty for
/// the root).
pub fn normalize(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(SourceError::Escape {
                    path: path.to_path_buf(),
                })
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

/// Resolves `path` as a process chrooted at `root` would see it (like
/// `openat2(RESOLVE_IN_ROOT)`), and returns the physical path relative to the source
/// root.
///
/// * `root` is a path of `src` (normalised with [`normalize`]); it must not itself need
///   symlink resolution.
/// * `path` is interpreted inside `root`: a leading `/` means `root`.
/// * Symlinks met in intermediate components are followed (read with
///   [`Source::read_link`]); an absolute target restarts at `root`, a relative one is
///   relative to the link's directory.
/// * `..` never climbs above `root` (it stays at `root`, as in a chroot).
/// * The last component is followed only when `follow_last` is true.
/// * More than [`MAX_SYMLINK_HOPS`] symlinks is an error (loops do not hang).
///
/// Components that do not exist are not an error as long as nothing after them needs
/// resolving: the returned path names where the file *would* be (callers then get
/// `NotFound` from the source). A non-directory used as a directory is an error.
pub fn resolve_in_root(
    src: &dyn Source,
    root: &Path,
    path: &Path,
    follow_last: bool,
) -> Result<PathBuf> {
    let root = normalize(root)?;
    // Components still to walk, front first.
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_front_components(&mut todo, path);
    // The resolved components below root.
    let mut cur: Vec<OsString> = Vec::new();
    let mut hops = 0u32;
    // Once a component is missing, the rest cannot be resolved any further.
    let mut missing = false;

    while let Some(comp) = todo.pop_front() {
        if comp == ".." {
            cur.pop();
            missing = false;
            continue;
        }
        if comp == "." || comp.is_empty() {
            continue;
        }
        cur.push(comp);
        if missing {
            continue;
        }
        let is_last = todo.is_empty();
        let phys = join(&root, &cur);
        let md = match src.metadata(&phys) {
            Ok(md) => md,
            Err(e) if e.is_not_found() => {
                missing = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        match md.kind {
            FileKind::Symlink if !is_last || follow_last => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(SourceError::invalid(
                        join(&root, &cur),
                        format!("too many levels of symbolic links (more than {MAX_SYMLINK_HOPS}) resolving {}", path.display()),
                    ));
                }
                let target = src.read_link(&phys)?;
                cur.pop();
                if target.has_root() {
                    cur.clear();
                }
                push_front_components(&mut todo, &target);
            }
            FileKind::Dir | FileKind::Symlink => {}
            kind if !is_last => {
                return Err(SourceError::WrongKind {
                    path: phys,
                    expected: "directory",
                    found: kind,
                });
            }
            _ => {}
        }
    }
    Ok(join(&root, &cur))
}

fn push_front_components(todo: &mut VecDeque<OsString>, path: &Path) {
    let comps: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    for c in comps.into_iter().rev() {
        todo.push_front(c);
    }
}

fn join(root: &Path, comps: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}
