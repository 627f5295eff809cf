//! CRC-32C (Castagnoli) as filesystems and device-mapper store it: the raw register
//! update from a seed, with no pre- or post-inversion (the kernel's `crc32c_le(seed, data)`).
//! ext4 and jbd2 chain it from per-filesystem seeds; XFS stores `!crc32c(!0, block)`;
//! dm-thin persistent-data stores `crc32c(!0, block) ^ xor`.

const POLY: u32 = 0x82F6_3B78;

const fn make_table() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static TABLE: [[u32; 256]; 8] = make_table();

/// Updates `crc` with `data` (no pre- or post-inversion).
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLE[7][(lo & 0xff) as usize]
            ^ TABLE[6][((lo >> 8) & 0xff) as usize]
            ^ TABLE[5][((lo >> 16) & 0xff) as usize]
            ^ TABLE[4][(lo >> 24) as usize]
            ^ TABLE[3][(hi & 0xff) as usize]
            ^ TABLE[2][((hi >> 8) & 0xff) as usize]
            ^ TABLE[1][((hi >> 16) & 0xff) as usize]
            ^ TABLE[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLE[0][((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // The standard CRC-32C check value uses ~0 in and ~ out.
        assert_eq!(!super::crc32c(!0, b"123456789"), 0xE306_9283);
    }
}
