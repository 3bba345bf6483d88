//! `sigil webhook` as a process: real HTTPS on loopback, AdmissionReview requests shaped as the
//! API server sends them (testdata/admission), images in Debian's docker-registry signed by
//! sigil and by cosign, the real policy judge.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

struct Webhook {
    child: Child,
    port: u16,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_tls(ca: &Path) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl Webhook {
    /// Starts `sigil webhook` in `dir` with `policy` and extra flags; waits until it is ready.
    fn start(dir: &Path, policy: &str, extra: &[&str]) -> Webhook {
        Self::start_env(dir, policy, extra, &[])
    }

    fn start_env(dir: &Path, policy: &str, extra: &[&str], env: &[(&str, &str)]) -> Webhook {
        let ((cert, key), ca) = test_pki();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let mut c = Command::new(sigil_bin());
        c.args(["webhook", "--policy", policy, "--listen", &listen, "--allow-http-registry", "--reload-interval", "1"]);
        c.arg("--tls-cert").arg(&cert).arg("--tls-key").arg(&key);
        c.args(extra);
        isolate(&mut c, dir, env);
        let child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(client_tls(&ca))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let w = Webhook { child, port, client, rt };
        let start = Instant::now();
        while w.get("/readyz") != Some(200) {
            assert!(start.elapsed() < Duration::from_secs(20), "the webhook did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        w
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> Option<u16> {
        self.rt.block_on(async { self.client.get(self.url(path)).send().await.ok().map(|r| r.status().as_u16()) })
    }

    fn text(&self, path: &str) -> String {
        self.rt.block_on(async { self.client.get(self.url(path)).send().await.unwrap().text().await.unwrap() })
    }

    /// Posts a review; returns its `response`.
    fn review(&self, path: &str, review: &Value) -> Value {
        self.reviews(path, std::slice::from_ref(review)).pop().unwrap()
    }

    /// Posts reviews at once; returns their `response`s in order.
    fn reviews(&self, path: &str, reviews: &[Value]) -> Vec<Value> {
        self.rt.block_on(async {
            let sent = reviews.iter().map(|r| async {
                let answer = self.client.post(self.url(path)).json(r).send().await.unwrap();
                assert_eq!(answer.status().as_u16(), 200);
                let v: Value = answer.json().await.unwrap();
                assert_eq!(v["response"]["uid"], r["request"]["uid"]);
                v["response"].clone()
            });
            futures_util::future::join_all(sent).await
        })
    }
}

/// testdata/admission/pod-create.json with its containers' images replaced: `app` and `proxy`
/// containers, the `migrate` init container.
fn pod_review(app: &str, proxy: &str, migrate: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/admission/pod-create.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec = &mut v["request"]["object"]["spec"];
    spec["containers"][0]["image"] = json!(app);
    spec["containers"][1]["image"] = json!(proxy);
    spec["initContainers"][0]["image"] = json!(migrate);
    v
}

fn push(reg: &Registry, repo: &str, tag: &str) -> String {
    let digest = rt().block_on(push_image(&reg.store(repo), Some(tag), &format!("{repo}:{tag}"), "amd64"));
    format!("{}/{repo}@{digest}", reg.host())
}

fn policy(host: &str, staging_mode: &str) -> String {
    format!(
        r#"apiVersion: sigil/v1
kind: ImagePolicy
rules:
  - name: prod
    images: ["{host}/prod/**"]
    authorities:
      - {{name: release, key: {{path: sigil.pub}}, transparencyLog: ignore}}
      - {{name: cosign, key: {{path: cosign.pub}}, transparencyLog: ignore}}
  - name: staging
    images: ["{host}/staging/**"]
    mode: {staging_mode}
    authorities:
      - {{name: release, key: {{path: sigil.pub}}, transparencyLog: ignore}}
"#
    )
}

struct Setup {
    reg: Registry,
    dir: tempfile::TempDir,
    /// Tag references: prod/app (sigil, bundle), prod/proxy (cosign 2, legacy),
    /// prod/init (sigil, legacy), prod/unsigned, staging/app (unsigned).
    images: std::collections::BTreeMap<&'static str, (String, String)>,
}

impl Setup {
    fn new() -> Setup {
        let reg = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_code(&sigil(d, &["generate-key-pair"]), 0);
        assert_code(&cosign_env(d, &["generate-key-pair"], &[("COSIGN_PASSWORD", PASSWORD)]), 0);
        let mut images = std::collections::BTreeMap::new();
        for repo in ["prod/app", "prod/proxy", "prod/init", "prod/unsigned", "staging/app"] {
            let by_digest = push(&reg, repo, "v1");
            images.insert(repo, (format!("{}/{repo}:v1", reg.host()), by_digest));
        }
        let sign = |args: &[&str]| assert_code(&sigil(d, args), 0);
        sign(&["sign", "--allow-http-registry", "--format", "bundle", "--key", "sigil.key", &images["prod/app"].1]);
        sign(&["sign", "--allow-http-registry", "--key", "sigil.key", &images["prod/init"].1]);
        let out = cosign_env(
            d,
            &[
                "sign",
                "--yes",
                "--tlog-upload=false",
                "--allow-http-registry",
                "--key",
                "cosign.key",
                &images["prod/proxy"].1,
            ],
            &[("COSIGN_PASSWORD", PASSWORD)],
        );
        assert_code(&out, 0);
        std::fs::write(d.join("policy.yaml"), policy(&reg.host(), "warn")).unwrap();
        Setup { reg, dir, images }
    }

    fn tag(&self, repo: &str) -> &str {
        &self.images[repo].0
    }

    fn digest(&self, repo: &str) -> &str {
        self.images[repo].1.split('@').nth(1).unwrap()
    }
}

fn patch(response: &Value) -> Vec<Value> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    assert_eq!(response["patchType"], "JSONPatch");
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn reviews_are_allowed_denied_warned_and_pinned_by_the_real_policy() {
    let s = Setup::new();
    let w = Webhook::start(s.dir.path(), "policy.yaml", &[]);
    // Signed by sigil (bundle), by cosign 2 (legacy) and by sigil (legacy): allowed.
    let ok = pod_review(s.tag("prod/app"), s.tag("prod/proxy"), &s.images["prod/init"].1);
    let r = w.review("/validate", &ok);
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("patch").is_none());
    // The mutating endpoint pins the two tags (the init container is already by digest).
    let r = w.review("/mutate", &ok);
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        patch(&r),
        vec![
            json!({"op": "replace", "path": "/spec/containers/0/image", "value": format!("{}@{}", s.tag("prod/app"), s.digest("prod/app"))}),
            json!({"op": "replace", "path": "/spec/containers/1/image", "value": format!("{}@{}", s.tag("prod/proxy"), s.digest("prod/proxy"))}),
        ]
    );
    // An unsigned image under an enforced rule: denied, naming the container and the reason.
    let bad = pod_review(s.tag("prod/app"), s.tag("prod/unsigned"), &s.images["prod/init"].1);
    for endpoint in ["/validate", "/mutate"] {
        let r = w.review(endpoint, &bad);
        assert_eq!(r["allowed"], false, "{r}");
        assert_eq!(r["status"]["code"], 403);
        let m = r["status"]["message"].as_str().unwrap();
        assert!(m.contains("proxy") && m.contains("prod/unsigned") && m.contains("rule \"prod\""), "{m}");
        assert!(r.get("patch").is_none());
    }
    // Under a warn rule: admitted, with a warning.
    let warned = pod_review(s.tag("prod/app"), s.tag("staging/app"), &s.images["prod/init"].1);
    let r = w.review("/validate", &warned);
    assert_eq!(r["allowed"], true, "{r}");
    let warnings = r["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|x| x.as_str().unwrap().contains("staging/app")), "{r}");
    // An image no rule matches: denied by the default, without asking its registry.
    let elsewhere = pod_review(s.tag("prod/app"), "registry.invalid/other/app:1", &s.images["prod/init"].1);
    let r = w.review("/validate", &elsewhere);
    assert_eq!(r["allowed"], false);
    assert!(r["status"]["message"].as_str().unwrap().contains("no rule of the policy matches"), "{r}");
    let metrics = w.text("/metrics");
    assert!(metrics.contains("sigil_webhook_verdicts_total"), "{metrics}");
}

#[test]
fn concurrent_identical_reviews_share_one_verification() {
    let s = Setup::new();
    let w = Webhook::start(s.dir.path(), "policy.yaml", &[]);
    let review = pod_review(s.tag("prod/app"), s.tag("prod/proxy"), &s.images["prod/init"].1);
    // One review alone, against a registry of its own: the requests one verification makes.
    let mark = s.reg.mark();
    assert_eq!(w.review("/validate", &review)["allowed"], true);
    let one = s.reg.requests_since(mark).len();
    assert!(one > 0);
    // Restart (empty caches), then 16 identical reviews at once: still one verification.
    drop(w);
    let w = Webhook::start(s.dir.path(), "policy.yaml", &[]);
    let many: Vec<Value> = (0..16)
        .map(|i| {
            let mut r = review.clone();
            r["request"]["uid"] = json!(format!("uid-{i}"));
            r
        })
        .collect();
    let mark = s.reg.mark();
    let answers = w.reviews("/validate", &many);
    assert!(answers.iter().all(|a| a["allowed"] == true));
    let requests = s.reg.requests_since(mark);
    assert_eq!(
        requests.len(),
        one,
        "16 concurrent reviews made {} requests, one review {one}: {requests:#?}",
        requests.len()
    );
}

#[test]
fn a_registry_that_is_down_denies_within_the_deadline() {
    let s = Setup::new();
    let dir = s.dir.path();
    // A rule for a registry nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("127.0.0.1:{port}");
    std::fs::write(
        dir.join("down.yaml"),
        format!("{}  - name: down\n    images: [\"{down}/**\"]\n    authorities: [{{name: release, key: {{path: sigil.pub}}, transparencyLog: ignore}}]\n", policy(&s.reg.host(), "warn")),
    )
    .unwrap();
    let w = Webhook::start(dir, "down.yaml", &["--deadline", "3"]);
    let review = pod_review(s.tag("prod/app"), &format!("{down}/app:1"), &s.images["prod/init"].1);
    let start = Instant::now();
    let r = w.review("/validate", &review);
    assert!(start.elapsed() < Duration::from_secs(4), "answered in {:?}", start.elapsed());
    assert_eq!(r["allowed"], false, "{r}");
    assert!(r["status"]["message"].as_str().unwrap().contains("could not"), "{r}");
    // Images from registries that are up are judged as before (a "could not check" is not
    // cached: gate::webhook::tests::registry_down_denies_and_is_not_cached).
    let r = w.review("/validate", &pod_review(s.tag("prod/app"), s.tag("prod/proxy"), &s.images["prod/init"].1));
    assert_eq!(r["allowed"], true);
}

#[test]
fn policy_reload_takes_a_new_policy_and_keeps_the_old_one_when_the_new_one_does_not_check() {
    let s = Setup::new();
    let dir = s.dir.path();
    let w = Webhook::start(dir, "policy.yaml", &[]);
    let review = pod_review(s.tag("prod/app"), s.tag("staging/app"), &s.images["prod/init"].1);
    assert_eq!(w.review("/validate", &review)["allowed"], true, "staging warns");
    let replace = |text: &str| {
        let tmp: PathBuf = dir.join("policy.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join("policy.yaml")).unwrap();
    };
    // Staging now enforced: the same review is denied once the new policy is read.
    replace(&policy(&s.reg.host(), "enforce"));
    let start = Instant::now();
    while w.review("/validate", &review)["allowed"] == true {
        assert!(start.elapsed() < Duration::from_secs(10), "the new policy was not taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A policy that does not check is refused: the last good one stays.
    replace(
        "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: x\n    images: [\"**\"]\n    authorities: []\n",
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(w.review("/validate", &review)["allowed"], false);
    let ok = pod_review(s.tag("prod/app"), s.tag("prod/proxy"), &s.images["prod/init"].1);
    assert_eq!(w.review("/validate", &ok)["allowed"], true, "still the last good policy");
    let metrics = w.text("/metrics");
    assert!(metrics.lines().any(|l| l.starts_with("sigil_webhook_reloads_total") && l.contains("fail")), "{metrics}");
}

#[test]
fn decisions_are_signed_as_verification_summaries_except_for_dry_runs() {
    let s = Setup::new();
    let d = s.dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "gate"]), 0);
    let w = Webhook::start_env(
        d,
        "policy.yaml",
        &["--vsa-key", "gate.key", "--tlog-upload=false", "--vsa-format", "legacy"],
        &[("SIGIL_PASSWORD", PASSWORD)],
    );
    let summaries = |image: &str| {
        sigil(d, &["verify-attestation", "--allow-http-registry", "--key", "gate.pub", "--type", "vsa", image])
    };
    // A dry run first (an image of its own): no summary.
    let mut dry = pod_review(s.tag("prod/proxy"), s.tag("prod/proxy"), &s.images["prod/proxy"].1);
    dry["request"]["dryRun"] = json!(true);
    assert_eq!(w.review("/validate", &dry)["allowed"], true);
    // Then a real review: a summary for each image, written after the answer.
    let review = pod_review(s.tag("prod/app"), s.tag("prod/unsigned"), &s.images["prod/init"].1);
    assert_eq!(w.review("/validate", &review)["allowed"], false);
    let wait_for = |image: &str| {
        let start = Instant::now();
        loop {
            let out = summaries(image);
            if code(&out) == 0 {
                return serde_json::from_str::<Value>(stdout(&out).lines().next().unwrap()).unwrap();
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no summary was written for {image}: {}", stderr(&out));
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let st = wait_for(s.tag("prod/app"));
    assert_eq!(st["predicate"]["verificationResult"], "PASSED");
    assert_eq!(
        st["subject"][0]["digest"]["sha256"].as_str().unwrap(),
        s.digest("prod/app").trim_start_matches("sha256:")
    );
    assert_eq!(wait_for(s.tag("prod/unsigned"))["predicate"]["verificationResult"], "FAILED");
    // One summary per image, digest and policy, however often it is judged.
    wait_for(&s.images["prod/init"].1);
    let out = summaries(&s.images["prod/init"].1);
    assert_eq!(stdout(&out).lines().count(), 1, "one summary, not one per review");
    // Summaries are written in order: had the dry run queued one, it would be there by now.
    assert_code(&summaries(s.tag("prod/proxy")), 10);
}
