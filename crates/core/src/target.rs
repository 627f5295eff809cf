//! The IMAGE / CONTAINER argument of a command, through the one resolver
//! (`salvor_docker::resolve`): errors name the command. An argument that also matched
//! something else carries a note ([`salvor_docker::Resolved::note`]) the caller shows.

use anyhow::Context;
use salvor_docker::{Container, Image, Resolved, Store, Target, Want};

/// Resolves `query` for command `cmd` accepting `want`.
pub fn resolve<'s>(
    store: &'s Store,
    cmd: &str,
    query: &str,
    want: Want,
) -> anyhow::Result<Resolved<'s>> {
    store.resolve(query, want).with_context(|| cmd.to_string())
}

/// An image out of a resolved image-only argument.
pub fn image<'s>(r: Resolved<'s>, cmd: &str, query: &str) -> anyhow::Result<&'s Image> {
    match r.target {
        Target::Image(i) => Ok(i),
        Target::Container(_) => anyhow::bail!("{cmd}: no image matches {query:?}"),
    }
}

/// A container out of a resolved container-only argument.
pub fn container(r: Resolved<'_>, cmd: &str, query: &str) -> anyhow::Result<Container> {
    match r.target {
        Target::Container(c) => Ok(*c),
        Target::Image(_) => anyhow::bail!("{cmd}: no container matches {query:?}"),
    }
}
