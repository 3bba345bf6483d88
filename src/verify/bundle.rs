//! Verifying a Sigstore bundle for an artifact (file bytes or a SHA-256 digest).
//!
//! The cryptographic checks — certificate chain to a Fulcio CA at the trusted time, SCTs,
//! signature over the artifact or the DSSE PAE, transparency-log entry body against the
//! bundle, SET, inclusion proof against a signed checkpoint, RFC 3161 timestamps — are
//! `sigstore-verify`'s (measured in docs/dependencies.md: 140/140 on the conformance suite).
//! sigil adds, before and after it:
//! - bounded input, parsed into the library's types (any parse error rejects);
//! - no root certificate inside the bundle's chain: anchors come only from the trusted root;
//! - an in-toto statement's `_type` must be a known in-toto statement type, and no key may
//!   appear twice in it, not even in another case (see [`crate::json`]);
//! - RFC 3161 timestamps verified one by one, those that do not verify ignored and named, one
//!   counted per authority (`timestamps`), and at least one verified time in the end;
//! - the signing certificate's path to a root, with only roots as anchors, and its key usage
//!   (`chain`);
//! - identity and issuer matched again on the verified certificate, with anchored regular
//!   expressions when asked.
//!
//! Every rejection names the check that failed, and says whether the bundle was judged
//! ("no") or the trusted root made judging impossible ("could not check").

use sigstore_verify::types::{Bundle, DerPublicKey, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use super::timestamps::{self, IgnoredTimestamp};
use super::{chain, Verified};
use crate::digest::Digest;
use crate::identity::Matcher;
use crate::trust::Trust;

/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 16 << 20;

/// The in-toto statement types accepted in DSSE envelopes.
pub const INTOTO_STATEMENT_TYPES: &[&str] = &["https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"];

/// The artifact a bundle is checked against.
#[derive(Debug, Clone, Copy)]
pub enum Artifact<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// Only its SHA-256 digest.
    Sha256(&'a Digest),
}

/// Who must have signed.
pub enum Signer<'a> {
    /// A managed key (PEM `PUBLIC KEY`).
    Key(&'a str),
    /// A Fulcio certificate whose SAN and OIDC issuer match.
    Identity {
        /// Certificate SAN (email or URI).
        identity: &'a Matcher,
        /// OIDC issuer extension.
        issuer: &'a Matcher,
    },
}

/// What a verified bundle established.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleFacts {
    /// The bundle's media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// SHA-256 of the artifact.
    pub artifact: String,
    /// Certificate SAN, for keyless bundles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Certificate OIDC issuer, for keyless bundles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Transparency-log integrated time, when the log gave one (RFC 3339).
    #[serde(rename = "integratedTime", skip_serializing_if = "Option::is_none")]
    pub integrated_time: Option<String>,
    /// Verified RFC 3161 timestamps (RFC 3339), one per timestamp authority.
    pub timestamps: Vec<String>,
    /// RFC 3161 timestamps in the bundle that do not count, and why.
    #[serde(rename = "ignoredTimestamps")]
    pub ignored_timestamps: Vec<IgnoredTimestamp>,
    /// Whether a transparency-log entry was verified.
    #[serde(rename = "tlogVerified")]
    pub tlog_verified: bool,
}

/// Whether a rejected bundle was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Verification said no.
    No,
    /// The trust material is unusable (e.g. contradicts itself): nothing could be judged.
    CouldNotCheck,
}

/// Why a bundle was rejected: the check that failed and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check}: {reason}")]
pub struct BundleRejection {
    /// The check, e.g. "bundle format", "certificate chain", "transparency log".
    pub check: &'static str,
    /// Details.
    pub reason: String,
    /// "No", or "could not check".
    pub outcome: Outcome,
}

/// Verification said no.
pub(super) fn reject(check: &'static str, reason: impl Into<String>) -> BundleRejection {
    BundleRejection { check, reason: reason.into(), outcome: Outcome::No }
}

/// The trusted root cannot be used, so nothing was judged.
fn unusable_trust(reason: impl Into<String>) -> BundleRejection {
    BundleRejection { check: "trusted root", reason: reason.into(), outcome: Outcome::CouldNotCheck }
}

/// Which evidence of the signing time the bundle must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// Everything: transparency-log entries are required and checked.
    Full,
    /// The signing flow's check of a bundle before its log entry exists: certificate chain,
    /// SCT, signature and identity, at the time of its RFC 3161 timestamp.
    BeforeLogging,
}

