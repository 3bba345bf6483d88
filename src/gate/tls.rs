//! The webhook's serving certificate: read from PEM files, checked, and swapped in place when
//! the files change, without dropping connections.
//!
//! Why this module exists: cert-manager and friends rotate the webhook's certificate by
//! rewriting the files of a mounted secret; the server must pick the new pair up, and must
//! never swap in a pair that would break the handshake (a key that does not match, a
//! certificate that no longer parses, an expired one). A refused pair leaves the current one
//! in use. rustls (aws-lc-rs) does the TLS; nothing here is cryptography.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// Largest certificate chain or key file read.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// Why a certificate and key pair was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(String),
    /// The certificate does not parse.
    #[error("{path}: the certificate does not parse: {reason}")]
    BadCertificate {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The certificate's validity has ended.
    #[error("{path}: the certificate expired at {not_after} (Unix time)")]
    Expired {
        /// The file.
        path: String,
        /// Its notAfter, in seconds since the epoch.
        not_after: u64,
    },
    /// The key file holds no usable private key.
    #[error("{path}: no usable PEM private key (PKCS#8, SEC1 or PKCS#1): {reason}")]
    BadKey {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("{key}: the key does not match the certificate in {cert}: {reason}")]
    KeyMismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What rustls said.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

/// Where the certificate chain (leaf first) and its key are.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl CertFiles {
    /// Both files' bytes, each bounded.
    pub fn read(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), TlsError> {
        Ok((read_bounded(&self.cert)?, Zeroizing::new(read_bounded(&self.key)?)))
    }

    /// The checked pair from the files' bytes, at `now` (seconds since the epoch).
    pub fn certified_key(&self, cert_pem: &[u8], key_pem: &[u8], now: u64) -> Result<CertifiedKey, TlsError> {
        let cert_path = self.cert.display().to_string();
        let key_path = self.key.display().to_string();
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCertificate { path: cert_path.clone(), reason: e.to_string() })?;
        let Some(leaf) = chain.first() else { return Err(TlsError::NoCertificate(cert_path)) };
        let not_after =
            not_after(leaf).map_err(|reason| TlsError::BadCertificate { path: cert_path.clone(), reason })?;
        if not_after < now {
            return Err(TlsError::Expired { path: cert_path, not_after });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError::BadKey { path: key_path.clone(), reason: e.to_string() })?;
        CertifiedKey::from_der(chain, key, &rustls::crypto::aws_lc_rs::default_provider()).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                TlsError::KeyMismatch { cert: cert_path, key: key_path, reason: e.to_string() }
            }
            other => TlsError::BadKey { path: key_path, reason: other.to_string() },
        })
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let fail = |reason: String| TlsError::Read { path: path.display().to_string(), reason };
    let f = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(fail(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    Ok(bytes)
}

/// The certificate's notAfter, in seconds since the epoch.
fn not_after(cert: &CertificateDer<'_>) -> Result<u64, String> {
    use x509_cert::der::Decode;
    let parsed = x509_cert::Certificate::from_der(cert.as_ref()).map_err(|e| e.to_string())?;
    Ok(parsed.tbs_certificate.validity.not_after.to_unix_duration().as_secs())
}

/// The certificate in use, swapped whole on reload; the TLS acceptor asks it at every
/// handshake.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServingCert {
    /// Serves `key`.
    pub fn new(key: CertifiedKey) -> Self {
        ServingCert { current: RwLock::new(Arc::new(key)) }
    }

    /// Serves `key` from the next handshake on.
    pub fn replace(&self, key: CertifiedKey) {
        // A poisoned lock only means a writer panicked mid-assignment of an Arc: the value is
        // whole either way.
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(key);
    }

    /// The rustls server configuration serving this certificate (HTTP/1.1; no client
    /// certificates).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(current.clone())
    }
}
