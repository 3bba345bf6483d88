//! Signing keys and cosign's encrypted private-key format.
//!
//! A private key at rest is a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` whose body is the
//! JSON that go-securesystemslib's `encrypted` package writes: scrypt derives a 32-byte key
//! from the password, NaCl secretbox (XSalsa20-Poly1305) seals the PKCS#8 DER of the key.
//! Reading accepts the older `ENCRYPTED COSIGN PRIVATE KEY` label and only the three scrypt
//! parameter sets cosign uses; anything else is refused before scrypt runs.
//!
//! Pure: bytes and passwords in, bytes out. Files, prompts and the environment live in
//! `cli::keys`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use spki::DecodePublicKey;
use zeroize::Zeroizing;

/// PEM label written for encrypted private keys.
pub const ENCRYPTED_SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// Older PEM label cosign also reads.
pub const ENCRYPTED_COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// Largest key file read.
pub const MAX_KEY_FILE_BYTES: usize = 64 * 1024;

/// The scrypt parameters written by [`encrypt_private_key`].
pub const DEFAULT_SCRYPT: ScryptParams = ScryptParams { n: 65536, r: 8, p: 1 };

/// A password. Zeroized on drop, never printed.
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Wraps password bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Password(Zeroizing::new(bytes))
    }

    /// True for the empty password.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A key algorithm sigil can generate and use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256 with SHA-256 (cosign's default).
    EcdsaP256,
    /// Ed25519 (pure, over the message bytes, as cosign signs images).
    Ed25519,
}

/// A private signing key.
pub enum PrivateKey {
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, <redacted>)", self.algorithm())
    }
}

/// A public verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ECDSA P-256.
    EcdsaP256(p256::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Errors reading, decrypting or using keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Larger than [`MAX_KEY_FILE_BYTES`].
    #[error("key file is larger than {MAX_KEY_FILE_BYTES} bytes")]
    TooLarge,
    /// Not PEM, or no block of the expected kind.
    #[error("not a PEM key file ({0})")]
    NotPem(String),
    /// A PEM label this command does not handle.
    #[error("unexpected PEM block {0:?}")]
    UnexpectedLabel(String),
    /// The encrypted key's JSON is malformed.
    #[error("encrypted key is malformed: {0}")]
    Malformed(String),
    /// KDF or cipher or parameters outside what cosign writes.
    #[error("unsupported encrypted key parameters: {0} (sigil accepts scrypt N=32768|65536|131072, r=8, p=1 with nacl/secretbox)")]
    Unsupported(String),
    /// The password does not open the key (or the ciphertext was altered).
    #[error("decryption failed: wrong password, or the key file is corrupted")]
    Decrypt,
    /// The key inside is not one sigil supports.
    #[error("unsupported key type: {0} (sigil supports ECDSA P-256 and Ed25519)")]
    UnsupportedKeyType(String),
    /// DER/PKCS#8 encoding problem.
    #[error("key encoding error: {0}")]
    Encoding(String),
}

/// scrypt cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScryptParams {
    /// CPU/memory cost.
    #[serde(rename = "N")]
    pub n: u64,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl ScryptParams {
    fn checked(self) -> Result<scrypt::Params, KeyError> {
        let log_n = match (self.n, self.r, self.p) {
            (32768, 8, 1) => 15,
            (65536, 8, 1) => 16,
            (131072, 8, 1) => 17,
            _ => return Err(KeyError::Unsupported(format!("scrypt N={} r={} p={}", self.n, self.r, self.p))),
        };
        scrypt::Params::new(log_n, self.r, self.p, 32).map_err(|e| KeyError::Unsupported(e.to_string()))
    }
}

// Field order matters: this is the order go-securesystemslib writes.
#[derive(Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use super::B64;
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
    use serde::Deserialize;
}

fn derive_key(password: &Password, salt: &[u8], params: ScryptParams) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let p = params.checked()?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), salt, &p, key.as_mut_slice())
        .map_err(|e| KeyError::Unsupported(e.to_string()))?;
    Ok(key)
}

