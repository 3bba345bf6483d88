//! The signing certificate's profile and its path to a trusted root, checked as RFC 5280 and
//! the Fulcio certificate profile require, after `sigstore-verify` accepted the bundle.
//!
//! The library makes every certificate of a trusted root's CA chain a trust anchor, so the
//! intermediates there get no path checks at all (a non-CA, one without keyCertSign, or one
//! expired at the signing time still issues), and, like webpki, it ignores key usage. The
//! reference clients (sigstore-go's `root.FulcioCertificateAuthority.Verify`, sigstore-python)
//! anchor on the root only. Here, for every verified signing time and every certificate
//! authority valid then:
//! - the anchor is the last certificate of the CA's chain (its root) and nothing else;
//! - the CA's other certificates and the bundle's own are intermediates, and get the path
//!   checks from rustls-webpki (the path builder the library uses, with its signature
//!   algorithms): signatures, basic constraints (cA), path length, validity at that time,
//!   code-signing extended key usage;
//! - every intermediate on the path must carry key usage with keyCertSign (RFC 5280 §4.2.1.3);
//! - the signing certificate must carry key usage with digitalSignature (Fulcio profile).
//!
//! The signatures are verified by the crates; nothing here is cryptography.

use std::cell::RefCell;

use jiff::Timestamp;
use rustls_pki_types::{CertificateDer, UnixTime};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::Bundle;
use webpki::{EndEntityCert, KeyUsage as Eku};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::KeyUsage;

use super::bundle::{reject, BundleRejection};

/// id-kp-codeSigning (RFC 5280 §4.2.1.12).
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");

/// Checks the signing certificate of `bundle` (which the library verified) against `root` at
/// each of `times` (the verified signing times).
pub fn check_signing_certificate(
    bundle: &Bundle,
    root: &TrustedRoot,
    times: &[Timestamp],
) -> Result<(), BundleRejection> {
    let (leaf, bundle_intermediates): (&[u8], Vec<&[u8]>) = match &bundle.verification_material.content {
        VerificationMaterialContent::Certificate(c) => (c.raw_bytes.as_bytes(), Vec::new()),
        VerificationMaterialContent::X509CertificateChain { certificates } => match certificates.split_first() {
            Some((leaf, rest)) => (leaf.raw_bytes.as_bytes(), rest.iter().map(|c| c.raw_bytes.as_bytes()).collect()),
            None => return Err(reject("certificate", "the bundle's certificate chain is empty")),
        },
        _ => return Err(reject("certificate", "the bundle carries no signing certificate")),
    };
    check_leaf_key_usage(leaf)?;
    if times.is_empty() {
        return Err(reject("certificate chain", "no verified signing time to check the certificate chain at"));
    }
    for &time in times {
        check_path_at(leaf, &bundle_intermediates, root, time)?;
    }
    Ok(())
}

/// The Fulcio profile: key usage present, with digitalSignature.
fn check_leaf_key_usage(leaf: &[u8]) -> Result<(), BundleRejection> {
    let usage = key_usage(leaf).map_err(|e| reject("certificate", format!("signing certificate: {e}")))?;
    match usage {
        None => Err(reject(
            "certificate",
            "the signing certificate has no key usage extension; the Fulcio certificate profile requires one with digitalSignature",
        )),
        Some(u) if !u.digital_signature() => Err(reject(
            "certificate",
            "the signing certificate's key usage lacks digitalSignature, which the Fulcio certificate profile requires",
        )),
        Some(_) => Ok(()),
    }
}

