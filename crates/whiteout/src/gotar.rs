//! A byte-exact emulation of the parts of Go's `archive/tar` writer the engine uses
//! (`WriteHeader` with `Format = FormatPAX` or `FormatUnknown`, data, `Close`).
//!
//! Rules reproduced (Go ≥ 1.10, the `allowedFormats` / `writeUSTARHeader` /
//! `writePAXHeader` / `writeRawFile` code paths):
//! * USTAR whenever the header can be encoded as USTAR; PAX otherwise (never GNU:
//!   `Format = FormatPAX` excludes it, and the header-less whiteouts always fit USTAR).
//! * A name longer than 100 bytes is split into prefix (≤ 155) / name (≤ 100) at a `/`
//!   when it is ASCII; otherwise a PAX `path` record. Link names, `uname`, `gname` that
//!   are non-ASCII or too long become `linkpath` / `uname` / `gname` records; uid/gid
//!   ≥ 2097152 become `uid` / `gid`, sizes ≥ 8 GiB `size`, mtimes outside the 11-digit
//!   octal range `mtime`; xattrs become `SCHILY.xattr.<name>` and force PAX.
//! * PAX records are sorted by key, `"%d %s=%s\n"`; the extended header is named
//!   `dir/PaxHeaders.0/file` (ASCII-fied, cut to 100 bytes, trailing `/` trimmed) with
//!   mode/uid/gid/mtime 0 and empty dev fields; the main header then carries the
//!   ASCII-fied, truncated name and octal numbers (0 when they do not fit).
//! * Numbers are zero-padded octal with a trailing NUL; checksum `%06o\0 `; magic
//!   `ustar\0` + `00`; devmajor/devminor always written; a zero time is written as 0.
//! * `Close` pads the last entry and writes exactly two zero blocks.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

pub const BLOCK: usize = 512;

pub const TYPE_REG: u8 = b'0';
pub const TYPE_LINK: u8 = b'1';
pub const TYPE_SYMLINK: u8 = b'2';
pub const TYPE_CHAR: u8 = b'3';
pub const TYPE_BLOCK: u8 = b'4';
pub const TYPE_DIR: u8 = b'5';
pub const TYPE_FIFO: u8 = b'6';

/// One header as the engine builds it (`tar.Header`, the fields it sets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub name: Vec<u8>,
    pub linkname: Vec<u8>,
    pub typeflag: u8,
    pub mode: i64,
    pub uid: i64,
    pub gid: i64,
    pub size: i64,
    /// Unix seconds; `None` is Go's zero `time.Time` (written as 0).
    pub mtime: Option<i64>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub devmajor: i64,
    pub devminor: i64,
    /// `hdr.Xattrs`: become `SCHILY.xattr.<key>` records.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&c| c != 0 && c < 0x80)
}

/// Go's `toASCII`: drops NUL and every byte of a non-ASCII (or invalid) sequence.
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&c| c != 0 && c < 0x80).collect()
}

fn fits_in_octal(n: usize, x: i64) -> bool {
    let octal_bits = 3 * (n as u32 - 1);
    x >= 0 && (octal_bits >= 63 || x < (1i64 << octal_bits))
}

/// Go's `splitUSTARPath`.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= 100 || !is_ascii(name) {
        return None;
    } else if length > 155 + 1 {
        length = 155 + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&c| c == b'/')?;
    let nlen = name.len() - i - 1;
    let plen = i;
    if i == 0 || nlen > 100 || nlen == 0 || plen > 155 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

fn format_string(b: &mut [u8], s: &[u8]) {
    let n = s.len().min(b.len());
    b[..n].copy_from_slice(&s[..n]);
    if s.len() < b.len() {
        b[s.len()] = 0;
    }
    if s.len() > b.len() && b[b.len() - 1] == b'/' {
        let mut k = b.len();
        while k > 0 && s[k - 1] == b'/' {
            k -= 1;
        }
        b[k] = 0;
    }
}

fn format_octal(b: &mut [u8], x: i64) {
    let x = if fits_in_octal(b.len(), x) { x } else { 0 };
    let s = format!("{x:o}");
    let pad = b.len().saturating_sub(s.len() + 1);
    let mut v = vec![b'0'; pad];
    v.extend_from_slice(s.as_bytes());
    format_string(b, &v);
}

fn pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let base = k.len() + v.len() + 3;
    let mut size = base + base.to_string().len();
    if (base + size.to_string().len()) != size {
        size = base + size.to_string().len();
    }
    let mut r = size.to_string().into_bytes();
    r.push(b' ');
    r.extend_from_slice(k);
    r.push(b'=');
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

/// The tar writer: hashes and counts everything it writes.
pub struct GoTarWriter<'w> {
    out: &'w mut dyn Write,
    hasher: Sha256,
    written: u64,
    pad: usize,
    /// The first error of the OUTPUT (kind, text): a failed header or data write is the
    /// archive's failure (a full disk), not the file being read.
    write_failed: Option<(io::ErrorKind, String)>,
}

