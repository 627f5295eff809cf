//! Damaged and hostile container metadata and logs: each gives a Problem or an error naming
//! the file, never a panic, and the other containers are still listed.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use salvor_docker::logs::{self, encode_local_record, LogOptions, LogReader};
use salvor_docker::resolve::How;
use salvor_docker::{
    Kind, LayerFiles, ResolveError, Resolved, SaveTarget, Store, StoreError, Target, Want,
};
use salvor_source::DirSource;

fn id(n: u8) -> String {
    format!("{:x}", n % 16).repeat(64)
}

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

fn config(cid: &str, name: &str, log_driver: &str) -> (String, String) {
    let cfg = format!(
        r#"{{"ID":"{cid}","Created":"2024-01-0{}T00:00:00Z","Path":"sh","Args":["-c","echo hi there"],
        "State":{{"Running":false,"ExitCode":3,"StartedAt":"2024-01-01T00:00:01Z","FinishedAt":"2024-01-01T00:00:02Z"}},
        "Config":{{"Image":"busybox","Labels":{{"a":"b"}}}},"Image":"sha256:{}",
        "Name":"/{name}","Driver":"overlay2","LogPath":"/var/lib/docker/containers/{cid}/{cid}-json.log",
        "MountPoints":{{"/data":{{"Source":"/srv/data","Destination":"/data","RW":true,"Type":"bind"}}}}}}"#,
        (cid.as_bytes()[0] % 9) + 1,
        "ab".repeat(32)
    );
    let hc = format!(r#"{{"LogConfig":{{"Type":"{log_driver}","Config":{{}}}}}}"#);
    (cfg, hc)
}

/// A data-root with overlay2 metadata and the given containers (name, config override).
fn data_root(dir: &Path) {
    std::fs::create_dir_all(dir.join("image/overlay2/layerdb/sha256")).expect("mkdir");
    std::fs::create_dir_all(dir.join("image/overlay2/imagedb/content/sha256")).expect("mkdir");
}

fn add_container(dir: &Path, cid: &str, name: &str, log_driver: &str, with_mount: bool) {
    let (cfg, hc) = config(cid, name, log_driver);
    let cdir = dir.join("containers").join(cid);
    write(&cdir.join("config.v2.json"), cfg.as_bytes());
    write(&cdir.join("hostconfig.json"), hc.as_bytes());
    if with_mount {
        let m = dir.join("image/overlay2/layerdb/mounts").join(cid);
        write(&m.join("mount-id"), format!("mnt{}", &cid[..8]).as_bytes());
        write(
            &m.join("init-id"),
            format!("mnt{}-init", &cid[..8]).as_bytes(),
        );
        std::fs::create_dir_all(
            dir.join("overlay2")
                .join(format!("mnt{}", &cid[..8]))
                .join("diff"),
        )
        .expect("mkdir");
        std::fs::create_dir_all(
            dir.join("overlay2")
                .join(format!("mnt{}-init", &cid[..8]))
                .join("diff"),
        )
        .expect("mkdir");
    }
}

fn open(dir: &Path) -> Store {
    let src = DirSource::new(dir).expect("dirsource");
    Store::open(Arc::new(src)).expect("store")
}

