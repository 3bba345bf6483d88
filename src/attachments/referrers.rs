//! OCI 1.1 referrers: artifacts (SBOMs, Sigstore bundles) pushed with a `subject` naming the
//! image.
//!
//! Registries with the referrers API index such a manifest themselves. For the others (the
//! Debian docker-registry is one) and for OCI layouts, the OCI distribution spec's tag schema
//! is kept up to date by the client: an image index tagged `sha256-<hex>` listing every
//! referrer, kept by [`crate::reconcile`] as concurrent writers update it; entries already
//! listed are never dropped. On a registry with the API, a writer reads the referrers list back
//! until its artifact is listed, so that success means "discoverable". Generic over [`Store`].

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::oci::manifest::{artifact_manifest, referrers_tag, Descriptor, Manifest, EMPTY_JSON, OCI_MANIFEST};
use crate::oci::{BlobFile, ManifestRef, Progress, Store, StoreError};
use crate::reconcile::{self, Collection, Content};
use crate::sign::SignError;

/// The layer annotation naming the file an artifact came from.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// How the registry learns about a referrer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Indexing {
    /// The registry's referrers API lists it.
    ReferrersApi,
    /// The tag-schema index `sha256-<hex>` lists it.
    TagSchema {
        /// The index tag.
        tag: String,
        /// Writes needed (more than one when a concurrent writer overwrote the index).
        writes: u32,
    },
}

/// An artifact attached to an image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attached {
    /// The image (subject) digest.
    pub image: Digest,
    /// The artifact manifest's digest.
    pub manifest: Digest,
    /// Its artifact type.
    #[serde(rename = "artifactType")]
    pub artifact_type: String,
    /// The artifact blob's digest and size.
    pub blob: Digest,
    /// Size of the blob.
    pub size: u64,
    /// How it is indexed.
    pub indexing: Indexing,
}

/// The content of an artifact's single layer.
pub enum Layer<'a> {
    /// A file, streamed from disk (SBOMs); its name becomes the layer's title.
    File(&'a BlobFile, Progress),
    /// Bytes in memory (bundles).
    Bytes(Vec<u8>),
}

/// Pushes `file` as an OCI 1.1 artifact of `media_type` whose subject is the image at
/// `image`, and makes it discoverable (referrers API, else the tag schema).
pub async fn attach_artifact<S: Store>(
    store: &S,
    image: &ManifestRef,
    file: &BlobFile,
    media_type: &str,
    annotations: BTreeMap<String, String>,
    progress: Progress,
) -> Result<Attached, SignError> {
    let raw = store
        .get_manifest(image)
        .await?
        .ok_or_else(|| SignError::ImageNotFound(format!("{}{image}", store.location())))?;
    let parsed = Manifest::parse(&raw.bytes)
        .map_err(|source| SignError::Malformed { what: format!("image manifest {}", raw.digest), source })?;
    let subject = Descriptor {
        media_type: parsed.media_type().to_owned(),
        size: raw.bytes.len() as u64,
        digest: raw.digest.clone(),
        annotations: None,
        platform: None,
        artifact_type: None,
    };
    attach(store, subject, Layer::File(file, progress), media_type, media_type, annotations).await
}

/// Pushes `layer` (of `layer_media_type`) as the single layer of an OCI 1.1 artifact of
/// `artifact_type` about `subject` (an image in `store`), with the manifest `annotations`,
/// and returns once it is discoverable: listed by the referrers API (read back until it is),
/// else added to the tag-schema index without losing a concurrent writer's entry.
pub async fn attach<S: Store>(
    store: &S,
    subject: Descriptor,
    layer: Layer<'_>,
    layer_media_type: &str,
    artifact_type: &str,
    annotations: BTreeMap<String, String>,
) -> Result<Attached, SignError> {
    let descriptor = match layer {
        Layer::File(file, progress) => {
            store.put_blob_file(file, progress).await?;
            let mut d = Descriptor {
                media_type: layer_media_type.to_owned(),
                size: file.size,
                digest: file.digest.clone(),
                annotations: None,
                platform: None,
                artifact_type: None,
            };
            if let Some(name) = file.path.file_name().and_then(|n| n.to_str()) {
                d.annotations = Some([(TITLE_ANNOTATION.to_owned(), name.to_owned())].into_iter().collect());
            }
            d
        }
        Layer::Bytes(b) => {
            let d = Descriptor::of(layer_media_type, &b);
            let b = &b;
            reconcile::retrying(|| async move { store.put_blob(b.clone()).await }).await?;
            d
        }
    };
    let image = subject.digest.clone();
    let (blob_digest, size) = (descriptor.digest.clone(), descriptor.size);
    let manifest = artifact_manifest(artifact_type, descriptor, subject, annotations.clone());
    let entry = Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        size: manifest.len() as u64,
        digest: Digest::sha256(&manifest),
        annotations: (!annotations.is_empty()).then_some(annotations),
        platform: None,
        artifact_type: Some(artifact_type.to_owned()),
    };
    // Writers pushing the same (empty config) blob at once can make the file-system registry
    // briefly report it unknown: push it and the manifest again.
    let at = ManifestRef::Digest(entry.digest.clone());
    let digest = reconcile::retrying(|| {
        let manifest = manifest.clone();
        let at = &at;
        async move {
            store.put_blob(EMPTY_JSON.to_vec()).await?;
            store.put_manifest(at, OCI_MANIFEST, manifest).await
        }
    })
    .await?;
    let indexing = match store.get_referrers(&image).await? {
        Some(listed) => {
            confirm_listed(store, &image, &entry.digest, listed).await?;
            Indexing::ReferrersApi
        }
        None => {
            let tag = referrers_tag(&image);
            let listed =
                reconcile::ensure_listed(store, &tag, Collection::ReferrersIndex, &entry, Content::Stored).await?;
            Indexing::TagSchema { tag, writes: listed.writes }
        }
    };
    Ok(Attached { image, manifest: digest, artifact_type: artifact_type.to_owned(), blob: blob_digest, size, indexing })
}