/// Encrypts `key` with `password` into cosign's PEM format.
pub fn encrypt_private_key(key: &PrivateKey, password: &Password, params: ScryptParams) -> Result<String, KeyError> {
    let der = key.to_pkcs8_der()?;
    let mut salt = [0u8; 32];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let dk = derive_key(password, &salt, params)?;
    let cipher = XSalsa20Poly1305::new(dk.as_ref().into());
    let ciphertext = cipher
        .encrypt((&nonce).into(), der.as_slice())
        .map_err(|_| KeyError::Encoding("secretbox seal failed".into()))?;
    let body = EncryptedKey {
        kdf: Kdf { name: "scrypt".into(), params, salt: salt.to_vec() },
        cipher: Cipher { name: "nacl/secretbox".into(), nonce: nonce.to_vec() },
        ciphertext,
    };
    let json = serde_json::to_vec(&body).map_err(|e| KeyError::Encoding(e.to_string()))?;
    Ok(pem_encode(ENCRYPTED_SIGSTORE_LABEL, &json))
}

/// Reads the parameters of an encrypted key without decrypting it (cheap: no scrypt).
fn parse_encrypted(pem: &[u8]) -> Result<EncryptedKey, KeyError> {
    if pem.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge);
    }
    let blocks = pem_blocks(pem)?;
    let (label, body) = blocks
        .into_iter()
        .find(|(l, _)| l == ENCRYPTED_SIGSTORE_LABEL || l == ENCRYPTED_COSIGN_LABEL)
        .ok_or_else(|| KeyError::NotPem(format!("no {ENCRYPTED_SIGSTORE_LABEL} block")))?;
    let _ = label;
    let enc: EncryptedKey = serde_json::from_slice(&body).map_err(|e| KeyError::Malformed(e.to_string()))?;
    if enc.kdf.name != "scrypt" {
        return Err(KeyError::Unsupported(format!("kdf {:?}", enc.kdf.name)));
    }
    if enc.cipher.name != "nacl/secretbox" {
        return Err(KeyError::Unsupported(format!("cipher {:?}", enc.cipher.name)));
    }
    enc.kdf.params.checked()?;
    if enc.kdf.salt.is_empty() || enc.kdf.salt.len() > 64 {
        return Err(KeyError::Malformed(format!("salt of {} bytes", enc.kdf.salt.len())));
    }
    if enc.cipher.nonce.len() != 24 {
        return Err(KeyError::Malformed(format!("nonce of {} bytes, expected 24", enc.cipher.nonce.len())));
    }
    if enc.ciphertext.len() < 16 {
        return Err(KeyError::Malformed("ciphertext shorter than the authenticator".into()));
    }
    Ok(enc)
}

/// Checks that `pem` is an encrypted key this module can open, without the password.
pub fn check_encrypted_key(pem: &[u8]) -> Result<(), KeyError> {
    parse_encrypted(pem).map(|_| ())
}

/// Decrypts cosign's encrypted PEM into a private key.
pub fn decrypt_private_key(pem: &[u8], password: &Password) -> Result<PrivateKey, KeyError> {
    let enc = parse_encrypted(pem)?;
    let dk = derive_key(password, &enc.kdf.salt, enc.kdf.params)?;
    let cipher = XSalsa20Poly1305::new(dk.as_ref().into());
    let nonce: [u8; 24] =
        enc.cipher.nonce.as_slice().try_into().map_err(|_| KeyError::Malformed("nonce length".into()))?;
    let der =
        Zeroizing::new(cipher.decrypt((&nonce).into(), enc.ciphertext.as_slice()).map_err(|_| KeyError::Decrypt)?);
    PrivateKey::from_pkcs8_der(&der)
}

/// Reads an unencrypted private key PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
pub fn parse_unencrypted_private_key(pem: &[u8]) -> Result<PrivateKey, KeyError> {
    if pem.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge);
    }
    let blocks = pem_blocks(pem)?;
    let mut found = None;
    for (label, body) in blocks {
        match label.as_str() {
            "PRIVATE KEY" => found = Some(PrivateKey::from_pkcs8_der(&body)?),
            "EC PRIVATE KEY" => {
                let sk = p256::SecretKey::from_sec1_der(&body)
                    .map_err(|e| KeyError::UnsupportedKeyType(format!("SEC1 key is not P-256 ({e})")))?;
                found = Some(PrivateKey::EcdsaP256(sk.into()))
            }
            "PUBLIC KEY" | "EC PARAMETERS" => {}
            l if l == ENCRYPTED_SIGSTORE_LABEL || l == ENCRYPTED_COSIGN_LABEL => {
                return Err(KeyError::UnexpectedLabel(format!("{l} (already encrypted)")))
            }
            other => return Err(KeyError::UnexpectedLabel(other.to_owned())),
        }
        if found.is_some() {
            break;
        }
    }
    found.ok_or_else(|| KeyError::NotPem("no PRIVATE KEY or EC PRIVATE KEY block".into()))
}

