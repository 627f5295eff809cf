//! The content store (`io.containerd.content.v1.content/blobs/sha256/<hex>`): a blob is
//! proven by its bytes hashing to its name; a layer blob also by what it decompresses to
//! hashing to its diff_id (`containerd.io/uncompressed`).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use salvor_source::Source;

/// How a layer blob is compressed, from its first bytes (media types lie; magic does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// Neither: a plain tar (or not a layer).
    None,
}

/// What reading one blob found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobCheck {
    /// The blob's path inside the source.
    pub path: PathBuf,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Its length.
    pub size: u64,
    /// Whether `digest` is the digest in its name.
    pub digest_ok: bool,
    /// Its compression.
    pub compression: Compression,
    /// `sha256:<hex>` and length of the decompressed stream (the diff_id of a layer), when
    /// asked for and the blob is compressed.
    pub uncompressed: Option<(String, u64)>,
}

/// Reading a blob failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The digest is not `sha256:` and 64 hex digits.
    #[error("{0}: not a sha256 digest")]
    BadDigest(String),
    /// The blob cannot be read.
    #[error(transparent)]
    Source(#[from] salvor_source::SourceError),
    /// Reading or decompressing it failed, at a byte offset of the decompressed stream.
    #[error("{}: {what} (after {offset} decompressed bytes)", path.display())]
    Stream {
        /// The blob.
        path: PathBuf,
        /// Where in the decompressed stream.
        offset: u64,
        /// What went wrong.
        what: String,
    },
    /// It decompresses to more than the limit (a decompression bomb, or a limit too low).
    #[error("{}: decompresses to more than {limit} bytes; stopped", path.display())]
    TooLarge {
        /// The blob.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
}

/// The path of blob `digest` under the content store root `root`.
pub fn blob_path(root: &Path, digest: &str) -> Result<PathBuf, ContentError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        })
        .ok_or_else(|| ContentError::BadDigest(digest.to_string()))?;
    Ok(root.join("blobs/sha256").join(hex))
}

/// A reader that hashes and counts what is read through it.
struct Tee<R> {
    inner: R,
    sha: Sha256,
    n: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// Reads blob `digest` of the content store at `root` in `src` once, streaming: hashes it,
/// and with `decompress` also hashes what it decompresses to, stopping with
/// [`ContentError::TooLarge`] past `limit` decompressed bytes. Nothing is held in memory
/// but a buffer.
pub fn check_blob(
    src: &dyn Source,
    root: &Path,
    digest: &str,
    decompress: bool,
    limit: u64,
) -> Result<BlobCheck, ContentError> {
    let path = blob_path(root, digest)?;
    let f = src.open(&path)?;
    let mut tee = Tee {
        inner: f,
        sha: Sha256::new(),
        n: 0,
    };
    let stream_err = |path: &Path, offset: u64, e: io::Error| ContentError::Stream {
        path: path.to_path_buf(),
        offset,
        what: e.to_string(),
    };
    // The first bytes decide the compression.
    let mut first = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match tee.read(&mut first[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(stream_err(&path, 0, e)),
        }
    }
    let compression = match &first[..got] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    let prefix = first[..got].to_vec();
    let mut uncompressed = None;
    if decompress && compression != Compression::None {
        let chained = io::Cursor::new(prefix).chain(&mut tee);
        let mut out: Box<dyn Read> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
            _ => Box::new(
                zstd::stream::read::Decoder::new(chained).map_err(|e| stream_err(&path, 0, e))?,
            ),
        };
        let mut sha = Sha256::new();
        let mut n: u64 = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = match out.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(stream_err(&path, n, e)),
            };
            n += k as u64;
            if n > limit {
                return Err(ContentError::TooLarge { path, limit });
            }
            sha.update(&buf[..k]);
        }
        uncompressed = Some((format!("sha256:{}", hex::encode(sha.finalize())), n));
    }
    // The rest of the blob (all of it when not decompressed; trailing bytes otherwise).
    io::copy(&mut tee, &mut io::sink()).map_err(|e| stream_err(&path, 0, e))?;
    let actual = format!("sha256:{}", hex::encode(tee.sha.finalize()));
    Ok(BlobCheck {
        digest_ok: actual == digest,
        digest: actual,
        size: tee.n,
        compression,
        uncompressed,
        path,
    })
}
