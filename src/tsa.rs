//! RFC 3161 timestamp authorities: the request sigil sends (SHA-256 of the signature, a
//! nonce, the TSA's certificates asked for), the answer checked for what was asked, and a
//! client behind the [`TimestampAuthority`] trait.
//!
//! The answer is stored whole in the bundle (`signedTimestamp` holds the DER
//! `TimeStampResp`, as cosign and sigstore-go store it). Its signature and its chain to a
//! timestamp authority of the trusted root are checked by `verify` on the finished bundle.

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use rand_core::RngCore as _;
use sha2::Digest as _;
use x509_cert::der::asn1::{Int, OctetString};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use crate::http::{Retry, Service, ServiceError};

/// Largest answer read.
pub const MAX_RESPONSE_BYTES: usize = 256 << 10;

const SHA256: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SIGNED_DATA: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// Why no usable timestamp came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsaError {
    /// No answer.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The authority said no.
    #[error("the timestamp authority refused (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The answer is not a timestamp of what was asked.
    #[error("the timestamp authority's answer is unusable: {0}")]
    BadAnswer(String),
}

/// One request: what is stamped and the nonce that ties the answer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    imprint: [u8; 32],
    nonce: [u8; 8],
}

impl Request {
    /// A request stamping `signature` (its SHA-256), with a fresh random nonce.
    pub fn for_signature(signature: &[u8]) -> Request {
        let mut nonce = [0u8; 8];
        rand_core::OsRng.fill_bytes(&mut nonce);
        Request { imprint: sha2::Sha256::digest(signature).into(), nonce: minimal_positive(nonce) }
    }

    /// The DER `TimeStampReq`.
    pub fn to_der(&self) -> Result<Vec<u8>, TsaError> {
        let bad = |e: x509_cert::der::Error| TsaError::BadAnswer(format!("cannot encode the request: {e}"));
        let req = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifier { oid: SHA256, parameters: None },
                hashed_message: OctetString::new(self.imprint.to_vec()).map_err(bad)?,
            },
            req_policy: None,
            nonce: Some(Int::new(&self.nonce).map_err(bad)?),
            cert_req: true,
            extensions: None,
        };
        req.to_der().map_err(bad)
    }

    /// Checks that `answer` (a DER `TimeStampResp`) grants a timestamp of this request's
    /// imprint with its nonce, and returns it as the bundle stores it.
    pub fn check_answer(&self, answer: &[u8]) -> Result<Vec<u8>, TsaError> {
        let bad = |m: String| TsaError::BadAnswer(m);
        let resp = TimeStampResp::from_der(answer).map_err(|e| bad(format!("not a TimeStampResp: {e}")))?;
        let status = resp.status.status as u8;
        if status > 1 {
            return Err(bad(format!("status {status} (not granted)")));
        }
        let token = resp.time_stamp_token.ok_or_else(|| bad("no timeStampToken".into()))?;
        let info = tst_info(&token).map_err(bad)?;
        if info.message_imprint.hash_algorithm.oid != SHA256 {
            return Err(bad(format!(
                "imprint algorithm {} (SHA-256 was asked)",
                info.message_imprint.hash_algorithm.oid
            )));
        }
        if info.message_imprint.hashed_message.as_bytes() != self.imprint {
            return Err(bad("the timestamp is for other content".into()));
        }
        let ours = Int::new(&self.nonce).map_err(|e| bad(e.to_string()))?;
        if info.nonce.as_ref() != Some(&ours) {
            return Err(bad("the nonce differs from the request's".into()));
        }
        Ok(answer.to_vec())
    }
}

/// The nonce as a positive INTEGER whose 8-byte DER encoding is minimal: the top byte in
/// 0x40..=0x7f (62 random bits). A leading zero byte before a byte below 0x80 is not minimal
/// DER, and Go's encoding/asn1 (the timestamp authority's) refuses the whole request.
fn minimal_positive(mut nonce: [u8; 8]) -> [u8; 8] {
    nonce[0] = (nonce[0] & 0x3f) | 0x40;
    nonce
}

fn tst_info(token: &ContentInfo) -> Result<TstInfo, String> {
    if token.content_type != SIGNED_DATA {
        return Err(format!("the token is {} (signedData expected)", token.content_type));
    }
    let signed = token.content.decode_as::<SignedData>().map_err(|e| format!("signedData: {e}"))?;
    let content = signed.encap_content_info.econtent.ok_or("the token has no TSTInfo")?;
    let octets = content.decode_as::<OctetString>().map_err(|e| format!("TSTInfo: {e}"))?;
    TstInfo::from_der(octets.as_bytes()).map_err(|e| format!("TSTInfo: {e}"))
}

