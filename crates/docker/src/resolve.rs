//! One resolver for the IMAGE and CONTAINER arguments of every command.
//!
//! Every command that names an image or a container (`inspect`, `history`, `verify`,
//! `extract`, `diff`, `export`, `logs`, `timeline --container` …) resolves its argument
//! here, so the same argument means the same thing everywhere. An argument may be a full
//! id, a unique id prefix, a container name (with or without the leading `/`), an image tag
//! (`busybox`, `busybox:1`, `docker.io/library/busybox:1`) or an image digest reference
//! (`busybox@sha256:…`); image ids may carry `sha256:`.
//!
//! # Precedence
//!
//! The matches are taken in three tiers, the first tier with any match deciding:
//!
//! 1. a **full id** (an image's 64 hex digits, with or without `sha256:`; a container's 64
//!    hex digits);
//! 2. an **exact name**: a container name, an image tag or digest reference (normalised as
//!    the engine does: `busybox` is `docker.io/library/busybox:latest`);
//! 3. a **unique id prefix** (hex digits; `sha256:` allowed for images).
//!
//! This is docker's own order within each kind: the engine's `GetContainer` tries the full
//! id, then the exact name, then the id prefix (its truncindex); its image lookup
//! (`GetImage`) takes a 64-hex string as an id (`ParseAnyReference`), then the reference
//! store (tags and digests), then an id prefix (`imageStore.Search`). So an exact name or
//! tag beats an id prefix, as in docker.
//!
//! Across kinds (commands that take either, [`Want::Either`]) docker has an order only for
//! exact matches: `docker inspect` without `--type` tries a container before an image ("if
//! the container and image have the same name, this will return container JSON"). salvor
//! follows it through [`Want::Either::prefer`] (a container for `inspect` and `export`, an
//! image for `extract`, which is `docker save` first), and says what else matched in
//! [`Resolved::also`] so the caller can warn. Where docker would silently take a container
//! for a *prefix* that also prefixes an image, salvor refuses: a prefix matching more than
//! one object, of one kind or of both, is [`ResolveError::Ambiguous`] listing every
//! candidate with its kind.
//!
//! A command that takes only one kind looks only at that kind; when nothing of it matches,
//! [`ResolveError::NotFound`] says which kind was looked for and what of the other kind the
//! argument would have matched (`no container matches "e"; it matches image e8bc956cc54c`).

use std::fmt;

use serde::Serialize;

use crate::reference;
use crate::{Container, Image, Store};

/// What an argument can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An image (`sha256:<hex>`, a tag or digest reference).
    Image,
    /// A container (64 hex digits or a name).
    Container,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Image => "image",
            Kind::Container => "container",
        })
    }
}

/// What a command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Images only (`history`, `verify`, `inspect --config`).
    Image,
    /// Containers only (`logs`, `diff`, `timeline --container`).
    Container,
    /// Either kind (`inspect`, `export`, `extract`). `prefer` decides only between exact
    /// matches (full id or name/tag) of both kinds, as docker's command would; prefixes
    /// matching both kinds are ambiguous whatever `prefer` says.
    Either {
        /// The kind that wins when both kinds match exactly.
        prefer: Kind,
    },
}

impl Want {
    fn accepts(self, k: Kind) -> bool {
        match self {
            Want::Image => k == Kind::Image,
            Want::Container => k == Kind::Container,
            Want::Either { .. } => true,
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Want::Image => "image",
            Want::Container => "container",
            Want::Either { .. } => "image or container",
        })
    }
}

/// How an argument matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// The full id.
    FullId,
    /// A container's name.
    Name,
    /// One of an image's tags.
    Tag,
    /// One of an image's digest references (`repo@sha256:…`).
    Digest,
    /// A prefix of the id.
    Prefix,
}

impl How {
    fn tier(self) -> u8 {
        match self {
            How::FullId => 0,
            How::Name | How::Tag | How::Digest => 1,
            How::Prefix => 2,
        }
    }
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            How::FullId => "full id",
            How::Name => "name",
            How::Tag => "tag",
            How::Digest => "digest",
            How::Prefix => "id prefix",
        })
    }
}

