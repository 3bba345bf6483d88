//! Fulcio, the certificate authority of keyless signing: its v2 REST request and answer
//! (`POST /api/v2/signingCert`, protobuf-specs `fulcio.v2`) and a client behind the
//! [`CertificateAuthority`] trait.
//!
//! The answer is parsed strictly and checked before the certificate is used: a chain of at
//! most [`MAX_CHAIN`] PEM certificates with an embedded SCT (a detached SCT cannot travel in
//! a bundle), whose leaf certifies exactly the key that asked. Its path to a Fulcio root of
//! the trusted root and its SCT are checked by `verify` on the bundle before anything is
//! written (`sign::sigstore`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use x509_cert::der::{Decode as _, Encode as _};

use crate::http::{Retry, Service, ServiceError};
use crate::keys::{PrivateKey, PublicKey};
use crate::oidc::IdentityToken;

/// Largest answer read.
pub const MAX_RESPONSE_BYTES: usize = 256 << 10;
/// Most certificates in a chain.
pub const MAX_CHAIN: usize = 10;

/// Why no usable certificate came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FulcioError {
    /// No answer.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Fulcio said no (401: the token; 400: the request).
    #[error("Fulcio refused the certificate request (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Fulcio's message.
        message: String,
    },
    /// The answer is not a usable certificate chain.
    #[error("Fulcio's answer is unusable: {0}")]
    BadAnswer(String),
}

/// A signing certificate and the rest of its chain, DER, leaf first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateChain {
    /// Leaf first.
    pub certificates: Vec<Vec<u8>>,
}

impl CertificateChain {
    /// The signing certificate.
    pub fn leaf(&self) -> &[u8] {
        self.certificates.first().map(Vec::as_slice).unwrap_or_default()
    }
}

/// The request body: the token, the public key (PEM) and the proof of possession (the
/// token's principal signed by the key, as sigstore-go and cosign send it).
pub fn request_body(token: &IdentityToken, key: &PrivateKey) -> Result<Vec<u8>, FulcioError> {
    let pem = key.public_key().to_pem().map_err(|e| FulcioError::BadAnswer(format!("public key: {e}")))?;
    let proof = key.sign(token.principal().as_bytes());
    let body = serde_json::json!({
        "credentials": { "oidcIdentityToken": token.bearer() },
        "publicKeyRequest": {
            "publicKey": { "algorithm": algorithm(key), "content": pem },
            "proofOfPossession": B64.encode(proof),
        },
    });
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

fn algorithm(key: &PrivateKey) -> &'static str {
    match key.algorithm() {
        crate::keys::KeyAlgorithm::EcdsaP256 => "ECDSA",
        crate::keys::KeyAlgorithm::Ed25519 => "ED25519",
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Answer {
    signed_certificate_embedded_sct: Option<Embedded>,
    signed_certificate_detached_sct: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Embedded {
    chain: Chain,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Chain {
    certificates: Vec<String>,
}

/// Parses Fulcio's answer and checks that its leaf certifies `key`.
pub fn parse_answer(body: &[u8], key: &PublicKey) -> Result<CertificateChain, FulcioError> {
    let bad = |m: String| FulcioError::BadAnswer(m);
    crate::json::reject_ambiguous_keys(body).map_err(|e| bad(e.to_string()))?;
    let answer: Answer = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let embedded = match (answer.signed_certificate_embedded_sct, answer.signed_certificate_detached_sct) {
        (Some(e), None) => e,
        (None, Some(_)) => {
            return Err(bad("the certificate's SCT is detached; a Sigstore bundle carries only embedded SCTs".into()))
        }
        _ => {
            return Err(bad(
                "expected exactly one of signedCertificateEmbeddedSct and signedCertificateDetachedSct".into()
            ))
        }
    };
    let pems = embedded.chain.certificates;
    if pems.is_empty() || pems.len() > MAX_CHAIN {
        return Err(bad(format!("a chain of {} certificates (1 to {MAX_CHAIN} expected)", pems.len())));
    }
    let mut certificates = Vec::with_capacity(pems.len());
    for pem in &pems {
        let certs = crate::oci::tls::parse_pem_certs(pem.as_bytes(), "Fulcio's chain").map_err(bad)?;
        let [one] = certs.as_slice() else {
            return Err(bad("each chain entry must hold exactly one PEM certificate".into()));
        };
        certificates.push(one.to_vec());
    }
    let leaf = x509_cert::Certificate::from_der(&certificates[0]).map_err(|e| bad(format!("leaf certificate: {e}")))?;
    let spki = leaf.tbs_certificate.subject_public_key_info.to_der().map_err(|e| bad(e.to_string()))?;
    let ours = key.to_der().map_err(|e| bad(e.to_string()))?;
    if spki != ours {
        return Err(bad("the certificate is for another public key than the one that asked".into()));
    }
    Ok(CertificateChain { certificates })
}

/// A certificate authority for keyless signing.
#[allow(async_fn_in_trait)]
pub trait CertificateAuthority {
    /// A certificate for `key`'s public half, for the identity `token` names.
    async fn certificate(&self, token: &IdentityToken, key: &PrivateKey) -> Result<CertificateChain, FulcioError>;
}

/// Fulcio over HTTP.
pub struct Fulcio {
    service: Service,
    base: String,
}

impl Fulcio {
    /// Fulcio at `base` (the signing configuration's CA URL).
    pub fn new(service: Service, base: &str) -> Fulcio {
        Fulcio { service, base: base.trim_end_matches('/').to_owned() }
    }
}

impl CertificateAuthority for Fulcio {
    async fn certificate(&self, token: &IdentityToken, key: &PrivateKey) -> Result<CertificateChain, FulcioError> {
        let url = self.service.url(&format!("{}/api/v2/signingCert", self.base))?;
        let body = request_body(token, key)?;
        // Each request is for a fresh key: asking again only gets another certificate.
        let reply = self.service.post_json(&url, body, MAX_RESPONSE_BYTES, Retry::Idempotent).await?;
        match reply.status {
            200 | 201 => parse_answer(&reply.body, &key.public_key()),
            status => Err(FulcioError::Refused { status, message: reply.excerpt() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    #[test]
    fn fulcio_answers_are_parsed_strictly() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        for (body, want) in [
            (r#"{}"#, "exactly one"),
            (r#"{"signedCertificateDetachedSct":{}}"#, "detached"),
            (r#"{"signedCertificateEmbeddedSct":{"chain":{"certificates":[]}}}"#, "a chain of 0"),
            (r#"{"signedCertificateEmbeddedSct":{"chain":{"certificates":["x"]}}}"#, "no PEM certificate"),
            (r#"{"signedCertificateEmbeddedSct":{"chain":{"certificates":[]},"x":1}}"#, "unknown field"),
        ] {
            let e = parse_answer(body.as_bytes(), &k.public_key()).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
    }
}
