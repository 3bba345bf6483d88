//! A bundle's RFC 3161 timestamps, sifted before the bundle goes to `sigstore-verify`.
//!
//! The library rejects a whole bundle when any one of its timestamps does not verify. The
//! reference clients do not: sigstore-go (`pkg/verify/tsa.go`) and sigstore-python verify each
//! timestamp on its own, ignore the ones they cannot verify (wrong message, unknown authority,
//! signed outside the authority's validity window), count one timestamp per authority, and
//! only then apply the threshold of verified times. sigil does the same here: each token is
//! verified alone with the library's own per-authority check
//! (`sigstore_tsa::verify_timestamp_for_authority`), and only verified tokens, one per
//! authority, are handed on; the library verifies those again and applies the threshold.
//!
//! Ignoring is never accepting: an ignored timestamp is not a time source, is reported by
//! position and reason, and the bundle still needs a verified time from what is left.

use serde::Serialize;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Bundle, SignatureContent};

use super::bundle::{reject, BundleRejection};

/// Most RFC 3161 timestamps read from one bundle (sigstore-go's `MaxAllowedTimestamps`).
pub const MAX_TIMESTAMPS: usize = 32;

/// Why a timestamp does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IgnoredBecause {
    /// It is not over this bundle's signature (message imprint mismatch).
    WrongMessage,
    /// No timestamp authority in the trusted root signed it.
    UnknownAuthority,
    /// An authority signed it, at a time outside that authority's validity window.
    OutsideAuthorityValidity,
    /// Another timestamp from the same authority was already counted.
    Duplicate,
}

/// A timestamp present in the bundle that does not count as a verified time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredTimestamp {
    /// Its position in the bundle's `rfc3161Timestamps` (from 0).
    pub index: usize,
    /// Why, as a stable tag.
    pub kind: IgnoredBecause,
    /// Why, for people.
    pub reason: String,
}

impl std::fmt::Display for IgnoredTimestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RFC 3161 timestamp #{}: {}", self.index, self.reason)
    }
}

/// The bundle with only verified, distinct timestamps, and what was left out.
pub struct Sifted {
    /// The bundle to hand to the library.
    pub bundle: Bundle,
    /// The signed times of the timestamps kept, in bundle order.
    pub times: Vec<jiff::Timestamp>,
    /// The timestamps left out, in bundle order.
    pub ignored: Vec<IgnoredTimestamp>,
}

/// Verifies each RFC 3161 timestamp of `bundle` on its own against `root`'s timestamp
/// authorities and keeps the verified ones, the first per authority.
pub fn sift(bundle: &Bundle, root: &TrustedRoot) -> Result<Sifted, BundleRejection> {
    let tokens = &bundle.verification_material.timestamp_verification_data.rfc3161_timestamps;
    if tokens.is_empty() {
        return Ok(Sifted { bundle: bundle.clone(), times: Vec::new(), ignored: Vec::new() });
    }
    if tokens.len() > MAX_TIMESTAMPS {
        return Err(reject(
            "timestamp",
            format!("the bundle carries {} RFC 3161 timestamps, more than the {MAX_TIMESTAMPS} read", tokens.len()),
        ));
    }
    let signature = match &bundle.content {
        SignatureContent::MessageSignature(m) => &m.signature,
        SignatureContent::DsseEnvelope(e) => &e.signature.sig,
        // Nothing a timestamp could be over: the library rejects the content itself.
        _ => return Ok(Sifted { bundle: bundle.clone(), times: Vec::new(), ignored: Vec::new() }),
    };
    let authorities = root.tsa_authorities();
    let (mut kept, mut times) = (Vec::new(), Vec::new());
    let mut counted: Vec<(usize, usize)> = Vec::new(); // (authority, first token index)
    let mut ignored = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        match verify_one(&token.signed_timestamp, signature, &authorities) {
            Ok((authority, time)) => match counted.iter().find(|(a, _)| *a == authority) {
                Some((_, first)) => ignored.push(IgnoredTimestamp {
                    index,
                    kind: IgnoredBecause::Duplicate,
                    reason: format!(
                        "from the same timestamp authority as timestamp #{first}, which is already counted (one per authority)"
                    ),
                }),
                None => {
                    counted.push((authority, index));
                    kept.push(token.clone());
                    times.push(time);
                }
            },
            Err((kind, reason)) => ignored.push(IgnoredTimestamp { index, kind, reason }),
        }
    }
    let mut sifted = bundle.clone();
    sifted.verification_material.timestamp_verification_data.rfc3161_timestamps = kept;
    Ok(Sifted { bundle: sifted, times, ignored })
}

/// The index of the authority that verifies `token` over `signature` and the signed time, or
/// why none does.
fn verify_one(
    token: &sigstore_verify::types::TimestampToken,
    signature: &sigstore_verify::types::SignatureBytes,
    authorities: &[sigstore_verify::types::TsaAuthority],
) -> Result<(usize, jiff::Timestamp), (IgnoredBecause, String)> {
    use sigstore_verify::tsa::Error as E;
    if authorities.is_empty() {
        return Err((IgnoredBecause::UnknownAuthority, "the trusted root has no usable timestamp authority".into()));
    }
    let (mut outside, mut wrong_message, mut last) = (None, false, String::new());
    for (i, authority) in authorities.iter().enumerate() {
        match sigstore_verify::tsa::verify_timestamp_for_authority(token, signature, authority) {
            Ok(time) => return Ok((i, time)),
            Err(E::TimestampOutsideValidity { time }) => outside = Some(time),
            Err(E::HashMismatch { .. }) => wrong_message = true,
            Err(e) => last = e.to_string(),
        }
    }
    Err(match (outside, wrong_message) {
        (Some(time), _) => (
            IgnoredBecause::OutsideAuthorityValidity,
            format!(
                "signed at {time}, outside the validity window the trusted root gives the authority that signed it"
            ),
        ),
        (None, true) => {
            (IgnoredBecause::WrongMessage, "it is not over this bundle's signature (message imprint mismatch)".into())
        }
        (None, false) => (
            IgnoredBecause::UnknownAuthority,
            format!("no timestamp authority in the trusted root verifies it ({last})"),
        ),
    })
}
