//! A small tar header reader that mimics tar-split's fork of Go `archive/tar`
//! (`Reader.next` with `RawAccounting`): which blocks belong to one entry, and
//! the name / size / sparse map Go derives from them. Used by the disassembler
//! (on the tar stream) and by the assembler (on the raw bytes of a segment).

use std::io::{self, Read};

pub(crate) const BLOCK: usize = 512;
const MAX_SPECIAL_FILE: u64 = 1 << 20;
/// Bound for the PAX 1.0 sparse map text (Go has none; we refuse absurd maps).
const MAX_SPARSE_MAP_1X0: usize = 16 << 20;

pub(crate) fn block_padding(n: u64) -> u64 {
    (BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64
}

/// Link, symlink, char, block, dir, fifo: Go reads no data for them whatever the size field says.
pub(crate) fn is_header_only(t: u8) -> bool {
    matches!(t, b'1' | b'2' | b'3' | b'4' | b'5' | b'6')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sparse {
    None,
    /// Data regions `(offset, length)` of the logical file.
    Map(Vec<(i64, i64)>),
    /// PAX GNU sparse 1.0: the map sits at the start of the data area.
    Pax1x0,
}

/// The header Go's `Next()` returns.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub typeflag: u8,
    pub name: Vec<u8>,
    /// Logical size (`hdr.Size`).
    pub size: i64,
    /// Physical data bytes that follow in the archive.
    pub phys: u64,
    /// Padding after the physical data.
    pub pad: u64,
    pub sparse: Sparse,
}

#[derive(Debug)]
pub(crate) enum HdrErr {
    /// Clean end of archive (Go's `io.EOF`).
    Eof,
    Io(io::Error),
    /// Go's `ErrHeader` and friends.
    Bad(String),
    UnexpectedEof,
}

impl std::fmt::Display for HdrErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HdrErr::Eof => write!(f, "end of archive"),
            HdrErr::Io(e) => write!(f, "{e}"),
            HdrErr::Bad(s) => write!(f, "{s}"),
            HdrErr::UnexpectedEof => write!(f, "unexpected EOF"),
        }
    }
}

fn bad(s: impl Into<String>) -> HdrErr {
    HdrErr::Bad(s.into())
}

/// Reads until `buf` is full or EOF; returns bytes read.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Numeric field parser with Go's sticky error.
#[derive(Default)]
struct P {
    err: bool,
}

pub(crate) fn parse_string(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// A numeric header field (octal or base-256), `None` when malformed.
pub(crate) fn parse_numeric(b: &[u8]) -> Option<i64> {
    let mut p = P::default();
    let v = p.numeric(b);
    (!p.err).then_some(v)
}

impl P {
    fn numeric(&mut self, b: &[u8]) -> i64 {
        if let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                let inv: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
                let mut x: u64 = 0;
                for (i, &c) in b.iter().enumerate() {
                    let mut c = c ^ inv;
                    if i == 0 {
                        c &= 0x7f;
                    }
                    if x >> 56 > 0 {
                        self.err = true;
                        return 0;
                    }
                    x = x << 8 | u64::from(c);
                }
                if x >> 63 > 0 {
                    self.err = true;
                    return 0;
                }
                return if inv == 0xff { !(x as i64) } else { x as i64 };
            }
        }
        self.octal(b)
    }

    fn octal(&mut self, b: &[u8]) -> i64 {
        let b = trim(b, b" \x00");
        if b.is_empty() {
            return 0;
        }
        let s = parse_string(b);
        let mut x: u64 = 0;
        if s.is_empty() {
            self.err = true;
            return 0;
        }
        for &c in s {
            if !(b'0'..=b'7').contains(&c) {
                self.err = true;
                return 0;
            }
            match x.checked_mul(8) {
                Some(v) => x = v + u64::from(c - b'0'),
                None => {
                    self.err = true;
                    return -1; // Go returns MaxUint64 as int64
                }
            }
        }
        x as i64
    }
}

