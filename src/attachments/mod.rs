//! Where signatures and attestations live on a store: the one owner of cosign's storage
//! conventions, so that signing, verifying, listing and downloading agree on them.
//!
//! Two formats sit side by side on registries and layouts:
//! - **legacy** (cosign 2): one image manifest per digest and kind, tagged
//!   `sha256-<hex>.sig` / `.att` / `.sbom`, one layer per signature or envelope
//!   ([`legacy_tag`], [`legacy_layers`]);
//! - **bundle** (cosign 3, GitHub artifact attestations): one OCI 1.1 artifact per
//!   signature, `artifactType` the Sigstore bundle media type, its single layer a bundle whose
//!   DSSE envelope holds an in-toto statement about the image, discoverable through the
//!   referrers API or, where a registry lacks it, the referrers tag schema
//!   ([`referrers`], [`bundle_entries`], [`bundle_layer`]).
//!
//! This module finds and fetches; it never vouches. What verified is decided in
//! [`crate::verify`]. Generic over [`Store`].

pub mod legacy;
pub mod referrers;
pub mod saved;

pub use legacy::{signature_config, signature_manifest, SIGNATURE_ANNOTATION, SIMPLE_SIGNING};

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::oci::manifest::{Descriptor, Manifest, ManifestError};
use crate::oci::{ManifestRef, Store, StoreError};

/// The tag suffix of cosign's signature manifests.
pub const SIGNATURE_SUFFIX: &str = "sig";
/// The tag suffix of cosign's attestation manifests.
pub const ATTESTATION_SUFFIX: &str = "att";
/// The tag suffix of cosign's (deprecated) `attach sbom` manifests.
pub const SBOM_SUFFIX: &str = "sbom";

/// The Sigstore bundle v0.3 media type: the artifact type of bundle referrers and the media
/// type of their layer (what cosign 3 writes).
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The bundle media types read from a registry (the v0.3 spelling and the older one).
pub const BUNDLE_MEDIA_TYPES: &[&str] = &[BUNDLE_V03, "application/vnd.dev.sigstore.bundle+json;version=0.3"];
/// The referrer annotation naming the bundle's content (`dsse-envelope` or
/// `message-signature`).
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// The referrer annotation naming the statement's predicate type (unsigned: a hint only).
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// When a referrer was created (RFC 3339), per the OCI annotation keys.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// Most candidates of one format examined per image and kind: the newest ones.
pub const MAX_CANDIDATES: usize = 100;

/// How a signature or attestation is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// cosign 2: layers of the `sha256-<hex>.sig` / `.att` manifest.
    Legacy,
    /// cosign 3: a Sigstore bundle attached as an OCI 1.1 referrer.
    Bundle,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Legacy => "legacy",
            Format::Bundle => "bundle",
        })
    }
}

/// Which formats a reader looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formats {
    /// Both; an image verifies when either does.
    Any,
    /// Only this one (`--format`).
    Only(Format),
}

impl Formats {
    /// Whether `f` is read.
    pub fn includes(self, f: Format) -> bool {
        match self {
            Formats::Any => true,
            Formats::Only(o) => o == f,
        }
    }
}

/// What is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Image signatures.
    Signature,
    /// Attestations (in-toto statements).
    Attestation,
}

impl Kind {
    /// The legacy tag suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Signature => SIGNATURE_SUFFIX,
            Kind::Attestation => ATTESTATION_SUFFIX,
        }
    }
}

/// cosign's legacy tag for an attachment of `digest`: `sha256-<hex>.<suffix>`.
pub fn legacy_tag(digest: &Digest, suffix: &str) -> String {
    format!("{}.{suffix}", digest.tag_stem())
}

/// Why attachments could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FindError {
    /// Registry or layout failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A legacy attachment manifest is malformed.
    #[error("attachment manifest {tag} is malformed: {source}")]
    Malformed {
        /// The tag.
        tag: String,
        /// Why.
        source: ManifestError,
    },
}

