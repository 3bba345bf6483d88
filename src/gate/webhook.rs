//! The admission webhook's HTTPS server: routes, bounds, reloads and shutdown.
//!
//! Why this module exists: the API server calls the webhook on every workload it admits, so
//! the server must answer within its deadline whatever happens behind it, refuse what no API
//! server sends (other methods, bodies over 3 MiB, slow senders), pick up a rotated
//! certificate or an edited policy without a restart, and finish the reviews in flight when
//! the pod is asked to stop. The decision itself is [`super::admission`]'s; the caches are
//! [`super::cache`]'s; the policy is whatever the caller's loader makes of the file's bytes
//! (a [`Judge`]), so this module reads and watches the file but never interprets it.
//!
//! Endpoints: `POST /validate`, `POST /mutate` (AdmissionReview v1), `GET /healthz` (the
//! process answers), `GET /readyz` (policy and certificate loaded; 503 while draining),
//! `GET /metrics` (Prometheus text). HTTP/1.1 over TLS (rustls); no client certificates.
//!
//! What it must never do: allow on error, or let a reload replace a working policy or
//! certificate with one that does not load.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::admission::{self, Deadline, Endpoint, Verdict, MAX_REVIEW_BYTES};
use super::cache::{CacheConfig, Verdicts};
use super::metrics::{self, Metrics, ReloadKind, ReloadResult, RequestResult};
use super::tls::{CertFiles, ServingCert, TlsError};
use super::Judge;
use crate::digest::Digest;
use crate::policy::file::MAX_POLICY_BYTES;

/// Most connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;

/// Makes a judge from the policy file's bytes, or says what is wrong with them.
pub type Loader<J> = dyn Fn(&[u8]) -> Result<J, String> + Send + Sync;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The policy file, read at start and watched.
    pub policy: PathBuf,
    /// The serving certificate and key, read at start and watched.
    pub tls: CertFiles,
    /// Every review is answered within this (below the webhook's `timeoutSeconds`).
    pub deadline: Duration,
    /// A TLS handshake, request headers or a review body must arrive within this.
    pub read_timeout: Duration,
    /// How often the policy and certificate files are checked for changes.
    pub reload_interval: Duration,
    /// How long reviews in flight may take to finish after a shutdown signal.
    pub grace: Duration,
    /// Cache bounds.
    pub cache: CacheConfig,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The policy file could not be read.
    #[error("cannot read the policy {path}: {reason}")]
    PolicyRead {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The policy was refused by the loader.
    #[error("the policy {path} was refused: {reason}")]
    Policy {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The certificate or key was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// What every connection shares.
struct Shared<J> {
    judge: RwLock<Arc<J>>,
    verdicts: Verdicts,
    metrics: Arc<Metrics>,
    draining: AtomicBool,
    deadline: Duration,
    read_timeout: Duration,
    on_decision: Option<Arc<dyn super::OnDecision>>,
}

impl<J: Judge> Shared<J> {
    fn judge(&self) -> Arc<J> {
        // A poisoned lock only means a writer panicked mid-assignment of an Arc: whole either way.
        self.judge.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The server, bound and loaded, not yet serving.
pub struct Webhook<J: Judge> {
    listener: TcpListener,
    shared: Arc<Shared<J>>,
    cert: Arc<ServingCert>,
    acceptor: TlsAcceptor,
    load: Arc<Loader<J>>,
    config: Config,
    policy_seen: Digest,
    cert_seen: Digest,
}

impl<J: Judge> Webhook<J> {
    /// Loads the policy (through `load`) and the certificate, and binds the address. Any of
    /// them failing is an error: the server never starts without both.
    pub async fn bind(config: Config, load: Arc<Loader<J>>) -> Result<Self, WebhookError> {
        let policy_bytes = read_policy(&config.policy)
            .await
            .map_err(|reason| WebhookError::PolicyRead { path: config.policy.display().to_string(), reason })?;
        let policy_seen = Digest::sha256(&policy_bytes);
        let judge = run_loader(&load, policy_bytes)
            .await
            .map_err(|reason| WebhookError::Policy { path: config.policy.display().to_string(), reason })?;
        let (cert_pem, key_pem) = config.tls.read()?;
        let cert_seen = pair_digest(&cert_pem, &key_pem);
        let cert = Arc::new(ServingCert::new(config.tls.certified_key(&cert_pem, &key_pem, now_unix())?));
        let acceptor = TlsAcceptor::from(cert.server_config()?);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| WebhookError::Listen { addr: config.listen, reason: e.to_string() })?;
        let metrics = Arc::new(Metrics::new());
        let shared = Arc::new(Shared {
            judge: RwLock::new(Arc::new(judge)),
            verdicts: Verdicts::new(config.cache, metrics.clone()),
            metrics,
            draining: AtomicBool::new(false),
            deadline: config.deadline,
            read_timeout: config.read_timeout,
            on_decision: None,
        });
        Ok(Webhook { listener, shared, cert, acceptor, load, config, policy_seen, cert_seen })
    }

    /// Tells `hook` of every decision acted on (reviews that are not dry runs). Before
    /// [`Webhook::run`].
    pub fn on_decision(mut self, hook: Arc<dyn super::OnDecision>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.on_decision = Some(hook);
        }
        self
    }

    /// The address bound (the port, when 0 was asked for).
    pub fn local_addr(&self) -> Result<SocketAddr, std::io::Error> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then stops accepting, reports not ready, and gives
    /// the connections in flight the grace period to finish their reviews.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let Webhook { listener, shared, cert, acceptor, load, config, policy_seen, cert_seen } = self;
        let reloader = tokio::spawn(reload_loop(
            shared.clone(),
            cert,
            load,
            config.clone(),
            Seen { digest: policy_seen, problem: None },
            Seen { digest: cert_seen, problem: None },
        ));
        let graceful = GracefulShutdown::new();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, _peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        eprintln!("sigil webhook: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            tokio::spawn(serve(tcp, acceptor.clone(), shared.clone(), graceful.watcher(), permit));
        }
        shared.draining.store(true, Ordering::SeqCst);
        drop(listener);
        reloader.abort();
        let in_flight = graceful.count();
        eprintln!(
            "sigil webhook: stopping; {in_flight} connection(s) open, up to {} s to finish",
            config.grace.as_secs()
        );
        if tokio::time::timeout(config.grace, graceful.shutdown()).await.is_err() {
            eprintln!("sigil webhook: grace period over; closing the connections still open");
        }
    }
}

/// One connection: the TLS handshake and HTTP/1.1, each read bounded in time.
async fn serve<J: Judge>(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    shared: Arc<Shared<J>>,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(shared.read_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        // A failed or slow handshake: nothing to answer.
        _ => return,
    };
    let read_timeout = shared.read_timeout;
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(route(&shared, request).await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(read_timeout).keep_alive(true);
    let _ = watcher.watch(http.serve_connection(TokioIo::new(tls), service)).await;
}

async fn route<J: Judge>(shared: &Shared<J>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let get = request.method() == Method::GET;
    match request.uri().path() {
        "/validate" => review(shared, Endpoint::Validate, request).await,
        "/mutate" => review(shared, Endpoint::Mutate, request).await,
        "/healthz" | "/readyz" | "/metrics" if !get => method_not_allowed("GET"),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if shared.draining.load(Ordering::SeqCst) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        // The policy and the certificate are loaded before the server accepts anything, and a
        // reload never unloads them.
        "/readyz" => text(StatusCode::OK, "ready\n"),
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(shared.metrics.encode())));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the endpoints are /validate, /mutate, /healthz, /readyz, /metrics\n",
        ),
    }
}

