//! OCI 1.1 referrers: artifacts (SBOMs) pushed with a `subject` naming the image.
//!
//! Registries with the referrers API index such a manifest themselves. For the others (the
//! Debian docker-registry is one) and for OCI layouts, the OCI distribution spec's tag schema
//! is kept up to date by the client: an image index tagged `sha256-<hex>` listing every
//! referrer. Registries have no conditional writes, so concurrent writers are reconciled by
//! re-reading after each write and merging again when an entry was lost; entries already
//! listed are never dropped. Generic over [`Store`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::digest::Digest;
use crate::oci::manifest::{
    artifact_manifest, referrers_index_with, referrers_tag, Descriptor, ImageIndex, Manifest, EMPTY_JSON, MAX_LAYERS,
    OCI_INDEX, OCI_MANIFEST,
};
use crate::oci::{BlobFile, ManifestRef, Progress, Store, StoreError};
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

/// Attempts at updating the tag-schema index before giving up.
pub const MAX_INDEX_WRITES: u32 = 20;

/// Pushes `file` as an OCI 1.1 artifact of `media_type` whose subject is the image at
/// `image`, and makes it discoverable (referrers API, else the tag schema).
/// `settle` is how long to wait before re-reading the tag-schema index after writing it.
pub async fn attach_artifact<S: Store>(
    store: &S,
    image: &ManifestRef,
    file: &BlobFile,
    media_type: &str,
    annotations: BTreeMap<String, String>,
    progress: Progress,
    settle: Duration,
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
    store.put_blob_file(file, progress).await?;
    let mut layer = Descriptor {
        media_type: media_type.to_owned(),
        size: file.size,
        digest: file.digest.clone(),
        annotations: None,
        platform: None,
        artifact_type: None,
    };
    if let Some(name) = file.path.file_name().and_then(|n| n.to_str()) {
        layer.annotations = Some([(TITLE_ANNOTATION.to_owned(), name.to_owned())].into_iter().collect());
    }
    let manifest = artifact_manifest(media_type, layer, subject, annotations.clone());
    let entry = Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        size: manifest.len() as u64,
        digest: Digest::sha256(&manifest),
        annotations: (!annotations.is_empty()).then_some(annotations),
        platform: None,
        artifact_type: Some(media_type.to_owned()),
    };
    // Writers pushing the same (empty config) blob at once can make the file-system registry
    // briefly report it unknown: push it and the manifest again, a few times.
    let mut attempt = 0;
    let digest = loop {
        let pushed = async {
            store.put_blob(EMPTY_JSON.to_vec()).await?;
            store.put_manifest(&ManifestRef::Digest(entry.digest.clone()), OCI_MANIFEST, manifest.clone()).await
        };
        match pushed.await {
            Ok(d) => break d,
            Err(StoreError::Transport(_)) if attempt < 4 => {
                attempt += 1;
                tokio::time::sleep(settle * attempt).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let indexing = if store.get_referrers(&raw.digest).await?.is_some() {
        Indexing::ReferrersApi
    } else {
        add_to_tag_schema(store, &raw.digest, entry, settle).await?
    };
    Ok(Attached {
        image: raw.digest,
        manifest: digest,
        artifact_type: media_type.to_owned(),
        blob: file.digest.clone(),
        size: file.size,
        indexing,
    })
}

async fn read_tag_index<S: Store>(store: &S, tag: &str) -> Result<Option<ImageIndex>, SignError> {
    let Some(raw) = store.get_manifest(&ManifestRef::Tag(tag.to_owned())).await? else { return Ok(None) };
    let what = || format!("referrers index {}:{tag}", store.location());
    match Manifest::parse(&raw.bytes) {
        Ok(Manifest::Index(i)) => Ok(Some(i)),
        Ok(Manifest::Image(_)) => Err(SignError::Malformed {
            what: what(),
            source: crate::oci::manifest::ManifestError::Unsupported {
                schema: 2,
                media_type: Some("an image manifest where an index was expected".into()),
            },
        }),
        Err(source) => Err(SignError::Malformed { what: what(), source }),
    }
}

/// Read, merge, write, then check twice that the entry stayed. Registries have no
/// conditional writes, so a concurrent writer that read before this write and writes after it
/// replaces the index with one lacking this entry: each check waits at least `settle` and at
/// least twice as long as this writer's own read-and-write took (another writer's read→write
/// window is of the same order), and a lost entry is merged in again. Best effort without
/// conditional writes, but entries are only ever added by sigil, never removed.
async fn add_to_tag_schema<S: Store>(
    store: &S,
    image: &Digest,
    entry: Descriptor,
    settle: Duration,
) -> Result<Indexing, SignError> {
    let tag = referrers_tag(image);
    let mut writes = 0;
    let mut read_failures = 0;
    let mut confirmed = 0;
    let mut wait = settle;
    loop {
        let started = tokio::time::Instant::now();
        let current = match read_tag_index(store, &tag).await {
            Ok(c) => c,
            // The file-system registry answers 500 while another writer replaces the tag:
            // read again, a few times.
            Err(SignError::Store(StoreError::Transport(_))) if read_failures < 5 => {
                read_failures += 1;
                tokio::time::sleep(settle * read_failures).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if current.as_ref().is_some_and(|i| i.manifests.iter().any(|m| m.digest == entry.digest)) {
            // Listed (writes is 0 when it already was: the same artifact attached twice).
            if writes == 0 || confirmed == 1 {
                return Ok(Indexing::TagSchema { tag, writes });
            }
            confirmed += 1;
            tokio::time::sleep(wait).await;
            continue;
        }
        confirmed = 0;
        if writes >= MAX_INDEX_WRITES {
            return Err(SignError::Store(StoreError::Transport(format!(
                "the referrers index {tag} kept being overwritten by other writers ({writes} attempts); \
                 the artifact is pushed but not listed"
            ))));
        }
        let listed = current.as_ref().map_or(0, |i| i.manifests.len());
        if listed >= MAX_LAYERS {
            return Err(SignError::Full {
                what: format!("referrers index {}:{tag}", store.location()),
                layers: listed,
            });
        }
        let index = referrers_index_with(current, entry.clone());
        let bytes = serde_json::to_vec(&index).map_err(|e| StoreError::Malformed(e.to_string()))?;
        store.put_manifest(&ManifestRef::Tag(tag.clone()), OCI_INDEX, bytes).await?;
        writes += 1;
        // Spread concurrent writers apart a little, then check the entry stayed.
        let byte = entry.digest.hex().as_bytes().get(writes as usize % 64).copied().unwrap_or(0);
        let jitter = Duration::from_millis(u64::from(byte % 32));
        wait = settle.max(started.elapsed() * 2) + jitter * writes;
        tokio::time::sleep(wait).await;
    }
}

/// The referrers of `digest` (referrers API, else the tag schema), optionally only those of
/// `artifact_type`. Unverified: this lists, it does not vouch.
pub async fn list_referrers<S: Store>(
    store: &S,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, StoreError> {
    let index = match store.get_referrers(digest).await? {
        Some(raw) => match Manifest::parse(&raw.bytes) {
            Ok(Manifest::Index(i)) => Some(i),
            Ok(Manifest::Image(_)) => {
                return Err(StoreError::Malformed("referrers API answered with a manifest".into()))
            }
            Err(e) => return Err(StoreError::Malformed(format!("referrers index: {e}"))),
        },
        None => match store.get_manifest(&ManifestRef::Tag(referrers_tag(digest))).await? {
            None => None,
            Some(raw) => match Manifest::parse(&raw.bytes) {
                Ok(Manifest::Index(i)) => Some(i),
                Ok(Manifest::Image(_)) => None,
                Err(e) => return Err(StoreError::Malformed(format!("referrers index {}: {e}", referrers_tag(digest)))),
            },
        },
    };
    Ok(index
        .map(|i| i.manifests)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| artifact_type.is_none() || m.artifact_type.as_deref() == artifact_type)
        .collect())
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
