//! JSON shape, assembly findings, special headers, hostile input.

use crate::common;

use common::*;
use salvor_tarsplit::*;

fn t_tar() -> Vec<u8> {
    gunzip(&std::fs::read(corpus("tar-split/tar/asm/testdata").join("t.tar.gz")).unwrap())
}

fn disasm_with_store(tar: &[u8]) -> (Vec<u8>, MemStore) {
    let mut store = MemStore::default();
    let mut json = Vec::new();
    Disassembler::new()
        .file_putter(&mut store)
        .run(tar, &mut json)
        .unwrap();
    (json, store)
}

fn content(store: &MemStore, name: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    store.get(name).unwrap().read_to_end(&mut v).unwrap();
    v
}

fn b64(d: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(d)
}

#[test]
fn json_shape_matches_go_encoder() {
    let tar = t_tar();
    let (json, store) = disasm_with_store(&tar);
    let text = String::from_utf8(json).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[0],
        format!(
            "{{\"type\":2,\"payload\":\"{}\",\"position\":0}}",
            b64(&tar[..512])
        )
    );
    let hurr = content(&store, b"./hurr.txt");
    assert_eq!(hurr.len(), 19);
    assert_eq!(
        lines[1],
        format!(
            "{{\"type\":1,\"name\":\"./hurr.txt\",\"size\":19,\"payload\":\"{}\",\"position\":1}}",
            b64(&crc64_go_iso(&hurr))
        )
    );
    // Segment 2 = padding of hurr.txt (493 bytes) + next header.
    assert_eq!(
        lines[2],
        format!(
            "{{\"type\":2,\"payload\":\"{}\",\"position\":2}}",
            b64(&tar[531..1536])
        )
    );
    let erm = content(&store, b"./ermahgerd.txt");
    assert_eq!(
        lines[3],
        format!(
            "{{\"type\":1,\"name\":\"./ermahgerd.txt\",\"size\":27,\"payload\":\"{}\",\"position\":3}}",
            b64(&crc64_go_iso(&erm))
        )
    );
    // EOF segment: padding + both zero blocks; then the trailing record padding.
    assert_eq!(
        lines[4],
        format!(
            "{{\"type\":2,\"payload\":\"{}\",\"position\":4}}",
            b64(&tar[1563..3072])
        )
    );
    assert_eq!(
        lines[5],
        format!(
            "{{\"type\":2,\"payload\":\"{}\",\"position\":5}}",
            b64(&tar[3072..])
        )
    );
    assert!(text.ends_with("}\n"));
}

#[test]
fn json_shape_size0_and_name_raw() {
    let dir = corpus("tar-split/tar/asm/testdata");
    // Directories: payload null, size omitted.
    let (json, _) = disasm_with_store(&gunzip(
        &std::fs::read(dir.join("longlink.tar.gz")).unwrap(),
    ));
    let text = String::from_utf8(json).unwrap();
    let dir_line = text.lines().find(|l| l.starts_with("{\"type\":1")).unwrap();
    assert!(
        dir_line.contains(",\"payload\":null,\"position\":"),
        "{dir_line}"
    );
    assert!(!dir_line.contains("\"size\""), "{dir_line}");
    // Non-UTF-8 name -> name_raw, no name.
    let (json, _) = disasm_with_store(&gunzip(
        &std::fs::read(dir.join("iso-8859.tar.gz")).unwrap(),
    ));
    let text = String::from_utf8(json).unwrap();
    let raw_line = text.lines().find(|l| l.contains("name_raw")).unwrap();
    let expect = b64(b"data/file-with-german-umlaut-ae-\xe4");
    assert!(
        raw_line.starts_with(&format!("{{\"type\":1,\"name_raw\":\"{expect}\",")),
        "{raw_line}"
    );
    assert!(!raw_line.contains("\"name\":"));
    // Key order of every line: type, name, name_raw, size, payload, position.
    let order = ["type", "name", "name_raw", "size", "payload", "position"];
    for line in text.lines() {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let idx: Vec<usize> = v
            .keys()
            .map(|k| order.iter().position(|o| o == k).unwrap())
            .collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "{line}");
    }
}

fn assemble_t(store: &MemStore) -> (Vec<u8>, AssemblyReport) {
    let (json, _) = disasm_with_store(&t_tar());
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(&json[..]), store, &mut out).unwrap();
    assert_eq!(out.len(), 10240, "stream keeps its shape");
    assert_eq!(assembled_size(Unpacker::new(&json[..])).unwrap(), 10240);
    (out, rep)
}

