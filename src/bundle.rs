//! Writing Sigstore bundles (protobuf-specs `Bundle`, v0.3, JSON): what `sign --format
//! bundle` and `attest --format bundle` attach to an image. Pure.
//!
//! A key-signed bundle holds the DSSE envelope and, as verification material, the public
//! key's hint (base64 of the SHA-256 of its DER SubjectPublicKeyInfo, as sigstore-go writes
//! it). Without a transparency log or a timestamp authority it carries no `tlogEntries` and
//! no `timestampVerificationData`: its signature is checked with the key, as a legacy key
//! signature is. Reading bundles is `verify::bundle` and `verify::image_bundle`.

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

/// A v0.3 bundle around `envelope`, signed by the key whose public half is `key`.
pub fn key_bundle(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>, KeyError> {
    let signatures: Vec<serde_json::Value> =
        envelope.signatures.iter().map(|s| serde_json::json!({ "sig": s.sig })).collect();
    let bundle = serde_json::json!({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": { "publicKey": { "hint": key_hint(key)? } },
        "dsseEnvelope": {
            "payload": envelope.payload,
            "payloadType": envelope.payload_type,
            "signatures": signatures,
        },
    });
    Ok(serde_json::to_vec(&bundle).unwrap_or_default())
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
