//! `diff` (like `docker diff`) and `export` (like `docker export`: the flattened
//! filesystem); the layer stacks and the offline `docker commit` behind `extract CONTAINER`
//! are `salvor_core::rootfs`.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use salvor_core::rootfs::{container_names, container_stack, image_stack, volume_mounts};
use salvor_docker::Store;
use salvor_whiteout::TarNames;

use crate::output::{print_json, printable};

/// `salvor diff CONTAINER`.
pub fn diff(store: &Store, query: &str, json: bool) -> anyhow::Result<u8> {
    let c = crate::commands::target::container(store, "diff", query)?;
    let changes = salvor_core::rootfs::changes(store, &c)?;
    print_changes(&changes, json)?;
    Ok(0)
}

/// `docker diff`'s lines (`A /path`), or their JSON.
pub fn print_changes(changes: &[salvor_whiteout::Change], json: bool) -> anyhow::Result<()> {
    if json {
        let v: Vec<_> = changes
            .iter()
            .map(|ch| {
                serde_json::json!({
                    "kind": ch.kind.letter().to_string(),
                    "path": String::from_utf8_lossy(&ch.path),
                    "path_hex": std::str::from_utf8(&ch.path).is_err().then(|| hex::encode(&ch.path)),
                })
            })
            .collect();
        print_json(&v)?;
    } else {
        let mut out = io::stdout().lock();
        for ch in changes {
            writeln!(
                out,
                "{} {}",
                ch.kind.letter(),
                printable(&String::from_utf8_lossy(&ch.path))
            )?;
        }
    }
    Ok(())
}

/// Names for tar headers from passwd/group files; `None` when neither is given (the
/// engine's own rule then).
pub fn tar_names(passwd: Option<&Path>, group: Option<&Path>) -> anyhow::Result<Option<TarNames>> {
    if passwd.is_none() && group.is_none() {
        return Ok(None);
    }
    salvor_core::rootfs::tar_names(passwd, group).map(Some)
}

/// How `export` fills uname/gname.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamesArg {
    /// As the engine that wrote the evidence: empty for Engine >= 23, the container's own
    /// for Docker <= 22 (`salvor info` shows the version and how it was found).
    Auto,
    /// Empty names, as Docker Engine >= 23 writes.
    None,
    /// From the container's own /etc/passwd and /etc/group, as Docker 20.10 wrote.
    Container,
}

/// `salvor export CONTAINER|IMAGE -o rootfs.tar`.
pub fn export(
    store: &Store,
    query: &str,
    output: &Path,
    names: NamesArg,
    with_volumes: bool,
    quiet: bool,
    outputs: &salvor_sink::OutputPolicy,
) -> anyhow::Result<u8> {
    // Refused before any work.
    outputs.check_file(output)?;
    // As `docker export`, a container first (exact matches); an image too.
    let want = salvor_docker::Want::Either {
        prefer: salvor_docker::Kind::Container,
    };
    let (layers, what, container) =
        match crate::commands::target::resolve(store, "export", query, want)?.target {
            salvor_docker::Target::Container(c) => {
                let c = *c;
                let st = container_stack(store, &c)?;
                let mut all = vec![st.upper];
                all.extend(st.lowers);
                (
                    all,
                    format!(
                        "container {} ({})",
                        &c.id[..12],
                        c.name.trim_start_matches('/')
                    ),
                    Some(c),
                )
            }
            salvor_docker::Target::Image(img) => (
                image_stack(store, img)?,
                format!("image {}", img.short_id()),
                None,
            ),
        };
    let chosen =
        salvor_core::rootfs::header_rules(store, salvor_core::rootfs::TarPurpose::Export(&layers));
    let rules = match names {
        NamesArg::Auto => chosen.rules.clone(),
        NamesArg::None => salvor_core::rootfs::with_names(&chosen.rules, TarNames::empty()),
        NamesArg::Container => {
            salvor_core::rootfs::with_names(&chosen.rules, container_names(&layers))
        }
    };
    if !quiet && (chosen.uncertain || names != NamesArg::Auto) {
        eprintln!(
            "salvor: note: export headers as {}{}",
            printable(&chosen.how),
            match names {
                NamesArg::Auto => "",
                NamesArg::None => "; names: none (--names none)",
                NamesArg::Container => "; names: the container's (--names container)",
            }
        );
    }
    let mut mounts = Vec::new();
    if with_volumes {
        let c = container
            .as_ref()
            .context("--with-volumes needs a container")?;
        let (inside, outside) = volume_mounts(store, c);
        mounts = inside;
        for m in outside {
            if !quiet {
                eprintln!(
                    "salvor: note: {} mount {} → {} is not inside the evidence; not exported",
                    m.kind,
                    printable(&m.source),
                    printable(&m.destination)
                );
            }
        }
    }
    let write = |w: &mut dyn Write| -> anyhow::Result<u64> {
        salvor_core::rootfs::write_flattened(&layers, &mounts, &rules, w)
    };
    let mut sink = outputs.file(output)?;
    let res = write(&mut sink);
    // A write error is the output's (a full disk), whatever the tar writer made of it.
    if let Some(e) = sink.write_error() {
        return Err(e.into());
    }
    let bytes = res?;
    sink.commit()?;
    if !quiet {
        eprintln!(
            "wrote {} ({} bytes): the flattened filesystem of {what}",
            output.display(),
            bytes
        );
    }
    Ok(0)
}