/// One object an argument matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Image or container.
    pub kind: Kind,
    /// `sha256:<hex>` for an image, 64 hex digits for a container.
    pub id: String,
    /// The container's name, or the image's tags (its digest references when it has no tag).
    pub names: Vec<String>,
    /// How the argument matched it.
    pub how: How,
}

impl Candidate {
    fn of_image(img: &Image, how: How) -> Candidate {
        let names = if img.repo_tags.is_empty() {
            img.repo_digests.clone()
        } else {
            img.repo_tags.clone()
        };
        Candidate {
            kind: Kind::Image,
            id: img.id.clone(),
            names,
            how,
        }
    }

    fn of_container(c: &Container, how: How) -> Candidate {
        Candidate {
            kind: Kind::Container,
            id: c.id.clone(),
            names: if c.name.is_empty() {
                vec![]
            } else {
                vec![c.name.clone()]
            },
            how,
        }
    }

    /// The id's first 12 hex digits (what `docker images` / `docker ps` show).
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }

    /// `image e8bc956cc54c (untagged)`, `container e61f1776d840 (c-exit0)`; with `full`, the
    /// whole id.
    pub fn describe(&self, full: bool) -> String {
        let id = if full {
            self.id.as_str()
        } else {
            self.short_id()
        };
        let names = if self.names.is_empty() {
            match self.kind {
                Kind::Image => "untagged".to_string(),
                Kind::Container => "no name".to_string(),
            }
        } else {
            self.names
                .iter()
                .map(|n| printable(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("{} {id} ({names})", self.kind)
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(true))
    }
}

/// Names and tags come from the evidence: control characters are shown escaped.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// At most this many candidates are spelled out in an error message (all are in the value).
const MAX_LISTED: usize = 20;

fn list(cands: &[Candidate], full: bool) -> String {
    let mut s: Vec<String> = cands
        .iter()
        .take(MAX_LISTED)
        .map(|c| format!("{} by {}", c.describe(full), c.how))
        .collect();
    if cands.len() > MAX_LISTED {
        s.push(format!("and {} more", cands.len() - MAX_LISTED));
    }
    s.join("; ")
}

fn plural(wanted: Want) -> &'static str {
    match wanted {
        Want::Image => "images",
        Want::Container => "containers",
        Want::Either { .. } => "images or containers",
    }
}

fn try_hint(wanted: Want) -> &'static str {
    match wanted {
        Want::Image => "try `salvor images`",
        Want::Container => "try `salvor containers`",
        Want::Either { .. } => "try `salvor images` and `salvor containers`",
    }
}

/// Why an argument names no single image or container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The argument is empty (or only white space).
    #[error("empty {wanted} name or id")]
    Empty {
        /// What the command wanted.
        wanted: Want,
    },
    /// Nothing of the kind(s) looked for matches; `other` is what of the other kind would
    /// have matched (for a command that takes only one kind).
    #[error("no {wanted} matches {query:?}{}", match other.is_empty() {
        true => format!(" ({})", try_hint(*wanted)),
        false => format!("; it matches {}", list(other, false)),
    })]
    NotFound {
        /// The argument as given.
        query: String,
        /// What the command wanted.
        wanted: Want,
        /// Objects of the kind not wanted that the argument matches (for the hint).
        other: Vec<Candidate>,
    },
    /// Several objects match at the deciding tier (a prefix of several ids, of one kind or
    /// both; or two exact matches docker has no order for). Every candidate is listed.
    #[error("{query:?} is ambiguous: it matches {} {}: {}; give more of the id, or a full id, name or tag", candidates.len(), plural(*wanted), list(candidates, true))]
    Ambiguous {
        /// The argument as given.
        query: String,
        /// What the command wanted.
        wanted: Want,
        /// Every object that matched at the deciding tier.
        candidates: Vec<Candidate>,
    },
}

/// What an argument resolved to.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// An image of the store.
    Image(&'a Image),
    /// A container (read on demand, so owned).
    Container(Box<Container>),
}

impl Target<'_> {
    /// Whether it is an image or a container.
    pub fn kind(&self) -> Kind {
        match self {
            Target::Image(_) => Kind::Image,
            Target::Container(_) => Kind::Container,
        }
    }
}

