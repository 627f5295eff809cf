//! `repositories.json`: the tags and digests pointing at each image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use salvor_source::Source;

use crate::digest::Digest;
use crate::jsondup::{Node, RepositoriesFile};
use crate::reference::Reference;
use crate::{Store, MAX_JSON_BYTES};

/// Tags (`repo:tag`) and digests (`repo@sha256:…`) by image id, in familiar form.
pub(super) type Tags = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// Reads `image_root/repositories.json`; returns the tags by image id and the file's path.
pub(super) fn load(store: &mut Store, src: &dyn Source, image_root: &Path) -> (Tags, PathBuf) {
    // Tags.
    let mut tags: Tags = BTreeMap::new();
    let repos_path = image_root.join("repositories.json");
    match src.read_limited(&repos_path, MAX_JSON_BYTES) {
        Ok(bytes) => match serde_json::from_slice::<RepositoriesFile>(&bytes) {
            Ok(file) => {
                for (_repo, refs) in merge_repositories(store, &repos_path, file) {
                    for (r, id) in refs {
                        let id = match &id {
                            Node::String(s) => Digest::parse_loose(s).ok(),
                            _ => None,
                        };
                        let (Some(id), Some(parsed)) = (id, Reference::parse(&r).ok()) else {
                            store.problem(&repos_path, format!("unreadable entry {r:?}"));
                            continue;
                        };
                        let e = tags.entry(id.as_str().to_string()).or_default();
                        if parsed.digest.is_some() {
                            e.1.push(parsed.familiar());
                        } else {
                            e.0.push(parsed.familiar());
                        }
                    }
                }
            }
            Err(e) => store.problem(&repos_path, format!("not valid JSON: {e}")),
        },
        Err(e) if e.is_not_found() => {}
        Err(e) => store.problem(&repos_path, salvor_model::error_chain(&e)),
    }
    (tags, repos_path)
}

/// The repositories of `repositories.json` as the engine's Go decoder builds them: every
/// top-level key selecting the `Repositories` field (case-insensitively) is decoded in
/// order into the same map, so duplicate keys *merge*: a repository named again replaces
/// its earlier tags, a later `null` empties the map (Go sets it to nil). Inside a
/// repository the last of duplicate tags wins. Each of these is reported as a [`Problem`]
/// naming the file, since it never happens in a file the engine wrote.
///
/// [`Problem`]: crate::Problem
fn merge_repositories(
    store: &mut Store,
    path: &Path,
    file: RepositoriesFile,
) -> BTreeMap<String, BTreeMap<String, Node>> {
    let n = file.occurrences.len();
    if n == 0 {
        store.problem(path, "no \"Repositories\" object");
    } else if n > 1 {
        let keys: Vec<String> = file
            .occurrences
            .iter()
            .map(|(k, _)| format!("{k:?}"))
            .collect();
        store.problem(
            path,
            format!(
                "the top-level \"Repositories\" key appears {n} times ({}); read as the engine's Go decoder reads it: the objects are merged in order, a repository named again replacing its earlier tags, a null dropping all earlier ones",
                keys.join(", ")
            ),
        );
    }
    let mut repos: BTreeMap<String, BTreeMap<String, Node>> = BTreeMap::new();
    for (key, value) in file.occurrences {
        match value {
            Node::Null => repos.clear(),
            Node::Object(entries) => {
                for (repo, val) in entries {
                    let tags = match val {
                        Node::Object(t) => t,
                        Node::Null => Vec::new(),
                        other => {
                            store.problem(
                                path,
                                format!(
                                    "repository {repo:?} is {}, not an object; ignored",
                                    other.kind()
                                ),
                            );
                            continue;
                        }
                    };
                    let mut refs = BTreeMap::new();
                    for (t, id) in tags {
                        if refs.insert(t.clone(), id).is_some() {
                            store.problem(
                                path,
                                format!("{t:?} is listed more than once in repository {repo:?}; the engine keeps the last"),
                            );
                        }
                    }
                    if repos.insert(repo.clone(), refs).is_some() {
                        store.problem(
                            path,
                            format!("repository {repo:?} is listed more than once; the engine keeps the last"),
                        );
                    }
                }
            }
            other => store.problem(
                path,
                format!(
                    "{key:?} is {}, not an object; ignored (the engine cannot read this file)",
                    other.kind()
                ),
            ),
        }
    }
    repos
}