impl<'w> GoTarWriter<'w> {
    pub fn new(out: &'w mut dyn Write) -> Self {
        GoTarWriter {
            out,
            hasher: Sha256::new(),
            written: 0,
            pad: 0,
            write_failed: None,
        }
    }

    /// The first error writing the output, if any.
    pub fn write_error(&self) -> Option<io::Error> {
        self.write_failed
            .as_ref()
            .map(|(k, m)| io::Error::new(*k, m.clone()))
    }

    fn out_write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b).inspect_err(|e| {
            if self.write_failed.is_none() {
                self.write_failed = Some((e.kind(), e.to_string()));
            }
        })
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out_write(b)?;
        self.hasher.update(b);
        self.written += b.len() as u64;
        Ok(())
    }

    fn flush_pad(&mut self) -> io::Result<()> {
        if self.pad > 0 {
            let z = [0u8; BLOCK];
            let p = self.pad;
            self.pad = 0;
            self.put(&z[..p])?;
        }
        Ok(())
    }

    /// Writes one header. `format_pax` is `hdr.Format == FormatPAX` (everything the
    /// engine stats); `false` is `FormatUnknown` (synthesised whiteouts).
    pub fn write_header(&mut self, h: &Header, format_pax: bool) -> Result<(), String> {
        let _ = format_pax; // PAX-wanted still allows USTAR; times are whole seconds.
        self.flush_pad().map_err(|e| e.to_string())?;
        let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut ustar_ok = true;
        let mut check_str = |s: &[u8], size: usize, key: &[u8], can_split: bool| -> bool {
            let too_long = s.len() > size;
            if !is_ascii(s) || too_long {
                if !(can_split && split_ustar_path(s).is_some()) {
                    ustar_ok = false;
                }
                pax.insert(key.to_vec(), s.to_vec());
            }
            true
        };
        check_str(&h.name, 100, b"path", true);
        check_str(&h.linkname, 100, b"linkpath", false);
        check_str(&h.uname, 32, b"uname", false);
        check_str(&h.gname, 32, b"gname", false);
        if h.name.contains(&0) || h.linkname.contains(&0) {
            return Err("name or link name contains NUL".into());
        }
        for (v, n) in [(h.mode, 8usize), (h.devmajor, 8), (h.devminor, 8)] {
            if !fits_in_octal(n, v) {
                return Err(format!("value {v} cannot be encoded in a tar header"));
            }
        }
        for (v, n, key) in [
            (h.uid, 8usize, &b"uid"[..]),
            (h.gid, 8, b"gid"),
            (h.size, 12, b"size"),
        ] {
            if !fits_in_octal(n, v) {
                if v < 0 {
                    return Err(format!("negative value {v} in a tar header"));
                }
                ustar_ok = false;
                pax.insert(key.to_vec(), v.to_string().into_bytes());
            }
        }
        if let Some(t) = h.mtime {
            if !fits_in_octal(12, t) {
                ustar_ok = false;
                pax.insert(b"mtime".to_vec(), t.to_string().into_bytes());
            }
        }
        if !h.xattrs.is_empty() {
            ustar_ok = false;
            for (k, v) in &h.xattrs {
                let mut key = b"SCHILY.xattr.".to_vec();
                key.extend_from_slice(k);
                if key.contains(&b'=') || key.contains(&0) {
                    return Err("xattr name cannot be a PAX key".into());
                }
                pax.insert(key, v.clone());
            }
        }
        if matches!(h.typeflag, TYPE_REG | TYPE_CHAR | TYPE_BLOCK | TYPE_FIFO)
            && h.name.ends_with(b"/")
        {
            return Err("filename may not have trailing slash".into());
        }

        if ustar_ok {
            let (prefix, name) = match split_ustar_path(&h.name) {
                Some((p, n)) => (p.to_vec(), n.to_vec()),
                None => (Vec::new(), h.name.clone()),
            };
            let mut blk = [0u8; BLOCK];
            template(&mut blk, h, &name, &h.linkname, &h.uname, &h.gname);
            format_string(&mut blk[345..500], &prefix);
            set_format(&mut blk);
            self.put(&blk).map_err(|e| e.to_string())?;
        } else {
            // The extended header.
            let mut data = Vec::new();
            for (k, v) in &pax {
                data.extend_from_slice(&pax_record(k, v));
            }
            let (dir, file) = match h.name.iter().rposition(|&c| c == b'/') {
                Some(i) => (&h.name[..=i], &h.name[i + 1..]),
                None => (&h.name[..0], &h.name[..]),
            };
            let mut xname = dir.to_vec();
            xname.extend_from_slice(b"PaxHeaders.0");
            if !file.is_empty() {
                xname.push(b'/');
                xname.extend_from_slice(file);
            }
            let mut xname = to_ascii(&xname);
            xname.truncate(100);
            while xname.last() == Some(&b'/') {
                xname.pop();
            }
            let mut blk = [0u8; BLOCK];
            blk[156] = b'x';
            format_string(&mut blk[0..100], &xname);
            format_octal(&mut blk[100..108], 0);
            format_octal(&mut blk[108..116], 0);
            format_octal(&mut blk[116..124], 0);
            format_octal(&mut blk[124..136], data.len() as i64);
            format_octal(&mut blk[136..148], 0);
            set_format(&mut blk);
            self.put(&blk).map_err(|e| e.to_string())?;
            self.put(&data).map_err(|e| e.to_string())?;
            let p = (BLOCK - data.len() % BLOCK) % BLOCK;
            self.put(&[0u8; BLOCK][..p]).map_err(|e| e.to_string())?;
            // The main header.
            let mut blk = [0u8; BLOCK];
            template(
                &mut blk,
                h,
                &to_ascii(&h.name),
                &to_ascii(&h.linkname),
                &to_ascii(&h.uname),
                &to_ascii(&h.gname),
            );
            set_format(&mut blk);
            self.put(&blk).map_err(|e| e.to_string())?;
        }
        let data_size = match h.typeflag {
            TYPE_LINK | TYPE_SYMLINK | TYPE_CHAR | TYPE_BLOCK | TYPE_DIR | TYPE_FIFO => 0,
            _ => h.size.max(0) as u64,
        };
        self.pad = ((BLOCK as u64 - data_size % BLOCK as u64) % BLOCK as u64) as usize;
        Ok(())
    }

    /// Copies exactly `size` bytes of an entry's data from `r`.
    pub fn write_data(&mut self, r: &mut dyn Read, size: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = match r.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended {left} bytes before its recorded size {size}"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out_write(&buf[..n])?;
            self.hasher.update(&buf[..n]);
            self.written += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes a member's raw header blocks as archived (a whole number of blocks), for an
    /// entry of `data_size` data bytes.
    pub fn write_raw_header(&mut self, raw: &[u8], data_size: u64) -> io::Result<()> {
        self.flush_pad()?;
        self.put(raw)?;
        self.pad = ((BLOCK as u64 - data_size % BLOCK as u64) % BLOCK as u64) as usize;
        Ok(())
    }

    /// `Close` with the archive's own end: `trailer` (all zeros, whole blocks) instead of
    /// exactly two zero blocks. Returns (`sha256:<hex>`, size).
    pub fn finish_with(mut self, trailer: &[u8]) -> io::Result<(String, u64)> {
        self.flush_pad()?;
        self.put(trailer)?;
        self.out.flush()?;
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        Ok((digest, self.written))
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// `Close`: final padding and two zero blocks. Returns (`sha256:<hex>`, size).
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        self.flush_pad()?;
        self.put(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        Ok((digest, self.written))
    }
}

fn template(blk: &mut [u8; BLOCK], h: &Header, name: &[u8], link: &[u8], un: &[u8], gn: &[u8]) {
    blk[156] = h.typeflag;
    format_string(&mut blk[0..100], name);
    format_string(&mut blk[157..257], link);
    format_octal(&mut blk[100..108], h.mode);
    format_octal(&mut blk[108..116], h.uid);
    format_octal(&mut blk[116..124], h.gid);
    format_octal(&mut blk[124..136], h.size);
    format_octal(&mut blk[136..148], h.mtime.unwrap_or(0));
    format_string(&mut blk[265..297], un);
    format_string(&mut blk[297..329], gn);
    format_octal(&mut blk[329..337], h.devmajor);
    format_octal(&mut blk[337..345], h.devminor);
}

fn set_format(blk: &mut [u8; BLOCK]) {
    blk[257..263].copy_from_slice(b"ustar\0");
    blk[263..265].copy_from_slice(b"00");
    let mut sum: i64 = 0;
    for (i, &b) in blk.iter().enumerate() {
        sum += if (148..156).contains(&i) {
            b' ' as i64
        } else {
            b as i64
        };
    }
    format_octal(&mut blk[148..155], sum);
    blk[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_sizes() {
        assert_eq!(pax_record(b"path", b"a"), b"9 path=a\n");
        // 3 + 4 + 93 = 100 bytes + "100 " would make 104 -> adjusts
        let v = vec![b'x'; 92];
        let r = pax_record(b"path", &v);
        assert_eq!(
            r.len().to_string().as_bytes(),
            &r[..r.iter().position(|&c| c == b' ').unwrap()]
        );
    }

    #[test]
    fn split() {
        let long = [b"a".repeat(60), b"/".to_vec(), b"b".repeat(60)].concat();
        assert_eq!(split_ustar_path(&long).unwrap().0.len(), 60);
        assert!(split_ustar_path(b"short").is_none());
    }
}
