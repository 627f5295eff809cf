//! The IMAGE / CONTAINER argument of a command, through the one resolver
//! (`salvor_docker::resolve`): errors name the command, and an argument that also matched
//! something else gets a warning on stderr.

use anyhow::Context;
use salvor_docker::{Container, Image, Resolved, Store, Target, Want};

use crate::output::printable;

/// Resolves `query` for command `cmd` accepting `want`.
pub fn resolve<'s>(
    store: &'s Store,
    cmd: &str,
    query: &str,
    want: Want,
) -> anyhow::Result<Resolved<'s>> {
    let r = store
        .resolve(query, want)
        .with_context(|| cmd.to_string())?;
    if let Some(n) = r.note(query) {
        eprintln!("salvor: warning: {cmd}: {}", printable(&n));
    }
    Ok(r)
}

/// An image argument of an image-only command.
pub fn image<'s>(store: &'s Store, cmd: &str, query: &str) -> anyhow::Result<&'s Image> {
    match resolve(store, cmd, query, Want::Image)?.target {
        Target::Image(i) => Ok(i),
        Target::Container(_) => anyhow::bail!("{cmd}: no image matches {query:?}"),
    }
}

/// A container argument of a container-only command.
pub fn container(store: &Store, cmd: &str, query: &str) -> anyhow::Result<Container> {
    match resolve(store, cmd, query, Want::Container)?.target {
        Target::Container(c) => Ok(*c),
        Target::Image(_) => anyhow::bail!("{cmd}: no container matches {query:?}"),
    }
}
