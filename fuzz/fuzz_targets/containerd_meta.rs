//! salvor-containerd: the input read as containerd's meta.db and as a snapshotter's
//! metadata.db: records decoded or problems named, never a panic or a hang. Seeded with
//! the decompressed `fixtures/bbolt/*.db.zst` and Docker 26's meta.db.
#![no_main]

use libfuzzer_sys::fuzz_target;
use salvor_containerd::{MetaDb, SnapshotterDb};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = MetaDb::read(data.to_vec(), "meta.db") {
        for ns in &m.namespaces {
            let _ = (ns.images.len(), ns.blobs.len(), ns.snapshots.len());
        }
    }
    if let Ok(s) = SnapshotterDb::read(data.to_vec(), "metadata.db") {
        for name in s.snapshots.keys() {
            let _ = s.fs_dir(name);
        }
    }
});
