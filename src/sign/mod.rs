//! Signing and attesting an image: resolve, build what is signed, sign, attach.
//!
//! Two formats, as cosign writes them ([`Format`]):
//! - **bundle** (cosign 3's default): a DSSE envelope around an in-toto statement (for a
//!   signature, predicate type cosign `sign/v1` with the `-a` annotations on the subject) in
//!   a Sigstore bundle, attached as an OCI 1.1 referrer of the image
//!   ([`crate::attachments::referrers::attach`]);
//! - **legacy** (cosign 2): a simple-signing payload (or an envelope) as one layer of the
//!   manifest tagged `sha256-<hex>.sig` (`.att`). Appending keeps every signature already
//!   there and does not add an identical one twice.
//!
//! Either way concurrent writers are reconciled ([`crate::reconcile`]) and success means the
//! signature was seen listed. Generic over [`Store`], so the same flow serves registries and
//! OCI layouts.

pub mod sigstore;

use crate::rekor::TransparencyLog;
use crate::tsa::TimestampAuthority;
use sigstore::{Signer, Witnesses};

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures_util::future::join_all;

use crate::attachments::referrers::{self, Indexing, Layer};
use crate::attachments::{legacy_tag, ATTESTATION_SUFFIX, SIGNATURE_SUFFIX};
use crate::attachments::{
    Format, BUNDLE_CONTENT_ANNOTATION, BUNDLE_PREDICATE_TYPE_ANNOTATION, BUNDLE_V03, CREATED_ANNOTATION,
};
use crate::attachments::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
use crate::digest::Digest;
use crate::oci::manifest::{Descriptor, Manifest, ManifestError};
use crate::oci::{ManifestRef, Store, StoreError};
use crate::payload::{Annotations, SimpleSigning};
use crate::reconcile::{self, Collection, Content, ReconcileError};

/// What to sign in an image, and the identity to write into the payload.
#[derive(Debug, Clone)]
pub struct Subject {
    /// How the image is selected in its repository.
    pub reference: ManifestRef,
    /// `registry/repository` for registry images, the layout reference for layouts.
    pub repository: String,
    /// The tag the user named, if any (it goes into `docker-reference`).
    pub tag: Option<String>,
}

impl Subject {
    /// The `docker-reference` for `digest`: `repo:tag` when signed by tag (so that
    /// containers/image's `matchRepoDigestOrExact` accepts pulls by that tag and by digest),
    /// `repo@digest` otherwise.
    pub fn docker_reference(&self, digest: &Digest) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}", self.repository),
            None => format!("{}@{digest}", self.repository),
        }
    }
}

/// Whether to descend into an image index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recursion {
    /// Sign only the named manifest.
    TopOnly,
    /// Sign an index and every manifest it lists.
    IndexAndChildren,
}

/// The outcome for one signed digest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Signed {
    /// The manifest digest signed.
    pub digest: Digest,
    /// How it was stored.
    pub format: Format,
    /// Where it can be found: the legacy tag or the referrers tag-schema index
    /// (`location:tag`), or `location` for the referrers API.
    pub signature_tag: String,
    /// Digest of the legacy signature manifest last seen holding the signature, or of the
    /// bundle's referrer manifest.
    pub signature_manifest: Digest,
    /// Whether a new layer was added or an identical signature was already there.
    pub outcome: SignOutcome,
    /// Writes of the signature manifest (more than one when a concurrent signer replaced
    /// it; 0 when the signature was already there).
    pub writes: u32,
}

