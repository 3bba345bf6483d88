//! OCI manifests and indexes: parsed from bounded bytes, built for signatures.
//!
//! Pure: no I/O. Field order follows go-containerregistry (what cosign writes), so that
//! manifests built here are laid out the way cosign's are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Media types accepted when fetching manifests.
pub const ACCEPTED_MANIFESTS: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Most layers (or index entries) accepted in one manifest.
pub const MAX_LAYERS: usize = 1000;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Content digest.
    pub digest: Digest,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    /// Artifact type (referrers index entries).
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// Describes `bytes` with `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            size: bytes.len() as u64,
            digest: Digest::sha256(bytes),
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Media type, when present.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type (OCI 1.1 artifacts).
    #[serde(rename = "artifactType", default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
}

/// An image index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIndex {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Media type, when present.
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// Single image.
    Image(ImageManifest),
    /// Multi-platform index.
    Index(ImageIndex),
}

/// Why bytes are not an acceptable manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Over [`MAX_MANIFEST_BYTES`].
    #[error("manifest is larger than the limit (4 MiB per manifest)")]
    TooLarge,
    /// Over the entry limit ([`MAX_LAYERS`] for manifests).
    #[error("manifest has {0} layers or entries, over the limit of 1000 per manifest")]
    TooManyLayers(usize),
    /// Not JSON or not the expected shape.
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// A schema or media type sigil does not read.
    #[error("unsupported manifest (schemaVersion {schema}, mediaType {media_type:?})")]
    Unsupported {
        /// The schemaVersion field.
        schema: u64,
        /// The mediaType field.
        media_type: Option<String>,
    },
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: u64,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
}

/// Bounds for a parse: a registry manifest, or an OCI layout's `index.json` (which gains an
/// entry per signature and so is allowed to grow far larger).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest document.
    pub bytes: usize,
    /// Most layers or entries.
    pub entries: usize,
}

/// Limits for manifests from registries and layouts.
pub const MANIFEST_LIMITS: Limits = Limits { bytes: MAX_MANIFEST_BYTES, entries: MAX_LAYERS };
/// Limits for an OCI layout's `index.json`.
pub const LAYOUT_INDEX_LIMITS: Limits = Limits { bytes: 64 << 20, entries: 200_000 };

impl Manifest {
    /// Parses manifest bytes, enforcing the size and layer bounds.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        Self::parse_with(bytes, MANIFEST_LIMITS)
    }

    /// Parses with explicit bounds.
    pub fn parse_with(bytes: &[u8], limits: Limits) -> Result<Self, ManifestError> {
        if bytes.len() > limits.bytes {
            return Err(ManifestError::TooLarge);
        }
        let probe: Probe = serde_json::from_slice(bytes)?;
        let unsupported =
            || ManifestError::Unsupported { schema: probe.schema_version, media_type: probe.media_type.clone() };
        if probe.schema_version != 2 {
            return Err(unsupported());
        }
        let is_index = match probe.media_type.as_deref() {
            Some(OCI_INDEX) | Some(DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
            None => probe.manifests.is_some(),
            Some(_) => return Err(unsupported()),
        };
        if is_index {
            let idx: ImageIndex = serde_json::from_slice(bytes)?;
            if idx.manifests.len() > limits.entries {
                return Err(ManifestError::TooManyLayers(idx.manifests.len()));
            }
            Ok(Manifest::Index(idx))
        } else {
            let m: ImageManifest = serde_json::from_slice(bytes)?;
            if m.layers.len() > limits.entries {
                return Err(ManifestError::TooManyLayers(m.layers.len()));
            }
            Ok(Manifest::Image(m))
        }
    }

    /// The media type to send with these bytes.
    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Image(m) => m.media_type.as_deref().unwrap_or(OCI_MANIFEST),
            Manifest::Index(i) => i.media_type.as_deref().unwrap_or(OCI_INDEX),
        }
    }
}

/// The OCI empty descriptor's media type (config of artifacts without one).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content.
pub const EMPTY_JSON: &[u8] = b"{}";
/// SPDX JSON documents.
pub const SPDX_JSON: &str = "application/spdx+json";
/// CycloneDX JSON documents.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// The artifact type cosign gives SBOMs it attaches as OCI 1.1 referrers.
pub const COSIGN_SBOM_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sbom.v1+json";

/// Whether a referrer's artifact type is an SBOM (ours, or cosign's).
pub fn is_sbom_artifact(artifact_type: &str) -> bool {
    matches!(artifact_type, SPDX_JSON | CYCLONEDX_JSON | COSIGN_SBOM_ARTIFACT | "text/spdx+json" | "text/spdx")
}

