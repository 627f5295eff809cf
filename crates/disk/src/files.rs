//! The one opening policy for every file of a disk-image set.
//!
//! An image names other files: qcow2 backing files, VMDK extents (every type: FLAT,
//! VMFS, SPARSE, VMFSSPARSE, SESPARSE), E01/Ex01 segments. Those names are data from the
//! evidence. Every one of them is opened through [`open_referenced`]:
//!
//! 1. A name given explicitly by the caller ([`OpenOptions::backing_files`], keyed by the
//!    name exactly as recorded) is used as given, wherever it is.
//! 2. Otherwise the name must be relative, without `..`, without a protocol or drive
//!    prefix (`nbd:`, `json:`, `C:`); it is joined to the directory of the referring
//!    image and canonicalised (symlinks resolved); the result must lie inside that
//!    directory's canonical path. A symlink that leads out is refused.
//! 3. The file is opened by [`open_evidence`]: anything `stat` does not call a regular
//!    file is refused without being opened; then read-only, `O_NONBLOCK` (so opening a
//!    FIFO swapped in meanwhile never waits for a writer), `O_NOATIME` where the kernel
//!    allows it, `O_NOCTTY`, `O_NOFOLLOW` for referenced files; `fstat` on the descriptor
//!    must say "regular file" before any byte is read; only then is `O_NONBLOCK` cleared.
//!
//! A refusal is a [`DiskError::Refused`] naming the referring file, what kind of file it
//! named, the name as recorded, and why.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use crate::container::OpenOptions;
use crate::error::{DiskError, Result};

/// What a non-regular file is, for messages ("a FIFO", "a socket", …).
pub fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Why [`open_file`] did not give a file.
enum OpenFailure {
    Io(std::io::Error),
    /// Not a regular file: what it is.
    NotRegular(&'static str),
}

fn open_file(path: &Path, nofollow: bool) -> std::result::Result<File, OpenFailure> {
    // A device node is not even opened (opening some has side effects); the fstat
    // below is what decides, on the descriptor actually read.
    if let Ok(md) = std::fs::metadata(path) {
        if !md.is_file() {
            return Err(OpenFailure::NotRegular(kind_of(md.file_type())));
        }
    }
    open_checked(path, nofollow)
}

/// Opens `path` non-blocking and checks the descriptor with `fstat` before any read.
fn open_checked(path: &Path, nofollow: bool) -> std::result::Result<File, OpenFailure> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if nofollow {
        flags |= OFlags::NOFOLLOW;
    }
    let open = |extra: OFlags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((flags | extra).bits() as i32)
            .open(path)
    };
    let file = match open(OFlags::NOATIME) {
        Ok(f) => f,
        // O_NOATIME is refused for files we do not own.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) => {
            open(OFlags::empty()).map_err(OpenFailure::Io)?
        }
        // O_NOFOLLOW on a symlink.
        Err(e) if nofollow && e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(OpenFailure::NotRegular("a symlink"))
        }
        Err(e) => return Err(OpenFailure::Io(e)),
    };
    // fstat on the descriptor: no byte is read from anything but a regular file.
    let md = file.metadata().map_err(OpenFailure::Io)?;
    if !md.is_file() {
        return Err(OpenFailure::NotRegular(kind_of(md.file_type())));
    }
    // A regular file ignores O_NONBLOCK, but clear it so nothing depends on that.
    let fl = rustix::fs::fcntl_getfl(&file).map_err(|e| OpenFailure::Io(e.into()))?;
    rustix::fs::fcntl_setfl(&file, fl - OFlags::NONBLOCK).map_err(|e| OpenFailure::Io(e.into()))?;
    Ok(file)
}

/// Opens a file of the evidence that the caller named (the image itself): read-only,
/// `O_NONBLOCK` until `fstat` said it is a regular file, `O_NOATIME` where allowed.
/// Anything but a regular file (a FIFO, a device, a socket, a directory) is refused
/// without reading from it.
pub(crate) fn open_evidence(path: &Path) -> Result<File> {
    open_file(path, false).map_err(|f| match f {
        OpenFailure::Io(e) => DiskError::io(path, e),
        OpenFailure::NotRegular(k) => DiskError::invalid(
            path.display().to_string(),
            "image file",
            format!("is {k}, not a regular file (only regular files are opened)"),
        ),
    })
}

/// A file an image named, opened under the policy.
#[derive(Debug)]
pub(crate) struct Referenced {
    /// The canonical path of the file opened.
    pub path: PathBuf,
    pub file: File,
    /// True when the caller gave it in [`OpenOptions::backing_files`].
    pub explicit: bool,
}

