//! Formatting shared by the outputs: times and ids as the tables show them.

/// `2018-04-05T10:41:28.876407948Z` → `2018-04-05 10:41:28 UTC` (deterministic, unlike
/// docker's "2 years ago").
pub fn short_time(rfc3339: Option<&str>) -> String {
    match rfc3339 {
        None => "-".into(),
        Some(t) => {
            let t = t.trim();
            if t.len() >= 19 && t.as_bytes().get(10) == Some(&b'T') {
                let rest = &t[19..];
                let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
                let zone = if zone == "Z" || zone.is_empty() {
                    "UTC".to_string()
                } else {
                    zone.to_string()
                };
                format!("{} {} {}", &t[..10], &t[11..19], zone)
            } else {
                t.to_string()
            }
        }
    }
}

/// Strips `sha256:` and cuts to 12 hex digits.
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}