#[test]
fn findings() {
    let tar = t_tar();
    let (_, good) = disasm_with_store(&tar);
    let hurr = content(&good, b"./hurr.txt");
    let kinds = |rep: &AssemblyReport| -> Vec<FindingKind> {
        rep.findings.iter().map(|f| f.kind.clone()).collect()
    };

    let (out, rep) = assemble_t(&good);
    assert_eq!(out, tar);
    assert!(rep.findings.is_empty() && rep.is_clean());
    assert_eq!((rep.files, rep.file_bytes, rep.bytes), (2, 46, 10240));

    // Missing.
    let mut s = good.clone();
    s.files.remove(&b"./hurr.txt"[..]);
    let (out, rep) = assemble_t(&s);
    assert!(
        matches!(&kinds(&rep)[..], [FindingKind::Missing { detail }] if detail.contains("hurr.txt"))
    );
    assert_eq!(rep.findings[0].name, b"./hurr.txt");
    assert_eq!(rep.findings[0].position, 1);
    assert_eq!(&out[512..531], &[0u8; 19]);
    assert_eq!(&out[531..], &tar[531..]);

    // Short.
    let mut s = good.clone();
    s.insert(b"./hurr.txt", &hurr[..10]);
    let (out, rep) = assemble_t(&s);
    assert_eq!(
        kinds(&rep),
        vec![FindingKind::SizeMismatch {
            expected: 19,
            found: 10
        }]
    );
    assert_eq!(&out[512..522], &hurr[..10]);
    assert_eq!(&out[522..531], &[0u8; 9]);

    // Long: truncated to size, CRC of the first 19 bytes still matches.
    let mut s = good.clone();
    let mut long = hurr.clone();
    long.extend_from_slice(b"extra!");
    s.insert(b"./hurr.txt", &long);
    let (out, rep) = assemble_t(&s);
    assert_eq!(
        kinds(&rep),
        vec![FindingKind::SizeMismatch {
            expected: 19,
            found: 25
        }]
    );
    assert_eq!(out, tar);

    // CRC mismatch.
    let mut s = good.clone();
    let mut bad = hurr.clone();
    bad[0] ^= 1;
    s.insert(b"./hurr.txt", &bad);
    let (_, rep) = assemble_t(&s);
    assert_eq!(
        kinds(&rep),
        vec![FindingKind::CrcMismatch {
            expected: crc64_go_iso(&hurr),
            found: crc64_go_iso(&bad)
        }]
    );
    assert!(!rep.is_clean());

    // Not regular.
    let mut s = good.clone();
    s.files.insert(b"./ermahgerd.txt".to_vec(), None);
    let (_, rep) = assemble_t(&s);
    assert!(matches!(&kinds(&rep)[..], [FindingKind::NotRegular { .. }]));
    assert_eq!(rep.findings[0].position, 3);
    assert!(rep.findings[0].to_string().contains("ermahgerd"));
}

#[test]
fn lossy_name_recovered_from_header() {
    let tar = gunzip(
        &std::fs::read(corpus("tar-split/tar/asm/testdata").join("iso-8859.tar.gz")).unwrap(),
    );
    let (json, store) = disasm_with_store(&tar);
    // Rewrite as pre-2015 tar-split did: invalid UTF-8 names as lossy JSON strings.
    let text = String::from_utf8(json).unwrap();
    let raw = b64(b"data/file-with-german-umlaut-ae-\xe4");
    assert!(text.contains(&raw));
    let lossy = text.replace(
        &format!("\"name_raw\":\"{raw}\""),
        "\"name\":\"data/file-with-german-umlaut-ae-\u{FFFD}\"",
    );
    assert_ne!(lossy, text);
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(lossy.as_bytes()), &store, &mut out).unwrap();
    assert_eq!(out, tar);
    assert!(rep.is_clean());
    assert_eq!(rep.findings.len(), 1);
    assert_eq!(
        rep.findings[0].name,
        b"data/file-with-german-umlaut-ae-\xe4"
    );
    assert!(
        matches!(&rep.findings[0].kind, FindingKind::LossyNameRecovered { lossy } if lossy.ends_with('\u{FFFD}'))
    );
}

