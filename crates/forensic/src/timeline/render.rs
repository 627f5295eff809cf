//! Rendering of timeline entries: Sleuth Kit bodyfile lines, JSON lines, `ls -l` modes and
//! escaped names.

use super::*;

/// `ls -l` mode string: `drwxr-xr-x`, `-rwsr-xr-x`, `drwxrwxrwt`.
pub fn ls_mode(kind: FileKind, mode: u32) -> String {
    let t = match kind {
        FileKind::Regular => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
    let special = |x: bool, s: bool, on: char, off: char| match (x, s) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    s
}

/// TSK's `mode_as_string` column: name type `/` meta type and permissions
/// (`r/rrw-r--r--`, `d/drwxr-xr-x`, `l/lrwxrwxrwx`; a whiteout `w/c---------`).
fn tsk_mode(e: &Entry) -> String {
    if e.kind == "event" {
        return "-/----------".into();
    }
    let meta = match e.mode.chars().next() {
        Some('-') => 'r',
        Some('s') => 'h',
        Some(c) => c,
        None => '-',
    };
    let name_type = if e.kind == "whiteout" { 'w' } else { meta };
    format!("{name_type}/{meta}{}", e.mode.get(1..).unwrap_or(""))
}

/// Escapes a bodyfile field: `%` and `|` as `%25` / `%7C` (mactime decodes `%XX`).
fn body_field(s: &str) -> String {
    s.replace('%', "%25").replace('|', "%7C")
}

fn body_time(t: Option<Time>) -> String {
    t.map(Time::bodyfile).unwrap_or_else(|| "0".into())
}

/// One TSK 3 bodyfile line (without newline):
/// `MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime`.
pub fn bodyfile_line(e: &Entry) -> String {
    format!(
        "0|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        body_field(&e.name),
        e.inode,
        tsk_mode(e),
        e.uid,
        e.gid,
        e.size,
        body_time(e.atime),
        body_time(e.mtime),
        body_time(e.ctime),
        body_time(e.btime),
    )
}

/// The JSON lines of one entry: one per distinct time, flags mactime style.
pub fn json_lines(e: &Entry) -> Vec<JsonLine> {
    let times = [e.mtime, e.atime, e.ctime, e.btime];
    let mut distinct: Vec<Time> = times.iter().flatten().copied().collect();
    distinct.sort();
    distinct.dedup();
    distinct
        .into_iter()
        .map(|t| {
            let macb: String = times
                .iter()
                .zip(['m', 'a', 'c', 'b'])
                .map(|(x, c)| if *x == Some(t) { c } else { '.' })
                .collect();
            JsonLine {
                time: t.rfc3339(),
                sec: t.sec,
                nsec: t.nsec,
                macb,
                entry: e.clone(),
            }
        })
        .collect()
}

/// Names are shown as UTF-8; bytes that are not UTF-8 and control characters become
/// `\xNN`, a backslash `\\`.
pub fn clean_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

pub(super) fn clean_str(s: &str) -> String {
    clean_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(ls_mode(FileKind::Regular, 0o644), "-rw-r--r--");
        assert_eq!(ls_mode(FileKind::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(ls_mode(FileKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(ls_mode(FileKind::Dir, 0o2745), "drwxr-Sr-x");
        assert_eq!(ls_mode(FileKind::CharDevice, 0), "c---------");
    }

    #[test]
    fn times() {
        assert_eq!(Time { sec: 5, nsec: 0 }.bodyfile(), "5");
        assert_eq!(Time { sec: 5, nsec: 1 }.bodyfile(), "5.000000001");
        assert_eq!(
            Time {
                sec: -2,
                nsec: 750_000_000
            }
            .bodyfile(),
            "-1.250000000"
        );
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(clean_bytes(b"a\nb\xff\\c"), "a\\x0ab\\xff\\\\c");
        assert_eq!(body_field("a|b%c"), "a%7Cb%25c");
    }
}