#[test]
fn damaged_configs_are_problems_and_the_rest_lists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    add_container(d, &id(1), "good", "json-file", true);
    // mount-id missing (docker-explorer crashes on this).
    add_container(d, &id(2), "no-mount-id", "json-file", true);
    std::fs::remove_file(
        d.join("image/overlay2/layerdb/mounts")
            .join(id(2))
            .join("mount-id"),
    )
    .expect("rm");
    // Garbage config.
    add_container(d, &id(3), "garbage", "json-file", true);
    write(
        &d.join("containers").join(id(3)).join("config.v2.json"),
        b"\x00\xff{{{ not json",
    );
    // Huge config (sparse, larger than the limit).
    add_container(d, &id(4), "huge", "json-file", true);
    let f = std::fs::File::create(d.join("containers").join(id(4)).join("config.v2.json"))
        .expect("create");
    f.set_len(salvor_docker::containers::MAX_CONTAINER_CONFIG + 10)
        .expect("set_len");
    // Wrong types everywhere.
    add_container(d, &id(5), "wrong-types", "json-file", true);
    write(
        &d.join("containers").join(id(5)).join("config.v2.json"),
        br#"{"ID":5,"Name":["x"],"Path":7,"Args":"notalist","State":"running","Config":{"Image":{"a":1},"Labels":[1]},"MountPoints":[],"Image":false,"Created":1}"#,
    );
    // JSON but not an object.
    add_container(d, &id(6), "array", "json-file", true);
    write(
        &d.join("containers").join(id(6)).join("config.v2.json"),
        b"[1,2]",
    );
    // Bad hostconfig: the container still lists.
    add_container(d, &id(7), "bad-hostconfig", "json-file", true);
    write(
        &d.join("containers").join(id(7)).join("hostconfig.json"),
        b"{",
    );
    // Not a container directory.
    std::fs::create_dir_all(d.join("containers/not-an-id")).expect("mkdir");
    // mount-id with a path in it.
    add_container(d, &id(8), "evil-mount-id", "json-file", true);
    write(
        &d.join("image/overlay2/layerdb/mounts")
            .join(id(8))
            .join("mount-id"),
        b"../../../etc",
    );

    let store = open(d);
    let (list, problems) = store.containers();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    for want in [
        "good",
        "no-mount-id",
        "wrong-types",
        "bad-hostconfig",
        "evil-mount-id",
    ] {
        assert!(
            names.contains(&want) || (want == "wrong-types" && names.contains(&"")),
            "{want} missing from {names:?}"
        );
    }
    assert!(!names.contains(&"garbage") && !names.contains(&"huge") && !names.contains(&"array"));
    let has = |needle: &str, what: &str| {
        problems
            .iter()
            .any(|p| p.path.to_string_lossy().contains(needle) && p.what.contains(what))
    };
    assert!(has(&format!("{}/mount-id", id(2)), ""), "{problems:#?}");
    assert!(
        has(&format!("{}/config.v2.json", id(3)), "not valid JSON"),
        "{problems:#?}"
    );
    assert!(
        has(&format!("{}/config.v2.json", id(4)), "limit"),
        "{problems:#?}"
    );
    assert!(
        has(&format!("{}/config.v2.json", id(5)), "expected"),
        "{problems:#?}"
    );
    assert!(
        has(
            &format!("{}/config.v2.json", id(6)),
            "expected a JSON object"
        ),
        "{problems:#?}"
    );
    assert!(
        has(&format!("{}/hostconfig.json", id(7)), "not valid JSON"),
        "{problems:#?}"
    );
    assert!(has("containers/not-an-id", "not a 64-hex"), "{problems:#?}");
    assert!(
        has(&format!("{}/mount-id", id(8)), "not a valid driver id"),
        "{problems:#?}"
    );

    let good = store.find_container("good").expect("good");
    assert_eq!(good.state.status, "exited");
    assert_eq!(good.state.exit_code, 3);
    assert_eq!(good.command(), "sh -c 'echo hi there'");
    assert_eq!(good.image, "busybox");
    let rw = good.rw_layer.as_ref().expect("rw layer");
    assert_eq!(rw.mount_id, format!("mnt{}", &id(1)[..8]));
    match &rw.files {
        LayerFiles::Overlay { diff, lowers } => {
            assert!(diff.ends_with("diff"));
            assert_eq!(lowers.len(), 1, "the init layer");
        }
        other => panic!("{other:?}"),
    }
    let nm = store.find_container("/no-mount-id").expect("no-mount-id");
    assert!(nm.rw_layer.is_none());
    let evil = store.find_container("evil-mount-id").expect("evil");
    assert!(evil.rw_layer.is_none());

    // Bind mounts are host paths, reported and not followed.
    let binds = store.bind_mounts(&list);
    assert!(binds
        .iter()
        .all(|b| b.source == "/srv/data" && !b.inside_evidence));
}

