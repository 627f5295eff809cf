//! Writing a plan: as a tar stream or into a directory, streaming and verifying
//! each layer on its way.

use super::*;

/// Counts, hashes and bounds the bytes of one layer on their way to `inner`.
pub(super) struct LayerPipe<'a> {
    pub(super) inner: &'a mut dyn Write,
    pub(super) hasher: Option<Sha256>,
    pub(super) written: u64,
    pub(super) limit: u64,
    pub(super) overflow: bool,
}

impl Write for LayerPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.overflow = true;
            return Err(io::Error::other(
                "layer source wrote more than the declared size",
            ));
        }
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Stream one layer into `out`, verify it; returns the hex digest.
pub(super) fn stream_layer(
    src: &dyn LayerSource,
    diff_id: &str,
    size: u64,
    out: &mut dyn Write,
) -> Result<String, ExportError> {
    let trust = src.digests_what_it_writes();
    let mut pipe = LayerPipe {
        inner: out,
        hasher: (!trust).then(Sha256::new),
        written: 0,
        limit: size,
        overflow: false,
    };
    let res = src.write_layer(diff_id, &mut pipe);
    let actual = match (&pipe.hasher, &res) {
        (Some(h), _) => format!("sha256:{}", hex::encode(h.clone().finalize())),
        (None, Ok(reported)) => reported.to_ascii_lowercase(),
        (None, Err(_)) => String::new(),
    };
    let actual_hex = actual
        .strip_prefix("sha256:")
        .unwrap_or(&actual)
        .to_string();
    if pipe.overflow || (res.is_ok() && pipe.written != size) {
        return Err(ExportError::SizeMismatch {
            diff_id: diff_id.to_string(),
            expected: size,
            actual: pipe.written + u64::from(pipe.overflow),
        });
    }
    let reported = res.map_err(|source| ExportError::Layer {
        diff_id: diff_id.to_string(),
        source,
    })?;
    if actual != diff_id {
        return Err(ExportError::DigestMismatch {
            diff_id: diff_id.to_string(),
            actual,
        });
    }
    if !reported.eq_ignore_ascii_case(&actual) {
        return Err(ExportError::SourceDigestMismatch {
            diff_id: diff_id.to_string(),
            reported,
            actual,
        });
    }
    Ok(actual_hex)
}

pub(super) fn write_tar<W: Write>(
    plan: &Plan,
    src: &dyn LayerSource,
    w: W,
    label: &Path,
    hash_archive: bool,
) -> Result<(W, ExportReport), ExportError> {
    let mut t = if hash_archive {
        tarw::TarOut::new(w)
    } else {
        tarw::TarOut::unhashed(w)
    };
    let mut report = ExportReport::default();
    let e = |source: io::Error| ExportError::Io {
        path: label.to_path_buf(),
        source,
    };
    for entry in plan.entries.values() {
        match &entry.content {
            Content::Dir => {
                let h = tarw::header(
                    &format!("{}/", entry.path),
                    tarw::Kind::Dir,
                    0,
                    entry.mtime,
                    "",
                )
                .map_err(e)?;
                t.write_all(&h).map_err(e)?;
            }
            Content::Symlink(target) => {
                let h = tarw::header(&entry.path, tarw::Kind::Symlink, 0, entry.mtime, target)
                    .map_err(e)?;
                t.write_all(&h).map_err(e)?;
            }
            Content::Bytes(b) => {
                let h = tarw::header(
                    &entry.path,
                    tarw::Kind::File,
                    b.len() as u64,
                    entry.mtime,
                    "",
                )
                .map_err(e)?;
                t.write_all(&h).map_err(e)?;
                t.write_all(b).map_err(e)?;
                t.pad(b.len() as u64).map_err(e)?;
                report.files.push((
                    entry.path.clone(),
                    hex::encode(Sha256::digest(b)),
                    b.len() as u64,
                ));
            }
            Content::Layer { diff_id, size } => {
                let h = tarw::header(&entry.path, tarw::Kind::File, *size, entry.mtime, "")
                    .map_err(e)?;
                t.write_all(&h).map_err(e)?;
                let hx = stream_layer(src, diff_id, *size, &mut t)?;
                t.pad(*size).map_err(e)?;
                report.files.push((entry.path.clone(), hx, *size));
                report.layers_written += 1;
            }
        }
    }
    let (w, digest, bytes) = t.finish().map_err(e)?;
    report.archive_sha256 = hash_archive.then_some(digest);
    report.bytes = bytes;
    Ok((w, report))
}

