//! CRC-64/GO-ISO, the checksum tar-split stores for every file payload.

//!
//! The hot path uses `crc-fast`, which folds with the CPU's carry-less multiply
//! (PCLMULQDQ / PMULL) at many GB/s; a table-driven CRC would cost as much CPU as the
//! layer's SHA-256 itself.

use crc_fast::{CrcAlgorithm, Digest};

const ALGO: CrcAlgorithm = CrcAlgorithm::Crc64GoIso;

/// Reflected ISO polynomial (Go's `crc64.ISO`).
const POLY_REFLECTED: u64 = 0xD800_0000_0000_0000;
const XOROUT: u64 = 0xFFFF_FFFF_FFFF_FFFF;

/// CRC-64/GO-ISO of `data` as the 8 big-endian bytes tar-split stores (Go `hash.Sum(nil)`).
pub fn crc64_go_iso(data: &[u8]) -> [u8; 8] {
    crc_fast::checksum(ALGO, data).to_be_bytes()
}

/// Streaming CRC-64/GO-ISO hasher. Runs of zero bytes (sparse holes) can be
/// added in O(log n) with [`Crc64Hasher::update_zeros`].
pub struct Crc64Hasher {
    digest: Digest,
}

impl Default for Crc64Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc64Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc64Hasher").finish_non_exhaustive()
    }
}

impl Crc64Hasher {
    /// A hasher over the empty input.
    pub fn new() -> Self {
        Crc64Hasher {
            digest: Digest::new(ALGO),
        }
    }

    /// Feeds `data`.
    #[inline]
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// Feeds `n` zero bytes without materialising them.
    pub fn update_zeros(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        if n <= 4096 {
            static ZEROS: [u8; 4096] = [0; 4096];
            // n <= 4096, so the cast cannot truncate.
            self.digest.update(&ZEROS[..n as usize]);
            return;
        }
        let reg = self.digest.finalize() ^ XOROUT;
        let reg = shift_zeros(reg, n);
        self.digest = Digest::new_with_init_state(ALGO, reg);
    }

    /// The 8 big-endian checksum bytes.
    pub fn finalize(self) -> [u8; 8] {
        self.digest.finalize().to_be_bytes()
    }

    /// The checksum so far, leaving the hasher usable.
    pub fn current(&self) -> [u8; 8] {
        self.digest.finalize().to_be_bytes()
    }
}

fn gf2_times(mat: &[u64; 64], mut vec: u64) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(mat: &[u64; 64]) -> [u64; 64] {
    let mut sq = [0u64; 64];
    for (i, slot) in sq.iter_mut().enumerate() {
        *slot = gf2_times(mat, mat[i]);
    }
    sq
}

/// Advances the raw (reflected, un-xored) register over `n` zero bytes.
fn shift_zeros(mut reg: u64, mut n: u64) -> u64 {
    // Operator for one zero bit.
    let mut op = [0u64; 64];
    op[0] = POLY_REFLECTED;
    for (i, slot) in op.iter_mut().enumerate().skip(1) {
        *slot = 1u64 << (i - 1);
    }
    // One zero byte = 8 zero bits.
    let op = gf2_square(&op); // 2 bits
    let op = gf2_square(&op); // 4 bits
    let mut op = gf2_square(&op); // 8 bits
    while n != 0 {
        if n & 1 != 0 {
            reg = gf2_times(&op, reg);
        }
        n >>= 1;
        if n != 0 {
            op = gf2_square(&op);
        }
    }
    reg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        assert_eq!(
            crc64_go_iso(b"123456789"),
            0xB909_56C7_75A4_1001u64.to_be_bytes()
        );
        assert_eq!(
            crc64_go_iso(b"imma hurr til I derp"),
            [2, 116, 164, 177, 171, 236, 107, 78]
        );
        assert_eq!(
            crc64_go_iso("café con leche, por favor".as_bytes()),
            [126, 72, 89, 239, 230, 252, 160, 187]
        );
        assert_eq!(crc64_go_iso(b""), [0; 8]);
    }

    #[test]
    fn streaming_and_zeros() {
        let mut data = b"hello".to_vec();
        data.extend_from_slice(&[0u8; 100_000]);
        data.extend_from_slice(b"world");
        let mut h = Crc64Hasher::new();
        h.update(b"hello");
        h.update_zeros(100_000);
        h.update(b"world");
        assert_eq!(h.finalize(), crc64_go_iso(&data));
        let mut h = Crc64Hasher::new();
        h.update_zeros(5000);
        assert_eq!(h.current(), crc64_go_iso(&[0u8; 5000]));
    }
}
