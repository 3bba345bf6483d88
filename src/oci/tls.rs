//! TLS trust for registry connections: the system roots plus `--registry-cacert`.
//!
//! The system CA bundle is parsed on the first TLS handshake, not at start-up: a command that
//! talks plain HTTP (`--allow-http-registry`) or reads a local layout never pays for parsing
//! a hundred-odd root certificates. Verification itself is rustls's WebPKI verifier, built
//! once from those roots; this type only delays building it.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where Linux distributions keep the system CA bundle (the list Go's crypto/x509 reads).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// Parses PEM certificates; `what` names the source in errors.
pub fn parse_pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(format!("{what}: no PEM certificate found")),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// The system roots: `SSL_CERT_FILE`, else the first well-known bundle, else what
/// rustls-native-certs finds (certificate directories included).
fn system_roots() -> Vec<CertificateDer<'static>> {
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    for path in env.into_iter().chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from)) {
        let small = std::fs::metadata(&path).map(|m| m.is_file() && m.len() <= MAX_BUNDLE_BYTES);
        if small.unwrap_or(false) {
            if let Ok(bytes) = std::fs::read(&path) {
                if let Ok(certs) = parse_pem_certs(&bytes, "system CA bundle") {
                    return certs;
                }
            }
        }
    }
    rustls_native_certs::load_native_certs().certs
}

/// A WebPKI server verifier whose root store is loaded on first use.
#[derive(Debug)]
pub struct LazyRoots {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl LazyRoots {
    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        let built = self.inner.get_or_init(|| {
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(system_roots());
            for c in &self.extra {
                store.add(c.clone()).map_err(|e| format!("--registry-cacert: {e}"))?;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), self.provider.clone())
                .build()
                .map_err(|e| format!("no usable root certificates: {e}"))
        });
        built.as_ref().map_err(|e| rustls::Error::General(e.clone()))
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls client configuration trusting the system roots and `extra`.
pub fn client_config(extra: Vec<CertificateDer<'static>>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(LazyRoots { extra, provider: provider.clone(), inner: OnceLock::new() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        // "dangerous" is rustls's name for any custom verifier; this one is WebPKI, loaded late.
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}