/// A path from `leaf` to the root of a certificate authority valid at `time`, every
/// certificate but the root checked at `time`.
fn check_path_at(
    leaf: &[u8],
    bundle_intermediates: &[&[u8]],
    root: &TrustedRoot,
    time: Timestamp,
) -> Result<(), BundleRejection> {
    let leaf_der = CertificateDer::from(leaf);
    let end_entity = EndEntityCert::try_from(&leaf_der)
        .map_err(|e| reject("certificate", format!("the signing certificate does not parse: {e:?}")))?;
    let seconds = u64::try_from(time.as_second())
        .map_err(|_| reject("certificate chain", format!("signing time {time} is before 1970")))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
    let mut refusals = Vec::new();
    for ca in &root.certificate_authorities {
        if !ca.valid_for.is_none_or(|window| window.contains(time)) {
            continue;
        }
        let Some((anchor, ca_intermediates)) = ca.cert_chain.certificates.split_last() else {
            refusals.push(format!("{}: empty certificate chain", ca.uri));
            continue;
        };
        let anchor_der = CertificateDer::from(anchor.raw_bytes.as_bytes());
        let anchor = match webpki::anchor_from_trusted_cert(&anchor_der) {
            Ok(a) => a,
            Err(e) => {
                refusals.push(format!("{}: its root certificate does not parse ({e:?})", ca.uri));
                continue;
            }
        };
        let intermediates: Vec<CertificateDer<'_>> = bundle_intermediates
            .iter()
            .copied()
            .chain(ca_intermediates.iter().map(|c| c.raw_bytes.as_bytes()))
            .map(CertificateDer::from)
            .collect();
        let profile_refusal = RefCell::new(None);
        let ca_key_usage = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            for cert in path.intermediate_certificates() {
                let why = match key_usage(cert.der().as_ref()) {
                    Ok(Some(u)) if u.key_cert_sign() => continue,
                    Ok(Some(_)) => "an intermediate certificate's key usage lacks keyCertSign".to_owned(),
                    Ok(None) => {
                        "an intermediate certificate has no key usage extension (keyCertSign is required)".to_owned()
                    }
                    Err(e) => format!("an intermediate certificate: {e}"),
                };
                *profile_refusal.borrow_mut() = Some(why);
                return Err(webpki::Error::ExtensionValueInvalid);
            }
            Ok(())
        };
        match end_entity.verify_for_usage(
            sigstore_verify::crypto::WEBPKI_VERIFICATION_ALGS,
            &[anchor],
            &intermediates,
            at,
            Eku::required(CODE_SIGNING.as_bytes()),
            None,
            Some(&ca_key_usage),
        ) {
            Ok(_) => return Ok(()),
            Err(e) => {
                let why = profile_refusal.take().unwrap_or_else(|| describe(&e, time));
                refusals.push(format!("{}: {why}", ca.uri));
            }
        }
    }
    if refusals.is_empty() {
        return Err(reject(
            "certificate chain",
            format!("no certificate authority in the trusted root was valid at the signing time {time}"),
        ));
    }
    Err(reject(
        "certificate chain",
        format!("no valid path to a trusted root at the signing time {time}: {}", refusals.join("; ")),
    ))
}

/// The key usage extension of a DER certificate, if it has one.
fn key_usage(der: &[u8]) -> Result<Option<KeyUsage>, String> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| format!("not a valid DER certificate: {e}"))?;
    cert.tbs_certificate
        .get::<KeyUsage>()
        .map(|found| found.map(|(_critical, usage)| usage))
        .map_err(|e| format!("malformed key usage extension: {e}"))
}

/// A webpki path error in words.
fn describe(e: &webpki::Error, time: Timestamp) -> String {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => format!("a certificate on the path had expired at the signing time {time}"),
        E::CertNotValidYet { .. } => format!("a certificate on the path was not yet valid at the signing time {time}"),
        E::EndEntityUsedAsCa => "an intermediate certificate is not a CA (basicConstraints cA is not set)".into(),
        E::CaUsedAsEndEntity => "the signing certificate is a CA certificate".into(),
        E::PathLenConstraintViolated => "a CA's path length constraint is exceeded".into(),
        E::UnknownIssuer => "the signing certificate does not chain to this authority's root".into(),
        E::RequiredEkuNotFoundContext(_) => {
            "a certificate on the path lacks the code-signing extended key usage".into()
        }
        other => format!("{other:?}"),
    }
}
