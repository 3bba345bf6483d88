//! Image patterns: which images a rule applies to.
//!
//! A pattern is an image name without tag or digest, segment by segment: `*` matches any
//! characters within one segment (never `/`), and a segment that is exactly `**` matches any
//! number of segments, none included. Names are normalised as image references are
//! (`nginx` is `docker.io/library/nginx`, `index.docker.io` is `docker.io`), and so are
//! patterns: `myorg/*` is `docker.io/myorg/*`. A pattern whose first segment is a wildcard
//! matches in any registry.

use std::fmt;

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 512;

/// A parsed image pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePattern {
    source: String,
    segments: Vec<String>,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty, or an empty segment (`a//b`, a trailing `/`).
    #[error("{0:?}: empty path segment")]
    EmptySegment(String),
    /// A tag or digest: rules match repositories, whatever the tag.
    #[error("{0:?}: patterns name repositories; remove the tag or digest (rules apply whatever the tag)")]
    TagOrDigest(String),
    /// `**` inside a segment, or characters an image name cannot have.
    #[error("{0:?}: {1}")]
    Invalid(String, &'static str),
}

impl ImagePattern {
    /// Parses and normalises a pattern.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        if s.len() > MAX_PATTERN_LEN {
            return Err(PatternError::Invalid(s.chars().take(40).collect(), "longer than 512 characters"));
        }
        if s.is_empty() || s.split('/').any(str::is_empty) {
            return Err(PatternError::EmptySegment(s.to_owned()));
        }
        let mut segments: Vec<String> = s.split('/').map(str::to_owned).collect();
        if s.contains('@') || segments.iter().skip(1).any(|seg| seg.contains(':')) {
            return Err(PatternError::TagOrDigest(s.to_owned()));
        }
        for seg in &segments {
            if seg.contains("**") && seg != "**" {
                return Err(PatternError::Invalid(s.to_owned(), "`**` must be a whole path segment"));
            }
            if !seg.chars().all(|c| c.is_ascii_alphanumeric() || "._-*:".contains(c)) {
                return Err(PatternError::Invalid(
                    s.to_owned(),
                    "only letters, digits, '.', '_', '-', ':' (registry port), '*' and '/' may appear",
                ));
            }
        }
        // Normalise as references are (crate::reference::RegistryRef::parse): one segment is
        // an official Docker Hub image; a first segment that is not a host is Docker Hub's;
        // `index.docker.io` is `docker.io`, where a single path segment is under `library/`.
        let first = &segments[0];
        let is_host = segments.len() > 1
            && (first.contains(['.', ':', '*']) || first == "localhost" || first.to_lowercase() != *first);
        if segments.len() == 1 && segments[0] != "**" {
            segments.insert(0, "library".into());
            segments.insert(0, "docker.io".into());
        } else if !is_host && segments[0] != "**" {
            segments.insert(0, "docker.io".into());
        }
        segments[0] = canonical_host(&segments[0]);
        if segments[0] == "index.docker.io" {
            segments[0] = "docker.io".into();
        }
        if segments[0] == "docker.io" && segments.len() == 2 && segments[1] != "**" {
            segments.insert(1, "library".into());
        }
        Ok(ImagePattern { source: s.to_owned(), segments })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `name` (`registry/repository`, normalised) matches. The registry host is
    /// compared without case and without the default HTTPS port, as it is reached.
    pub fn matches(&self, name: &str) -> bool {
        let (host, rest) = name.split_once('/').unwrap_or((name, ""));
        let host = canonical_host(host);
        let parts: Vec<&str> =
            std::iter::once(host.as_str()).chain(rest.split('/').filter(|_| !rest.is_empty())).collect();
        match_segments(&self.segments, &parts)
    }
}

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A registry host as it is reached: lower case, without the default HTTPS port.
fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.strip_suffix(":443") {
        Some(h) => h.to_owned(),
        None => host,
    }
}

/// Segment matching with `**`: dynamic programming over (pattern, name) suffixes, so that
/// many `**` cost O(pattern × name), never exponential time.
fn match_segments(pattern: &[String], name: &[&str]) -> bool {
    let (p, n) = (pattern.len(), name.len());
    // ok[j]: pattern[i..] matches name[j..], for the current i (from the end).
    let mut ok = vec![false; n + 1];
    ok[n] = true;
    for i in (0..p).rev() {
        let mut next = vec![false; n + 1];
        if pattern[i] == "**" {
            // Zero segments (ok[j]) or one more (next[j + 1]).
            for j in (0..=n).rev() {
                next[j] = ok[j] || (j < n && next[j + 1]);
            }
        } else {
            for j in 0..n {
                next[j] = ok[j + 1] && match_segment(&pattern[i], name[j]);
            }
        }
        ok = next;
    }
    ok[0]
}