/// Reads the referrers list until it names `manifest` (registries may index asynchronously),
/// a bounded number of times, starting from `listed` (a list just read).
pub async fn confirm_listed<S: Store>(
    store: &S,
    image: &Digest,
    manifest: &Digest,
    mut listed: Vec<Descriptor>,
) -> Result<(), reconcile::ReconcileError> {
    for attempt in 1..=CONFIRM_READS {
        if listed.iter().any(|e| e.digest == *manifest) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt.min(5))).await;
        listed = store.get_referrers(image).await?.unwrap_or_default();
    }
    Err(reconcile::ReconcileError::Unconfirmed {
        what: format!("the referrers API of {}", store.location()),
        why: reconcile::GaveUp::Reads(CONFIRM_READS),
    })
}

/// Reads of the referrers API made to see a new artifact listed.
const CONFIRM_READS: u32 = 8;

/// The referrers of `digest` (referrers API, else the tag schema), optionally only those of
/// `artifact_type`. Unverified: this lists, it does not vouch.
///
/// Both places are asked at once: a registry without the API answers the tag-schema read in
/// the same round trip (one request more, a 404, on registries that have the API). The tag
/// schema counts only when the API is absent, as the distribution spec says.
pub async fn list_referrers<S: Store>(
    store: &S,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, StoreError> {
    let tag = ManifestRef::Tag(referrers_tag(digest));
    let (api, tagged) = futures_util::join!(store.get_referrers(digest), store.get_manifest(&tag));
    let entries = match api? {
        Some(entries) => entries,
        None => match tagged? {
            None => Vec::new(),
            Some(raw) => match Manifest::parse(&raw.bytes) {
                Ok(Manifest::Index(i)) => i.manifests,
                Ok(Manifest::Image(_)) => Vec::new(),
                Err(e) => return Err(StoreError::Malformed(format!("referrers index {}: {e}", referrers_tag(digest)))),
            },
        },
    };
    Ok(entries.into_iter().filter(|m| artifact_type.is_none() || m.artifact_type.as_deref() == artifact_type).collect())
}

/// The one layer of an artifact manifest, checked to refer to `image`.
pub async fn artifact_layer<S: Store>(store: &S, entry: &Descriptor, image: &Digest) -> Result<Descriptor, StoreError> {
    let raw = store
        .get_manifest(&ManifestRef::Digest(entry.digest.clone()))
        .await?
        .ok_or_else(|| StoreError::BlobNotFound(entry.digest.clone()))?;
    match Manifest::parse(&raw.bytes) {
        Ok(Manifest::Image(m)) => {
            if m.subject.as_ref().map(|s| &s.digest) != Some(image) {
                return Err(StoreError::Malformed(format!("artifact {} does not refer to {image}", entry.digest)));
            }
            if m.layers.len() != 1 {
                return Err(StoreError::Malformed(format!(
                    "artifact {} has {} layers, expected one",
                    entry.digest,
                    m.layers.len()
                )));
            }
            m.layers
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Malformed(format!("artifact {} has no layer", entry.digest)))
        }
        Ok(Manifest::Index(_)) => Err(StoreError::Malformed(format!("artifact {} is an index", entry.digest))),
        Err(e) => Err(StoreError::Malformed(format!("artifact {}: {e}", entry.digest))),
    }
}
