//! Verifying image signatures. The only module that can build a [`Verified`] value.
//!
//! For each signature layer attached to an image: the signature is checked over the exact
//! payload bytes first, and only then is the payload parsed; its manifest digest must equal
//! the image digest and its annotations must include the required ones. An image passes when
//! at least one signature passes. Any error while checking means "not verified".

pub mod attestation;
pub mod bundle;
pub mod chain;
pub mod cosign_keyless;
pub mod image_bundle;
pub mod timestamps;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::StreamExt;

use crate::attachments::{self, Candidates, Format, Formats, Kind, Referrer, ReferrerProblem};
use crate::attachments::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
use crate::digest::Digest;
use crate::keys::{PublicKey, SignatureError};
use crate::oci::manifest::Descriptor;
use crate::oci::{ManifestRef, Store, StoreError};
use crate::payload::{Annotations, SimpleSigning};

/// Most signatures examined per image and format.
pub const MAX_SIGNATURES: usize = attachments::MAX_CANDIDATES;
/// Default cap on a signature payload blob.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 1 << 20;

/// A value that passed verification. Only this module constructs it.
#[derive(Debug, Clone)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }
}

/// What a verified signature signed.
#[derive(Debug, Clone)]
pub enum Claims {
    /// A legacy signature's simple-signing payload.
    SimpleSigning(SimpleSigning),
    /// A bundle signature's in-toto statement (predicate type cosign `sign/v1`).
    Statement(serde_json::Value),
}

impl Claims {
    /// As JSON, for reports.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Claims::SimpleSigning(p) => p.to_json(),
            Claims::Statement(s) => s.clone(),
        }
    }
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    /// What was signed, parsed after its signature verified.
    pub claims: Claims,
    /// The legacy payload layer's digest, or the bundle referrer manifest's.
    pub layer: Digest,
    /// Where it was stored.
    pub format: Format,
    /// What the bundle verifier established: for keyless signatures the certificate identity
    /// and issuer, and for those and key signatures checked with evidence, the log entry and
    /// times. `None` for a key signature checked alone (`--insecure-ignore-tlog`).
    pub keyless: Option<bundle::BundleFacts>,
}

/// What to require of a signature.
pub struct Policy<'a> {
    /// Who must have signed.
    pub signer: ImageSigner<'a>,
    /// Annotations that must be present in the payload.
    pub annotations: &'a Annotations,
    /// Largest payload blob (or bundle) read.
    pub max_blob_bytes: u64,
    /// Which storage formats are read.
    pub formats: Formats,
}

/// Who must have signed an image.
#[derive(Clone, Copy)]
pub enum ImageSigner<'a> {
    /// Signatures must verify with this public key; nothing shows when they were made
    /// (`--insecure-ignore-tlog`).
    Key(&'a PublicKey),
    /// Signatures must verify with this public key and carry evidence of when, checked
    /// against this trust material: a transparency-log entry (cosign's Rekor bundle
    /// annotation on a legacy layer; the bundle's log entries and timestamps). cosign's
    /// default for `verify --key`.
    KeyWithEvidence {
        /// The key.
        key: &'a PublicKey,
        /// Trusted root (the log's keys, timestamp authorities).
        trust: &'a crate::trust::Trust,
    },
    /// Keyless: a Fulcio certificate with this identity and issuer, logged in Rekor, checked
    /// against this trust material.
    Keyless {
        /// Certificate SAN.
        identity: &'a crate::identity::Matcher,
        /// OIDC issuer.
        issuer: &'a crate::identity::Matcher,
        /// Trusted root.
        trust: &'a crate::trust::Trust,
    },
}

