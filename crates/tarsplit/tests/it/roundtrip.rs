//! Round trips over the tar-split and Go archive/tar corpora.

use crate::common;

use common::*;
use salvor_tarsplit::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// disassemble -> assemble reproduces the tar byte for byte, no problem findings.
    RoundTrips,
    /// Go's reader (and ours) rejects the tar; the message contains this text.
    Rejected(&'static str),
    /// tar-split refuses duplicate paths; with duplicates allowed it round-trips.
    DuplicateThenRoundTrips,
    /// The bz2 vector is fed raw (no bzip2 decoder here), so it is rejected as a tar.
    /// PAX 1.0 sparse: the map is not in the tar-split; output differs, SparseUnsupported reported.
    SparseNotPreserved,
}

/// A [`LendingWrite`] with a tiny buffer.
struct Lender {
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl std::io::Write for Lender {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.out.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LendingWrite for Lender {
    fn spare(&mut self) -> &mut [u8] {
        &mut self.buf
    }
    fn filled(&mut self, n: usize) -> std::io::Result<()> {
        self.out.extend_from_slice(&self.buf[..n]);
        Ok(())
    }
}

fn run(tar: &[u8]) -> Result<(Outcome, Vec<u8>), String> {
    let mut store = MemStore::default();
    let mut json = Vec::new();
    let res = Disassembler::new()
        .file_putter(&mut store)
        .run(tar, &mut json);
    let dup = match res {
        Ok(_) => false,
        Err(TarSplitError::DuplicatePath { .. }) => {
            store = MemStore::default();
            json.clear();
            Disassembler::new()
                .allow_duplicates(true)
                .file_putter(&mut store)
                .run(tar, &mut json)
                .map_err(|e| e.to_string())?;
            true
        }
        Err(e) => return Err(e.to_string()),
    };
    let size = assembled_size(Unpacker::new(&json[..])).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let report = assemble(Unpacker::new(&json[..]), &store, &mut out).map_err(|e| e.to_string())?;
    assert_eq!(report.bytes, out.len() as u64);
    assert_eq!(
        size,
        out.len() as u64,
        "assembled_size disagrees with assemble"
    );
    // The same stream through an output that lends its buffer (small pieces, to cross
    // every boundary): byte for byte what the plain output got, the same findings.
    let mut lent = Lender {
        out: Vec::new(),
        buf: vec![0; 7],
    };
    let r2 = Assembler::new(&store)
        .assemble_lending(Unpacker::new(&json[..]), &mut lent)
        .map_err(|e| e.to_string())?;
    assert_eq!(lent.out, out, "the lending output differs");
    assert_eq!(r2.findings, report.findings);
    let sparse_unsupported = report
        .findings
        .iter()
        .any(|f| matches!(f.kind, FindingKind::SparseUnsupported { .. }));
    let outcome = if out == tar && report.is_clean() {
        if dup {
            Outcome::DuplicateThenRoundTrips
        } else {
            Outcome::RoundTrips
        }
    } else if sparse_unsupported && out.len() == tar.len() {
        Outcome::SparseNotPreserved
    } else {
        return Err(format!(
            "assembled output differs (len {} vs {}), findings: {:?}",
            out.len(),
            tar.len(),
            report.findings
        ));
    };
    Ok((outcome, json))
}

#[test]
fn asm_vectors_round_trip() {
    use Outcome::*;
    let dir = corpus("tar-split/tar/asm/testdata");
    let table: &[(&str, u64, &str, Outcome)] = &[
        (
            "t.tar.gz",
            10240,
            "1eb237ff69bca6e22789ecb05b45d35ca307adbd",
            RoundTrips,
        ),
        (
            "longlink.tar.gz",
            20480,
            "d9f6babe107b7247953dff6b5b5ae31a3a880add",
            RoundTrips,
        ),
        (
            "fatlonglink.tar.gz",
            26234880,
            "8537f03f89aeef537382f8b0bb065d93e03b0be8",
            RoundTrips,
        ),
        (
            "iso-8859.tar.gz",
            10240,
            "ddafa51cb03c74ec117ab366ee2240d13bba1ec3",
            RoundTrips,
        ),
        (
            "extranils.tar.gz",
            10648,
            "e187b4b3e739deaccc257342f4940f34403dc588",
            RoundTrips,
        ),
        (
            "notenoughnils.tar.gz",
            512,
            "72f93f41efd95290baa5c174c234f5d4c22ce601",
            RoundTrips,
        ),
        (
            "1c51fc286aa95d9413226599576bafa38490b1e292375c90de095855b64caea6",
            1024,
            "946caa03167a8cc707db6ff9785608b652e631dc",
            RoundTrips,
        ),
    ];
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut listed: Vec<String> = table.iter().map(|t| t.0.to_string()).collect();
    listed.sort();
    assert_eq!(names, listed, "every asm test vector must be in the table");
    for (name, size, sha1, expected) in table {
        let tar = gunzip(&std::fs::read(dir.join(name)).unwrap());
        assert_eq!(tar.len() as u64, *size, "{name}: size");
        assert_eq!(sha1_hex(&tar), *sha1, "{name}: sha1");
        let got = run(&tar).map(|(o, _)| o);
        assert_eq!(got.as_ref(), Ok(expected), "{name}");
    }
}

#[test]
fn go_archive_tar_vectors() {
    use Outcome::*;
    let dir = corpus("tar-split/archive/tar/testdata");
    let table: &[(&str, Outcome)] = &[
        ("file-and-dir.tar", RoundTrips),
        ("gnu-incremental.tar", RoundTrips),
        ("gnu-long-nul.tar", RoundTrips),
        ("gnu-multi-hdrs.tar", RoundTrips),
        ("gnu-nil-sparse-data.tar", RoundTrips),
        ("gnu-nil-sparse-hole.tar", RoundTrips),
        ("gnu-not-utf8.tar", RoundTrips),
        ("gnu-sparse-big.tar", RoundTrips),
        ("gnu-utf8.tar", RoundTrips),
        ("gnu.tar", RoundTrips),
        ("hardlink.tar", RoundTrips),
        ("hdr-only.tar", DuplicateThenRoundTrips),
        ("invalid-go17.tar", RoundTrips),
        ("issue10968.tar", Rejected("invalid checksum")),
        ("issue11169.tar", Rejected("PAX record")),
        ("issue12435.tar", Rejected("invalid numeric field")),
        ("neg-size.tar", Rejected("invalid numeric field")),
        ("nil-uid.tar", RoundTrips),
        ("pax-bad-hdr-file.tar", Rejected("PAX record")),
        ("pax-bad-hdr-large.tar.bz2", Rejected("unexpected EOF")),
        ("pax-bad-mtime-file.tar", Rejected("invalid PAX time")),
        ("pax-global-records.tar", RoundTrips),
        ("pax-multi-hdrs.tar", RoundTrips),
        ("pax-nil-sparse-data.tar", SparseNotPreserved),
        ("pax-nil-sparse-hole.tar", SparseNotPreserved),
        ("pax-nul-path.tar", Rejected("contains NUL")),
        ("pax-nul-xattrs.tar", Rejected("contains NUL")),
        ("pax-path-hdr.tar", RoundTrips),
        ("pax-pos-size-file.tar", RoundTrips),
        ("pax-records.tar", RoundTrips),
        ("pax-sparse-big.tar", SparseNotPreserved),
        ("pax.tar", RoundTrips),
        ("sparse-formats.tar", SparseNotPreserved),
        ("star.tar", RoundTrips),
        ("trailing-slash.tar", RoundTrips),
        ("ustar-file-devs.tar", RoundTrips),
        ("ustar-file-reg.tar", RoundTrips),
        ("ustar.tar", RoundTrips),
        ("v7.tar", RoundTrips),
        ("writer-big-long.tar", Rejected("unexpected EOF")),
        ("writer-big.tar", Rejected("unexpected EOF")),
        ("writer.tar", RoundTrips),
        ("xattrs.tar", RoundTrips),
    ];
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tar"))
        .collect();
    names.sort();
    let mut listed: Vec<String> = table.iter().map(|t| t.0.to_string()).collect();
    listed.sort();
    assert_eq!(
        names, listed,
        "every Go tar test vector must be in the table"
    );
    let mut failures = Vec::new();
    for (name, expected) in table {
        let tar = std::fs::read(dir.join(name)).unwrap();
        let got = match run(&tar) {
            Ok((o, _)) => format!("{o:?}"),
            Err(e) => format!("Err({e})"),
        };
        let ok = match expected {
            Rejected(needle) => got.starts_with("Err(") && got.contains(needle),
            o => got == format!("{o:?}"),
        };
        if !ok {
            failures.push(format!("{name}: expected {expected:?}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
