//! A repository in an OCI distribution registry as a [`Store`].
//!
//! Writes (blob uploads, manifest pushes) go through `oci-client`. Reads are plain GETs on the
//! same HTTP stack (reqwest with rustls), for two reasons measured in docs/dependencies.md:
//! oci-client pings `/v2/` before every request when a registry needs no token (it does not
//! cache "no auth needed"), doubling the request count, and it reads manifest bodies whole.
//! Here a read is tried as is; only a 401 triggers the token exchange (once per repository),
//! and every body is streamed and cut off at its limit.
//!
//! The token exchange is sigil's own, for reads and writes alike (oci-client reads a token
//! answer whole and sends credentials to any realm): the challenge is parsed by
//! [`super::challenge`], a plain-HTTP realm is refused unless the registry itself is plain
//! HTTP (`--allow-http-registry`), and the answer is read under the deadline and at most
//! [`MAX_TOKEN_RESPONSE_BYTES`]. oci-client is handed the result (a bearer token, basic
//! credentials, or nothing) and never asks a token service itself.
//!
//! Every request runs under a deadline. Credentials are only attached to requests for the
//! store's own registry and its token service; reqwest drops `Authorization` on a redirect to
//! another host or scheme, and a TLS registry's redirects to plain HTTP are refused.

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use reqwest::Url;
use zeroize::Zeroizing;

use super::auth::Credentials;
use super::challenge::{BearerChallenge, Challenge, ChallengeError, Token, MAX_TOKEN_RESPONSE_BYTES};
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

/// The HTTP client shared by all stores of one command.
#[derive(Clone)]
pub struct Connection {
    opts: std::sync::Arc<RegistryOptions>,
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
            .redirect(redirect_policy(opts.transport));
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
        Ok(Connection { opts: std::sync::Arc::new(opts.clone()), http, scheme })
    }
}

/// At most 5 redirects; over TLS, never one to plain HTTP (a token or a blob would then
/// cross the network in cleartext although the registry was reached over TLS).
fn redirect_policy(transport: Transport) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            attempt.error("more than 5 redirects")
        } else if transport == Transport::Https && attempt.url().scheme() != "https" {
            let to = attempt.url().to_string();
            attempt.error(format!("refusing a redirect from HTTPS to {to}"))
        } else {
            attempt.follow()
        }
    })
}

