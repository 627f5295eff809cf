//! Small debugging tool: `tarsplit-tool disasm < x.tar > x.json`,
//! `tarsplit-tool size < x.json`, `tarsplit-tool bench FILE [sha256]` (assemble one file to a sink or a SHA-256 hasher, report MB/s).
use std::io::{self, Read, Seek, Write};

use salvor_tarsplit::{
    assemble, assembled_size, disassemble, FileGetter, FileReader, GetError, Unpacker,
};

struct OneFile(std::path::PathBuf);
impl FileGetter for OneFile {
    fn get(&self, _name: &[u8]) -> Result<Box<dyn FileReader>, GetError> {
        std::fs::File::open(&self.0)
            .map(|f| Box::new(f) as Box<dyn FileReader>)
            .map_err(|e| GetError::Io(format!("{}: {e}", self.0.display())))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("disasm") => {
            let r = disassemble(io::stdin().lock(), io::stdout().lock())?;
            eprintln!("{r:?}");
        }
        Some("shaonly") => {
            let mut f = std::fs::File::open(args.get(2).ok_or("shaonly FILE")?)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            let t = std::time::Instant::now();
            let mut total = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha2::Digest::update(&mut h, &buf[..n]);
                total += n as u64;
            }
            let dt = t.elapsed().as_secs_f64();
            println!(
                "read+sha256 {total} bytes: {:.0} MB/s",
                total as f64 / dt / 1e6
            );
        }
        Some("size") => println!("{}", assembled_size(Unpacker::new(io::stdin().lock()))?),
        Some("bench") => {
            let path = std::path::PathBuf::from(args.get(2).ok_or("bench FILE")?);
            let mut f = std::fs::File::open(&path)?;
            let size = f.seek(io::SeekFrom::End(0))?;
            let mut hdr = [0u8; 512];
            hdr[..4].copy_from_slice(b"file");
            let mut tar = hdr.to_vec();
            // Build a one-file tar-split by hand: header segment, file entry, EOF segment.
            let mut crc = salvor_tarsplit::Crc64Hasher::new();
            f.rewind()?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                crc.update(&buf[..n]);
            }
            tar.clear();
            use base64::Engine as _;
            let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
            let json = format!(
                "{{\"type\":2,\"payload\":\"{}\",\"position\":0}}\n{{\"type\":1,\"name\":\"file\",\"size\":{size},\"payload\":\"{}\",\"position\":1}}\n{{\"type\":2,\"payload\":\"{}\",\"position\":2}}\n",
                b64(&hdr),
                b64(&crc.finalize()),
                b64(&[0u8; 1024])
            );
            struct Sha(sha2::Sha256);
            impl Write for Sha {
                fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                    sha2::Digest::update(&mut self.0, b);
                    Ok(b.len())
                }
                fn flush(&mut self) -> io::Result<()> {
                    Ok(())
                }
            }
            let with_sha = args.get(3).map(String::as_str) == Some("sha256");
            let t = std::time::Instant::now();
            let mut sink = io::sink();
            let mut sha = Sha(<sha2::Sha256 as sha2::Digest>::new());
            let out: &mut dyn Write = if with_sha { &mut sha } else { &mut sink };
            let rep = assemble(Unpacker::new(json.as_bytes()), &OneFile(path), out)?;
            let dt = t.elapsed().as_secs_f64();
            out.flush()?;
            println!(
                "assembled {} bytes in {dt:.3}s: {:.0} MB/s, findings {:?}",
                rep.bytes,
                rep.bytes as f64 / dt / 1e6,
                rep.findings
            );
        }
        _ => return Err("usage: tarsplit-tool disasm|size|bench FILE".into()),
    }
    Ok(())
}
