//! Output helpers: docker-like tables, human sizes, timestamps, JSON.

use std::io::{self, Write};

pub use salvor_core::format::human_size;
pub use salvor_core::format::short_time;

pub use salvor_core::format::short_id;

/// Sizes the evidence records added up, saturating (hostile metadata can claim sizes that
/// overflow a sum; a progress total or a SIZE cell is then just large, never a panic).
pub fn total(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().fold(0, u64::saturating_add)
}

/// A left-aligned table with docker's three-space column gaps.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        let n = self.header.len();
        let mut w = vec![0usize; n];
        for r in std::iter::once(&self.header).chain(self.rows.iter()) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        for r in std::iter::once(&self.header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                line.push_str(c);
                if i + 1 < n {
                    let pad = w[i] - c.chars().count() + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Pretty JSON with a trailing newline.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    match EVIDENCE_DAMAGE.get() {
        None => serde_json::to_writer_pretty(&mut lock, value)?,
        Some(block) => {
            serde_json::to_writer_pretty(&mut lock, &with_evidence_block(value, block)?)?
        }
    }
    writeln!(lock)?;
    Ok(())
}

/// The `evidence` block of damaged evidence, set once by `commands::run`.
static EVIDENCE_DAMAGE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();

/// Makes every later `--json` output carry `block` (the evidence's damage) as its
/// `evidence` member.
pub fn set_evidence_damage(block: serde_json::Value) {
    let _ = EVIDENCE_DAMAGE.set(block);
}

/// `value` with an `evidence` block first: an object gets the member (an existing
/// `evidence` string becomes the block's `description`), anything else is wrapped as
/// `{"evidence": …, "items": value}`.
fn with_evidence_block(
    value: &impl serde::Serialize,
    block: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let v = serde_json::to_value(value)?;
    let mut out = serde_json::Map::new();
    let mut block = block.clone();
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(serde_json::Value::String(d)), Some(b)) =
                (m.get("evidence"), block.as_object_mut())
            {
                b.entry("description")
                    .or_insert_with(|| serde_json::Value::String(d.clone()));
            }
            if m.get("evidence").is_some_and(|e| e.is_object()) {
                return Ok(serde_json::Value::Object(m));
            }
            out.insert("evidence".into(), block);
            out.extend(m.into_iter().filter(|(k, _)| k != "evidence"));
        }
        other => {
            out.insert("evidence".into(), block);
            out.insert("items".into(), other);
        }
    }
    Ok(serde_json::Value::Object(out))
}

/// Replaces control characters so that hostile names cannot drive the terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1146369), "1.15MB");
        assert_eq!(human_size(4_410_000), "4.41MB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(123_456_789), "123MB");
    }
    #[test]
    fn times_are_absolute() {
        assert_eq!(
            short_time(Some("2018-04-05T10:41:28.876407948Z")),
            "2018-04-05 10:41:28 UTC"
        );
        assert_eq!(short_time(None), "-");
    }
}
