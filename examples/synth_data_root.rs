//! Builds a synthetic overlay2 data-root for benchmarks: one image whose layers hold large
//! files of pseudo-random bytes, with real tar-split metadata made by salvor's disassembler.
//!
//! ```text
//! cargo run --release --example synth_data_root -- OUT_DIR TOTAL_MIB [LAYERS]
//! ```
//! Prints the image id. Each layer's tar is written to OUT_DIR/layer-N.tar too, so the
//! benchmark can time `openssl dgst -sha256` over exactly the bytes salvor rebuilds.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!("usage: synth_data_root OUT_DIR TOTAL_MIB [LAYERS]");
    }
    let out = Path::new(&args[1]);
    let total_mib: u64 = args[2].parse()?;
    let layers: u64 = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2)
        .max(1);
    let root = out.join("data-root");
    let _ = fs::remove_dir_all(&root);
    let image_dir = root.join("image/overlay2");
    fs::create_dir_all(image_dir.join("imagedb/content/sha256"))?;
    fs::create_dir_all(image_dir.join("layerdb/sha256"))?;
    fs::create_dir_all(root.join("overlay2/l"))?;

    let mut diff_ids: Vec<String> = Vec::new();
    let mut chain: Option<String> = None;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let files_per_layer = 4u64;
    let file_size = (total_mib << 20) / layers / files_per_layer;
    for n in 0..layers {
        let cache_id = format!("{:064x}", n + 1);
        let diff = root.join("overlay2").join(&cache_id).join("diff");
        fs::create_dir_all(diff.join("data"))?;
        // The layer tar, built with the tar crate (GNU/ustar headers), written to a file.
        let tar_path = out.join(format!("layer-{n}.tar"));
        {
            let mut b = tar::Builder::new(BufWriter::new(File::create(&tar_path)?));
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(1_700_000_000);
            b.append_data(&mut h, "data/", io::empty())?;
            for f in 0..files_per_layer {
                let name = format!("data/blob-{n}-{f}.bin");
                let path = diff.join(&name);
                {
                    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
                    let mut left = file_size;
                    let mut buf = vec![0u8; 1 << 20];
                    while left > 0 {
                        for chunk in buf.chunks_mut(8) {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            let bytes = seed.to_le_bytes();
                            chunk.copy_from_slice(&bytes[..chunk.len()]);
                        }
                        let k = left.min(buf.len() as u64) as usize;
                        w.write_all(&buf[..k])?;
                        left -= k as u64;
                    }
                }
                let mut h = tar::Header::new_ustar();
                h.set_mode(0o644);
                h.set_size(file_size);
                h.set_mtime(1_700_000_000);
                b.append_data(&mut h, &name, File::open(&path)?)?;
            }
            b.into_inner()?.flush()?;
        }
        // The files on disk carry the mtimes the tar-split records (as the engine's
        // extraction left them), so the audit finds the layer clean.
        let recorded = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for f in 0..files_per_layer {
            File::options()
                .write(true)
                .open(diff.join(format!("data/blob-{n}-{f}.bin")))?
                .set_modified(recorded)?;
        }
        File::open(diff.join("data"))?.set_modified(recorded)?;
        let mut sha = Sha256::new();
        io::copy(&mut File::open(&tar_path)?, &mut sha)?;
        let diff_id = format!("sha256:{}", hex::encode(sha.finalize()));
        let chain_id = match &chain {
            None => diff_id.clone(),
            Some(p) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{p} {diff_id}").as_bytes()))
            ),
        };
        let meta = image_dir
            .join("layerdb/sha256")
            .join(&chain_id["sha256:".len()..]);
        fs::create_dir_all(&meta)?;
        fs::write(meta.join("diff"), &diff_id)?;
        fs::write(meta.join("cache-id"), &cache_id)?;
        fs::write(meta.join("size"), (file_size * files_per_layer).to_string())?;
        if let Some(p) = &chain {
            fs::write(meta.join("parent"), p)?;
        }
        let gz = flate2::write::GzEncoder::new(
            File::create(meta.join("tar-split.json.gz"))?,
            flate2::Compression::default(),
        );
        let mut gz = BufWriter::new(gz);
        salvor_tarsplit::disassemble(File::open(&tar_path)?, &mut gz)?;
        gz.into_inner().map_err(|e| e.into_error())?.finish()?;
        diff_ids.push(diff_id);
        chain = Some(chain_id);
    }
    let config = format!(
        "{{\"architecture\":\"amd64\",\"config\":{{}},\"created\":\"2024-01-01T00:00:00Z\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{}]}}}}",
        diff_ids.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(",")
    );
    let id = hex::encode(Sha256::digest(config.as_bytes()));
    fs::write(image_dir.join("imagedb/content/sha256").join(&id), &config)?;
    fs::write(
        image_dir.join("repositories.json"),
        format!("{{\"Repositories\":{{\"bench\":{{\"bench:latest\":\"sha256:{id}\"}}}}}}"),
    )?;
    println!("sha256:{id}");
    Ok(())
}
