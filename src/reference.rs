//! Image references: `[REGISTRY/]REPO[:TAG][@DIGEST]` and `oci:PATH[:TAG|@DIGEST]`.
//!
//! Parsing follows the grammar of the distribution project's reference package (the one
//! docker, podman, skopeo and cosign all use), including its normalisation: a missing
//! registry means `docker.io`, a single-component Docker Hub name gets `library/`.

use std::fmt;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};

const DEFAULT_REGISTRY: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;

/// What part of a repository a reference selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A tag, resolved through the registry or layout.
    Tag(String),
    /// A digest, which needs no resolution.
    Digest(Digest),
    /// `repo:tag@digest`: the digest wins, the tag is kept for display.
    TagAndDigest(String, Digest),
}

impl Selector {
    /// The digest, when the reference carries one.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Selector::Tag(_) => None,
            Selector::Digest(d) | Selector::TagAndDigest(_, d) => Some(d),
        }
    }

    /// The tag, when the reference carries one.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Selector::Tag(t) | Selector::TagAndDigest(t, _) => Some(t),
            Selector::Digest(_) => None,
        }
    }
}

/// A reference to an image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    registry: String,
    repository: String,
    selector: Selector,
}

/// A reference to an image in a local OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    path: PathBuf,
    selector: Option<Selector>,
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A registry image.
    Registry(RegistryRef),
    /// An image in a local OCI layout (`oci:PATH…`).
    Layout(LayoutRef),
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The string is empty.
    #[error("empty image reference")]
    Empty,
    /// Longer than 255 characters of name.
    #[error("repository name longer than {MAX_NAME_LEN} characters")]
    NameTooLong,
    /// The repository path has a character or shape the grammar forbids.
    #[error(
        "invalid repository name {0:?}: components are lower-case letters, digits and single separators (. _ __ -)"
    )]
    InvalidRepository(String),
    /// The registry host is not a host[:port].
    #[error("invalid registry host {0:?}")]
    InvalidRegistry(String),
    /// The tag breaks the tag grammar.
    #[error("invalid tag {0:?}: up to 128 of [A-Za-z0-9_.-], not starting with . or -")]
    InvalidTag(String),
    /// The digest part is malformed.
    #[error("invalid digest in reference: {0}")]
    InvalidDigest(#[from] DigestError),
    /// An `oci:` path holding `:` (containers/image ends the path at the first `:`).
    #[error("oci:{0}: a layout path may not contain ':' (skopeo and podman end the path at the first ':' and would read another layout); rename or link the directory")]
    LayoutPathColon(String),
    /// `oci:` with no path.
    #[error("oci: reference has no layout path")]
    EmptyLayoutPath,
}

fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// One path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_valid_registry(host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        // [ipv6]:port
        match rest.split_once(']') {
            Some((ip, tail)) => {
                if ip.is_empty() || !ip.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
                    return false;
                }
                (None, tail.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match h {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    let l = label.as_bytes();
                    !l.is_empty()
                        && l[0].is_ascii_alphanumeric()
                        && l[l.len() - 1].is_ascii_alphanumeric()
                        && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                })
        }
    }
}

