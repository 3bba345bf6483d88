//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus smoke test
//! (`tests/fuzz_smoke.rs`). Each takes arbitrary bytes and must never panic; the round-trip
//! assertions are properties, not input checks.
#![doc(hidden)]

use crate::keys;
use crate::oci::manifest::Manifest;
use crate::payload::SimpleSigning;
use crate::reference::ImageRef;

/// Encrypted and unencrypted private-key parsing (no scrypt: that needs the password).
pub fn encrypted_key(data: &[u8]) {
    let _ = keys::check_encrypted_key(data);
    let _ = keys::parse_unencrypted_private_key(data);
}

/// PKIX public keys, PEM and DER.
pub fn public_key(data: &[u8]) {
    let _ = keys::PublicKey::from_pem(data);
    let _ = keys::PublicKey::from_der(data);
}

/// Simple-signing payloads: what parses serialises and parses back to the same value.
pub fn payload(data: &[u8]) {
    if let Ok(p) = SimpleSigning::parse(data) {
        let again = SimpleSigning::parse(&p.to_bytes());
        assert!(matches!(again, Ok(ref q) if *q == p), "payload round trip");
    }
}

/// OCI manifests and indexes.
pub fn manifest(data: &[u8]) {
    let _ = Manifest::parse(data);
}

/// Image references: the normalised form parses to the same reference.
pub fn reference(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = ImageRef::parse(s) {
            let again = ImageRef::parse(&r.to_string());
            assert!(matches!(again, Ok(ref q) if *q == r), "reference round trip: {s:?}");
        }
    }
}
