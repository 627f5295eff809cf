//! `repo:tag` strings as `docker save` records them, over `salvor_oci::Reference`.

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

/// Parse a tag reference like docker's `ParseNormalizedNamed` + `TagNameOnly`
/// (`salvor_oci::Reference`). Digest references (`@sha256:…`) are rejected: the engine does
/// not record them in `RepoTags`.
pub(crate) fn parse(s: &str) -> Result<TagRef, String> {
    if s.contains('@') {
        return Err(format!("{s:?}: digest references cannot be tags"));
    }
    let r = salvor_oci::Reference::parse(s).map_err(|e| e.to_string())?;
    Ok(TagRef {
        full_name: r.name(),
        familiar_name: r.familiar_name(),
        tag: r.tag.unwrap_or_else(|| "latest".to_string()),
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