impl RegistryRef {
    /// Parses a Docker-style reference, normalising it.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !is_valid_tag(tag) {
                    return Err(ReferenceError::InvalidTag(tag.to_owned()));
                }
                (&rest[..last_slash + i], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first =>
            {
                (first.to_owned(), remainder.to_owned())
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned()),
        };
        if registry == "index.docker.io" {
            registry = DEFAULT_REGISTRY.to_owned();
        }
        if !is_valid_registry(&registry) {
            return Err(ReferenceError::InvalidRegistry(registry));
        }
        if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        // The limit applies to the normalised name (`docker.io/library/…`), as in distribution.
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong);
        }
        if !repository.split('/').all(is_valid_component) {
            return Err(ReferenceError::InvalidRepository(repository));
        }
        let selector = match (tag, digest) {
            (Some(t), Some(d)) => Selector::TagAndDigest(t, d),
            (None, Some(d)) => Selector::Digest(d),
            (Some(t), None) => Selector::Tag(t),
            (None, None) => Selector::Tag(DEFAULT_TAG.to_owned()),
        };
        Ok(RegistryRef { registry, repository, selector })
    }

    /// Builds a reference from parts that are already known to be valid.
    pub fn from_parts(registry: &str, repository: &str, selector: Selector) -> Result<Self, ReferenceError> {
        let s = format!("{registry}/{repository}");
        let mut r = RegistryRef::parse(&s)?;
        r.selector = selector;
        Ok(r)
    }

    /// The registry host (normalised, e.g. `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (e.g. `library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag or digest this reference selects.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository, selecting `digest`.
    pub fn with_digest(&self, digest: Digest) -> Self {
        RegistryRef { selector: Selector::Digest(digest), ..self.clone() }
    }

    /// The same repository, selecting `tag`.
    pub fn with_tag(&self, tag: &str) -> Self {
        RegistryRef { selector: Selector::Tag(tag.to_owned()), ..self.clone() }
    }

    /// Another repository in the same registry, or elsewhere, parsed from `repo`
    /// (`[REGISTRY/]REPO`), keeping no tag or digest.
    pub fn repository_from(repo: &str) -> Result<Self, ReferenceError> {
        let r = RegistryRef::parse(repo)?;
        Ok(RegistryRef { selector: Selector::Tag(DEFAULT_TAG.to_owned()), ..r })
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match &self.selector {
            Selector::Tag(t) => write!(f, ":{t}"),
            Selector::Digest(d) => write!(f, "@{d}"),
            Selector::TagAndDigest(t, d) => write!(f, ":{t}@{d}"),
        }
    }
}

impl LayoutRef {
    /// Parses what follows `oci:` as containers/image (skopeo, podman) does: the path ends at
    /// the first `:`, and what follows is the tag, so a path holding `:` is refused rather than
    /// read as a different layout than those tools read. `PATH@DIGEST` (sigil's: containers/image
    /// has no digest form) selects a manifest by digest.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let (path, selector) = match s.rsplit_once('@') {
            Some((p, d)) if d.starts_with("sha256:") || d.starts_with("sha512:") => {
                (p, Some(Selector::Digest(Digest::parse(d)?)))
            }
            _ => match s.split_once(':') {
                Some((p, tag)) => {
                    if tag.contains(':') || tag.contains('/') {
                        return Err(ReferenceError::LayoutPathColon(s.to_owned()));
                    }
                    if !is_valid_tag(tag) {
                        return Err(ReferenceError::InvalidTag(tag.to_owned()));
                    }
                    (p, Some(Selector::Tag(tag.to_owned())))
                }
                None => (s, None),
            },
        };
        if path.contains(':') {
            return Err(ReferenceError::LayoutPathColon(s.to_owned()));
        }
        if path.is_empty() {
            return Err(ReferenceError::EmptyLayoutPath);
        }
        Ok(LayoutRef { path: PathBuf::from(path), selector })
    }

    /// The layout directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The tag or digest, if any was given.
    pub fn selector(&self) -> Option<&Selector> {
        self.selector.as_ref()
    }

    /// The same layout, selecting `digest`.
    pub fn with_digest(&self, digest: Digest) -> Self {
        LayoutRef { path: self.path.clone(), selector: Some(Selector::Digest(digest)) }
    }
}

impl fmt::Display for LayoutRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci:{}", self.path.display())?;
        match &self.selector {
            None => Ok(()),
            Some(Selector::Tag(t)) => write!(f, ":{t}"),
            Some(Selector::Digest(d)) => write!(f, "@{d}"),
            Some(Selector::TagAndDigest(t, d)) => write!(f, ":{t}@{d}"),
        }
    }
}

