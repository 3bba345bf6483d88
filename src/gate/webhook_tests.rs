//! The webhook over real HTTPS on loopback: a test CA and server certificate made here
//! (rcgen), the AdmissionReview requests of `testdata/admission/`, and a fake [`Judge`] whose
//! "policy" file says per repository what to decide, so reloads and bad policies are real
//! file changes. The judge with real registries is tested by the gate's integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};

use super::{Config, Loader, Webhook, MAX_REVIEW_BYTES};
use crate::digest::Digest;
use crate::gate::cache::CacheConfig;
use crate::gate::tls::CertFiles;
use crate::gate::{Decision, Judge, Mode, Outcome, ResolveError};
use crate::reference::RegistryRef;

// ---------------------------------------------------------------------------------------
// The fake judge

/// What the fake decides for a repository.
#[derive(Debug, Clone, PartialEq)]
enum Behaviour {
    Pass,
    Fail(String),
    Warn(String),
    /// The verification never ends.
    Hang,
    /// The registry cannot be reached to resolve a tag.
    Unreachable,
}

/// How often the fake was asked, per repository, across reloads.
#[derive(Default)]
struct Calls {
    judged: Mutex<BTreeMap<String, usize>>,
    resolved: Mutex<BTreeMap<String, usize>>,
}

impl Calls {
    fn judged(&self, repo: &str) -> usize {
        self.judged.lock().unwrap().get(repo).copied().unwrap_or(0)
    }
    fn resolved(&self, repo: &str) -> usize {
        self.resolved.lock().unwrap().get(repo).copied().unwrap_or(0)
    }
}

struct FakeJudge {
    policy: Digest,
    rules: BTreeMap<String, Behaviour>,
    /// How long a verification takes (so concurrent requests overlap).
    delay: Duration,
    calls: Arc<Calls>,
}

/// The fake's policy: one `REPOSITORY BEHAVIOUR [REASON…]` per line; `delay MS` sets the
/// verification time. Anything else is refused, as a real policy error would be.
fn load_fake(bytes: &[u8], calls: Arc<Calls>) -> Result<FakeJudge, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let mut rules = BTreeMap::new();
    let mut delay = Duration::ZERO;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut words = line.splitn(3, ' ');
        let (repo, what, reason) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next());
        let reason = reason.unwrap_or("").to_owned();
        if repo == "delay" {
            delay = Duration::from_millis(what.parse().map_err(|_| format!("line {}: bad delay", n + 1))?);
            continue;
        }
        let b = match what {
            "pass" => Behaviour::Pass,
            "fail" => Behaviour::Fail(reason),
            "warn" => Behaviour::Warn(reason),
            "hang" => Behaviour::Hang,
            "unreachable" => Behaviour::Unreachable,
            other => return Err(format!("line {}: unknown behaviour {other:?}", n + 1)),
        };
        rules.insert(repo.to_owned(), b);
    }
    Ok(FakeJudge { policy: Digest::sha256(bytes), rules, delay, calls })
}

impl FakeJudge {
    fn behaviour(&self, image: &RegistryRef) -> Behaviour {
        self.rules.get(&image.name()).cloned().unwrap_or(Behaviour::Fail("no rule matches".into()))
    }

    fn decision(&self, image: &RegistryRef, digest: Option<Digest>, mode: Mode, outcome: Outcome) -> Decision {
        Decision {
            digest,
            outcome,
            ..Decision::could_not_check(&image.to_string(), Some("team".into()), mode, String::new())
        }
    }
}

fn fake_digest(image: &RegistryRef) -> Digest {
    Digest::sha256(image.to_string().as_bytes())
}

impl Judge for FakeJudge {
    fn policy_digest(&self) -> &Digest {
        &self.policy
    }