/// A resolved argument.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// What the argument names.
    pub target: Target<'a>,
    /// How the argument matched it.
    pub how: How,
    /// Other objects the argument matched but that lost to `target`: an exact match of the
    /// other kind (docker's order chose `target`), or objects it is only an id prefix of.
    /// Empty in the usual case; a caller warns when it is not.
    pub also: Vec<Candidate>,
}

impl Resolved<'_> {
    /// A one-line warning when the argument also matched something else.
    pub fn note(&self, query: &str) -> Option<String> {
        if self.also.is_empty() {
            return None;
        }
        let (kind, id) = match &self.target {
            Target::Image(i) => (Kind::Image, i.short_id().to_string()),
            Target::Container(c) => (Kind::Container, c.short_id().to_string()),
        };
        Some(format!(
            "{query:?} is the {} of {kind} {id}, which is used; it also matches {}",
            self.how,
            list(&self.also, false)
        ))
    }
}

/// The resolver over a list of images and a list of containers.
pub struct Resolver<'a, 'c> {
    /// The images to match against.
    pub images: &'a [Image],
    /// The containers to match against.
    pub containers: &'c [Container],
}

enum Hit<'a, 'c> {
    Image(&'a Image),
    Container(&'c Container),
}

impl<'a, 'c> Resolver<'a, 'c> {
    /// Every match of `query` among the objects of the kinds `want` accepts, with how it
    /// matched; one entry per object (its best match).
    fn matches(&self, q: &str, want: Want) -> Vec<(Hit<'a, 'c>, How)> {
        let mut out: Vec<(Hit<'a, 'c>, How)> = Vec::new();
        let lower = q.to_ascii_lowercase();
        let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        if want.accepts(Kind::Image) {
            let hex = lower.strip_prefix("sha256:").unwrap_or(&lower);
            let hex_ok = is_hex(hex) && hex.len() <= 64;
            let wanted_ref = reference::normalize(q);
            for img in self.images {
                let img_hex = img.id.strip_prefix("sha256:").unwrap_or(&img.id);
                let how = if hex_ok && hex.len() == 64 && img_hex == hex {
                    Some(How::FullId)
                } else if wanted_ref.as_deref().is_some_and(|w| {
                    img.repo_tags
                        .iter()
                        .any(|t| reference::normalize(t).as_deref() == Some(w))
                }) {
                    Some(How::Tag)
                } else if wanted_ref.as_deref().is_some_and(|w| {
                    img.repo_digests
                        .iter()
                        .any(|t| reference::normalize(t).as_deref() == Some(w))
                }) {
                    Some(How::Digest)
                } else if hex_ok && img_hex.starts_with(hex) {
                    Some(How::Prefix)
                } else {
                    None
                };
                if let Some(h) = how {
                    out.push((Hit::Image(img), h));
                }
            }
        }
        if want.accepts(Kind::Container) {
            let name = q.strip_prefix('/').unwrap_or(q);
            // Container ids never carry `sha256:`.
            let hex_ok = is_hex(&lower) && lower.len() <= 64;
            for c in self.containers {
                let how = if lower.len() == 64 && c.id == lower {
                    Some(How::FullId)
                } else if !name.is_empty() && c.name == name {
                    Some(How::Name)
                } else if hex_ok && c.id.starts_with(&lower) {
                    Some(How::Prefix)
                } else {
                    None
                };
                if let Some(h) = how {
                    out.push((Hit::Container(c), h));
                }
            }
        }
        out
    }

    /// Resolves `query` for a command that accepts `want` (see the module documentation
    /// for the precedence).
    pub fn resolve(&self, query: &str, want: Want) -> Result<Resolved<'a>, ResolveError> {
        let q = query.trim();
        if q.is_empty() {
            return Err(ResolveError::Empty { wanted: want });
        }
        let hits = self.matches(q, want);
        let cand = |h: &(Hit<'a, 'c>, How)| match h.0 {
            Hit::Image(i) => Candidate::of_image(i, h.1),
            Hit::Container(c) => Candidate::of_container(c, h.1),
        };
        let Some(best) = hits.iter().map(|h| h.1.tier()).min() else {
            let other = match want {
                Want::Image => self.matches(q, Want::Container),
                Want::Container => self.matches(q, Want::Image),
                Want::Either { .. } => Vec::new(),
            };
            return Err(ResolveError::NotFound {
                query: q.to_string(),
                wanted: want,
                other: other.iter().map(cand).collect(),
            });
        };
        let (top, rest): (Vec<_>, Vec<_>) = hits.into_iter().partition(|h| h.1.tier() == best);
        let chosen = if top.len() == 1 {
            Some(0)
        } else if best < How::Prefix.tier() {
            // Exact matches of both kinds: docker's order for the command, if exactly one
            // of the preferred kind.
            match want {
                Want::Either { prefer } => {
                    let of_pref: Vec<usize> = top
                        .iter()
                        .enumerate()
                        .filter(|(_, h)| {
                            matches!(
                                (prefer, &h.0),
                                (Kind::Image, Hit::Image(_)) | (Kind::Container, Hit::Container(_))
                            )
                        })
                        .map(|(i, _)| i)
                        .collect();
                    (of_pref.len() == 1).then(|| of_pref[0])
                }
                _ => None,
            }
        } else {
            None
        };
        let Some(i) = chosen else {
            return Err(ResolveError::Ambiguous {
                query: q.to_string(),
                wanted: want,
                candidates: top.iter().map(cand).collect(),
            });
        };
        let also: Vec<Candidate> = top
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, h)| cand(h))
            .chain(rest.iter().map(cand))
            .collect();
        let (hit, how) = &top[i];
        let target = match hit {
            Hit::Image(img) => Target::Image(img),
            Hit::Container(c) => Target::Container(Box::new((*c).clone())),
        };
        Ok(Resolved {
            target,
            how: *how,
            also,
        })
    }
}

