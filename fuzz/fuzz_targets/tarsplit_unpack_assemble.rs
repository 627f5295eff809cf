//! tar-split JSON (arbitrary bytes) → `Unpacker` → `assemble` with a getter over an
//! in-memory map. Input: JSON stream, then optionally `\0\xff` and a pool of file bytes.
#![no_main]
use std::collections::BTreeMap;
use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use salvor_tarsplit::{
    assembled_size, Assembler, FileGetter, FileReader, GetError, Limits, Unpacker,
};

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
    // Bounds small enough for the fuzzer's memory: an amplifying tar-split (huge claims,
    // missing or short files, names listed again) must stop at them, never allocate more.
    let limits = Limits {
        max_data: 64 << 20,
        max_fill: 16 << 20,
    };
    let assembled = Assembler::new(&getter)
        .limits(limits)
        .assemble(Unpacker::new(json), &mut out);
    if let Ok(report) = assembled {
        let segments = json.len() as u64 * 3 / 4 + 1;
        assert!(
            (out.len() as u64) <= segments + limits.max_data,
            "assembly wrote {} bytes past its bounds",
            out.len()
        );
        if report.stopped.is_some() {
            return;
        }
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
