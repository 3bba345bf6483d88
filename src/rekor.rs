//! Rekor, the transparency log: what sigil proposes (`hashedrekord` for a signature over a
//! digest, `dsse` for an envelope), in the v2 API (`/api/v2/log/entries`, protobuf-specs
//! `rekor.v2`, entries 0.0.2; rekor-tiles records only `hashedrekord`, so an envelope goes
//! as a `hashedrekord` over its PAE, see [`Proposal::for_v2`]) or the v1 API
//! (`/api/v1/log/entries`, entries 0.0.1), the
//! answer turned into the bundle's `TransparencyLogEntry`, and a client behind the
//! [`TransparencyLog`] trait.
//!
//! Before an entry is accepted its body must record exactly what was proposed (kind,
//! version, digest, signature, verifier); its inclusion proof, signed checkpoint and (v1)
//! SET are checked by `verify` on the finished bundle, before anything is written.
//! A v1 log answers 409 for an entry it already holds: the entry at `Location` is fetched
//! and checked the same way.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::dsse::Envelope;
use crate::http::{Retry, Service, ServiceError};
use crate::keys::KeyAlgorithm;

/// Largest answer read (an entry with its proof is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Which Rekor API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/api/v1`, entries 0.0.1, with SETs and integrated times.
    V1,
    /// `/api/v2` (tile-backed), entries 0.0.2, checkpoints only: needs a timestamp authority.
    V2,
}

impl ApiVersion {
    /// From a signing configuration's `majorApiVersion`.
    pub fn from_major(v: u32) -> Option<ApiVersion> {
        match v {
            1 => Some(ApiVersion::V1),
            2 => Some(ApiVersion::V2),
            _ => None,
        }
    }
}

/// Who can verify the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verifier {
    /// A Fulcio certificate (DER).
    Certificate(Vec<u8>),
    /// A managed key (DER SubjectPublicKeyInfo).
    PublicKey {
        /// DER SPKI.
        der: Vec<u8>,
        /// Its algorithm.
        algorithm: KeyAlgorithm,
    },
}

impl Verifier {
    fn key_details(&self) -> &'static str {
        match self {
            Verifier::Certificate(_) | Verifier::PublicKey { algorithm: KeyAlgorithm::EcdsaP256, .. } => {
                "PKIX_ECDSA_P256_SHA_256"
            }
            Verifier::PublicKey { algorithm: KeyAlgorithm::Ed25519, .. } => "PKIX_ED25519",
        }
    }

    fn v2(&self) -> Value {
        match self {
            Verifier::Certificate(der) => {
                json!({"keyDetails": self.key_details(), "x509Certificate": {"rawBytes": B64.encode(der)}})
            }
            Verifier::PublicKey { der, .. } => {
                json!({"keyDetails": self.key_details(), "publicKey": {"rawBytes": B64.encode(der)}})
            }
        }
    }

    /// PEM, as the v1 API takes it.
    fn pem(&self) -> String {
        let (label, der) = match self {
            Verifier::Certificate(d) => ("CERTIFICATE", d),
            Verifier::PublicKey { der, .. } => ("PUBLIC KEY", der),
        };
        pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap_or_default()
    }
}

/// What is proposed for the log.
#[derive(Debug, Clone)]
pub enum Proposal {
    /// A signature over an artifact's SHA-256 digest.
    HashedRekord {
        /// SHA-256 of the artifact.
        digest: [u8; 32],
        /// The signature.
        signature: Vec<u8>,
        /// Who can verify it.
        verifier: Verifier,
    },
    /// A DSSE envelope with one signature.
    Dsse {
        /// The envelope.
        envelope: Envelope,
        /// Who can verify its signature.
        verifier: Verifier,
    },
}

