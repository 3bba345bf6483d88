//! A repository in an OCI distribution registry as a [`Store`], through `oci-client`.
//!
//! Every request runs under a deadline. Blobs are streamed and cut off at the caller's limit;
//! manifests are checked against [`MAX_MANIFEST_BYTES`] after the read (oci-client reads
//! manifest bodies whole: the deadline bounds that read; see docs/dependencies.md).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::auth::Credentials;
use super::manifest::{ACCEPTED_MANIFESTS, MAX_MANIFEST_BYTES};
use super::{ManifestRef, RawManifest, Store, StoreError};
use crate::digest::Digest;

/// How to reach registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS only.
    Https,
    /// Plain HTTP allowed (`--allow-http-registry`).
    InsecureHttpAllowed,
}

/// Connection settings shared by all stores of one command.
#[derive(Clone)]
pub struct RegistryOptions {
    /// TLS or plain HTTP.
    pub transport: Transport,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Deadline for each request.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions { transport: Transport::Https, extra_ca_pem: vec![], timeout: Duration::from_secs(30) }
    }
}

/// Builds the shared HTTP client.
pub fn client(opts: &RegistryOptions) -> Arc<Client> {
    let config = ClientConfig {
        protocol: match opts.transport {
            Transport::Https => ClientProtocol::Https,
            Transport::InsecureHttpAllowed => ClientProtocol::Http,
        },
        extra_root_certificates: opts
            .extra_ca_pem
            .iter()
            .map(|pem| oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect(),
        read_timeout: Some(opts.timeout),
        connect_timeout: Some(opts.timeout.min(Duration::from_secs(10))),
        use_monolithic_push: true,
        user_agent: concat!("sigil/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    Arc::new(Client::new(config))
}

/// One repository in one registry.
pub struct RegistryStore {
    client: Arc<Client>,
    auth: RegistryAuth,
    registry: String,
    repository: String,
    timeout: Duration,
}

impl RegistryStore {
    /// A store for `registry/repository`.
    pub fn new(client: Arc<Client>, creds: &Credentials, registry: &str, repository: &str, timeout: Duration) -> Self {
        let auth = match creds {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username.clone(), password.to_string()),
        };
        RegistryStore { client, auth, registry: registry.to_owned(), repository: repository.to_owned(), timeout }
    }

    fn reference(&self, r: &ManifestRef) -> Reference {
        match r {
            ManifestRef::Tag(t) => Reference::with_tag(self.registry.clone(), self.repository.clone(), t.clone()),
            ManifestRef::Digest(d) => Reference::with_digest(self.registry.clone(), self.repository.clone(), d.to_string()),
        }
    }

    async fn deadline<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(map_error),
            Err(_) => Err(StoreError::Timeout(self.timeout.as_secs())),
        }
    }

    /// Registers this store's credentials for its registry; oci-client fetches tokens on
    /// demand and never attaches them to requests for another host.
    async fn ensure_auth(&self, r: &Reference) {
        self.client.store_auth_if_needed(r.resolve_registry(), &self.auth).await;
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(x.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::BlobUnknown)
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

fn map_error(e: OciDistributionError) -> StoreError {
    match &e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            StoreError::Auth(e.to_string())
        }
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
        {
            StoreError::Auth(e.to_string())
        }
        OciDistributionError::RequestError(r) => {
            let mut msg = r.to_string();
            let mut src = std::error::Error::source(r);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            StoreError::Transport(msg)
        }
        _ => StoreError::Transport(e.to_string()),
    }
}

impl Store for RegistryStore {
    fn location(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    async fn get_manifest(&self, r: &ManifestRef) -> Result<Option<RawManifest>, StoreError> {
        let reference = self.reference(r);
        self.ensure_auth(&reference).await;
        let res = tokio::time::timeout(
            self.timeout,
            self.client.pull_manifest_raw(&reference, &self.auth, ACCEPTED_MANIFESTS),
        )
        .await
        .map_err(|_| StoreError::Timeout(self.timeout.as_secs()))?;
        let (body, _) = match res {
            Ok(x) => x,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(map_error(e)),
        };
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(StoreError::TooLarge { what: "manifest", limit: MAX_MANIFEST_BYTES as u64 });
        }
        let raw = RawManifest::new(body.to_vec());
        if let ManifestRef::Digest(d) = r {
            if !d.matches(&raw.bytes) {
                return Err(StoreError::DigestMismatch(d.clone()));
            }
        }
        Ok(Some(raw))
    }

    async fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let reference = self.reference(&ManifestRef::Digest(digest.clone()));
        self.ensure_auth(&reference).await;
        let desc = OciDescriptor { digest: digest.to_string(), ..Default::default() };
        let fut = async {
            let stream = match self.client.pull_blob_stream(&reference, &desc).await {
                Ok(s) => s,
                Err(e) if is_not_found(&e) => return Err(StoreError::BlobNotFound(digest.clone())),
                Err(e) => return Err(map_error(e)),
            };
            if stream.content_length.is_some_and(|n| n > limit) {
                return Err(StoreError::TooLarge { what: "blob", limit });
            }
            let mut out = Vec::new();
            let mut s = stream.stream;
            while let Some(chunk) = s.next().await {
                let chunk = chunk.map_err(|e| StoreError::Transport(e.to_string()))?;
                if (out.len() + chunk.len()) as u64 > limit {
                    return Err(StoreError::TooLarge { what: "blob", limit });
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        };
        let out = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout.as_secs()))??;
        if !digest.matches(&out) {
            return Err(StoreError::DigestMismatch(digest.clone()));
        }
        Ok(out)
    }

    async fn put_blob(&self, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        let reference = self.reference(&ManifestRef::Digest(d.clone()));
        self.ensure_auth(&reference).await;
        self.deadline(self.client.push_blob(&reference, bytes, &d.to_string())).await?;
        Ok(d)
    }

    async fn put_manifest(&self, r: &ManifestRef, media_type: &str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        let reference = self.reference(r);
        self.ensure_auth(&reference).await;
        let ct = media_type.parse().map_err(|_| StoreError::Malformed(format!("media type {media_type:?}")))?;
        self.deadline(self.client.push_manifest_raw(&reference, bytes, ct)).await?;
        Ok(d)
    }
}
