//! Writing Sigstore bundles (protobuf-specs `Bundle`, v0.3, JSON): what `sign --format
//! bundle` and `attest --format bundle` attach to an image. Pure.
//!
//! A bundle holds what was signed (a message signature over a digest, or a DSSE envelope),
//! who signed it (a managed key's hint: base64 of the SHA-256 of its DER
//! SubjectPublicKeyInfo, as sigstore-go writes it; or a Fulcio certificate), and the evidence
//! of when (transparency-log entries, RFC 3161 timestamps) gathered by `sign::sigstore`.
//! Reading bundles is `verify::bundle` and `verify::image_bundle`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::attachments::BUNDLE_V03;
use crate::dsse::Envelope;
use crate::keys::{KeyError, PublicKey};

/// The key's hint as sigstore-go writes it: base64(sha256(DER SubjectPublicKeyInfo)).
pub fn key_hint(key: &PublicKey) -> Result<String, KeyError> {
    use sha2::Digest as _;
    Ok(B64.encode(sha2::Sha256::digest(key.to_der()?)))
}

/// Who signed, as the bundle's verification material names it.
#[derive(Debug, Clone, Copy)]
pub enum Material<'a> {
    /// A managed key, by its hint.
    Key(&'a PublicKey),
    /// A Fulcio signing certificate (DER; v0.3 bundles carry the leaf only).
    Certificate(&'a [u8]),
}

/// What was signed.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// A signature over an artifact whose SHA-256 digest is given.
    Message {
        /// SHA-256 of the artifact.
        digest: &'a [u8; 32],
        /// The signature.
        signature: &'a [u8],
    },
    /// A DSSE envelope.
    Dsse(&'a Envelope),
}

/// Evidence of when it was signed: transparency-log entries (protobuf-JSON
/// `TransparencyLogEntry`, as the log gave them) and RFC 3161 timestamps (DER
/// `TimeStampResp`).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Log entries.
    pub tlog_entries: Vec<serde_json::Value>,
    /// Timestamps.
    pub timestamps: Vec<Vec<u8>>,
}

/// A v0.3 bundle (JSON) of `content` signed by `material`, with `evidence`.
pub fn assemble(material: Material<'_>, content: Content<'_>, evidence: &Evidence) -> Result<Vec<u8>, KeyError> {
    let mut vm = serde_json::Map::new();
    match material {
        Material::Key(key) => vm.insert("publicKey".into(), serde_json::json!({ "hint": key_hint(key)? })),
        Material::Certificate(der) => {
            vm.insert("certificate".into(), serde_json::json!({ "rawBytes": B64.encode(der) }))
        }
    };
    if !evidence.tlog_entries.is_empty() {
        vm.insert("tlogEntries".into(), serde_json::Value::Array(evidence.tlog_entries.clone()));
    }
    if !evidence.timestamps.is_empty() {
        let ts: Vec<serde_json::Value> =
            evidence.timestamps.iter().map(|t| serde_json::json!({ "signedTimestamp": B64.encode(t) })).collect();
        vm.insert("timestampVerificationData".into(), serde_json::json!({ "rfc3161Timestamps": ts }));
    }
    let mut bundle = serde_json::json!({ "mediaType": BUNDLE_V03, "verificationMaterial": vm });
    match content {
        Content::Message { digest, signature } => {
            bundle["messageSignature"] = serde_json::json!({
                "messageDigest": { "algorithm": "SHA2_256", "digest": B64.encode(digest) },
                "signature": B64.encode(signature),
            });
        }
        Content::Dsse(envelope) => {
            let signatures: Vec<serde_json::Value> =
                envelope.signatures.iter().map(|s| serde_json::json!({ "sig": s.sig })).collect();
            bundle["dsseEnvelope"] = serde_json::json!({
                "payload": envelope.payload,
                "payloadType": envelope.payload_type,
                "signatures": signatures,
            });
        }
    }
    Ok(serde_json::to_vec(&bundle).unwrap_or_default())
}

/// A v0.3 bundle around `envelope`, signed by the key whose public half is `key`, with no
/// log entry or timestamp.
pub fn key_bundle(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, KeyError> {
    assemble(Material::Key(key), Content::Dsse(envelope), &Evidence::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsse::INTOTO_PAYLOAD_TYPE;
    use crate::keys::{KeyAlgorithm, PrivateKey};

    #[test]
    fn key_bundle_round_trips_through_the_library_parser() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let env = Envelope::sign(INTOTO_PAYLOAD_TYPE, br#"{"_type":"x"}"#, &k);
        let b = key_bundle(&env, &k.public_key()).unwrap();
        let text = std::str::from_utf8(&b).unwrap();
        assert!(sigstore_verify::types::Bundle::from_json(text).is_ok(), "{text}");
    }
}
