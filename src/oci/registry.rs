//! A repository in an OCI distribution registry as a [`Store`].
//!
//! Writes (blob uploads, manifest pushes) and token negotiation go through `oci-client`.
//! Reads are plain GETs on the same HTTP stack (reqwest with rustls), for two reasons measured
//! in docs/dependencies.md: oci-client pings `/v2/` before every request when a registry
//! needs no token (it does not cache "no auth needed"), doubling the request count, and it
//! reads manifest bodies whole. Here a read is tried as is; only a 401 triggers the token
//! dance (once per repository), and every body is streamed and cut off at its limit.
//!
//! Every request runs under a deadline. Credentials are only attached to requests for the
//! store's own registry; reqwest drops `Authorization` on a redirect to another host.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::auth::Credentials;
use super::manifest::{ACCEPTED_MANIFESTS, MAX_MANIFEST_BYTES};
use super::{ManifestRef, RawManifest, Store, StoreError, TagWrites};
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

/// The HTTP clients shared by all stores of one command.
#[derive(Clone)]
pub struct Connection {
    /// Built on first use: reads that need no token never touch it.
    oci: Arc<std::sync::OnceLock<Client>>,
    opts: Arc<RegistryOptions>,
    http: reqwest::Client,
    scheme: &'static str,
}

impl Connection {
    /// Builds the clients for `opts`.
    pub fn new(opts: &RegistryOptions) -> Result<Self, StoreError> {
        let mut b = reqwest::Client::builder()
            .read_timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("sigil/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5));
        // Trust: the system roots (loaded on the first TLS handshake) plus --registry-cacert.
        let mut extra = Vec::new();
        for pem in &opts.extra_ca_pem {
            extra.extend(super::tls::parse_pem_certs(pem, "--registry-cacert").map_err(StoreError::Transport)?);
        }
        let tls = super::tls::client_config(extra).map_err(StoreError::Transport)?;
        b = b.tls_backend_preconfigured(tls);
        let http = b.build().map_err(|e| StoreError::Transport(format!("cannot build the HTTP client: {e}")))?;
        let scheme = match opts.transport {
            Transport::Https => "https",
            Transport::InsecureHttpAllowed => "http",
        };
        Ok(Connection { oci: Arc::new(std::sync::OnceLock::new()), opts: Arc::new(opts.clone()), http, scheme })
    }

    fn oci(&self) -> &Client {
        self.oci.get_or_init(|| oci_client(&self.opts))
    }
}

fn oci_client(opts: &RegistryOptions) -> Client {
    let config = ClientConfig {
        protocol: match opts.transport {
            Transport::Https => ClientProtocol::Https,
            Transport::InsecureHttpAllowed => ClientProtocol::Http,
        },
        // System roots (reqwest's platform verifier) plus the extra CAs.
        extra_root_certificates: opts.extra_ca_pem.iter().flat_map(|pem| split_pem(pem)).collect(),
        read_timeout: Some(opts.timeout),
        connect_timeout: Some(opts.timeout.min(Duration::from_secs(10))),
        use_monolithic_push: true,
        user_agent: concat!("sigil/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    Client::new(config)
}

/// oci-client takes one certificate per entry: split a PEM bundle into its certificates.
fn split_pem(bundle: &[u8]) -> Vec<oci_client::client::Certificate> {
    let text = String::from_utf8_lossy(bundle);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: cur.clone().into_bytes(),
            });
            cur.clear();
        }
    }
    out
}

/// The `Authorization` header for reads, negotiated at most once per store.
#[derive(Clone)]
enum ReadAuth {
    /// The registry asked for nothing.
    None,
    /// A header value (bearer token or basic credentials).
    Header(String),
}

/// Which answers mean "not there" for a read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Absent {
    /// 404 only.
    NotFound,
    /// An optional API: 404, and 400, 405 or 501 from registries that do not route it.
    NoSuchApi,
}

/// One repository in one registry.
pub struct RegistryStore {
    conn: Connection,
    auth: RegistryAuth,
    registry: String,
    repository: String,
    timeout: Duration,
    read_auth: tokio::sync::RwLock<Option<ReadAuth>>,
}