/// The directory of `image` (`.` for a bare file name).
pub(crate) fn dir_of(image: &Path) -> &Path {
    match image.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn refusal(referrer: &Path, kind: &'static str, name: &str, reason: String) -> DiskError {
    DiskError::Refused {
        referrer: referrer.to_path_buf(),
        kind,
        name: name.to_string(),
        reason,
    }
}

fn refusal_outside(referrer: &Path, kind: &'static str, name: &str, why: &str) -> DiskError {
    refusal(
        referrer,
        kind,
        name,
        format!(
            "{why}; files an image names are only looked up inside the image's directory; \
             copy the whole set (image and the files it names) into one directory to \
             read it"
        ),
    )
}

/// The checks of a recorded name that need no file: not empty, no NUL, no protocol or
/// drive prefix, relative, no `..`. Names given explicitly in `opts` pass.
pub(crate) fn check_name(
    referrer: &Path,
    kind: &'static str,
    name: &str,
    opts: &OpenOptions,
) -> Result<()> {
    if opts.backing_files.contains_key(name) {
        return Ok(());
    }
    let refuse = |reason: String| refusal(referrer, kind, name, reason);
    let outside = |why: &str| refusal_outside(referrer, kind, name, why);
    if name.is_empty() {
        return Err(refuse("is empty".into()));
    }
    if name.contains('\0') {
        return Err(refuse("contains a NUL byte".into()));
    }
    let rel = Path::new(name);
    let dir = dir_of(referrer);
    if name.contains(':') && std::fs::symlink_metadata(dir.join(rel)).is_err() {
        // qemu protocol syntax (nbd:, json:, file:), or a Windows drive path.
        return Err(outside("uses a protocol or drive prefix"));
    }
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(outside("is absolute or leaves the image's directory"));
    }
    Ok(())
}

/// Opens the file that `referrer` names `name` (a `kind`: "backing file", "VMDK extent",
/// "EWF segment") under the policy of this module.
pub(crate) fn open_referenced(
    referrer: &Path,
    kind: &'static str,
    name: &str,
    opts: &OpenOptions,
) -> Result<Referenced> {
    let refuse = |reason: String| refusal(referrer, kind, name, reason);
    let outside = |why: &str| refusal_outside(referrer, kind, name, why);
    let open = |p: &Path, nofollow: bool| {
        open_file(p, nofollow).map_err(|f| match f {
            OpenFailure::Io(e) => refuse(format!("{}: {e}", p.display())),
            OpenFailure::NotRegular(k) => refuse(format!(
                "{} is {k}, not a regular file (only regular files are opened)",
                p.display()
            )),
        })
    };
    if let Some(p) = opts.backing_files.get(name) {
        let file = open(p, false)?;
        let path = std::fs::canonicalize(p).map_err(|e| DiskError::io(p, e))?;
        return Ok(Referenced {
            path,
            file,
            explicit: true,
        });
    }
    check_name(referrer, kind, name, opts)?;
    let rel = Path::new(name);
    let dir = dir_of(referrer);
    let candidate = dir.join(rel);
    let cdir = std::fs::canonicalize(dir).map_err(|e| DiskError::io(dir, e))?;
    let ccand = std::fs::canonicalize(&candidate)
        .map_err(|e| refuse(format!("{}: {e}", candidate.display())))?;
    if !ccand.starts_with(&cdir) {
        return Err(outside(&format!(
            "resolves (through a symlink) to {}, outside the image's directory",
            ccand.display()
        )));
    }
    // The canonical path has no symlink left; O_NOFOLLOW refuses one planted since.
    let file = open(&ccand, true)?;
    Ok(Referenced {
        path: ccand,
        file,
        explicit: false,
    })
}

/// Opens segment `name` of the set whose first segment is `first`: [`open_referenced`],
/// and, unless given explicitly, the file must be the one of that name in that directory
/// (not a symlink to another name, which would splice another acquisition's segment in).
pub(crate) fn open_segment(first: &Path, name: &str, opts: &OpenOptions) -> Result<Referenced> {
    let r = open_referenced(first, "EWF segment", name, opts)?;
    if r.explicit {
        return Ok(r);
    }
    let dir = dir_of(first);
    let want = std::fs::canonicalize(dir)
        .map_err(|e| DiskError::io(dir, e))?
        .join(name);
    if r.path != want {
        return Err(refusal(
            first,
            "EWF segment",
            name,
            format!(
                "is a symlink to {}; a segment of the set must be the file of that name \
                 (give it explicitly to use it anyway)",
                r.path.display()
            ),
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptor check alone (a FIFO swapped in after the `stat`): opening does not
    /// wait for a writer, and the FIFO is refused before any read.
    #[test]
    fn a_fifo_is_refused_by_fstat_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let q = p.clone();
        std::thread::spawn(move || {
            let _ = tx.send(matches!(
                open_checked(&q, true),
                Err(OpenFailure::NotRegular("a FIFO"))
            ));
        });
        let refused = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("opening a FIFO blocked");
        assert!(refused);
        // A regular file opens, and is left blocking.
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let file = open_checked(&f, true).ok().unwrap();
        let fl = rustix::fs::fcntl_getfl(&file).unwrap();
        assert!(!fl.contains(rustix::fs::OFlags::NONBLOCK));
        // A symlink with O_NOFOLLOW.
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        assert!(matches!(
            open_checked(&dir.path().join("l"), true),
            Err(OpenFailure::NotRegular("a symlink"))
        ));
    }
}
