//! Signing an image: resolve, build the simple-signing payload, sign, attach.
//!
//! The signature is stored the way cosign stores it: one layer per signature in the manifest
//! tagged `sha256-<hex>.sig`. Appending keeps every signature already there and does not add
//! an identical one twice. Generic over [`Store`], so the same flow serves registries and OCI
//! layouts.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::digest::Digest;
use crate::keys::PrivateKey;
use crate::oci::manifest::{
    signature_manifest, Descriptor, Manifest, ManifestError, OCI_MANIFEST, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
};
use crate::oci::{attachment_tag, ManifestRef, Store, StoreError, ATTESTATION_SUFFIX, SIGNATURE_SUFFIX};
use crate::payload::{Annotations, SimpleSigning};

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
    /// Where the signature manifest was written (`location:tag`).
    pub signature_tag: String,
    /// Digest of the new signature manifest.
    pub signature_manifest: Digest,
    /// Whether a new layer was added or an identical signature was already there.
    pub outcome: SignOutcome,
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
    /// The attachment manifest already holds as many layers as sigil and cosign read.
    #[error("{what} already holds {layers} entries, the most sigil and cosign read (1000); adding one would make every one unreadable, so nothing was added to it")]
    Full {
        /// Which manifest.
        what: String,
        /// Its layer count.
        layers: usize,
    },
    /// A statement given whole does not name the digest being attested.
    #[error("the statement's subject does not name {0}; nothing was written")]
    StatementNotAbout(Digest),
    /// The image manifest or an existing signature manifest is malformed; nothing was written.
    #[error("{what} is malformed ({source}); nothing was written")]
    Malformed {
        /// Which manifest.
        what: String,
        /// Why.
        source: ManifestError,
    },
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

/// Resolves the subject to a digest (and manifest), as the first step of signing.
pub async fn resolve<S: Store>(store: &S, subject: &Subject) -> Result<(Digest, Manifest), SignError> {
    let raw = store
        .get_manifest(&subject.reference)
        .await?
        .ok_or_else(|| SignError::ImageNotFound(format!("{}{}", store.location(), subject.reference)))?;
    let manifest = Manifest::parse(&raw.bytes)
        .map_err(|source| SignError::Malformed { what: format!("image manifest {}", raw.digest), source })?;
    Ok((raw.digest, manifest))
}

/// Signs the subject (and, for [`Recursion::IndexAndChildren`], every child of an index).
pub async fn sign_image<S: Store, T: Store>(
    image_store: &S,
    sig_store: &T,
    subject: &Subject,
    key: &PrivateKey,
    annotations: &Annotations,
    recursion: Recursion,
    locks: &TagLocks,
) -> Result<Vec<Signed>, SignError> {
    let (digest, manifest) = resolve(image_store, subject).await?;
    let mut targets = vec![(digest.clone(), subject.docker_reference(&digest))];
    if let (Recursion::IndexAndChildren, Manifest::Index(idx)) = (recursion, &manifest) {
        // Each child's payload names the reference the user signed (`repo:tag` when signed by
        // tag): `skopeo copy --all repo:tag` checks every instance's signatures against that
        // reference under matchRepoDigestOrExact, and a pull of `repo@child` accepts any
        // identity in the repository.
        for child in &idx.manifests {
            targets.push((child.digest.clone(), subject.docker_reference(&child.digest)));
        }
    }
    let mut out = Vec::with_capacity(targets.len());
    for (d, docker_reference) in targets {
        let payload = SimpleSigning::new(docker_reference, d.clone(), annotations).to_bytes();
        let signature = key.sign(&payload);
        let lock = locks.lock_for(format!("{}:{}", sig_store.location(), attachment_tag(&d, SIGNATURE_SUFFIX)));
        let _held = lock.lock().await;
        out.push(attach_signature(sig_store, &d, payload, &signature).await?);
    }
    Ok(out)
}

/// Appends one signature layer to the signature manifest of `digest`.
pub async fn attach_signature<T: Store>(
    sig_store: &T,
    digest: &Digest,
    payload: Vec<u8>,
    signature: &[u8],
) -> Result<Signed, SignError> {
    let mut layer = Descriptor::of(SIMPLE_SIGNING, &payload);
    layer.annotations = Some([(SIGNATURE_ANNOTATION.to_owned(), B64.encode(signature))].into_iter().collect());
    attach_layer(sig_store, digest, SIGNATURE_SUFFIX, layer, payload).await
}