/// Whether credentials may be sent to, and a token accepted from, `realm`: over TLS always
/// (a realm on another host is part of the token protocol, as docker does it); over plain
/// HTTP only when the registry itself is plain HTTP.
pub fn realm_allowed(realm: &Url, transport: Transport) -> bool {
    match realm.scheme() {
        "https" => true,
        "http" => transport == Transport::InsecureHttpAllowed,
        _ => false,
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

/// What a registry's challenge was answered with, decided at most once per store and
/// direction (reads with a pull scope, writes with pull and push).
#[derive(Clone)]
enum Grant {
    /// The registry asked for nothing (or nothing could be sent).
    None,
    /// Basic credentials, sent to the registry itself.
    Basic,
    /// A token from the registry's token service.
    Bearer(Token),
}

/// The scope a token is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Pull,
    PullPush,
}

/// What a read got back.
enum Answer {
    Body(Vec<u8>),
    Absent,
    /// 401 or 403, with the `WWW-Authenticate` values.
    Refused(reqwest::StatusCode, Vec<String>),
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
    creds: Credentials,
    registry: String,
    repository: String,
    timeout: Duration,
    read_auth: tokio::sync::RwLock<Option<Grant>>,
    /// oci-client for writes, holding this store's grant: built on the first write (its
    /// credentials are per registry host, a token per repository, so one client per store).
    writer: tokio::sync::OnceCell<Box<Client>>,
}

impl RegistryStore {
    /// A store for `registry/repository`.
    pub fn new(conn: Connection, creds: &Credentials, registry: &str, repository: &str, timeout: Duration) -> Self {
        RegistryStore {
            conn,
            creds: creds.clone(),
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            timeout,
            read_auth: tokio::sync::RwLock::new(None),
            writer: tokio::sync::OnceCell::new(),
        }
    }

    /// The host requests go to (`docker.io` is served by `index.docker.io`).
    fn host(&self) -> String {
        Reference::with_tag(self.registry.clone(), self.repository.clone(), "latest".into())
            .resolve_registry()
            .to_owned()
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

    /// The `Authorization` value for `grant` on requests to the registry itself.
    fn header(&self, grant: &Grant) -> Option<String> {
        match (grant, &self.creds) {
            (Grant::Bearer(t), _) => Some(format!("Bearer {}", t.as_str())),
            (Grant::Basic, Credentials::Basic { username, password }) => {
                use base64::Engine as _;
                let pair = Zeroizing::new(format!("{username}:{}", password.as_str()));
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())))
            }
            _ => None,
        }
    }

    /// Answers a 401's challenge: a token from the realm it names, basic credentials, or
    /// nothing (then the request fails as refused).
    async fn negotiate(&self, challenge: &[String], scope: Scope) -> Result<Grant, StoreError> {
        if challenge.is_empty() {
            // No challenge at all: basic credentials if there are any, as docker does.
            return Ok(Grant::Basic);
        }
        match Challenge::parse(challenge.iter().map(String::as_str)) {
            Ok(Challenge::Bearer(b)) => self.fetch_token(&b, scope).await.map(Grant::Bearer),
            Ok(Challenge::Basic) => Ok(Grant::Basic),
            Err(e @ ChallengeError::Unsupported(_)) => Err(StoreError::Auth(format!("{}: {e}", self.registry))),
            Err(e) => Err(StoreError::Malformed(format!("{}: {e}", self.registry))),
        }
    }

    /// The token exchange: GET the realm with the scope (and basic credentials when there are
    /// any), under the deadline, reading at most [`MAX_TOKEN_RESPONSE_BYTES`].
    async fn fetch_token(&self, b: &BearerChallenge, scope: Scope) -> Result<Token, StoreError> {
        let realm = &b.realm;
        if !realm_allowed(realm, self.conn.opts.transport) {
            return Err(StoreError::InsecureRealm { registry: self.registry.clone(), realm: realm.to_string() });
        }
        let mut url = realm.clone();
        {
            let actions = match scope {
                Scope::Pull => "pull",
                Scope::PullPush => "pull,push",
            };
            let mut q = url.query_pairs_mut();
            if let Some(s) = &b.service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", &format!("repository:{}:{actions}", self.repository));
        }
        let mut req = self.conn.http.get(url);
        if let Credentials::Basic { username, password } = &self.creds {
            req = req.basic_auth(username, Some(password.as_str()));
        }
        let fut = async {
            let resp = req.send().await.map_err(|e| map_error(e.into()))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
                return Err(StoreError::Auth(format!(
                    "the token service {realm} refused the credentials (HTTP {status})"
                )));
            }
            if !status.is_success() {
                return Err(StoreError::Transport(format!("the token service {realm}: HTTP {status}")));
            }
            let body = Zeroizing::new(read_body(resp, MAX_TOKEN_RESPONSE_BYTES, "token response").await?);
            Token::from_response(&body).map_err(|e| StoreError::Malformed(format!("{realm}: {e}")))
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| StoreError::Timeout(self.timeout.as_secs()))?
    }

    /// The oci-client for writes, its grant negotiated on first use: `/v2/` says what the
    /// registry wants, and oci-client gets a push token, basic credentials or nothing.
    async fn writer(&self) -> Result<&Client, StoreError> {
        self.writer
            .get_or_try_init(|| async {
                let host = self.host();
                let url = format!("{}://{host}/v2/", self.conn.scheme);
                let ping = async {
                    let resp = self.conn.http.get(&url).send().await.map_err(|e| map_error(e.into()))?;
                    let challenge = challenge_values(&resp);
                    Ok::<_, StoreError>((resp.status(), challenge))
                };
                let (status, challenge) = tokio::time::timeout(self.timeout, ping)
                    .await
                    .map_err(|_| StoreError::Timeout(self.timeout.as_secs()))??;
                let grant = if status == reqwest::StatusCode::UNAUTHORIZED {
                    self.negotiate(&challenge, Scope::PullPush).await?
                } else if status.is_success() {
                    Grant::None
                } else {
                    return Err(StoreError::Transport(format!("{url}: HTTP {status}")));
                };
                let auth = match (&grant, &self.creds) {
                    (Grant::Bearer(t), _) => Some(RegistryAuth::Bearer(t.as_str().to_owned())),
                    (Grant::Basic, Credentials::Basic { username, password }) => {
                        Some(RegistryAuth::Basic(username.clone(), password.to_string()))
                    }
                    _ => None,
                };
                let client = oci_client(&self.conn.opts);
                // With nothing stored oci-client sends no credentials and asks no token
                // service; a stored bearer token is used as is.
                if let Some(a) = auth {
                    client.store_auth_if_needed(&host, &a).await;
                }
                Ok(Box::new(client))
            })
            .await
            .map(|c| &**c)
    }

    /// GET `/v2/<repo>/<path>`, bounded by `limit` bytes and the deadline; `Ok(None)` on 404.
    async fn read(
        &self,
        path: &str,
        accept: Option<&str>,
        limit: u64,
        what: &'static str,
        absent: Absent,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let url = format!("{}://{}/v2/{}/{}", self.conn.scheme, self.host(), self.repository, path);
        let mut grant = self.read_auth.read().await.clone().unwrap_or(Grant::None);

        for attempt in 0..2 {
            let mut req = self.conn.http.get(&url);
            if let Some(a) = accept {
                req = req.header(reqwest::header::ACCEPT, a);
            }
            if let Some(h) = self.header(&grant) {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            let fut = async {
                let resp = req.send().await.map_err(|e| map_error(e.into()))?;
                let status = resp.status();
                if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
                    return Ok(Answer::Refused(status, challenge_values(&resp)));
                }
                if status == reqwest::StatusCode::NOT_FOUND
                    || (absent == Absent::NoSuchApi && matches!(status.as_u16(), 400 | 405 | 501))
                {
                    return Ok(Answer::Absent);
                }
                if !status.is_success() {
                    return Err(StoreError::Transport(format!("{url}: HTTP {status}")));
                }
                read_body(resp, limit, what).await.map(Answer::Body)
            };
            let res = tokio::time::timeout(self.timeout, fut)
                .await
                .map_err(|_| StoreError::Timeout(self.timeout.as_secs()))??;
            match res {
                Answer::Body(body) => return Ok(Some(body)),
                Answer::Absent => return Ok(None),
                // First 401: negotiate (or, with a token already held, which may have expired
                // in a long command, negotiate afresh), then try once more.
                Answer::Refused(reqwest::StatusCode::UNAUTHORIZED, challenge) if attempt == 0 => {
                    grant = self.negotiate(&challenge, Scope::Pull).await?;
                    *self.read_auth.write().await = Some(grant.clone());
                }
                Answer::Refused(status, _) => {
                    return Err(StoreError::Auth(format!("{url}: HTTP {status} with the credentials available")))
                }
            }
        }
        Err(StoreError::Auth(format!("{url}: access refused")))
    }
}