#[test]
fn find_container_by_name_id_prefix_and_ambiguity() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let a = format!("abc1{}", "0".repeat(60));
    let b = format!("abc2{}", "0".repeat(60));
    add_container(d, &a, "first", "json-file", true);
    add_container(d, &b, "second", "json-file", true);
    let store = open(d);
    assert_eq!(store.find_container("first").expect("name").id, a);
    assert_eq!(store.find_container("/second").expect("/name").id, b);
    assert_eq!(store.find_container("abc1").expect("prefix").id, a);
    assert_eq!(store.find_container(&b).expect("full").id, b);
    match store.find_container("abc") {
        Err(StoreError::Resolve(e @ ResolveError::Ambiguous { .. })) => {
            let m = e.to_string();
            assert!(m.contains(&a) && m.contains(&b), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.find_container("nope"),
        Err(StoreError::Resolve(ResolveError::NotFound { .. }))
    ));
}

fn collect(store: &Store, name: &str, opts: &LogOptions) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    let c = store.find_container(name).expect("container");
    let r = LogReader::for_container(store, &c).expect("reader");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let mut errs = Vec::new();
    logs::write_logs(r, opts, &mut o, &mut e, &mut |err| {
        errs.push(err.to_string())
    })
    .expect("write");
    (o, e, errs)
}

fn json_line(log: &str, stream: &str, t: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"log": log, "stream": stream, "time": t})
    )
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gz");
    enc.finish().expect("gz")
}

#[test]
fn rotated_json_logs_oldest_first_and_damage_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let cid = id(1);
    add_container(d, &cid, "rot", "json-file", true);
    let cdir = d.join("containers").join(&cid);
    let base = format!("{cid}-json.log");
    write(
        &cdir.join(format!("{base}.2.gz")),
        &gz(json_line("oldest\n", "stdout", "2024-01-01T00:00:01.5Z").as_bytes()),
    );
    write(
        &cdir.join(format!("{base}.1")),
        json_line("middle\n", "stderr", "2024-01-01T00:00:02Z").as_bytes(),
    );
    let mut live = json_line("newest\n", "stdout", "2024-01-01T00:00:03.000000001Z");
    live.push_str("{not json}\n");
    live.push_str(&json_line("after-bad\n", "stdout", "2024-01-01T00:00:04Z"));
    write(&cdir.join(&base), live.as_bytes());
    let store = open(d);
    let (o, e, errs) = collect(
        &store,
        "rot",
        &LogOptions {
            timestamps: true,
            ..Default::default()
        },
    );
    assert_eq!(
        String::from_utf8_lossy(&o),
        "2024-01-01T00:00:01.500000000Z oldest\n2024-01-01T00:00:03.000000001Z newest\n2024-01-01T00:00:04.000000000Z after-bad\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&e),
        "2024-01-01T00:00:02.000000000Z middle\n"
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains(&base) && errs[0].contains("offset"),
        "{errs:?}"
    );

    // A truncated gzip rotation: an error naming it, the other files still read.
    let full = gz(json_line("lost\n", "stdout", "2024-01-01T00:00:00Z")
        .repeat(2000)
        .as_bytes());
    write(&cdir.join(format!("{base}.3.gz")), &full[..full.len() / 2]);
    let store = open(d);
    let (o, _, errs) = collect(&store, "rot", &LogOptions::default());
    let text = String::from_utf8_lossy(&o);
    assert!(
        text.contains("oldest\n") && text.ends_with("after-bad\n"),
        "{text}"
    );
    assert!(
        errs.iter().any(|e| e.contains(&format!("{base}.3.gz"))),
        "{errs:?}"
    );
}