impl Store {
    /// Resolves a command's IMAGE or CONTAINER argument (see [`mod@crate::resolve`]). The
    /// containers are read when `want` accepts them, or, for an image-only command, when no
    /// image matches (to say what the argument names instead). Containers that cannot be
    /// read are left out (`Store::containers` reports them).
    pub fn resolve(&self, query: &str, want: Want) -> Result<Resolved<'_>, ResolveError> {
        if want == Want::Image {
            let r = Resolver {
                images: &self.images,
                containers: &[],
            }
            .resolve(query, want);
            return match r {
                Err(ResolveError::NotFound { .. }) => {
                    let (all, _) = self.containers();
                    Resolver {
                        images: &self.images,
                        containers: &all,
                    }
                    .resolve(query, want)
                }
                other => other,
            };
        }
        let (all, _) = self.containers();
        Resolver {
            images: &self.images,
            containers: &all,
        }
        .resolve(query, want)
    }

    /// [`Store::resolve`] for a command that takes only an image.
    pub fn resolve_image(&self, query: &str) -> Result<&Image, ResolveError> {
        match self.resolve(query, Want::Image)?.target {
            Target::Image(i) => Ok(i),
            // Want::Image yields images only.
            Target::Container(_) => Err(not_found(query, Want::Image)),
        }
    }

    /// [`Store::resolve`] for a command that takes only a container.
    pub fn resolve_container(&self, query: &str) -> Result<Container, ResolveError> {
        match self.resolve(query, Want::Container)?.target {
            Target::Container(c) => Ok(*c),
            // Want::Container yields containers only.
            Target::Image(_) => Err(not_found(query, Want::Container)),
        }
    }
}

fn not_found(query: &str, wanted: Want) -> ResolveError {
    ResolveError::NotFound {
        query: query.trim().to_string(),
        wanted,
        other: Vec::new(),
    }
}

/// What `extract QUERY` (`docker save`, or an offline `docker commit` of a container) takes.
#[derive(Debug, Clone)]
pub enum SaveTarget<'a> {
    /// Images, each with the tags that go into the archive: a `repo:tag` gives that tag, a
    /// bare repository name every tagged image of that repository with its tags there, an
    /// id, prefix or digest no tag (as `docker save`).
    Images(Vec<(&'a Image, Vec<String>)>),
    /// A container, to be committed first.
    Container(Box<Container>),
}

/// A resolved `extract` argument.
#[derive(Debug, Clone)]
pub struct SaveResolved<'a> {
    /// What the argument names.
    pub target: SaveTarget<'a>,
    /// What else the argument matched (see [`Resolved::also`]).
    pub also: Vec<Candidate>,
}