fn trim<'a>(mut b: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let Some((f, rest)) = b.split_first() {
        if set.contains(f) {
            b = rest;
        } else {
            break;
        }
    }
    while let Some((l, rest)) = b.split_last() {
        if set.contains(l) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Go `strconv.ParseInt(s, 10, 64)`.
pub(crate) fn go_parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut x: i128 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        x = x * 10 + i128::from(c - b'0');
        if x > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let x = if neg { -x } else { x };
    i64::try_from(x).ok()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Unknown,
    V7,
    UstarPax,
    Star,
    Gnu,
}

fn get_format(b: &[u8; BLOCK]) -> Format {
    let mut p = P::default();
    let value = p.octal(&b[148..156]);
    // The sums of every byte, the checksum field counted as eight spaces (written as two
    // plain sums, which the compiler vectorises).
    let field_u: i64 = b[148..156].iter().map(|&c| i64::from(c)).sum();
    let field_s: i64 = b[148..156].iter().map(|&c| i64::from(c as i8)).sum();
    let unsigned: i64 = b.iter().map(|&c| i64::from(c)).sum::<i64>() - field_u + 8 * 32;
    let signed: i64 = b.iter().map(|&c| i64::from(c as i8)).sum::<i64>() - field_s + 8 * 32;
    if p.err || (value != unsigned && value != signed) {
        return Format::Unknown;
    }
    let magic = &b[257..263];
    let version = &b[263..265];
    let trailer = &b[508..512];
    if magic == b"ustar\x00" && trailer == b"tar\x00" {
        Format::Star
    } else if magic == b"ustar\x00" {
        Format::UstarPax
    } else if magic == b"ustar " && version == b" \x00" {
        Format::Gnu
    } else {
        Format::V7
    }
}

struct Hdr {
    typeflag: u8,
    name: Vec<u8>,
    size: i64,
}

