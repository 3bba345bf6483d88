//! Verifying attestations attached to an image (cosign's `.att` tag, DSSE envelopes).
//!
//! For each layer: the envelope's signature over the PAE with the key, then the statement
//! parsed (any parse error rejects it: CVE-2026-39395), its `_type` known, a subject equal to
//! the image digest, and — when a type is asked for — its signed `predicateType` equal to it
//! (the layer annotation is unsigned and only a hint). Verification fails when no attestation
//! of the requested type verifies (CVE-2022-35929).

use super::{
    bounded, bundle, candidates, check_referrer, cosign_keyless, fetch_layer, image_bundle, image_digest, incomplete,
    per_format, sort_results, Examined, ImageSigner, Problem, Rejection, Verified, VerifyError,
};
use crate::attachments::{Format, Formats, Kind};
use crate::digest::Digest;
use crate::dsse::{Envelope, DSSE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE};
use crate::intoto::Statement;
use crate::oci::manifest::Descriptor;
use crate::oci::{ManifestRef, Store};

/// A statement whose envelope verified.
#[derive(Debug, Clone)]
pub struct VerifiedStatement {
    /// The statement, as signed.
    pub statement: serde_json::Value,
    /// Its predicate type.
    pub predicate_type: String,
    /// The legacy envelope layer's digest, or the bundle referrer manifest's.
    pub layer: Digest,
    /// Where it was stored.
    pub format: Format,
    /// For keyless attestations: the certificate identity, issuer and log time established.
    pub keyless: Option<bundle::BundleFacts>,
}

/// The result of verifying one image's attestations.
#[derive(Debug)]
pub enum AttestationVerdict {
    /// At least one attestation (of the requested type) verified.
    Verified {
        /// Image digest.
        digest: Digest,
        /// The verified statements.
        statements: Vec<Verified<VerifiedStatement>>,
        /// The others, with why.
        rejected: Vec<Examined>,
    },
    /// Nothing attached.
    NoAttestations {
        /// Image digest.
        digest: Digest,
    },
    /// Attestations exist; none verified (of the requested type).
    NoMatchingAttestation {
        /// Image digest.
        digest: Digest,
        /// Each one, with why.
        rejected: Vec<Examined>,
    },
    /// The image (tag) does not exist.
    ImageNotFound,
}

/// What an attestation must satisfy.
pub struct AttestationPolicy<'a> {
    /// Who must have signed: a key, or a keyless identity (certificate, Rekor entry).
    pub signer: ImageSigner<'a>,
    /// The predicate type URI required, if any.
    pub predicate_type: Option<&'a str>,
    /// Largest envelope read.
    pub max_blob_bytes: u64,
    /// SLSA provenance expectations (builder, source).
    pub slsa: &'a crate::policy::SlsaExpectations,
    /// General content checks on JSON paths of the statement.
    pub checks: &'a [crate::policy::PathCheck],
    /// Which storage formats are read.
    pub formats: Formats,
}

/// Verifies the attestations attached to the image selected by `r`.
pub async fn verify_attestations<S: Store, T: Store>(
    image_store: &S,
    sig_store: &T,
    r: &ManifestRef,
    policy: &AttestationPolicy<'_>,
) -> Result<AttestationVerdict, VerifyError> {
    let Some(digest) = image_digest(image_store, r).await? else {
        return Ok(AttestationVerdict::ImageNotFound);
    };
    let found = candidates(sig_store, &digest, Kind::Attestation, policy.formats).await?;
    let legacy = bounded(
        found
            .legacy
            .iter()
            .map(|l| async { Some(check_layer(sig_store, l, &digest, policy).await) })
            .collect::<Vec<_>>()
            .into_iter(),
        per_format(policy.max_blob_bytes),
    );
    let expect = image_bundle::Expect::Attestation(policy);
    let bundles = bounded(
        found
            .bundles
            .iter()
            .map(|e| {
                check_referrer(sig_store, e, &digest, policy.max_blob_bytes, |bytes| {
                    image_bundle::check_image_bundle(bytes, &digest, &policy.signer, &expect).map(|c| {
                        VerifiedStatement {
                            statement: c.statement,
                            predicate_type: c.predicate_type,
                            layer: e.digest.clone(),
                            format: Format::Bundle,
                            keyless: c.keyless,
                        }
                    })
                })
            })
            .collect::<Vec<_>>()
            .into_iter(),
        per_format(policy.max_blob_bytes),
    );
    let (legacy, bundles) = futures_util::join!(legacy, bundles);
    let (statements, rejected) = sort_results(&found, legacy, bundles);
    if statements.is_empty() && rejected.is_empty() {
        return Ok(AttestationVerdict::NoAttestations { digest });
    }
    if !statements.is_empty() {
        return Ok(AttestationVerdict::Verified { digest, statements, rejected });
    }
    if let Some(e) = incomplete(&rejected) {
        return Err(e);
    }
    Ok(AttestationVerdict::NoMatchingAttestation { digest, rejected })
}

