//! tar-split JSON (arbitrary bytes) → `Unpacker` → `assemble` with a getter over an
//! in-memory map. Input: JSON stream, then optionally `\0\xff` and a pool of file bytes.
#![no_main]
use std::collections::BTreeMap;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use salvor_tarsplit::{assemble, assembled_size, FileGetter, FileReader, GetError, Unpacker};

struct MapGetter(BTreeMap<Vec<u8>, Vec<u8>>, Vec<u8>);

impl FileGetter for MapGetter {
    fn get(&self, name: &[u8]) -> Result<Box<dyn FileReader>, GetError> {
        if let Some(v) = self.0.get(name) {
            return Ok(Box::new(Cursor::new(v.clone())));
        }
        match name.first().copied().unwrap_or(0) % 4 {
            0 => Err(GetError::NotFound(String::from_utf8_lossy(name).into())),
            1 => Err(GetError::NotRegular(String::from_utf8_lossy(name).into())),
            _ => Ok(Box::new(Cursor::new(self.1.clone()))),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (json, pool) = match data.windows(2).position(|w| w == b"\0\xff") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut map = BTreeMap::new();
    map.insert(
        b"etc/passwd".to_vec(),
        b"root:x:0:0::/root:/bin/sh\n".to_vec(),
    );
    map.insert(b"./bin/sh".to_vec(), pool.to_vec());
    let getter = MapGetter(map, pool.to_vec());
    // Entries alone.
    for e in Unpacker::new(json) {
        if e.is_err() {
            break;
        }
    }
    let planned = assembled_size(Unpacker::new(json));
    let mut out = Vec::new();
    if let Ok(report) = assemble(Unpacker::new(json), &getter, &mut out) {
        if let Ok(n) = planned {
            // The size planned from the entries alone is what assembly writes.
            assert_eq!(
                n,
                out.len() as u64,
                "assembled_size disagrees with assemble: {report:?}"
            );
        }
    }
});
