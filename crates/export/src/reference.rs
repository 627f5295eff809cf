//! Minimal `distribution/reference` normalisation for `repo:tag` strings.

/// A parsed, normalised `name:tag` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TagRef {
    /// `docker.io/library/busybox`
    pub(crate) full_name: String,
    /// `busybox`
    pub(crate) familiar_name: String,
    /// `latest`
    pub(crate) tag: String,
}

impl TagRef {
    /// `docker.io/library/busybox:latest` (`ref.String()`).
    pub(crate) fn full(&self) -> String {
        format!("{}:{}", self.full_name, self.tag)
    }
    /// `busybox:latest` (`reference.FamiliarString`).
    pub(crate) fn familiar(&self) -> String {
        format!("{}:{}", self.familiar_name, self.tag)
    }
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
    // [a-z0-9]+ separated by '.', '_', '__' or '-'+ ; checked loosely.
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
        && b.last()
            .is_some_and(|l| l.is_ascii_lowercase() || l.is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// Parse a tag reference like docker's `ParseNormalizedNamed` + `TagNameOnly`.
/// Digest references (`@sha256:…`) are rejected: the engine does not record
/// them in `RepoTags`.
pub(crate) fn parse(s: &str) -> Result<TagRef, String> {
    if s.contains('@') {
        return Err(format!("{s:?}: digest references cannot be tags"));
    }
    let last_slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match s[last_slash..].rfind(':') {
        Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
        None => (s, "latest"),
    };
    if !valid_tag(tag) {
        return Err(format!("{s:?}: invalid tag {tag:?}"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if domain.is_empty() || !path.split('/').all(valid_path_component) {
        return Err(format!("{s:?}: invalid repository name"));
    }
    let familiar_name = if domain == "docker.io" {
        match path.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => path.clone(),
        }
    } else {
        format!("{domain}/{path}")
    };
    Ok(TagRef {
        full_name: format!("{domain}/{path}"),
        familiar_name,
        tag: tag.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn normalises() {
        let r = parse("busybox").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = parse("example.com:5000/x/y:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.full(), "example.com:5000/x/y:1");
        assert_eq!(r.familiar(), "example.com:5000/x/y:1");
        assert_eq!(r.tag, "1");
        let r = parse("docker.io/library/alpine:3").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.familiar(), "alpine:3");
        let r = parse("salvor-export-test/legacy:v1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.full(), "docker.io/salvor-export-test/legacy:v1");
        assert_eq!(r.familiar_name, "salvor-export-test/legacy");
        assert!(parse("Busybox").is_err());
        assert!(parse("busybox@sha256:00").is_err());
    }
}
