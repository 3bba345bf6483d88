//! Listing what is attached to an image (unverified: this reports, it does not vouch).

use serde::Serialize;

use crate::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::{attachment_tag, ManifestRef, Store, StoreError, ATTESTATION_SUFFIX, SBOM_SUFFIX, SIGNATURE_SUFFIX};

/// One attached layer.
#[derive(Debug, Clone, Serialize)]
pub struct AttachedLayer {
    /// Layer digest.
    pub digest: Digest,
    /// Layer size in bytes.
    pub size: u64,
    /// Layer media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// For attestations, the predicate type the layer announces (unverified).
    #[serde(rename = "predicateType", skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
}

/// One attachment manifest (`.sig`, `.att` or `.sbom`).
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    /// `sig`, `att` or `sbom`.
    pub kind: &'static str,
    /// `location:tag`.
    pub tag: String,
    /// The attachment manifest's digest.
    pub manifest: Digest,
    /// Its size.
    pub size: u64,
    /// Its layers.
    pub layers: Vec<AttachedLayer>,
}

/// Lists the attachments of `digest` found in `store`.
pub async fn attachments<S: Store>(store: &S, digest: &Digest) -> Result<Vec<Attachment>, StoreError> {
    let kinds = [SIGNATURE_SUFFIX, ATTESTATION_SUFFIX, SBOM_SUFFIX];
    let fetched = futures_util::future::join_all(kinds.iter().map(|k| {
        let tag = attachment_tag(digest, k);
        async move { (k, store.get_manifest(&ManifestRef::Tag(tag.clone())).await, tag) }
    }))
    .await;
    let mut out = Vec::new();
    for (kind, res, tag) in fetched {
        let Some(raw) = res? else { continue };
        let layers = match Manifest::parse(&raw.bytes) {
            Ok(Manifest::Image(m)) => m
                .layers
                .into_iter()
                .map(|l| AttachedLayer {
                    predicate_type: l.annotation("predicateType").map(str::to_owned),
                    digest: l.digest,
                    size: l.size,
                    media_type: l.media_type,
                })
                .collect(),
            Ok(Manifest::Index(_)) => return Err(StoreError::Malformed(format!("{tag} is an index"))),
            Err(e) => return Err(StoreError::Malformed(format!("{tag}: {e}"))),
        };
        out.push(Attachment {
            kind,
            tag: format!("{}:{tag}", store.location()),
            size: raw.bytes.len() as u64,
            manifest: raw.digest,
            layers,
        });
    }
    Ok(out)
}