/// Why one signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The layer is not a simple-signing payload.
    #[error("layer media type is {0:?}, not a simple-signing payload")]
    NotSimpleSigning(String),
    /// No `dev.cosignproject.cosign/signature` annotation.
    #[error("layer has no {SIGNATURE_ANNOTATION} annotation")]
    MissingSignature,
    /// The annotation is not base64.
    #[error("signature annotation is not valid base64")]
    SignatureNotBase64,
    /// Signature check failed.
    #[error("{0}")]
    Signature(SignatureError),
    /// The signed payload is not a simple-signing document.
    #[error("signed payload is invalid: {0}")]
    Payload(String),
    /// The payload names another image.
    #[error("payload is for {payload}, not for this image ({image})")]
    DigestMismatch {
        /// Digest in the payload.
        payload: Digest,
        /// The image's digest.
        image: Digest,
    },
    /// A required annotation is missing or different.
    #[error("payload annotations do not include the required -a values")]
    AnnotationMismatch,
    /// The layer's certificate or Rekor bundle annotation is missing or malformed.
    #[error("signature material: {0}")]
    KeylessMaterial(String),
    /// The keyless verification (certificate, identity, transparency log, signature) said no.
    #[error("{0}")]
    Keyless(bundle::BundleRejection),
    /// The blob is not the size its descriptor states (content that should not be trusted).
    #[error("blob size does not match its descriptor's size of {descriptor} bytes ({actual})")]
    SizeMismatch {
        /// The descriptor's size.
        descriptor: u64,
        /// What was found.
        actual: String,
    },
    /// The blob's content does not hash to its descriptor's digest.
    #[error("{0}")]
    ContentMismatch(String),
    /// An attestation was refused (envelope, signature, statement, subject or type).
    #[error("attestation: {0}")]
    Attestation(String),
    /// A referrer listed for the image is not a bundle about it.
    #[error("{0}")]
    Referrer(ReferrerProblem),
    /// Not a Sigstore bundle sigil can read.
    #[error("bundle format: {0}")]
    BundleFormat(String),
    /// The bundle's signature does not verify with the key.
    #[error("bundle signature: {0}")]
    BundleSignature(String),
    /// The bundle's signed statement is malformed or about another image.
    #[error("bundle statement: {0}")]
    Statement(String),
    /// A verified bundle that is not an image signature (an attestation) cannot pass as one.
    #[error("the bundle is an attestation of predicate type {0:?}, not an image signature (https://sigstore.dev/cosign/sign/v1)")]
    NotASignature(String),
}

/// One signature that was examined, with what became of it.
#[derive(Debug, Clone)]
pub struct Examined {
    /// The legacy layer's digest, or the bundle referrer manifest's.
    pub layer: Digest,
    /// Where it was stored.
    pub format: Format,
    /// Rejected (why), or could not be checked (why).
    pub problem: Problem,
}

/// What went wrong with one signature.
#[derive(Debug, Clone)]
pub enum Problem {
    /// Verification said no.
    Rejected(Rejection),
    /// Its payload could not be fetched, or the trust material is unusable.
    CouldNotCheck(String),
}

impl From<Rejection> for Problem {
    /// A keyless check that could not judge (unusable trusted root) is not a "no".
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Keyless(b) if b.outcome == bundle::Outcome::CouldNotCheck => {
                Problem::CouldNotCheck(b.to_string())
            }
            other => Problem::Rejected(other),
        }
    }
}

/// The result of verifying one image.
#[derive(Debug)]
pub enum Verdict {
    /// At least one signature passed.
    Verified {
        /// The image digest.
        digest: Digest,
        /// The signatures that passed.
        signatures: Vec<Verified<VerifiedSignature>>,
        /// The ones that did not.
        rejected: Vec<Examined>,
        /// Older layers beyond the newest [`MAX_SIGNATURES`] that were not read.
        unread: usize,
    },
    /// No signature manifest, or an empty one.
    NoSignatures {
        /// The image digest.
        digest: Digest,
    },
    /// Signatures exist; none passed.
    NoMatchingSignature {
        /// The image digest.
        digest: Digest,
        /// Every signature examined, with its problem.
        rejected: Vec<Examined>,
        /// Older layers beyond the newest [`MAX_SIGNATURES`] that were not read.
        unread: usize,
    },
    /// The image (tag) does not exist.
    ImageNotFound,
}

