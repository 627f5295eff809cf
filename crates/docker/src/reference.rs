//! Image references the way the engine normalises them (`busybox` →
//! `docker.io/library/busybox:latest`), and back to the familiar form `docker images` shows.

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `example.com:5000`, `localhost` …
    pub domain: String,
    /// `library/busybox`, `team/app` …
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference; `None` when it cannot be one (empty parts, bad characters).
    pub fn parse(s: &str) -> Option<Reference> {
        let s = s.trim();
        if s.is_empty() || s.len() > 4096 {
            return None;
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:")?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                (r, Some(d.to_ascii_lowercase()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            if t.is_empty()
                || t.len() > 128
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            {
                return None;
            }
        }
        if name.is_empty() {
            return None;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io".to_string()
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty()
            || path.split('/').any(|c| c.is_empty())
            || !path
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        {
            return None;
        }
        Some(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Fully qualified, with `:latest` added when neither tag nor digest is given.
    pub fn normalized(&self) -> String {
        let mut s = format!("{}/{}", self.domain, self.path);
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
            s.push_str(d);
        }
        s
    }

    /// The repository in familiar form (`busybox`, `team/app`, `example.com/x`).
    pub fn familiar_name(&self) -> String {
        if self.domain == "docker.io" {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// `busybox:latest`, `busybox@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Normalised form of a reference string, or `None` when it is not one.
pub fn normalize(s: &str) -> Option<String> {
    Reference::parse(s).map(|r| r.normalized())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn normalisation_matches_the_engine() {
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("library/busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            normalize("docker.io/library/busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            normalize("index.docker.io/team/app").unwrap(),
            "docker.io/team/app:latest"
        );
        assert_eq!(
            normalize("localhost:5000/a/b:c").unwrap(),
            "localhost:5000/a/b:c"
        );
        assert_eq!(normalize("example.com/x").unwrap(), "example.com/x:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize(&format!("busybox@{d}")).unwrap(),
            format!("docker.io/library/busybox@{d}")
        );
        assert!(normalize("Upper").is_none());
        assert!(normalize("a//b").is_none());
        assert!(normalize("busybox@sha256:zz").is_none());
        assert_eq!(
            Reference::parse("docker.io/library/busybox:latest")
                .unwrap()
                .familiar(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("example.com/x:1").unwrap().familiar(),
            "example.com/x:1"
        );
    }
}
