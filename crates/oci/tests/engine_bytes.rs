//! The Go JSON encoder against bytes a real engine wrote: the `--format '{{json .}}'` lines
//! Docker 20.10 (built with Go < 1.22) printed for the committed fixtures
//! (`fixtures/engine/*/expected`). Every line is decoded and re-encoded with
//! [`GoJson::PRE_GO_1_22`]; the result must be the line, byte for byte.
//! (The fixtures hold no U+0008/U+000C, so the `\b`/`\f` difference itself is covered by the
//! unit tests only.)

use std::path::{Path, PathBuf};

use salvor_oci::GoJson;
use serde_json::Value;

fn encode(g: GoJson, v: &Value, out: &mut String) {
    match v {
        Value::String(s) => g.write_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(g, x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                g.write_string(out, k);
                out.push(':');
                encode(g, x, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            out.push(p);
        }
    }
}

#[test]
fn reencodes_docker_20_10_output_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/engine");
    let mut files = Vec::new();
    for driver in ["overlay2", "vfs", "fuse-overlayfs"] {
        // The CLI's own lines: `expected/*.jsonl` and `expected/history/`; the other
        // directories hold salvor's (Python-written) header dumps, not engine output.
        let expected = root.join(driver).join("expected");
        jsonl_files(&expected, &mut files);
        jsonl_files(&expected.join("history"), &mut files);
    }
    files.sort();
    assert!(!files.is_empty(), "no fixtures under {}", root.display());
    let (mut lines, mut escaped) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let mut out = String::new();
            encode(GoJson::PRE_GO_1_22, &v, &mut out);
            assert_eq!(out, line, "{}", f.display());
            lines += 1;
            escaped += usize::from(line.contains("\\u00"));
        }
    }
    assert!(
        lines > 10 && escaped > 0,
        "{lines} lines, {escaped} with \\u00XX escapes"
    );
}