/// Mimics `readHeader`: every block read is appended to `raw`.
fn read_header<R: Read>(
    r: &mut R,
    raw: &mut Vec<u8>,
    blk: &mut [u8; BLOCK],
) -> Result<Hdr, HdrErr> {
    let n = read_full(r, blk).map_err(HdrErr::Io)?;
    if n == 0 {
        return Err(HdrErr::Eof);
    }
    raw.extend_from_slice(&blk[..n]);
    if n < BLOCK {
        return Err(HdrErr::UnexpectedEof);
    }
    if blk.iter().all(|&c| c == 0) {
        let n = read_full(r, blk).map_err(HdrErr::Io)?;
        raw.extend_from_slice(&blk[..n]);
        if n == 0 {
            return Err(HdrErr::Eof);
        }
        if n < BLOCK {
            return Err(HdrErr::UnexpectedEof);
        }
        if blk.iter().all(|&c| c == 0) {
            return Err(HdrErr::Eof);
        }
        return Err(bad("zero block followed by a non-zero block"));
    }
    let format = get_format(blk);
    if format == Format::Unknown {
        return Err(bad(
            "header block has an invalid checksum or unknown format",
        ));
    }
    let mut p = P::default();
    let typeflag = blk[156];
    let mut name = parse_string(&blk[0..100]).to_vec();
    let size = p.numeric(&blk[124..136]);
    p.numeric(&blk[100..108]);
    p.numeric(&blk[108..116]);
    p.numeric(&blk[116..124]);
    p.numeric(&blk[136..148]);
    if format != Format::V7 {
        p.numeric(&blk[329..337]);
        p.numeric(&blk[337..345]);
        let prefix: Vec<u8> = match format {
            Format::UstarPax => parse_string(&blk[345..500]).to_vec(),
            Format::Star => {
                p.numeric(&blk[476..488]);
                p.numeric(&blk[488..500]);
                parse_string(&blk[345..476]).to_vec()
            }
            _ => {
                // GNU: atime/ctime parsed skeptically (pre-Go1.8 writer bug).
                let mut p2 = P::default();
                if blk[345] != 0 {
                    p2.numeric(&blk[345..357]);
                }
                if blk[357] != 0 {
                    p2.numeric(&blk[357..369]);
                }
                if p2.err {
                    let s = parse_string(&blk[345..500]);
                    if s.is_ascii() {
                        s.to_vec()
                    } else {
                        Vec::new()
                    }
                } else {
                    Vec::new()
                }
            }
        };
        if !prefix.is_empty() {
            let mut full = prefix;
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    if p.err {
        return Err(bad("invalid numeric field in header"));
    }
    Ok(Hdr {
        typeflag,
        name,
        size,
    })
}

/// Reads `nb` bytes of a special file (PAX / GNU long name) like `readSpecialFile`.
fn read_special<R: Read>(r: &mut R, nb: u64) -> Result<Vec<u8>, HdrErr> {
    let want = nb.min(MAX_SPECIAL_FILE + 1);
    let mut buf = vec![0u8; want as usize];
    let n = read_full(r, &mut buf).map_err(HdrErr::Io)?;
    if (n as u64) < want {
        return Err(HdrErr::UnexpectedEof);
    }
    if want > MAX_SPECIAL_FILE {
        return Err(bad("special header too long (header field too long)"));
    }
    Ok(buf)
}

pub(crate) type Records = Vec<(Vec<u8>, Vec<u8>)>;

fn pax_get<'a>(recs: &'a Records, key: &[u8]) -> Option<&'a [u8]> {
    // A later record for the same key replaces an earlier one (Go map semantics).
    recs.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

pub(crate) fn parse_pax(buf: &[u8]) -> Result<Records, HdrErr> {
    let mut recs: Records = Vec::new();
    let mut sparse_map: Vec<Vec<u8>> = Vec::new();
    let mut s = buf;
    while !s.is_empty() {
        let sp = s
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| bad("invalid PAX record"))?;
        let n = go_parse_int(&s[..sp]).ok_or_else(|| bad("invalid PAX record length"))?;
        if n < 5 || (s.len() as i64) < n {
            return Err(bad("invalid PAX record length"));
        }
        let n = n as usize;
        if sp + 1 > n - 1 {
            return Err(bad("invalid PAX record"));
        }
        let rec = &s[sp + 1..n - 1];
        if s[n - 1] != b'\n' {
            return Err(bad("PAX record not terminated by newline"));
        }
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad("PAX record without ="))?;
        let (k, v) = (&rec[..eq], &rec[eq + 1..]);
        if k.is_empty() {
            return Err(bad("PAX record with empty key"));
        }
        let valid = match k {
            b"path" | b"linkpath" | b"uname" | b"gname" => !v.contains(&0),
            _ => !k.contains(&0),
        };
        if !valid {
            return Err(bad("PAX record contains NUL"));
        }
        s = &s[n..];
        match k {
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let want_offset = sparse_map.len() & 1 == 0;
                if (want_offset && k != b"GNU.sparse.offset")
                    || (!want_offset && k != b"GNU.sparse.numbytes")
                    || v.contains(&b',')
                {
                    return Err(bad("invalid GNU sparse 0.0 PAX records"));
                }
                sparse_map.push(v.to_vec());
            }
            _ => recs.push((k.to_vec(), v.to_vec())),
        }
    }
    if !sparse_map.is_empty() {
        recs.push((b"GNU.sparse.map".to_vec(), sparse_map.join(&b","[..])));
    }
    Ok(recs)
}

fn valid_pax_time(v: &[u8]) -> bool {
    let (ss, sn) = match v.iter().position(|&c| c == b'.') {
        Some(p) => (&v[..p], &v[p + 1..]),
        None => (v, &b""[..]),
    };
    if go_parse_int(ss).is_none() {
        return false;
    }
    sn.iter().all(|c| c.is_ascii_digit())
}

fn validate_sparse(sp: &[(i64, i64)], size: i64) -> bool {
    if size < 0 {
        return false;
    }
    let mut pre_end = 0i64;
    for &(off, len) in sp {
        if off < 0 || len < 0 || off > i64::MAX - len || off + len > size || pre_end > off {
            return false;
        }
        pre_end = off + len;
    }
    true
}

