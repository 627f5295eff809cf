//! A dm-thin pool from arbitrary bytes (metadata and data separated by `\0\xff`): open it,
//! list the devices and read the start of each.
#![no_main]
use std::sync::Arc;
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let parts = common::split(data, 2);
    let meta: Arc<dyn salvor_source::BlockDevice> = Arc::new(common::MemDevice(parts[0].to_vec()));
    let dat: Arc<dyn salvor_source::BlockDevice> = Arc::new(common::MemDevice(parts[1].to_vec()));
    if let Ok(pool) = salvor_dmthin::ThinPool::open_lenient(meta, dat) {
        for d in pool.devices().into_iter().take(16) {
            if let Ok(dev) = pool.device(d.dev_id) {
                let mut buf = vec![0u8; 8192];
                let _ = dev.read_at(0, &mut buf);
            }
        }
    }
});