impl RegistryStore {
    /// A store for `registry/repository`.
    pub fn new(conn: Connection, creds: &Credentials, registry: &str, repository: &str, timeout: Duration) -> Self {
        let auth = match creds {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username.clone(), password.to_string()),
        };
        RegistryStore {
            conn,
            auth,
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            timeout,
            read_auth: tokio::sync::RwLock::new(None),
        }
    }

    fn reference(&self, r: &ManifestRef) -> Reference {
        match r {
            ManifestRef::Tag(t) => Reference::with_tag(self.registry.clone(), self.repository.clone(), t.clone()),
            ManifestRef::Digest(d) => {
                Reference::with_digest(self.registry.clone(), self.repository.clone(), d.to_string())
            }
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
        self.conn.oci().store_auth_if_needed(r.resolve_registry(), &self.auth).await;
    }

    /// Negotiates read credentials after a 401: a bearer token through oci-client's challenge
    /// handling, else basic credentials, else none.
    async fn negotiate(&self, r: &ManifestRef) -> Result<ReadAuth, StoreError> {
        let reference = self.reference(r);
        let token = self.deadline(self.conn.oci().auth(&reference, &self.auth, RegistryOperation::Pull)).await?;
        let auth = match (token, &self.auth) {
            (Some(t), _) => ReadAuth::Header(format!("Bearer {t}")),
            (None, RegistryAuth::Basic(u, p)) => {
                use base64::Engine as _;
                ReadAuth::Header(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                ))
            }
            (None, _) => ReadAuth::None,
        };
        *self.read_auth.write().await = Some(auth.clone());
        Ok(auth)
    }

    /// GET `/v2/<repo>/<path>`, bounded by `limit` bytes and the deadline; `Ok(None)` on 404.
    async fn read(
        &self,
        r: &ManifestRef,
        path: &str,
        accept: Option<&str>,
        limit: u64,
        what: &'static str,
        absent: Absent,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let host = self.reference(r).resolve_registry().to_owned();
        let url = format!("{}://{}/v2/{}/{}", self.conn.scheme, host, self.repository, path);
        let known = self.read_auth.read().await.clone();
        let mut auth = known.clone().unwrap_or(ReadAuth::None);
        for attempt in 0..2 {
            let mut req = self.conn.http.get(&url);
            if let Some(a) = accept {
                req = req.header(reqwest::header::ACCEPT, a);
            }
            if let ReadAuth::Header(h) = &auth {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let fut = async {
                let resp = req.send().await.map_err(|e| map_error(e.into()))?;
                let status = resp.status();
                if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Err(status));
                }
                if absent == Absent::NoSuchApi && matches!(status.as_u16(), 400 | 405 | 501) {
                    return Ok(Err(reqwest::StatusCode::NOT_FOUND));
                }
                if !status.is_success() {
                    return Err(StoreError::Transport(format!("{url}: HTTP {status}")));
                }
                if resp.content_length().is_some_and(|n| n > limit) {
                    return Err(StoreError::TooLarge { what, limit });
                }
                // Reserved up front when the length is announced, but never more than 8 MiB
                // before the bytes arrive.
                let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(limit).min(8 << 20) as usize);
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| map_error(e.into()))?;
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Err(StoreError::TooLarge { what, limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Ok(body))
            };
            let res = tokio::time::timeout(self.timeout, fut)
                .await
                .map_err(|_| StoreError::Timeout(self.timeout.as_secs()))??;
            match res {
                Ok(body) => return Ok(Some(body)),
                Err(reqwest::StatusCode::NOT_FOUND) => return Ok(None),
                Err(_) if attempt == 0 && known.is_none() => auth = self.negotiate(r).await?,
                Err(status) => {
                    return Err(StoreError::Auth(format!("{url}: HTTP {status} with the credentials available")))
                }
            }
        }
        Err(StoreError::Auth(format!("{url}: access refused")))
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
        let path = match r {
            ManifestRef::Tag(t) => format!("manifests/{t}"),
            ManifestRef::Digest(d) => format!("manifests/{d}"),
        };
        let accept = ACCEPTED_MANIFESTS.join(", ");
        let Some(body) =
            self.read(r, &path, Some(&accept), MAX_MANIFEST_BYTES as u64, "manifest", Absent::NotFound).await?
        else {
            return Ok(None);
        };
        let raw = RawManifest::new(body);
        if let ManifestRef::Digest(d) = r {
            if !d.matches(&raw.bytes) {
                return Err(StoreError::DigestMismatch(d.clone()));
            }
        }
        Ok(Some(raw))
    }

    async fn get_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let r = ManifestRef::Digest(digest.clone());
        let out = self
            .read(&r, &format!("blobs/{digest}"), None, limit, "blob", Absent::NotFound)
            .await?
            .ok_or_else(|| StoreError::BlobNotFound(digest.clone()))?;
        if !digest.matches(&out) {
            return Err(StoreError::DigestMismatch(digest.clone()));
        }
        Ok(out)
    }

    async fn put_blob(&self, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        let reference = self.reference(&ManifestRef::Digest(d.clone()));
        self.ensure_auth(&reference).await;
        self.deadline(self.conn.oci().push_blob(&reference, bytes, &d.to_string())).await?;
        Ok(d)
    }

    async fn put_blob_file(&self, file: &super::BlobFile, progress: super::Progress) -> Result<(), StoreError> {
        use tokio::io::AsyncReadExt;
        let reference = self.reference(&ManifestRef::Digest(file.digest.clone()));
        self.ensure_auth(&reference).await;
        // A large blob already there (the same SBOM attached to another image) is not sent again.
        let digest = file.digest.to_string();
        if self.deadline(self.conn.oci().blob_exists(&reference, &digest)).await? {
            progress(file.size);
            return Ok(());
        }
        let src = tokio::fs::File::open(&file.path)
            .await
            .map_err(|e| StoreError::Io(format!("opening {}: {e}", file.path.display())))?;
        // At most `size` bytes are sent; the registry checks them against the digest.
        let size = file.size;
        let stream = futures_util::stream::unfold((src.take(size), 0u64), move |(mut f, sent)| {
            let progress = progress.clone();
            async move {
                let mut buf = vec![0u8; 1 << 20];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        progress(sent + n as u64);
                        Some((Ok(bytes::Bytes::from(buf)), (f, sent + n as u64)))
                    }
                    Err(e) => Some((Err(OciDistributionError::IoError(e)), (f, sent))),
                }
            }
        });
        // The deadline grows with the size: the per-request timeout, plus a second per MiB.
        let deadline = self.timeout + Duration::from_secs(size >> 20);
        let push = self.conn.oci().push_blob_stream(&reference, stream, &digest, Some(size));
        match tokio::time::timeout(deadline, push).await {
            Ok(r) => r.map(|_| ()).map_err(map_error),
            Err(_) => Err(StoreError::Timeout(deadline.as_secs())),
        }
    }

    async fn get_referrers(&self, digest: &Digest) -> Result<Option<RawManifest>, StoreError> {
        let r = ManifestRef::Digest(digest.clone());
        let accept = super::manifest::OCI_INDEX;
        let body = self
            .read(
                &r,
                &format!("referrers/{digest}"),
                Some(accept),
                MAX_MANIFEST_BYTES as u64,
                "referrers index",
                Absent::NoSuchApi,
            )
            .await?;
        Ok(body.map(RawManifest::new))
    }

    async fn put_manifest(&self, r: &ManifestRef, media_type: &str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        let reference = self.reference(r);
        self.ensure_auth(&reference).await;
        let ct = media_type.parse().map_err(|_| StoreError::Malformed(format!("media type {media_type:?}")))?;
        self.deadline(self.conn.oci().push_manifest_raw(&reference, bytes, ct)).await?;
        Ok(d)
    }

    async fn lock_tag(&self, _tag: &str) -> Result<TagWrites, StoreError> {
        // The distribution API has no locks and no conditional manifest writes.
        Ok(TagWrites::LastWriterWins)
    }
}