fn read_old_gnu_sparse<R: Read>(
    r: &mut R,
    raw: &mut Vec<u8>,
    blk: &mut [u8; BLOCK],
    size: &mut i64,
) -> Result<Vec<(i64, i64)>, HdrErr> {
    if get_format(blk) != Format::Gnu {
        return Err(bad("old GNU sparse header in a non-GNU header"));
    }
    let mut p = P::default();
    *size = p.numeric(&blk[483..495]);
    if p.err {
        return Err(bad("invalid GNU sparse real size"));
    }
    let mut spd = Vec::new();
    let (mut base, mut count, mut ext_at) = (386usize, 4usize, 482usize);
    loop {
        for i in 0..count {
            let e = base + i * 24;
            if blk[e] == 0 {
                break;
            }
            let off = p.numeric(&blk[e..e + 12]);
            let len = p.numeric(&blk[e + 12..e + 24]);
            if p.err {
                return Err(bad("invalid GNU sparse map entry"));
            }
            if spd.len() >= 1 << 20 {
                return Err(bad("GNU sparse map too long"));
            }
            spd.push((off, len));
        }
        if blk[ext_at] > 0 {
            let n = read_full(r, blk).map_err(HdrErr::Io)?;
            raw.extend_from_slice(&blk[..n]);
            if n < BLOCK {
                return Err(HdrErr::UnexpectedEof);
            }
            (base, count, ext_at) = (0, 21, 504);
            continue;
        }
        return Ok(spd);
    }
}

fn read_map_0x1(recs: &Records) -> Result<Vec<(i64, i64)>, HdrErr> {
    let n = go_parse_int(pax_get(recs, b"GNU.sparse.numblocks").unwrap_or(b""))
        .ok_or_else(|| bad("invalid GNU.sparse.numblocks"))?;
    if n < 0 || n.checked_mul(2).is_none() {
        return Err(bad("invalid GNU.sparse.numblocks"));
    }
    let map = pax_get(recs, b"GNU.sparse.map").unwrap_or(b"");
    let parts: Vec<&[u8]> = if map.is_empty() {
        Vec::new()
    } else {
        map.split(|&c| c == b',').collect()
    };
    if parts.len() as i64 != 2 * n {
        return Err(bad("GNU.sparse.map does not match GNU.sparse.numblocks"));
    }
    parts
        .chunks_exact(2)
        .map(|c| match (go_parse_int(c[0]), go_parse_int(c[1])) {
            (Some(o), Some(l)) => Ok((o, l)),
            _ => Err(bad("invalid GNU.sparse.map entry")),
        })
        .collect()
}

/// Reads the PAX 1.0 sparse map from the start of the data area (not raw-accounted in Go).
/// `phys` is decremented by the bytes consumed.
pub(crate) fn read_map_1x0<R: Read>(r: &mut R, phys: &mut u64) -> Result<Vec<(i64, i64)>, HdrErr> {
    let mut text: Vec<u8> = Vec::new();
    let mut newlines = 0i64;
    let mut blk = [0u8; BLOCK];
    let mut feed =
        |want: i64, text: &mut Vec<u8>, newlines: &mut i64, phys: &mut u64| -> Result<(), HdrErr> {
            while *newlines < want {
                if *phys < BLOCK as u64 {
                    return Err(HdrErr::UnexpectedEof);
                }
                let n = read_full(r, &mut blk).map_err(HdrErr::Io)?;
                if n < BLOCK {
                    return Err(HdrErr::UnexpectedEof);
                }
                *phys -= BLOCK as u64;
                if text.len() > MAX_SPARSE_MAP_1X0 {
                    return Err(bad("GNU sparse 1.0 map too long"));
                }
                text.extend_from_slice(&blk);
                *newlines += blk.iter().filter(|&&c| c == b'\n').count() as i64;
            }
            Ok(())
        };
    feed(1, &mut text, &mut newlines, phys)?;
    let mut cur = 0usize;
    let token = |text: &Vec<u8>, cur: &mut usize| -> Vec<u8> {
        let rest = &text[*cur..];
        let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        *cur += (end + 1).min(rest.len());
        rest[..end].to_vec()
    };
    let n =
        go_parse_int(&token(&text, &mut cur)).ok_or_else(|| bad("invalid GNU sparse 1.0 map"))?;
    newlines -= 1;
    if n < 0 || n.checked_mul(2).is_none() {
        return Err(bad("invalid GNU sparse 1.0 map"));
    }
    feed(2 * n, &mut text, &mut newlines, phys)?;
    let mut spd = Vec::new();
    for _ in 0..n {
        let o = go_parse_int(&token(&text, &mut cur));
        let l = go_parse_int(&token(&text, &mut cur));
        match (o, l) {
            (Some(o), Some(l)) => spd.push((o, l)),
            _ => return Err(bad("invalid GNU sparse 1.0 map entry")),
        }
    }
    Ok(spd)
}

