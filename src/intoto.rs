//! in-toto statements (v1, and v0.1 when reading).
//!
//! The `in-toto` crate has no Statement v1 (see docs/dependencies.md), so the statement is
//! modelled here: `_type`, `subject[{name, digest}]`, `predicateType`, `predicate`. The
//! predicate types themselves (names, URIs, checks, summaries) are [`crate::predicates`]'.
//! Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// in-toto Statement v0.1 (what older cosign writes); accepted when reading.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// Largest predicate file read.
pub const MAX_PREDICATE_BYTES: usize = 64 << 20;

/// A statement subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Name (the repository); cosign 3's image signatures leave it out.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Algorithm → hex digest.
    pub digest: BTreeMap<String, String>,
    /// Annotations (cosign 3 puts a signature's `-a` annotations here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// An in-toto statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Statement type URI.
    #[serde(rename = "_type")]
    pub kind: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// Predicate type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Not JSON of the statement shape.
    #[error("not an in-toto statement: {0}")]
    Malformed(String),
    /// Unknown `_type`.
    #[error("unknown in-toto statement type {0:?}")]
    UnknownType(String),
}

impl Statement {
    /// A v1 statement about the image `digest` in `repository`.
    pub fn for_image(repository: &str, digest: &Digest, predicate_type: &str, predicate: serde_json::Value) -> Self {
        Statement {
            kind: STATEMENT_V1.into(),
            subject: vec![Subject {
                name: repository.into(),
                digest: [(digest.algorithm().name().to_owned(), digest.hex().to_owned())].into_iter().collect(),
                annotations: None,
            }],
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// cosign 3's image signature: a v1 statement about `digest` (no name), the signer's
    /// annotations on the subject, predicate type [`crate::predicates::COSIGN_SIGN_V1`] and an empty predicate.
    pub fn image_signature(digest: &Digest, annotations: &crate::payload::Annotations) -> Self {
        let annotations = annotations.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        Statement {
            kind: STATEMENT_V1.into(),
            subject: vec![Subject {
                name: String::new(),
                digest: [(digest.algorithm().name().to_owned(), digest.hex().to_owned())].into_iter().collect(),
                annotations: Some(annotations),
            }],
            predicate_type: crate::predicates::COSIGN_SIGN_V1.into(),
            predicate: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The annotations of the subject naming `digest`, as strings (others are not matched).
    pub fn subject_annotations(&self, digest: &Digest) -> crate::payload::Annotations {
        self.subject
            .iter()
            .filter(|s| s.digest.get(digest.algorithm().name()).is_some_and(|h| h == digest.hex()))
            .filter_map(|s| s.annotations.as_ref())
            .flat_map(|a| a.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))))
            .collect()
    }

    /// Parses a statement, accepting only known statement types.
    pub fn parse(bytes: &[u8]) -> Result<Self, StatementError> {
        let s: Statement = serde_json::from_slice(bytes).map_err(|e| StatementError::Malformed(e.to_string()))?;
        // Go verifiers match keys case-insensitively (last wins): refuse what they could read
        // differently, anywhere in the statement.
        crate::json::reject_ambiguous_keys(bytes).map_err(|e| StatementError::Malformed(e.to_string()))?;
        if s.kind != STATEMENT_V1 && s.kind != STATEMENT_V01 {
            return Err(StatementError::UnknownType(s.kind));
        }
        Ok(s)
    }

    /// True when a subject carries `digest`.
    pub fn is_about(&self, digest: &Digest) -> bool {
        self.subject.iter().any(|s| s.digest.get(digest.algorithm().name()).is_some_and(|h| h == digest.hex()))
    }

    /// Serialised.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_round_trip_and_reject_unknown_types() {
        let d = Digest::sha256(b"x");
        let s = Statement::for_image("reg/app", &d, "https://openvex.dev/ns", serde_json::json!({}));
        let back = Statement::parse(&s.to_bytes()).unwrap();
        assert!(back.is_about(&d));
        assert!(!back.is_about(&Digest::sha256(b"y")));
        let other = String::from_utf8(s.to_bytes()).unwrap().replace(STATEMENT_V1, "https://example.com/Statement/v9");
        assert!(matches!(Statement::parse(other.as_bytes()), Err(StatementError::UnknownType(_))));
    }
}
