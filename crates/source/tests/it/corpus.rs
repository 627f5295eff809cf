//! The real docker-explorer corpus (`overlay2.v2.tgz`: a 2018 `/var/lib/docker` with
//! overlay2, GNU tar format, gzip) read as a TarSource. The archive has no device
//! nodes and no xattrs (checked with `tar --xattrs -tvzf`), so the overlay assertions
//! are that none are invented; it does have 780 hardlinks (busybox) and 17 symlinks.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use salvor_source::{open_evidence, resolve_in_root, FileKind, Source, TarSource, Timestamp};
use sha2::{Digest, Sha256};

fn corpus() -> PathBuf {
    let shared = std::env::var_os("SALVOR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let p = shared.join("corpus/docker-explorer/overlay2.v2.tgz");
    assert!(
        p.is_file(),
        "corpus archive missing: {} (set SALVOR_SHARED)",
        p.display()
    );
    p
}

const LAYER: &str =
    "docker/overlay2/92fd3b3e7d6101bb701743c9518c45b0d036b898c8a3d7cae84e1a06e6829b53";

fn walk(src: &dyn Source, dir: &Path, kinds: &mut BTreeMap<FileKind, usize>, xattrs: &mut usize) {
    for e in src.read_dir(dir).unwrap() {
        let p = dir.join(&e.name);
        *kinds.entry(e.kind).or_default() += 1;
        *xattrs += src.xattrs(&p).unwrap().len();
        if e.kind == FileKind::Dir {
            walk(src, &p, kinds, xattrs);
        }
    }
}

#[test]
fn overlay2_corpus() {
    let path = corpus();
    let src = TarSource::open(&path).unwrap();
    assert!(src.warnings().is_empty(), "{:?}", src.warnings());
    assert_eq!(src.len(), 1094 + 1, "1094 members plus the implicit root");

    let top: Vec<String> = src
        .read_dir(Path::new(""))
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .collect();
    assert_eq!(top, ["docker"]);
    let docker: Vec<String> = src
        .read_dir(Path::new("docker"))
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .collect();
    assert_eq!(
        docker,
        [
            "containers",
            "image",
            "network",
            "overlay",
            "overlay2",
            "plugins",
            "swarm",
            "tmp",
            "trust",
            "volumes"
        ]
    );
    let md = src.metadata(Path::new("docker")).unwrap();
    assert_eq!(
        (md.kind, md.mode, md.uid, md.gid),
        (FileKind::Dir, 0o711, 338377, 89939)
    );

    // Every name, by kind: 126 files + 780 hardlinks, 171 directories, 17 symlinks;
    // no whiteouts (char devices) and no opaque (or any) xattrs in this archive.
    let mut kinds = BTreeMap::new();
    let mut xattrs = 0;
    walk(&src, Path::new(""), &mut kinds, &mut xattrs);
    assert_eq!(
        kinds,
        BTreeMap::from([
            (FileKind::Regular, 906),
            (FileKind::Dir, 171),
            (FileKind::Symlink, 17)
        ])
    );
    assert_eq!(xattrs, 0);
    let layers: Vec<String> = src
        .read_dir(Path::new("docker/overlay2"))
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .filter(|n| n != "l")
        .collect();
    assert_eq!(layers.len(), 11);
    for l in &layers {
        let diff = PathBuf::from("docker/overlay2").join(l).join("diff");
        if src.exists(&diff) {
            let mut k = BTreeMap::new();
            let mut x = 0;
            walk(&src, &diff, &mut k, &mut x);
            assert!(
                !k.contains_key(&FileKind::CharDevice),
                "{l}: no whiteouts in this archive"
            );
            assert_eq!(src.xattr(&diff, "trusted.overlay.opaque").unwrap(), None);
        }
    }

    // busybox: one regular member and 390 hardlinks to it.
    let mm = src
        .metadata(Path::new(&format!("{LAYER}/merged/bin/makemime")))
        .unwrap();
    assert_eq!(
        (mm.kind, mm.mode, mm.size, mm.nlink),
        (FileKind::Regular, 0o755, 1067344, 391)
    );
    assert_eq!(
        mm.mtime,
        Timestamp {
            sec: 1522787423,
            nsec: 0
        }
    );
    let ls = src
        .metadata(Path::new(&format!("{LAYER}/merged/bin/busybox")))
        .unwrap();
    assert_eq!(ls, mm);
    let mut data = Vec::new();
    src.open(Path::new(&format!("{LAYER}/merged/bin/busybox")))
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&data)),
        "3d499f27d0e2763c00c583b3e4bd980fe6ba097b9a013a551f9f61bd6a076f90"
    );

    // Small files, the overlay2 `l/` short links, and resolution through them.
    assert_eq!(
        src.read_limited(Path::new(&format!("{LAYER}/diff/tets")), 100)
            .unwrap(),
        b"test\n"
    );
    assert_eq!(
        src.read_limited(Path::new(&format!("{LAYER}/lower")), 100)
            .unwrap(),
        b"l/OTFSLJCXWCECIG6FVNGRTWUZ7D:l/CH5A7XWSBP2DUPV7V47B7DOOGY"
    );
    let short = Path::new("docker/overlay2/l/3HHBUVXCSID4WZAGXRMAGL3LB7");
    assert_eq!(
        src.read_link(short).unwrap(),
        PathBuf::from("../92fd3b3e7d6101bb701743c9518c45b0d036b898c8a3d7cae84e1a06e6829b53/diff")
    );
    assert!(
        src.metadata(&short.join("tets")).is_err(),
        "symlinks are never followed by metadata"
    );
    let resolved = resolve_in_root(
        &src,
        Path::new("docker/overlay2"),
        Path::new("l/3HHBUVXCSID4WZAGXRMAGL3LB7/tets"),
        true,
    )
    .unwrap();
    assert_eq!(resolved, PathBuf::from(format!("{LAYER}/diff/tets")));
    let mtab = src
        .read_link(Path::new(&format!("{LAYER}/merged/etc/mtab")))
        .unwrap();
    assert_eq!(mtab, PathBuf::from("/proc/mounts"));

    // open_evidence picks the tar reader for the file.
    let ev = open_evidence(&path).unwrap();
    assert!(ev.describe().contains("gzip"));
    assert!(ev.exists(Path::new(&format!("{LAYER}/merged/etc/shadow"))));
}
