//! The IMAGE / CONTAINER argument of a command, through the one resolver
//! (`salvor_core::target`): an argument that also matched something else gets a warning on
//! stderr.

use salvor_docker::{Container, Image, Resolved, Store, Want};

use crate::output::printable;

/// Resolves `query` for command `cmd` accepting `want`; says the resolver's note.
pub fn resolve<'s>(
    store: &'s Store,
    cmd: &str,
    query: &str,
    want: Want,
) -> anyhow::Result<Resolved<'s>> {
    let r = salvor_core::target::resolve(store, cmd, query, want)?;
    if let Some(n) = r.note(query) {
        eprintln!("salvor: warning: {cmd}: {}", printable(&n));
    }
    Ok(r)
}

/// An image argument of an image-only command.
pub fn image<'s>(store: &'s Store, cmd: &str, query: &str) -> anyhow::Result<&'s Image> {
    salvor_core::target::image(resolve(store, cmd, query, Want::Image)?, cmd, query)
}

/// A container argument of a container-only command.
pub fn container(store: &Store, cmd: &str, query: &str) -> anyhow::Result<Container> {
    salvor_core::target::container(resolve(store, cmd, query, Want::Container)?, cmd, query)
}
