//! A repository in an OCI distribution registry as a [`Store`].
//!
//! Every request, read or write, is sigil's own, on one HTTP stack (reqwest with rustls): one
//! `Authorization` path ([`RegistryStore::header`]), one token exchange, one redirect policy
//! and a deadline on each request. A request is tried as is; only a 401 triggers the
//! negotiation (once per store and direction: reads ask for a pull token, writes for pull and
//! push), after which it is sent once more. The reasons, measured in docs/dependencies.md:
//! oci-client, which did the writes until issue 8 §3, pinged `/v2/` before its first push and
//! then followed whatever challenge it got there itself (an `http://` realm, an unbounded token
//! answer, a panic on a token that is not a header value), and read manifests whole.
//!
//! Reads are GETs whose bodies are streamed and cut off at their limit. Writes follow the
//! distribution spec: `HEAD` to ask whether a blob is there, a monolithic upload (`POST` opens
//! a session, `PUT` to its `Location` with `?digest=` sends the blob, streamed from disk for
//! files) and `PUT` for manifests. An upload `Location` on another host or scheme is refused,
//! so blobs and credentials go to the registry itself only; error bodies are read within
//! [`MAX_ERROR_BODY_BYTES`] and named in the error.
//!
//! The token exchange: the challenge is parsed by [`super::challenge`], a plain-HTTP realm is
//! refused unless the registry itself is plain HTTP (`--allow-http-registry`), and the answer
//! is read under the deadline and at most [`MAX_TOKEN_RESPONSE_BYTES`]. A token that expires in
//! a long command is renewed on the next 401.
//!
//! Every request runs under a deadline (an upload's grows with its size). Credentials are
//! only attached to requests for the store's own registry and its token service; reqwest
//! drops `Authorization` on a redirect to another host or scheme, and a TLS registry's
//! redirects to plain HTTP are refused.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use zeroize::Zeroizing;

use super::auth::Credentials;
use super::challenge::{BearerChallenge, Challenge, ChallengeError, Token, MAX_TOKEN_RESPONSE_BYTES};
use super::manifest::{Descriptor, Manifest, ACCEPTED_MANIFESTS, MAX_MANIFEST_BYTES};
use super::{BlobFile, ManifestRef, Progress, RawManifest, Store, StoreError, TagWrites};
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
        // No client-wide read timeout: reqwest starts it when a request is sent and stops it
        // only at the response headers, so it would cut off an upload that takes longer than
        // `--timeout`. Each exchange runs under its own deadline instead (`RegistryStore`).
        let mut b = reqwest::Client::builder()
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

/// Most pages of a referrers list followed (`Link: <…>; rel="next"`).
pub const MAX_REFERRERS_PAGES: usize = 64;
/// Most referrers listed for one subject, over all pages.
pub const MAX_REFERRERS: usize = 4096;

/// The `rel="next"` target of a response's `Link` headers (OCI distribution spec, referrers
/// pagination; RFC 8288 syntax, only what registries send: `<URI>; rel="next"`).
fn next_link(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).find_map(parse_next_link)
}

/// `<URI>; rel="next"` (or `rel=next`) in one `Link` value, possibly among other links.
pub fn parse_next_link(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let is_next = after[..params_end].split(';').skip(1).any(|p| {
            let Some((k, v)) = p.split_once('=') else { return false };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = &after[params_end..];
    }
}

/// The entries of one referrers page: an OCI image index.
fn referrers_page(body: &[u8]) -> Result<Vec<Descriptor>, StoreError> {
    match Manifest::parse(body) {
        Ok(Manifest::Index(i)) => Ok(i.manifests),
        Ok(Manifest::Image(_)) => Err(StoreError::Malformed("referrers API answered with an image manifest".into())),
        Err(e) => Err(StoreError::Malformed(format!("referrers index: {e}"))),
    }
}

/// Which answers mean "not there" for a read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Absent {
    /// 404 only.
    NotFound,
    /// An optional API: 404, and 400, 405 or 501 from registries that do not route it.
    NoSuchApi,
}

