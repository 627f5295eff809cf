//! Byte-exact emulation of Go's `encoding/json` output for the few shapes the
//! Docker engine marshals when it saves images.
//!
//! Go's encoder writes struct fields in declaration order, map keys sorted by
//! byte order, escapes `<`, `>`, `&`, U+2028 and U+2029 (HTML-safe escaping is
//! on for both `json.Marshal` and `json.NewEncoder`), and adds a trailing
//! newline only with `Encoder.Encode`.

use std::collections::BTreeMap;

use salvor_oci::GoJson;

/// The string encoder: Go >= 1.22 (`\b` and `\f` for U+0008 and U+000C), what salvor's
/// archives have always carried.
const GO_JSON: GoJson = GoJson::GO_1_22;

/// Append `s` as a Go-escaped JSON string (with quotes).
pub(crate) fn string(out: &mut String, s: &str) {
    GO_JSON.write_string(out, s);
}

/// Owned helper returning a quoted string.
pub(crate) fn quote(s: &str) -> String {
    GO_JSON.quote(s)
}

/// A JSON object under construction whose members are written in insertion
/// order (a Go struct).
#[derive(Default)]
pub(crate) struct Obj {
    buf: String,
    any: bool,
}

impl Obj {
    pub(crate) fn new() -> Self {
        Obj {
            buf: String::from("{"),
            any: false,
        }
    }
    /// Add a member whose value is already-encoded JSON.
    pub(crate) fn raw(&mut self, key: &str, raw: &str) -> &mut Self {
        if self.any {
            self.buf.push(',');
        }
        self.any = true;
        string(&mut self.buf, key);
        self.buf.push(':');
        self.buf.push_str(raw);
        self
    }
    pub(crate) fn str(&mut self, key: &str, v: &str) -> &mut Self {
        let q = quote(v);
        self.raw(key, &q)
    }
    /// `omitempty` string.
    pub(crate) fn str_oe(&mut self, key: &str, v: &str) -> &mut Self {
        if !v.is_empty() {
            self.str(key, v);
        }
        self
    }
    pub(crate) fn finish(&mut self) -> String {
        let mut s = std::mem::take(&mut self.buf);
        s.push('}');
        s
    }
}

/// Encode a sorted string→raw-JSON map (a Go `map[string]T`).
pub(crate) fn map_raw(m: &BTreeMap<String, String>) -> String {
    let mut o = Obj::new();
    for (k, v) in m {
        o.raw(k, v);
    }
    o.finish()
}

/// Encode a Go `[]string` (nil → `null`).
pub(crate) fn str_slice(v: Option<&[String]>) -> String {
    match v {
        None => "null".to_string(),
        Some(v) => {
            let mut s = String::from("[");
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                string(&mut s, x);
            }
            s.push(']');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn escapes_like_go() {
        assert_eq!(quote("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(
            quote("q\"\\\n\u{1}\u{2028}é"),
            "\"q\\\"\\\\\\n\\u0001\\u2028é\""
        );
        assert_eq!(quote("\u{8}\u{c}"), r#""\b\f""#);
    }
}
