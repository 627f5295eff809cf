//! Arbitrary tar bytes → `disassemble` (capturing file contents) → `Unpacker` +
//! `assemble` must give back exactly the tar bytes that were consumed.
#![no_main]
use std::collections::BTreeMap;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use salvor_tarsplit::{
    assemble, Disassembler, FileChunk, FileGetter, FilePutter, FileReader, GetError, Unpacker,
};

#[derive(Default)]
struct Capture {
    files: BTreeMap<Vec<u8>, Vec<u8>>,
    cur: Option<(Vec<u8>, Vec<u8>)>,
    total: u64,
}

impl FilePutter for Capture {
    fn begin(&mut self, name: &[u8], _size: u64) {
        self.cur = Some((name.to_vec(), Vec::new()));
    }
    fn chunk(&mut self, chunk: FileChunk<'_>) {
        if let Some((_, buf)) = &mut self.cur {
            match chunk {
                FileChunk::Data(d) => {
                    self.total += d.len() as u64;
                    buf.extend_from_slice(d)
                }
                FileChunk::Hole(n) => {
                    // Holes can be huge (sparse files): keep memory bounded.
                    self.total += n;
                    if self.total < (64 << 20) {
                        buf.resize(buf.len() + n as usize, 0)
                    }
                }
            }
        }
    }
    fn end(&mut self) {
        if let Some((n, b)) = self.cur.take() {
            self.files.insert(n, b);
        }
    }
}

struct Getter<'a>(&'a BTreeMap<Vec<u8>, Vec<u8>>);
impl FileGetter for Getter<'_> {
    fn get(&self, name: &[u8]) -> Result<Box<dyn FileReader>, GetError> {
        self.0
            .get(name)
            .map(|v| Box::new(Cursor::new(v.clone())) as Box<dyn FileReader>)
            .ok_or_else(|| GetError::NotFound(String::from_utf8_lossy(name).into()))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut cap = Capture::default();
    let mut json = Vec::new();
    let report = match Disassembler::new()
        .file_putter(&mut cap)
        .run(Cursor::new(data), &mut json)
    {
        Ok(r) => r,
        Err(_) => return,
    };
    if cap.total >= (64 << 20) {
        return;
    }
    let mut out = Vec::new();
    let ar =
        assemble(Unpacker::new(&json[..]), &Getter(&cap.files), &mut out).unwrap_or_else(|e| {
            panic!("disassembled stream does not assemble: {e}; report {report:?}")
        });
    if ar.is_clean() {
        assert_eq!(
            out.as_slice(),
            &data[..out.len().min(data.len())],
            "round trip differs; report {report:?}"
        );
        assert_eq!(
            out.len() as u64,
            report.tar_bytes + report.trailing_bytes,
            "length; report {report:?}"
        );
    }
});
