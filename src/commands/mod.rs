//! One module per sub-command; `run` opens the evidence and dispatches.

use std::sync::Arc;

use anyhow::{bail, Context};
use salvor_store::Store;

use crate::{Cli, Command};

mod containers;
mod extract;
mod images;
mod inspect;
mod verify;

/// Exit code for "the command ran and found problems in the evidence".
pub const EXIT_FINDINGS: u8 = 1;

pub fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    let Some(root) = &cli.root else {
        bail!("no evidence given: pass --root PATH (or set SALVOR_ROOT) naming a Docker data-root, a host root directory, or an archive of either");
    };
    let source = salvor_source::open_evidence(root)
        .with_context(|| format!("cannot open evidence {}", root.display()))?;
    let store = Store::open(Arc::from(source))?;
    if !cli.quiet && !store.problems.is_empty() {
        eprintln!(
            "salvor: note: {} piece(s) of metadata could not be read or do not add up; `salvor info` lists them",
            store.problems.len()
        );
    }
    Ok(store)
}

pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let store = open_store(cli)?;
    match &cli.command {
        Command::Info { json } => images::info(&store, *json),
        Command::Images { json, no_trunc } => images::images(&store, *json, *no_trunc),
        Command::Tree { json } => images::tree(&store, *json),
        Command::Inspect { image, config } => match store.find_container(image) {
            Ok(c) if !*config => containers::inspect_container(&store, &c),
            _ => inspect::inspect(&store, image, *config),
        },
        Command::History {
            image,
            json,
            no_trunc,
        } => inspect::history(&store, image, *json, *no_trunc),
        Command::Verify { images, json } => verify::verify(&store, images, *json, cli.quiet),
        Command::Extract {
            images,
            output,
            format,
            dir,
            force,
            json,
        } => extract::extract(
            &store, images, output, *format, *dir, *force, *json, cli.quiet,
        ),
        Command::Containers { json, no_trunc } => containers::containers(&store, *json, *no_trunc),
        Command::Logs {
            container,
            timestamps,
            since,
            until,
            tail,
        } => containers::logs_cmd(
            &store,
            container,
            *timestamps,
            since.as_deref(),
            until.as_deref(),
            tail.as_deref(),
        ),
        Command::Volumes { json } => containers::volumes(&store, *json),
    }
}