/// What a write sends, made afresh for each attempt (a retry after a 401 sends it again).
enum Payload<'a> {
    /// No body (`HEAD`, the `POST` that opens an upload).
    Empty,
    /// Bytes held in memory, with their media type.
    Bytes(bytes::Bytes, &'a str),
    /// A file streamed from disk (reopened for a retry), reporting progress.
    File(&'a BlobFile, &'a Progress),
    /// A stream of `size` bytes, which can be sent once only: a retry after a 401 fails.
    Stream(std::sync::Mutex<Option<super::BlobStream>>, u64),
}

/// The most read of an error body, to name what the registry said went wrong.
pub const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// One repository in one registry.
pub struct RegistryStore {
    conn: Connection,
    creds: Credentials,
    registry: String,
    repository: String,
    timeout: Duration,
    read_auth: tokio::sync::RwLock<Option<Grant>>,
    write_auth: tokio::sync::RwLock<Option<Grant>>,
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
            write_auth: tokio::sync::RwLock::new(None),
        }
    }

    /// The host requests go to (`docker.io` is served by `index.docker.io`).
    fn host(&self) -> &str {
        if self.registry == "docker.io" {
            "index.docker.io"
        } else {
            &self.registry
        }
    }

    /// The URL of `/v2/<repo>/<path>`.
    fn url(&self, path: &str) -> Result<Url, StoreError> {
        let url = format!("{}://{}/v2/{}/{}", self.conn.scheme, self.host(), self.repository, path);
        Url::parse(&url).map_err(|e| StoreError::Malformed(format!("registry URL {url}: {e}")))
    }

    /// A `Link` target (relative or absolute) resolved against `base`; only on the registry
    /// itself and under this repository's `referrers/`, since credentials go with it.
    fn same_origin(&self, base: &Url, link: &str) -> Result<Url, StoreError> {
        let next = base.join(link).map_err(|e| StoreError::Malformed(format!("referrers Link {link:?}: {e}")))?;
        let prefix = format!("/v2/{}/referrers/", self.repository);
        if next.scheme() != base.scheme()
            || next.host_str() != base.host_str()
            || next.port_or_known_default() != base.port_or_known_default()
            || !next.path().starts_with(&prefix)
        {
            return Err(StoreError::Malformed(format!(
                "referrers Link {link:?} leaves {prefix} on this registry: not followed (credentials stay with the registry)"
            )));
        }
        Ok(next)
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
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
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

    /// GET `/v2/<repo>/<path>`, bounded by `limit` bytes and the deadline; `Ok(None)` on 404.
    async fn read(
        &self,
        path: &str,
        accept: Option<&str>,
        limit: u64,
        what: &'static str,
        absent: Absent,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let url = self.url(path)?;
        Ok(self.read_url(url, accept, limit, what, absent).await?.map(|(body, _)| body))
    }

    /// [`Self::read`] of a whole URL on this registry, also returning the `Link` header's
    /// `rel="next"` target.
    async fn read_url(
        &self,
        url: Url,
        accept: Option<&str>,
        limit: u64,
        what: &'static str,
        absent: Absent,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        let Some((resp, by)) = self.get(&url, accept, absent, self.timeout).await? else { return Ok(None) };
        let next = next_link(&resp);
        let body = tokio::time::timeout_at(by, read_body(resp, limit, what))
            .await
            .map_err(|_| StoreError::Timeout(self.timeout.as_secs()))??;
        Ok(Some((body, next)))
    }

    /// GET `url` with this store's read grant: on a first 401 the challenge is negotiated for
    /// pull and the request sent once more. Returns a successful answer, whose body is still
    /// to be read, with the instant it must be read by (`allowance` after the attempt began);
    /// `Ok(None)` when the answer means "not there".
    async fn get(
        &self,
        url: &Url,
        accept: Option<&str>,
        absent: Absent,
        allowance: Duration,
    ) -> Result<Option<(reqwest::Response, tokio::time::Instant)>, StoreError> {
        let mut grant = self.read_auth.read().await.clone().unwrap_or(Grant::None);

        for attempt in 0..2 {
            let mut req = self.conn.http.get(url.clone());
            if let Some(a) = accept {
                req = req.header(reqwest::header::ACCEPT, a);
            }
            if let Some(h) = self.header(&grant) {
                req = req.header(AUTHORIZATION, h);
            }
            let by = tokio::time::Instant::now() + allowance;
            let resp = tokio::time::timeout_at(by, req.send())
                .await
                .map_err(|_| StoreError::Timeout(allowance.as_secs()))?
                .map_err(transport)?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                // First 401: negotiate (or, with a token already held, which may have expired
                // in a long command, negotiate afresh), then try once more.
                grant = self.negotiate(&challenge_values(&resp), Scope::Pull).await?;
                *self.read_auth.write().await = Some(grant.clone());
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(StoreError::Auth(format!("{url}: HTTP {status} with the credentials available")));
            }
            if status == StatusCode::NOT_FOUND
                || (absent == Absent::NoSuchApi && matches!(status.as_u16(), 400 | 405 | 501))
            {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(StoreError::Transport(format!("{url}: HTTP {status}")));
            }
            return Ok(Some((resp, by)));
        }
        Err(StoreError::Auth(format!("{url}: access refused")))
    }

    /// Sends a write (or a `HEAD`) to `url` under `deadline`, with this store's write grant:
    /// on a first 401 the challenge is negotiated for pull and push (a held token may have
    /// expired) and the request sent once more. Returns any answer but a 401 or 403.
    async fn write(
        &self,
        method: Method,
        url: &Url,
        payload: &Payload<'_>,
        deadline: Duration,
    ) -> Result<reqwest::Response, StoreError> {
        // Basic credentials a read already needed serve writes too; a read token does not
        // (its scope is pull only).
        let mut grant = match (self.write_auth.read().await.clone(), self.read_auth.read().await.clone()) {
            (Some(g), _) => g,
            (None, Some(Grant::Basic)) => Grant::Basic,
            _ => Grant::None,
        };
        for attempt in 0..2 {
            let mut req = self.conn.http.request(method.clone(), url.clone());
            if let Some(h) = self.header(&grant) {
                req = req.header(AUTHORIZATION, h);
            }
            req = match payload {
                Payload::Empty if method == Method::HEAD => req,
                Payload::Empty => req.header(CONTENT_LENGTH, 0),
                Payload::Bytes(bytes, media_type) => {
                    let ct = HeaderValue::from_str(media_type)
                        .map_err(|_| StoreError::Malformed(format!("media type {media_type:?}")))?;
                    req.header(CONTENT_TYPE, ct).body(bytes.clone())
                }
                Payload::File(file, progress) => req
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, file.size)
                    .body(file_body(file, progress).await?),
                Payload::Stream(slot, size) => {
                    let stream = slot.lock().ok().and_then(|mut s| s.take()).ok_or_else(|| {
                        StoreError::Auth(format!(
                            "{method} {url}: the registry asked for credentials again in the middle of an upload"
                        ))
                    })?;
                    req.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, *size)
                        .body(reqwest::Body::wrap_stream(stream))
                }
            };
            let resp = tokio::time::timeout(deadline, req.send())
                .await
                .map_err(|_| StoreError::Timeout(deadline.as_secs()))?
                .map_err(transport)?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    grant = self.negotiate(&challenge_values(&resp), Scope::PullPush).await?;
                    *self.write_auth.write().await = Some(grant.clone());
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(self.failure(&method, url, resp).await),
                _ => return Ok(resp),
            }
        }
        Err(StoreError::Auth(format!("{method} {url}: access refused")))
    }

    /// The error for a write's unexpected answer, naming what the registry said (its error
    /// body, read within [`MAX_ERROR_BODY_BYTES`] and the deadline). 401 and 403, and the
    /// spec's `UNAUTHORIZED` and `DENIED` codes, are refused access; anything else is a
    /// transport failure, which is transient: the file-system registry answers concurrent
    /// writers with 5xx, `BLOB_UNKNOWN` or `DIGEST_INVALID`, and [`crate::reconcile`] retries.
    async fn failure(&self, method: &Method, url: &Url, resp: reqwest::Response) -> StoreError {
        let status = resp.status();
        let body = tokio::time::timeout(self.timeout, read_body(resp, MAX_ERROR_BODY_BYTES, "error body"))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let envelope = serde_json::from_slice::<ErrorEnvelope>(&body).ok();
        let said = match &envelope {
            Some(e) if !e.errors.is_empty() => {
                e.errors.iter().map(|x| format!("{} {}", x.code, x.message)).collect::<Vec<_>>().join("; ")
            }
            _ => String::from_utf8_lossy(&body).chars().filter(|c| !c.is_control()).take(200).collect(),
        };
        let said = if said.trim().is_empty() { String::new() } else { format!(": {}", said.trim()) };
        // The URL without its query: an upload session's state is noise in a message.
        let mut shown = url.clone();
        shown.set_query(None);
        let msg = format!("{method} {shown}: HTTP {status}{said}");
        let denied = envelope.is_some_and(|e| e.errors.iter().any(|x| x.code == "UNAUTHORIZED" || x.code == "DENIED"));
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN || denied {
            StoreError::Auth(msg)
        } else {
            StoreError::Transport(msg)
        }
    }

    /// Whether the registry holds the blob `digest` (`HEAD`: 200 or 404).
    async fn blob_exists(&self, digest: &Digest) -> Result<bool, StoreError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let resp = self.write(Method::HEAD, &url, &Payload::Empty, self.timeout).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure(&Method::HEAD, &url, resp).await),
        }
    }

    /// A monolithic upload: `POST` opens a session, `PUT` to its `Location` with the digest
    /// sends the blob (the registry checks it hashes to `digest`), under `deadline`.
    async fn upload(&self, digest: &Digest, payload: Payload<'_>, deadline: Duration) -> Result<(), StoreError> {
        let start = self.url("blobs/uploads/")?;
        let resp = self.write(Method::POST, &start, &Payload::Empty, self.timeout).await?;
        if !resp.status().is_success() {
            return Err(self.failure(&Method::POST, &start, resp).await);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StoreError::Malformed(format!("POST {start}: the upload answer has no Location")))?;
        let mut put = upload_location(&start, location)?;
        put.query_pairs_mut().append_pair("digest", &digest.to_string());
        let resp = self.write(Method::PUT, &put, &payload, deadline).await?;
        if !resp.status().is_success() {
            return Err(self.failure(&Method::PUT, &put, resp).await);
        }
        Ok(())
    }
}

