use super::*;
use std::os::unix::fs::symlink;

fn policy(protect: &[&Path], overwrite: bool) -> OutputPolicy {
    let mut g = EvidenceGuard::new();
    for p in protect {
        g.protect_evidence(p);
    }
    OutputPolicy::new(g, overwrite)
}

fn refused(r: Result<impl fmt::Debug, SinkError>) -> String {
    match r {
        Err(e @ SinkError::Refused { .. }) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn resolve_follows_symlinks_and_keeps_missing_tail() {
    let t = tempfile::tempdir().unwrap();
    let real = t.path().join("real");
    fs::create_dir(&real).unwrap();
    symlink(&real, t.path().join("link")).unwrap();
    let canon = fs::canonicalize(&real).unwrap();
    assert_eq!(
        resolve(&t.path().join("link/new/x.tar")).unwrap(),
        canon.join("new/x.tar")
    );
    assert_eq!(
        resolve(&t.path().join("link/new/../y")).unwrap(),
        canon.join("y")
    );
}

#[test]
fn refuses_evidence_file_inside_dir_and_through_symlinks() {
    let t = tempfile::tempdir().unwrap();
    let ev = t.path().join("ev");
    fs::create_dir(&ev).unwrap();
    let archive = t.path().join("ev.tar");
    fs::write(&archive, b"evidence").unwrap();
    symlink(&ev, t.path().join("evlink")).unwrap();
    let p = policy(&[&ev, &archive], true);
    let m = refused(p.file(&archive));
    assert!(m.contains("it is the evidence file"), "{m}");
    assert!(m.contains(&archive.display().to_string()), "{m}");
    let m = refused(p.file(&ev.join("sub/out.tar")));
    assert!(m.contains("inside the evidence directory"), "{m}");
    refused(p.file(&t.path().join("evlink/out.tar")));
    refused(p.dir(&t.path().join("evlink/case")));
    refused(p.dir(&ev));
    // A directory holding the evidence.
    let m = refused(p.dir(t.path()));
    assert!(m.contains("it contains"), "{m}");
    // A hard link to the evidence file.
    let hl = t.path().join("hard");
    fs::hard_link(&archive, &hl).unwrap();
    refused(p.file(&hl));
    assert_eq!(fs::read(&archive).unwrap(), b"evidence");
    assert!(fs::read_dir(&ev).unwrap().next().is_none());
}

#[test]
fn existing_file_needs_overwrite() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    fs::write(&out, b"old").unwrap();
    assert!(matches!(
        policy(&[], false).file(&out),
        Err(SinkError::Exists { .. })
    ));
    let mut s = policy(&[], true).file(&out).unwrap();
    s.write_all(b"new").unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"old");
    s.commit().unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"new");
    // Nothing else left in the directory.
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
}

#[test]
fn dropped_sink_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let mut s = policy(&[], false).file(&out).unwrap();
    s.write_all(&[7u8; 3 << 20]).unwrap();
    drop(s);
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
    let d = policy(&[], false).dir(&t.path().join("d")).unwrap();
    fs::write(d.path().join("f"), b"x").unwrap();
    drop(d);
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
}

#[test]
fn fifo_is_written_in_place() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f2 = fifo.clone();
    let reader = std::thread::spawn(move || fs::read(&f2).unwrap());
    let mut s = policy(&[], false).file(&fifo).unwrap();
    assert!(s.is_stream());
    s.write_all(b"through the fifo").unwrap();
    s.commit().unwrap();
    assert_eq!(reader.join().unwrap(), b"through the fifo");
    assert!(fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo_like());
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[test]
fn dev_full_error_names_the_output() {
    let p = Path::new("/dev/full");
    if !p.exists() {
        return;
    }
    let mut s = policy(&[], false).file(p).unwrap();
    let r = s.write_all(&[0u8; 2 << 20]);
    let e = r.expect_err("/dev/full accepts nothing");
    assert!(e.to_string().contains("/dev/full"), "{e}");
    let e = s.commit().expect_err("commit reports the failure");
    assert!(matches!(e, SinkError::Write { .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot write /dev/full"), "{e}");
    assert!(fs::metadata(p).unwrap().file_type().is_char_device_like());
}

trait CharLike {
    fn is_char_device_like(&self) -> bool;
}
impl CharLike for fs::FileType {
    fn is_char_device_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_char_device()
    }
}

#[test]
fn dir_output_into_empty_dir_and_symlink_to_it() {
    let t = tempfile::tempdir().unwrap();
    let real = t.path().join("case");
    fs::create_dir(&real).unwrap();
    symlink(&real, t.path().join("caselink")).unwrap();
    let d = policy(&[], false).dir(&t.path().join("caselink")).unwrap();
    let mut f = d.create_file("a.txt").unwrap();
    f.write_all(b"A").unwrap();
    drop(f);
    assert!(!real.join("a.txt").exists());
    d.commit().unwrap();
    assert_eq!(fs::read(real.join("a.txt")).unwrap(), b"A");
    assert!(fs::symlink_metadata(t.path().join("caselink"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Not empty any more.
    assert!(matches!(
        policy(&[], true).dir(&real),
        Err(SinkError::NotEmpty { .. })
    ));
}

#[test]
fn tagged_keeps_first_error() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut t = Tagged::new(Full, "/out/x.tar");
    let e = t.write_all(b"x").unwrap_err();
    // A producer wrapping this error with its own file name still carries the output.
    let wrapped = format!("/evidence/etc/passwd: {e}");
    assert!(wrapped.contains("/out/x.tar"));
    let e = t.error().unwrap();
    assert_eq!(e.to_string(), "cannot write /out/x.tar");
    let cause = std::error::Error::source(&e).map(|c| c.to_string());
    assert_eq!(cause.as_deref(), Some("No space left on device"));
}

/// The writer thread: bytes written in sizes around and across its 1 MiB hand-overs, with
/// flushes in between and more data than its buffers hold, arrive whole and in order;
/// dropped uncommitted, nothing is left.
#[test]
fn threaded_file_output_keeps_every_byte_in_order() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("big.bin");
    let p = policy(&[], false);
    let mut sink = p.file(&out).unwrap();
    let mut want = Vec::new();
    let mut x: u32 = 12345;
    for round in 0..64usize {
        let n = match round % 5 {
            0 => 1,
            1 => 512,
            2 => CHUNK - 1,
            3 => CHUNK + 7,
            _ => 3 * CHUNK / 2,
        };
        let chunk: Vec<u8> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        sink.write_all(&chunk).unwrap();
        want.extend_from_slice(&chunk);
        if round % 7 == 0 {
            sink.flush().unwrap();
        }
    }
    assert!(want.len() > DEPTH * CHUNK * 4);
    assert_eq!(sink.commit().unwrap(), want.len() as u64);
    assert!(fs::read(&out).unwrap() == want, "bytes differ");

    let gone = t.path().join("gone.bin");
    let mut sink = p.file(&gone).unwrap();
    sink.write_all(&want).unwrap();
    drop(sink);
    assert!(!gone.exists());
    let left: Vec<_> = fs::read_dir(t.path()).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "only big.bin is left: {left:?}");
}