/// The layers of the legacy attachment manifest of `digest` and `suffix` (none when the tag
/// is absent).
pub async fn legacy_layers<S: Store>(store: &S, digest: &Digest, suffix: &str) -> Result<Vec<Descriptor>, FindError> {
    let tag = legacy_tag(digest, suffix);
    let Some(raw) = store.get_manifest(&ManifestRef::Tag(tag.clone())).await? else { return Ok(Vec::new()) };
    match Manifest::parse(&raw.bytes) {
        Ok(Manifest::Image(m)) => Ok(m.layers),
        Ok(Manifest::Index(_)) => Err(FindError::Malformed {
            tag,
            source: ManifestError::Unsupported {
                schema: 2,
                media_type: Some("an index where an image manifest was expected".into()),
            },
        }),
        Err(source) => Err(FindError::Malformed { tag, source }),
    }
}

/// Whether a referrers-index entry may be a Sigstore bundle. Registries list the artifact
/// type they read from the manifest, or (go-containerregistry's) from the config media
/// type, or none: an entry that does not say is fetched to find out.
fn may_be_bundle(entry: &Descriptor) -> bool {
    match entry.artifact_type.as_deref() {
        None | Some("") | Some(crate::oci::manifest::OCI_EMPTY) => true,
        Some(t) => BUNDLE_MEDIA_TYPES.contains(&t),
    }
}

/// The unsigned predicate-type hint of a referrer rules it out for `kind`: a signature
/// bundle announces cosign's sign predicate, an attestation another one. Entries without the
/// hint stay candidates; the signed statement decides either way.
fn hint_rules_out(entry: &Descriptor, kind: Kind) -> bool {
    let Some(pt) = entry.annotation(BUNDLE_PREDICATE_TYPE_ANNOTATION) else { return false };
    let is_sign = pt == crate::predicates::COSIGN_SIGN_V1;
    match kind {
        Kind::Signature => !is_sign,
        Kind::Attestation => is_sign,
    }
}

/// Bundle referrers of `digest` that may hold a `kind`, newest first (by their `created`
/// annotation), at most [`MAX_CANDIDATES`]; the count of the others is returned too.
pub async fn bundle_entries<S: Store>(
    store: &S,
    digest: &Digest,
    kind: Kind,
) -> Result<(Vec<Descriptor>, usize), FindError> {
    let mut entries: Vec<Descriptor> = referrers::list_referrers(store, digest, None)
        .await?
        .into_iter()
        .filter(|e| may_be_bundle(e) && !hint_rules_out(e, kind))
        .collect();
    // RFC 3339 UTC timestamps sort as text; entries without one go last.
    entries.sort_by(|a, b| b.annotation(CREATED_ANNOTATION).cmp(&a.annotation(CREATED_ANNOTATION)));
    let unread = entries.len().saturating_sub(MAX_CANDIDATES);
    entries.truncate(MAX_CANDIDATES);
    Ok((entries, unread))
}

/// A bundle referrer's manifest, read and checked to be a bundle about `image`.
#[derive(Debug, Clone)]
pub struct BundleLayer {
    /// The referrer manifest's digest.
    pub manifest: Digest,
    /// The bundle layer.
    pub layer: Descriptor,
    /// The referrer manifest's annotations (unsigned).
    pub annotations: BTreeMap<String, String>,
}

/// What a referrer turned out to be.
#[derive(Debug)]
pub enum Referrer {
    /// A Sigstore bundle artifact about the image.
    Bundle(Box<BundleLayer>),
    /// Another kind of artifact (an SBOM, a notation signature, …): not ours to judge.
    Other,
}

/// Why a referrer that claims to be a bundle is refused (content, not transport).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferrerProblem {
    /// Its `subject` is another image (or none): listed under this image, about another.
    #[error("referrer {manifest} has subject {subject}, not this image ({image})")]
    OtherSubject {
        /// The referrer manifest.
        manifest: Digest,
        /// What it names.
        subject: String,
        /// The image.
        image: Digest,
    },
    /// Not the shape of a bundle artifact.
    #[error("referrer {manifest}: {reason}")]
    Shape {
        /// The referrer manifest.
        manifest: Digest,
        /// What is wrong.
        reason: String,
    },
}