impl ImageRef {
    /// Parses either form.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        match s.strip_prefix("oci:") {
            Some(rest) => Ok(ImageRef::Layout(LayoutRef::parse(rest)?)),
            None => Ok(ImageRef::Registry(RegistryRef::parse(s)?)),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Registry(r) => r.fmt(f),
            ImageRef::Layout(l) => l.fmt(f),
        }
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Digest {
        Digest::sha256(b"x")
    }

    #[test]
    fn docker_hub_normalisation() {
        let r = RegistryRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = RegistryRef::parse("index.docker.io/foo/bar:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/foo/bar:1");
        let r = RegistryRef::parse("foo/bar").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "foo/bar");
    }

    #[test]
    fn registry_with_port_and_digest() {
        let s = format!("127.0.0.1:5000/a/b:v1@{}", d());
        let r = RegistryRef::parse(&s).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.selector(), &Selector::TagAndDigest("v1".into(), d()));
        assert_eq!(r.to_string(), s);
        let r = RegistryRef::parse("localhost/x").unwrap();
        assert_eq!(r.registry(), "localhost");
        let r = RegistryRef::parse("localhost:5000/x").unwrap();
        assert_eq!(r.name(), "localhost:5000/x");
    }

    #[test]
    fn rejects_bad_references() {
        assert!(RegistryRef::parse("").is_err());
        assert!(RegistryRef::parse("foo/Bar").is_err());
        assert!(RegistryRef::parse("foo:-bad").is_err());
        assert!(RegistryRef::parse("foo@sha256:zz").is_err());
        assert!(RegistryRef::parse("a//b").is_err());
        assert!(RegistryRef::parse("a/b-").is_err());
        assert!(RegistryRef::parse(&"a".repeat(300)).is_err());
        assert!(RegistryRef::parse("host:99999999/a").is_err());
    }

    /// Found by the `reference` fuzz target: a 250-character Docker Hub name was accepted,
    /// but its normalised form (`docker.io/library/…`) was over the limit and did not parse.
    #[test]
    fn regression_fuzz_name_length_after_normalisation() {
        let name = "a".repeat(250);
        assert_eq!(RegistryRef::parse(&name), Err(ReferenceError::NameTooLong));
        let ok = "a".repeat(255 - "docker.io/library/".len());
        let r = RegistryRef::parse(&ok).unwrap();
        assert_eq!(RegistryRef::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn component_grammar() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1"] {
            assert!(is_valid_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a.", "a..b", "a___b", "a_-b", "A"] {
            assert!(!is_valid_component(bad), "{bad}");
        }
    }

    #[test]
    fn layout_references() {
        let r = ImageRef::parse("oci:./dir/img:v1").unwrap();
        let ImageRef::Layout(l) = r else { panic!("not a layout") };
        assert_eq!(l.path(), std::path::Path::new("./dir/img"));
        assert_eq!(l.selector(), Some(&Selector::Tag("v1".into())));
        let r = LayoutRef::parse(&format!("/tmp/x@{}", d())).unwrap();
        assert_eq!(r.selector(), Some(&Selector::Digest(d())));
        let r = LayoutRef::parse("/tmp/x").unwrap();
        assert_eq!(r.selector(), None);
        assert_eq!(LayoutRef::parse(""), Err(ReferenceError::EmptyLayoutPath));
    }

    /// `oci:/a:b/c:t` is the layout `/a` with the name `b/c:t` to skopeo; sigil used to read
    /// the layout `/a:b/c` with the tag `t`. Now refused, as containers/image refuses it.
    // see: issue 8 §2
    #[test]
    fn layout_path_with_colon_is_refused_as_containers_image_refuses_it() {
        for s in ["/a:b/c:t", "/a:b/c", "dir:with:colons", &format!("/a:b@{}", d())] {
            assert!(
                matches!(LayoutRef::parse(s), Err(ReferenceError::LayoutPathColon(_))),
                "{s}: {:?}",
                LayoutRef::parse(s)
            );
        }
        let r = LayoutRef::parse("./dir/img:v1.2_x").unwrap();
        assert_eq!(
            (r.path(), r.selector()),
            (std::path::Path::new("./dir/img"), Some(&Selector::Tag("v1.2_x".into())))
        );
    }
}
