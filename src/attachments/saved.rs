//! cosign's `save`/`load` arrangement of an OCI layout: `index.json` entries marked by a
//! `kind` annotation, one image (or index) and at most one signature and one attestation
//! manifest (cosign 2's `.sig`/`.att` documents), untagged (cosign's `pkg/oci/layout`).
//! `cosign load` and `cosign verify --local-image` read a layout only through these marks.
//!
//! sigil's own layouts name entries as skopeo does (`org.opencontainers.image.ref.name`);
//! [`marks`] adds cosign's marks beside those names for a layout holding one image, so cosign
//! reads it too, and [`read`] reads a layout `cosign save` wrote (a `copy` source).

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::oci::layout::{find_tag, only_image, LayoutError};
use crate::oci::manifest::{ImageIndex, DOCKER_MANIFEST_LIST, OCI_INDEX};

use super::{legacy_tag, ATTESTATION_SUFFIX, SIGNATURE_SUFFIX};

/// The annotation cosign marks entries with.
pub const KIND: &str = "kind";
/// The mark of the image.
pub const IMAGE: &str = "dev.cosignproject.cosign/image";
/// The mark of the image index.
pub const IMAGE_INDEX: &str = "dev.cosignproject.cosign/imageIndex";
/// The mark of the signature manifest.
pub const SIGNATURES: &str = "dev.cosignproject.cosign/sigs";
/// The mark of the attestation manifest.
pub const ATTESTATIONS: &str = "dev.cosignproject.cosign/atts";

/// What a `cosign save` layout holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The image (or index).
    pub image: Digest,
    /// Its signature manifest, if saved.
    pub signatures: Option<Digest>,
    /// Its attestation manifest, if saved.
    pub attestations: Option<Digest>,
}

/// Why a layout's marks cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedError {
    /// A mark on two entries: cosign takes the first; sigil takes neither.
    #[error("index.json marks two entries as {0:?} (cosign takes the first, so sigil takes neither)")]
    Twice(&'static str),
    /// Marks without an image.
    #[error("index.json marks signatures or attestations but no image")]
    NoImage,
}

/// The arrangement `cosign save` wrote, when `index` carries cosign's marks (`Ok(None)`: it
/// carries none).
pub fn read(index: &ImageIndex) -> Result<Option<Saved>, SavedError> {
    let mut found: BTreeMap<&'static str, Digest> = BTreeMap::new();
    for entry in &index.manifests {
        let Some(kind) = entry.annotation(KIND) else { continue };
        let Some(kind) = [IMAGE, IMAGE_INDEX, SIGNATURES, ATTESTATIONS].into_iter().find(|k| *k == kind) else {
            continue;
        };
        let key = if kind == IMAGE_INDEX { IMAGE } else { kind };
        if found.insert(key, entry.digest.clone()).is_some() {
            return Err(SavedError::Twice(kind));
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    let image = found.remove(IMAGE).ok_or(SavedError::NoImage)?;
    Ok(Some(Saved { image, signatures: found.remove(SIGNATURES), attestations: found.remove(ATTESTATIONS) }))
}

/// cosign's marks for a layout written by sigil, by entry digest: the image the layout names
/// (`oci:PATH` alone, [`only_image`]) and its `.sig` and `.att` documents. None when the
/// layout holds more than one image (cosign's arrangement holds one) or no image.
pub fn marks(index: &ImageIndex) -> Result<Option<BTreeMap<Digest, String>>, LayoutError> {
    let image = match only_image(index) {
        Ok(Some(d)) => d,
        Ok(None) | Err(LayoutError::NoImageNamed { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let kind =
        if image.media_type == OCI_INDEX || image.media_type == DOCKER_MANIFEST_LIST { IMAGE_INDEX } else { IMAGE };
    let mut out = BTreeMap::from([(image.digest.clone(), kind.to_owned())]);
    for (suffix, mark) in [(SIGNATURE_SUFFIX, SIGNATURES), (ATTESTATION_SUFFIX, ATTESTATIONS)] {
        if let Some(entry) = find_tag(index, &legacy_tag(&image.digest, suffix))? {
            out.insert(entry.digest.clone(), mark.to_owned());
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::manifest::{Descriptor, OCI_MANIFEST};

    fn entry(seed: &str, annotations: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::of(OCI_MANIFEST, seed.as_bytes());
        if !annotations.is_empty() {
            d.annotations = Some(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        }
        d
    }

    fn index(manifests: Vec<Descriptor>) -> ImageIndex {
        ImageIndex { schema_version: 2, media_type: Some(OCI_INDEX.into()), manifests, annotations: None }
    }

    #[test]
    fn cosign_save_marks_are_read_and_a_mark_twice_is_refused() {
        let (img, sigs) = (entry("img", &[(KIND, IMAGE)]), entry("sigs", &[(KIND, SIGNATURES)]));
        let saved = read(&index(vec![img.clone(), sigs.clone()])).unwrap().unwrap();
        assert_eq!(
            saved,
            Saved { image: img.digest.clone(), signatures: Some(sigs.digest.clone()), attestations: None }
        );
        assert!(read(&index(vec![entry("x", &[])])).unwrap().is_none());
        let twice = index(vec![img.clone(), entry("img2", &[(KIND, IMAGE_INDEX)]), sigs.clone()]);
        assert!(matches!(read(&twice), Err(SavedError::Twice(_))));
        assert!(matches!(read(&index(vec![sigs])), Err(SavedError::NoImage)));
    }

    #[test]
    fn marks_name_the_only_image_and_its_documents() {
        let img = entry("img", &[(crate::oci::layout::REF_NAME, "v1")]);
        let sig_tag = legacy_tag(&img.digest, "sig");
        let sig = entry("sig", &[(crate::oci::layout::REF_NAME, &sig_tag)]);
        let m = marks(&index(vec![img.clone(), sig.clone()])).unwrap().unwrap();
        assert_eq!(m.get(&img.digest).map(String::as_str), Some(IMAGE));
        assert_eq!(m.get(&sig.digest).map(String::as_str), Some(SIGNATURES));
        let two = index(vec![img, entry("other", &[(crate::oci::layout::REF_NAME, "v2")]), sig]);
        assert!(marks(&two).unwrap().is_none());
    }
}
