//! in-toto statements (v1) and the predicate types sigil attests.
//!
//! The `in-toto` crate has no Statement v1 (see docs/dependencies.md), so the statement is
//! modelled here: `_type`, `subject[{name, digest}]`, `predicateType`, `predicate`. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// in-toto Statement v0.1 (what older cosign writes); accepted when reading.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// cosign 3's predicate type for an image signature: a statement about the image digest with
/// an empty predicate, in a Sigstore bundle.
pub const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";
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

/// Why a statement or predicate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// Not JSON of the statement shape.
    #[error("not an in-toto statement: {0}")]
    Malformed(String),
    /// Unknown `_type`.
    #[error("unknown in-toto statement type {0:?}")]
    UnknownType(String),
    /// The predicate is not valid for its type; names the field.
    #[error("predicate is not valid {kind}: {field}: {reason}")]
    Predicate {
        /// The predicate type.
        kind: String,
        /// The field at fault (JSON path).
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// How `attest` turns the predicate file into the statement's predicate (as cosign does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredicateInput {
    /// The file is a JSON object, used as is.
    Json,
    /// SPDX tag-value text (`--type spdx`): the predicate is the text as a JSON string.
    SpdxText,
    /// `--type custom`: cosign's generic predicate `{"Data": <the file as text>, "Timestamp": <RFC 3339>}`.
    CosignCustom,
}

/// A predicate type as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredicateType {
    /// The predicate type URI written into the statement.
    pub uri: String,
    /// How the predicate file is read.
    pub input: PredicateInput,
}

/// The URI of a predicate type name (`slsaprovenance1`, `spdxjson`, …); a URI stays as is.
pub fn predicate_type_uri(name: &str) -> Option<String> {
    predicate_type(name).map(|t| t.uri)
}

/// The predicate type for a name (`slsaprovenance1`, `spdx`, `custom`, …) or a URI.
pub fn predicate_type(name: &str) -> Option<PredicateType> {
    let (uri, input) = match name {
        "slsaprovenance1" => ("https://slsa.dev/provenance/v1", PredicateInput::Json),
        "slsaprovenance" | "slsaprovenance02" => ("https://slsa.dev/provenance/v0.2", PredicateInput::Json),
        "spdx" => (PREDICATE_SPDX, PredicateInput::SpdxText),
        "spdxjson" => (PREDICATE_SPDX, PredicateInput::Json),
        "cyclonedx" => ("https://cyclonedx.org/bom", PredicateInput::Json),
        "vuln" => ("https://cosign.sigstore.dev/attestation/vuln/v1", PredicateInput::Json),
        "openvex" => ("https://openvex.dev/ns", PredicateInput::Json),
        "link" => ("https://in-toto.io/Link/v1", PredicateInput::Json),
        "custom" | PREDICATE_COSIGN_CUSTOM => (PREDICATE_COSIGN_CUSTOM, PredicateInput::CosignCustom),
        other if other.contains(':') => (other, PredicateInput::Json),
        _ => return None,
    };
    Some(PredicateType { uri: uri.to_owned(), input })
}

/// SPDX documents (JSON or tag-value).
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";
/// cosign's generic predicate.
pub const PREDICATE_COSIGN_CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";

