//! cosign's legacy signature annotations (keyless, or a key with a transparency-log entry),
//! read as Sigstore bundles.
//!
//! cosign stores a keyless signature as layer annotations: the Fulcio certificate
//! (`dev.sigstore.cosign/certificate`, PEM) and chain (`…/chain`), the Rekor entry with its
//! signed entry timestamp (`dev.sigstore.cosign/bundle`: `{"SignedEntryTimestamp", "Payload":
//! {"body","integratedTime","logIndex","logID"}}`) and optionally an RFC 3161 timestamp
//! (`dev.sigstore.cosign/rfc3161timestamp`). That is exactly the material of a v0.1 Sigstore
//! bundle (message signature over the payload, inclusion promise), so this module writes
//! one and the bundle verifier checks it — one verifier for both formats. A key signature
//! recorded in Rekor carries the same Rekor bundle annotation and no certificate: its
//! bundle names the key (by its hint) instead. Pure.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;

use crate::digest::Digest;

pub use crate::attachments::legacy::{BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, RFC3161_ANNOTATION};

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    set: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
struct RekorPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

#[derive(Deserialize)]
struct EntryHead {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
}

#[derive(Deserialize)]
struct Rfc3161 {
    #[serde(rename = "SignedRFC3161Timestamp")]
    signed: String,
}

/// DER certificates of a PEM text, in order.
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()).map_err(|e| e.to_string()))
        .collect()
}

fn is_self_signed(der: &[u8]) -> bool {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(der).is_ok_and(|c| c.tbs_certificate.subject == c.tbs_certificate.issuer)
}

/// Who signed a legacy layer.
#[derive(Debug, Clone, Copy)]
pub enum SignedBy<'a> {
    /// A Fulcio certificate, in the layer's certificate (and chain) annotations.
    Certificate,
    /// This key; the layer must carry a Rekor bundle annotation.
    Key(&'a crate::keys::PublicKey),
}

/// The v0.1 Sigstore bundle equivalent to a cosign signature layer, or why the annotations
/// cannot form one.
pub fn bundle_from_annotations(
    annotations: &BTreeMap<String, String>,
    signature_b64: &str,
    payload: &[u8],
    signed_by: SignedBy<'_>,
) -> Result<Vec<u8>, String> {
    let digest = Digest::sha256(payload);
    let digest_bytes = hex::decode(digest.hex()).map_err(|e| e.to_string())?;
    let content = serde_json::json!({
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": B64.encode(digest_bytes)},
            "signature": signature_b64.trim(),
        }
    });
    bundle_with(annotations, content, signed_by)
}

/// The v0.1 Sigstore bundle equivalent to a keyless cosign attestation layer: the same
/// annotations, with the DSSE envelope (the layer's blob) as the signed content.
pub fn dsse_bundle_from_annotations(
    annotations: &BTreeMap<String, String>,
    envelope: &[u8],
    signed_by: SignedBy<'_>,
) -> Result<Vec<u8>, String> {
    let envelope: serde_json::Value =
        serde_json::from_slice(envelope).map_err(|e| format!("DSSE envelope is not JSON: {e}"))?;
    bundle_with(annotations, serde_json::json!({ "dsseEnvelope": envelope }), signed_by)
}

fn bundle_with(
    annotations: &BTreeMap<String, String>,
    content: serde_json::Value,
    signed_by: SignedBy<'_>,
) -> Result<Vec<u8>, String> {
    let material = match signed_by {
        SignedBy::Certificate => {
            let cert_pem =
                annotations.get(CERTIFICATE_ANNOTATION).ok_or("no certificate annotation (not a keyless signature)")?;
            let mut certs = pem_certificates(cert_pem).map_err(|e| format!("certificate annotation: {e}"))?;
            if certs.len() != 1 {
                return Err(format!("certificate annotation holds {} certificates, expected 1", certs.len()));
            }
            if let Some(chain) = annotations.get(CHAIN_ANNOTATION) {
                // Intermediates help path building; roots come from the trusted root only.
                let chain = pem_certificates(chain).map_err(|e| format!("chain annotation: {e}"))?;
                certs.extend(chain.into_iter().filter(|c| !is_self_signed(c)));
            }
            let certs: Vec<serde_json::Value> =
                certs.iter().map(|c| serde_json::json!({"rawBytes": B64.encode(c)})).collect();
            ("x509CertificateChain", serde_json::json!({ "certificates": certs }))
        }
        SignedBy::Key(key) => {
            ("publicKey", serde_json::json!({ "hint": crate::bundle::key_hint(key).map_err(|e| e.to_string())? }))
        }
    };
    let rekor = annotations.get(BUNDLE_ANNOTATION).ok_or(match signed_by {
        SignedBy::Certificate => "no Rekor bundle annotation: keyless signatures need transparency-log evidence",
        SignedBy::Key(_) => "no Rekor bundle annotation: the signature was not recorded in a transparency log (signed with --tlog-upload=false?); pass --insecure-ignore-tlog to accept it on the key alone",
    })?;
    let rekor: RekorBundle = serde_json::from_str(rekor).map_err(|e| format!("Rekor bundle annotation: {e}"))?;
    let body = B64.decode(rekor.payload.body.as_bytes()).map_err(|e| format!("Rekor entry body: {e}"))?;
    let head: EntryHead = serde_json::from_slice(&body).map_err(|e| format!("Rekor entry body: {e}"))?;
    let log_id = hex::decode(&rekor.payload.log_id).map_err(|e| format!("Rekor log ID: {e}"))?;
    let mut timestamps = Vec::new();
    if let Some(ts) = annotations.get(RFC3161_ANNOTATION) {
        let ts: Rfc3161 = serde_json::from_str(ts).map_err(|e| format!("RFC 3161 annotation: {e}"))?;
        timestamps.push(serde_json::json!({"signedTimestamp": ts.signed}));
    }
    let mut bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            material.0: material.1,
            "tlogEntries": [{
                "logIndex": rekor.payload.log_index.to_string(),
                "logId": {"keyId": B64.encode(log_id)},
                "kindVersion": {"kind": head.kind, "version": head.api_version},
                "integratedTime": rekor.payload.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": rekor.set},
                "canonicalizedBody": rekor.payload.body,
            }],
            "timestampVerificationData": {"rfc3161Timestamps": timestamps},
        },
    });
    if let (Some(b), serde_json::Value::Object(c)) = (bundle.as_object_mut(), content) {
        b.extend(c);
    }
    serde_json::to_vec(&bundle).map_err(|e| e.to_string())
}
