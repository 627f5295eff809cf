//! Content digests, diff ids and chain ids.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

const PREFIX: &str = "sha256:";
const HEX_LEN: usize = 64;

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The algorithm prefix is missing or is not `sha256:`.
    #[error("{0:?}: not a sha256 digest (expected \"sha256:\" and 64 lowercase hex digits)")]
    Algorithm(String),
    /// The hex part is not 64 lowercase hex digits.
    #[error("{0:?}: the digest's hex part is not 64 lowercase hex digits")]
    Hex(String),
}

fn is_lower_hex64(s: &str) -> bool {
    s.len() == HEX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A validated content digest: `sha256:` followed by 64 lowercase hex digits.
///
/// Only sha256 is accepted: it is the only algorithm the Docker engine writes into its
/// image and layer stores. The text form is kept (`as_str`, `Display`, serde as the string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(Cow<'static, str>);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some(hex) = s.strip_prefix(PREFIX) else {
            return Err(DigestError::Algorithm(s.to_string()));
        };
        if !is_lower_hex64(hex) {
            return Err(DigestError::Hex(s.to_string()));
        }
        Ok(Digest(Cow::Owned(s.to_string())))
    }

    /// Parses `sha256:<hex>` or a bare 64-hex id (as image ids appear in directory names).
    pub fn parse_loose(s: &str) -> Result<Digest, DigestError> {
        if is_lower_hex64(s) {
            return Ok(Digest(Cow::Owned(format!("{PREFIX}{s}"))));
        }
        Digest::parse(s)
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(data).into())
    }

    /// The digest whose sha256 value is `bytes` (a finished hasher's output).
    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        Digest(Cow::Owned(format!("{PREFIX}{}", hex::encode(bytes))))
    }

    /// The algorithm: always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The full text form, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The first 12 hex digits (`docker images` style short id).
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// The text form as an owned string.
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Hash/Eq of a `Digest` are those of its text, so maps keyed by digests can be queried with `&str`.
impl Borrow<str> for Digest {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Digest> for str {
    fn eq(&self, other: &Digest) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Digest> for &str {
    fn eq(&self, other: &Digest) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Digest> for String {
    fn eq(&self, other: &Digest) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.into_string()
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! digest_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Digest);

        impl $name {
            /// Wraps a digest (an explicit conversion: the kinds are not interchangeable).
            pub const fn from_digest(d: Digest) -> Self {
                $name(d)
            }
            /// Parses `sha256:<64 lowercase hex>`.
            pub fn parse(s: &str) -> Result<Self, DigestError> {
                Digest::parse(s).map($name)
            }
            /// The digest.
            pub fn as_digest(&self) -> &Digest {
                &self.0
            }
            /// The digest, owned.
            pub fn into_digest(self) -> Digest {
                self.0
            }
            /// The full text form, `sha256:<hex>`.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
            /// The 64 hex digits.
            pub fn hex(&self) -> &str {
                self.0.hex()
            }
            /// The first 12 hex digits.
            pub fn short(&self) -> &str {
                self.0.short()
            }
            /// The text form as an owned string.
            pub fn into_string(self) -> String {
                self.0.into_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = DigestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.0.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl From<$name> for String {
            fn from(d: $name) -> String {
                d.into_string()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Digest::deserialize(d).map($name)
            }
        }
    };
}

digest_newtype!(
    /// A layer's diff id: the digest of its uncompressed tar (`rootfs.diff_ids` in an image
    /// config, `diff` in the layer store).
    DiffId
);

digest_newtype!(
    /// A layer's chain id: its identity in the layer store, which depends on every layer below
    /// it (see [`chain_id`]).
    ChainId
);

/// The diff id of the empty layer: a tar of just two zero blocks (1024 zero bytes).
pub const EMPTY_LAYER: DiffId = DiffId(Digest(Cow::Borrowed(
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
)));

impl DiffId {
    /// Whether this is [`EMPTY_LAYER`].
    pub fn is_empty_layer(&self) -> bool {
        *self == EMPTY_LAYER
    }
}

/// [`chain_id`] on text as found in a store, unvalidated: the engine never validates the
/// diff ids it chains (`sha256("<parent> <diff_id>")`, or `diff_id` itself for no parent).
pub fn chain_id_text(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()).into_string(),
    }
}

/// [`chain_ids`] on text as found in a store, unvalidated (see [`chain_id_text`]).
pub fn chain_ids_text<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id_text(out.last().map(String::as_str), d.as_ref());
        out.push(next);
    }
    out
}