#[test]
fn gigantic_log_line_is_an_error_and_reading_goes_on() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let cid = id(1);
    add_container(d, &cid, "big", "json-file", true);
    let path = d
        .join("containers")
        .join(&cid)
        .join(format!("{cid}-json.log"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    f.write_all(json_line("before\n", "stdout", "2024-01-01T00:00:00Z").as_bytes())
        .expect("w");
    f.write_all(b"{\"log\":\"").expect("w");
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..(logs::MAX_LOG_LINE >> 20) + 1 {
        f.write_all(&chunk).expect("w");
    }
    f.write_all(b"\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:01Z\"}\n")
        .expect("w");
    f.write_all(json_line("after\n", "stdout", "2024-01-01T00:00:02Z").as_bytes())
        .expect("w");
    drop(f);
    let store = open(d);
    let (o, _, errs) = collect(&store, "big", &LogOptions::default());
    assert_eq!(String::from_utf8_lossy(&o), "before\nafter\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("longer than") && errs[0].contains("-json.log"),
        "{errs:?}"
    );
}

#[test]
fn local_driver_logs_and_bad_length_prefix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let cid = id(1);
    add_container(d, &cid, "loc", "local", true);
    add_container(d, &id(2), "other", "json-file", true);
    let ldir = d.join("containers").join(&cid).join("local-logs");
    let mut rotated = encode_local_record("stdout", 1_000_000_000, b"one", false);
    rotated.extend(encode_local_record("stderr", 2_000_000_000, b"two", false));
    write(&ldir.join("container.log.1.gz"), &gz(&rotated));
    let mut live = encode_local_record("stdout", 3_000_000_123, b"part-", true);
    live.extend(encode_local_record(
        "stdout",
        3_000_000_124,
        b"three",
        false,
    ));
    // A record whose length prefix is absurd: the rest of the file cannot be framed.
    live.extend_from_slice(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]);
    write(&ldir.join("container.log"), &live);
    let store = open(d);
    let (o, e, errs) = collect(
        &store,
        "loc",
        &LogOptions {
            timestamps: true,
            ..Default::default()
        },
    );
    assert_eq!(
        String::from_utf8_lossy(&o),
        "1970-01-01T00:00:01.000000000Z one\n1970-01-01T00:00:03.000000123Z part-1970-01-01T00:00:03.000000124Z three\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&e),
        "1970-01-01T00:00:02.000000000Z two\n"
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("local-logs/container.log") && errs[0].contains("length prefix"),
        "{errs:?}"
    );
    // A mismatched suffix is named too.
    let mut bad = encode_local_record("stdout", 1, b"x", false);
    let n = bad.len();
    bad[n - 1] ^= 1;
    write(&ldir.join("container.log"), &bad);
    let store = open(d);
    let (_, _, errs) = collect(&store, "loc", &LogOptions::default());
    assert!(errs.iter().any(|e| e.contains("suffix")), "{errs:?}");
    // The other container still lists and reads.
    assert_eq!(store.containers().0.len(), 2);
}

/// Writes an image config (no layers) into the data-root; returns its id's hex.
fn add_image(dir: &Path, created: &str) -> String {
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"{created}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let hex = salvor_docker::sha256_hex(cfg.as_bytes());
    let hex = hex.strip_prefix("sha256:").unwrap_or(&hex).to_string();
    write(
        &dir.join("image/overlay2/imagedb/content/sha256").join(&hex),
        cfg.as_bytes(),
    );
    hex
}

fn repositories(dir: &Path, json: &str) {
    write(
        &dir.join("image/overlay2/repositories.json"),
        json.as_bytes(),
    );
}

fn kinds(e: &ResolveError) -> Vec<(Kind, String)> {
    match e {
        ResolveError::Ambiguous { candidates, .. }
        | ResolveError::NotFound {
            other: candidates, ..
        } => candidates.iter().map(|c| (c.kind, c.id.clone())).collect(),
        _ => vec![],
    }
}

