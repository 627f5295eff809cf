//! sha256 digests and chain ids: re-exported from `salvor-oci`, plus the text helpers this
//! crate's `String` fields use.
pub use salvor_oci::Digest;

/// `sha256:<hex>` of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    Digest::sha256_of(data).into_string()
}

/// `ChainID(parent, diff)` = `sha256("<parent> <diff>")`, on unvalidated text.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    salvor_oci::chain_id_text(parent, diff_id)
}

/// Chain ids for each prefix of `diff_ids`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    salvor_oci::chain_ids_text(diff_ids)
}