fn ustar_header(name: &str, typeflag: u8, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

#[test]
fn header_only_types_with_size_emit_no_data() {
    let mut tar = Vec::new();
    tar.extend_from_slice(&ustar_header("link", b'2', 5));
    tar.extend_from_slice(&ustar_header("dir/", b'5', 700));
    tar.extend_from_slice(&ustar_header("a", b'0', 3));
    tar.extend_from_slice(b"abc");
    tar.resize(tar.len() + 509 + 1024, 0);
    let (json, store) = disasm_with_store(&tar);
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(
        text.contains("\"name\":\"link\",\"size\":5,\"payload\":\"AAAAAAAAAAA=\""),
        "{text}"
    );
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(&json[..]), &store, &mut out).unwrap();
    assert_eq!(out, tar);
    assert!(rep.findings.is_empty(), "{:?}", rep.findings);
    assert_eq!(rep.files, 1);
    assert_eq!(
        assembled_size(Unpacker::new(&json[..])).unwrap(),
        tar.len() as u64
    );
}

#[test]
fn duplicates_reported_not_fatal() {
    let mut tar = Vec::new();
    for _ in 0..2 {
        tar.extend_from_slice(&ustar_header("./x", b'0', 1));
        tar.push(b'z');
        tar.resize(tar.len() + 511, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    assert!(matches!(
        disassemble(&tar[..], Vec::new()),
        Err(TarSplitError::DuplicatePath { .. })
    ));
    let mut store = MemStore::default();
    let mut json = Vec::new();
    Disassembler::new()
        .allow_duplicates(true)
        .file_putter(&mut store)
        .run(&tar[..], &mut json)
        .unwrap();
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(&json[..]), &store, &mut out).unwrap();
    assert_eq!(out, tar);
    assert_eq!(rep.duplicate_names, vec![(b"./x".to_vec(), 3)]);
}

#[test]
fn hostile_tar_split_streams() {
    let store = MemStore::default();
    let gz =
        std::fs::read(corpus("tar-split/tar/asm/testdata").join("fatlonglink.tar.gz")).unwrap();
    // A valid tar-split, gzipped, then truncated.
    let tar = gunzip(&gz);
    let (json, _) = disasm_with_store(&tar);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &json).unwrap();
    let tsgz = enc.finish().unwrap();
    let mut sink = Vec::new();
    let rep = assemble(open_gz(&tsgz[..]), &MemStore::default(), &mut sink).unwrap();
    assert_eq!(rep.bytes, tar.len() as u64);
    for cut in [10, tsgz.len() / 2, tsgz.len() - 5] {
        let e = assemble(open_gz(&tsgz[..cut]), &store, &mut std::io::sink())
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry #"), "{e}");
    }
    // Not gzip at all.
    let e = assemble(open_gz(&b"{\"type\":2}"[..]), &store, &mut std::io::sink()).unwrap_err();
    assert!(matches!(e, TarSplitError::Read { .. }), "{e}");
    // Garbage JSON.
    for bad in [
        "[1,2]",
        "{\"type\":2,\"payload\":12}",
        "{\"type\":2,\"payload\":\"!!\"}",
        "}{",
        "{\"type\":\"x\"}",
    ] {
        let e = assemble(Unpacker::new(bad.as_bytes()), &store, &mut std::io::sink()).unwrap_err();
        assert!(e.to_string().contains("entry #0"), "{bad}: {e}");
    }
    // Negative size, position named.
    let e = assembled_size(Unpacker::new(
        &b"{\"type\":2,\"payload\":\"\",\"position\":0}\n{\"type\":1,\"name\":\"a\",\"size\":-1,\"payload\":null,\"position\":1}"[..],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("entry #1 (position 1)") && e.contains("negative"),
        "{e}"
    );
    // Oversized segment payload: rejected before decoding.
    let mut big = String::from("{\"type\":2,\"position\":9,\"payload\":\"");
    big.push_str(&"A".repeat((MAX_SEGMENT_PAYLOAD / 3 + 2) * 4));
    big.push_str("\"}\n");
    let e = assembled_size(Unpacker::new(big.as_bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("position 9") && e.contains("limit"), "{e}");
    // Name too long.
    let long = format!(
        "{{\"type\":1,\"name\":\"{}\",\"position\":4}}",
        "n".repeat(MAX_NAME_LEN + 1)
    );
    let e = assembled_size(Unpacker::new(long.as_bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("position 4") && e.contains("name"), "{e}");
}

/// A generated stream of many entries: memory stays flat, nothing is collected.
#[test]
fn many_entries_stream() {
    struct Gen {
        i: u64,
        n: u64,
        buf: Vec<u8>,
        off: usize,
    }
    impl std::io::Read for Gen {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.off == self.buf.len() {
                if self.i == self.n {
                    return Ok(0);
                }
                self.buf = format!(
                    "{{\"type\":1,\"name\":\"d{}/\",\"payload\":null,\"position\":{}}}\n",
                    self.i, self.i
                )
                .into_bytes();
                self.off = 0;
                self.i += 1;
            }
            let k = out.len().min(self.buf.len() - self.off);
            out[..k].copy_from_slice(&self.buf[self.off..self.off + k]);
            self.off += k;
            Ok(k)
        }
    }
    let n = 300_000;
    let un = Unpacker::new(Gen {
        i: 0,
        n,
        buf: Vec::new(),
        off: 0,
    });
    let rep = assemble(un, &MemStore::default(), &mut std::io::sink()).unwrap();
    assert_eq!((rep.bytes, rep.files), (0, 0));
}

#[test]
fn empty_layer() {
    let mut json = Vec::new();
    disassemble(&empty_layer_tar()[..], &mut json).unwrap();
    let mut out = Vec::new();
    assemble(Unpacker::new(&json[..]), &MemStore::default(), &mut out).unwrap();
    assert_eq!(out, empty_layer_tar());
    use sha2::Digest;
    assert_eq!(
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&out))),
        salvor_oci::EMPTY_LAYER.as_str()
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{\"type\":2,\"payload\":\"AAAA\",\"position\":0}".to_string()),
            Just("{\"type\":1,\"name\":\"a\",\"size\":5,\"payload\":\"AnSksavsa04=\",\"position\":1}".to_string()),
            Just("{\"type\":1,\"name\":\"\u{FFFD}\",\"size\":1,\"payload\":null}".to_string()),
            Just("{\"type\":1,\"name_raw\":\"/w==\",\"size\":3}".to_string()),
            (0i64..2000).prop_map(|n| format!("{{\"type\":1,\"name\":\"x\",\"size\":{n},\"payload\":\"AAAAAAAAAAA=\"}}")),
            proptest::collection::vec(any::<u8>(), 0..1200).prop_map(|v| format!(
                "{{\"type\":2,\"payload\":\"{}\"}}",
                b64(&v)
            )),
            Just("{\"type\":2,\"payload\":null}".to_string()),
            Just("{\"type\":1,\"size\":-3}".to_string()),
            Just("{\"type\":".to_string()),
            Just("\n".to_string()),
            "[ -~]{0,20}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let store = MemStore::default();
            let _ = assemble(Unpacker::new(&data[..]), &store, &mut std::io::sink());
            let _ = assemble(open_gz(&data[..]), &store, &mut std::io::sink());
            let _ = assembled_size(Unpacker::new(&data[..]));
            let _ = disassemble(&data[..], std::io::sink());
        }

        #[test]
        fn jsonish_lines_never_panic(parts in proptest::collection::vec(fragment(), 0..30)) {
            let text = parts.join("\n");
            let mut store = MemStore::default();
            store.insert(b"a", b"hello");
            store.insert(b"x", &[7u8; 3000]);
            let mut out = Vec::new();
            let r = assemble(Unpacker::new(text.as_bytes()), &store, &mut out);
            let s = assembled_size(Unpacker::new(text.as_bytes()));
            if let (Ok(r), Ok(s)) = (r, s) {
                prop_assert_eq!(r.bytes, s);
                prop_assert_eq!(r.bytes, out.len() as u64);
            }
        }

        #[test]
        fn mutated_tars_never_panic(flips in proptest::collection::vec((0usize..10240, any::<u8>()), 1..8), cut in 0usize..10240) {
            let mut tar = t_tar();
            for (i, b) in flips { tar[i] = b; }
            tar.truncate(cut.max(1));
            let mut store = MemStore::default();
            let mut json = Vec::new();
            if Disassembler::new().allow_duplicates(true).file_putter(&mut store).run(&tar[..], &mut json).is_ok() {
                let mut out = Vec::new();
                let rep = assemble(Unpacker::new(&json[..]), &store, &mut out).unwrap();
                prop_assert_eq!(&out, &tar);
                prop_assert!(rep.is_clean());
            }
        }
    }
}

