//! cosign 2's legacy storage: the attachment manifests tagged `sha256-<hex>.sig` / `.att`,
//! written byte for byte as cosign 2.5 writes them (go-containerregistry's empty image with
//! the payload layers appended), and the annotations on their layers. Pure.

use crate::oci::manifest::{Descriptor, ImageManifest, OCI_CONFIG, OCI_MANIFEST};

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Layer annotation: the Fulcio signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Layer annotation: the rest of Fulcio's chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// Layer annotation: the Rekor v1 entry with its signed entry timestamp (SET).
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// Layer annotation: an RFC 3161 timestamp of the signature.
pub const RFC3161_ANNOTATION: &str = "dev.sigstore.cosign/rfc3161timestamp";

/// The evidence annotations cosign 2 writes on a signature layer, from a finished, verified
/// Sigstore bundle of that signature (`sign::sigstore`): the certificate and `chain` (the rest
/// of Fulcio's chain, PEM) of a keyless signer, the Rekor v1 entry with its SET, and the
/// RFC 3161 timestamp. A v2 log entry has no SET and cannot be written here.
///
/// An attestation layer gets no RFC 3161 annotation: cosign checks that timestamp against the
/// layer's payload (the envelope), while a bundle's timestamp is over the signature; its time
/// comes from the Rekor entry.
pub fn evidence_annotations(
    bundle: &[u8],
    chain: &[Vec<u8>],
    kind: super::Kind,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    let b: serde_json::Value = serde_json::from_slice(bundle).map_err(|e| e.to_string())?;
    let vm = &b["verificationMaterial"];
    let mut out = std::collections::BTreeMap::new();
    if let Some(cert) = vm["certificate"]["rawBytes"].as_str() {
        let der = B64.decode(cert).map_err(|e| format!("certificate: {e}"))?;
        out.insert(CERTIFICATE_ANNOTATION.to_owned(), pem("CERTIFICATE", &[der]));
        if !chain.is_empty() {
            out.insert(CHAIN_ANNOTATION.to_owned(), pem("CERTIFICATE", chain));
        }
    }
    if let Some(entry) = vm["tlogEntries"].as_array().and_then(|a| a.first()) {
        let set = entry["inclusionPromise"]["signedEntryTimestamp"].as_str().ok_or(
            "the log entry has no signed entry timestamp (a Rekor v2 entry): the legacy format needs Rekor v1",
        )?;
        let number = |k: &str| entry[k].as_str().and_then(|v| v.parse::<i64>().ok()).ok_or(format!("log entry {k}"));
        let log_id = entry["logId"]["keyId"].as_str().and_then(|k| B64.decode(k).ok()).ok_or("log entry logId")?;
        // cosign's `bundle.RekorBundle` (field order as its Go struct).
        let annotation = format!(
            r#"{{"SignedEntryTimestamp":{},"Payload":{{"body":{},"integratedTime":{},"logIndex":{},"logID":{}}}}}"#,
            serde_json::Value::from(set),
            entry["canonicalizedBody"],
            number("integratedTime")?,
            number("logIndex")?,
            serde_json::Value::from(hex::encode(log_id)),
        );
        out.insert(BUNDLE_ANNOTATION.to_owned(), annotation);
    }
    let timestamp = vm["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"].as_str();
    if let (Some(ts), super::Kind::Signature) = (timestamp, kind) {
        out.insert(RFC3161_ANNOTATION.to_owned(), serde_json::json!({ "SignedRFC3161Timestamp": ts }).to_string());
    }
    Ok(out)
}

/// PEM blocks of `ders`, one after another (LF line ends, as Go's encoding/pem writes them).
fn pem(label: &str, ders: &[Vec<u8>]) -> String {
    ders.iter().filter_map(|der| pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).ok()).collect()
}

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