/// Validates a sparse map read later (PAX 1.0) the way `handleSparseFile` does.
pub(crate) fn check_sparse(p: &Parsed, spd: &[(i64, i64)]) -> Result<(), HdrErr> {
    if is_header_only(p.typeflag) || !validate_sparse(spd, p.size) {
        return Err(bad("invalid sparse map"));
    }
    Ok(())
}

/// Mimics `Reader.next()`: first skips `skip` bytes (unread data of the previous
/// entry plus its padding), then reads meta headers up to the real header.
/// Every byte read is appended to `raw`. Data of the returned entry is not read.
pub(crate) fn read_next<R: Read>(
    r: &mut R,
    raw: &mut Vec<u8>,
    mut skip: u64,
) -> Result<Parsed, HdrErr> {
    let mut blk = [0u8; BLOCK];
    let mut pax: Option<Records> = None;
    let mut long_name: Option<Vec<u8>> = None;
    loop {
        // Discard remainder and padding (kept in `raw`; Go drops a partial padding, we keep it).
        while skip > 0 {
            let want = skip.min(BLOCK as u64) as usize;
            let n = read_full(r, &mut blk[..want]).map_err(HdrErr::Io)?;
            raw.extend_from_slice(&blk[..n]);
            if n < want {
                return Err(HdrErr::Eof);
            }
            skip -= n as u64;
        }
        let mut hdr = read_header(r, raw, &mut blk)?;
        let nb = if is_header_only(hdr.typeflag) {
            0
        } else {
            hdr.size
        };
        if nb < 0 {
            return Err(bad("negative size"));
        }
        let nb = nb as u64;
        match hdr.typeflag {
            b'x' | b'g' => {
                let buf = read_special(r, nb)?;
                raw.extend_from_slice(&buf);
                let recs = parse_pax(&buf)?;
                skip = block_padding(nb);
                if hdr.typeflag == b'g' {
                    merge_pax(&mut hdr, &recs)?;
                    return Ok(Parsed {
                        typeflag: b'g',
                        name: hdr.name,
                        size: 0,
                        phys: 0,
                        pad: skip,
                        sparse: Sparse::None,
                    });
                }
                pax = Some(recs);
            }
            b'L' | b'K' => {
                let buf = read_special(r, nb)?;
                raw.extend_from_slice(&buf);
                skip = block_padding(nb);
                if hdr.typeflag == b'L' {
                    long_name = Some(parse_string(&buf).to_vec());
                }
            }
            _ => {
                let recs = pax.take().unwrap_or_default();
                merge_pax(&mut hdr, &recs)?;
                if let Some(n) = long_name.take() {
                    if !n.is_empty() {
                        hdr.name = n;
                    }
                }
                if hdr.typeflag == 0 {
                    hdr.typeflag = if hdr.name.ends_with(b"/") { b'5' } else { b'0' };
                }
                let nb = if is_header_only(hdr.typeflag) {
                    0
                } else {
                    hdr.size
                };
                if nb < 0 {
                    return Err(bad("negative size"));
                }
                let phys = nb as u64;
                let mut size = hdr.size;
                let sparse = if hdr.typeflag == b'S' {
                    Some(PaxSparse::Old(read_old_gnu_sparse(
                        r, raw, &mut blk, &mut size,
                    )?))
                } else {
                    pax_sparse(&recs, &mut hdr.name, &mut size)?
                };
                let sparse = match sparse {
                    None => Sparse::None,
                    Some(PaxSparse::X1) => Sparse::Pax1x0,
                    Some(PaxSparse::Map(m)) | Some(PaxSparse::Old(m)) => {
                        if is_header_only(hdr.typeflag) || !validate_sparse(&m, size) {
                            return Err(bad("invalid sparse map"));
                        }
                        Sparse::Map(m)
                    }
                };
                return Ok(Parsed {
                    typeflag: hdr.typeflag,
                    name: hdr.name,
                    size,
                    phys,
                    pad: block_padding(phys),
                    sparse,
                });
            }
        }
    }
}