async fn check_layer<T: Store>(
    store: &T,
    layer: &Descriptor,
    image: &Digest,
    policy: &AttestationPolicy<'_>,
) -> Result<VerifiedStatement, Problem> {
    let reject = |r: Rejection| Err(Problem::Rejected(r));
    if layer.media_type != DSSE_MEDIA_TYPE {
        return reject(Rejection::Attestation(format!(
            "layer media type {:?} is not a DSSE envelope",
            layer.media_type
        )));
    }
    if layer.size > policy.max_blob_bytes {
        return Err(Problem::CouldNotCheck(format!(
            "envelope {} is {} bytes, over the limit of {}",
            layer.digest, layer.size, policy.max_blob_bytes
        )));
    }
    let blob = fetch_layer(store, layer, "envelope").await?;
    let annotations = layer.annotations.clone().unwrap_or_default();
    check_envelope(&blob, &annotations, image, policy).map_err(Problem::from).map(
        |(statement, predicate_type, keyless)| VerifiedStatement {
            statement,
            predicate_type,
            layer: layer.digest.clone(),
            format: Format::Legacy,
            keyless,
        },
    )
}

/// The pure part: envelope signature (key, or keyless material from the layer's
/// annotations), statement, subject, predicate type, content checks.
pub fn check_envelope(
    blob: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
    image: &Digest,
    policy: &AttestationPolicy<'_>,
) -> Result<(serde_json::Value, String, Option<bundle::BundleFacts>), Rejection> {
    let envelope = Envelope::parse(blob).map_err(|e| Rejection::Attestation(e.to_string()))?;
    if envelope.payload_type != INTOTO_PAYLOAD_TYPE {
        return Err(Rejection::Attestation(format!("DSSE payload type {:?} is not in-toto", envelope.payload_type)));
    }
    let (payload, keyless) = match policy.signer {
        ImageSigner::Key(key) => (envelope.verify(key).map_err(|e| Rejection::Attestation(e.to_string()))?, None),
        ImageSigner::KeyWithEvidence { key, trust } => {
            let pem = super::key_pem(key)?;
            let b = cosign_keyless::dsse_bundle_from_annotations(annotations, blob, cosign_keyless::SignedBy::Key(key))
                .map_err(Rejection::KeylessMaterial)?;
            let facts = bundle::verify_bundle(&b, bundle::Artifact::Sha256(image), &bundle::Signer::Key(&pem), trust)
                .map_err(Rejection::Keyless)?;
            (envelope.payload_bytes().map_err(|e| Rejection::Attestation(e.to_string()))?, Some(facts.0))
        }
        ImageSigner::Keyless { identity, issuer, trust } => {
            // The certificate, chain and Rekor entry cosign writes as annotations, checked as
            // a Sigstore bundle around this envelope: chain to Fulcio, identity, the log
            // entry's body against the envelope, SET, signature over the PAE, subject digest.
            let b =
                cosign_keyless::dsse_bundle_from_annotations(annotations, blob, cosign_keyless::SignedBy::Certificate)
                    .map_err(Rejection::KeylessMaterial)?;
            let signer = bundle::Signer::Identity { identity, issuer };
            let facts = bundle::verify_bundle(&b, bundle::Artifact::Sha256(image), &signer, trust)
                .map_err(Rejection::Keyless)?;
            (envelope.payload_bytes().map_err(|e| Rejection::Attestation(e.to_string()))?, Some(facts.0))
        }
    };
    let statement = Statement::parse(&payload).map_err(|e| Rejection::Attestation(e.to_string()))?;
    if !statement.is_about(image) {
        return Err(Rejection::Attestation(format!("statement subject is not this image ({image})")));
    }
    if let Some(want) = policy.predicate_type {
        if statement.predicate_type != want {
            return Err(Rejection::Attestation(format!(
                "predicate type is {:?}, not the requested {want:?}",
                statement.predicate_type
            )));
        }
    }
    let value = serde_json::from_slice(&payload).map_err(|e| Rejection::Attestation(e.to_string()))?;
    crate::policy::check_slsa(&value, policy.slsa)
        .and_then(|()| crate::policy::check_paths(&value, policy.checks))
        .map_err(|m| Rejection::Attestation(format!("content check failed: {m}")))?;
    Ok((value, statement.predicate_type, keyless))
}