impl SaveResolved<'_> {
    /// A one-line warning when the argument also matched something else.
    pub fn note(&self, query: &str) -> Option<String> {
        if self.also.is_empty() {
            return None;
        }
        let what = match &self.target {
            SaveTarget::Images(v) => v
                .iter()
                .map(|(i, _)| format!("image {}", i.short_id()))
                .collect::<Vec<_>>()
                .join(", "),
            SaveTarget::Container(c) => format!("container {}", c.short_id()),
        };
        Some(format!(
            "{query:?} is taken as {what}; it also matches {}",
            list(&self.also, false)
        ))
    }
}

/// The tagged images of repository `q` when `q` is a bare repository name (no tag, no
/// digest), with their tags in that repository; empty otherwise.
fn repository_images<'a>(images: &'a [Image], q: &str) -> Vec<(&'a Image, Vec<String>)> {
    let Some(r) = reference::Reference::parse(q).ok() else {
        return Vec::new();
    };
    let has_tag = q.rsplit('/').next().is_some_and(|last| last.contains(':')) && r.tag.is_some();
    if r.digest.is_some() || has_tag {
        return Vec::new();
    }
    let mut out = Vec::new();
    for img in images {
        let tags: Vec<String> = img
            .repo_tags
            .iter()
            .filter(|t| {
                reference::Reference::parse(t)
                    .ok()
                    .is_some_and(|tr| tr.domain == r.domain && tr.path == r.path)
            })
            .cloned()
            .collect();
        if !tags.is_empty() {
            out.push((img, tags));
        }
    }
    out
}

impl<'a> Resolver<'a, '_> {
    /// Resolves an `extract` argument the way `docker save` reads its names (moby's
    /// `tarexport` `parseNames`): a bare repository name brings every tag of it (this is the
    /// exact-name tier, before id prefixes), a `repo:tag` that tag, anything else goes
    /// through [`Resolver::resolve`] with `want` (`Want::Either { prefer: Kind::Image }` for
    /// `extract`: an image first, as `docker save`, a container otherwise).
    pub fn resolve_for_save(
        &self,
        query: &str,
        want: Want,
    ) -> Result<SaveResolved<'a>, ResolveError> {
        let q = query.trim();
        let full_hex = {
            let h = q.strip_prefix("sha256:").unwrap_or(q);
            h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
        };
        let repo = if full_hex || !want.accepts(Kind::Image) {
            Vec::new()
        } else {
            repository_images(self.images, q)
        };
        if !repo.is_empty() {
            let cand = |h: &(Hit<'a, '_>, How)| match h.0 {
                Hit::Image(i) => Candidate::of_image(i, h.1),
                Hit::Container(c) => Candidate::of_container(c, h.1),
            };
            let also = self
                .matches(q, want)
                .iter()
                .filter(|h| match h.0 {
                    Hit::Image(i) => !repo.iter().any(|(r, _)| r.id == i.id),
                    Hit::Container(_) => true,
                })
                .map(cand)
                .collect();
            return Ok(SaveResolved {
                target: SaveTarget::Images(repo),
                also,
            });
        }
        let r = self.resolve(q, want)?;
        let target = match r.target {
            Target::Image(img) => {
                let tags = if r.how == How::Tag {
                    let w = reference::normalize(q);
                    img.repo_tags
                        .iter()
                        .filter(|t| w.is_some() && reference::normalize(t) == w)
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                };
                SaveTarget::Images(vec![(img, tags)])
            }
            Target::Container(c) => SaveTarget::Container(c),
        };
        Ok(SaveResolved {
            target,
            also: r.also,
        })
    }
}

impl Store {
    /// What `extract QUERY` takes: images with their archive tags, or a container to
    /// commit (see [`Resolver::resolve_for_save`]).
    pub fn resolve_for_save(&self, query: &str) -> Result<SaveResolved<'_>, ResolveError> {
        let (all, _) = self.containers();
        Resolver {
            images: &self.images,
            containers: &all,
        }
        .resolve_for_save(
            query,
            Want::Either {
                prefer: Kind::Image,
            },
        )
    }
}
