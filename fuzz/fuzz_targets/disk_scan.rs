//! A disk image of arbitrary bytes (qcow2, VMDK, VHDX, E01, MBR/GPT, LVM …): scan it and
//! read the start and end of every volume.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(mut f) = tempfile::NamedTempFile::new() else { return };
    if std::io::Write::write_all(&mut f, data).is_err() {
        return;
    }
    if let Ok(disk) = salvor_disk::Disk::open(f.path()) {
        let _ = disk.report();
        for v in &disk.volumes {
            let mut buf = vec![0u8; 4096];
            let _ = v.device.read_at(0, &mut buf);
            let _ = v.device.read_at(v.size.saturating_sub(4096), &mut buf);
        }
    }
});