impl PrivateKey {
    /// A fresh random key.
    pub fn generate(alg: KeyAlgorithm) -> Self {
        match alg {
            KeyAlgorithm::EcdsaP256 => PrivateKey::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            KeyAlgorithm::Ed25519 => PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PrivateKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            PrivateKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let oid = info.algorithm.oid;
        if oid == elliptic_curve_oid() {
            p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(PrivateKey::EcdsaP256)
                .map_err(|e| KeyError::UnsupportedKeyType(format!("EC key is not P-256 ({e})")))
        } else if oid == ed25519_oid() {
            ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(PrivateKey::Ed25519)
                .map_err(|e| KeyError::Encoding(e.to_string()))
        } else {
            Err(KeyError::UnsupportedKeyType(format!("algorithm OID {oid}")))
        }
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match self {
            PrivateKey::EcdsaP256(k) => k.to_pkcs8_der(),
            PrivateKey::Ed25519(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::Encoding(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// Signs `message` the way cosign does: ECDSA P-256 over SHA-256 with an ASN.1 DER
    /// signature; Ed25519 over the message itself.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use signature::Signer;
        match self {
            PrivateKey::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

/// How an ECDSA signature's nonce is drawn (Ed25519 is deterministic whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonce {
    /// RFC 6979: the same message always gets the same signature, so cosign 2's `.sig` tags
    /// and the offline bundle path recognise a signature already there.
    Deterministic,
    /// RFC 6979 with fresh randomness mixed in (as Go's crypto/ecdsa signs): every signing
    /// differs, so a transparency log, which refuses an exact duplicate, records each one.
    Hedged,
}

impl PrivateKey {
    /// Signs `message` as [`PrivateKey::sign`] does, drawing the ECDSA nonce as `nonce` says.
    pub fn sign_with(&self, message: &[u8], nonce: Nonce) -> Vec<u8> {
        use signature::RandomizedSigner;
        match (self, nonce) {
            (PrivateKey::EcdsaP256(k), Nonce::Hedged) => {
                let sig: p256::ecdsa::Signature = k.sign_with_rng(&mut rand_core::OsRng, message);
                sig.to_der().as_bytes().to_vec()
            }
            _ => self.sign(message),
        }
    }

    /// Signs an artifact known by its SHA-256 digest: for ECDSA P-256 the same signature as
    /// [`PrivateKey::sign`] over the artifact's bytes. Ed25519 signs the message itself, so
    /// it has no such signature: `None`.
    pub fn sign_sha256(&self, digest: &[u8; 32], nonce: Nonce) -> Option<Vec<u8>> {
        use signature::hazmat::{PrehashSigner, RandomizedPrehashSigner};
        let sig: p256::ecdsa::Signature = match (self, nonce) {
            (PrivateKey::EcdsaP256(k), Nonce::Deterministic) => k.sign_prehash(digest).ok()?,
            (PrivateKey::EcdsaP256(k), Nonce::Hedged) => k.sign_prehash_with_rng(&mut rand_core::OsRng, digest).ok()?,
            (PrivateKey::Ed25519(_), _) => return None,
        };
        Some(sig.to_der().as_bytes().to_vec())
    }
}

fn elliptic_curve_oid() -> pkcs8::ObjectIdentifier {
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1")
}

fn ed25519_oid() -> pkcs8::ObjectIdentifier {
    pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112")
}

impl PublicKey {
    /// Parses a PKIX `PUBLIC KEY` PEM (P-256 or Ed25519).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        if pem.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyError::TooLarge);
        }
        let blocks = pem_blocks(pem)?;
        let (_, der) = blocks
            .into_iter()
            .find(|(l, _)| l == "PUBLIC KEY")
            .ok_or_else(|| KeyError::NotPem("no PUBLIC KEY block".into()))?;
        Self::from_der(&der)
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let oid = info.algorithm.oid;
        if oid == elliptic_curve_oid() {
            p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::EcdsaP256)
                .map_err(|e| KeyError::UnsupportedKeyType(format!("EC key is not P-256 ({e})")))
        } else if oid == ed25519_oid() {
            ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::Ed25519)
                .map_err(|e| KeyError::Encoding(e.to_string()))
        } else {
            Err(KeyError::UnsupportedKeyType(format!("algorithm OID {oid}")))
        }
    }

    /// DER SubjectPublicKeyInfo.
    pub fn to_der(&self) -> Result<Vec<u8>, KeyError> {
        match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_der(),
            PublicKey::Ed25519(k) => k.to_public_key_der(),
        }
        .map(|d| d.into_vec())
        .map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// PKIX PEM, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| KeyError::Encoding(e.to_string()))
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            PublicKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Verifies a signature over an artifact known by its SHA-256 digest (ECDSA P-256 only:
    /// Ed25519 signs the message itself, so it cannot be checked from a digest).
    pub fn verify_sha256(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), SignatureError> {
        use signature::hazmat::PrehashVerifier;
        match self {
            PublicKey::EcdsaP256(k) => {
                let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| SignatureError::Malformed)?;
                k.verify_prehash(digest, &sig).map_err(|_| SignatureError::Mismatch)
            }
            PublicKey::Ed25519(_) => Err(SignatureError::Mismatch),
        }
    }

    /// Checks `signature` over `message` (see [`PrivateKey::sign`] for the schemes).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            PublicKey::EcdsaP256(k) => {
                // The encoding is judged by p256 (a malformed signature is named as such); the
                // arithmetic is aws-lc-rs's, five times faster than p256's (docs/dependencies.md).
                // A signature must pass both: what either refuses is refused.
                p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| SignatureError::Malformed)?;
                let point = k.to_encoded_point(false);
                use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes())
                    .verify(message, signature)
                    .map_err(|_| SignatureError::Mismatch)
            }
            PublicKey::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| SignatureError::Malformed)?;
                // cosign up to 2.5 signs pure Ed25519; later releases sign Ed25519ph (SHA-512
                // prehash, empty context). Both are accepted, as cosign's verifier does.
                k.verify_strict(message, &sig)
                    .or_else(|_| {
                        use sha2::Digest as _;
                        k.verify_prehashed_strict(sha2::Sha512::new().chain_update(message), None, &sig)
                    })
                    .map_err(|_| SignatureError::Mismatch)
            }
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not a well-formed signature for the key's algorithm.
    #[error("signature is not well-formed for this key type")]
    Malformed,
    /// Well-formed but not made by this key over these bytes.
    #[error("signature does not match the payload and key")]
    Mismatch,
}