#[test]
fn one_resolver_for_images_and_containers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let i1 = add_image(d, "2024-01-01T00:00:00Z");
    let i2 = add_image(d, "2024-01-02T00:00:00Z");
    // A container whose id shares i1's first 6 hex digits, and two sharing "abc".
    let c_img = format!("{}{}", &i1[..6], "1".repeat(58));
    let a = format!("abc1{}", "0".repeat(60));
    let b = format!("abc2{}", "0".repeat(60));
    add_container(d, &c_img, "twin", "json-file", true);
    add_container(d, &a, "first", "json-file", true);
    add_container(d, &b, "abc", "json-file", true);
    add_container(d, &"d".repeat(64), "web", "json-file", true);
    // i1 is web:latest (also a container's name) and has a digest; i2 is tagged with i1's
    // 8-digit prefix as repository name.
    repositories(
        d,
        &format!(
            r#"{{"Repositories":{{"web":{{"web:latest":"sha256:{i1}","web@sha256:{dg}":"sha256:{i1}"}},"{p}":{{"{p}:latest":"sha256:{i2}"}}}}}}"#,
            dg = "f".repeat(64),
            p = &i1[..8]
        ),
    );
    let store = open(d);
    assert_eq!(store.images.len(), 2, "{:?}", store.problems);
    let either_c = Want::Either {
        prefer: Kind::Container,
    };
    let either_i = Want::Either {
        prefer: Kind::Image,
    };
    let img_of = |r: Resolved<'_>| match r.target {
        Target::Image(i) => (i.id.clone(), r.how),
        Target::Container(c) => panic!("wanted an image, got container {}", c.id),
    };
    let con_of = |r: Resolved<'_>| match r.target {
        Target::Container(c) => (c.id.clone(), r.how),
        Target::Image(i) => panic!("wanted a container, got image {}", i.id),
    };

    // A prefix matching both kinds: ambiguous for a command taking either, with both kinds.
    let e = store.resolve(&i1[..4], either_c).expect_err("ambiguous");
    assert!(matches!(e, ResolveError::Ambiguous { .. }), "{e}");
    let mut k = kinds(&e);
    k.sort();
    assert_eq!(
        k,
        vec![
            (Kind::Image, format!("sha256:{i1}")),
            (Kind::Container, c_img.clone())
        ]
    );
    let m = e.to_string();
    assert!(
        m.contains("image sha256:") && m.contains("container ") && m.contains("twin"),
        "{m}"
    );
    // … and the same for `extract` (image first only for exact matches).
    assert!(matches!(
        store.resolve_for_save(&i1[..4]),
        Err(ResolveError::Ambiguous { .. })
    ));
    // One-kind commands take the one of their kind.
    assert_eq!(
        img_of(store.resolve(&i1[..4], Want::Image).expect("image")).0,
        format!("sha256:{i1}")
    );
    assert_eq!(
        con_of(store.resolve(&i1[..4], Want::Container).expect("container")).0,
        c_img
    );

    // Several of one kind: ambiguous, every candidate listed.
    let e = store.resolve("abc", Want::Image).expect_err("no image");
    assert!(matches!(e, ResolveError::NotFound { .. }));
    let e = store.resolve("ab", Want::Container).expect_err("ambiguous");
    let mut k = kinds(&e);
    k.sort();
    assert_eq!(
        k,
        vec![(Kind::Container, a.clone()), (Kind::Container, b.clone())],
        "{e}"
    );
    assert!(
        e.to_string().contains(&a) && e.to_string().contains(&b),
        "{e}"
    );

    // Exact name beats prefix: container "abc" is b, although "abc" prefixes a and b.
    let r = store.resolve("abc", either_c).expect("name");
    assert_eq!(
        r.also
            .iter()
            .map(|c| (c.id.clone(), c.how))
            .collect::<Vec<_>>(),
        vec![(a.clone(), How::Prefix)]
    );
    assert_eq!(con_of(r).0, b);
    // Exact tag beats prefix: i1[..8] is i2's tag and i1's id prefix.
    let r = store.resolve(&i1[..8], Want::Image).expect("tag");
    assert!(r
        .also
        .iter()
        .any(|c| c.id == format!("sha256:{i1}") && c.how == How::Prefix));
    assert_eq!(img_of(r), (format!("sha256:{i2}"), How::Tag));

    // Unique prefix of each kind.
    assert_eq!(
        con_of(store.resolve("abc1", either_c).expect("prefix")),
        (a.clone(), How::Prefix)
    );
    assert_eq!(
        img_of(store.resolve(&i2[..6], either_c).expect("prefix")).1,
        How::Prefix
    );
    assert_eq!(
        img_of(
            store
                .resolve(&format!("sha256:{}", &i2[..6]), either_c)
                .expect("sha256: prefix")
        )
        .1,
        How::Prefix
    );

    // Full ids, tag, digest.
    assert_eq!(
        img_of(store.resolve(&i1, either_c).expect("id")).1,
        How::FullId
    );
    assert_eq!(
        con_of(store.resolve(&a, either_i).expect("id")).1,
        How::FullId
    );
    assert_eq!(
        img_of(
            store
                .resolve("docker.io/library/web:latest", Want::Image)
                .expect("tag")
        ),
        (format!("sha256:{i1}"), How::Tag)
    );
    assert_eq!(
        img_of(
            store
                .resolve(&format!("web@sha256:{}", "f".repeat(64)), either_c)
                .expect("digest")
        ),
        (format!("sha256:{i1}"), How::Digest)
    );

    // A container named like an image tag: docker's order for the command, with a note.
    let r = store.resolve("web", either_c).expect("web");
    let note = r.note("web").expect("note");
    assert!(note.contains("image"), "{note}");
    assert_eq!(con_of(r).1, How::Name);
    assert_eq!(
        img_of(store.resolve("web", either_i).expect("web")).1,
        How::Tag
    );
    match store.resolve_for_save("web").expect("save").target {
        SaveTarget::Images(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].1, vec!["web:latest".to_string()]);
        }
        SaveTarget::Container(c) => panic!("extract web took container {}", c.id),
    }
    assert!(matches!(
        store.resolve_for_save("first").expect("save").target,
        SaveTarget::Container(_)
    ));

    // One kind looked for, the other matched: said so.
    let e = store
        .resolve("first", Want::Image)
        .expect_err("not an image");
    assert!(
        e.to_string()
            .starts_with("no image matches \"first\"; it matches container abc100000000 (first)"),
        "{e}"
    );
    let e = store
        .resolve(&i2[..6], Want::Container)
        .expect_err("not a container");
    assert!(
        e.to_string()
            .contains(&format!("it matches image {}", &i2[..12])),
        "{e}"
    );
    assert!(matches!(
        store.resolve("  ", either_c),
        Err(ResolveError::Empty { .. })
    ));
    // `sha256:` never names a container.
    assert!(store
        .resolve(&format!("sha256:{}", &a[..8]), Want::Container)
        .is_err());
}

