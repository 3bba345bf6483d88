//! cosign 2's legacy storage: the attachment manifests tagged `sha256-<hex>.sig` / `.att`,
//! written byte for byte as cosign 2.5 writes them (go-containerregistry's empty image with
//! the payload layers appended), and the annotations on their layers. Pure.

use crate::oci::manifest::{Descriptor, ImageManifest, OCI_CONFIG, OCI_MANIFEST};

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The config blob cosign writes for a signature image (go-containerregistry's empty image
/// with the payload layers appended): `rootfs.diff_ids` lists the layers' digests.
pub fn signature_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let history: Vec<serde_json::Value> =
        layers.iter().map(|_| serde_json::json!({"created": "0001-01-01T00:00:00Z"})).collect();
    // Key order is go-containerregistry's ConfigFile field order.
    let mut s = String::from(r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":"#);
    s.push_str(&serde_json::Value::from(history).to_string());
    s.push_str(r#","os":"","rootfs":{"type":"layers","diff_ids":"#);
    s.push_str(&serde_json::Value::from(diff_ids).to_string());
    s.push_str(r#"},"config":{}}"#);
    s.into_bytes()
}

/// A signature manifest holding `layers`, with its config.
pub fn signature_manifest(layers: Vec<Descriptor>) -> (Vec<u8>, Vec<u8>) {
    let config = signature_config(&layers);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: None,
        config: Descriptor::of(OCI_CONFIG, &config),
        layers,
        annotations: None,
        subject: None,
    };
    // Serialising plain structs cannot fail.
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    (bytes, config)
}