    async fn resolve(&self, image: &RegistryRef) -> Result<Digest, ResolveError> {
        *self.calls.resolved.lock().unwrap().entry(image.name()).or_default() += 1;
        match self.behaviour(image) {
            Behaviour::Unreachable => Err(ResolveError::Unreachable {
                image: image.to_string(),
                reason: "connection refused (registry.example:443)".into(),
            }),
            _ => Ok(image.selector().digest().cloned().unwrap_or_else(|| fake_digest(image))),
        }
    }

    async fn judge(&self, image: &RegistryRef, digest: &Digest) -> Decision {
        *self.calls.judged.lock().unwrap().entry(image.name()).or_default() += 1;
        tokio::time::sleep(self.delay).await;
        let d = Some(digest.clone());
        match self.behaviour(image) {
            Behaviour::Pass => self.decision(image, d, Mode::Enforce, Outcome::Passed),
            Behaviour::Fail(why) => self.decision(image, d, Mode::Enforce, Outcome::Failed { reasons: vec![why] }),
            Behaviour::Warn(why) => self.decision(image, d, Mode::Warn, Outcome::Failed { reasons: vec![why] }),
            Behaviour::Hang => std::future::pending().await,
            Behaviour::Unreachable => {
                self.decision(image, d, Mode::Enforce, Outcome::CouldNotCheck { reason: "unreachable".into() })
            }
        }
    }

    fn without_registry(&self, _: &RegistryRef) -> Option<Decision> {
        None
    }

    fn unresolved(&self, image: &RegistryRef, error: &ResolveError) -> Decision {
        Decision::could_not_check(&image.to_string(), Some("team".into()), Mode::Enforce, error.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The test PKI and server

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(rcgen::DnType::CommonName, "sigil webhook test CA");
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki { ca_pem: ca.pem(), issuer: Issuer::new(params, key) }
    }

    /// A server certificate for 127.0.0.1 and its key (PEM).
    fn server(&self, validity: Validity) -> (String, String) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(1999, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validity {
    Current,
    Expired,
}

struct Server {
    addr: std::net::SocketAddr,
    dir: tempfile::TempDir,
    client: reqwest::Client,
    tls: rustls::ClientConfig,
    calls: Arc<Calls>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pki: Pki,
}

fn test_config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        policy: dir.join("policy.txt"),
        tls: CertFiles { cert: dir.join("current/tls.crt"), key: dir.join("current/tls.key") },
        deadline: Duration::from_secs(5),
        read_timeout: Duration::from_secs(2),
        reload_interval: Duration::from_millis(50),
        grace: Duration::from_secs(5),
        cache: CacheConfig::default(),
    }
}

impl Server {
    async fn start(policy: &str) -> Server {
        Self::start_with(policy, |_| {}).await
    }

    async fn start_with(policy: &str, tune: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let (cert, key) = pki.server(Validity::Current);
        swap_pair(dir.path(), &cert, &key);
        std::fs::write(dir.path().join("policy.txt"), policy).unwrap();
        let mut config = test_config(dir.path());
        tune(&mut config);
        let calls = Arc::new(Calls::default());
        let for_loader = calls.clone();
        let load: Arc<Loader<FakeJudge>> = Arc::new(move |bytes: &[u8]| load_fake(bytes, for_loader.clone()));
        let webhook = Webhook::bind(config, load).await.unwrap();
        let addr = webhook.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(webhook.run(async move {
            let _ = stopped.await;
        }));
        let tls = client_tls(&pki.ca_pem);
        let client = reqwest::Client::builder().tls_backend_preconfigured(tls.clone()).build().unwrap();
        Server { addr, dir, client, tls, calls, stop: Some(stop), task: Some(task), pki }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Vec<u8>) {
        let r = self.client.post(self.url(path)).body(body).send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// POSTs a fixture and returns the answer's `response` (checked to be an AdmissionReview
    /// v1 answering the fixture's uid).
    async fn review(&self, path: &str, fixture: &str) -> Value {
        let body = read_fixture(fixture);
        let uid = body["request"]["uid"].clone();
        let (status, answer) = self.post(path, serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], uid, "the answer must carry the request's uid");
        answer["response"].clone()
    }

