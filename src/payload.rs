//! cosign's "simple signing" payload: what a container image signature signs.
//!
//! The bytes written are the ones cosign writes (Go `encoding/json` of its struct: fields in
//! declaration order, map keys sorted, `optional` is `null` when there are no annotations),
//! so that a payload made here and one made by cosign for the same inputs are identical.
//! Reading is strict about the fields that carry meaning and bounded in size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The `critical.type` value of a container image signature.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// Largest payload accepted for parsing.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Annotations (`optional`): string keys, string values.
pub type Annotations = BTreeMap<String, String>;

#[derive(Serialize, Deserialize)]
struct Wire {
    critical: WireCritical,
    optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Serialize, Deserialize)]
struct WireCritical {
    identity: WireIdentity,
    image: WireImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct WireIdentity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct WireImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// A parsed simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: Digest,
    /// `optional`, as JSON values (cosign allows any JSON there).
    pub optional: BTreeMap<String, serde_json::Value>,
}

/// Why bytes are not a simple-signing payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// More than [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {0} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON of the expected shape.
    #[error("payload is not simple-signing JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `critical.type` is not a container image signature.
    #[error("payload type is {0:?}, not {COSIGN_SIGNATURE_TYPE:?}")]
    WrongType(String),
    /// Two object keys that a case-insensitive reader (Go's) takes for one.
    #[error("payload is ambiguous: {0}")]
    AmbiguousKeys(#[from] crate::json::AmbiguousKeys),
    /// `docker-manifest-digest` is not a digest.
    #[error("payload docker-manifest-digest is malformed: {0}")]
    Digest(#[from] crate::digest::DigestError),
}

impl SimpleSigning {
    /// A payload for `digest` with identity `docker_reference` and string annotations.
    pub fn new(docker_reference: String, manifest_digest: Digest, annotations: &Annotations) -> Self {
        let optional = annotations.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        SimpleSigning { docker_reference, manifest_digest, optional }
    }

    /// The exact bytes cosign would write for this payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            critical: WireCritical {
                identity: WireIdentity { docker_reference: self.docker_reference.clone() },
                image: WireImage { docker_manifest_digest: self.manifest_digest.to_string() },
                kind: COSIGN_SIGNATURE_TYPE.to_owned(),
            },
            optional: if self.optional.is_empty() { None } else { Some(self.optional.clone()) },
        };
        // Serialising plain structs of strings and JSON values cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        go_html_escape(json)
    }

    /// Parses payload bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge(bytes.len()));
        }
        let wire: Wire = serde_json::from_slice(bytes)?;
        // cosign and skopeo read this with Go's case-insensitive matching: one meaning only.
        crate::json::reject_ambiguous_keys(bytes)?;
        if wire.critical.kind != COSIGN_SIGNATURE_TYPE {
            return Err(PayloadError::WrongType(wire.critical.kind));
        }
        let manifest_digest = Digest::parse(&wire.critical.image.docker_manifest_digest)?;
        Ok(SimpleSigning {
            docker_reference: wire.critical.identity.docker_reference,
            manifest_digest,
            optional: wire.optional.unwrap_or_default(),
        })
    }

    /// True when every `(key, value)` in `wanted` is present in `optional` as that string
    /// (a non-string value never matches: `-a` values are strings).
    pub fn has_annotations(&self, wanted: &Annotations) -> bool {
        wanted.iter().all(|(k, v)| match self.optional.get(k) {
            Some(serde_json::Value::String(s)) => s == v,
            _ => false,
        })
    }

    /// The payload as a JSON value (for output).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.to_bytes()).unwrap_or(serde_json::Value::Null)
    }
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; do the same so
/// payload bytes match cosign's. These characters only ever occur inside JSON strings.
fn go_html_escape(json: Vec<u8>) -> Vec<u8> {
    if !json.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2)) {
        return json;
    }
    let s = String::from_utf8_lossy(&json);
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    #[test]
    fn bytes_match_cosign_without_annotations() {
        let p = SimpleSigning::new("127.0.0.1:5000/a/b:v1".into(), Digest::parse(DIGEST).unwrap(), &Annotations::new());
        let expected = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/a/b:v1\"}},\"image\":{{\"docker-manifest-digest\":\"{DIGEST}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
        );
        assert_eq!(String::from_utf8(p.to_bytes()).unwrap(), expected);
        assert_eq!(SimpleSigning::parse(expected.as_bytes()).unwrap(), p);
    }

    #[test]
    fn annotations_sorted_and_escaped() {
        let mut a = Annotations::new();
        a.insert("z".into(), "1".into());
        a.insert("a".into(), "<&>".into());
        let p = SimpleSigning::new("r".into(), Digest::parse(DIGEST).unwrap(), &a);
        let s = String::from_utf8(p.to_bytes()).unwrap();
        assert!(s.ends_with(r#""optional":{"a":"\u003c\u0026\u003e","z":"1"}}"#), "{s}");
        let back = SimpleSigning::parse(s.as_bytes()).unwrap();
        assert!(back.has_annotations(&a));
        let mut other = Annotations::new();
        other.insert("a".into(), "x".into());
        assert!(!back.has_annotations(&other));
    }

    #[test]
    fn rejects_wrong_type_and_garbage() {
        let bad = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"other"}},"optional":null}}"#
        );
        assert!(matches!(SimpleSigning::parse(bad.as_bytes()), Err(PayloadError::WrongType(_))));
        assert!(matches!(SimpleSigning::parse(b"not json"), Err(PayloadError::Json(_))));
        assert!(matches!(SimpleSigning::parse(b"{}"), Err(PayloadError::Json(_))));
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(SimpleSigning::parse(&big), Err(PayloadError::TooLarge(_))));
    }
}