enum PaxSparse {
    Old(Vec<(i64, i64)>),
    Map(Vec<(i64, i64)>),
    X1,
}

fn pax_sparse(
    recs: &Records,
    name: &mut Vec<u8>,
    size: &mut i64,
) -> Result<Option<PaxSparse>, HdrErr> {
    let major = pax_get(recs, b"GNU.sparse.major").unwrap_or(b"");
    let minor = pax_get(recs, b"GNU.sparse.minor").unwrap_or(b"");
    let is1x0 = if major == b"0" && (minor == b"0" || minor == b"1") {
        false
    } else if major == b"1" && minor == b"0" {
        true
    } else if !major.is_empty() || !minor.is_empty() {
        return Ok(None);
    } else if !pax_get(recs, b"GNU.sparse.map").unwrap_or(b"").is_empty() {
        false
    } else {
        return Ok(None);
    };
    if let Some(n) = pax_get(recs, b"GNU.sparse.name") {
        if !n.is_empty() {
            *name = n.to_vec();
        }
    }
    let mut sz = pax_get(recs, b"GNU.sparse.size").unwrap_or(b"");
    if sz.is_empty() {
        sz = pax_get(recs, b"GNU.sparse.realsize").unwrap_or(b"");
    }
    if !sz.is_empty() {
        *size = go_parse_int(sz).ok_or_else(|| bad("invalid GNU sparse size"))?;
    }
    if is1x0 {
        return Ok(Some(PaxSparse::X1));
    }
    Ok(Some(PaxSparse::Map(read_map_0x1(recs)?)))
}

fn merge_pax(hdr: &mut Hdr, recs: &Records) -> Result<(), HdrErr> {
    // Go iterates a map: for duplicate keys the last record wins; validate every surviving value.
    for (i, (k, v)) in recs.iter().enumerate() {
        if v.is_empty() {
            continue;
        }
        if recs[i + 1..].iter().any(|(k2, _)| k2 == k) {
            continue;
        }
        match k.as_slice() {
            b"path" => hdr.name = v.clone(),
            b"size" => hdr.size = go_parse_int(v).ok_or_else(|| bad("invalid PAX size"))?,
            b"uid" | b"gid" => {
                go_parse_int(v).ok_or_else(|| bad("invalid PAX uid/gid"))?;
            }
            b"atime" | b"mtime" | b"ctime" if !valid_pax_time(v) => {
                return Err(bad("invalid PAX time"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_base256() {
        let mut p = P::default();
        assert_eq!(p.numeric(b"0000644\x00"), 0o644);
        assert_eq!(
            p.numeric(b"\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"),
            256
        );
        assert_eq!(
            p.numeric(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
            -1
        );
        assert!(!p.err);
        p.numeric(b"12 34");
        assert!(p.err);
    }

    #[test]
    fn parse_int() {
        assert_eq!(go_parse_int(b"+12"), Some(12));
        assert_eq!(go_parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(go_parse_int(b"9223372036854775808"), None);
        assert_eq!(go_parse_int(b""), None);
    }
}
