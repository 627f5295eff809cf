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
    /// Writing the decompressed layer to its destination failed ([`copy_layer`]).
    #[error("writing the layer out failed")]
    Output(#[source] io::Error),
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
    let OpenBlob {
        path,
        mut tee,
        compression,
        prefix,
    } = open_blob(src, root, digest)?;
    let stream_err = |path: &Path, offset: u64, e: io::Error| ContentError::Stream {
        path: path.to_path_buf(),
        offset,
        what: e.to_string(),
    };
    let mut uncompressed = None;
    if decompress && compression != Compression::None {
        let mut out = tar_reader(&path, compression, prefix, &mut tee)?;
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

/// What streaming one layer blob out found ([`copy_layer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerCopy {
    /// The blob's path inside the source.
    pub path: PathBuf,
    /// `sha256:<hex>` of the blob's bytes (the distribution digest).
    pub digest: String,
    /// The blob's length.
    pub size: u64,
    /// Its compression, from its first bytes.
    pub compression: Compression,
    /// `sha256:<hex>` of the layer tar: the decompressed stream, or the blob itself when
    /// it is not compressed (the diff_id).
    pub diff_id: String,
    /// Bytes of the layer tar.
    pub tar_size: u64,
    /// Members of the tar, when it reads as one (`None`: not a well-formed tar).
    pub files: Option<u64>,
}

/// The decompressed stream as read by the tar reader: hashed, counted, bounded, and written
/// to `out` as it goes; the first failure of each kind kept to tell them apart.
struct Through<'a, R> {
    inner: R,
    out: &'a mut dyn io::Write,
    sha: Sha256,
    n: u64,
    limit: u64,
    read_err: Option<io::Error>,
    write_err: Option<io::Error>,
    too_large: bool,
}

impl<R: Read> Read for Through<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.write_err.is_some() || self.too_large || self.read_err.is_some() {
            return Err(io::Error::other("stopped"));
        }
        let k = loop {
            match self.inner.read(buf) {
                Ok(k) => break k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let msg = e.to_string();
                    self.read_err = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        };
        self.n += k as u64;
        if self.n > self.limit {
            self.too_large = true;
            return Err(io::Error::other("too large"));
        }
        self.sha.update(&buf[..k]);
        if let Err(e) = self.out.write_all(&buf[..k]) {
            self.write_err = Some(e);
            return Err(io::Error::other("write failed"));
        }
        Ok(k)
    }
}

/// A blob opened with its bytes hashed as read, and its compression told from its first
/// bytes (kept in `prefix`, already read).
struct OpenBlob {
    path: PathBuf,
    tee: Tee<Box<dyn salvor_source::FileReader>>,
    compression: Compression,
    prefix: Vec<u8>,
}

/// Opens blob `digest` of the content store at `root`.
fn open_blob(src: &dyn Source, root: &Path, digest: &str) -> Result<OpenBlob, ContentError> {
    let path = blob_path(root, digest)?;
    let f = src.open(&path)?;
    let mut tee = Tee {
        inner: f,
        sha: Sha256::new(),
        n: 0,
    };
    let mut first = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match tee.read(&mut first[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ContentError::Stream {
                    path,
                    offset: 0,
                    what: e.to_string(),
                })
            }
        }
    }
    let compression = match &first[..got] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    Ok(OpenBlob {
        path,
        tee,
        compression,
        prefix: first[..got].to_vec(),
    })
}

/// The layer tar of an opened blob: decompressed, or the blob itself.
fn tar_reader<'a, R: Read + 'a>(
    path: &Path,
    compression: Compression,
    prefix: Vec<u8>,
    blob: R,
) -> Result<Box<dyn Read + 'a>, ContentError> {
    let chained = io::Cursor::new(prefix).chain(blob);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(chained).map_err(|e| {
            ContentError::Stream {
                path: path.to_path_buf(),
                offset: 0,
                what: e.to_string(),
            }
        })?),
        Compression::None => Box::new(chained),
    })
}