/// Could not check at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Registry or layout failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signature manifest is malformed.
    #[error(transparent)]
    MalformedSignatureManifest(attachments::FindError),
    /// Some signatures could not be fetched and none that could be fetched passed.
    #[error("could not check {count} attached signature(s) or attestation(s): {first}")]
    Incomplete {
        /// How many.
        count: usize,
        /// The first error.
        first: String,
    },
}

/// What the signer probably wrote as `docker-reference`, to rebuild payloads locally.
///
/// A signature layer's digest is the SHA-256 of its payload. When a payload rebuilt from the
/// likely claims (repository name, with the tag or the digest or neither; no annotations or
/// the required ones) hashes to that digest, those are the stored bytes, exactly: no need to
/// fetch the blob. Otherwise it is fetched. Either way the signature is then checked over
/// the bytes, so a wrong guess costs a request, never a wrong verdict.
#[derive(Debug, Clone, Default)]
pub struct PayloadHints {
    /// Repository names as signers write them (`registry/repo`, and aliases).
    pub names: Vec<String>,
    /// The tag the image was named by, if any.
    pub tag: Option<String>,
}

impl PayloadHints {
    fn candidates(&self, digest: &Digest, annotations: &Annotations) -> Vec<Vec<u8>> {
        let mut refs = Vec::new();
        for n in &self.names {
            refs.push(n.clone());
            refs.push(format!("{n}@{digest}"));
            if let Some(t) = &self.tag {
                refs.push(format!("{n}:{t}"));
            }
        }
        let none = Annotations::new();
        let mut sets = vec![&none];
        if !annotations.is_empty() {
            sets.push(annotations);
        }
        refs.iter()
            .flat_map(|r| sets.iter().map(move |a| SimpleSigning::new(r.clone(), digest.clone(), a).to_bytes()))
            .collect()
    }
}

/// Resolves the image digest: from the reference, or by fetching the tag's manifest.
pub async fn image_digest<S: Store>(store: &S, r: &ManifestRef) -> Result<Option<Digest>, StoreError> {
    match r {
        ManifestRef::Digest(d) => Ok(Some(d.clone())),
        ManifestRef::Tag(_) => Ok(store.get_manifest(r).await?.map(|m| m.digest)),
    }
}

/// Verifies the signatures attached to the image selected by `r`.
pub async fn verify_image<S: Store, T: Store>(
    image_store: &S,
    sig_store: &T,
    r: &ManifestRef,
    policy: &Policy<'_>,
    hints: &PayloadHints,
) -> Result<Verdict, VerifyError> {
    let Some(digest) = image_digest(image_store, r).await? else {
        return Ok(Verdict::ImageNotFound);
    };
    verify_digest(sig_store, &digest, policy, hints).await
}

