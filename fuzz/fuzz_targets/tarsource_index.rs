//! Arbitrary archive bytes → `TarSource` (from a temp file) → walk everything.
#![no_main]
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use salvor_source::{resolve_in_root, Source, TarOptions, TarSource};

fn walk(src: &TarSource, dir: &Path, depth: usize, budget: &mut usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = src.read_dir(dir) else {
        return;
    };
    for e in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let p = dir.join(&e.name);
        let _ = src.xattrs(&p);
        match src.metadata(&p) {
            Ok(md) if md.is_dir() => walk(src, &p, depth + 1, budget),
            Ok(md) if md.is_file() => {
                if let Ok(mut f) = src.open(&p) {
                    let mut buf = Vec::new();
                    let _ = f.by_ref().take(1 << 20).read_to_end(&mut buf);
                }
            }
            Ok(md) if md.is_symlink() => {
                let _ = src.read_link(&p);
                let _ = resolve_in_root(src, Path::new(""), &p, true);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    f.flush().unwrap();
    // A small spool cap: bombs in the corpus stop at 16 MiB instead of 1 GiB.
    let opts = TarOptions {
        spool_limit: Some(16 << 20),
        ..TarOptions::default()
    };
    let Ok(src) = TarSource::open_with(f.path(), &opts) else {
        return;
    };
    let _ = src.warnings();
    for d in src.damage() {
        let _ = d.to_string();
    }
    let mut budget = 10_000;
    walk(&src, &PathBuf::new(), 0, &mut budget);
});