/// Issue 15: a duplicate top-level "Repositories" key. The engine's Go decoder
/// (`json.NewDecoder(f).Decode(&store)`) decodes each occurrence into the same map: the
/// objects merge, a repository named again replaces its earlier tags. salvor does the same
/// and reports the duplicate, naming the file.
#[test]
fn duplicate_repositories_key_is_merged_like_go_and_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let i1 = add_image(d, "2024-01-01T00:00:00Z");
    let i2 = add_image(d, "2024-01-02T00:00:00Z");
    let i3 = add_image(d, "2024-01-03T00:00:00Z");
    repositories(
        d,
        &format!(
            r#"{{"Repositories":{{"one":{{"one:1":"sha256:{i1}"}},"two":{{"two:1":"sha256:{i2}"}}}},
               "Other":1e999,
               "Repositories":{{"two":{{"two:2":"sha256:{i2}"}},"three":{{"three:1":"sha256:{i3}","three:1":"sha256:{i1}"}}}}}}"#
        ),
    );
    let store = open(d);
    let tags = |hex: &str| {
        store
            .images
            .iter()
            .find(|i| i.id == format!("sha256:{hex}"))
            .map(|i| i.repo_tags.clone())
            .expect("image listed")
    };
    // Merged: one:1 from the first object, two replaced by the second's, three:1's last wins.
    assert_eq!(tags(&i1), vec!["one:1".to_string(), "three:1".to_string()]);
    assert_eq!(tags(&i2), vec!["two:2".to_string()]);
    assert!(tags(&i3).is_empty());
    let repos = d.join("image/overlay2/repositories.json");
    let about: Vec<&str> = store
        .problems
        .iter()
        .filter(|p| {
            d.join(&p.path) == repos || p.path.ends_with("image/overlay2/repositories.json")
        })
        .map(|p| p.what.as_str())
        .collect();
    assert!(
        about
            .iter()
            .any(|w| w.contains("\"Repositories\" key appears 2 times")),
        "{:?}",
        store.problems
    );
    assert!(
        about
            .iter()
            .any(|w| w.contains("repository \"two\" is listed more than once")),
        "{about:?}"
    );
    assert!(
        about
            .iter()
            .any(|w| w.contains("\"three:1\" is listed more than once")),
        "{about:?}"
    );

    // A later null drops every earlier tag, as in Go; a lower-case key is the same field.
    repositories(
        d,
        &format!(r#"{{"Repositories":{{"one":{{"one:1":"sha256:{i1}"}}}},"repositories":null}}"#),
    );
    let store = open(d);
    assert!(store.images.iter().all(|i| i.repo_tags.is_empty()));
    assert!(store
        .problems
        .iter()
        .any(|p| p.what.contains("appears 2 times")));
}