/// `*` within one segment (classic two-pointer glob, linear-ish, no backtracking blow-up).
fn match_segment(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, name: &str) -> bool {
        ImagePattern::parse(p).unwrap().matches(name)
    }

    #[test]
    fn stars_stay_in_their_segment_and_double_stars_span() {
        assert!(m("registry.example.com/prod/*", "registry.example.com/prod/app"));
        assert!(!m("registry.example.com/prod/*", "registry.example.com/prod/team/app"));
        assert!(m("registry.example.com/prod/**", "registry.example.com/prod/team/app"));
        assert!(m("registry.example.com/**", "registry.example.com/a"));
        assert!(!m("registry.example.com/prod/**", "registry.example.com/production/app"));
        assert!(m("registry.example.com/prod/app-*", "registry.example.com/prod/app-web"));
        assert!(!m("registry.example.com/prod/app-*", "registry.example.com/prod/web"));
        assert!(m("**", "localhost:5000/x/y"));
        assert!(m("*/team/**", "ghcr.io/team/a/b"));
        assert!(m("localhost:*/**", "localhost:5000/x"));
    }

    #[test]
    fn names_and_patterns_normalise_like_references() {
        assert!(m("nginx", "docker.io/library/nginx"));
        assert!(m("myorg/*", "docker.io/myorg/app"));
        assert!(m("index.docker.io/myorg/*", "docker.io/myorg/app"));
        assert!(!m("nginx", "docker.io/myorg/nginx"));
    }

    // see: issue 11
    #[test]
    fn patterns_name_what_references_name() {
        // Written without wildcards, a pattern matches the name of the reference written the
        // same way, however it is spelt.
        for r in [
            "nginx",
            "docker.io/nginx",
            "index.docker.io/nginx",
            "docker.io/library/nginx",
            "myorg/app",
            "docker.io/myorg/app",
            "localhost/app",
            "localhost:5000/a/b",
            "registry.example.com/prod/app",
            "Registry.Example.com/prod/app",
            "registry.example.com:443/prod/app",
        ] {
            let name = crate::reference::RegistryRef::parse(r).unwrap().name();
            assert!(m(r, &name), "{r} does not match {name}");
        }
        // A host in another case or with the default port is the same registry, for the rule
        // that names it; another port is not.
        assert!(m("registry.example.com/prod/**", "Registry.Example.COM/prod/app"));
        assert!(m("registry.example.com/prod/**", "registry.example.com:443/prod/app"));
        assert!(!m("registry.example.com/prod/**", "registry.example.com:5000/prod/app"));
        // One segment with a wildcard is official Docker Hub images, not a registry.
        assert!(m("nginx*", "docker.io/library/nginx-unprivileged"));
        assert!(m("docker.io/*", "docker.io/library/busybox"));
        assert!(!m("nginx*", "nginx.example.com/app"));
    }

    #[test]
    fn refused_patterns() {
        assert!(matches!(ImagePattern::parse("r.example/app:1"), Err(PatternError::TagOrDigest(_))));
        assert!(matches!(ImagePattern::parse("r.example/app@sha256:ab"), Err(PatternError::TagOrDigest(_))));
        assert!(matches!(ImagePattern::parse("r.example//app"), Err(PatternError::EmptySegment(_))));
        assert!(matches!(ImagePattern::parse(""), Err(PatternError::EmptySegment(_))));
        assert!(ImagePattern::parse("r.example/a**").is_err());
        assert!(ImagePattern::parse("r.example/a b").is_err());
        assert!(ImagePattern::parse("localhost:5000/app").is_ok());
    }

    #[test]
    fn many_stars_do_not_blow_up() {
        let p = format!("r.example/{}", "*a".repeat(40));
        assert!(!m(&p, &format!("r.example/{}", "a".repeat(200) + "b")));
        let p = format!("r.example/{}/x", ["**"; 10].join("/"));
        assert!(!m(&p, &format!("r.example/{}", ["a"; 30].join("/"))));
    }
}