/// Builds the predicate from the file's bytes, checked before anything is signed.
/// `now` is the RFC 3339 UTC time written into a `custom` predicate.
pub fn build_predicate(t: &PredicateType, bytes: &[u8], now: &str) -> Result<serde_json::Value, StatementError> {
    match t.input {
        PredicateInput::Json => check_predicate(&t.uri, bytes),
        PredicateInput::SpdxText => {
            let text = std::str::from_utf8(bytes).map_err(|_| StatementError::Predicate {
                kind: "SPDX tag-value".into(),
                field: "(document)".into(),
                reason: "not UTF-8 text".into(),
            })?;
            if !text.lines().any(|l| l.trim_start().starts_with("SPDXVersion:")) {
                return Err(StatementError::Predicate {
                    kind: "SPDX tag-value".into(),
                    field: "SPDXVersion".into(),
                    reason: "missing (an SPDX JSON document needs --type spdxjson)".into(),
                });
            }
            Ok(serde_json::Value::String(text.to_owned()))
        }
        // cosign wraps any bytes (Go's string conversion; invalid UTF-8 becomes U+FFFD when
        // marshalled).
        PredicateInput::CosignCustom => Ok(serde_json::json!({
            "Data": String::from_utf8_lossy(bytes),
            "Timestamp": now,
        })),
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2006-01-02T15:04:05Z`).
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn field<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

fn require(
    v: &serde_json::Value,
    kind: &str,
    path: &[&str],
    want: fn(&serde_json::Value) -> bool,
    what: &str,
) -> Result<(), StatementError> {
    match field(v, path) {
        Some(x) if want(x) => Ok(()),
        Some(_) => Err(StatementError::Predicate {
            kind: kind.into(),
            field: if path.is_empty() { "(document)".into() } else { path.join(".") },
            reason: format!("must be {what}"),
        }),
        None => Err(StatementError::Predicate { kind: kind.into(), field: path.join("."), reason: "missing".into() }),
    }
}

/// Parses and checks a predicate for `predicate_type` (SLSA types against their schema's
/// required fields; every type must be JSON).
pub fn check_predicate(predicate_type: &str, bytes: &[u8]) -> Result<serde_json::Value, StatementError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| StatementError::Predicate {
        kind: predicate_type.into(),
        field: "(document)".into(),
        reason: format!("not JSON: {e}"),
    })?;
    let object = |x: &serde_json::Value| x.is_object();
    let string = |x: &serde_json::Value| x.as_str().is_some_and(|s| !s.is_empty());
    let array = |x: &serde_json::Value| x.is_array();
    require(&v, predicate_type, &[], object, "a JSON object")?;
    match predicate_type {
        "https://slsa.dev/provenance/v1" => {
            require(&v, predicate_type, &["buildDefinition"], object, "an object")?;
            require(&v, predicate_type, &["buildDefinition", "buildType"], string, "a non-empty string")?;
            require(&v, predicate_type, &["buildDefinition", "externalParameters"], object, "an object")?;
            require(&v, predicate_type, &["runDetails"], object, "an object")?;
            require(&v, predicate_type, &["runDetails", "builder", "id"], string, "a non-empty string")?;
        }
        "https://slsa.dev/provenance/v0.2" => {
            require(&v, predicate_type, &["builder", "id"], string, "a non-empty string")?;
            require(&v, predicate_type, &["buildType"], string, "a non-empty string")?;
            if field(&v, &["invocation"]).is_some() {
                require(&v, predicate_type, &["invocation"], object, "an object")?;
            }
            if field(&v, &["materials"]).is_some() {
                require(&v, predicate_type, &["materials"], array, "an array")?;
            }
        }
        _ => {}
    }
    Ok(v)
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
    /// annotations on the subject, predicate type [`COSIGN_SIGN_V1`] and an empty predicate.
    pub fn image_signature(digest: &Digest, annotations: &crate::payload::Annotations) -> Self {
        let annotations = annotations.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        Statement {
            kind: STATEMENT_V1.into(),
            subject: vec![Subject {
                name: String::new(),
                digest: [(digest.algorithm().name().to_owned(), digest.hex().to_owned())].into_iter().collect(),
                annotations: Some(annotations),
            }],
            predicate_type: COSIGN_SIGN_V1.into(),
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
    fn slsa_v1_fields_are_named() {
        let ok =
            br#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#;
        assert!(check_predicate("https://slsa.dev/provenance/v1", ok).is_ok());
        let bad = br#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{}}}"#;
        let e = check_predicate("https://slsa.dev/provenance/v1", bad).unwrap_err();
        assert!(e.to_string().contains("runDetails.builder.id: missing"), "{e}");
        let e = check_predicate("https://slsa.dev/provenance/v0.2", br#"{"builder":{"id":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("buildType"), "{e}");
        assert!(check_predicate("https://cyclonedx.org/bom", b"not json").is_err());
        assert!(check_predicate("https://cyclonedx.org/bom", b"[1]").is_err());
    }

    #[test]
    fn statements_round_trip_and_reject_unknown_types() {
        let d = Digest::sha256(b"x");
        let s = Statement::for_image("reg/app", &d, "https://openvex.dev/ns", serde_json::json!({}));
        let back = Statement::parse(&s.to_bytes()).unwrap();
        assert!(back.is_about(&d));
        assert!(!back.is_about(&Digest::sha256(b"y")));
        let other = String::from_utf8(s.to_bytes()).unwrap().replace(STATEMENT_V1, "https://example.com/Statement/v9");
        assert!(matches!(Statement::parse(other.as_bytes()), Err(StatementError::UnknownType(_))));
        assert_eq!(predicate_type_uri("slsaprovenance1").as_deref(), Some("https://slsa.dev/provenance/v1"));
        assert_eq!(predicate_type_uri("nonsense"), None);
    }

    #[test]
    fn spdx_text_and_custom_predicates_are_wrapped_as_cosign_does() {
        let spdx = predicate_type("spdx").unwrap();
        let v = build_predicate(&spdx, b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "x").unwrap();
        assert_eq!(v, serde_json::json!("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n"));
        let e = build_predicate(&spdx, br#"{"spdxVersion":"SPDX-2.3"}"#, "x").unwrap_err();
        assert!(e.to_string().contains("spdxjson"), "{e}");
        let custom = predicate_type("custom").unwrap();
        assert_eq!(custom.uri, PREDICATE_COSIGN_CUSTOM);
        let v = build_predicate(&custom, b"foo", &rfc3339_utc(1_700_000_000)).unwrap();
        assert_eq!(v, serde_json::json!({"Data": "foo", "Timestamp": "2023-11-14T22:13:20Z"}));
        assert_eq!(predicate_type("spdxjson").unwrap().input, PredicateInput::Json);
    }
}