/// Appends `layer` (whose content is `blob`) to the attachment manifest `sha256-<hex>.<suffix>`
/// of `digest`, keeping every layer already there and never adding an identical one twice.
pub async fn attach_layer<T: Store>(
    sig_store: &T,
    digest: &Digest,
    suffix: &str,
    layer: Descriptor,
    blob: Vec<u8>,
) -> Result<Signed, SignError> {
    let tag = attachment_tag(digest, suffix);
    let existing = sig_store.get_manifest(&ManifestRef::Tag(tag.clone())).await?;
    let what = || format!("attachment manifest {}:{tag}", sig_store.location());
    let mut layers = match &existing {
        None => Vec::new(),
        Some(raw) => match Manifest::parse(&raw.bytes) {
            Ok(Manifest::Image(m)) => m.layers,
            Ok(Manifest::Index(_)) => {
                return Err(SignError::Malformed {
                    what: what(),
                    source: ManifestError::Unsupported { schema: 2, media_type: Some("index".into()) },
                })
            }
            Err(source) => return Err(SignError::Malformed { what: what(), source }),
        },
    };
    let signature_tag = format!("{}:{tag}", sig_store.location());
    if layers.contains(&layer) {
        let digest_of_existing = existing.map(|r| r.digest).unwrap_or_else(|| Digest::sha256(b""));
        return Ok(Signed {
            digest: digest.clone(),
            signature_tag,
            signature_manifest: digest_of_existing,
            outcome: SignOutcome::AlreadyPresent,
        });
    }
    if layers.len() >= crate::oci::manifest::MAX_LAYERS {
        return Err(SignError::Full { what: what(), layers: layers.len() });
    }
    layers.push(layer);
    sig_store.put_blob(blob).await?;
    let (manifest, config) = signature_manifest(layers);
    sig_store.put_blob(config).await?;
    let signature_manifest = sig_store.put_manifest(&ManifestRef::Tag(tag), OCI_MANIFEST, manifest).await?;
    Ok(Signed { digest: digest.clone(), signature_tag, signature_manifest, outcome: SignOutcome::Added })
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
/// each digest with `predicate`, signed as a DSSE envelope and stored the cosign way (tag
/// `sha256-<hex>.att`, layer `application/vnd.dsse.envelope.v1+json`, annotation
/// `predicateType`).
#[allow(clippy::too_many_arguments)]
pub async fn attest_image<S: Store, T: Store>(
    image_store: &S,
    sig_store: &T,
    subject: &Subject,
    key: &PrivateKey,
    what: &Attestation,
    recursion: Recursion,
    locks: &TagLocks,
) -> Result<Vec<Signed>, SignError> {
    use crate::dsse::{Envelope, DSSE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE};
    use crate::intoto::Statement;
    let (digest, manifest) = resolve(image_store, subject).await?;
    let mut digests = vec![digest];
    if let (Recursion::IndexAndChildren, Manifest::Index(idx)) = (recursion, &manifest) {
        digests.extend(idx.manifests.iter().map(|c| c.digest.clone()));
    }
    // A whole statement must name every digest attested, checked before anything is written.
    if let Attestation::Statement { parsed, .. } = what {
        if let Some(d) = digests.iter().find(|d| !parsed.is_about(d)) {
            return Err(SignError::StatementNotAbout(d.clone()));
        }
    }
    let mut out = Vec::with_capacity(digests.len());
    for d in digests {
        let (statement, predicate_type) = match what {
            Attestation::Predicate { predicate_type, predicate } => (
                Statement::for_image(&subject.repository, &d, predicate_type, predicate.clone()).to_bytes(),
                predicate_type.as_str(),
            ),
            // Its subject was checked against every digest above.
            Attestation::Statement { bytes, parsed } => (bytes.clone(), parsed.predicate_type.as_str()),
        };
        let envelope = Envelope::sign(INTOTO_PAYLOAD_TYPE, &statement, key).to_bytes();
        let mut layer = Descriptor::of(DSSE_MEDIA_TYPE, &envelope);
        // cosign writes an empty signature annotation on attestation layers (the signature is
        // inside the envelope) and requires it when reading.
        layer.annotations = Some(
            [(SIGNATURE_ANNOTATION.to_owned(), String::new()), ("predicateType".to_owned(), predicate_type.to_owned())]
                .into_iter()
                .collect(),
        );
        let lock = locks.lock_for(format!("{}:{}", sig_store.location(), attachment_tag(&d, ATTESTATION_SUFFIX)));
        let _held = lock.lock().await;
        out.push(attach_layer(sig_store, &d, ATTESTATION_SUFFIX, layer, envelope).await?);
    }
    Ok(out)
}
