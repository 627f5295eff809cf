//! An ext4 image of arbitrary bytes: open it and walk everything.
#![no_main]
use std::sync::Arc;
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let dev: Arc<dyn salvor_source::BlockDevice> = Arc::new(common::MemDevice(data.to_vec()));
    if let Ok(fs) = salvor_ext4::Ext4::open(dev) {
        let _ = fs.report();
        common::walk(&fs);
    }
});