/// The chain id of `diff_id` on top of `parent` (OCI image-spec): the diff id itself for a
/// bottom layer, else `sha256("<parent> <diff_id>")`.
pub fn chain_id(parent: Option<&ChainId>, diff_id: &DiffId) -> ChainId {
    match parent {
        None => ChainId(diff_id.0.clone()),
        Some(p) => ChainId(Digest::sha256_of(format!("{p} {diff_id}").as_bytes())),
    }
}

/// The chain id of every prefix of `diff_ids`, bottom first.
pub fn chain_ids(diff_ids: &[DiffId]) -> Vec<ChainId> {
    let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last(), d);
        out.push(next);
    }
    out
}

impl ChainId {
    /// The chain id of the top of `diff_ids`; `None` for no layers.
    pub fn of(diff_ids: &[DiffId]) -> Option<ChainId> {
        chain_ids(diff_ids).pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn parse_validates() {
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::Hex(_))
        ));
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(64))),
            Err(DigestError::Algorithm(_))
        ));
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}g", "a".repeat(63))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(65))).is_err());
        assert!(Digest::parse(&"a".repeat(64)).is_err());
        assert_eq!(Digest::parse_loose(&"a".repeat(64)).unwrap(), d('a'));
        assert!(Digest::parse_loose(&"A".repeat(64)).is_err());
        assert!(Digest::parse_loose(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }

    #[test]
    fn accessors_and_display() {
        let x = Digest::sha256_of(b"");
        assert_eq!(
            x.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(x.algorithm(), "sha256");
        assert_eq!(x.hex().len(), 64);
        assert_eq!(x.short(), "e3b0c44298fc");
        assert_eq!(x.to_string(), x.as_str());
        assert_eq!(x.as_str().parse::<Digest>().unwrap(), x);
        let mut m = HashMap::new();
        m.insert(ChainId::from_digest(x.clone()), 1);
        assert_eq!(m.get(x.as_str()), Some(&1));
        let text: String = x.clone().into_string();
        assert_eq!(text, x);
        assert_eq!(x, text);
        assert_eq!(text.as_str(), x);
        assert_eq!(x, text.as_str());
    }

    #[test]
    fn serde_is_the_string() {
        let x = d('b');
        let j = serde_json::to_string(&x).unwrap();
        assert_eq!(j, format!("\"{x}\""));
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), x);
        let v: Vec<DiffId> = serde_json::from_str(&format!("[{j}]")).unwrap();
        assert_eq!(v[0].as_digest(), &x);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }

    #[test]
    fn empty_layer_is_1024_zero_bytes() {
        assert_eq!(EMPTY_LAYER.as_digest(), &Digest::sha256_of(&[0u8; 1024]));
        assert!(EMPTY_LAYER.is_empty_layer());
        assert!(DiffId::parse(EMPTY_LAYER.as_str()).is_ok());
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = DiffId::from_digest(d('a'));
        let b = DiffId::from_digest(d('b'));
        let c = DiffId::from_digest(d('c'));
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0].as_digest(), a.as_digest());
        let ab = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1].as_digest(), &ab);
        let abc = Digest::sha256_of(format!("{ab} {c}").as_bytes());
        assert_eq!(ids[2].as_digest(), &abc);
        assert_eq!(ChainId::of(&[a.clone(), b, c]), Some(ids[2].clone()));
        assert_eq!(ChainId::of(&[]), None);
        assert_eq!(chain_id(None, &a), ids[0]);
        assert_eq!(
            chain_id(Some(&ids[0]), &DiffId::from_digest(d('b'))),
            ids[1]
        );
    }

    #[test]
    fn chain_id_of_a_real_image() {
        // alpine:3.18 style: two layers, values recomputed from their definition.
        let l0 = DiffId::parse(
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
        )
        .unwrap();
        let top = ChainId::of(&[l0.clone(), l0.clone()]).unwrap();
        let text = format!("{l0} {l0}");
        assert_eq!(top.hex(), hex::encode(Sha256::digest(text.as_bytes())));
    }
}