    async fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        text
    }

    /// Waits (bounded) until the metrics show `line`.
    async fn wait_for_metric(&self, line: &str) {
        for _ in 0..200 {
            if self.metrics().await.lines().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{line} never appeared in\n{}", self.metrics().await);
    }

    fn write_policy(&self, text: &str) {
        write_atomically(&self.dir.path().join("policy.txt"), text.as_bytes());
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
        }
    }

    /// The leaf certificate the server presents now (DER).
    async fn presented_cert(&self) -> Vec<u8> {
        let tls = self.connect().await;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default()
    }

    async fn connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.tls.clone()));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        connector.connect(name, tcp).await.unwrap()
    }

    /// Sends `bytes` on a new TLS connection and reads what comes back until the server closes
    /// it (bounded in time).
    async fn raw(&self, bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self.connect().await;
        tls.write_all(bytes).await.unwrap();
        tls.flush().await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Replaces the certificate and key at once, as the kubelet updates a secret volume.
    fn swap_pair(&self, cert: &str, key: &str) {
        swap_pair(self.dir.path(), cert, key);
    }
}

/// Writes the pair into a fresh folder and points the `current` link at it (a rename: the
/// reader sees the old pair or the new one, never half of each).
fn swap_pair(dir: &Path, cert: &str, key: &str) {
    static VERSION: AtomicUsize = AtomicUsize::new(0);
    let version = format!("pair-{}", VERSION.fetch_add(1, Ordering::SeqCst));
    std::fs::create_dir(dir.join(&version)).unwrap();
    std::fs::write(dir.join(&version).join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join(&version).join("tls.key"), key).unwrap();
    let _ = std::fs::remove_file(dir.join("current.tmp"));
    std::os::unix::fs::symlink(&version, dir.join("current.tmp")).unwrap();
    std::fs::rename(dir.join("current.tmp"), dir.join("current")).unwrap();
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn client_tls(ca_pem: &str) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    // A resumed session reports the certificate of the session it resumes: every handshake
    // here must show the certificate served now.
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// Writes through a temporary file and a rename, as a Kubernetes volume update does: a
/// reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/admission").join(name)
}

fn read_fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap()
}

