//! Go `encoding/json` string encoding, byte for byte.
//!
//! Go's encoder escapes `"` and `\`, writes `\n`, `\r`, `\t` short, every other control
//! character as `\u00XX`, and (HTML-safe escaping, on for both `json.Marshal` and
//! `json.NewEncoder`) `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`, `\u003e`, `\u0026`,
//! `\u2028`, `\u2029`. Go 1.22 changed one thing: it writes U+0008 and U+000C as `\b` and `\f`
//! where older releases wrote `\u0008` and `\u000c` (Go 1.22 release notes, `encoding/json`).
//! Which one a file shows depends on the Go release the engine was built with, so the choice
//! is an explicit [`GoJson`] option.

/// A Go `encoding/json` string encoder of one Go release line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoJson {
    /// `true`: U+0008 / U+000C as `\b` / `\f` (Go ≥ 1.22); `false`: `\u0008` / `\u000c`.
    pub escape_b_f_short: bool,
}

impl GoJson {
    /// Go before 1.22 (Docker 20.10 … 24 were built with such releases).
    pub const PRE_GO_1_22: GoJson = GoJson {
        escape_b_f_short: false,
    };
    /// Go 1.22 and later.
    pub const GO_1_22: GoJson = GoJson {
        escape_b_f_short: true,
    };

    /// Appends `s` as a quoted, escaped JSON string.
    pub fn write_string(self, out: &mut String, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' if self.escape_b_f_short => out.push_str("\\b"),
                '\u{c}' if self.escape_b_f_short => out.push_str("\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                    let v = c as u32;
                    out.push_str("\\u");
                    for shift in [12u32, 8, 4, 0] {
                        out.push(HEX[((v >> shift) & 0xf) as usize] as char);
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// `s` as a quoted, escaped JSON string.
    pub fn quote(self, s: &str) -> String {
        let mut o = String::with_capacity(s.len() + 2);
        self.write_string(&mut o, s);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        for g in [GoJson::PRE_GO_1_22, GoJson::GO_1_22] {
            assert_eq!(g.quote("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
            assert_eq!(
                g.quote("q\"\\\n\r\t\u{1}\u{1f}\u{2028}\u{2029}é\u{7f}"),
                "\"q\\\"\\\\\\n\\r\\t\\u0001\\u001f\\u2028\\u2029é\u{7f}\""
            );
        }
    }

    #[test]
    fn b_and_f_depend_on_the_go_release() {
        assert_eq!(GoJson::PRE_GO_1_22.quote("\u{8}\u{c}"), r#""\u0008\u000c""#);
        assert_eq!(GoJson::GO_1_22.quote("\u{8}\u{c}"), r#""\b\f""#);
    }
}
