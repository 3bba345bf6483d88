//! DSSE envelopes (secure-systems-lab/dsse v1): the signed container of in-toto statements.
//!
//! Signatures are over the pre-authentication encoding
//! `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, never over the bare payload. Pure.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::keys::{PrivateKey, PublicKey, SignatureError};

/// The in-toto payload type.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Media type of a DSSE envelope layer (cosign attestations).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Largest envelope parsed.
pub const MAX_ENVELOPE_BYTES: usize = 16 << 20;

/// A parsed envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// What the payload is.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// Signatures over the PAE.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Key hint (cosign writes "").
    #[serde(default)]
    pub keyid: String,
    /// Signature, base64.
    pub sig: String,
}

/// Why bytes are not a usable envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Over the size limit.
    #[error("DSSE envelope larger than {MAX_ENVELOPE_BYTES} bytes")]
    TooLarge,
    /// Not an envelope.
    #[error("not a DSSE envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// Two object keys that a case-insensitive reader (Go's) takes for one.
    #[error("DSSE envelope is ambiguous: {0}")]
    AmbiguousKeys(crate::json::AmbiguousKeys),
    /// Payload not base64.
    #[error("DSSE payload is not base64")]
    PayloadBase64,
    /// No signature verified.
    #[error("no DSSE signature verifies with the key ({0} signature(s) tried)")]
    NoValidSignature(usize),
}

/// The pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Signs `payload` of `payload_type` with `key` (deterministic ECDSA nonce).
    pub fn sign(payload_type: &str, payload: &[u8], key: &PrivateKey) -> Self {
        Self::sign_with(payload_type, payload, key, crate::keys::Nonce::Deterministic)
    }

    /// Signs `payload` of `payload_type` with `key`, the ECDSA nonce drawn as `nonce` says.
    pub fn sign_with(payload_type: &str, payload: &[u8], key: &PrivateKey, nonce: crate::keys::Nonce) -> Self {
        let sig = key.sign_with(&pae(payload_type, payload), nonce);
        Envelope {
            payload_type: payload_type.to_owned(),
            payload: B64.encode(payload),
            signatures: vec![EnvelopeSignature { keyid: String::new(), sig: B64.encode(sig) }],
        }
    }

    /// Parses envelope bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge);
        }
        let envelope = serde_json::from_slice(bytes)?;
        crate::json::reject_ambiguous_keys(bytes).map_err(EnvelopeError::AmbiguousKeys)?;
        Ok(envelope)
    }

    /// The serialised envelope.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        B64.decode(self.payload.as_bytes()).map_err(|_| EnvelopeError::PayloadBase64)
    }

    /// Returns the payload when at least one signature verifies with `key` over the PAE.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<u8>, EnvelopeError> {
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        let ok = self.signatures.iter().any(|s| {
            B64.decode(s.sig.trim().as_bytes())
                .is_ok_and(|sig| key.verify(&message, &sig).map_err(|_: SignatureError| ()).is_ok())
        });
        if ok {
            Ok(payload)
        } else {
            Err(EnvelopeError::NoValidSignature(self.signatures.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_verify_and_tamper() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let env = Envelope::sign(INTOTO_PAYLOAD_TYPE, b"{}", &k);
        let back = Envelope::parse(&env.to_bytes()).unwrap();
        assert_eq!(back.verify(&k.public_key()).unwrap(), b"{}");
        let mut changed = back.clone();
        changed.payload_type = "text/plain".into();
        assert!(changed.verify(&k.public_key()).is_err());
        let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
        assert!(back.verify(&other.public_key()).is_err());
    }
}
