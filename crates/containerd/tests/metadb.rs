//! meta.db as a private containerd 1.7.24 wrote it (fixtures/bbolt/make-metadb.sh),
//! compared with `ctr`'s own answers about the same database (fixtures/bbolt/expected/ctr.txt)
//! and with the independent Python walk (containerd-meta.dump.txt).

use std::collections::BTreeMap;
use std::path::PathBuf;

use salvor_containerd::MetaDb;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bbolt")
}

fn meta() -> MetaDb {
    let f = std::fs::File::open(fixtures().join("containerd-meta.db.zst")).expect("fixture");
    let bytes = zstd::decode_all(f).expect("zstd");
    MetaDb::read(bytes, "meta.db").expect("meta.db reads")
}

/// `ctr.txt`: each `$ command` line and the lines it printed.
fn ctr_answers() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(fixtures().join("expected/ctr.txt")).expect("ctr.txt");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur = None;
    for l in text.lines() {
        if let Some(cmd) = l.strip_prefix("$ ") {
            cur = Some(cmd.to_string());
            out.entry(cmd.to_string()).or_default();
        } else if let Some(c) = &cur {
            out.entry(c.clone()).or_default().push(l.to_string());
        }
    }
    out
}

#[test]
fn namespaces_images_snapshots_and_leases_are_ctrs() {
    let m = meta();
    let ctr = ctr_answers();
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    assert_eq!(m.schema_version, Some(3));

    // ctr namespaces ls: NAME LABELS (k=v,k=v).
    let theirs: Vec<(String, String)> = ctr["ctr namespaces ls"]
        .iter()
        .skip(1)
        .map(|l| {
            let mut w = l.split_whitespace();
            (
                w.next().unwrap_or("").to_string(),
                w.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    let ours: Vec<(String, String)> = m
        .namespaces
        .iter()
        .map(|n| {
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (n.name.clone(), labels.join(","))
        })
        .collect();
    assert_eq!(ours, theirs, "namespaces");

    let mut compared = 0;
    for ns in &m.namespaces {
        let n = &ns.name;
        if let Some(want) = ctr.get(&format!("ctr -n {n} images ls -q")) {
            let ours: Vec<&str> = ns.images.iter().map(|i| i.name.as_str()).collect();
            assert_eq!(&ours, want, "{n}: images");
            for i in &ns.images {
                let d = i.target.digest.as_deref().expect("target digest");
                assert!(d.starts_with("sha256:") && d.len() == 71, "{n}: {d}");
                assert!(
                    i.target.size.unwrap_or(0) > 0 && i.created.is_some(),
                    "{n}: {i:?}"
                );
            }
            compared += want.len();
        }
        if let Some(want) = ctr.get(&format!("ctr -n {n} snapshots --snapshotter overlayfs ls")) {
            let theirs: Vec<(String, String)> = want
                .iter()
                .skip(1)
                .map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    // KEY [PARENT] KIND
                    let parent = if w.len() == 3 { w[1] } else { "" };
                    (w[0].to_string(), parent.to_string())
                })
                .collect();
            let ours: Vec<(String, String)> = ns
                .snapshots
                .iter()
                .filter(|s| s.snapshotter == "overlayfs")
                .map(|s| (s.key.clone(), s.parent.clone().unwrap_or_default()))
                .collect();
            assert_eq!(ours, theirs, "{n}: snapshots");
            for s in ns.snapshots.iter().filter(|s| s.snapshotter == "overlayfs") {
                let b = s.backend_name.as_deref().expect("backend name");
                assert!(
                    b.starts_with(&format!("{n}/")) && b.ends_with(&s.key),
                    "{b}"
                );
            }
            compared += theirs.len();
        }
        if let Some(want) = ctr.get(&format!("ctr -n {n} leases ls -q")) {
            let ours: Vec<&str> = ns.leases.iter().map(|l| l.id.as_str()).collect();
            assert_eq!(&ours, want, "{n}: leases");
            compared += want.len();
        }
    }
    assert!(compared > 300, "only {compared} records compared with ctr");
}

/// Every blob and image target digest and every time is what the independent walk shows
/// at the same bucket path (hex of the stored bytes).
#[test]
fn values_agree_with_the_independent_walk() {
    let m = meta();
    let dump = std::fs::read_to_string(fixtures().join("expected/containerd-meta.dump.txt"))
        .expect("dump");
    let kv: BTreeMap<&str, &str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("K "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let esc = |s: &str| s.replace('/', "%2F");
    let hex = |b: &[u8]| b.iter().map(|c| format!("{c:02x}")).collect::<String>();
    let mut checked = 0;
    for ns in &m.namespaces {
        for i in &ns.images {
            let p = format!("v1/{}/images/{}/target/digest", ns.name, esc(&i.name));
            let d = i.target.digest.as_deref().expect("digest");
            assert_eq!(
                kv.get(p.as_str()).copied(),
                Some(hex(d.as_bytes()).as_str()),
                "{p}"
            );
            checked += 1;
        }
        for b in &ns.blobs {
            let p = format!("v1/{}/content/blob/{}/size", ns.name, esc(&b.digest));
            assert!(kv.contains_key(p.as_str()), "{p}");
            assert!(b.size.unwrap_or(-1) >= 0 && b.created.is_some(), "{b:?}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} values checked");
}

/// Damage inside a record is a problem naming its bucket path; the rest is still read.
#[test]
fn a_bad_time_is_a_problem_and_the_rest_is_read() {
    let f = std::fs::File::open(fixtures().join("containerd-meta.db.zst")).expect("fixture");
    let mut bytes = zstd::decode_all(f).expect("zstd");
    // The first Go binary time stored (0x01, then 8 bytes of seconds from year 1): make its
    // nanoseconds field impossible.
    let good = MetaDb::read(bytes.clone(), "meta.db").expect("reads");
    let t = good
        .namespaces
        .iter()
        .flat_map(|n| &n.images)
        .next()
        .expect("an image");
    let created = t.created.expect("created");
    let secs = (created.unix() + 62_135_596_800).to_be_bytes();
    let mut pat = vec![0x01];
    pat.extend_from_slice(&secs);
    let at = bytes
        .windows(pat.len())
        .position(|w| w == pat.as_slice())
        .expect("the time's bytes");
    bytes[at + 9..at + 13].copy_from_slice(&[0xff; 4]);
    let bad = MetaDb::read(bytes, "meta.db").expect("still reads");
    assert!(
        bad.problems
            .iter()
            .any(|p| p.what == "not a Go binary time" && p.at.ends_with("at")),
        "{:?}",
        bad.problems
    );
    assert_eq!(
        bad.namespaces.iter().map(|n| n.images.len()).sum::<usize>(),
        good.namespaces
            .iter()
            .map(|n| n.images.len())
            .sum::<usize>()
    );
}

/// meta.db's snapshot names resolve through the snapshotter's metadata.db to a numeric
/// directory, with the kind `ctr snapshots ls` printed.
#[test]
fn snapshots_resolve_to_directories_with_ctrs_kind() {
    let m = meta();
    let f = std::fs::File::open(fixtures().join("containerd-snapshots.db.zst")).expect("fixture");
    let s =
        salvor_containerd::SnapshotterDb::read(zstd::decode_all(f).expect("zstd"), "metadata.db")
            .expect("reads");
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let ctr = ctr_answers();
    let mut resolved = 0;
    for ns in &m.namespaces {
        let Some(want) = ctr.get(&format!(
            "ctr -n {} snapshots --snapshotter overlayfs ls",
            ns.name
        )) else {
            continue;
        };
        for (snap, line) in ns.snapshots.iter().zip(want.iter().skip(1)) {
            let name = snap.backend_name.as_deref().expect("name");
            let b = &s.snapshots[name];
            let kind = line.split_whitespace().last().expect("KIND");
            assert_eq!(b.kind.map(|k| k.as_str()), Some(kind), "{name}");
            let dir = s.fs_dir(name).expect("a directory");
            assert!(dir.to_string_lossy().starts_with("snapshots/") && dir.ends_with("fs"));
            assert!(
                b.size.unwrap_or(0) > 0 && b.inodes.unwrap_or(0) > 0,
                "{b:?}"
            );
            resolved += 1;
        }
    }
    assert_eq!(
        resolved,
        s.snapshots.len(),
        "every backend snapshot is one of ctr's"
    );
    assert!(resolved >= 2);
    assert!(s.sequence >= resolved as u64);
}
