//! Sigstore bundles attached to images (cosign 3, GitHub artifact attestations): the pure
//! checks on one bundle's bytes, for a signature or an attestation of one image digest.
//!
//! A bundle passes when, in this order:
//! 1. it is a bundle (bounded, parsed; media type v0.3) whose content is a DSSE envelope
//!    around an in-toto statement;
//! 2. its signature verifies: with a key and evidence of when (cosign's default), through the
//!    same verifier as `verify-blob` (signature, transparency-log proof, timestamps); with a
//!    key alone (`--insecure-ignore-tlog`), over the envelope's PAE; keyless, through that
//!    verifier too (certificate chain, identity, SCT, transparency-log proof, timestamps);
//! 3. the signed statement is about this image digest;
//! 4. for a signature, its predicate type is cosign's `sign/v1` and its subject carries the
//!    required annotations; for an attestation, it is not a signature, it has the requested
//!    predicate type and passes the content checks.
//!
//! An attestation bundle never counts as an image signature (cosign 3.1.1 lists one among the
//! signatures: not copied).

use super::attestation::AttestationPolicy;
use super::{bundle, ImageSigner, Rejection};
use crate::digest::Digest;
use crate::dsse::{Envelope, INTOTO_PAYLOAD_TYPE};
use crate::intoto::Statement;
use crate::payload::Annotations;
use crate::predicates::COSIGN_SIGN_V1;

/// What the bundle must hold.
pub enum Expect<'a> {
    /// An image signature with these annotations (at least).
    Signature {
        /// Required subject annotations (`-a`).
        annotations: &'a Annotations,
    },
    /// An attestation meeting this policy.
    Attestation(&'a AttestationPolicy<'a>),
}

/// What a bundle that passed established.
#[derive(Debug, Clone)]
pub struct CheckedBundle {
    /// The signed statement.
    pub statement: serde_json::Value,
    /// Its predicate type.
    pub predicate_type: String,
    /// For keyless bundles: identity, issuer, times.
    pub keyless: Option<bundle::BundleFacts>,
}

fn format(reason: impl Into<String>) -> Rejection {
    Rejection::BundleFormat(reason.into())
}

/// The DSSE envelope around an in-toto statement inside a bundle, after a bounded, strict
/// parse of the bundle. Its signature is not checked here.
pub fn bundle_envelope(bytes: &[u8]) -> Result<Envelope, Rejection> {
    if bytes.len() > bundle::MAX_BUNDLE_BYTES {
        return Err(format(format!("larger than {} bytes", bundle::MAX_BUNDLE_BYTES)));
    }
    crate::json::reject_ambiguous_keys(bytes).map_err(|e| format(format!("ambiguous bundle: {e}")))?;
    let text = std::str::from_utf8(bytes).map_err(|_| format("not UTF-8 JSON"))?;
    // The library's parse: the bundle's shape as the protobuf-specs define it.
    sigstore_verify::types::Bundle::from_json(text).map_err(|e| format(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format(e.to_string()))?;
    let media_type = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or_default();
    if !crate::attachments::BUNDLE_MEDIA_TYPES.contains(&media_type) {
        return Err(format(format!("media type {media_type:?} is not a Sigstore bundle v0.3")));
    }
    let Some(env) = v.get("dsseEnvelope") else {
        return Err(format("an image bundle holds a DSSE envelope; this one holds a message signature"));
    };
    let env_bytes = serde_json::to_vec(env).map_err(|e| format(e.to_string()))?;
    let envelope = Envelope::parse(&env_bytes).map_err(|e| format(format!("DSSE envelope: {e}")))?;
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(format(format!("DSSE payload type {:?} is not in-toto", envelope.payload_type)));
    }
    Ok(envelope)
}

/// Checks one bundle's bytes for `image` (see the module documentation).
pub fn check_image_bundle(
    bytes: &[u8],
    image: &Digest,
    signer: &ImageSigner<'_>,
    expect: &Expect<'_>,
) -> Result<CheckedBundle, Rejection> {
    let envelope = bundle_envelope(bytes)?;
    let (payload, keyless) = match signer {
        ImageSigner::Key(key) => (envelope.verify(key).map_err(|e| Rejection::BundleSignature(e.to_string()))?, None),
        ImageSigner::KeyWithEvidence { key, trust } => {
            let pem = super::key_pem(key)?;
            let facts =
                bundle::verify_bundle(bytes, bundle::Artifact::Sha256(image), &bundle::Signer::Key(&pem), trust)
                    .map_err(Rejection::Keyless)?;
            (envelope.payload_bytes().map_err(|e| format(e.to_string()))?, Some(facts.get().clone()))
        }
        ImageSigner::Keyless { identity, issuer, trust } => {
            let signer = bundle::Signer::Identity { identity, issuer };
            let facts = bundle::verify_bundle(bytes, bundle::Artifact::Sha256(image), &signer, trust)
                .map_err(Rejection::Keyless)?;
            (envelope.payload_bytes().map_err(|e| format(e.to_string()))?, Some(facts.get().clone()))
        }
    };
    let statement = Statement::parse(&payload).map_err(|e| Rejection::Statement(e.to_string()))?;
    if !statement.is_about(image) {
        return Err(Rejection::Statement(format!("the signed statement's subject is not this image ({image})")));
    }
    match expect {
        Expect::Signature { annotations } => {
            if statement.predicate_type != COSIGN_SIGN_V1 {
                return Err(Rejection::NotASignature(statement.predicate_type));
            }
            let have = statement.subject_annotations(image);
            if !annotations.iter().all(|(k, v)| have.get(k) == Some(v)) {
                return Err(Rejection::AnnotationMismatch);
            }
        }
        Expect::Attestation(policy) => {
            if statement.predicate_type == COSIGN_SIGN_V1 {
                return Err(Rejection::Attestation("this bundle is an image signature, not an attestation".into()));
            }
            if let Some(want) = policy.predicate_type {
                if statement.predicate_type != want {
                    return Err(Rejection::Attestation(format!(
                        "predicate type is {:?}, not the requested {want:?}",
                        statement.predicate_type
                    )));
                }
            }
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&payload).map_err(|e| Rejection::Statement(e.to_string()))?;
    if let Expect::Attestation(policy) = expect {
        crate::policy::check_slsa(&value, policy.slsa)
            .and_then(|()| crate::policy::check_paths(&value, policy.checks))
            .map_err(|m| Rejection::Attestation(format!("content check failed: {m}")))?;
    }
    Ok(CheckedBundle { statement: value, predicate_type: statement.predicate_type, keyless })
}
