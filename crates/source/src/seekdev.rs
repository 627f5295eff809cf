//! A `Read + Seek` reader behind a mutex as a positioned [`BlockDevice`]: the one
//! adapter for third-party virtual-disk readers (`salvor-disk`) and for files inside a
//! [`Source`](crate::Source) (`salvor-dmthin`'s pool files). A poisoned lock is an
//! `io::Error`, never a panic.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Mutex;

use crate::BlockDevice;

/// A `Read + Seek` reader of `size` bytes as a [`BlockDevice`] (reads seek, then read).
pub struct SeekDevice<R> {
    inner: Mutex<R>,
    size: u64,
    desc: String,
    /// Errors name the device, and no data at an offset inside it is an error.
    strict: bool,
}

impl<R> fmt::Debug for SeekDevice<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.desc)
    }
}

impl<R: Read + Seek + Send> SeekDevice<R> {
    /// `reader` as a device described as `desc`; its errors pass through unchanged and
    /// a read that finds no data returns 0.
    pub fn new(reader: R, size: u64, desc: String) -> Self {
        SeekDevice {
            inner: Mutex::new(reader),
            size,
            desc,
            strict: false,
        }
    }

    /// A virtual disk's reader: its errors are prefixed with `desc`, and no data at an
    /// offset inside the disk is an `UnexpectedEof` error.
    pub fn virtual_disk(reader: R, size: u64, desc: String) -> Self {
        SeekDevice {
            strict: true,
            ..Self::new(reader, size, desc)
        }
    }
}

impl<R: Read + Seek + Send> BlockDevice for SeekDevice<R> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (self.size - offset).min(buf.len() as u64) as usize;
        let mut r = self
            .inner
            .lock()
            .map_err(|_| io::Error::other(format!("{}: reader lock poisoned", self.desc)))?;
        r.seek(SeekFrom::Start(offset))?;
        let mut done = 0;
        while done < n {
            match r.read(&mut buf[done..n]) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.strict => {
                    return Err(io::Error::new(e.kind(), format!("{}: {e}", self.desc)));
                }
                Err(e) => return Err(e),
            }
        }
        if done == 0 && self.strict {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: no data at offset {offset} inside the virtual disk",
                    self.desc
                ),
            ));
        }
        Ok(done)
    }

    fn describe(&self) -> String {
        self.desc.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_short_reads() {
        let d = SeekDevice::new(io::Cursor::new(vec![1u8, 2, 3, 4]), 6, "c".into());
        let mut b = [0u8; 3];
        assert_eq!(d.read_at(1, &mut b).unwrap(), 3);
        assert_eq!(b, [2, 3, 4]);
        assert_eq!(d.read_at(4, &mut b).unwrap(), 0);
        assert_eq!(d.read_at(9, &mut b).unwrap(), 0);
        let v = SeekDevice::virtual_disk(io::Cursor::new(vec![1u8, 2, 3, 4]), 6, "v".into());
        let e = v.read_at(4, &mut b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().starts_with("v: "), "{e}");
    }
}
