//! sha256 digests and chain ids.
use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<hex>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Some(Digest(s.to_string()))
        } else {
            None
        }
    }
    /// Accepts a bare 64-hex id too.
    pub fn parse_loose(s: &str) -> Option<Digest> {
        Digest::parse(s).or_else(|| Digest::parse(&format!("sha256:{s}")))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `ChainID(parent, diff)` = `sha256("<parent> <diff>")`.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => sha256_hex(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Chain ids for each prefix of `diff_ids`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last().map(|s| s.as_str()), d);
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn chain_ids_follow_the_image_spec() {
        // Values from the OCI image-spec's identity tests (chainid_test.go): recomputed here.
        let a = "sha256:a".to_string();
        let ids = chain_ids(&[a.clone(), "sha256:b".into()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_hex(b"sha256:a sha256:b"));
        assert!(Digest::parse("sha256:abc").is_none());
        assert!(Digest::parse_loose(&"a".repeat(64)).is_some());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
    }
}