/// Streams layer blob `digest` of the content store at `root` into `out` as the layer tar
/// (decompressed when gzip or zstd, else as stored), reading it once: the blob's bytes and
/// the tar are both hashed, and the tar's members counted. Stops with
/// [`ContentError::TooLarge`] past `limit` tar bytes, [`ContentError::Output`] when `out`
/// fails, [`ContentError::Stream`] when the blob does not decompress. Nothing is held in
/// memory but buffers.
pub fn copy_layer(
    src: &dyn Source,
    root: &Path,
    digest: &str,
    out: &mut dyn io::Write,
    limit: u64,
) -> Result<LayerCopy, ContentError> {
    let OpenBlob {
        path,
        mut tee,
        compression,
        prefix,
    } = open_blob(src, root, digest)?;
    let (diff_sha, tar_size, files) = {
        let reader = tar_reader(&path, compression, prefix, &mut tee)?;
        let mut th = Through {
            inner: reader,
            out,
            sha: Sha256::new(),
            n: 0,
            limit,
            read_err: None,
            write_err: None,
            too_large: false,
        };
        let files = salvor_tarsplit::Disassembler::new()
            .allow_duplicates(true)
            .run(&mut th, io::sink())
            .ok()
            .map(|r| r.files);
        // What the tar reader left (after a malformed member, or past its end).
        let rest = io::copy(&mut th, &mut io::sink());
        if let Some(e) = th.write_err.take() {
            return Err(ContentError::Output(e));
        }
        if th.too_large {
            return Err(ContentError::TooLarge { path, limit });
        }
        if let Some(e) = th.read_err.take() {
            return Err(ContentError::Stream {
                path,
                offset: th.n,
                what: e.to_string(),
            });
        }
        if let Err(e) = rest {
            return Err(ContentError::Stream {
                path,
                offset: th.n,
                what: e.to_string(),
            });
        }
        (th.sha.finalize(), th.n, files)
    };
    // Bytes after the compressed stream's end belong to the blob too.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| ContentError::Stream {
        path: path.clone(),
        offset: tar_size,
        what: e.to_string(),
    })?;
    Ok(LayerCopy {
        digest: format!("sha256:{}", hex::encode(tee.sha.finalize())),
        size: tee.n,
        compression,
        diff_id: format!("sha256:{}", hex::encode(diff_sha)),
        tar_size,
        files,
        path,
    })
}

