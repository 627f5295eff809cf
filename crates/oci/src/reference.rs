//! Image references the way the engine normalises them (`busybox` →
//! `docker.io/library/busybox:latest`), and back to the familiar form `docker images` shows.
//!
//! Follows `distribution/reference` (`ParseNormalizedNamed`, `TagNameOnly`, `FamiliarString`):
//! the first path component is a registry domain when it contains `.` or `:`, is
//! `localhost`, or has an upper-case letter; otherwise the domain is `docker.io`, and a
//! single-component path gets `library/`. `index.docker.io` is `docker.io`. Path components
//! are `[a-z0-9]` runs joined by `.`, `_`, `__` or `-` (checked loosely: lower-case
//! alphanumerics and separators, starting and ending alphanumeric). A tag is
//! `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a digest must be a valid sha256 [`Digest`].

use crate::Digest;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// Longer than the 4096 bytes salvor accepts (the first 64 characters are kept).
    #[error("{0:?}…: not a reference (longer than 4096 bytes)")]
    TooLong(String),
    /// The part after `@` is not a sha256 digest.
    #[error("{0:?}: invalid digest")]
    Digest(String),
    /// The part after the last `:` of the last component is not a tag.
    #[error("{reference:?}: invalid tag {tag:?}")]
    Tag {
        /// The whole reference.
        reference: String,
        /// The rejected tag.
        tag: String,
    },
    /// The repository name breaks the grammar.
    #[error("{0:?}: invalid repository name")]
    Name(String),
}

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `example.com:5000`, `localhost` …
    pub domain: String,
    /// `library/busybox`, `team/app` …
    pub path: String,
    /// The tag, when one was given.
    pub tag: Option<String>,
    /// The digest, when one was given (`name@sha256:…`).
    pub digest: Option<Digest>,
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.last()
            .is_some_and(|l| l.is_ascii_lowercase() || l.is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

impl Reference {
    /// Parses and normalises a reference (`ParseNormalizedNamed`).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() > 4096 {
            return Err(ReferenceError::TooLong(s.chars().take(64).collect()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(Digest::parse(d).map_err(|_| ReferenceError::Digest(s.to_string()))?),
            ),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: s.to_string(),
                    tag: t.to_string(),
                });
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.bytes().any(|c| c.is_ascii_uppercase()) =>
            {
                (first, remainder)
            }
            _ => ("docker.io", name),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io"
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        if domain.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::Name(s.to_string()));
        }
        Ok(Reference {
            domain: domain.to_string(),
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `docker.io/library/busybox` (`Named.Name()`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Fully qualified, with `:latest` added when neither tag nor digest is given
    /// (`TagNameOnly(ref).String()`).
    pub fn normalized(&self) -> String {
        let mut s = self.name();
        match (&self.tag, &self.digest) {
            (Some(t), _) => {
                s.push(':');
                s.push_str(t);
            }
            (None, None) => s.push_str(":latest"),
            _ => {}
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// The repository in familiar form (`busybox`, `team/app`, `library/a/b`,
    /// `example.com/x`): `library/` is dropped only before a single component.
    pub fn familiar_name(&self) -> String {
        if self.domain == "docker.io" {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// `busybox:latest`, `busybox@sha256:…` (`FamiliarString`; no tag is added).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

/// Normalised form of a reference string, or `None` when it is not one.
pub fn normalize(s: &str) -> Option<String> {
    Reference::parse(s).ok().map(|r| r.normalized())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        normalize(s)
    }

    #[test]
    fn normalisation_matches_the_engine() {
        assert_eq!(n("busybox").unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(
            n("library/busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            n("docker.io/library/busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            n("index.docker.io/team/app").unwrap(),
            "docker.io/team/app:latest"
        );
        assert_eq!(n("localhost:5000/a/b:c").unwrap(), "localhost:5000/a/b:c");
        assert_eq!(n("example.com/x").unwrap(), "example.com/x:latest");
        assert_eq!(
            n("example.com:5000/x/y:1").unwrap(),
            "example.com:5000/x/y:1"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            n(&format!("busybox@{d}")).unwrap(),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            n(&format!("busybox:1@{d}")).unwrap(),
            format!("docker.io/library/busybox:1@{d}")
        );
        // Upper case: a domain when it is the first of several components, else invalid.
        assert_eq!(n("Foo/bar").unwrap(), "Foo/bar:latest");
        for bad in [
            "Upper",
            "Busybox",
            "a//b",
            "busybox@sha256:zz",
            "",
            "a:",
            "a:.x",
            "-a",
            "a-",
            "a/b:c/d",
        ] {
            assert!(n(bad).is_none(), "{bad}");
        }
        assert!(n(&format!("busybox@sha256:{}", "A".repeat(64))).is_none());
    }

    #[test]
    fn familiar_forms() {
        let r = |s| Reference::parse(s).unwrap();
        assert_eq!(
            r("docker.io/library/busybox:latest").familiar(),
            "busybox:latest"
        );
        assert_eq!(r("example.com/x:1").familiar(), "example.com/x:1");
        assert_eq!(r("library/a/b:1").familiar(), "library/a/b:1");
        assert_eq!(
            r("salvor-export-test/legacy:v1").familiar_name(),
            "salvor-export-test/legacy"
        );
        assert_eq!(
            r("salvor-export-test/legacy:v1").name(),
            "docker.io/salvor-export-test/legacy"
        );
        assert_eq!(r("busybox").familiar(), "busybox");
    }

    #[test]
    fn errors_name_the_part() {
        assert!(matches!(
            Reference::parse("a:-x"),
            Err(ReferenceError::Tag { .. })
        ));
        assert!(matches!(
            Reference::parse("a@b"),
            Err(ReferenceError::Digest(_))
        ));
        assert!(matches!(
            Reference::parse("A"),
            Err(ReferenceError::Name(_))
        ));
        assert!(matches!(Reference::parse(""), Err(ReferenceError::Name(_))));
        assert!(matches!(
            Reference::parse(&"a".repeat(4097)),
            Err(ReferenceError::TooLong(_))
        ));
        assert_eq!(
            Reference::parse("a:-x").unwrap_err().to_string(),
            "\"a:-x\": invalid tag \"-x\""
        );
    }
}