/// Issue 15: an image config holding `1e999` (out of range for serde_json) is listed,
/// marked unparseable with a Problem naming the config file, instead of vanishing while its
/// tag says "config is missing".
#[test]
fn unparseable_config_is_listed_and_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    data_root(d);
    let diff = format!("sha256:{}", "5".repeat(64));
    let cfgs = [
        // 1e999 in a field salvor does not model: the layers are still read.
        format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"StopTimeout":1e999}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        ),
        // … in one it does: listed without layers.
        r#"{"architecture":1e999,"rootfs":{"type":"layers","diff_ids":[]}}"#.to_string(),
    ];
    let mut ids = Vec::new();
    for c in &cfgs {
        let hex = salvor_docker::sha256_hex(c.as_bytes());
        let hex = hex.strip_prefix("sha256:").unwrap_or(&hex).to_string();
        write(
            &d.join("image/overlay2/imagedb/content/sha256").join(&hex),
            c.as_bytes(),
        );
        ids.push(hex);
    }
    repositories(
        d,
        &format!(
            r#"{{"Repositories":{{"bad":{{"bad:1":"sha256:{}"}}}}}}"#,
            ids[0]
        ),
    );
    let store = open(d);
    assert_eq!(store.images.len(), 2, "{:?}", store.problems);
    let img = store.find_image("bad:1").expect("the tag still resolves");
    assert_eq!(img.id, format!("sha256:{}", ids[0]));
    assert_eq!(img.diff_ids, vec![diff.clone()]);
    assert_eq!(img.created.as_deref(), Some("2024-01-01T00:00:00Z"));
    let e = img.config_error.as_deref().expect("marked");
    assert!(
        e.starts_with("config unparseable: ") && e.contains(&ids[0]),
        "{e}"
    );
    assert!(e.contains("number out of range"), "{e}");
    let other = store.find_image(&ids[1]).expect("listed");
    assert!(other.config_error.is_some() && other.diff_ids.is_empty());
    for id in &ids {
        assert!(
            store
                .problems
                .iter()
                .any(|p| p.path.ends_with(id) && p.what.starts_with("config unparseable: ")),
            "{:?}",
            store.problems
        );
    }
    assert!(
        !store
            .problems
            .iter()
            .any(|p| p.what.contains("config is missing")),
        "{:?}",
        store.problems
    );
}
