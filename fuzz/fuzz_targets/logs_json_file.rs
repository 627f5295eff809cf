//! Arbitrary bytes as a container's json-file log (first byte odd: gzip'd rotation, then
//! the live file) → `LogReader` and `write_logs` with since/until/tail.
#![no_main]
use libfuzzer_sys::fuzz_target;
use salvor_docker::logs::LogFormat;

mod common;

fuzz_target!(|data: &[u8]| {
    common::fuzz_log(data, "c/c-json.log", LogFormat::JsonFile);
});