/// Verifies `bundle` (JSON bytes) for `artifact`, signed by `signer`, against `trust`.
pub fn verify_bundle(
    bundle: &[u8],
    artifact: Artifact<'_>,
    signer: &Signer<'_>,
    trust: &Trust,
) -> Result<Verified<BundleFacts>, BundleRejection> {
    verify_with(bundle, artifact, signer, trust, Evidence::Full)
}

/// The signing flow's check of a bundle that has its certificate and timestamps but no log
/// entry yet: whether Fulcio's certificate (chain, SCT, identity) and the signature hold
/// before the signature is sent to the log. Never a verification of a signature someone
/// else made: that is [`verify_bundle`].
pub(crate) fn check_before_logging(
    bundle: &[u8],
    artifact: Artifact<'_>,
    signer: &Signer<'_>,
    trust: &Trust,
) -> Result<(), BundleRejection> {
    verify_with(bundle, artifact, signer, trust, Evidence::BeforeLogging).map(|_| ())
}

/// Verifies a key-signed `bundle` on the key alone (`verify-blob --key
/// --insecure-ignore-tlog`): the signature over the artifact (a message signature) or over
/// the PAE of an in-toto statement about the artifact (a DSSE envelope). No transparency-log
/// entry or signing time is asked for, and none is claimed: the library refuses a bundle
/// without either, so this check is sigil's, with the signature primitives of the key crates.
pub fn verify_bundle_key_alone(
    bundle: &[u8],
    artifact: Artifact<'_>,
    key: &crate::keys::PublicKey,
) -> Result<Verified<BundleFacts>, BundleRejection> {
    use sigstore_verify::types::bundle::SignatureContent;
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(reject("bundle format", format!("larger than {MAX_BUNDLE_BYTES} bytes")));
    }
    let text = std::str::from_utf8(bundle).map_err(|_| reject("bundle format", "not UTF-8 JSON"))?;
    let parsed = Bundle::from_json(text).map_err(|e| reject("bundle format", e.to_string()))?;
    check_statement_type(&parsed)?;
    let digest = match artifact {
        Artifact::Bytes(b) => Digest::sha256(b),
        Artifact::Sha256(d) => d.clone(),
    };
    let sha = digest.sha256_bytes().ok_or_else(|| reject("artifact digest", "not a SHA-256 digest"))?;
    match &parsed.content {
        SignatureContent::MessageSignature(m) => {
            if let Some(d) = &m.message_digest {
                if d.digest.as_bytes() != sha {
                    return Err(reject("artifact digest", "the bundle is for another artifact"));
                }
            }
            let sig = m.signature.as_bytes();
            match artifact {
                Artifact::Bytes(b) => key.verify(b, sig),
                Artifact::Sha256(_) => key.verify_sha256(&sha, sig),
            }
            .map_err(|e| reject("signature", e.to_string()))?;
        }
        SignatureContent::DsseEnvelope(_) => {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| reject("bundle format", e.to_string()))?;
            let env = serde_json::to_vec(&v["dsseEnvelope"]).map_err(|e| reject("bundle format", e.to_string()))?;
            let envelope = crate::dsse::Envelope::parse(&env)
                .map_err(|e| reject("bundle format", format!("DSSE envelope: {e}")))?;
            let payload = envelope.verify(key).map_err(|e| reject("signature", e.to_string()))?;
            let statement =
                crate::intoto::Statement::parse(&payload).map_err(|e| reject("in-toto statement", e.to_string()))?;
            if !statement.is_about(&digest) {
                return Err(reject("artifact digest", format!("the signed statement is not about {digest}")));
            }
        }
        _ => return Err(reject("bundle format", "neither a message signature nor a DSSE envelope")),
    }
    Ok(Verified(BundleFacts {
        media_type: parsed.media_type.as_str().to_owned(),
        artifact: digest.to_string(),
        identity: None,
        issuer: None,
        integrated_time: None,
        timestamps: Vec::new(),
        ignored_timestamps: Vec::new(),
        tlog_verified: false,
    }))
}