/// Fetches the referrer manifest `entry` and returns its bundle layer if it is a Sigstore
/// bundle artifact whose subject is `image`.
pub async fn bundle_layer<S: Store>(
    store: &S,
    entry: &Descriptor,
    image: &Digest,
) -> Result<Result<Referrer, ReferrerProblem>, StoreError> {
    let raw = store
        .get_manifest(&ManifestRef::Digest(entry.digest.clone()))
        .await?
        .ok_or_else(|| StoreError::BlobNotFound(entry.digest.clone()))?;
    let shape = |reason: String| Ok(Err(ReferrerProblem::Shape { manifest: raw.digest.clone(), reason }));
    let m = match Manifest::parse(&raw.bytes) {
        Ok(Manifest::Image(m)) => m,
        Ok(Manifest::Index(_)) => return Ok(Ok(Referrer::Other)),
        Err(e) => return shape(format!("manifest: {e}")),
    };
    let is_bundle = m.artifact_type.as_deref().is_some_and(|t| BUNDLE_MEDIA_TYPES.contains(&t))
        || m.layers.iter().any(|l| BUNDLE_MEDIA_TYPES.contains(&l.media_type.as_str()));
    if !is_bundle {
        return Ok(Ok(Referrer::Other));
    }
    match m.subject.as_deref() {
        Some(s) if s.digest == *image => {}
        other => {
            return Ok(Err(ReferrerProblem::OtherSubject {
                manifest: raw.digest,
                subject: other.map_or_else(|| "(none)".to_owned(), |s| s.digest.to_string()),
                image: image.clone(),
            }))
        }
    }
    let mut layers = m.layers;
    if layers.len() != 1 {
        return shape(format!("a bundle artifact has exactly one layer, this one has {}", layers.len()));
    }
    let layer = layers.remove(0);
    if !BUNDLE_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
        return shape(format!("layer media type {:?} is not a Sigstore bundle", layer.media_type));
    }
    let annotations = m.annotations.unwrap_or_default();
    Ok(Ok(Referrer::Bundle(Box::new(BundleLayer { manifest: raw.digest, layer, annotations }))))
}

/// The candidates of one kind attached to an image, in the formats asked for: the seam every
/// verifier goes through. Each list is capped at [`MAX_CANDIDATES`] (the newest), the rest
/// counted.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Legacy layers (of the `.sig` / `.att` manifest), the newest ones.
    pub legacy: Vec<Descriptor>,
    /// Bundle referrer entries, the newest ones.
    pub bundles: Vec<Descriptor>,
    /// Candidates beyond the caps, not returned.
    pub unread: usize,
}

/// Lists the candidates of `kind` for `digest` in `formats`, both formats at once, at most
/// [`MAX_CANDIDATES`] of each.
pub async fn candidates<S: Store>(
    store: &S,
    digest: &Digest,
    kind: Kind,
    formats: Formats,
) -> Result<Candidates, FindError> {
    let legacy = async {
        if formats.includes(Format::Legacy) {
            legacy_layers(store, digest, kind.suffix()).await
        } else {
            Ok(Vec::new())
        }
    };
    let bundles = async {
        if formats.includes(Format::Bundle) {
            bundle_entries(store, digest, kind).await
        } else {
            Ok((Vec::new(), 0))
        }
    };
    let (legacy, bundles) = futures_util::join!(legacy, bundles);
    let (legacy, (bundles, bundles_unread)) = (legacy?, bundles?);
    // Past the cap, the newest legacy layers (appended last) are the ones read; bundle
    // entries come newest first, already capped.
    let legacy_unread = legacy.len().saturating_sub(MAX_CANDIDATES);
    let legacy = legacy[legacy_unread..].to_vec();
    Ok(Candidates { legacy, bundles, unread: legacy_unread + bundles_unread })
}