/// Where an upload continues: the `Location` of the answer to `start` (relative or absolute),
/// refused when it names another host, port or scheme (the blob and the credentials would go
/// there).
fn upload_location(start: &Url, location: &str) -> Result<Url, StoreError> {
    let url = start
        .join(location)
        .map_err(|e| StoreError::Malformed(format!("POST {start}: upload Location {location:?}: {e}")))?;
    if url.scheme() != start.scheme()
        || url.host_str() != start.host_str()
        || url.port_or_known_default() != start.port_or_known_default()
    {
        return Err(StoreError::Malformed(format!(
            "POST {start}: the registry sent the upload to {}, another host; sigil sends blobs and \
             credentials only to the registry itself",
            url.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

/// A file as a request body: read in 1 MiB chunks, at most `file.size` bytes, reporting
/// the bytes sent so far. Never held whole in memory.
async fn file_body(file: &BlobFile, progress: &Progress) -> Result<reqwest::Body, StoreError> {
    use tokio::io::AsyncReadExt;
    let src = tokio::fs::File::open(&file.path)
        .await
        .map_err(|e| StoreError::Io(format!("opening {}: {e}", file.path.display())))?;
    let progress = progress.clone();
    let stream = futures_util::stream::unfold((src.take(file.size), 0u64), move |(mut f, sent)| {
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
                Err(e) => Some((Err(e), (f, sent))),
            }
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
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
        let chunk = chunk.map_err(transport)?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(StoreError::TooLarge { what, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A failed request (connection, TLS, redirect refused, body stream): the message with every
/// cause, which names what went wrong (reqwest's own message is often just "error sending
/// request").
fn transport(e: reqwest::Error) -> StoreError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    StoreError::Transport(msg)
}

/// `manifests/<tag>` or `manifests/<digest>`, below `/v2/<repo>/`.
fn manifest_path(r: &ManifestRef) -> String {
    match r {
        ManifestRef::Tag(t) => format!("manifests/{t}"),
        ManifestRef::Digest(d) => format!("manifests/{d}"),
    }
}

/// The error codes and messages of a distribution-spec error body (`{"errors":[…]}`).
#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Store for RegistryStore {
    fn location(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    async fn get_manifest(&self, r: &ManifestRef) -> Result<Option<RawManifest>, StoreError> {
        let path = manifest_path(r);
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
        self.upload(&d, Payload::Bytes(bytes.into(), "application/octet-stream"), self.timeout).await?;
        Ok(d)
    }

    async fn put_blob_file(&self, file: &BlobFile, progress: Progress) -> Result<(), StoreError> {
        // A large blob already there (the same SBOM attached to another image) is not sent again.
        if self.blob_exists(&file.digest).await? {
            progress(file.size);
            return Ok(());
        }
        // The deadline grows with the size: the per-request timeout, plus a second per MiB.
        let deadline = self.timeout + Duration::from_secs(file.size >> 20);
        self.upload(&file.digest, Payload::File(file, &progress), deadline).await
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.blob_exists(digest).await
    }

    fn blob_origin(&self) -> Option<super::BlobOrigin> {
        Some(super::BlobOrigin { registry: self.registry.clone(), repository: self.repository.clone() })
    }

    /// `POST blobs/uploads/?mount=&from=`: 201 is mounted. A registry that declines (the
    /// token's scope does not reach the other repository, or the blob is not there) opens an
    /// upload session instead (202), which is cancelled.
    async fn mount_blob(&self, digest: &Digest, from: &super::BlobOrigin) -> Result<bool, StoreError> {
        if from.registry != self.registry || from.repository == self.repository {
            return Ok(false);
        }
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut().append_pair("mount", &digest.to_string()).append_pair("from", &from.repository);
        let resp = match self.write(Method::POST, &url, &Payload::Empty, self.timeout).await {
            Ok(resp) => resp,
            // A token scoped to this repository alone may not reach `from`: upload instead.
            Err(StoreError::Auth(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                let session = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                if let Some(at) = session.and_then(|l| upload_location(&url, &l).ok()) {
                    // Best effort: an abandoned session expires on its own.
                    let _ = self.write(Method::DELETE, &at, &Payload::Empty, self.timeout).await;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    async fn open_blob(&self, digest: &Digest, size: u64) -> Result<super::BlobStream, StoreError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let allowance = super::blob_allowance(self.timeout, size);
        let (resp, by) = self
            .get(&url, None, Absent::NotFound, allowance)
            .await?
            .ok_or_else(|| StoreError::BlobNotFound(digest.clone()))?;
        if resp.content_length().is_some_and(|n| n > size) {
            return Err(StoreError::TooLarge { what: "blob", limit: size });
        }
        let body = resp.bytes_stream().map(|c| c.map_err(transport)).boxed();
        Ok(super::checked(super::by_deadline(body, by, allowance.as_secs()), digest.clone(), size))
    }

    async fn put_blob_stream(&self, digest: &Digest, size: u64, body: super::BlobStream) -> Result<(), StoreError> {
        let deadline = super::blob_allowance(self.timeout, size);
        self.upload(digest, Payload::Stream(std::sync::Mutex::new(Some(body)), size), deadline).await
    }

    async fn get_referrers(&self, digest: &Digest) -> Result<Option<Vec<Descriptor>>, StoreError> {
        let accept = super::manifest::OCI_INDEX;
        let mut url = self.url(&format!("referrers/{digest}"))?;
        let mut entries = Vec::new();
        for page in 0..MAX_REFERRERS_PAGES {
            let Some((body, next)) = self
                .read_url(url.clone(), Some(accept), MAX_MANIFEST_BYTES as u64, "referrers index", Absent::NoSuchApi)
                .await?
            else {
                // No such API; a later page that vanished is a registry fault, not "no API".
                if page == 0 {
                    return Ok(None);
                }
                return Err(StoreError::Malformed(format!("{url}: referrers page vanished while paging")));
            };
            entries.extend(referrers_page(&body)?);
            if entries.len() > MAX_REFERRERS {
                return Err(StoreError::TooLarge { what: "referrers list (entries)", limit: MAX_REFERRERS as u64 });
            }
            let Some(next) = next else { return Ok(Some(entries)) };
            url = self.same_origin(&url, &next)?;
        }
        Err(StoreError::TooLarge { what: "referrers list (pages)", limit: MAX_REFERRERS_PAGES as u64 })
    }

    async fn put_manifest(&self, r: &ManifestRef, media_type: &str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
        let d = Digest::sha256(&bytes);
        if let ManifestRef::Digest(want) = r {
            if *want != d {
                return Err(StoreError::DigestMismatch(want.clone()));
            }
        }
        let url = self.url(&manifest_path(r))?;
        let resp = self.write(Method::PUT, &url, &Payload::Bytes(bytes.into(), media_type), self.timeout).await?;
        if !resp.status().is_success() {
            return Err(self.failure(&Method::PUT, &url, resp).await);
        }
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

    // see: issue 9
    #[test]
    fn referrers_next_link_is_read_from_link_headers() {
        assert_eq!(
            parse_next_link(r#"</v2/a/referrers/sha256:1?n=1&last=x>; rel="next""#).as_deref(),
            Some("/v2/a/referrers/sha256:1?n=1&last=x")
        );
        assert_eq!(parse_next_link("</p2>; rel=next").as_deref(), Some("/p2"));
        assert_eq!(parse_next_link(r#"</prev>; rel="prev", </p2>; rel="next""#).as_deref(), Some("/p2"));
        assert_eq!(parse_next_link(r#"</p2>; rel="prev next""#).as_deref(), Some("/p2"));
        assert_eq!(parse_next_link(r#"</p2>; rel="prev""#), None);
        assert_eq!(parse_next_link("no link"), None);
        assert_eq!(parse_next_link("<unterminated; rel=next"), None);
    }

    #[test]
    fn plain_http_realm_only_for_a_plain_http_registry() {
        let https = Url::parse("https://auth.example/token").unwrap();
        let http = Url::parse("http://127.0.0.1:5001/token").unwrap();
        assert!(realm_allowed(&https, Transport::Https));
        assert!(realm_allowed(&https, Transport::InsecureHttpAllowed));
        assert!(!realm_allowed(&http, Transport::Https));
        assert!(realm_allowed(&http, Transport::InsecureHttpAllowed));
    }

    #[test]
    fn upload_location_stays_on_the_registry() {
        // see: issue 8 §3 — blobs and credentials go to the registry itself only.
        let start = Url::parse("https://reg.example:5000/v2/team/app/blobs/uploads/").unwrap();
        let mut rel = upload_location(&start, "/v2/team/app/blobs/uploads/u1?_state=a%3D").unwrap();
        rel.query_pairs_mut().append_pair("digest", "sha256:ab");
        assert_eq!(
            rel.as_str(),
            "https://reg.example:5000/v2/team/app/blobs/uploads/u1?_state=a%3D&digest=sha256%3Aab"
        );
        let abs = upload_location(&start, "https://reg.example:5000/v2/team/app/blobs/uploads/u2").unwrap();
        assert_eq!(abs.path(), "/v2/team/app/blobs/uploads/u2");
        for elsewhere in [
            "https://other.example:5000/v2/team/app/blobs/uploads/u3",
            "https://reg.example/v2/team/app/blobs/uploads/u3",
            "http://reg.example:5000/v2/team/app/blobs/uploads/u3",
            "//other.example/u3",
        ] {
            let err = upload_location(&start, elsewhere).unwrap_err().to_string();
            assert!(err.contains("another host"), "{elsewhere}: {err}");
        }
    }
}