/// The `WWW-Authenticate` values of a response (unreadable ones dropped).
fn challenge_values(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// Reads a body, stopping at `limit` bytes. Reserved up front when the length is announced,
/// but never more than 8 MiB before the bytes arrive.
async fn read_body(resp: reqwest::Response, limit: u64, what: &'static str) -> Result<Vec<u8>, StoreError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(StoreError::TooLarge { what, limit });
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(limit).min(8 << 20) as usize);
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| map_error(e.into()))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(StoreError::TooLarge { what, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
            self.read(&path, Some(&accept), MAX_MANIFEST_BYTES as u64, "manifest", Absent::NotFound).await?
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
        let out = self
            .read(&format!("blobs/{digest}"), None, limit, "blob", Absent::NotFound)
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
        let oci = self.writer().await?;
        self.deadline(oci.push_blob(&reference, bytes, &d.to_string())).await?;
        Ok(d)
    }

    async fn put_blob_file(&self, file: &super::BlobFile, progress: super::Progress) -> Result<(), StoreError> {
        use tokio::io::AsyncReadExt;
        let reference = self.reference(&ManifestRef::Digest(file.digest.clone()));
        let oci = self.writer().await?;
        // A large blob already there (the same SBOM attached to another image) is not sent again.
        let digest = file.digest.to_string();
        if self.deadline(oci.blob_exists(&reference, &digest)).await? {
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
        let push = oci.push_blob_stream(&reference, stream, &digest, Some(size));
        match tokio::time::timeout(deadline, push).await {
            Ok(r) => r.map(|_| ()).map_err(map_error),
            Err(_) => Err(StoreError::Timeout(deadline.as_secs())),
        }
    }

    async fn get_referrers(&self, digest: &Digest) -> Result<Option<RawManifest>, StoreError> {
        let accept = super::manifest::OCI_INDEX;
        let body = self
            .read(
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
        let oci = self.writer().await?;
        let ct = media_type.parse().map_err(|_| StoreError::Malformed(format!("media type {media_type:?}")))?;
        self.deadline(oci.push_manifest_raw(&reference, bytes, ct)).await?;
        Ok(d)
    }

    async fn lock_tag(&self, _tag: &str) -> Result<TagWrites, StoreError> {
        // The distribution API has no locks and no conditional manifest writes.
        Ok(TagWrites::LastWriterWins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_realm_only_for_a_plain_http_registry() {
        let https = Url::parse("https://auth.example/token").unwrap();
        let http = Url::parse("http://127.0.0.1:5001/token").unwrap();
        assert!(realm_allowed(&https, Transport::Https));
        assert!(realm_allowed(&https, Transport::InsecureHttpAllowed));
        assert!(!realm_allowed(&http, Transport::Https));
        assert!(realm_allowed(&http, Transport::InsecureHttpAllowed));
    }
}