pub(super) fn set_mtime(path: &Path, shown: &Path, mtime: i64) -> Result<(), ExportError> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(shown))?;
    f.set_modified(t).map_err(io_err(shown))
}

pub(super) fn write_dir(
    plan: &Plan,
    src: &dyn LayerSource,
    sink: &DirSink,
    parallel: bool,
) -> Result<ExportReport, ExportError> {
    let root = sink.path();
    let mut report = ExportReport::default();
    let mut layers: Vec<(&Entry, &str, u64)> = Vec::new();
    for entry in plan.entries.values() {
        let p = root.join(&entry.path);
        let shown = sink.final_path(&entry.path);
        match &entry.content {
            Content::Dir => std::fs::create_dir_all(&p).map_err(io_err(&shown))?,
            Content::Bytes(b) => {
                let mut f = sink.create_file(&entry.path)?;
                if f.write_all(b).is_err() {
                    if let Some(e) = f.error() {
                        return Err(e.into());
                    }
                }
                drop(f);
                set_mtime(&p, &shown, entry.mtime)?;
            }
            Content::Symlink(target) => {
                #[cfg(unix)]
                std::os::unix::fs::symlink(target, &p).map_err(io_err(&shown))?;
                #[cfg(not(unix))]
                return Err(ExportError::Io {
                    path: shown,
                    source: io::Error::other(format!("cannot create symlink to {target}")),
                });
            }
            Content::Layer { diff_id, size } => layers.push((entry, diff_id, *size)),
        }
    }
    let one = |(entry, diff_id, size): &(&Entry, &str, u64)| -> Result<String, ExportError> {
        let path = root.join(&entry.path);
        let f = sink.create_file(&entry.path)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        let res = stream_layer(src, diff_id, *size, &mut w);
        let flushed = w.flush();
        // A write error is the output's, whatever the layer source made of it.
        if let Some(e) = w.get_ref().error() {
            return Err(e.into());
        }
        let hx = res?;
        flushed.map_err(io_err(sink.final_path(&entry.path)))?;
        let f = w.into_inner().map_err(|e| ExportError::Io {
            path: sink.final_path(&entry.path),
            source: e.into_error(),
        })?;
        f.get_ref()
            .sync_all()
            .map_err(io_err(sink.final_path(&entry.path)))?;
        drop(f);
        set_mtime(&path, &sink.final_path(&entry.path), entry.mtime)?;
        Ok(hx)
    };
    let digests: Vec<String> = if parallel {
        layers.par_iter().map(one).collect::<Result<Vec<_>, _>>()?
    } else {
        layers.iter().map(one).collect::<Result<Vec<_>, _>>()?
    };
    let by_path: HashMap<&str, (String, u64)> = layers
        .iter()
        .zip(digests)
        .map(|((e, _, s), d)| (e.path.as_str(), (d, *s)))
        .collect();
    report.layers_written = layers.len();
    for entry in plan.entries.values() {
        match &entry.content {
            Content::Bytes(b) => report.files.push((
                entry.path.clone(),
                hex::encode(Sha256::digest(b)),
                b.len() as u64,
            )),
            Content::Layer { .. } => {
                if let Some((d, s)) = by_path.get(entry.path.as_str()) {
                    report.files.push((entry.path.clone(), d.clone(), *s));
                }
            }
            _ => {}
        }
    }
    report.bytes = report.files.iter().map(|f| f.2).sum();
    Ok(report)
}
