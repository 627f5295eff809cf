//! Input streams: the uncompressed tar stream being indexed (plain, or decompressed
//! into the spool with its limit and free-space checks).

use super::*;

/// The uncompressed tar stream being indexed.
pub(super) trait Stream: Read {
    /// Skips `n` bytes; returns how many could be skipped (fewer at end of input).
    fn skip(&mut self, n: u64) -> io::Result<u64>;
    /// True once the input ended (a read returned 0 bytes).
    fn at_eof(&self) -> bool;
}

pub(super) struct PlainStream {
    pub(super) r: BufReader<File>,
    pub(super) pos: u64,
    pub(super) len: u64,
}

impl Read for PlainStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Stream for PlainStream {
    fn at_eof(&self) -> bool {
        self.pos >= self.len
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.len.saturating_sub(self.pos));
        let d = i64::try_from(n)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "size overflow"))?;
        self.r.seek_relative(d)?;
        self.pos += n;
        Ok(n)
    }
}

/// Counts the bytes read from the compressed archive file.
pub(super) struct Counting<R> {
    pub(super) r: R,
    pub(super) n: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.r.read(buf)?;
        self.n
            .fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

/// Why spooling stopped: not damage of the evidence, but a limit of this machine.
pub(super) enum SpoolStop {
    Limit { written: u64 },
    NoSpace { available: u64 },
    Write(io::Error),
}

/// Decompressed input, copied into the spool as it is read (at most `limit` bytes).
pub(super) struct TeeStream<R: Read> {
    pub(super) r: R,
    pub(super) spool: BufWriter<File>,
    /// The spool file itself, for `fstatvfs`.
    pub(super) spool_fd: File,
    pub(super) written: u64,
    pub(super) limit: u64,
    pub(super) reserve: u64,
    pub(super) next_check: u64,
    pub(super) eof: bool,
    /// The decoder's error, if decoding failed (damage).
    pub(super) decode_err: Option<(io::ErrorKind, String)>,
    /// Why spooling was stopped, if it was (an error, not damage).
    pub(super) stop: Option<SpoolStop>,
}

/// Free bytes (for unprivileged users) in the filesystem holding `f`.
pub(super) fn free_space(f: &File) -> Option<u64> {
    let st = rustix::fs::fstatvfs(f).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

impl<R: Read> Read for TeeStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.r.read(buf) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.decode_err = Some((e.kind(), e.to_string()));
                }
                return Err(e);
            }
        };
        if n == 0 {
            self.eof = true;
            return Ok(0);
        }
        let stop = |s: &mut Self, why: SpoolStop| {
            s.stop = Some(why);
            Err(io::Error::other("decompression spool stopped"))
        };
        if self.written.saturating_add(n as u64) > self.limit {
            let written = self.written;
            return stop(self, SpoolStop::Limit { written });
        }
        if self.written >= self.next_check {
            self.next_check = self.written.saturating_add(SPACE_CHECK_EVERY);
            if let Some(available) = free_space(&self.spool_fd) {
                if available < self.reserve.saturating_add(SPACE_CHECK_EVERY) {
                    return stop(self, SpoolStop::NoSpace { available });
                }
            }
        }
        if let Err(e) = self.spool.write_all(&buf[..n]) {
            return stop(self, SpoolStop::Write(e));
        }
        self.written += n as u64;
        Ok(n)
    }
}

impl<R: Read> Stream for TeeStream<R> {
    fn at_eof(&self) -> bool {
        self.eof
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        io::copy(&mut self.take(n), &mut io::sink())
    }
}

impl<R: Read> TeeStream<R> {
    /// After the tar's end-of-archive marker: decodes (without spooling) up to
    /// [`TRAILER_CHECK`] more bytes, so that a compressed stream cut or corrupt after the
    /// marker is noticed. Returns the decoder's error, if any.
    pub(super) fn check_trailer(&mut self) -> Option<(io::ErrorKind, String)> {
        let mut buf = [0u8; 8192];
        let mut seen = 0u64;
        while seen < TRAILER_CHECK {
            match self.r.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => seen += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some((e.kind(), e.to_string())),
            }
        }
        None
    }
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
pub(super) fn read_full(r: &mut dyn Stream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
