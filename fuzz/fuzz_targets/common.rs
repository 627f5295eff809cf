//! Shared helpers: writing fuzzed bytes into a synthetic data-root.
#![allow(dead_code)]
use std::io::Write;
use std::path::Path;

pub fn put(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Splits at `\0\xff` into at most `n` parts (missing parts are empty).
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(2).position(|w| w == b"\0\xff") {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 2..];
            }
            None => break,
        }
    }
    out.push(rest);
    while out.len() < n {
        out.push(&[]);
    }
    out
}

/// Fuzzed bytes as a read-only block device.
#[derive(Debug)]
pub struct MemDevice(pub Vec<u8>);

impl salvor_source::BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let Ok(off) = usize::try_from(offset) else { return Ok(0) };
        if off >= self.0.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.0.len() - off);
        buf[..n].copy_from_slice(&self.0[off..off + n]);
        Ok(n)
    }
    fn describe(&self) -> String {
        "fuzz input".into()
    }
}

/// Walks a filesystem (bounded steps): every call of the `Source` trait, on every entry.
pub fn walk(src: &dyn salvor_source::Source) {
    use std::io::Read;
    let mut stack = vec![std::path::PathBuf::new()];
    let mut steps = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = src.read_dir(&dir) else { continue };
        for e in entries {
            steps += 1;
            if steps > 2000 {
                return;
            }
            let p = dir.join(&e.name);
            let _ = src.xattrs(&p);
            match src.metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.is_symlink() => {
                    let _ = src.read_link(&p);
                }
                Ok(m) if m.is_file() => {
                    if let Ok(mut f) = src.open(&p) {
                        let mut buf = vec![0u8; 65536];
                        let _ = f.read(&mut buf);
                    }
                }
                _ => {}
            }
        }
    }
}

/// A log of `format` made of fuzzed bytes at `live` (first byte: options; odd = also a
/// gzip'd rotation), read through `LogReader` and `write_logs` with since/until/tail.
pub fn fuzz_log(data: &[u8], live: &str, format: salvor_docker::logs::LogFormat) {
    use salvor_source::{DirSource, Source, Timestamp};
    use salvor_docker::logs::{write_logs, LogFiles, LogOptions, LogReader};
    use std::path::PathBuf;
    use std::sync::Arc;

    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let live = PathBuf::from(live);
    let mut files = Vec::new();
    if sel & 1 == 1 {
        let rot = PathBuf::from(format!("{}.1.gz", live.display()));
        put(dir.path(), rot.to_str().unwrap(), &gzip(body));
        files.push(rot);
    }
    put(dir.path(), live.to_str().unwrap(), body);
    files.push(live);
    let src: Arc<dyn Source> = Arc::new(DirSource::new(dir.path()).unwrap());
    let lf = LogFiles {
        format,
        files,
        not_regular: Vec::new(),
    };
    let mut n = 0;
    for e in LogReader::new(src.clone(), &lf) {
        let _ = e;
        n += 1;
        if n > 100_000 {
            break;
        }
    }
    let opts = LogOptions {
        since: (sel & 2 != 0).then_some(Timestamp {
            sec: 1_600_000_000,
            nsec: 0,
        }),
        until: (sel & 4 != 0).then_some(Timestamp {
            sec: 1_700_000_000,
            nsec: 5,
        }),
        tail: (sel & 8 != 0).then_some((sel >> 4) as usize),
        timestamps: sel & 16 != 0,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let _ = write_logs(
        LogReader::new(src, &lf),
        &opts,
        &mut out,
        &mut err,
        &mut |_| {},
    );
}
