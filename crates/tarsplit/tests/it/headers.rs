//! `headers()`: the tar header parsed out of a tar-split equals what the `tar` crate reads
//! from the original tar, over the tar-split and Go archive/tar corpora.

use crate::common;

use std::io::Read;

use common::*;
use salvor_tarsplit::*;

#[derive(Debug, PartialEq, Eq)]
struct Seen {
    name: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    size: Option<u64>,
    linkname: Vec<u8>,
    uname: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What the `tar` crate reads (PAX uid/gid/mtime/linkpath/uname applied by hand).
fn with_tar_crate(tar_bytes: &[u8]) -> Option<Vec<Seen>> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().ok()? {
        let mut e = e.ok()?;
        let h = e.header().clone();
        let tf = h.entry_type().as_byte();
        if tf == b'g' {
            continue;
        }
        let mut s = Seen {
            name: e.path_bytes().into_owned(),
            typeflag: if tf == 0 { b'0' } else { tf },
            mode: h.mode().ok()? & 0o7777,
            uid: h.uid().ok()?,
            gid: h.gid().ok()?,
            mtime: h.mtime().ok()?,
            size: None,
            linkname: e
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default(),
            uname: h.username_bytes().map(<[u8]>::to_vec).unwrap_or_default(),
            xattrs: Vec::new(),
        };
        if tf == b'0' || tf == 0 {
            s.size = Some(e.size());
        }
        if let Ok(Some(exts)) = e.pax_extensions() {
            for x in exts {
                let x = x.ok()?;
                let (k, v) = (x.key_bytes(), x.value_bytes());
                if v.is_empty() {
                    continue;
                }
                let num = || std::str::from_utf8(v).ok()?.parse::<u64>().ok();
                match k {
                    b"uid" => s.uid = num()?,
                    b"gid" => s.gid = num()?,
                    b"mtime" => {
                        let t = std::str::from_utf8(v).ok()?;
                        s.mtime = t.split('.').next()?.parse().ok()?
                    }
                    b"uname" => s.uname = v.to_vec(),
                    b"linkpath" => s.linkname = v.to_vec(),
                    b"size" => {
                        if s.size.is_some() {
                            s.size = Some(num()?)
                        }
                    }
                    _ => {
                        if let Some(n) = k.strip_prefix(b"SCHILY.xattr.") {
                            s.xattrs.retain(|(a, _)| a != n);
                            s.xattrs.push((n.to_vec(), v.to_vec()));
                        }
                    }
                }
            }
        }
        s.xattrs.sort();
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).ok()?;
        out.push(s);
    }
    Some(out)
}

fn with_headers(tar_bytes: &[u8]) -> Option<Vec<Seen>> {
    let mut json = Vec::new();
    let mut store = MemStore::default();
    if Disassembler::new()
        .allow_duplicates(true)
        .file_putter(&mut store)
        .run(tar_bytes, &mut json)
        .is_err()
    {
        return None;
    }
    let mut out = Vec::new();
    for fh in headers(Unpacker::new(&json[..])) {
        let fh = fh.expect("tar-split readable");
        let h = fh.header.expect("header parsed");
        if h.typeflag == b'g' {
            continue;
        }
        out.push(Seen {
            name: h.name.clone(),
            typeflag: h.typeflag,
            mode: h.perm(),
            uid: h.uid as u64,
            gid: h.gid as u64,
            mtime: h.mtime as u64,
            size: (h.typeflag == b'0').then_some(h.size as u64),
            linkname: h.linkname.clone(),
            uname: h.uname.clone(),
            xattrs: h.xattrs(),
        });
    }
    Some(out)
}

fn is_sparse(s: &[Seen]) -> bool {
    s.iter().any(|e| e.typeflag == b'S')
}

#[test]
fn headers_match_the_tar_crate_on_go_vectors() {
    let dir = corpus("tar-split/archive/tar/testdata");
    let mut compared = 0;
    let mut bad: Vec<String> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    names.sort();
    for p in names {
        let file = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Sparse files (logical sizes of GiBs) are interpreted by Go, not by the tar crate;
        // Known reader divergences, where we follow Go (the engine's reader): Go cuts a GNU
        // long name at its first NUL (gnu-long-nul); Go reads no data for header-only
        // typeflags whatever their size field says (hdr-only); Go drops a GNU prefix field
        // holding pre-Go1.8 atime/ctime junk (invalid-go17).
        let go_only = ["gnu-long-nul.tar", "hdr-only.tar", "invalid-go17.tar"];
        if file.contains("sparse")
            || file.starts_with("writer-big")
            || go_only.contains(&file.as_str())
        {
            continue;
        }
        let bytes = std::fs::read(&p).expect("read vector");
        let Some(ours) = with_headers(&bytes) else {
            continue;
        };
        let Some(theirs) = with_tar_crate(&bytes) else {
            continue;
        };
        if is_sparse(&theirs) {
            continue;
        }
        if ours != theirs {
            for (a, b) in ours.iter().zip(&theirs).filter(|(a, b)| a != b) {
                eprintln!("{file}:\n ours   {a:?}\n theirs {b:?}");
            }
            bad.push(file);
            continue;
        }
        compared += 1;
    }
    assert!(bad.is_empty(), "{bad:?}");
    assert!(compared >= 15, "only {compared} vectors compared");
}

#[test]
fn headers_match_the_tar_crate_on_asm_vectors() {
    let dir = corpus("tar-split/tar/asm/testdata");
    let mut compared = 0;
    for f in [
        "t.tar.gz",
        "longlink.tar.gz",
        "fatlonglink.tar.gz",
        "iso-8859.tar.gz",
    ] {
        let bytes = gunzip(&std::fs::read(dir.join(f)).expect("read vector"));
        let ours = with_headers(&bytes).expect("disassembles");
        let theirs = with_tar_crate(&bytes).expect("tar crate reads it");
        assert_eq!(ours, theirs, "{f}");
        assert!(!ours.is_empty());
        compared += 1;
    }
    assert_eq!(compared, 4);
}

#[test]
fn xattrs_and_devices_are_parsed() {
    let dir = corpus("tar-split/archive/tar/testdata");
    let bytes = std::fs::read(dir.join("xattrs.tar")).expect("xattrs.tar");
    let ours = with_headers(&bytes).expect("disassembles");
    assert!(ours.iter().any(|e| !e.xattrs.is_empty()), "{ours:?}");
    let bytes = std::fs::read(dir.join("ustar-file-devs.tar")).expect("devs");
    let mut json = Vec::new();
    Disassembler::new()
        .run(&bytes[..], &mut json)
        .expect("disassemble");
    let h: Vec<_> = headers(Unpacker::new(&json[..]))
        .map(|h| h.expect("entry").header.expect("header"))
        .collect();
    assert_eq!((h[0].devmajor, h[0].devminor), (1, 1));
}
