//! Shared test helpers: corpus location, SHA-1, in-memory (sparse-aware) file store.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use salvor_tarsplit::{FileChunk, FileGetter, FilePutter, FileReader, GetError};

/// `$SALVOR_SHARED` or `<workspace>/../shared`. Panics (test failure) when the corpus is absent.
pub fn corpus(sub: &str) -> PathBuf {
    let base = match std::env::var_os("SALVOR_SHARED") {
        Some(s) => PathBuf::from(s),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let p = base.join("corpus").join(sub);
    assert!(
        p.is_dir(),
        "test corpus not found at {} (set SALVOR_SHARED to the shared directory containing corpus/tar-split)",
        p.display()
    );
    p
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gunzip test vector");
    out
}

/// Minimal SHA-1 (the asm vectors are listed by SHA-1).
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bitlen = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bitlen.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// A logical file: data extents over zeros.
#[derive(Clone, Default, Debug)]
pub struct MemFile {
    pub size: u64,
    pub extents: Vec<(u64, Arc<Vec<u8>>)>,
}

impl MemFile {
    pub fn from_bytes(b: Vec<u8>) -> Self {
        MemFile {
            size: b.len() as u64,
            extents: vec![(0, Arc::new(b))],
        }
    }
}

pub struct MemReader {
    f: MemFile,
    pos: u64,
}

impl Read for MemReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.f.size || buf.is_empty() {
            return Ok(0);
        }
        let max = (self.f.size - self.pos).min(buf.len() as u64) as usize;
        for (off, data) in &self.f.extents {
            let end = off + data.len() as u64;
            if self.pos >= *off && self.pos < end {
                let s = (self.pos - off) as usize;
                let n = max.min(data.len() - s);
                buf[..n].copy_from_slice(&data[s..s + n]);
                self.pos += n as u64;
                return Ok(n);
            }
        }
        let next = self
            .f
            .extents
            .iter()
            .map(|(o, _)| *o)
            .filter(|o| *o > self.pos)
            .min()
            .unwrap_or(self.f.size);
        let n = max.min((next - self.pos) as usize);
        buf[..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for MemReader {
    fn seek(&mut self, p: SeekFrom) -> io::Result<u64> {
        let np = match p {
            SeekFrom::Start(x) => x as i128,
            SeekFrom::End(x) => self.f.size as i128 + x as i128,
            SeekFrom::Current(x) => self.pos as i128 + x as i128,
        };
        if np < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "negative seek"));
        }
        self.pos = np as u64;
        Ok(self.pos)
    }
}

/// name -> file; a name mapped to None is "not a regular file".
#[derive(Default, Clone)]
pub struct MemStore {
    pub files: HashMap<Vec<u8>, Option<MemFile>>,
    cur: Option<(Vec<u8>, MemFile, u64)>,
}

impl MemStore {
    pub fn insert(&mut self, name: &[u8], data: &[u8]) {
        self.files
            .insert(name.to_vec(), Some(MemFile::from_bytes(data.to_vec())));
    }
}

impl FileGetter for MemStore {
    fn get(&self, name: &[u8]) -> Result<Box<dyn FileReader>, GetError> {
        let shown = String::from_utf8_lossy(name).into_owned();
        match self.files.get(name) {
            None => Err(GetError::NotFound(format!("{shown}: no such file"))),
            Some(None) => Err(GetError::NotRegular(format!("{shown}: is a directory"))),
            Some(Some(f)) => Ok(Box::new(MemReader {
                f: f.clone(),
                pos: 0,
            })),
        }
    }
}

impl FilePutter for MemStore {
    fn begin(&mut self, name: &[u8], size: u64) {
        self.cur = Some((
            name.to_vec(),
            MemFile {
                size,
                extents: Vec::new(),
            },
            0,
        ));
    }
    fn chunk(&mut self, chunk: FileChunk<'_>) {
        if let Some((_, f, pos)) = self.cur.as_mut() {
            match chunk {
                FileChunk::Data(d) => {
                    // Merge with a directly preceding extent to keep lookups short.
                    match f.extents.last_mut() {
                        Some((o, v)) if *o + v.len() as u64 == *pos => {
                            Arc::make_mut(v).extend_from_slice(d)
                        }
                        _ => f.extents.push((*pos, Arc::new(d.to_vec()))),
                    }
                    *pos += d.len() as u64;
                }
                FileChunk::Hole(n) => *pos += n,
            }
        }
    }
    fn end(&mut self) {
        if let Some((name, f, _)) = self.cur.take() {
            self.files.insert(name, Some(f));
        }
    }
}
