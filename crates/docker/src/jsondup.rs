//! JSON read the way the engine's Go decoder (`encoding/json`) reads it where serde_json
//! would differ: objects keep their duplicate keys ([`Node`]), and struct field names match
//! case-insensitively ([`go_field_eq`]).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep every key, duplicates included, in document order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool,
    Number,
    String(String),
    Array,
    Object(Vec<(String, Node)>),
}

impl Node {
    /// `object`, `string` …, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool => "a boolean",
            Node::Number => "a number",
            Node::String(_) => "a string",
            Node::Array => "an array",
            Node::Object(_) => "an object",
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Number)
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Node::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            out.push((k, map.next_value::<Node>()?));
        }
        Ok(Node::Object(out))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// The top level of `repositories.json` as the engine's reference store decodes it into
/// its struct (`json.NewDecoder(f).Decode(&store)` in moby's `reference/store.go`): the
/// value of every key that selects its `Repositories` field, in document order; other keys
/// are skipped unparsed, as Go skips unknown fields.
pub(crate) struct RepositoriesFile {
    pub occurrences: Vec<(String, Node)>,
}

struct RepositoriesVisitor;

impl<'de> Visitor<'de> for RepositoriesVisitor {
    type Value = RepositoriesFile;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RepositoriesFile, A::Error> {
        let mut occurrences = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            if go_field_eq(&k, "Repositories") {
                occurrences.push((k, map.next_value::<Node>()?));
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(RepositoriesFile { occurrences })
    }
}

impl<'de> Deserialize<'de> for RepositoriesFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RepositoriesFile, D::Error> {
        d.deserialize_map(RepositoriesVisitor)
    }
}

/// Whether JSON key `key` selects the Go struct field named `field` (ASCII): Go's
/// `encoding/json` prefers an exact match and otherwise folds case, with the Kelvin sign
/// (U+212A) folding to `k` and the long s (U+017F) to `s`.
pub(crate) fn go_field_eq(key: &str, field: &str) -> bool {
    let fold = |c: char| match c {
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        c => c.to_ascii_lowercase(),
    };
    key.chars().map(fold).eq(field.chars().map(fold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_kept_and_fields_fold_like_go() {
        let n: Node =
            serde_json::from_str(r#"{"a":1,"a":{"b":"x","b":null},"c":[1e999]}"#).expect("parse");
        let Node::Object(top) = n else {
            panic!("object")
        };
        assert_eq!(top.len(), 3);
        assert_eq!(top[0], ("a".into(), Node::Number));
        assert_eq!(
            top[1].1,
            Node::Object(vec![
                ("b".into(), Node::String("x".into())),
                ("b".into(), Node::Null)
            ])
        );
        let f: RepositoriesFile =
            serde_json::from_str(r#"{"Repositories":{},"x":1e999,"repositories":null}"#)
                .expect("unknown keys are skipped unparsed, as Go does");
        assert_eq!(
            f.occurrences,
            vec![
                ("Repositories".into(), Node::Object(vec![])),
                ("repositories".into(), Node::Null)
            ]
        );
        assert!(go_field_eq("repositories", "Repositories"));
        assert!(go_field_eq("REPOSITORIES", "Repositories"));
        assert!(go_field_eq("Repo\u{017F}itories", "Repositories"));
        assert!(!go_field_eq("Repositorie", "Repositories"));
    }
}
