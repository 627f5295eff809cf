//! A tiny deterministic USTAR writer that can stream entry data of a size known
//! in advance (headers are formatted like Go's `archive/tar`).

use sha2::{Digest, Sha256};
use std::io::{self, Write};

pub(crate) const BLOCK: usize = 512;

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
}

fn octal(field: &mut [u8], v: u64) -> bool {
    // n-1 octal digits, zero padded, NUL terminated
    let digits = field.len() - 1;
    let s = format!("{:0width$o}", v, width = digits);
    if s.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

/// Split `path` into (prefix, name) for USTAR.
fn split_path(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let b = path.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0 {
            return Some((&path[..i], &path[i + 1..]));
        }
    }
    None
}

/// Build a USTAR header. uid/gid 0, empty uname/gname; mode 0644 files, 0755 dirs, 0777
/// symlinks.
pub(crate) fn header(
    path: &str,
    kind: Kind,
    size: u64,
    mtime: i64,
    link: &str,
) -> io::Result<[u8; BLOCK]> {
    let mode = match kind {
        Kind::File => 0o644,
        Kind::Dir => 0o755,
        Kind::Symlink => 0o777,
    };
    header_mode(path, kind, mode, size, mtime, link)
}

/// [`header`] with the permission bits `mode`.
pub(crate) fn header_mode(
    path: &str,
    kind: Kind,
    mode: u32,
    size: u64,
    mtime: i64,
    link: &str,
) -> io::Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) = split_path(path).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path too long: {path}"),
        )
    })?;
    if link.len() > 100 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("link target too long: {link}"),
        ));
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    let flag = match kind {
        Kind::File => b'0',
        Kind::Dir => b'5',
        Kind::Symlink => b'2',
    };
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if !octal(&mut h[124..136], size) {
        // GNU base-256 for sizes >= 8 GiB
        h[124..136].fill(0);
        h[124] = 0x80;
        let be = size.to_be_bytes();
        h[128..136].copy_from_slice(&be);
    }
    octal(&mut h[136..148], mtime.max(0) as u64);
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| *b as u64).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    Ok(h)
}

/// The outer archive stream: counts and hashes everything written.
/// The tar stream being written. The sha256 of the whole archive is computed on a helper
/// thread, fed 1 MiB chunks through a bounded channel, so that hashing the archive does not
/// slow down the layer streams (which are hashed on the writing thread).
pub(crate) struct TarOut<W: Write> {
    inner: W,
    chunk: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    recycle: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<String>>,
    pub(crate) bytes: u64,
    /// False when the archive's sha256 is not wanted (nothing reports it): a whole
    /// SHA-256 pass saved.
    hashed: bool,
}

const CHUNK: usize = 1 << 20;

impl<W: Write> TarOut<W> {
    /// A stream that does not hash itself ([`TarOut::finish`] gives an empty digest).
    pub(crate) fn unhashed(inner: W) -> Self {
        let (_, recycle) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        TarOut {
            inner,
            chunk: Vec::with_capacity(CHUNK),
            tx: None,
            recycle,
            worker: None,
            bytes: 0,
            hashed: false,
        }
    }

    pub(crate) fn new(inner: W) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (back_tx, recycle) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let worker = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for mut c in rx {
                h.update(&c);
                c.clear();
                let _ = back_tx.try_send(c);
            }
            hex::encode(h.finalize())
        });
        TarOut {
            inner,
            chunk: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            recycle,
            worker: Some(worker),
            bytes: 0,
            hashed: true,
        }
    }
    fn ship(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.inner.write_all(&self.chunk)?;
        if !self.hashed {
            self.chunk.clear();
            return Ok(());
        }
        let next = self
            .recycle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.chunk, next);
        match &self.tx {
            Some(tx) => tx
                .send(full)
                .map_err(|_| io::Error::other("archive hashing thread stopped")),
            None => Err(io::Error::other("archive already finished")),
        }
    }
    pub(crate) fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
    /// Write the end-of-archive marker (two zero blocks, like Go) and flush.
    pub(crate) fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.write_all(&[0u8; 2 * BLOCK])?;
        self.ship()?;
        self.inner.flush()?;
        if !self.hashed {
            return Ok((self.inner, String::new(), self.bytes));
        }
        drop(self.tx.take());
        let d = match self.worker.take().map(|w| w.join()) {
            Some(Ok(d)) => d,
            _ => return Err(io::Error::other("archive hashing thread failed")),
        };
        Ok((self.inner, d, self.bytes))
    }
}

impl<W: Write> Write for TarOut<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Not hashed: a large write goes straight through (one copy fewer), after what the
        // chunk holds.
        if !self.hashed && buf.len() >= CHUNK / 8 {
            self.ship()?;
            self.inner.write_all(buf)?;
            self.bytes += buf.len() as u64;
            return Ok(buf.len());
        }
        let room = CHUNK - self.chunk.len();
        let n = room.min(buf.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.bytes += n as u64;
        if self.chunk.len() == CHUNK {
            self.ship()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.ship()?;
        self.inner.flush()
    }
}