/// Files >= 8 MiB take the path that checksums on a helper thread.
#[test]
fn large_file_parallel_crc_path() {
    let size = (9 << 20) + 3;
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let mut tar = ustar_header("big", b'0', size as u64).to_vec();
    tar.extend_from_slice(&data);
    tar.resize(tar.len() + (512 - size % 512) % 512 + 1024, 0);
    let (json, store) = disasm_with_store(&tar);
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(&json[..]), &store, &mut out).unwrap();
    assert!(out == tar && rep.findings.is_empty());
    let mut bad = data.clone();
    bad[size - 1] ^= 0xff;
    let mut s = MemStore::default();
    s.insert(b"big", &bad);
    let rep = assemble(Unpacker::new(&json[..]), &s, &mut std::io::sink()).unwrap();
    assert!(matches!(
        rep.findings[..],
        [Finding {
            kind: FindingKind::CrcMismatch { .. },
            ..
        }]
    ));
    s.insert(b"big", &data[..size - 10]);
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(&json[..]), &s, &mut out).unwrap();
    assert_eq!(out.len(), tar.len());
    assert_eq!(
        rep.findings[0].kind,
        FindingKind::SizeMismatch {
            expected: size as u64,
            found: size as u64 - 10
        }
    );
    // Longer than recorded: exactly the recorded bytes go out, the growth is a finding.
    let mut long = data.clone();
    long.extend_from_slice(b"appended");
    s.insert(b"big", &long);
    let mut out = Vec::new();
    let rep = assemble(Unpacker::new(&json[..]), &s, &mut out).unwrap();
    assert!(out == tar, "the stream keeps its recorded shape");
    assert!(
        matches!(rep.findings[0].kind, FindingKind::SizeMismatch { expected, found } if expected == size as u64 && found > expected)
    );
}