impl Proposal {
    /// The proposal as a v2 log takes it: rekor-tiles records only `hashedrekord`, so an
    /// envelope's signature is recorded over the SHA-256 of its PAE, as cosign 3 and
    /// sigstore-go record it (verifiers accept a `hashedrekord` 0.0.2 entry for a DSSE bundle).
    pub fn for_v2(&self) -> Result<Proposal, RekorError> {
        match self {
            Proposal::HashedRekord { .. } => Ok(self.clone()),
            Proposal::Dsse { envelope, verifier } => {
                let [sig] = &envelope.signatures[..] else {
                    return Err(bad("a v2 log records an envelope with exactly one signature"));
                };
                let payload = envelope.payload_bytes().map_err(|e| bad(e.to_string()))?;
                let pae = crate::dsse::pae(&envelope.payload_type, &payload);
                Ok(Proposal::HashedRekord {
                    digest: sha2::Sha256::digest(&pae).into(),
                    signature: B64.decode(&sig.sig).map_err(|_| bad("the envelope signature is not base64"))?,
                    verifier: verifier.clone(),
                })
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Proposal::HashedRekord { .. } => "hashedrekord",
            Proposal::Dsse { .. } => "dsse",
        }
    }
}

/// Why no checked entry came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RekorError {
    /// No answer.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The log said no.
    #[error("Rekor refused the entry (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The log already holds this exact signature (a v2 log answers 409 and serves no entry
    /// to read back).
    #[error("the transparency log already holds this exact signature{0}: sign again (ECDSA signatures differ each time; an Ed25519 key signs the same content identically)")]
    Duplicate(String),
    /// The answer is not an entry for what was proposed.
    #[error("Rekor's answer is unusable: {0}")]
    BadAnswer(String),
}

fn bad(m: impl Into<String>) -> RekorError {
    RekorError::BadAnswer(m.into())
}