/// A timestamp authority.
#[allow(async_fn_in_trait)]
pub trait TimestampAuthority {
    /// A timestamp (DER `TimeStampResp`) of `signature`.
    async fn timestamp(&self, signature: &[u8]) -> Result<Vec<u8>, TsaError>;
}

/// A timestamp authority over HTTP (`POST`, `application/timestamp-query`).
pub struct Tsa {
    service: Service,
    url: String,
}

impl Tsa {
    /// The authority at `url` (the signing configuration's TSA URL, used as is).
    pub fn new(service: Service, url: &str) -> Tsa {
        Tsa { service, url: url.to_owned() }
    }
}

impl TimestampAuthority for Tsa {
    async fn timestamp(&self, signature: &[u8]) -> Result<Vec<u8>, TsaError> {
        let url = self.service.url(&self.url)?;
        let request = Request::for_signature(signature);
        let reply = self
            .service
            .post(
                &url,
                "application/timestamp-query",
                &[("Accept", "application/timestamp-reply")],
                request.to_der()?,
                MAX_RESPONSE_BYTES,
                Retry::Idempotent,
            )
            .await?;
        match reply.status {
            200 => request.check_answer(&reply.body),
            status => Err(TsaError::Refused { status, message: reply.excerpt() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real answer of the local stack's timestamp authority (timestamp-authority 2.1.3) to a
    /// request of sigil's: the fuzz seed `fuzz/corpus/service_answers/tsa` without its
    /// selector byte.
    fn stack_answer() -> Vec<u8> {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/service_answers/tsa")).unwrap()[1..].to_vec()
    }

    #[test]
    fn timestamp_answer_must_match_the_request_imprint_and_nonce() {
        let answer = stack_answer();
        let resp = TimeStampResp::from_der(&answer).unwrap();
        let info = tst_info(&resp.time_stamp_token.unwrap()).unwrap();
        let imprint: [u8; 32] = info.message_imprint.hashed_message.as_bytes().try_into().unwrap();
        let nonce_bytes = info.nonce.unwrap();
        let raw = nonce_bytes.as_bytes();
        let mut nonce = [0u8; 8];
        nonce[8 - raw.len()..].copy_from_slice(raw);
        let ours = Request { imprint, nonce };
        // The seed was stamped for sigil's own request: an 8-byte nonce.
        assert_eq!(Int::new(&nonce).unwrap(), nonce_bytes);
        assert_eq!(ours.check_answer(&answer).unwrap(), answer);
        let other_nonce = Request { imprint, nonce: [1; 8] };
        assert!(other_nonce.check_answer(&answer).unwrap_err().to_string().contains("nonce"));
        let other_content = Request { imprint: [0; 32], nonce };
        assert!(other_content.check_answer(&answer).unwrap_err().to_string().contains("other content"));
    }

    #[test]
    fn timestamp_request_nonce_is_minimal_der_whatever_the_random_bytes() {
        // see: issue 10 — one request in 128 had a leading zero byte and the TSA answered 400.
        for first in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
            let nonce = minimal_positive([first, 0x00, 1, 2, 3, 4, 5, 6]);
            let r = Request { imprint: [1; 32], nonce };
            let req = TimeStampReq::from_der(&r.to_der().unwrap()).unwrap();
            let encoded = req.nonce.unwrap();
            assert_eq!(encoded.as_bytes().len(), 8, "{first:#x}");
            assert!((0x40..0x80).contains(&encoded.as_bytes()[0]), "{first:#x}");
        }
    }

    #[test]
    fn timestamp_requests_encode_and_garbage_answers_are_refused() {
        let r = Request::for_signature(b"sig");
        let der = r.to_der().unwrap();
        let back = TimeStampReq::from_der(&der).unwrap();
        assert_eq!(back.message_imprint.hashed_message.as_bytes(), sha2::Sha256::digest(b"sig").as_slice());
        assert!(back.cert_req);
        for bad in [&b""[..], b"\x30\x00", &der] {
            assert!(matches!(r.check_answer(bad), Err(TsaError::BadAnswer(_))));
        }
    }
}
