//! CRC-32C: the shared implementation in `salvor-source`.

pub(crate) use salvor_source::crc32c;