/// The request body for `proposal` in API `version` (for v2, give [`Proposal::for_v2`]).
pub fn request_body(proposal: &Proposal, version: ApiVersion) -> Vec<u8> {
    let body = match (version, proposal) {
        (ApiVersion::V2, Proposal::HashedRekord { digest, signature, verifier }) => json!({
            "hashedRekordRequestV002": {
                "digest": B64.encode(digest),
                "signature": {"content": B64.encode(signature), "verifier": verifier.v2()},
            }
        }),
        // Not accepted by rekor-tiles (see `for_v2`); kept in the protobuf-specs shape.
        (ApiVersion::V2, Proposal::Dsse { envelope, verifier }) => json!({
            "dsseRequestV002": {"envelope": envelope_json(envelope), "verifiers": [verifier.v2()]}
        }),
        (ApiVersion::V1, Proposal::HashedRekord { digest, signature, verifier }) => json!({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
                "signature": {"content": B64.encode(signature), "publicKey": {"content": B64.encode(verifier.pem())}},
            }
        }),
        (ApiVersion::V1, Proposal::Dsse { envelope, verifier }) => json!({
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {"proposedContent": {
                "envelope": String::from_utf8_lossy(&envelope.to_bytes()),
                "verifiers": [B64.encode(verifier.pem())],
            }}
        }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

fn envelope_json(e: &Envelope) -> Value {
    let sigs: Vec<Value> = e.signatures.iter().map(|s| json!({"sig": s.sig, "keyid": s.keyid})).collect();
    json!({"payload": e.payload, "payloadType": e.payload_type, "signatures": sigs})
}

fn b64(v: &Value, what: &str) -> Result<Vec<u8>, RekorError> {
    v.as_str().and_then(|s| B64.decode(s).ok()).ok_or_else(|| bad(format!("{what} is not base64")))
}

/// Reads a v2 answer (a protobuf-JSON `TransparencyLogEntry`) and checks that it records
/// `proposal`. Returns the entry as the bundle carries it.
pub fn parse_v2(answer: &[u8], proposal: &Proposal) -> Result<Value, RekorError> {
    crate::json::reject_ambiguous_keys(answer).map_err(|e| bad(e.to_string()))?;
    let entry: Value = serde_json::from_slice(answer).map_err(|e| bad(e.to_string()))?;
    check_entry_shape(&entry, proposal.kind(), "0.0.2")?;
    if entry.get("inclusionProof").is_none() {
        return Err(bad("the entry has no inclusion proof"));
    }
    let body = body_of(&entry)?;
    let spec = match proposal {
        Proposal::HashedRekord { .. } => &body["spec"]["hashedRekordV002"],
        Proposal::Dsse { .. } => &body["spec"]["dsseV002"],
    };
    match proposal {
        Proposal::HashedRekord { digest, signature, verifier } => {
            expect(&spec["data"]["algorithm"] == "SHA2_256", "digest algorithm")?;
            expect(b64(&spec["data"]["digest"], "digest")? == digest, "digest")?;
            expect(b64(&spec["signature"]["content"], "signature")? == *signature, "signature")?;
            expect(spec["signature"]["verifier"] == verifier.v2(), "verifier")?;
        }
        Proposal::Dsse { envelope, verifier } => {
            let payload = envelope.payload_bytes().map_err(|e| bad(e.to_string()))?;
            expect(&spec["payloadHash"]["algorithm"] == "SHA2_256", "payload hash algorithm")?;
            expect(
                b64(&spec["payloadHash"]["digest"], "payload hash")? == sha2::Sha256::digest(&payload).as_slice(),
                "payload hash",
            )?;
            let sigs = spec["signatures"].as_array().ok_or_else(|| bad("no signatures in the entry"))?;
            expect(sigs.len() == envelope.signatures.len(), "number of signatures")?;
            for (theirs, ours) in sigs.iter().zip(&envelope.signatures) {
                expect(
                    b64(&theirs["content"], "signature")? == b64(&json!(ours.sig), "envelope signature")?,
                    "signature",
                )?;
                expect(theirs["verifier"] == verifier.v2(), "verifier")?;
            }
        }
    }
    Ok(entry)
}

/// Reads a v1 answer (`{uuid: LogEntry}`), checks that it records `proposal`, and returns
/// it as the bundle's `TransparencyLogEntry`.
pub fn parse_v1(answer: &[u8], proposal: &Proposal) -> Result<Value, RekorError> {
    crate::json::reject_ambiguous_keys(answer).map_err(|e| bad(e.to_string()))?;
    let map: serde_json::Map<String, Value> = serde_json::from_slice(answer).map_err(|e| bad(e.to_string()))?;
    let [(_, e)] = map.iter().collect::<Vec<_>>()[..] else {
        return Err(bad(format!("{} entries in the answer (1 expected)", map.len())));
    };
    let body_b64 = e["body"].as_str().ok_or_else(|| bad("no body"))?;
    let log_id = e["logID"].as_str().and_then(|h| hex::decode(h).ok()).ok_or_else(|| bad("logID is not hex"))?;
    let index = e["logIndex"].as_u64().ok_or_else(|| bad("no logIndex"))?;
    let integrated = e["integratedTime"].as_i64().ok_or_else(|| bad("no integratedTime"))?;
    let v = &e["verification"];
    let set = v["signedEntryTimestamp"].as_str().ok_or_else(|| bad("no signedEntryTimestamp"))?;
    let p = &v["inclusionProof"];
    let hex_to_b64 = |h: &Value, what: &str| -> Result<String, RekorError> {
        h.as_str()
            .and_then(|s| hex::decode(s).ok())
            .map(|b| B64.encode(b))
            .ok_or_else(|| bad(format!("{what} is not hex")))
    };
    let hashes = p["hashes"]
        .as_array()
        .ok_or_else(|| bad("the entry has no inclusion proof"))?
        .iter()
        .map(|h| hex_to_b64(h, "proof hash"))
        .collect::<Result<Vec<_>, _>>()?;
    let entry = json!({
        "logIndex": index.to_string(),
        "logId": {"keyId": B64.encode(log_id)},
        "kindVersion": {"kind": proposal.kind(), "version": "0.0.1"},
        "integratedTime": integrated.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": set},
        "inclusionProof": {
            "logIndex": p["logIndex"].as_u64().ok_or_else(|| bad("no proof logIndex"))?.to_string(),
            "rootHash": hex_to_b64(&p["rootHash"], "rootHash")?,
            "treeSize": p["treeSize"].as_u64().ok_or_else(|| bad("no treeSize"))?.to_string(),
            "hashes": hashes,
            "checkpoint": {"envelope": p["checkpoint"].as_str().ok_or_else(|| bad("no checkpoint"))?},
        },
        "canonicalizedBody": body_b64,
    });
    let body = body_of(&entry)?;
    expect(body["kind"] == proposal.kind() && body["apiVersion"] == "0.0.1", "kind and version")?;
    let spec = &body["spec"];
    match proposal {
        Proposal::HashedRekord { digest, signature, verifier } => {
            expect(spec["data"]["hash"]["algorithm"] == "sha256", "digest algorithm")?;
            expect(spec["data"]["hash"]["value"] == hex::encode(digest), "digest")?;
            expect(b64(&spec["signature"]["content"], "signature")? == *signature, "signature")?;
            expect(
                b64(&spec["signature"]["publicKey"]["content"], "public key")? == verifier.pem().as_bytes(),
                "verifier",
            )?;
        }
        Proposal::Dsse { envelope, verifier } => {
            let payload = envelope.payload_bytes().map_err(|e| bad(e.to_string()))?;
            expect(spec["payloadHash"]["value"] == hex::encode(sha2::Sha256::digest(&payload)), "payload hash")?;
            let sigs = spec["signatures"].as_array().ok_or_else(|| bad("no signatures in the entry"))?;
            expect(sigs.len() == envelope.signatures.len(), "number of signatures")?;
            for (theirs, ours) in sigs.iter().zip(&envelope.signatures) {
                expect(theirs["signature"] == json!(ours.sig), "signature")?;
                expect(b64(&theirs["verifier"], "verifier")? == verifier.pem().as_bytes(), "verifier")?;
            }
        }
    }
    Ok(entry)
}

fn check_entry_shape(entry: &Value, kind: &str, version: &str) -> Result<(), RekorError> {
    let kv = &entry["kindVersion"];
    if kv["kind"] != kind || kv["version"] != version {
        return Err(bad(format!("the entry is {} {} ({kind} {version} was proposed)", kv["kind"], kv["version"])));
    }
    Ok(())
}

fn body_of(entry: &Value) -> Result<Value, RekorError> {
    let body = b64(&entry["canonicalizedBody"], "canonicalizedBody")?;
    serde_json::from_slice(&body).map_err(|e| bad(format!("canonicalizedBody: {e}")))
}

fn expect(ok: bool, what: &str) -> Result<(), RekorError> {
    if ok {
        Ok(())
    } else {
        Err(bad(format!("the entry's {what} is not what was proposed: the log recorded other content")))
    }
}

/// A transparency log.
#[allow(async_fn_in_trait)]
pub trait TransparencyLog {
    /// Records `proposal` and returns the checked entry as a bundle carries it.
    async fn record(&self, proposal: &Proposal) -> Result<Value, RekorError>;
}

/// Rekor over HTTP.
pub struct Rekor {
    service: Service,
    base: String,
    version: ApiVersion,
}

impl Rekor {
    /// The log at `base` speaking API `version`.
    pub fn new(service: Service, base: &str, version: ApiVersion) -> Rekor {
        Rekor { service, base: base.trim_end_matches('/').to_owned(), version }
    }
}

impl TransparencyLog for Rekor {
    async fn record(&self, proposal: &Proposal) -> Result<Value, RekorError> {
        let path = match self.version {
            ApiVersion::V1 => "/api/v1/log/entries",
            ApiVersion::V2 => "/api/v2/log/entries",
        };
        let url = self.service.url(&format!("{}{path}", self.base))?;
        let v2_form;
        let proposal = match self.version {
            ApiVersion::V1 => proposal,
            ApiVersion::V2 => {
                v2_form = proposal.for_v2()?;
                &v2_form
            }
        };
        let body = request_body(proposal, self.version);
        // v1 answers 409 to an entry it holds and serves it: sending again is safe. v2 answers
        // 409 too but serves no entry to read back: sent once.
        let retry = match self.version {
            ApiVersion::V1 => Retry::Idempotent,
            ApiVersion::V2 => Retry::Once,
        };
        let reply = self.service.post_json(&url, body, MAX_RESPONSE_BYTES, retry).await?;
        match (self.version, reply.status) {
            (ApiVersion::V2, 200 | 201) => parse_v2(&reply.body, proposal),
            (ApiVersion::V2, 409) => Err(RekorError::Duplicate(format!(" ({})", reply.excerpt()))),
            (ApiVersion::V1, 200 | 201) => parse_v1(&reply.body, proposal),
            (ApiVersion::V1, 409) => {
                let location = reply.location.ok_or_else(|| bad("409 without a Location"))?;
                let existing = url.join(&location).map_err(|e| bad(format!("Location {location}: {e}")))?;
                if existing.origin() != url.origin() || !existing.path().starts_with("/api/v1/log/entries/") {
                    return Err(bad(format!("409 pointing elsewhere ({existing})")));
                }
                let reply = self.service.get(&existing, &[("Accept", "application/json")], MAX_RESPONSE_BYTES).await?;
                match reply.status {
                    200 => parse_v1(&reply.body, proposal),
                    status => Err(RekorError::Refused { status, message: reply.excerpt() }),
                }
            }
            (_, status) => Err(RekorError::Refused { status, message: reply.excerpt() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> Proposal {
        Proposal::HashedRekord {
            digest: [7; 32],
            signature: vec![1, 2, 3],
            verifier: Verifier::PublicKey { der: vec![9, 9], algorithm: KeyAlgorithm::EcdsaP256 },
        }
    }

    fn v2_answer(p: &Proposal) -> Vec<u8> {
        let req: Value = serde_json::from_slice(&request_body(p, ApiVersion::V2)).unwrap();
        let r = &req["hashedRekordRequestV002"];
        let body = json!({"apiVersion": "0.0.2", "kind": "hashedrekord", "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": r["digest"]}, "signature": r["signature"]}}});
        serde_json::to_vec(&json!({
            "logIndex": "3", "logId": {"keyId": "AA=="}, "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "inclusionProof": {"logIndex": "3", "rootHash": "AA==", "treeSize": "4", "hashes": [], "checkpoint": {"envelope": "x"}},
            "canonicalizedBody": B64.encode(serde_json::to_vec(&body).unwrap()),
        }))
        .unwrap()
    }

    #[test]
    fn rekor_v2_entry_must_record_what_was_proposed() {
        let p = proposal();
        parse_v2(&v2_answer(&p), &p).unwrap();
        let other = Proposal::HashedRekord {
            digest: [8; 32],
            signature: vec![1, 2, 3],
            verifier: Verifier::PublicKey { der: vec![9, 9], algorithm: KeyAlgorithm::EcdsaP256 },
        };
        let e = parse_v2(&v2_answer(&other), &p).unwrap_err().to_string();
        assert!(e.contains("other content"), "{e}");
        let dsse = Proposal::Dsse {
            envelope: Envelope { payload_type: "t".into(), payload: "eA==".into(), signatures: vec![] },
            verifier: Verifier::Certificate(vec![1]),
        };
        assert!(parse_v2(&v2_answer(&p), &dsse).unwrap_err().to_string().contains("dsse 0.0.2 was proposed"));
    }
}