/// An OCI 1.1 artifact manifest: `artifactType`, the empty config, one layer, and the
/// `subject` it refers to.
pub fn artifact_manifest(
    artifact_type: &str,
    layer: Descriptor,
    subject: Descriptor,
    annotations: BTreeMap<String, String>,
) -> Vec<u8> {
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: Some(artifact_type.to_owned()),
        config: Descriptor::of(OCI_EMPTY, EMPTY_JSON),
        layers: vec![layer],
        annotations: (!annotations.is_empty()).then_some(annotations),
        subject: Some(Box::new(subject)),
    };
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// The referrers tag-schema tag of `digest`: `<alg>-<hex>` (OCI distribution spec).
pub fn referrers_tag(digest: &Digest) -> String {
    digest.tag_stem()
}

/// The referrers index with `entry` added (an existing entry with its digest is kept, not
/// duplicated). Entries already there are never dropped.
pub fn referrers_index_with(existing: Option<ImageIndex>, entry: Descriptor) -> ImageIndex {
    let mut index = existing.unwrap_or(ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_owned()),
        manifests: vec![],
        annotations: None,
    });
    if !index.manifests.iter().any(|m| m.digest == entry.digest) {
        index.manifests.push(entry);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    // cosign's signature manifests make handy test manifests.
    use crate::attachments::{signature_config, signature_manifest, SIMPLE_SIGNING};

    #[test]
    fn parses_image_and_index() {
        let layer = Descriptor::of(SIMPLE_SIGNING, b"{}");
        let (bytes, config) = signature_manifest(vec![layer.clone()]);
        let Manifest::Image(m) = Manifest::parse(&bytes).unwrap() else { panic!("not an image") };
        assert_eq!(m.layers, vec![layer]);
        assert_eq!(m.config.digest, Digest::sha256(&config));
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{}"}}]}}"#,
            Digest::sha256(b"x")
        );
        assert!(matches!(Manifest::parse(idx.as_bytes()).unwrap(), Manifest::Index(_)));
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(matches!(Manifest::parse(b"nope"), Err(ManifestError::Json(_))));
        assert!(matches!(Manifest::parse(br#"{"schemaVersion":1}"#), Err(ManifestError::Unsupported { .. })));
        assert!(matches!(
            Manifest::parse(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#),
            Err(ManifestError::Unsupported { .. })
        ));
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(Manifest::parse(&big), Err(ManifestError::TooLarge)));
        let layer = Descriptor::of(SIMPLE_SIGNING, b"{}");
        let (bytes, _) = signature_manifest(vec![layer; MAX_LAYERS + 1]);
        assert!(matches!(Manifest::parse(&bytes), Err(ManifestError::TooManyLayers(_))));
    }

    #[test]
    fn artifact_manifest_layout() {
        let subject = Descriptor::of(OCI_MANIFEST, b"image");
        let layer = Descriptor::of(SPDX_JSON, b"{\"spdxVersion\":\"SPDX-2.3\"}");
        let m = artifact_manifest(SPDX_JSON, layer.clone(), subject.clone(), BTreeMap::new());
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(text.starts_with(&format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{SPDX_JSON}","config":{{"mediaType":"{OCI_EMPTY}","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}}"#
        )), "{text}");
        let Manifest::Image(parsed) = Manifest::parse(&m).unwrap() else { panic!("not an image manifest") };
        assert_eq!(parsed.subject, Some(Box::new(subject)));
        assert_eq!(parsed.layers, vec![layer]);
        // Signature manifests are unchanged by the new optional fields.
        let (sig, _) = signature_manifest(vec![]);
        assert!(!String::from_utf8(sig).unwrap().contains("artifactType"));
    }

    #[test]
    fn referrers_index_keeps_entries() {
        let a = Descriptor { artifact_type: Some(SPDX_JSON.into()), ..Descriptor::of(OCI_MANIFEST, b"a") };
        let b = Descriptor { artifact_type: Some(CYCLONEDX_JSON.into()), ..Descriptor::of(OCI_MANIFEST, b"b") };
        let one = referrers_index_with(None, a.clone());
        let two = referrers_index_with(Some(one.clone()), b.clone());
        assert_eq!(two.manifests, vec![a.clone(), b]);
        assert_eq!(referrers_index_with(Some(two.clone()), a), two);
        assert_eq!(referrers_tag(&Digest::sha256(b"x")).len(), "sha256-".len() + 64);
    }

    #[test]
    fn config_layout() {
        let layer = Descriptor::of(SIMPLE_SIGNING, b"{}");
        let c = String::from_utf8(signature_config(std::slice::from_ref(&layer))).unwrap();
        assert_eq!(
            c,
            format!(
                r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
                layer.digest
            )
        );
    }
}