/// Added or already present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignOutcome {
    /// A new signature layer was appended.
    Added,
    /// The same signature was already attached; nothing changed.
    AlreadyPresent,
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The image is not there.
    #[error("image {0} not found")]
    ImageNotFound(String),
    /// Registry or layout failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listing the signature in its attachment manifest (or an artifact in the referrers
    /// index) failed, or could not be confirmed.
    #[error(transparent)]
    Attach(#[from] ReconcileError),
    /// A statement given whole does not name the digest being attested.
    #[error("the statement's subject does not name {0}; nothing was written")]
    StatementNotAbout(Digest),
    /// The image manifest is malformed; nothing was written.
    #[error("{what} is malformed ({source}); nothing was written")]
    Malformed {
        /// Which manifest.
        what: String,
        /// Why.
        source: ManifestError,
    },
    /// Signing with Sigstore's services failed; nothing was written.
    #[error(transparent)]
    Sigstore(#[from] sigstore::SigstoreError),
    /// The evidence of a legacy signature cannot be written as cosign 2's annotations.
    #[error("cannot write the signature's evidence as cosign 2's annotations: {0}; nothing was written")]
    LegacyEvidence(String),
    /// The signing key cannot be written into a bundle.
    #[error("cannot write the key into the bundle: {0}")]
    Key(#[from] crate::keys::KeyError),
}

/// Serialises the read-append-write of each signature manifest within one run: two images
/// named in one call that resolve to the same digest (`app:v1` and `app:latest`) are signed
/// concurrently, and must not lose each other's signature.
#[derive(Default)]
pub struct TagLocks(std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>);

impl TagLocks {
    fn lock_for(&self, key: String) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(key).or_default().clone()
    }
}

/// Resolves the subject to a digest and manifest, as the first step of signing; with
/// [`Recursion::IndexAndChildren`] an index's children follow it. Each comes as the
/// descriptor a referrer names as its `subject`.
pub async fn resolve<S: Store>(
    store: &S,
    subject: &Subject,
    recursion: Recursion,
) -> Result<Vec<Descriptor>, SignError> {
    let raw = store
        .get_manifest(&subject.reference)
        .await?
        .ok_or_else(|| SignError::ImageNotFound(format!("{}{}", store.location(), subject.reference)))?;
    let manifest = Manifest::parse(&raw.bytes)
        .map_err(|source| SignError::Malformed { what: format!("image manifest {}", raw.digest), source })?;
    let mut out = vec![Descriptor {
        media_type: manifest.media_type().to_owned(),
        size: raw.bytes.len() as u64,
        digest: raw.digest,
        annotations: None,
        platform: None,
        artifact_type: None,
    }];
    if let (Recursion::IndexAndChildren, Manifest::Index(idx)) = (recursion, manifest) {
        out.extend(idx.manifests.into_iter().map(|c| Descriptor {
            annotations: None,
            platform: None,
            artifact_type: None,
            ..c
        }));
    }
    Ok(out)
}

/// Attaches a bundle about `subject` as an OCI 1.1 referrer, annotated as cosign 3 does.
pub async fn attach_bundle<T: Store>(
    sig_store: &T,
    subject: Descriptor,
    bundle: Vec<u8>,
    predicate_type: &str,
    now_unix: i64,
) -> Result<Signed, SignError> {
    let digest = subject.digest.clone();
    let annotations = [
        (CREATED_ANNOTATION.to_owned(), crate::predicates::rfc3339_utc(now_unix)),
        (BUNDLE_CONTENT_ANNOTATION.to_owned(), "dsse-envelope".to_owned()),
        (BUNDLE_PREDICATE_TYPE_ANNOTATION.to_owned(), predicate_type.to_owned()),
    ]
    .into_iter()
    .collect();
    let attached =
        referrers::attach(sig_store, subject, Layer::Bytes(bundle), BUNDLE_V03, BUNDLE_V03, annotations).await?;
    let (signature_tag, writes) = match &attached.indexing {
        Indexing::ReferrersApi => (format!("{} (referrers API)", sig_store.location()), 1),
        Indexing::TagSchema { tag, writes } => (format!("{}:{tag}", sig_store.location()), *writes),
    };
    Ok(Signed {
        digest,
        format: Format::Bundle,
        signature_tag,
        signature_manifest: attached.manifest,
        outcome: SignOutcome::Added,
        writes,
    })
}

/// Wraps `statement` (about `subject`) in a DSSE envelope signed by `signer`, in a bundle
/// with the witnesses' evidence, verified.
async fn signed_bundle<L: TransparencyLog, W: TimestampAuthority>(
    statement: &[u8],
    subject: &Digest,
    signer: &Signer,
    witnesses: &Witnesses<'_, L, W>,
) -> Result<Vec<u8>, SignError> {
    use crate::dsse::{Envelope, INTOTO_PAYLOAD_TYPE};
    let envelope = Envelope::sign_with(INTOTO_PAYLOAD_TYPE, statement, signer.private_key(), witnesses.nonce());
    Ok(witnesses.dsse_bundle(signer, &envelope, subject).await?.0)
}

/// A legacy signature over `payload` and the evidence annotations cosign 2 writes beside it
/// (certificate and chain, Rekor v1 entry with its SET, RFC 3161 timestamp), taken from the
/// verified bundle of the same signature. Offline with a key the bundle holds no evidence
/// and the signature is deterministic (see [`Witnesses::nonce`]): the signature alone.
async fn legacy_signature<L: TransparencyLog, W: TimestampAuthority>(
    payload: &[u8],
    signer: &Signer,
    witnesses: &Witnesses<'_, L, W>,
) -> Result<(Vec<u8>, BTreeMap<String, String>), SignError> {
    let signature = signer.private_key().sign_with(payload, witnesses.nonce());
    let (bundle, _) = witnesses.message_bundle(signer, &Digest::sha256(payload), signature.clone()).await?;
    let evidence = crate::attachments::legacy::evidence_annotations(
        &bundle,
        signer.chain_rest(),
        crate::attachments::Kind::Signature,
    )
    .map_err(SignError::LegacyEvidence)?;
    Ok((signature, evidence))
}

/// Signs the subject (and, for [`Recursion::IndexAndChildren`], every child of an index),
/// storing each signature in `format`; `now_unix` is the bundle referrers' `created` time.
#[allow(clippy::too_many_arguments)]
pub async fn sign_image<S: Store, T: Store, L: TransparencyLog, W: TimestampAuthority>(
    image_store: &S,
    sig_store: &T,
    subject: &Subject,
    signer: &Signer,
    witnesses: &Witnesses<'_, L, W>,
    annotations: &Annotations,
    recursion: Recursion,
    format: Format,
    now_unix: i64,
    locks: &TagLocks,
) -> Result<Vec<Signed>, SignError> {
    // Each child's payload names the reference the user signed (`repo:tag` when signed by
    // tag): `skopeo copy --all repo:tag` checks every instance's signatures against that
    // reference under matchRepoDigestOrExact, and a pull of `repo@child` accepts any
    // identity in the repository.
    let targets = resolve(image_store, subject, recursion).await?;
    // Each digest has its own signature manifest: attached at once, each confirmed on its own.
    let attached = join_all(targets.into_iter().map(|target| async move {
        let d = target.digest.clone();
        match format {
            Format::Legacy => {
                let payload = SimpleSigning::new(subject.docker_reference(&d), d.clone(), annotations).to_bytes();
                let (signature, evidence) = legacy_signature(&payload, signer, witnesses).await?;
                let lock = locks.lock_for(format!("{}:{}", sig_store.location(), legacy_tag(&d, SIGNATURE_SUFFIX)));
                let _held = lock.lock().await;
                attach_signature(sig_store, &d, payload, &signature, evidence).await
            }
            Format::Bundle => {
                let statement = crate::intoto::Statement::image_signature(&d, annotations).to_bytes();
                let bundle = signed_bundle(&statement, &d, signer, witnesses).await?;
                attach_bundle(sig_store, target, bundle, crate::predicates::COSIGN_SIGN_V1, now_unix).await
            }
        }
    }))
    .await;
    attached.into_iter().collect()
}

/// Appends one signature layer to the signature manifest of `digest`.
pub async fn attach_signature<T: Store>(
    sig_store: &T,
    digest: &Digest,
    payload: Vec<u8>,
    signature: &[u8],
    mut evidence: BTreeMap<String, String>,
) -> Result<Signed, SignError> {
    let mut layer = Descriptor::of(SIMPLE_SIGNING, &payload);
    evidence.insert(SIGNATURE_ANNOTATION.to_owned(), B64.encode(signature));
    layer.annotations = Some(evidence.into_iter().collect());
    attach_layer(sig_store, digest, SIGNATURE_SUFFIX, layer, payload).await
}

/// Appends `layer` (whose content is `blob`) to the attachment manifest `sha256-<hex>.<suffix>`
/// of `digest`, keeping every layer already there and never adding an identical one twice.
/// Returns once the layer is confirmed listed, concurrent writers notwithstanding.
pub async fn attach_layer<T: Store>(
    sig_store: &T,
    digest: &Digest,
    suffix: &str,
    layer: Descriptor,
    blob: Vec<u8>,
) -> Result<Signed, SignError> {
    let tag = legacy_tag(digest, suffix);
    let listed =
        reconcile::ensure_listed(sig_store, &tag, Collection::AttachmentManifest, &layer, Content::Blob(&blob)).await?;
    Ok(Signed {
        digest: digest.clone(),
        format: Format::Legacy,
        signature_tag: format!("{}:{tag}", sig_store.location()),
        signature_manifest: listed.document,
        outcome: if listed.writes == 0 { SignOutcome::AlreadyPresent } else { SignOutcome::Added },
        writes: listed.writes,
    })
}

/// What to attest.
#[derive(Debug, Clone)]
pub enum Attestation {
    /// A predicate: sigil writes the statement about each digest.
    Predicate {
        /// Predicate type URI.
        predicate_type: String,
        /// The predicate.
        predicate: serde_json::Value,
    },
    /// A whole statement, signed as given; its subject must name each digest attested.
    Statement {
        /// The statement bytes, signed unchanged.
        bytes: Vec<u8>,
        /// The same, parsed.
        parsed: crate::intoto::Statement,
    },
}

/// Attests the subject (and, recursively, an index's children): an in-toto statement about
/// each digest with `predicate`, signed as a DSSE envelope and stored in `format` as cosign
/// does: in a bundle referrer (annotated with the predicate type), or as a layer of the tag
/// `sha256-<hex>.att` (`application/vnd.dsse.envelope.v1+json`, annotation `predicateType`).
#[allow(clippy::too_many_arguments)]
pub async fn attest_image<S: Store, T: Store, L: TransparencyLog, W: TimestampAuthority>(
    image_store: &S,
    sig_store: &T,
    subject: &Subject,
    signer: &Signer,
    witnesses: &Witnesses<'_, L, W>,
    what: &Attestation,
    recursion: Recursion,
    format: Format,
    now_unix: i64,
    locks: &TagLocks,
) -> Result<Vec<Signed>, SignError> {
    use crate::dsse::{Envelope, DSSE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE};
    use crate::intoto::Statement;
    let targets = resolve(image_store, subject, recursion).await?;
    // A whole statement must name every digest attested, checked before anything is written.
    if let Attestation::Statement { parsed, .. } = what {
        if let Some(d) = targets.iter().find(|d| !parsed.is_about(&d.digest)) {
            return Err(SignError::StatementNotAbout(d.digest.clone()));
        }
    }
    let attached = join_all(targets.into_iter().map(|target| async move {
        let d = target.digest.clone();
        let (statement, predicate_type) = match what {
            Attestation::Predicate { predicate_type, predicate } => (
                Statement::for_image(&subject.repository, &d, predicate_type, predicate.clone()).to_bytes(),
                predicate_type.as_str(),
            ),
            // Its subject was checked against every digest above.
            Attestation::Statement { bytes, parsed } => (bytes.clone(), parsed.predicate_type.as_str()),
        };
        if format == Format::Bundle {
            let bundle = signed_bundle(&statement, &d, signer, witnesses).await?;
            return attach_bundle(sig_store, target, bundle, predicate_type, now_unix).await;
        }
        // Offline with a key the bundle holds no evidence: no annotations beyond cosign's own.
        let envelope = Envelope::sign_with(INTOTO_PAYLOAD_TYPE, &statement, signer.private_key(), witnesses.nonce());
        let (bundle, _) = witnesses.dsse_bundle(signer, &envelope, &d).await?;
        let mut annotations = crate::attachments::legacy::evidence_annotations(
            &bundle,
            signer.chain_rest(),
            crate::attachments::Kind::Attestation,
        )
        .map_err(SignError::LegacyEvidence)?;
        let envelope = envelope.to_bytes();
        let mut layer = Descriptor::of(DSSE_MEDIA_TYPE, &envelope);
        // cosign writes an empty signature annotation on attestation layers (the signature is
        // inside the envelope) and requires it when reading.
        annotations.insert(SIGNATURE_ANNOTATION.to_owned(), String::new());
        annotations.insert("predicateType".to_owned(), predicate_type.to_owned());
        layer.annotations = Some(annotations.into_iter().collect());
        let lock = locks.lock_for(format!("{}:{}", sig_store.location(), legacy_tag(&d, ATTESTATION_SUFFIX)));
        let _held = lock.lock().await;
        attach_layer(sig_store, &d, ATTESTATION_SUFFIX, layer, envelope).await
    }))
    .await;
    attached.into_iter().collect()
}