fn verify_with(
    bundle: &[u8],
    artifact: Artifact<'_>,
    signer: &Signer<'_>,
    trust: &Trust,
    evidence: Evidence,
) -> Result<Verified<BundleFacts>, BundleRejection> {
    if bundle.len() > MAX_BUNDLE_BYTES {
        return Err(reject("bundle format", format!("larger than {MAX_BUNDLE_BYTES} bytes")));
    }
    let text = std::str::from_utf8(bundle).map_err(|_| reject("bundle format", "not UTF-8 JSON"))?;
    let parsed = Bundle::from_json(text).map_err(|e| reject("bundle format", e.to_string()))?;
    check_material_matches_version(&parsed)?;
    check_no_root_in_chain(&parsed)?;
    check_statement_type(&parsed)?;

    let digest = match artifact {
        Artifact::Bytes(b) => Digest::sha256(b),
        Artifact::Sha256(d) => d.clone(),
    };
    let hash = Sha256Hash::from_hex(digest.hex()).map_err(|e| reject("artifact digest", e.to_string()))?;
    // A root that contradicts itself or holds unparsable material: nothing can be judged.
    let verifier = Verifier::new(&trust.root).map_err(|e| unusable_trust(e.to_string()))?;
    let sifted = timestamps::sift(&parsed, &trust.root)?;
    let (parsed, tsa_times, ignored) = (sifted.bundle, sifted.times, sifted.ignored);
    let result = match signer {
        Signer::Key(pem) => {
            let key = DerPublicKey::from_pem(pem).map_err(|e| reject("public key", e.to_string()))?;
            let mut policy = PublicKeyVerificationPolicy::new(key);
            if evidence == Evidence::BeforeLogging {
                policy = policy.skip_tlog_unsafe();
            }
            match artifact {
                Artifact::Bytes(b) => verifier.verify(b, &parsed, &policy),
                Artifact::Sha256(_) => verifier.verify(hash, &parsed, &policy),
            }
        }
        Signer::Identity { identity, issuer } => {
            let policy = match (identity, issuer) {
                (Matcher::Exact(id), Matcher::Exact(iss)) => VerificationPolicy::new(id.as_str(), iss.as_str()),
                (_, Matcher::Exact(iss)) => VerificationPolicy::any_identity().require_issuer(iss.as_str()),
                _ => VerificationPolicy::any_identity(),
            };
            let policy = match evidence {
                Evidence::Full => policy,
                Evidence::BeforeLogging => policy.skip_tlog_unsafe(),
            };
            match artifact {
                Artifact::Bytes(b) => verifier.verify(b, &parsed, &policy),
                Artifact::Sha256(_) => verifier.verify(hash, &parsed, &policy),
            }
        }
    }
    .map_err(|e| with_ignored(classify(e), &ignored))?;

    // sigstore-go's threshold: at least one verified time (a timestamp or a log's integrated
    // time). The library demands it for certificates; managed keys get it here.
    let times = result.verified_timestamps();
    if times.is_empty() {
        return Err(with_ignored(
            reject(
                "timestamp",
                "no verified signing time: the bundle needs an RFC 3161 timestamp from a trusted authority or a transparency-log entry with an integrated time",
            ),
            &ignored,
        ));
    }
    if let Signer::Identity { .. } = signer {
        chain::check_signing_certificate(&parsed, &trust.root, times)?;
    }

    let identity = result.identity().map(|s| s.as_str().to_owned());
    let issuer = result.issuer().map(str::to_owned);
    if let Signer::Identity { identity: want_id, issuer: want_iss } = signer {
        // Checked again here, on the verified certificate, whatever the library did.
        match &identity {
            Some(id) if want_id.matches(id) => {}
            other => {
                return Err(reject("certificate identity", format!("expected {want_id}, certificate has {other:?}")))
            }
        }
        match &issuer {
            Some(iss) if want_iss.matches(iss) => {}
            other => return Err(reject("OIDC issuer", format!("expected {want_iss}, certificate has {other:?}"))),
        }
    }
    Ok(Verified(BundleFacts {
        media_type: parsed.media_type.as_str().to_owned(),
        artifact: digest.to_string(),
        identity,
        issuer,
        integrated_time: result.integrated_time().map(|t| t.to_string()),
        timestamps: tsa_times.iter().map(ToString::to_string).collect(),
        ignored_timestamps: ignored,
        tlog_verified: result.tlog_verified(),
    }))
}