fn decoded_patch(response: &Value) -> Value {
    assert_eq!(response["patchType"], "JSONPatch");
    let b64 = response["patch"].as_str().unwrap_or_else(|| panic!("no patch in {response}"));
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

fn digest_of(image: &str) -> Digest {
    fake_digest(&RegistryRef::parse(image).unwrap())
}

const ALL_PASS: &str = "registry.example/team/app pass
registry.example/team/proxy pass
registry.example/team/init pass
registry.example/team/debug pass
registry.example/team/beta warn no SLSA provenance
";

// ---------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_pod_is_allowed_without_patch_on_validate() {
    let server = Server::start(ALL_PASS).await;
    let r = server.review("/validate", "pod-create.json").await;
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none() && r.get("warnings").is_none(), "{r}");
    // Every image of the pod spec was judged, the init container's too.
    for repo in ["app", "proxy", "init"] {
        assert_eq!(server.calls.judged(&format!("registry.example/team/{repo}")), 1, "{repo}");
    }
    // A digest reference needs no resolution.
    assert_eq!(server.calls.resolved("registry.example/team/init"), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_pins_each_admitted_tag_to_its_digest() {
    let server = Server::start(ALL_PASS).await;
    let r = server.review("/mutate", "pod-create.json").await;
    assert_eq!(r["allowed"], true);
    let app = "registry.example/team/app:1.0";
    let proxy = "registry.example/team/proxy:2";
    assert_eq!(
        decoded_patch(&r),
        json!([
            {"op": "replace", "path": "/spec/containers/0/image", "value": format!("{app}@{}", digest_of(app))},
            {"op": "replace", "path": "/spec/containers/1/image", "value": format!("{proxy}@{}", digest_of(proxy))},
        ])
    );
    // A Deployment's images live in its pod template; warned images are admitted and pinned.
    let r = server.review("/mutate", "deployment-create.json").await;
    assert_eq!(r["allowed"], true);
    let beta = "registry.example/team/beta:0.9";
    assert_eq!(
        decoded_patch(&r),
        json!([
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("{app}@{}", digest_of(app))},
            {"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": format!("{beta}@{}", digest_of(beta))},
        ])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforced_failure_denies_naming_each_failing_image() {
    let policy = ALL_PASS
        .replace("team/proxy pass", "team/proxy fail no signature by \"release\"")
        .replace("team/init pass", "team/init fail no SLSA provenance");
    let server = Server::start(&policy).await;
    for endpoint in ["/validate", "/mutate"] {
        let r = server.review(endpoint, "pod-create.json").await;
        assert_eq!(r["allowed"], false, "{r}");
        assert!(r.get("patch").is_none(), "a denial carries no patch");
        assert_eq!(r["status"]["code"], 403);
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("sigil denied 2 of 3 image(s) of Pod shop/web: "), "{message}");
        assert!(
            message.contains(
                "container \"proxy\": registry.example/team/proxy:2: rule \"team\": no signature by \"release\""
            ),
            "{message}"
        );
        assert!(message.contains("init container \"migrate\": registry.example/team/init@sha256:"), "{message}");
        assert!(!message.contains("\"app\""), "{message}");
    }
    // kubectl debug's ephemeral container is judged as well.
    let server2 = Server::start(&ALL_PASS.replace("team/debug pass", "team/debug fail unsigned")).await;
    let r = server2.review("/validate", "pod-ephemeral-update.json").await;
    assert_eq!(r["allowed"], false);
    assert!(r["status"]["message"].as_str().unwrap().contains("ephemeral container \"debugger-x7k2p\""), "{r}");
    server.stop().await;
    server2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_rules_admit_with_warnings() {
    let server = Server::start(ALL_PASS).await;
    let r = server.review("/validate", "deployment-create.json").await;
    assert_eq!(r["allowed"], true);
    assert_eq!(
        r["warnings"],
        json!(["container \"metrics\": registry.example/team/beta:0.9: rule \"team\": no SLSA provenance"])
    );
    assert!(server.metrics().await.contains("sigil_webhook_requests_total{endpoint=\"validate\",result=\"warned\"} 1"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_workloads_and_deletes_are_allowed_untouched() {
    let server = Server::start(ALL_PASS).await;
    for fixture in ["deployment-scale-update.json", "pod-delete.json", "configmap-create.json"] {
        for endpoint in ["/validate", "/mutate"] {
            let r = server.review(endpoint, fixture).await;
            assert_eq!(r["allowed"], true, "{fixture} {endpoint}: {r}");
            assert!(r.get("patch").is_none(), "{fixture} {endpoint}: {r}");
        }
    }
    assert!(server.calls.judged.lock().unwrap().is_empty(), "nothing to judge");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_image_reference_denies() {
    let server = Server::start(ALL_PASS).await;
    let r = server.review("/mutate", "pod-bad-reference.json").await;
    assert_eq!(r["allowed"], false);
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "container \"proxy\": registry.example/Team/proxy:2: not an image reference: invalid repository name"
        ),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_judge_is_denied_within_the_deadline() {
    let server = Server::start_with(&ALL_PASS.replace("team/proxy pass", "team/proxy hang"), |c| {
        c.deadline = Duration::from_millis(600);
    })
    .await;
    let started = std::time::Instant::now();
    let r = server.review("/validate", "pod-create.json").await;
    let took = started.elapsed();
    assert_eq!(r["allowed"], false);
    assert!(took < Duration::from_millis(1500), "answered after {took:?}");
    let message = r["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("container \"proxy\": registry.example/team/proxy:2: could not check: no decision within the deadline of 600 ms"),
        "{message}"
    );
    assert!(server.metrics().await.contains("sigil_webhook_deadline_exceeded_total 1\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_denies_and_is_not_cached() {
    let server = Server::start(&ALL_PASS.replace("team/app pass", "team/app unreachable")).await;
    for attempt in 1..=2 {
        let r = server.review("/validate", "pod-create.json").await;
        assert_eq!(r["allowed"], false);
        let message = r["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("could not resolve the digest: connection refused (registry.example:443)"),
            "{message}"
        );
        // Each review asks the registry again: the outage is not remembered.
        assert_eq!(server.calls.resolved("registry.example/team/app"), attempt);
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains("sigil_webhook_registry_errors_total{reason=\"unreachable\"} 2"), "{metrics}");
    assert!(
        metrics.contains("sigil_webhook_verdicts_total{rule=\"team\",mode=\"enforce\",outcome=\"could_not_check\"} 2"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_reviews_share_one_verification() {
    let server = Server::start(&format!("delay 300\n{ALL_PASS}")).await;
    let body = serde_json::to_vec(&read_fixture("pod-create.json")).unwrap();
    let requests = (0..8).map(|_| server.post("/validate", body.clone()));
    for (status, answer) in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["response"]["allowed"], true);
    }
    for repo in ["app", "proxy", "init"] {
        let repo = format!("registry.example/team/{repo}");
        assert_eq!(server.calls.judged(&repo), 1, "{repo} verified more than once");
    }
    assert_eq!(server.calls.resolved("registry.example/team/app"), 1, "one resolution of the tag");
    let metrics = server.metrics().await;
    assert!(metrics.contains("sigil_webhook_cache_lookups_total{cache=\"verdict\",result=\"miss\"} 3"), "{metrics}");
    assert!(metrics.contains("sigil_webhook_cache_lookups_total{cache=\"verdict\",result=\"hit\"} 21"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_verdicts_expire_sooner_than_admitted_ones() {
    let policy = ALL_PASS.replace("team/proxy pass", "team/proxy fail not signed yet");
    let server = Server::start_with(&policy, |c| c.cache.denied_ttl = Duration::from_millis(300)).await;
    for _ in 0..2 {
        assert_eq!(server.review("/validate", "pod-create.json").await["allowed"], false);
    }
    assert_eq!(server.calls.judged("registry.example/team/proxy"), 1, "cached within the denied TTL");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.review("/validate", "pod-create.json").await["allowed"], false);
    assert_eq!(server.calls.judged("registry.example/team/proxy"), 2, "judged again once the denial expired");
    assert_eq!(server.calls.judged("registry.example/team/app"), 1, "the admitted verdict is still cached");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reload_takes_a_good_policy_and_keeps_the_old_on_a_bad_one() {
    let server = Server::start(ALL_PASS).await;
    assert_eq!(server.review("/validate", "pod-create.json").await["allowed"], true);

    server.write_policy(&ALL_PASS.replace("team/app pass", "team/app fail revoked key"));
    server.wait_for_metric("sigil_webhook_reloads_total{what=\"policy\",result=\"ok\"} 1").await;
    let r = server.review("/validate", "pod-create.json").await;
    assert_eq!(r["allowed"], false, "the new policy applies at once (the policy digest is in the cache key)");
    assert!(r["status"]["message"].as_str().unwrap().contains("revoked key"), "{r}");

    server.write_policy("registry.example/team/app sometimes\n");
    server.wait_for_metric("sigil_webhook_reloads_total{what=\"policy\",result=\"failed\"} 1").await;
    let r = server.review("/validate", "pod-create.json").await;
    assert_eq!(r["allowed"], false, "the refused policy did not replace the working one");
    assert!(r["status"]["message"].as_str().unwrap().contains("revoked key"), "{r}");
    assert_eq!(server.get("/readyz").await, (200, "ready\n".to_owned()));
    // Counted once, not at every poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.metrics().await.contains("sigil_webhook_reloads_total{what=\"policy\",result=\"failed\"} 1\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_reload_serves_the_new_pair_and_keeps_the_old_on_a_bad_one() {
    let server = Server::start(ALL_PASS).await;
    let first = server.presented_cert().await;
    let (cert, key) = server.pki.server(Validity::Current);
    server.swap_pair(&cert, &key);
    server.wait_for_metric("sigil_webhook_reloads_total{what=\"certificate\",result=\"ok\"} 1").await;
    let second = server.presented_cert().await;
    assert_ne!(first, second);
    let new_der: rustls_pki_types::CertificateDer<'_> =
        rustls_pki_types::pem::PemObject::from_pem_slice(cert.as_bytes()).unwrap();
    assert_eq!(second, new_der.to_vec());

    // A key that is not the certificate's: refused, the second pair stays.
    let (_, other_key) = server.pki.server(Validity::Current);
    server.swap_pair(&cert, &other_key);
    server.wait_for_metric("sigil_webhook_reloads_total{what=\"certificate\",result=\"failed\"} 1").await;
    assert_eq!(server.presented_cert().await, second);
    // An expired certificate with its own key: refused too.
    let (expired, expired_key) = server.pki.server(Validity::Expired);
    server.swap_pair(&expired, &expired_key);
    server.wait_for_metric("sigil_webhook_reloads_total{what=\"certificate\",result=\"failed\"} 2").await;
    assert_eq!(server.presented_cert().await, second);
    assert_eq!(server.get("/readyz").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_review_is_refused() {
    let server = Server::start(ALL_PASS).await;
    let too_big = MAX_REVIEW_BYTES + 1;
    // Declared too large: refused before the body is sent.
    let head = format!("POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {too_big}\r\n\r\n");
    let answer = server.raw(head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    // Not declared (chunked): refused once the bound is passed (no terminating chunk is sent,
    // so the server has read all that was sent when it answers).
    let mut request =
        format!("POST /mutate HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n{too_big:x}\r\n")
            .into_bytes();
    request.extend(std::iter::repeat_n(b' ', too_big));
    request.extend_from_slice(b"\r\n");
    let answer = server.raw(&request).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains(&format!("the review is larger than {MAX_REVIEW_BYTES} bytes")), "{answer}");
    let metrics = server.metrics().await;
    assert!(metrics.contains("sigil_webhook_requests_total{endpoint=\"validate\",result=\"refused\"} 1"), "{metrics}");
    assert!(metrics.contains("sigil_webhook_requests_total{endpoint=\"mutate\",result=\"refused\"} 1"), "{metrics}");
    assert!(server.calls.judged.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_review_body_times_out() {
    let server = Server::start_with(ALL_PASS, |c| c.read_timeout = Duration::from_millis(300)).await;
    let head =
        "POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    let started = std::time::Instant::now();
    let answer = server.raw(head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_are_never_allowed() {
    let server = Server::start(ALL_PASS).await;
    // Not an AdmissionReview at all, another version, no request: an HTTP error, which the
    // API server treats as a failed call (denied under failurePolicy: Fail).
    let mut v1beta1 = read_fixture("pod-create.json");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_request = read_fixture("pod-create.json");
    no_request.as_object_mut().unwrap().remove("request");
    for (body, says) in [
        (b"{\"kind\": \"AdmissionReview\", ".to_vec(), "not an AdmissionReview"),
        (serde_json::to_vec(&v1beta1).unwrap(), "only AdmissionReview admission.k8s.io/v1"),
        (serde_json::to_vec(&no_request).unwrap(), "has no request"),
    ] {
        let (status, answer) = server.post("/validate", body).await;
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains(says), "{answer}");
    }
    // A request with a uid but no object to check, and a Pod whose spec does not parse: an
    // answer with the uid that denies.
    let mut no_object = read_fixture("pod-create.json");
    no_object["request"]["object"] = Value::Null;
    let mut bad_spec = read_fixture("pod-create.json");
    bad_spec["request"]["object"]["spec"]["containers"] = json!("app");
    for (body, says) in [(no_object, "carries no object"), (bad_spec, "sigil cannot check Pod shop/web")] {
        let (status, answer) = server.post("/mutate", serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["response"]["uid"], body["request"]["uid"]);
        assert_eq!(answer["response"]["allowed"], false);
        assert!(answer["response"]["status"]["message"].as_str().unwrap().contains(says), "{answer}");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("sigil_webhook_requests_total{endpoint=\"validate\",result=\"malformed\"} 3"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_post_reviews_and_get_probes() {
    let server = Server::start(ALL_PASS).await;
    let r = server.client.get(server.url("/validate")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let r = server.client.post(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(server.get("/healthz").await, (200, "ok\n".to_owned()));
    assert_eq!(server.get("/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(server.get("/nope").await.0, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exposed() {
    let server = Server::start(&ALL_PASS.replace("team/proxy pass", "team/proxy fail unsigned")).await;
    server.review("/validate", "pod-create.json").await;
    server.review("/validate", "pod-create.json").await;
    let r = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], super::metrics::CONTENT_TYPE);
    let text = r.text().await.unwrap();
    for line in [
        "sigil_webhook_requests_total{endpoint=\"validate\",result=\"denied\"} 2",
        "sigil_webhook_review_duration_seconds_count{endpoint=\"validate\"} 2",
        "sigil_webhook_verdicts_total{rule=\"team\",mode=\"enforce\",outcome=\"passed\"} 4",
        "sigil_webhook_verdicts_total{rule=\"team\",mode=\"enforce\",outcome=\"failed\"} 2",
        "sigil_webhook_cache_lookups_total{cache=\"verdict\",result=\"miss\"} 3",
        "sigil_webhook_cache_lookups_total{cache=\"verdict\",result=\"hit\"} 3",
        "sigil_webhook_cache_lookups_total{cache=\"digest\",result=\"miss\"} 2",
        "sigil_webhook_cache_lookups_total{cache=\"digest\",result=\"hit\"} 2",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_reviews_in_flight_and_stops_accepting() {
    let server = Server::start(&format!("delay 500\n{ALL_PASS}")).await;
    let body = serde_json::to_vec(&read_fixture("pod-create.json")).unwrap();
    let in_flight = {
        let client = server.client.clone();
        let url = server.url("/validate");
        tokio::spawn(async move { client.post(url).body(body).send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let addr = server.addr;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(in_flight.await.unwrap().unwrap(), 200, "the review in flight was answered");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_to_start_without_a_working_policy_or_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (cert, key) = pki.server(Validity::Current);
    swap_pair(dir.path(), &cert, &key);
    std::fs::write(dir.path().join("policy.txt"), "registry.example/team/app maybe\n").unwrap();
    let calls = Arc::new(Calls::default());
    let load: Arc<Loader<FakeJudge>> = Arc::new(move |b: &[u8]| load_fake(b, calls.clone()));
    let e = Webhook::bind(test_config(dir.path()), load.clone()).await.err().unwrap();
    assert!(e.to_string().contains("policy.txt was refused: line 1: unknown behaviour \"maybe\""), "{e}");
    std::fs::write(dir.path().join("policy.txt"), ALL_PASS).unwrap();
    let (_, other_key) = pki.server(Validity::Current);
    swap_pair(dir.path(), &cert, &other_key);
    let e = Webhook::bind(test_config(dir.path()), load).await.err().unwrap();
    assert!(e.to_string().contains("the key does not match the certificate"), "{e}");
}