/// A review: the body read within the bounds, answered within the deadline.
async fn review<J: Judge>(shared: &Shared<J>, endpoint: Endpoint, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let deadline = Deadline::after(shared.deadline);
    let refuse = |response: Response<Full<Bytes>>| {
        shared.metrics.request(endpoint, RequestResult::Refused, started.elapsed());
        response
    };
    if request.method() != Method::POST {
        return refuse(method_not_allowed("POST"));
    }
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REVIEW_BYTES as u64) {
        return refuse(too_large());
    }
    let read_by = deadline.at.min(started + shared.read_timeout);
    let body =
        match tokio::time::timeout_at(read_by, Limited::new(request.into_body(), MAX_REVIEW_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return refuse(too_large()),
            Ok(Err(e)) => return refuse(text(StatusCode::BAD_REQUEST, &format!("cannot read the review body: {e}\n"))),
            Err(_) => {
                return refuse(text(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!("the review body did not arrive within {} ms\n", (read_by - started).as_millis()),
                ))
            }
        };
    let judge = shared.judge();
    match admission::answer(
        &shared.verdicts,
        &*judge,
        &shared.metrics,
        endpoint,
        &body,
        deadline,
        shared.on_decision.as_deref(),
    )
    .await
    {
        Ok(answer) => {
            let result = match answer.verdict {
                Verdict::Allowed => RequestResult::Allowed,
                Verdict::Warned => RequestResult::Warned,
                Verdict::Denied => RequestResult::Denied,
            };
            let json = match answer.to_json() {
                Ok(json) => json,
                // Never an allow by accident: an answer that cannot be written is a failed call.
                Err(e) => {
                    shared.metrics.request(endpoint, RequestResult::Malformed, started.elapsed());
                    return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write the answer: {e}\n"));
                }
            };
            if let (Verdict::Denied, Some(r)) = (answer.verdict, &answer.review.response) {
                eprintln!("sigil webhook: denied review {}: {}", r.uid, r.result.message);
            }
            shared.metrics.request(endpoint, result, started.elapsed());
            let mut r = Response::new(Full::new(Bytes::from(json)));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(malformed) => {
            shared.metrics.request(endpoint, RequestResult::Malformed, started.elapsed());
            eprintln!("sigil webhook: refused a malformed review: {malformed}");
            text(StatusCode::BAD_REQUEST, &format!("{malformed}\n"))
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn method_not_allowed(allowed: &'static str) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, &format!("method not allowed: use {allowed}\n"));
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
    r
}

fn too_large() -> Response<Full<Bytes>> {
    text(StatusCode::PAYLOAD_TOO_LARGE, &format!("the review is larger than {MAX_REVIEW_BYTES} bytes\n"))
}

/// The last content of a watched file that was tried, and the last problem reported.
struct Seen {
    digest: Digest,
    problem: Option<String>,
}

impl Seen {
    /// Whether a read problem is new (reported once, not at every tick).
    fn new_problem(&mut self, problem: String) -> bool {
        let new = self.problem.as_deref() != Some(problem.as_str());
        self.problem = Some(problem);
        new
    }
}

/// Every `reload_interval`: reads the policy and the certificate pair, and loads whichever
/// changed. A change that does not load keeps the previous one, is said on stderr and counted
/// once; it is tried again when the file changes again.
async fn reload_loop<J: Judge>(
    shared: Arc<Shared<J>>,
    cert: Arc<ServingCert>,
    load: Arc<Loader<J>>,
    config: Config,
    mut policy: Seen,
    mut pair: Seen,
) {
    let mut tick = tokio::time::interval(config.reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let path = config.policy.display().to_string();
    loop {
        tick.tick().await;
        match read_policy(&config.policy).await {
            Err(e) => {
                if policy.new_problem(e.clone()) {
                    shared.metrics.reload(ReloadKind::Policy, ReloadResult::Failed);
                    eprintln!("sigil webhook: cannot read the policy {path} ({e}); the loaded policy stays in use");
                }
            }
            Ok(bytes) if Digest::sha256(&bytes) != policy.digest => {
                policy.digest = Digest::sha256(&bytes);
                policy.problem = None;
                match run_loader(&load, bytes).await {
                    Ok(judge) => {
                        let digest = judge.policy_digest().clone();
                        *shared.judge.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(judge);
                        shared.verdicts.forget_verdicts();
                        shared.metrics.reload(ReloadKind::Policy, ReloadResult::Ok);
                        eprintln!("sigil webhook: policy {path} reloaded ({digest})");
                    }
                    Err(e) => {
                        shared.metrics.reload(ReloadKind::Policy, ReloadResult::Failed);
                        eprintln!(
                            "sigil webhook: the changed policy {path} was refused, the previous one stays in use: {e}"
                        );
                    }
                }
            }
            Ok(_) => policy.problem = None,
        }
        let tried = config.tls.read().and_then(|(c, k)| {
            let digest = pair_digest(&c, &k);
            if digest == pair.digest {
                return Ok(None);
            }
            pair.digest = digest;
            config.tls.certified_key(&c, &k, now_unix()).map(Some)
        });
        match tried {
            Ok(None) => pair.problem = None,
            Ok(Some(key)) => {
                pair.problem = None;
                cert.replace(key);
                shared.metrics.reload(ReloadKind::Certificate, ReloadResult::Ok);
                eprintln!("sigil webhook: certificate {} reloaded", config.tls.cert.display());
            }
            Err(e) => {
                if pair.new_problem(e.to_string()) {
                    shared.metrics.reload(ReloadKind::Certificate, ReloadResult::Failed);
                    eprintln!("sigil webhook: the changed certificate was refused, the previous one stays in use: {e}");
                }
            }
        }
    }
}

/// The policy file's bytes, bounded.
async fn read_policy(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let f = tokio::fs::File::open(path).await.map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(MAX_POLICY_BYTES as u64 + 1).read_to_end(&mut bytes).await.map_err(|e| e.to_string())?;
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(format!("larger than {MAX_POLICY_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Runs the loader off the async workers (it may read key files or block on its own runtime).
async fn run_loader<J: Judge>(load: &Arc<Loader<J>>, bytes: Vec<u8>) -> Result<J, String> {
    let load = load.clone();
    tokio::task::spawn_blocking(move || load(&bytes)).await.map_err(|e| format!("the policy loader failed: {e}"))?
}

fn pair_digest(cert: &[u8], key: &[u8]) -> Digest {
    let mut both = Vec::with_capacity(cert.len() + key.len() + 1);
    both.extend_from_slice(cert);
    both.push(0);
    both.extend_from_slice(key);
    Digest::sha256(&both)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