/// A timestamp rejection also names the timestamps that were ignored.
fn with_ignored(mut r: BundleRejection, ignored: &[IgnoredTimestamp]) -> BundleRejection {
    if r.check == "timestamp" && !ignored.is_empty() {
        let list: Vec<String> = ignored.iter().map(ToString::to_string).collect();
        r.reason = format!("{} (ignored: {})", r.reason, list.join("; "));
    }
    r
}

/// Names the check behind a library error.
fn classify(e: sigstore_verify::Error) -> BundleRejection {
    use sigstore_verify::Error as E;
    let check = match &e {
        E::IdentityMismatch { .. } => "certificate identity",
        E::IssuerMismatch { .. } => "OIDC issuer",
        E::SignatureInvalid(_) => "signature",
        E::ArtifactMismatch(_) => "artifact digest",
        E::UnsupportedArtifact(_) => "artifact input",
        E::Certificate(_) => "certificate",
        E::TransparencyLog(_) => "transparency log",
        E::Timestamp(_) => "timestamp",
        E::InvalidBundle(_) | E::UnsupportedBundle(_) | E::Bundle(_) | E::Types(_) => "bundle format",
        // Trust material this bundle needs but the root lacks (e.g. no CT key for its SCT's
        // algorithm): the bundle cannot be verified with this root, a "no". A root that is
        // unusable whatever the bundle is refused before (`Verifier::new`): "could not check".
        E::InvalidTrustRoot(_) | E::TrustRoot(_) | E::TrustedCertificate(_) => "trusted root",
        _ => "verification",
    };
    reject(check, e.to_string())
}

/// The media type is not signed: a bundle must not claim an older version than its material
/// shows, since older versions relax requirements (v0.1 needs no inclusion proof). A single
/// `certificate` exists only from v0.3 on.
fn check_material_matches_version(bundle: &Bundle) -> Result<(), BundleRejection> {
    use sigstore_verify::types::bundle::VerificationMaterialContent;
    let mt = bundle.media_type.as_str();
    let pre_v03 = mt.ends_with(";version=0.1") || mt.ends_with(";version=0.2");
    if pre_v03 && matches!(bundle.verification_material.content, VerificationMaterialContent::Certificate(_)) {
        return Err(reject(
            "bundle format",
            format!(
                "media type {mt} with a v0.3 `certificate` field: the media type was rewritten to an older version"
            ),
        ));
    }
    Ok(())
}

/// A bundle's chain must not carry its own root: trust anchors come from the trusted root
/// only (sigstore-conformance `bundle-with-root-cert_fail`).
fn check_no_root_in_chain(bundle: &Bundle) -> Result<(), BundleRejection> {
    use sigstore_verify::types::bundle::VerificationMaterialContent;
    use x509_cert::der::Decode;
    if let VerificationMaterialContent::X509CertificateChain { certificates } = &bundle.verification_material.content {
        for c in certificates {
            let cert = x509_cert::Certificate::from_der(c.raw_bytes.as_bytes())
                .map_err(|e| reject("certificate chain", format!("certificate is not valid DER: {e}")))?;
            if cert.tbs_certificate.subject == cert.tbs_certificate.issuer {
                return Err(reject(
                    "certificate chain",
                    "the bundle includes a self-signed root certificate; roots must come from the trusted root",
                ));
            }
        }
    }
    Ok(())
}

/// A DSSE in-toto payload must declare a known statement type.
fn check_statement_type(bundle: &Bundle) -> Result<(), BundleRejection> {
    use sigstore_verify::types::bundle::SignatureContent;
    let SignatureContent::DsseEnvelope(env) = &bundle.content else { return Ok(()) };
    if env.payload_type != "application/vnd.in-toto+json" {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "_type")]
        kind: String,
    }
    let head: Head = serde_json::from_slice(env.payload.as_bytes())
        .map_err(|e| reject("in-toto statement", format!("payload is not an in-toto statement: {e}")))?;
    if !INTOTO_STATEMENT_TYPES.contains(&head.kind.as_str()) {
        return Err(reject("in-toto statement", format!("unknown statement _type {:?}", head.kind)));
    }
    // Go verifiers read the statement with case-insensitive keys: one meaning only.
    crate::json::reject_ambiguous_keys(env.payload.as_bytes())
        .map_err(|e| reject("in-toto statement", format!("ambiguous statement: {e}")))?;
    Ok(())
}