/// A sink that counts what it is given.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn file_line(name: &str, size: u64, pos: u64) -> String {
    format!("{{\"type\":1,\"name\":\"{name}\",\"size\":{size},\"position\":{pos}}}\n")
}

/// Amplification: claims the disk cannot back stop at the [`Limits`] with a finding naming
/// the entry, instead of writing a terabyte of zeros or re-reading one file forever.
#[test]
fn amplification_stops_at_the_limits() {
    let mut store = MemStore::default();
    store.insert(b"short", b"0123456789");
    store.insert(b"mib", &vec![7u8; 1 << 20]);
    let limits = Limits {
        max_data: 8 << 20,
        max_fill: 2 << 20,
    };
    let run = |json: String| {
        let mut sink = CountingSink(0);
        let rep = Assembler::new(&store)
            .limits(limits)
            .assemble(Unpacker::new(json.as_bytes()), &mut sink)
            .expect("assembles");
        (sink.0, rep)
    };
    let amp = |rep: &AssemblyReport| -> (Vec<u8>, String) {
        rep.findings
            .iter()
            .find_map(|f| match &f.kind {
                FindingKind::Amplification { detail } => Some((f.name.clone(), detail.clone())),
                _ => None,
            })
            .expect("an amplification finding")
    };
    // A missing file claiming 1 TiB: no zero fill past the budget.
    let (n, rep) = run(file_line("ghost", 1 << 40, 0));
    assert!(n <= limits.max_fill, "{n}");
    assert!(rep.stopped.is_some());
    assert_eq!(amp(&rep).0, b"ghost");
    // A short file claiming 1 TiB, under a data bound that allows it.
    let (n, rep) = run(file_line("short", 4 << 20, 0));
    assert!(n <= 10 + limits.max_fill, "{n}");
    assert_eq!(amp(&rep).0, b"short");
    assert!(amp(&rep).1.contains("not on the disk"), "{:?}", amp(&rep));
    // One file listed again and again: re-reads count against the fill budget.
    let json: String = (0..1000).map(|i| file_line("mib", 1 << 20, i)).collect();
    let (n, rep) = run(json);
    assert!(n <= (1 << 20) + limits.max_fill, "{n}");
    assert!(amp(&rep).1.contains("listed again"), "{:?}", amp(&rep));
    // More file data than the recorded size allows.
    let json = file_line("mib", 9 << 20, 0);
    let (n, rep) = run(json);
    assert_eq!(n, 0);
    assert!(amp(&rep).1.contains("recorded size"), "{:?}", amp(&rep));
    // Within the bounds nothing changes: a present file is read, no finding.
    let (n, rep) = run(file_line("mib", 1 << 20, 0));
    assert_eq!(n, 1 << 20);
    assert!(rep.stopped.is_none() && rep.findings.is_empty(), "{rep:?}");
    // The bound from the recorded size: an eighth more plus 16 MiB.
    assert_eq!(
        Limits::for_recorded_size(Some(8 << 20)).max_data,
        (9 << 20) + (16 << 20)
    );
    assert_eq!(Limits::for_recorded_size(None).max_data, u64::MAX);
}
