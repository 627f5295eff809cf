//! Arbitrary bytes as a container's json-file log (first byte odd: gzip'd rotation, then
//! the live file) → `LogReader` and `write_logs` with since/until/tail.
#![no_main]
use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use salvor_source::{DirSource, Source, Timestamp};
use salvor_store::logs::{write_logs, LogFiles, LogFormat, LogOptions, LogReader};

mod common;
use common::{gzip, put};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let live = PathBuf::from("c/c-json.log");
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
        format: LogFormat::JsonFile,
        files,
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
});