/// Go-style PEM encoding (64-column base64 lines).
fn pem_encode(label: &str, body: &[u8]) -> String {
    let b64 = B64.encode(body);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A PEM block: its label and decoded body (zeroized on drop: it may be a private key).
type PemBlock = (String, Zeroizing<Vec<u8>>);

/// All PEM blocks in `input`. Text outside blocks is ignored, as Go's `pem.Decode` does;
/// headers inside a block are refused.
fn pem_blocks(input: &[u8]) -> Result<Vec<PemBlock>, KeyError> {
    let text = std::str::from_utf8(input).map_err(|_| KeyError::NotPem("not UTF-8 text".into()))?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line.trim().strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = Zeroizing::new(String::new());
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                return Err(KeyError::NotPem(format!("{label} block has headers")));
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(KeyError::NotPem(format!("{label} block is not terminated (truncated file?)")));
        }
        let body =
            B64.decode(b64.as_bytes()).map_err(|e| KeyError::NotPem(format!("{label} block has bad base64 ({e})")))?;
        out.push((label.to_owned(), Zeroizing::new(body)));
    }
    if out.is_empty() {
        return Err(KeyError::NotPem("no PEM block found".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.as_bytes().to_vec())
    }

    // The cheapest accepted parameters keep unit tests fast.
    const FAST: ScryptParams = ScryptParams { n: 32768, r: 8, p: 1 };

    #[test]
    fn round_trip_both_algorithms() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let k = PrivateKey::generate(alg);
            let pem = encrypt_private_key(&k, &pw("hunter2"), FAST).unwrap();
            assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
            let back = decrypt_private_key(pem.as_bytes(), &pw("hunter2")).unwrap();
            assert_eq!(back.public_key(), k.public_key());
            let sig = back.sign(b"msg");
            k.public_key().verify(b"msg", &sig).unwrap();
            assert_eq!(k.public_key().verify(b"msh", &sig), Err(SignatureError::Mismatch));
            assert!(matches!(decrypt_private_key(pem.as_bytes(), &pw("wrong")), Err(KeyError::Decrypt)));
            let pubpem = k.public_key().to_pem().unwrap();
            assert_eq!(PublicKey::from_pem(pubpem.as_bytes()).unwrap(), k.public_key());
        }
    }

    /// P-256 verification moved to aws-lc-rs's arithmetic: it must accept exactly what p256
    /// accepts, high-S signatures included (Go's `crypto/ecdsa`, cosign's verifier, accepts
    /// them), and refuse what p256 refuses.
    // see: issue 9
    #[test]
    fn p256_verification_agrees_with_the_p256_crate() {
        use p256::ecdsa::signature::Verifier as _;
        for i in 0..40u8 {
            let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
            let (PrivateKey::EcdsaP256(sk), PublicKey::EcdsaP256(vk)) = (&key, key.public_key()) else {
                panic!("a P-256 key")
            };
            let message = vec![i; 100 + i as usize];
            let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(sk, &message);
            let (r, s_) = sig.split_scalars();
            let high = p256::ecdsa::Signature::from_scalars(r, -*s_).unwrap();
            let mut other = message.clone();
            other[0] ^= 1;
            for (sig, msg) in [(sig, &message), (high, &message), (sig, &other), (high, &other)] {
                let der = sig.to_der();
                let ours = key.public_key().verify(msg, der.as_bytes()).is_ok();
                assert_eq!(ours, vk.verify(msg, &sig).is_ok(), "key {i}");
                assert_eq!(ours, *msg == message, "key {i}");
            }
        }
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).public_key();
        assert_eq!(key.verify(b"m", b"\x30\x00"), Err(SignatureError::Malformed));
        assert_eq!(key.verify(b"m", b"not der"), Err(SignatureError::Malformed));
    }

    #[test]
    fn ed25519ph_signatures_verify_too() {
        use sha2::Digest as _;
        let PrivateKey::Ed25519(k) = PrivateKey::generate(KeyAlgorithm::Ed25519) else { unreachable!() };
        let ph = k.sign_prehashed(sha2::Sha512::new().chain_update(b"payload"), None).unwrap();
        let public = PublicKey::Ed25519(k.verifying_key());
        public.verify(b"payload", &ph.to_bytes()).unwrap();
        assert_eq!(public.verify(b"other", &ph.to_bytes()), Err(SignatureError::Mismatch));
    }

    #[test]
    fn json_field_order_matches_go() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let pem = encrypt_private_key(&k, &pw(""), FAST).unwrap();
        let blocks = pem_blocks(pem.as_bytes()).unwrap();
        let json = String::from_utf8(blocks[0].1.to_vec()).unwrap();
        assert!(json.starts_with(r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""#), "{json}");
        assert!(json.contains(r#""cipher":{"name":"nacl/secretbox","nonce":""#));
    }

    #[test]
    fn refuses_unsupported_scrypt_before_work() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let pem = encrypt_private_key(&k, &pw("x"), FAST).unwrap();
        let blocks = pem_blocks(pem.as_bytes()).unwrap();
        let json = String::from_utf8(blocks[0].1.to_vec()).unwrap();
        let evil = json.replace(r#""N":32768"#, r#""N":1073741824"#);
        let evil_pem = pem_encode(ENCRYPTED_COSIGN_LABEL, evil.as_bytes());
        assert!(matches!(check_encrypted_key(evil_pem.as_bytes()), Err(KeyError::Unsupported(_))));
        let older = pem_encode(ENCRYPTED_COSIGN_LABEL, json.as_bytes());
        assert!(decrypt_private_key(older.as_bytes(), &pw("x")).is_ok());
    }

    #[test]
    fn truncated_and_garbage_files() {
        let k = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let pem = encrypt_private_key(&k, &pw("x"), FAST).unwrap();
        let cut = &pem.as_bytes()[..pem.len() / 2];
        assert!(matches!(decrypt_private_key(cut, &pw("x")), Err(KeyError::NotPem(_))));
        assert!(matches!(decrypt_private_key(b"hello", &pw("x")), Err(KeyError::NotPem(_))));
        assert!(matches!(decrypt_private_key(&[0xff; 10], &pw("x")), Err(KeyError::NotPem(_))));
        let big = vec![b'a'; MAX_KEY_FILE_BYTES + 1];
        assert!(matches!(decrypt_private_key(&big, &pw("x")), Err(KeyError::TooLarge)));
    }

    #[test]
    fn unencrypted_imports() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let PrivateKey::EcdsaP256(sk) = &k else { unreachable!() };
        let pkcs8 = sk.to_pkcs8_pem(LineEnding::LF).unwrap();
        let back = parse_unencrypted_private_key(pkcs8.as_bytes()).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let sec1 = p256::SecretKey::from(sk).to_sec1_pem(LineEnding::LF).unwrap();
        let back = parse_unencrypted_private_key(sec1.as_bytes()).unwrap();
        assert_eq!(back.public_key(), k.public_key());
    }
}
