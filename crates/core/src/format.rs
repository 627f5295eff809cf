//! Formatting shared by the outputs: sizes, times and ids as the tables show them.

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

/// Docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units, `%.3g`.
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(s, 3), UNITS[i])
}

/// C's `%.{prec}g`.
pub fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    // Round to `prec` significant digits first, as printf does, then decide the style.
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp_s) = e.split_once('e').unwrap_or((&e, "0"));
    let exp_r: i32 = exp_s.parse().unwrap_or(exp);
    if exp_r < -4 || exp_r >= prec as i32 {
        let m = trim_zeros(mant);
        let sign = if exp_r < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp_r.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp_r).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}