/// A reader over chunks sent from another thread (the tar-split of a blob, made as read).
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let k = buf.len().min(self.cur.len() - self.pos);
        buf[..k].copy_from_slice(&self.cur[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

/// Sends what is written as chunks; fails once the reader is gone.
struct ChannelWriter {
    tx: std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>,
}

impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .send(Ok(buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "headers no longer read"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The tar headers of layer blob `digest`, streamed: a thread decompresses the blob and
/// turns the tar into a tar-split as it reads it (CRC-64 of every file's content
/// included), and the headers are parsed from that as they come, so the tamper audit
/// compares a layer's files with its blob as with a tar-split. At most `limit` tar bytes
/// are read; an unreadable or malformed blob ends the stream with an error item. Dropping
/// the iterator stops the thread.
pub fn blob_headers(
    src: std::sync::Arc<dyn Source>,
    root: &Path,
    digest: &str,
    limit: u64,
) -> Result<
    salvor_tarsplit::HeaderIter<
        impl Iterator<Item = Result<salvor_tarsplit::Entry, salvor_tarsplit::TarSplitError>>
            + Send
            + 'static,
    >,
    ContentError,
> {
    // Opened here so that a missing blob is an error now, not an item later.
    let OpenBlob {
        path,
        tee,
        compression,
        prefix,
    } = open_blob(src.as_ref(), root, digest)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(8);
    let thread_path = path.clone();
    let spawned = std::thread::Builder::new()
        .name("blob-headers".into())
        .spawn(move || {
            let _src = src; // keeps the evidence open while the thread reads it
            let res = (|| -> Result<(), String> {
                let reader = tar_reader(&thread_path, compression, prefix, tee)
                    .map_err(|e| e.to_string())?;
                let mut sink = io::sink();
                let mut th = Through {
                    inner: reader,
                    out: &mut sink,
                    sha: Sha256::new(),
                    n: 0,
                    limit,
                    read_err: None,
                    write_err: None,
                    too_large: false,
                };
                let r = salvor_tarsplit::Disassembler::new()
                    .allow_duplicates(true)
                    .run(&mut th, ChannelWriter { tx: tx.clone() });
                if th.too_large {
                    return Err(format!(
                        "{}: decompresses to more than {limit} bytes; stopped",
                        thread_path.display()
                    ));
                }
                if let Some(e) = th.read_err {
                    return Err(format!("{}: {e}", thread_path.display()));
                }
                r.map(|_| ())
                    .map_err(|e| format!("{}: {e}", thread_path.display()))
            })();
            if let Err(e) = res {
                let _ = tx.send(Err(e));
            }
        });
    if let Err(e) = spawned {
        return Err(ContentError::Stream {
            path,
            offset: 0,
            what: format!("cannot start a thread to read it: {e}"),
        });
    }
    Ok(salvor_tarsplit::headers(salvor_tarsplit::Unpacker::new(
        ChannelReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A small tar, and a content store holding it plain, gzipped, zstd'd and as garbage.
    fn store() -> (
        tempfile::TempDir,
        salvor_source::DirSource,
        Vec<u8>,
        [String; 4],
    ) {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [
            ("a/x", &b"hello"[..]),
            ("a/y", &b""[..]),
            ("b", &[7u8; 3000][..]),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body).expect("append");
        }
        let tar = b.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gz");
        let gz = gz.finish().expect("gz");
        let zst = zstd::encode_all(tar.as_slice(), 3).expect("zstd");
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n / 2] ^= 0xff;
        let d = tempfile::tempdir().expect("tempdir");
        let blobs = d.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("mkdir");
        let mut names = Vec::new();
        for b in [&tar, &gz, &zst, &bad] {
            let hex = hex::encode(Sha256::digest(b));
            std::fs::write(blobs.join(&hex), b).expect("write");
            names.push(format!("sha256:{hex}"));
        }
        let src = salvor_source::DirSource::new(d.path()).expect("source");
        let names: [String; 4] = names.try_into().expect("four");
        (d, src, tar, names)
    }

    #[test]
    fn layers_copy_out_as_their_tar_whatever_the_compression() {
        let (_d, src, tar, [plain, gz, zst, _]) = store();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        for (digest, c) in [
            (&plain, Compression::None),
            (&gz, Compression::Gzip),
            (&zst, Compression::Zstd),
        ] {
            let mut out = Vec::new();
            let r = copy_layer(&src, Path::new(""), digest, &mut out, 1 << 20).expect("copy");
            assert_eq!(out, tar);
            assert_eq!((&r.digest, r.compression), (digest, c));
            assert_eq!(
                (r.diff_id.as_str(), r.tar_size),
                (want.as_str(), tar.len() as u64)
            );
            assert_eq!(r.files, Some(3));
            let names: Vec<Vec<u8>> = blob_headers(
                std::sync::Arc::new(salvor_source::DirSource::new(_d.path()).expect("src")),
                Path::new(""),
                digest,
                1 << 20,
            )
            .expect("headers")
            .map(|h| h.expect("header").name().to_vec())
            .collect();
            assert_eq!(names, [&b"a/x"[..], b"a/y", b"b"]);
        }
    }

    #[test]
    fn limits_bad_streams_and_failing_writers_are_told_apart() {
        let (d, src, _, [plain, gz, _, bad]) = store();
        let root = Path::new("");
        assert!(matches!(
            copy_layer(&src, root, &gz, &mut io::sink(), 100),
            Err(ContentError::TooLarge { limit: 100, .. })
        ));
        let e = copy_layer(&src, root, &bad, &mut io::sink(), 1 << 20).expect_err("corrupt");
        assert!(matches!(e, ContentError::Stream { .. }), "{e}");
        assert!(e.to_string().contains(&bad[7..]), "{e}");
        struct Full;
        impl io::Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        match copy_layer(&src, root, &plain, &mut Full, 1 << 20) {
            Err(ContentError::Output(e)) => assert_eq!(e.to_string(), "disk full"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            copy_layer(&src, root, "sha256:00", &mut io::sink(), 1),
            Err(ContentError::BadDigest(_))
        ));
        // Not a tar: hashed all the same, no member count.
        let blob = b"not a tar at all";
        let hex = hex::encode(Sha256::digest(blob));
        std::fs::write(d.path().join("blobs/sha256").join(&hex), blob).expect("write");
        let r = copy_layer(
            &src,
            root,
            &format!("sha256:{hex}"),
            &mut io::sink(),
            1 << 20,
        )
        .expect("copy");
        assert_eq!((r.files, r.tar_size), (None, blob.len() as u64));
        assert_eq!(r.diff_id, format!("sha256:{hex}"));
        // Headers of a corrupt blob end in an error item, not a panic.
        let items: Vec<_> = blob_headers(
            std::sync::Arc::new(salvor_source::DirSource::new(d.path()).expect("src")),
            root,
            &bad,
            1 << 20,
        )
        .expect("opens")
        .collect();
        assert!(items.iter().any(|h| h.is_err()), "{items:?}");
        assert!(blob_headers(
            std::sync::Arc::new(salvor_source::DirSource::new(d.path()).expect("src")),
            root,
            &format!("sha256:{}", "0".repeat(64)),
            1
        )
        .is_err());
    }
}