/// Verifies the signatures attached to `digest`.
pub async fn verify_digest<T: Store>(
    sig_store: &T,
    digest: &Digest,
    policy: &Policy<'_>,
    hints: &PayloadHints,
) -> Result<Verdict, VerifyError> {
    let found = candidates(sig_store, digest, Kind::Signature, policy.formats).await?;
    let candidates = hints.candidates(digest, policy.annotations);
    let legacy = bounded(
        found
            .legacy
            .iter()
            .map(|l| async { Some(check_layer(sig_store, l, digest, policy, &candidates).await) })
            .collect::<Vec<_>>()
            .into_iter(),
        per_format(policy.max_blob_bytes),
    );
    let expect = image_bundle::Expect::Signature { annotations: policy.annotations };
    let bundles = bounded(
        found
            .bundles
            .iter()
            .map(|e| {
                check_referrer(sig_store, e, digest, policy.max_blob_bytes, |bytes| {
                    image_bundle::check_image_bundle(bytes, digest, &policy.signer, &expect).map(|c| {
                        VerifiedSignature {
                            claims: Claims::Statement(c.statement),
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
    let unread = found.unread;
    let (signatures, rejected) = sort_results(&found, legacy, bundles);
    if signatures.is_empty() && rejected.is_empty() {
        return Ok(Verdict::NoSignatures { digest: digest.clone() });
    }
    if !signatures.is_empty() {
        return Ok(Verdict::Verified { digest: digest.clone(), signatures, rejected, unread });
    }
    if let Some(e) = incomplete(&rejected) {
        return Err(e);
    }
    Ok(Verdict::NoMatchingSignature { digest: digest.clone(), rejected, unread })
}

/// One bundle referrer: its manifest fetched and checked to be a bundle about `image`, its
/// bundle fetched (bounded), then `check`ed. `None` when the referrer is another kind of
/// artifact.
pub(crate) async fn check_referrer<T: Store, V>(
    store: &T,
    entry: &Descriptor,
    image: &Digest,
    max_blob_bytes: u64,
    check: impl FnOnce(&[u8]) -> Result<V, Rejection>,
) -> Option<Result<V, Problem>> {
    let layer = match attachments::bundle_layer(store, entry, image).await {
        Err(e) => return Some(Err(Problem::CouldNotCheck(format!("referrer {}: {e}", entry.digest)))),
        Ok(Err(problem)) => return Some(Err(Problem::Rejected(Rejection::Referrer(problem)))),
        Ok(Ok(Referrer::Other)) => return None,
        Ok(Ok(Referrer::Bundle(b))) => b.layer,
    };
    if layer.size > max_blob_bytes {
        return Some(Err(Problem::CouldNotCheck(format!(
            "bundle {} is {} bytes, over the limit of {} (raise --max-blob-size to read it)",
            layer.digest, layer.size, max_blob_bytes
        ))));
    }
    let bytes = match fetch_layer(store, &layer, "bundle").await {
        Ok(b) => b,
        Err(p) => return Some(Err(p)),
    };
    Some(check(&bytes).map_err(Problem::from))
}

/// Bytes of layer blobs fetched at once, at most (with at least one blob in flight).
pub const IN_FLIGHT_BYTES: u64 = 64 << 20;

/// The two formats are checked at once, each in its own [`bounded`] stream: each counts blobs
/// as twice their size, so that together they keep within [`IN_FLIGHT_BYTES`].
pub(crate) fn per_format(max_blob_bytes: u64) -> u64 {
    max_blob_bytes.saturating_mul(2)
}

/// Runs the per-layer checks in order, as many at once as keep the blobs in flight under
/// [`IN_FLIGHT_BYTES`] (at most 16), so that 100 layers of the largest size allowed never sit
/// in memory together.
async fn bounded<F: std::future::Future>(checks: impl Iterator<Item = F>, max_blob_bytes: u64) -> Vec<F::Output> {
    let at_once = (IN_FLIGHT_BYTES / max_blob_bytes.max(1)).clamp(1, 16) as usize;
    futures_util::stream::iter(checks).buffered(at_once).collect().await
}

/// Fetches a layer's blob: exactly the size its descriptor states (the caller has checked it
/// is within the limit), else rejected as content not to be trusted.
async fn fetch_layer<T: Store>(store: &T, layer: &Descriptor, what: &str) -> Result<Vec<u8>, Problem> {
    let mismatch = |actual: String| {
        Problem::Rejected(Rejection::SizeMismatch {
            descriptor: layer.size,
            actual: format!("{what} {}: {actual}", layer.digest),
        })
    };
    match store.get_blob(&layer.digest, layer.size).await {
        Ok(b) if b.len() as u64 == layer.size => Ok(b),
        Ok(b) => Err(mismatch(format!("{} bytes", b.len()))),
        Err(StoreError::TooLarge { .. }) => Err(mismatch("more bytes than that".into())),
        // The store answered, with other bytes than the descriptor names: "no", as above.
        Err(StoreError::DigestMismatch(d)) => {
            Err(Problem::Rejected(Rejection::ContentMismatch(format!("{what} {d}: content does not match its digest"))))
        }
        Err(e) => Err(Problem::CouldNotCheck(format!("{what} {}: {e}", layer.digest))),
    }
}

/// The candidates of `kind` in the formats asked for; a listing that fails is "could not
/// check".
pub(crate) async fn candidates<T: Store>(
    store: &T,
    digest: &Digest,
    kind: Kind,
    formats: Formats,
) -> Result<Candidates, VerifyError> {
    attachments::candidates(store, digest, kind, formats).await.map_err(|e| match e {
        attachments::FindError::Store(s) => VerifyError::Store(s),
        other => VerifyError::MalformedSignatureManifest(other),
    })
}

/// Splits per-candidate results (legacy layers, then bundle referrers; `None` for referrers
/// that are not bundles) into verified values and examined problems.
pub(crate) fn sort_results<T>(
    found: &Candidates,
    legacy: Vec<Option<Result<T, Problem>>>,
    bundles: Vec<Option<Result<T, Problem>>>,
) -> (Vec<Verified<T>>, Vec<Examined>) {
    let (mut ok, mut rejected) = (Vec::new(), Vec::new());
    let tagged = found
        .legacy
        .iter()
        .zip(legacy)
        .map(|(d, r)| (d, Format::Legacy, r))
        .chain(found.bundles.iter().zip(bundles).map(|(d, r)| (d, Format::Bundle, r)));
    for (d, format, res) in tagged {
        match res {
            None => {}
            Some(Ok(v)) => ok.push(Verified(v)),
            Some(Err(problem)) => rejected.push(Examined { layer: d.digest.clone(), format, problem }),
        }
    }
    (ok, rejected)
}

/// When nothing verified: any layer that could not be checked makes the whole answer
/// "could not check" rather than "no".
fn incomplete(rejected: &[Examined]) -> Option<VerifyError> {
    let errors: Vec<&String> = rejected
        .iter()
        .filter_map(|e| match &e.problem {
            Problem::CouldNotCheck(s) => Some(s),
            Problem::Rejected(_) => None,
        })
        .collect();
    errors.first().map(|first| VerifyError::Incomplete { count: errors.len(), first: (*first).clone() })
}

async fn check_layer<T: Store>(
    store: &T,
    layer: &Descriptor,
    image: &Digest,
    policy: &Policy<'_>,
    candidates: &[Vec<u8>],
) -> Result<VerifiedSignature, Problem> {
    let reject = |r| Err(Problem::Rejected(r));
    if layer.media_type != SIMPLE_SIGNING {
        return reject(Rejection::NotSimpleSigning(layer.media_type.clone()));
    }
    let Some(sig_b64) = layer.annotation(SIGNATURE_ANNOTATION) else {
        return reject(Rejection::MissingSignature);
    };
    let Ok(signature) = B64.decode(sig_b64.trim().as_bytes()) else {
        return reject(Rejection::SignatureNotBase64);
    };
    if layer.size > policy.max_blob_bytes {
        return Err(Problem::CouldNotCheck(format!(
            "payload blob {} is {} bytes, over the limit of {} (raise --max-blob-size to read it)",
            layer.digest, layer.size, policy.max_blob_bytes
        )));
    }
    let known = candidates.iter().find(|c| c.len() as u64 == layer.size && layer.digest.matches(c));
    let fetched;
    let payload = match known {
        Some(bytes) => bytes,
        None => {
            fetched = fetch_layer(store, layer, "payload blob").await?;
            &fetched
        }
    };
    let checked = match policy.signer {
        ImageSigner::Key(key) => check_payload(payload, &signature, image, key, policy.annotations).map(|p| (p, None)),
        ImageSigner::KeyWithEvidence { key, trust } => {
            let annotations = layer.annotations.clone().unwrap_or_default();
            key_pem(key).and_then(|pem| {
                cosign_keyless::bundle_from_annotations(
                    &annotations,
                    sig_b64,
                    payload,
                    cosign_keyless::SignedBy::Key(key),
                )
                .map_err(Rejection::KeylessMaterial)
                .and_then(|b| {
                    bundle::verify_bundle(&b, bundle::Artifact::Bytes(payload), &bundle::Signer::Key(&pem), trust)
                        .map_err(Rejection::Keyless)
                })
                .and_then(|facts| check_claims(payload, image, policy.annotations).map(|p| (p, Some(facts.0))))
            })
        }
        ImageSigner::Keyless { identity, issuer, trust } => {
            let annotations = layer.annotations.clone().unwrap_or_default();
            cosign_keyless::bundle_from_annotations(
                &annotations,
                sig_b64,
                payload,
                cosign_keyless::SignedBy::Certificate,
            )
            .map_err(Rejection::KeylessMaterial)
            .and_then(|b| {
                let signer = bundle::Signer::Identity { identity, issuer };
                bundle::verify_bundle(&b, bundle::Artifact::Bytes(payload), &signer, trust).map_err(Rejection::Keyless)
            })
            .and_then(|facts| check_claims(payload, image, policy.annotations).map(|p| (p, Some(facts.0))))
        }
    };
    checked.map_err(Problem::from).map(|(p, keyless)| VerifiedSignature {
        claims: Claims::SimpleSigning(p),
        layer: layer.digest.clone(),
        format: Format::Legacy,
        keyless,
    })
}

/// A public key as the bundle verifier takes it (PEM).
pub(crate) fn key_pem(key: &PublicKey) -> Result<String, Rejection> {
    key.to_pem().map_err(|e| Rejection::KeylessMaterial(format!("public key: {e}")))
}

/// The pure part: signature over the exact bytes, then payload contents.
pub fn check_payload(
    payload: &[u8],
    signature: &[u8],
    image: &Digest,
    key: &PublicKey,
    required: &Annotations,
) -> Result<SimpleSigning, Rejection> {
    key.verify(payload, signature).map_err(Rejection::Signature)?;
    check_claims(payload, image, required)
}

/// What a payload whose signature verified must say: this image digest, these annotations.
pub fn check_claims(payload: &[u8], image: &Digest, required: &Annotations) -> Result<SimpleSigning, Rejection> {
    let parsed = SimpleSigning::parse(payload).map_err(|e| Rejection::Payload(e.to_string()))?;
    if parsed.manifest_digest != *image {
        return Err(Rejection::DigestMismatch { payload: parsed.manifest_digest, image: image.clone() });
    }
    if !parsed.has_annotations(required) {
        return Err(Rejection::AnnotationMismatch);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, PrivateKey};

    #[test]
    fn payload_candidates_match_signer_output() {
        let image = Digest::sha256(b"image");
        let hints = PayloadHints { names: vec!["reg/app".into()], tag: Some("v1".into()) };
        let mut ann = Annotations::new();
        ann.insert("k".into(), "v".into());
        let c = hints.candidates(&image, &ann);
        for (r, a) in [
            ("reg/app", Annotations::new()),
            ("reg/app:v1", ann.clone()),
            (&format!("reg/app@{image}")[..], Annotations::new()),
        ] {
            let bytes = SimpleSigning::new(r.into(), image.clone(), &a).to_bytes();
            assert!(c.contains(&bytes), "{r}");
        }
        assert!(PayloadHints::default().candidates(&image, &ann).is_empty());
    }

    #[test]
    fn pure_checks() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let pubkey = key.public_key();
        let image = Digest::sha256(b"image");
        let mut ann = Annotations::new();
        ann.insert("env".into(), "prod".into());
        let payload = SimpleSigning::new("r:t".into(), image.clone(), &ann).to_bytes();
        let sig = key.sign(&payload);
        let none = Annotations::new();
        assert!(check_payload(&payload, &sig, &image, &pubkey, &none).is_ok());
        assert!(check_payload(&payload, &sig, &image, &pubkey, &ann).is_ok());
        let other = Digest::sha256(b"other");
        assert!(matches!(check_payload(&payload, &sig, &other, &pubkey, &ann), Err(Rejection::DigestMismatch { .. })));
        let mut flipped = sig.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(check_payload(&payload, &flipped, &image, &pubkey, &ann), Err(Rejection::Signature(_))));
        let mut changed = payload.clone();
        changed[5] ^= 1;
        assert!(matches!(check_payload(&changed, &sig, &image, &pubkey, &ann), Err(Rejection::Signature(_))));
        let mut want = Annotations::new();
        want.insert("env".into(), "dev".into());
        assert_eq!(check_payload(&payload, &sig, &image, &pubkey, &want).unwrap_err(), Rejection::AnnotationMismatch);
    }
}
